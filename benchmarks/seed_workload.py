"""Benchmark 3: the seed talk's ``path_length`` workload through the bridge vs ``ak.sum`` and Python."""

from __future__ import annotations

import time
from typing import Optional

import awkward as ak
import numpy as np

from bridge import Bridge
from bridge.examples.seed_path_length import PATH_LENGTH_JL, make_events, path_length_python

from _report import median_time, print_table


def _time_numba(events: ak.Array, repeat: int) -> Optional[float]:
    """The same double loop compiled by Numba over the offsets and content, or None without Numba."""
    try:
        import numba
    except ImportError:
        return None

    @numba.njit
    def path_length(offsets, content):  # Float64 accumulator, like the Julia version
        total = 0.0
        for i in range(len(offsets) - 1):
            for j in range(offsets[i], offsets[i + 1]):
                total += content[j]
        return total

    layout = events.layout
    offsets, content = np.asarray(layout.offsets), np.asarray(layout.content.data)
    return median_time(lambda: path_length(offsets, content), repeat)


def run(bridge: Bridge, quick: bool) -> dict[str, float]:
    """Return median seconds for ``ak.sum``, bridge calls (fresh and handle) and scaled pure Python."""
    events = make_events(1048576)
    repeat = 3 if quick else 7
    bridge.include(PATH_LENGTH_JL)
    t_sum = median_time(lambda: ak.sum(events), repeat)
    t_fresh = median_time(lambda: bridge.call("path_length", events), repeat)
    handle = bridge.send(events)
    t_handle = median_time(lambda: bridge.call("path_length", handle), repeat)
    handle.drop()
    t_numba = _time_numba(events, repeat)
    sliced = events[: 2000 if quick else 5000]
    start = time.perf_counter()
    path_length_python(sliced)
    t_python = (time.perf_counter() - start) * len(events) / len(sliced)
    rows = [("ak.sum", t_sum * 1e3, 1.0, ""),
            ("bridge path_length, fresh array (one copy)", t_fresh * 1e3, t_fresh / t_sum, "≤ 3"),
            ("bridge path_length, handle (in shm)", t_handle * 1e3, t_handle / t_sum, ""),
            (f"pure Python, {len(sliced)} events scaled", t_python * 1e3, t_python / t_sum, "")]
    if t_numba is None:
        rows.append(("numba loop", "not installed", "", ""))
    else:
        rows.append(("numba loop over offsets/content", t_numba * 1e3, t_numba / t_sum, ""))
    print_table(f"seed workload {events.type} (median ms)", ["what", "ms", "× ak.sum", "target"], rows)
    return {"ak_sum": t_sum, "fresh": t_fresh, "handle": t_handle, "python": t_python}
