"""Grading retrieved lists against relevance labels, with trec_eval's definitions.

Per query, a run's documents are ranked as recorded (rank 1 first; ties in score
keep the recorded order). A document id seen again further down is dropped, its
first rank counts (the later ones move up), as a run given to trec_eval as a dict
would be. Relevance is graded for nDCG (gain = the label, negative labels gain 0,
discount log2(rank + 1), ideal ranking from every judged document) and binary,
label >= 1, for the rest. Unjudged documents are not relevant.

- ``ndcg@k``: trec_eval ``ndcg_cut_k``   - ``recall@k``: ``recall_k`` (0 with no relevant document)
- ``precision@k``: ``P_k`` (over k, even when fewer were returned)
- ``mrr``: ``recip_rank``   - ``map``: ``map`` (over every relevant document in the labels)
- ``hit@k``: ``success_k``

Means are over the queries that have labels and a run (trec_eval's default; a
query whose labels hold no relevant document scores 0 and counts). A run that
failed counts as an empty list. With ``complete`` a labelled query without a run
counts as 0 too (trec_eval ``-c``). For each retriever and query the first run
counts; repeats are counted. Memory grows with retrievers x labelled queries.
"""

from __future__ import annotations

import math
from array import array
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from rtrace.core.errors import UsageError
from rtrace.core.events import RETRIEVER_END
from rtrace.core.read.diff import doc_key
from rtrace.core.read.labels import Labels
from rtrace.core.read.trees import Run

KINDS = ("ndcg", "recall", "precision", "mrr", "map", "hit")
AT_K = ("ndcg", "recall", "precision", "hit")
LISTED = 1000  # unlabelled queries listed per retriever (all are counted)
_METRIC = re.compile(r"^(ndcg|recall|precision|hit|mrr|map)(?:@(\d+))?$")


@dataclass(frozen=True, order=True)
class Metric:
    kind: str
    k: int | None = None

    def __str__(self) -> str:
        return f"{self.kind}@{self.k}" if self.k is not None else self.kind


def parse_metric(text: str) -> Metric:
    """``ndcg@10``, ``recall@5``, ``precision@3``, ``hit@1``, ``mrr``, ``map``."""
    m = _METRIC.match(text.strip().lower())
    if m is None or (m.group(1) in AT_K) != (m.group(2) is not None) or (m.group(2) is not None and int(m.group(2)) < 1):
        raise UsageError(f"not a metric: {text!r} (ndcg@K, recall@K, precision@K, hit@K, mrr, map)")
    return Metric(m.group(1), int(m.group(2)) if m.group(2) else None)


def metrics_for(ks: Iterable[int], extra: Iterable[Metric] = ()) -> list[Metric]:
    """The metrics reported for cutoffs ``ks`` (plus any a gate names), in a fixed order."""
    ks, extra = set(ks), set(extra)
    cuts = sorted(ks | {m.k for m in extra if m.k is not None})
    if not cuts or any(k < 1 for k in cuts):
        raise UsageError("-k takes cutoffs of 1 or more")
    wanted = [Metric(kind, k) for kind in ("ndcg", "recall", "precision") for k in cuts]
    wanted += [Metric("mrr"), Metric("map")] + [Metric("hit", k) for k in cuts]
    # A gate's cutoff adds only the gated metric, not every metric at that cutoff.
    return [m for m in wanted if m.k is None or m.k in ks or m in extra]


_DISCOUNTS: list[float] = []  # 1 / log2(rank + 1), by rank - 1; grown on demand


def _discounts(n: int) -> list[float]:
    while len(_DISCOUNTS) < n:
        _DISCOUNTS.append(1.0 / math.log2(len(_DISCOUNTS) + 2))
    return _DISCOUNTS


def prepare(judged: Mapping[str, int]) -> tuple[int, list[float]]:
    """What a query's labels give every ranking: the number relevant and the ideal DCG at each depth."""
    ideal = sorted((r for r in judged.values() if r > 0), reverse=True)
    discounts = _discounts(len(ideal))
    cumulative, total = [0.0], 0.0
    for i, r in enumerate(ideal):
        total += r * discounts[i]
        cumulative.append(total)
    return sum(1 for r in judged.values() if r >= 1), cumulative


