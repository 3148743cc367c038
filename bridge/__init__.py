"""awkward-bridge: Awkward Arrays between Python and a multithreaded Julia server, zero-copy."""

from .base import *  # noqa: F403  (every exception the bridge raises)
from .base import __all__ as _exceptions
from .client import Bridge, Handle, JuliaFunction
from .wire import ShownValue

__version__ = "0.1.0"


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext bridge``: the ``%julia`` and ``%%julia`` magics (bridge/ipython.py)."""
    from .ipython import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext bridge``: close the notebook's bridge."""
    from .ipython import unload_ipython_extension as unload

    unload(ipython)


__all__ = ["Bridge", "Handle", "JuliaFunction", "ShownValue", "__version__", *_exceptions]
