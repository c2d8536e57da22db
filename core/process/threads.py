"""Carrying rtrace's current run into threads and executor jobs, and nothing else.

While tracing is on, a thread started (or a ``ThreadPoolExecutor`` job submitted)
inside a traced run starts with that run as its current run, so its runs nest
under it. The starter's other context variables and its ``decimal`` context stay
behind, exactly as under plain Python; outside a run nothing is changed at all.
Installed with the first tracing user (``trace_to``, ``rtrace run``), uninstalled
with the last: the patched methods are then the original objects again.
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.thread import _WorkItem
from concurrent.futures.thread import _worker as _executor_worker
from typing import Any

from rtrace.core.process.patching import Patch, SharedPatches

_var: contextvars.ContextVar[Any] | None = None
_pending: dict[threading.Thread, Any] = {}  # started threads -> the run to make current in them


def _start(self: threading.Thread) -> None:
    var = _var
    run = var.get() if var is not None and _SHARED.users else None
    # An executor's worker outlives the job that started it: its jobs get their run from submit().
    if run is not None and getattr(self, "_target", None) is not _executor_worker:
        _pending[self] = run
    try:
        _START.original(self)
    except BaseException:
        _pending.pop(self, None)
        raise


def _bootstrap_inner(self: threading.Thread) -> None:
    # Runs in the new thread, whose context starts empty: only rtrace's variable is set.
    # (Below Thread.run, so a traceback of the thread's exception shows no rtrace frame.)
    run = _pending.pop(self, None)
    if run is not None and _var is not None:
        _var.set(run)
    _BOOTSTRAP.original(self)


_submitting = threading.local()  # the run a submit() in this thread is handing to its work item
_item_runs: dict[Any, Any] = {}  # work items -> the run to make current while they run


def _submit(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    var = _var
    run = var.get() if var is not None and _SHARED.users else None
    if run is None:
        return _SUBMIT.original(self, fn, *args, **kwargs)
    _submitting.run = run
    try:
        return _SUBMIT.original(self, fn, *args, **kwargs)
    finally:
        _submitting.run = None


def _item_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _ITEM_INIT.original(self, *args, **kwargs)
    run = getattr(_submitting, "run", None)
    if run is not None:
        _item_runs[self] = run


def _item_run(self: Any) -> Any:
    # Around the work item's own run(), which catches the job's exception: the traceback a
    # failing job's future re-raises shows no rtrace frame. The worker thread is reused,
    # so the run is reset afterwards.
    run = _item_runs.pop(self, None)
    var = _var
    if run is None or var is None:
        return _ITEM_RUN.original(self)
    token = var.set(run)
    try:
        return _ITEM_RUN.original(self)
    finally:
        var.reset(token)


_START = Patch(threading.Thread, "start", _start)
_BOOTSTRAP = Patch(threading.Thread, "_bootstrap_inner", _bootstrap_inner)
_SUBMIT = Patch(ThreadPoolExecutor, "submit", _submit)
_ITEM_INIT = Patch(_WorkItem, "__init__", _item_init)
_ITEM_RUN = Patch(_WorkItem, "run", _item_run)
PATCHES = (_START, _BOOTSTRAP, _SUBMIT, _ITEM_INIT, _ITEM_RUN)


def _forget() -> None:
    _pending.clear()
    _item_runs.clear()


_SHARED = SharedPatches(lambda: PATCHES, on_last=_forget)


def install(var: contextvars.ContextVar[Any]) -> None:
    """One more user of thread propagation of ``var`` (the current-run variable)."""
    global _var
    _var = var
    _SHARED.acquire()


def uninstall() -> None:
    """One user fewer; with none left, the original methods are back."""
    _SHARED.release()


def installed() -> bool:
    return _SHARED.users > 0
