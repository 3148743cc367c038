"""Cross-check of the Julia data layer with awkward itself, through plain files (no server).

Python writes arrays with ``ak.to_buffers`` to a temporary directory; one Julia process opens
each with ``open_array`` (reporting the values it sees), writes it back with ``place_array``,
and also writes a set of native Julia values. Python then reads every result with
``ak.from_buffers`` and checks its type and values.
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data"
JULIA = shutil.which("julia")

pytestmark = pytest.mark.skipif(JULIA is None, reason="julia is not on PATH")

C, I = ak.contents, ak.index

PYTHON_CASES: dict[str, ak.Array] = {
    "float32": ak.Array(np.array([1.5, -2.0, 3.25], np.float32)),
    "lists": ak.Array([[1.5, 2.5], [], [3.5]]),
    "nested_lists": ak.Array([[[1, 2], []], [], [[3]]]),
    "u32_offsets": ak.Array(C.ListOffsetArray(I.IndexU32(np.array([0, 2, 3], np.uint32)),
                                              C.NumpyArray(np.array([7, 8, 9], np.uint8)))),
    "list_array": ak.Array(C.ListArray(I.Index32(np.array([2, 0, 1], np.int32)),
                                       I.Index32(np.array([3, 0, 3], np.int32)),
                                       C.NumpyArray(np.array([1, 2, 3])))),
    "strings": ak.Array(["ab", "", "cé"]),
    "bytestrings": ak.Array([b"ab", b"", b"c"]),
    "records": ak.Array([{"x": 1, "y": [1.0]}, {"x": 2, "y": []}], with_name="Point"),
    "tuples": ak.Array([(1, 2.0), (3, 4.0)]),
    "option": ak.Array([1, None, 3]),
    "option_records": ak.Array([{"x": 1}, None]),
    "union": ak.Array([1, "a", None]),
    "empty": ak.Array([]),
    "inner_shape": ak.Array(np.arange(24, dtype=np.int16).reshape(2, 3, 4)),
    "user_parameters": ak.with_parameter(ak.Array([[1, 2], [3]]), "foo", {"a": [1, 2.5, None]}),
    "bool": ak.Array([True, False, True]),
    "complex": ak.Array(np.array([1 + 2j, -1j], np.complex128)),
    "datetime": ak.Array(np.array(["2020-01-01T00:00:01.5", "1969-12-31"], dtype="datetime64[ms]")),
    "timedelta": ak.Array(np.array([5, -6], dtype="timedelta64[ns]")),
    "byte_masked": ak.Array(C.ByteMaskedArray(I.Index8(np.array([1, 0, 1], np.int8)),
                                              C.NumpyArray(np.array([1, 2, 3])), valid_when=False)),
    "bit_masked_lsb": ak.Array(C.BitMaskedArray(I.IndexU8(np.array([0b101], np.uint8)),
                                                C.NumpyArray(np.array([1.0, 2.0, 3.0])),
                                                valid_when=True, length=3, lsb_order=True)),
    "bit_masked_msb": ak.Array(C.BitMaskedArray(I.IndexU8(np.array([0b10100000, 0b10000000], np.uint8)),
                                                C.NumpyArray(np.arange(9.0)),
                                                valid_when=True, length=9, lsb_order=False)),
    "unmasked": ak.Array(C.UnmaskedArray(C.NumpyArray(np.array([1, 2])))),
    "indexed": ak.Array(C.IndexedArray(I.Index64(np.array([1, 0, 1])), C.NumpyArray(np.array([1.5, 2.5])))),
    "categorical": ak.Array(C.IndexedArray(I.Index64(np.array([1, 0, 1])), C.NumpyArray(np.array([1.5, 2.5])),
                                           parameters={"__array__": "categorical"})),
    "regular": ak.to_regular(ak.Array([[1, 2], [3, 4]])),
    "regular_size0": ak.Array(C.RegularArray(C.NumpyArray(np.array([], np.int64)), 0, zeros_length=3)),
    "deep": ak.Array([[{"a": [["x", "y"]], "b": None, "c": (1, [2.0])}], []]),
}

REAL_CASES = ("hzz_events", "nanoaod_events", "nanoaod_muons")


@functools.lru_cache(maxsize=None)
def _real_cases() -> dict[str, ak.Array]:
    """Arrays read from the real event files, or nothing where they are absent."""
    if not REAL_DATA.is_dir():
        return {}
    import uproot

    nano = uproot.open(REAL_DATA / "nanoAOD_2015_CMS_Open_Data_ttbar.root")["Events"]
    m = nano.arrays(["Muon_pt", "Muon_eta", "Muon_charge", "Muon_tightId"])
    return {
        "hzz_events": uproot.open(REAL_DATA / "uproot-HZZ.root")["events"].arrays(),
        "nanoaod_events": nano.arrays(),
        "nanoaod_muons": ak.zip({"pt": m.Muon_pt, "eta": m.Muon_eta, "charge": m.Muon_charge,
                                 "tight": m.Muon_tightId}, with_name="Muon"),
    }


# name: (Julia expression, expected ak type, expected to_list())
JULIA_CASES: dict[str, tuple[str, str, list]] = {
    "float32": ("Float32[1.5, 2.5]", "2 * float32", [1.5, 2.5]),
    "range": ("1:4", "4 * int64", [1, 2, 3, 4]),
    "lists": ("[[1, 2], Int[], [3]]", "3 * var * int64", [[1, 2], [], [3]]),
    "lists_of_lists": ("[[[1.0]], [[2.0, 3.0], Float64[]]]", "2 * var * var * float64",
                       [[[1.0]], [[2.0, 3.0], []]]),
    "strings": ('["ab", "", "é"]', "3 * string", ["ab", "", "é"]),
    "missing": ("[1, missing, 3]", "3 * ?int64", [1, None, 3]),
    "missing_strings": ('Union{Missing,String}["a", missing]', "2 * ?string", ["a", None]),
    "missing_in_lists": ("[[missing, 1], [2]]", "2 * var * ?int64", [[None, 1], [2]]),
    "only_missing": ("Any[missing, missing]", "2 * ?unknown", [None, None]),
    "named_tuples": ('[(pt = 1.5, tags = ["a"]), (pt = 2.0, tags = String[])]',
                     "2 * {pt: float64, tags: var * string}",
                     [{"pt": 1.5, "tags": ["a"]}, {"pt": 2.0, "tags": []}]),
    "tuples": ('[(1, "a"), (2, "b")]', "2 * (int64, string)", [(1, "a"), (2, "b")]),
    "promoted": ("Any[1, 2.5]", "2 * float64", [1.0, 2.5]),
    "union": ('Any[1, "a", missing, 2.5]', "4 * union[?float64, ?string]", [1.0, "a", None, 2.5]),
    "union_bool": ("Any[1, true]", "2 * union[int64, bool]", [1, True]),
    "union_kinds": ('Any[[1], "x", (a = 1,)]', "3 * union[var * int64, string, {a: int64}]",
                    [[1], "x", {"a": 1}]),
    "empty": ("Any[]", "0 * unknown", []),
    "bool": ("[true, false]", "2 * bool", [True, False]),
    "datetime": ("[Dates.DateTime(2020, 1, 2, 3, 4, 5, 6)]", "1 * datetime64[ms]",
                 [datetime(2020, 1, 2, 3, 4, 5, 6000)]),
    "timedelta": ("[Dates.Microsecond(7)]", "1 * timedelta64[us]", [timedelta(microseconds=7)]),
}

JULIA_SCRIPT = r"""
using AwkwardBridge, Dates
const AB = AwkwardBridge

