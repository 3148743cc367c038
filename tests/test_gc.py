"""Collection of segments, and socket directories, whose owner process is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.shm import SHM_DIR, Segment, collect_dead_segments, collect_dead_socket_dirs, owner_is_alive
from bridge.wire import segment_name

pytestmark = pytest.mark.usefixtures("shm_clean")

REPO = Path(__file__).resolve().parent.parent


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_owner_is_alive():
    assert owner_is_alive(os.getpid())
    assert owner_is_alive(1)
    assert not owner_is_alive(_dead_pid())


def test_removes_only_segments_of_dead_owners(tmp_path):
    dead = segment_name(_dead_pid())
    names = [dead, segment_name(), segment_name(1), "akb-0-" + "0" * 32, "akb-x-y", "other-file", "psm_abc"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    assert collect_dead_segments(str(tmp_path)) == [dead]
    assert sorted(os.listdir(tmp_path)) == sorted(set(names) - {dead})


def test_empty_directory(tmp_path):
    assert collect_dead_segments(str(tmp_path)) == []


def test_collects_what_a_crashed_client_left_in_shared_memory():
    crash = "from bridge.shm import Segment; print(Segment.create(4096).name)"
    child = subprocess.run([sys.executable, "-c", crash], cwd=REPO, capture_output=True, text=True, check=True)
    orphan = child.stdout.strip()
    assert os.path.exists(f"{SHM_DIR}/{orphan}")
    mine = Segment.create(64)
    try:
        removed = collect_dead_segments()
        assert orphan in removed
        assert not os.path.exists(f"{SHM_DIR}/{orphan}")
        assert mine.name not in removed
        assert os.path.exists(f"{SHM_DIR}/{mine.name}")
    finally:
        mine.unlink()
        mine.close()


def test_removes_only_socket_directories_of_dead_owners(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    shm = tmp_path / "shm"   # no owner lock files: the pids decide
    shm.mkdir()
    gone = [f"akb-server-{dead}-abc", f"akb-executors-{dead}-xyz"]
    kept = [f"akb-server-{alive}-abc", f"akb-executors-1-xyz", "akb-server-abc", "akb-executors-0-q", "other"]
    for name in gone + kept:
        (tmp_path / name).mkdir()
        (tmp_path / name / "socket").write_bytes(b"")
    (tmp_path / f"akb-server-{dead}-file").write_bytes(b"x")                 # not a directory
    os.symlink(tmp_path / "other", tmp_path / f"akb-executors-{dead}-link")   # not followed
    removed = collect_dead_socket_dirs(str(tmp_path), str(shm))
    assert sorted(removed) == sorted(str(tmp_path / name) for name in gone)
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["shm", f"akb-server-{dead}-file", f"akb-executors-{dead}-link"])
    assert os.path.exists(tmp_path / "other" / "socket")


def test_socket_directories_are_named_after_their_owner():
    import tempfile

    from bridge import Bridge

    with Bridge() as bridge:
        assert f"/akb-server-{os.getpid()}-" in bridge.address   # the private server's, this process's
        server = bridge.server_info["server_pid"]
        assert any(name.startswith(f"akb-executors-{server}-") for name in os.listdir(tempfile.gettempdir()))
