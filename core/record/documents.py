"""``Document`` and turning what a retriever returns into recorded documents.

A retriever may return LangChain ``Document`` objects, rtrace ``Document``\\ s,
``(doc, score)`` pairs (``similarity_search_with_score``), dicts, plain strings,
or nothing useful at all. Each becomes ``{id, page_content, metadata, score}``;
ids and scores are kept wherever they can be found, and nothing raises.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from rtrace.core.record.encode import MAX_CONTENT, int_text, safe_repr
from rtrace.core.record.redact import SCALARS, Redactor

# Ids come from ``.id``, else metadata "id" / "doc_id"; scores from a (doc, score)
# pair, else a ``.score`` attribute, else metadata "score" / "relevance_score"
# (what Cohere/FlashRank rerankers set).
CONTENT_KEYS = ("page_content", "content", "text")

# Where a recorded id came from (``id_source``), so a reader knows whether two runs' ids are
# comparable: the document's own id ("document"; "store" once a vector store is known to have
# returned it), a metadata key ("metadata:KEY"), or, with no id at all, a hash of the text.
# "document" is not written: a recorded id without ``id_source`` is the document's own.
ID_DOCUMENT, ID_STORE, ID_CONTENT_HASH = "document", "store", "content_hash"
_ID_META = {"id": "metadata:id", "doc_id": "metadata:doc_id"}

CONTENT_MODES = ("full", "hash", "none")


def content_hash(text: str) -> str:
    """A short, stable stand-in for ``text`` (ids of id-less documents, ``--content hash``)."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


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
    t = type(x)
    if t is float:
        return x  # type: ignore[return-value]
    if t is int:
        return float(x)  # type: ignore[arg-type]
    if x is None or t is bool or t is str or t is bytes:
        return None
    try:  # numpy scalars, Decimal
        return float(x)  # type: ignore[arg-type]
    except Exception:
        return None


def _id(x: object) -> str | None:
    if isinstance(x, int) and not isinstance(x, bool):
        return int_text(x)
    if isinstance(x, float):
        return str(x)
    return safe_repr(x)


_MISSING = object()
_has_score: dict[type, bool] = {}


def _has_score_attr(cls: type) -> bool:
    # Only classes that define `score` (a replayed ScoredDocument, a dataclass...) are asked:
    # a missing attribute on a pydantic model (LangChain's Document) costs an exception.
    has = _has_score.get(cls)
    if has is None:
        has = _has_score[cls] = any("score" in vars(k) or "score" in getattr(k, "__annotations__", {})
                                    for k in cls.__mro__ if k is not object)
    return has


_plain: dict[type, bool] = {}


def _is_plain(cls: type) -> bool:
    """Whether ``cls`` is a LangChain or rtrace ``Document`` class with no score of its own
    (``record_documents`` then reads its three fields directly); cached per class."""
    ok = issubclass(cls, Document) or any(
        k.__name__ == "Document" and k.__module__.startswith("langchain_core.documents") for k in cls.__mro__)
    ok = _plain[cls] = ok and not any("score" in vars(k) or "score" in getattr(k, "__annotations__", {})
                                      for k in cls.__mro__ if k is not object)
    return ok


def record_document(item: Any, max_content: int | None = None) -> dict[str, Any]:
    """One returned item as ``{id, page_content, metadata, score}``.

    On every traced retrieval: written for the common shapes first.
    """
    score: float | None = None
    if type(item) is tuple and len(item) == 2:
        s = _number(item[1])
        if s is not None:
            item, score = item[0], s
    content = getattr(item, "page_content", _MISSING)
    kind = given_source = None
    if content is not _MISSING:
        meta = getattr(item, "metadata", None)
        doc_id = getattr(item, "id", None)
        if _has_score_attr(type(item)):  # a replayed document: its recorded score, kind and id source
            if score is None:
                score = _number(getattr(item, "score", None))
            kind = getattr(item, "score_kind", None)
            given_source = getattr(item, "id_source", None)
    elif isinstance(item, Mapping):
        content = None
        for key in CONTENT_KEYS:
            content = item.get(key)
            if content is not None:
                break
        meta = item.get("metadata")
        doc_id = item.get("id")
        if score is None:
            score = _number(item.get("score"))
    else:
        content, meta, doc_id = (item if type(item) is str else safe_repr(item)), None, None
    if type(meta) is not dict:
        meta = {} if meta is None else dict(meta) if isinstance(meta, Mapping) else {"value": meta}
    source = ID_DOCUMENT
    if meta:
        if doc_id is None:
            doc_id = meta.get("id")
            if doc_id is None:
                doc_id = meta.get("doc_id")
                if doc_id is not None:
                    source = _ID_META["doc_id"]
            else:
                source = _ID_META["id"]
        if score is None:
            s = meta.get("score")
            if s is None:
                s = meta.get("relevance_score")
            if s is not None:
                score = _number(s)
    if type(content) is not str:
        content = "" if content is None else safe_repr(content)
    if doc_id is None:
        doc_id, source = content_hash(content), ID_CONTENT_HASH
    elif type(doc_id) is not str:
        doc_id = _id(doc_id)
    if max_content is None:
        max_content = MAX_CONTENT  # --max-content is not the only budget
    if len(content) > max_content:
        rec = {"id": doc_id, "page_content": content[:max_content], "metadata": meta,
               "score": score, "content_length": len(content)}
    else:
        rec = {"id": doc_id, "page_content": content, "metadata": meta, "score": score}
    if given_source is not None and type(given_source) is str:
        source = given_source
    if source is not ID_DOCUMENT:  # absent: the document's own id (the common case, kept short)
        rec["id_source"] = source
    if kind is not None and type(kind) is str:
        rec["score_kind"] = kind
    return rec


