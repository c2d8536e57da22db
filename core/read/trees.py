"""Run trees assembled from a stream of events, holding only the traces in flight.

A run links to its parent by ``parent_run_id`` when the parent was seen earlier
(a writer always writes a parent's start before its child's); otherwise it is
the root of a trace of its own and flagged ``orphan``. Linking only to runs
already seen means parent cycles cannot form, and a repeated run id starts a new
run (flagged ``duplicate``) instead of corrupting the first. A trace is finished
when its root and every run in it have ended; at the end of the stream whatever
is still open is finished as ``incomplete``. Nothing here raises on odd data:
wrong types are counted in ``TreeBuilder.warnings`` and the event is skipped.
"""

from __future__ import annotations

import heapq
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rtrace.core import events
from rtrace.core.read.attempts import retry_attempt
from rtrace.core.read.reader import Event
from rtrace.core.read.shortids import ShortIds
from rtrace.core.times import ts_nanos

OK, ERROR, INCOMPLETE = "ok", "error", "incomplete"
FINISHED_MEMORY = 100_000  # run ids remembered after their trace finished (to tell "late" from "missing")
MAX_HELD_EVENTS = 50_000  # events of unfinished traces held (about 150 MB); past it the oldest are shown as they are
MAX_SESSIONS = 10_000  # sessions remembered (a header for their later traces)
MAX_KINDS = 1_000  # distinct warnings and unknown event names counted


# What a run's end event says; ``Run`` and the tree-free stats (``rtrace.core.read.tally``) both ask these.
def end_status(end: dict[str, Any] | None) -> str:
    """ok, error (an end event named ``*_error``) or incomplete (no end event)."""
    if end is None:
        return INCOMPLETE
    return ERROR if end.get("event", "").endswith("_error") else OK


def end_duration_ms(end: dict[str, Any] | None) -> float | None:
    d = (end or {}).get("duration_ms")
    return float(d) if isinstance(d, (int, float)) and not isinstance(d, bool) else None


def end_documents(end: dict[str, Any] | None) -> list[dict[str, Any]]:
    docs = (end or {}).get("documents")
    if not isinstance(docs, list):
        return []
    return [d for d in docs if isinstance(d, dict)]


def end_document_count(end: dict[str, Any] | None) -> int:
    """How many documents a run's end says it returned: its ``document_count`` (which lets a reader
    leave the documents unparsed, ``reader.COUNTED``), else the documents in it."""
    if end is None:
        return 0
    n = events.recorded_count(end)
    return n if n is not None else len(end_documents(end))


