"""Awkward Arrays in and out of shared memory: ``place_array`` for arguments, ``open_array`` for results.

Buffers follow docs/protocol.md section 4: keyed ``{form_key}-{role}`` as ``ak.to_buffers``
names them, little-endian, C-contiguous, each at an offset that is a multiple of its item size.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import awkward as ak
import numpy as np

from bridge.arena import ALIGNMENT, Arena, Block
from bridge.errors import BridgeError
from bridge.protocol import ArrayRef, BufferRef
from bridge.shm import Segment, locate


@dataclass
class PlacedArray:
    """An array ready to name in a request.

    ``source`` is the array as placed; ``blocks`` are the arena blocks ``place_array`` filled
    (the caller frees them to the arena when the server's lease ends); ``borrowed`` are the
    buffers referenced where they already were: holding them keeps those mappings, and any
    result lease on them, alive.
    """

    ref: ArrayRef
    source: ak.Array
    blocks: list[Block]
    borrowed: list[np.ndarray] = field(default_factory=list)


def place_array(array: Any, arena: Arena) -> PlacedArray:
    """Put ``array`` (an ``ak.Array``, numpy array or list) in shared memory for the server.

    Buffers already inside a live bridge mapping of this process are referenced in place; all
    others are copied, once, into one block of ``arena`` at 64-byte aligned offsets.
    """
    source = _as_awkward(array)
    form, length, container = ak.to_buffers(source)
    buffers: dict[str, BufferRef] = {}
    borrowed: list[np.ndarray] = []
    to_copy: dict[str, np.ndarray] = {}
    for key, buffer in container.items():
        if not isinstance(buffer, np.ndarray):
            raise TypeError(f"buffer {key} is a {type(buffer).__name__}; only arrays on the CPU backend can be sent")
        found = _in_place(buffer)
        if found is None:
            to_copy[key] = buffer
        else:
            buffers[key] = BufferRef(found[0], found[1], buffer.nbytes)
            borrowed.append(buffer)
    blocks = [_copy_into_block(to_copy, buffers, arena)] if to_copy else []
    ref = ArrayRef(form.to_json(), length, {key: buffers[key] for key in container})
    return PlacedArray(ref, source, blocks, borrowed)


def open_array(
    ref: ArrayRef,
    *,
    on_release: Callable[[], None] | None = None,
    attach: Callable[[str], Segment] = Segment.attach,
) -> ak.Array:
    """The array ``ref`` describes, as zero-copy read-only views of its segments.

    ``attach`` maps a segment by name (a ``SegmentTable`` shares mappings between results).
    ``on_release`` is called exactly once: when the last view of this array's buffers is garbage,
    or at once if the array turns out to be invalid (``BridgeError``).
    """
    # Every view of this result holds the token, so it dies (and releases) with the last one.
    token = _release_token(on_release) if on_release is not None else None
    form = _parse_form(ref.form)
    expected = form.expected_from_buffers()
    _check_keys(expected, ref.buffers)
    whole = {name: attach(name).window(token) for name in sorted({buffer.segment for buffer in ref.buffers.values()})}
    views = {
        key: _view(key, buffer, whole[buffer.segment], np.dtype(expected[key])) for key, buffer in ref.buffers.items()
    }
    try:
        array = ak.from_buffers(form, ref.length, views)
        problem = ak.validity_error(array)
    except Exception as error:
        raise BridgeError(f"invalid array from the server: {type(error).__name__}: {error}") from None
    if problem:
        raise BridgeError(f"invalid array from the server: {problem}")
    return array


def _as_awkward(array: Any) -> ak.Array:
    if isinstance(array, ak.Array):
        return array
    if isinstance(array, np.ndarray):
        return ak.from_numpy(array)
    if isinstance(array, list):
        return ak.Array(array)
    raise TypeError(f"cannot send a {type(array).__name__} as an array: use an ak.Array, a numpy array or a list")


def _in_place(buffer: np.ndarray) -> tuple[str, int] | None:
    """``(segment, offset)`` when the buffer can be named where it is, as the protocol requires."""
    if not buffer.flags.c_contiguous or buffer.dtype != buffer.dtype.newbyteorder("<"):
        return None
    found = locate(buffer.ctypes.data, buffer.nbytes)
    if found is None or found[1] % buffer.dtype.itemsize:
        return None
    return found


def _copy_into_block(to_copy: dict[str, np.ndarray], buffers: dict[str, BufferRef], arena: Arena) -> Block:
    offsets = {}
    end = 0
    for key, buffer in to_copy.items():
        start = -(-end // ALIGNMENT) * ALIGNMENT
        offsets[key] = start
        end = start + buffer.nbytes
    block = arena.allocate(max(end, 1))
    try:
        whole = block.array()
        for key, buffer in to_copy.items():
            start = offsets[key]
            target = whole[start : start + buffer.nbytes].view(buffer.dtype.newbyteorder("<"))
            # One copy that also makes the buffer contiguous and little-endian.
            np.copyto(target.reshape(buffer.shape), buffer, casting="equiv")
            buffers[key] = BufferRef(block.segment.name, block.offset + start, buffer.nbytes)
    except BaseException:
        arena.free(block)
        raise
    return block


def _parse_form(form_json: str) -> ak.forms.Form:
    try:
        return ak.forms.from_json(form_json)
    except Exception as error:
        raise BridgeError(f"invalid array form from the server: {type(error).__name__}: {error}") from None


def _check_keys(expected: dict, buffers: dict[str, BufferRef]) -> None:
    missing = sorted(set(expected) - set(buffers))
    extra = sorted(set(buffers) - set(expected))
    if missing or extra:
        raise BridgeError(f"array buffers do not match its form: missing {missing}, unexpected {extra}")


def _view(key: str, buffer: BufferRef, whole: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if buffer.offset + buffer.nbytes > whole.size:
        raise BridgeError(
            f"buffer {key} ({buffer.nbytes} bytes at offset {buffer.offset}) runs past the end of "
            f"segment {buffer.segment} ({whole.size} bytes)"
        )
    if buffer.offset % dtype.itemsize or buffer.nbytes % dtype.itemsize:
        raise BridgeError(
            f"buffer {key} ({buffer.nbytes} bytes at offset {buffer.offset}) is not a whole number of "
            f"{dtype} items at an aligned offset"
        )
    return whole[buffer.offset : buffer.offset + buffer.nbytes].view(dtype.newbyteorder("<"))


class _LeaseToken:
    """Referenced by every mapping of one result; its finalizer calls the release hook."""


def _release_token(on_release: Callable[[], None]) -> _LeaseToken:
    token = _LeaseToken()
    # No release at interpreter exit: the connection is going away with everything it leased.
    weakref.finalize(token, on_release).atexit = False
    return token
