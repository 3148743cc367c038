"""Clean disconnects, reconnects (a second hello with the same id) and many bridges in one
process leak no lease and no segment: shown by the server's stats() and by /dev/shm."""

from __future__ import annotations

import gc
import os
import threading
import time

import awkward as ak
import numpy as np
import pytest

from bridge import Bridge
from bridge.client.transport import Connection

from _clients import CALM_TTL, observer, running_server, segments_of, settled, wait_until

ARRAY = ak.Array([[1.0, 2.0], [], [3.0]])


@pytest.fixture(scope="module")
def server():
    yield from running_server(threads=2, lease_ttl=CALM_TTL)


@pytest.fixture
def watcher(server):
    with observer(server) as bridge:
        assert settled(bridge.stats(), clients=1)
        yield bridge
    assert segments_of(bridge.server_info["server_pid"]) == set()


def busy(bridge) -> list:
    """Leave ``bridge`` holding a handle and results: leases both ways."""
    handle = bridge.send(ARRAY)
    return [handle, bridge.call("identity", handle), bridge.call("copy", np.arange(10))]


def test_clean_disconnect_frees_everything_at_once(server, watcher, shm_clean):
    server_pid = watcher.server_info["server_pid"]
    bridge = observer(server)
    held = busy(bridge)
    stats = watcher.stats()
    assert stats["clients"] == 2 and stats["handles"] == 1 and stats["leases"] == 3
    assert segments_of(server_pid) and segments_of(os.getpid())
    bridge.close()
    # `bye` is answered before close returns: no lease period to wait for
    assert settled(watcher.stats(), clients=1)
    assert segments_of(server_pid) == set() and segments_of(os.getpid()) == set()
    assert held[0].dropped and ak.array_equal(held[1], ARRAY)  # results stay readable, copied out


def test_second_hello_keeps_state_and_leaks_nothing(server, watcher, shm_clean):
    bridge = observer(server)
    try:
        handle, *results = busy(bridge)
        before = watcher.stats()
        for _ in range(3):
            bridge._hello(CALM_TTL)  # a reconnect: same client id
        after = watcher.stats()
        assert (after["clients"], after["handles"], after["leases"]) == (before["clients"], before["handles"], before["leases"])
        assert ak.array_equal(bridge.call("identity", handle), ARRAY)  # the handle survived
        del results
        gc.collect()
        handle.drop()
        bridge.ping()  # carries the releases, unless the heartbeat thread's ping took them first
        # (on its own socket, so they may reach the server just after the watcher asks)
        assert wait_until(lambda: settled(watcher.stats(), clients=2), timeout=5)
    finally:
        bridge.close()
    assert settled(watcher.stats(), clients=1)


def test_many_bridges_in_one_process_leak_nothing(server, watcher, shm_clean):
    server_pid = watcher.server_info["server_pid"]
    bridges = [observer(server) for _ in range(12)]
    try:
        held: list[list] = [[] for _ in bridges]
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for _ in range(5):
                    held[n].extend(busy(bridges[n]))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(len(bridges))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        stats = watcher.stats()
        assert stats["clients"] == 13 and stats["handles"] == 60 and stats["leases"] == 180
        # half the bridges let go of what they hold before closing, half close holding it
        for n in range(0, len(bridges), 2):
            held[n].clear()
        gc.collect()
        for bridge in bridges[::2]:
            bridge.ping()  # carries the releases and drops (or a heartbeat did, on its own socket)
        assert wait_until(lambda: (watcher.stats()["handles"], watcher.stats()["leases"]) == (30, 90), timeout=5)
    finally:
        for bridge in bridges:
            bridge.close()
    # immediately: each close said bye (waiting would let lease expiry hide a leak)
    assert settled(watcher.stats(), clients=1)
    assert segments_of(server_pid) == set() and segments_of(os.getpid()) == set()


def test_a_heartbeat_never_follows_bye(server, watcher, monkeypatch):
    # a ping after bye would find the client forgotten and register it again
    sent: list[str] = []
    real_request = Connection.request

    def spy(self, op, fields=None, **options):
        sent.append(op)
        if op == "bye":
            time.sleep(0.2)  # the heartbeat pings every 25 ms: it would ping in here
        return real_request(self, op, fields, **options)

    monkeypatch.setattr(Connection, "request", spy)
    with Bridge(server.address, lease_ttl=0.1) as short:
        assert short.call("length", [1, 2]) == 2
        time.sleep(0.1)
    assert "ping" in sent and sent[-1] == "bye", sent[-5:]
    assert watcher.stats()["clients"] == 1
