"""LlamaIndex traced with no code changes: the log against what LlamaIndex itself reports, run by run."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, read_events
from framework_runs import PROGRAMS, break_api, check_commands, logged_runs, report, run, traced

PROGRAM = PROGRAMS / "llamaindex_program.py"


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The program run plainly and under `rtrace run` (each writing LlamaIndex's own report)."""
    tmp = tmp_path_factory.mktemp("llamaindex")
    plain = run([str(PROGRAM), str(tmp / "plain.json")], tmp)
    proc, events = traced(PROGRAM, tmp, str(tmp / "traced.json"))
    assert plain.returncode == 0, plain.stderr
    assert proc.returncode == 0, proc.stderr
    return {"plain": plain, "proc": proc, "events": events, "runs": logged_runs(events),
            "plain_report": report(tmp / "plain.json"), "report": report(tmp / "traced.json")}


def _ancestor(spans: dict[str, Any], span: str, wanted: set[str]) -> str | None:
    parent = spans[span]["parent"]
    while parent is not None and parent not in wanted:
        parent = spans[parent]["parent"]
    return parent


def test_the_program_is_unchanged(both: dict[str, Any]) -> None:
    assert both["proc"].stdout == both["plain"].stdout
    assert both["proc"].stderr == ""
    plain, traced_ = both["plain_report"], both["report"]
    # LlamaIndex's own instrumentation sees the same spans and events with rtrace present.
    assert [s["class"] + "." + s["method"] for s in traced_["spans"].values()] == \
        [s["class"] + "." + s["method"] for s in plain["spans"].values()]
    assert [r["nodes"] for r in traced_["retrievals"]] == [r["nodes"] for r in plain["retrievals"]]


def test_every_retrieval_is_a_retriever_run_with_its_nodes(both: dict[str, Any]) -> None:
    retrievals = both["report"]["retrievals"]
    runs = [r for r in both["runs"] if r.kind == "retriever" and r.stage is None]
    # vector, router > fusion > 2, engine's, async fusion > 2, 2 concurrent fusions > 2, async engine's, broken
    assert len(runs) == len(retrievals) == 17
    for run_, seen in zip(runs, retrievals, strict=True):
        span = both["report"]["spans"][seen["span"]]
        assert run_.start["name"] == span["class"]
        assert run_.start["query"] == seen["query"]
        if seen["nodes"] is None:  # LlamaIndex dropped the span: the retriever raised
            assert run_.end["event"] == "retriever_error"
            assert run_.end["error"]["type"] == span["error"] == "TimeoutError"
            continue
        assert run_.end["event"] == "retriever_end"
        assert [{"id": d["id"], "text": d["page_content"], "metadata": d["metadata"], "score": d["score"]}
                for d in run_.docs] == seen["nodes"]


def test_the_tree_is_llamaindex_s_span_tree(both: dict[str, Any]) -> None:
    rep, runs = both["report"], both["runs"]
    spans = rep["spans"]
    # LlamaIndex spans that rtrace records, in the order they opened, against rtrace's runs in start order.
    recorded = [sid for sid, s in spans.items()
                if (s["method"] in ("retrieve", "aretrieve") and s["class"].endswith("Retriever"))
                or (s["method"] in ("query", "aquery") and s["class"].endswith("QueryEngine"))
                or s["method"] == "_postprocess_nodes"]
    parents = [r for r in runs if r.stage != "embedding"]
    assert [spans[sid]["class"] for sid in recorded] == [r.start["name"] for r in parents]
    run_of = {sid: r.start["run_id"] for sid, r in zip(recorded, parents, strict=True)}
    for sid, r in zip(recorded, parents, strict=True):
        ancestor = _ancestor(spans, sid, set(recorded))
        assert r.start["parent_run_id"] == (run_of[ancestor] if ancestor else None), spans[sid]
    # Embedding calls inside a recorded run are its children; the index build's is not recorded.
    embeddings = [r for r in runs if r.stage == "embedding"]
    inside = [e for e in rep["embeddings"] if _ancestor(spans, e["span"], set(recorded))]
    assert len(embeddings) == len(inside) == 10 and len(rep["embeddings"]) == 11
    for run_, event in zip(embeddings, inside, strict=True):
        assert run_.start["parent_run_id"] == run_of[_ancestor(spans, event["span"], set(recorded))]
        assert run_.kind == "chain" and run_.start["name"] == "MockEmbedding"
    assert {r.start["trace_id"] for r in runs} == {r.start["run_id"] for r in runs if r.start["parent_run_id"] is None}


