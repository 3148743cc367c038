"""The attacks of issue 12, each one failing with a clear error and nothing lost (docs/security.md).

The cross-user tests create a second Unix user, where the test runs as root, and run its client
with the system's Python (the test's virtual environment lives in a directory other users may
not enter) and this checkout's packages; elsewhere they skip, saying why.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Iterator

import msgpack
import numpy as np
import pytest
import zmq

from bridge import AuthenticationFailed, Bridge, JuliaError, ServerNotFound
from bridge.client.keys import load_client_keys
from bridge.shm import collect_dead_segments, dead_owner, lock_path
from _clients import python_client, read_report, reap, segments_of, wait_until
from test_served import Served

REPO = Path(__file__).resolve().parents[1]
SITE_PACKAGES = next((REPO / ".venv" / "lib").glob("python3.*/site-packages"), None)
SYSTEM_PYTHON = shutil.which("python3.11", path="/usr/bin") or shutil.which("python3", path="/usr/bin")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory other users may pass through (pytest's own are 0700), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="akb-security-", dir="/tmp"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def other_user() -> Iterator[str]:
    """A second Unix user, removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("creating a second Unix user needs root")
    if SYSTEM_PYTHON is None or SITE_PACKAGES is None:
        pytest.skip("no system Python 3 in /usr/bin, or no .venv site-packages, for the second user's client")
    name = "akb" + secrets.token_hex(4)
    subprocess.run(["useradd", "-M", "-N", "-s", "/usr/sbin/nologin", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)


def as_user(user: str, script: str, *args: str) -> list[str]:
    """The command that runs ``script`` as ``user`` with this checkout's packages."""
    environment = {"PYTHONPATH": f"{REPO}:{SITE_PACKAGES}", "HOME": "/tmp", "PATH": "/usr/bin:/bin"}
    return ["runuser", "-u", user, "--", "env", *(f"{k}={v}" for k, v in environment.items()),
            SYSTEM_PYTHON, "-c", textwrap.dedent(script), *args]


def run_as(user: str, script: str, *args: str) -> dict:
    """Run ``script`` as ``user``; its last stdout line, as JSON."""
    done = subprocess.run(as_user(user, script, *args), capture_output=True, text=True, timeout=180, cwd="/tmp")
    assert done.stdout.strip(), f"the second user's script printed nothing; stderr:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# A client that holds a segment of its own until it is told to go, then dies without cleaning up.
HOLDER = """
import json, os, sys
from bridge.shm import Segment
segment = Segment.create(4096)
print(json.dumps({"name": segment.name, "pid": os.getpid()}), flush=True)
sys.stdin.readline()
os._exit(0)
"""


# A client that tries to run code on the server and reports what happened.
INTRUDER = """
import json, sys
from bridge import Bridge
address, key_file = sys.argv[1], (sys.argv[2] or None)
try:
    with Bridge(address, key_file=key_file) as bridge:
        outcome = {"ran": bridge.eval("read(`id -u`, String)")}
except BaseException as error:
    outcome = {"error": type(error).__name__, "message": str(error)}
print(json.dumps(outcome))
"""


def test_a_tcp_server_admits_only_clients_with_its_key(tmp_path):
    key_file = tmp_path / "keys" / "server.key"
    with Served(tmp_path, "--key-file", str(key_file), address="tcp://127.0.0.1:0") as served:
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        with Bridge(served.address, key_file=key_file) as owner:
            assert owner.call("sum", np.arange(4.0)) == 6.0
        # another key file's keys: refused by the server, at once, not after a time-out
        other = tmp_path / "other.key"
        other.write_text(json.dumps(dict(zip(("server_public", "server_secret", "client_public", "client_secret"),
                                             (k.decode() for pair in (zmq.curve_keypair(), zmq.curve_keypair()) for k in pair)))))
        other.chmod(0o600)
        with pytest.raises(AuthenticationFailed, match="refused this client's CURVE keys"):
            Bridge(served.address, key_file=other)
        # the right server key but an unknown client key: the server's ZAP handler refuses it
        keys = load_client_keys(key_file)
        stranger = json.loads(other.read_text())
        stranger["server_public"] = keys.server_public.decode()
        other.write_text(json.dumps(stranger))
        with pytest.raises(AuthenticationFailed):
            Bridge(served.address, key_file=other)
        with pytest.raises(AuthenticationFailed, match="no key file at"):
            Bridge(served.address, key_file=tmp_path / "missing.key")
        served.wait_for_log("refused a connection from 127.0.0.1")
        with Bridge(served.address, key_file=key_file) as owner:   # and the owner is still served
            assert owner.ping() > 0


def test_a_second_user_gets_nothing_without_the_key(shared_dir, other_user):
    key_file = shared_dir / "server.key"
    with Served(shared_dir, "--key-file", str(key_file), address="tcp://127.0.0.1:0") as served:
        refused = run_as(other_user, INTRUDER, served.address, str(key_file))
        assert refused["error"] == "AuthenticationFailed" and "may not read the key file" in refused["message"]
        # the owner gives the user a copy of its key: the user then runs code as the owner
        given = shared_dir / "given.key"
        shutil.copy(key_file, given)
        shutil.chown(given, other_user)
        admitted = run_as(other_user, INTRUDER, served.address, str(given))
        assert admitted == {"ran": "0\n"}


def test_a_server_refuses_a_key_file_another_user_owns(shared_dir, other_user):
    # whoever owns the file could read the secrets, or swap in keys of their own
    key_file = shared_dir / "server.key"
    pairs = (zmq.curve_keypair(), zmq.curve_keypair())
    key_file.write_text(json.dumps(dict(zip(("server_public", "server_secret", "client_public", "client_secret"),
                                            (k.decode() for pair in pairs for k in pair)))))
    key_file.chmod(0o600)
    shutil.chown(key_file, other_user)
    serve = subprocess.run([sys.executable, "-m", "bridge.cli", "serve", "--address", "tcp://127.0.0.1:0",
                            "--key-file", str(key_file)], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=300)
    assert serve.returncode != 0
    assert f"key file {key_file} belongs to uid {pwd.getpwnam(other_user).pw_uid}" in serve.stderr


def test_a_second_user_cannot_reach_a_private_ipc_socket(shared_dir, other_user):
    private = shared_dir / "private"
    private.mkdir(mode=0o700)
    with Served(shared_dir, address=f"ipc://{private}/socket") as served:
        outcome = run_as(other_user, INTRUDER, served.address, "")
        assert outcome["error"] == "PermissionError" and str(private / "socket") in outcome["message"]
        assert (private / "socket").stat().st_mode & 0o077 == 0   # no rights for group or others


def test_a_spoofed_pid_cannot_name_another_users_segment(tmp_path, other_user):
    # The second user makes a segment named after its own pid, and keeps it alive; a client of
    # the server's user claims that pid and names the segment.
    owner = subprocess.Popen(as_user(other_user, HOLDER), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd="/tmp")
    made = read_report(owner)
    try:
        with Served(tmp_path) as served, Bridge(served.address) as bridge:
            socket = zmq.Context.instance().socket(zmq.DEALER)
            socket.setsockopt(zmq.LINGER, 0)
            socket.connect(served.address)
            try:
                client = "spoof" + secrets.token_hex(8)
                socket.send(msgpack.packb({"v": 1, "id": 0, "client": client, "op": "hello", "pid": made["pid"],
                                           "lease_ttl": 10.0}))
                assert socket.poll(60_000)
                token = msgpack.unpackb(socket.recv())["result"]["token"]
                array = {"$": "array", "length": 8, "buffers": {"node0-data": [made["name"], 0, 64]},
                         "form": '{"class": "NumpyArray", "primitive": "float64", "form_key": "node0"}'}
                socket.send(msgpack.packb({"v": 1, "id": 1, "client": client, "token": token, "op": "call",
                                           "fn": "sum", "args": [array]}))
                assert socket.poll(60_000)
                reply = msgpack.unpackb(socket.recv())
                assert reply["ok"] is False and reply["error"]["type"] == "InvalidArray"
                assert "belongs to another user" in reply["error"]["message"]
            finally:
                socket.close(0)
            assert bridge.call("sum", np.arange(3.0)) == 3.0   # the server serves on
    finally:
        owner.stdin.write("go\n")
        owner.stdin.flush()
        reap(owner, grace=30)
        collect_dead_segments()   # the second user's segment and owner lock file


def test_a_stolen_client_id_is_useless_without_its_token(tmp_path):
    with Served(tmp_path) as served, Bridge(served.address) as victim:
        kept = victim.call("copy", np.arange(5.0))
        handle = victim.send(np.arange(3.0))
        victim.eval("secret() = 42")
        leases = victim.stats()["leases"]
        thief = zmq.Context.instance().socket(zmq.DEALER)
        thief.setsockopt(zmq.LINGER, 0)
        thief.connect(served.address)
        try:
            attempts = [("release", {"leases": list(range(1, 20))}), ("drop", {"handles": [handle.id]}),
                        ("call", {"fn": "secret", "args": []}), ("eval", {"code": "1"}), ("stats", {}),
                        ("call", {"fn": "secret", "args": [], "token": "0" * 32}), ("bye", {}),
                        ("ping", {"release": {"leases": list(range(1, 20))}, "drop": {"handles": [handle.id]}}),
                        ("hello", {"pid": os.getpid(), "lease_ttl": 10.0})]
            for n, (op, fields) in enumerate(attempts):
                thief.send(msgpack.packb({"v": 1, "id": n, "client": victim.client_id, "op": op, **fields}))
                assert thief.poll(60_000), op
                reply = msgpack.unpackb(thief.recv())
                assert reply["ok"] is False and reply["error"]["type"] == "AuthenticationFailed", (op, reply)
        finally:
            thief.close(0)
        # nothing of the victim's changed: its results, its handle, its definitions, its leases
        assert kept.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert victim.call("sum", handle) == 3.0 and victim.call("secret") == 42
        assert victim.stats()["leases"] == leases
        handle.drop()
    assert victim.client_id not in served.log()   # the log shows 8 characters of it, no more


def test_secret_values_stay_out_of_the_log(tmp_path):
    secrets_ = ("bob-passport-P1234567", "api_token=s3cr3t-value")
    for flags, logged in (((), False), (("--log-values",), True)):
        with Served(tmp_path, *flags) as served, Bridge(served.address) as bridge:
            bridge.eval(f'lookup(d) = d["{secrets_[0]}"]\nleak() = error("{secrets_[1]}")')
            with pytest.raises(JuliaError, match="KeyError"):
                bridge.call("lookup", {"other": 1})
            with pytest.raises(JuliaError, match="ErrorException"):
                bridge.call("leak")
            served.wait_for_log('call "leak" from client')
            log = served.log()
            assert 'call "lookup" from client' in log and "KeyError" in log   # type and function
            assert all((secret in log) == logged for secret in secrets_), log[-2000:]


def test_one_server_per_ipc_path(tmp_path):
    address = f"ipc://{tmp_path}/socket"
    with Served(tmp_path, address=address) as first:
        second = subprocess.run([sys.executable, "-m", "bridge.cli", "serve", "--address", address],
                                capture_output=True, text=True, timeout=300)
        assert second.returncode != 0 and "a server already listens at" in second.stderr
        with Bridge(address) as bridge:   # the first one still serves every new client
            assert bridge.ping() > 0 and f"awkward-bridge[{bridge.server_info['server_pid']}]" in first.log()
    assert not os.path.exists(tmp_path / "socket")   # removed at its stop
    # a server killed outright leaves its socket file: the next one removes it and starts
    killed = Served(tmp_path, address=address)
    julia = int(re.search(r"awkward-bridge\[(\d+)\]", killed.log()).group(1))
    os.kill(julia, signal.SIGKILL)
    killed.process.wait(60)   # its `serve` wrapper ends with it
    killed.process.stdout.close()
    assert os.path.exists(tmp_path / "socket")
    try:
        with Served(tmp_path, address=address) as third:
            third.wait_for_log("removed the stale socket file")
            with Bridge(address) as bridge:
                assert bridge.ping() > 0
    finally:
        collect_dead_segments()   # the killed server's owner lock file


def test_a_missing_or_dead_socket_fails_at_once(tmp_path):
    with pytest.raises(ServerNotFound, match=str(tmp_path / "nobody.sock")):
        Bridge(f"ipc://{tmp_path}/nobody.sock")
    import socket
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "stale.sock"))   # a socket file nobody listens on
    stale.close()
    with pytest.raises(ServerNotFound, match="gone"):
        Bridge(f"ipc://{tmp_path}/stale.sock")




