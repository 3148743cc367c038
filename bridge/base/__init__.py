"""The base layer: the exceptions every other layer raises (julia_server/src/base/), and
``error_from_reply``, which makes one of a reply's ``error``."""

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
    error_from_reply,
)

__all__ = [
    "AuthenticationFailed",
    "BridgeError",
    "CallInterrupted",
    "CallTimedOut",
    "ExecutorDied",
    "FunctionNotFound",
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
]
