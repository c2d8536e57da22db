"""Dropping whole traces that cannot match a filter before any tree is built for them.

``rtrace filter`` echoes the lines of matching traces. Building run trees costs
far more than reading and parsing the lines, and most traces of a big log do
not match, so ``skim`` groups events into traces by their ids alone and lets
through only the traces that contain a line the filter could match on (a
``*_error`` line for ``--status error``), plus every session event. The tree
builder then sees exactly the events it would have built the kept traces from,
in the same order relative to each other and to session events, so what is
selected and printed does not change.

This holds because ``skim`` groups events with the tree builder's own linking
rule and only while the log is well formed: every run starts once, ends once,
and its parent (when recorded) started earlier in the same trace, or it is the
root of a trace of its own. At the first event that breaks this (a repeated id,
an end or retry of an unknown run, a run ending twice, a non-string id), it
hands everything it holds back in log order and passes the rest through
untouched: the builder then sees what it would have seen, less traces that were
complete, well formed and could not match (which leave it no warning to give).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from rtrace.core import events as names
from rtrace.core.read.reader import Event
from rtrace.core.read.trees import MAX_HELD_EVENTS

LineHint = Callable[[dict[str, Any]], bool]
EventHint = Callable[[str], bool]

_PHASES = {"start": 1, "end": 2, "error": 2}


def _phase(event: str) -> int:
    """1 for a run start, 2 for a run end or error, 0 for anything else (as trees._kind)."""
    kind, _, phase = event.rpartition("_")
    if kind and kind != "session":
        return _PHASES.get(phase, 0)
    return 0


class _Trace:
    __slots__ = ("root", "events", "open", "root_ended", "keep", "runs", "passing", "root_session", "open_sessions")

    def __init__(self, root: str) -> None:
        self.root = root
        self.events: list[tuple[int, Event]] = []
        self.open = 0
        self.root_ended = False
        self.keep = False
        self.runs: list[str] = []
        self.passing = False  # handed to the builder at a session's end: its events go straight through
        # Once passing (set by _hand_over, not here: nothing more on the path of every trace):
        # root_session, its root's session as Run.session_id; open_sessions, its unended runs' sessions.


def skim(events: Iterable[Event], hint: LineHint, event_hint: EventHint | None = None) -> Iterator[Event]:
    """``events`` less the complete, well-formed traces none of whose lines ``hint`` accepts.

    ``event_hint``: ``hint`` as a test on the event's name alone, when that is all it reads
    (``RunFilter.event_hint``): its answers are kept per name, and ``hint`` is not called.
    """
    it = iter(events)
    of_run: dict[str, _Trace] = {}  # every run id of every trace in flight
    ended: set[str] = set()  # runs of traces in flight that have ended
    phases: dict[str, int] = {}  # event name -> _phase, cached
    keeps: dict[str, bool] = {}  # event name -> event_hint's answer, cached
    session_events = names.SESSION_EVENTS
    timeline = names.TIMELINE_EVENTS
    n = 0
    held_count = 0  # events held in traces not yet finished
    for ev in it:
        n += 1
        data = ev.data
        name = data.get("event")
        if type(name) is not str:
            break
        if name in session_events:
            if name == names.SESSION_END and of_run:
                # The builder ends a session's open traces at its session_end (before its footer):
                # it must see them by then, so traces in flight are handed over. Those it ends there
                # are forgotten here too (their later events start traces of their own, as the
                # builder's do, or are the first sign of a log not well formed); the others pass through.
                for held in _held(of_run):
                    yield held
                sid = data.get("session_id")
                _hand_over(of_run, ended, sid if type(sid) is str else "?", phases)
                held_count = 0
            yield ev
            continue
        run_id = data.get("run_id")
        if type(run_id) is not str:
            break
        phase = phases.get(name)
        if phase is None:
            phase = phases[name] = _phase(name)
        if phase == 1:
            if run_id in of_run:
                break  # a repeated run id
            parent = data.get("parent_run_id")
            trace = of_run.get(parent) if type(parent) is str else None
            if trace is None:
                if parent is not None and type(parent) is not str:
                    break
                trace = _Trace(run_id)  # a root, or an orphan: a trace of its own, as the builder does
            trace.open += 1
            trace.runs.append(run_id)
            of_run[run_id] = trace
        else:
            trace = of_run.get(run_id)
            if trace is None:
                break  # an event of a run whose start is not here
            if phase == 2:
                if run_id in ended:
                    break  # a run that ended twice
                ended.add(run_id)
                trace.open -= 1
                if run_id == trace.root:
                    trace.root_ended = True
            elif name not in timeline:
                break  # an event the builder does not know: let it see everything
        if trace.passing:
            if phase == 1:
                session = data.get("session_id")
                trace.open_sessions[run_id] = session if type(session) is str else None
            elif phase == 2:
                trace.open_sessions.pop(run_id, None)
            yield ev
        else:
            trace.events.append((n, ev))
            held_count += 1
            if not trace.keep:
                if event_hint is None:
                    trace.keep = hint(data)
                else:
                    keep = keeps.get(name)
                    if keep is None:
                        keep = keeps[name] = event_hint(name)
                    trace.keep = keep
        if trace.open == 0 and trace.root_ended:
            for rid in trace.runs:
                del of_run[rid]
                ended.discard(rid)
            held_count -= len(trace.events)
            if trace.keep and not trace.passing:
                for _, held in trace.events:
                    yield held
        elif held_count > MAX_HELD_EVENTS:
            # Memory stays bounded as the builder's does: hand everything over, in log order,
            # and let the builder (and its own bound) see the rest.
            yield from _held(of_run)
            yield from it
            return
    else:
        yield from _held(of_run)
        return
    # Not well formed: everything held, in log order, then the rest as it comes.
    held = list(_held(of_run))
    yield from held
    yield ev
    yield from it


def _hand_over(of_run: dict[str, _Trace], ended: set[str], sid: str, phases: dict[str, int]) -> None:
    """After a ``session_end`` of ``sid`` (every held event already handed over): forget the traces
    the builder ends there (``TreeBuilder._session``'s rule), let the others pass through."""
    for trace in {id(t): t for t in of_run.values()}.values():
        if not trace.passing:  # its root's session, which of its runs are open and in which session: from its events
            root_session = trace.events[0][1].data.get("session_id")  # its first event is its root's start
            trace.root_session = root_session if type(root_session) is str else None
            trace.open_sessions = {}
            for _, ev in trace.events:
                data = ev.data
                phase = phases.get(data["event"], 0)
                if phase == 1:
                    session = data.get("session_id")
                    trace.open_sessions[data["run_id"]] = session if type(session) is str else None
                elif phase == 2:
                    trace.open_sessions.pop(data["run_id"], None)
            trace.passing, trace.events = True, []
        if trace.root_session == sid and all(s == sid for s in trace.open_sessions.values()):
            for rid in trace.runs:
                del of_run[rid]
                ended.discard(rid)


def _held(of_run: dict[str, _Trace]) -> Iterator[Event]:
    traces = {id(t): t for t in of_run.values()}.values()
    for _, ev in sorted((item for t in traces for item in t.events), key=lambda item: item[0]):
        yield ev
