"""A /dev/shm as small as Docker's default (64 MB): what does not fit fails cleanly, on both sides.

The client and its private server run in a private mount namespace (``unshare --mount``) with a
64 MiB tmpfs mounted on /dev/shm, so the machine's /dev/shm is never filled.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from _clients import python_client, read_report, reap

LIMIT = 64 * 1024 * 1024
TOO_BIG = 80_000_000  # bytes: 10 million float64

# Runs inside the namespace; prints one JSON report.
INSIDE = f"""
    import json, os
    import numpy as np
    from bridge import Bridge, SharedMemoryFull
    report = {{}}
    def listing():  # the segments: the live client's and server's owner locks are expected
        return sorted(name for name in os.listdir("/dev/shm") if not name.endswith(".lock"))
    with Bridge(threads=1, lease_ttl=10.0) as bridge:
        bridge.eval("big_result(n) = zeros(n)")
        for what, attempt in [
            ("send", lambda: bridge.send(np.zeros({TOO_BIG} // 8))),
            ("argument", lambda: bridge.call("length", np.zeros({TOO_BIG} // 8))),
            ("result", lambda: bridge.call("big_result", {TOO_BIG} // 8)),
        ]:
            try:
                attempt()
                report[what] = None
            except SharedMemoryFull as error:
                report[what] = str(error)
            report[what + "_left"] = listing()
        # still serving, and what fits still fits (40 MB each way, one after the other)
        fits = bridge.call("big_result", 5_000_000)
        report["fits"] = int(len(fits))
        del fits
        report["after"] = float(bridge.call("sum", np.arange(10.0)))
        report["stats"] = bridge.stats()
    report["end"] = listing()
    print(json.dumps(report), flush=True)
"""


def _namespace_command() -> list[str]:
    return [
        "unshare", "--mount", "--propagation", "private", "sh", "-c",
        f'mount -t tmpfs -o size={LIMIT} tmpfs /dev/shm && exec "$0" "$@"',
    ]


def _unshare_works() -> str:
    if shutil.which("unshare") is None:
        return "the unshare command is not installed"
    probe = subprocess.run(_namespace_command() + ["true"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return f"cannot mount a private tmpfs on /dev/shm (needs root or user namespaces): {probe.stderr.strip()}"
    return ""


def test_what_does_not_fit_raises_shared_memory_full_and_leaves_nothing():
    reason = _unshare_works()
    if reason:
        pytest.skip(reason)
    process = python_client(INSIDE, wrapper=_namespace_command())
    try:
        report = read_report(process, timeout=300)
    finally:
        assert reap(process, grace=60) == 0
    for what in ("send", "argument", "result"):
        message = report[what]
        assert message is not None, f"{what} of {TOO_BIG} bytes fitted in a {LIMIT}-byte /dev/shm"
        assert str(TOO_BIG) in message and str(LIMIT) in message, message
        assert report[what + "_left"] == [], f"{what} left {report[what + '_left']}"
    assert report["fits"] == 5_000_000 and report["after"] == 45.0
    stats = report["stats"]
    assert stats["shm_bytes"] == stats["reserve_bytes"] and stats["leases"] == 0
    assert report["end"] == []
