"""A live tally of a session's events: what ``rtrace run`` prints when the script ends."""

from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass, field
from typing import Any

from rtrace.core import events
from rtrace.core.read.attempts import retry_attempt


@dataclass(order=True)
class SlowRun:
    duration_ms: float
    name: str = field(compare=False)
    query: str | None = field(compare=False)
    status: str = field(compare=False)


class RunSummary:
    """An observer for ``JsonlHandler``: counts runs, errors, retries, documents; keeps the slowest."""

    def __init__(self, slowest: int = 5) -> None:
        self.runs = 0
        self.roots = 0
        self.errors = 0
        self.retries = 0
        self.documents = 0
        self.exit_code: int | None = None
        self.duration_ms: float | None = None
        self.incomplete = 0
        self.in_flight: dict[str, dict[str, Any]] = {}
        self._slowest: list[SlowRun] = []
        self._keep = slowest
        self._lock = threading.Lock()

    def __call__(self, ev: dict[str, Any]) -> None:
        kind = ev.get("event")
        with self._lock:
            if kind in events.START_EVENTS and ev.get("parent_run_id") is None:
                self.roots += 1  # a trace, whatever its root: a retriever, a chain, a pipeline
            if kind == events.RETRIEVER_START:
                if retry_attempt(ev.get("tags")) is not None and self.errors:
                    # LangChain's with_retry: the failed attempt before was a retry of this call
                    self.runs, self.errors, self.retries = self.runs - 1, self.errors - 1, self.retries + 1
                self.runs += 1
                self.in_flight[ev["run_id"]] = {"name": ev.get("name"), "query": ev.get("query"), "retries": 0, "ts": ev.get("ts")}
            elif kind in (events.RETRIEVER_END, events.RETRIEVER_ERROR):
                started = self.in_flight.pop(ev["run_id"], {})
                if kind == events.RETRIEVER_END:
                    self.documents += len(ev.get("documents") or ())
                else:
                    self.errors += 1
                ms = ev.get("duration_ms")
                if isinstance(ms, (int, float)):
                    heap = self._slowest
                    # Built only when it gets in (heappushpop keeps an item only above the smallest).
                    if len(heap) < self._keep or float(ms) > heap[0].duration_ms:
                        item = SlowRun(float(ms), ev.get("name") or "?", started.get("query"),
                                       "ok" if kind == events.RETRIEVER_END else "error")
                        if len(heap) < self._keep:
                            heapq.heappush(heap, item)
                        else:
                            heapq.heappushpop(heap, item)
            elif kind == events.RETRY:
                self.retries += 1
                if ev.get("run_id") in self.in_flight:
                    self.in_flight[ev["run_id"]]["retries"] += 1
            elif kind == events.SESSION_END:
                self.exit_code = ev.get("exit_code")
                self.duration_ms = ev.get("duration_ms")
                self.incomplete = len(ev.get("incomplete_runs") or ())

    @property
    def slowest(self) -> list[SlowRun]:
        with self._lock:
            return sorted(self._slowest, reverse=True)

    def snapshot_in_flight(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(v, run_id=k) for k, v in self.in_flight.items()]