@dataclass(eq=False)
class Run:
    """One run: a retriever call (or a LangChain chain/tool/llm parent)."""

    run_id: str
    kind: str
    name: str
    parent_run_id: str | None
    session_id: str | None
    start: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    parent: Run | None = None
    timeline: list[tuple[str, Any]] = field(default_factory=list)  # ("retry"|"text"|"custom", event) or ("child", Run)
    events: list[Event] = field(default_factory=list)
    orphan: bool = False
    late: bool = False  # the parent's trace had already finished (e.g. a child process's runs, copied later)
    duplicate: bool = False
    trace: Trace | None = None
    short_id: str = ""  # unique within the log as read (``rtrace.core.read.shortids``)
    superseded: bool = False  # a failed attempt that a later attempt retried (LangChain's with_retry)

    @property
    def status(self) -> str:
        return end_status(self.end)

    @property
    def recorded_trace_id(self) -> str | None:
        for ev in (self.start, self.end):
            if ev is not None and isinstance(ev.get("trace_id"), str):
                return ev["trace_id"]
        return None

    @property
    def query(self) -> str | None:
        q = (self.start or {}).get("query")
        return q if isinstance(q, str) else None if q is None else str(q)

    @property
    def tags(self) -> list[str]:
        t = (self.start or {}).get("tags")
        return [str(x) for x in t] if isinstance(t, list) else []

    @property
    def metadata(self) -> dict[str, Any]:
        m = (self.start or {}).get("metadata")
        return m if isinstance(m, dict) else {}

    @property
    def request(self) -> dict[str, Any]:
        """What the run asked of its store (``k``, ``search_type``, ``vector_store``, ...), where recorded."""
        start = self.start
        if not start:
            return {}
        return {key: start[key] for key in events.REQUEST_FIELDS if start.get(key) is not None}

    @property
    def documents(self) -> list[dict[str, Any]]:
        return end_documents(self.end)

    @property
    def document_count(self) -> int:
        return end_document_count(self.end)

    @property
    def error(self) -> dict[str, Any] | None:
        e = (self.end or {}).get("error")
        return e if isinstance(e, dict) else None

    @property
    def duration_ms(self) -> float | None:
        return end_duration_ms(self.end)

    @property
    def ts(self) -> str | None:
        for ev in (self.start, self.end):
            if ev is not None and isinstance(ev.get("ts"), str):
                return ev["ts"]
        return None

    @property
    def retries(self) -> list[dict[str, Any]]:
        return [ev for kind, ev in self.timeline if kind == "retry"]

    @property
    def children(self) -> list[Run]:
        return [r for kind, r in self.timeline if kind == "child"]

    def walk(self) -> Iterator[Run]:
        """This run and all its descendants, depth first, in time order (no recursion: runs nest without limit)."""
        stack = [self]
        while stack:
            run = stack.pop()
            yield run
            stack.extend(reversed(run.children))


@dataclass(eq=False)
class Trace:
    """A root run and everything under it, with the log lines that made it."""

    root: Run
    runs: list[Run] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    open_runs: int = 0
    short_id: str = ""
    order: int = 0  # the how-manieth trace to start in this read (traces finish in another order)

    @property
    def trace_id(self) -> str:
        """The trace id the writer recorded for the root (a child process's root shares its parent's)."""
        return self.root.recorded_trace_id or self.root.run_id

    @property
    def session_id(self) -> str | None:
        return self.root.session_id

    @property
    def status(self) -> str:
        statuses = {r.status for r in self.runs}
        return ERROR if ERROR in statuses else INCOMPLETE if INCOMPLETE in statuses else OK


@dataclass(eq=False)
class Session:
    """One writing process: its session_start and session_end events."""

    session_id: str
    start: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    start_event: Event | None = None
    end_event: Event | None = None

    @property
    def is_child(self) -> bool:
        """A child process of a traced one (its runs usually sit in the parent's traces)."""
        start = self.start or {}
        return bool(start.get("parent_run_id") or start.get("parent_session_id"))


def _kind(event: str) -> tuple[str, str] | None:
    """("retriever", "start") for "retriever_start"; None for other events."""
    kind, _, phase = event.rpartition("_")
    if kind and phase in ("start", "end", "error") and kind != "session":
        return kind, phase
    return None


# Tags LangChain adds by itself to say where a run sits in a composition (RunnableSequence,
# RunnableParallel, RunnableBranch, with_retry): structure the tree already shows.
AUTOMATIC_TAG = re.compile(r"(?:seq:step:\d+|map:key:.*|branch:(?:\d+|default)|condition:\d+|retry:attempt:\d+)\Z", re.S)


def user_tags(tags: list[str]) -> list[str]:
    """``tags`` less LangChain's automatic ones (``AUTOMATIC_TAG``)."""
    return [t for t in tags if not AUTOMATIC_TAG.match(t)]


