"""Finding Julia and libzmq, and running the Julia server as a child process."""

from __future__ import annotations

import collections
import functools
import glob
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from bridge.base import JuliaNotFound, ServerDied

from .keys import default_key_file

READY_PREFIX = "AWKWARD_BRIDGE_READY "
_LOG = logging.getLogger("bridge.server")
_TAIL_LINES = 40

_INSTALL_HINT = (
    "Install Julia >= 1.5 with juliaup (`curl -fsSL https://install.julialang.org | sh`), from "
    "https://julialang.org/downloads, or from your distribution, so that `julia` is on PATH; or "
    "point AWKWARD_BRIDGE_JULIA at a julia executable; or `pip install 'awkward-bridge[julia]'`, "
    "whose juliacall installs one (juliapkg) the first time it is used. In a checkout of "
    "awkward-bridge on Debian/Ubuntu, scripts/install-julia.sh installs one."
)


def find_julia(julia: Optional[str] = None) -> str:
    """Path of the julia executable: ``julia``, else $AWKWARD_BRIDGE_JULIA, else PATH, else juliapkg."""
    for source, candidate in (("argument", julia), ("AWKWARD_BRIDGE_JULIA", os.environ.get("AWKWARD_BRIDGE_JULIA"))):
        if candidate:
            found = shutil.which(candidate)
            if found is None:
                raise JuliaNotFound(f"julia from {source} ({candidate!r}) is not an executable. {_INSTALL_HINT}")
            return found
    found = shutil.which("julia")
    if found is not None:
        return found
    try:
        import juliapkg  # the Julia that juliacall manages, if the user has it
    except ImportError:
        raise JuliaNotFound(f"no julia on PATH. {_INSTALL_HINT}") from None
    return juliapkg.executable()


def find_libzmq() -> str:
    """Path (or soname) of libzmq for the server: $AWKWARD_BRIDGE_LIBZMQ, else pyzmq's bundled copy."""
    configured = os.environ.get("AWKWARD_BRIDGE_LIBZMQ")
    if configured:
        return configured
    import zmq

    bundled = sorted(glob.glob(str(Path(zmq.__file__).resolve().parent.parent / "pyzmq.libs" / "libzmq*.so*")))
    return bundled[0] if bundled else "libzmq.so.5"


def server_dir() -> Path:
    """The Julia package directory: ``bridge/julia_server`` in a wheel, else ``<repo>/julia_server``."""
    package = Path(__file__).resolve().parent.parent  # bridge/
    packaged = package / "julia_server"
    if (packaged / "Project.toml").is_file():
        return packaged
    return package.parent / "julia_server"


@functools.lru_cache(maxsize=None)
def julia_version(julia: str) -> tuple[int, int]:
    """The (major, minor) version of the Julia executable ``julia``."""
    out = subprocess.run([julia, "--version"], capture_output=True, text=True, timeout=60).stdout
    match = re.search(r"(\d+)\.(\d+)", out)
    if match is None:
        raise JuliaNotFound(f"{julia} --version printed {out!r}, not a Julia version. {_INSTALL_HINT}")
    return int(match.group(1)), int(match.group(2))


def server_threads_flag(julia: str) -> str:
    """The server's own threads: its socket loop and one for background work. From Julia 1.9 on
    the loop gets an interactive thread of its own (``1,1``); before, ``2`` threads."""
    return "--threads=1,1" if julia_version(julia) >= (1, 9) else "--threads=2"


