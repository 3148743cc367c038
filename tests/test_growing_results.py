"""Results Julia grows with push! straight into shared memory (docs/kernels.md, "Results that
grow"): what comes back, what is refused, and what memory they hold (docs/ownership.md)."""

from __future__ import annotations

import gc
import os

import awkward as ak
import numpy as np
import pytest

from bridge import Bridge, JuliaError
from bridge.base.errors import SharedMemoryFull

from _clients import segments_of, wait_until
from _data import DATA, need
from test_served import Served

GROWING_JL = """
function good_jets(events)        # lists of records, no count first
    lists = AwkwardBridge.growing_lists(pt=Float32, eta=Float32)
    for ev in events
        for j in ev.Jet
            j.pt > 30 && push!(lists, (pt = j.pt, eta = j.eta))
        end
        end_list!(lists)
    end
    return lists
end
function pt_lists(n)              # lists of numbers, i % 4 items each
    lists = AwkwardBridge.growing_lists(Float64)
    for i in 1:n
        append!(lists, i .+ (1:i % 4))
        end_list!(lists)
    end
    return lists
end
grow_flags(n) = (v = AwkwardBridge.growing_array(Bool); for i in 1:n push!(v, i % 3 == 0) end; v)
function grow_records(n)
    r = AwkwardBridge.growing_records(x=Float64, n=Int8)
    for i in 1:n
        push!(r, (n = i % 100, x = i / 2))   # fields by name, in any order
    end
    return r
end
unended() = (l = AwkwardBridge.growing_lists(Float32); end_list!(l); push!(l, 1); l)
uneven() = (r = AwkwardBridge.growing_records(a=Int32, b=Int32); push!(r, (a=1, b=2)); push!(r.a, 3); r)
kept = Ref{Any}(nothing)
keep_one() = (kept[] = AwkwardBridge.growing_array(Int64); push!(kept[], 1); length(kept[]))
push_kept() = push!(kept[], 2)
grow_and_drop(n) = (v = AwkwardBridge.growing_array(Float64); append!(v, 1:n); sum(v))
inside_a_tuple(n) = (pt_lists(n), n)
function grow_until_full(n)       # how far a result grows before the server refuses more
    v = AwkwardBridge.growing_array(Float64)
    try
        foreach(i -> push!(v, i), 1:n)
    catch e
        e isa AwkwardBridge.SharedMemoryFull || rethrow()
    end
    return length(v)
end
function grow_per_thread(n)       # a builder per thread, grown at once
    outs = [AwkwardBridge.growing_array(Float64) for _ in 1:Threads.nthreads()]
    Threads.@threads for t in 1:Threads.nthreads()
        foreach(i -> push!(outs[t], i), 1:n)
    end
    return (Threads.nthreads(), sum(length, outs))
end
function wide(n)                  # 300 fields, each its own buffer
    names = Tuple(Symbol("f", k) for k in 1:300)
    records = AwkwardBridge.growing_records(; (name => Int16 for name in names)...)
    foreach(i -> push!(records, NamedTuple{names}(ntuple(k -> i + k, 300))), 1:n)
    return records
end
"""


@pytest.fixture(scope="module")
def bridge():
    with Bridge() as shared:
        shared.eval(GROWING_JL)
        yield shared


def test_grown_lists_records_and_arrays_come_back(bridge: Bridge) -> None:
    n = 1_000_003   # several growth steps for every buffer
    lists = bridge.call("pt_lists", n)
    assert str(lists.type) == f"{n} * var * float64"
    counts = np.arange(1, n + 1) % 4
    assert np.array_equal(ak.to_numpy(ak.num(lists)), counts)
    assert lists[:4].to_list() == [[2.0], [3.0, 4.0], [4.0, 5.0, 6.0], []]
    assert lists[-1].to_list() == [float(n + k) for k in range(1, n % 4 + 1)]
    flags = bridge.call("grow_flags", n)
    assert str(flags.type) == f"{n} * bool" and int(np.sum(flags)) == n // 3
    records = bridge.call("grow_records", n)
    assert str(records.type) == f"{n} * {{x: float64, n: int8}}"
    assert records[-1].to_list() == {"x": n / 2, "n": n % 100}
    pair = bridge.call("inside_a_tuple", 5)
    assert pair[0].to_list() == lists[:5].to_list() and pair[1] == 5
    empty = bridge.call("pt_lists", 0)
    assert str(empty.type) == "0 * var * float64"
    # sent back, it is read where it lies, and returned unchanged it is not copied
    assert bridge.call("length", lists) == n
    again = bridge.call("identity", lists)
    assert again.layout.content.data.ctypes.data == lists.layout.content.data.ctypes.data


def test_a_grown_results_chunk_serves_the_next_one_then_goes(shm_clean) -> None:
    with Bridge() as bridge:   # a client of its own: no other growing result's chunk lingers
        bridge.eval(GROWING_JL)
        first = bridge.call("pt_lists", 100_000)
        segment, expected = _segment_of(first), first.to_list()
        del first   # released with the next call's request, before it runs
        gc.collect()
        # a result of the same shape grows in the freed chunk, over pages already written
        second = bridge.call("pt_lists", 100_000)
        assert _segment_of(second) == segment and second.to_list() == expected
        other = bridge.call("grow_records", 10)   # another shape: a chunk of its own
        assert _segment_of(other, "x") != segment
        del second
        gc.collect()
        bridge.ping()
        # no growing result wanted it for 5 s: it goes, and the executor lets go of its address space
        assert wait_until(lambda: not os.path.exists(f"/dev/shm/{segment}"), timeout=15)
        assert bridge.call("length", np.arange(3)) == 3   # the executor hears of it with its next job
        with open(f"/proc/{bridge.stats()['executor_pid']}/maps") as maps:
            assert segment not in maps.read()


