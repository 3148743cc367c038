"""Benchmark 7: analysis kernels written the natural way, over real NanoAOD events repeated to
500k: what writing each result type costs inside Julia against a memcpy of its bytes; each
kernel through the bridge against the same kernel timed inside Julia; one kernel written with
each way to reach a field; and the same loops in Numba over the same ``ak.Array`` (awkward's
Numba integration), with Julia's loops over the raw buffers as the floor under the views."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import awkward as ak
import numpy as np

from bridge import Bridge

from _report import median_time, print_table

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nanoAOD_2015_CMS_Open_Data_ttbar.root"

KERNELS_JL = r"""
median(times) = sort(times)[(length(times) + 1) ÷ 2]

# per-event sum of the pt of jets above 30 GeV: a number per event
ht30(events) = fill_ht30!(Vector{Float32}(undef, length(events)), events)

# the same, written straight into the client's shared memory (docs/kernels.md)
ht30_shared(events) = fill_ht30!(AwkwardBridge.shared_array(Float32, length(events)), events)

function fill_ht30!(out, events)
    for (i, ev) in enumerate(events)
        s = 0f0
        for jet in ev.Jet
            jet.pt > 30 && (s += jet.pt)
        end
        out[i] = s
    end
    return out
end

# whether an event has an opposite-charge muon pair of mass 60-120 GeV: a loop over pairs
function has_z(events)
    out = Vector{Bool}(undef, length(events))
    for (i, ev) in enumerate(events)
        mu = ev.Muon
        found = false
        for a in 1:length(mu), b in a+1:length(mu)
            ma, mb = mu[a], mu[b]
            ma.charge == mb.charge && continue
            m2 = 2 * ma.pt * mb.pt * (cosh(ma.eta - mb.eta) - cos(ma.phi - mb.phi))
            found |= 3600 < m2 < 14400
        end
        out[i] = found
    end
    return out
end

# The same loops over an index, unchecked, instead of iterating the events' records
# (docs/kernels.md, "Index loops").
function ht30_indexed(events)
    out = Vector{Float32}(undef, length(events))
    @inbounds for i in eachindex(events)
        s = 0f0
        for jet in events[i].Jet
            jet.pt > 30 && (s += jet.pt)
        end
        out[i] = s
    end
    return out
end

function n_dijet_indexed(events)
    n = 0
    @inbounds for i in eachindex(events)
        k = 0
        for jet in events[i].Jet
            k += jet.pt > 30
        end
        n += k >= 2
    end
    return n
end

function has_z_indexed(events)
    out = Vector{Bool}(undef, length(events))
    @inbounds for i in eachindex(events)
        mu = events[i].Muon
        found = false
        for a in eachindex(mu), b in a+1:lastindex(mu)
            ma, mb = mu[a], mu[b]
            ma.charge == mb.charge && continue
            m2 = 2 * ma.pt * mb.pt * (cosh(ma.eta - mb.eta) - cos(ma.phi - mb.phi))
            found |= 3600 < m2 < 14400
        end
        out[i] = found
    end
    return out
end

# a selection: how many events have two jets above 30 GeV
function n_dijet(events)
    n = 0
    for ev in events
        k = 0
        for jet in ev.Jet
            k += jet.pt > 30
        end
        n += k >= 2
    end
    return n
end

# `n_dijet` with other ways to reach each jet's pt (docs/kernels.md)
function n_dijet_projected(events)          # every event's pts as one jagged vector
    n = 0
    for pts in events.Jet.pt
        k = 0
        for pt in pts
            k += pt > 30
        end
        n += k >= 2
    end
    return n
end

function n_dijet_event_pts(events)          # one event's pts, a SubArray per event
    n = 0
    for ev in events
        k = 0
        for pt in ev.Jet.pt
            k += pt > 30
        end
        n += k >= 2
    end
    return n
end

function n_dijet_pts_inbounds(events)       # an index loop over each list, unchecked
    n = 0
    for pts in events.Jet.pt
        k = 0
        @inbounds for j in eachindex(pts)
            k += pts[j] > 30
        end
        n += k >= 2
    end
    return n
