"""Scale-out on Dask: one bridge server per node, shared by that node's Dask workers.

``BridgePlugin`` attaches each worker to its node's server: at a given ``address``, or (without
one) the node server at a well-known ipc socket in the user's runtime directory, started by the
first worker that finds none. ``map_partitions`` maps a Julia function over the partitions of a
``dask_awkward`` array. docs/farm.md shows how this maps onto a multi-node cluster.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import awkward as ak
import dask_awkward as dak
from dask.base import is_dask_collection
from distributed import WorkerPlugin, get_worker

from .client import Bridge
from .base import BridgeError, ServerDied
from .client.launcher import READY_PREFIX
from .client.namespace import JuliaName
from .shm import owner_is_alive

PLUGIN_NAME = "awkward-bridge"
_SOCKET = "node.sock"
_PIDFILE = "node.pid"     # the pid of the `awkward-bridge serve` process, once it is ready
_LOCK = "node.lock"       # held exclusively while a worker checks for, or starts, the server
_USERS = "node.users"     # every attached worker holds a shared lock; the last one stops the server
_LOG = "node.log"


def node_directory() -> Path:
    """Where the node server's socket, pid file and log live: ``$XDG_RUNTIME_DIR/awkward-bridge``,
    else ``/tmp/awkward-bridge-<uid>`` (mode 0700, so only this user can connect)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "awkward-bridge" if runtime else Path(f"/tmp/awkward-bridge-{os.getuid()}")


