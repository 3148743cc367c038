"""Exceptions raised by the bridge. Server-side names match ``error.type`` in docs/protocol.md."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

_BRIDGE_PACKAGE = Path(__file__).resolve().parent.parent


class BridgeError(Exception):
    """Base class of every exception the bridge raises."""


class JuliaError(BridgeError):
    """An exception raised on the Julia server, with its Julia type, message and backtrace."""

    def __init__(self, julia_type: str, message: str, backtrace: str = "") -> None:
        self.julia_type = julia_type
        self.message = message
        self.backtrace = backtrace
        # a %julia cell's Python frames are IPython's and the bridge's: the magic clears this
        self.show_python_frames = True
        text = f"{julia_type}: {message}"
        if backtrace:
            text += f"\n\nJulia backtrace:\n{backtrace}"
        super().__init__(text)

    def _render_traceback_(self) -> list[str]:
        """What IPython and Jupyter show for this error instead of the whole traceback (the hook
        ipyparallel's remote errors use): the caller's own frames, neither the bridge's nor
        IPython's, then the Julia error and its backtrace."""
        shell = _ipython_shell()
        hidden = [_BRIDGE_PACKAGE] + ([Path(sys.modules["IPython"].__file__).parent] if shell is not None else [])
        frames = [] if not self.show_python_frames else [
            frame for frame in traceback.extract_tb(self.__traceback__)
            if not any(Path(frame.filename).resolve().is_relative_to(package) for package in hidden)
        ]
        lines = [f"{_code_name(shell, frame.filename)}, line {frame.lineno}: {frame.line}" for frame in frames]
        return [*lines, f"{type(self).__name__}: {self}"]


def _ipython_shell() -> Any:
    """The running IPython shell, or None (IPython is not a dependency of the bridge)."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def _code_name(shell: Any, filename: str) -> str:
    """``Cell In[3]`` for a notebook cell's code, as IPython names it; ``File "path"`` otherwise."""
    named = getattr(getattr(shell, "compile", None), "format_code_name", lambda _: None)(filename)
    return f"{named[0]} {named[1]}" if named else f'File "{filename}"'


class ProtocolError(JuliaError):
    """The server could not understand a request (docs/protocol.md)."""


class UnknownClient(JuliaError):
    """The server does not know this client (never said hello, or its leases expired)."""


class InvalidArray(JuliaError):
    """An array failed the server's validation; the message names the node and buffer key."""


class FunctionNotFound(JuliaError):
    """``call`` named a Julia function that is not defined on the server."""


class ResultTypeError(JuliaError):
    """A Julia result has no Python equivalent."""


class SharedMemoryFull(BridgeError):
    """Shared memory could not be reserved; the message names the size needed and the limit."""


class ShuttingDown(JuliaError):
    """The server is stopping and takes no new work."""


class CallInterrupted(JuliaError):
    """A call was stopped: by Ctrl-C (``KeyboardInterrupt``) in the caller, or by ``cancel``.

    The message says whether the client's executor kept its definitions (the Julia code stopped
    at the interrupt) or was killed and restarted without them (it did not stop in time).
    """


class CallTimedOut(CallInterrupted):
    """A call ran past the ``timeout`` it was given and was stopped, as by ``CallInterrupted``."""


class ExecutorDied(JuliaError):
    """The executor process running this client's Julia code ended (a crash, ``exit()``, its
    memory limit); the message names the cause. The client's definitions are lost; its next call
    gets a fresh executor, and other clients are not affected."""


class ServerDied(BridgeError):
    """The server stopped answering (killed, crashed or unreachable) while a request was pending."""


class ServerNotFound(BridgeError):
    """No server listens at the address: the ipc socket file does not exist, or was left by a
    server that is gone."""


class AuthenticationFailed(BridgeError):
    """The server refused this client's credentials (docs/security.md): no key for a ``tcp://``
    server, the wrong key, or a connection that is not one of this client's."""


class ServerRestarted(ServerDied):
    """The server restarted (or forgot this client) while a request was pending, or after its
    arguments referred to handles that the new server does not have; the request was not answered."""


class JuliaNotFound(BridgeError):
    """No Julia executable could be found or installed."""


_BY_JULIA_TYPE: dict[str, type[JuliaError]] = {
    cls.__name__: cls
    for cls in (ProtocolError, UnknownClient, InvalidArray, FunctionNotFound, ResultTypeError, ShuttingDown,
                CallInterrupted, CallTimedOut, ExecutorDied)
}


def error_from_reply(error: dict) -> BridgeError:
    """Turn a reply's ``error`` map into the matching Python exception."""
    julia_type = str(error.get("type", "Exception"))
    message = str(error.get("message", ""))
    backtrace = str(error.get("backtrace", ""))
    if julia_type == "SharedMemoryFull":
        return SharedMemoryFull(message)
    if julia_type == "AuthenticationFailed":
        return AuthenticationFailed(message)
    return _BY_JULIA_TYPE.get(julia_type, JuliaError)(julia_type, message, backtrace)
