"""Hybrid retrieval, three levels deep: hybrid -> (keyword, dense) -> fusion -> rerank.

    python samples/hybrid.py            # plain
    rtrace run samples/hybrid.py        # traced: then `rtrace show`
"""

from __future__ import annotations

from searchlib import BM25Index, VectorIndex, load_corpus, tokenize

from rtrace.core import Document, retriever

DOCS = load_corpus()
KEYWORD = BM25Index(DOCS)
VECTORS = VectorIndex(DOCS)


@retriever(name="Keyword", tags=["bm25"])
def keyword(query: str, k: int = 6) -> list[tuple[Document, float]]:
    return KEYWORD.search(query, k)


@retriever(name="Dense", tags=["vector"], metadata={"embedding": "hash-64"})
def dense(query: str, k: int = 6) -> list[tuple[Document, float]]:
    return VECTORS.search(query, k)


@retriever(name="Rerank")
def rerank(query: str, candidates: list[Document], k: int = 3) -> list[tuple[Document, float]]:
    """Rescore by query-term overlap (a stand-in for a cross-encoder)."""
    terms = set(tokenize(query))
    scored = [(d, round(len(terms & set(tokenize(d.page_content))) / (len(terms) or 1), 3)) for d in candidates]
    scored.sort(key=lambda p: (-p[1], p[0].id))
    return scored[:k]


@retriever(name="Hybrid")
def hybrid(query: str, k: int = 3) -> list[tuple[Document, float]]:
    fused: dict[str, float] = {}
    by_id: dict[str, Document] = {}
    for results in (keyword(query), dense(query)):
        for rank, (doc, _) in enumerate(results):
            fused[doc.id] = fused.get(doc.id, 0.0) + 1.0 / (60 + rank)  # reciprocal rank fusion
            by_id[doc.id] = doc
    candidates = [by_id[i] for i in sorted(fused, key=lambda i: (-fused[i], i))]
    return rerank(query, candidates, k)


QUERIES = [
    "how does bm25 length normalisation work",
    "combine keyword and vector results",
    "why retry a vector database with backoff",
    "evaluate ranking quality with ndcg",
]

if __name__ == "__main__":
    for q in QUERIES:
        top = hybrid(q)
        print(f"{q}")
        for doc, score in top:
            print(f"  {score:.3f}  {doc.id:10s} {doc.page_content[:60]}")
