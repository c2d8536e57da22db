"""A plain LangChain pipeline: no rtrace import. `rtrace run` traces it unmodified.

InMemoryVectorStore with a deterministic embedding, its retriever inside a
Runnable chain, and a custom BaseRetriever that calls a child retriever with
run_manager.get_child().

Needs langchain-core and numpy: `pip install -e '.[samples]'`.
"""

from __future__ import annotations

from searchlib import require  # noqa: I001 - before the framework import: one line if it is missing

require("langchain_core", "numpy")

from langchain_core.callbacks import CallbackManagerForRetrieverRun  # noqa: E402
from langchain_core.documents import Document
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


def build() -> tuple[object, BaseRetriever]:
    corpus = load_corpus()
    store = InMemoryVectorStore(HashEmbeddings())
    store.add_documents(
        [Document(d.page_content, metadata=d.metadata, id=d.id) for d in corpus]
    )
    retriever = store.as_retriever(search_kwargs={"k": 4})
    chain = RunnableLambda(lambda q: q.strip().lower()) | retriever
    return chain, SourceFilterRetriever(child=retriever, prefix="wiki/")


if __name__ == "__main__":
    chain, wiki_only = build()
    for q in ["  How do rerankers work?  ", "  Chunk overlap and context  "]:
        docs = chain.invoke(q)
        print(f"{q.strip()}: {[d.id for d in docs]}")
    docs = wiki_only.invoke("approximate nearest neighbour index")
    print(f"wiki only: {[d.id for d in docs]}")
