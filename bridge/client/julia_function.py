"""A Julia function held from Python: what ``eval`` or a call gives back when the Julia value is
a function (``b.eval("x -> 2x")``, a definition, a closure a kernel returns)."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from bridge.base import BridgeError, ServerRestarted
from bridge.wire import FunctionRef

if TYPE_CHECKING:
    from .client import Bridge


class JuliaFunction:
    """Call it as a Python function; arguments and keywords travel as for ``Bridge.call``. Pass
    it to a Julia call as an argument (``b.call("map", f, x)``). Its executor keeps the function
    while this object lives; when it is garbage, the bridge's next message tells the executor to
    let go. It is valid on the executor that made it: after a crash or restart of the executor,
    or a server restart, calling it raises ``FunctionNotFound`` or ``ServerRestarted``.

    A closure over a call's array argument keeps a view of memory that is the client's, valid
    only during that call: ``collect`` what a returned closure should keep."""

    def __init__(self, bridge: Bridge, ref: FunctionRef, epoch: int) -> None:
        self.ref = ref
        self._bridge = bridge
        self._epoch = epoch  # the registration the function belongs to
        # a finalizer may run in any thread at any allocation: it only enqueues the id
        self._finalizer = weakref.finalize(self, bridge._dropped_functions.put, (ref.id, epoch))
        self._finalizer.atexit = False  # Bridge.close ends the executor, and the function with it

    def __repr__(self) -> str:
        return f"<Julia function {self.ref.name or 'anonymous'} (id {self.ref.id})>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._bridge._call(self, args, kwargs, timeout=None)

    def checked_ref(self, bridge: Bridge) -> FunctionRef:
        """Its reference, for a request of ``bridge``; an error if it belongs to another bridge or
        to an earlier registration."""
        if bridge is not self._bridge:
            raise BridgeError(f"{self!r} belongs to another Bridge")
        if self._epoch != bridge._epoch():
            raise ServerRestarted(f"{self!r} was made before the server restarted; evaluate it again")
        return self.ref
