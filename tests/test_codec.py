"""Placing arrays in shared memory and opening them again, zero-copy where possible."""

from __future__ import annotations

import gc
import importlib
from concurrent.futures import ThreadPoolExecutor

import awkward as ak
import numpy as np
import pytest

from bridge.base import BridgeError
from bridge.client.leases import ResultLeases
from bridge.codec import PlacedArray, open_array, place_array
from bridge.shm import Arena, Segment, locate
from bridge.wire import ArrayRef, BufferRef, segment_name

pytestmark = pytest.mark.usefixtures("shm_clean")

NUMERIC = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
           "float16", "float32", "float64", "complex64", "complex128"]  # fmt: skip


def _layouts() -> dict[str, object]:
    content = ak.contents.NumpyArray(np.arange(10, dtype=np.int64) * 3)
    index = ak.index.Index64
    return {
        "ListArray": ak.contents.ListArray(index(np.array([4, 0, 7])), index(np.array([7, 2, 10])), content),
        "IndexedArray": ak.contents.IndexedArray(index(np.array([9, 0, 0, 4])), content),
        "IndexedOptionArray": ak.contents.IndexedOptionArray(index(np.array([2, -1, 5])), content),
        "ByteMaskedArray": ak.contents.ByteMaskedArray(
            ak.index.Index8(np.array([1, 0, 1], dtype=np.int8)), content[:3], valid_when=True
        ),
        "BitMaskedArray": ak.contents.BitMaskedArray(
            ak.index.IndexU8(np.array([0b10110101, 0b1], dtype=np.uint8)), content[:9], True, 9, True
        ),
        "UnmaskedArray": ak.contents.UnmaskedArray(content),
        "RegularArray": ak.contents.RegularArray(content, 5),
        "RegularArray-size0": ak.contents.RegularArray(content[:0], 0, zeros_length=4),
    }


def _corpus() -> dict[str, ak.Array]:
    arrays = {f"NumpyArray-{dtype}": ak.Array(np.arange(-5, 12).astype(dtype)) for dtype in NUMERIC}
    arrays["NumpyArray-bool"] = ak.Array(np.array([True, False, False, True, True]))
    arrays["NumpyArray-2d"] = ak.from_numpy(np.arange(24.0).reshape(6, 4))
    arrays["NumpyArray-fortran"] = ak.from_numpy(np.asfortranarray(np.arange(12).reshape(3, 4)))
    arrays["NumpyArray-strided"] = ak.from_numpy(np.arange(40, dtype=np.int32)[::3])
    arrays.update({name: ak.Array(layout) for name, layout in _layouts().items()})
    nested = ak.Array([[[1.5, 2.5], []], [], [[3.5], [4.5, 5.5, 6.5]]])
    records = ak.Array([{"x": 1, "y": [1.0, 2.0], "s": "a"}, {"x": 2, "y": [], "s": "bcd"}, {"x": 3, "y": [3.0], "s": ""}])
    arrays.update(
        {
            "ListOffsetArray": ak.Array([[1, 2, 3], [], [4, 5]]),
            "RecordArray": records,
            "tuples": ak.Array([(1, "one", [1.0]), (2, "two", []), (3, "three", [3.0, 3.5])]),
            "strings": ak.Array(["", "ascii", "ünïcödé", "a longer string than the rest"]),
            "bytestrings": ak.Array([b"\x00\x01", b"", b"xyz"]),
            "options": ak.Array([1, None, 3, None]),
            "option-lists": ak.Array([[1, None], None, [], [None, 4]]),
            "option-records": ak.Array([{"a": 1}, None, {"a": 3}]),
            "union": ak.Array([1, "two", [3.0], {"x": 4}]),
            "3-deep": nested,
            "3-deep-records": ak.Array([[{"p": [[1, 2], [3]]}], [], [{"p": []}, {"p": [[], [4]]}]]),
            "empty": ak.Array([]),
            "empty-lists": ak.Array([[1]])[0:0],
            "parameters": ak.with_parameter(ak.Array([[1.0, 2.0], [3.0]]), "__doc__", "momenta"),
            "sliced-range": nested[1:],
            "sliced-step": ak.Array([[1], [2, 2], [3, 3, 3], [4]])[::2],
            "sliced-take": nested[[2, 0, 2]],
            "sliced-mask": records[np.array([True, False, True])],
            "sliced-inner": nested[:, 1:],
            "sliced-field": records.y[1:],
            "sliced-strings": ak.Array(["a", "bb", "ccc", "dddd"])[1:3],
        }
    )
    return arrays


