"""An asyncio fan-out: 50 concurrent queries, each searching three shards concurrently."""

from __future__ import annotations

import asyncio

from searchlib import BM25Index, load_corpus

from rtrace.core import Document, retriever

DOCS = load_corpus()
SHARDS = [BM25Index(DOCS[i::3]) for i in range(3)]
TOPICS = ["bm25", "vector", "rerank", "chunk", "retry", "filter", "cache", "fusion", "ndcg", "index"]


@retriever(name="Shard")
async def shard(query: str, n: int) -> list[tuple[Document, float]]:
    await asyncio.sleep(0.001 * (1 + (n + len(query)) % 5))  # deterministic "network" latency
    return SHARDS[n].search(query, 2)


@retriever(name="FanOut")
async def fan_out(query: str) -> list[tuple[Document, float]]:
    parts = await asyncio.gather(*(shard(query, n) for n in range(len(SHARDS))))
    merged = [hit for part in parts for hit in part]
    merged.sort(key=lambda p: (-p[1], p[0].id))
    return merged[:3]


async def main() -> None:
    queries = [f"{TOPICS[i % len(TOPICS)]} query {i}" for i in range(50)]
    results = await asyncio.gather(*(fan_out(q) for q in queries))
    for q, hits in zip(queries, results):
        print(f"{q}: {' '.join(d.id for d, _ in hits) or '-'}")


if __name__ == "__main__":
    asyncio.run(main())
