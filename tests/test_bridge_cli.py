"""The ``awkward-bridge`` command line (``gc``; ``serve`` and ``stats`` are in test_bridge_serve.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bridge.cli import main
from bridge.shm import SHM_DIR, segment_name


def test_gc_removes_segments_of_dead_owners_only(capsys, shm_clean):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    orphan = os.path.join(SHM_DIR, segment_name(int(dead.stdout)))
    mine = os.path.join(SHM_DIR, segment_name())
    for path in (orphan, mine):
        with open(path, "wb") as file:
            file.write(b"x")
    try:
        assert main(["gc"]) == 0
        out = capsys.readouterr().out
        assert f"removed {os.path.basename(orphan)}" in out
        assert not os.path.exists(orphan)
        assert os.path.exists(mine)  # this process is alive
    finally:
        for path in (orphan, mine):
            if os.path.exists(path):
                os.unlink(path)


def test_stats_refuses_an_address_that_is_not_zeromq(capsys):
    assert main(["stats", "http://localhost:1"]) == 1
    assert "ipc:// or tcp://" in capsys.readouterr().err


def test_unknown_command_is_refused():
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == 2
