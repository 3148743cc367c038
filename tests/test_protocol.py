"""Wire values: msgpack framing, arguments out (to_wire) and results in (from_wire)."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from bridge.base import BridgeError
from bridge.wire import PROTOCOL_VERSION, ArrayRef, BufferRef, HandleRef, decode, encode, from_wire, to_wire

SEG = "akb-4242-" + "ab" * 16

ARRAY = ArrayRef(
    form='{"class": "NumpyArray", "primitive": "float64", "form_key": "node0"}',
    length=3,
    buffers={"node0-data": BufferRef(SEG, 64, 24)},
)


def test_protocol_version_is_one():
    assert PROTOCOL_VERSION == 1


def test_envelope_round_trips_through_msgpack():
    request = {"v": 1, "id": 7, "client": "abcdefgh", "op": "call", "fn": "f", "args": [1.5, "x", None]}
    frame = encode(request)
    assert isinstance(frame, bytes)
    assert decode(frame) == request


def test_strings_and_binary_stay_distinct():
    assert decode(encode({"s": "é", "b": b"\x00\xff"})) == {"s": "é", "b": b"\x00\xff"}


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\xc1",  # never-used msgpack type byte
        msgpack.packb({1: 2}),  # non-string map key
        msgpack.packb({"a": 1}) + b"\x00",  # trailing data
        b"\x91" * 5000 + b"\xc0",  # nesting deeper than the unpacker allows
        b"\xa2\xff\xfe",  # invalid UTF-8 in a str
    ],
)
def test_decode_rejects_malformed_frames(frame):
    with pytest.raises(BridgeError, match="malformed message frame"):
        decode(frame)


@pytest.mark.parametrize("value", [None, True, False, 0, -(2**63), 2**64 - 1, 1.5, float("inf"), "", "héllo"])
def test_scalars_go_out_as_themselves(value):
    wire = to_wire(value)
    assert wire == value and type(wire) is type(value)
    assert from_wire(decode(encode(wire))) == value


@pytest.mark.parametrize(
    "scalar, expected",
    [
        (np.int8(-3), -3),
        (np.uint64(2**64 - 1), 2**64 - 1),
        (np.float32(0.5), 0.5),
        (np.float64(2.25), 2.25),
        (np.bool_(True), True),
        (np.str_("s"), "s"),
    ],
)
def test_numpy_scalars_become_python_scalars(scalar, expected):
    wire = to_wire(scalar)
    assert wire == expected and type(wire) is type(expected)


def test_tuples_dicts_arrays_and_handles_are_tagged():
    value = (1, {"a": (2.0, "x"), "h": HandleRef(5)}, ARRAY)
    assert to_wire(value) == {
        "$": "tuple",
        "items": [
            1,
            {"a": {"$": "tuple", "items": [2.0, "x"]}, "h": {"$": "handle", "id": 5}},
            {
                "$": "array",
                "form": ARRAY.form,
                "length": 3,
                "buffers": {"node0-data": [SEG, 64, 24]},
            },
        ],
    }


@pytest.mark.parametrize(
    "value",
    [
        (),
        (1, (2, (3,))),
        {"a": 1, "b": {"c": None}},
        {},
        HandleRef(0),
        ARRAY,
        ArrayRef(ARRAY.form, 3, ARRAY.buffers, lease=12),
        ArrayRef('{"class": "EmptyArray"}', 0, {}),
        ({"t": (ARRAY, HandleRef(3))},),
    ],
)
def test_from_wire_inverts_to_wire(value):
    assert from_wire(decode(encode(to_wire(value)))) == value


def test_results_may_hold_lists():
    assert from_wire([1, {"$": "tuple", "items": [2]}, [None]]) == [1, (2,), [None]]


@pytest.mark.parametrize(
    "value, message",
    [
        ([1, 2], "cannot send a list"),
        ({1, 2}, "cannot send a set"),
        (b"x", "cannot send a bytes"),
        (object(), "cannot send a object"),
        ({1: "x"}, "keys sent to Julia must be str"),
        ({"$": "tuple"}, "reserved"),
        (2**64, "does not fit in 64 bits"),
        (-(2**63) - 1, "does not fit in 64 bits"),
        ((1, [2]), "cannot send a list"),
    ],
)
def test_to_wire_rejects_what_julia_cannot_receive(value, message):
    with pytest.raises(BridgeError, match=message):
        to_wire(value)


def test_what_an_analysis_has_at_hand_is_refused_with_what_to_send_instead(tmp_path):
    import awkward as ak
    import dask_awkward as dak
    import uproot

    with pytest.raises(BridgeError, match=r"cannot send a Record .*events\[i:i \+ 1\]"):
        to_wire(ak.Array([{"pt": 1.0}])[0])
    with pytest.raises(BridgeError, match=r"lazy Dask collection: send its \.compute\(\)"):
        to_wire(dak.from_awkward(ak.Array([1.0, 2.0]), npartitions=1))
    with uproot.recreate(tmp_path / "events.root") as out:
        out["Events"] = {"pt": np.arange(3.0)}
    with uproot.open(tmp_path / "events.root") as f:
        with pytest.raises(BridgeError, match=r"uproot object: read its arrays first"):
            to_wire(f["Events"])


def test_to_wire_rejects_self_containing_values():
    looped: dict = {}
    looped["self"] = looped
    with pytest.raises(BridgeError, match="nested too deeply"):
        to_wire(looped)


GOOD_ARRAY = {"$": "array", "form": "{}", "length": 1, "buffers": {"node0-data": [SEG, 0, 8]}, "lease": 3}


def _with(**changes):
    wire = dict(GOOD_ARRAY)
    for key, value in changes.items():
        if value is None:
            del wire[key]
        else:
            wire[key] = value
    return wire


@pytest.mark.parametrize(
    "wire, message",
    [
        ({"$": "set", "items": []}, "unknown tagged value"),
        ({"$": "tuple"}, "missing"),
        ({"$": "tuple", "items": 3}, "must be a list"),
        ({"$": "tuple", "items": [], "extra": 1}, "unexpected"),
        ({"$": "handle", "id": -1}, "handle id"),
        ({"$": "handle", "id": True}, "handle id"),
        ({"$": "handle", "id": "1"}, "handle id"),
        (_with(form=None), "missing"),
        (_with(form=7), "form"),
        (_with(length=-1), "array length"),
        (_with(length=1.0), "array length"),
        (_with(buffers=[]), "must be a map"),
        (_with(buffers={"k": [SEG, 0]}), r"\[segment, offset, nbytes\]"),
        (_with(buffers={"k": (SEG, 0, 8)}), r"\[segment, offset, nbytes\]"),
        (_with(buffers={"k": ["../../etc/passwd", 0, 8]}), "not a bridge segment"),
        (_with(buffers={"k": ["/akb-1-" + "0" * 32, 0, 8]}), "not a bridge segment"),
        (_with(buffers={"k": [SEG, -8, 8]}), "offset"),
        (_with(buffers={"k": [SEG, 0, -1]}), "nbytes"),
        (_with(buffers={"k": [SEG, 0, 2.0]}), "nbytes"),
        (_with(buffers={3: [SEG, 0, 8]}), "not a string"),
        (_with(lease=-2), "lease"),
        (_with(owner="me"), "unexpected"),
        ({1: "x"}, "not a string"),
        (b"bytes", "unexpected bytes"),
        (msgpack.ExtType(5, b"x"), "unexpected ExtType"),
        ([1, {"$": "nope"}], "unknown tagged value"),
    ],
)
def test_from_wire_rejects_malformed_results(wire, message):
    with pytest.raises(BridgeError, match=message):
        from_wire(wire)


def test_from_wire_accepts_absent_or_nil_lease():
    assert from_wire(_with(lease=None)).lease is None
    nil_lease = dict(GOOD_ARRAY, lease=None)
    assert from_wire(nil_lease).lease is None
    assert from_wire(GOOD_ARRAY) == ArrayRef("{}", 1, {"node0-data": BufferRef(SEG, 0, 8)}, 3)


def test_from_wire_rejects_deep_nesting_cleanly():
    deep: object = 0
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(BridgeError, match="nested too deeply"):
        from_wire(deep)
