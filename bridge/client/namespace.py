"""``bridge.jl``: Julia's names as Python attributes, as juliacall's ``jl`` gives them.

``b.jl.path_length(x)`` calls ``path_length``; ``b.jl.LinearAlgebra.norm(v)`` reaches into a
module; keyword arguments go to Julia as keywords. A name ending in ``_b`` that Julia does not
define stands for its ``!`` form (``b.jl.sort_b(v)`` calls ``sort!``, as in juliacall; a
``n_b`` the client defined is called itself): the executor resolves it (docs/protocol.md).
``dir(b.jl)`` lists the client's own names and the server's ``--include`` names, for tab
completion, and ``help(b.jl.f)`` (``b.jl.f?`` in IPython) shows Julia's documentation of ``f``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bridge.base import BridgeError, JuliaError

if TYPE_CHECKING:
    from .client import Bridge

# Julia code that lists the names defined in some modules, for `__dir__`. Only a module's own
# names are asked about: `isdefined` on a name it would get through `using` would bind it.
_NAMES_CODE = """
let ms = filter(m -> m isa Module, Any[{modules}])
    hidden(m, n) = startswith(string(n), '#') || n in (nameof(m), :eval, :include) || !isdefined(m, n)
    String[string(n) for m in ms for n in names(m; all = true) if !hidden(m, n)]
end
"""


_NO_DOCUMENTATION = "No documentation found."   # how Julia's `@doc` begins for an undocumented name
_JULIA_NAME_DOC = """A Julia name, reached through ``bridge.jl``: call it, or take an attribute of it (a
module's name). Nothing is looked up until it is called; its ``__doc__`` is Julia's documentation
of it."""


def python_name(name: str) -> str:
    """The attribute ``dir`` shows for a Julia name: ``!`` becomes ``_b``."""
    return name[:-1] + "_b" if name.endswith("!") else name


class JuliaName:
    __slots__ = ("_bridge", "_path")

    def __init__(self, bridge: Bridge, path: str) -> None:
        self._bridge = bridge
        self._path = path

    def __repr__(self) -> str:
        return f"<Julia {self._path or 'Main'} on {self._bridge!r}>"

    def __getattr__(self, attribute: str) -> JuliaName:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return JuliaName(self._bridge, f"{self._path}.{attribute}" if self._path else attribute)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self._path:
            raise TypeError("bridge.jl itself is not a function; call one of its names, e.g. bridge.jl.sum(x)")
        return self._bridge._call(self._path, args, kwargs, timeout=None)

    @property
    def __doc__(self) -> str:  # type: ignore[override]
        """Julia's documentation of the name (``help(b.jl.sum)``, ``b.jl.sum?`` in IPython)."""
        if not self._path:
            return _JULIA_NAME_DOC
        if not all(part.isidentifier() for part in self._path.split(".")):
            return f"{self._path!r} is not a Julia name"
        try:
            text = str(self._bridge.eval(f"string(@doc {self._path})"))
            if self._path.endswith("_b") and text.startswith(_NO_DOCUMENTATION):   # `sort_b` is `sort!`
                bang = str(self._bridge.eval(f"string(@doc {self._path[:-2]}!)"))
                text = text if bang.startswith(_NO_DOCUMENTATION) else bang
            return text
        except BridgeError as error:   # help() on a closed bridge, or one whose server died
            return f"Julia's documentation of {self._path} could not be read: {error}"

    def __dir__(self) -> list[str]:
        # the client's own module, where `call` looks first, then the server's `--include` names
        modules = self._path or "@__MODULE__, Shared"
        try:
            names = self._bridge.eval(_NAMES_CODE.format(modules=modules))
        except JuliaError:
            return []   # not a module, or not defined: nothing to complete
        return sorted({python_name(str(n)) for n in names if str(n).replace("!", "").isidentifier()})
