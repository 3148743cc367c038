"""The client's table of mapped server chunks (bridge/segment_table.py), without a server."""

from __future__ import annotations

import gc
import os
import re
import weakref

import numpy as np
import pytest

from bridge.segment_table import SegmentTable
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
    table = SegmentTable(cap=2)
    first = table.attach(chunks[0].name)
    assert table.attach(chunks[0].name) is first
    assert _mappings_of(chunks[0].name) == 2  # the creator's and the table's
    assert first.array()[0] == 1


def test_least_recently_used_goes_first_but_lives_while_used(chunks):
    table = SegmentTable(cap=2)
    view = table.attach(chunks[0].name).window(None)[:8]
    table.attach(chunks[1].name)
    table.attach(chunks[0].name)  # now the most recently used
    table.attach(chunks[2].name)  # evicts chunks[1]
    assert table.names() == [chunks[0].name, chunks[2].name]
    gc.collect()
    assert _mappings_of(chunks[1].name) == 1  # only the creator's is left
    table.forget([chunks[0].name, "akb-1-" + "0" * 32])  # unknown names are ignored
    gc.collect()
    assert _mappings_of(chunks[0].name) == 2  # a live view keeps the table's mapping
    assert list(view) == [1] * 8
    del view
    gc.collect()
    assert _mappings_of(chunks[0].name) == 1
    table.close()
    gc.collect()
    assert len(table) == 0 and _mappings_of(chunks[2].name) == 1


def test_a_window_keeps_its_own_object_alive_not_the_mappings_others(chunks):
    table = SegmentTable()
    segment = table.attach(chunks[0].name)

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
    table.close()
