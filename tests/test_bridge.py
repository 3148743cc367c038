"""End to end: the Bridge API against one private Julia server shared by the whole module."""

from __future__ import annotations

import gc
import os
import threading
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from bridge import Bridge, BridgeError, FunctionNotFound, JuliaError, JuliaFunction, ResultTypeError, ShownValue
from bridge.client.client import _returned_argument
from bridge.codec import PlacedArray
from bridge.shm import SHM_DIR
from bridge.wire import ArrayRef, BufferRef, segment_name, segment_pid

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

PATH_LENGTH_JL = Path(__file__).resolve().parents[1] / "bridge" / "examples" / "path_length.jl"

HELPERS = """
total(events) = (t = 0.0; for event in events, x in event; t += x; end; t)
counts(events) = [length(event) for event in events]
column_x(records) = [r.x for r in records]
describe(a, n, s, t, d, z, b) = (length(a), 2n, uppercase(s), t[2], d["k"], z === nothing, !b)
fails(x) = error("bad value $x")
make_ref() = Ref(1)
function muon_pt_sum(events)
    t = 0.0
    for event in events, i in 1:length(event.Muon_Px)
        t += hypot(Float64(event.Muon_Px[i]), Float64(event.Muon_Py[i]))
    end
    return t
end
"""


@pytest.fixture(scope="module")
def bridge():
    with Bridge() as shared:
        assert isinstance(shared.eval(HELPERS), JuliaFunction)  # the value of the last definition
        shared.include(PATH_LENGTH_JL)
        shared.call("length", [1.0])  # creates the arena chunk that outlives each test (bridge/shm/arena.py)
        yield shared


def segments_of(pid: int) -> set[str]:
    return {name for name in os.listdir(SHM_DIR) if segment_pid(name) == pid}


def jagged(n_events: int, seed: int) -> ak.Array:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(2.5, n_events)
    return ak.unflatten(rng.normal(0.0, 5.0, counts.sum()), counts)


def assert_same(result: ak.Array, expected: ak.Array) -> None:
    assert isinstance(result, ak.Array)
    assert result.type == expected.type
    assert ak.array_equal(result, expected, dtype_exact=True, check_parameters=True)


def test_issue_example(bridge, shm_clean):
    array = ak.Array([[1, 2, 3], [4], [5, 6, 7]])
    result = bridge.call("path_length", array)
    assert isinstance(result, float)
    assert result == float(ak.sum(array)) == 28.0


NUMERIC_DTYPES = [
    "bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
]


@pytest.mark.parametrize("dtype", NUMERIC_DTYPES)
def test_numpy_array_round_trip(bridge, shm_clean, dtype):
    values = np.random.default_rng(7).integers(0, 100, 50)
    array = ak.Array(values.astype(dtype) if dtype != "bool" else values % 3 == 0)
    assert_same(bridge.call("copy", array), array)


def _list_array() -> ak.Array:
    content = ak.contents.NumpyArray(np.arange(10, dtype=np.float64))
    starts = ak.index.Index64(np.array([6, 0, 3, 3]))
    stops = ak.index.Index64(np.array([9, 2, 3, 5]))
    return ak.Array(ak.contents.ListArray(starts, stops, content))


RECORDS = ak.Array([{"x": 1, "y": [1.5, 2.5], "name": "a"}, {"x": 2, "y": [], "name": "bb"}, {"x": 3, "y": [3.5], "name": ""}])
LAYOUTS = {
    "ListOffsetArray": ak.Array([[1.1, 2.2, 3.3], [], [4.4, 5.5]]),
    "ListArray": _list_array(),
    "RegularArray": ak.to_regular(ak.Array([[1, 2, 3], [4, 5, 6]]), axis=1),
    "RecordArray": RECORDS,
    "tuples": ak.Array([(1, 2.5, [True]), (3, 4.5, [])]),
    "strings": ak.Array(["", "muon", "électron", "τ"]),
    "nested 3 deep": ak.Array([[[1, 2], []], [], [[3], [4, 5, 6]]]),
    "sliced list": jagged(20, 1)[5:12],
    "reversed list": jagged(20, 2)[::-2],
    "sliced records": RECORDS[1:],
    "projected record field": RECORDS[["y", "x"]],
    "strided numpy": ak.Array(np.arange(30, dtype=np.int32)[::3]),
    "masked inner lists": jagged(10, 3)[jagged(10, 3) > 0],
}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_layout_round_trip(bridge, shm_clean, name):
    assert_same(bridge.call("copy", LAYOUTS[name]), LAYOUTS[name])


