"""The client's mappings of the server's result chunks, kept across results (the executor's
are julia_server/src/executor/mappings.jl `Mappings`).

The server writes results into blocks of a per-client arena of a few long-lived chunks
(julia_server/src/shm/arena.jl). Mapping a chunk per result would cost an ``shm_open`` and an
``mmap`` (and later a ``munmap``) every call, so each chunk stays mapped, read-only,
and every result in it shares that mapping. Caching by name is safe because names are random
and never reused: a name always means the same memory.

These keep at most ``cap`` mappings, least recently used going first; a mapping also
lives while any result array uses it. The server names the chunks it unlinked in its replies
(``unlinked``, docs/protocol.md sections 2 and 5); ``forget`` lets those go at once, so a dropped chunk
is not held in memory by an idle mapping here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Iterable

from bridge.shm import Segment

CAP = 16


class Mappings:
    """Read-only mappings of server segments by name; safe to use from several threads."""

    def __init__(self, cap: int = CAP) -> None:
        self._cap = cap
        self._lock = threading.Lock()
        self._segments: OrderedDict[str, Segment] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._segments)

    def names(self) -> list[str]:
        """Names of the mapped segments, least recently used first."""
        with self._lock:
            return list(self._segments)

    def attach(self, name: str) -> Segment:
        """Segment ``name``, mapped on first use and shared after that."""
        with self._lock:
            segment = self._segments.get(name)
            if segment is not None:
                self._segments.move_to_end(name)
                return segment
        segment = Segment.attach(name)  # outside the lock: other threads need not wait for the system calls
        with self._lock:
            known = self._segments.setdefault(name, segment)
            self._segments.move_to_end(name)
            evicted = [self._segments.popitem(last=False)[1] for _ in range(len(self._segments) - self._cap)]
        if known is not segment:
            segment.close()  # another thread mapped it first
        for old in evicted:
            old.close()  # unmapped once no result uses it
        return known

    def forget(self, names: Iterable[str]) -> None:
        """Let the segments ``names`` go (the server unlinked them); unknown names are ignored."""
        with self._lock:
            gone = [self._segments.pop(name) for name in names if name in self._segments]
        for segment in gone:
            segment.close()

    def close(self) -> None:
        """Let every segment go; results still alive keep theirs mapped until they die."""
        with self._lock:
            gone, self._segments = list(self._segments.values()), OrderedDict()
        for segment in gone:
            segment.close()