# The values a Julia view shows, as JSON-able data to compare with Python's to_list().
plain(x::AbstractVector) = Any[plain(e) for e in x]
plain(x::AbstractArray) = Any[plain(selectdim(x, 1, i)) for i in axes(x, 1)]   # NumPy's rows
plain(r::AB.Record) = Dict{String,Any}(String(k) => plain(r[k]) for k in keys(r))
plain(t::Tuple) = Any[plain(e) for e in t]
plain(::Missing) = nothing
plain(x::Complex) = Any[real(x), imag(x)]
plain(x::Union{AB.Datetime64,Dates.Period}) = Dates.value(x)
plain(x) = x

function open_case(dir, segments)
    meta = AB.parse_json(read(joinpath(dir, "meta.json"), String))
    refs = Dict{String,AB.BufferRef}()
    for key in meta["buffers"]
        segments[key] = read(joinpath(dir, key))
        refs[key] = AB.BufferRef(key, 0, length(segments[key]))
    end
    resolve(b) = pointer(segments[b.segment]) + b.offset
    return AB.open_array(AB.ArrayRef(meta["form"], meta["length"], refs), resolve), meta
end

function place_case(dir, x)
    block = UInt8[]
    allocate(n) = (resize!(block, n); ("block", 0, pointer(block)))
    ref = AB.place_array(x, allocate)
    write(joinpath(dir, "out.bin"), block)
    buffers = Dict(k => [b.offset, b.nbytes] for (k, b) in ref.buffers)
    write(joinpath(dir, "out.json"), AB.json_string(Dict("form" => ref.form, "length" => ref.length, "buffers" => buffers)))
