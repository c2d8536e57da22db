"""@retriever, Retriever, trace_to and RTRACE_OUTPUT: tracing plain Python code."""

from __future__ import annotations


import asyncio
import hashlib
import os
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import tenacity
from conftest import read_events
from rtrace.core import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
    Document,
    Retriever,
    adispatch_custom_event,
    current_run,
    dispatch_custom_event,
    retriever,
    trace_to,
)


def _runs(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Start events by query."""
    return {e["query"]: e for e in events if e["event"] == "retriever_start"}


@retriever
def dense(query: str, k: int = 2) -> list[Any]:
    return [(Document(f"dense {query} {i}", id=f"d{i}"), 1.0 - i / 10) for i in range(k)]


@retriever(name="Sparse", tags=["bm25"], metadata={"index": "v3"})
def sparse(query: str) -> list[Document]:
    return [Document(f"sparse {query}", {"score": 3.5})]


@retriever
def hybrid(query: str) -> list[Any]:
    return dense(query) + sparse(query)


def test_decorated_calls_nest_and_keep_results(tmp_path: Path, validate: Any) -> None:
    log = tmp_path / "t.jsonl"
    with trace_to(log):
        result = hybrid("rrf")
    assert [getattr(d, "page_content", None) or d[0].page_content for d in result] == [
        "dense rrf 0", "dense rrf 1", "sparse rrf"
    ]
    events = validate(read_events(log))
    starts = [e for e in events if e["event"] == "retriever_start"]
    assert [s["name"] for s in starts] == ["hybrid", "dense", "Sparse"]
    root = starts[0]
    assert all(s["parent_run_id"] == root["run_id"] and s["trace_id"] == root["run_id"] for s in starts[1:])
    assert starts[2]["tags"] == ["bm25"] and starts[2]["metadata"] == {"index": "v3"}
    root_end = next(e for e in events if e["event"] == "retriever_end" and e["run_id"] == root["run_id"])
    assert [(d["id"], d["score"]) for d in root_end["documents"]] == [
        ("d0", 1.0), ("d1", 0.9), ("sha256:" + hashlib.sha256(b"sparse rrf").hexdigest()[:16], 3.5)]
    # an id-less document gets a hash of its text, and says so; the others carry their own ids
    assert [d.get("id_source") for d in root_end["documents"]] == [None, None, "content_hash"]
    assert events[-1]["event"] == "session_end"


def test_untraced_calls_are_plain_calls(tmp_path: Path) -> None:
    seen: list[Any] = []

    @retriever
    def wants_manager(query: str, *, run_manager: Any) -> list[str]:
        seen.append(run_manager)
        return [query]

    assert wants_manager("x") == ["x"]
    assert isinstance(seen[0], CallbackManagerForRetrieverRun) and seen[0].handlers == []
    assert current_run() is None


def test_errors_are_recorded_and_reraised(tmp_path: Path) -> None:
    @retriever
    def broken(query: str) -> list[str]:
        raise KeyError("index missing")

    log = tmp_path / "t.jsonl"
    with trace_to(log), pytest.raises(KeyError):
        broken("q")
    err = read_events(log)[2]
    assert err["event"] == "retriever_error" and err["error"]["type"] == "KeyError"


def test_methods_take_the_query_after_self(tmp_path: Path) -> None:
    class Store:
        @retriever
        def search(self, text: str, k: int = 1) -> list[str]:
            return [text] * k

    log = tmp_path / "t.jsonl"
    with trace_to(log):
        Store().search("hello", k=2)
        Store().search(text="kw")
    queries = [e["query"] for e in read_events(log) if e["event"] == "retriever_start"]
    assert queries == ["hello", None]  # text= is neither positional nor named query


def test_query_keyword_is_found(tmp_path: Path) -> None:
    @retriever
    def by_kw(*, query: str) -> list[str]:
        return [query]

    log = tmp_path / "t.jsonl"
    with trace_to(log):
        by_kw(query="named")
    assert "named" in _runs(read_events(log))


def test_nesting_follows_threads_and_executors(tmp_path: Path) -> None:
    @retriever
    def leaf(query: str) -> list[str]:
        return [query]

    @retriever
    def fan_out_threads(query: str) -> list[str]:
        out: list[str] = []
        ts = [threading.Thread(target=lambda i=i: out.extend(leaf(f"t{i}"))) for i in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        with ThreadPoolExecutor(2) as pool:
            out += [d for r in pool.map(leaf, ["p0", "p1", "p2"]) for d in r]
        return out

    log = tmp_path / "t.jsonl"
    with trace_to(log):
        fan_out_threads("root")
        leaf("alone")  # after the fan-out: a root of its own, not a child of a stale context
    runs = _runs(read_events(log))
    root = runs["root"]["run_id"]
    for q in ("t0", "t1", "t2", "p0", "p1", "p2"):
        assert runs[q]["parent_run_id"] == root, q
    assert runs["alone"]["parent_run_id"] is None


def test_nesting_follows_asyncio_tasks(tmp_path: Path) -> None:
    @retriever
    async def shard(query: str, *, run_manager: Any) -> list[str]:
        assert isinstance(run_manager, AsyncCallbackManagerForRetrieverRun)
        await asyncio.sleep(0.001)
        return [query]

    @retriever
    async def fan_out(query: str) -> list[str]:
        parts = await asyncio.gather(*(shard(f"{query}/{i}") for i in range(5)))
        return [d for p in parts for d in p]

    async def main() -> None:
        await asyncio.gather(fan_out("a"), fan_out("b"))

    log = tmp_path / "t.jsonl"
    with trace_to(log):
        asyncio.run(main())
    runs = _runs(read_events(log))
    for top in ("a", "b"):
        for i in range(5):
            assert runs[f"{top}/{i}"]["parent_run_id"] == runs[top]["run_id"]
            assert runs[f"{top}/{i}"]["trace_id"] == runs[top]["run_id"]


def test_tenacity_before_sleep_sync_and_async(tmp_path: Path, validate: Any) -> None:
    @retriever
    def flaky(query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[str]:
        calls = {"n": 0}
        for attempt in tenacity.Retrying(
            stop=tenacity.stop_after_attempt(4), wait=tenacity.wait_fixed(0.001), before_sleep=run_manager.on_retry
        ):
            with attempt:
                calls["n"] += 1
                if calls["n"] < 3:
                    raise TimeoutError("slow shard")
        return [query]

    @retriever
    async def aflaky(query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun) -> list[str]:
        calls = {"n": 0}
        async for attempt in tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(4), wait=tenacity.wait_fixed(0.001), before_sleep=run_manager.on_retry
        ):
            with attempt:
                calls["n"] += 1
                if calls["n"] < 4:
                    raise ConnectionError("refused")
        return [query]

    log = tmp_path / "t.jsonl"
    with trace_to(log):
        flaky("s")
        asyncio.run(aflaky("a"))
    events = validate(read_events(log))
    runs = _runs(events)
    retries = [e for e in events if e["event"] == "retry"]
    sync_r = [r for r in retries if r["run_id"] == runs["s"]["run_id"]]
    async_r = [r for r in retries if r["run_id"] == runs["a"]["run_id"]]
    assert [r["attempt"] for r in sync_r] == [1, 2] and sync_r[0]["exception"]["type"] == "TimeoutError"
    assert [r["attempt"] for r in async_r] == [1, 2, 3] and async_r[0]["exception"]["type"] == "ConnectionError"


class Keyword(Retriever):
    def __init__(self, corpus: list[str], **kw: Any) -> None:
        super().__init__(**kw)
        self.corpus = corpus

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        run_manager.on_text(f"scanning {len(self.corpus)} docs")
        return [Document(d, {"pos": i}, id=str(i)) for i, d in enumerate(self.corpus) if query in d]


class Fusion(Retriever):
    def __init__(self, children: list[Retriever]) -> None:
        super().__init__(tags=["fusion"])
        self.children = children

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        out: list[Document] = []
        for i, child in enumerate(self.children):
            out += child.invoke(query, {"callbacks": run_manager.get_child(f"child-{i}")})
        return out


def test_retriever_base_class_sync_and_async(tmp_path: Path, validate: Any) -> None:
    corpus = ["bm25 scoring", "dense vectors", "bm25 and dense"]
    fusion = Fusion([Keyword(corpus, name="KwA"), Keyword(corpus[:1], name="KwB")])
    log = tmp_path / "t.jsonl"
    with trace_to(log):
        docs = fusion.invoke("bm25", {"run_name": "fusion-v2", "tags": ["exp"]})
        adocs = asyncio.run(fusion.ainvoke("dense"))
    assert [d.page_content for d in docs] == ["bm25 scoring", "bm25 and dense", "bm25 scoring"]
    assert [d.page_content for d in adocs] == ["dense vectors", "bm25 and dense"]
    events = validate(read_events(log))
    starts = [e for e in events if e["event"] == "retriever_start"]
    assert [s["name"] for s in starts] == ["fusion-v2", "KwA", "KwB", "Fusion", "KwA", "KwB"]
    assert starts[0]["tags"] == ["exp", "fusion"] and starts[1]["tags"] == ["exp", "child-0"]
    assert starts[1]["parent_run_id"] == starts[0]["run_id"]
    # the async default runs the sync code in a worker thread; nesting still holds
    assert starts[4]["parent_run_id"] == starts[3]["run_id"] and starts[5]["trace_id"] == starts[3]["run_id"]
    assert sum(e["event"] == "text" for e in events) == 4


def test_nested_retriever_without_passing_callbacks(tmp_path: Path) -> None:
    class Outer(Retriever):
        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
            return Keyword(["a b"]).invoke(query)  # no callbacks passed: found via current_run

    log = tmp_path / "t.jsonl"
    with trace_to(log):
        Outer().invoke("a")
    starts = [e for e in read_events(log) if e["event"] == "retriever_start"]
    assert starts[1]["parent_run_id"] == starts[0]["run_id"]


def test_dispatch_custom_event_attaches_to_the_current_run(tmp_path: Path) -> None:
    @retriever
    def rerank(query: str) -> list[str]:
        dispatch_custom_event("reranked", {"before": 10, "after": 3})
        return [query]

    log = tmp_path / "t.jsonl"
    with pytest.raises(RuntimeError, match="without a parent run"):  # outside any run, as LangChain
        dispatch_custom_event("outside", {})
    assert rerank("untraced") == ["untraced"]  # inside a run that nothing records: no error

    @retriever
    async def arerank(query: str) -> list[str]:
        await adispatch_custom_event("reranked", {})
        dispatch_custom_event("reranked", {})
        return [query]

    assert asyncio.run(arerank("untraced")) == ["untraced"]
    with trace_to(log):
        rerank("q")
    events = read_events(log)
    custom = next(e for e in events if e["event"] == "custom_event")
    assert custom["run_id"] == events[1]["run_id"] and custom["data"] == {"before": 10, "after": 3}


def test_rtrace_output_environment_variable(tmp_path: Path) -> None:
    log = tmp_path / "env.jsonl"
    script = textwrap.dedent("""
        from rtrace.core import retriever, Document
        @retriever
        def search(query):
            return [Document("found " + query)]
        print(search("env")[0].page_content)
    """)
    out = subprocess.run([sys.executable, "-c", script], env={**os.environ, "RTRACE_OUTPUT": str(log)},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == "found env\n" and out.stderr == ""
    events = read_events(log)
    assert [e["event"] for e in events] == ["session_start", "retriever_start", "retriever_end", "session_end"]


def test_trace_to_records_the_exception_that_ended_the_block(tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    with pytest.raises(RuntimeError), trace_to(log):
        dense("x")
        raise RuntimeError("pipeline broke")
    end = read_events(log)[-1]
    assert end["event"] == "session_end" and end["error"]["message"] == "pipeline broke"
