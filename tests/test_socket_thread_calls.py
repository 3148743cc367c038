"""``--socket-thread-calls``: a server with one worker runs a second call on its socket thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bridge import Bridge
from bridge.launcher import spawn_server

# Each call marks that it started, then waits for the other's mark: both return true only if
# the two calls run at the same time.
RENDEZVOUS_JL = """
function rendezvous(mine, other, patience)
    touch(mine)
    deadline = time() + patience
    while !isfile(other) && time() < deadline
        Libc.systemsleep(0.01)
    end
    return isfile(other)
end
"""


def _meet(address: str, tmp_path: Path, patience: float) -> dict[str, bool]:
    """Two clients, each in its own thread, calling ``rendezvous`` at once; their answers."""
    answers: dict[str, bool] = {}
    clients = {"a": Bridge(address), "b": Bridge(address)}
    try:
        for bridge in clients.values():
            bridge.eval(RENDEZVOUS_JL)

        def call(name: str, other: str) -> None:
            answers[name] = clients[name].call("rendezvous", str(tmp_path / name), str(tmp_path / other), patience)

        threads = [threading.Thread(target=call, args=pair) for pair in (("a", "b"), ("b", "a"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        for bridge in clients.values():
            bridge.close()
    return answers


@pytest.mark.parametrize("socket_thread_calls", [True, False])
def test_a_second_call_runs_on_the_socket_thread_only_when_asked(tmp_path, shm_clean, socket_thread_calls):
    server = spawn_server(threads=1, socket_thread_calls=socket_thread_calls)
    try:
        with Bridge(server.address) as probe:
            assert probe.server_info["threads"] == 1
        # Without the option the second call waits for the one worker, so the first gives up.
        answers = _meet(server.address, tmp_path, patience=30.0 if socket_thread_calls else 2.0)
        assert len(answers) == 2
        assert all(answers.values()) == socket_thread_calls
        assert any(answers.values())  # whichever ran second found the other's mark
    finally:
        assert server.stop() == 0
