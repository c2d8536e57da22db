"""Aggregates over runs in bounded memory: counts, error rates, latency percentiles.

Percentiles come from a log-bucket histogram (the DDSketch scheme): a duration
``x`` falls in bucket ``ceil(log(x) / log(g))`` with ``g = 1.01``, and a bucket
is reported as ``2 * g**i / (g + 1)``, so every percentile is within 0.5% of a
true sample value of that rank (nearest-rank method). Memory is a few thousand
counters per group, whatever the log's size; ``max`` is exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rtrace.core.errors import UsageError
from rtrace.core.read.trees import ERROR, INCOMPLETE, OK, Run

GAMMA = 1.01
_LOG_GAMMA = math.log(GAMMA)
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
        if self.max is None or value > self.max:
            self.max = value
        if value <= 0:
            self.zeros += 1
            return
        key = math.ceil(math.log(value) / _LOG_GAMMA)
        self.buckets[key] = self.buckets.get(key, 0) + 1

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


RunFacts = tuple[str, int, int, "float | None"]  # status, retries, documents, duration_ms


def run_facts(run: Run) -> RunFacts:
    """What the stats take from a run, computed once however many groups it counts in."""
    status = run.status
    return status, len(run.retries), len(run.documents) if status == OK else 0, run.duration_ms


@dataclass
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
    durations: Histogram = field(default_factory=Histogram)

    def add(self, run: Run) -> None:
        self.add_facts(run_facts(run))

    def add_facts(self, facts: RunFacts) -> None:
        status, n_retries, n_docs, d = facts
        self.runs += 1
        if status == ERROR:
            self.errors += 1
        elif status == INCOMPLETE:
            self.incomplete += 1
        self.retries += n_retries
        self.retried_runs += 1 if n_retries else 0
        if status == OK:
            self.ok_runs += 1
            self.documents += n_docs
            self.empty += 0 if n_docs else 1
        if d is not None:
            self.durations.add(d)

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
            "mean_docs": r(self.documents / self.ok_runs) if self.ok_runs else None,
            "empty_results": self.empty,
        }


BY_CHOICES = "name, tag, session or meta.KEY"


def group_keys(run: Run, by: str) -> list[str]:
    """The groups ``run`` counts in (a run with two tags counts in both)."""
    if by == "name":
        return [run.name]
    if by == "tag":
        return run.tags or ["(no tag)"]
    if by == "session":
        return [run.session_id or "(no session)"]
    if by.startswith("meta."):
        key = by[5:]
        meta = run.metadata
        return [str(meta[key]) if key in meta else "(none)"]
    raise UsageError(f"--by is one of {BY_CHOICES}, not {by!r}")


class StatsCollector:
    """Feed runs; read per-group and total stats. Memory: groups x histogram buckets."""

    def __init__(self, by: str = "name") -> None:
        if not (by in ("name", "tag", "session") or (by.startswith("meta.") and len(by) > 5)):
            raise UsageError(f"--by is one of {BY_CHOICES}, not {by!r}")
        self.by = by
        self.groups: dict[str, GroupStats] = {}
        self.total = GroupStats("total")

    def add(self, run: Run) -> None:
        if run.kind != "retriever":
            return
        facts = run_facts(run)
        for key in group_keys(run, self.by):
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = GroupStats(key)
            group.add_facts(facts)
        self.total.add_facts(facts)

    def add_all(self, runs: Iterable[Run]) -> None:
        for run in runs:
            self.add(run)

    def rows(self) -> list[dict[str, Any]]:
        """Groups, most runs first, then by name."""
        return [g.as_dict() for g in sorted(self.groups.values(), key=lambda g: (-g.runs, g.key))]
