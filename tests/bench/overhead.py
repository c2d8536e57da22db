"""Per-run overhead of rtrace's managers vs LangChain's, measured in one process.

    python tests/bench/overhead.py [--calls N] [--repeats R]

Each case: configure a manager once, then per call ``on_retriever_start`` +
``on_retriever_end(5 Documents)``. Prints the median µs per call over R repeats
and the ratio to the named baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from langchain_core.callbacks import AsyncCallbackHandler as LCAsyncHandler
from langchain_core.callbacks import BaseCallbackHandler as LCHandler
from langchain_core.callbacks.manager import AsyncCallbackManager as LCAsyncManager
from langchain_core.callbacks.manager import CallbackManager as LCManager
from langchain_core.documents import Document as LCDocument
from rtrace.core import AsyncCallbackManager, CallbackManager, JsonlHandler, retriever, trace_to

DOCS = [LCDocument(f"passage {i} about retrieval " * 4, metadata={"source": f"doc{i}.md", "score": 1 - i / 10}, id=f"d{i}") for i in range(5)]


class NoopSync(LCHandler):
    pass


class NoopAsync(LCAsyncHandler):
    pass


class NaiveJsonl(LCHandler):
    """What a LangChain user writes today: orjson lines to a file, one per event."""

    def __init__(self, path: str) -> None:
        self.f = open(path, "ab")

    def on_retriever_start(self, serialized: Any, query: str, *, run_id: Any, parent_run_id: Any = None, **kw: Any) -> None:
        self.f.write(orjson.dumps({"event": "retriever_start", "run_id": str(run_id), "query": query}) + b"\n")
        self.f.flush()

    def on_retriever_end(self, documents: Any, *, run_id: Any, parent_run_id: Any = None, **kw: Any) -> None:
        docs = [{"id": d.id, "page_content": d.page_content, "metadata": d.metadata} for d in documents]
        self.f.write(orjson.dumps({"event": "retriever_end", "run_id": str(run_id), "documents": docs}) + b"\n")
        self.f.flush()


class NaiveJsonlAsync(NaiveJsonl):
    pass


def time_sync(manager: Any, calls: int) -> float:
    start = manager.on_retriever_start
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(calls):
        start(None, "what is reciprocal rank fusion?").on_retriever_end(DOCS)
    return (time.perf_counter() - t0) / calls * 1e6


def time_async(manager: Any, calls: int) -> float:
    async def loop() -> float:
        start = manager.on_retriever_start
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(calls):
            rm = await start(None, "what is reciprocal rank fusion?")
            await rm.on_retriever_end(DOCS)
        return (time.perf_counter() - t0) / calls * 1e6

    return asyncio.run(loop())


def median_of(fn: Callable[[], float], repeats: int) -> float:
    fn()  # warm-up
    return statistics.median(fn() for _ in range(repeats))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    for var in ("LANGCHAIN_TRACING_V2", "LANGSMITH_TRACING", "LANGCHAIN_TRACING", "LANGSMITH_TRACING_V2"):
        os.environ.pop(var, None)

    tmp = Path(tempfile.mkdtemp(prefix="rtrace-bench-"))
    n, r = args.calls, args.repeats
    results: dict[str, float] = {}
    rt_file = JsonlHandler(tmp / "rtrace-sync.jsonl")
    rt_afile = JsonlHandler(tmp / "rtrace-async.jsonl")
    cases: dict[str, Callable[[], float]] = {
        "sync  langchain + no-op handler (baseline)": lambda: time_sync(LCManager.configure([NoopSync()]), n),
        "sync  rtrace + JsonlHandler": lambda: time_sync(CallbackManager.configure([rt_file]), n),
        "sync  langchain + naive orjson JSONL handler (peer)": lambda: time_sync(LCManager.configure([NaiveJsonl(str(tmp / "naive.jsonl"))]), n),
        "async langchain + no-op async handler (baseline)": lambda: time_async(LCAsyncManager.configure([NoopAsync()]), n),
        "async rtrace + JsonlHandler": lambda: time_async(AsyncCallbackManager.configure([rt_afile]), n),
        "async langchain + naive orjson JSONL handler (peer)": lambda: time_async(LCAsyncManager.configure([NaiveJsonlAsync(str(tmp / "naive-a.jsonl"))]), n),
    }
    for name, fn in cases.items():
        results[name] = median_of(fn, r)

    def plain(query: str) -> list[LCDocument]:
        return DOCS

    traced = retriever(plain)
    log = tmp / "decorated.jsonl"

    def time_fn(fn: Callable[[str], Any]) -> float:
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(n):
            fn("q")
        return (time.perf_counter() - t0) / n * 1e6

    undecorated = median_of(lambda: time_fn(plain), r)
    untraced = median_of(lambda: time_fn(traced), r)
    with trace_to(log):
        decorated = median_of(lambda: time_fn(traced), r)

    print(f"rtrace overhead benchmark: {n} calls x {r} repeats, median µs per call "
          f"(Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)\n")
    width = max(map(len, results)) + 2
    for kind in ("sync ", "async"):
        base = next(v for k, v in results.items() if k.startswith(kind) and "baseline" in k)
        for k, v in results.items():
            if k.startswith(kind):
                print(f"{k:<{width}} {v:8.2f} µs   ratio {v / base:5.2f}")
        print()
    sync_ratio = results["sync  rtrace + JsonlHandler"] / results["sync  langchain + no-op handler (baseline)"]
    async_ratio = results["async rtrace + JsonlHandler"] / results["async langchain + no-op async handler (baseline)"]
    print(f"{'decorated function, no tracing active':<{width}} {untraced - undecorated:8.2f} µs added per call")
    print(f"{'decorated function, tracing to JSONL':<{width}} {decorated - undecorated:8.2f} µs added per call")
    print(f"\ntargets: async ratio {async_ratio:.2f} (<= 0.25: {'met' if async_ratio <= 0.25 else 'MISSED'}), "
          f"sync ratio {sync_ratio:.2f} (<= 1.5: {'met' if sync_ratio <= 1.5 else 'MISSED'})")


if __name__ == "__main__":
    main()
