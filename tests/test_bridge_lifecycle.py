"""A Bridge's private server: what close() frees, and what happens when the server dies or hangs."""

from __future__ import annotations

import os
import signal
import threading
import time

import awkward as ak
import pytest

from bridge import Bridge, BridgeError, ServerDied
from bridge.gc import collect_dead_segments, owner_is_alive
from bridge.launcher import spawn_server
from bridge.shm import SHM_DIR, parse_owner_pid


def segments_of(pid: int) -> set[str]:
    return {name for name in os.listdir(SHM_DIR) if parse_owner_pid(name) == pid}


ARRAY = ak.Array([[1.5, 2.5], [], [3.5]])


def test_close_frees_everything_and_results_outlive_the_server(shm_clean):
    bridge = Bridge(threads=1)
    server_pid = bridge.server_info["server_pid"]
    handle = bridge.send(ARRAY)
    result = bridge.call("identity", handle)
    assert segments_of(os.getpid()) and segments_of(server_pid)
    bridge.close()
    bridge.close()  # idempotent
    assert not owner_is_alive(server_pid)
    assert segments_of(os.getpid()) == set() and segments_of(server_pid) == set()
    assert ak.array_equal(result, ARRAY, dtype_exact=True)  # still mapped after the server unlinked it
    assert handle.dropped
    handle.drop()  # nothing left to do
    with pytest.raises(BridgeError, match="closed"):
        bridge.call("identity", ARRAY)


def test_killed_server_raises_server_died_at_once(shm_clean):
    bridge = Bridge(threads=1)
    server_pid = bridge.server_info["server_pid"]
    try:
        handle = bridge.send(ARRAY)
        result = bridge.call("identity", handle)
        outcome: list[BaseException] = []

        def long_call() -> None:
            try:
                bridge.call("sleep", 60)
            except BaseException as exc:
                outcome.append(exc)

        caller = threading.Thread(target=long_call)
        caller.start()
        time.sleep(0.5)
        os.kill(server_pid, signal.SIGKILL)
        start = time.monotonic()
        caller.join(5)
        assert not caller.is_alive() and time.monotonic() - start < 1.0
        assert isinstance(outcome[0], ServerDied)
        assert segments_of(os.getpid())  # the client's regions stay until it closes
    finally:
        start = time.monotonic()
        bridge.close()
        assert time.monotonic() - start < 2.0
    assert handle.dropped and segments_of(os.getpid()) == set()
    # the dead server's result regions are what `awkward-bridge gc` is for
    leftovers = segments_of(server_pid)
    assert leftovers and set(collect_dead_segments()) >= leftovers
    assert ak.array_equal(result, ARRAY, dtype_exact=True)


def test_hung_server_raises_server_died_after_one_lease_ttl(shm_clean):
    server = spawn_server(threads=1, lease_ttl=2.0)
    try:
        bridge = Bridge(server.address, lease_ttl=2.0)
        try:
            assert bridge.call("identity", 7) == 7
            os.kill(server.pid, signal.SIGSTOP)
            try:
                start = time.monotonic()
                with pytest.raises(ServerDied, match="has not answered"):
                    bridge.call("identity", ARRAY)
                assert 1.5 <= time.monotonic() - start <= 4.0
            finally:
                os.kill(server.pid, signal.SIGCONT)
        finally:
            bridge.close()
    finally:
        assert server.stop() == 0
