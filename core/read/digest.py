"""What ``rtrace report`` shows of a log, gathered in one streamed pass.

Memory holds the sessions, per-retriever stats (bounded histograms), the traces kept
for display (at most ``cap``: failed ones first, then the slowest, chosen with a
heap as the log streams by), the grades of labelled queries, and, when a second
log is compared, each root run's ranked document ids for the diff.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from rtrace.core.read.diff import Retrieval, doc_key
from rtrace.core.read.eval import EvalCollector, EvalResult, Metric, run_documents
from rtrace.core.read.filters import RunFilter
from rtrace.core.read.labels import Labels
from rtrace.core.read.pipeline import Source, report, selected_items
from rtrace.core.read.reader import ReadStats
from rtrace.core.read.stats import StatsCollector
from rtrace.core.read.trees import ERROR, INCOMPLETE, Session, Trace, TreeBuilder

DEFAULT_CAP = 200


@dataclass
class Digest:
    """One log, as the report shows it."""

    path: str
    sessions: list[Session] = field(default_factory=list)
    stats: StatsCollector = field(default_factory=StatsCollector)
    traces: list[Trace] = field(default_factory=list)  # kept for display, failed first, then slowest
    total_traces: int = 0
    failed_traces: int = 0
    cap: int = DEFAULT_CAP
    grades: EvalResult | None = None
    retrievals: dict[tuple[str, str], Retrieval] = field(default_factory=dict)
    first_ts: str | None = None
    last_ts: str | None = None

    @property
    def capped(self) -> bool:
        return self.total_traces > len(self.traces)


def _priority(trace: Trace) -> tuple[int, float]:
    failed = trace.status in (ERROR, INCOMPLETE)
    return (1 if failed else 0, trace.root.duration_ms or 0.0)


def digest_log(source: Source, run_filter: RunFilter, cap: int = DEFAULT_CAP, labels: Labels | None = None,
               metrics: Sequence[Metric] = (), id_key: str | None = None, retrievals: bool = False) -> Digest:
    """Stream ``source`` once; keep what the report shows."""
    out = Digest(source.paths[0], cap=cap)
    grades = EvalCollector(labels, metrics, id_key=id_key) if labels is not None else None
    heap: list[tuple[tuple[int, float], int, Trace]] = []  # the ``cap`` highest priorities
    order = itertools.count()
    stats, builder = ReadStats(), TreeBuilder()
    seen = False
    for item in selected_items(source, run_filter, False, None, stats, builder):
        if isinstance(item, Session):
            if item not in out.sessions:
                out.sessions.append(item)
            continue
        seen = True
        trace = item.trace
        out.total_traces += 1
        out.failed_traces += trace.status in (ERROR, INCOMPLETE)
        for run in item.matched:
            out.stats.add(run)
            if grades is not None:
                grades.add(run)
            ts = run.ts
            if ts is not None:
                out.first_ts = ts if out.first_ts is None or ts < out.first_ts else out.first_ts
                out.last_ts = ts if out.last_ts is None or ts > out.last_ts else out.last_ts
        root = trace.root
        if retrievals and root.kind == "retriever":
            key = (root.name, root.query or "")
            if key not in out.retrievals:
                out.retrievals[key] = Retrieval(root.name, root.query or "", [doc_key(d) for d in run_documents(root)],
                                                root.duration_ms, root.status)
        entry = (_priority(trace), -next(order), trace)  # ties: the earlier trace first
        if cap <= 0:
            continue
        if len(heap) < cap:
            heapq.heappush(heap, entry)
        elif entry[:2] > heap[0][:2]:
            heapq.heapreplace(heap, entry)
    report(stats, builder, source, seen)
    out.traces = [t for _, _, t in sorted(heap, key=lambda e: e[:2], reverse=True)]
    out.grades = grades.finish() if grades is not None else None
    return out
