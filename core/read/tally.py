"""``rtrace stats`` without run trees: the same numbers from one pass over the events.

Building a ``Run`` and ``Trace`` for every run (timelines, event lists, properties)
cost more than reading and parsing the log. Stats need less per run: its start
and end events, its retry count, its parent and children (self time, roots and
leaves), whether a later attempt superseded it. ``tally`` keeps just that for the
traces in flight and hands each finished trace's runs to ``StatsCollector``, in
the order ``TreeBuilder`` finishes them (so even the float sums add up in the
same order).

It follows the tree builder's rules only while the log is well formed, as
``skim`` does: every run starts once and ends once, its parent (when found)
started earlier, its later events name a run in flight. At the first event that
breaks this (a repeated run id, an end or retry of an unknown run, a run ending
twice, a non-string id or event name), or when more events of unfinished traces
are held than the builder would hold (``MAX_HELD_EVENTS``), it hands everything it
holds for the traces in flight to the ``TreeBuilder``, in log order, and the
builder (with its warnings, bounds and placeholders) takes over for the rest of
the log. The builder has seen every session event and is handed, in order, every
id it would have given a short id, so from then on it builds what it would have
built had it read the log from the start: the runs of the finished traces it never
saw leave no warning and no state that stats read (only ``late`` flags, start order
and the count of unknown event names, which stats do not show, may differ).

Short ids (``ShortIds``: unique within the log, assigned in log order) are worked
out at the end for the few slowest runs shown (``_ShortIds``), not for every run.

With run filters, a finished trace's runs that the filter does not match are left out,
as ``select(..., runs_only=True)`` leaves them out of built trees: ``_Run`` and ``_Trace``
answer what the filter asks by ``Run``'s and ``Trace``'s own rules. A filter naming short ids
(``--run``, ``--trace``) is told those of the ids that can have one of them, the ids that end
like them, which are given theirs as they are read (``_ShortIds.watch``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rtrace.core import events as names
from rtrace.core.events import recorded_count
from rtrace.core.read.attempts import retry_attempt
from rtrace.core.read.filters import RunFilter
from rtrace.core.read.reader import Event
from rtrace.core.read.shortids import MIN_LENGTH, ShortIds
from rtrace.core.read.stats import StatsCollector, counted, document_count, group_keys
from rtrace.core.read.trees import (
    ERROR,
    INCOMPLETE,
    MAX_HELD_EVENTS,
    MAX_KINDS,
    OK,
    Run,
    Trace,
    TreeBuilder,
    _kind,
    end_duration_ms,
    end_status,
    own_ms,
)

_START, _END, _TIMELINE, _OTHER, _SESSION = 1, 2, 3, 4, 5


class _Run:
    """What stats need of a run; an attribute named as one of ``Run``'s means what it means there."""

    __slots__ = ("run_id", "kind", "name", "start", "end", "outcome", "duration_ms", "doc_count", "parent", "children",
                 "retries", "superseded", "trace", "short_id")

    # The rules for what a start or end event says are ``Run``'s own (``RunFilter`` asks these too).
    metadata = Run.metadata
    tags = Run.tags
    query = Run.query
    status = Run.status
    ts = Run.ts
    documents = Run.documents
    recorded_trace_id = Run.recorded_trace_id

    def __init__(self, run_id: str, kind: str, name: str, start: dict[str, Any], trace: _Trace | None,
                 parent: _Run | None) -> None:
        self.run_id, self.kind, self.name, self.start = run_id, kind, name, start
        self.trace, self.parent = trace, parent
        self.end: dict[str, Any] | None = None
        # What the end event says (``Run.status``, ``Run.duration_ms``, ``stats.document_count``), read as it arrives.
        self.outcome = INCOMPLETE
        self.duration_ms: float | None = None
        self.doc_count: int | None = None
        self.children: list[_Run] | None = None
        # Retry events, and those of the attempts it superseded: ``len(Run.retries)`` (``--retried`` asks if any).
        self.retries = 0
        self.superseded = False
        # Its full id for now: the slowest runs get their short ids at the end (``_ShortIds.resolve``),
        # and a filter naming a short id is told those of the runs that can have it (``_ShortIds.watch``).
        self.short_id = run_id

    @property
    def session_id(self) -> str | None:
        sid = self.start.get("session_id")
        return sid if isinstance(sid, str) else None  # as ``TreeBuilder._new_run``


