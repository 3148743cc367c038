"""Benchmark 2: transfer time against array size, bridge vs msgpack-over-zmq, pickle 5 and memcpy."""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import awkward as ak
import msgpack
import numpy as np

from bridge import Bridge

from _baselines import PickleEcho, ZmqEcho
from _report import median_time, print_table, save_plot


def make_array(nbytes: int) -> ak.Array:
    """A ``n * var * float64`` array whose buffers total about ``nbytes`` (4 values per list)."""
    n_lists = max(1, nbytes // (4 * 8 + 8))
    content = np.arange(4 * n_lists, dtype=np.float64)
    offsets = np.arange(0, 4 * n_lists + 1, 4, dtype=np.int64)
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), ak.contents.NumpyArray(content)))


def msgpack_message(array: ak.Array) -> bytes:
    """The form and buffers packed as one msgpack message, as a socket-copying bridge would send."""
    form, length, buffers = ak.to_buffers(array)
    return msgpack.packb({"form": form.to_json(), "length": length,
                          "buffers": {k: memoryview(np.ascontiguousarray(v)).cast("B") for k, v in buffers.items()}})


def run(bridge: Bridge, max_size: int, quick: bool) -> dict:
    """Time every method at sizes 1 KB, 16 KB, ... up to ``max_size`` ("sizes": one dict per
    size), then calls on arrays already in shared memory at the smallest and largest size, side
    by side ("in_shm", from ``in_shm_side_by_side``).

    "fresh" is an array in ordinary memory, copied into shared memory on every call by a
    default client: a chunk too large for its 64 MiB reserve lingers between the calls and is
    reused. "cold" is a second client on the same server that never keeps a chunk
    (``shm_linger=0``), so an array beyond the reserve gets a new chunk every call: the cost of a
    first call, or of calls further apart than the linger time.
    """
    sizes = [1 << k for k in range(10, 31, 2 if not quick else 4) if (1 << k) <= max_size]
    address = f"ipc://{tempfile.gettempdir()}/akb-bench-xfer-{os.getpid()}"
    zmq_echo, pickle_echo = ZmqEcho(address, unpack=True), PickleEcho()
    cold = Bridge(bridge.address, shm_linger=0)
    results = []
    try:
        for size in sizes:
            array = make_array(size)
            nbytes = array.layout.nbytes
            repeat = 3 if nbytes > (64 << 20) else (20 if quick else 50)
            source = np.ones(nbytes, dtype=np.uint8)  # memcpy of the same byte count: the limit
            target = np.empty_like(source)
            row = {"bytes": nbytes}
            row["memcpy"] = median_time(lambda: np.copyto(target, source), repeat)
            row["fresh"] = median_time(lambda: bridge.call("length", array), repeat)
            row["cold"] = median_time(lambda: cold.call("length", array), repeat)
            handle = bridge.send(array)
            # Calls on arrays already in shm are cheap at any size, so they get enough samples to
            # see past the first ones after the large transfers above, which are slower (an idle
            # vCPU's wake-up, docs/performance.md).
            cheap = 20 if quick else 100
            row["in_shm"] = median_time(lambda: bridge.call("length", handle), cheap, warmup=5)
            result = bridge.call("identity", handle)  # a result: its buffers live in a bridge segment
            row["result"] = median_time(lambda: bridge.call("length", result), cheap, warmup=5)
            del result
            handle.drop()
            row["msgpack_zmq"] = median_time(lambda: zmq_echo.roundtrip(msgpack_message(array)), repeat)
            row["pickle5"] = median_time(lambda: pickle_echo.roundtrip(array), repeat)
            results.append(row)
            del array, source, target
    finally:
        cold.close()
        zmq_echo.close()
        pickle_echo.close()
    return {"sizes": results, "in_shm": in_shm_side_by_side(bridge, sizes[0], sizes[-1], 20 if quick else 200)}


def in_shm_side_by_side(bridge: Bridge, small: int, large: int, samples: int) -> dict[str, float]:
    """Median seconds of a call on a handle and on a Julia result sent back, for arrays of
    ``small`` and ``large`` bytes, timed in turn so that both sizes see the same machine state
    (calls right after a large transfer are slower, docs/performance.md)."""
    handles = {size: bridge.send(make_array(size)) for size in (small, large)}
    results = {size: bridge.call("identity", handle) for size, handle in handles.items()}  # Julia copies a handle
    times: dict[str, list[float]] = {f"{kind}_{name}": [] for kind in ("handle", "result") for name in ("small", "large")}
    try:
        for _ in range(samples):
            for name, size in (("small", small), ("large", large)):
                for kind, argument in (("handle", handles[size]), ("result", results[size])):
                    start = time.perf_counter()
                    bridge.call("length", argument)
                    times[f"{kind}_{name}"].append(time.perf_counter() - start)
    finally:
        for handle in handles.values():
            handle.drop()
    return {key: statistics.median(values) for key, values in times.items()}


def report(measured: dict, floor: float) -> dict:
    """Print the tables, save the plot, and return the target ratios."""
    results, in_shm = measured["sizes"], measured["in_shm"]
    rows = []
    methods = ("memcpy", "fresh", "cold", "in_shm", "result", "msgpack_zmq", "pickle5")
    for r in results:
        rows.append((f"{r['bytes'] / 1e6:.3f} MB", *(r[k] * 1e3 for k in methods),
                     r["fresh"] / (r["memcpy"] + floor), r["cold"] / (r["memcpy"] + floor)))
    print_table("transfer (median ms)", ["size", "memcpy", "bridge fresh", "fresh, new chunk", "bridge handle",
                                         "bridge result", "msgpack/zmq", "pickle5/pipe", "fresh ÷ (memcpy+floor)",
                                         "new chunk ÷ (memcpy+floor)"], rows)
    x = [r["bytes"] for r in results]
    save_plot("transfer", "array bytes", "seconds (median)", {k: (x, [r[k] for r in results]) for k in methods})
    print_table(f"arrays in shared memory, {results[0]['bytes'] / 1e3:.0f} KB and {results[-1]['bytes'] / 1e6:.0f} MB "
                "timed in turn (median ms)", ["argument", "small", "large", "large ÷ small"],
                [(kind, in_shm[f"{kind}_small"] * 1e3, in_shm[f"{kind}_large"] * 1e3,
                  in_shm[f"{kind}_large"] / in_shm[f"{kind}_small"]) for kind in ("handle", "result")])
    return {
        "handle_big_vs_small": in_shm["handle_large"] / in_shm["handle_small"],
        "result_big_vs_small": in_shm["result_large"] / in_shm["result_small"],
        "fresh_vs_memcpy_floor": results[-1]["fresh"] / (results[-1]["memcpy"] + floor),
        "cold_vs_memcpy_floor": results[-1]["cold"] / (results[-1]["memcpy"] + floor),
        "largest": results[-1]["bytes"],
    }
