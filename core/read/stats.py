"""Aggregates over runs in bounded memory: counts, error rates, latency percentiles.

Percentiles come from a log-bucket histogram (the DDSketch scheme): a duration
``x`` falls in bucket ``ceil(log(x) / log(g))`` with ``g = 1.01``, and a bucket
is reported as ``2 * g**i / (g + 1)``, so every percentile is within 0.5% of a
true sample value of that rank (nearest-rank method). Memory is a few thousand
counters per group, whatever the log's size; ``max`` is exact.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from rtrace.core.errors import UsageError
from rtrace.core.events import REQUEST_FIELDS, STAGE_KEY
from rtrace.core.jsontext import value_text
from rtrace.core.read.trees import ERROR, INCOMPLETE, OK, Run, end_document_count, self_ms

GAMMA = 1.01
_LOG_GAMMA = math.log(GAMMA)
_log, _ceil = math.log, math.ceil
RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)


class Histogram:
    """Durations in log buckets; quantiles within ``RELATIVE_ERROR`` of an exact sample."""

    __slots__ = ("buckets", "zeros", "count", "max")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.max: float | None = None

    def add(self, value: float) -> None:
        self.count += 1
        top = self.max
        if top is None or value > top:
            self.max = value
        if value <= 0:
            self.zeros += 1
            return
        key = _ceil(_log(value) / _LOG_GAMMA)
        try:
            self.buckets[key] += 1
        except KeyError:
            self.buckets[key] = 1

    def add_counts(self, other: Histogram) -> None:
        """``other``'s durations added to these, but for ``max`` (a caller that sums histograms keeps it)."""
        self.count += other.count
        self.zeros += other.zeros
        buckets = self.buckets
        for key, n in other.buckets.items():
            buckets[key] = buckets.get(key, 0) + n

    def quantile(self, q: float) -> float | None:
        """The nearest-rank ``q`` quantile (0 < q <= 1)."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q * self.count))
        if rank <= self.zeros:
            return 0.0
        seen = self.zeros
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen >= rank:
                value = 2 * GAMMA**key / (GAMMA + 1)
                return min(value, self.max) if self.max is not None else value
        return self.max

    def bins(self, n: int = 8) -> list[int]:
        """Counts in ``n`` bins of equal width on a log scale, from the smallest bucket to the largest.

        Zero durations count in the first bin. A small picture of the distribution
        (``rtrace stats`` draws it), not a measurement: use the quantiles for that.
        """
        if not self.count:
            return [0] * n
        if not self.buckets:
            return [self.count] + [0] * (n - 1)
        lo, hi = min(self.buckets), max(self.buckets)
        width = (hi - lo + 1) / n
        out = [0] * n
        out[0] += self.zeros
        for key, count in self.buckets.items():
            out[min(n - 1, int((key - lo) / width))] += count
        return out

    def bin_edges(self, n: int = 8) -> tuple[float, float] | None:
        """The smallest and largest duration the bins cover (bucket representatives), or None."""
        if not self.buckets:
            return None
        lo, hi = min(self.buckets), max(self.buckets)
        return 2 * GAMMA**lo / (GAMMA + 1), 2 * GAMMA**hi / (GAMMA + 1)


RunFacts = tuple[str, int, "int | None", "float | None", "float | None"]  # status, retries, documents, duration_ms, self ms


def run_facts(run: Run) -> RunFacts:
    """What the stats take from a run, computed once however many groups it counts in."""
    status = run.status
    d = run.duration_ms
    own = None if d is None else self_ms(run) if run.timeline and run.children else d  # a leaf's own time is its time
    return status, len(run.retries), document_count(run.kind, status, run.end), d, own


def document_count(kind: str, status: str, end: dict[str, Any] | None) -> int | None:
    """Documents a run returned: None for a stage that returns none of its own (a search inside a store, an embedding)."""
    return (end_document_count(end) if status == OK else 0) if kind == "retriever" else None


@dataclass(slots=True)
class GroupStats:
    """Everything ``rtrace stats`` reports for one group of runs."""

    key: str
    runs: int = 0
    errors: int = 0
    incomplete: int = 0
    retries: int = 0
    retried_runs: int = 0
    documents: int = 0
    ok_runs: int = 0
    empty: int = 0
    self_total_ms: float = 0.0  # runs' own time, less their children's (``trees.self_ms``)
    self_runs: int = 0
    durations: Histogram = field(default_factory=Histogram)

    def add(self, run: Run) -> None:
        self.add_facts(run_facts(run))

    def add_facts(self, facts: RunFacts) -> None:
        status, n_retries, n_docs, d, own = facts
        self.runs += 1
        if status != OK:
            if status == ERROR:
                self.errors += 1
            elif status == INCOMPLETE:
                self.incomplete += 1
        elif n_docs is not None:
            self.ok_runs += 1
            self.documents += n_docs
            if not n_docs:
                self.empty += 1
        if n_retries:
            self.retries += n_retries
            self.retried_runs += 1
        if d is not None:
            self.durations.add(d)
            if own is not None:
                self.self_total_ms += own
                self.self_runs += 1

    def add_counts(self, other: GroupStats) -> None:
        """``other``'s counts added to these: all but ``self_total_ms`` and the durations' ``max``
        (a float sum and a max depend on the order runs come in: a caller that sums groups keeps those)."""
        self.runs += other.runs
        self.errors += other.errors
        self.incomplete += other.incomplete
        self.retries += other.retries
        self.retried_runs += other.retried_runs
        self.documents += other.documents
        self.ok_runs += other.ok_runs
        self.empty += other.empty
        self.self_runs += other.self_runs
        self.durations.add_counts(other.durations)

    def as_dict(self) -> dict[str, Any]:
        h = self.durations

        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {
            "group": self.key,
            "runs": self.runs,
            "errors": self.errors,
            "error_rate": round(self.errors / self.runs, 4) if self.runs else 0.0,
            "incomplete": self.incomplete,
            "retries": self.retries,
            "retried_runs": self.retried_runs,
            "p50_ms": r(h.quantile(0.50)),
            "p90_ms": r(h.quantile(0.90)),
            "p99_ms": r(h.quantile(0.99)),
            "max_ms": r(h.max),
            "mean_self_ms": r(self.self_total_ms / self.self_runs) if self.self_runs else None,
            "mean_docs": r(self.documents / self.ok_runs) if self.ok_runs else None,
            "empty_results": self.empty,
        }


class _DeferredTotal:
    """While the total is a sum of groups: their keys, and what depends on the order runs came in."""

    __slots__ = ("keys", "max", "self_total_ms")

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.max: float | None = None
        self.self_total_ms = 0.0


BY_CHOICES = "name, tag, session, meta.KEY or a request field (k, search_type, vector_store, ...)"


def group_keys(run: Run, by: str) -> list[str]:
    """The groups ``run`` counts in (a run with two tags counts in both)."""
    if by == "name":
        if run.kind != "retriever":  # a stage of a retrieval (search, embedding): say which
            return [f"{run.name} ({run.metadata.get(STAGE_KEY)})"]
        return [run.name]
    if by == "tag":
        return run.tags or ["(no tag)"]
    if by == "session":
        return [run.session_id or "(no session)"]
    if by.startswith("meta."):
        key = by[5:]
        meta = run.metadata
        return [str(meta[key]) if key in meta else "(none)"]
    if by in REQUEST_FIELDS:  # what the run asked of its store: latency and errors by k, by store, ...
        if run.kind != "retriever":
            return []  # a stage of a retrieval (search, embedding) asks nothing of its own: no row
        value = (run.start or {}).get(by)
        return [value_text(value) if value is not None else "(none)"]
    raise UsageError(f"--by is one of {BY_CHOICES}, not {by!r}")


def counted(kind: str, metadata: dict[str, Any]) -> bool:
    """Whether a run has a row: retriever runs, and the stages of a retrieval (metadata ``rtrace_stage``)."""
    return kind == "retriever" or bool(metadata and STAGE_KEY in metadata)


@dataclass(frozen=True)
class SlowRun:
    """One of the slowest runs: enough to name it and find it again (``show --run SHORT_ID``)."""

    duration_ms: float
    name: str
    short_id: str
    query: str | None
    status: str
    depth: str  # "root" or "leaf" (or "root leaf": a root without children)


SLOWEST_OF = ("roots", "leaves")


class StatsCollector:
    """Feed runs; read per-group and total stats and the slowest runs. Memory: groups x histogram buckets."""

    def __init__(self, by: str = "name", slowest: int = 5, slowest_of: str = "roots") -> None:
        if not (by in ("name", "tag", "session") or by in REQUEST_FIELDS or (by.startswith("meta.") and len(by) > 5)):
            raise UsageError(f"--by is one of {BY_CHOICES}, not {by!r}")
        if slowest_of not in SLOWEST_OF:
            raise UsageError(f"--slowest-of is one of {', '.join(SLOWEST_OF)}, not {slowest_of!r}")
        self.by = by
        self.groups: dict[str, GroupStats] = {}
        self.total = GroupStats("total")
        self._keep = slowest
        self._leaves = slowest_of == "leaves"
        self._slow: list[tuple[float, int, SlowRun]] = []  # a min-heap of the slowest seen
        self._seen = 0
        self._deferred: _DeferredTotal | None = None

    def consider(self, run: Any, d: float | None) -> None:
        """``run`` (a ``Run``, or anything with its attributes), ``d`` its duration, for the slowest."""
        if d is None or (self._slow and len(self._slow) >= self._keep and d <= self._slow[0][0]):
            return
        # Roots of any kind (a trace's whole time), or leaf retrievers (where the time goes).
        root, leaf = run.parent is None, not run.children
        if not (run.kind == "retriever" and leaf if self._leaves else root):
            return
        self._seen += 1
        depth = " ".join(w for w, yes in (("root", root), ("leaf", leaf)) if yes)
        entry = (d, -self._seen, SlowRun(d, run.name, run.short_id, run.query, run.status, depth))
        if len(self._slow) < self._keep:
            heapq.heappush(self._slow, entry)
        else:
            heapq.heappushpop(self._slow, entry)

    def rename_slowest(self, short_ids: dict[str, str]) -> None:
        """Give the slowest runs kept so far the short ids ``short_ids`` maps theirs to."""
        self._slow = [(d, seen, replace(slow, short_id=short_ids.get(slow.short_id, slow.short_id)))
                      for d, seen, slow in self._slow]  # the same keys: still a heap

    @property
    def slowest(self) -> list[SlowRun]:
        """The slowest runs, slowest first (ties: the earlier in the log first)."""
        return [entry[2] for entry in sorted(self._slow, reverse=True)]  # type: ignore[misc]

    def add(self, run: Run) -> None:
        if self._keep:
            self.consider(run, run.duration_ms)
        if run.superseded:  # a superseded attempt is a retry of the next
            return
        if not counted(run.kind, run.metadata):
            return  # chains, tools and LLMs are parents, not retrieval
        self.count(run_facts(run), group_keys(run, self.by), run.kind == "retriever")

    def count(self, facts: RunFacts, keys: list[str], retriever: bool) -> None:
        """One run's facts, in the groups ``keys`` (and the total, for a retriever run)."""
        # Stages of a retrieval that are not retriever runs (a vector search, a query embedding)
        # get rows of their own, so the table says where a retrieval's time goes; the total
        # counts retriever runs only, as before.
        deferred = self._deferred
        if deferred is not None and (retriever or not deferred.keys.isdisjoint(keys)):
            self.settle_total()  # a stage's run in a group of retriever runs: the total is no longer their sum
        groups = self.groups
        for key in keys:
            group = groups.get(key)
            if group is None:
                group = groups[key] = GroupStats(key)
            group.add_facts(facts)
        if retriever:
            self.total.add_facts(facts)

    def defer_total(self) -> None:
        """With ``--by name`` each retriever run counts in one group, its name's: let ``count_retriever``
        count it there only, and the total be added up from those groups (``settle_total``) unless a
        stage's run lands in one of them. Saves adding every run's facts twice."""
        if self.by == "name":
            self._deferred = _DeferredTotal()

    def count_retriever(self, facts: RunFacts, name: str) -> None:
        """``count(facts, [name], True)`` for a retriever run with ``--by name``."""
        group = self.groups.get(name)
        deferred = self._deferred
        if deferred is not None:
            if group is None:
                group = self.groups[name] = GroupStats(name)
                deferred.keys.add(name)
            elif name not in deferred.keys:  # a stage's group: the total is no longer a sum of groups
                self.settle_total()
                self.count(facts, [name], True)
                return
            group.add_facts(facts)
            d, own = facts[3], facts[4]
            if d is not None:  # what ``add_facts`` would do to the total that depends on order
                if deferred.max is None or d > deferred.max:
                    deferred.max = d
                if own is not None:
                    deferred.self_total_ms += own
            return
        if group is None:
            group = self.groups[name] = GroupStats(name)
        group.add_facts(facts)
        self.total.add_facts(facts)

    def settle_total(self) -> None:
        """The deferred total added up from its groups (before anything else counts in it)."""
        deferred, self._deferred = self._deferred, None
        if deferred is None:
            return
        total = self.total
        for key in deferred.keys:  # groups of retriever runs only, each run in one of them
            total.add_counts(self.groups[key])
        total.self_total_ms += deferred.self_total_ms  # 0.0 + the same sum in the same order
        if deferred.max is not None and (total.durations.max is None or deferred.max > total.durations.max):
            total.durations.max = deferred.max

    def add_all(self, runs: Iterable[Run]) -> None:
        for run in runs:
            self.add(run)

    def rows(self, bins: int = 0) -> list[dict[str, Any]]:
        """Groups, most runs first, then by name; ``bins``: with a ``hist`` of that many latency bins."""
        groups = sorted(self.groups.values(), key=lambda g: (-g.runs, g.key))
        if not bins:
            return [g.as_dict() for g in groups]
        return [{**g.as_dict(), "hist": g.durations.bins(bins)} for g in groups]
