"""Hand-built invalid arrays: each raises InvalidArray naming node and buffer; the server keeps serving."""

from __future__ import annotations

import gc
import json
import os

import numpy as np
import pytest

from bridge import Bridge, InvalidArray
from bridge.codec import place_array
from bridge.shm import Segment
from bridge.wire import ArrayRef, BufferRef, segment_name


def numpy_form(primitive: str, key: str) -> dict:
    return {"class": "NumpyArray", "primitive": primitive, "form_key": key}


def list_form(key: str, content: dict) -> dict:
    return {"class": "ListOffsetArray", "offsets": "i64", "content": content, "form_key": key}


@pytest.fixture(scope="module")
def bridge():
    with Bridge() as shared:
        shared.eval("total_length(x) = length(x)")
        yield shared


@pytest.fixture
def segment():
    created = Segment.create(1 << 12)
    yield created
    created.unlink()
    created.close()


def place(segment: Segment, buffers: dict[str, np.ndarray]) -> dict[str, BufferRef]:
    """Write ``buffers`` into ``segment`` at 64-byte steps and name them."""
    whole, refs, at = segment.array(), {}, 0
    for key, values in buffers.items():
        raw = np.ascontiguousarray(values).view(np.uint8)
        whole[at : at + raw.size] = raw
        refs[key] = BufferRef(segment.name, at, raw.size)
        at += -(-raw.size // 64) * 64
    return refs


JAGGED = list_form("node0", numpy_form("float64", "node1"))


def jagged(segment: Segment, offsets, content=np.arange(4.0)) -> ArrayRef:
    refs = place(segment, {"node0-offsets": np.asarray(offsets, np.int64), "node1-data": content})
    return ArrayRef(json.dumps(JAGGED), len(offsets) - 1, refs)


def assert_invalid_then_serving(bridge: Bridge, ref: ArrayRef, *needles: str) -> None:
    with pytest.raises(InvalidArray) as raised:
        bridge.call("total_length", ref)
    for needle in needles:
        assert needle in str(raised.value)
    assert bridge.call("total_length", [1, 2, 3]) == 3  # the server answers the next call


def test_valid_hand_built_array_is_accepted(bridge: Bridge, segment: Segment) -> None:
    assert bridge.call("total_length", jagged(segment, [0, 1, 4])) == 2


def test_offsets_past_content(bridge: Bridge, segment: Segment) -> None:
    assert_invalid_then_serving(bridge, jagged(segment, [0, 2, 9]), "node1-data", "needs 9")


def test_decreasing_offsets(bridge: Bridge, segment: Segment) -> None:
    assert_invalid_then_serving(bridge, jagged(segment, [0, 3, 1]), "node0", "offsets")


def test_negative_offsets(bridge: Bridge, segment: Segment) -> None:
    assert_invalid_then_serving(bridge, jagged(segment, [-1, 1, 2]), "node0", "offsets")


def test_stops_before_starts(bridge: Bridge, segment: Segment) -> None:
    form = {"class": "ListArray", "starts": "i64", "stops": "i64", "content": numpy_form("float64", "node1"),
            "form_key": "node0"}
    refs = place(segment, {"node0-starts": np.array([0, 3], np.int64), "node0-stops": np.array([2, 1], np.int64),
                           "node1-data": np.arange(4.0)})
    assert_invalid_then_serving(bridge, ArrayRef(json.dumps(form), 2, refs), "node0", "st")


def test_index_out_of_range(bridge: Bridge, segment: Segment) -> None:
    form = {"class": "IndexedArray", "index": "i64", "content": numpy_form("float64", "node1"), "form_key": "node0"}
    refs = place(segment, {"node0-index": np.array([0, 7], np.int64), "node1-data": np.arange(4.0)})
    # the index asks for 8 items of the content, which holds 4
    assert_invalid_then_serving(bridge, ArrayRef(json.dumps(form), 2, refs), "node1-data", "needs 8")


def test_union_tag_out_of_range(bridge: Bridge, segment: Segment) -> None:
    form = {"class": "UnionArray", "tags": "i8", "index": "i64", "form_key": "node0",
            "contents": [numpy_form("float64", "node1"), numpy_form("int64", "node2")]}
    refs = place(segment, {"node0-tags": np.array([0, 5], np.int8), "node0-index": np.array([0, 0], np.int64),
                           "node1-data": np.arange(2.0), "node2-data": np.arange(2)})
    assert_invalid_then_serving(bridge, ArrayRef(json.dumps(form), 2, refs), "node0", "tags")


def test_buffer_past_segment_end(bridge: Bridge, segment: Segment) -> None:
    ref = jagged(segment, [0, 1, 4])
    buffers = dict(ref.buffers, **{"node1-data": BufferRef(segment.name, (1 << 12) - 8, 32)})
    assert_invalid_then_serving(bridge, ArrayRef(ref.form, ref.length, buffers), "node1-data", "past the end")


@pytest.mark.parametrize("name", ["akb-does-not-exist", "other-pid"])
def test_unknown_segment(bridge: Bridge, segment: Segment, name: str) -> None:
    if name == "other-pid":
        name = segment.name.replace(f"-{os.getpid()}-", "-1-") if f"-{os.getpid()}-" in segment.name else segment_name(1)
    ref = jagged(segment, [0, 1, 4])
    buffers = dict(ref.buffers, **{"node1-data": BufferRef(name, 0, 32)})
    assert_invalid_then_serving(bridge, ArrayRef(ref.form, ref.length, buffers), "node1-data", name)


@pytest.mark.parametrize(
    "form",
    ['{"class": "ListOffsetArray", ', '{"class": "NoSuchArray", "form_key": "node0"}',
     '{"class": "ListOffsetArray", "offsets": "i64", "form_key": "node0"}'],
    ids=["bad-json", "unknown-class", "missing-content"],
)
def test_malformed_form(bridge: Bridge, segment: Segment, form: str) -> None:
    ref = jagged(segment, [0, 1, 4])
    with pytest.raises(InvalidArray):
        bridge.call("total_length", ArrayRef(form, ref.length, ref.buffers))
    assert bridge.call("total_length", [1]) == 1


def test_a_handle_is_validated_once_not_per_call(bridge: Bridge) -> None:
    handle = bridge.send([[1.0, 2.0], [], [3.0]])
    after_send = bridge.stats()["validations"]
    for _ in range(5):
        assert bridge.call("total_length", handle) == 3
    assert bridge.stats()["validations"] == after_send
    assert bridge.call("total_length", [[1.0], [2.0]]) == 2  # a fresh array is checked
    assert bridge.stats()["validations"] == after_send + 1
    handle.drop()


def test_a_result_sent_back_is_validated_once(bridge: Bridge) -> None:
    result = bridge.call("copy", [[1.0, 2.0], [], [3.0]])  # written by Julia
    before = bridge.stats()["validations"]
    for _ in range(5):
        assert bridge.call("total_length", result) == 3
    assert bridge.stats()["validations"] == before + 1  # the first time it came back only
    # the same buffers under another length are another array: checked again, and refused
    placed = place_array(result, bridge._arena)
    assert not placed.blocks  # every buffer is in the server's chunk: named where it is
    longer = ArrayRef(placed.ref.form, placed.ref.length + 1, placed.ref.buffers)
    with pytest.raises(InvalidArray):
        bridge.call("total_length", longer)
    assert bridge.call("total_length", result) == 3
    assert bridge.stats()["validations"] == before + 1  # a refused array is not counted


def test_a_new_result_in_a_freed_block_is_validated_again() -> None:
    with Bridge() as own:   # an arena of its own, whose next block is the one just freed
        own.eval("total_length(x) = length(x)")
        first = own.call("copy", [[1.0, 2.0], [], [3.0]])
        assert own.call("total_length", first) == 3
        where = first.layout.content.data.ctypes.data
        del first
        gc.collect()  # released with the next request, and the executor told to forget the block
        second = own.call("copy", [[4.0], [5.0, 6.0], []])
        assert second.layout.content.data.ctypes.data == where  # the same block, the same buffers
        before = own.stats()["validations"]
        assert own.call("total_length", second) == 3
        assert own.stats()["validations"] == before + 1  # not taken for the array it replaced
