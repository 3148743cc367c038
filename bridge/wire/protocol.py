"""Wire values of protocol version 1 (docs/protocol.md sections 2 and 4) and their msgpack codec.

``to_wire`` turns call arguments into msgpack-ready values, ``from_wire`` turns a reply's result
back into Python objects. Results come from another process, so ``from_wire`` checks every
field and raises ``BridgeError`` for anything malformed.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from bridge.base import BridgeError

from .refs import ArrayRef, BufferRef, FunctionRef, HandleRef
from .shown_value import ShownValue
from .segment_names import is_segment_name

PROTOCOL_VERSION = 1

_INT_MIN = -(2**63)
_UINT_MAX = 2**64 - 1


def encode(obj: Any) -> bytes:
    """One msgpack frame for ``obj`` (already a wire value)."""
    try:
        return msgpack.packb(obj, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as error:
        raise BridgeError(f"cannot encode message: {error}") from error


def decode(data: bytes) -> object:
    """The msgpack object in one frame; map keys must be strings."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise BridgeError(f"malformed message frame ({len(data)} bytes): {type(error).__name__} {error}") from error


def to_wire(value: Any) -> Any:
    """An argument as a wire value: scalars as-is, tuples, str-keyed dicts, ArrayRef, HandleRef,
    FunctionRef.

    Arrays must be placed in shared memory first (``bridge.codec.place_array``).
    """
    try:
        return _to_wire(value)
    except RecursionError:
        raise BridgeError("argument is nested too deeply (or contains itself)") from None


def from_wire(obj: Any) -> Any:
    """A result wire value as Python: scalars, lists, dicts, tuples, ArrayRef, HandleRef,
    FunctionRef."""
    try:
        return _from_wire(obj)
    except RecursionError:
        raise BridgeError("result is nested too deeply") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _to_wire(value: Any) -> Any:
    if isinstance(value, np.generic) and not isinstance(value, (np.str_, np.bytes_)):
        value = value.item()
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, str):
        return str(value)
    if _is_int(value):
        if not _INT_MIN <= value <= _UINT_MAX:
            raise BridgeError(f"integer {value} does not fit in 64 bits")
        return int(value)
    if isinstance(value, tuple):
        return {"$": "tuple", "items": [_to_wire(item) for item in value]}
    if isinstance(value, dict):
        return _dict_to_wire(value)
    if isinstance(value, ArrayRef):
        return _array_to_wire(value)
    if isinstance(value, HandleRef):
        return {"$": "handle", "id": value.id}
    if isinstance(value, FunctionRef):
        return {"$": "function", "id": value.id}
    raise BridgeError(
        f"cannot send a {type(value).__name__} to Julia: use None, bool, int, float, str, tuple, "
        "dict with str keys, or an array" + _what_instead(value)
    )


def _what_instead(value: Any) -> str:
    """For the objects an analysis has at hand that are not arrays yet: what to send instead."""
    module = type(value).__module__.split(".")[0]
    if module in ("dask", "dask_awkward"):
        return ("; this is a lazy Dask collection: send its .compute(), or run the call on each partition "
                "with bridge.dask.map_partitions (docs/farm.md)")
    if module == "uproot":
        return "; this is an uproot object: read its arrays first, e.g. tree.arrays([...])"
    if module == "awkward" and type(value).__name__ == "Record":
        return "; this is one record of an ak.Array: send a slice, events[i:i + 1], or its .to_list() as a dict"
    return ""


def _dict_to_wire(value: dict) -> dict:
    for key in value:
        if not isinstance(key, str):
            raise BridgeError(f"dict keys sent to Julia must be str, not {type(key).__name__} ({key!r})")
    if "$" in value:
        raise BridgeError('the dict key "$" is reserved for tagged values on the wire')
    return {str(key): _to_wire(item) for key, item in value.items()}


