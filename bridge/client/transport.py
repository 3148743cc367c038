"""Request/reply with the server over ZeroMQ: one DEALER per thread, a heartbeat, dead-server detection."""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import zmq

import zmq.utils.monitor as zmq_monitor

from bridge.base import AuthenticationFailed, BridgeError, ServerDied, ServerRestarted, UnknownClient, error_from_reply
from bridge.wire import PROTOCOL_VERSION, decode, encode

from .keys import ClientKeys

MAX_FRAME_BYTES = 16 * 1024 * 1024  # the server's ZMQ_MAXMSGSIZE (docs/protocol.md, section 1)
POLL_SLICE = 0.1  # seconds a waiting request sleeps between liveness checks
BEAT_RECHECK = 0.5  # seconds within which the heartbeat follows a change of the lease TTL
CANCELLABLE = ("eval", "call", "send")  # the ops that run in the client's executor
# Seconds an interrupted request waits for the server's answer to its cancel: the server
# answers within its interrupt grace period (1 s) and the time to see the executor end.
INTERRUPT_PATIENCE = 5.0
_LOG = logging.getLogger("bridge")

Outbox = Callable[[], Dict[str, Dict[str, Any]]]


_HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                     | zmq.EVENT_HANDSHAKE_FAILED_AUTH)


class _Channel:
    """One thread's DEALER socket; ``busy`` while its thread is inside ``request``.

    A CURVE connection watches its handshake until it succeeds, so that a refused key raises
    ``AuthenticationFailed`` at once instead of a time-out.
    """

    def __init__(self, socket: zmq.Socket, monitor: Optional[zmq.Socket]) -> None:
        self.socket = socket
        self.monitor = monitor
        self.busy = False
        # runs at most once: from close(), or when the owning thread ends and drops its channel
        self.close = weakref.finalize(self, _close_channel_sockets, socket, monitor)

    def check_handshake(self, address: str) -> None:
        """Raise ``AuthenticationFailed`` if the CURVE handshake failed; stop watching once it
        succeeded."""
        if self.monitor is None:
            return
        while True:
            try:
                event = zmq_monitor.recv_monitor_message(self.monitor, zmq.NOBLOCK)["event"]
            except zmq.Again:
                return
            if event & _HANDSHAKE_FAILED:
                raise AuthenticationFailed(
                    f"the server at {address} refused this client's CURVE keys (wrong or stale key file); "
                    "a tcp:// server admits only the client keys of its own key file"
                )
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.socket.disable_monitor()
                self.monitor.close(0)
                self.monitor = None
                return


def _close_channel_sockets(socket: zmq.Socket, monitor: Optional[zmq.Socket]) -> None:
    if monitor is not None and not monitor.closed:
        monitor.close(0)
    socket.close(0)


