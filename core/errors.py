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


def tell(text: str) -> None:
    """rtrace's own words on stderr, or nowhere: started with stderr closed (``2>&-``), python leaves
    ``sys.stderr`` None, and ``print(file=None)`` would put them on stdout, among the data or the
    traced program's output."""
    if sys.stderr is not None:
        print(text, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """One line on stderr; never raises (stderr may be closed)."""
    try:
        tell(f"rtrace: warning: {message_line(message)}")
    except Exception:
        pass
