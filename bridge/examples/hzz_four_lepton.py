"""The four-lepton invariant mass of the HZZ sample, computed in Julia through the bridge and
with awkward alone; both histograms go to one PNG, and the two computations must agree.

    python -m bridge.examples.hzz_four_lepton [--data uproot-HZZ.root] [--output hzz_four_lepton.png]
                                       [--address ipc://...]

Needs uproot and matplotlib (``pip install 'awkward-bridge[examples]'``). Without ``--address`` it
starts a private Julia server.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import awkward as ak
import numpy as np

from bridge import Bridge

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[2] / "shared" / "data" / "uproot-HZZ.root"   # beside a checkout
KERNEL = HERE / "four_lepton_mass.jl"
COLUMNS = [f"{lepton}_{component}" for lepton in ("Muon", "Electron") for component in ("Px", "Py", "Pz", "E")]


def read_events(path: Path) -> ak.Array:
    """The lepton momentum columns of the HZZ sample."""
    import uproot

    with uproot.open(path) as file:
        return file["events"].arrays(COLUMNS)


def four_lepton_mass_awkward(events: ak.Array) -> np.ndarray:
    """Per event, the mass of the four highest-pT leptons (NaN with fewer), in awkward alone."""
    def leptons(name: str) -> ak.Array:
        return ak.zip({c: ak.values_astype(events[f"{name}_{c}"], np.float64) for c in ("Px", "Py", "Pz", "E")})

    all_leptons = ak.concatenate([leptons("Muon"), leptons("Electron")], axis=1)
    pt2 = all_leptons.Px**2 + all_leptons.Py**2
    top4 = all_leptons[ak.argsort(pt2, axis=1, ascending=False)][:, :4]
    px, py, pz, e = (ak.sum(top4[c], axis=1) for c in ("Px", "Py", "Pz", "E"))
    mass = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))
    return np.where(ak.to_numpy(ak.num(all_leptons)) >= 4, ak.to_numpy(mass), np.nan)


def four_lepton_mass_julia(bridge: Bridge, events: ak.Array) -> np.ndarray:
    """The same, by ``four_lepton_mass`` in bridge/examples/four_lepton_mass.jl on the server."""
    bridge.include(KERNEL)
    return ak.to_numpy(bridge.call("four_lepton_mass", events)).copy()  # a copy outlives the lease


def plot(julia: np.ndarray, awkward_only: np.ndarray, output: Path) -> None:
    """Both histograms, one over the other, to ``output``."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    bins = np.linspace(100, 600, 51)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.hist(awkward_only[~np.isnan(awkward_only)], bins=bins, histtype="stepfilled", alpha=0.4, label="awkward")
    axes.hist(julia[~np.isnan(julia)], bins=bins, histtype="step", linewidth=1.5, label="Julia via awkward-bridge")
    axes.set_xlabel(r"$m_{4\ell}$ [GeV]")
    axes.set_ylabel("events / 10 GeV")
    axes.set_title("HZZ sample: four-lepton invariant mass")
    axes.legend()
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Compute both ways, check they agree, plot; prints a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="uproot-HZZ.root")
    parser.add_argument("--output", type=Path, default=Path("hzz_four_lepton.png"), help="PNG to write")
    parser.add_argument("--address", default=None, help="a served bridge (default: a private server)")
    args = parser.parse_args(argv)

    events = read_events(args.data)
    with Bridge(args.address) as bridge:
        julia = four_lepton_mass_julia(bridge, events)
    awkward_only = four_lepton_mass_awkward(events)
    np.testing.assert_allclose(julia, awkward_only, rtol=1e-9, equal_nan=True)
    plot(julia, awkward_only, args.output)
    selected = int(np.count_nonzero(~np.isnan(julia)))
    print(f"{selected} of {len(events)} events have four leptons; Julia and awkward agree; wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