def test_lists_and_numpy_arrays_are_sent_as_arrays(bridge, shm_clean):
    assert_same(bridge.call("copy", [[1, 2], [], [3]]), ak.Array([[1, 2], [], [3]]))
    assert_same(bridge.call("copy", np.arange(5.0)), ak.Array(np.arange(5.0)))


def test_an_argument_returned_unchanged_comes_back_as_itself(bridge, shm_clean):
    array = jagged(100, 5)
    before = bridge.stats()
    assert bridge.call("identity", array) is array
    pair = bridge.call("tuple", array, 1)
    assert pair[0] is array and pair[1] == 1
    assert_same(bridge.call("identity", np.arange(4.0)), ak.Array(np.arange(4.0)))
    assert bridge.stats()["shm_bytes"] == before["shm_bytes"]  # Julia wrote nothing
    column = bridge.call("column_x", RECORDS)  # part of an argument: a new array Julia wrote
    assert_same(column, RECORDS.x)
    assert bridge.stats()["leases"] == before["leases"] + 1


def test_a_reply_naming_this_clients_memory_must_name_an_argument():
    source = ak.Array([1.0, 2.0])
    ref = ArrayRef(source.layout.form.to_json(), 2, {"node0-data": BufferRef(segment_name(), 0, 16)})
    assert _returned_argument(ref, [PlacedArray(ref, source, [])]) is source
    other = ArrayRef(ref.form, 2, {"node0-data": BufferRef(ref.buffers["node0-data"].segment, 64, 16)})
    with pytest.raises(BridgeError, match="not one of the call's arguments"):
        _returned_argument(other, [PlacedArray(ref, source, [])])


def test_julia_computes_what_python_computes(bridge, shm_clean):
    events = jagged(2000, 4)
    assert bridge.call("total", events) == pytest.approx(float(ak.sum(events)), rel=1e-12)
    assert_same(bridge.call("counts", events), ak.num(events))
    assert bridge.call("sum", np.arange(1000, dtype=np.int64)) == int(np.arange(1000).sum())
    assert_same(bridge.call("column_x", RECORDS), RECORDS.x)


def test_scalar_and_structured_arguments(bridge, shm_clean):
    result = bridge.call("describe", ak.Array([[1], [2, 3]]), 21, "muon", (1, "two"), {"k": 2.5}, None, False)
    assert result == (2, 42, "MUON", "two", 2.5, True, True)
    assert bridge.call("identity", {"a": 1, "b": (1, "x"), "c": None}) == {"a": 1, "b": (1, "x"), "c": None}


def test_julia_values_come_back_as_python_values(bridge):
    assert bridge.eval('(1, 2.5, "x")') == (1, 2.5, "x")
    assert bridge.eval("typemax(UInt64)") == 2**64 - 1
    assert bridge.eval("nothing") is None
    named = bridge.eval("(a = 1, b = [1.0, 2.0])")
    assert named["a"] == 1 and named["b"].to_list() == [1.0, 2.0]


def test_julia_error_carries_type_message_and_backtrace(bridge):
    with pytest.raises(JuliaError) as caught:
        bridge.eval('throw(DomainError(-1.0, "negative input"))')
    assert caught.value.julia_type == "DomainError"
    assert "negative input" in caught.value.message
    with pytest.raises(JuliaError) as caught:
        bridge.call("fails", 3)
    assert caught.value.julia_type == "ErrorException"
    assert "bad value 3" in caught.value.message
    assert "fails" in caught.value.backtrace


def test_missing_function_is_named(bridge):
    with pytest.raises(FunctionNotFound, match="no_such_function_here"):
        bridge.call("no_such_function_here", 1)
    with pytest.raises(FunctionNotFound, match="Base.no_such_thing"):
        bridge.call("Base.no_such_thing")


def test_result_without_python_equivalent(bridge):
    with pytest.raises(ResultTypeError):
        bridge.call("make_ref")