def score(ranking: Sequence[str], judged: Mapping[str, int], metrics: Sequence[Metric],
          prepared: tuple[int, list[float]] | None = None) -> list[float]:
    """Each metric for one ranked list of document ids against one query's judgements.

    One pass down the ranking keeps running sums (DCG, relevant found, average
    precision); each metric reads them at its cutoff.
    """
    num_rel, ideal = prepared if prepared is not None else prepare(judged)
    if len(set(ranking)) != len(ranking):
        ranking = list(dict.fromkeys(ranking))  # a repeated id counts at its first rank only
    dcg_at: list[float] = [0.0]  # by depth
    found_at: list[int] = [0]
    dcg, found, ap, first = 0.0, 0, 0.0, 0
    discounts = _discounts(len(ranking))
    get = judged.get
    for rank, doc in enumerate(ranking, 1):
        r = get(doc, 0)
        if r > 0:
            dcg += r * discounts[rank - 1]
            if r >= 1:
                found += 1
                ap += found / rank
                first = first or rank
        dcg_at.append(dcg)
        found_at.append(found)
    depth = len(ranking)
    out: list[float] = []
    for m in metrics:
        kind, k = m.kind, m.k or 0
        if kind == "ndcg":
            idcg = ideal[min(k, len(ideal) - 1)]
            out.append(dcg_at[min(k, depth)] / idcg if idcg > 0 else 0.0)
        elif kind == "precision":
            out.append(found_at[min(k, depth)] / k)
        elif kind == "recall":
            out.append(found_at[min(k, depth)] / num_rel if num_rel else 0.0)
        elif kind == "hit":
            out.append(1.0 if found_at[min(k, depth)] else 0.0)
        elif kind == "mrr":
            out.append(1.0 / first if first else 0.0)
        else:  # map
            out.append(ap / num_rel if num_rel else 0.0)
    return out


@dataclass(slots=True)
class QueryScore:
    """One retriever's grade on one labelled query (``query``: the labelled text, else the run's)."""

    qid: str
    query: str
    values: Sequence[float]
    status: str
    documents: int
    run_id: str


MAX_ASKED_K = 16  # distinct k values kept per retriever


@dataclass
class RetrieverEval:
    name: str
    scores: dict[str, QueryScore] = field(default_factory=dict)
    unlabelled: int = 0  # runs whose query has no labels
    unlabelled_queries: dict[str, None] = field(default_factory=dict)  # the first LISTED distinct ones
    repeats: int = 0
    asked_k: dict[int, None] = field(default_factory=dict)  # the k its graded runs asked of their store (a few)

    @property
    def most_asked(self) -> int | None:
        """The largest k its graded runs asked for; None where no run recorded one."""
        return max(self.asked_k) if self.asked_k else None

    @property
    def cap(self) -> int | None:
        """The k that bounds how many documents its @K metrics count: the most its graded runs asked
        for, when none of them returned more. None when a run did (a retriever that asks each of
        its stores for k and merges what they found), or no run recorded a usable k."""
        most = self.most_asked
        if most is None or most < 0 or any(s.documents > most for s in self.scores.values()):
            return None
        return most


@dataclass
class EvalResult:
    """Per retriever, per labelled query: a value for each metric."""

    metrics: list[Metric]
    labels: Labels
    retrievers: dict[str, RetrieverEval] = field(default_factory=dict)
    complete: bool = False
    missing_ids: int = 0  # documents without the --id-key metadata key (graded by their own id)
    id_key: str | None = None

    def index(self, metric: Metric) -> int:
        return self.metrics.index(metric)

    def missing(self, name: str) -> list[str]:
        """Labelled query ids this retriever has no run for, in the labels' order."""
        scores = self.retrievers[name].scores
        return [q for q in self.labels.qrels if q not in scores]

    def mean(self, name: str, metric: Metric) -> float | None:
        scores = self.retrievers[name].scores
        i = self.index(metric)
        n = len(self.labels.qrels) if self.complete else len(scores)
        if not scores or n == 0:
            return None
        return sum(s.values[i] for s in scores.values()) / n

    def means(self, name: str) -> dict[str, float | None]:
        return {str(m): self.mean(name, m) for m in self.metrics}

    def as_dict(self) -> dict[str, Any]:
        out = {"metrics": [str(m) for m in self.metrics], "labelled_queries": len(self.labels.qrels),
               "averaging": "complete" if self.complete else "evaluated", "retrievers": []}
        for name, r in self.retrievers.items():
            out["retrievers"].append({
                "name": name, "evaluated": len(r.scores), "means": self.means(name),
                "queries": [{"qid": s.qid, "query": s.query, "status": s.status, "documents": s.documents,
                             "run_id": s.run_id, **dict(zip(map(str, self.metrics), s.values))}
                            for s in r.scores.values()],
                "labelled_without_run": self.missing(name),
                "runs_without_labels": r.unlabelled, "unlabelled_queries": list(r.unlabelled_queries),
                "repeated_runs": r.repeats, "asked_k": list(r.asked_k),
            })
        return out


