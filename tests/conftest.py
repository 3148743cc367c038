"""Shared fixtures: no test may leave a shared-memory segment behind."""

from __future__ import annotations

import gc
import os

import pytest

from bridge.shm import SHM_DIR, owner_is_alive, parse_lock_pid
from bridge.wire import segment_pid


def _segments() -> set[str]:
    """Segments, and the owner lock files of processes that are gone (a live owner, this one
    included, removes its own at exit)."""
    names = set()
    for name in os.listdir(SHM_DIR):
        lock_pid = parse_lock_pid(name)
        if segment_pid(name) is not None or (lock_pid is not None and not owner_is_alive(lock_pid)):
            names.add(name)
    return names


def _ours_or_orphaned(name: str) -> bool:
    """This process's segment, or one whose owner (a server the tests started) has exited.

    Segments of other live processes are ignored: other test runs may share the machine.
    """
    pid = segment_pid(name) or parse_lock_pid(name)
    return pid == os.getpid() or not owner_is_alive(pid)


@pytest.fixture(scope="session", autouse=True)
def no_leftover_segments():
    """Fails the session if a segment it created (here or in a server now gone) is left in /dev/shm."""
    before = _segments()
    yield
    gc.collect()  # lets finalizers that unlink segments run before the check
    left = sorted(name for name in _segments() - before if _ours_or_orphaned(name))
    assert not left, f"tests left shared-memory segments behind: {left}"


@pytest.fixture
def shm_clean():
    """Fails the test if it leaves a segment owned by this process in /dev/shm."""
    before = _segments()
    yield
    gc.collect()
    mine = sorted(name for name in _segments() - before if segment_pid(name) == os.getpid())
    assert not mine, f"test left shared-memory segments behind: {mine}"
