"""Benchmark 5: peak memory of client, server and the client's executor together while a large
array crosses both ways.

Resident set sizes double-count shared memory: a page of a bridge segment mapped by several
processes is in each one's VmRSS. The honest total is the sum of the processes' PSS
(proportional set size, /proc/<pid>/smaps_rollup), which charges each shared page 1/n to each
of its n mappers, so that pages are counted once. VmRSS sums and VmHWM are printed alongside.
"""

from __future__ import annotations

import gc
import os
import threading
import time

import awkward as ak
import numpy as np

from bridge import Bridge

from _report import print_table
from transfer import make_array


def _kib(pid: int, path: str, key: str) -> int:
    with open(f"/proc/{pid}/{path}") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


class Sampler:
    """Samples PSS and VmRSS of ``pids`` every few milliseconds in a thread; keeps the peaks."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak_pss = self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(0.002)

    def sample(self) -> tuple[int, int]:
        """One sample (bytes): total PSS and total VmRSS of all pids."""
        pss = sum(_kib(p, "smaps_rollup", "Pss") for p in self.pids) * 1024
        rss = sum(_kib(p, "status", "VmRSS") for p in self.pids) * 1024
        self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
        return pss, rss

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


# A new array Julia writes straight into shared memory: `copy` would first make a Julia-heap
# copy, one more "× data" that has nothing to do with the bridge, and a view of the whole
# argument is the argument itself, which goes back by reference.
REWRITE_JL = """
struct Rewritten{T,V<:AbstractVector{T}} <: AbstractVector{T}
    x::V
end
Base.size(r::Rewritten) = size(r.x)
Base.getindex(r::Rewritten, i::Int) = r.x[i]
rewritten(x) = Rewritten(x)
"""

# A new jagged result of `n` lists of 4 float64 made from nothing: in Julia vectors (which the
# bridge then copies into shared memory), laid out in shared memory from the start (its counts
# lazy, so the figure is the builder's own; a kernel's Vector{Int32} of counts adds 4 bytes a
# list), or grown there item by item with no count at all.
NEW_RESULT_JL = """
new_in_julia(n) = [Float64[4i, 4i + 1, 4i + 2, 4i + 3] for i in 0:n-1]
function new_in_shm(n)
    lists = AwkwardBridge.shared_lists(Float64, Iterators.repeated(4, n))
    for i in 1:n
        lists[i] .= 4(i - 1) .+ (0:3)
    end
    return lists
end
function new_grown(n)
    lists = AwkwardBridge.growing_lists(Float64)
    for i in 0:n-1
        append!(lists, (4i, 4i + 1, 4i + 2, 4i + 3))
        end_list!(lists)
    end
    return lists
end
"""

# (label, whether the array starts as a Julia result, the Julia function it crosses through)
SCENARIOS = [
    ("from ordinary memory", False, "identity"),
    ("from ordinary memory, Julia writes a new array", False, "rewritten"),
    ("a Julia result (in shm)", True, "identity"),
]


def run(bridge: Bridge, size: int) -> dict:
    """Pass a ``size``-byte array to Julia and get it back; return peak PSS ÷ data per scenario.

    An array in ordinary memory is copied into shared memory for the call; returned unchanged
    (``identity``) it comes back as itself, while ``rewritten`` makes Julia write a new result. An
    array already in shared memory because Julia made it (a result, sent back) crosses by
    reference both ways. Peaks count from the idle PSS before the array existed, so the array
    itself is one of the "× data". The scenarios run on a client of the same server that keeps
    no free chunk between calls (``shm_linger=0``), so that one scenario's chunk is not counted
    in the next.
    """
    with Bridge(bridge.address, shm_linger=0) as client:
        return _run(client, size)


def _run(bridge: Bridge, size: int) -> dict:
    bridge.eval(REWRITE_JL)
    pids = [os.getpid(), bridge.server_info["server_pid"], bridge.stats()["executor_pid"]]
    idle_pss, idle_rss = Sampler(pids).sample()
    rows, result = [], {}
    for label, in_shm, function in SCENARIOS:
        array = make_array(size)
        data = array.layout.nbytes
        if in_shm:
            array = bridge.call("rewritten", array)  # made by Julia; the ordinary original is let go
            gc.collect()
        with Sampler(pids) as sampler:
            back = bridge.call(function, array)
            total = float(np.sum(np.asarray(back.layout.content.data)))  # touch every returned page
            del back
        hwm = sum(_kib(p, "status", "VmHWM") for p in pids) * 1024
        extra_pss = sampler.peak_pss - idle_pss
        rows.append((label, data / 1e9, extra_pss / 1e9, extra_pss / data, (sampler.peak_rss - idle_rss) / data, hwm / 1e9))
        result[label] = extra_pss / data
        del array
        gc.collect()
        assert total > 0
    n_lists = make_array(size).layout.length
    for label, function in [("a new Julia result, Julia vectors", "new_in_julia"),
                            ("a new Julia result, shared_lists", "new_in_shm"),
                            ("a new Julia result, growing_lists", "new_grown")]:
        # each on a client (so an executor) of its own: Julia keeps the heap a scenario grew
        with Bridge(bridge.address, shm_linger=0) as client:
            client.eval(NEW_RESULT_JL)
            client.call(function, 2)   # compiled before it is measured
            own = [os.getpid(), client.server_info["server_pid"], client.stats()["executor_pid"]]
            own_idle_pss, own_idle_rss = Sampler(own).sample()
            with Sampler(own) as sampler:
                back = client.call(function, n_lists)
                data = back.layout.nbytes
                total = float(np.sum(np.asarray(back.layout.content.data)))
                del back
            hwm = sum(_kib(p, "status", "VmHWM") for p in own) * 1024
        extra_pss = sampler.peak_pss - own_idle_pss
        rows.append((label, data / 1e9, extra_pss / 1e9, extra_pss / data, (sampler.peak_rss - own_idle_rss) / data, hwm / 1e9))
        result[label] = extra_pss / data
        gc.collect()
        assert total > 0
    print_table(f"peak memory, client + server + executor (idle PSS {idle_pss / 1e6:.0f} MB subtracted)",
                ["array", "data GB", "peak PSS GB", "PSS × data", "RSS sum × data", "VmHWM sum GB"], rows)
    return result
