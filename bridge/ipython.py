"""IPython and Jupyter: ``%load_ext bridge`` gives ``%julia`` and ``%%julia``.

Both evaluate Julia code on the notebook's bridge, a private ``Bridge()`` started at the first
use and kept for the kernel's life (``notebook_bridge()``; ``use_bridge(b)`` makes it a bridge
of your own, a served one for instance). The value of the code is the cell's value, which
IPython displays; code ending in ``;`` gives none, as in Julia's REPL. What Julia prints appears
in the cell (bridge/julia_output.py).
"""

from __future__ import annotations

from typing import Any, Optional

from IPython.core.magic import Magics, line_cell_magic, magics_class

from .client import Bridge

_bridge: Optional[Bridge] = None


def notebook_bridge() -> Bridge:
    """The bridge ``%julia`` uses: started at the first use, again if it was closed."""
    global _bridge
    if _bridge is None or _bridge.closed:
        _bridge = Bridge()
    return _bridge


def use_bridge(bridge: Bridge) -> None:
    """Make ``%julia`` and ``%%julia`` use ``bridge``. A private one started before is closed."""
    global _bridge
    if _bridge is not None and _bridge is not bridge:
        _bridge.close()
    _bridge = bridge


@magics_class
class JuliaMagics(Magics):
    """``%julia CODE`` and ``%%julia`` cells, evaluated by ``notebook_bridge().eval``."""

    @line_cell_magic
    def julia(self, line: str, cell: Optional[str] = None) -> Any:
        """Evaluate Julia code (the line, or the cell below ``%%julia``); its value, or None
        when the code ends in ``;``."""
        code = line if cell is None else cell
        cell_name = f"In[{self.shell.execution_count}]" if self.shell is not None else "julia"
        value = notebook_bridge().eval(code, filename=cell_name)
        return None if code.rstrip().endswith(";") else value


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics with IPython (``%load_ext bridge``)."""
    ipython.register_magics(JuliaMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """Close the notebook's bridge (``%unload_ext bridge``)."""
    global _bridge
    if _bridge is not None:
        _bridge.close()
        _bridge = None
