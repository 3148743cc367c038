"""Installing as a user (issue 14): the built wheel, installed into a fresh virtual environment,
runs ``awkward-bridge --version`` and the seed demo from another directory, with the server's
Julia code and the examples taken from the installed package, not from this checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# what a wheel is built from: the checkout without its virtual environment and build output
IGNORED = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache")


def test_the_built_wheel_installs_and_runs_the_demo_elsewhere(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=IGNORED)
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    # a Julia folder missing from pyproject.toml's packages: setuptools would install it as deprecated data
    assert "absent from the `packages` configuration" not in built.stdout + built.stderr
    wheel = next(dist.glob("awkward_bridge-*.whl"))
    julia_files = {path.relative_to(REPO / "julia_server").as_posix() for path in (REPO / "julia_server").rglob("*")
                   if path.suffix == ".jl" or path.name == "Project.toml"}
    with zipfile.ZipFile(wheel) as archive:
        packed = {name[len("bridge/julia_server/"):] for name in archive.namelist() if name.startswith("bridge/julia_server/")}
    assert julia_files <= packed, f"not in the wheel: {sorted(julia_files - packed)}"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=900)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # the installed package's own libzmq (pyzmq's), not the one this test run points at
    env = {key: value for key, value in os.environ.items() if key not in ("AWKWARD_BRIDGE_LIBZMQ", "PYTHONPATH")}
    version = subprocess.run([str(venv / "bin" / "awkward-bridge"), "--version"], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("awkward-bridge "), version
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import bridge.client.launcher, bridge.examples.seed_path_length as demo; "
                            "print(bridge.client.launcher.server_dir()); print(demo.PATH_LENGTH_JL)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    server_dir, example = map(Path, where.stdout.split())
    assert venv in server_dir.parents and venv in example.parents and example.is_file()

    demo = subprocess.run([str(venv / "bin" / "awkward-bridge"), "demo", "--events", "20000", "--repeat", "1",
                           "--python-slice", "200"], cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=900)
    assert demo.returncode == 0, demo.stderr
    assert "sum: Julia path_length" in demo.stdout
    assert "bridge.call('path_length', handle)" in demo.stdout
