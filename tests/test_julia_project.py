"""Your own Julia environment (issue 14): user code runs in a Julia project of the user's
choosing, whose packages ``using`` finds in ``eval`` and in ``--include`` files; by default a
per-user environment, never the installed package's folder.

The test makes a small local package and a project that has it by path. No registry is
reachable here, and Julia 1.5's ``Pkg.develop`` insists on installing one, so the project's
Project.toml and Manifest.toml are written as ``Pkg.develop(path=...)`` would write them."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from bridge import Bridge, JuliaError
from test_served import Served

PACKAGE_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, "awkward-bridge/HepToy"))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("julia-project")
    package = root / "HepToy"
    (package / "src").mkdir(parents=True)
    (package / "Project.toml").write_text(f'name = "HepToy"\nuuid = "{PACKAGE_UUID}"\nversion = "0.1.0"\n')
    (package / "src" / "HepToy.jl").write_text(
        "module HepToy\n"
        "export invariant_mass\n"
        "invariant_mass(e, px, py, pz) = sqrt(max(e^2 - px^2 - py^2 - pz^2, 0.0))\n"
        "end\n"
    )
    environment = root / "analysis"
    environment.mkdir()
    (environment / "Project.toml").write_text(f'[deps]\nHepToy = "{PACKAGE_UUID}"\n')
    (environment / "Manifest.toml").write_text(
        f'[[HepToy]]\npath = "{package}"\nuuid = "{PACKAGE_UUID}"\nversion = "0.1.0"\n'
    )
    return environment


def test_a_private_bridge_runs_in_the_users_project(project):
    with Bridge(project=project) as b:
        b.eval("using HepToy")
        assert b.jl.invariant_mass(5.0, 3.0, 0.0, 0.0) == 4.0
        assert b.eval("dirname(Base.active_project())") == str(project)
        # the bridge's own views are there too, and a package of the project gets them as arguments
        assert b.eval("HepToy.invariant_mass.([5.0], [3.0], [0.0], [0.0])").tolist() == [4.0]
        assert b.call("sum", np.arange(3.0)) == 3.0


def test_the_default_project_is_per_user_not_the_package_folder():
    with Bridge() as b:
        active = Path(b.eval("Base.active_project()"))
        assert active.parent.name == "awkward-bridge" and active.parent.parent.name == "environments"
        assert "julia_server" not in active.parts
        with pytest.raises(JuliaError, match="HepToy"):
            b.eval("using HepToy")


def test_served_include_files_use_the_projects_packages(tmp_path, project):
    kernels = tmp_path / "kernels.jl"
    kernels.write_text("using HepToy\npair_mass(e, p) = invariant_mass(e, p, 0.0, 0.0)\n")
    with Served(tmp_path, "--project", str(project), "--include", str(kernels)) as served, \
            Bridge(served.address) as b:
        assert b.call("pair_mass", 5.0, 4.0) == 3.0
        assert str(project) in served.log()   # the log says which project user code runs in


def test_a_missing_project_is_refused_at_once(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        Bridge(project=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="project"):
        Bridge("ipc:///nonexistent/socket", project=tmp_path)