def _array_to_wire(ref: ArrayRef) -> dict:
    wire = {
        "$": "array",
        "form": ref.form,
        "length": ref.length,
        "buffers": {key: [buf.segment, buf.offset, buf.nbytes] for key, buf in ref.buffers.items()},
    }
    if ref.lease is not None:
        wire["lease"] = ref.lease
    return wire


def _from_wire(obj: Any) -> Any:
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [_from_wire(item) for item in obj]
    if isinstance(obj, dict):
        if "$" not in obj:
            return _plain_dict(obj)
        tag = obj["$"]
        if tag == "tuple":
            _expect_keys(obj, {"$", "items"}, set())
            items = obj["items"]
            if not isinstance(items, list):
                raise BridgeError(f'tuple "items" must be a list, not {type(items).__name__}')
            return tuple(_from_wire(item) for item in items)
        if tag == "handle":
            _expect_keys(obj, {"$", "id"}, set())
            return HandleRef(_nonnegative_int(obj["id"], "handle id"))
        if tag == "array":
            return _array_from_wire(obj)
        if tag == "function":
            _expect_keys(obj, {"$", "id", "name"}, set())
            if not isinstance(obj["name"], str):
                raise BridgeError(f"function name must be a str, not {type(obj['name']).__name__}")
            return FunctionRef(_nonnegative_int(obj["id"], "function id"), obj["name"])
        if tag == "shown":
            _expect_keys(obj, {"$", "text"}, set())
            if not isinstance(obj["text"], str):
                raise BridgeError(f"shown text must be a str, not {type(obj['text']).__name__}")
            return ShownValue(obj["text"])
        raise BridgeError(f"unknown tagged value {tag!r} in result")
    raise BridgeError(f"unexpected {type(obj).__name__} in result: {obj!r:.80}")


def _plain_dict(obj: dict) -> dict:
    for key in obj:
        if not isinstance(key, str):
            raise BridgeError(f"result map key {key!r:.80} is not a string")
    return {key: _from_wire(item) for key, item in obj.items()}


def _array_from_wire(obj: dict) -> ArrayRef:
    _expect_keys(obj, {"$", "form", "length", "buffers"}, {"lease"})
    form = obj["form"]
    if not isinstance(form, str):
        raise BridgeError(f'array "form" must be a string, not {type(form).__name__}')
    length = _nonnegative_int(obj["length"], "array length")
    buffers = obj["buffers"]
    if not isinstance(buffers, dict):
        raise BridgeError(f'array "buffers" must be a map, not {type(buffers).__name__}')
    lease = obj.get("lease")
    if lease is not None:
        lease = _nonnegative_int(lease, "array lease")
    return ArrayRef(form, length, {key: _buffer_from_wire(key, entry) for key, entry in buffers.items()}, lease)


def _buffer_from_wire(key: Any, entry: Any) -> BufferRef:
    if not isinstance(key, str):
        raise BridgeError(f"buffer key {key!r:.80} is not a string")
    if not (isinstance(entry, list) and len(entry) == 3):
        raise BridgeError(f"buffer {key!r} must be [segment, offset, nbytes], not {entry!r:.80}")
    segment, offset, nbytes = entry
    if not (isinstance(segment, str) and is_segment_name(segment)):
        raise BridgeError(f"buffer {key!r} names {segment!r:.80}, which is not a bridge segment")
    return BufferRef(segment, _nonnegative_int(offset, f"buffer {key!r} offset"), _nonnegative_int(nbytes, f"buffer {key!r} nbytes"))


def _expect_keys(obj: dict, required: set, optional: set) -> None:
    keys = set(obj)
    missing = required - keys
    extra = keys - required - optional
    if missing or extra:
        raise BridgeError(
            f"malformed {obj.get('$')!r} value: missing {sorted(missing, key=str)}, unexpected {sorted(extra, key=str)}"
        )


def _nonnegative_int(value: Any, what: str) -> int:
    if not _is_int(value) or value < 0:
        raise BridgeError(f"{what} must be a non-negative integer, not {value!r:.80}")
    return value
