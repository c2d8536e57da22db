"""Relevance labels: TREC qrels with a queries file, or one JSONL file of judgements.

Formats read (detected from the file's first non-blank line):

- TREC qrels, ``qid iter docid rel`` separated by whitespace (MS MARCO, TREC);
  BEIR's ``query-id<TAB>corpus-id<TAB>score`` (three columns, a header line allowed).
  Query texts come from ``--queries``: TSV ``qid<TAB>text`` (BEIR's and MS MARCO's
  ``queries.tsv``) or JSONL ``{"id"|"_id": .., "text": ..}`` (BEIR's ``queries.jsonl``).
- JSONL judgements, one ``{"query": text, "doc_id": id, "relevance": n}`` a line; the
  query text is its own id.

A run is matched to a labelled query by a ``qid`` in its metadata, else by its query
text, exact after whitespace normalisation. A repeated (query, document) judgement
keeps the last value, as building a dict of qrels does (counted in ``warnings``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from rtrace.core.errors import LogError


def normalise(text: str) -> str:
    """Query text as matched: runs of whitespace become one space, ends trimmed."""
    return " ".join(text.split())


@dataclass
class Labels:
    """Judgements per query id, query texts, and the index runs are matched with."""

    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    by_text: dict[str, str] = field(default_factory=dict)  # normalised text -> qid
    warnings: list[str] = field(default_factory=list)

    def match(self, query: str | None, metadata: dict[str, Any]) -> str | None:
        """The labelled query id a run answers: its metadata ``qid``, else its query text."""
        qid = metadata.get("qid")
        if qid is not None and not isinstance(qid, (dict, list)) and str(qid) in self.qrels:
            return str(qid)
        if query is None:
            return None
        return self.by_text.get(normalise(query))

    def text(self, qid: str) -> str:
        return self.texts.get(qid, "")


def _lines(path: str) -> Iterator[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8-sig") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    yield n, line.rstrip("\r\n")
    except FileNotFoundError:
        raise LogError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LogError(f"{path}: is a directory") from None
    except UnicodeDecodeError:
        raise LogError(f"{path}: not UTF-8 text") from None
    except OSError as e:
        raise LogError(f"{path}: {e.strerror or e}") from None


def _first_line(path: str) -> str:
    for _, line in _lines(path):
        return line
    raise LogError(f"{path}: no labels in this file")


def _int(value: Any, path: str, n: int, what: str) -> int:
    if isinstance(value, bool):
        raise LogError(f"{path}:{n}: {what} is not an integer: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise LogError(f"{path}:{n}: {what} is not an integer: {value!r}")


def _json(line: str, path: str, n: int) -> dict[str, Any]:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise LogError(f"{path}:{n}: not a JSON line") from None
    if not isinstance(data, dict):
        raise LogError(f"{path}:{n}: not a JSON object")
    return data


class _Builder:
    def __init__(self) -> None:
        self.labels = Labels()
        self.repeated = 0

    def judge(self, qid: str, doc: str, rel: int) -> None:
        docs = self.labels.qrels.setdefault(qid, {})
        if doc in docs:
            self.repeated += 1
        docs[doc] = rel

    def name(self, qid: str, text: str) -> None:
        key = normalise(text)
        other = self.labels.by_text.get(key)
        if other is not None and other != qid:
            self.labels.warnings.append(f"queries {other!r} and {qid!r} have the same text; runs with it match {other!r}")
            return
        self.labels.texts[qid] = text
        self.labels.by_text[key] = qid


def _read_qrels(path: str, b: _Builder) -> None:
    for n, line in _lines(path):
        parts = line.split()
        if len(parts) == 4:
            qid, _, doc, rel = parts
        elif len(parts) == 3:
            qid, doc, rel = parts
            if n == 1 and qid.lower() in ("query-id", "query_id", "qid"):
                continue  # BEIR's header: query-id corpus-id score
        else:
            raise LogError(f"{path}:{n}: expected 'qid 0 docid relevance' (4 fields), found {len(parts)} fields")
        b.judge(qid, doc, _int(rel, path, n, "relevance"))


def _read_queries(path: str, b: _Builder) -> None:
    jsonl = _first_line(path).lstrip().startswith("{")
    for n, line in _lines(path):
        if jsonl:
            data = _json(line, path, n)
            qid = data.get("id", data.get("_id", data.get("qid")))
            text = data.get("text", data.get("query"))
            if qid is None or not isinstance(text, str):
                raise LogError(f"{path}:{n}: expected {{\"id\": .., \"text\": ..}}")
            qid = str(qid)
        else:
            qid, sep, text = line.partition("\t")
            if not sep:
                raise LogError(f"{path}:{n}: expected 'qid<TAB>query text'")
            qid = qid.strip()
        if qid in b.labels.qrels:  # a query without judgements cannot be graded
            b.name(qid, text)


def _read_judgements(path: str, b: _Builder) -> None:
    for n, line in _lines(path):
        data = _json(line, path, n)
        query, doc, rel = data.get("query"), data.get("doc_id"), data.get("relevance")
        if not isinstance(query, str) or doc is None or rel is None:
            raise LogError(f"{path}:{n}: expected {{\"query\": text, \"doc_id\": id, \"relevance\": n}}")
        qid = normalise(query)
        b.judge(qid, str(doc), _int(rel, path, n, "relevance"))
        if qid not in b.labels.texts:
            b.name(qid, query)


def load_labels(path: str | Path, queries: str | Path | None = None) -> Labels:
    """Labels from a qrels or JSONL judgements file (and a queries file for qrels)."""
    path = str(path)
    b = _Builder()
    if _first_line(path).lstrip().startswith("{"):
        if queries is not None:
            raise LogError(f"{path}: JSONL judgements carry their query text; --queries is for TREC qrels")
        _read_judgements(path, b)
    else:
        _read_qrels(path, b)
        if queries is not None:
            _read_queries(str(queries), b)
    labels = b.labels
    if not labels.qrels:
        raise LogError(f"{path}: no judgements in this file")
    if b.repeated:
        labels.warnings.append(f"{b.repeated} repeated judgement{'s' if b.repeated != 1 else ''} in {path}; the last one counts")
    return labels
