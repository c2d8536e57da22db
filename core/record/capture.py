"""What a framework hook learned about the retriever run in progress, for the handlers to record.

A hook that wraps a retriever call (``langchain_stores``: ``BaseRetriever.invoke``)
opens a ``RunCapture`` around it. The first retriever run that starts inside it
binds it (``bind``: the framework's own run id; the handlers that saw the start);
the wrapped vector stores then ``note`` each score they computed, keyed by the
returned document object itself, and the handlers ``annotate`` the documents of
that run's end with them. Nothing here changes what the traced code calls or
receives: documents are only looked at, by identity.

A capture is opened on every traced retriever call, so it is built for that: one
attribute set on creation, its containers made when first needed, and
``current()`` is the context variable's own ``get`` (no Python frame).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from typing import Any

_current: contextvars.ContextVar[RunCapture | None] = contextvars.ContextVar("rtrace_run_capture", default=None)

_EMPTY: dict[str, Any] = {}  # the request of a call that asked for nothing in particular (never mutated)


class RunCapture:
    """One retriever call: what was asked (``request``) and the scores its stores computed.

    ``handlers`` (the handlers that saw the run start), ``scores`` (id(document) ->
    (document, score, kind); the document is kept so its id() is not reused) and
    ``stages`` (stage kinds open now: only the outermost call of a kind is one) are
    ``None`` until something is put in them.
    """

    # Class-level defaults: a capture costs one attribute set to create (it is made per call).
    run_id: Any = None
    parent_run_id: Any = None
    handlers: list[Any] | None = None
    scores: dict[int, tuple[Any, float, str | None]] | None = None
    score_source: str | None = None
    stages: set[str] | None = None

    def __init__(self, request: dict[str, Any] | None = None) -> None:
        self.request: dict[str, Any] = request if request else _EMPTY

    def bind(self, run_id: Any, parent_run_id: Any, handler: Any) -> dict[str, Any] | None:
        """The run ``run_id`` starting: the request fields when this capture is (now) that run's."""
        handlers = self.handlers
        if handlers is None:  # the first start seen: this capture is that run's
            if self.run_id is None:
                self.run_id, self.parent_run_id = run_id, parent_run_id
            elif self.run_id != run_id:
                return None
            self.handlers = [handler]
            return self.request
        if run_id is not self.run_id and self.run_id != run_id:
            return None
        for h in handlers:
            if h is handler:
                break
        else:
            handlers.append(handler)
        return self.request

    def note(self, pairs: Sequence[Any], kind: str | None, source: str) -> None:
        """Scores a store returned as ``(doc, score, ...)`` tuples; a later (outer) call wins."""
        scores = self.scores
        if scores is None:  # setdefault: two threads of one call (a parallel batch) share one dict
            scores = self.__dict__.setdefault("scores", {})
        for pair in pairs:
            if type(pair) is tuple and len(pair) >= 2:
                score = pair[1]
                if type(score) is not float:  # numpy float32 from FAISS, ints; never a bool
                    score = _number(score)
                    if score is None:
                        continue
                scores[id(pair[0])] = (pair[0], score, kind)
        self.score_source = source

    def annotate(self, run_id: Any, items: Any, docs: list[dict[str, Any]]) -> str | None:
        """Put the noted scores on the recorded ``docs`` of ``items``; returns where they came from."""
        scores = self.scores
        if not scores or run_id != self.run_id or type(items) is not list or len(items) != len(docs):
            return None
        found = False
        for item, doc in zip(items, docs):
            hit = scores.get(id(item))
            if hit is None or hit[0] is not item:
                continue
            found = True
            doc["score"] = hit[1]
            if hit[2] is not None:
                doc["score_kind"] = hit[2]
            if "id_source" not in doc and getattr(item, "id", None) is not None:
                doc["id_source"] = "store"  # a document a store returned carries the store's id
        return self.score_source if found else None

    def open_stage(self, kind: str) -> bool:
        """Mark a stage of ``kind`` open; True when it is the first stage open now."""
        stages = self.stages
        if stages is None:  # setdefault: as for scores
            stages = self.__dict__.setdefault("stages", set())
        stages.add(kind)
        return len(stages) == 1

    def close_stage(self, kind: str) -> None:
        if self.stages is not None:
            self.stages.discard(kind)

    def in_stage(self, kind: str) -> bool:
        return self.stages is not None and kind in self.stages


def _number(x: Any) -> float | None:
    if isinstance(x, bool):
        return None
    try:
        return float(x)  # numpy float32 from FAISS
    except Exception:
        return None


# The context variable's own methods: no Python frame on the hot path.
current: Callable[[], RunCapture | None] = _current.get
enter: Callable[[RunCapture | None], contextvars.Token[RunCapture | None]] = _current.set


def leave(token: contextvars.Token[RunCapture | None]) -> None:
    try:
        _current.reset(token)
    except ValueError:  # another context (a generator resumed elsewhere): that one is untouched
        pass