def test_include_evaluates_a_file_and_names_it_in_errors(bridge, tmp_path):
    good = tmp_path / "good.jl"
    good.write_text("included_answer() = 41 + 1\n")
    bridge.include(good)
    assert bridge.call("included_answer") == 42
    bad = tmp_path / "bad.jl"
    bad.write_text("\n\nerror(\"broken file\")\n")
    with pytest.raises(JuliaError, match="broken file") as caught:
        bridge.include(bad)
    assert "bad.jl" in str(caught.value)


def test_send_once_and_reuse_the_handle(bridge, shm_clean):
    events = jagged(500, 5)
    before = bridge.stats()["handles"]
    mine = segments_of(os.getpid())
    handle = bridge.send(events)
    assert bridge.stats()["handles"] == before + 1
    assert segments_of(os.getpid()) == mine  # the handle's buffers went into the arena's chunk
    first = bridge.call("total", handle)
    assert first == pytest.approx(float(ak.sum(events)), rel=1e-12)
    assert bridge.call("total", handle) == first
    assert_same(bridge.call("counts", handle), ak.num(events))
    assert_same(bridge.call("identity", handle), events)
    handle.drop()
    handle.drop()  # idempotent
    assert bridge.stats()["handles"] == before
    assert segments_of(os.getpid()) == mine
    with pytest.raises(BridgeError, match="dropped"):
        bridge.call("total", handle)


def test_garbage_handle_is_dropped_at_the_next_message(bridge, shm_clean):
    before = bridge.stats()["handles"]
    mine = segments_of(os.getpid())
    handle = bridge.send(jagged(50, 6))
    assert bridge.stats()["handles"] == before + 1
    del handle
    gc.collect()
    bridge.ping()  # carries the drop
    assert bridge.stats()["handles"] == before
    assert segments_of(os.getpid()) == mine


def test_result_lease_is_released_when_the_array_is_garbage(bridge):
    server_pid = bridge.server_info["server_pid"]
    before = bridge.stats()["leases"]
    result = bridge.call("copy", jagged(100, 8))
    assert bridge.stats()["leases"] == before + 1
    chunks = segments_of(server_pid)
    assert chunks
    del result
    gc.collect()
    bridge.ping()  # carries the release
    stats = bridge.stats()
    assert stats["leases"] == before
    # the freed block is reused: fifty more results, each released, create no segment
    for _ in range(50):
        assert len(bridge.call("copy", jagged(100, 8))) == 100
    bridge.ping()
    assert segments_of(server_pid) == chunks
    assert bridge.stats()["shm_bytes"] == stats["shm_bytes"]


def test_a_result_returned_unchanged_comes_back_by_reference(bridge):
    first = bridge.call("copy", jagged(1000, 9))
    leases = bridge.stats()["leases"]
    again = bridge.call("identity", first)  # a result sent back, and returned as it is
    content = lambda array: np.asarray(array.layout.content.data)  # noqa: E731
    assert content(again).ctypes.data == content(first).ctypes.data  # the same memory, not a copy
    assert bridge.stats()["leases"] == leases + 1  # a lease of its own on the same block
    expected = first.to_list()
    del first
    gc.collect()
    bridge.ping()  # carries the release of the first lease only
    assert bridge.call("copy", jagged(1000, 10)).to_list() != expected  # may reuse free blocks
    assert again.to_list() == expected  # the block is still held for `again`


def test_a_long_call_does_not_block_ping_from_another_thread(bridge):
    timing = {}

    def long_call() -> None:
        start = time.monotonic()
        timing["result"] = bridge.call("sleep", 3)
        timing["long"] = time.monotonic() - start

    worker = threading.Thread(target=long_call)
    worker.start()
    time.sleep(0.5)
    pings = [bridge.ping() for _ in range(5)]
    assert worker.is_alive()  # the pings really overlapped the call
    worker.join()
    assert max(pings) < 0.5
    assert timing["result"] is None and timing["long"] >= 3.0


def test_concurrent_calls_from_several_threads(bridge, shm_clean):
    inputs = {n: jagged(200 + n, 100 + n) for n in range(6)}
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            results[n] = [(bridge.call("total", inputs[n]), bridge.call("copy", inputs[n])) for _ in range(5)]
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for n, runs in results.items():
        for total, identity in runs:
            assert total == pytest.approx(float(ak.sum(inputs[n])), rel=1e-12)
            assert_same(identity, inputs[n])


def test_closed_bridge_refuses_requests(bridge):
    with Bridge(bridge.address) as second:
        assert second.ping() > 0
    with pytest.raises(BridgeError, match="closed"):
        second.ping()


