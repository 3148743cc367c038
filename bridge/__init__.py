"""awkward-bridge: Awkward Arrays between Python and a multithreaded Julia server, zero-copy."""

from .client import Bridge, Handle
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