end

for dir in filter(isdir, readdir(ARGS[1]; join=true))
    segments = Dict{String,Vector{UInt8}}()
    GC.@preserve segments begin
        x, meta = if isfile(joinpath(dir, "julia.txt"))
            Core.eval(Main, Meta.parse(read(joinpath(dir, "julia.txt"), String))), nothing
        else
            open_case(dir, segments)
        end
        meta === nothing || write(joinpath(dir, "plain.json"), AB.json_string(plain(x)))
        place_case(dir, x)
    end
end
"""


def _write_python_case(directory: Path, array: ak.Array) -> None:
    directory.mkdir()
    form, length, buffers = ak.to_buffers(array)
    for key, buffer in buffers.items():
        (directory / key).write_bytes(np.ascontiguousarray(buffer).tobytes())
    meta = {"form": form.to_json(), "length": length, "buffers": list(buffers)}
    (directory / "meta.json").write_text(json.dumps(meta))


def _read_julia_result(directory: Path) -> ak.Array:
    meta = json.loads((directory / "out.json").read_text())
    block = np.frombuffer((directory / "out.bin").read_bytes(), np.uint8)
    container = {key: block[offset:offset + nbytes] for key, (offset, nbytes) in meta["buffers"].items()}
    for offset, _ in meta["buffers"].values():
        assert offset % 64 == 0
    return ak.from_buffers(meta["form"], meta["length"], container)


@pytest.fixture(scope="module")
def julia_results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("julia_codec")
    for name, array in {**PYTHON_CASES, **_real_cases()}.items():
        _write_python_case(root / f"py_{name}", array)
    for name, (expression, _, _) in JULIA_CASES.items():
        (root / f"jl_{name}").mkdir()
        (root / f"jl_{name}" / "julia.txt").write_text(expression)
    script = root / "codec_files.jl"
    script.write_text(JULIA_SCRIPT)
    subprocess.run([JULIA, "--startup-file=no", f"--project={REPO / 'julia_server'}", str(script), str(root)],
                   check=True, timeout=240)
    return root


def _plain(value):
    """Values in the JSON shapes Julia's rendering uses: tuples and bytes become lists,
    complex numbers [re, im], datetimes and timedeltas their integer counts, NaN a string
    (so that it compares equal)."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, (list, tuple, bytes)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, complex):
        return [value.real, value.imag]
    if isinstance(value, (np.datetime64, np.timedelta64)):
        return int(value.view(np.int64))
    return value


def _check_view_values(directory: Path, array: ak.Array) -> None:
    seen = json.loads((directory / "plain.json").read_text())
    values = list(ak.to_numpy(array)) if array.layout.is_numpy and array.ndim == 1 else array.to_list()
    assert _plain(seen) == _plain(values)


def _check_written_back(directory: Path, original: ak.Array) -> None:
    back = _read_julia_result(directory)
    assert ak.validity_error(back) == ""
    assert back.type == original.type
    assert _plain(back.to_list()) == _plain(original.to_list())


@pytest.mark.parametrize("name", sorted(PYTHON_CASES))
def test_julia_view_shows_python_values(julia_results: Path, name: str) -> None:
    _check_view_values(julia_results / f"py_{name}", PYTHON_CASES[name])


@pytest.mark.parametrize("name", sorted(PYTHON_CASES))
def test_view_written_back_keeps_type_and_values(julia_results: Path, name: str) -> None:
    _check_written_back(julia_results / f"py_{name}", PYTHON_CASES[name])


@pytest.mark.parametrize("name", REAL_CASES)
def test_real_events_through_julia(julia_results: Path, name: str) -> None:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real event files not found at {REAL_DATA}")
    original = _real_cases()[name]
    _check_view_values(julia_results / f"py_{name}", original)
    _check_written_back(julia_results / f"py_{name}", original)


@pytest.mark.parametrize("name", sorted(JULIA_CASES))
def test_julia_value_loads_in_python(julia_results: Path, name: str) -> None:
    _, expected_type, expected_values = JULIA_CASES[name]
    array = _read_julia_result(julia_results / f"jl_{name}")
    assert ak.validity_error(array) == ""
    assert str(array.type) == expected_type
    assert array.to_list() == expected_values
