"""Benchmark 1: round-trip latency of bridge calls against a plain pyzmq DEALER/ROUTER echo."""

from __future__ import annotations

import os
import tempfile

import awkward as ak

from bridge import Bridge

from _baselines import ZmqEcho
from _report import median_time, print_table


def run(bridge: Bridge, quick: bool) -> dict[str, float]:
    """Return median seconds for the echo floor, a no-argument call and a small-array call."""
    repeat = 300 if quick else 3000
    address = f"ipc://{tempfile.gettempdir()}/akb-bench-echo-{os.getpid()}"
    echo = ZmqEcho(address)
    try:
        floor = median_time(lambda: echo.roundtrip(b"x" * 64), repeat, warmup=200)
    finally:
        echo.close()
    bridge.eval("bench_noop() = nothing; bench_first(x) = 1")
    small = ak.Array([[1.0, 2.0, 3.0], [], [4.0]])
    ping = median_time(bridge.ping, repeat, warmup=200)
    noarg = median_time(lambda: bridge.call("bench_noop"), repeat, warmup=200)
    small_t = median_time(lambda: bridge.call("bench_first", small), repeat, warmup=200)
    rows = [
        ("pyzmq DEALER/ROUTER echo (floor)", floor * 1e6, 1.0, ""),
        ("bridge.ping (the server alone)", ping * 1e6, ping / floor, ""),
        ("bridge.call no argument (server + executor)", noarg * 1e6, noarg / floor, "≤ 1.5"),
        ("  of which the executor hop (call − ping)", (noarg - ping) * 1e6, (noarg - ping) / floor, ""),
        ("bridge.call small array (3 lists)", small_t * 1e6, small_t / floor, "≤ 2"),
    ]
    print_table("latency (median µs)", ["what", "µs", "× floor", "target"], rows)
    return {"floor": floor, "ping": ping, "noarg": noarg, "small": small_t}
