"""Carrying rtrace's current run into threads and executor jobs.

Once tracing is on, ``Thread.start`` and ``ThreadPoolExecutor.submit`` run their
target in a copy of the starter's context, as Python 3.14 does with
``-X thread_inherit_context`` and OpenTelemetry's threading instrumentation does.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from typing import Any

_lock = threading.Lock()

_patched = False


def install() -> None:
    """Make threads and executor jobs run in a copy of their starter's context.

    What Python 3.14 does with ``-X thread_inherit_context``; OpenTelemetry's
    threading instrumentation does the same. Idempotent; never undone.
    """
    global _patched
    with _lock:
        if _patched:
            return
        _patched = True
    from concurrent.futures import ThreadPoolExecutor

    original_start = threading.Thread.start
    original_submit = ThreadPoolExecutor.submit

    @functools.wraps(original_start)
    def start(self: threading.Thread) -> None:
        ctx = contextvars.copy_context()
        run = self.run
        self.run = functools.partial(ctx.run, run)  # type: ignore[method-assign]
        original_start(self)

    @functools.wraps(original_submit)
    def submit(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return original_submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

    threading.Thread.start = start  # type: ignore[method-assign]
    ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]
