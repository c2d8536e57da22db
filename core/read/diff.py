"""Comparing two logs' retrievals: did the same queries get the same documents?

Retriever runs of A and B, at any depth, are matched by their path of names
from the root ("Hybrid › Dense") and their query, first occurrence of each.
Documents are compared by id, or by a hash of their content where a log has no
id. Per query: overlap@k (shared documents in both top-k lists / k), Jaccard of
the top-k sets, rank-biased overlap (RBO, p = 0.9, extrapolated, over the top k),
documents gained and lost with rank moves, the latency change, and a status
change (a run that failed on one side is reported as failed, with its error).
Per retriever: what it asked of its store in A and in B, where that changed
(``k`` 4 in A, 8 in B): most often the reason its documents did.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rtrace.core.events import REQUEST_FIELDS, STAGE_KEY
from rtrace.core.jsontext import dumps
from rtrace.core.read.trees import Run


def doc_key(doc: dict[str, Any]) -> str:
    """A document's identity: its id, else ``sha1:`` of its content."""
    doc_id = doc.get("id")
    if isinstance(doc_id, str) and doc_id:
        return doc_id
    content = doc.get("page_content")
    text = content if isinstance(content, str) else dumps(content).decode()  # any depth (repr recurses)
    return "sha1:" + hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:12]


@dataclass
class Shown:
    """A document as a side-by-side listing shows it."""

    key: str
    score: float | None
    text: str


@dataclass
class Retrieval:
    """What a retriever run returned: ranked document keys, its duration, how it ended."""

    name: str  # its path of names from the root: "Hybrid › Dense"
    query: str
    docs: list[str]
    duration_ms: float | None
    status: str
    error: str | None = None  # "Type: message" of a failed run
    shown: list[Shown] | None = None  # kept only for queries asked to be listed side by side
    request: dict[str, Any] = field(default_factory=dict)  # what it asked of its store (``Run.request``)


PATH_SEP = " › "
MAX_PATH = 32  # names kept in a path; deeper runs are keyed by their last MAX_PATH names


def run_path(run: Run) -> str:
    """The names from the trace's root down to ``run`` (no recursion: runs nest without limit)."""
    names = []
    node: Run | None = run
    while node is not None and len(names) < MAX_PATH:
        names.append(node.name)
        node = node.parent
    return PATH_SEP.join(reversed(names))


def _error_text(run: Run) -> str | None:
    err = run.error
    if err is None:
        return None
    return f"{err.get('type', 'Error')}: {err.get('message', '')}"


def retrievals(runs: Iterable[Run], show: re.Pattern[str] | None = None) -> tuple[dict[tuple[str, str], Retrieval], int]:
    """First retriever run per (path of names, query), at any depth; also how many repeats were ignored.

    ``show``: for queries it matches, keep each document's score and text too (``diff --docs``).
    """
    out: dict[tuple[str, str], Retrieval] = {}
    repeats = 0
    for run in runs:
        if run.kind != "retriever":
            continue
        query = run.query or ""
        key = (run_path(run) if run.parent is not None else run.name, query)
        if key in out:
            repeats += 1
            continue
        docs = run.documents
        shown = None
        if show is not None and show.search(query):
            shown = [Shown(doc_key(d), d.get("score") if isinstance(d.get("score"), (int, float)) else None,
                           d.get("page_content") if isinstance(d.get("page_content"), str) else "") for d in docs]
        out[key] = Retrieval(key[0], query, [doc_key(d) for d in docs], run.duration_ms, run.status,
                             _error_text(run), shown, run.request)
    return out, repeats


def _unique(docs: list[str]) -> list[str]:
    return list(dict.fromkeys(docs))


def overlap_at_k(a: list[str], b: list[str], k: int) -> float:
    """Shared documents in both top-k lists, over the longer list's length (at most k)."""
    top_a, top_b = _unique(a)[:k], _unique(b)[:k]
    depth = max(len(top_a), len(top_b))
    if depth == 0:
        return 1.0
    return len(set(top_a) & set(top_b)) / depth


