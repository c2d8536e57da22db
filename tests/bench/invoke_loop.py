"""LangChain ``BaseRetriever.invoke`` in a loop; prints its own CPU and wall time per call.

    python tests/bench/invoke_loop.py [--calls N]            # untraced
    rtrace run -q tests/bench/invoke_loop.py [--calls N]     # traced by `rtrace run`

Used by ``overhead.py`` (group ``run``); the loop is timed inside the script, so
process start-up is not counted. One line of JSON: ``{"cpu": s, "wall": s}`` per call.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from typing import Any

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

DOCS = [Document(f"passage {i} about retrieval " * 4, metadata={"source": f"doc{i}.md", "score": 1 - i / 10}, id=f"d{i}")
        for i in range(5)]


class Fixed(BaseRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return DOCS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=5_000)
    calls = ap.parse_args().calls
    r = Fixed()
    for _ in range(200):  # warm up
        r.invoke("warm up")
    gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        r.invoke("what is reciprocal rank fusion?")
    print(json.dumps({"cpu": (time.process_time() - c0) / calls, "wall": (time.perf_counter() - w0) / calls}))


if __name__ == "__main__":
    main()
