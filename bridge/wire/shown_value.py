"""A Julia value with no Python equivalent, as Julia shows it (docs/protocol.md, section 4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, repr=False)
class ShownValue:
    """What ``eval(code, show=True)`` (a notebook's ``%julia``) returns for a value that has no
    Python equivalent (a type, a complex number, ``methods(f)``, …): the text Julia's REPL shows
    for it, which is also its ``repr``, so IPython displays it as Julia would."""

    text: str

    def __repr__(self) -> str:
        return self.text

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text)
