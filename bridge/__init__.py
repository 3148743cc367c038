"""awkward-bridge: Awkward Arrays between Python and a multithreaded Julia server, zero-copy."""

from .client import Bridge, Handle
from .julia_function import JuliaFunction
from .errors import (
    AuthenticationFailed,
    BridgeError,
    CallInterrupted,
    CallTimedOut,
    ExecutorDied,
    FunctionNotFound,
    InvalidArray,
    JuliaError,
    JuliaNotFound,
    ProtocolError,
    ResultTypeError,
    ServerDied,
    ServerNotFound,
    ServerRestarted,
    SharedMemoryFull,
    ShuttingDown,
    UnknownClient,
)

__version__ = "0.1.0"


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext bridge``: the ``%julia`` and ``%%julia`` magics (bridge/ipython.py)."""
    from .ipython import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext bridge``: close the notebook's bridge."""
    from .ipython import unload_ipython_extension as unload

    unload(ipython)


__all__ = [
    "AuthenticationFailed",
    "Bridge",
    "BridgeError",
    "CallInterrupted",
    "CallTimedOut",
    "ExecutorDied",
    "FunctionNotFound",
    "Handle",
    "InvalidArray",
    "JuliaError",
    "JuliaFunction",
    "JuliaNotFound",
    "ProtocolError",
    "ResultTypeError",
    "ServerDied",
    "ServerNotFound",
    "ServerRestarted",
    "SharedMemoryFull",
    "ShuttingDown",
    "UnknownClient",
    "__version__",
]
