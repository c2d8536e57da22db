"""Replaying a recorded log through callback handlers, in recorded order and timing.

Each run event goes back through an rtrace manager for the same run id, so
handlers (rtrace's, LangChain's, a user's own) receive the calls they received
live: ``on_retriever_start(None, query, run_id=…, parent_run_id=…, tags=…,
metadata=…, name=…)``, ``on_retriever_end([Document…])``, ``on_retriever_error(
exc)``, ``on_retry(state)``, ``on_text``, ``on_custom_event``, and LangChain's
chain/tool/llm hooks for recorded parents. Documents come back as ``Document``
objects (with their id and score), errors as exceptions of a class carrying the
recorded type name, message and traceback. The recorded ``duration_ms`` is
passed along, so a ``JsonlHandler`` reproduces the original events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from rtrace.core import events
from rtrace.core.read.reader import Event
from rtrace.core.read.trees import _kind
from rtrace.core.record.dispatch import handle_event
from rtrace.core.record.documents import Document
from rtrace.core.record.managers import CallbackManager, CallbackManagerForRetrieverRun
from rtrace.core.times import ts_seconds


class ScoredDocument(Document):
    """A replayed document that keeps its recorded score (and the score's kind, the id's source)."""

    __slots__ = ("score", "score_kind", "id_source")

    def __init__(self, page_content: str, metadata: dict[str, Any] | None = None, id: str | None = None,
                 score: float | None = None, score_kind: str | None = None, id_source: str | None = None) -> None:
        super().__init__(page_content, metadata, id)
        self.score = score
        self.score_kind = score_kind
        self.id_source = id_source



_error_classes: dict[str, type[Exception]] = {}
MAX_ERROR_CLASSES = 1024  # a hostile log may name a million error types: remember only this many


def recorded_error(error: Any) -> Exception:
    """An exception whose class is named as recorded, with the recorded message and traceback."""
    info = error if isinstance(error, dict) else {}
    name = str(info.get("type") or "Error").replace("\x00", "\ufffd")  # a class name cannot hold NUL
    cls = _error_classes.get(name)
    if cls is None:
        safe = name if name.isidentifier() else "RecordedError"
        cls = type(safe, (Exception,), {"__module__": "rtrace.replayed"})
        cls.__name__ = name
        cls.__qualname__ = name
        if len(_error_classes) < MAX_ERROR_CLASSES:
            _error_classes[name] = cls
    exc = cls(str(info.get("message", "")))
    tb = info.get("traceback")
    if isinstance(tb, str):
        exc.__rtrace_traceback__ = tb  # type: ignore[attr-defined]
    return exc


class _Outcome:
    def __init__(self, exc: Exception | None) -> None:
        self._exc = exc
        self.failed = exc is not None

    def exception(self) -> Exception | None:
        return self._exc

    def result(self) -> None:
        return None


class _Action:
    def __init__(self, sleep: float) -> None:
        self.sleep = sleep


class RecordedRetryState:
    """What tenacity's ``RetryCallState`` offers handlers, rebuilt from a ``retry`` event."""

    def __init__(self, ev: dict[str, Any]) -> None:
        self.attempt_number = ev.get("attempt") if isinstance(ev.get("attempt"), int) else 1
        next_sleep = ev.get("next_sleep_s")
        slept = ev.get("slept_s")
        self.upcoming_sleep = float(next_sleep) if isinstance(next_sleep, (int, float)) else 0.0
        self.idle_for = (float(slept) if isinstance(slept, (int, float)) else 0.0) + self.upcoming_sleep
        self.next_action = _Action(self.upcoming_sleep) if isinstance(next_sleep, (int, float)) else None
        outcome = ev.get("outcome")
        exc = ev.get("exception")
        if outcome == "failed":
            self.outcome: _Outcome | None = _Outcome(recorded_error(exc))
        elif outcome == "success":
            self.outcome = _Outcome(None)
        else:
            self.outcome = None


def documents(ev: dict[str, Any], key: str = "documents") -> list[ScoredDocument]:
    """The recorded documents (entries that are not objects are left out; see ``has_document_list``)."""
    docs = ev.get(key)
    out: list[ScoredDocument] = []
    for d in docs if isinstance(docs, list) else ():
        if not isinstance(d, dict):
            continue
        meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
        score = d.get("score") if isinstance(d.get("score"), (int, float)) else None
        content = d.get("page_content") if isinstance(d.get("page_content"), str) else ""
        kind = d.get("score_kind") if isinstance(d.get("score_kind"), str) else None
        source = d.get("id_source") if isinstance(d.get("id_source"), str) else None
        out.append(ScoredDocument(content, dict(meta), d.get("id"), score, kind, source))
    return out


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


PARENT_KINDS = ("chain", "tool", "llm")  # the LangChain parents rtrace records, with their hooks


@dataclass
class ReplayStats:
    events: int = 0
    runs: int = 0
    skipped: int = 0
    warnings: dict[str, int] = field(default_factory=dict)  # values left out, counted

    def warn(self, what: str) -> None:
        self.warnings[what] = self.warnings.get(what, 0) + 1


