"""``awkward-bridge serve`` in the foreground, shared by two Bridges, and ``awkward-bridge stats``."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import awkward as ak
import pytest

from bridge import Bridge, FunctionNotFound

SERVE_TIMEOUT = 300


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server run by the command line, stopped by closing its stdin."""
    directory = tmp_path_factory.mktemp("serve")
    shared = directory / "shared.jl"
    shared.write_text("shared_double(x) = 2x\n")
    address = f"ipc://{directory}/socket"
    command = [
        sys.executable, "-m", "bridge.cli", "serve", "--address", address, "--threads", "2",
        "--lease-ttl", "10", "--include", str(shared), "--exit-on-stdin-eof",
    ]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = []
    reader = threading.Thread(target=lambda: ready.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(SERVE_TIMEOUT)
    try:
        assert ready and ready[0].startswith("AWKWARD_BRIDGE_READY "), f"serve did not start: {ready}"
        yield ready[0].split()[1]
    finally:
        process.stdin.close()
        try:
            assert process.wait(30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()


def test_two_bridges_share_one_server_but_not_definitions(served, shm_clean):
    with Bridge(served, lease_ttl=10) as first, Bridge(served, lease_ttl=10) as second:
        assert first.server_info["server_pid"] == second.server_info["server_pid"]
        first.eval("who_am_i() = 1")
        second.eval("who_am_i() = 2")
        assert (first.call("who_am_i"), second.call("who_am_i")) == (1, 2)
        # --include definitions are shared by every client
        assert first.call("shared_double", 21) == second.call("shared_double", 21) == 42
        first.eval("only_first() = 1")
        with pytest.raises(FunctionNotFound, match="only_first"):
            second.call("only_first")
        array = ak.Array([[1.0], [2.0, 3.0]])
        assert ak.array_equal(first.call("copy", array), second.call("copy", array), dtype_exact=True)
        assert second.stats()["clients"] >= 2
    with Bridge(served) as third:
        assert third.stats()["clients"] == 1  # bye made the server forget both


def test_stats_command_prints_the_counters(served):
    done = subprocess.run([sys.executable, "-m", "bridge.cli", "stats", served], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    for key in ("clients", "handles", "leases", "shm_bytes", "reserve_bytes", "mapped_bytes", "cached_bytes",
                "calls", "validations", "alloc_asks", "threads", "uptime"):
        assert key in stats
    assert stats["clients"] == 1  # the stats command itself
