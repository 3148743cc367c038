"""The client's arena (bridge/shm/arena.py) and the steady state it buys: calls that create and map nothing."""

from __future__ import annotations

import os
import re
import threading
import time

import awkward as ak
import numpy as np
import pytest

from bridge import Bridge
from bridge.base import BridgeError
from bridge.shm import ALIGNMENT, SHM_DIR, Arena
from bridge.wire import segment_pid

from _clients import CALM_TTL, running_server

pytestmark = pytest.mark.usefixtures("shm_clean")

KiB = 1024


@pytest.fixture
def arena():
    made = Arena(min_chunk=4 * KiB, max_chunk=16 * KiB, reserve=16 * KiB, linger=0)
    yield made
    made.close()


def _in_shm(name: str) -> bool:
    return os.path.exists(os.path.join(SHM_DIR, name))


def test_blocks_are_aligned_disjoint_and_writable(arena):
    blocks = [arena.allocate(n) for n in (1, 63, 64, 65, 200, 1000)]
    spans = sorted((b.segment.name, b.offset, b.offset + b.nbytes) for b in blocks)
    assert all(b.offset % ALIGNMENT == 0 for b in blocks)
    assert [b.nbytes for b in blocks] == [1, 63, 64, 65, 200, 1000]
    for (name, _, end), (next_name, start, _) in zip(spans, spans[1:]):
        assert name != next_name or end <= start
    for i, block in enumerate(blocks):
        block.array()[:] = i
    assert [int(b.array()[0]) for b in blocks] == list(range(len(blocks)))
    assert len(arena.segment_names()) == 1  # all from the first 4 KiB chunk


def test_chunks_grow_geometrically_and_large_requests_get_their_own(arena):
    arena.allocate(4 * KiB)
    arena.allocate(4 * KiB)
    arena.allocate(9 * KiB)
    big = arena.allocate(20 * KiB)
    sizes = [os.stat(os.path.join(SHM_DIR, name)).st_size for name in arena.segment_names()]
    # 4 KiB, then 8 KiB, then 16 KiB (9 KiB does not fit in what is left), then a dedicated chunk
    assert sizes == [4 * KiB, 8 * KiB, 16 * KiB, 20 * KiB]
    assert big.offset == 0


def test_freed_neighbours_coalesce(arena):
    a, b, c = (arena.allocate(KiB) for _ in range(3))
    rest = arena.allocate(KiB)
    for block in (b, a, c):  # middle first: a merges forward, c merges backward
        arena.free(block)
    whole = arena.allocate(3 * KiB)  # fits only if the three freed blocks became one range
    assert (whole.segment.name, whole.offset) == (a.segment.name, a.offset)
    assert len(arena.segment_names()) == 1
    arena.free(whole)
    arena.free(rest)
    assert arena.allocate(4 * KiB).offset == 0  # the whole chunk is one free range again


def test_double_free_and_use_after_close_are_errors(arena):
    block = arena.allocate(10)
    arena.free(block)
    with pytest.raises(BridgeError, match="freed twice"):
        arena.free(block)
    arena.close()
    arena.free(block)  # freeing after close is a no-op: close freed everything
    with pytest.raises(BridgeError, match="closed"):
        arena.allocate(10)
    with pytest.raises(ValueError):
        Arena().allocate(0)


def test_free_chunks_beyond_the_reserve_are_unlinked(arena):
    small = arena.allocate(4 * KiB)
    middle = arena.allocate(8 * KiB)
    big = arena.allocate(16 * KiB)
    names = arena.segment_names()
    arena.free(big)  # 16 KiB entirely free: within the 16 KiB reserve, kept
    assert arena.take_unlinked() == [] and all(map(_in_shm, names))
    arena.free(middle)  # 24 KiB entirely free: beyond the reserve, so this chunk goes
    assert arena.take_unlinked() == [names[1]]
    assert not _in_shm(names[1]) and _in_shm(names[0]) and _in_shm(names[2])
    assert arena.take_unlinked() == []  # reported once
    arena.free(small)
    assert arena.take_unlinked() == [names[0]]
    assert arena.segment_names() == [names[2]]


def _wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_free_chunks_beyond_the_reserve_linger_for_blocks_of_similar_size():
    arena = Arena(min_chunk=4 * KiB, max_chunk=16 * KiB, reserve=16 * KiB, linger=0.3)
    try:
        large = arena.allocate(64 * KiB)  # a dedicated chunk, beyond the reserve once free
        (name,) = arena.segment_names()
        arena.free(large)
        assert arena.segment_names() == [name] and arena.take_unlinked() == []
        again = arena.allocate(40 * KiB)  # at least half its size: reuses it, and it stops lingering
        assert again.segment.name == name
        arena.free(again)
        small = arena.allocate(1 * KiB)  # never pins the lingering chunk
        assert small.segment.name != name
        assert _wait_for(lambda: name not in arena.segment_names())  # unlinked by its timer, idle
        assert arena.take_unlinked() == [name] and not _in_shm(name)
        arena.free(small)
    finally:
        arena.close()
    with pytest.raises(ValueError, match="linger"):
        Arena(linger=-1)