def _retried_attempt(run: Run, parent: Run) -> None:
    """LangChain's ``with_retry`` records each attempt as a run of its own, the second one on
    tagged ``retry:attempt:2``: present them as one call. The failed attempt before is marked
    ``superseded`` (stats count the call once) and becomes a retry of this run, carrying the
    retries it had, so ``--retried``, ``stats`` and ``show`` see retries of one call."""
    number = retry_attempt((run.start or {}).get("tags"))
    if number is None:
        return
    previous = None
    for kind, sibling in reversed(parent.timeline):
        if kind == "child" and sibling is not run and sibling.name == run.name and sibling.kind == run.kind:
            previous = sibling
            break
    if previous is None or previous.status != ERROR or previous.superseded:
        return
    previous.superseded = True
    error = previous.error or {}
    run.timeline.extend(("retry", ev) for ev in previous.retries)
    run.timeline.append(("retry", {
        "event": events.RETRY, "run_id": run.run_id, "ts": (previous.end or {}).get("ts"),
        "attempt": number - 1, "outcome": "failed",
        "exception": {"type": error.get("type"), "message": error.get("message")} if error else None,
        "slept_s": None, "next_sleep_s": None, "attempt_run_id": previous.run_id,
    }))


class TreeBuilder:
    """Feed events in log order; get sessions and finished traces back."""

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self.sessions: OrderedDict[str, Session] = OrderedDict()  # the oldest is forgotten past MAX_SESSIONS
        self.warnings: dict[str, int] = {}
        self.unknown_events: dict[str, int] = {}
        # id(trace) -> trace, in creation order; an OrderedDict, as the oldest is looked up often (oldest_open)
        self._inflight: OrderedDict[int, Trace] = OrderedDict()
        # Recently finished run ids, oldest first (bounded). An OrderedDict: evicting the oldest
        # key of a plain dict scans the deleted slots before it (6.7 s per 300,000 runs).
        self._retired_ids: OrderedDict[str, None] = OrderedDict()
        self.short_ids = ShortIds()
        self._traces_started = 0
        self._held = 0  # events of the traces in flight: what memory holds for unfinished traces

    def _warn(self, what: str) -> None:
        if what not in self.warnings and len(self.warnings) >= MAX_KINDS:
            what = "other oddities"  # a hostile log names a million kinds of oddity: count, do not list
        self.warnings[what] = self.warnings.get(what, 0) + 1

    def feed(self, ev: Event) -> list[Trace | Session]:
        """Process one event; returns what it completed (a new session, finished traces).

        Memory is bounded: past ``MAX_HELD_EVENTS`` events of unfinished traces, the
        oldest unfinished traces are returned as they are (incomplete) and forgotten,
        with a counted warning; their later events become runs of their own.
        """
        done = self._feed(ev)
        if self._held > MAX_HELD_EVENTS:
            done = done + self._evict()
        return done

    def _evict(self) -> list[Trace | Session]:
        out: list[Trace | Session] = []
        while self._held > MAX_HELD_EVENTS * 3 // 4 and self._inflight:
            trace = next(iter(self._inflight.values()))
            self._retire(trace)
            out.append(trace)
            self._warn(f"unfinished traces shown before they ended: more than {MAX_HELD_EVENTS:,} events of "
                       "unfinished traces is all rtrace holds (their later events are shown on their own)")
        return out

    def _feed(self, ev: Event) -> list[Trace | Session]:
        data = ev.data
        name = data.get("event")
        if not isinstance(name, str):
            self._warn("events without a string 'event' key")
            return []
        if name in events.SESSION_EVENTS:
            return self._session(ev, name)
        run_id = data.get("run_id")
        if not isinstance(run_id, str):
            self._warn(f"{name[:60]} events without a string run_id")
            return []
        kind_phase = _kind(name)
        if kind_phase is not None:
            kind, phase = kind_phase
            if phase == "start":
                run = self._start(ev, kind, run_id)
            else:
                run = self.runs.get(run_id) or self._placeholder(ev, kind, run_id)
                if run.end is not None:
                    self._warn("runs that ended twice")
                    run = self._placeholder(ev, kind, run_id)
                run.end = data
                run.trace.open_runs -= 1  # type: ignore[union-attr]
            self._attach_event(run, ev)
            return self._finished(run.trace)  # type: ignore[arg-type]
        if name in events.TIMELINE_EVENTS:
            run = self.runs.get(run_id) or self._placeholder(ev, "retriever", run_id)
            run.timeline.append(("custom" if name == events.CUSTOM_EVENT else name, data))
            self._attach_event(run, ev)
            return []
        if name in self.unknown_events or len(self.unknown_events) < MAX_KINDS:
            self.unknown_events[name] = self.unknown_events.get(name, 0) + 1
        run = self.runs.get(run_id)
        if run is not None:
            self._attach_event(run, ev)
        return []

    def _attach_event(self, run: Run, ev: Event) -> None:
        self._held += 1
        run.events.append(ev)
        run.trace.events.append(ev)  # type: ignore[union-attr]

    def _session(self, ev: Event, name: str) -> list[Trace | Session]:
        sid = ev.data.get("session_id")
        sid = sid if isinstance(sid, str) else "?"
        session = self.sessions.get(sid)
        new = session is None
        if session is None:
            session = self.sessions[sid] = Session(sid)
            if len(self.sessions) > MAX_SESSIONS:  # the oldest is forgotten (a million sessions in one log)
                self.sessions.popitem(last=False)
        if name == events.SESSION_START:
            session.start, session.start_event = ev.data, ev
            return [session] if new else []
        session.end, session.end_event = ev.data, ev
        # The session is over: its traces still open (Ctrl-C, SIGTERM) end here, as incomplete,
        # so they come before its footer. A trace with a run of another, live session (a child
        # process nested under this one) stays open until that run ends or the log does.
        done: list[Trace | Session] = []
        for trace in list(self._inflight.values()):
            if trace.root.session_id == sid and all(r.session_id == sid for r in trace.runs if r.end is None):
                self._retire(trace)
                done.append(trace)
        done.append(session)
        return done

    def _new_run(self, ev: Event, kind: str, run_id: str) -> Run:
        data = ev.data
        name = data.get("name")
        parent_id = data.get("parent_run_id")
        if parent_id is not None and not isinstance(parent_id, str):
            self._warn("runs with a non-string parent_run_id")
            parent_id = None
        sid = data.get("session_id")
        return Run(run_id=run_id, kind=kind, name=name if isinstance(name, str) else str(name) if name is not None else kind,
                   parent_run_id=parent_id, session_id=sid if isinstance(sid, str) else None)

    def _link(self, run: Run) -> None:
        parent = self.runs.get(run.parent_run_id) if run.parent_run_id else None
        if parent is not None and parent is not run:
            run.parent = parent
            run.trace = parent.trace
            parent.timeline.append(("child", run))
        else:
            run.orphan = run.parent_run_id is not None
            run.late = run.orphan and run.parent_run_id in self._retired_ids
            trace = Trace(root=run, order=self._traces_started)
            self._traces_started += 1
            run.trace = trace
            self._inflight[id(trace)] = trace
        if parent is not None and run.start is not None:
            _retried_attempt(run, parent)
        run.short_id = self.short_ids(run.run_id)
        if run.trace.root is run:  # type: ignore[union-attr]
            run.trace.short_id = self.short_ids(run.trace.trace_id)  # type: ignore[union-attr]
        run.trace.runs.append(run)  # type: ignore[union-attr]
        run.trace.open_runs += 1  # type: ignore[union-attr]
        self.runs[run.run_id] = run

    def _start(self, ev: Event, kind: str, run_id: str) -> Run:
        run = self._new_run(ev, kind, run_id)
        run.start = ev.data
        if run_id in self.runs:
            run.duplicate = True
            self._warn("repeated run ids")
        self._link(run)
        return run

    def _placeholder(self, ev: Event, kind: str, run_id: str) -> Run:
        # An end, retry or text whose start is not in the log (or was already finished).
        run = self._new_run(ev, kind, run_id)
        self._warn("events of runs whose start is not in the log")
        self._link(run)
        return run

    def _finished(self, trace: Trace) -> list[Trace | Session]:
        if trace.open_runs > 0 or trace.root.end is None:
            return []
        self._retire(trace)
        return [trace]

    def _retire(self, trace: Trace) -> None:
        if self._inflight.pop(id(trace), None) is not None:
            self._held -= len(trace.events)
        for run in trace.runs:
            if self.runs.get(run.run_id) is run:
                del self.runs[run.run_id]
            self._retired_ids[run.run_id] = None
        while len(self._retired_ids) > FINISHED_MEMORY:
            self._retired_ids.popitem(last=False)

    def finish(self) -> list[Trace]:
        """At the end of the stream: everything still open, finished as incomplete."""
        rest = list(self._inflight.values())
        for trace in rest:
            self._retire(trace)
        return rest

    def build(self, events: Iterable[Event]) -> Iterator[Trace | Session]:
        """Sessions and traces, streamed, from ``events``."""
        for ev in events:
            yield from self.feed(ev)
        yield from self.finish()

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    @property
    def traces_started(self) -> int:
        return self._traces_started

    def oldest_open(self) -> int | None:
        """The start order of the oldest trace still open (``None``: none is)."""
        for trace in self._inflight.values():  # creation order: the first is the oldest
            return trace.order
        return None