class _Trace:
    __slots__ = ("root", "runs", "events", "open", "short_id")

    trace_id = Trace.trace_id  # ``Trace``'s rule (``RunFilter`` asks it)

    def __init__(self) -> None:
        self.root: _Run
        self.runs: list[_Run] = []
        self.events: list[tuple[int, Event]] = []  # (position in the stream, event): to hand over in log order
        self.open = 0
        self.short_id: str | None = None  # only asked by a filter naming a short id (``_ShortIds.watch``)


class _ShortIds:
    """``ShortIds`` for runs of which only the few slowest are shown: the ids in the order the builder
    would give them short ids, and the short ids of just those runs, worked out at the end.

    An id's short id is the shortest tail (7 characters or more, dashes dropped) that no earlier
    id took. Two ids' tails can only be equal when their last 7 characters are, so replaying the
    ids that end like the ones asked for gives those their short ids, and skips assigning one to
    every run of the log (a dict of 400,000 keys, a cache miss on each).
    """

    __slots__ = ("ids", "ends", "live", "known")

    def __init__(self, watch: Iterable[str] = ()) -> None:
        self.ids: list[str] = []
        # A filter names these short ids (``RunFilter.short_ids_named``): the ids that can have one of
        # them, those that end like them, get theirs as they come (``ShortIds`` over just those ids).
        self.ends = {_end(w) for w in watch}
        self.live = ShortIds()
        self.known: dict[str, str] = {}  # id -> its short id, for those ids

    def watch(self, full: str) -> None:
        """``ids.append``, and the short id of an id that ends like a watched one."""
        self.ids.append(full)
        if _end(full) in self.ends:
            self.known[full] = self.live(full)

    def resolve(self, wanted: list[str]) -> dict[str, str]:
        """The short ids of ``wanted`` (ids passed in before), as ``ShortIds`` would have given them."""
        if not wanted:
            return {}
        ends = {_end(w) for w in wanted}
        replay = ShortIds()
        for full in self.ids:
            tail = full[-MIN_LENGTH - 1:]  # a UUID's: no dash in it, so the end is its last 7 characters
            if (tail[1:] if len(tail) > MIN_LENGTH and "-" not in tail else _end(full)) in ends:
                replay(full)
        return {w: replay(w) for w in wanted}

    def hand_over(self, short_ids: ShortIds) -> None:
        for full in self.ids:
            short_ids(full)
        self.ids = []


def _end(full_id: str) -> str:
    """The last ``MIN_LENGTH`` characters of an id without its dashes (what its short ids end with)."""
    return full_id.replace("-", "")[-MIN_LENGTH:]


def _phase(name: str) -> tuple[int, str]:
    """What an event is (a session's, or to a run: ``trees._kind``, ``TIMELINE_EVENTS``), with the run's kind
    for a start and the run's status for an end (``trees.end_status``: an end named ``*_error`` is an error)."""
    if name in names.SESSION_EVENTS:
        return _SESSION, ""
    kind_phase = _kind(name)
    if kind_phase is not None:
        if kind_phase[1] == "start":
            return _START, kind_phase[0]
        return _END, end_status({"event": name})
    return (_TIMELINE if name in names.TIMELINE_EVENTS else _OTHER), ""


def _retried(run: _Run, parent: _Run) -> None:
    """``trees._retried_attempt``: a LangChain ``with_retry`` attempt supersedes the failed one before it."""
    previous = None
    for sibling in reversed(parent.children):  # type: ignore[arg-type]
        if sibling is not run and sibling.name == run.name and sibling.kind == run.kind:
            previous = sibling
            break
    if previous is None or previous.status != ERROR or previous.superseded:
        return
    previous.superseded = True
    run.retries += previous.retries + 1


