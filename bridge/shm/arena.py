"""An arena of shared memory: a few large segments ("chunks") carved into 64-byte aligned blocks.

Creating a segment per buffer costs a ``shm_open``, a ``posix_fallocate`` and an ``mmap`` here,
and a map and unmap in the server, on every call. The arena keeps its chunks across calls, so in
steady state a call creates and maps nothing: the server caches its mapping of each chunk by
name, which is safe because names are random and never reused (docs/protocol.md section 5).

Chunks grow geometrically (``min_chunk`` doubling up to ``max_chunk``); a request larger than
``max_chunk`` gets a chunk of its own size. Freed blocks coalesce with their free neighbours. A
chunk that becomes entirely free is kept while the entirely-free chunks total at most
``reserve`` bytes. Beyond that it lingers for ``linger`` seconds, for a block of at least half
its size only (so a small block never pins a large chunk), and is then unlinked and closed:
creating a large segment costs far more than the copy into it (the kernel makes every page),
and an analysis loop passes arrays of one size again and again. ``take_unlinked`` reports the
names of unlinked chunks so the client can tell the server to drop its cached mappings
(``release.segments``).

A block's memory may be reused only after the server's lease on it ended: the owner frees a
call's argument blocks after the reply, and a handle's blocks after the drop (docs/ownership.md).
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from bridge.base import BridgeError

from .segment import Segment

ALIGNMENT = 64
MiB = 1 << 20
DEFAULT_RESERVE = 64 * MiB
DEFAULT_LINGER = 5.0  # seconds


@dataclass(frozen=True)
class Block:
    """``nbytes`` bytes at ``offset`` (a multiple of 64) in ``segment``, one of an arena's chunks."""

    segment: Segment
    offset: int
    nbytes: int

    def array(self) -> np.ndarray:
        """A writable uint8 view of the block's bytes."""
        return self.segment.array()[self.offset : self.offset + self.nbytes]


class _Chunk:
    """One segment and its free list: sorted, non-adjacent ``[offset, size]`` ranges."""

    __slots__ = ("segment", "size", "free", "lingers_until")

    def __init__(self, segment: Segment) -> None:
        self.segment = segment
        self.size = segment.size
        self.free: list[list[int]] = [[0, segment.size]]
        self.lingers_until: Optional[float] = None  # set while entirely free beyond the reserve

    def take(self, size: int) -> int | None:
        """The offset of ``size`` bytes cut from the first free range that fits, or None."""
        for i, (offset, length) in enumerate(self.free):
            if length >= size:
                if length == size:
                    del self.free[i]
                else:
                    self.free[i] = [offset + size, length - size]
                return offset
        return None

    def give(self, offset: int, size: int) -> None:
        """Return ``[offset, offset + size)`` to the free list, merged with its free neighbours."""
        i = bisect.bisect_left(self.free, [offset, 0])
        if i < len(self.free) and self.free[i][0] == offset + size:
            size += self.free.pop(i)[1]
        if i > 0 and sum(self.free[i - 1]) == offset:
            self.free[i - 1][1] += size
        else:
            self.free.insert(i, [offset, size])

    @property
    def empty(self) -> bool:
        return self.free == [[0, self.size]]


