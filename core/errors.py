"""The one error hierarchy of rtrace.

    RtraceError                  base: the CLI catches this once and prints one line
    ├── UsageError               a bad option or argument (exit 2)
    ├── OutputError              a log that cannot be opened or written
    └── LogError                 a log that cannot be read
        └── MalformedLineError   a line that is not a JSON object (names file and line)

Faults inside tracing (a handler that raises, a value that cannot be encoded, a
full disk) are never raised into traced code: they are warned about once.
"""

from __future__ import annotations

import sys
from typing import Any


class RtraceError(Exception):
    """Base of every error rtrace raises on purpose."""

    exit_code: int = 1


class UsageError(RtraceError):
    """A bad option or argument."""

    exit_code = 2


class OutputError(RtraceError):
    """A log that cannot be opened or written."""


class LogError(RtraceError):
    """A log that cannot be read."""


class MalformedLineError(LogError):
    """A line of a log that is not a JSON object."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        super().__init__(f"{source}:{line}: {reason}")


def message_line(message: object) -> str:
    """A message for stderr: one line, and whatever it quotes from a log neutralised."""
    from rtrace.core.terminal import neutralise

    return neutralise(str(message))


_own_stderr: list[Any] = []  # the stderr the rtrace command started with (``use_stderr``)


def use_stderr(stream: Any) -> None:
    """Say rtrace's words on ``stream`` from now on (the CLI: the stderr it started with), not on
    whatever ``sys.stderr`` is when they are said: a script that ``rtrace run`` runs may have put
    its own file there, and a library warning (no CLI) goes where the program's stderr is."""
    _own_stderr[:] = [stream]


def own_stderr() -> Any:
    """Where rtrace's words go: the stream given to ``use_stderr``, else ``sys.stderr``; None when closed."""
    return _own_stderr[0] if _own_stderr else sys.stderr


def tell(text: str) -> None:
    """rtrace's own words on its stderr, or nowhere: started with stderr closed (``2>&-``), python
    leaves ``sys.stderr`` None, and ``print(file=None)`` would put them on stdout, among the data or
    the traced program's output."""
    stream = own_stderr()
    if stream is not None:
        try:
            print(text, file=stream, flush=True)
        except (OSError, ValueError):  # closed since (by a traced script), or the reader went away
            pass


def warn(message: str) -> None:
    """One line on stderr; never raises (stderr may be closed)."""
    try:
        tell(f"rtrace: warning: {message_line(message)}")
    except Exception:
        pass
