"""Recording overhead: rtrace against LangChain and the tracers people use with it.

    python tests/bench/overhead.py [--calls N] [--rounds R] [--only GROUP ...]

Groups of cases (each case: one traced retriever call returning 5 documents):

- ``sync``: ``on_retriever_start`` + ``on_retriever_end(5 docs)`` through the managers:
  LangChain's managers + a no-op handler (baseline); rtrace's managers + ``JsonlHandler``;
  LangChain's managers + a plain orjson JSONL handler (what users write today); the
  floor (``floor.py``: the least any recorder keeping rtrace's guarantees costs, with
  and without the check that the log descriptor is still rtrace's); the floor's two
  lines written alone, two ``write(2)`` calls a run and nothing else (what appending to
  this file system costs, beneath any recorder).
- ``async``: the same through the async managers (baseline: LangChain's async
  managers + a no-op async handler).
- ``invoke``: LangChain ``BaseRetriever.invoke`` as a user calls it: no callbacks
  (baseline); rtrace's LangChain hook with ``JsonlHandler`` (what ``trace_to`` /
  ``rtrace run`` install); the same handler with ``rtrace run``'s summary observer;
  a plain orjson JSONL handler injected the same way; the floor recorder as a
  LangChain handler injected the same way (LangChain's run ids); OpenInference's LangChain
  instrumentor + the OpenTelemetry SDK writing each span as a JSON line (when
  ``openinference-instrumentation-langchain`` is installed).
- ``run``: a script doing ``BaseRetriever.invoke`` in a loop, as ``python script.py``
  (baseline) and as ``rtrace run -q script.py``: the real thing, every process-wide
  hook of ``rtrace run`` included. The script times its own loop (start-up excluded).
- ``redaction`` (issue 11, a group of its own): rtrace's sync managers + ``JsonlHandler``
  with redaction off (baseline), with the default redaction and no secret anywhere (the
  fast path every user pays), and with secrets in the query and the run's metadata.
- ``decorator``: a plain function; the same under ``@retriever`` with nothing
  recording; the same inside ``trace_to(log)``.

How the figures can be trusted on a shared, loaded machine: within a round every
case runs once (in a shuffled order), each sample writes to a log emptied just
before it, samples report CPU time (``time.process_time``: what the traced process
pays, mostly immune to other processes) and wall time; the report gives the median
of each and the median of the per-round ratios to the round's baseline (load that
hits a whole round cancels out). Round 0 warms up and is dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
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
from langchain_core.retrievers import BaseRetriever

from rtrace.core import AsyncCallbackManager, CallbackManager, JsonlHandler, retriever, trace_to
from rtrace.core.integrations import langchain as lc_hook
from rtrace.core.read.summary import RunSummary
from rtrace.core.record.sink import open_log

sys.path.insert(0, str(Path(__file__).resolve().parent))
from floor import FloorRecorder  # noqa: E402  (tests/bench/floor.py, beside this script)

QUERY = "what is reciprocal rank fusion?"
DOCS = [LCDocument(f"passage {i} about retrieval " * 4, metadata={"source": f"doc{i}.md", "score": 1 - i / 10}, id=f"d{i}")
        for i in range(5)]
TARGETS = {"sync": 2.5, "async": 0.30, "invoke": 1.40, "run": 1.50}
HERE = Path(__file__).resolve().parent


class NoopSync(LCHandler):
    pass


class NoopAsync(LCAsyncHandler):
    pass


class NaiveJsonl(LCHandler):
    """What a LangChain user writes today: orjson lines to a file, one write per event."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def on_retriever_start(self, serialized: Any, query: str, *, run_id: Any, parent_run_id: Any = None, **kw: Any) -> None:
        os.write(self.fd, orjson.dumps({"event": "retriever_start", "run_id": run_id, "parent_run_id": parent_run_id,
                                        "query": query}) + b"\n")

    def on_retriever_end(self, documents: Any, *, run_id: Any, parent_run_id: Any = None, **kw: Any) -> None:
        docs = [{"id": d.id, "page_content": d.page_content, "metadata": d.metadata} for d in documents]
        os.write(self.fd, orjson.dumps({"event": "retriever_end", "run_id": run_id, "parent_run_id": parent_run_id,
                                        "documents": docs}) + b"\n")

    def close(self) -> None:
        os.close(self.fd)