REORDER_WINDOW = 10_000  # finished traces held back at most, waiting for an older one to finish


def in_start_order(items: Iterable[Trace | Session], builder: TreeBuilder,
                   window: int = REORDER_WINDOW) -> Iterator[Trace | Session]:
    """``builder``'s output with traces in the order they started, not the order they finished.

    Concurrent traces finish in any order; a finished trace waits until every trace
    that started before it has finished too, and a session item keeps its place
    among them. At most ``window`` traces wait (memory stays bounded when one
    trace never ends): past that the oldest waiting one goes out anyway.
    """
    waiting: list[tuple[int, int, int, Trace | Session]] = []
    arrival = 0
    for item in items:
        if isinstance(item, Session):  # after the traces that started before it, before the rest
            entry = (builder.traces_started, 0, arrival, item)
        else:
            entry = (item.order, 1, arrival, item)
        arrival += 1
        heapq.heappush(waiting, entry)
        oldest = builder.oldest_open()
        while waiting and (oldest is None or waiting[0][0] <= oldest or len(waiting) > window):
            yield heapq.heappop(waiting)[3]
    while waiting:
        yield heapq.heappop(waiting)[3]


SORTS = ("start", "duration", "name")


def sort_key(sort: str) -> Any:
    """How ``--sort`` orders sibling runs: by start (as recorded), slowest first, or by name."""
    if sort == "duration":
        return lambda r: (r.duration_ms is None, -(r.duration_ms or 0.0))
    if sort == "name":
        return lambda r: r.name
    if sort == "start":
        return lambda r: ((r.start or {}).get("ts") or "")
    raise ValueError(sort)