end

# The same loops over the buffers under the views (offsets and columns, unchecked), written as
# by hand without views: the floor that no view design goes below.
list_buffers(lists) = getfield(lists, :content), getfield(lists, :starts), getfield(lists, :stops)

function ht30_raw(events)
    pt, starts, stops = list_buffers(events.Jet.pt)
    out = Vector{Float32}(undef, length(events))
    @inbounds for i in eachindex(starts)
        s = 0f0
        for j in starts[i]+1:stops[i]
            pt[j] > 30 && (s += pt[j])
        end
        out[i] = s
    end
    return out
end

function has_z_raw(events)
    muons, starts, stops = list_buffers(events.Muon)
    pt, eta, phi, charge = muons.pt, muons.eta, muons.phi, muons.charge
    out = Vector{Bool}(undef, length(events))
    @inbounds for i in eachindex(starts)
        found = false
        for a in starts[i]+1:stops[i], b in a+1:stops[i]
            charge[a] == charge[b] && continue
            m2 = 2 * pt[a] * pt[b] * (cosh(eta[a] - eta[b]) - cos(phi[a] - phi[b]))
            found |= 3600 < m2 < 14400
        end
        out[i] = found
    end
    return out
end

function n_dijet_raw(events)
    pt, starts, stops = list_buffers(events.Jet.pt)
    n = 0
    @inbounds for i in eachindex(starts)
        k = 0
        for j in starts[i]+1:stops[i]
            k += pt[j] > 30
        end
        n += k >= 2
    end
    return n
end

# a jagged result: the pts of each event's jets above 30 GeV
good_jet_pts(events) = [Float32[j.pt for j in ev.Jet if j.pt > 30] for ev in events]
function good_jet_pts_grown(events)
    pts = AwkwardBridge.growing_lists(Float32)
    for ev in events
        for jet in ev.Jet
            jet.pt > 30 && push!(pts, jet.pt)
        end
        end_list!(pts)
    end
    return pts
end

# per-event records
function event_summary(events)
    out = Vector{NamedTuple{(:ht, :njet),Tuple{Float32,Int32}}}(undef, length(events))
    for (i, ev) in enumerate(events)
        ht, n = 0f0, Int32(0)
        for jet in ev.Jet
            jet.pt > 30 || continue
            ht += jet.pt
            n += Int32(1)
        end
        out[i] = (ht = ht, njet = n)
    end
    return out
end

"Median seconds of `f(x)` inside Julia, after one run that compiles it and a collection."
function inside(f, x, repeat)
    # on a task of its own, outside the call, so shared_array uses Julia memory as a kernel's
    # scratch vector would, instead of taking a new block of the client's arena each time
    return fetch(@async begin
        f(x)
        collected()
        median([@elapsed(f(x)) for _ in 1:repeat])
    end)
end

# A kernel's output reuses memory that Julia's GC has freed, as numpy's `np.empty` does at once;
# without a collection first, how many of the timed outputs land on fresh pages, about 0.6 ms
# for 2 MB here, depends on where in its GC cycle the executor is (docs/performance.md).
collected() = (GC.gc(); nothing)

"Median seconds of writing `x` as Awkward buffers (`place_array`) and of a memcpy of its bytes."
function write_back(x, repeat)
    block = UInt8[]
    allocate(n) = (length(block) < n && resize!(block, n); ("julia", 0, pointer(block)))
    ref = AwkwardBridge.place_array(x, allocate)
    nbytes = sum(b.nbytes for b in values(ref.buffers))
    placing = median([@elapsed(AwkwardBridge.place_array(x, allocate)) for _ in 1:repeat])
    source, target = rand(UInt8, nbytes), Vector{UInt8}(undef, nbytes)
    copying = median([@elapsed(copyto!(target, source)) for _ in 1:repeat])
    return placing, copying, nbytes
end

