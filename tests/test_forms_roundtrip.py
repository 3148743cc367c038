"""Every Awkward form class and parameter, Python -> Julia -> Python through one running server."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from bridge import Bridge

C = ak.contents
I = ak.index

HELPERS = """
identity(x) = x
rebuild(x) = [e for e in x]
"""


def numpy(values, dtype=None, **parameters) -> C.NumpyArray:
    return C.NumpyArray(np.asarray(values, dtype=dtype), parameters=parameters or None)


def offsets_list(offsets, content, index=I.Index64, **parameters) -> C.ListOffsetArray:
    return C.ListOffsetArray(index(np.asarray(offsets)), content, parameters=parameters or None)


def jagged_floats() -> C.ListOffsetArray:
    return offsets_list([0, 2, 2, 5], numpy([1.5, 2.5, 3.5, 4.5, 5.5]))


def strings(values) -> ak.Array:
    return ak.Array(values)


def _cases() -> dict[str, ak.Array]:
    cases: dict[str, C.Content | ak.Array] = {}
    for dtype in ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
                  "float16", "float32", "float64", "complex64", "complex128"]:
        cases[f"numpy-{dtype}"] = numpy(np.arange(5) % 2 if dtype == "bool" else np.arange(5) + 1, dtype)
    for unit in ["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns"]:
        cases[f"numpy-datetime64[{unit}]"] = numpy(np.array([0, 1, 1000], f"datetime64[{unit}]"))
        cases[f"numpy-timedelta64[{unit}]"] = numpy(np.array([0, -1, 1000], f"timedelta64[{unit}]"))
    cases["numpy-inner_shape"] = numpy(np.arange(24, dtype=np.float64).reshape(4, 3, 2))
    cases["empty"] = C.EmptyArray()
    for name, index in [("i32", I.Index32), ("u32", I.IndexU32), ("i64", I.Index64)]:
        cases[f"listoffset-{name}"] = offsets_list([0, 2, 2, 5], numpy([1.0, 2, 3, 4, 5]), index)
        cases[f"list-{name}"] = C.ListArray(index(np.array([0, 2, 2])), index(np.array([2, 2, 5])),
                                            numpy([1.0, 2, 3, 4, 5]))
    cases["regular"] = C.RegularArray(numpy(np.arange(6.0)), 3)
    cases["regular-size0"] = C.RegularArray(numpy(np.zeros(0)), 0, zeros_length=4)
    cases["record-named"] = C.RecordArray([numpy([1, 2, 3]), numpy([1.5, 2.5, 3.5])], ["x", "y"])
    cases["record-tuple"] = C.RecordArray([numpy([1, 2, 3]), numpy([1.5, 2.5, 3.5])], None)
    cases["record-zero-fields"] = C.RecordArray([], [], length=3)
    cases["record-__record__"] = C.RecordArray([numpy([1.0, 2]), numpy([3.0, 4])], ["pt", "eta"],
                                               parameters={"__record__": "Muon"})
    cases["indexed"] = C.IndexedArray(I.Index64(np.array([2, 0, 0, 1])), numpy([10, 20, 30]))
    cases["indexed-option"] = C.IndexedOptionArray(I.Index64(np.array([2, -1, 0, -1])), numpy([10, 20, 30]))
    for valid_when in (True, False):
        mask = np.array([1, 0, 1], np.int8) if valid_when else np.array([0, 1, 0], np.int8)
        cases[f"bytemasked-valid_when={valid_when}"] = C.ByteMaskedArray(I.Index8(mask), numpy([1, 2, 3]),
                                                                         valid_when=valid_when)
    for lsb_order in (True, False):
        # elements 0, 2, 3 valid out of 10
        bits = np.packbits(np.array([1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], bool),
                           bitorder="little" if lsb_order else "big")
        cases[f"bitmasked-lsb_order={lsb_order}"] = C.BitMaskedArray(
            I.IndexU8(bits), numpy(np.arange(10.0)), valid_when=True, length=10, lsb_order=lsb_order)
    cases["unmasked"] = C.UnmaskedArray(numpy([1.0, 2, 3]))
    cases["union"] = C.UnionArray(I.Index8(np.array([0, 1, 0, 1], np.int8)), I.Index64(np.array([0, 0, 1, 1])),
                                  [numpy([1, 2]), ak.to_layout(["a", "bc"])])
    cases["string"] = strings(["muon", "", "électron"])
    cases["bytestring"] = strings([b"ab", b"", b"\x00\xff"])
    cases["char-byte-inner"] = ak.to_layout(["xy", "z"]).content  # a bare char array
    cases["categorical"] = C.IndexedArray(I.Index64(np.array([0, 1, 0, 2])), ak.to_layout(["a", "b", "c"]),
                                          parameters={"__array__": "categorical"})
    cases["__list__"] = offsets_list([0, 1, 3], numpy([1.0, 2, 3]), __list__="Track")
    cases["user-parameters"] = numpy([1.0, 2], units="GeV", tags=["a", 1])
    cases["offsets-not-from-0"] = offsets_list([3, 4, 4, 6], numpy(np.arange(8.0)))
    cases["list-overlapping"] = C.ListArray(I.Index64(np.array([0, 1, 0])), I.Index64(np.array([3, 2, 1])),
                                            numpy(np.arange(4.0)))
    cases["list-reversed"] = C.ListArray(I.Index64(np.array([3, 1, 0])), I.Index64(np.array([4, 3, 1])),
                                         numpy(np.arange(4.0)))
    cases["list-of-indexed"] = offsets_list([0, 2, 3], C.IndexedArray(I.Index64(np.array([2, 2, 0])),
                                                                      numpy([1.0, 2, 3])))
    cases["record-of-jagged"] = C.RecordArray([jagged_floats(), offsets_list([0, 1, 1, 2], numpy([7, 8]))],
                                              ["pt", "q"])
    cases["option-of-list"] = C.IndexedOptionArray(I.Index64(np.array([0, -1, 2, 1])), jagged_floats())
    cases["list-of-option"] = offsets_list([0, 2, 4], C.ByteMaskedArray(I.Index8(np.array([1, 0, 0, 1], np.int8)),
                                                                       numpy([1.0, 2, 3, 4]), valid_when=True))
    cases["union-of-records"] = C.UnionArray(
        I.Index8(np.array([0, 1, 0], np.int8)), I.Index64(np.array([0, 0, 1])),
        [C.RecordArray([numpy([1, 2])], ["x"]), C.RecordArray([ak.to_layout(["a"]), jagged_floats()[:1]], ["y", "z"])])
    cases["three-deep"] = ak.to_layout([[[1.0, 2.0], []], [], [[3.0]]])
    cases["events"] = ak.to_layout([{"Muon": [{"pt": 10.0, "q": -1}], "n": 1}, {"Muon": [], "n": 0}])
    return {name: ak.Array(layout) if not isinstance(layout, ak.Array) else layout
            for name, layout in cases.items()}


CASES = _cases()


@pytest.fixture(scope="module")
def bridge():
    with Bridge() as shared:
        shared.eval(HELPERS)
        yield shared


def assert_same(result: ak.Array, expected: ak.Array) -> None:
    assert isinstance(result, ak.Array)
    assert result.type == expected.type
    assert ak.array_equal(result, expected, dtype_exact=True, check_parameters=True)


# `identity` answers an argument with a reference to it: the client hands back the array it sent.
@pytest.mark.parametrize("name", list(CASES))
def test_identity_round_trip(bridge: Bridge, name: str) -> None:
    assert_same(bridge.call("identity", CASES[name]), CASES[name])


# `copy` makes Julia read the array and write it back through its codec.
@pytest.mark.parametrize("name", list(CASES))
def test_copy_round_trip(bridge: Bridge, name: str) -> None:
    assert_same(bridge.call("copy", CASES[name]), CASES[name])


# A view Julia copies keeps its option class with valid_when and lsb_order (docs/types.md):
# the same form, compared without form keys. Equal forms are checked here directly rather than
# through ak.array_equal, whose treatment of differing option classes may change between versions.
OPTION_CLASSES = ["bytemasked-valid_when=True", "bytemasked-valid_when=False", "bitmasked-lsb_order=True",
                  "bitmasked-lsb_order=False", "unmasked", "list-of-option"]


@pytest.mark.parametrize("name", OPTION_CLASSES)
def test_option_classes_keep_their_form(bridge: Bridge, name: str) -> None:
    result = bridge.call("copy", CASES[name])
    assert result.layout.form.is_equal_to(CASES[name].layout.form, all_parameters=True)
    assert result.to_list() == CASES[name].to_list()


# Rebuilding from elements keeps only what the elements carry. Properties of the layout (fixed
# sizes, categorical, __list__, user parameters, bytes vs char) are not in a Julia element, and an
# UnmaskedArray's elements are never missing, so these come back as the type on the right.
REBUILT_TYPE = {
    "regular": "2 * var * float64",
    "regular-size0": "4 * var * float64",
    "unmasked": "3 * float64",
    "bytestring": "3 * var * byte",
    "categorical": "4 * string",
    "__list__": "2 * var * float64",
    "user-parameters": "2 * float64",
    "char-byte-inner": "3 * uint8",
}


@pytest.mark.parametrize("name", list(CASES))
def test_rebuilt_from_elements(bridge: Bridge, name: str) -> None:
    expected = CASES[name]
    result = bridge.call("rebuild", expected)
    assert str(result.type) == REBUILT_TYPE.get(name, str(expected.type))
    if name == "char-byte-inner":  # a bare char array's elements are its bytes
        assert result.to_list() == list(b"xyz")
    else:
        assert result.to_list() == expected.to_list()


# Julia result type -> what Python gets (docs/types.md, second table): (expression, type, value)
JULIA_RESULTS = {
    "Int": ("1", int, 1),
    "Float64": ("1.5", float, 1.5),
    "String": ('"a"', str, "a"),
    "Bool": ("true", bool, True),
    "Nothing": ("nothing", type(None), None),
    "Missing": ("missing", type(None), None),
    "Tuple": ("(1, 2.0)", tuple, (1, 2.0)),
    "NamedTuple": ('(a = 1, b = "x")', dict, {"a": 1, "b": "x"}),
    "Dict": ('Dict("k" => 1)', dict, {"k": 1}),
    "Vector{Float32}": ("Float32[1, 2]", "2 * float32", [1.0, 2.0]),
    "Vector{Vector{Int}}": ("[[1, 2], Int[]]", "2 * var * int64", [[1, 2], []]),
    "Vector{String}": ('["a", "bc"]', "2 * string", ["a", "bc"]),
    "Vector{Symbol}": ("[:mu, :e]", "2 * string", ["mu", "e"]),
    "Vector{Char}": ("['é', 'x']", "2 * string", ["é", "x"]),
    "Vector{Union{Missing,Symbol}}": ("[:mu, missing]", "2 * ?string", ["mu", None]),
    "Vector{Union{Missing,Int}}": ("[1, missing]", "2 * ?int64", [1, None]),
    "Vector{NamedTuple}": ("[(x = 1, y = 2.0)]", "1 * {x: int64, y: float64}", [{"x": 1, "y": 2.0}]),
    "Vector{Vector{NamedTuple}}": ("[[(pt = 1.0,)], NamedTuple{(:pt,),Tuple{Float64}}[]]",
                                   "2 * var * {pt: float64}", [[{"pt": 1.0}], []]),
    "Vector{Tuple}": ('[(1, "a"), (2, "b")]', "2 * (int64, string)", [(1, "a"), (2, "b")]),
    "nested tuples": ("[((1, 2), 3)]", "1 * ((int64, int64), int64)", [((1, 2), 3)]),
    "Vector{Any} mixed": ('Any["a", 2.5]', "2 * union[string, float64]", ["a", 2.5]),
    "Vector{DateTime}": ("[Dates.DateTime(2020)]", "1 * datetime64[ms]", [np.datetime64("2020-01-01T00:00:00.000")]),
    "Vector{ComplexF64}": ("[1.0 + 2im]", "1 * complex128", [1 + 2j]),
}


@pytest.mark.parametrize("name", list(JULIA_RESULTS))
def test_julia_result_types(bridge: Bridge, name: str) -> None:
    expression, expected_type, value = JULIA_RESULTS[name]
    result = bridge.eval(f"import Dates; {expression}")
    if isinstance(expected_type, str):
        assert str(result.type) == expected_type
        assert result.to_list() == value
    else:
        assert type(result) is expected_type
        assert result == value


# Awkward form -> what a Julia function sees (docs/types.md, first table): (container, element type, first element)
JULIA_SEES = {
    "numpy-int32": ("Array", "Int32", "1"),
    "numpy-bool": ("BoolVector", "Bool", "false"),
    "numpy-complex64": ("Array", "Complex{Float32}", "1.0f0 + 0.0f0im"),
    "numpy-datetime64[ns]": ("Array", "Datetime64{Dates.Nanosecond}", "Datetime64{Dates.Nanosecond}(0)"),
    "numpy-timedelta64[s]": ("Array", "Dates.Second", "Dates.Second(0)"),
    "empty": ("Array", "Any", "-"),
    "listoffset-i32": ("ListVector", "SubArray{Float64,1,", "[1.0, 2.0]"),
    "regular": ("RegularVector", "SubArray{Float64,1,", "[0.0, 1.0, 2.0]"),
    "record-named": ("RecordVector", "Record{NamedTuple{(:x, :y),", "Record(x = 1, y = 1.5)"),
    "record-tuple": ("RecordVector", "Tuple{Int64,Float64}", "(1, 1.5)"),
    "indexed": ("IndexedVector", "Int64", "30"),
    "indexed-option": ("IndexedOptionVector", "Union{Missing, Int64}", "30"),
    "bytemasked-valid_when=False": ("ByteMaskedVector", "Union{Missing, Int64}", "1"),
    "bitmasked-lsb_order=True": ("BitMaskedVector", "Union{Missing, Float64}", "0.0"),
    "unmasked": ("UnmaskedVector", "Union{Missing, Float64}", "1.0"),
    "union": ("UnionVector", "Union{Int64, String}", "1"),
    "string": ("StringVector", "String", '"muon"'),
    "bytestring": ("ListVector", "SubArray{UInt8,1,", "UInt8[0x61, 0x62]"),
    "categorical": ("IndexedVector", "String", '"a"'),
    "user-parameters": ("ParameterizedVector", "Float64", "1.0"),
}


@pytest.mark.parametrize("name", list(JULIA_SEES))
def test_what_julia_sees(bridge: Bridge, name: str) -> None:
    bridge.eval('describe_view(x) = (string(nameof(typeof(x))), string(eltype(x)), isempty(x) ? "-" : repr(x[1]))')
    container, element, first = JULIA_SEES[name]
    seen = bridge.call("describe_view", CASES[name])
    # Julia 1.5 and 1.10 print parametric types differently (spaces after commas): compare without them
    assert seen[0] == container
    assert seen[1].replace(" ", "").startswith(element.replace(" ", ""))
    assert seen[2] == first