CORPUS = _corpus()


@pytest.fixture
def place():
    """``place_array`` into an arena that is closed (its chunks unlinked) at teardown."""
    arena = Arena()
    made: list[PlacedArray] = []

    def _place(array) -> PlacedArray:
        placed = place_array(array, arena)
        made.append(placed)
        return placed

    yield _place
    made.clear()
    arena.close()


def _release_counter():
    calls: list[int] = []
    return calls, lambda: calls.append(1)


def _buffer_addresses(array: ak.Array):
    _, _, container = ak.to_buffers(array)
    return [(key, buffer.ctypes.data, buffer.nbytes) for key, buffer in container.items()]


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_round_trip(name, place):
    original = CORPUS[name]
    placed = place(original)
    opened = open_array(placed.ref)
    assert opened.type == original.type
    assert ak.array_equal(opened, original, dtype_exact=True, check_parameters=True)
    assert opened.to_list() == original.to_list()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_copied_buffers_share_one_segment_at_aligned_offsets(name, place):
    original = CORPUS[name]
    placed = place(original)
    _, _, container = ak.to_buffers(original)
    assert placed.ref.buffers.keys() == container.keys()
    assert placed.ref.length == len(original)
    assert placed.borrowed == []
    assert len(placed.blocks) == (1 if container else 0)
    for key, ref in placed.ref.buffers.items():
        source = container[key]
        segment = placed.blocks[0].segment
        assert ref.segment == segment.name
        assert ref.offset % 64 == 0
        assert ref.nbytes == source.nbytes
        copied = segment.array()[ref.offset : ref.offset + ref.nbytes]
        assert copied.tobytes() == np.ascontiguousarray(source).astype(source.dtype.newbyteorder("<")).tobytes()


def test_opened_buffers_point_into_the_mapping(place):
    placed = place(CORPUS["3-deep-records"])
    opened = open_array(placed.ref)
    segment = placed.blocks[0].segment.name
    for key, address, nbytes in _buffer_addresses(opened):
        found = locate(address, nbytes)
        assert found is not None and found[0] == segment, key
    assert not ak.to_numpy(ak.flatten(opened.p, axis=None)).flags.writeable


def test_placing_an_opened_array_again_copies_nothing(place):
    placed = place(CORPUS["RecordArray"])
    opened = open_array(placed.ref)
    again = place(opened)
    assert again.blocks == []
    assert again.ref.buffers == placed.ref.buffers
    assert len(again.borrowed) == len(placed.ref.buffers)
    assert ak.array_equal(open_array(again.ref), CORPUS["RecordArray"], dtype_exact=True, check_parameters=True)


def test_partly_shared_array_copies_only_the_rest(place):
    placed = place(ak.Array([[1.0, 2.0], [], [3.0]]))
    opened = open_array(placed.ref)
    mixed = ak.zip({"shared": opened, "fresh": ak.Array([[10], [], [30]])}, depth_limit=1)
    again = place(mixed)
    assert len(again.blocks) == 1
    segments = {ref.segment for ref in again.ref.buffers.values()}
    assert segments == {placed.blocks[0].segment.name, again.blocks[0].segment.name}
    assert ak.array_equal(open_array(again.ref), mixed, dtype_exact=True, check_parameters=True)


def test_views_into_own_segments_are_referenced_when_aligned(place):
    segment = Segment.create(1024)
    try:
        whole = segment.array()
        aligned = whole[64:144].view(np.int64)
        aligned[:] = np.arange(10)
        placed = place(aligned)
        assert placed.blocks == []
        assert placed.ref.buffers == {"node0-data": BufferRef(segment.name, 64, 80)}

        misaligned = whole[3:83].view(np.int64)
        assert len(place(misaligned).blocks) == 1
        strided = aligned[::2]
        assert len(place(strided).blocks) == 1
        assert open_array(place(strided).ref).to_list() == [0, 2, 4, 6, 8]
    finally:
        segment.unlink()
        segment.close()


