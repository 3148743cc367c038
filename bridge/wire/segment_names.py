"""The names of shared-memory segments (docs/protocol.md section 5): ``akb-{pid}-{32 hex}``.

Every name on the wire and every segment this package opens follows this one grammar; the Julia
side has the same in julia_server/src/wire/segment_names.jl, and tests/segment_names.json holds
the vectors both suites check.
"""

from __future__ import annotations

import os
import re
import secrets

SEGMENT_PREFIX = "akb-"

# pid: a positive decimal without leading zeros, small enough for a pid_t.
_NAME_RE = re.compile(r"akb-([1-9][0-9]{0,9})-[0-9a-f]{32}")
_MAX_PID = 2**31 - 1


def segment_name(pid: int | None = None) -> str:
    """A fresh segment name ``akb-{pid}-{32 random hex}``; ``pid`` defaults to this process."""
    return f"{SEGMENT_PREFIX}{os.getpid() if pid is None else pid}-{secrets.token_hex(16)}"


def segment_pid(name: str) -> int | None:
    """The owner pid encoded in a segment name, or None when ``name`` is not a segment name."""
    match = _NAME_RE.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        return None
    pid = int(match.group(1))
    return pid if pid <= _MAX_PID else None


def is_segment_name(name: str) -> bool:
    """Whether ``name`` is a well-formed segment name (so it contains no ``/`` and no ``..``)."""
    return segment_pid(name) is not None