def jaccard(a: list[str], b: list[str]) -> float:
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def rbo(a: list[str], b: list[str], p: float = 0.9) -> float:
    """Extrapolated rank-biased overlap (Webber, Moffat & Zobel 2010, eq. 32): 1 = same ranking."""
    a, b = _unique(a), _unique(b)
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    depth = max(len(a), len(b))
    seen_a: set[str] = set()
    seen_b: set[str] = set()
    shared = 0  # |a[:d] & b[:d]|
    weighted = 0.0
    for d in range(1, depth + 1):
        x = a[d - 1] if d <= len(a) else None
        y = b[d - 1] if d <= len(b) else None
        if x is not None and x == y:
            shared += 1
        else:
            shared += (x is not None and x in seen_b) + (y is not None and y in seen_a)
        if x is not None:
            seen_a.add(x)
        if y is not None:
            seen_b.add(y)
        weighted += shared / d * p**d
    return shared / depth * p**depth + (1 - p) / p * weighted


@dataclass
class QueryDiff:
    name: str
    query: str
    overlap: float
    jaccard: float
    rbo: float
    gained: list[tuple[str, int]]
    lost: list[tuple[str, int]]
    moved: list[tuple[str, int, int]]
    latency_a: float | None
    latency_b: float | None
    status_a: str
    status_b: str
    error_a: str | None = None
    error_b: str | None = None
    shown_a: list[Shown] | None = None
    shown_b: list[Shown] | None = None

    @property
    def status_changed(self) -> bool:
        return self.status_a != self.status_b

    @property
    def failed(self) -> bool:
        """Failed on either side: its documents say nothing about ranking."""
        return self.status_a != "ok" or self.status_b != "ok"

    @property
    def latency_change_ms(self) -> float | None:
        if self.latency_a is None or self.latency_b is None:
            return None
        return self.latency_b - self.latency_a

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "query": self.query, "overlap_at_k": self.overlap, "jaccard": self.jaccard,
            "rbo": self.rbo, "gained": [{"id": i, "rank": r} for i, r in self.gained],
            "lost": [{"id": i, "rank": r} for i, r in self.lost],
            "moved": [{"id": i, "from": a, "to": b} for i, a, b in self.moved],
            "latency_a_ms": self.latency_a, "latency_b_ms": self.latency_b,
            "latency_change_ms": self.latency_change_ms, "status_a": self.status_a, "status_b": self.status_b,
            "error_a": self.error_a, "error_b": self.error_b,
        }


@dataclass
class RequestChange:
    """A request field (``k``, ``search_type``, ...) a retriever asked with other values in B than in A."""

    name: str  # the retriever's path of names
    field: str
    a: list[Any]  # the values its runs in A asked, each once, as first seen (none: the field was not recorded)
    b: list[Any]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "field": self.field, "a": self.a, "b": self.b}


@dataclass
class DiffResult:
    k: int
    queries: list[QueryDiff] = field(default_factory=list)
    only_a: list[tuple[str, str]] = field(default_factory=list)
    only_b: list[tuple[str, str]] = field(default_factory=list)
    repeats_a: int = 0
    repeats_b: int = 0
    request_changes: list[RequestChange] = field(default_factory=list)

    def mean(self, attr: str) -> float | None:
        if not self.queries:
            return None
        return sum(getattr(q, attr) for q in self.queries) / len(self.queries)

    @property
    def mean_latency_change_ms(self) -> float | None:
        changes = [c for c in (q.latency_change_ms for q in self.queries) if c is not None]
        return sum(changes) / len(changes) if changes else None

    def worst(self, n: int) -> list[QueryDiff]:
        """Status changes first, then the least overlap."""
        return sorted(self.queries, key=lambda q: (not q.status_changed, q.overlap, q.rbo, q.name, q.query))[:n]

    @property
    def status_changes(self) -> list[QueryDiff]:
        return [q for q in self.queries if q.status_changed]

    def as_dict(self, worst: int | None = None) -> dict[str, Any]:
        return {
            "k": self.k, "matched": len(self.queries), "only_in_a": [list(x) for x in self.only_a],
            "only_in_b": [list(x) for x in self.only_b], "mean_overlap_at_k": self.mean("overlap"),
            "mean_jaccard": self.mean("jaccard"), "mean_rbo": self.mean("rbo"),
            "mean_latency_change_ms": self.mean_latency_change_ms,
            "status_changes": len(self.status_changes),
            "request_changes": [c.as_dict() for c in self.request_changes],
            "queries": [q.as_dict() for q in (self.worst(worst) if worst is not None else self.queries)],
        }