class Connection:
    """A client's link to one server, usable from any number of threads.

    ``outbox`` returns the ``release`` and ``drop`` the next request carries, by op (docs/protocol.md
    section 2); ``server_alive`` (for a server this process owns) lets a waiting request fail at once
    when the server process has exited.

    ``on_unlinked`` hears the names of result chunks the server unlinked, which its success
    replies carry (docs/protocol.md sections 2 and 5); ``on_output`` hears what a job printed and
    logged: with it, ``eval``, ``call`` and ``send`` ask for ``stream_output``, so it hears the
    job's output messages as they come, and then the reply's ``output``, before the request
    returns or raises.

    A ``KeyboardInterrupt`` while an ``eval``, ``call`` or ``send`` waits sends ``cancel`` for
    it; the request then raises the server's answer, ``CallInterrupted``, or, without one within
    ``INTERRUPT_PATIENCE`` seconds (or at a second interrupt), the ``KeyboardInterrupt``.

    ``rehello`` makes reconnection transparent: when the server answers ``UnknownClient`` (it
    restarted at the same address, or expired this client's leases), the connection calls it once
    to register again, then retries the request if the caller allowed it. Each registration
    starts a new *epoch*; a request still waiting from an earlier epoch fails with
    ``ServerRestarted`` instead of waiting for a reply the new server will never send.
    """

    def __init__(
        self,
        address: str,
        client_id: str,
        *,
        lease_ttl: float,
        outbox: Optional[Outbox] = None,
        server_alive: Optional[Callable[[], bool]] = None,
        rehello: Optional[Callable[[], None]] = None,
        on_unlinked: Optional[Callable[[list[str]], None]] = None,
        on_output: Optional[Callable[[dict], None]] = None,
        curve: Optional[ClientKeys] = None,
    ) -> None:
        self.address = address
        self.client_id = client_id
        self.curve = curve
        # the secret the server gave at hello; every later request shows it (docs/security.md)
        self.token: Optional[str] = None
        self.lease_ttl = float(lease_ttl)
        self._outbox = outbox
        self._server_alive = server_alive
        self._rehello = rehello
        self._on_unlinked = on_unlinked
        self._on_output = on_output
        self.epoch = 0
        # held while sending and while re-registering, so every request is sent in a known epoch
        self._epoch_lock = threading.RLock()
        self._context = zmq.Context.instance()
        self._local = threading.local()
        self._channels: weakref.WeakSet[_Channel] = weakref.WeakSet()
        self._channels_lock = threading.Lock()
        self._ids = itertools.count()
        self._last_heard = time.monotonic()
        self._closed = False
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, name=f"akb-heartbeat-{client_id[:8]}", daemon=True)
        self._heartbeat.start()

    @property
    def heartbeat_period(self) -> float:
        """Seconds between pings: a quarter of the lease TTL, as docs/protocol.md asks."""
        return self.lease_ttl / 4

    @property
    def dead_after(self) -> float:
        """Silence (seconds) after which the server is declared dead: a whole lease TTL, four pings."""
        return self.lease_ttl

    def responsive(self) -> bool:
        """Whether the server answered within ``dead_after`` (and its process, if owned, runs)."""
        if self._server_alive is not None and not self._server_alive():
            return False
        return time.monotonic() - self._last_heard <= self.dead_after

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def request(self, op: str, fields: Optional[Mapping[str, Any]] = None, *, retry: bool = True,
                epoch: Optional[int] = None) -> Any:
        """Send ``op`` with the wire ``fields``, wait for its reply and return its ``result`` (or
        raise its error).

        ``retry=False`` is for requests that must not be re-sent after a reconnect (their fields
        name handles): they raise ``ServerRestarted`` instead. With ``epoch``, the request is sent
        only in that epoch (its handle ids mean nothing to a later registration).
        """
        return self.request_in_epoch(op, fields, retry=retry, epoch=epoch)[1]

    def request_in_epoch(self, op: str, fields: Optional[Mapping[str, Any]] = None, *, retry: bool = True,
                         epoch: Optional[int] = None) -> Tuple[int, Any]:
        """Like ``request``, and also the epoch in which the answered request was sent."""
        fields = dict(fields or {})
        if self._on_output is not None and op in CANCELLABLE:
            fields["stream_output"] = True
        sent_in, reply = self._exchange(op, fields, epoch)
        unlinked = reply.get("unlinked") if reply.get("ok") is True else None
        if self._on_unlinked is not None and isinstance(unlinked, list):
            self._on_unlinked([name for name in unlinked if isinstance(name, str)])
        self._show_output(reply, op)
        if reply.get("ok") is True:
            return sent_in, reply.get("result")
        error = reply.get("error")
        exception = error_from_reply(error if isinstance(error, dict) else {"type": "ProtocolError", "message": f"reply without an error map: {reply!r}"})
        if isinstance(exception, UnknownClient) and self._rehello is not None and op not in ("hello", "bye"):
            self.reconnect(sent_in)
            if retry and epoch is None:
                return self.request_in_epoch(op, fields, retry=False)
            raise ServerRestarted(
                f"the server at {self.address} no longer knew this client (it restarted, or the "
                f"client's leases expired); {op!r} was not run. Handles sent before are gone: send "
                "their arrays again"
            ) from exception
        raise exception

    def _show_output(self, message: dict, op: str) -> None:
        output = message.get("output")
        if self._on_output is not None and isinstance(output, dict):
            try:
                self._on_output(output)
            except Exception:
                # a closed or broken sys.stdout must not cost the reply its result
                _LOG.exception("could not show the output of %r", op)

    def reconnect(self, seen_epoch: int) -> None:
        """Register again, unless another thread already did since ``seen_epoch``."""
        assert self._rehello is not None
        with self._epoch_lock:
            if self.epoch != seen_epoch:
                return
            _LOG.warning("the server at %s no longer knows this client: registering again", self.address)
            self._rehello()
            self.epoch += 1

    def _exchange(self, op: str, fields: dict[str, Any], pinned: Optional[int]) -> Tuple[int, dict]:
        """Send one request (in epoch ``pinned``, if given) and wait for its reply; returns the
        epoch it was sent in and the reply."""
        channel = self._channel()
        channel.busy = True
        try:
            # close() sets _closed before it looks at busy; checking after setting busy means
            # either this thread or close() sees the other, never both using the socket
            if self._closed:
                raise BridgeError(f"the connection to {self.address} is closed")
            with self._epoch_lock:
                epoch = self.epoch
                if pinned is not None and pinned != epoch:
                    raise ServerRestarted(f"the server at {self.address} restarted; {op!r} refers to handles it no longer has")
                carried = self._outbox() if self._outbox is not None and op != "hello" else {}
                request_id = next(self._ids)
                try:
                    frame = self._frame(request_id, op, {**fields, **carried})
                except BridgeError:
                    # refused before it left: what it would have carried goes as requests of their own
                    for carried_op, carried_fields in carried.items():
                        self._send(channel.socket, next(self._ids), carried_op, carried_fields)
                    raise
                self._transmit(channel.socket, frame)
            reply = self._await(channel, request_id, op, epoch)
        finally:
            channel.busy = False
            if self._closed:
                channel.close()
        return epoch, reply

    def stop_heartbeat(self) -> None:
        """Stop pinging; idempotent. Done before ``bye``: a ping after it would register again."""
        self._stop.set()
        if self._heartbeat is not threading.current_thread():
            self._heartbeat.join()

    def close(self) -> None:
        """Stop the heartbeat and close every socket; requests in other threads fail within a poll slice."""
        self._closed = True
        self.stop_heartbeat()
        with self._channels_lock:
            channels = list(self._channels)
        for channel in channels:
            if not channel.busy:
                channel.close()

    def _channel(self) -> _Channel:
        channel = getattr(self._local, "channel", None)
        if channel is None:
            if self._closed:
                raise BridgeError(f"the connection to {self.address} is closed")
            socket = self._context.socket(zmq.DEALER)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.RCVTIMEO, int(POLL_SLICE * 1000))
            monitor = None
            if self.curve is not None:
                socket.curve_serverkey = self.curve.server_public
                socket.curve_publickey = self.curve.client_public
                socket.curve_secretkey = self.curve.client_secret
                monitor = socket.get_monitor_socket(_HANDSHAKE_FAILED | zmq.EVENT_HANDSHAKE_SUCCEEDED)
            socket.connect(self.address)
            channel = _Channel(socket, monitor)
            with self._channels_lock:
                self._channels.add(channel)
            self._local.channel = channel
        return channel

    def _send(self, socket: zmq.Socket, request_id: int, op: str, fields: dict[str, Any]) -> None:
        self._transmit(socket, self._frame(request_id, op, fields))

    def _frame(self, request_id: int, op: str, fields: dict[str, Any]) -> bytes:
        """Request ``op`` encoded; ``BridgeError`` if it is over the protocol's size limit."""
        envelope = {"v": PROTOCOL_VERSION, "id": request_id, "client": self.client_id, "op": op}
        if self.token is not None and op != "hello":
            envelope["token"] = self.token
        frame = encode({**envelope, **fields})
        if len(frame) > MAX_FRAME_BYTES:
            raise BridgeError(
                f"the {op!r} request is {len(frame)} bytes, over the protocol's {MAX_FRAME_BYTES}-byte "
                "message limit; pass large data as arrays, which travel in shared memory"
            )
        return frame

    def _transmit(self, socket: zmq.Socket, frame: bytes) -> None:
        try:
            socket.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            raise ServerDied(f"the server at {self.address} is not taking messages (send queue full)") from None

    def _await(self, channel: _Channel, request_id: int, op: str, epoch: int) -> dict:
        try:
            reply = self._await_reply(channel, request_id, op, epoch)
        except KeyboardInterrupt as interrupt:
            if op not in CANCELLABLE:
                raise
            # Ask the server to stop the Julia call, then wait for the call's own reply, which is
            # then CallInterrupted (or its result, had it just finished).
            self._send(channel.socket, next(self._ids), "cancel", {"request": request_id})
            reply = self._await_reply(channel, request_id, op, epoch, patience=INTERRUPT_PATIENCE)
            if reply is None:
                raise interrupt
        assert reply is not None
        return reply

    def _await_reply(self, channel: _Channel, request_id: int, op: str, epoch: int,
                     patience: Optional[float] = None) -> Optional[dict]:
        """The reply to ``request_id``; with ``patience``, None when none came within that many
        seconds."""
        sent = time.monotonic()
        while True:
            try:
                frame = channel.socket.recv()
            except zmq.Again:
                channel.check_handshake(self.address)
                self._check_alive(sent, op, epoch)
            else:
                self._last_heard = time.monotonic()
                try:
                    reply = decode(frame)
                except Exception as exc:
                    raise BridgeError(f"unreadable reply from {self.address}: {exc}") from exc
                if not isinstance(reply, dict):
                    raise BridgeError(f"reply from {self.address} is not a map: {reply!r:.200}")
                reply_id = reply.get("id")
                if reply_id == request_id and "ok" not in reply:
                    self._show_output(reply, op)  # an output message: the reply is still to come
                elif reply_id == request_id or reply_id is None:
                    # a nil id answers a request the server could not read; on this socket that is ours
                    return reply
                # anything else answers an abandoned or fire-and-forget request: dropped
                # Between output messages, which can come as often as the receive times out; not
                # whether the server lives: its reply may be waiting here after it exited.
                self._check_open(op, epoch)
            if patience is not None and time.monotonic() - sent > patience:
                return None

    def _check_open(self, op: str, epoch: int) -> None:
        if self._closed:
            raise BridgeError(f"the connection to {self.address} was closed while {op!r} was waiting")
        if self.epoch != epoch:
            raise ServerRestarted(
                f"the server at {self.address} restarted while {op!r} was waiting; "
                "its result is lost (this client has registered again)"
            )

    def _check_alive(self, sent: float, op: str, epoch: int) -> None:
        self._check_open(op, epoch)
        if self._server_alive is not None and not self._server_alive():
            raise ServerDied(f"the Julia server at {self.address} exited while {op!r} was waiting")
        silence = time.monotonic() - max(self._last_heard, sent)
        if silence > self.dead_after:
            raise ServerDied(f"the server at {self.address} has not answered for {silence:.1f} s (waiting for {op!r})")

    def _beat(self) -> None:
        # The period is re-read at least every BEAT_RECHECK seconds: the thread starts before
        # hello, whose granted TTL may be much shorter than the one requested, and sleeping a
        # quarter of the requested TTL would let the server expire this client first.
        last = time.monotonic()
        while not self._stop.wait(min(self.heartbeat_period, BEAT_RECHECK)):
            if time.monotonic() - last < self.heartbeat_period:
                continue
            last = time.monotonic()
            try:
                self.request("ping")
            except BridgeError:
                pass  # waiting requests judge liveness from _last_heard; keep pinging
            except Exception:
                _LOG.exception("heartbeat of %s failed; it keeps running", self.address)
