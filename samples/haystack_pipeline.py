"""A plain Haystack pipeline: no rtrace import. `rtrace run` traces it unmodified.

Hybrid retrieval over Haystack's in-memory store: BM25 and embedding retrievers
(with a deterministic text embedder: no model download), joined by reciprocal rank
fusion, then reranked; run sync twice and async once.

    python samples/haystack_pipeline.py
    rtrace run samples/haystack_pipeline.py && rtrace show

Needs haystack-ai: `pip install -e '.[samples]'`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from searchlib import require  # noqa: I001 - before the framework import: one line if it is missing

require("haystack")

from haystack import Document, Pipeline, component  # noqa: E402
from haystack.components.joiners import DocumentJoiner
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
from haystack.document_stores.in_memory import InMemoryDocumentStore
from searchlib import embed, load_corpus, tokenize


@component
class HashTextEmbedder:
    """Deterministic query embeddings (stands in for a real model; no download)."""

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, list[float]]:
        return {"embedding": embed(text)}


@component
class OverlapRanker:
    """Rescore by query-term overlap (a stand-in for a cross-encoder)."""

    def __init__(self, top_k: int = 3) -> None:
        self.top_k = top_k

    @component.output_types(documents=list[Document])
    def run(self, query: str, documents: list[Document]) -> dict[str, list[Document]]:
        terms = set(tokenize(query))
        scored = [Document(id=d.id, content=d.content, meta=d.meta,
                           score=float(len(terms & set(tokenize(d.content or ""))))) for d in documents]
        scored.sort(key=lambda d: (-(d.score or 0.0), d.id))
        return {"documents": scored[: self.top_k]}


def build(pipeline_class: type = Pipeline) -> Any:
    store = InMemoryDocumentStore()
    store.write_documents([
        Document(id=d.id, content=d.page_content, meta=d.metadata, embedding=embed(d.page_content))
        for d in load_corpus()
    ])
    pipe = pipeline_class()
    pipe.add_component("embedder", HashTextEmbedder())
    pipe.add_component("bm25", InMemoryBM25Retriever(store, top_k=4))
    pipe.add_component("dense", InMemoryEmbeddingRetriever(store, top_k=4))
    pipe.add_component("fuse", DocumentJoiner(join_mode="reciprocal_rank_fusion"))
    pipe.add_component("rerank", OverlapRanker(top_k=3))
    pipe.connect("embedder.embedding", "dense.query_embedding")
    pipe.connect("bm25.documents", "fuse.documents")
    pipe.connect("dense.documents", "fuse.documents")
    pipe.connect("fuse.documents", "rerank.documents")
    return pipe


def async_pipeline(pipe: Any) -> Any:
    """The pipeline itself where it runs async (Haystack 3), else an AsyncPipeline (Haystack 2)."""
    if hasattr(pipe, "run_async"):
        return pipe
    from haystack import AsyncPipeline

    return build(AsyncPipeline)


def inputs(query: str) -> dict[str, dict[str, str]]:
    return {"embedder": {"text": query}, "bm25": {"query": query}, "rerank": {"query": query}}


if __name__ == "__main__":
    pipe = build()
    for q in ["how do rerankers work?", "chunk overlap and context"]:
        docs = pipe.run(inputs(q))["rerank"]["documents"]
        print(f"{q}: {[d.id for d in docs]}")
    docs = asyncio.run(async_pipeline(pipe).run_async(inputs("approximate nearest neighbour index")))
    print(f"async: {[d.id for d in docs['rerank']['documents']]}")