def test_rerankers_are_rerank_runs_with_the_reordered_nodes(both: dict[str, Any]) -> None:
    reranks = [r for r in both["runs"] if r.stage == "rerank"]
    assert len(reranks) == len(both["report"]["reranks"]) == 2  # sync engine; async engine (in a worker thread)
    for run_, seen, query in zip(reranks, both["report"]["reranks"], ["rerankers", "graph index"], strict=True):
        assert run_.kind == "retriever" and run_.start["name"] == "SimilarityPostprocessor"
        assert run_.start["query"] == query
        assert run_.start["metadata"]["input_documents"] == 3
        assert [(d["id"], d["score"]) for d in run_.docs] == [(n["id"], n["score"]) for n in seen["nodes"]]
    engines = [r for r in both["runs"] if r.start["name"] == "RetrieverQueryEngine"]
    assert [r.start["run_id"] for r in engines] == [r.start["parent_run_id"] for r in reranks]


def test_async_retrievals_nest_under_their_async_parent(both: dict[str, Any]) -> None:
    runs = both["runs"]
    fusion = [r for r in runs if r.start["name"] == "QueryFusionRetriever" and r.start["query"] == "hnsw graph"]
    assert len(fusion) == 1
    children = [r for r in runs if r.start["parent_run_id"] == fusion[0].start["run_id"]]
    assert [r.start["name"] for r in children] == ["VectorIndexRetriever", "VectorIndexRetriever"]
    assert all(r.end["event"] == "retriever_end" for r in children)


def test_show_filter_stats_diff_and_export_read_the_log(tmp_path: Path, both: dict[str, Any]) -> None:
    log = tmp_path / "li.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in both["events"]))
    check_commands(log, tmp_path, "SimilarityPostprocessor", "VectorIndexRetriever")


def test_no_llamaindex_turns_the_hook_off(tmp_path: Path) -> None:
    for option in ("--no-llamaindex", "--no-frameworks"):
        proc, events = traced(PROGRAM, tmp_path, options=(option,))
        assert proc.returncode == 0, proc.stderr
        assert logged_runs(events) == []


