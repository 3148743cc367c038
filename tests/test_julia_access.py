"""Awkward-style access in Julia kernels (docs/types.md): fields projected through lists of
records, selections that keep field access, and the results such kernels return (records,
structs, vectors of structs, matrices), over real NanoAOD events where they are present."""

from __future__ import annotations


import awkward as ak
import numpy as np
import pytest

from bridge import Bridge

from _data import DATA, need

NANO = DATA / "nanoAOD_2015_CMS_Open_Data_ttbar.root"
WIDE = DATA / "coffea_nano_tt_v15.root"

KERNELS_JL = """
# the natural per-event loop: jets of one event are records, ev.Jet.pt one event's pts
function ht30(events)
    out = Vector{Float32}(undef, length(events))
    for (i, ev) in enumerate(events)
        s = 0f0
        for jet in ev.Jet
            jet.pt > 30 && (s += jet.pt)
        end
        out[i] = s
    end
    return out
end
leading_pt(events) = [isempty(ev.Jet.pt) ? missing : maximum(ev.Jet.pt) for ev in events]
all_jet_pts(events) = events.Jet.pt
met_with_jets(events) = filter(ev -> length(ev.Jet) >= 4, events).MET.pt
first_events(events, n) = events[1:n].Jet.eta
central_jet_pts(events) = [[j.pt for j in ev.Jet if abs(j.eta) < 1] for ev in events]

struct Dijet
    mass::Float64
    leading::Float32
end
function dijets(events)
    out = Dijet[]
    for ev in events
        length(ev.Jet) < 2 && continue
        j1, j2 = ev.Jet[1], ev.Jet[2]
        push!(out, Dijet(2 * j1.pt * j2.pt * (cosh(j1.eta - j2.eta) - cos(j1.phi - j2.phi)), j1.pt))
    end
    return out
end
first_dijet(events) = dijets(events)[1]
first_event(events) = events[1]
jet_matrix(events, n) = [events[i].Jet[j].pt for i in 1:n, j in 1:2]
"""


@pytest.fixture(scope="module")
def bridge():
    with Bridge() as shared:
        shared.eval(KERNELS_JL)
        yield shared