class NodeServer:
    """This process's share of the node's bridge server, started here if none was running.

    While attached, the process holds a shared lock on ``node.users``; ``detach()`` drops it and,
    if no other process holds one (lock files are released by the kernel when a process dies),
    stops the server with SIGTERM, which shuts it down gracefully.
    """

    def __init__(
        self,
        directory: Optional[Union[str, os.PathLike]] = None,
        *,
        threads: Optional[int] = None,
        julia: Optional[str] = None,
        lease_ttl: float = 30.0,
        ready_timeout: float = 300.0,
    ) -> None:
        self.directory = Path(directory) if directory is not None else node_directory()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.address = f"ipc://{self.directory / _SOCKET}"
        self._users = open(self.directory / _USERS, "a")
        try:
            with open(self.directory / _LOCK, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                # under the start lock, so that a detaching last user cannot stop the server
                # between our check and our shared lock
                fcntl.flock(self._users, fcntl.LOCK_SH)
                if self._running_pid() is None:
                    self._start(threads, julia, lease_ttl, ready_timeout)
        except BaseException:
            self._users.close()
            raise

    def detach(self) -> None:
        """Stop using the server; the last process to detach stops it."""
        if self._users.closed:
            return
        with open(self.directory / _LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            fcntl.flock(self._users, fcntl.LOCK_UN)
            try:
                fcntl.flock(self._users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another worker still uses it
            finally:
                self._users.close()
            pid = self._running_pid()
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
                _wait_for_exit(pid, timeout=60.0)
            (self.directory / _PIDFILE).unlink(missing_ok=True)

    def _running_pid(self) -> Optional[int]:
        try:
            pid = int((self.directory / _PIDFILE).read_text())
        except (FileNotFoundError, ValueError):
            return None
        # a stale pid file may name a pid since reused by an unrelated process: never use, or
        # signal, a process that is not this directory's `awkward-bridge serve`
        return pid if owner_is_alive(pid) and self._serves_here(pid) else None

    def _serves_here(self, pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                arguments = cmdline.read().split(b"\0")
        except OSError:
            return False
        return b"bridge.cli" in arguments and self.address.encode() in arguments

    def _start(self, threads: Optional[int], julia: Optional[str], lease_ttl: float, ready_timeout: float) -> None:
        log_path = self.directory / _LOG
        command = [sys.executable, "-m", "bridge.cli", "serve", "--address", self.address, "--lease-ttl", repr(float(lease_ttl))]
        if threads is not None:
            command += ["--executor-threads", str(threads)]
        if julia is not None:
            command += ["--julia", julia]
        with open(log_path, "w") as log:
            # its own session: the server outlives the worker that started it, and its signals
            server = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + ready_timeout
        while READY_PREFIX not in log_path.read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                if server.poll() is None:
                    server.kill()
                    server.wait()
                raise ServerDied(f"the node's bridge server did not start; its log:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.1)
        (self.directory / _PIDFILE).write_text(str(server.pid))


def _wait_for_exit(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while owner_is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


class BridgePlugin(WorkerPlugin):
    """Attaches each Dask worker to its node's bridge server; register it with
    ``client.register_plugin(BridgePlugin())``.

    With ``address`` the workers connect to a server already running there (``awkward-bridge
    serve``); without, to the node server in ``directory`` (default ``node_directory()``),
    started with ``threads`` (each executor's threads), ``julia`` and ``lease_ttl`` by the first
    worker that finds none.
    ``include`` files are evaluated into each worker's client module, so every worker has the
    kernels ``map_partitions`` calls. A ``tcp://`` address needs the server's ``key_file``, a path
    that must hold on every node (docs/security.md); the node server is ipc, private to its user.
    """

    name = PLUGIN_NAME

    def __init__(
        self,
        address: Optional[str] = None,
        *,
        directory: Optional[Union[str, os.PathLike]] = None,
        include: Sequence[Union[str, os.PathLike]] = (),
        threads: Optional[int] = None,
        julia: Optional[str] = None,
        lease_ttl: float = 30.0,
        key_file: Optional[Union[str, os.PathLike]] = None,
    ) -> None:
        self.address = address
        self.key_file = None if key_file is None else str(key_file)
        self.directory = None if directory is None else str(directory)
        # the files' text travels with the plugin: workers on other nodes may not see the paths
        self.sources = [(str(Path(path).resolve()), Path(path).read_text(encoding="utf-8")) for path in include]
        self.threads = threads
        self.julia = julia
        self.lease_ttl = lease_ttl
        self.bridge: Optional[Bridge] = None
        self._node: Optional[NodeServer] = None

    def setup(self, worker: Any) -> None:
        """Connect this worker (starting the node server if needed) and load the include files."""
        address = self.address
        if address is None:
            self._node = NodeServer(self.directory, threads=self.threads, julia=self.julia, lease_ttl=self.lease_ttl)
            address = self._node.address
        tcp = address.startswith("tcp://")
        self.bridge = Bridge(address, lease_ttl=self.lease_ttl, key_file=self.key_file if tcp else None)
        for filename, code in self.sources:
            self.bridge.eval(code, filename=filename)

    def teardown(self, worker: Any) -> None:
        """Close this worker's bridge; the last worker of a node stops the node server."""
        if self.bridge is not None:
            self.bridge.close()
        if self._node is not None:
            self._node.detach()

    def __getstate__(self) -> dict:
        # only the configuration travels to the workers
        return {**self.__dict__, "bridge": None, "_node": None}


def worker_bridge() -> Bridge:
    """The ``Bridge`` of the Dask worker this runs in (set up by ``BridgePlugin``)."""
    try:
        worker = get_worker()
    except ValueError:
        raise BridgeError("bridge.dask runs Julia in Dask workers: use a distributed Client") from None
    plugin = worker.plugins.get(PLUGIN_NAME)
    if plugin is None or plugin.bridge is None:
        raise BridgeError("this Dask worker has no bridge: call client.register_plugin(bridge.dask.BridgePlugin()) first")
    return plugin.bridge


def column_paths(array: ak.Array, columns: Sequence[str]) -> list[tuple[str, ...]]:
    """Each column as a path of field names: ``"Muon.pt"`` is ``("Muon", "pt")``, unless the
    array has a top-level field of that very name."""
    fields = set(ak.fields(array))
    return [(column,) if column in fields else tuple(column.split(".")) for column in columns]


def select_columns(array: ak.Array, paths: Sequence[tuple[str, ...]]) -> ak.Array:
    """``array`` with only the fields that ``paths`` name, at any depth: ``("Muon", "pt")`` keeps
    the ``pt`` of the ``Muon`` records and drops their other fields; ``("Jet",)`` keeps every
    field of ``Jet``. The structure (lists, records) is unchanged. A path naming no field is a
    ``ValueError`` that lists the fields there are."""
    if any(not path for path in paths):
        return array
    fields = ak.fields(array)
    for path in paths:
        if path[0] not in fields:
            raise ValueError(f"column {'.'.join(path)!r}: no field {path[0]!r} here; the fields are {fields}")
    for field in fields:
        rest = [path[1:] for path in paths if path[0] == field]
        if not rest:
            array = ak.without_field(array, field)
        elif all(rest):   # only some fields of this one
            array = ak.with_field(array, select_columns(array[field], rest), field)
    return array


class _JuliaPartition:
    """The per-partition function: ``julia_fn`` on a real partition, metadata on a typetracer."""

    def __init__(self, julia_fn: str, paths: Optional[list[tuple[str, ...]]], meta: Optional[ak.Array],
                 args: tuple, kwargs: dict[str, Any]) -> None:
        self.julia_fn = julia_fn
        self.paths = paths
        self.meta = meta
        self.args = args
        self.kwargs = kwargs

    def __call__(self, partition: ak.Array) -> ak.Array:
        if self.paths is not None:
            # with column projection the other fields are placeholders, which cannot be sent
            partition = select_columns(partition, self.paths)
        if ak.backend(partition) == "typetracer":
            return self._trace(partition)
        # every keyword is Julia's (`timeout` too), as with bridge.jl
        return JuliaName(worker_bridge(), self.julia_fn)(partition, *self.args, **self.kwargs)

    def _trace(self, partition: ak.Array) -> ak.Array:
        # Julia cannot see a typetracer: say which buffers the kernel reads (those of `columns`,
        # or all), and answer with the declared result type
        ak.typetracer.touch_data(partition)
        assert self.meta is not None
        return ak.Array(self.meta.layout.to_typetracer(forget_length=True), behavior=self.meta.behavior)


def map_partitions(
    julia_fn: str,
    array: dak.Array,
    *args: Any,
    meta: Union[ak.Array, dak.Array],
    columns: Optional[Sequence[str]] = None,
    label: Optional[str] = None,
    **kwargs: Any,
) -> dak.Array:
    """Call Julia function ``julia_fn(partition, args...; kwargs...)`` on every partition of
    ``array`` in the Dask workers.

    ``args`` and ``kwargs`` are the same for every partition: numbers, strings, small arrays
    (a cut value, a list of bin edges), sent with each call; ``meta``, ``columns`` and ``label``
    are this function's own. Julia cannot run on dask-awkward's metadata-only typetracer pass,
    so ``meta`` gives the result's type (an example array, e.g. ``ak.Array(np.zeros(0))``, or a
    typetracer), and ``columns`` the fields the kernel reads, nested ones as dotted paths
    (``"Muon.pt"``): only those are read from disk, and the kernel gets the array with just
    those fields, its structure unchanged. Without ``columns`` it gets every field.
    """
    if isinstance(meta, dak.Array):
        meta = meta._meta
    if not isinstance(meta, ak.Array):
        raise TypeError(f"meta must be an awkward Array giving the result's type, not {type(meta).__name__}")
    for value in (*args, *kwargs.values()):
        if is_dask_collection(value):
            raise TypeError("extra arguments of map_partitions are sent as they are with every call: plain "
                            "values (numbers, strings, small arrays), not Dask collections")
    paths = None
    if columns is not None:
        paths = column_paths(array._meta, columns)
        select_columns(array._meta, paths)   # a column that names no field fails here, not in a worker
    return dak.map_partitions(
        _JuliaPartition(julia_fn, paths, meta, args, kwargs),
        array,
        meta=ak.Array(meta.layout.to_typetracer(forget_length=True), behavior=meta.behavior),
        label=label or f"julia-{julia_fn}",
    )
