"""Run the whole benchmark suite: ``python benchmarks/run.py [--quick] [--max-size BYTES]``.

Prints one table per benchmark and the issue's target table; plots go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge import Bridge  # noqa: E402

import kernels, latency, memory, seed_workload, supervision, throughput, transfer  # noqa: E402,E401
from _report import print_table  # noqa: E402

GIB = 1 << 30


def default_max_size() -> int:
    """1 GiB when /dev/shm and RAM have room for ~6 copies (baselines included), else 64 MiB."""
    shm = os.statvfs("/dev/shm")
    free_shm = shm.f_bavail * shm.f_frsize
    with open("/proc/meminfo") as f:
        avail = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    return GIB if min(free_shm, avail) > 6 * GIB else 64 << 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast subset (small sizes, 1-2 clients)")
    parser.add_argument("--max-size", type=int, default=None, help="largest transfer size in bytes")
    args = parser.parse_args()
    max_size = args.max_size or ((16 << 20) if args.quick else default_max_size())
    print(f"load average at start: {os.getloadavg()}")
    with Bridge() as bridge:
        lat = latency.run(bridge, args.quick)
        xfer = transfer.report(transfer.run(bridge, max_size, args.quick), lat["floor"])
        seed = seed_workload.run(bridge, args.quick)
        thr = throughput.run(bridge, args.quick)
        mem = memory.run(bridge, min(max_size, GIB))
        kern = kernels.run(bridge, args.quick)
    sup = supervision.run(args.quick)
    spin, noop, comp = thr["spin"], thr["noop"], thr["compute"]
    targets = [
        ("no-argument call", "≤ 1.5× floor", lat["noarg"] / lat["floor"], lat["noarg"] / lat["floor"] <= 1.5),
        ("call with a small array", "≤ 2× floor", lat["small"] / lat["floor"], lat["small"] / lat["floor"] <= 2),
        (f"handle at {xfer['largest'] / 1e6:.0f} MB vs 1 KB", "≤ 1.5×", xfer["handle_big_vs_small"], xfer["handle_big_vs_small"] <= 1.5),
        (f"result at {xfer['largest'] / 1e6:.0f} MB vs 1 KB", "≤ 1.5×", xfer["result_big_vs_small"], xfer["result_big_vs_small"] <= 1.5),
        ("ordinary memory vs memcpy + floor", "≤ 1.3×", xfer["fresh_vs_memcpy_floor"], xfer["fresh_vs_memcpy_floor"] <= 1.3),
        ("the same, a new chunk (first call)", "≤ 1.3×", xfer["cold_vs_memcpy_floor"], xfer["cold_vs_memcpy_floor"] <= 1.3),
        ("seed path_length vs ak.sum", "≤ 3×", seed["fresh"] / seed["ak_sum"], seed["fresh"] / seed["ak_sum"] <= 3),
        ("peak memory (PSS), ordinary array", "≤ 1.2× data", mem["from ordinary memory"], mem["from ordinary memory"] <= 1.2),
        ("peak memory (PSS), a Julia result (in shm)", "≤ 1.2× data", mem["a Julia result (in shm)"], mem["a Julia result (in shm)"] <= 1.2),
        ("peak memory (PSS), a new result built in shm", "≤ 1.1× data", mem["a new Julia result, shared_lists"], mem["a new Julia result, shared_lists"] <= 1.1),
        ("throughput 2 vs 1 client (10 ms compute call)", "≥ 1.8×", comp[1] / comp[0], comp[1] / comp[0] >= 1.8),
        ("the same, ~0.5 ms compute call", "≥ 1.8×", spin[1] / spin[0], spin[1] / spin[0] >= 1.8),
        (f"throughput {thr['clients'][-1]} vs 1 client (no-arg call)", "≥ 1×", noop[-1] / noop[0], noop[-1] / noop[0] >= 1),
        ("an interrupt to CallInterrupted (code that stops)", "≤ 2 s", sup["interrupt"], sup["interrupt"] <= 2),
        ("a crash to ExecutorDied", "≤ 1 s", sup["crash"], sup["crash"] <= 1),
    ]
    for name, ratio in kern.get("vs_numba", {}).items():
        targets.append((f"{name}: Julia over the views vs Numba", "≤ 1.2×", ratio, ratio <= 1.2))
    for name, ratio in kern.get("through", {}).items():
        targets.append((f"{name}: through the bridge vs inside Julia", "≤ 1.15×", ratio, ratio <= 1.15))
    for name, ratio in kern.get("write_back", {}).items():
        targets.append((f"writing {name} vs memcpy", "≤ 3×", ratio, ratio <= 3))
    print_table("targets (issues 5, 11 and 13)", ["figure", "target", "measured", "pass"],
                [(f, t, m, "pass" if ok else "FAIL") for f, t, m, ok in targets])
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
