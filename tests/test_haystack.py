"""Haystack traced with no code changes: the log against Haystack's own tracer spans, run by run,
and the user's own tracer receiving exactly what it receives without rtrace."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, read_events
from framework_runs import PROGRAMS, break_api, check_commands, logged_runs, report, run, traced

PROGRAM = PROGRAMS / "haystack_program.py"
CONTENT = {"HAYSTACK_CONTENT_TRACING_ENABLED": "true"}
# component type -> (rtrace run kind, rtrace_stage)
RECORDED = {
    "InMemoryBM25Retriever": ("retriever", None), "InMemoryEmbeddingRetriever": ("retriever", None),
    "FailingRetriever": ("retriever", None), "HashTextEmbedder": ("chain", "embedding"),
    "DocumentJoiner": ("retriever", "join"), "OverlapRanker": ("retriever", "rerank"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The program plainly and traced, with Haystack's content tracing off and on."""
    tmp = tmp_path_factory.mktemp("haystack")
    out: dict[str, Any] = {}
    for mode, env in (("off", {}), ("on", CONTENT)):
        plain = run([str(PROGRAM), str(tmp / f"plain-{mode}.json")], tmp, env)
        proc, events = traced(PROGRAM, tmp, str(tmp / f"traced-{mode}.json"), env=env)
        assert plain.returncode == 0, plain.stderr
        assert proc.returncode == 0, proc.stderr
        out[mode] = {"plain": plain, "proc": proc, "events": events,
                     "plain_calls": report(tmp / f"plain-{mode}.json"), "calls": report(tmp / f"traced-{mode}.json")}
    return out


def by_span(calls: list[Any]) -> dict[int, list[Any]]:
    spans: dict[int, list[Any]] = {}
    for call in calls:
        spans.setdefault(call[1], []).append(call)
    return spans


@pytest.mark.parametrize("mode", ["off", "on"])
def test_the_users_tracer_gets_exactly_what_it_got_without_rtrace(runs: dict[str, Any], mode: str) -> None:
    r = runs[mode]
    # Every trace() (numbered in call order, with its tags and parent), then each span's tags and exit in order.
    # Grouped per span: in an async pipeline, components running in threads may finish in either order.
    assert by_span(r["calls"]) == by_span(r["plain_calls"])
    assert r["proc"].stdout == r["plain"].stdout  # is_tracing_enabled() included
    assert r["proc"].stderr == ""
    content_tags = [c for c in r["calls"] if c[0] == "set_tag" and c[2] == "haystack.component.output"]
    assert bool(content_tags) == (mode == "on")  # content tracing still decides for the user's tracer


def test_the_log_is_haystack_s_span_tree_with_documents_without_content_tracing(runs: dict[str, Any]) -> None:
    calls = runs["on"]["plain_calls"]  # what Haystack itself reports, content included
    spans = {c[1]: {"op": c[2], "tags": c[3], "parent": c[4], "set": {}, "error": None}
             for c in calls if c[0] == "trace"}
    for c in calls:
        if c[0] == "set_tag":
            spans[c[1]]["set"][c[2]] = c[3]
        elif c[0] == "error":
            spans[c[1]]["error"] = c[2]
    # "haystack.pipeline.run"; Haystack 2's AsyncPipeline says "haystack.async_pipeline.run"
    wanted = [n for n, s in spans.items() if s["op"].endswith("pipeline.run")
              or s["tags"].get("haystack.component.type") in RECORDED]
    logged = logged_runs(runs["off"]["events"])  # rtrace saw documents with content tracing off
    assert len(logged) == len(wanted) == 4 + 3 * 5 + 1
    run_of: dict[int, str] = {}
    texts: dict[str, str] = {}
    for number, lr in zip(wanted, logged, strict=True):
        span, start, end = spans[number], lr.start, lr.end
        run_of[number] = start["run_id"]
        if span["op"].endswith("pipeline.run"):
            assert (lr.kind, start["name"], start["parent_run_id"]) == ("chain", "Pipeline", None)
            mode = "async" if "async" in span["op"] else "sync"
            assert start["metadata"]["execution_mode"] == span["tags"].get("haystack.pipeline.execution_mode", mode)
            assert end["event"] == ("chain_error" if span["error"] else "chain_end")
            continue
        kind = span["tags"]["haystack.component.type"]
        assert (lr.kind, lr.stage) == RECORDED[kind]
        assert start["name"] == kind and start["metadata"]["component"] == span["tags"]["haystack.component.name"]
        assert start["parent_run_id"] == run_of[span["parent"]]
        inputs = span["set"].get("haystack.component.input", {})
        if lr.stage == "embedding":
            texts[span["tags"]["haystack.component.name"]] = inputs["text"]
            continue
        if span["error"]:
            assert end["event"] == "retriever_error" and end["error"]["type"] == span["error"]
            assert start["query"] == inputs["query"]
            continue
        senders = span["tags"]["haystack.component.input_spec"].get("query_embedding", {}).get("senders", [])
        assert start["query"] == (inputs["query"] if "query" in inputs else texts[senders[0]] if senders else None)
        output = span["set"]["haystack.component.output"]["documents"]
        assert [{"id": d["id"], "content": d["page_content"], "meta": d["metadata"], "score": d["score"]}
                for d in lr.docs] == output
    assert [lr.start["metadata"]["execution_mode"] for lr in logged if lr.start["name"] == "Pipeline"] == \
        ["sync", "sync", "async", "sync"]