@pytest.fixture(scope="module")
def hzz_events():
    path = DATA / "uproot-HZZ.root"
    if not path.exists():
        pytest.skip(f"real collider data not found: {path} (expected in ../shared/data next to the repository)")
    uproot = pytest.importorskip("uproot")
    with uproot.open(path) as file:
        return file["events"].arrays()


def test_real_events_go_to_julia_and_back_unchanged(bridge, shm_clean, hzz_events):
    assert_same(bridge.call("copy", hzz_events), hzz_events)


def test_muon_pt_sum_in_julia_matches_awkward(bridge, shm_clean, hzz_events):
    px = ak.values_astype(hzz_events.Muon_Px, np.float64)
    py = ak.values_astype(hzz_events.Muon_Py, np.float64)
    expected = float(ak.sum(np.hypot(px, py)))
    handle = bridge.send(hzz_events)
    try:
        assert bridge.call("muon_pt_sum", handle) == pytest.approx(expected, rel=1e-12)
    finally:
        handle.drop()


def test_a_big_endian_numpy_array_arrives_as_its_values(bridge, shm_clean):
    raw = np.array([1.5, -2.0, 40.25], dtype=">f4")      # as read from a file's bytes
    bridge.eval("element_type(v) = string(eltype(v))")
    assert bridge.call("element_type", raw) == "Float32"
    assert bridge.call("collect", raw).tolist() == [1.5, -2.0, 40.25]


def test_symbols_chars_missing_and_symbol_keyed_dicts_come_back(bridge):
    assert bridge.eval("missing") is None
    assert bridge.eval(":muon") == "muon" and bridge.eval("'μ'") == "μ"
    assert bridge.eval("pi") == pytest.approx(3.141592653589793) and bridge.eval("2pi") == pytest.approx(6.283185307179586)
    assert bridge.eval("Dict(:pt => 1.5, :n => 2)") == {"pt": 1.5, "n": 2}
    bridge.eval('clashing_keys() = Dict{Any,Int}(:a => 1, "a" => 2)')
    with pytest.raises(ResultTypeError, match="both a string and a symbol key"):
        bridge.call("clashing_keys")


def test_records_come_back_with_their_fields_in_order(bridge):
    assert list(bridge.eval("(z = 1, a = 2, m = 3)")) == ["z", "a", "m"]
    bridge.eval("struct Ordered; z::Int; a::Float64; end")
    assert list(bridge.eval("Ordered(1, 2.0)")) == ["z", "a"]
    assert list(bridge.call("first", ak.Array([{"z": 1, "a": 2.0, "m": [3]}]))) == ["z", "a", "m"]
    assert list(bridge.eval("(outer = (y = 1, x = 2), b = 3)")["outer"]) == ["y", "x"]


def test_an_option_vector_keeps_its_type_without_missing_values(bridge):
    # docs/kernels.md: a comprehension's element type depends on the data, a typed vector's not
    assert str(bridge.eval("Vector{Union{Missing,Float32}}([1f0, 2f0])").type) == "2 * ?float32"
    bridge.eval("first_or_missing(lists) = [isempty(x) ? missing : x[1] for x in lists]")
    assert str(bridge.call("first_or_missing", ak.Array([[1.0], [2.0]])).type) == "2 * float64"
    assert str(bridge.call("first_or_missing", ak.Array([[1.0], []])).type) == "2 * ?float64"


def test_errors_from_comparing_records_or_typed_cuts_say_what_to_do(bridge):
    events = ak.Array([{"Jet": [{"pt": 40.0}, {"pt": 50.0}]}, {"Jet": []}])
    bridge.eval("sorted_jets(events) = [sort(ev.Jet) for ev in events]\n"
                "n_above(events, cut::Float32) = count(j -> j.pt > cut, events[1].Jet)")
    with pytest.raises(JuliaError, match=r"records do not compare.*sort\(x, by = r -> r.pt"):
        bridge.call("sorted_jets", events)
    with pytest.raises(JuliaError, match=r"arrives as an Int64 or a Float64.*annotate it ::Real"):
        bridge.call("n_above", events, np.float32(30))


