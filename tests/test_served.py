"""Served mode: ``awkward-bridge serve`` stopped by SIGTERM, clients reconnecting across a restart,
the log, and ``stats`` with real numbers. (test_served_scaling.py imports ``Served``.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import awkward as ak
import numpy as np
import pytest

from bridge import Bridge, FunctionNotFound, ServerRestarted, ShuttingDown
from bridge.shm import SHM_DIR
from bridge.wire import segment_pid

START_TIMEOUT = 300  # a cold Julia compiles the server first; other test runs share the cores


class Served:
    """``awkward-bridge serve`` run by a test, its log in a file; ``stop()`` sends SIGTERM."""

    def __init__(self, directory: Path, *options: str, address: Optional[str] = None) -> None:
        self.address = address or f"ipc://{directory}/socket"
        self.log_path = directory / f"serve-{time.monotonic_ns()}.log"
        command = [
            sys.executable, "-m", "bridge.cli", "serve", "--address", self.address,
            "--threads", "2", "--lease-ttl", "4", *options,
        ]
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        if not (ready and ready[0].startswith("AWKWARD_BRIDGE_READY ")):
            self.stop(signal.SIGKILL, timeout=10)
            raise AssertionError(f"serve did not start: {ready}\n{self.log()}")
        self.address = ready[0].split(" ", 1)[1].strip()   # a tcp port 0 resolved
        self.signalled = False

    def log(self) -> str:
        """What the server and its wrapper wrote to stderr so far."""
        return self.log_path.read_text()

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        """Wait until ``text`` appears in the log."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert time.monotonic() < deadline, f"{text!r} never appeared in the log:\n{self.log()}"
            time.sleep(0.05)

    def send_signal(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to the ``serve`` process."""
        self.signalled = True
        self.process.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``sig`` (unless a signal was sent already) and wait for the ``serve`` process to
        exit; returns its exit status."""
        if self.process.poll() is None and not self.signalled:
            self.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process.stdout.close()
        return code

    def __enter__(self) -> "Served":
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.stop()


def _wait_for_file(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _segments_of(pid: int) -> list[str]:
    return [name for name in os.listdir(SHM_DIR) if segment_pid(name) == pid]


def test_sigterm_finishes_the_call_in_flight_refuses_new_work_and_frees_everything(tmp_path, shm_clean):
    with Served(tmp_path, "--log-calls") as served:
        bridge = Bridge(served.address, lease_ttl=4)
        try:
            server_pid = bridge.server_info["server_pid"]
            started = tmp_path / "started"
            bridge.eval(f"slow(x) = (touch(\"{started}\"); sleep(3); 2 .* x)")
            kept = bridge.call("copy", ak.Array([[1.0, 2.0], [3.0]]))  # a result the server owns
            assert _segments_of(server_pid), "the result should live in a server segment"
            answers: list = []
            caller = threading.Thread(target=lambda: answers.append(bridge.call("slow", np.arange(4.0))))
            caller.start()
            served.wait_for_log('call "slow"')
            _wait_for_file(started)  # running in the executor, not just queued (queued calls are refused)
            served.send_signal(signal.SIGTERM)
            served.wait_for_log("shutting down")
            with pytest.raises(ShuttingDown):
                bridge.call("identity", np.arange(3.0))
            caller.join(60)
            assert answers and answers[0].tolist() == [0.0, 2.0, 4.0, 6.0]  # the call in flight finished
            assert served.stop() == 0
            log = served.log()
            for line in (f"client {bridge.client_id[:8]} connected", "SIGTERM, shutting down", "1 calls running", "stopped"):
                assert line in log, f"{line!r} not in the log:\n{log}"
            assert _segments_of(server_pid) == []  # the server unlinked what it owned
            assert kept.tolist() == [[1.0, 2.0], [3.0]]  # this process's mapping outlives the name
        finally:
            bridge.close()


def test_client_reconnects_when_its_server_restarts_at_the_same_address(tmp_path, shm_clean):
    first = Served(tmp_path)
    bridge = Bridge(first.address, lease_ttl=4)
    try:
        old_pid = bridge.server_info["server_pid"]
        bridge.eval("mine() = 1")
        handle = bridge.send(ak.Array([[1, 2], [3]]))
        assert first.stop() == 0
        with Served(tmp_path, address=first.address) as second:
            # the first request finds a server that never heard of this client: re-hello, retry
            assert bridge.call("copy", np.arange(3)).tolist() == [0, 1, 2]
            assert bridge.server_info["server_pid"] != old_pid
            assert f"client {bridge.client_id[:8]} connected" in second.log()
            assert handle.stale and handle.dropped
            with pytest.raises(ServerRestarted, match="send the array again"):
                bridge.call("identity", handle)
            with pytest.raises(FunctionNotFound, match="mine"):
                bridge.call("mine")  # eval'd definitions went with the old server
            handle.drop()  # harmless: reconnecting already freed it
            again = bridge.send(ak.Array([[4]]))
            assert bridge.call("identity", again).tolist() == [[4]]
            again.drop()
    finally:
        bridge.close()
        if first.process.poll() is None:
            first.stop()


def test_a_call_waiting_across_a_restart_gets_a_clear_error(tmp_path, shm_clean):
    # a lease TTL that outlasts the restart (a Julia server takes seconds to start): the client
    # must find the new server, not declare the old one dead first
    first = Served(tmp_path, "--lease-ttl", "20")
    bridge = Bridge(first.address, lease_ttl=20)
    try:
        started = tmp_path / "started"
        bridge.eval(f"stuck() = (touch(\"{started}\"); sleep(600); 1)")
        failures: list[BaseException] = []

        def wait_for_stuck() -> None:
            try:
                bridge.call("stuck")
            except BaseException as error:  # the assertion below looks at it
                failures.append(error)

        caller = threading.Thread(target=wait_for_stuck)
        caller.start()
        _wait_for_file(started)
        # the server gives the stuck call its grace period, then stops without its answer
        assert first.stop() == 0
        assert "abandoned 1 calls still running" in first.log()
        with Served(tmp_path, "--lease-ttl", "20", address=first.address):
            caller.join(120)  # the heartbeat (lease TTL / 4) re-registers, ending the old epoch
            assert not caller.is_alive()
            assert len(failures) == 1 and isinstance(failures[0], ServerRestarted), failures
            assert "restarted while 'call' was waiting" in str(failures[0])
            assert bridge.call("identity", 5) == 5
    finally:
        bridge.close()
        if first.process.poll() is None:
            first.stop()


def test_stats_counts_clients_leases_bytes_and_calls(tmp_path, shm_clean):
    with Served(tmp_path) as served, Bridge(served.address) as bridge, Bridge(served.address) as other:
        before = bridge.stats()
        assert before["clients"] == 2
        handle = bridge.send(ak.Array([[1.0, 2.0], [3.0]]))
        result = other.call("copy", ak.Array(np.arange(1000.0)))
        stats = bridge.stats()
        assert stats["calls"] == before["calls"] + 1
        assert stats["handles"] == before["handles"] + 1
        assert stats["leases"] == before["leases"] + 2  # the handle and the result
        assert stats["shm_bytes"] >= before["shm_bytes"] + 8000  # the result's buffer
        done = subprocess.run([sys.executable, "-m", "bridge.cli", "stats", served.address],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert '"clients": 3' in done.stdout  # the two bridges and the command itself
        handle.drop()
        del result


def test_an_eval_shadows_a_shared_function_for_its_own_client_only(tmp_path, shm_clean):
    shared = tmp_path / "shared.jl"
    shared.write_text("scale(x) = 2x\n")
    with Served(tmp_path, "--include", str(shared)) as served:
        with Bridge(served.address) as first, Bridge(served.address) as second:
            assert first.call("scale", 21) == second.call("scale", 21) == 42  # every client sees --include
            first.eval("scale(x) = 3x")
            assert first.call("scale", 21) == 63
            assert second.call("scale", 21) == 42  # the other client's function is untouched
            assert second.call("Shared.scale", 1) == 2