def test_gc_in_a_pid_namespace_that_cannot_see_the_owner_spares_its_segments(tmp_path):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a pid namespace needs root and unshare(1)")
    gc_elsewhere = ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "bridge.cli", "gc"]
    holder = python_client(HOLDER)
    try:
        held = read_report(holder)
        assert os.path.exists(f"/dev/shm/{held['name']}")
        done = subprocess.run(gc_elsewhere, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert done.returncode == 0, done.stderr
        assert os.path.exists(f"/dev/shm/{held['name']}"), "gc removed a live owner's segment"
    finally:
        holder.stdin.write("go\n")   # it exits without cleaning up, as a killed owner would
        holder.stdin.flush()
        reap(holder, grace=30)
    # once its owner is gone the same gc removes it, and its lock file
    done = subprocess.run(gc_elsewhere, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0 and not segments_of(held["pid"])
    assert not os.path.exists(lock_path(held["pid"]))


# A process that takes its owner lock in a directory it is given, when told to, and reports it.
LOCK_TAKER = """
import json, os, sys, warnings
from bridge.shm import owner_lock
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.readline()
with warnings.catch_warnings(record=True) as warned:
    warnings.simplefilter("always")
    owner_lock.hold_owner_lock(sys.argv[1])
fd = owner_lock._held[1]
print(json.dumps({"inode": os.fstat(fd).st_ino if fd >= 0 else None, "warned": [str(w.message) for w in warned]}), flush=True)
sys.stdin.readline()
"""


def take_lock_after(plant, shm_dir: Path) -> dict:
    """Start LOCK_TAKER, let ``plant(pid)`` prepare its lock file, then have it take its lock."""
    taker = python_client(LOCK_TAKER, str(shm_dir))
    try:
        pid = read_report(taker)["pid"]
        planted = plant(pid)
        taker.stdin.write("go\n")
        taker.stdin.flush()
        return {"pid": pid, "planted": planted, **read_report(taker, timeout=30)}
    finally:
        taker.stdin.write("done\n")
        taker.stdin.flush()
        reap(taker, grace=30)


def test_an_owner_lock_file_held_exclusively_is_replaced_not_waited_for(tmp_path):
    # A gc holds a dead namesake's lock only for a moment; a file held for longer (here by a
    # squatter that made it for the next pids) must not hang a new bridge process at start.
    held = []

    def plant(pid: int) -> int:
        fd = os.open(lock_path(pid, str(tmp_path)), os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.append(fd)
        return os.fstat(fd).st_ino

    try:
        report = take_lock_after(plant, tmp_path)
    finally:
        for fd in held:
            os.close(fd)
    assert report["inode"] is not None and report["inode"] != report["planted"] and not report["warned"]
    assert not os.path.exists(lock_path(report["pid"], str(tmp_path)))   # removed at its exit


def test_an_owner_lock_file_of_another_user_is_left_alone(tmp_path, other_user):
    tmp_path.chmod(0o1777)   # as /dev/shm: anyone may create files, only their owner remove them
    uid = pwd.getpwnam(other_user).pw_uid

    def plant(pid: int) -> int:
        path = lock_path(pid, str(tmp_path))
        Path(path).write_bytes(b"")
        os.chmod(path, 0o666)
        os.chown(path, uid, -1)
        return os.stat(path).st_ino

    report = take_lock_after(plant, tmp_path)
    assert report["inode"] is None and "another user's" in report["warned"][0]
    # nor does gc let that file prove the pid dead: unheld, the pid decides; held (by an owner
    # of that user in another pid namespace), its segments stay
    path = lock_path(report["pid"], str(tmp_path))
    with dead_owner(report["pid"], str(tmp_path)) as gone:
        assert gone is None
    holder = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_SH)
        with dead_owner(report["pid"], str(tmp_path)) as gone:
            assert gone is False
    finally:
        os.close(holder)
    assert os.stat(path).st_ino == report["planted"]


def test_a_directory_at_an_owner_lock_path_stops_no_one(tmp_path):
    # Anyone may make a directory (or a socket) in /dev/shm under a lock file's name.
    def plant(pid: int) -> int:
        os.mkdir(lock_path(pid, str(tmp_path)))
        return os.stat(lock_path(pid, str(tmp_path))).st_ino

    report = take_lock_after(plant, tmp_path)
    assert report["inode"] is None and "not a file" in report["warned"][0]
    with dead_owner(report["pid"], str(tmp_path)) as gone:
        assert gone is None
    assert collect_dead_segments(str(tmp_path)) == []   # gc passes over it, and does not fail
