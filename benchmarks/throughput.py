"""Benchmark 4: calls per second with 1, 2, 4 and 8 client processes against one server."""

from __future__ import annotations

import multiprocessing as mp
import time

from bridge import Bridge
from bridge.launcher import spawn_server

from _report import print_table, save_plot

# About 0.44 ms of Julia work per call (timed in Julia alone), so that the server's threads, not
# the socket, are measured.
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

    Then one and two clients on a server started with ``--socket-thread-calls``, whose socket
    thread also runs calls when the workers are busy, and, in the full run, what a second worker
    would give where Julia allows only one (Julia 1.5 caps its threads at the core count): two
    clients, each on a server of its own.
    """
    seconds = 1.0 if quick else 3.0
    counts = [1, 2] if quick else [1, 2, 4, 8]
    result = {"clients": counts, "noop": [], "spin": []}
    for n in counts:
        result["noop"].append(_measure([bridge.address] * n, "bench_noop", (), seconds))
        result["spin"].append(_measure([bridge.address] * n, "bench_spin", (SPIN_N,), seconds))
    rows = [(n, noop, noop / result["noop"][0], spin, spin / result["spin"][0])
            for n, noop, spin in zip(counts, result["noop"], result["spin"])]
    # The same server with --socket-thread-calls: its socket thread runs a call when the
    # workers are busy. Ratios against its own one-client figures.
    shared = spawn_server(threads=bridge.server_info["threads"], socket_thread_calls=True)
    try:
        own = {fn: [_measure([shared.address] * n, fn, args, seconds) for n in (1, 2)]
               for fn, args in (("bench_noop", ()), ("bench_spin", (SPIN_N,)))}
    finally:
        shared.stop()
    result["socket_thread_calls"] = {"noop": own["bench_noop"], "spin": own["bench_spin"]}
    for n, i in ((1, 0), (2, 1)):
        rows.append((f"{n}, socket thread runs calls", own["bench_noop"][i], own["bench_noop"][i] / own["bench_noop"][0],
                     own["bench_spin"][i], own["bench_spin"][i] / own["bench_spin"][0]))
    if not quick:
        with Bridge() as second:
            noop = _measure([bridge.address, second.address], "bench_noop", (), seconds)
            spin = _measure([bridge.address, second.address], "bench_spin", (SPIN_N,), seconds)
        result["two_servers"] = {"noop": noop, "spin": spin}
        rows.append(("2, one server each", noop, noop / result["noop"][0], spin, spin / result["spin"][0]))
    print_table(f"throughput, server with {bridge.server_info.get('threads', '?')} worker thread(s) (calls/s)",
                ["clients", "no-arg calls/s", "× 1 client", "spin calls/s", "× 1 client"], rows)
    save_plot("throughput", "client processes", "calls/s", {"no-argument call": (counts, result["noop"]),
                                                           "~0.5 ms compute call": (counts, result["spin"])}, log=False)
    return result