class Replayer:
    """Sends recorded events to ``handlers``; ``speed`` scales the recorded gaps (``None``: no waiting)."""

    def __init__(self, handlers: Sequence[Any], speed: float | None = 1.0,
                 sleep: Callable[[float], None] = time.sleep, max_gap: float = 5.0) -> None:
        self.handlers = list(handlers)
        self.speed = speed
        self.sleep = sleep
        self.max_gap = max_gap  # a long idle stretch in a recording is not worth waiting through
        self.runs: dict[str, CallbackManagerForRetrieverRun] = {}
        self.stats = ReplayStats()
        self._last_ts: float | None = None

    def replay(self, events: Iterable[Event]) -> ReplayStats:
        for ev in events:
            self._wait(ev.data.get("ts"))
            self.feed(ev.data)
        return self.stats

    def _wait(self, ts: Any) -> None:
        when = ts_seconds(ts)
        if when is None:
            return
        if self.speed is not None and self._last_ts is not None and when > self._last_ts:
            self.sleep(min(self.max_gap, (when - self._last_ts) / self.speed))
        self._last_ts = when

    def feed(self, data: dict[str, Any]) -> None:
        """Replay one event."""
        name = data.get("event")
        run_id = _uuid(data.get("run_id"))
        if not isinstance(name, str) or (run_id is None and name not in events.SESSION_EVENTS):
            self.stats.skipped += 1
            return
        self.stats.events += 1
        if name in events.SESSION_EVENTS:  # a session has no callback: nothing to send
            return
        kind_phase = _kind(name)
        if kind_phase is not None:
            kind, phase = kind_phase
            if kind == "retriever":
                self._retriever(phase, data, run_id)  # type: ignore[arg-type]
            elif kind in PARENT_KINDS:
                self._parent(kind, phase, data, run_id)  # type: ignore[arg-type]
            else:  # a hook is looked up by name: never one a log names (on_<anything>_start)
                self.stats.events -= 1
                self.stats.skipped += 1
            return
        rm = self._run(data, run_id)  # type: ignore[arg-type]
        if name == events.RETRY:
            rm.on_retry(RecordedRetryState(data))
        elif name == events.TEXT:
            rm.on_text(str(data.get("text", "")))
        elif name == events.CUSTOM_EVENT:  # with its own recorded tags and metadata
            handle_event(self.handlers, "on_custom_event", "ignore_custom_event", str(data.get("custom_name", "")),
                         data.get("data"), run_id=run_id, tags=data.get("tags") or [], metadata=data.get("metadata") or {})
        else:
            self.stats.skipped += 1

    def _manager(self, data: dict[str, Any]) -> CallbackManager:
        tags = data.get("tags") if isinstance(data.get("tags"), list) else []
        meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        return CallbackManager(handlers=list(self.handlers), inheritable_handlers=list(self.handlers),
                               parent_run_id=_uuid(data.get("parent_run_id")), tags=list(tags), metadata=dict(meta))

    def _run(self, data: dict[str, Any], run_id: UUID) -> CallbackManagerForRetrieverRun:
        rm = self.runs.get(str(run_id))
        if rm is None:  # an event of a run whose start is not in the log: address it anyway
            rm = CallbackManagerForRetrieverRun(run_id=run_id, handlers=list(self.handlers), inheritable_handlers=[],
                                                parent_run_id=_uuid(data.get("parent_run_id")))
        return rm

    def _retriever(self, phase: str, data: dict[str, Any], run_id: UUID) -> None:
        extra = {"duration_ms": data["duration_ms"]} if isinstance(data.get("duration_ms"), (int, float)) else {}
        if phase == "start":
            self.stats.runs += 1
            fields = {k: data[k] for k in events.REQUEST_FIELDS if data.get(k) is not None}  # passed back as recorded
            if isinstance(data.get("input_documents"), list):
                fields["input_documents"] = documents(data, "input_documents")
            rm = self._manager(data).on_retriever_start(None, data.get("query"), run_id=run_id, name=data.get("name"),
                                                        **fields)
            self.runs[str(run_id)] = rm
        elif phase == "end":
            docs = data.get("documents")
            if docs is not None and not (isinstance(docs, list) and all(isinstance(d, dict) for d in docs)):
                self.stats.warn("retriever_end events whose documents are not a list of objects (replayed without those)")
            if isinstance(data.get("score_source"), str):
                extra["score_source"] = data["score_source"]
            if events.recorded_count(data) is not None:  # what the retriever returned, though the log may keep fewer
                extra["document_count"] = data["document_count"]
            self._run(data, run_id).on_retriever_end(documents(data), **extra)
            self.runs.pop(str(run_id), None)
        else:
            self._run(data, run_id).on_retriever_error(recorded_error(data.get("error")), **extra)
            self.runs.pop(str(run_id), None)

    def _parent(self, kind: str, phase: str, data: dict[str, Any], run_id: UUID) -> None:
        ignore = {"chain": "ignore_chain", "tool": "ignore_agent", "llm": "ignore_llm"}.get(kind)
        parent = _uuid(data.get("parent_run_id"))
        extra = {"duration_ms": data["duration_ms"]} if isinstance(data.get("duration_ms"), (int, float)) else {}
        if phase == "start":
            first: Any = {"chain": {}, "tool": "", "llm": []}.get(kind, {})
            handle_event(self.handlers, f"on_{kind}_start", ignore, {"name": data.get("name")}, first,
                         run_id=run_id, parent_run_id=parent, tags=data.get("tags") or [],
                         metadata=data.get("metadata") or {}, name=data.get("name"))
        elif phase == "end":
            handle_event(self.handlers, f"on_{kind}_end", ignore, {}, run_id=run_id, parent_run_id=parent, **extra)
        else:
            handle_event(self.handlers, f"on_{kind}_error", ignore, recorded_error(data.get("error")),
                         run_id=run_id, parent_run_id=parent, **extra)
