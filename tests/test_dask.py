"""bridge.dask on a local Dask cluster of worker processes, over the real HZZ file: a Julia kernel
mapped over the partitions of an ``uproot.dask`` array, checked against the eager computation."""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

dask = pytest.importorskip("dask", reason="dask is not installed (pip install dask-awkward)")
dak = pytest.importorskip("dask_awkward", reason="dask-awkward is not installed (pip install dask-awkward)")
distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install 'dask[distributed]')")
uproot = pytest.importorskip("uproot", reason="uproot is not installed")

from bridge import Bridge  # noqa: E402
from bridge.dask import BridgePlugin, NodeServer, column_paths, map_partitions, select_columns  # noqa: E402  (needs dask, checked above)
from bridge.shm import owner_is_alive  # noqa: E402
from _data import DATA, need  # noqa: E402

HZZ = DATA / "uproot-HZZ.root"

KERNEL = """
# per event, the scalar sum of the muons' transverse momenta
function muon_pt_sum(events)
    out = Vector{Float64}(undef, length(events))
    for i in 1:length(events)
        px, py = events[i].Muon_Px, events[i].Muon_Py
        total = 0.0
        for j in 1:length(px)
            total += sqrt(Float64(px[j])^2 + Float64(py[j])^2)
        end
        out[i] = total
    end
    return out
end
"""


@pytest.fixture
def hzz():
    return need(HZZ)


