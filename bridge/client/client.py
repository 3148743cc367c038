"""The public API: ``Bridge`` (one client of a Julia server) and ``Handle`` (an array kept there)."""

from __future__ import annotations

import atexit
import os
import queue
import secrets
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import awkward as ak
import numpy as np

from bridge.base import BridgeError, JuliaError, ServerRestarted
from bridge.codec import PlacedArray, open_array, place_array
from bridge.shm import DEFAULT_LINGER, DEFAULT_RESERVE, Arena, collect_dead_segments, collect_dead_socket_dirs
from bridge.wire import PROTOCOL_VERSION, ArrayRef, FunctionRef, HandleRef, from_wire, segment_pid, to_wire

from .address import check_reachable
from .julia_function import JuliaFunction
from .julia_output import show_output
from .keys import load_client_keys
from .launcher import ServerProcess, spawn_server
from .leases import ResultLeases
from .mappings import Mappings
from .namespace import JuliaName
from .transport import Connection


def _returned_argument(ref: ArrayRef, arguments: Sequence[PlacedArray]) -> ak.Array:
    """The argument whose buffers ``ref`` names: the server returns an argument in this client's
    memory by reference (docs/protocol.md), and the client answers with the array it placed."""
    for placed in arguments:
        if (placed.ref.form, placed.ref.length, placed.ref.buffers) == (ref.form, ref.length, ref.buffers):
            return placed.source
    raise BridgeError("the server answered an array in this client's own shared memory "
                      "that is not one of the call's arguments")


def _leases_named(reply: Any) -> Iterator[int]:
    """The result leases of the arrays in a reply's wire value, read as leniently as it may be
    malformed."""
    if isinstance(reply, list):
        for item in reply:
            yield from _leases_named(item)
    elif isinstance(reply, dict):
        lease = reply.get("lease")
        if reply.get("$") == "array" and isinstance(lease, int) and not isinstance(lease, bool):
            yield lease
        for item in reply.values():
            yield from _leases_named(item)


def _timeout_field(timeout: Optional[float]) -> dict[str, float]:
    """The request's ``timeout`` field (docs/protocol.md), checked."""
    if timeout is None:
        return {}
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return {"timeout": float(timeout)}


def _weakly(method: Callable[..., Any], gone: Any) -> Callable[..., Any]:
    """``method`` without keeping its object alive: ``gone`` once the object is garbage."""
    reference = weakref.WeakMethod(method)

    def call(*args: Any) -> Any:
        bound = reference()
        return gone if bound is None else bound(*args)

    return call


def _this_epoch(dropped: queue.SimpleQueue[tuple[int, int]], epoch: int) -> list[int]:
    """The ids queued in ``dropped`` by finalizers, of those made in ``epoch``: the server forgot
    the others when it restarted."""
    ids = []
    while True:
        try:
            item_id, item_epoch = dropped.get_nowait()
        except queue.Empty:
            return ids
        if item_epoch == epoch:
            ids.append(item_id)


def _end_session_in_background(*session: Any) -> None:
    try:
        threading.Thread(target=_end_session, args=session, name="akb-end-session", daemon=True).start()
    except RuntimeError:   # the interpreter is shutting down: no new threads, and no one else runs
        _end_session(*session)


def _close_if_alive(bridge: weakref.ref[Bridge]) -> None:
    """At interpreter exit: close the Bridge if it is still open."""
    alive = bridge()
    if alive is not None:
        alive.close()


def _end_session(connection: Optional[Connection], leases: ResultLeases, arena: Arena,
                 results: Mappings, server: Optional[ServerProcess]) -> None:
    """Say ``bye``, close the connection, unlink and unmap the shared memory, stop a private
    server. It holds no reference to the Bridge, so that it can run when the Bridge is garbage."""
    if connection is not None:
        if connection.responsive():
            connection.stop_heartbeat()
            try:
                connection.request("bye")
            except BridgeError:
                pass  # the server is gone or already forgot this client: nothing left to tell it
        connection.close()
    leases.forget()
    arena.close()  # after the bye: the server has dropped its mappings of our chunks
    results.close()
    if server is not None:
        server.stop()