def server_command(
    *,
    address: str,
    threads: Optional[int] = None,
    julia: Optional[str] = None,
    lease_ttl: float = 30.0,
    includes: Iterable[str] = (),
    exit_on_stdin_eof: bool = False,
    log_calls: bool = False,
    log_values: bool = False,
    key_file: Optional[str] = None,
    executor_memory: Optional[int] = None,
    client_shm_quota: Optional[int] = None,
    spare_executors: Optional[int] = None,
    project: Optional[Union[str, os.PathLike]] = None,
) -> list[str]:
    """The command line that runs the Julia server at ``address``.

    User code runs in executor processes the server starts, one per client (docs/architecture.md):
    ``threads`` is each executor's thread count (for ``Threads.@threads``; default 1),
    ``executor_memory`` the bytes each may use before it is killed (default
    ``default_executor_memory()``; 0: no limit), ``spare_executors`` how many the server keeps
    started for new clients (default 1), ``client_shm_quota`` the shared memory one client's
    handles, arguments and results may hold (default: no quota). ``project`` is the Julia project
    user code runs in, whose packages its ``using`` finds (default: the per-user environment
    ``~/.julia/environments/awkward-bridge``, never the installed package's folder).
    ``log_calls`` makes the server log one line per ``eval``, ``call`` and ``send``;
    ``log_values`` puts error messages, which carry users' values, in its log. A ``tcp://``
    server authenticates its clients with the CURVE keys of ``key_file`` (default
    ``default_key_file()``), which it creates when missing (docs/security.md).
    """
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, not {threads}")
    for name, value in (("executor_memory", executor_memory), ("client_shm_quota", client_shm_quota),
                        ("spare_executors", spare_executors)):
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0, not {value}")
    if executor_memory is None:
        executor_memory = default_executor_memory()
    executable = find_julia(julia)
    package = server_dir()
    command = [
        executable,
        "--startup-file=no",
        server_threads_flag(executable),
        f"--project={package}",
        str(package / "bin" / "serve.jl"),
        "--address", address,
        "--lease-ttl", repr(float(lease_ttl)),
        "--libzmq", find_libzmq(),
    ]
    for flag, value in (("--executor-threads", threads), ("--executor-memory", executor_memory),
                        ("--client-shm-quota", client_shm_quota), ("--spare-executors", spare_executors)):
        if value is not None:
            command += [flag, str(int(value))]
    for path in includes:
        command += ["--include", str(Path(path).resolve())]
    if project is not None:
        command += ["--project", str(Path(project).expanduser().resolve())]
    if exit_on_stdin_eof:
        command.append("--exit-on-stdin-eof")
    if log_calls:
        command.append("--log-calls")
    if log_values:
        command.append("--log-values")
    if address.startswith("tcp://"):
        command += ["--key-file", str(Path(key_file) if key_file is not None else default_key_file())]
    return command


