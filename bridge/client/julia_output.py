"""Julia's output from a call, shown where the user looks (docs/protocol.md, "Output").

What the call's Julia code printed goes to this process's ``sys.stdout`` and ``sys.stderr`` (in a
notebook: the cell that made the call), before the call returns or raises. Its log records
(``@info``, ``@warn``, ``@error``) become records of the ``bridge.julia`` logger at their own
level; while no logging is configured, they are printed to ``sys.stderr`` the way Julia shows
them, so that a notebook shows ``@info`` too.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

LOGGER = logging.getLogger("bridge.julia")

# Julia's log levels (Logging.Debug = -1000, Info = 0, Warn = 1000, Error = 2000) and Python's
_LEVELS = ((2000, logging.ERROR, "Error"), (1000, logging.WARNING, "Warning"), (0, logging.INFO, "Info"))


def python_level(julia_level: int) -> tuple[int, str]:
    """The Python logging level of a Julia log level, and Julia's name for it."""
    for floor, level, name in _LEVELS:
        if julia_level >= floor:
            return level, name
    return logging.DEBUG, "Debug"


def julia_style(name: str, message: str) -> str:
    """A log record as Julia's console shows it: ``[ Info: text``, or a bracketed block."""
    lines = message.split("\n")
    if len(lines) == 1:
        return f"[ {name}: {message}\n"
    middle = "".join(f"│ {line}\n" for line in lines[1:-1])
    return f"┌ {name}: {lines[0]}\n{middle}└ {lines[-1]}\n"


def show_output(output: dict[str, Any]) -> None:
    """Write the ``stdout`` and ``stderr`` text of a reply's ``output``, and emit its ``logs``."""
    for field, stream in (("stdout", sys.stdout), ("stderr", sys.stderr)):
        text = output.get(field)
        if isinstance(text, str) and text:
            stream.write(text)
            stream.flush()
    logs = output.get("logs")
    if isinstance(logs, list):
        for entry in logs:
            if isinstance(entry, dict):
                _emit(entry)


def _emit(entry: dict[str, Any]) -> None:
    julia_level = entry.get("level")
    level, name = python_level(julia_level if isinstance(julia_level, int) else 0)
    message = str(entry.get("message", ""))
    if not LOGGER.hasHandlers():
        sys.stderr.write(julia_style(name, message))
        sys.stderr.flush()
        return
    if not LOGGER.isEnabledFor(level):
        return
    line = entry.get("line")
    record = LOGGER.makeRecord(LOGGER.name, level, str(entry.get("file", "")), line if isinstance(line, int) else 0,
                               message, (), None, extra={"julia_module": str(entry.get("module", ""))})
    LOGGER.handle(record)
