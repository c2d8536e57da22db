"""Python's own ``sys.excepthook``, remembered before the CLI framework replaces it.

Its own module, importing nothing: every rtrace command remembers it first thing, and only
``rtrace run`` (``changes``) gives it back, to the script it runs.
"""

from __future__ import annotations

import sys
from typing import Any

_python_excepthook: Any = None


def remember_python_state() -> None:
    """Call first thing in the CLI, before any framework changes the interpreter's hooks."""
    global _python_excepthook
    if _python_excepthook is None:
        _python_excepthook = sys.excepthook


def python_excepthook() -> Any:
    """The excepthook python had when ``remember_python_state`` was called (python's default if never)."""
    return _python_excepthook if _python_excepthook is not None else sys.__excepthook__