def _segment_of(array: ak.Array, field: str = "") -> str:
    """The segment the client maps that holds the array's content (or a field's)."""
    content = array.layout.content(field) if field else array.layout.content
    with open("/proc/self/maps") as maps:
        address = content.data.ctypes.data
        for line in maps:
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            if start <= address < end:
                return line.split()[-1].rsplit("/", 1)[-1]
    raise AssertionError("the result's buffer is in no mapping")


def test_grown_lists_of_real_jets(bridge: Bridge) -> None:
    path = DATA / "nanoAOD_2015_CMS_Open_Data_ttbar.root"
    need(path)
    import uproot

    jets = uproot.open(path)["Events"].arrays(filter_name=["Jet_pt", "Jet_eta"], how="zip").Jet
    events = ak.zip({"Jet": jets}, depth_limit=1)
    good = bridge.call("good_jets", events)
    assert str(good.type) == f"{len(events)} * var * {{pt: float32, eta: float32}}"
    assert good.to_list() == jets[jets.pt > 30].to_list()


def test_an_unfinished_growing_result_is_refused_with_what_to_do(bridge: Bridge) -> None:
    with pytest.raises(JuliaError, match="no end_list!"):
        bridge.call("unended")
    with pytest.raises(JuliaError, match="different lengths.*push! whole records"):
        bridge.call("uneven")
    with pytest.raises(JuliaError, match="numbers or Bool"):
        bridge.eval("AwkwardBridge.growing_array(String)")
    assert bridge.call("keep_one") == 1
    leases = bridge.stats()["leases"]
    with pytest.raises(JuliaError, match="belongs to a call that has ended"):
        bridge.call("push_kept")
    with pytest.raises(JuliaError, match="belongs to a call that has ended"):
        bridge.eval("kept[]")     # nor read, nor returned: its memory went with its call
    assert bridge.stats()["leases"] == leases
    assert bridge.call("grow_flags", 3).to_list() == [False, False, True]   # and it serves on


def test_a_growing_result_holds_only_what_it_holds(shm_clean) -> None:
    with Bridge() as bridge:   # a client of its own: no other result's chunk or offered block
        bridge.eval(GROWING_JL)
        assert bridge.stats()["shm_bytes"] == 0
        # built and not returned: its chunk goes with the call, at the server's next lease tick
        assert bridge.call("grow_and_drop", 3_000_000) == 3_000_000 * 3_000_001 / 2
        assert wait_until(lambda: bridge.stats()["shm_bytes"] == 0, timeout=10)
        lists = bridge.call("pt_lists", 2_000_000)
        pages = sum(-(-buffer.nbytes // 4096) * 4096 for buffer in (lists.layout.offsets.data, lists.layout.content.data))
        # its pages exactly: not the growth's headroom, nor the address space its buffers may grow into
        assert bridge.stats()["shm_bytes"] == pages
        segment = _segment_of(lists)
        assert os.stat(f"/dev/shm/{segment}").st_blocks * 512 == pages
        del lists
        gc.collect()
        bridge.ping()   # carries the release; the chunk lingers 5 s for a next growing result
        stats = bridge.stats()
        assert stats["shm_bytes"] == stats["reserve_bytes"] == pages
        assert wait_until(lambda: not os.path.exists(f"/dev/shm/{segment}"), timeout=15)
        assert bridge.stats()["shm_bytes"] == 0


def test_a_growing_result_of_many_fields(bridge: Bridge) -> None:
    records = bridge.call("wide", 1000)
    assert len(records.fields) == 300 and len(records) == 1000
    assert records[999].to_list()["f300"] == 1300 and records.f1.to_list() == list(range(2, 1002))


def test_a_growing_result_past_the_client_quota(tmp_path, shm_clean) -> None:
    with Served(tmp_path, "--client-shm-quota", "64M", "--executor-threads", "2") as server:
        with Bridge(server.address) as client:
            server_pid = client.server_info["server_pid"]
            client.eval(GROWING_JL)
            with pytest.raises(SharedMemoryFull, match="quota"):
                client.call("grow_and_drop", 10_000_000)   # 80 MB
            assert client.call("grow_and_drop", 1_000_000) == 1_000_000 * 1_000_001 / 2
            kept = client.call("pt_lists", 2_000_000)       # about 40 MB, held by Python
            # the server refuses the growth that would pass the quota, as it happens: the
            # result stops within the 24 MB left, where a buffer alone may reach 64 MiB
            grown = client.call("grow_until_full", 10_000_000)
            assert 1_000_000 < grown * 8 <= (64 << 20) - kept.layout.nbytes, grown
            with pytest.raises(SharedMemoryFull, match="already holds"):
                client.call("pt_lists", 2_000_000)
            del kept
            assert len(client.call("pt_lists", 2_000_000)) == 2_000_000
            # builders grown by several threads at once ask the server one at a time
            threads, total = client.call("grow_per_thread", 1_000_000)
            assert threads == 2 and total == 2_000_000
        assert server.stop() == 0
    assert not segments_of(server_pid)
