"""What a framework hook learned about the retriever run in progress, for the handlers to record.

A hook that wraps a retriever call (``langchain_stores``: ``BaseRetriever.invoke``)
opens a ``RunCapture`` around it. The first retriever run that starts inside it
binds it (``bind``: the framework's own run id; the handlers that saw the start);
the wrapped vector stores then ``note`` each score they computed, keyed by the
returned document object itself, and the handlers ``annotate`` the documents of
that run's end with them. Nothing here changes what the traced code calls or
receives: documents are only looked at, by identity.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from typing import Any

_current: contextvars.ContextVar[RunCapture | None] = contextvars.ContextVar("rtrace_run_capture", default=None)


class RunCapture:
    """One retriever call: what was asked (``request``) and the scores its stores computed."""

    __slots__ = ("run_id", "parent_run_id", "handlers", "request", "scores", "score_source", "stages")

    def __init__(self, request: dict[str, Any] | None = None) -> None:
        self.run_id: Any = None
        self.parent_run_id: Any = None
        self.handlers: list[Any] = []
        self.request = request or {}
        # id(document) -> (document, score, kind); the document is kept so its id() is not reused.
        self.scores: dict[int, tuple[Any, float, str | None]] = {}
        self.score_source: str | None = None
        self.stages: set[str] = set()  # stage kinds open now: only the outermost call of a kind is one

    def bind(self, run_id: Any, parent_run_id: Any, handler: Any) -> dict[str, Any] | None:
        """The run ``run_id`` starting: the request fields when this capture is (now) that run's."""
        if self.run_id is None:
            self.run_id, self.parent_run_id = run_id, parent_run_id
        elif self.run_id != run_id:
            return None
        if not any(h is handler for h in self.handlers):
            self.handlers.append(handler)
        return self.request

    def note(self, pairs: Sequence[Any], kind: str | None, source: str) -> None:
        """Scores a store returned as ``(doc, score, ...)`` tuples; a later (outer) call wins."""
        for pair in pairs:
            if type(pair) is tuple and len(pair) >= 2:
                score = _number(pair[1])
                if score is not None:
                    self.scores[id(pair[0])] = (pair[0], score, kind)
        self.score_source = source

    def annotate(self, run_id: Any, items: Any, docs: list[dict[str, Any]]) -> str | None:
        """Put the noted scores on the recorded ``docs`` of ``items``; returns where they came from."""
        if run_id != self.run_id or not self.scores or type(items) is not list or len(items) != len(docs):
            return None
        found = False
        for item, doc in zip(items, docs):
            hit = self.scores.get(id(item))
            if hit is None or hit[0] is not item:
                continue
            found = True
            doc["score"] = hit[1]
            if hit[2] is not None:
                doc["score_kind"] = hit[2]
            if "id_source" not in doc and getattr(item, "id", None) is not None:
                doc["id_source"] = "store"  # a document a store returned carries the store's id
        return self.score_source if found else None


def _number(x: Any) -> float | None:
    if isinstance(x, bool):
        return None
    try:
        return float(x)  # numpy float32 from FAISS
    except Exception:
        return None


def current() -> RunCapture | None:
    return _current.get()


def enter(capture: RunCapture | None) -> contextvars.Token[RunCapture | None]:
    return _current.set(capture)


def leave(token: contextvars.Token[RunCapture | None]) -> None:
    try:
        _current.reset(token)
    except ValueError:  # another context (a generator resumed elsewhere): that one is untouched
        pass
