"""The seed talk's workload through the bridge.

Builds a 1048576 * var * float32 array (as in "An Awkward module for round-tripping data
structures between Python and Julia"), runs the talk's hand-written ``path_length`` loop in
Julia through the bridge, and compares it with ``ak.sum`` and with the same loop in pure Python
(timed on a slice and scaled, because the full loop takes minutes).

Run it with ``awkward-bridge demo``, or ``scripts/demo.sh`` in a checkout (which sets everything up
first).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import awkward as ak
import numpy as np

from bridge import Bridge

PATH_LENGTH_JL = Path(__file__).with_name("path_length.jl")


def path_length_python(array: ak.Array) -> float:
    """The talk's loop, verbatim, in Python."""
    total = 0.0
    for i in range(len(array)):
        for j in range(len(array[i])):
            total = total + array[i][j]
    return total


def make_events(n_events: int, seed: int = 2024) -> ak.Array:
    """``n_events * var * float32`` with a Poisson number of entries per event."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(3.0, n_events)
    content = rng.normal(0.0, 10.0, counts.sum()).astype(np.float32)
    return ak.unflatten(content, counts)


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Median wall time over ``repeat`` runs (after one warm-up run) and the last result."""
    result = fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the demo with command-line options ``argv`` (default: ``sys.argv``)."""
    parser = argparse.ArgumentParser(prog="awkward-bridge demo", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1048576)
    parser.add_argument("--python-slice", type=int, default=5000, help="events timed in the pure-Python loop")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)

    events = make_events(args.events)
    print(f"array: {events.type}, {ak.count(events)} values, {events.nbytes / 1e6:.1f} MB")

    with Bridge() as bridge:
        bridge.include(PATH_LENGTH_JL)
        handle = bridge.send(events)

        t_sum, total_ak = best_of(lambda: ak.sum(events), args.repeat)
        t_call, total_jl = best_of(lambda: bridge.call("path_length", events), args.repeat)
        t_handle, total_handle = best_of(lambda: bridge.call("path_length", handle), args.repeat)
        t_noop, _ = best_of(lambda: bridge.call("length", handle), args.repeat)
        handle.drop()

    sliced = events[: args.python_slice]
    start = time.perf_counter()
    path_length_python(sliced)
    t_python = (time.perf_counter() - start) * len(events) / len(sliced)

    exact = float(np.sum(ak.flatten(events).to_numpy().astype(np.float64)))
    assert abs(total_jl - exact) <= 1e-9 * max(1.0, abs(exact)), (total_jl, exact)
    assert total_handle == total_jl

    print(f"sum: Julia path_length {total_jl:.6f}, float64 numpy {exact:.6f}, ak.sum (float32) {float(total_ak):.2f}")
    print()
    print(f"{'what':58s} {'median':>10s} {'× ak.sum':>9s}")
    rows = [
        ("ak.sum(array)", t_sum),
        ("bridge.call('path_length', array)  (one copy into shm)", t_call),
        ("bridge.call('path_length', handle) (already in shm)", t_handle),
        ("bridge.call('length', handle)      (call overhead)", t_noop),
        (f"pure-Python loop (timed on {len(sliced)} events, scaled)", t_python),
    ]
    for label, seconds in rows:
        print(f"{label:58s} {seconds * 1e3:8.2f} ms {seconds / t_sum:8.1f}×")


if __name__ == "__main__":
    main()
