"""A live tally of a session's events: what ``rtrace run`` prints when the script ends."""

from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass, field
from typing import Any

from rtrace.core import events
from rtrace.core.events import recorded_count
from rtrace.core.read.attempts import retry_attempt


@dataclass(order=True)
class SlowRun:
    duration_ms: float
    name: str = field(compare=False)
    query: str | None = field(compare=False)
    status: str = field(compare=False)


# Read on every event of `rtrace run`: module constants, not attribute lookups on `events`.
_RETRIEVER_START, _RETRIEVER_END, _RETRIEVER_ERROR = events.RETRIEVER_START, events.RETRIEVER_END, events.RETRIEVER_ERROR
_START_EVENTS, _RETRY, _SESSION_END = events.START_EVENTS, events.RETRY, events.SESSION_END


class RunSummary:
    """An observer for ``JsonlHandler``: counts runs, errors, retries, documents; keeps the slowest.

    It is called with every event ``rtrace run`` writes, so the common events (a
    retriever's start and end) take one branch each and build nothing they can avoid.
    """

    def __init__(self, slowest: int = 5) -> None:
        self.runs = 0
        self.roots = 0
        self.errors = 0
        self.retries = 0
        self.documents = 0
        self.exit_code: int | None = None
        self.duration_ms: float | None = None
        self.incomplete = 0
        # run id -> start event of the retriever runs started and not ended (kept as it is: nothing
        # is built per event); their retries apart
        self._in_flight: dict[Any, dict[str, Any]] = {}
        self._retried: dict[Any, int] = {}
        self._slowest: list[SlowRun] = []
        self._keep = slowest
        self._lock = threading.Lock()

    def __call__(self, ev: dict[str, Any]) -> None:
        kind = ev.get("event")
        with self._lock:
            if kind == _RETRIEVER_START:
                if ev.get("parent_run_id") is None:
                    self.roots += 1  # a trace, whatever its root: a retriever, a chain, a pipeline
                if self.errors and retry_attempt(ev.get("tags")) is not None:
                    # LangChain's with_retry: the failed attempt before was a retry of this call
                    self.runs, self.errors, self.retries = self.runs - 1, self.errors - 1, self.retries + 1
                self.runs += 1
                self._in_flight[ev["run_id"]] = ev
            elif kind == _RETRIEVER_END or kind == _RETRIEVER_ERROR:
                run_id = ev["run_id"]
                started = self._in_flight.pop(run_id, None)
                if self._retried:
                    self._retried.pop(run_id, None)
                if kind == _RETRIEVER_END:
                    count = recorded_count(ev)  # what it returned: the line may keep fewer
                    if count is not None:
                        self.documents += count
                    else:
                        docs = ev.get("documents")
                        if docs:
                            self.documents += len(docs)
                else:
                    self.errors += 1
                ms = ev.get("duration_ms")
                if isinstance(ms, (int, float)):
                    heap = self._slowest
                    # Built only when it gets in (heappushpop keeps an item only above the smallest).
                    if len(heap) < self._keep or float(ms) > heap[0].duration_ms:
                        item = SlowRun(float(ms), ev.get("name") or "?", started.get("query") if started else None,
                                       "ok" if kind == _RETRIEVER_END else "error")
                        if len(heap) < self._keep:
                            heapq.heappush(heap, item)
                        else:
                            heapq.heappushpop(heap, item)
            elif kind in _START_EVENTS:
                if ev.get("parent_run_id") is None:
                    self.roots += 1
            elif kind == _RETRY:
                self.retries += 1
                run_id = ev.get("run_id")
                if run_id in self._in_flight:
                    self._retried[run_id] = self._retried.get(run_id, 0) + 1
            elif kind == _SESSION_END:
                self.exit_code = ev.get("exit_code")
                self.duration_ms = ev.get("duration_ms")
                self.incomplete = len(ev.get("incomplete_runs") or ())

    @property
    def in_flight(self) -> dict[Any, dict[str, Any]]:
        """Retriever runs started and not ended: run id -> name, query, retries, ts."""
        with self._lock:
            return {k: {"name": ev.get("name"), "query": ev.get("query"), "retries": self._retried.get(k, 0),
                        "ts": ev.get("ts")} for k, ev in self._in_flight.items()}

    @property
    def slowest(self) -> list[SlowRun]:
        with self._lock:
            return sorted(self._slowest, reverse=True)

    def snapshot_in_flight(self) -> list[dict[str, Any]]:
        return [dict(v, run_id=k) for k, v in self.in_flight.items()]