def apply_content_mode(docs: list[dict[str, Any]], mode: str) -> None:
    """``--content hash|none``: each document's text replaced by its hash or by nothing; ids,
    scores, metadata and ``content_length`` (the original length) stay."""
    if mode == "full":
        return
    for doc in docs:
        text = doc.get("page_content")
        if not isinstance(text, str):
            continue
        doc.setdefault("content_length", len(text))
        doc["page_content"] = content_hash(text) if mode == "hash" else ""


def content_text(text: Any, mode: str) -> Any:
    """A query under ``--content``: as is, its hash, or ``""``."""
    if mode == "full" or not isinstance(text, str):
        return text
    return content_hash(text) if mode == "hash" else ""


def record_documents(result: Any, max_content: int | None = None, redact: Redactor | None = None) -> list[dict[str, Any]]:
    """Everything a retriever returned, as a list of recorded documents.

    ``redact``: applied to each document's metadata (as ``Redactor.documents``).

    Iterators and generators are not consumed (that would empty them for the
    caller): they record as no documents.
    """
    if type(result) is list:  # the common case, on every traced retrieval: skip the ABC checks
        items: Any = result
    elif result is None or isinstance(result, Iterator):
        return []
    elif isinstance(result, (Sequence, set, frozenset)) and not isinstance(result, (str, bytes)):
        items = _guarded(result)  # a user's sequence: its __iter__ may raise midway
    else:  # one document, a dict, a string, or a scalar: recorded as one item
        items = (result,)
    if redact is not None and not redact.active:
        redact = None
    if max_content is None:
        max_content = MAX_CONTENT  # --max-content is not the only budget
    # The fast path below handles LangChain / rtrace Documents with text ids, text content
    # within budget, dict metadata and a float (or int, or no) score, and redacts each in the
    # same pass (Redactor.documents' rule: one loop over the documents, not two; its metadata
    # test is Redactor.clean_flat's, inline: calling it costs 0.1-0.2 µs a run of 5 documents);
    # anything unusual takes record_document's full path, then Redactor.documents.
    if redact is not None:
        clean_keys, clean_text, text, scrub = redact.clean_keys, redact.clean_text, redact.text, redact
        whole = redact.content  # document content too (redact_content=True)
    out: list[dict[str, Any]] = []
    append = out.append
    plain = _plain
    known: type | None = None  # the last class found plain: most results are of one class
    try:
        for item in items:
            try:
                cls = type(item)
                if cls is known or plain.get(cls) or (cls not in plain and _is_plain(cls)):
                    known = cls
                    content, meta, doc_id = item.page_content, item.metadata, item.id
                    if type(content) is str and type(meta) is dict and len(content) <= max_content:
                        # The score: metadata "score", else "relevance_score"; a float, an int
                        # (as a float) or none. Anything else: the full path.
                        score = meta.get("score") if meta else None
                        if type(score) is not float:
                            if score is None and meta:
                                score = meta.get("relevance_score")
                            if type(score) is int:
                                score = float(score)
                            elif score is not None and type(score) is not float:
                                score = _MISSING
                        # The id: the document's own text id, else metadata "id" / "doc_id", else
                        # a hash of the text. A non-text id: the full path.
                        source = None
                        if doc_id is None:
                            if meta:
                                doc_id, source = meta.get("id"), _ID_META["id"]
                                if doc_id is None:
                                    doc_id, source = meta.get("doc_id"), _ID_META["doc_id"]
                            if doc_id is None:
                                doc_id, source = content_hash(content), ID_CONTENT_HASH
                        if type(doc_id) is str and score is not _MISSING:
                            if redact is not None:
                                # Ids are often URLs, signed ones too; a content hash is rtrace's own.
                                if doc_id not in clean_text and source is not ID_CONTENT_HASH:
                                    doc_id = text(doc_id)
                                if meta:
                                    try:
                                        clean = clean_keys.issuperset(meta)  # its keys, in C
                                    except Exception:  # a key whose __eq__ fails: the redactor copes
                                        clean = False
                                    if clean:
                                        for v in meta.values():
                                            t = type(v)
                                            if t is str:
                                                if v not in clean_text and text(v) is not v:
                                                    clean = False
                                                    break
                                            elif t not in SCALARS:
                                                clean = False
                                                break
                                    if not clean:
                                        meta = scrub(meta)  # a new dict when anything changed: never the caller's
                                if whole:
                                    content = text(content)
                            if source is None:
                                append({"id": doc_id, "page_content": content, "metadata": meta, "score": score})
                            else:
                                append({"id": doc_id, "page_content": content, "metadata": meta, "score": score,
                                        "id_source": source})
                            continue
                rec = record_document(item, max_content)
            except Exception:  # one hostile document (a property that raises): the others are kept
                rec = _unrecordable(item)
            if redact is not None:
                redact.documents((rec,))  # the record is ours: a metadata dict is replaced, never changed
            append(rec)
    except _IterationFailed:  # a hostile __iter__ midway: keep what came before
        rec = _unrecordable(result)
        if redact is not None:
            redact.documents((rec,))
        append(rec)
    return out


class _IterationFailed(Exception):
    pass


def _guarded(items: Any) -> Iterator[Any]:
    """``items``' elements; an exception from its iteration becomes ``_IterationFailed``."""
    try:
        iterator = iter(items)
    except Exception:
        raise _IterationFailed from None
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except Exception:
            raise _IterationFailed from None
        yield item


def _unrecordable(item: Any) -> dict[str, Any]:
    try:
        name = type(item).__qualname__
    except Exception:
        name = "object"
    return {"id": None, "page_content": f"<unrecordable {name}>", "metadata": {}, "score": None}
