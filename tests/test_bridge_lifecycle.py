"""A Bridge's private server: what close() frees, and what happens when the server dies or hangs."""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import awkward as ak
import pytest

from bridge import Bridge, BridgeError, ServerDied
from bridge.client.launcher import spawn_server
from bridge.shm import SHM_DIR, collect_dead_segments, owner_is_alive
from bridge.wire import segment_pid
from _clients import process_running, wait_until


def segments_of(pid: int) -> set[str]:
    return {name for name in os.listdir(SHM_DIR) if segment_pid(name) == pid}


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
    for use in (lambda: bridge.call("identity", ARRAY), lambda: bridge.send(ARRAY), lambda: bridge.ping()):
        with pytest.raises(BridgeError, match="this Bridge is closed"):
            use()


def test_closing_a_private_bridge_ends_what_its_julia_code_left_running(shm_clean):
    bridge = Bridge(threads=1)
    child = bridge.eval("getpid(run(`sleep 3600`; wait = false))")
    bridge.close()   # the server stops, and with it every executor's process group
    assert wait_until(lambda: not process_running(child))


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


def test_a_bridge_that_is_garbage_stops_its_server(shm_clean):
    # `b = Bridge()` run again in a notebook cell: the first Bridge is garbage, and its server,
    # executor and shared memory go with it, while the second serves on.
    b = Bridge()
    first = b._server
    assert b.call("sum", [1.0, 2.0]) == 3.0
    handle = b.send(ARRAY)
    b = Bridge()
    del handle
    gc.collect()
    # stopped by the finalizer's thread, not at interpreter exit
    assert wait_until(lambda: first.process.poll() is not None, timeout=60)
    assert not owner_is_alive(first.process.pid)
    assert b.call("sum", [1.0, 2.0]) == 3.0
    b.close()


def test_a_private_server_ends_with_a_process_that_exits_without_closing(tmp_path):
    script = tmp_path / "forgets.py"
    script.write_text(
        "import sys\n"
        "from bridge import Bridge\n"
        "b = Bridge()\n"
        "b.call('sum', [1.0])\n"
        "print(b.server_info['server_pid'], b.stats()['executor_pid'], flush=True)\n"
    )
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    server_pid, executor_pid = map(int, run.stdout.split())
    assert not owner_is_alive(server_pid) and not owner_is_alive(executor_pid)
    assert not segments_of(server_pid)


def test_fewer_threads_than_asked_for_is_said_once(caplog):
    asked = (os.cpu_count() or 1) + 2
    with caplog.at_level(logging.WARNING, logger="bridge.julia"), Bridge(threads=asked) as b:
        got = b.eval("Threads.nthreads()")
        b.eval("1 + 1")
    warnings = [r.getMessage() for r in caplog.records if r.name == "bridge.julia" and r.levelno == logging.WARNING]
    if got < asked:   # Julia 1.5 caps threads at the cores; later versions may start them all
        assert len(warnings) == 1, warnings
        assert warnings[0].startswith(f"this client's executor runs {got} threads for Threads.@threads, "
                                      f"not the {asked} asked for: Julia {b.server_info['julia_version']}")
    else:
        assert warnings == []