def compare(a: dict[tuple[str, str], Retrieval], b: dict[tuple[str, str], Retrieval], k: int) -> DiffResult:
    result = DiffResult(k=k)
    for key, ra in a.items():
        rb = b.get(key)
        if rb is None:
            result.only_a.append(key)
            continue
        top_a, top_b = ra.docs[:k], rb.docs[:k]
        rank_a = {d: i + 1 for i, d in enumerate(top_a)}
        rank_b = {d: i + 1 for i, d in enumerate(top_b)}
        result.queries.append(QueryDiff(
            name=ra.name, query=ra.query,
            overlap=overlap_at_k(ra.docs, rb.docs, k), jaccard=jaccard(top_a, top_b), rbo=rbo(top_a, top_b),
            gained=[(d, r) for d, r in rank_b.items() if d not in rank_a],
            lost=[(d, r) for d, r in rank_a.items() if d not in rank_b],
            moved=[(d, rank_a[d], rank_b[d]) for d in top_a if d in rank_b and rank_a[d] != rank_b[d]],
            latency_a=ra.duration_ms, latency_b=rb.duration_ms, status_a=ra.status, status_b=rb.status,
            error_a=ra.error, error_b=rb.error, shown_a=ra.shown, shown_b=rb.shown,
        ))
    result.only_b = [key for key in b if key not in a]
    result.request_changes = request_changes(a, b)
    return result


def _asked(side: dict[tuple[str, str], Retrieval]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per retriever path, per request field: its values, each once (keyed by their JSON text), as first seen."""
    asked: dict[str, dict[str, dict[str, Any]]] = {}
    for r in side.values():
        fields = asked.setdefault(r.name, {})
        for key, value in r.request.items():
            fields.setdefault(key, {}).setdefault(dumps(value).decode(), value)
    return asked


def request_changes(a: dict[tuple[str, str], Retrieval], b: dict[tuple[str, str], Retrieval]) -> list[RequestChange]:
    """The request fields each retriever in both logs asked with other values in B than in A."""
    asked_a, asked_b = _asked(a), _asked(b)
    changes = []
    for name, fields_a in asked_a.items():
        fields_b = asked_b.get(name)
        if fields_b is None:
            continue
        for key in REQUEST_FIELDS:
            va, vb = fields_a.get(key, {}), fields_b.get(key, {})
            if va.keys() != vb.keys():  # the values asked, as sets
                changes.append(RequestChange(name, key, list(va.values()), list(vb.values())))
    return changes


@dataclass
class RerankMove:
    """One document through a rerank stage: its rank in, its rank out (None: dropped), 1-based."""

    key: str
    before: int
    after: int | None

    @property
    def moved(self) -> int | None:
        """Places gained (positive: moved up); None when the reranker dropped it."""
        return None if self.after is None else self.before - self.after


def rerank_moves(run: Run) -> list[RerankMove] | None:
    """What a rerank stage did to the documents it was given (recorded ``input_documents`` on its
    start, ``documents`` on its end), in input order; None for a run that is not one or lacks them."""
    given = (run.start or {}).get("input_documents")
    if run.metadata.get(STAGE_KEY) != "rerank" or not isinstance(given, list) or run.end is None:
        return None
    out_rank: dict[str, int] = {}
    for i, d in enumerate(run.documents):
        if isinstance(d, dict):
            out_rank.setdefault(doc_key(d), i + 1)
    return [RerankMove(doc_key(d), i + 1, out_rank.get(doc_key(d)))
            for i, d in enumerate(given) if isinstance(d, dict)]
