"""The Python package's layers (docs/architecture.md, "Layers"): each imports only from the layers
below it, as julia_server/test/test_layers.jl checks for the Julia package, and the map names
every source file of both."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bridge"

# Lowest first. Modules directly in bridge/ (the CLI, the notebook magics, Dask, the examples and
# what `import bridge` gives) are applications of the client layer.
LAYERS = ["base", "wire", "shm", "codec", "client"]
APPLICATIONS = len(LAYERS)


def layer_of(module: str) -> int:
    """The rank of module ``bridge.<...>`` in LAYERS; applications rank above every layer."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else APPLICATIONS


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path = ROOT) -> list[str]:
    """Every ``bridge`` module that ``path`` imports, relative imports resolved."""
    own = module_name(path, root)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append(target)
    return [name for name in found if name == "bridge" or name.startswith("bridge.")]


def sources() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "julia_server" not in path.parts)


def test_every_layer_imports_only_from_the_layers_below_it():
    upward = []
    for path in sources():
        own = layer_of(module_name(path))
        for name in imported_modules(path):
            if name == "bridge" and own < APPLICATIONS:
                upward.append(f"{path.relative_to(ROOT)} imports the package itself")
            elif name != "bridge" and layer_of(name) > own:
                upward.append(f"{path.relative_to(ROOT)} ({LAYERS[own]}) imports {name}")
    assert not upward, "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    wire = tmp_path / "bridge" / "wire"
    wire.mkdir(parents=True)
    probe = wire / "probe.py"
    probe.write_text("from bridge.shm import Segment\nfrom .refs import ArrayRef\nfrom ..base import BridgeError\n")
    imported = imported_modules(probe, tmp_path)
    assert imported == ["bridge.shm", "bridge.wire.refs", "bridge.base"]
    assert [layer_of(name) > layer_of(module_name(probe, tmp_path)) for name in imported] == [True, False, False]


def test_the_map_names_every_source_file():
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    julia = ROOT / "julia_server" / "src"
    missing = [str(path.relative_to(PACKAGE)) for path in sources() if str(path.relative_to(PACKAGE)) not in architecture]
    missing += [str(path.relative_to(julia)) for path in sorted(julia.rglob("*.jl")) if str(path.relative_to(julia)) not in architecture]
    assert not missing, f"docs/architecture.md does not name {missing}"