def test_close_unlinks_every_chunk(arena):
    for n in (KiB, 6 * KiB, 40 * KiB):
        arena.allocate(n)
    names = arena.segment_names()
    assert len(names) == 3 and all(map(_in_shm, names))
    arena.close()
    assert not any(map(_in_shm, names))
    assert arena.chunk_bytes == 0


def test_threads_get_disjoint_blocks(arena):
    errors: list[str] = []

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(300):
            blocks = [arena.allocate(int(n)) for n in rng.integers(1, 3 * KiB, 3)]
            for i, block in enumerate(blocks):
                block.array()[:] = (seed * 7 + i) % 256
            for i, block in enumerate(blocks):
                if not (block.array() == (seed * 7 + i) % 256).all():
                    errors.append(f"thread {seed}: block {block} was overwritten")
                arena.free(block)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # everything came back, coalesced: each remaining chunk is one free range again
    assert all(chunk.free == [[0, chunk.size]] for chunk in arena._chunks.values())


# --- through a server ------------------------------------------------------------------------


def _shm_mappings(pid: int) -> list[str]:
    """The bridge segments process ``pid`` maps, one entry per mapping (unlinked ones included)."""
    with open(f"/proc/{pid}/maps") as maps:
        return sorted(re.findall(r"/dev/shm/(akb-[0-9]+-[0-9a-f]{32})", maps.read()))


def _bridge_segments(*pids: int) -> set[str]:
    """The segments in /dev/shm owned by ``pids`` (other test runs may share the machine)."""
    return {name for name in os.listdir(SHM_DIR) if segment_pid(name) in pids}


@pytest.fixture(scope="module")
def server():
    yield from running_server(lease_ttl=CALM_TTL)


@pytest.fixture
def bridge(server):
    with Bridge(server.address, lease_ttl=CALM_TTL) as b:
        b.eval("count_items(x) = length(x); count_both(x, y) = length(x) + length(y)")
        yield b


def test_calls_with_small_arrays_create_and_map_nothing_in_steady_state(bridge, server):
    handle = bridge.send(ak.Array([[1.0], [2.0, 3.0]]))
    small = ak.Array([[1.0, 2.0], [], [3.0]])
    for _ in range(5):  # warm-up: the arena's first chunk, the executor's cached mapping of it
        assert bridge.call("count_both", small, handle) == 5
    executor = bridge.stats()["executor_pid"]
    segments, client_maps, executor_maps = _bridge_segments(os.getpid(), server.pid), _shm_mappings(os.getpid()), _shm_mappings(executor)
    assert bridge._arena.segment_names()[0] in executor_maps
    assert _shm_mappings(server.pid) == []   # the server itself maps no client's memory
    for i in range(200):
        assert bridge.call("count_both", small, handle) == 5
        assert bridge.call("count_items", np.arange(i % 7 + 1)) == i % 7 + 1
    assert _bridge_segments(os.getpid(), server.pid) == segments
    assert _shm_mappings(os.getpid()) == client_maps
    assert _shm_mappings(executor) == executor_maps
    handle.drop()


def test_calls_returning_arrays_create_and_map_nothing_in_steady_state(bridge, server):
    bridge.eval("ramp(n) = collect(1.0:n); jagged_ramp(n) = [collect(1.0:i) for i in 1:n]")
    for _ in range(5):  # warm-up: the server's result chunk for this client, the client's mapping
        assert len(bridge.call("ramp", 10)) == 10
    executor = bridge.stats()["executor_pid"]
    segments, client_maps, executor_maps = _bridge_segments(os.getpid(), server.pid), _shm_mappings(os.getpid()), _shm_mappings(executor)
    kept = []
    for i in range(200):
        assert bridge.call("ramp", i % 9 + 1).to_list() == [float(k) for k in range(1, i % 9 + 2)]
        kept.append(bridge.call("jagged_ramp", 4))  # some results stay alive across calls
        if len(kept) > 5:
            kept.pop(0)
    assert [r.to_list() for r in kept] == [[[1.0], [1.0, 2.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]]] * 5
    # a result passed back as an argument goes by reference, from the shared chunk
    assert bridge.call("count_items", kept[0]) == 4
    assert _bridge_segments(os.getpid(), server.pid) == segments
    assert _shm_mappings(os.getpid()) == client_maps
    assert _shm_mappings(executor) == executor_maps


def test_results_in_one_chunk_are_released_one_by_one(bridge, server):
    bridge.eval("ramp(n) = collect(1.0:n)")
    first, second = bridge.call("ramp", 3), bridge.call("ramp", 4)
    assert len(_bridge_segments(server.pid)) == 1  # both results share the client's result chunk
    leases = bridge.stats()["leases"]
    del first
    assert bridge.stats()["leases"] == leases - 1  # the release went with that request
    assert second.to_list() == [1.0, 2.0, 3.0, 4.0]  # its neighbour in the chunk is untouched
    third = bridge.call("ramp", 2)  # may take the freed block
    assert second.to_list() == [1.0, 2.0, 3.0, 4.0] and third.to_list() == [1.0, 2.0]


