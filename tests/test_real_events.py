"""Real ROOT events cross whole and unchanged; a dimuon mass computed in Julia matches numpy."""

from __future__ import annotations


import awkward as ak
import numpy as np
import pytest

from bridge import Bridge

from _data import DATA, need

uproot = pytest.importorskip("uproot")

HZZ = DATA / "uproot-HZZ.root"
NANO = DATA / "nanoAOD_2015_CMS_Open_Data_ttbar.root"

# The two leading muons are the first two in each event (the files store them pt-ordered);
# events with fewer than two muons give missing.
DIMUON_JL = """
function dimuon_mass(events)
    return [length(e.Muon_E) < 2 ? missing :
            sqrt(max(0.0, (Float64(e.Muon_E[1]) + e.Muon_E[2])^2 - (Float64(e.Muon_Px[1]) + e.Muon_Px[2])^2 -
                          (Float64(e.Muon_Py[1]) + e.Muon_Py[2])^2 - (Float64(e.Muon_Pz[1]) + e.Muon_Pz[2])^2))
            for e in events]
end
identity_events(x) = x
"""


@pytest.fixture(scope="module")
def bridge():
    with Bridge() as shared:
        shared.eval(DIMUON_JL)
        yield shared


def assert_same(result: ak.Array, expected: ak.Array) -> None:
    assert result.type == expected.type
    assert ak.array_equal(result, expected, dtype_exact=True, check_parameters=True)


def test_hzz_crosses_whole(bridge: Bridge) -> None:
    need(HZZ)
    events = uproot.open(HZZ)["events"].arrays()
    assert_same(bridge.call("identity_events", events), events)


def test_nanoaod_crosses_whole(bridge: Bridge) -> None:
    need(NANO)
    tree = uproot.open(NANO)["Events"]
    names = [k for k in tree.keys() if k.split("_")[0] in ("Muon", "Electron", "Jet", "run", "luminosityBlock", "event", "MET")]
    events = tree.arrays(names)
    assert len(events.fields) > 20
    assert_same(bridge.call("identity_events", events), events)


def test_hzz_dimuon_mass_matches_numpy(bridge: Bridge) -> None:
    need(HZZ)
    events = uproot.open(HZZ)["events"].arrays(["Muon_E", "Muon_Px", "Muon_Py", "Muon_Pz"])
    result = bridge.call("dimuon_mass", events)
    two = ak.num(events.Muon_E) >= 2
    e, px, py, pz = (ak.fill_none(ak.pad_none(events[f], 2, axis=1), 0.0)[:, :2] for f in ["Muon_E", "Muon_Px", "Muon_Py", "Muon_Pz"])
    s = lambda a: ak.to_numpy(ak.sum(ak.values_astype(a, np.float64), axis=1))  # noqa: E731
    mass = np.sqrt(np.maximum(0.0, s(e) ** 2 - s(px) ** 2 - s(py) ** 2 - s(pz) ** 2))
    got = result.to_list()
    assert [m is None for m in got] == (~ak.to_numpy(two)).tolist()
    assert np.allclose([m for m in got if m is not None], mass[ak.to_numpy(two)], rtol=1e-12)
    assert 0 < ak.sum(two) < len(events)  # both branches of the choice are exercised
