"""Selecting runs and traces: the filters ``rtrace show`` and ``rtrace filter`` share.

``RunFilter`` is a conjunction of plain predicates over a ``Run``. ``select``
applies it to a stream of traces: by default a trace is kept whole when any of
its runs matches (the matching runs are reported so they can be highlighted);
with ``runs_only`` only the matching runs are kept.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import translate
from typing import Any

from rtrace.core import events
from rtrace.core.errors import UsageError
from rtrace.core.read.attempts import retry_attempt
from rtrace.core.read.trees import ERROR, INCOMPLETE, MAX_SESSIONS, OK, Run, Session, Trace

STATUSES = (OK, ERROR, INCOMPLETE)

Predicate = Callable[[Run], bool]


def _regex(pattern: str, what: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as e:
        raise UsageError(f"{what}: not a valid regular expression: {pattern!r} ({e})") from None


@dataclass
class RunFilter:
    """Run predicates; every one given must hold."""

    names: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    meta: list[tuple[str, str]] = field(default_factory=list)
    status: str | None = None
    retried: bool = False
    min_ms: float | None = None
    max_ms: float | None = None
    query: str | None = None
    doc: str | None = None
    run_prefix: str | None = None
    trace_prefix: str | None = None
    since: str | None = None
    until: str | None = None
    session_prefix: str | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise UsageError(f"--status is one of {', '.join(STATUSES)}, not {self.status!r}")
        self._predicates = self._build()

    @property
    def active(self) -> bool:
        return bool(self._predicates)

    @property
    def by_short_id(self) -> bool:
        """Whether it names runs or traces by id (``--run``, ``--trace``): a short id is unique over
        every id read before it, so a reader that skips traces cannot tell."""
        return bool(self.short_ids_named)

    @property
    def short_ids_named(self) -> list[str]:
        """The short ids (or id prefixes) ``--run`` and ``--trace`` name, as they are compared."""
        return [p.lower() for p in (self.run_prefix, self.trace_prefix) if p]

    def _build(self) -> list[Predicate]:
        p: list[Predicate] = []
        if self.names:
            # fnmatchcase(name, n) is re.match(translate(n), name): one pattern for them all, matched once a run
            names = re.compile("|".join(f"(?:{translate(n)})" for n in self.names)).match
            p.append(lambda r: names(r.name) is not None)
        for tag in self.tags:
            p.append(lambda r, t=tag: t in r.tags)
        for key, value in self.meta:
            p.append(lambda r, k=key, v=value: k in r.metadata and str(r.metadata[k]) == v)
        if self.status:
            status = self.status
            p.append(lambda r: r.status == status)
        if self.retried:
            p.append(lambda r: bool(r.retries))
        if self.min_ms is not None:
            lo = self.min_ms
            p.append(lambda r: r.duration_ms is not None and r.duration_ms >= lo)
        if self.max_ms is not None:
            hi = self.max_ms
            p.append(lambda r: r.duration_ms is not None and r.duration_ms <= hi)
        if self.query is not None:
            q = _regex(self.query, "--query")
            p.append(lambda r: r.query is not None and q.search(r.query) is not None)
        if self.doc is not None:
            d = _regex(self.doc, "--doc")
            p.append(lambda r: any(isinstance(x.get("page_content"), str) and d.search(x["page_content"]) for x in r.documents))
        # An id prefix, or the short id rtrace shows (``rtrace.core.read.shortids``), which names one run.
        if self.run_prefix:
            rp = self.run_prefix.lower()
            p.append(lambda r: r.short_id == rp or r.run_id.startswith(rp))
        if self.trace_prefix:
            tp = self.trace_prefix.lower()
            p.append(lambda r: r.trace is not None and (r.trace.short_id == tp or r.trace.trace_id.startswith(tp)))
        if self.since:
            since = self.since
            p.append(lambda r: (r.ts or "") >= since)
        if self.until:
            until = self.until
            p.append(lambda r: r.ts is not None and r.ts <= until)
        if self.session_prefix:
            sp = self.session_prefix.lower()
            p.append(lambda r: (r.session_id or "").startswith(sp))
        return p

    def __call__(self, run: Run) -> bool:
        predicates = self._predicates
        if len(predicates) == 1:  # the usual filter: no generator a run
            return predicates[0](run)
        return all(pred(run) for pred in predicates)

    def line_hint(self) -> Callable[[dict[str, Any]], bool] | None:
        """A test on single events that every trace this filter keeps passes on one of its lines.

        None when no such cheap test is known (then every trace must be built to decide).
        Used by ``skim`` to drop traces that cannot match before building them.
        """
        by_name = self.event_hint()
        if by_name is not None:
            return lambda ev: by_name(ev["event"])
        if self.retried:
            return _retry_line
        return None

    def event_hint(self) -> Callable[[str], bool] | None:
        """``line_hint`` when it reads nothing of a line but its event's name (``skim`` then asks
        once per name, not once per line); None when it reads more."""
        if self.status == ERROR:
            return lambda name: name.endswith("_error")
        if self.status == INCOMPLETE:
            return lambda name: False  # only traces that never finish (skim hands those over at the end)
        return None


def _retry_line(ev: dict[str, Any]) -> bool:
    """A retry event, or the start of a LangChain ``with_retry`` attempt (trees._retried_attempt)."""
    return ev["event"] == events.RETRY or retry_attempt(ev.get("tags")) is not None


@dataclass(eq=False)
class Selected:
    """A kept trace, the runs in it that matched, and whether to keep only those."""

    trace: Trace
    matched: list[Run]
    runs_only: bool = False

    @property
    def matched_ids(self) -> set[str]:
        return {r.run_id for r in self.matched}


def select(items: Iterable[Trace | Session], run_filter: RunFilter, *, runs_only: bool = False,
           last: int | None = None) -> Iterator[Selected | Session]:
    """Traces with a matching run (``last``: only the last N), each preceded by its session.

    A session is yielded before its first kept trace (every top-level session,
    when no filter is active: child processes' sessions only with traces of their
    own) and again when its ``session_end`` arrives, if it was shown.
    """
    tail: deque[Selected] | None = deque(maxlen=last) if last is not None else None
    # The most recent MAX_SESSIONS sessions (a log may hold a million): memory stays bounded.
    sessions: OrderedDict[str, Session] = OrderedDict()
    shown: _Recent = _Recent()
    for item in items:
        if isinstance(item, Session):
            sessions[item.session_id] = item
            sessions.move_to_end(item.session_id)
            if len(sessions) > MAX_SESSIONS:
                sessions.popitem(last=False)
            if tail is None and (item.session_id in shown or not (run_filter.active or item.is_child)):
                shown.add(item.session_id)
                yield item
            continue
        matched = [r for r in item.runs if run_filter(r)] if run_filter.active else list(item.runs)
        if not matched:
            continue
        chosen = Selected(item, matched, runs_only and run_filter.active)
        if tail is not None:
            tail.append(chosen)
            continue
        sid = item.session_id
        if sid in sessions and sid not in shown:
            shown.add(sid)
            yield sessions[sid]
        yield chosen
    if tail is not None:
        for chosen in tail:
            sid = chosen.trace.session_id
            if sid in sessions and sid not in shown:
                shown.add(sid)
                yield sessions[sid]
            yield chosen


class _Recent:
    """A set of the most recent ``MAX_SESSIONS`` ids."""

    __slots__ = ("_ids",)

    def __init__(self) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def add(self, key: str) -> None:
        self._ids[key] = None
        if len(self._ids) > MAX_SESSIONS:
            self._ids.popitem(last=False)


def parse_meta_filters(items: Iterable[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--meta takes KEY=VALUE, not {item!r}")
        out.append((key, value))
    return out


def event_lines(selected: Selected) -> Iterator[bytes]:
    """The raw log lines of a selected trace (or of its matching runs), in log order."""
    if not selected.runs_only:
        for ev in selected.trace.events:
            yield ev.raw
        return
    events = sorted((ev for run in selected.matched for ev in run.events), key=lambda e: (e.source, e.line))
    for ev in events:
        yield ev.raw