class Handle:
    """An array placed in shared memory once by ``Bridge.send`` and kept by the server.

    Pass it to ``Bridge.call`` instead of the array. ``drop()`` frees it on both sides; a handle
    that is garbage-collected is dropped at the bridge's next message. A handle does not survive
    a server restart: after the bridge reconnects it counts as dropped.
    """

    def __init__(self, bridge: Bridge, handle_id: int, epoch: int) -> None:
        self.id = handle_id
        self._bridge = bridge
        self._epoch = epoch  # the connection's epoch (registration) the handle belongs to
        # a finalizer may run in any thread at any allocation: it only enqueues the id (and epoch,
        # as a later registration may reuse the id)
        self._finalizer = weakref.finalize(self, bridge._dropped.put, (handle_id, epoch))
        self._finalizer.atexit = False  # Bridge.close (also at exit) frees every handle

    def __repr__(self) -> str:
        return f"Handle(id={self.id}{', dropped' if self.dropped else ''})"

    @property
    def dropped(self) -> bool:
        """Whether the handle was dropped (or its bridge closed)."""
        return not self._finalizer.alive or self._bridge.closed or self.stale

    @property
    def stale(self) -> bool:
        """Whether the handle was sent to a server that has since restarted (or forgotten this client)."""
        return self._epoch != self._bridge._epoch()

    def drop(self) -> None:
        """Tell the server to forget the array and free its shared memory; idempotent."""
        if self._finalizer.detach() is not None and not self.stale:
            self._bridge._drop(self.id)


