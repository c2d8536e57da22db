"""A plain LangChain pipeline: no rtrace import. `rtrace run` traces it unmodified.

InMemoryVectorStore with a deterministic embedding, its retriever inside a
Runnable chain, a custom BaseRetriever that calls a child retriever with
run_manager.get_child(), and a reranking retriever shaped like LangChain's
ContextualCompressionRetriever (a BaseDocumentCompressor over a base retriever).
Under `rtrace run` each document carries the score the store computed, and the
embedding, search and rerank stages are child runs.

Needs langchain-core and numpy: `pip install -e '.[samples]'`.
"""

from __future__ import annotations

from searchlib import require  # noqa: I001 - before the framework import: one line if it is missing

require("langchain_core", "numpy")

from langchain_core.callbacks import CallbackManagerForRetrieverRun  # noqa: E402
from langchain_core.callbacks import Callbacks  # noqa: E402
from langchain_core.documents import BaseDocumentCompressor, Document  # noqa: E402
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_core.vectorstores import InMemoryVectorStore
from searchlib import embed, load_corpus


class HashEmbeddings(Embeddings):
    """Deterministic embeddings (stands in for a real model; no download)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return embed(text)


class SourceFilterRetriever(BaseRetriever):
    """Keeps the child retriever's hits whose source is under a prefix."""

    child: BaseRetriever
    prefix: str

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.child.invoke(query, config={"callbacks": run_manager.get_child("filtered")})
        return [d for d in hits if d.metadata.get("source", "").startswith(self.prefix)]


class KeywordReranker(BaseDocumentCompressor):
    """Reorders by words shared with the query (stands in for a cross-encoder; no download)."""

    top_n: int = 3

    def compress_documents(self, documents: list[Document], query: str, callbacks: Callbacks = None) -> list[Document]:
        words = set(query.lower().split())

        def overlap(d: Document) -> float:
            return len(words & set(d.page_content.lower().split())) / len(words)

        ranked = sorted(documents, key=overlap, reverse=True)[: self.top_n]
        return [Document(d.page_content, metadata={**d.metadata, "relevance_score": overlap(d)}, id=d.id) for d in ranked]


class RerankRetriever(BaseRetriever):
    """Retrieves with a base retriever, then reranks (as ContextualCompressionRetriever does)."""

    base_retriever: BaseRetriever
    base_compressor: BaseDocumentCompressor

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        docs = self.base_retriever.invoke(query, config={"callbacks": run_manager.get_child()})
        return list(self.base_compressor.compress_documents(docs, query, callbacks=run_manager.get_child()))


def build() -> tuple[object, BaseRetriever, BaseRetriever]:
    corpus = load_corpus()
    store = InMemoryVectorStore(HashEmbeddings())
    store.add_documents(
        [Document(d.page_content, metadata=d.metadata, id=d.id) for d in corpus]
    )
    retriever = store.as_retriever(search_kwargs={"k": 4})
    chain = RunnableLambda(lambda q: q.strip().lower()) | retriever
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 5, "fetch_k": 10})
    reranked = RerankRetriever(base_retriever=mmr, base_compressor=KeywordReranker())
    return chain, SourceFilterRetriever(child=retriever, prefix="wiki/"), reranked


if __name__ == "__main__":
    chain, wiki_only, reranked = build()
    for q in ["  How do rerankers work?  ", "  Chunk overlap and context  "]:
        docs = chain.invoke(q)
        print(f"{q.strip()}: {[d.id for d in docs]}")
    docs = wiki_only.invoke("approximate nearest neighbour index")
    print(f"wiki only: {[d.id for d in docs]}")
    docs = reranked.invoke("how does a reranker reorder candidates")
    print(f"reranked: {[d.id for d in docs]}")
