"""Per-call overhead of rtrace's framework hooks: LangChain, LlamaIndex, Haystack.

    python tests/bench/frameworks.py [--calls N] [--rounds R]

For each framework, one retriever call as a user makes it, returning 5 documents:
LangChain ``BaseRetriever.invoke``, LlamaIndex ``BaseRetriever.retrieve`` (a custom
retriever: no embedding, so only the retriever run is measured), Haystack
``Pipeline.run`` of a one-retriever pipeline (a pipeline run and a retriever run).
Then the frameworks' own stores, whose runs also record what was asked (``k``, the
store, the embedding model): a LlamaIndex ``VectorStoreIndex`` retriever over
``MockEmbedding`` (the query embedding is a child run), and a Haystack pipeline of
``InMemoryBM25Retriever``.
Cases, interleaved round by round in one process so drift hits all alike:
the framework with no rtrace hook (baseline), the hook installed but nothing
recording (``trace_frameworks()`` outside any ``trace_to``), and the hook writing a
fresh JSONL log each round. Prints the median CPU µs per call over R rounds, the µs
rtrace adds, and the median of the per-round ratios to the baseline.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rtrace.core import JsonlHandler
from rtrace.core.integrations.frameworks import hook

QUERY = "what is reciprocal rank fusion?"
TEXTS = [f"passage {i} about retrieval " * 4 for i in range(5)]


def langchain_call() -> Callable[[], Any]:
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    docs = [Document(t, metadata={"source": f"doc{i}.md"}, id=f"d{i}") for i, t in enumerate(TEXTS)]

    class Fixed(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
            return docs

    r = Fixed()
    return lambda: r.invoke(QUERY)


def llamaindex_call() -> Callable[[], Any]:
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, TextNode

    nodes = [NodeWithScore(node=TextNode(id_=f"d{i}", text=t, metadata={"source": f"doc{i}.md"}), score=1 - i / 10)
             for i, t in enumerate(TEXTS)]

    class Fixed(BaseRetriever):
        def _retrieve(self, query_bundle: Any) -> list[NodeWithScore]:
            return nodes

    r = Fixed()
    return lambda: r.retrieve(QUERY)


def haystack_call() -> Callable[[], Any]:
    from haystack import Document, Pipeline, component

    docs = [Document(id=f"d{i}", content=t, meta={"source": f"doc{i}.md"}, score=1 - i / 10)
            for i, t in enumerate(TEXTS)]

    @component
    class FixedRetriever:
        @component.output_types(documents=list[Document])
        def run(self, query: str) -> dict[str, list[Document]]:
            return {"documents": docs}

    pipe = Pipeline()
    pipe.add_component("retriever", FixedRetriever())
    return lambda: pipe.run({"retriever": {"query": QUERY}})


def llamaindex_vector_call() -> Callable[[], Any]:
    from llama_index.core import VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.schema import TextNode

    nodes = [TextNode(id_=f"d{i}", text=t, metadata={"source": f"doc{i}.md"}) for i, t in enumerate(TEXTS)]
    index = VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=8, model_name="mock-embed-8"))
    r = index.as_retriever(similarity_top_k=5)
    return lambda: r.retrieve(QUERY)


def haystack_bm25_call() -> Callable[[], Any]:
    from haystack import Document, Pipeline
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    store = InMemoryDocumentStore()
    store.write_documents([Document(id=f"d{i}", content=t, meta={"source": f"doc{i}.md"}) for i, t in enumerate(TEXTS)])
    pipe = Pipeline()
    pipe.add_component("retriever", InMemoryBM25Retriever(store, top_k=5))
    return lambda: pipe.run({"retriever": {"query": QUERY}})


# case -> (label, the framework hooked, the call)
FRAMEWORKS: dict[str, tuple[str, str, Callable[[], Callable[[], Any]]]] = {
    "langchain": ("LangChain  BaseRetriever.invoke", "langchain", langchain_call),
    "llamaindex": ("LlamaIndex BaseRetriever.retrieve", "llamaindex", llamaindex_call),
    "haystack": ("Haystack   Pipeline.run (1 retriever)", "haystack", haystack_call),
    "llamaindex-vector": ("LlamaIndex VectorStoreIndex retriever (MockEmbedding)", "llamaindex", llamaindex_vector_call),
    "haystack-bm25": ("Haystack   Pipeline.run (InMemoryBM25Retriever)", "haystack", haystack_bm25_call),
}


def per_call(fn: Callable[[], Any], calls: int) -> float:
    """CPU µs per call (``process_time``: what the caller pays, mostly immune to other processes)."""
    gc.collect()
    t0 = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - t0) / calls * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2_000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    for var in [v for v in os.environ if v.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_", "HAYSTACK_"))]:
        os.environ.pop(var)
    tmp = Path(tempfile.mkdtemp(prefix=f"rtrace-bench-fw-{os.getpid()}-"))
    print(f"framework hook overhead: {args.calls} calls x {args.rounds} rounds, median CPU µs per call "
          f"(Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})\n")
    for case_name, (label, name, make) in FRAMEWORKS.items():
        module = hook(name)
        call = make()
        times: dict[str, list[float]] = {"baseline": [], "idle": [], "jsonl": []}
        for round_ in range(args.rounds + 1):  # round 0 warms up and is dropped
            for case in times:
                if case == "idle" and name == "langchain":  # LangChain's hook always has a handler
                    continue
                handler = JsonlHandler(tmp / f"{case_name}-{round_}.jsonl") if case == "jsonl" else None
                if case != "baseline":
                    module.install(handler)
                t = per_call(call, args.calls)
                if case != "baseline":
                    module.uninstall(handler)
                if handler is not None:
                    handler.close()
                if round_:
                    times[case].append(t)
        base = statistics.median(times["baseline"])
        print(label)
        print(f"  {'no rtrace (baseline)':<34} {base:9.1f} µs   ratio  1.00")
        for case, what in (("idle", "hook installed, nothing recording"), ("jsonl", "hook recording to JSONL")):
            if times[case]:
                t = statistics.median(times[case])
                ratio = statistics.median(a / b for a, b in zip(times[case], times["baseline"]))
                print(f"  {what:<34} {t:9.1f} µs   ratio {ratio:5.2f}   {t - base:+.1f} µs per call")
        print()


if __name__ == "__main__":
    try:
        main()
    finally:  # the logs each round wrote
        for leftover in Path(tempfile.gettempdir()).glob(f"rtrace-bench-fw-{os.getpid()}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
