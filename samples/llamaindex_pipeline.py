"""A plain LlamaIndex program: no rtrace import. `rtrace run` traces it unmodified.

A VectorStoreIndex over the sample corpus with a deterministic embedding (no model
download), a keyword retriever of our own, both fused by QueryFusionRetriever,
a query engine that reranks the fused nodes, and the same fusion called async.

    python samples/llamaindex_pipeline.py
    rtrace run samples/llamaindex_pipeline.py && rtrace show

Needs llama-index-core: `pip install -e '.[samples]'`.
"""

from __future__ import annotations

import asyncio

from searchlib import require  # noqa: I001 - before the framework import: one line if it is missing

require("llama_index.core")

from llama_index.core import VectorStoreIndex  # noqa: E402
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import BaseRetriever, QueryFusionRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from searchlib import BM25Index, embed, load_corpus, tokenize


class HashEmbedding(BaseEmbedding):
    """Deterministic embeddings (stands in for a real model; no download)."""

    def _get_query_embedding(self, query: str) -> list[float]:
        return embed(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return embed(text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return embed(query)


class KeywordRetriever(BaseRetriever):
    """BM25 over the same nodes."""

    def __init__(self, nodes: list[TextNode], k: int = 4) -> None:
        super().__init__()
        self.nodes = {n.node_id: n for n in nodes}
        self.index = BM25Index(load_corpus())
        self.k = k

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.index.search(query_bundle.query_str, self.k)
        return [NodeWithScore(node=self.nodes[doc.id], score=score) for doc, score in hits]


class OverlapRerank(BaseNodePostprocessor):
    """Rescore by query-term overlap (a stand-in for a cross-encoder)."""

    top_n: int = 3

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        terms = set(tokenize(query_bundle.query_str if query_bundle else ""))
        scored = [NodeWithScore(node=n.node, score=float(len(terms & set(tokenize(n.node.text)))))
                  for n in nodes]
        scored.sort(key=lambda n: (-(n.score or 0.0), n.node.node_id))
        return scored[: self.top_n]


def build() -> tuple[QueryFusionRetriever, RetrieverQueryEngine]:
    nodes = [TextNode(id_=d.id, text=d.page_content, metadata=d.metadata) for d in load_corpus()]
    index = VectorStoreIndex(nodes, embed_model=HashEmbedding())
    fusion = QueryFusionRetriever(
        [index.as_retriever(similarity_top_k=4), KeywordRetriever(nodes)],
        llm=MockLLM(), similarity_top_k=4, num_queries=1, mode="reciprocal_rerank", use_async=False,
    )
    engine = RetrieverQueryEngine.from_args(fusion, llm=MockLLM(), node_postprocessors=[OverlapRerank()])
    return fusion, engine


if __name__ == "__main__":
    fusion, engine = build()
    print("fused:", [n.node.node_id for n in fusion.retrieve("how do rerankers work?")])
    response = engine.query("chunk overlap and context")
    print("answered from:", [n.node.node_id for n in response.source_nodes])
    nodes = asyncio.run(fusion.aretrieve("approximate nearest neighbour index"))
    print("async:", [n.node.node_id for n in nodes])