class Arena:
    """Shared-memory blocks for one owner, safe to use from several threads.

    ``allocate`` raises ``SharedMemoryFull`` when a new chunk cannot be reserved, and
    ``BridgeError`` once the arena is closed; ``close`` unlinks every chunk.
    """

    def __init__(
        self,
        *,
        min_chunk: int = 1 * MiB,
        max_chunk: int = 64 * MiB,
        reserve: int = DEFAULT_RESERVE,
        linger: float = DEFAULT_LINGER,
    ) -> None:
        if not 0 < min_chunk <= max_chunk or min_chunk % ALIGNMENT or max_chunk % ALIGNMENT:
            raise ValueError(f"chunk sizes must be positive multiples of {ALIGNMENT} with min ≤ max")
        if reserve < 0:
            raise ValueError(f"the reserve must be ≥ 0 bytes, not {reserve}")
        if not linger >= 0:
            raise ValueError(f"linger must be ≥ 0 seconds, not {linger}")
        self._max_chunk = max_chunk
        self._next_chunk = min_chunk
        self._reserve = reserve
        self._linger = linger
        self._timer: Optional[threading.Timer] = None  # ends lingering chunks while the owner is idle
        self._lock = threading.Lock()
        self._chunks: dict[str, _Chunk] = {}  # by segment name, in creation order
        self._used: dict[tuple[str, int], int] = {}  # (segment, offset) → size, of allocated blocks
        self._unlinked: list[str] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"Arena({len(self._chunks)} chunks, {self.chunk_bytes} bytes, {len(self._used)} blocks)"

    @property
    def chunk_bytes(self) -> int:
        """Bytes of shared memory the arena holds, free or not."""
        with self._lock:
            return sum(chunk.size for chunk in self._chunks.values())

    def segment_names(self) -> list[str]:
        """Names of the arena's chunks, oldest first."""
        with self._lock:
            return list(self._chunks)

    def allocate(self, nbytes: int) -> Block:
        """A block of at least ``nbytes`` (≥ 1) bytes at a 64-byte aligned offset."""
        if nbytes < 1:
            raise ValueError(f"a block needs at least 1 byte, not {nbytes}")
        size = -(-nbytes // ALIGNMENT) * ALIGNMENT
        with self._lock:
            if self._closed:
                raise BridgeError("this arena is closed")
            for chunk in self._chunks.values():
                if chunk.lingers_until is not None and 2 * size < chunk.size:
                    continue
                offset = chunk.take(size)
                if offset is not None:
                    chunk.lingers_until = None
                    return self._hand_out(chunk, offset, nbytes, size)
            chunk = self._new_chunk(size)
            offset = chunk.take(size)
            assert offset == 0
            return self._hand_out(chunk, offset, nbytes, size)

    def free(self, block: Block) -> None:
        """Give ``block`` back; its memory may be handed out again at once. No-op once closed."""
        key = (block.segment.name, block.offset)
        with self._lock:
            if self._closed:
                return
            size = self._used.pop(key, None)
            if size is None:
                raise BridgeError(f"{block} is not allocated from this arena (freed twice?)")
            chunk = self._chunks[block.segment.name]
            chunk.give(block.offset, size)
            if chunk.empty and self._reserved_bytes() > self._reserve:
                now = time.monotonic()
                chunk.lingers_until = now + self._linger
                self._end_lingering(now)

    def take_unlinked(self) -> list[str]:
        """Names of chunks unlinked since the last call (for ``release.segments``)."""
        with self._lock:
            names, self._unlinked = self._unlinked, []
            return names

    def close(self) -> None:
        """Unlink and close every chunk; idempotent. Views of blocks stay valid until they die."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            for chunk in list(self._chunks.values()):
                self._drop(chunk)
            self._used.clear()

    def _hand_out(self, chunk: _Chunk, offset: int, nbytes: int, size: int) -> Block:
        self._used[(chunk.segment.name, offset)] = size
        return Block(chunk.segment, offset, nbytes)

    def _new_chunk(self, size: int) -> _Chunk:
        if size > self._max_chunk:
            # a dedicated chunk, written whole at once, unlinked when freed beyond the reserve
            chunk = _Chunk(Segment.create(size, populate=True))
        else:
            while self._next_chunk < size:
                self._next_chunk = min(2 * self._next_chunk, self._max_chunk)
            chunk = _Chunk(Segment.create(self._next_chunk))
            self._next_chunk = min(2 * self._next_chunk, self._max_chunk)
        self._chunks[chunk.segment.name] = chunk
        return chunk

    def _reserved_bytes(self) -> int:
        """Bytes of entirely free chunks that the reserve keeps (lingering ones are on top)."""
        return sum(chunk.size for chunk in self._chunks.values() if chunk.empty and chunk.lingers_until is None)

    def _end_lingering(self, now: float) -> None:
        """Drop the lingering chunks whose time is up, and wake up when the next one's is."""
        lingering = [chunk for chunk in self._chunks.values() if chunk.lingers_until is not None]
        for chunk in lingering:
            if chunk.lingers_until <= now:
                self._drop(chunk)
        deadlines = [chunk.lingers_until for chunk in lingering if chunk.lingers_until > now]
        if deadlines and self._timer is None:
            self._timer = threading.Timer(min(deadlines) - now, self._on_timer)
            self._timer.daemon = True
            self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
            if not self._closed:
                self._end_lingering(time.monotonic())

    def _drop(self, chunk: _Chunk) -> None:
        del self._chunks[chunk.segment.name]
        chunk.segment.unlink()
        chunk.segment.close()
        self._unlinked.append(chunk.segment.name)
