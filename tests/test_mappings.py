"""The client's mappings of the server's result chunks (bridge/client/mappings.py), without a server."""

from __future__ import annotations

import gc
import os
import re
import weakref

import numpy as np
import pytest

from bridge.client.mappings import Mappings
from bridge.shm import Segment

pytestmark = pytest.mark.usefixtures("shm_clean")


def _mappings_of(name: str) -> int:
    with open(f"/proc/{os.getpid()}/maps") as maps:
        return len(re.findall(re.escape(name), maps.read()))


@pytest.fixture
def chunks():
    made = [Segment.create(4096) for _ in range(3)]
    for i, chunk in enumerate(made):
        chunk.array()[:8] = i + 1
    yield made
    for chunk in made:
        chunk.unlink()
        chunk.close()


def test_each_chunk_is_mapped_once_and_shared(chunks):
    mappings = Mappings(cap=2)
    first = mappings.attach(chunks[0].name)
    assert mappings.attach(chunks[0].name) is first
    assert _mappings_of(chunks[0].name) == 2  # the creator's and the Mappings'
    assert first.array()[0] == 1


def test_least_recently_used_goes_first_but_lives_while_used(chunks):
    mappings = Mappings(cap=2)
    view = mappings.attach(chunks[0].name).window(None)[:8]
    mappings.attach(chunks[1].name)
    mappings.attach(chunks[0].name)  # now the most recently used
    mappings.attach(chunks[2].name)  # evicts chunks[1]
    assert mappings.names() == [chunks[0].name, chunks[2].name]
    gc.collect()
    assert _mappings_of(chunks[1].name) == 1  # only the creator's is left
    mappings.forget([chunks[0].name, "akb-1-" + "0" * 32])  # unknown names are ignored
    gc.collect()
    assert _mappings_of(chunks[0].name) == 2  # a live view keeps its mapping after eviction
    assert list(view) == [1] * 8
    del view
    gc.collect()
    assert _mappings_of(chunks[0].name) == 1
    mappings.close()
    gc.collect()
    assert len(mappings) == 0 and _mappings_of(chunks[2].name) == 1


def test_a_window_keeps_its_own_object_alive_not_the_mappings_others(chunks):
    mappings = Mappings()
    segment = mappings.attach(chunks[0].name)

    class Token:
        pass

    released = []
    a, b = Token(), Token()
    weakref.finalize(a, released.append, "a")
    weakref.finalize(b, released.append, "b")
    view_a = segment.window(a)[8:16]
    view_b = segment.window(b)[0:8]
    del a, b
    gc.collect()
    assert released == []
    del view_a
    gc.collect()
    assert released == ["a"]  # b's view, on the same mapping, is still alive
    assert np.all(view_b == 1)
    del view_b
    gc.collect()
    assert released == ["a", "b"]
    mappings.close()
