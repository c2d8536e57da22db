"""Synthetic logs with every field under the test's control."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SESSION = "0190aaaa-0000-7000-8000-00000000000a"


def rid(n: int) -> str:
    return f"0190bbbb-0000-7000-8000-{n:012d}"


class LogBuilder:
    def __init__(self, session: str = SESSION) -> None:
        self.session = session
        self.lines: list[dict[str, Any]] = []
        self.seq = 0
        self.clock = 0

    def ev(self, event: str, **fields: Any) -> LogBuilder:
        self.seq += 1
        self.clock += 1
        ts = f"2026-11-24T10:{self.clock // 60:02d}:{self.clock % 60:02d}.000000Z"
        self.lines.append({"v": 1, "seq": self.seq, "ts": ts, "event": event, "session_id": self.session, **fields})
        return self

    def session_start(self, argv: list[str] | None = None) -> LogBuilder:
        return self.ev("session_start", argv=argv or ["app.py"], pid=4242, python="3.11.7", rtrace_version="0.1.0", cwd="/w")

    def session_end(self, code: int = 0) -> LogBuilder:
        return self.ev("session_end", exit_code=code, error=None, duration_ms=1234.5, incomplete_runs=[], lost_events=0)

    def start(self, n: int, name: str, query: str, parent: int | None = None, root: int | None = None,
              tags: list[str] | None = None, metadata: dict[str, Any] | None = None, kind: str = "retriever",
              request: dict[str, Any] | None = None) -> LogBuilder:
        fields: dict[str, Any] = {"run_id": rid(n), "parent_run_id": rid(parent) if parent else None,
                                  "trace_id": rid(root or n), "name": name, "tags": tags or [], "metadata": metadata or {}}
        if kind == "retriever":
            fields["query"] = query
        fields.update(request or {})  # k, search_type, vector_store, ... as the recorder writes them
        return self.ev(f"{kind}_start", **fields)

    def end(self, n: int, name: str, docs: list[dict[str, Any]], ms: float, parent: int | None = None,
            root: int | None = None, kind: str = "retriever") -> LogBuilder:
        fields: dict[str, Any] = {"run_id": rid(n), "parent_run_id": rid(parent) if parent else None,
                                  "trace_id": rid(root or n), "name": name, "duration_ms": ms}
        if kind == "retriever":
            fields["documents"] = docs
        return self.ev(f"{kind}_end", **fields)

    def error(self, n: int, name: str, ms: float, etype: str = "TimeoutError", message: str = "timed out",
              parent: int | None = None, root: int | None = None) -> LogBuilder:
        return self.ev("retriever_error", run_id=rid(n), parent_run_id=rid(parent) if parent else None,
                       trace_id=rid(root or n), name=name, duration_ms=ms,
                       error={"type": etype, "message": message, "traceback": f"Traceback (most recent call last):\n  File \"app.py\", line 3\n{etype}: {message}\n"})

    def retry(self, n: int, name: str, attempt: int, parent: int | None = None, root: int | None = None) -> LogBuilder:
        return self.ev("retry", run_id=rid(n), parent_run_id=rid(parent) if parent else None, trace_id=rid(root or n),
                       name=name, attempt=attempt, outcome="failed",
                       exception={"type": "ConnectionError", "message": "refused"}, slept_s=0.1 * (attempt - 1), next_sleep_s=0.1)

    def text(self, n: int, name: str, text: str) -> LogBuilder:
        return self.ev("text", run_id=rid(n), parent_run_id=None, trace_id=rid(n), name=name, text=text)

    def write(self, path: Path) -> Path:
        path.write_bytes(b"".join(json.dumps(line, ensure_ascii=False).encode() + b"\n" for line in self.lines))
        return path


def doc(i: str, text: str, score: float | None = None, source: str | None = None, **meta: Any) -> dict[str, Any]:
    m = dict(meta)
    if source:
        m["source"] = source
    return {"id": i, "page_content": text, "metadata": m, "score": score}


def standard_log(path: Path) -> Path:
    """Three traces: a nested ok one, a retried-then-failed one, a slow one; plus an orphan."""
    b = LogBuilder().session_start(["search.py", "--k", "3"])
    b.start(1, "Hybrid", "what is bm25", tags=["prod"], metadata={"index": "v2"})
    b.start(2, "Dense", "what is bm25", parent=1, root=1, tags=["prod", "vector"])
    b.end(2, "Dense", [doc("d1", "Dense retrieval embeds text.", 0.91, "wiki/dense.md"),
                       doc("d2", "BM25 ranks by term frequency.", 0.55, "wiki/bm25.md")], 12.5, parent=1, root=1)
    b.start(3, "Sparse", "what is bm25", parent=1, root=1, tags=["prod"])
    b.text(3, "Sparse", "expanded query to bm25 okapi")
    b.end(3, "Sparse", [doc("s1", "Okapi BM25 is a ranking function.", 7.2, "wiki/bm25.md")], 3.25, parent=1, root=1)
    b.end(1, "Hybrid", [doc("s1", "Okapi BM25 is a ranking function.", 0.03, "wiki/bm25.md")], 20.0)
    b.start(4, "Flaky", "vector databases", metadata={"store": "qdrant"})
    b.retry(4, "Flaky", 1)
    b.retry(4, "Flaky", 2)
    b.error(4, "Flaky", 450.0)
    b.start(5, "Slow", "rerank everything", tags=["batch"])
    b.end(5, "Slow", [], 2500.0)
    b.start(6, "Child", "parent is elsewhere", parent=99, root=99)
    b.end(6, "Child", [doc("c1", "x")], 1.0, parent=99, root=99)
    return b.session_end(0).write(path)
