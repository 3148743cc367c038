"""Baseline peers in a second process: a pyzmq ROUTER echo and a pickle-over-pipe receiver."""

from __future__ import annotations

import multiprocessing as mp
import pickle
from pathlib import Path
from typing import Any

import msgpack
import zmq


def _router_echo(address: str, unpack: bool) -> None:
    """Reply to each DEALER message; with ``unpack``, decode the msgpack body first (one copy)."""
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.bind(address)
    while True:
        ident, body = sock.recv_multipart(copy=True)
        if body == b"stop":
            break
        reply = body
        if unpack:
            message = msgpack.unpackb(body)
            reply = msgpack.packb(len(message["buffers"]))
        sock.send_multipart([ident, reply])
    sock.close(linger=0)


class ZmqEcho:
    """A DEALER connected to a ROUTER in another process over ipc, as the bridge uses."""

    def __init__(self, address: str, unpack: bool = False) -> None:
        self._address = address
        self._process = mp.get_context("spawn").Process(target=_router_echo, args=(address, unpack), daemon=True)
        self._process.start()
        self._socket = zmq.Context.instance().socket(zmq.DEALER)
        self._socket.connect(address)

    def roundtrip(self, body: bytes) -> bytes:
        """Send one message and wait for its reply."""
        self._socket.send(body, copy=False)
        return self._socket.recv()

    def close(self) -> None:
        self._socket.send(b"stop")
        self._process.join(30)
        self._socket.close(linger=0)
        # the peer exits before libzmq's I/O thread removes the ipc socket file it bound
        if self._address.startswith("ipc://"):
            Path(self._address[len("ipc://"):]).unlink(missing_ok=True)


def _pipe_receiver(conn: Any) -> None:
    while True:
        obj = conn.recv()
        if obj is None:
            break
        conn.send(len(obj))


class PickleEcho:
    """Pickle protocol 5 over a multiprocessing pipe to another process, which replies a length."""

    def __init__(self) -> None:
        self._conn, child = mp.get_context("spawn").Pipe()
        self._process = mp.get_context("spawn").Process(target=_pipe_receiver, args=(child,), daemon=True)
        self._process.start()

    def roundtrip(self, obj: Any) -> int:
        """Pickle (protocol 5) ``obj`` across the pipe and wait for the reply."""
        self._conn.send_bytes(pickle.dumps(obj, protocol=5))
        return self._conn.recv()

    def close(self) -> None:
        self._conn.send(None)
        self._process.join(30)
