"""bridge.client.launcher: finding Julia and libzmq, and the server child's life, with stand-in executables."""

from __future__ import annotations

import os
import signal
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from bridge.client import launcher
from bridge.base import JuliaNotFound, ServerDied
from bridge.client.launcher import find_julia, find_libzmq, server_dir, spawn_server


# A stand-in Julia answers `--version` as Julia 1.5.3 (the launcher picks the server's thread
# flags by version), and otherwise runs `body`.
VERSION_ANSWER = '[ "$1" = --version ] && { echo "julia version 1.5.3"; exit 0; }\n'


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + VERSION_ANSWER + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


# Prints READY with the address it was given, records its arguments, then serves until stdin closes.
FAKE_SERVER = """
echo "$@" > "$(dirname "$0")/args"
while [ "$1" != "--address" ]; do shift; done
echo "some start-up noise"
echo "AWKWARD_BRIDGE_READY $2"
cat > /dev/null
"""


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Makes spawn_server's mkdtemp land in a directory the test can inspect."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(launcher.tempfile, "tempdir", str(root))
    return root


def test_find_julia_prefers_the_argument_then_the_environment(tmp_path, monkeypatch):
    first = _script(tmp_path / "julia-a", "exit 0\n")
    second = _script(tmp_path / "julia-b", "exit 0\n")
    monkeypatch.setenv("AWKWARD_BRIDGE_JULIA", second)
    assert find_julia(first) == first
    assert find_julia() == second


def test_find_julia_names_what_to_install(tmp_path, monkeypatch):
    monkeypatch.delenv("AWKWARD_BRIDGE_JULIA", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "juliapkg", None)  # makes the import fail
    with pytest.raises(JuliaNotFound, match="scripts/install-julia.sh") as caught:
        find_julia()
    assert "julialang.org" in str(caught.value)
    with pytest.raises(JuliaNotFound, match="no-such-julia"):
        find_julia(str(tmp_path / "no-such-julia"))


def test_find_libzmq(monkeypatch):
    monkeypatch.setenv("AWKWARD_BRIDGE_LIBZMQ", "/opt/libzmq.so")
    assert find_libzmq() == "/opt/libzmq.so"
    monkeypatch.delenv("AWKWARD_BRIDGE_LIBZMQ")
    found = find_libzmq()
    assert "libzmq" in Path(found).name
    assert found == "libzmq.so.5" or Path(found).is_file()


def test_server_dir_is_the_julia_package():
    assert (server_dir() / "Project.toml").read_text().startswith('name = "AwkwardBridge"')


def test_spawn_waits_for_ready_and_stop_closes_stdin(tmp_path, private_tmp):
    julia = _script(tmp_path / "julia", FAKE_SERVER)
    server = spawn_server(julia=julia, threads=3, lease_ttl=2.5, includes=["lib.jl"])
    try:
        assert server.alive()
        private = list(private_tmp.iterdir())
        assert len(private) == 1 and stat.S_IMODE(private[0].stat().st_mode) == 0o700
        assert server.address == f"ipc://{private[0]}/socket"
        args = (tmp_path / "args").read_text().split()
        assert "--threads=2" in args and "--exit-on-stdin-eof" in args   # the server's own: Julia 1.5
        assert args[args.index("--executor-threads") + 1] == "3"
        assert args[args.index("--executor-memory") + 1] == str(launcher.default_executor_memory())
        assert args[args.index("--lease-ttl") + 1] == "2.5"
        assert args[args.index("--include") + 1] == str(Path("lib.jl").resolve())
        assert args[args.index("--libzmq") + 1] == find_libzmq()
    finally:
        start = time.monotonic()
        code = server.stop()
    assert code == 0 and time.monotonic() - start < 5  # exited on stdin EOF, not by a signal
    assert list(private_tmp.iterdir()) == []


def test_server_given_an_address_gets_no_private_dir(tmp_path, private_tmp):
    julia = _script(tmp_path / "julia", FAKE_SERVER)
    server = spawn_server(julia=julia, address="tcp://127.0.0.1:5999")
    try:
        assert server.address == "tcp://127.0.0.1:5999"
        assert list(private_tmp.iterdir()) == []
    finally:
        server.stop()


def test_server_dying_at_start_up_reports_its_stderr(tmp_path, private_tmp):
    julia = _script(tmp_path / "julia", 'echo "ERROR: LoadError: no serve.jl here" >&2\nexit 3\n')
    with pytest.raises(ServerDied, match="code 3") as caught:
        spawn_server(julia=julia)
    assert "no serve.jl here" in str(caught.value)
    assert list(private_tmp.iterdir()) == []