class Bridge:
    """A client of a Julia server, safe to use from several threads.

    Without ``address`` it starts a private server (``julia`` executable) and stops it at
    ``close()``; with an ``ipc://`` or ``tcp://`` address it connects to a running one. The
    server runs this client's Julia code in an executor process of its own (docs/architecture.md):
    ``threads`` is the number of threads it has for ``Threads.@threads`` (private servers;
    default 1), and ``project`` the Julia project it runs in, whose packages ``using`` finds
    (private servers; default the per-user environment ``~/.julia/environments/awkward-bridge``). ``lease_ttl`` is the lease time requested from the server (docs/ownership.md).
    ``shm_reserve`` is how many bytes of entirely free shared memory the bridge keeps for later
    arguments (bridge/shm/arena.py); free memory beyond it is kept ``shm_linger`` seconds for an
    argument of similar size, then given back. A large array passed again within that time
    reuses its chunk instead of having it created, reserved and mapped anew; raise
    ``shm_reserve`` above its size to keep the chunk for good.

    A ``tcp://`` server admits only clients with its CURVE keys: ``key_file`` is the key file
    its ``awkward-bridge serve --key-file`` wrote (default: $AWKWARD_BRIDGE_KEY_FILE, else the
    user's default key file, docs/security.md).

    When a served server restarts at the same address, the bridge registers again by itself
    (docs/farm.md): calls waiting at the restart raise ``ServerRestarted``, handles and ``eval``
    definitions from before are gone, later calls work.
    """

    def __init__(
        self,
        address: Optional[str] = None,
        *,
        threads: Optional[int] = None,
        julia: Optional[str] = None,
        project: Optional[Union[str, os.PathLike]] = None,
        lease_ttl: float = 30.0,
        shm_reserve: int = DEFAULT_RESERVE,
        shm_linger: float = DEFAULT_LINGER,
        key_file: Optional[Union[str, os.PathLike]] = None,
    ) -> None:
        curve = None
        if address is not None:
            if not address.startswith(("ipc://", "tcp://")):
                raise ValueError(f"address must start with ipc:// or tcp://, not {address!r}")
            if threads is not None or julia is not None or project is not None:
                raise ValueError("threads, julia and project apply only to a private server (no address); "
                                 "a served server has its own (awkward-bridge serve --threads, --project)")
            check_reachable(address)
            if address.startswith("tcp://"):
                curve = load_client_keys(key_file)
        elif key_file is not None:
            raise ValueError("key_file applies only to a tcp:// address")
        if not lease_ttl > 0:
            raise ValueError(f"lease_ttl must be positive, not {lease_ttl}")
        collect_dead_segments()  # regions of dead clients go at the next start-up (docs/ownership.md)
        collect_dead_socket_dirs()
        self.client_id = secrets.token_hex(16)
        self._closed = False
        self._lock = threading.Lock()
        self._leases = ResultLeases()
        self._handles: dict[int, PlacedArray] = {}
        self._arena = Arena(reserve=shm_reserve, linger=shm_linger)  # arguments and handles are carved from it
        self._results = Mappings()  # mappings of the server's result chunks
        self._lease_ttl = float(lease_ttl)
        self._dropped: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()  # (handle id, epoch)
        self._dropped_functions: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()  # (function id, epoch)
        self._server: Optional[ServerProcess] = None
        self._connection: Optional[Connection] = None
        try:
            if address is None:
                # one client: no spare executor (one is started again after a crash)
                self._server = spawn_server(threads=threads, julia=julia, lease_ttl=lease_ttl, spare_executors=0,
                                            project=project)
                address = self._server.address
            self._connection = Connection(
                address,
                self.client_id,
                lease_ttl=lease_ttl,
                # weakly: the heartbeat thread must not keep an abandoned Bridge alive
                outbox=_weakly(self._outbox, {}),
                server_alive=self._server.alive if self._server is not None else None,
                rehello=_weakly(self._rehello, None),
                on_unlinked=self._results.forget,
                on_output=show_output,
                curve=curve,
            )
            self.server_info = self._hello(lease_ttl)
        except BaseException:
            _end_session(self._connection, self._leases, self._arena, self._results, self._server)
            raise
        # The session ends at close(), at interpreter exit, or when the Bridge is garbage (`b =
        # Bridge()` run again in a notebook), whichever comes first: never a stray server.
        # Garbage collection may run in any thread at any allocation, holding any lock, so a
        # collected Bridge's session is ended from a thread of its own.
        self._finalizer = weakref.finalize(self, _end_session_in_background, self._connection, self._leases,
                                           self._arena, self._results, self._server)
        self._finalizer.atexit = False
        atexit.register(_close_if_alive, weakref.ref(self))

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"server pid {self.server_info['server_pid']}"
        return f"Bridge({self.address!r}, {state})"

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def address(self) -> str:
        """The server's ZeroMQ endpoint."""
        assert self._connection is not None
        return self._connection.address

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def eval(self, code: str, filename: Optional[str] = None, *, timeout: Optional[float] = None,
             show: bool = False) -> Any:
        """Evaluate Julia ``code`` in this client's module; the last value, or None, also for a
        value with no Python equivalent (a type, a module), which with ``show=True`` is instead a
        ``ShownValue``, the text Julia shows for it. Errors name ``filename`` if given;
        ``timeout`` is as for ``call``."""
        fields: dict[str, Any] = {"code": code} if filename is None else {"code": code, "filename": filename}
        if show:
            fields["show"] = True
        return self._result(self._request("eval", {**fields, **_timeout_field(timeout)}))

    def include(self, path: Union[str, os.PathLike], *, timeout: Optional[float] = None) -> Any:
        """Evaluate a Julia source file in this client's module (errors name the file)."""
        source = Path(path).resolve()
        return self.eval(source.read_text(encoding="utf-8"), filename=str(source), timeout=timeout)

    @property
    def jl(self) -> JuliaName:
        """Julia's names as attributes: ``bridge.jl.f(x, digits=2)`` is ``bridge.call("f", x,
        digits=2)``, ``bridge.jl.LinearAlgebra.norm(v)`` reaches into a module, ``_b`` stands
        for ``!`` (``bridge.jl.sort_b(v)``), and ``dir(bridge.jl)`` lists this client's names
        (bridge/client/namespace.py). Every keyword goes to Julia, ``timeout`` too."""
        return JuliaName(self, "")

    def call(self, name: str, /, *args: Any, timeout: Optional[float] = None, **kwargs: Any) -> Any:
        """Call Julia function ``name`` (optionally dotted) with ``args`` and keyword arguments
        ``kwargs``; its result as Python.

        Arrays (``ak.Array``, numpy arrays, lists) are copied into shared memory for the duration
        of the call; ``Handle``s, numbers, bools, strings, None, tuples and dicts go as they are.
        An array argument Julia returns unchanged comes back as the argument itself (as an
        ``ak.Array``), not as a copy; return ``copy(x)`` for one Julia wrote.

        Ctrl-C (``KeyboardInterrupt``) interrupts the Julia call, which then raises
        ``CallInterrupted``; so does running past ``timeout`` seconds (``CallTimedOut``). Julia
        code that does not stop within a second is killed with its executor, which is restarted
        without this client's definitions (the error says so). A crash in the Julia code raises
        ``ExecutorDied``. ``timeout`` is the bridge's own keyword; ``bridge.jl.name(...)`` passes
        one named ``timeout`` to Julia.
        """
        return self._call(name, args, kwargs, timeout)

    def _call(self, fn: Union[str, JuliaFunction], args: Sequence[Any], kwargs: dict[str, Any],
              timeout: Optional[float]) -> Any:
        self._ensure_open()
        placed: list[PlacedArray] = []
        server_done = True  # whether the server is done reading the arguments' blocks
        try:
            epoch = self._epoch()
            in_epoch: list[object] = []   # handles and functions: their ids mean nothing in another
            fields: dict[str, Any] = {
                "fn": fn if isinstance(fn, str) else to_wire(self._argument(fn, placed, in_epoch)),
                "args": [to_wire(self._argument(arg, placed, in_epoch)) for arg in args],
            }
            if kwargs:
                fields["kwargs"] = {key: to_wire(self._argument(value, placed, in_epoch)) for key, value in kwargs.items()}
            # ids are valid only in the registration (epoch) that made them: never re-send them
            pinned = {"retry": False, "epoch": epoch} if in_epoch else {}
            server_done = False
            result = self._request("call", {**fields, **_timeout_field(timeout)}, **pinned)
            server_done = True
        except JuliaError:
            server_done = True  # an error reply: the call has ended too
            raise
        finally:
            # The server's lease on the arguments ends with the reply. Without one (the server
            # died, hung or forgot us, or we were interrupted) it may still be reading them, so
            # their blocks stay allocated, never reused, until the arena closes.
            if server_done:
                for array in placed:
                    self._free(array)
        return self._result(result, placed)

    def send(self, array: Any) -> Handle:
        """Place ``array`` in shared memory once and have the server keep it; reuse it in calls."""
        self._ensure_open()
        placed = place_array(array, self._arena)
        try:
            epoch, result = self._request_in_epoch("send", {"array": to_wire(placed.ref)})
            handle_ref = from_wire(result)
            if not isinstance(handle_ref, HandleRef):
                raise BridgeError(f"send answered {handle_ref!r:.80} instead of a handle")
            with self._lock:
                if handle_ref.id in self._handles:
                    raise BridgeError(f"the server gave out handle {handle_ref.id} twice")
                self._handles[handle_ref.id] = placed
        except BaseException as error:
            # after an error reply the server kept nothing; otherwise it may hold the blocks
            # (as an unknown handle), so they are never reused before the arena closes
            if isinstance(error, JuliaError):
                self._free(placed)
            raise
        return Handle(self, handle_ref.id, epoch)

    def ping(self) -> float:
        """Round-trip time of one ``ping``, in seconds."""
        start = time.perf_counter()
        self._request("ping")
        return time.perf_counter() - start

    def stats(self) -> dict:
        """The server's counters (docs/protocol.md, section 6)."""
        stats = self._request("stats")
        if not isinstance(stats, dict):
            raise BridgeError(f"stats answered {stats!r:.80} instead of a map")
        return stats

    def close(self) -> None:
        """Say ``bye``, free every handle, stop a private server; idempotent. A Bridge that is
        garbage-collected, or alive at interpreter exit, is closed the same way."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._handles = {}   # their blocks go with the arena
        session = self._finalizer.detach()
        if session is not None:
            _end_session(*session[2])

    def _hello(self, lease_ttl: float) -> dict:
        assert self._connection is not None
        # a second hello (a reconnect) shows the token of the registration it continues
        token = {"token": self._connection.token} if self._connection.token is not None else {}
        info = self._request("hello", {"pid": os.getpid(), "lease_ttl": float(lease_ttl), **token})
        granted = info.get("lease_ttl") if isinstance(info, dict) else None
        if not isinstance(granted, (int, float)) or isinstance(granted, bool) or not granted > 0:
            raise BridgeError(f"hello answered {info!r:.200}, without a positive lease_ttl")
        if info.get("protocol") != PROTOCOL_VERSION:
            raise BridgeError(f"the server speaks protocol {info.get('protocol')!r}, this client {PROTOCOL_VERSION}")
        if not isinstance(info.get("token"), str):
            raise BridgeError(f"hello answered {info!r:.200}, without a token")
        self._connection.lease_ttl = float(granted)
        self._connection.token = info.pop("token")   # a secret: not kept in server_info
        return info

    def _request(self, op: str, fields: Optional[dict[str, Any]] = None, *, retry: bool = True,
                 epoch: Optional[int] = None) -> Any:
        """The result of request ``op`` with the wire ``fields`` (transport.Connection.request)."""
        return self._request_in_epoch(op, fields, retry=retry, epoch=epoch)[1]

    def _request_in_epoch(self, op: str, fields: Optional[dict[str, Any]] = None, *, retry: bool = True,
                          epoch: Optional[int] = None) -> tuple[int, Any]:
        """The epoch the request was answered in, and its result."""
        self._ensure_open()
        return self._connection.request_in_epoch(op, fields, retry=retry, epoch=epoch)

    def _ensure_open(self) -> None:
        """Raise ``BridgeError`` once the bridge is closed (before its arena is touched)."""
        if self._connection is None or self._closed:
            raise BridgeError("this Bridge is closed")

    def _epoch(self) -> int:
        assert self._connection is not None
        return self._connection.epoch

    def _rehello(self) -> None:
        """Register with a server that forgot this client; what it held for us is gone."""
        self.server_info = self._hello(self._lease_ttl)
        self._leases.forget()
        with self._lock:
            # Not freed: a call of the forgotten registration may still read them, so their
            # blocks are never reused before the arena closes.
            self._handles = {}

    def _argument(self, value: Any, placed: list[PlacedArray], in_epoch: list[object]) -> Any:
        """``value`` with its arrays placed in shared memory (appended to ``placed``), and handles
        and Julia functions as refs (appended to ``in_epoch``)."""
        if isinstance(value, JuliaFunction):
            in_epoch.append(value)
            return value.checked_ref(self)
        if isinstance(value, Handle):
            if value._bridge is not self:
                raise BridgeError(f"{value!r} belongs to another Bridge")
            if value.stale:
                raise ServerRestarted(f"{value!r} was sent to the server before it restarted; send the array again")
            if value.dropped:
                raise BridgeError(f"{value!r} was dropped")
            in_epoch.append(value)
            return HandleRef(value.id)
        if isinstance(value, (ak.Array, np.ndarray, list)):
            array = place_array(value, self._arena)
            placed.append(array)
            return array.ref
        if isinstance(value, tuple):
            return tuple(self._argument(item, placed, in_epoch) for item in value)
        if isinstance(value, dict):
            return {key: self._argument(item, placed, in_epoch) for key, item in value.items()}
        return value

    def _result(self, reply: Any, arguments: Sequence[PlacedArray] = ()) -> Any:
        """A reply's value as Python (``from_wire``, then ``_open``). A value that cannot be read
        raises ``BridgeError`` and gives back at once the result leases it names, which no
        ``ak.Array`` will hold (a lease released twice is reported once)."""
        try:
            return self._open(from_wire(reply), arguments)
        except BridgeError:
            try:
                leases = list(_leases_named(reply))
            except RecursionError:   # nested too deeply to read: the server ends its leases with the client
                leases = []
            for lease in leases:
                self._leases.hold(lease)()
            raise

    def _open(self, value: Any, arguments: Sequence[PlacedArray] = ()) -> Any:
        """A ``from_wire`` value with its arrays opened; each array's lease is held until it is
        garbage. An array named by reference to this client's own memory is one of the call's
        ``arguments`` returned unchanged, and is answered with that argument."""
        if isinstance(value, ArrayRef):
            if value.lease is None and any(segment_pid(b.segment) == os.getpid() for b in value.buffers.values()):
                return _returned_argument(value, arguments)
            on_release = self._leases.hold(value.lease) if value.lease is not None else None
            return open_array(value, on_release=on_release, attach=self._results.attach)
        if isinstance(value, HandleRef):
            raise BridgeError(f"the server answered a handle ({value.id}) where a value was expected")
        if isinstance(value, FunctionRef):
            return JuliaFunction(self, value, self._epoch())
        if isinstance(value, list):
            return [self._open(item, arguments) for item in value]
        if isinstance(value, tuple):
            return tuple(self._open(item, arguments) for item in value)
        if isinstance(value, dict):
            return {key: self._open(item, arguments) for key, item in value.items()}
        return value

    def _outbox(self) -> dict[str, dict[str, Any]]:
        """The releases and drops finalizers noticed since the last request, for the next to carry."""
        carried: dict[str, dict[str, Any]] = {}
        leases = self._leases.take_released()
        unlinked = self._arena.take_unlinked()
        if leases or unlinked:
            # segments: arena chunks unlinked here, so the server drops its cached mappings now
            carried["release"] = {"leases": leases, "segments": unlinked} if unlinked else {"leases": leases}
        dropped, functions = self._take_dropped(), _this_epoch(self._dropped_functions, self._epoch())
        if dropped or functions:
            carried["drop"] = {"handles": dropped, "functions": functions} if functions else {"handles": dropped}
        return carried

    def _take_dropped(self) -> list[int]:
        ids = []
        for handle_id in _this_epoch(self._dropped, self._epoch()):
            with self._lock:
                array = self._handles.pop(handle_id, None)
            if array is not None:
                # the server ended its use of the handle's blocks with the drop this message posts
                self._free(array)
                ids.append(handle_id)
        return ids

    def _drop(self, handle_id: int) -> None:
        with self._lock:
            array = self._handles.pop(handle_id, None)
        if array is None:
            return  # the bridge was closed, which freed it
        try:
            if not self._closed:
                self._request("drop", {"handles": [handle_id]})
        finally:
            self._free(array)

    def _free(self, placed: PlacedArray) -> None:
        """Give the blocks ``place_array`` filled back to the arena; the server is done with them."""
        for block in placed.blocks:
            self._arena.free(block)


