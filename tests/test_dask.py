"""bridge.dask on a local Dask cluster of worker processes, over the real HZZ file: a Julia kernel
mapped over the partitions of an ``uproot.dask`` array, checked against the eager computation."""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

dak = pytest.importorskip("dask_awkward", reason="dask-awkward is not installed (pip install dask-awkward)")
distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install 'dask[distributed]')")
uproot = pytest.importorskip("uproot", reason="uproot is not installed")

from bridge import Bridge  # noqa: E402
from bridge.dask import BridgePlugin, NodeServer, map_partitions  # noqa: E402  (needs dask, checked above)
from bridge.gc import owner_is_alive  # noqa: E402

HZZ = Path(__file__).resolve().parents[2] / "shared" / "data" / "uproot-HZZ.root"

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
    if not HZZ.is_file():
        pytest.skip(f"{HZZ} is absent (the real ROOT files live in <repo>/../shared/data)")
    return HZZ


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
