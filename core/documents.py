"""``Document`` and turning what a retriever returns into recorded documents.

A retriever may return LangChain ``Document`` objects, rtrace ``Document``\\ s,
``(doc, score)`` pairs (``similarity_search_with_score``), dicts, plain strings,
or nothing useful at all. Each becomes ``{id, page_content, metadata, score}``;
ids and scores are kept wherever they can be found, and nothing raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rtrace.core.encode import safe_repr

# Metadata keys that hold a relevance score (Cohere/FlashRank rerankers use the second).
SCORE_KEYS = ("score", "relevance_score")
ID_KEYS = ("id", "doc_id")
CONTENT_KEYS = ("page_content", "content", "text")


class Document:
    """A retrieved document, shaped like ``langchain_core.documents.Document``."""

    __slots__ = ("page_content", "metadata", "id")

    def __init__(
        self,
        page_content: str,
        metadata: dict[str, Any] | None = None,
        id: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.page_content = page_content
        self.metadata = {} if metadata is None else metadata
        # LangChain coerces numeric ids to str (coerce_numbers_to_str).
        self.id = str(id) if isinstance(id, (int, float)) and not isinstance(id, bool) else id
        if kwargs:
            raise TypeError(f"unexpected keyword arguments: {', '.join(kwargs)}")

    @property
    def type(self) -> str:
        return "Document"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Document):
            return NotImplemented
        return (self.page_content, self.metadata, self.id) == (
            other.page_content,
            other.metadata,
            other.id,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like LangChain's

    def __repr__(self) -> str:
        parts = [] if self.id is None else [f"id={self.id!r}"]
        parts += [f"metadata={self.metadata!r}", f"page_content={self.page_content!r}"]
        return f"Document({', '.join(parts)})"

    def __str__(self) -> str:
        if self.metadata:
            return f"page_content={self.page_content!r} metadata={self.metadata!r}"
        return f"page_content={self.page_content!r}"


def _number(x: object) -> float | None:
    if isinstance(x, (bool, str, bytes)):
        return None
    if isinstance(x, (int, float)):
        return float(x)
    try:  # numpy scalars, Decimal
        return float(x)  # type: ignore[arg-type]
    except Exception:
        return None


def _first(meta: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        v = meta.get(k)
        if v is not None:
            return v
    return None


def _id(x: object) -> str | None:
    if x is None or isinstance(x, str):
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return str(x)
    return safe_repr(x)


def record_document(item: Any, max_content: int | None = None) -> dict[str, Any]:
    """One returned item as ``{id, page_content, metadata, score}``."""
    score: float | None = None
    if isinstance(item, tuple) and len(item) == 2 and _number(item[1]) is not None:
        item, score = item[0], _number(item[1])
    if hasattr(item, "page_content"):
        content = item.page_content
        meta = getattr(item, "metadata", None)
        doc_id = getattr(item, "id", None)
    elif isinstance(item, Mapping):
        content = _first(item, CONTENT_KEYS)
        meta = item.get("metadata")
        doc_id = item.get("id")
        if score is None:
            score = _number(item.get("score"))
    else:
        content, meta, doc_id = item, None, None
    if not isinstance(meta, Mapping):
        meta = {} if meta is None else {"value": meta}
    if doc_id is None:
        doc_id = _first(meta, ID_KEYS)
    if score is None:
        score = _number(_first(meta, SCORE_KEYS))
    if content is None:
        content = ""
    elif not isinstance(content, str):
        content = safe_repr(content)
    out: dict[str, Any] = {
        "id": _id(doc_id),
        "page_content": content,
        "metadata": meta,
        "score": score,
    }
    if max_content is not None and len(content) > max_content:
        out["page_content"] = content[:max_content]
        out["content_length"] = len(content)
    return out


def record_documents(result: Any, max_content: int | None = None) -> list[dict[str, Any]]:
    """Everything a retriever returned, as a list of recorded documents.

    Iterators and generators are not consumed (that would empty them for the
    caller): they record as no documents.
    """
    if result is None:
        return []
    if isinstance(result, (str, bytes, Mapping)) or hasattr(result, "page_content"):
        items: Iterable[Any] = (result,)
    elif isinstance(result, (Sequence, set, frozenset)):
        items = result
    else:
        return []
    try:
        return [record_document(item, max_content) for item in items]
    except Exception:  # a hostile __getattr__ or __len__: record what we can
        return [{"id": None, "page_content": safe_repr(result), "metadata": {}, "score": None}]