def test_library_use_is_one_line(tmp_path: Path) -> None:
    script = tmp_path / "lib.py"
    script.write_text(textwrap.dedent("""
        from rtrace.core import trace_frameworks, trace_to
        trace_frameworks()
        from llama_index.core import VectorStoreIndex
        from llama_index.core.embeddings import MockEmbedding
        from llama_index.core.schema import TextNode
        index = VectorStoreIndex([TextNode(id_="a", text="alpha"), TextNode(id_="b", text="beta")],
                                 embed_model=MockEmbedding(embed_dim=4))
        index.as_retriever(similarity_top_k=1).retrieve("before: not traced")
        with trace_to("lib.jsonl"):
            print([n.node.node_id for n in index.as_retriever(similarity_top_k=1).retrieve("alpha?")])
    """))
    proc = run([str(script)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = logged_runs(read_events(tmp_path / "lib.jsonl"))
    assert [(r.kind, r.start["name"], r.start.get("query")) for r in runs] == [
        ("retriever", "VectorIndexRetriever", "alpha?"), ("chain", "MockEmbedding", None)]


def test_an_incompatible_llamaindex_is_one_warning_and_an_unchanged_program(tmp_path: Path) -> None:
    # A LlamaIndex whose dispatcher has no add_span_handler: rtrace cannot hook it.
    env = break_api(tmp_path, "llama_index_instrumentation.dispatcher", "Dispatcher", "add_span_handler")
    sample = ROOT / "samples" / "llamaindex_pipeline.py"
    plain = run([str(sample)], tmp_path, env)
    proc, events = traced(sample, tmp_path, env=env)
    assert plain.returncode == proc.returncode == 0, proc.stderr
    assert proc.stdout == plain.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtrace: warning: LlamaIndex tracing is off: "), proc.stderr
    assert "add_span_handler" in lines[0]
    assert logged_runs(events) == []
    assert [e["event"] for e in events] == ["session_start", "session_end"]
    assert events[-1]["exit_code"] == 0


def test_frameworks_are_not_imported_by_rtrace(tmp_path: Path) -> None:
    # README: a framework the script never imports costs nothing (LangChain is hooked only if the script imports it)
    code = "import sys; print(sorted(m for m in sys.modules if m.startswith(('llama_index', 'haystack', 'langchain'))))"
    proc, _ = traced("-c", tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"





REQUEST_PROGRAM = """
from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import TextNode

class Odd(BaseRetriever):
    # Attributes that run code when read: rtrace must not read them.
    reads = 0
    @property
    def _similarity_top_k(self):
        Odd.reads += 1
        raise RuntimeError("read me not")
    def __getattr__(self, name):
        Odd.reads += 1
        raise RuntimeError("read me not: " + name)
    def _retrieve(self, query_bundle):
        return []

index = VectorStoreIndex([TextNode(id_=f"n{i}", text=t) for i, t in enumerate(["alpha", "beta", "gamma"])],
                         embed_model=MockEmbedding(embed_dim=4, model_name="mock-embed-4"))
print([n.node.node_id for n in index.as_retriever(similarity_top_k=2).retrieve("alpha?")])
print([n.node.node_id for n in index.as_retriever(vector_store_query_mode="mmr").retrieve("beta?")])
unnamed = VectorStoreIndex([TextNode(id_="u", text="delta")], embed_model=MockEmbedding(embed_dim=4))
print([n.node.node_id for n in unnamed.as_retriever(similarity_top_k=1).retrieve("delta?")])
print(Odd().retrieve("odd?"), Odd.reads)
"""


@pytest.mark.timeout(120)
def test_retriever_runs_record_what_they_asked_for_as_langchain_runs_do(tmp_path: Path) -> None:
    script = tmp_path / "request.py"
    script.write_text(REQUEST_PROGRAM)
    plain = run([str(script)], tmp_path)
    proc, events = traced(script, tmp_path)
    assert plain.returncode == proc.returncode == 0, proc.stderr
    assert proc.stdout == plain.stdout and proc.stdout.endswith("[] 0\n")  # nothing of the user's was read
    keys = ("k", "search_type", "vector_store", "embedding_provider", "embedding_model")
    starts = [e for e in events if e["event"] == "retriever_start"]
    assert [(e["name"], e["query"], {k: e[k] for k in keys if k in e}) for e in starts] == [
        ("VectorIndexRetriever", "alpha?", {"k": 2, "search_type": "similarity", "vector_store": "SimpleVectorStore",
                                            "embedding_provider": "MockEmbedding", "embedding_model": "mock-embed-4"}),
        # LlamaIndex's own default k; its query mode as is when LangChain has no other name for it
        ("VectorIndexRetriever", "beta?", {"k": 2, "search_type": "mmr", "vector_store": "SimpleVectorStore",
                                           "embedding_provider": "MockEmbedding", "embedding_model": "mock-embed-4"}),
        # MockEmbedding's model_name defaults to LlamaIndex's placeholder "unknown": no model is known
        ("VectorIndexRetriever", "delta?", {"k": 1, "search_type": "similarity", "vector_store": "SimpleVectorStore",
                                            "embedding_provider": "MockEmbedding"}),
        ("Odd", "odd?", {}),
    ]
    # What a jq user selects, and what an OTel backend receives.
    log = tmp_path / "log.jsonl"
    assert [e["query"] for e in map(json.loads, log.read_text().splitlines()) if e.get("k") == 2] == ["alpha?", "beta?"]
    out = tmp_path / "otel.json"
    exported = run(["-m", "rtrace.cli", "export", str(log), "-o", str(out)], tmp_path)
    assert exported.returncode == 0, exported.stderr
    spans = {}
    for line in out.read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    attrs = {a["key"]: next(iter(a["value"].values())) for a in span.get("attributes", [])}
                    if attrs.get("gen_ai.operation.name") == "retrieval":
                        spans[attrs["input.value"]] = attrs
    assert spans["alpha?"]["gen_ai.retrieval.top_k"] == "2"  # OTLP JSON: int64 as a string
    assert spans["alpha?"]["gen_ai.data_source.id"] == "SimpleVectorStore"
    assert spans["alpha?"]["rtrace.embedding_model"] == "mock-embed-4"
    assert "gen_ai.retrieval.top_k" not in spans["odd?"] and spans["odd?"]["gen_ai.data_source.id"] == "Odd"


def test_the_programs_retrievers_say_what_they_asked_for_and_stages_say_nothing(both: dict[str, Any]) -> None:
    keys = ("k", "search_type", "score_threshold", "fetch_k", "vector_store", "embedding_provider", "embedding_model")
    asked = {(r.start["name"], r.stage, tuple((k, r.start[k]) for k in keys if k in r.start))
             for r in both["runs"] if r.kind == "retriever"}
    vector = (("search_type", "similarity"), ("vector_store", "SimpleVectorStore"), ("embedding_provider", "MockEmbedding"))
    assert asked == {
        ("VectorIndexRetriever", None, (("k", 3), *vector)), ("VectorIndexRetriever", None, (("k", 2), *vector)),
        ("QueryFusionRetriever", None, (("k", 3),)), ("RouterRetriever", None, ()), ("BrokenRetriever", None, ()),
        ("SimilarityPostprocessor", "rerank", ()),  # a rerank stage: none of the request fields
    }
