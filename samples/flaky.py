"""A flaky vector store behind tenacity retries: most queries recover, one fails for good.

Deterministic: the failures come from a seeded generator, not the clock.

Needs tenacity: `pip install -e '.[samples]'`.
"""

from __future__ import annotations

import random

from searchlib import require  # noqa: I001 - before the framework import: one line if it is missing

require("tenacity")

import tenacity  # noqa: E402
from searchlib import VectorIndex, load_corpus

from rtrace.core import CallbackManagerForRetrieverRun, Document, retriever

INDEX = VectorIndex(load_corpus())


class FlakyStore:
    """Times out on a seeded schedule, like a vector database under load."""

    def __init__(self, seed: int = 7, failure_rate: float = 0.45) -> None:
        self.rng = random.Random(seed)
        self.failure_rate = failure_rate

    def search(self, query: str, k: int) -> list[tuple[Document, float]]:
        if self.rng.random() < self.failure_rate:
            raise TimeoutError("vector store did not answer within 200 ms")
        return INDEX.search(query, k)


STORE = FlakyStore()


@retriever(name="FlakyVectorStore", metadata={"store": "flaky", "max_attempts": 3})
def search(query: str, k: int = 3, *, run_manager: CallbackManagerForRetrieverRun) -> list[tuple[Document, float]]:
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_exponential(multiplier=0.005, max=0.02),
        retry=tenacity.retry_if_exception_type(TimeoutError),
        before_sleep=run_manager.on_retry,
        reraise=True,
    )
    return retrying(STORE.search, query, k)


QUERIES = [
    "approximate nearest neighbour graph",
    "metadata filters before vector search",
    "cache answers for similar queries",
    "compress vectors into short codes",
    "re-index after an embedding upgrade",
    "hybrid keyword and vector fusion",
]

if __name__ == "__main__":
    for q in QUERIES:
        try:
            hits = search(q)
            print(f"ok      {q}: {', '.join(d.id for d, _ in hits)}")
        except TimeoutError as e:
            print(f"FAILED  {q}: {e}")
