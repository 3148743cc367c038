"""The real ROOT files of ``<repo>/../shared/data``, and how a test that needs one skips without it."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def need(path: Path) -> Path:
    """``path``, or skip the test, saying so, where the file is absent."""
    if not path.is_file():
        pytest.skip(f"{path} is absent (the real ROOT files live in <repo>/../shared/data)")
    return path
