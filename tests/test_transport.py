"""bridge.client.transport against a scripted ROUTER server written from docs/protocol.md."""

from __future__ import annotations

import threading
import time
from typing import Any, Optional

import msgpack
import pytest
import zmq

from bridge.base import BridgeError, FunctionNotFound, JuliaError, ServerDied
from bridge.client.transport import MAX_FRAME_BYTES, Connection

CLIENT = "test-client-0001"


class FakeServer:
    """A ROUTER that answers: ping, echo (returns its fields), sleep (replies after ``seconds``),
    fail (a FunctionNotFound error), stale (a wrong-id reply first), garbage (an unreadable frame).
    ``silent`` stops all answers. Every request it reads is kept in ``received``."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.received: list[tuple[bytes, dict]] = []
        self.silent = False
        self._stop = threading.Event()
        self._bound = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._bound.wait(5)

    def ops(self, op: str) -> list[dict]:
        return [message for _, message in self.received if message["op"] == op]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _reply(self, request: dict, **body: Any) -> bytes:
        return msgpack.packb({"v": 1, "id": request["id"], **body})

    def _serve(self) -> None:
        socket = zmq.Context.instance().socket(zmq.ROUTER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.bind(self.address)
        self._bound.set()
        delayed: list[tuple[float, bytes, bytes]] = []
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                for item in [d for d in delayed if d[0] <= now]:
                    delayed.remove(item)
                    socket.send_multipart(item[1:])
                if not socket.poll(10):
                    continue
                routing_id, frame = socket.recv_multipart()
                request = msgpack.unpackb(frame)
                self.received.append((routing_id, request))
                if self.silent:
                    continue
                op = request["op"]
                if op == "sleep":
                    delayed.append((now + request["seconds"], routing_id, self._reply(request, ok=True, result="slept")))
                    continue
                if op == "stale":
                    socket.send_multipart([routing_id, msgpack.packb({"v": 1, "id": request["id"] + 1000, "ok": True, "result": "stale"})])
                    reply = self._reply(request, ok=True, result="fresh")
                elif op == "fail":
                    error = {"type": "FunctionNotFound", "message": "no function `nope`", "backtrace": "at serve.jl:1"}
                    reply = self._reply(request, ok=False, error=error)
                elif op == "garbage":
                    reply = b"\xc1 not msgpack"
                elif op == "echo":
                    reply = self._reply(request, ok=True, result={k: v for k, v in request.items() if k not in ("v", "id", "client", "op")})
                else:
                    reply = self._reply(request, ok=True, result="pong" if op == "ping" else None)
                socket.send_multipart([routing_id, reply])
        finally:
            socket.close()


@pytest.fixture
def server(tmp_path):
    fake = FakeServer(f"ipc://{tmp_path}/fake.sock")
    yield fake
    fake.stop()


@pytest.fixture
def connect(server):
    connections: list[Connection] = []

    def make(lease_ttl: float = 30.0, **kwargs: Any) -> Connection:
        connection = Connection(server.address, CLIENT, lease_ttl=lease_ttl, **kwargs)
        connections.append(connection)
        return connection

    yield make
    for connection in connections:
        connection.close()


def test_request_sends_the_envelope_and_returns_the_result(server, connect):
    connection = connect()
    assert connection.request("echo", {"code": "1 + 1", "filename": "x.jl"}) == {"code": "1 + 1", "filename": "x.jl"}
    assert connection.request("echo") == {}
    # the transport's own options are not wire fields: a field may be called "retry" or "epoch"
    assert connection.request("echo", {"retry": 1, "epoch": 2}, retry=False) == {"retry": 1, "epoch": 2}
    first, second, _ = server.ops("echo")
    for message in (first, second):
        assert message["v"] == 1 and message["client"] == CLIENT and isinstance(message["id"], int)
    assert first["id"] != second["id"]


def test_error_reply_raises_the_mapped_exception(connect):
    with pytest.raises(FunctionNotFound) as caught:
        connect().request("fail")
    assert isinstance(caught.value, JuliaError)
    assert caught.value.message == "no function `nope`"
    assert caught.value.backtrace == "at serve.jl:1"


def test_reply_with_another_id_is_discarded(connect):
    assert connect().request("stale") == "fresh"


def test_reply_to_an_abandoned_request_is_discarded(server, connect):
    alive = [True]
    connection = connect(server_alive=lambda: alive[0])
    abandoned = threading.Timer(0.3, lambda: alive.__setitem__(0, False))
    abandoned.start()
    with pytest.raises(ServerDied):
        connection.request("sleep", {"seconds": 0.6})
    alive[0] = True
    time.sleep(0.5)  # the abandoned reply ("slept") is now queued on this thread's socket
    assert connection.request("ping") == "pong"


def test_unreadable_reply_is_a_clear_error(connect):
    with pytest.raises(BridgeError, match="unreadable reply"):
        connect().request("garbage")


def test_heartbeat_pings_every_quarter_ttl_and_carry_the_outbox(server, connect):
    pending = {"release": {"leases": [3, 4]}, "drop": {"handles": [7]}}

    def outbox():
        taken = dict(pending)
        pending.clear()
        return taken

    connect(lease_ttl=0.4, outbox=outbox)
    time.sleep(0.75)
    pings = server.ops("ping")
    assert 3 <= len(pings) <= 8  # about 7 expected; a loaded machine may lose one or two
    assert [(m["release"], m["drop"]) for m in pings if "release" in m] == [({"leases": [3, 4]}, {"handles": [7]})]
    assert all(m["client"] == CLIENT for m in pings)


def test_a_request_carries_the_outbox(server, connect):
    pending = [{"release": {"leases": [1]}}]
    connection = connect(outbox=lambda: pending.pop() if pending else {})
    assert connection.request("echo", {"x": 1}) == {"x": 1, "release": {"leases": [1]}}
    assert connection.request("echo", {"x": 2}) == {"x": 2}
    assert [m["op"] for _, m in server.received] == ["echo", "echo"]   # no message of its own


def test_silent_server_raises_server_died_after_one_lease_ttl(server, connect):
    connection = connect(lease_ttl=1.0)
    connection.request("ping")
    server.silent = True
    start = time.monotonic()
    with pytest.raises(ServerDied, match="has not answered"):
        connection.request("ping")
    assert 0.9 <= time.monotonic() - start <= 2.5


def test_nothing_listening_raises_server_died(tmp_path):
    connection = Connection(f"ipc://{tmp_path}/nobody.sock", CLIENT, lease_ttl=0.5)
    try:
        with pytest.raises(ServerDied):
            connection.request("ping")
    finally:
        connection.close()


def test_exited_server_process_raises_at_once(connect):
    alive = [True]
    connection = connect(server_alive=lambda: alive[0])
    threading.Timer(0.2, lambda: alive.__setitem__(0, False)).start()
    start = time.monotonic()
    with pytest.raises(ServerDied, match="exited"):
        connection.request("sleep", {"seconds": 5.0})
    assert time.monotonic() - start < 1.0


def test_a_long_request_does_not_block_another_thread(server, connect):
    connection = connect()
    outcome: dict[str, Any] = {}
    slow = threading.Thread(target=lambda: outcome.update(slow=connection.request("sleep", {"seconds": 1.5})))
    slow.start()
    time.sleep(0.2)
    start = time.monotonic()
    assert connection.request("ping") == "pong"
    assert time.monotonic() - start < 0.5
    slow.join()
    assert outcome["slow"] == "slept"
    routing_ids = {routing_id for routing_id, m in server.received if m["op"] in ("sleep", "ping")}
    assert len(routing_ids) == 2  # one DEALER per thread, same client id


def test_concurrent_requests_get_their_own_replies(connect):
    connection = connect()
    results: dict[int, Any] = {}

    def work(n: int) -> None:
        results[n] = [connection.request("echo", {"n": n, "k": k}) for k in range(20)]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: [{"n": n, "k": k} for k in range(20)] for n in range(6)}


def test_close_stops_the_heartbeat_and_fails_waiting_requests(server, connect):
    connection = connect(lease_ttl=0.4)
    caught: list[Optional[BaseException]] = [None]

    def wait_long() -> None:
        try:
            connection.request("sleep", {"seconds": 5.0})
        except BaseException as exc:
            caught[0] = exc

    waiter = threading.Thread(target=wait_long)
    waiter.start()
    time.sleep(0.2)
    connection.close()
    waiter.join(1.0)
    assert not waiter.is_alive()
    assert isinstance(caught[0], BridgeError) and "closed" in str(caught[0])
    pings = len(server.ops("ping"))
    time.sleep(0.3)
    assert len(server.ops("ping")) == pings
    with pytest.raises(BridgeError, match="closed"):
        connection.request("ping")


def test_oversized_request_is_refused_before_sending(server, connect):
    pending = [{"release": {"leases": [5]}, "drop": {"handles": [6]}}]
    connection = connect(outbox=lambda: pending.pop() if pending else {})
    with pytest.raises(BridgeError, match="message limit"):
        connection.request("echo", {"code": "x" * MAX_FRAME_BYTES})
    assert connection.request("ping") == "pong"
    assert server.ops("echo") == []
    # what the refused request would have carried went as requests of their own
    assert [m["leases"] for m in server.ops("release")] == [[5]]
    assert [m["handles"] for m in server.ops("drop")] == [[6]]