def test_a_result_that_cannot_come_back_says_what_to_return(bridge):
    bridge.eval("opaque() = Channel{Int}(1)")
    with pytest.raises(ResultTypeError) as raised:   # from a call; eval gives None for such a value
        bridge.call("opaque")
    message = raised.value.message
    assert "Channel{…}" in message and "return a number" in message and "ak.Array" in message
    assert "collect" not in message    # collecting a channel would wait on it
    # Julia's own iterators and numbers with no Python equivalent say how to get one
    bridge.eval("squares() = (i^2 for i in 1:3)\nnumbered() = enumerate([10, 20])\nthird() = 1//3")
    for name in ("squares", "numbered"):
        with pytest.raises(ResultTypeError, match=r"`collect\(x\)` makes its values an array"):
            bridge.call(name)
    with pytest.raises(ResultTypeError, match=r"Rational\{…\}.*convert it \(`Float64\(x\)`"):
        bridge.call("third")


def test_eval_shows_what_has_no_python_equivalent_when_asked(bridge, capsys):
    assert bridge.eval("1 // 3") is None
    shown = bridge.eval("1 // 3", show=True)
    assert isinstance(shown, ShownValue) and repr(shown) == "1//3"
    assert repr(bridge.eval("Set([7])", show=True)) == "Set{Int64} with 1 element:\n  7"
    assert bridge.eval("2 + 3", show=True) == 5 and bridge.eval("nothing", show=True) is None
    # InteractiveUtils is loaded, as in Julia's REPL
    which = repr(bridge.eval("@which sum([1.0])", show=True))   # "sum(a::AbstractArray; dims) in Base at …"
    assert which.startswith("sum(a::AbstractArray") and "Base" in which
    bridge.eval("display([1, 2])")   # `display` prints into the call's output
    out = capsys.readouterr().out   # "2-element Array{Int64,1}:" on Julia 1.5, "Vector{Int64}" later
    assert out.startswith("2-element ") and out.splitlines()[1:] == [" 1", " 2"]


def test_an_error_names_its_type_once(bridge):
    with pytest.raises(JuliaError) as raised:
        bridge.call("round", "not a number")
    assert raised.value.julia_type == "MethodError"
    assert raised.value.message.startswith("no method matching round(")
    assert not str(raised.value).startswith("MethodError: MethodError")


def test_an_error_on_a_view_stays_readable(bridge):
    # a view's full type runs to thousands of characters; the message and every backtrace line
    # name it without its parameters
    bridge.eval("leading_nope(events) = events[1].Muon[1].nope + 1")
    events = ak.Array([{"Muon": [{"pt": 1.0, "eta": 0.5}]}])
    with pytest.raises(JuliaError) as raised:
        bridge.call("leading_nope", events)
    assert "{…}" in raised.value.backtrace
    assert max(len(line) for line in str(raised.value).splitlines()) < 400


def test_an_annotation_too_narrow_for_a_view_gets_a_hint(bridge):
    bridge.eval("""
        per_event_pts(pts::Vector{Vector{Float32}}) = length(pts)
        leading_pt(jet::NamedTuple) = jet.pt
        first_jet_pt(events) = leading_pt(events[1].Jet[1])
    """)
    events = ak.values_astype(ak.Array([{"Jet": [{"pt": 50.0}]}, {"Jet": []}]), np.float32)
    for name, argument in (("per_event_pts", events.Jet.pt), ("first_jet_pt", events)):
        with pytest.raises(JuliaError) as raised:
            bridge.call(name, argument)
        assert raised.value.julia_type == "MethodError"
        assert "annotate them ::AbstractVector" in raised.value.message


def test_replacing_a_column_of_a_view_says_how_to_write_it(bridge):
    bridge.eval("zero_met(events) = (events.MET.pt = 0.0; events)")
    events = ak.Array([{"MET": {"pt": 5.0}}])
    with pytest.raises(JuliaError, match="cannot assign field pt of a RecordVector") as raised:
        bridge.call("zero_met", events)
    assert raised.value.julia_type == "ArgumentError"


def test_a_reply_that_cannot_be_read_gives_back_the_leases_it_names():
    # no ak.Array will hold them, so they go back with the next message instead of staying
    # leased until the client closes
    with Bridge() as b:
        reply = [{"$": "array", "form": "{}", "length": 1, "buffers": {}, "lease": 7},
                 {"$": "array", "form": "{}", "length": -1, "buffers": {}, "lease": 8}]
        with pytest.raises(BridgeError, match="length"):
            b._result(reply)
        assert sorted(b._leases.take_released()) == [7, 8]
