"""Benchmark 4: calls per second with 1, 2, 4 and 8 client processes against one server."""

from __future__ import annotations

import multiprocessing as mp
import time

from bridge import Bridge

from _report import print_table, save_plot

# About 0.44 ms of Julia work per call (timed in Julia alone), so that computing, not the
# socket, is measured.
# Each client defines it in its own module (evals are per client, docs/protocol.md).
SETUP_JL = "bench_spin(n) = (s = 0.0; for i in 1:n; s += sqrt(Float64(i)); end; s); bench_noop() = nothing"
SPIN_N = 300_000


def _client(address: str, function: str, args: tuple, start_at: float, seconds: float, out: mp.Queue) -> None:
    with Bridge(address) as bridge:
        bridge.eval(SETUP_JL)
        bridge.call(function, *args)  # warm-up: compile and connect before the clock starts
        while time.time() < start_at:
            time.sleep(0.001)
        calls = 0
        while time.time() < start_at + seconds:
            bridge.call(function, *args)
            calls += 1
        out.put(calls)


def _measure(addresses: list[str], function: str, args: tuple, seconds: float) -> float:
    """Calls per second of one client process per address, all calling at once."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 3.0 + 0.5 * len(addresses)  # time for every client to start and connect
    procs = [ctx.Process(target=_client, args=(address, function, args, start_at, seconds, out)) for address in addresses]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(30)
    return total / seconds


def run(bridge: Bridge, quick: bool) -> dict:
    """Return calls/s per client count for a no-argument call and a ~0.5 ms compute call.

    Every client has an executor of its own, a Julia process, so clients compute in parallel
    whatever Julia's thread cap is; the server only routes their calls.
    """
    seconds = 1.0 if quick else 3.0
    counts = [1, 2] if quick else [1, 2, 4, 8]
    result = {"clients": counts, "noop": [], "spin": []}
    for n in counts:
        result["noop"].append(_measure([bridge.address] * n, "bench_noop", (), seconds))
        result["spin"].append(_measure([bridge.address] * n, "bench_spin", (SPIN_N,), seconds))
    rows = [(n, noop, noop / result["noop"][0], spin, spin / result["spin"][0])
            for n, noop, spin in zip(counts, result["noop"], result["spin"])]
    print_table("throughput, one executor per client (calls/s)",
                ["clients", "no-arg calls/s", "× 1 client", "spin calls/s", "× 1 client"], rows)
    save_plot("throughput", "client processes", "calls/s", {"no-argument call": (counts, result["noop"]),
                                                           "~0.5 ms compute call": (counts, result["spin"])}, log=False)
    return result