const N = 1_000_000
const WRITE_BACK_CASES = [
    ("numbers (Float64)", () -> rand(N)),
    ("options (?float64)", () -> [isodd(i) ? missing : Float64(i) for i in 1:N]),
    ("strings", () -> [string(i) for i in 1:N]),
    ("jagged (var * float32, 0-4 per list)", () -> [rand(Float32, i % 5) for i in 1:N]),
    ("records ({x: float64, y: int64})", () -> [(x = Float64(i), y = i) for i in 1:N]),
    ("lists of records (var * {x, y}, 0-3 per list)", () -> [[(x = Float32(j), y = j) for j in 1:i % 4] for i in 1:N]),
    ("jagged, a ListVector over one content vector (0-4 per list)", () -> flat_lists(i -> i % 5, n -> rand(Float32, n))),
    ("lists of records, a ListVector over columns (0-3 per list)",
     () -> flat_lists(i -> i % 4, n -> RecordVector((x = rand(Float32, n), y = collect(1:n)), n, AwkwardBridge.Parameters()))),
]

# N lists of `count(i)` items each over one content of `total` items, `content(total)`: a
# jagged result built count-then-fill (docs/kernels.md), or an argument's selection
function flat_lists(count, content)
    offsets = cumsum([0; [count(i) for i in 1:N]])
    return ListVector(content(offsets[end]), view(offsets, 1:N), view(offsets, 2:N+1), AwkwardBridge.Parameters())