@pytest.fixture(scope="module")
def nano() -> ak.Array:
    need(NANO)
    import uproot

    tree = uproot.open(NANO)["Events"]
    # Jet_pt, Jet_eta, … zipped into records, as coffea and physicists read NanoAOD
    arrays = tree.arrays(filter_name=["Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "MET_pt", "MET_phi"], how="zip")
    met = ak.zip({"pt": arrays.MET_pt, "phi": arrays.MET_phi})
    return ak.zip({"Jet": arrays.Jet, "MET": met}, depth_limit=1)


def test_a_loop_over_each_events_jet_records(bridge: Bridge, nano: ak.Array) -> None:
    pt = nano.Jet.pt
    expected = ak.to_numpy(ak.sum(pt[pt > 30], axis=1))
    assert np.allclose(bridge.call("ht30", nano).to_numpy(), expected, rtol=1e-6)
    assert 0 < np.count_nonzero(expected) < len(nano)
    leading = bridge.call("leading_pt", nano).to_list()
    assert leading == ak.max(pt, axis=1).to_list()


def test_fields_project_through_lists_and_selections_keep_them(bridge: Bridge, nano: ak.Array) -> None:
    assert ak.array_equal(bridge.call("all_jet_pts", nano), nano.Jet.pt)
    expected = nano[ak.num(nano.Jet) >= 4].MET.pt
    assert 0 < len(expected) < len(nano)
    assert ak.array_equal(bridge.call("met_with_jets", nano), expected)
    assert ak.array_equal(bridge.call("first_events", nano, 5), nano[:5].Jet.eta)
    jets = nano.Jet
    assert bridge.call("central_jet_pts", nano).to_list() == jets.pt[abs(jets.eta) < 1].to_list()


def test_structs_records_and_matrices_come_back(bridge: Bridge, nano: ak.Array) -> None:
    dijets = bridge.call("dijets", nano)
    assert dijets.fields == ["mass", "leading"]
    assert ak.parameters(dijets) == {"__record__": "Dijet"}
    two = nano[ak.num(nano.Jet) >= 2]
    j1, j2 = two.Jet[:, 0], two.Jet[:, 1]
    mass = 2 * j1.pt * j2.pt * (np.cosh(j1.eta - j2.eta) - np.cos(j1.phi - j2.phi))
    assert np.allclose(dijets.mass.to_numpy(), ak.to_numpy(mass), rtol=1e-5)
    assert ak.array_equal(dijets.leading, j1.pt)

    first = bridge.call("first_dijet", nano)
    assert first == {"mass": pytest.approx(dijets.mass[0]), "leading": pytest.approx(dijets.leading[0])}

    event = bridge.call("first_event", nano)   # one record of the view: a dict of its fields
    assert set(event) == {"Jet", "MET"}
    assert event["MET"] == {"pt": pytest.approx(nano.MET.pt[0]), "phi": pytest.approx(nano.MET.phi[0])}
    assert ak.array_equal(event["Jet"].pt, nano.Jet.pt[0])

    matrix = bridge.call("jet_matrix", two, 3)
    assert str(matrix.type) == "3 * 2 * float32"
    assert np.array_equal(ak.to_numpy(matrix), ak.to_numpy(two.Jet.pt[:3, :2]))


VIEW_RESULTS_JL = """
jets_per_event(events) = [ev.Jet for ev in events]                                  # views of one array
good_jets_per_event(events) = [filter(j -> j.pt > 30, ev.Jet) for ev in events]     # selections of it
good_jet_records(events) = [collect(filter(j -> j.pt > 30, ev.Jet)) for ev in events]   # Vector{Vector{Record}}
first_jets(events) = [ev.Jet[1] for ev in events if !isempty(ev.Jet)]               # Vector{Record}
pts_or_nothing(events) = [isempty(ev.Jet) ? Missing[] : Float64[j.pt for j in ev.Jet] for ev in events]
"""


def test_results_made_of_views_come_back(bridge: Bridge, nano: ak.Array) -> None:
    bridge.eval(VIEW_RESULTS_JL)
    jets = nano.Jet
    assert bridge.call("jets_per_event", nano).to_list() == jets.to_list()
    good = jets[jets.pt > 30]
    assert 0 < ak.sum(ak.num(good)) < ak.sum(ak.num(jets))
    assert bridge.call("good_jets_per_event", nano).to_list() == good.to_list()
    assert bridge.call("good_jet_records", nano).to_list() == good.to_list()
    firsts = jets[ak.num(jets) > 0][:, 0]
    assert bridge.call("first_jets", nano).to_list() == firsts.to_list()
    lists = bridge.call("pts_or_nothing", nano)
    assert str(lists.type) == f"{len(nano)} * var * ?float64"
    assert lists.to_list() == ak.values_astype(jets.pt, np.float64).to_list()


def test_results_without_data(bridge: Bridge) -> None:
    bridge.eval("struct Hit; layer::Int; charge::Float64; end")
    assert bridge.eval("Hit(3, 0.5)") == {"layer": 3, "charge": 0.5}
    hits = bridge.eval("[Hit(1, 0.1), Hit(2, 0.2)]")
    assert hits.to_list() == [{"layer": 1, "charge": 0.1}, {"layer": 2, "charge": 0.2}]
    assert ak.parameters(hits) == {"__record__": "Hit"}
    matrix = bridge.eval("[1 2 3; 4 5 6]")
    assert ak.to_numpy(matrix).tolist() == [[1, 2, 3], [4, 5, 6]]
    cube = bridge.eval("reshape(collect(1:24), 2, 3, 4)")
    assert np.array_equal(ak.to_numpy(cube), np.arange(1, 25).reshape(4, 3, 2).transpose(2, 1, 0))
    assert bridge.eval("[(pt = 1.5, q = -1), (pt = 2.5, q = 1)]").to_list() == [{"pt": 1.5, "q": -1}, {"pt": 2.5, "q": 1}]


def test_a_numpy_matrix_arrives_with_its_shape(bridge: Bridge) -> None:
    matrix = np.arange(12.0).reshape(3, 4)
    assert bridge.call("size", matrix) == (3, 4)
    assert bridge.eval("row_sums(m) = vec(sum(m; dims=2))") is not None
    assert bridge.call("row_sums", matrix).to_list() == matrix.sum(axis=1).tolist()
    assert bridge.call("getindex", matrix, 2, 4) == matrix[1, 3]
    assert np.array_equal(ak.to_numpy(bridge.call("copy", matrix)), matrix)   # a Matrix comes back as rows


BUFFERS_JL = """
# the seed's triple, as AwkwardArray.jl's from_buffers takes it and to_buffers makes it
argument_triple(x) = AwkwardBridge.buffers(x)
function triple_summary(x)
    form, len, containers = AwkwardBridge.buffers(x)
    return (form, len, sort(collect(keys(containers))), sum(length, values(containers)))
end
zero_copy(x) = AwkwardBridge.buffers(x)[3]["node1-data"] isa Vector{UInt8}
writes_into_triple(x) = (AwkwardBridge.buffers(x)[3]["node1-data"][1] = 0x00; true)
projected_triple(events) = AwkwardBridge.buffers(events.Jet.pt)
# a triple built by hand, as AwkwardArray.to_buffers(array) returns it
hand_triple() = ("{\\"class\\": \\"ListOffsetArray\\", \\"offsets\\": \\"i64\\", \\"content\\": " *
                 "{\\"class\\": \\"NumpyArray\\", \\"primitive\\": \\"float32\\", \\"form_key\\": \\"node1\\"}, \\"form_key\\": \\"node0\\"}",
                 2, Dict("node0-offsets" => collect(reinterpret(UInt8, Int64[0, 2, 3])),
                         "node1-data" => collect(reinterpret(UInt8, Float32[1.5, 2.5, 3.5]))))
broken_triple() = (hand_triple()[1], 2, Dict("node0-offsets" => collect(reinterpret(UInt8, Int64[0, 2, 9])),
                                            "node1-data" => collect(reinterpret(UInt8, Float32[1.5]))))
not_a_triple() = ("just a string", 2, Dict("x" => UInt8[1]))
"""


def test_buffers_give_the_seeds_triple_and_a_triple_comes_back(bridge: Bridge) -> None:
    bridge.eval(BUFFERS_JL)
    array = ak.Array([[1.0, 2.0], [], [3.0]])
    form, length, keys, nbytes = bridge.call("triple_summary", array)
    assert length == 3 and keys.to_list() == ["node0-offsets", "node1-data"] and nbytes == 4 * 8 + 3 * 8
    assert ak.forms.from_json(form) == array.layout.form
    assert bridge.call("zero_copy", array) is True          # the argument's bytes in shared memory
    with pytest.raises(Exception, match="read-only"):
        bridge.call("writes_into_triple", array)
    # a triple returned as a tuple is taken as the array it describes
    assert ak.array_equal(bridge.call("argument_triple", array), array)
    events = ak.Array([{"Jet": [{"pt": 1.0}, {"pt": 2.0}]}, {"Jet": []}])
    assert ak.array_equal(bridge.call("projected_triple", events), events.Jet.pt)
    hand = bridge.call("hand_triple")
    assert hand.to_list() == [[1.5, 2.5], [3.5]] and str(hand.type) == "2 * var * float32"
    with pytest.raises(Exception, match="InvalidArray|offset"):
        bridge.call("broken_triple")
    assert bridge.call("not_a_triple") == ("just a string", 2, {"x": [1]})


def test_every_branch_of_a_nanoaod_file(bridge: Bridge) -> None:
    # 2656 branches: a record that wide keeps its field names as data (views/wide_columns.jl)
    need(WIDE)
    import uproot

    events = uproot.open(WIDE)["Events"].arrays()
    assert len(events.fields) > 2000
    assert ak.array_equal(bridge.call("copy", events), events, equal_nan=True, dtype_exact=True, check_parameters=True)
    bridge.eval("leading_jet_pt(events) = [isempty(e.Jet_pt) ? missing : e.Jet_pt[1] for e in events]")
    expected = ak.firsts(events.Jet_pt)
    assert bridge.call("leading_jet_pt", events).to_list() == expected.to_list()
    assert ak.array_equal(bridge.call("column", events, "Muon_pt"), events.Muon_pt)



SHARED_JL = """
function shared_ht(events)          # one number per event, written where Python will read it
    out = AwkwardBridge.shared_array(Float32, length(events))
    for (i, ev) in enumerate(events)
        out[i] = mapreduce(j -> j.pt > 30 ? j.pt : 0f0, +, ev.Jet; init=0f0)
    end
    return out
end
function shared_good_jets(events)   # count, then fill: a jagged result of records
    counts = [count(j -> j.pt > 30, ev.Jet) for ev in events]
    lists = AwkwardBridge.shared_lists(@NamedTuple{pt::Float32, eta::Float32}, counts)
    for (i, ev) in enumerate(events)
        k = 0
        for j in ev.Jet
            j.pt > 30 || continue
            k += 1
            lists[i].pt[k] = j.pt
            lists[i].eta[k] = j.eta
        end
    end
    return lists
end
function shared_summary(events)
    out = AwkwardBridge.shared_records(length(events); njet=Int32, ht=Float64)
    for (i, ev) in enumerate(events)
        out.njet[i] = length(ev.Jet)
        out.ht[i] = mapreduce(j -> Float64(j.pt), +, ev.Jet; init=0.0)
    end
    return out
end
big_in_julia(n) = fill(1.0, n)
big_in_shm(n) = fill!(AwkwardBridge.shared_array(Float64, n), 1.0)
big_grown(n) = (v = AwkwardBridge.growing_array(Float64); for _ in 1:n push!(v, 1.0) end; v)
"""


def test_results_built_in_shared_memory(bridge: Bridge, nano: ak.Array) -> None:
    bridge.eval(SHARED_JL)
    jets = nano.Jet
    ht = bridge.call("shared_ht", nano)
    assert str(ht.type) == f"{len(nano)} * float32"
    assert np.allclose(ht.to_numpy(), ak.to_numpy(ak.sum(jets.pt[jets.pt > 30], axis=1)), rtol=1e-6)
    good = bridge.call("shared_good_jets", nano)
    assert str(good.type) == f"{len(nano)} * var * {{pt: float32, eta: float32}}"
    assert good.to_list() == ak.zip({"pt": jets.pt, "eta": jets.eta})[jets.pt > 30].to_list()
    summary = bridge.call("shared_summary", nano)
    assert summary.njet.to_list() == ak.num(jets).to_list()
    assert np.allclose(summary.ht.to_numpy(), ak.to_numpy(ak.sum(ak.values_astype(jets.pt, np.float64), axis=1)))
    with pytest.raises(Exception, match="numbers or Bool"):
        bridge.eval("AwkwardBridge.shared_array(String, 3)")


def _status_bytes(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))


def _rss_from_now(pid: int) -> int:
    """The process's resident memory now, from which its peak (VmHWM) counts again: a peak left
    by compilation would otherwise hide what the call under test adds."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")   # resets VmHWM to VmRSS (Linux ≥ 4.0, the process's owner)
        return _status_bytes(pid, "VmRSS")
    except OSError:        # elsewhere: the old peak, as the best there is
        return _status_bytes(pid, "VmHWM")


def test_a_result_built_in_shared_memory_is_not_copied() -> None:
    # Three executors make the same 400 MB result, one in Julia memory (which the bridge copies
    # into shared memory), one in shared memory from the start, one grown there with push!:
    # the first one's peak memory holds it twice, the others' once.
    n = 50_000_000
    grew = {}
    for function in ("big_in_julia", "big_in_shm", "big_grown"):
        with Bridge() as b:
            b.eval(SHARED_JL)
            b.call(function, 10)   # compiled first
            pid = b.stats()["executor_pid"]
            before = _rss_from_now(pid)
            result = b.call(function, n)
            assert len(result) == n and float(result[n - 1]) == 1.0
            grew[function] = _status_bytes(pid, "VmHWM") - before
            del result
    data = 8 * n
    assert 0.9 * data < grew["big_in_shm"] < 1.3 * data, grew
    assert 0.9 * data < grew["big_grown"] < 1.3 * data, grew
    assert grew["big_in_julia"] > 1.7 * data, grew