class Fixed(BaseRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[LCDocument]:
        return DOCS


# One sample: (cpu seconds, wall seconds) per call.
Sample = tuple[float, float]


def timed(loop: Callable[[], None], calls: int) -> Sample:
    gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    loop()
    return (time.process_time() - c0) / calls, (time.perf_counter() - w0) / calls


def fresh(path: Path) -> Path:
    """The sample's log, emptied: the cost of appending grows with a file's size."""
    path.unlink(missing_ok=True)
    return path


def sync_loop(manager: Any, calls: int) -> Callable[[], None]:
    start = manager.on_retriever_start

    def loop() -> None:
        for _ in range(calls):
            start(None, QUERY).on_retriever_end(DOCS)

    return loop


def async_timed(manager: Any, calls: int) -> Sample:
    async def body() -> Sample:
        start = manager.on_retriever_start

        async def loop() -> None:
            for _ in range(calls):
                rm = await start(None, QUERY)
                await rm.on_retriever_end(DOCS)

        gc.collect()  # timed inside the event loop: creating the loop is not counted
        c0, w0 = time.process_time(), time.perf_counter()
        await loop()
        return (time.process_time() - c0) / calls, (time.perf_counter() - w0) / calls

    return asyncio.run(body())


def rt_handler(log: Path, summary: bool = False) -> JsonlHandler:
    h = JsonlHandler(fresh(log), observers=[RunSummary()] if summary else ())
    h.open_session()  # session_start is written before the clock starts
    return h


def manager_cases(tmp: Path, calls: int) -> dict[str, dict[str, Callable[[], Sample]]]:
    log = tmp / "sample.jsonl"

    def lc_sync(handler_factory: Callable[[], Any]) -> Callable[[], Sample]:
        def run() -> Sample:
            h = handler_factory()
            try:
                return timed(sync_loop(LCManager.configure([h]), calls), calls)
            finally:
                getattr(h, "close", lambda: None)()
        return run

    def lc_async(handler_factory: Callable[[], Any]) -> Callable[[], Sample]:
        def run() -> Sample:
            h = handler_factory()
            try:
                return async_timed(LCAsyncManager.configure([h]), calls)
            finally:
                getattr(h, "close", lambda: None)()
        return run

    def rt(manager_cls: Any, timer: Callable[[Any, int], Sample]) -> Callable[[], Sample]:
        def run() -> Sample:
            h = rt_handler(log)
            try:
                return timer(manager_cls.configure([h]), calls)
            finally:
                h.close()
        return run

    def floor(own_check: bool, asynchronous: bool) -> Callable[[], Sample]:
        def run() -> Sample:
            f = FloorRecorder(str(fresh(log)), own_check=own_check)
            try:
                return async_timed(AsyncFloor(f), calls) if asynchronous else timed(sync_loop(SyncFloor(f), calls), calls)
            finally:
                f.close()
        return run

    def writes_alone() -> Callable[[], Sample]:
        # The floor's two lines of one run, as it writes them, then nothing but their two write(2) calls
        # per call: what appending to the log's file system costs here, beneath any recorder.
        f = FloorRecorder(str(fresh(log)))
        f.end(f.start(QUERY), DOCS)
        f.close()
        start_line, end_line = log.read_bytes().splitlines(keepends=True)

        def run() -> Sample:
            fd, write = open_log(str(fresh(log))), os.write

            def loop() -> None:
                for _ in range(calls):
                    write(fd, start_line)
                    write(fd, end_line)

            try:
                return timed(loop, calls)
            finally:
                os.close(fd)
        return run

    return {
        "sync": {
            "LangChain managers + no-op handler (baseline)": lc_sync(NoopSync),
            "rtrace managers + JsonlHandler": rt(CallbackManager, lambda m, n: timed(sync_loop(m, n), n)),
            "LangChain managers + plain orjson JSONL handler": lc_sync(lambda: NaiveJsonl(fresh(log))),
            "floor: minimal recorder, rtrace's guarantees (bench/floor.py)": floor(True, False),
            "floor without the descriptor ownership check": floor(False, False),
            "the floor's two lines alone: two write(2) calls, nothing else": writes_alone(),
        },
        "async": {
            "LangChain async managers + no-op async handler (baseline)": lc_async(NoopAsync),
            "rtrace async managers + JsonlHandler": rt(AsyncCallbackManager, async_timed),
            "LangChain async managers + plain orjson JSONL handler": lc_async(lambda: NaiveJsonl(fresh(log))),
            "floor: minimal recorder, rtrace's guarantees, async": floor(True, True),
        },
    }


class SyncFloor:
    """``FloorRecorder`` behind the managers' call shape: ``start(None, q).on_retriever_end(docs)``."""

    def __init__(self, recorder: FloorRecorder) -> None:
        self.recorder = recorder

    def on_retriever_start(self, serialized: Any, query: str) -> Any:
        run = self.recorder.start(query)
        return _FloorEnd(run)


class _FloorEnd:
    __slots__ = ("run",)

    def __init__(self, run: Any) -> None:
        self.run = run

    def on_retriever_end(self, documents: Any) -> None:
        self.run.recorder.end(self.run, documents)


class AsyncFloor:
    """The same with coroutines, as the async managers are awaited."""

    def __init__(self, recorder: FloorRecorder) -> None:
        self.recorder = recorder

    async def on_retriever_start(self, serialized: Any, query: str) -> Any:
        return _AsyncFloorEnd(self.recorder.start(query))


class _AsyncFloorEnd:
    __slots__ = ("run",)

    def __init__(self, run: Any) -> None:
        self.run = run

    async def on_retriever_end(self, documents: Any) -> None:
        self.run.recorder.end(self.run, documents)


class FloorHandler(LCHandler):
    """``FloorRecorder`` as a LangChain handler: the floor of the ``invoke`` path."""

    def __init__(self, recorder: FloorRecorder) -> None:
        self.recorder = recorder
        self.open: dict[Any, Any] = {}

    def on_retriever_start(self, serialized: Any, query: str, *, run_id: Any, **kw: Any) -> None:
        self.open[run_id] = self.recorder.start(query, run_id)

    def on_retriever_end(self, documents: Any, *, run_id: Any, **kw: Any) -> None:
        self.recorder.end(self.open.pop(run_id), documents)

    def close(self) -> None:
        self.recorder.close()


def openinference_case(log: Path, calls: int, invoke: Callable[[], None]) -> Callable[[], Sample] | None:
    try:
        from openinference.instrumentation.langchain import LangChainInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
    except ImportError:
        return None

    def run() -> Sample:
        with open(fresh(log), "w") as out:
            provider = TracerProvider()
            # Each span as one JSON line in a file, as it ends: the same job as the others.
            provider.add_span_processor(SimpleSpanProcessor(
                ConsoleSpanExporter(out=out, formatter=lambda span: span.to_json(indent=None) + "\n")))
            instrumentor = LangChainInstrumentor()
            instrumentor.instrument(tracer_provider=provider)
            try:
                return timed(invoke_loop(invoke, calls), calls)
            finally:
                instrumentor.uninstrument()
                provider.shutdown()

    return run


def invoke_loop(invoke: Callable[[], Any], calls: int) -> Callable[[], None]:
    def loop() -> None:
        for _ in range(calls):
            invoke()
    return loop


def invoke_cases(tmp: Path, calls: int) -> dict[str, dict[str, Callable[[], Sample]]]:
    log = tmp / "sample.jsonl"
    r = Fixed()

    def invoke() -> Any:
        return r.invoke(QUERY)

    def hooked(factory: Callable[[], Any]) -> Callable[[], Sample]:
        def run() -> Sample:
            h = factory()
            lc_hook.install(h)
            try:
                return timed(invoke_loop(invoke, calls), calls)
            finally:
                lc_hook.uninstall(h)
                h.close()
        return run

    cases: dict[str, Callable[[], Sample]] = {
        "invoke, no callbacks (baseline)": lambda: timed(invoke_loop(invoke, calls), calls),
        "invoke + rtrace hook (JsonlHandler)": hooked(lambda: rt_handler(log)),
        "invoke + rtrace hook + run summary observer": hooked(lambda: rt_handler(log, summary=True)),
        "invoke + plain orjson JSONL handler (same hook)": hooked(lambda: NaiveJsonl(fresh(log))),
        "invoke + floor recorder (same hook)": hooked(lambda: FloorHandler(FloorRecorder(str(fresh(log))))),
    }
    oi = openinference_case(log, calls, invoke)
    if oi is not None:
        cases["invoke + OpenInference + OTel SDK (JSON lines)"] = oi
    return {"invoke": cases}


def run_cases(tmp: Path, calls: int) -> dict[str, dict[str, Callable[[], Sample]]]:
    script = HERE / "invoke_loop.py"
    rtrace = shutil.which("rtrace") or str(Path(sys.executable).with_name("rtrace"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_"))}

    def proc(argv: list[str]) -> Callable[[], Sample]:
        def run() -> Sample:
            out = subprocess.run(argv + [str(script), "--calls", str(calls)], capture_output=True, text=True,
                                 check=True, env=env, cwd=tmp)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            return got["cpu"], got["wall"]
        return run

    def traced() -> Sample:
        return proc([rtrace, "run", "-q", "-o", str(fresh(tmp / "run.jsonl"))])()

    return {"run": {
        "python invoke_loop.py (baseline)": proc([sys.executable]),
        "rtrace run -q invoke_loop.py": traced,
    }}


def decorator_cases(tmp: Path, calls: int) -> dict[str, dict[str, Callable[[], Sample]]]:
    def plain(query: str) -> list[LCDocument]:
        return DOCS

    traced = retriever(plain)

    def loop(fn: Callable[[str], Any]) -> Callable[[], None]:
        def body() -> None:
            for _ in range(calls):
                fn(QUERY)
        return body

    def recording() -> Sample:
        with trace_to(fresh(tmp / "sample.jsonl")):
            return timed(loop(traced), calls)

    return {"decorator": {
        "plain function (baseline)": lambda: timed(loop(plain), calls),
        "@retriever, nothing recording": lambda: timed(loop(traced), calls),
        "@retriever inside trace_to(log)": recording,
    }}


def redaction_cases(tmp: Path, calls: int) -> dict[str, dict[str, Callable[[], Sample]]]:
    log = tmp / "sample.jsonl"
    secret_meta = {"api_key": "k-123", "dsn": "postgres://bob:pw@db/app", "source": "notes.md"}

    def case(query: str, metadata: dict[str, Any] | None, **options: Any) -> Callable[[], Sample]:
        def run() -> Sample:
            h = JsonlHandler(fresh(log), **options)
            h.open_session()
            manager = CallbackManager.configure([h], local_metadata=metadata)
            start = manager.on_retriever_start
            queries = [f"{query} #{i}" for i in range(calls)]  # distinct: no query is cached as clean

            def loop() -> None:
                for q in queries:
                    start(None, q).on_retriever_end(DOCS)
            try:
                return timed(loop, calls)
            finally:
                h.close()
        return run

    plain_meta = {"source": "notes.md", "k": 5}
    return {"redaction": {
        "JsonlHandler, redaction off (baseline)": case(QUERY, plain_meta, redact=(), redact_values=False),
        "JsonlHandler, default redaction, no secrets": case(QUERY, plain_meta),
        "JsonlHandler, default redaction, secrets in query and metadata": case(
            QUERY + " sk-proj-abcdefghijklmnopqrstuvwx", secret_meta),
    }}


GROUPS: dict[str, Callable[[Path, int], dict[str, dict[str, Callable[[], Sample]]]]] = {
    "managers": manager_cases, "invoke": invoke_cases, "run": run_cases, "decorator": decorator_cases,
    "redaction": redaction_cases,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2_000, help="calls per sample (default 2000)")
    ap.add_argument("--rounds", type=int, default=15, help="measured rounds (default 15; one more warms up)")
    ap.add_argument("--only", nargs="*", choices=sorted(GROUPS), help="case groups to run (default: all)")
    ap.add_argument("--run-calls", type=int, default=5_000, help="calls per `rtrace run` sample (default 5000)")
    args = ap.parse_args()
    for var in [v for v in os.environ if v.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_"))]:
        os.environ.pop(var)
    tmp = Path(tempfile.mkdtemp(prefix="rtrace-bench-"))
    groups: dict[str, dict[str, Callable[[], Sample]]] = {}
    for name in args.only or GROUPS:
        groups.update(GROUPS[name](tmp, args.run_calls if name == "run" else args.calls))
    cases = [(g, c, fn) for g, group in groups.items() for c, fn in group.items()]
    samples: dict[tuple[str, str], list[Sample]] = {(g, c): [] for g, c, _ in cases}
    rng = random.Random(14)
    load_at_start = os.getloadavg()[0]
    try:
        for round_ in range(args.rounds + 1):
            order = cases[:]
            rng.shuffle(order)
            for g, c, fn in order:
                s = fn()
                if round_:
                    samples[(g, c)].append(s)
            print(f"\rround {round_}/{args.rounds}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"rtrace overhead: {args.calls} calls per sample ({args.run_calls} for `run`), {args.rounds} interleaved rounds; "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print("µs per call: median CPU time, median wall time; ratio: median of per-round CPU-time ratios to the baseline "
          "[lowest-highest]; then the median CPU time less the baseline's\n")
    for g, group in groups.items():
        names = list(group)
        base = samples[(g, names[0])]
        width = max(map(len, names)) + 2
        print(f"[{g}]")
        for c in names:
            s = samples[(g, c)]
            ratios = [x[0] / b[0] for x, b in zip(s, base)]
            cpu, wall = statistics.median(x[0] for x in s) * 1e6, statistics.median(x[1] for x in s) * 1e6
            base_cpu = statistics.median(x[0] for x in base) * 1e6
            extra = "" if c == names[0] else (f"   ratio {statistics.median(ratios):5.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"
                                              f"   {cpu - base_cpu:+.2f} µs")
            print(f"  {c:<{width}} cpu {cpu:8.2f} µs   wall {wall:8.2f} µs{extra}")
        if g in TARGETS:
            s = samples[(g, names[1])]
            ratio = statistics.median(x[0] / b[0] for x, b in zip(s, base))
            verdict = "met" if ratio <= TARGETS[g] else "MISSED"
            print(f"  target: {names[1]} <= {TARGETS[g]:.2f}x baseline: {ratio:.2f}x, {verdict}")
            floor = next((c for c in names if "floor" in c and "without" not in c), None)
            if floor is not None:  # tells "rtrace is slow" from "no recorder with its guarantees is this fast here"
                f = samples[(g, floor)]
                f_ratio = statistics.median(x[0] / b[0] for x, b in zip(f, base))
                gap = statistics.median(x[0] - y[0] for x, y in zip(s, f)) * 1e6
                where = "meets it" if f_ratio <= TARGETS[g] else "misses it too: the target is below the floor here"
                print(f"  the floor recorder on this machine: {f_ratio:.2f}x, {where}; "
                      f"rtrace above the floor: {gap:+.2f} µs per call (median of per-round differences)")
        if g == "invoke":
            s = samples[(g, names[2])]
            ratio = statistics.median(x[0] / b[0] for x, b in zip(s, base))
            print(f"  (with the summary observer, in process: {ratio:.2f}x; the `run` group measures `rtrace run` itself)")
        print()


if __name__ == "__main__":
    main()
