"""References to values that live elsewhere (docs/protocol.md section 4): arrays and buffers in
shared memory, handles the server holds, functions an executor keeps."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BufferRef:
    """``nbytes`` bytes at byte ``offset`` of shared-memory ``segment``."""

    segment: str
    offset: int
    nbytes: int


@dataclass(frozen=True)
class ArrayRef:
    """An Awkward Array whose buffers live in shared memory; ``lease`` is set on results only."""

    form: str
    length: int
    buffers: dict[str, BufferRef]
    lease: int | None = None


@dataclass(frozen=True)
class HandleRef:
    """An array the server holds for this client since a ``send``."""

    id: int


@dataclass(frozen=True)
class FunctionRef:
    """A Julia function this client's executor keeps for it (a function result); ``name`` is
    Julia's name for it (``"anonymous"`` for a lambda)."""

    id: int
    name: str = ""
