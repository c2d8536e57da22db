"""A keyword (BM25) retriever over the small corpus shipped beside this file.

    rtrace run samples/bm25.py "vector index"   # one query from argv
    rtrace run samples/bm25.py                  # a few built-in queries
"""

from __future__ import annotations

import sys

from searchlib import BM25Index, load_corpus

from rtrace.core import CallbackManagerForRetrieverRun, Document, Retriever


class BM25Retriever(Retriever):
    """Top-k BM25 over an in-memory corpus; scores travel as metadata["score"]."""

    def __init__(self, docs: list[Document], k: int = 4) -> None:
        super().__init__(tags=["bm25"], metadata={"k": k, "corpus_size": len(docs)})
        self.index = BM25Index(docs)
        self.k = k

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.index.search(query, self.k)
        if not hits:
            run_manager.on_text(f"no term of {query!r} is in the index")
        return [Document(d.page_content, {**d.metadata, "score": s}, id=d.id) for d, s in hits]


if __name__ == "__main__":
    retriever = BM25Retriever(load_corpus())
    queries = sys.argv[1:] or ["bm25 term frequency saturation", "rerank latency", "quantum gravity"]
    for q in queries:
        docs = retriever.invoke(q)
        print(f"{q!r}: {len(docs)} hits")
        for d in docs:
            print(f"  {d.metadata['score']:7.4f}  {d.id}")
