"""Leases: a live client keeps everything however long it idles (heartbeats renew), a frozen one
loses it after lease_ttl × 1.5, and what it already mapped stays valid in its hands."""

from __future__ import annotations

import os
import signal
import time

import awkward as ak
import pytest

from _clients import (
    LEASE_TTL, observer, python_client, read_report, reap, segments_of, settled, running_server,
    wait_until,
)

ARRAY = ak.Array([[1.0, 2.0], [], [3.0]])

# Holds a result and a handle, reports, waits for a line on stdin, then reports what it reads.
FROZEN = """
    import json, os, sys
    import awkward as ak
    from bridge import Bridge
    bridge = Bridge(sys.argv[1], lease_ttl=float(sys.argv[2]))
    handle = bridge.send(ak.Array([[1.0, 2.0], [], [3.0]]))
    result = bridge.call("copy", ak.Array([[4.0], [5.0, 6.0]]))
    print(json.dumps({"pid": os.getpid()}), flush=True)
    sys.stdin.readline()
    print(json.dumps({"result": ak.to_list(result)}), flush=True)
    bridge.close()
"""


@pytest.fixture(scope="module")
def server():
    yield from running_server(threads=1)


def test_an_idle_live_client_keeps_its_leases(server, shm_clean):
    with observer(server) as watcher, observer(server) as idle:
        server_pid = watcher.server_info["server_pid"]
        handle = idle.send(ARRAY)
        result = idle.call("copy", ARRAY)
        written = segments_of(server_pid)
        time.sleep(4 * LEASE_TTL)  # only the heartbeat speaks for `idle` meanwhile
        stats = watcher.stats()
        assert stats["clients"] == 2 and stats["handles"] == 1 and stats["leases"] == 2
        assert segments_of(server_pid) == written
        assert ak.array_equal(idle.call("identity", handle), ARRAY)
        assert ak.array_equal(result, ARRAY)


def test_a_frozen_client_is_reclaimed_but_keeps_what_it_mapped(server, shm_clean):
    with observer(server) as watcher:
        server_pid = watcher.server_info["server_pid"]
        frozen = python_client(FROZEN, server.address, str(LEASE_TTL))
        try:
            pid = read_report(frozen)["pid"]
            assert watcher.stats()["leases"] == 2 and segments_of(server_pid)
            os.kill(pid, signal.SIGSTOP)
            stopped = time.monotonic()
            assert wait_until(lambda: settled(watcher.stats(), clients=1))
            # not before the lease and its margin ran out (the server's clock decides, so only
            # the lower bound is certain)
            assert time.monotonic() - stopped >= LEASE_TTL
            assert segments_of(server_pid) == set()
        finally:
            os.kill(frozen.pid, signal.SIGCONT)
        try:
            frozen.stdin.write("go\n")
            frozen.stdin.flush()
            # unlinked by the server, still mapped by the client: the data is intact
            assert read_report(frozen)["result"] == [[4.0], [5.0, 6.0]]
        finally:
            assert reap(frozen, grace=60) == 0
        assert segments_of(pid) == set()  # its close freed its own regions
        assert settled(watcher.stats(), clients=1)