class ServerProcess:
    """A running Julia server child; ``stop()`` ends it and removes its private directory."""

    def __init__(self, process: subprocess.Popen, private_dir: Optional[str], key_file: Optional[str] = None) -> None:
        self.process = process
        self.address = ""
        self.key_file = key_file  # a tcp server's CURVE key file, which its clients read
        self._private_dir = private_dir
        self._tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._ready = threading.Event()
        self._readers = [
            threading.Thread(target=self._read_stdout, name=f"akb-server-{process.pid}-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name=f"akb-server-{process.pid}-stderr", daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self.process.poll() is None

    def stderr_tail(self) -> str:
        """The last lines the server wrote to stderr."""
        return "".join(self._tail)

    def wait_ready(self, timeout: float) -> str:
        """Wait for the READY line; returns the address the server bound."""
        if not self._ready.wait(timeout):
            self.stop(timeout=1.0)
            raise ServerDied(f"the Julia server did not become ready within {timeout:.0f} s; stderr:\n{self.stderr_tail()}")
        if not self.address:
            code = self.stop()
            raise ServerDied(f"the Julia server exited with code {code} before it was ready; stderr:\n{self.stderr_tail()}")
        return self.address

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """Close stdin (the server then exits by itself), escalate to SIGTERM and SIGKILL if needed."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
        except OSError:
            pass  # the server already closed its end
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(timeout / 2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._join_readers()
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)
            self._private_dir = None
        return self.process.returncode

    def _join_readers(self) -> None:
        for reader in self._readers:
            if reader is not threading.current_thread():
                reader.join(timeout=5.0)

    def _read_stdout(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        try:
            for line in stream:
                if not self._ready.is_set() and line.startswith(READY_PREFIX):
                    self.address = line[len(READY_PREFIX):].strip()
                    self._ready.set()
                else:
                    _LOG.info("julia[%d] %s", self.process.pid, line.rstrip("\n"))
        finally:
            # EOF before READY: wake the waiter, which finds no address
            self._ready.set()
            stream.close()

    def _read_stderr(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        with stream:
            for line in stream:
                self._tail.append(line)
                _LOG.info("julia[%d] %s", self.process.pid, line.rstrip("\n"))


# Where a container's memory limit shows inside it: cgroup v2, then v1 ("max", or a huge
# number, where there is none).
CGROUP_MEMORY_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def available_memory() -> int:
    """Bytes of memory this process's processes may use together: the machine's, or its
    container's (cgroup) limit where that is smaller; 0 where neither is known."""
    sizes = []
    try:
        sizes.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        pass
    for path in CGROUP_MEMORY_LIMITS:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            sizes.append(int(text))
    return min(sizes, default=0)


def default_executor_memory() -> int:
    """The memory limit each executor gets unless told otherwise: 80% of the memory available
    (the container's limit inside a container), so that one client's runaway allocation ends
    its own executor before the kernel's out-of-memory killer picks a process; 0 (no limit)
    where the size is unknown."""
    return int(available_memory() * 0.8)


def server_environment() -> dict[str, str]:
    """The environment a server and its executors run in: this process's, with idle Julia
    threads set to sleep at once.

    An idle Julia thread spins before it sleeps, competing with clients for the cores. Julia
    1.6 and later read ``JULIA_THREAD_SLEEP_THRESHOLD``; Julia 1.5 ignores it and spins for 4 ms.
    A value the user set is kept.
    """
    env = dict(os.environ)
    env.setdefault("JULIA_THREAD_SLEEP_THRESHOLD", "0")
    return env


def spawn_server(
    *,
    address: Optional[str] = None,
    threads: Optional[int] = None,
    julia: Optional[str] = None,
    lease_ttl: float = 30.0,
    includes: Sequence[str] = (),
    ready_timeout: float = 300.0,
    executor_memory: Optional[int] = None,
    client_shm_quota: Optional[int] = None,
    spare_executors: Optional[int] = None,
    key_file: Optional[str] = None,
    project: Optional[Union[str, os.PathLike]] = None,
) -> ServerProcess:
    """Start a Julia server and wait until it listens; without ``address`` it gets a private ipc
    socket. The executor options, ``project`` and ``key_file`` are those of ``server_command``."""
    private_dir = None
    if address is None:
        # mode 0700: only this user can connect; named after this process for `gc` (bridge/shm/gc.py)
        private_dir = tempfile.mkdtemp(prefix=f"akb-server-{os.getpid()}-")
        address = f"ipc://{private_dir}/socket"
    try:
        command = server_command(
            address=address, threads=threads, julia=julia, lease_ttl=lease_ttl,
            includes=includes, exit_on_stdin_eof=True, executor_memory=executor_memory,
            client_shm_quota=client_shm_quota, spare_executors=spare_executors, key_file=key_file,
            project=project,
        )
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=server_environment(),
            # Ctrl-C in a terminal or a notebook signals the whole process group: the server must
            # not take it for a stop (it stops when its stdin closes, at close or at our exit)
            start_new_session=True,
        )
    except BaseException:
        if private_dir is not None:
            shutil.rmtree(private_dir, ignore_errors=True)
        raise
    tcp_keys = str(key_file if key_file is not None else default_key_file()) if address.startswith("tcp://") else None
    server = ServerProcess(process, private_dir, tcp_keys)
    try:
        server.wait_ready(ready_timeout)
    except BaseException:   # Ctrl-C (a notebook's Stop) while Julia starts: no server left running
        server.stop(timeout=1.0)
        raise
    return server