def test_julia_kernel_over_uproot_dask_partitions_matches_eager(hzz, tmp_path):
    kernel = tmp_path / "kernel.jl"
    kernel.write_text(KERNEL)
    node = tmp_path / "node"
    events = uproot.dask({str(hzz): "events"}, step_size=500)
    assert events.npartitions >= 4
    result = map_partitions("muon_pt_sum", events, meta=ak.Array(np.zeros(0)), columns=["Muon_Px", "Muon_Py"])
    # the typetracer pass touched only what the kernel reads
    assert set(next(iter(dak.report_necessary_columns(result).values()))) == {"Muon_Px", "Muon_Py"}

    with distributed.LocalCluster(n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            client.register_plugin(BridgePlugin(directory=node, include=[kernel], lease_ttl=30))
            pids = {info["pid"] for info in client.run(_server_pid).values()}
            assert len(pids) == 1, f"the workers of one node should share one server, not {pids}"
            computed = result.compute()

    eager = uproot.open(hzz)["events"].arrays(["Muon_Px", "Muon_Py"])
    px, py = ak.values_astype(eager.Muon_Px, np.float64), ak.values_astype(eager.Muon_Py, np.float64)
    expected = ak.sum(np.sqrt(px**2 + py**2), axis=1)
    assert len(computed) == len(expected) == 2421
    np.testing.assert_allclose(ak.to_numpy(computed), ak.to_numpy(expected), rtol=1e-12)
    # the last worker to leave stopped the node server
    assert not (node / "node.pid").exists()
    assert "stopped" in (node / "node.log").read_text()


def test_node_server_is_started_once_shared_and_stopped_by_the_last_user(tmp_path, shm_clean):
    node = tmp_path / "node"
    node.mkdir()
    (node / "node.pid").write_text(str(os.getpid()))  # stale, naming a live unrelated process
    first = NodeServer(node, threads=1)
    second = None
    try:
        serve_pid = int((node / "node.pid").read_text())
        assert serve_pid != os.getpid()  # not fooled by the stale pid file, and did not signal it
        second = NodeServer(node, threads=1)
        assert int((node / "node.pid").read_text()) == serve_pid  # found running, not started again
        first.detach()
        assert owner_is_alive(serve_pid)  # the second user still holds it
        with Bridge(second.address) as bridge:
            assert bridge.call("identity", 7) == 7
    finally:
        first.detach()
        if second is not None:
            second.detach()
    assert not owner_is_alive(serve_pid) and not (node / "node.pid").exists()
    assert "stopped" in (node / "node.log").read_text()


def _server_pid(dask_worker) -> dict:
    from bridge.dask import PLUGIN_NAME

    return {"pid": dask_worker.plugins[PLUGIN_NAME].bridge.server_info["server_pid"]}


NANOAOD = HZZ.parent / "nanoAOD_2015_CMS_Open_Data_ttbar.root"

NANO_KERNELS = """
# per event: the muons above `cut` within |eta| < eta_max
passing(events, cut; eta_max = 2.4) = [count(mu -> mu.pt > cut && abs(mu.eta) < eta_max, e.Muon) for e in events]
# per event: the bin of `edges` its leading muon falls in (0: no muon, or below the first edge)
leading_bin(events, edges) =
    [isempty(e.Muon) ? 0 : searchsortedlast(edges, maximum(mu.pt for mu in e.Muon)) for e in events]
"""


@pytest.fixture
def nanoaod():
    return need(NANOAOD)


def nano_events(path: Path) -> dak.Array:
    """NanoAOD as a NanoAOD user sees it: collections as records (``events.Muon.pt``)."""
    flat = uproot.dask({str(path): "Events"}, step_size=50)
    collection = {name: dak.zip({field: flat[f"{name}_{field}"] for field in ("pt", "eta", "phi", "mass")})
                  for name in ("Muon", "Jet")}
    return dak.zip(collection, depth_limit=1)


def test_nested_columns_and_extra_arguments_on_nanoaod(nanoaod, tmp_path):
    kernel = tmp_path / "nano.jl"
    kernel.write_text(NANO_KERNELS)
    events = nano_events(nanoaod)
    assert events.npartitions >= 4
    meta = ak.Array(np.zeros(0, dtype=np.int64))
    edges = np.array([0.0, 10.0, 20.0, 40.0, 80.0])
    passing = map_partitions("passing", events, 15.0, meta=meta, columns=["Muon.pt", "Muon.eta"], eta_max=2.1)
    binned = map_partitions("leading_bin", events, edges, meta=meta, columns=["Muon.pt"])
    with pytest.raises(ValueError, match="no field 'Muonz'"):
        map_partitions("passing", events, 15.0, meta=meta, columns=["Muonz.pt"])
    with pytest.raises(TypeError, match="not Dask collections"):
        map_partitions("passing", events, events.Muon.pt, meta=meta)

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            client.register_plugin(BridgePlugin(directory=tmp_path / "node", include=[kernel], lease_ttl=30))
            got_passing, got_binned = dask.compute(passing, binned)

    eager = uproot.open(nanoaod)["Events"].arrays(["Muon_pt", "Muon_eta"])
    expected_passing = ak.sum((eager.Muon_pt > 15.0) & (abs(eager.Muon_eta) < 2.1), axis=1)
    leading = ak.fill_none(ak.max(eager.Muon_pt, axis=1), -1.0)
    expected_binned = np.where(ak.to_numpy(leading) < 0, 0, np.searchsorted(edges, ak.to_numpy(leading), side="right"))
    assert got_passing.tolist() == expected_passing.tolist()
    assert got_binned.tolist() == expected_binned.tolist()
    assert len(got_passing) == 200 and ak.sum(got_passing) > 0


def test_select_columns_keeps_only_the_named_nested_fields(nanoaod):
    flat = uproot.open(nanoaod)["Events"].arrays(["Muon_pt", "Muon_eta", "Jet_pt", "Jet_eta"])
    events = ak.zip({name: ak.zip({"pt": flat[f"{name}_pt"], "eta": flat[f"{name}_eta"]}) for name in ("Muon", "Jet")},
                    depth_limit=1)
    kept = select_columns(events, column_paths(events, ["Muon.pt", "Jet"]))
    assert ak.fields(kept) == ["Muon", "Jet"] and ak.fields(kept.Muon) == ["pt"] and ak.fields(kept.Jet) == ["pt", "eta"]
    assert ak.array_equal(kept.Muon.pt, events.Muon.pt) and ak.array_equal(kept.Jet, events.Jet)
    assert ak.fields(select_columns(events, column_paths(events, ["Jet.eta"]))) == ["Jet"]
    with pytest.raises(ValueError, match="no field 'ptt'"):
        select_columns(events, column_paths(events, ["Muon.ptt"]))


def test_a_nested_column_reads_only_its_collection(tmp_path):
    # The CMS 2012 dimuon RNTuple holds the muons both as flat Muon_* fields and as one nested
    # collection; a kernel that names nested fields reads that collection and no flat field.
    path = HZZ.parent / "Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root"
    need(path)
    events = uproot.dask({str(path): "Events"}, step_size=250)
    result = map_partitions("f", events, meta=ak.Array(np.zeros(0)), columns=["_collection0.Muon_pt"])
    assert set(next(iter(dak.report_necessary_columns(result).values()))) == {"_collection0"}
