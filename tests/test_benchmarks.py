"""The benchmark suite's own helpers measure what they claim (the benchmarks are not run here)."""

import os
import sys
from pathlib import Path

import awkward as ak
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from _baselines import ZmqEcho  # noqa: E402
from _report import median_time  # noqa: E402
from memory import Sampler  # noqa: E402
from transfer import make_array  # noqa: E402


def test_make_array_has_the_requested_size():
    for size in (1 << 10, 1 << 20):
        array = make_array(size)
        assert 0.9 * size <= array.layout.nbytes <= size + 64
        assert str(array.type).endswith("var * float64")


def test_the_zmq_echo_answers_and_leaves_no_socket_file(tmp_path):
    path = tmp_path / "echo"
    echo = ZmqEcho(f"ipc://{path}")
    try:
        assert echo.roundtrip(b"ping") == b"ping"
    finally:
        echo.close()
    assert not path.exists()


def test_sampler_sees_touched_memory_once():
    sampler = Sampler([os.getpid()])
    before, _ = sampler.sample()
    block = np.ones(64 << 20, dtype=np.uint8)  # touched: resident
    after, _ = sampler.sample()
    assert after - before >= 60 << 20
    assert sampler.peak_pss >= after
    del block


def test_median_time_is_the_median_of_the_timed_runs(monkeypatch):
    import _report

    # the warm-up runs are not timed; the three timed runs take 3, 2 and 10 s by this clock
    readings = iter([0.0, 3.0, 3.0, 5.0, 5.0, 15.0])
    monkeypatch.setattr(_report.time, "perf_counter", lambda: next(readings))
    calls = []
    assert median_time(lambda: calls.append(1), repeat=3, warmup=2) == 3.0
    assert len(calls) == 5


def test_the_kernels_benchmark_compares_loops_that_agree():
    import pytest

    import kernels
    from bridge import Bridge

    if not kernels.DATA.exists():
        pytest.skip(f"{kernels.DATA} is absent (real ROOT files live in <repo>/../shared/data)")
    numba = kernels.numba_kernels()
    if numba is None:
        pytest.skip("numba is not installed (the test and bench extras)")
    events = kernels.load_events(1000)
    assert len(events) == 1000 and set(events.fields) == {"Jet", "Muon", "MET"}
    with Bridge() as bridge:
        bridge.eval(kernels.KERNELS_JL)
        for name, kernel in numba.items():
            assert np.allclose(np.asarray(bridge.call(name, events)), np.asarray(kernel(events)), rtol=1e-5), name
        assert 0 < bridge.call("n_dijet", events) < len(events)   # the selection selects some
        for name, _ in kernels.FIELD_ACCESS:
            assert bridge.call(name, events) == bridge.call("n_dijet", events), name
        for name, numba_name in kernels.AGAINST_NUMBA:
            expected = np.asarray(bridge.call(numba_name, events))
            assert np.array_equal(np.asarray(bridge.call(name, events)), expected), name
            assert np.array_equal(np.asarray(bridge.call(f"{numba_name}_raw", events)), expected), name


def test_the_kernel_variants_agree_with_their_plain_twins():
    import pytest

    import kernels
    from bridge import Bridge

    if not kernels.DATA.exists():
        pytest.skip(f"{kernels.DATA} is absent (real ROOT files live in <repo>/../shared/data)")
    events = kernels.load_events(1000)
    with Bridge() as bridge:
        bridge.eval(kernels.KERNELS_JL)
        for variant, plain in (("ht30_shared", "ht30"), ("good_jet_pts_grown", "good_jet_pts")):
            expected = bridge.call(plain, events)
            assert ak.to_list(bridge.call(variant, events)) == ak.to_list(expected), variant
        assert 0 < ak.count(expected) < ak.count(events.Jet.pt)   # some jets pass, some do not
        # the file's events have no Z, so the pair loops get muons that make one: an opposite-charge
        # pair at 90 GeV, the same pair with one charge, a lone muon, none
        muons = ak.Array([[{"pt": 45.0, "eta": 0.0, "phi": 0.0, "charge": 1}, {"pt": 45.0, "eta": 0.0, "phi": np.pi, "charge": -1}],
                          [{"pt": 45.0, "eta": 0.0, "phi": 0.0, "charge": 1}, {"pt": 45.0, "eta": 0.0, "phi": np.pi, "charge": 1}],
                          [{"pt": 45.0, "eta": 0.0, "phi": 0.0, "charge": 1}], []])
        made = ak.zip({"Muon": ak.values_astype(muons, np.float32)}, depth_limit=1)
        for variant in ("has_z", "has_z_indexed", "has_z_raw"):
            assert bridge.call(variant, made).to_list() == [True, False, False, False], variant
