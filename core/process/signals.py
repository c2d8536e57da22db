"""SIGTERM under ``rtrace run``: close the log, then die of SIGTERM exactly as python would.

Only installed when SIGTERM has the default disposition (a script run by a parent
that ignores SIGTERM keeps ignoring it). The handler writes the log's end (open runs
listed as incomplete) and the summary, restores the default disposition and sends
the signal again: no ``finally`` block or ``atexit`` handler of the script runs, and
the exit status is "killed by SIGTERM", as under python. Forked children get the
previous disposition back at once; a script's own handler simply replaces ours.

While ours is installed, ``signal.getsignal`` and ``signal.signal`` report the
disposition python would have (``SIG_DFL``) in its place: a script that saves the
previous handler to chain to it must not find, and call, rtrace's.

A SIGTERM that reaches a forked child before it has restored the disposition would
be caught by rtrace's handler inherited through fork, then dropped by CPython ("Signal
ignored due to race condition"): ``Pool.terminate()`` then waits forever. So SIGTERM
is blocked in the forking thread across the fork; the child restores the disposition
and then unblocks it, and a SIGTERM sent in between takes its default effect then.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from rtrace.core.process import forks
from rtrace.core.process.patching import Patch

_active: SigtermClosesLog | None = None


def _getsignal(signalnum: Any) -> Any:
    current = _GETSIGNAL.original(signalnum)
    if _active is not None and current is _active.handler:
        return _active.previous
    return current


def _signal(signalnum: Any, handler: Any) -> Any:
    previous = _SIGNAL.original(signalnum, handler)
    if _active is not None and previous is _active.handler:
        return _active.previous
    return previous


_getsignal.__doc__, _signal.__doc__ = signal.getsignal.__doc__, signal.signal.__doc__
_GETSIGNAL = Patch(signal, "getsignal", _getsignal)
_SIGNAL = Patch(signal, "signal", _signal)


class SigtermClosesLog:
    def __init__(self, on_term: Callable[[int], None]) -> None:
        self.on_term = on_term
        self.previous: Any = None
        self.installed = False
        self.pid = os.getpid()
        self.handler = self._handle  # one bound method: compared by identity below
        self._forking = threading.local()  # the forking thread's signal mask, per thread

    def install(self) -> None:
        try:
            previous = signal.getsignal(signal.SIGTERM)
            if previous is not signal.SIG_DFL:
                return
            signal.signal(signal.SIGTERM, self.handler)
        except (ValueError, OSError, AttributeError):  # not the main thread, or no SIGTERM here
            return
        global _active
        self.previous = previous
        self.installed = True
        _active = self
        _GETSIGNAL.install()
        _SIGNAL.install()
        forks.add_around_fork(self._block, self._unblock)
        forks.add_child_hook(self._restore_and_unblock)

    def uninstall(self) -> None:
        if not self.installed:
            return
        global _active
        self.installed = False
        forks.remove_around_fork(self._block, self._unblock)
        forks.remove_child_hook(self._restore_and_unblock)
        self._restore()
        _active = None
        _SIGNAL.uninstall()
        _GETSIGNAL.uninstall()

    def _block(self) -> None:
        self._forking.mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})

    def _unblock(self) -> None:
        mask = getattr(self._forking, "mask", None)
        self._forking.mask = None
        if mask is not None and signal.SIGTERM not in mask:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

    def _restore_and_unblock(self) -> None:
        try:
            self._restore()
        finally:
            self._unblock()

    def _restore(self) -> None:
        try:
            if _GETSIGNAL.original(signal.SIGTERM) is self.handler:
                _SIGNAL.original(signal.SIGTERM, self.previous)
        except (ValueError, OSError):
            pass

    def _handle(self, signum: int, frame: Any) -> None:
        try:
            if os.getpid() == self.pid:
                self.on_term(signum)
        finally:
            die_of(signum)


def die_of(signum: int) -> None:
    """End the process by ``signum`` with its default action (python's exit after Ctrl-C)."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    try:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    except (ValueError, OSError):
        pass
