"""A served (not spawned by the client) server killed with SIGKILL while calls are pending.

tests/test_bridge_lifecycle.py covers a private server, whose exit the client sees at once; here
the client only has the server's silence to go on, so this proves the heartbeat-based detection.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import awkward as ak
import numpy as np

from _clients import LEASE_TTL, observer, segments_of, warm_up
from bridge import ServerDied
from bridge.client.launcher import spawn_server
from bridge.shm import Segment, owner_is_alive

PAYLOAD = np.arange(4096, dtype=np.int64)


def test_pending_calls_raise_server_died_and_client_regions_survive(shm_clean):
    server = spawn_server(threads=2, lease_ttl=LEASE_TTL)
    try:
        warm_up(server)
        bridge = observer(server)
        try:
            server_pid = bridge.server_info["server_pid"]
            handle = bridge.send(ak.Array(PAYLOAD))
            result = bridge.call("identity", handle)
            server_results = segments_of(server_pid)
            own = segments_of(os.getpid())
            outcomes: list[BaseException] = []

            def pending() -> None:
                try:
                    bridge.call("sleep", 600)
                except BaseException as exc:
                    outcomes.append(exc)

            callers = [threading.Thread(target=pending) for _ in range(3)]
            for caller in callers:
                caller.start()
            time.sleep(1.0)  # the calls reach the server (two run, one queues)
            os.kill(server.pid, signal.SIGKILL)
            killed = time.monotonic()
            for caller in callers:
                caller.join(60)
            waited = time.monotonic() - killed
            assert not any(caller.is_alive() for caller in callers)
            assert len(outcomes) == 3 and all(isinstance(exc, ServerDied) for exc in outcomes), outcomes
            # dead after one lease TTL of silence (four heartbeat periods); allow scheduling slack
            heartbeat = bridge._connection.heartbeat_period
            assert waited <= 4 * heartbeat + 4 * LEASE_TTL, waited

            # the client's own regions are intact: the handle's buffer still reads back
            assert segments_of(os.getpid()) == own
            found = False
            for name in own:
                segment = Segment.attach(name)
                data = segment.array()
                found = found or PAYLOAD.tobytes() in data.tobytes()
                del data
                segment.close()
            assert found
        finally:
            bridge.close()
        assert handle.dropped and segments_of(os.getpid()) == set()
        # the dead server's results stay until `awkward-bridge gc`; the client's copy stays valid.
        # The server is not reaped yet (a zombie still answers kill(pid, 0)): gc must see it dead.
        # Any process's gc (every Bridge start-up runs one, and other test runs share the machine)
        # may get there first, so only "gone after our gc" is certain.
        assert server_results
        done = subprocess.run([sys.executable, "-m", "bridge.cli", "gc"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert segments_of(server_pid) == set()
        # and the directory of its executors' socket, which it had no chance to remove
        assert not [name for name in os.listdir(tempfile.gettempdir()) if name.startswith(f"akb-executors-{server_pid}-")]
        assert ak.array_equal(result, ak.Array(PAYLOAD))
    finally:
        server.stop()


def test_an_unreaped_killed_process_owns_nothing():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        assert owner_is_alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        # not waited for: a zombie until reaped, which gc must treat as dead
        deadline = time.monotonic() + 30
        while owner_is_alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not owner_is_alive(child.pid)
    finally:
        child.kill()
        child.wait()