end
write_back_table(repeat) = [(name, write_back(make(), repeat)...) for (name, make) in WRITE_BACK_CASES]
"""

KERNELS = [
    ("ht30", "a number per event (Vector{Float32})"),
    ("ht30_shared", "the same, built in shared memory"),
    ("has_z", "a Bool per event, over muon pairs"),
    ("n_dijet", "one number (a selection count)"),
    ("good_jet_pts", "a jagged vector"),
    ("good_jet_pts_grown", "the same, grown in shared memory"),
    ("event_summary", "per-event records"),
]

# `n_dijet` written with each way to reach a jet's pt, and over the raw buffers for reference
FIELD_ACCESS = [
    ("n_dijet", "for jet in ev.Jet ... jet.pt"),
    ("n_dijet_projected", "for pts in events.Jet.pt ... for pt in pts"),
    ("n_dijet_event_pts", "for ev in events ... for pt in ev.Jet.pt"),
    ("n_dijet_pts_inbounds", "for pts in events.Jet.pt ... @inbounds pts[j]"),
    ("n_dijet_raw", "the offsets and pt buffers, @inbounds (no views)"),
]


# the Julia loops set against each Numba loop: a Julia kernel, and the Numba kernel it matches
AGAINST_NUMBA = [(f"{name}{variant}", name) for name in ("ht30", "has_z", "n_dijet") for variant in ("", "_indexed")]


def load_events(n: int) -> ak.Array:
    """Jets, muons and MET of a real NanoAOD file, zipped as coffea does, repeated to ``n`` events."""
    import uproot

    tree = uproot.open(DATA)["Events"]
    arrays = tree.arrays(filter_name=["Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Muon_pt", "Muon_eta",
                                      "Muon_phi", "Muon_mass", "Muon_charge", "MET_pt", "MET_phi"], how="zip")
    events = ak.zip({"Jet": arrays.Jet, "Muon": arrays.Muon,
                     "MET": ak.zip({"pt": arrays.MET_pt, "phi": arrays.MET_phi})}, depth_limit=1)
    copies = -(-n // len(events))
    return ak.to_packed(ak.concatenate([events] * copies)[:n])


def numba_kernels() -> Optional[dict[str, Callable[[ak.Array], object]]]:
    """The same loops compiled by Numba, iterating the ``ak.Array`` itself, or None without Numba."""
    try:
        import numba
    except ImportError:
        return None

    @numba.njit
    def ht30(events, out):
        for i in range(len(events)):
            s = np.float32(0)
            for jet in events[i].Jet:
                if jet.pt > 30:
                    s += jet.pt
            out[i] = s
        return out

    @numba.njit
    def has_z(events, out):
        for i in range(len(events)):
            mu = events[i].Muon
            found = False
            for a in range(len(mu)):
                for b in range(a + 1, len(mu)):
                    if mu[a].charge == mu[b].charge:
                        continue
                    m2 = 2 * mu[a].pt * mu[b].pt * (np.cosh(mu[a].eta - mu[b].eta) - np.cos(mu[a].phi - mu[b].phi))
                    found |= 3600 < m2 < 14400
            out[i] = found
        return out

    @numba.njit
    def n_dijet(events):
        n = 0
        for ev in events:
            k = 0
            for jet in ev.Jet:
                k += jet.pt > 30
            n += k >= 2
        return n

    return {
        "ht30": lambda ev: ht30(ev, np.empty(len(ev), np.float32)),
        "has_z": lambda ev: has_z(ev, np.empty(len(ev), np.bool_)),
        "n_dijet": n_dijet,
    }


def run(bridge: Bridge, quick: bool) -> dict:
    """Print the three tables; return the ratios the targets are read from."""
    if not DATA.exists():
        print(f"\n== kernels: skipped, {DATA} is absent")
        return {}
    repeat = 3 if quick else 7
    bridge.eval(KERNELS_JL)
    write_back = bridge.call("write_back_table", repeat).to_list()
    print_table("writing 1M elements of each result type inside Julia (median ms)",
                ["result", "place_array", "memcpy of its bytes", "×", "MB"],
                [(name, t * 1e3, m * 1e3, t / m, n / 1e6) for name, t, m, n in write_back])

    events = load_events(100_000 if quick else 500_000)
    handle = bridge.send(events)
    try:
        through = {}
        rows = []
        for name, what in KERNELS:
            t_inside = bridge.call("inside", bridge.eval(name), handle, repeat)
            bridge.call("collected")
            t_bridge = median_time(lambda: bridge.call(name, handle), repeat)
            through[name] = t_bridge / t_inside
            rows.append((f"{name}: {what}", t_inside * 1e3, t_bridge * 1e3, t_bridge / t_inside))
        print_table(f"kernels over {len(events)} events: through the bridge vs inside Julia (median ms)",
                    ["kernel", "inside Julia", "through the bridge", "×"], rows)
        # two rounds, the variants in alternation, so that a slow moment of the machine shows
        # as a difference between rounds rather than between variants
        rounds = [[bridge.call("inside", bridge.eval(name), handle, repeat) for name, _ in FIELD_ACCESS]
                  for _ in range(2)]
        print_table(f"n_dijet over {len(events)} events, each way to reach a jet's pt, inside Julia (median ms)",
                    ["inner loop", "round 1", "round 2"],
                    [(what, first * 1e3, second * 1e3)
                     for (_, what), first, second in zip(FIELD_ACCESS, *rounds)])
        numba = numba_kernels()
        speed = {}
        if numba is None:
            print("\n== kernels: numba is not installed (the bench extra)")
        else:
            rows = []
            for name, numba_name in AGAINST_NUMBA:
                kernel = numba[numba_name]
                expected = kernel(events)
                got = bridge.call(name, handle)
                same = np.array_equal(np.asarray(got), np.asarray(expected)) if numba_name != "ht30" else \
                    np.allclose(np.asarray(got), np.asarray(expected), rtol=1e-5)
                t_numba = median_time(lambda: kernel(events), repeat)
                t_julia = bridge.call("inside", bridge.eval(name), handle, repeat)
                t_raw = bridge.call("inside", bridge.eval(f"{numba_name}_raw"), handle, repeat)
                speed[name] = t_julia / t_numba
                rows.append((name, t_numba * 1e3, t_julia * 1e3, t_julia / t_numba, t_raw * 1e3,
                             t_raw / t_numba, "yes" if same else "NO"))
            print_table(f"the same loops in Numba over the ak.Array, in Julia over the views and over the raw "
                        f"buffers, {len(events)} events (median ms)",
                        ["kernel", "numba", "Julia (inside)", "Julia / numba", "Julia, raw buffers",
                         "raw / numba", "same answer"], rows)
    finally:
        handle.drop()
    return {"through": through, "vs_numba": speed, "write_back": {n: t / m for n, t, m, _ in write_back}}
