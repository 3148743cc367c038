"""IPython and Jupyter: ``%load_ext bridge`` gives ``%julia`` and ``%%julia``.

Both evaluate Julia code on the notebook's bridge, a private ``Bridge()`` started at the first
use and kept for the kernel's life (``notebook_bridge()``; ``use_bridge(b)`` makes it a bridge
of your own, a served one for instance). The value of the code is the cell's value, which
IPython displays (a value with no Python equivalent as Julia shows it, a ``ShownValue``); code
ending in ``;`` gives none, as in Julia's REPL. What Julia prints appears
in the cell (bridge/client/julia_output.py). TAB completes ``b.jl.<names>`` for a ``Bridge``
``b`` of the notebook.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

from IPython.core.magic import Magics, line_cell_magic, magics_class

from .base import BridgeError, JuliaError
from .client import Bridge

_bridge: Optional[Bridge] = None
_started_here = False   # whether _bridge is the private one notebook_bridge() started
_completer: Optional[Callable[[str], list[str]]] = None   # the matcher load_ipython_extension added


def notebook_bridge() -> Bridge:
    """The bridge ``%julia`` uses: started at the first use, again if it was closed."""
    global _bridge, _started_here
    if _bridge is None or _bridge.closed:
        _bridge, _started_here = Bridge(), True
    return _bridge


def use_bridge(bridge: Bridge) -> None:
    """Make ``%julia`` and ``%%julia`` use ``bridge``. The private one ``notebook_bridge()``
    started, if any, is closed; a bridge of your own is left alone."""
    global _bridge, _started_here
    if _started_here and _bridge is not None and _bridge is not bridge:
        _bridge.close()
    _bridge, _started_here = bridge, False


@magics_class
class JuliaMagics(Magics):
    """``%julia CODE`` and ``%%julia`` cells, evaluated by ``notebook_bridge().eval``."""

    @line_cell_magic
    def julia(self, line: str, cell: Optional[str] = None) -> Any:
        """Evaluate Julia code on the notebook's bridge: ``%julia CODE`` or a ``%%julia`` cell.

        The code runs in this notebook's own Julia module, where earlier cells' definitions are
        (``notebook_bridge().jl.f(x)`` calls them from Python, with arrays). Its value is the
        cell's value: numbers, strings, arrays (``ak.Array``), records (``dict``); anything else
        as Julia shows it. Code ending in ``;`` gives none. What Julia prints appears in the
        cell; an error shows the Julia backtrace, naming this cell (``In[3]:2``). Julia cannot see
        Python variables: pass them to a Julia function instead. Ctrl-C interrupts the code
        (docs/kernels.md, "Loops that Ctrl-C can stop")."""
        code = line if cell is None else cell
        try:
            value = notebook_bridge().eval(code, filename=self._cell_name(), show=True)
        except JuliaError as error:
            hinted = self._python_variable_hint(error) or error
            hinted.show_python_frames = False   # the cell is Julia code
            if hinted is error:
                raise
            raise hinted from None
        return None if ends_with_semicolon(code) else value

    def _cell_name(self) -> str:
        """The running cell as IPython's tracebacks name it, ``In[3]``. Its number is the running
        execution's: IPython 9 advances ``shell.execution_count`` before the cell runs, 8 after."""
        running = getattr(getattr(self.shell, "displayhook", None), "exec_result", None)
        number = getattr(running, "execution_count", None)
        return f"In[{number}]" if number is not None else "julia"

    def _python_variable_hint(self, error: JuliaError) -> Optional[JuliaError]:
        """The error again, saying what to do, when Julia missed a name that is a Python variable."""
        if error.julia_type != "UndefVarError" or self.shell is None:
            return None
        words = error.message.split()
        name = words[0].strip("`") if words else ""
        if not name.isidentifier() or name not in self.shell.user_ns:
            return None
        hint = (f"\nHint: {name} is a Python variable, and %julia code cannot see Python's variables: "
                f"pass it to a Julia function instead, notebook_bridge().jl.f({name})")
        return type(error)(error.julia_type, error.message + hint, error.backtrace)


def ends_with_semicolon(code: str) -> bool:
    """Whether Julia's REPL would show no value for ``code``: its last ``;`` is followed only by
    whitespace and comments (``x = 5;  # quiet``). As in the REPL, a ``;`` inside a trailing
    comment counts too."""
    at = code.rfind(";")
    if at < 0:
        return False
    rest = re.sub(r"#=.*?=#", "", code[at + 1:], flags=re.S)
    return re.sub(r"#[^\n]*", "", rest).strip() == ""


# `b.jl.<TAB>`: IPython completes attributes by looking at objects, but not through a property
# of an object of a library's class (`b.jl`), neither with Jedi nor with its own evaluation.
_JL_ATTRIBUTE = re.compile(r"(?P<owner>[A-Za-z_]\w*)\.jl(?P<path>(?:\.[A-Za-z_]\w*)*)\.(?P<partial>\w*)")


def julia_name_completer(namespace: dict) -> Callable[[str], list[str]]:
    """An IPython matcher that completes ``b.jl.<TAB>`` (and ``b.jl.Module.<TAB>``) for a
    ``Bridge`` ``b`` of ``namespace``, from ``dir`` of that ``JuliaName``."""

    def complete(text: str) -> list[str]:
        found = _JL_ATTRIBUTE.fullmatch(text)
        bridge = namespace.get(found["owner"]) if found else None
        if not isinstance(bridge, Bridge) or bridge.closed:
            return []
        name = bridge.jl
        for part in filter(None, found["path"].split(".")):
            name = getattr(name, part)
        try:
            names = dir(name)
        except BridgeError:   # the server died: TAB completes nothing, and raises nothing
            return []
        stem = text[: len(text) - len(found["partial"])]
        return [stem + n for n in names if n.startswith(found["partial"])]

    return complete


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics with IPython (``%load_ext bridge``), and TAB completion of
    ``b.jl.<names>``."""
    ipython.register_magics(JuliaMagics)
    global _completer
    _completer = julia_name_completer(ipython.user_ns)
    ipython.Completer.custom_matchers.append(_completer)


def unload_ipython_extension(ipython: Any) -> None:
    """Close the bridge ``notebook_bridge()`` started (``%unload_ext bridge``); one given to
    ``use_bridge`` is left open."""
    global _bridge, _started_here, _completer
    if _completer in ipython.Completer.custom_matchers:
        ipython.Completer.custom_matchers.remove(_completer)
    _completer = None
    if _started_here and _bridge is not None:
        _bridge.close()
    _bridge, _started_here = None, False
