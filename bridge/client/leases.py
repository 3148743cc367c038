"""Client-side bookkeeping of result leases (docs/ownership.md).

A result's lease is released when the ``ak.Array`` built on it is garbage. That is noticed by a
``weakref.finalize``, which may run in any thread at any allocation, even while that thread is
inside the bridge holding a lock. The release hook therefore only puts the id on a
``queue.SimpleQueue`` (whose ``put`` is reentrant and takes no lock the caller could hold);
the transport collects the ids with ``take_released`` and sends them in a ``release`` op.

Lease ids are unique only within one registration with one server: a restarted server hands
out the same ids again. Each hook therefore carries the generation it was issued in, and
``forget`` starts a new generation, so a late finalizer of an array from before a restart can
never release the lease of a newer array that happens to have the same id.
"""

from __future__ import annotations

import functools
import queue
import threading
from typing import Callable


class ResultLeases:
    """The result leases this client holds, and those released but not yet reported."""

    def __init__(self) -> None:
        self._held: set[int] = set()
        self._lock = threading.Lock()
        self._released: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
        self._generation = 0

    def hold(self, lease_id: int) -> Callable[[], None]:
        """Record a lease received with a result; returns its release hook (for ``open_array``)."""
        with self._lock:
            self._held.add(lease_id)
            generation = self._generation
        return functools.partial(self._release, generation, lease_id)

    def _release(self, generation: int, lease_id: int) -> None:
        """Release hook: only enqueues, so it is safe in finalizers, in any thread."""
        self._released.put((generation, lease_id))

    def take_released(self) -> list[int]:
        """The held leases released since the last call, each once; they are no longer held."""
        released = []
        while True:
            try:
                released.append(self._released.get_nowait())
            except queue.Empty:
                break
        taken = []
        with self._lock:
            for generation, lease_id in released:
                if generation == self._generation and lease_id in self._held:
                    self._held.remove(lease_id)
                    taken.append(lease_id)
        return taken

    def held(self) -> set[int]:
        """Leases held and not yet handed out by ``take_released`` (a copy)."""
        with self._lock:
            return set(self._held)

    def forget(self) -> None:
        """Drop every lease, for when the server has forgotten them (``bye``, server gone).

        Releases of forgotten leases that arrive later are ignored by ``take_released``, even
        when a new lease reuses the id.
        """
        with self._lock:
            self._held.clear()
            self._generation += 1