def test_server_never_ready_is_killed_after_the_timeout(tmp_path, private_tmp):
    pid_file = tmp_path / "pid"
    julia = _script(tmp_path / "julia", f'echo $$ > {pid_file}\necho "still compiling" >&2\nexec sleep 60\n')
    start = time.monotonic()
    with pytest.raises(ServerDied, match="did not become ready") as caught:
        spawn_server(julia=julia, ready_timeout=0.5)
    assert time.monotonic() - start < 5
    assert "still compiling" in str(caught.value)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
    assert list(private_tmp.iterdir()) == []


def test_ctrl_c_while_the_server_starts_leaves_no_server(tmp_path, private_tmp):
    # a notebook's Stop during the first call's start-up: the half-started server must go with it
    pid_file = tmp_path / "pid"
    julia = _script(tmp_path / "julia", f'echo $$ > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}\nexec sleep 60\n')
    main = threading.get_ident()

    def interrupt_once_started() -> None:
        while not pid_file.exists():   # the rendezvous: the stand-in server is running
            time.sleep(0.01)
        signal.pthread_kill(main, signal.SIGINT)

    interrupter = threading.Thread(target=interrupt_once_started)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            spawn_server(julia=julia, ready_timeout=60)
    finally:
        interrupter.join()
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
    assert list(private_tmp.iterdir()) == []


def test_find_julia_searches_path_then_juliapkg(tmp_path, monkeypatch):
    monkeypatch.delenv("AWKWARD_BRIDGE_JULIA", raising=False)
    on_path = _script(tmp_path / "julia", "exit 0\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_julia() == on_path
    os.unlink(on_path)

    class FakeJuliapkg:
        @staticmethod
        def executable() -> str:
            return "/opt/juliapkg/julia"

    monkeypatch.setitem(sys.modules, "juliapkg", FakeJuliapkg)
    assert find_julia() == "/opt/juliapkg/julia"


def test_julia_not_found_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv("AWKWARD_BRIDGE_JULIA", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "juliapkg", None)
    with pytest.raises(JuliaNotFound) as caught:
        find_julia()
    message = str(caught.value)
    for hint in ("Julia >= 1.5", "AWKWARD_BRIDGE_JULIA", "pip install 'awkward-bridge[julia]'", "juliaup"):
        assert hint in message


def test_server_command_passes_log_calls_and_executor_options(tmp_path):
    julia = _script(tmp_path / "julia", "exit 0\n")
    assert "--log-calls" in launcher.server_command(address="ipc:///x", julia=julia, log_calls=True)
    plain = launcher.server_command(address="ipc:///x", julia=julia)
    assert "--log-calls" not in plain and "--executor-threads" not in plain and "--client-shm-quota" not in plain
    limited = launcher.server_command(address="ipc:///x", julia=julia, executor_memory=0, client_shm_quota=1 << 20,
                                      spare_executors=0)
    for flag, value in (("--executor-memory", "0"), ("--client-shm-quota", "1048576"), ("--spare-executors", "0")):
        assert limited[limited.index(flag) + 1] == value
    with pytest.raises(ValueError, match="client_shm_quota"):
        launcher.server_command(address="ipc:///x", julia=julia, client_shm_quota=-1)


def test_the_servers_threads_follow_the_julia_version(tmp_path):
    old = _script(tmp_path / "old" / "julia", "exit 0\n") if (tmp_path / "old").mkdir() is None else ""
    new = tmp_path / "new"
    new.mkdir()
    new_julia = new / "julia"
    new_julia.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "julia version 1.12.1"\n')
    new_julia.chmod(0o755)
    assert launcher.server_threads_flag(old) == "--threads=2"              # 1.5: no thread pools
    assert launcher.server_threads_flag(str(new_julia)) == "--threads=1,1"   # 1.9+: an interactive thread for the loop


def test_server_threads_sleep_when_idle_unless_the_user_chose(monkeypatch):
    from bridge.client.launcher import server_environment

    monkeypatch.delenv("JULIA_THREAD_SLEEP_THRESHOLD", raising=False)
    assert server_environment()["JULIA_THREAD_SLEEP_THRESHOLD"] == "0"
    monkeypatch.setenv("JULIA_THREAD_SLEEP_THRESHOLD", "infinite")
    assert server_environment()["JULIA_THREAD_SLEEP_THRESHOLD"] == "infinite"


def test_the_default_executor_memory_follows_a_container_limit(tmp_path, monkeypatch):
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    monkeypatch.setattr(launcher, "CGROUP_MEMORY_LIMITS", (v2, v1))
    assert launcher.default_executor_memory() == int(machine * 0.8)        # no cgroup files
    v2.write_text("max\n")
    v1.write_text(f"{2**63 - 4096}\n")                                      # v1's "no limit"
    assert launcher.default_executor_memory() == int(machine * 0.8)
    v2.write_text(f"{3 * 2**30}\n")                                         # a 3 GiB container
    assert launcher.default_executor_memory() == int(3 * 2**30 * 0.8)