def test_the_log_is_the_same_with_content_tracing_on(runs: dict[str, Any]) -> None:
    def shape(events: list[dict[str, Any]]) -> list[Any]:
        return [(r.kind, r.start["name"], r.start.get("query"), r.docs) for r in logged_runs(events)]

    assert shape(runs["on"]["events"]) == shape(runs["off"]["events"])


def test_show_filter_stats_diff_and_export_read_the_log(tmp_path: Path, runs: dict[str, Any]) -> None:
    log = tmp_path / "hs.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in runs["off"]["events"]))
    check_commands(log, tmp_path, "OverlapRanker", "InMemoryBM25Retriever")


def test_no_haystack_turns_the_hook_off(tmp_path: Path) -> None:
    for option in ("--no-haystack", "--no-frameworks"):
        proc, events = traced(PROGRAM, tmp_path, options=(option,))
        assert proc.returncode == 0, proc.stderr
        assert logged_runs(events) == []


def test_library_use_is_one_line(tmp_path: Path) -> None:
    script = tmp_path / "lib.py"
    script.write_text(textwrap.dedent("""
        from rtrace.core import trace_frameworks, trace_to
        trace_frameworks()
        from haystack import Document, Pipeline
        from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
        from haystack.document_stores.in_memory import InMemoryDocumentStore
        store = InMemoryDocumentStore()
        store.write_documents([Document(id="a", content="alpha beta"), Document(id="b", content="gamma")])
        pipe = Pipeline()
        pipe.add_component("bm25", InMemoryBM25Retriever(store, top_k=1))
        with trace_to("lib.jsonl"):
            print([d.id for d in pipe.run({"bm25": {"query": "alpha"}})["bm25"]["documents"]])
    """))
    proc = run([str(script)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = logged_runs(read_events(tmp_path / "lib.jsonl"))
    assert [(r.kind, r.start["name"], r.start.get("query"), [d["id"] for d in r.docs]) for r in runs] == [
        ("chain", "Pipeline", None, []), ("retriever", "InMemoryBM25Retriever", "alpha", ["a"])]


def test_an_incompatible_haystack_is_one_warning_and_an_unchanged_program(tmp_path: Path) -> None:
    # A Haystack whose tracer module has no ProxyTracer: rtrace cannot hook it.
    env = break_api(tmp_path, "haystack.tracing.tracer", "", "ProxyTracer")
    sample = ROOT / "samples" / "haystack_pipeline.py"
    plain = run([str(sample)], tmp_path, env)
    proc, events = traced(sample, tmp_path, env=env)
    assert plain.returncode == proc.returncode == 0, proc.stderr
    assert proc.stdout == plain.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtrace: warning: Haystack tracing is off: "), proc.stderr
    assert "ProxyTracer" in lines[0]
    assert [e["event"] for e in events] == ["session_start", "session_end"]


@pytest.mark.parametrize("option", [None, "--no-haystack"])
def test_child_processes_are_hooked_too_unless_turned_off(tmp_path: Path, option: str | None) -> None:
    parent = tmp_path / "parent.py"
    parent.write_text(textwrap.dedent(f"""
        import subprocess, sys
        subprocess.run([sys.executable, {str(ROOT / "samples" / "haystack_pipeline.py")!r}], check=True, timeout=120)
    """))
    proc, events = traced(parent, tmp_path, options=(option,) if option else ())
    assert proc.returncode == 0, proc.stderr
    sessions = {e["session_id"] for e in events if e["event"] == "session_start"}
    runs = logged_runs(events)
    assert len(sessions) == (2 if option is None else 1)  # a child session starts with its first event
    if option is None:
        assert [r.start["name"] for r in runs if r.kind == "chain" and r.stage is None] == ["Pipeline"] * 3
        assert all(r.start["session_id"] != events[0]["session_id"] for r in runs)
    else:
        assert runs == []


def test_concurrent_async_pipelines_keep_their_own_runs(tmp_path: Path) -> None:
    script = tmp_path / "two_pipelines.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio, sys
        sys.path.insert(0, {str(ROOT / "samples")!r})
        from haystack_pipeline import async_pipeline, build, inputs

        async def main(queries):
            pipe = async_pipeline(build())
            return await asyncio.gather(*(pipe.run_async(inputs(q)) for q in queries))

        print([[d.id for d in r["rerank"]["documents"]] for r in asyncio.run(main(["bm25 ranking", "dense vectors"]))])
    """))
    proc, events = traced(script, tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = logged_runs(events)
    pipelines = [r for r in runs if r.start["name"] == "Pipeline"]
    assert len(pipelines) == 2 and len(runs) == 12
    queries = set()
    for p in pipelines:
        children = [r for r in runs if r.start["parent_run_id"] == p.start["run_id"]]
        assert len(children) == 5
        asked = {r.start["query"] for r in children if r.kind == "retriever" and r.stage != "join"}
        assert len(asked) == 1  # BM25, the embedding retriever (its embedder's text) and the ranker: one query
        queries |= asked
    assert queries == {"bm25 ranking", "dense vectors"}


REQUEST_PROGRAM = """
import asyncio
from haystack import Document, Pipeline, component
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
from haystack.document_stores.in_memory import InMemoryDocumentStore

@component
class Embedder:
    def __init__(self):
        self.model = "hash-embed-3"  # as Haystack's embedders name their model
    @component.output_types(embedding=list[float])
    def run(self, text: str):
        return {"embedding": [float(len(text)), 1.0, 0.5]}

@component
class OddRetriever:
    # Attributes that run code when read: rtrace must not read them.
    reads = 0
    @property
    def top_k(self):
        OddRetriever.reads += 1
        raise RuntimeError("read me not")
    def __getattr__(self, name):
        OddRetriever.reads += 1
        raise AttributeError(name)
    @component.output_types(documents=list[Document])
    def run(self, query: str):
        return {"documents": []}

store = InMemoryDocumentStore()
store.write_documents([Document(id=f"d{i}", content=t, embedding=[float(i), 1.0, 0.5])
                       for i, t in enumerate(["alpha beta", "beta gamma", "gamma delta", "delta alpha"])])
pipe = Pipeline()
pipe.add_component("embedder", Embedder())
pipe.add_component("bm25", InMemoryBM25Retriever(store, top_k=3))
pipe.add_component("dense", InMemoryEmbeddingRetriever(store, top_k=3))
pipe.connect("embedder.embedding", "dense.query_embedding")
ids = lambda out: {k: [d.id for d in v["documents"]] for k, v in sorted(out.items())}
print(ids(pipe.run({"embedder": {"text": "alpha"}, "bm25": {"query": "alpha"}})))
print(ids(pipe.run({"embedder": {"text": "beta"}, "bm25": {"query": "beta", "top_k": 1}, "dense": {"top_k": 2}})))
print(ids(asyncio.run(pipe.run_async({"embedder": {"text": "gamma"}, "bm25": {"query": "gamma", "top_k": 2}}))))
odd = Pipeline()
odd.add_component("odd", OddRetriever())
print(ids(odd.run({"odd": {"query": "odd?"}})), OddRetriever.reads)
"""


@pytest.mark.timeout(120)
def test_retriever_runs_record_what_they_asked_for_as_langchain_runs_do(tmp_path: Path) -> None:
    script = tmp_path / "request.py"
    script.write_text(REQUEST_PROGRAM)
    plain = run([str(script)], tmp_path)
    proc, events = traced(script, tmp_path)
    assert plain.returncode == proc.returncode == 0, proc.stderr
    assert proc.stdout == plain.stdout  # OddRetriever's reads included: rtrace read none of them
    keys = ("k", "search_type", "vector_store", "embedding_provider", "embedding_model")
    starts = [e for e in events if e["event"] == "retriever_start"]
    bm25 = {"vector_store": "InMemoryDocumentStore"}
    dense = {**bm25, "embedding_provider": "Embedder", "embedding_model": "hash-embed-3"}
    # k: the run's top_k where the call gives one, else the component's own (its init value)
    # (sorted: the async run's two retrievers may start in either order)
    by_query = lambda x: (x[1], x[0])  # noqa: E731
    assert sorted(((e["name"], e["query"], {k: e[k] for k in keys if k in e}) for e in starts), key=by_query) == sorted([
        ("InMemoryBM25Retriever", "alpha", {"k": 3, **bm25}), ("InMemoryEmbeddingRetriever", "alpha", {"k": 3, **dense}),
        ("InMemoryBM25Retriever", "beta", {"k": 1, **bm25}), ("InMemoryEmbeddingRetriever", "beta", {"k": 2, **dense}),
        ("InMemoryBM25Retriever", "gamma", {"k": 2, **bm25}), ("InMemoryEmbeddingRetriever", "gamma", {"k": 3, **dense}),
        ("OddRetriever", "odd?", {}),
    ], key=by_query)
    # The embedding stages name the model too, as LlamaIndex's and LangChain's do.
    stages = [e["metadata"] for e in events if e["event"] == "chain_start" and e["name"] == "Embedder"]
    assert [m.get("embedding_model") for m in stages] == ["hash-embed-3"] * 3
    out = tmp_path / "otel.json"
    exported = run(["-m", "rtrace.cli", "export", str(tmp_path / "log.jsonl"), "-o", str(out)], tmp_path)
    assert exported.returncode == 0, exported.stderr
    spans = []
    for line in out.read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    attrs = {a["key"]: next(iter(a["value"].values())) for a in span.get("attributes", [])}
                    if attrs.get("gen_ai.operation.name") == "retrieval":
                        spans.append((span["name"], attrs["input.value"], attrs.get("gen_ai.retrieval.top_k"),
                                      attrs["gen_ai.data_source.id"]))
    assert ("retrieval InMemoryBM25Retriever", "beta", "1", "InMemoryDocumentStore") in spans
    assert ("retrieval InMemoryEmbeddingRetriever", "beta", "2", "InMemoryDocumentStore") in spans
    assert ("retrieval OddRetriever", "odd?", None, "OddRetriever") in spans



def test_the_samples_retrievers_say_what_they_asked_for_and_stages_say_nothing(runs: dict[str, Any]) -> None:
    keys = ("k", "search_type", "score_threshold", "fetch_k", "vector_store", "embedding_provider", "embedding_model")
    asked = {(r.start["name"], r.stage, tuple((k, r.start[k]) for k in keys if k in r.start))
             for r in logged_runs(runs["off"]["events"]) if r.kind == "retriever"}
    assert asked == {
        ("InMemoryBM25Retriever", None, (("k", 4), ("vector_store", "InMemoryDocumentStore"))),
        ("InMemoryEmbeddingRetriever", None, (("k", 4), ("vector_store", "InMemoryDocumentStore"),
                                              ("embedding_provider", "HashTextEmbedder"))),
        ("FailingRetriever", None, ()),
        ("DocumentJoiner", "join", ()), ("OverlapRanker", "rerank", ()),  # stages: none of the request fields
    }
