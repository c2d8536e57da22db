"""Signals: SIGTERM closes the log like an exit does. Installed on entry, restored on exit."""

from __future__ import annotations

import signal
from typing import Any


class sigterm_as_exit:
    """SIGTERM unwinds the script as SystemExit(143), so the log is closed properly."""

    def __enter__(self) -> None:
        self.previous = None
        try:
            self.previous = signal.signal(signal.SIGTERM, self._handle)
        except (ValueError, OSError):  # not the main thread, or no SIGTERM here
            self.previous = None

    @staticmethod
    def _handle(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
