"""Shared-memory segments: naming, creation, attachment, the mapping registry and lifetimes."""

from __future__ import annotations

import gc
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from bridge.base import BridgeError, SharedMemoryFull
from bridge.shm import SHM_DIR, Segment, locate, unlink_segment
from bridge.wire import SEGMENT_PREFIX, is_segment_name, segment_name, segment_pid

pytestmark = pytest.mark.usefixtures("shm_clean")

HEX = "0123456789abcdef" * 2


@pytest.fixture
def segment():
    seg = Segment.create(4096)
    yield seg
    seg.unlink()
    seg.close()


def mapped_in_this_process(name: str) -> bool:
    with open("/proc/self/maps") as maps:
        # An unlinked segment's mapping shows as "/dev/shm/akb-... (deleted)".
        return any(f" {SHM_DIR}/{name}" in line for line in maps)


def test_segment_name_is_pid_and_random_hex():
    name = segment_name()
    assert name.startswith(f"{SEGMENT_PREFIX}{os.getpid()}-")
    assert segment_pid(name) == os.getpid()
    assert is_segment_name(name)
    assert segment_name(4242).startswith("akb-4242-")
    assert len({segment_name() for _ in range(100)}) == 100


# The grammar's test vectors, which the Julia suite reads too (julia_server/test/test_segments.jl).
NAME_VECTORS = json.loads((Path(__file__).with_name("segment_names.json")).read_text())


@pytest.mark.parametrize(
    "name, pid",
    [tuple(case) for case in NAME_VECTORS["valid"]] + [(name, None) for name in NAME_VECTORS["invalid"]]
    + [(4242, None)],
)
def test_segment_pid(name, pid):
    assert segment_pid(name) == pid
    assert is_segment_name(name) == (pid is not None)



def test_create_makes_a_private_file_of_the_requested_size(segment):
    info = os.stat(f"{SHM_DIR}/{segment.name}")
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_size == segment.size == 4096
    assert segment.owned
    assert segment_pid(segment.name) == os.getpid()


def test_create_rejects_empty_segments():
    with pytest.raises(ValueError):
        Segment.create(0)


def test_attach_sees_the_owners_writes_read_only(segment):
    segment.array()[:8] = np.arange(8, dtype=np.uint8)
    reader = Segment.attach(segment.name)
    try:
        assert not reader.owned
        assert reader.size == segment.size
        assert reader.address != segment.address
        view = reader.array()
        assert view[:8].tolist() == list(range(8))
        assert not view.flags.writeable
        with pytest.raises(ValueError):
            view[0] = 1
        segment.array()[0] = 99  # shared, not copied
        assert view[0] == 99
        with pytest.raises(BridgeError, match="only its owner"):
            reader.unlink()
    finally:
        reader.close()


def test_attach_writable_when_asked(segment):
    writer = Segment.attach(segment.name, readonly=False)
    writer.array()[3] = 7
    writer.close()
    assert segment.array()[3] == 7


def test_attach_refuses_missing_and_malformed_names():
    with pytest.raises(BridgeError, match="does not exist"):
        Segment.attach(segment_name())
    for bad in ["../../etc/passwd", f"akb-1-{HEX}/x", "akb-1-x"]:
        with pytest.raises(BridgeError, match="not a bridge shared-memory segment name"):
            Segment.attach(bad)


def test_unlink_is_idempotent_and_keeps_the_mapping():
    seg = Segment.create(100)
    seg.array()[:3] = [1, 2, 3]
    seg.unlink()
    seg.unlink()
    assert not os.path.exists(f"{SHM_DIR}/{seg.name}")
    assert seg.array()[:3].tolist() == [1, 2, 3]
    assert unlink_segment(seg.name) is False
    seg.close()
    seg.close()
    with pytest.raises(BridgeError, match="closed"):
        seg.array()


def test_views_outlive_the_segment_and_release_the_mapping_last():
    seg = Segment.create(1 << 16)
    name, address = seg.name, seg.address
    whole = seg.array()
    whole.view(np.int64)[:] = np.arange((1 << 16) // 8)
    sliced = whole[8:80]
    typed = whole.view(np.int64)[100:110]
    del whole
    seg.unlink()
    seg.close()
    del seg
    gc.collect()

    assert mapped_in_this_process(name)
    assert locate(address + 8, 8) is None  # unlinked: still mapped, no longer offered
    assert sliced.view(np.int64).tolist() == list(range(1, 10))
    assert typed.tolist() == list(range(100, 110))
    del sliced
    gc.collect()
    assert mapped_in_this_process(name)
    assert typed.sum() == sum(range(100, 110))
    del typed
    gc.collect()
    assert not mapped_in_this_process(name)


def test_close_without_views_unmaps_at_once():
    seg = Segment.create(4096)
    name = seg.name
    assert mapped_in_this_process(name)
    seg.unlink()
    seg.close()
    assert not mapped_in_this_process(name)


def test_locate_finds_ranges_of_live_mappings(segment):
    assert locate(segment.address, segment.size) == (segment.name, 0)
    assert locate(segment.address + 100, 28) == (segment.name, 100)
    assert locate(segment.address + 100, segment.size) is None  # runs past the end
    assert locate(segment.address - 1, 2) is None
    reader = Segment.attach(segment.name)
    assert locate(reader.address + 8, 8) == (segment.name, 8)
    reader.close()
    gc.collect()
    assert locate(reader.address + 8, 8) is None


def test_locate_forgets_unlinked_segments():
    seg = Segment.create(256)
    keep = seg.array()
    assert locate(seg.address, 8) == (seg.name, 0)
    seg.unlink()
    assert locate(seg.address, 8) is None
    seg.close()
    del keep


def test_full_shared_memory_raises_and_leaves_nothing():
    limit = os.statvfs(SHM_DIR).f_blocks * os.statvfs(SHM_DIR).f_frsize
    before = set(os.listdir(SHM_DIR))
    with pytest.raises(SharedMemoryFull) as error:
        Segment.create(limit + (1 << 30))
    assert str(limit + (1 << 30)) in str(error.value)
    assert f"{limit}-byte limit" in str(error.value)
    assert set(os.listdir(SHM_DIR)) == before


def test_live_mappings_hold_no_file_descriptors(segment):
    fds_before = len(os.listdir("/proc/self/fd"))
    views = [Segment.attach(segment.name).array() for _ in range(500)]
    assert len(os.listdir("/proc/self/fd")) == fds_before
    assert len({view.ctypes.data for view in views}) == 500