def test_accepts_numpy_arrays_and_lists(place):
    from_numpy = open_array(place(np.arange(6, dtype=np.uint16).reshape(2, 3)).ref)
    assert from_numpy.type == ak.from_numpy(np.zeros((2, 3), np.uint16)).type
    assert from_numpy.to_list() == [[0, 1, 2], [3, 4, 5]]
    assert open_array(place([[1, 2], [3]]).ref).to_list() == [[1, 2], [3]]


@pytest.mark.parametrize("value", [ak.Record({"x": 1}), {"x": [1]}, (1, 2), 5])
def test_refuses_what_is_not_an_array(value):
    with pytest.raises(TypeError):
        place_array(value, Arena())  # refused before anything is allocated


def test_release_waits_for_the_last_view(place):
    placed = place(CORPUS["RecordArray"])
    calls, on_release = _release_counter()
    opened = open_array(placed.ref, on_release=on_release)
    field = ak.to_numpy(opened.x)
    del opened
    gc.collect()
    assert calls == []
    assert field.tolist() == [1, 2, 3]
    del field
    gc.collect()
    assert calls == [1]


@pytest.mark.parametrize("kept, values", [("shared", [1.0, 2.0, 3.0]), ("fresh", [10, 30])])
def test_release_waits_for_every_segment_of_the_result(kept, values, place):
    placed = place(ak.Array([[1.0, 2.0], [], [3.0]]))
    mixed = ak.zip({"shared": open_array(placed.ref), "fresh": ak.Array([[10], [], [30]])}, depth_limit=1)
    other = Arena()  # the fresh part goes to another arena's chunk, so the result spans two segments
    try:
        spanning = place_array(mixed, other)
        del mixed
        assert len({ref.segment for ref in spanning.ref.buffers.values()}) == 2
        calls, on_release = _release_counter()
        opened = open_array(spanning.ref, on_release=on_release)
        one_segment_only = ak.to_numpy(ak.flatten(opened[kept]))
        del opened
        gc.collect()
        assert calls == []
        assert one_segment_only.tolist() == values
        del one_segment_only
        gc.collect()
        assert calls == [1]
    finally:
        other.close()


def test_placing_a_result_keeps_its_lease(place):
    placed = place(CORPUS["strings"])
    calls, on_release = _release_counter()
    opened = open_array(placed.ref, on_release=on_release)
    again = place_array(opened, Arena())  # every buffer is borrowed: nothing is allocated
    del opened
    gc.collect()
    assert calls == []
    del again
    gc.collect()
    assert calls == [1]


def test_result_without_buffers_releases_at_once():
    calls, on_release = _release_counter()
    opened = open_array(ArrayRef('{"class": "EmptyArray"}', 0, {}), on_release=on_release)
    gc.collect()
    assert len(opened) == 0
    assert calls == [1]


def _tampered(place, array, key, values) -> ArrayRef:
    """The ref of ``array`` placed, with buffer ``key`` overwritten by ``values`` in shared memory."""
    placed = place(array)
    ref = placed.ref.buffers[key]
    whole = placed.blocks[0].segment.array()
    whole[ref.offset : ref.offset + ref.nbytes].view(np.int64)[:] = values
    return placed.ref


def _with_buffer(ref: ArrayRef, key: str, buffer: BufferRef | None) -> ArrayRef:
    buffers = dict(ref.buffers)
    if buffer is None:
        del buffers[key]
    else:
        buffers[key] = buffer
    return ArrayRef(ref.form, ref.length, buffers)


