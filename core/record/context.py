"""Process-wide tracing state: the current run and the default handlers.

The current run lives in a ``ContextVar`` so nesting follows asyncio tasks; while
tracing is on, threads started (and executor jobs submitted) inside a run start
with that run as theirs, so nesting follows threads as well (only rtrace's variable
travels: see ``rtrace.core.process.threads``).

Default handlers are what ``configure`` adds when the code under trace passed
none: the ``trace_to`` block's writer, ``RTRACE_OUTPUT``'s, or ``rtrace run``'s.
They are process-wide on purpose: every thread of the traced program is traced.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rtrace.core.process import threads

if TYPE_CHECKING:
    from rtrace.core.record.jsonl import JsonlHandler

ENV_OUTPUT = "RTRACE_OUTPUT"

_current_run: contextvars.ContextVar[Any] = contextvars.ContextVar("rtrace_current_run", default=None)
_defaults: tuple[Any, ...] = ()
_lock = threading.Lock()
_env_checked = False


# The run manager of the retriever run the calling code is inside, or ``None``: the variable's
# own ``get``, so reading it costs no Python frame (it is read on every traced run).
current_run: Callable[[], Any] = _current_run.get


def set_current_run(run_manager: Any) -> contextvars.Token[Any]:
    """Make ``run_manager`` the current run; pass the token to ``reset_current_run``."""
    return _current_run.set(run_manager)


def reset_current_run(token: contextvars.Token[Any]) -> None:
    _current_run.reset(token)


def default_handlers() -> tuple[Any, ...]:
    """Handlers every configured manager gets (``RTRACE_OUTPUT`` is read on first use)."""
    if not _env_checked:
        _check_env()
    return _defaults


def add_default_handler(handler: Any) -> None:
    """Send every traced run in this process to ``handler`` too."""
    global _defaults
    with _lock:
        if any(h is handler for h in _defaults):
            return
        _defaults = (*_defaults, handler)
    threads.install(_current_run)  # one use per default handler: the last one out uninstalls


def remove_default_handler(handler: Any) -> None:
    global _defaults
    with _lock:
        if not any(h is handler for h in _defaults):
            return
        _defaults = tuple(h for h in _defaults if h is not handler)
    threads.uninstall()


def install_env_handler(handler: Any) -> None:
    """Use ``handler`` as the process's ``RTRACE_OUTPUT`` writer (set up by a traced parent)."""
    global _env_checked
    with _lock:
        _env_checked = True
    add_default_handler(handler)


def _check_env() -> None:
    global _env_checked
    with _lock:
        if _env_checked:
            return
        _env_checked = True
    path = os.environ.get(ENV_OUTPUT)
    if path:
        from rtrace.core.record.jsonl import JsonlHandler

        handler = JsonlHandler(path)
        handler.close_at_exit()
        add_default_handler(handler)


@contextmanager
def trace_to(path_or_file: Any, **options: Any) -> Iterator[JsonlHandler]:
    """Record every retriever run in the block, in any thread, to a JSONL file.

    ``options`` go to ``JsonlHandler`` (``redact``, ``max_content``). The session
    is closed, and its ``session_end`` written, when the block ends.
    """
    from rtrace.core.record.jsonl import JsonlHandler

    handler = JsonlHandler(path_or_file, **options)
    add_default_handler(handler)
    error: BaseException | None = None
    try:
        yield handler
    except BaseException as e:
        error = e
        raise
    finally:
        remove_default_handler(handler)
        handler.close(error=error)
