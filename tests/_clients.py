"""Helpers of the ownership fault tests: a short-lease server, /dev/shm views, client subprocesses."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import awkward as ak
import pytest

from bridge import Bridge, ServerDied
from bridge.client.launcher import ServerProcess, spawn_server
from bridge.shm import SHM_DIR
from bridge.wire import segment_pid

REPO = Path(__file__).resolve().parents[1]
LEASE_TTL = 2.0  # seconds: short, so expiry is observable within a test
# for tests that never wait for expiry: a client declares the server dead after one TTL of
# silence, and a loaded two-core machine can keep a compiling server silent for seconds
CALM_TTL = 10.0
WARM_UP_ATTEMPTS = 5
# generous: other engineers' test runs share the machine's two cores
SETTLE_TIMEOUT = 30.0


def segments_of(pid: int) -> set[str]:
    """Names of the segments in /dev/shm owned by process ``pid``."""
    return {name for name in os.listdir(SHM_DIR) if segment_pid(name) == pid}


def wait_until(condition: Callable[[], bool], timeout: float = SETTLE_TIMEOUT, period: float = 0.1) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(period)


def settled(stats: dict, clients: int) -> bool:
    """Whether the server holds nothing but ``clients`` idle clients: no handles, no leases, no
    memory but their result arenas' free reserve."""
    return (
        stats["clients"] == clients and stats["handles"] == 0 and stats["leases"] == 0
        and stats["shm_bytes"] == stats["reserve_bytes"] and stats["mapped_bytes"] == 0
    )


def running_server(threads: int = 2, lease_ttl: float = LEASE_TTL, address: Optional[str] = None,
                   key_file: Optional[str] = None) -> Iterator[ServerProcess]:
    """A served bridge granting ``lease_ttl``, warmed up, for a module fixture; stopped at the end.
    A ``tcp://`` ``address`` takes the CURVE ``key_file`` (created when missing)."""
    server = spawn_server(threads=threads, lease_ttl=lease_ttl, address=address, key_file=key_file)
    try:
        warm_up(server)
        yield server
    finally:
        server.stop()


def warm_up(server: ServerProcess) -> None:
    """Have the server compile its request paths, so timing-sensitive tests do not pay for it.

    While Julia compiles the first ``send`` it may not answer pings for longer than a short
    lease TTL; each attempt gets further, so a few are retried.
    """
    for attempt in range(WARM_UP_ATTEMPTS):
        try:
            with observer(server) as bridge:
                handle = bridge.send(ak.Array([[1.0, 2.0], []]))
                bridge.call("identity", handle)
                bridge.call("copy", ak.Array([{"x": 1, "y": [2.0]}]))
                handle.drop()
                # a failed attempt may have left its client registered until its lease expires;
                # tests count clients from here, so wait for the server to forget it
                if not wait_until(lambda: bridge.stats()["clients"] == 1):
                    raise AssertionError(f"stale clients stayed registered: {bridge.stats()}")
            return
        except ServerDied:
            if attempt == WARM_UP_ATTEMPTS - 1:
                raise


def rss_kib(pid: int) -> int:
    """Resident memory of process ``pid`` in KiB (VmRSS of /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def python_client(script: str, *args: str, wrapper: Sequence[str] = ()) -> subprocess.Popen:
    """Run ``script`` (dedented) in a fresh Python with the repository importable; pipes for stdio.

    ``wrapper`` is a command the interpreter runs under (``unshare …``), given it as arguments.
    """
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [*wrapper, sys.executable, "-c", textwrap.dedent(script), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def read_report(process: subprocess.Popen, timeout: float = 120.0) -> dict:
    """The JSON line a client script prints to stdout (waits for it, fails the test on a crash)."""
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.5):
                line = process.stdout.readline()
                if line:
                    return json.loads(line)
                break  # EOF: the script died
            if process.poll() is not None:
                break
    process.kill()
    _, stderr = process.communicate()
    pytest.fail(f"client script gave no report (exit {process.returncode}); stderr:\n{stderr[-3000:]}")


def process_running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (PID 1 of a container may not reap)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def reap(process: subprocess.Popen, grace: float = 0.0) -> Optional[int]:
    """Wait up to ``grace`` seconds for a client script to exit, then kill it; closes its pipes."""
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
    process.communicate()
    return process.returncode


def observer(server: ServerProcess) -> Bridge:
    """A well-behaved client (it gets the server's own lease TTL, the longest it grants)."""
    return Bridge(server.address, lease_ttl=60.0, key_file=server.key_file)