def ordered_children(run: Run, sort: str = "start") -> list[Run]:
    """A run's children in ``sort`` order; "start" is the order their starts were recorded."""
    children = run.children
    return children if sort == "start" else sorted(children, key=sort_key(sort))


def walk_ordered(root: Run, sort: str = "start") -> Iterator[tuple[Run, int]]:
    """``root`` and its descendants with their depth, depth first, siblings in ``sort`` order (no recursion)."""
    stack = [(root, 0)]
    while stack:
        run, depth = stack.pop()
        yield run, depth
        stack.extend((child, depth + 1) for child in reversed(ordered_children(run, sort)))


def started_ns(run: Run) -> int | None:
    """When a run started, in nanoseconds since the epoch (from its start event's ``ts``)."""
    return ts_nanos((run.start or {}).get("ts"))


def _offset_ms(start: Any, later: Any) -> float | None:
    """Milliseconds from one recorded ``ts`` to another (a slice when both are in the same minute)."""
    if isinstance(start, str) and isinstance(later, str) and len(start) == len(later) == 27 and start[:17] == later[:17]:
        try:  # "2026-11-24T10:00:01.123456Z": seconds and microseconds only differ
            return ((int(later[17:19]) - int(start[17:19])) * 1_000_000 + int(later[20:26]) - int(start[20:26])) / 1000
        except ValueError:
            return None
    a, b = ts_nanos(start), ts_nanos(later)
    return None if a is None or b is None else (b - a) / 1e6


