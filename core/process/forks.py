"""After ``fork``: the child starts as a new writer with empty run bookkeeping.

One at-fork hook, registered once (CPython cannot unregister them), dispatches to
what is installed now: with nothing installed it does nothing. In the child it
(1) makes the run that was current at the fork the child's origin, so the child's
runs join the parent's trace like a spawned child's; (2) turns each live writer into
a writer of its own (new session, seq, no open runs); (3) runs the child hooks that
undo parent-only changes (rtrace run's SIGTERM handler: a forked child gets the
disposition the user had, as under python).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

_writers: weakref.WeakSet[Any] = weakref.WeakSet()
_child_hooks: list[Callable[[], None]] = []
_around: list[tuple[Callable[[], None], Callable[[], None]]] = []  # (before fork, after it in the parent)
_lock = threading.Lock()


def track(writer: Any) -> None:
    """Call ``writer._after_fork()`` in every forked child while ``writer`` lives (and its
    ``_before_fork()``, if it has one, in the parent just before each fork)."""
    _writers.add(writer)


def add_child_hook(hook: Callable[[], None]) -> None:
    """Call ``hook()`` in every forked child until ``remove_child_hook``."""
    with _lock:
        _child_hooks.append(hook)


def remove_child_hook(hook: Callable[[], None]) -> None:
    with _lock:
        if hook in _child_hooks:
            _child_hooks.remove(hook)


def add_around_fork(before: Callable[[], None], after_in_parent: Callable[[], None]) -> None:
    """Call ``before()`` in the forking thread just before each fork, ``after_in_parent()`` after it."""
    with _lock:
        _around.append((before, after_in_parent))


def remove_around_fork(before: Callable[[], None], after_in_parent: Callable[[], None]) -> None:
    with _lock:
        if (before, after_in_parent) in _around:
            _around.remove((before, after_in_parent))


def _before_fork() -> None:
    for before in [getattr(w, "_before_fork", None) for w in list(_writers)] + [b for b, _ in _around]:
        if before is None:
            continue
        try:
            before()
        except Exception:
            pass


def _after_fork_in_parent() -> None:
    for _, after in list(_around):
        try:
            after()
        except Exception:
            pass


def _set_origin() -> None:
    from rtrace.core.record import lineage
    from rtrace.core.record.context import current_run

    run = current_run()
    if run is not None:
        lineage.ORIGIN = (run.run_id, lineage.trace_of(run.run_id))


def _after_fork_in_child() -> None:
    if not _writers and not _child_hooks:
        return
    for step in (_set_origin, *[w._after_fork for w in list(_writers)], *list(_child_hooks)):
        try:
            step()
        except Exception:  # a fault in tracing never breaks the child
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