def tally(events: Iterable[Event], collector: StatsCollector, builder: TreeBuilder,
          run_filter: RunFilter | None = None) -> bool:
    """Every run of ``events`` that ``run_filter`` matches into ``collector``, as ``collector.add`` of
    each matching run of each trace ``builder.build(events)`` yields (what ``select`` with ``runs_only``
    keeps); ``builder`` gets the session events (and, past a malformation, everything) and so its
    warnings and sessions are what they would be. False when the builder took over."""
    # ``matches``: for the tally's runs; ``built_matches``: for the builder's (they have their short ids).
    built_matches = matches = run_filter if run_filter is not None and run_filter.active else None
    short_ids = _ShortIds(run_filter.short_ids_named if run_filter is not None else ())
    note = short_ids.ids.append
    if short_ids.ends:
        note = short_ids.watch
        matches = _with_short_ids(run_filter, short_ids.known)  # type: ignore[arg-type]
    it = iter(events)
    runs: dict[str, _Run] = {}  # the runs of the traces in flight
    inflight: dict[_Trace, None] = {}  # the traces in flight, in the order they started
    phases: dict[str, tuple[int, str]] = {}  # event name -> (what it is, run kind or status), cached
    unknown = builder.unknown_events
    session_end, retry = names.SESSION_END, names.RETRY
    started = held = n = 0
    collector.defer_total()
    handed_over = False  # the event that stopped the pass was already counted here
    for ev in it:
        n += 1
        data = ev.data
        name = data.get("event")
        if type(name) is not str:
            break
        phase = phases.get(name)
        if phase is None:
            phase = _phase(name)
            if len(phases) < MAX_KINDS:
                phases[name] = phase
        what = phase[0]
        if what == _SESSION:
            if name == session_end and inflight:
                sid = data.get("session_id")
                sid = sid if isinstance(sid, str) else "?"
                # As the builder does: a session's traces still open end at its session_end.
                for trace in list(inflight):
                    if trace.root.session_id == sid and all(r.session_id == sid for r in trace.runs if r.end is None):
                        del inflight[trace]
                        held -= _count(trace, collector, runs, matches)
            builder.feed(ev)  # sessions are the builder's (nothing of its own is in flight: it ends no trace)
            continue
        run_id = data.get("run_id")
        if type(run_id) is not str:
            break
        if what == _START:
            if run_id in runs:
                break  # a repeated run id
            parent_id = data.get("parent_run_id")
            if parent_id is not None and type(parent_id) is not str:
                break
            kind = phase[1]
            rname = data.get("name")
            if type(rname) is not str:
                rname = str(rname) if rname is not None else kind
            parent = runs.get(parent_id) if parent_id else None
            if parent is not None:
                trace = parent.trace  # type: ignore[assignment]
                note(run_id)
                run = _Run(run_id, kind, rname, data, trace, parent)
                if parent.children is None:
                    parent.children = [run]
                else:
                    parent.children.append(run)
                tags = data.get("tags")
                if tags and retry_attempt(tags) is not None:
                    _retried(run, parent)
            else:
                trace = _Trace()
                note(run_id)
                run = trace.root = _Run(run_id, kind, rname, data, trace, None)
                inflight[trace] = None
                started += 1
                trace_id = data.get("trace_id")  # ``Trace.trace_id``: as recorded, or the root's id
                if trace_id != run_id:  # (the same id again would get the same short id)
                    note(trace_id if type(trace_id) is str and trace_id else run_id)
            trace.runs.append(run)
            trace.open += 1
            runs[run_id] = run
        elif what == _END:
            run = runs.get(run_id)  # type: ignore[assignment]
            if run is None or run.end is not None:
                break  # the end of a run whose start is not here, or a second end
            run.end = data
            run.outcome = status = phase[1]
            d = data.get("duration_ms")
            run.duration_ms = d if type(d) is float else end_duration_ms(data)  # a float is taken as it is
            if run.kind == "retriever":  # ``stats.document_count``: a count the end records, else its documents'
                count = recorded_count(data) if status == OK else 0
                run.doc_count = count if count is not None else document_count("retriever", status, data)
            trace = run.trace  # type: ignore[assignment]
            trace.open -= 1
        else:
            if what == _OTHER and (name in unknown or len(unknown) < MAX_KINDS):
                unknown[name] = unknown.get(name, 0) + 1
            run = runs.get(run_id)  # type: ignore[assignment]
            if run is None:
                if what == _TIMELINE:
                    break  # a retry or text of a run whose start is not here
                continue
            if name == retry:
                run.retries += 1
            trace = run.trace  # type: ignore[assignment]
        trace.events.append((n, ev))
        held += 1
        if trace.open == 0 and trace.root.end is not None:
            del inflight[trace]
            held -= _count(trace, collector, runs, matches)
        elif held > MAX_HELD_EVENTS:
            handed_over = True  # the builder holds no more than this either: let it decide what to show
            break
    else:
        for trace in list(inflight):  # the end of the log: what is still open is incomplete
            _count(trace, collector, runs, matches)
        collector.settle_total()
        named = set(short_ids.known.values())  # the slowest runs given a short id already
        collector.rename_slowest(short_ids.resolve([s.short_id for s in collector.slowest if s.short_id not in named]))
        return True
    collector.settle_total()  # the builder's runs count in the total as they come
    # The builder's short ids as if it had assigned them all; the slowest so far get theirs.
    named = set(short_ids.known.values())  # the slowest runs given a short id already
    short_ids.hand_over(builder.short_ids)
    collector.rename_slowest({s.short_id: builder.short_ids(s.short_id) for s in collector.slowest
                              if s.short_id not in named})
    # Not well formed (or too much held): the builder takes over from here.
    builder._traces_started = started - len(inflight)  # noqa: SLF001 (its count of traces, for the order of later ones)
    backlog = sorted((item for trace in inflight for item in trace.events), key=lambda item: item[0])
    for _, held_ev in backlog:  # the builder counts the unknown events it is handed itself
        name = held_ev.data["event"]
        count = unknown.get(name)
        if count is not None and _phase(name)[0] == _OTHER:
            if count > 1:
                unknown[name] = count - 1
            else:
                del unknown[name]
    feed = builder.feed
    for _, held_ev in backlog:
        _count_built(feed(held_ev), collector, built_matches)
    if not handed_over:
        _count_built(feed(ev), collector, built_matches)
    for rest in it:
        _count_built(feed(rest), collector, built_matches)
    _count_built(builder.finish(), collector, built_matches)
    return False