def self_ms(run: Run) -> float | None:
    """A run's own time: its duration less the time its children cover (overlapping children count once)."""
    total = run.duration_ms
    children = run.children
    if total is None or not children:
        return total
    return own_ms(total, (run.start or {}).get("ts"), [((c.start or {}).get("ts"), c.duration_ms) for c in children])


def own_ms(total: float, begin: Any, children: list[tuple[Any, float | None]]) -> float | None:
    """``self_ms`` from plain values: the run's duration and start ``ts``, its children's start ``ts`` and duration."""
    second = None  # "YYYY-MM-DDTHH:MM:SS.": a child that started in the same second is microseconds from the run
    if isinstance(begin, str) and len(begin) == 27:
        try:  # both parts parse, as ``_offset_ms`` needs them to
            int(begin[17:19])
            base_us = int(begin[20:26])
            second = begin[:20]
        except ValueError:
            pass
    spans = []
    for child_ts, took in children:
        if second is not None and type(child_ts) is str and len(child_ts) == 27 and child_ts.startswith(second):
            try:  # ``_offset_ms``'s integers, with the run's part read once
                lo = (int(child_ts[20:26]) - base_us) / 1000
            except ValueError:
                return None
        else:
            lo = _offset_ms(begin, child_ts)  # type: ignore[assignment]
            if lo is None:
                return None
        hi = total if took is None else lo + took  # a child that never ended covers the rest
        spans.append((lo if lo > 0.0 else 0.0, hi if hi < total else total))  # max(0, lo), min(total, hi)
    spans.sort()
    covered, reach = 0.0, 0.0
    for lo, hi in spans:
        if reach > lo:  # max(lo, reach)
            lo = reach
        if hi > lo:
            covered += hi - lo
            reach = hi
    left = total - covered
    return left if left > 0.0 else 0.0  # max(0.0, left)


def _run_fields(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "kind": run.kind,
        "name": run.name,
        "status": run.status,
        "parent_run_id": run.parent_run_id,
        "orphan": run.orphan,
        "ts": run.ts,
        "duration_ms": run.duration_ms,
        "query": run.query,
        "tags": run.tags,
        "metadata": run.metadata,
        "request": run.request,
        "error": run.error,
        "document_count": run.document_count if run.kind == "retriever" else None,  # returned; the log may keep fewer
        "documents": run.documents,
        "events": [{"type": kind, **{k: v for k, v in ev.items() if k not in ("v", "session_id", "run_id", "parent_run_id", "trace_id", "name")}}
                   for kind, ev in run.timeline if kind != "child"],
        "children": [],
    }


def run_to_dict(run: Run) -> dict[str, Any]:
    """A run and its subtree as plain JSON data (``rtrace show --format json``), built without recursion.

    Encode it with ``rtrace.core.jsontext.dumps``: a deep tree is deeper than orjson goes.
    """
    top = _run_fields(run)
    stack = [(run, top)]
    while stack:
        parent, parent_dict = stack.pop()
        for child in parent.children:
            child_dict = _run_fields(child)
            parent_dict["children"].append(child_dict)
            stack.append((child, child_dict))
    return top


def trace_to_dict(trace: Trace) -> dict[str, Any]:
    return {"trace_id": trace.trace_id, "session_id": trace.session_id, "status": trace.status,
            "root": run_to_dict(trace.root)}
