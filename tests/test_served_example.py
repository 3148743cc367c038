"""bridge/examples/hzz_four_lepton.py end to end: real data, Julia through the bridge, a PNG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install 'awkward-bridge[examples]')")
pytest.importorskip("uproot", reason="uproot is not installed")

REPO = Path(__file__).resolve().parents[1]
HZZ = REPO.parent / "shared" / "data" / "uproot-HZZ.root"


def test_hzz_example_agrees_with_awkward_and_writes_a_png(tmp_path):
    if not HZZ.is_file():
        pytest.skip(f"{HZZ} is absent (the real ROOT files live in <repo>/../shared/data)")
    output = tmp_path / "m4l.png"
    done = subprocess.run(
        [sys.executable, "-m", "bridge.examples.hzz_four_lepton", "--data", str(HZZ), "--output", str(output)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr  # the script asserts that Julia and awkward agree
    assert "43 of 2421 events have four leptons; Julia and awkward agree" in done.stdout
    assert output.read_bytes().startswith(b"\x89PNG")