def _with_short_ids(run_filter: RunFilter, known: dict[str, str]) -> Callable[[Any], bool]:
    """``run_filter`` for a filter naming short ids: a run and its trace are first given theirs, if they
    can have a named one (``known``). Any other id keeps its full id as its short id (the slowest runs
    are renamed at the end): it cannot equal a named short id, whose last 7 characters are its own.
    No full id is a ``known`` short id either, unless it ends like one, and then it is in ``known`` too."""
    def matches(run: _Run) -> bool:
        run.short_id = known.get(run.run_id, run.run_id)
        trace = run.trace
        root = trace.root  # type: ignore[union-attr]
        linked = root.start.get("trace_id")  # the trace id the builder gives a short id: as the root started
        trace.short_id = known.get(linked if type(linked) is str and linked else root.run_id)  # type: ignore[union-attr]
        return run_filter(run)  # type: ignore[arg-type]

    return matches


def _count_built(items: Iterable[Any], collector: StatsCollector, matches: Callable[[Any], bool] | None) -> None:
    for item in items:
        if isinstance(item, Trace):
            for run in item.runs:
                if matches is None or matches(run):
                    collector.add(run)


def _count(trace: _Trace, collector: StatsCollector, runs: dict[str, _Run], matches: Callable[[Any], bool] | None) -> int:
    """``collector.add`` for each run of a finished trace that ``matches`` (None: every run), from what
    ``_Run`` keeps; the trace is forgotten (its runs leave ``runs``). Returns the number of events it held."""
    keep, slow = collector._keep, collector._slow  # noqa: SLF001 (the slowest so far: most runs are not)
    by = collector.by
    by_name = by == "name"
    count_retriever = collector.count_retriever
    for run in trace.runs:  # parents before their children
        del runs[run.run_id]
        if matches is not None and not matches(run):
            run.parent = run.children = run.trace = None
            continue
        d = run.duration_ms
        if keep and d is not None and (len(slow) < keep or d > slow[0][0]):
            collector.consider(run, d)
        kind = run.kind
        if run.superseded:  # a superseded attempt is a retry of the next
            pass
        elif kind == "retriever" or counted(kind, run.metadata):  # chains, tools and LLMs are parents, not retrieval
            children = run.children
            if d is None:
                own = None
            elif children:
                own = own_ms(d, run.start.get("ts"), [(c.start.get("ts"), c.duration_ms) for c in children])
            else:
                own = d  # a leaf's own time is its time
            n_docs = run.doc_count if run.end is not None else document_count(kind, INCOMPLETE, None)
            facts = (run.outcome, run.retries, n_docs, d, own)
            if by_name and kind == "retriever":
                count_retriever(facts, run.name)
            else:
                collector.count(facts, group_keys(run, by), kind == "retriever")  # type: ignore[arg-type]
        run.parent = run.children = run.trace = None  # no cycles left: freed as soon as it is dropped
    held = len(trace.events)
    trace.events = []
    return held
