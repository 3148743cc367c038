"""One ``awkward-bridge serve``, 8 client processes at once, each with its own arrays and checking
every answer. (Their throughput against one client's is benchmarks/throughput.py's: a timing
comparison on a shared two-core machine is a benchmark, not a test.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from test_served import Served

CALLS = 100
CLIENTS = 8

KERNEL = """
# per event, the sum of squares of its values: the --include file every client calls into
sum_squares(events) = [isempty(event) ? 0.0 : sum(abs2, event) for event in events]  # no init= on 1.5
"""

# One client: connects, says ready, waits for "go", makes CALLS calls with arrays of its own
# (seeded by its index) and checks each answer against numpy; prints how many it checked.
CLIENT = textwrap.dedent(
    """
    import sys
    import awkward as ak, numpy as np
    from bridge import Bridge

    address, seed, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(seed)
    with Bridge(address) as bridge:
        print("ready", flush=True)
        sys.stdin.readline()
        for _ in range(calls):
            counts = rng.integers(0, 8, size=5000)
            events = ak.unflatten(rng.normal(size=int(counts.sum())), counts)
            expected = ak.to_numpy(ak.sum(events**2, axis=1))
            got = bridge.call("sum_squares", events)
            assert np.allclose(ak.to_numpy(got), expected), f"client {seed}: wrong answer"
    print(calls, flush=True)
    """
)


def _run_clients(address: str, count: int) -> int:
    """Run ``count`` clients at once from a common start; returns how many answers they checked."""
    clients = [
        subprocess.Popen([sys.executable, "-c", CLIENT, address, str(seed), str(CALLS)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in range(count)
    ]
    try:
        for client in clients:
            assert client.stdout.readline().strip() == "ready", client.stderr.read()
        for client in clients:
            client.stdin.write("go\n")
            client.stdin.flush()
        checked = 0
        for client in clients:
            out, err = client.communicate(timeout=600)
            assert client.returncode == 0, err
            checked += int(out.strip().splitlines()[-1])
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
                client.communicate()
    return checked


def test_eight_clients_at_once_all_get_right_answers(tmp_path, shm_clean):
    kernel = tmp_path / "kernel.jl"
    kernel.write_text(KERNEL)
    with Served(tmp_path, "--include", str(kernel)) as served:
        assert _run_clients(served.address, 1) == CALLS
        assert _run_clients(served.address, CLIENTS) == CLIENTS * CALLS
        assert served.stop() == 0
