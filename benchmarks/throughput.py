"""Benchmark 4: calls per second with 1, 2, 4 and 8 client processes against one server."""

from __future__ import annotations

import multiprocessing as mp
import time

from bridge import Bridge

from _report import print_table, save_plot

# About 0.44 ms (SPIN_N) and 10 ms (COMPUTE_N) of Julia work per call, timed in Julia alone, so
# that computing, not the socket, is measured. Each client defines them in its own module
# (evals are per client, docs/protocol.md).
SETUP_JL = "bench_spin(n) = (s = 0.0; for i in 1:n; s += sqrt(Float64(i)); end; s); bench_noop() = nothing"
SPIN_N = 300_000
COMPUTE_N = 7_000_000


def _client(address: str, function: str, args: tuple, ready: mp.Barrier, seconds: float, out: mp.Queue) -> None:
    with Bridge(address) as bridge:
        bridge.eval(SETUP_JL)
        bridge.call(function, *args)  # warm-up: start its executor and compile, before the clock starts
        ready.wait()
        start = time.time()
        calls = 0
        while time.time() < start + seconds:
            bridge.call(function, *args)
            calls += 1
        out.put(calls)


def _measure(addresses: list[str], function: str, args: tuple, seconds: float) -> float:
    """Calls per second of one client process per address, all calling at once once every one
    is connected and warmed up."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    ready = ctx.Barrier(len(addresses))
    procs = [ctx.Process(target=_client, args=(address, function, args, ready, seconds, out)) for address in addresses]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=300) for _ in procs)
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
    result = {"clients": counts, "noop": [], "spin": [], "compute": []}
    for n in counts:
        result["noop"].append(_measure([bridge.address] * n, "bench_noop", (), seconds))
        result["spin"].append(_measure([bridge.address] * n, "bench_spin", (SPIN_N,), seconds))
        result["compute"].append(_measure([bridge.address] * n, "bench_spin", (COMPUTE_N,), seconds))
    rows = [(n, noop, noop / result["noop"][0], spin, spin / result["spin"][0], compute, compute / result["compute"][0])
            for n, noop, spin, compute in zip(counts, result["noop"], result["spin"], result["compute"])]
    print_table("throughput, one executor per client (calls/s)",
                ["clients", "no-arg", "× 1 client", "0.44 ms calls", "× 1 client", "10 ms calls", "× 1 client"], rows)
    save_plot("throughput", "client processes", "calls/s", {"no-argument call": (counts, result["noop"]),
                                                           "~0.5 ms compute call": (counts, result["spin"]),
                                                           "~10 ms compute call": (counts, result["compute"])}, log=False)
    return result
