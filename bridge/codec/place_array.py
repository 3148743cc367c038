"""An Awkward Array into shared memory, for a request's argument (the reverse is open_array.py).

Buffers follow docs/protocol.md section 4: keyed ``{form_key}-{role}`` as ``ak.to_buffers``
names them, little-endian, C-contiguous, each at an offset that is a multiple of its item size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import numpy as np

from bridge.shm import ALIGNMENT, Arena, Block, locate
from bridge.wire import ArrayRef, BufferRef


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


def _as_awkward(array: Any) -> ak.Array:
    if isinstance(array, ak.Array):
        return array
    if isinstance(array, np.ndarray):
        # awkward takes native byte order only (big-endian data read raw from a file is common);
        # the buffers are copied into shared memory anyway
        return ak.from_numpy(array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("=")))
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