def test_a_result_like_the_last_one_goes_into_a_block_offered_with_its_call(bridge, server):
    bridge.eval("filled(n, v) = fill(Float64(v), n)")
    kept = [bridge.call("filled", 1000, 0)]  # asks for its block: 8000 bytes
    asks = bridge.stats()["alloc_asks"]
    for v in range(1, 6):
        kept.append(bridge.call("filled", 1000 - v, v))  # fits the block offered with the call
    assert bridge.stats()["alloc_asks"] == asks
    assert [set(r.to_list()) for r in kept] == [{float(v)} for v in range(6)]  # each its own block
    # far smaller than the offer: asked for, so that it does not hold 8000 bytes while it lives
    assert bridge.call("filled", 10, 7).to_list() == [7.0] * 10
    assert bridge.stats()["alloc_asks"] == asks + 1
    leases = bridge.stats()["leases"]
    assert bridge.call("count_items", np.arange(3)) == 3
    assert bridge.stats()["leases"] == leases  # the unused offer's lease ended with its call
    # and no block is offered after a call that used none, until a result asks again
    assert bridge.call("filled", 10, 8).to_list() == [8.0] * 10
    assert bridge.stats()["alloc_asks"] == asks + 2


def test_dropped_result_chunks_are_unmapped_by_the_client(bridge, server):
    bridge.eval("zeros_result(n) = zeros(n)")
    assert len(bridge.call("zeros_result", 1)) == 1
    before = set(_shm_mappings(os.getpid()))
    big = bridge.call("zeros_result", 3_000_000)  # 24 MB: beyond the server's per-client reserve
    (dedicated,) = set(_shm_mappings(os.getpid())) - before
    assert _in_shm(dedicated)
    del big
    # released with the next request; beyond the server's reserve the chunk lingers for a
    # result of similar size
    again = bridge.call("zeros_result", 3_000_000)
    assert set(_shm_mappings(os.getpid())) - before == {dedicated}
    del again
    assert len(bridge.call("zeros_result", 1)) == 1  # posts the release
    # then the server drops it, and its next awaited reply (a heartbeat's at the latest) names it
    assert _wait_for(lambda: not _in_shm(dedicated), timeout=15.0)
    bridge.ping()
    assert dedicated not in bridge._results.names()
    assert set(_shm_mappings(os.getpid())) == before


def test_unlinked_chunks_are_unmapped_by_the_executor(server):
    with Bridge(server.address, lease_ttl=CALM_TTL, shm_linger=0.5) as bridge:
        assert bridge.call("length", [1]) == 1
        executor = bridge.stats()["executor_pid"]
        before = set(_shm_mappings(executor))
        large = np.zeros(80 << 20, dtype=np.uint8)  # beyond the largest chunk: a dedicated segment
        assert bridge.call("length", large) == large.size
        (dedicated,) = set(_shm_mappings(executor)) - before  # cached by the executor after the call
        assert bridge.call("length", large) == large.size  # within the linger time: the same chunk
        assert set(_shm_mappings(executor)) - before == {dedicated}
        del large
        # freed after the reply, beyond the reserve: unlinked once it lingered, named in the next
        # message, and passed on to the executor
        assert _wait_for(lambda: not _in_shm(dedicated))
        assert bridge.call("length", [1]) == 1
        assert _wait_for(lambda: set(_shm_mappings(executor)) == before)


def test_a_larger_reserve_keeps_a_large_arguments_chunk(server):
    large = np.zeros(80 << 20, dtype=np.uint8)  # a dedicated chunk, beyond the default reserve
    with Bridge(server.address, lease_ttl=CALM_TTL, shm_reserve=100 << 20) as b:
        assert b.call("length", large) == large.size
        kept = b._arena.segment_names()
        for _ in range(3):
            assert b.call("length", large) == large.size
        assert b._arena.segment_names() == kept and all(map(_in_shm, kept))
    assert not any(map(_in_shm, kept))
    with pytest.raises(ValueError, match="reserve"):
        Bridge(server.address, shm_reserve=-1)


def test_bye_ends_the_executor_and_its_cached_mappings(server):
    with Bridge(server.address, lease_ttl=CALM_TTL) as observer:
        with Bridge(server.address, lease_ttl=CALM_TTL) as b:
            assert b.call("length", [1, 2, 3]) == 3
            executor = b.stats()["executor_pid"]
            names = b._arena.segment_names()
            assert names and all(map(_in_shm, names))
            assert names[0] in _shm_mappings(executor)
            assert observer.stats()["cached_bytes"] > 0
        assert not any(map(_in_shm, names))
        assert _wait_for(lambda: not os.path.exists(f"/proc/{executor}"))
        assert observer.stats()["cached_bytes"] == 0
