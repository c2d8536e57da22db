"""Event fields built from live objects: exceptions, tenacity retry states, the process."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

from rtrace.core.events import REQUEST_FIELDS
from rtrace.core.record.encode import MAX_TRACEBACK, clip


# Frames kept per traceback: the innermost, where it was raised. An exception travelling
# through N nested runs is recorded N times; whole tracebacks would make that N² bytes.
MAX_FRAMES = 30


def error_fields(error: BaseException | None, with_traceback: bool = True) -> dict[str, Any] | None:
    """``{type, message, traceback}`` for an exception (never raises; every string bounded)."""
    if error is None:
        return None
    try:
        message = clip(str(error))
    except Exception:
        message = f"<{type(error).__name__} (str failed)>"
    tb = getattr(error, "__rtrace_traceback__", None)  # a replayed error keeps its recorded one
    if with_traceback and tb is None:
        tb = format_traceback(error)
    elif type(tb) is str:
        tb = clip(tb, MAX_TRACEBACK)
    return {"type": clip(type(error).__name__, 1000), "message": message, "traceback": tb}


def format_traceback(error: BaseException) -> str | None:
    """The traceback python would print, limited to the innermost ``MAX_FRAMES`` frames."""
    try:
        frames = 0
        t = error.__traceback__
        while t is not None and frames <= MAX_FRAMES:
            frames += 1
            t = t.tb_next
        te = traceback.TracebackException(type(error), error, error.__traceback__, limit=-MAX_FRAMES,
                                          max_group_depth=3, max_group_width=5)
        lines = list(te.format())
        if frames > MAX_FRAMES and lines and lines[0].startswith("Traceback"):
            lines.insert(1, f"  [outer frames omitted: only the innermost {MAX_FRAMES} are recorded]\n")
        return clip("".join(lines), MAX_TRACEBACK)
    except Exception:
        return None


def retry_fields(retry_state: Any) -> dict[str, Any]:
    """Attempt, outcome, exception and sleeps from a tenacity ``RetryCallState``.

    tenacity calls ``before_sleep`` after adding the coming sleep to ``idle_for``,
    so the time already slept is ``idle_for - upcoming_sleep``.
    """
    attempt = getattr(retry_state, "attempt_number", None)
    upcoming = getattr(retry_state, "upcoming_sleep", None)
    next_action = getattr(retry_state, "next_action", None)
    if next_action is not None and getattr(next_action, "sleep", None) is not None:
        upcoming = next_action.sleep
    idle = getattr(retry_state, "idle_for", None)
    slept = None
    if isinstance(idle, (int, float)):
        slept = round(max(0.0, float(idle) - float(upcoming or 0.0)), 9)  # no float noise in logs
    outcome = getattr(retry_state, "outcome", None)
    status, exc = None, None
    if outcome is not None:
        try:
            if outcome.failed:
                status = "failed"
                exc = error_fields(outcome.exception(), with_traceback=False)
                if exc is not None:
                    del exc["traceback"]
            else:
                status = "success"
        except Exception:
            status = None
    return {
        "attempt": attempt if isinstance(attempt, int) else None,
        "outcome": status,
        "exception": exc,
        "slept_s": slept,
        "next_sleep_s": float(upcoming) if isinstance(upcoming, (int, float)) else None,
    }


def session_fields(version: str) -> dict[str, Any]:
    return {
        "argv": list(sys.argv),
        "pid": os.getpid(),
        "python": "%d.%d.%d" % sys.version_info[:3],
        "rtrace_version": version,
        "cwd": os.getcwd(),
    }


# What a retrieval asked for, as first-class retriever_start fields: given by the caller
# (``on_retriever_start(..., k=4)``, a framework hook), else LangChain's ``ls_*`` metadata.
REQUEST_KEYS = REQUEST_FIELDS
_LS_KEYS = (("ls_vector_store_provider", "vector_store"), ("ls_embedding_provider", "embedding_provider"),
            ("ls_embedding_model", "embedding_model"))


def request_fields(metadata: dict[str, Any] | None, given: dict[str, Any]) -> dict[str, Any]:
    """``k``, ``search_type``, ``score_threshold``, ``fetch_k``, ``vector_store``,
    ``embedding_provider``, ``embedding_model`` where known (never raises)."""
    out: dict[str, Any] = {}
    if metadata:
        for ls_key, key in _LS_KEYS:
            if ls_key in metadata:  # mostly not: LangChain names a store only for store retrievers
                value = metadata.get(ls_key)
                if isinstance(value, str) and value:
                    out[key] = value
    if not given or _REQUEST_SET.isdisjoint(given):  # on every retriever start: mostly nothing given
        return out
    for key in REQUEST_KEYS:
        value = given.get(key)
        if value is None:
            continue
        if key in ("k", "fetch_k"):
            if isinstance(value, int) and not isinstance(value, bool):
                out[key] = value
        elif key == "score_threshold":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = float(value)
        elif isinstance(value, str):
            out[key] = value
    return out


_REQUEST_SET = frozenset(REQUEST_KEYS)
