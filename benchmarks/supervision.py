"""Benchmark 6: supervising executors. How long a new client waits for its executor (a spare
one, or one started for it), how soon Ctrl-C ends a call that stops at the interrupt and one that
must be killed, and how soon a crash reaches its caller."""

from __future__ import annotations

import statistics
import time

from bridge import Bridge, CallInterrupted, ExecutorDied
from bridge.client.launcher import spawn_server

from _report import print_table

# `looping` allocates (it stops at an interrupt); `stuck` never reaches a safepoint (killed
# after the grace period); `crash` segfaults.
KERNELS = """
looping() = (v = 0; while true; v += length(rand(100)); end)
stuck() = (while true end)
crash() = unsafe_load(Ptr{Int}(parse(Int, "0")))
"""


def _first_call(address: str) -> float:
    """Seconds from a new client's first call to its answer: waiting for an executor included."""
    with Bridge(address) as bridge:
        start = time.perf_counter()
        bridge.call("length", [1])
        return time.perf_counter() - start


def _stopped_after(bridge: Bridge, name: str, error: type, timeout: float) -> float:
    """Seconds from a call's deadline (its ``timeout``) to its error: the server's interrupt path."""
    start = time.perf_counter()
    try:
        bridge.call(name, timeout=timeout)
    except error:
        return time.perf_counter() - start - timeout
    raise AssertionError(f"{name} returned")


def run(quick: bool) -> dict:
    """Return the median seconds of each supervision step, measured on servers of its own."""
    rounds = 3 if quick else 7
    result: dict[str, float] = {}
    with_spare = spawn_server(spare_executors=1)
    without = spawn_server(spare_executors=0)
    try:
        _first_call(without.address)   # the server's first executor was started at start-up
        result["spare"] = statistics.median(_first_call(with_spare.address) for _ in range(rounds))
        result["cold"] = statistics.median(_first_call(without.address) for _ in range(rounds))
        with Bridge(with_spare.address) as bridge:
            times = {"interrupt": [], "kill": [], "crash": []}
            for _ in range(rounds):
                bridge.eval(KERNELS)
                times["interrupt"].append(_stopped_after(bridge, "looping", CallInterrupted, 0.5))
                times["kill"].append(_stopped_after(bridge, "stuck", CallInterrupted, 0.5))
                bridge.eval(KERNELS)
                start = time.perf_counter()
                try:
                    bridge.call("crash")
                except ExecutorDied:
                    times["crash"].append(time.perf_counter() - start)
        result.update({k: statistics.median(v) for k, v in times.items()})
    finally:
        with_spare.stop()
        without.stop()
    print_table("supervision (median seconds)", ["what", "s", "target"], [
        ("a new client's first call, a spare executor ready", result["spare"], ""),
        ("a new client's first call, its executor started for it", result["cold"], ""),
        ("an interrupt (a timeout) to CallTimedOut, Julia code that stops", result["interrupt"], "≤ 2"),
        ("an interrupt (a timeout) to CallTimedOut, Julia code killed", result["kill"], ""),
        ("a segfaulting call to ExecutorDied", result["crash"], "≤ 1"),
    ])
    return result
