"""Removal of segments left behind by dead processes (``awkward-bridge gc``, ``Bridge`` start-up)."""

from __future__ import annotations

import os

from bridge.shm import SHM_DIR, parse_owner_pid


def collect_dead_segments(shm_dir: str = SHM_DIR) -> list[str]:
    """Unlink every ``akb-{pid}-*`` segment whose owner process is gone; returns the names removed.

    Files that are not segment names, and segments of live owners, are never touched. A pid
    reused by an unrelated process keeps its segments until that process exits too.
    """
    removed = []
    for name in sorted(os.listdir(shm_dir)):
        pid = parse_owner_pid(name)
        if pid is None or owner_is_alive(pid):
            continue
        try:
            os.unlink(os.path.join(shm_dir, name))
        except (FileNotFoundError, PermissionError):
            continue  # another collector got there first, or another user's segment
        removed.append(name)
    return removed


def owner_is_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (as any user) and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    # A killed process its parent has not reaped yet still answers kill(pid, 0), but runs no
    # code and will never use its segments again.
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (comm) state ...": comm may hold spaces and parentheses, so split at the last ")"
            return stat.read().rpartition(b")")[2].split()[0] == b"Z"
    except (OSError, IndexError):
        return False  # no /proc (not Linux) or the process just went: kill(pid, 0) decided
