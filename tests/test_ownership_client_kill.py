"""A client killed with SIGKILL while the server holds leases on its buffers and it holds results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import awkward as ak
import pytest

from _clients import (
    LEASE_TTL, SETTLE_TIMEOUT, observer, python_client, read_report, reap, segments_of, settled,
    running_server, wait_until,
)

# Holds a handle (server lease on its buffers), two results (its leases on the server's
# segments) and a call still running that will write a result after the client is gone.
VICTIM = """
    import json, os, sys, threading, time
    import awkward as ak
    from bridge import Bridge
    bridge = Bridge(sys.argv[1], lease_ttl=float(sys.argv[2]))
    bridge.eval("slow_result(s) = (sleep(s); collect(1.0:1000.0))")
    handle = bridge.send(ak.Array([[1.0, 2.0], [], [3.0]]))
    kept = [bridge.call("identity", handle), bridge.call("copy", ak.Array([{"x": 1, "y": [2.0]}]))]
    threading.Thread(target=lambda: bridge.call("slow_result", 3 * float(sys.argv[2])), daemon=True).start()
    time.sleep(0.5)  # the slow call reaches the server
    print(json.dumps({"pid": os.getpid()}), flush=True)
    time.sleep(600)
"""


@pytest.fixture(scope="module")
def server():
    yield from running_server(threads=2)


def test_killed_client_loses_everything_and_others_are_served(server, shm_clean):
    with observer(server) as watcher:
        server_pid = watcher.server_info["server_pid"]
        kept = watcher.call("copy", ak.Array([[5, 6], [7]]))
        base = watcher.stats()
        assert base["clients"] == 1 and base["leases"] == 1
        watcher_results = segments_of(server_pid)
        victim = python_client(VICTIM, server.address, str(LEASE_TTL))
        try:
            victim_pid = read_report(victim)["pid"]
            during = watcher.stats()
            # the watcher's result, the victim's handle and two results, and the block offered
            # with its running call for a result like its last one (docs/ownership.md)
            assert during["clients"] == 2 and during["handles"] == 1 and during["leases"] == 5
            assert during["mapped_bytes"] > 0
            victim_results = segments_of(server_pid) - watcher_results
            assert victim_results  # the victim's own result arena, apart from the watcher's
            victim_segments = segments_of(victim_pid)
            assert victim_segments  # the handle's buffers

            os.kill(victim_pid, signal.SIGKILL)
            victim.wait(SETTLE_TIMEOUT)

            # within a few lease periods (the slow call finishes after expiry, and must not
            # leave a result behind either)
            def reclaimed() -> bool:
                stats = watcher.stats()
                return stats["clients"] == 1 and stats["handles"] == 0 and stats["leases"] == 1 \
                    and stats["mapped_bytes"] == 0 and segments_of(server_pid) == watcher_results
            assert wait_until(reclaimed), watcher.stats()
            assert wait_until(lambda: watcher.stats()["shm_bytes"] == base["shm_bytes"], timeout=5 * LEASE_TTL + 10)
            assert segments_of(server_pid) == watcher_results

            # the dead client's own segments are what `awkward-bridge gc` is for (any process's
            # gc may get there first: every Bridge start-up runs one, and test runs share the machine)
            assert segments_of(victim_pid) <= victim_segments
            done = subprocess.run([sys.executable, "-m", "bridge.cli", "gc"], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            assert segments_of(victim_pid) == set()
        finally:
            reap(victim)

        # the other client was served throughout, and still is
        assert ak.array_equal(kept, ak.Array([[5, 6], [7]]))
        assert ak.array_equal(watcher.call("copy", ak.Array([[1.5]])), ak.Array([[1.5]]))
        del kept
        watcher.ping()  # carries the release of `kept`
        assert wait_until(lambda: settled(watcher.stats(), clients=1))
    assert segments_of(server_pid) == set()