def _malformed(place) -> dict[str, tuple[ArrayRef, str]]:
    good = place(ak.Array([[1, 2], [3]])).ref
    offsets = good.buffers["node0-offsets"]
    data = good.buffers["node1-data"]
    flat = place(ak.Array([1.0, 2.0])).ref
    record = place(ak.Array([{"x": 1.0, "y": 2}, {"x": 3.0, "y": 4}])).ref
    column = record.buffers["node2-data"]
    return {
        "form not JSON": (ArrayRef("{not json", 1, {}), "invalid array form"),
        "unknown class": (ArrayRef('{"class": "Nope"}', 1, {}), "invalid array form"),
        "missing buffer": (_with_buffer(good, "node1-data", None), r"missing \['node1-data'\]"),
        "extra buffer": (_with_buffer(good, "node9-data", data), r"unexpected \['node9-data'\]"),
        "past the end": (_with_buffer(good, "node1-data", BufferRef(data.segment, 1 << 40, 8)), "runs past the end"),
        "misaligned": (_with_buffer(good, "node1-data", BufferRef(data.segment, data.offset + 1, 8)), "aligned"),
        "partial item": (_with_buffer(good, "node1-data", BufferRef(data.segment, data.offset, 12)), "whole number"),
        "no such segment": (_with_buffer(good, "node1-data", BufferRef(segment_name(), 0, 8)), "does not exist"),
        "too long": (ArrayRef(good.form, 5, good.buffers), "invalid array"),
        "offsets past content": (_tampered(place, ak.Array([[1, 2], [3]]), "node0-offsets", [0, 2, 99]), "invalid array"),
        "offsets decreasing": (_tampered(place, ak.Array([[1, 2], [3]]), "node0-offsets", [0, 3, 1]), "invalid array"),
        "index out of range": (
            _tampered(place, ak.Array(_layouts()["IndexedArray"]), "node0-index", [0, 1, 2, 1000]),
            "invalid array",
        ),
        "short offsets": (_with_buffer(good, "node0-offsets", BufferRef(offsets.segment, offsets.offset, 8)), "invalid array"),
        # forms without positions skip ak.validity_error: from_buffers still checks their lengths
        "numbers past their buffer": (ArrayRef(flat.form, 5, flat.buffers), "invalid array"),
        "a record column short": (
            _with_buffer(record, "node2-data", BufferRef(column.segment, column.offset, 8)), "invalid array"),
    }


@pytest.mark.parametrize(
    "case",
    ["form not JSON", "unknown class", "missing buffer", "extra buffer", "past the end", "misaligned",
     "partial item", "no such segment", "too long", "offsets past content", "offsets decreasing",
     "index out of range", "short offsets", "numbers past their buffer", "a record column short"],  # fmt: skip
)
def test_malformed_results_raise_and_release(case, place):
    ref, message = _malformed(place)[case]
    calls, on_release = _release_counter()
    with pytest.raises(BridgeError, match=message):
        open_array(ref, on_release=on_release)
    gc.collect()
    assert calls == [1]


def test_concurrent_open_place_and_release(place):
    source = place(CORPUS["3-deep-records"]).ref
    leases = ResultLeases()
    arena = Arena()  # never allocates: every buffer is borrowed

    def work(lease: int) -> bool:
        opened = open_array(source, on_release=leases.hold(lease))
        again = place_array(opened, arena)  # zero-copy lookups while other threads map and unmap
        return again.blocks == [] and ak.array_equal(opened, CORPUS["3-deep-records"])

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(400)))
    gc.collect()
    assert sorted(leases.take_released()) == list(range(400))
    assert leases.held() == set()


@pytest.mark.parametrize(
    "array, validated",
    [
        (ak.Array([1.0, 2.0]), False),
        (ak.Array([{"x": 1.0, "y": 2}]), False),
        (ak.to_regular(ak.Array([[1, 2], [3, 4]]), axis=1), False),
        (ak.mask(ak.Array([1.0, 2.0]), [True, False]), False),
        (ak.Array([[1, 2], [3]]), True),
        (ak.Array([1.0, None]), True),
        (ak.Array(["a", "bc"]), True),
        (ak.with_parameter(ak.Array([1.0, 2.0]), "unit", "GeV"), True),
        (ak.Array([1, "a"]), True),
    ],
)
def test_only_forms_with_positions_or_parameters_are_validated(array, validated):
    open_array_module = importlib.import_module("bridge.codec.open_array")
    form_json = array.layout.form_with_key().to_json()
    assert open_array_module._read_form(form_json)[2] is validated