def run_documents(run: Run) -> list[dict[str, Any]]:
    """A run's documents, parsed from its end line if the reader skipped them (``documents=False``).

    Reading a log without documents and parsing them only for the labelled runs is
    what keeps ``rtrace eval`` near ``rtrace filter``'s speed on a big log.
    """
    end = run.end
    if end is None or "documents" in end or end.get("event") != RETRIEVER_END:
        return run.documents
    for ev in run.events:
        if ev.data is end:
            try:
                docs = orjson.loads(ev.raw).get("documents")
            except (orjson.JSONDecodeError, AttributeError):
                return []
            return [d for d in docs if isinstance(d, dict)] if isinstance(docs, list) else []
    return []


def run_doc_ids(run: Run, id_key: str | None) -> tuple[list[str], int]:
    """The ranked ids of a run's documents (and how many lacked ``id_key``)."""
    docs = run_documents(run)
    if id_key is None:
        return [i if type(i) is str and i else doc_key(d) for d in docs for i in (d.get("id"),)], 0
    ids, missing = [], 0
    for d in docs:
        meta = d.get("metadata")
        value = meta.get(id_key) if isinstance(meta, dict) else None
        if value is None or isinstance(value, (dict, list)):
            missing += 1
            ids.append(doc_key(d))
        else:
            ids.append(str(value))
    return ids, missing


class EvalCollector:
    """Feed runs in log order; read an ``EvalResult``. Holds only the grades."""

    def __init__(self, labels: Labels, metrics: Sequence[Metric], id_key: str | None = None,
                 complete: bool = False) -> None:
        self.labels = labels
        self.result = EvalResult(list(metrics), labels, complete=complete, id_key=id_key)
        self._prepared: dict[str, tuple[int, list[float]]] = {}  # per labelled query, computed once

    def add(self, run: Run) -> None:
        if run.kind != "retriever":
            return
        r = self.result.retrievers.get(run.name)
        if r is None:
            r = self.result.retrievers[run.name] = RetrieverEval(run.name)
        qid = self.labels.match(run.query, run.metadata)
        if qid is None:
            r.unlabelled += 1
            if len(r.unlabelled_queries) < LISTED:
                r.unlabelled_queries[run.query or ""] = None
            return
        if qid in r.scores:
            r.repeats += 1
            return
        ids, missing = run_doc_ids(run, self.result.id_key)
        self.result.missing_ids += missing
        prepared = self._prepared.get(qid)
        if prepared is None:
            prepared = self._prepared[qid] = prepare(self.labels.qrels[qid])
        values = array("d", score(ids, self.labels.qrels[qid], self.result.metrics, prepared))  # 8 bytes a value
        # The labels' text, not the run's: a string kept from each parsed line would pin the
        # allocator's arenas of that line (RSS 634 MB instead of 258 MB on the grading benchmark).
        query = self.labels.texts.get(qid) or run.query or ""
        r.scores[qid] = QueryScore(qid, query, values, run.status, len(ids), run.run_id)
        k = (run.start or {}).get("k")  # what it asked of its store: an @K metric past it counts at most k documents
        if type(k) is int and k not in r.asked_k and len(r.asked_k) < MAX_ASKED_K:
            r.asked_k[k] = None

    def finish(self) -> EvalResult:
        """The result, retrievers by name."""
        self.result.retrievers = dict(sorted(self.result.retrievers.items()))
        return self.result

    def add_all(self, runs: Iterable[Run]) -> EvalResult:
        for run in runs:
            self.add(run)
        return self.finish()


@dataclass(frozen=True)
class Gate:
    metric: Metric
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric} >= {self.threshold:g}"

    def failures(self, result: EvalResult) -> list[tuple[str, float | None]]:
        """Retrievers whose mean is below the threshold (None: nothing was graded)."""
        out = []
        for name in result.retrievers:
            mean = result.mean(name, self.metric)
            if mean is None or mean < self.threshold:
                out.append((name, mean))
        if not result.retrievers:
            out.append(("(no retriever)", None))
        return out


def parse_gate(text: str) -> Gate:
    """``ndcg@10=0.6``."""
    metric, sep, value = text.partition("=")
    if not sep:
        raise UsageError(f"--fail-under takes METRIC=VALUE, e.g. ndcg@10=0.6, not {text!r}")
    try:
        threshold = float(value)
    except ValueError:
        raise UsageError(f"--fail-under {text}: {value!r} is not a number") from None
    return Gate(parse_metric(metric), threshold)
