"""Scores, requests and stages of unmodified LangChain retrievers (InMemoryVectorStore, FAISS).

Each script is plain LangChain; it is run under `rtrace run` and prints, as JSON, what
`similarity_search_with_score` / `similarity_search_with_relevance_scores` return for the
same queries, which the recorded scores must equal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import read_events

ENV = {k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_"))}

STORE = """
import json, math, sys
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

WORDS = "bm25 dense sparse rerank index vector query chunk cosine graph".split()

class Emb(Embeddings):
    def embed_documents(self, texts):
        return [self.embed_query(t) for t in texts]
    def embed_query(self, text):
        v = [text.lower().count(w) + 0.1 * (i + 1) * (len(text) % 3) for i, w in enumerate(WORDS)]
        n = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / n for x in v]

TEXTS = ["bm25 ranks sparse terms", "dense vector index", "rerank with a cross encoder query",
         "chunk the documents", "cosine of two vectors", "graph index for vector search",
         "sparse and dense together", "query rewriting"]
DOCS = [Document(t, metadata={"n": i}, id=f"d{i}") for i, t in enumerate(TEXTS)]
Q = "dense vector query"
"""


def run(tmp_path: Path, body: str, *args: str, compare: bool = False) -> tuple[list[dict[str, Any]], Any]:
    script = tmp_path / "script.py"
    script.write_text(STORE + textwrap.dedent(body))
    log = tmp_path / "log.jsonl"
    r = subprocess.run([sys.executable, "-m", "rtrace.cli", "run", "-q", "-o", str(log), *args, str(script)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    if compare:  # (the harness program lc_vectorstore_scores.py checks this for every store path too)
        plain = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                               timeout=120, env=ENV)
        assert plain.stdout == r.stdout and plain.stderr == r.stderr  # the script sees no difference
    return read_events(log), json.loads(r.stdout.splitlines()[-1])


def ends(events: list[dict[str, Any]], name: str = "VectorStoreRetriever") -> list[dict[str, Any]]:
    starts = {e["run_id"] for e in events if e["event"] == "retriever_start" and e["name"] == name}
    return [e for e in events if e["event"] == "retriever_end" and e["run_id"] in starts]


def scored(end: dict[str, Any]) -> list[tuple[str, float, str | None]]:
    return [(d["id"], d["score"], d.get("score_kind")) for d in end["documents"]]


@pytest.mark.timeout(120)
def test_in_memory_similarity_and_mmr_scores_are_the_stores(tmp_path: Path, validate: Any) -> None:
    events, truth = run(tmp_path, """
        from langchain_core.vectorstores import InMemoryVectorStore
        store = InMemoryVectorStore(Emb())
        store.add_documents(DOCS)
        sim = store.as_retriever(search_kwargs={"k": 3}).invoke(Q)
        mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 3, "fetch_k": 8}).invoke(Q)
        every = dict((d.id, s) for d, s in store.similarity_search_with_score(Q, k=8))
        print(json.dumps({"sim": [[d.id, every[d.id]] for d in sim], "mmr": [[d.id, every[d.id]] for d in mmr]}))
    """, compare=True)
    validate(events)
    sim, mmr = ends(events)
    assert scored(sim) == [(i, s, "similarity") for i, s in truth["sim"]]
    assert scored(mmr) == [(i, s, "similarity") for i, s in truth["mmr"]]
    assert [d["id_source"] for d in sim["documents"]] == ["store"] * 3
    assert sim["score_source"] == "InMemoryVectorStore.similarity_search_with_score"
    starts = [e for e in events if e["event"] == "retriever_start"]
    assert {k: starts[0].get(k) for k in ("k", "search_type", "vector_store", "embedding_provider")} == {
        "k": 3, "search_type": "similarity", "vector_store": "InMemoryVectorStore", "embedding_provider": "Emb"}
    assert (starts[1]["search_type"], starts[1]["k"], starts[1]["fetch_k"]) == ("mmr", 3, 8)
    # stages: the search, and inside it the query embedding, as child runs with durations
    chains = {e["run_id"]: e for e in events if e["event"] == "chain_start"}
    stages = [(c["name"], c["metadata"]["rtrace_stage"]) for c in chains.values()]
    assert stages == [("InMemoryVectorStore.similarity_search", "search"), ("Emb", "embedding"),
                      ("InMemoryVectorStore.max_marginal_relevance_search", "search"), ("Emb", "embedding")]
    search, embed = list(chains.values())[:2]
    assert search["parent_run_id"] == starts[0]["run_id"] and embed["parent_run_id"] == search["run_id"]
    assert all(isinstance(e["duration_ms"], float) for e in events if e["event"] == "chain_end")


@pytest.mark.timeout(120)
def test_score_threshold_records_relevance_and_a_stock_store_error_unchanged(tmp_path: Path) -> None:
    events, truth = run(tmp_path, """
        from langchain_core.vectorstores import InMemoryVectorStore

        class CosineStore(InMemoryVectorStore):
            def _select_relevance_score_fn(self):
                return lambda s: (s + 1.0) / 2.0

        store = CosineStore(Emb())
        store.add_documents(DOCS)
        r = store.as_retriever(search_type="similarity_score_threshold", search_kwargs={"k": 4, "score_threshold": 0.8})
        got = r.invoke(Q)
        stock = InMemoryVectorStore(Emb())
        stock.add_documents(DOCS)
        try:  # LangChain's InMemoryVectorStore has no relevance function: the user gets its error
            stock.as_retriever(search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.5}).invoke(Q)
        except NotImplementedError as e:
            print("stock:", type(e).__name__, len(e.__traceback__.tb_frame.f_code.co_filename) > 0)
        rel = store.similarity_search_with_relevance_scores(Q, k=4, score_threshold=0.8)
        print(json.dumps([[d.id, s] for d, s in rel]))
    """)
    ok = ends(events)[0]
    assert scored(ok) == [(i, s, "relevance") for i, s in truth] and truth
    start = next(e for e in events if e["event"] == "retriever_start")
    assert start["score_threshold"] == 0.8 and start["search_type"] == "similarity_score_threshold"
    error = next(e for e in events if e["event"] == "retriever_error")
    assert error["error"]["type"] == "NotImplementedError"
    assert "langchain_stores" not in error["error"]["traceback"]  # no rtrace frame in what the user sees


@pytest.mark.timeout(120)
def test_faiss_scores_are_its_distances(tmp_path: Path) -> None:
    events, truth = run(tmp_path, """
        import warnings
        warnings.simplefilter("ignore")
        from langchain_community.vectorstores import FAISS
        store = FAISS.from_documents(DOCS, Emb())
        sim = store.as_retriever(search_kwargs={"k": 3}).invoke(Q)
        mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 6}).invoke(Q)
        thr = store.as_retriever(search_type="similarity_score_threshold",
                                 search_kwargs={"k": 3, "score_threshold": 0.1}).invoke(Q)
        every = dict((d.id, float(s)) for d, s in store.similarity_search_with_score(Q, k=8))
        rel = dict((d.id, float(s)) for d, s in store.similarity_search_with_relevance_scores(Q, k=8))
        print(json.dumps({"sim": [[d.id, every[d.id]] for d in sim], "mmr": [[d.id, every[d.id]] for d in mmr],
                          "thr": [[d.id, rel[d.id]] for d in thr]}))
    """)
    sim, mmr, thr = ends(events)
    assert scored(sim) == [(i, pytest.approx(s), "distance") for i, s in truth["sim"]]
    assert scored(mmr) == [(i, pytest.approx(s), "distance") for i, s in truth["mmr"]]
    assert scored(thr) == [(i, pytest.approx(s), "relevance") for i, s in truth["thr"]] and truth["thr"]
    assert [d["score"] for d in sim["documents"]] == sorted(d["score"] for d in sim["documents"])  # L2: ascending


@pytest.mark.timeout(120)
def test_async_retrievers_and_a_reranker_stage(tmp_path: Path) -> None:
    events, truth = run(tmp_path, """
        import asyncio
        from langchain_core.vectorstores import InMemoryVectorStore
        from langchain_classic.retrievers import ContextualCompressionRetriever
        from langchain_core.documents import BaseDocumentCompressor

        class Reverse(BaseDocumentCompressor):
            def compress_documents(self, documents, query, callbacks=None):
                return [Document(d.page_content, metadata={**d.metadata, "relevance_score": 1.0 / (i + 1)}, id=d.id)
                        for i, d in enumerate(reversed(documents))][:2]

        store = InMemoryVectorStore(Emb())
        store.add_documents(DOCS)
        base = store.as_retriever(search_kwargs={"k": 3})
        ccr = ContextualCompressionRetriever(base_compressor=Reverse(), base_retriever=base)
        a = asyncio.run(base.ainvoke(Q))
        got = ccr.invoke(Q)
        every = dict((d.id, s) for d, s in store.similarity_search_with_score(Q, k=8))
        print(json.dumps({"async": [[d.id, every[d.id]] for d in a], "ccr": [d.id for d in got]}))
    """)
    assert scored(ends(events)[0]) == [(i, s, "similarity") for i, s in truth["async"]]
    rerank_start = next(e for e in events if e["event"] == "retriever_start" and e["name"] == "Reverse")
    rerank_end = ends(events, "Reverse")[0]
    ccr = next(e for e in events if e["event"] == "retriever_start" and e["name"] == "ContextualCompressionRetriever")
    assert rerank_start["parent_run_id"] == ccr["run_id"] and rerank_start["metadata"]["rtrace_stage"] == "rerank"
    given = [d["id"] for d in rerank_start["input_documents"]]
    assert given == [i for i, _ in truth["async"]]  # what the base retriever returned, in order
    assert [d["id"] for d in rerank_end["documents"]] == truth["ccr"] == given[::-1][:2]
    assert [d["score"] for d in rerank_end["documents"]] == [1.0, 0.5]


@pytest.mark.timeout(120)
def test_library_opt_in_with_trace_to(tmp_path: Path) -> None:
    script = tmp_path / "lib.py"
    script.write_text(STORE + textwrap.dedent("""
        from rtrace.core import JsonlHandler, trace_frameworks
        from langchain_core.vectorstores import InMemoryVectorStore
        trace_frameworks()  # the one line: scores, requests and stages of LangChain vector stores
        store = InMemoryVectorStore(Emb())
        store.add_documents(DOCS)
        handler = JsonlHandler(sys.argv[1], content="hash")
        docs = store.as_retriever(search_kwargs={"k": 2}).invoke(Q, config={"callbacks": [handler]})
        handler.close()
        print(json.dumps([[d.id, s] for d, s in store.similarity_search_with_score(Q, k=2)]))
    """))
    log = tmp_path / "lib.jsonl"
    r = subprocess.run([sys.executable, str(script), str(log)], capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    truth = json.loads(r.stdout)
    events = read_events(log)
    (end,) = ends(events)
    assert scored(end) == [(i, s, "similarity") for i, s in truth]
    # --content hash: ids, scores and lengths stay, text does not
    from rtrace.core.record.documents import content_hash

    start = next(e for e in events if e["event"] == "retriever_start")
    assert start["query"] == content_hash("dense vector query") and start["query_length"] == 18
    assert all(d["page_content"].startswith("sha256:") and d["content_length"] > 0 for d in end["documents"])
    assert events[0]["content"] == "hash"


@pytest.mark.timeout(120)
def test_the_samples_reranker_moves_are_readable(tmp_path: Path) -> None:
    from conftest import ROOT
    from rtrace.core.read.diff import rerank_moves
    from rtrace.core.read.reader import read_lines
    from rtrace.core.read.trees import Trace, TreeBuilder

    log = tmp_path / "lc.jsonl"
    r = subprocess.run([sys.executable, "-m", "rtrace.cli", "run", "-q", "-o", str(log),
                        str(ROOT / "samples" / "langchain_pipeline.py")], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    runs = [run for item in TreeBuilder().build(read_lines([str(log)])) if isinstance(item, Trace) for run in item.runs]
    (stage,) = [run for run in runs if run.name == "KeywordReranker"]
    moves = rerank_moves(stage)
    given = next(e for e in read_events(log) if e["event"] == "retriever_start" and e["name"] == "KeywordReranker")
    assert [m.key for m in moves] == [d["id"] for d in given["input_documents"]]
    # the sample's reranker keeps the top 3 by word overlap: rerank-01 stays first, two are dropped
    assert [(m.key, m.before, m.after) for m in moves][0] == ("rerank-01", 1, 1)
    assert sum(m.after is None for m in moves) == 2 and all(m.moved is None for m in moves if m.after is None)
    assert all(rerank_moves(run) is None for run in runs if run.name != "KeywordReranker")


@pytest.mark.timeout(120)
def test_a_custom_retriever_gets_scores_and_stages_once_its_store_is_wrapped(tmp_path: Path) -> None:
    # A retriever with no `vectorstore` field is not searched for a store: its first call records
    # no scores (its store class is not wrapped yet; a call nothing can read a capture of gets
    # none). Once a VectorStoreRetriever has met that store class, the same custom retriever's
    # calls carry the store's scores and a search stage of their own, and an outer custom
    # retriever wrapping it takes none of the inner run's scores.
    events, truth = run(tmp_path, """
        from typing import Any
        from langchain_core.retrievers import BaseRetriever
        from langchain_core.vectorstores import InMemoryVectorStore

        class Custom(BaseRetriever):
            index: Any
            def _get_relevant_documents(self, query, *, run_manager):
                return [d for d, _ in self.index.similarity_search_with_score(query, k=2)]

        class Outer(BaseRetriever):
            inner: Any
            def _get_relevant_documents(self, query, *, run_manager):
                return self.inner.invoke(query, config={"callbacks": run_manager.get_child()})

        store = InMemoryVectorStore(Emb())
        store.add_documents(DOCS)
        custom = Custom(index=store)
        first = custom.invoke(Q)
        store.as_retriever(search_kwargs={"k": 3}).invoke(Q)
        second = custom.invoke(Q)
        outer = Outer(inner=custom).invoke(Q)
        every = dict((d.id, s) for d, s in store.similarity_search_with_score(Q, k=8))
        print(json.dumps({"second": [[d.id, every[d.id]] for d in second], "outer": [d.id for d in outer]}))
    """, compare=True)
    first, second, inner = ends(events, "Custom")
    assert [d["score"] for d in first["documents"]] == [None, None] and "score_source" not in first
    assert scored(second) == [(i, s, "similarity") for i, s in truth["second"]]
    assert second["score_source"] == "InMemoryVectorStore.similarity_search_with_score"
    assert scored(inner) == scored(second)
    (outer,) = ends(events, "Outer")
    assert [d["id"] for d in outer["documents"]] == truth["outer"] and all(d["score"] is None for d in outer["documents"])
    searches = [e for e in events if e["event"] == "chain_start" and e["metadata"].get("rtrace_stage") == "search"]
    assert [s["parent_run_id"] for s in searches][-2:] == [second["run_id"], inner["run_id"]]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("call", ["invoke", "ainvoke"])
def test_a_custom_retrievers_first_call_records_what_its_later_calls_do(tmp_path: Path, call: str) -> None:
    # A retriever with no `vectorstore` field whose call first asks a VectorStoreRetriever (which
    # wraps the store class) and then the store itself: the direct search's scores and stage
    # belong to the custom retriever's run on its very first call, as on every later one. (A
    # call skipped capturing because nothing was wrapped when it started lost them.)
    events, truth = run(tmp_path, f"""
        import asyncio
        from typing import Any
        from langchain_core.retrievers import BaseRetriever
        from langchain_core.vectorstores import InMemoryVectorStore

        class Holder(BaseRetriever):
            index: Any
            def _get_relevant_documents(self, query, *, run_manager):
                self.index.as_retriever(search_kwargs={{"k": 1}}).invoke(
                    query, config={{"callbacks": run_manager.get_child()}})
                return [d for d, _ in self.index.similarity_search_with_score(query, k=2)]

        store = InMemoryVectorStore(Emb())
        store.add_documents(DOCS)
        holder = Holder(index=store)
        call = (lambda q: asyncio.run(holder.ainvoke(q))) if "{call}" == "ainvoke" else holder.invoke
        first, second = call(Q), call(Q)
        every = dict((d.id, s) for d, s in store.similarity_search_with_score(Q, k=8))
        print(json.dumps([[d.id, every[d.id]] for d in first]))
    """, compare=True)
    first, second = ends(events, "Holder")
    for end in (first, second):
        assert scored(end) == [(i, s, "similarity") for i, s in truth]
        assert end["score_source"] == "InMemoryVectorStore.similarity_search_with_score"
        stages = [e for e in events if e["event"] == "chain_start" and e["parent_run_id"] == end["run_id"]]
        assert [s["name"] for s in stages] == ["InMemoryVectorStore.similarity_search_with_score"]
