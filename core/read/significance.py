"""Comparing two logs' grades: per-query differences and a paired randomisation test.

The test is Fisher's paired randomisation (sign-flip) test on the mean difference,
two-sided: under the null hypothesis each query's difference B - A is as likely
negative as positive. With at most ``EXACT_UP_TO`` non-zero differences every sign
pattern is enumerated (an exact p-value); beyond that ``samples`` random patterns
from ``random.Random(seed)`` are drawn and p = (hits + 1) / (samples + 1).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rtrace.core.read.eval import EvalResult, Metric, QueryScore

EXACT_UP_TO = 16
SAMPLES = 10_000
SEED = 0


def _sign_tables(diffs: Sequence[float]) -> list[list[float]]:
    """Per group of 8 differences, the signed sum for each of the 256 sign patterns."""
    tables = []
    for start in range(0, len(diffs), 8):
        group = diffs[start:start + 8]
        table = [0.0] * (1 << len(group))
        for mask in range(len(table)):
            table[mask] = sum(d if mask >> j & 1 else -d for j, d in enumerate(group))
        tables.append(table)
    return tables


def randomisation_test(a: Sequence[float], b: Sequence[float], samples: int = SAMPLES, seed: int = SEED) -> float:
    """Two-sided p-value of the paired mean difference ``b - a``."""
    diffs = [y - x for x, y in zip(a, b) if y != x]
    if not diffs:
        return 1.0
    observed = abs(sum(diffs))
    tolerance = 1e-9 * max(1.0, observed)  # sums of the same terms in another order
    tables = _sign_tables(diffs)
    if len(diffs) <= EXACT_UP_TO:
        hits = 0
        total = 1 << len(diffs)
        for pattern in range(total):
            s = 0.0
            for table in tables:
                s += table[pattern & (len(table) - 1)]
                pattern >>= 8
            hits += abs(s) >= observed - tolerance
        return hits / total
    rng = random.Random(seed)
    bits = 8 * len(tables)
    hits = 0
    for _ in range(samples):
        pattern = rng.getrandbits(bits)
        s = 0.0
        for table in tables:
            s += table[pattern & (len(table) - 1)]
            pattern >>= 8
        hits += abs(s) >= observed - tolerance
    return (hits + 1) / (samples + 1)


def method(samples: int = SAMPLES, seed: int = SEED) -> str:
    return (f"paired randomisation test (sign flips of per-query differences), two-sided; exact with "
            f"<= {EXACT_UP_TO} differing queries, else {samples} samples, seed {seed}")


@dataclass
class MetricChange:
    retriever: str
    metric: Metric
    paired: int
    mean_a: float
    mean_b: float
    p_value: float

    @property
    def delta(self) -> float:
        return self.mean_b - self.mean_a

    def significant(self, alpha: float) -> bool:
        return self.p_value < alpha and self.delta != 0

    def as_dict(self, alpha: float) -> dict[str, Any]:
        return {"retriever": self.retriever, "metric": str(self.metric), "paired_queries": self.paired,
                "mean_a": self.mean_a, "mean_b": self.mean_b, "delta": self.delta, "p_value": self.p_value,
                "significant": self.significant(alpha)}


@dataclass
class QueryChange:
    retriever: str
    qid: str
    query: str
    a: QueryScore
    b: QueryScore


@dataclass
class Comparison:
    """A and B graded on the same labels; changes on the queries both answered."""

    a: EvalResult
    b: EvalResult
    alpha: float
    samples: int
    seed: int
    changes: list[MetricChange] = field(default_factory=list)
    queries: list[QueryChange] = field(default_factory=list)

    @property
    def method(self) -> str:
        return method(self.samples, self.seed)

    def worse(self, metric: Metric) -> list[MetricChange]:
        """Significant drops of ``metric``."""
        return [c for c in self.changes if c.metric == metric and c.delta < 0 and c.significant(self.alpha)]

    def as_dict(self) -> dict[str, Any]:
        metrics = [str(m) for m in self.a.metrics]
        return {
            "test": self.method, "alpha": self.alpha,
            "changes": [c.as_dict(self.alpha) for c in self.changes],
            "queries": [{"retriever": q.retriever, "qid": q.qid, "query": q.query,
                         "a": dict(zip(metrics, q.a.values)), "b": dict(zip(metrics, q.b.values)),
                         "delta": {m: y - x for m, x, y in zip(metrics, q.a.values, q.b.values)}}
                        for q in self.queries],
        }


def compare_evals(a: EvalResult, b: EvalResult, alpha: float = 0.05, samples: int = SAMPLES,
                  seed: int = SEED) -> Comparison:
    """Per retriever in both logs and per metric: the paired means and the test's p-value."""
    out = Comparison(a, b, alpha, samples, seed)
    for name, ra in a.retrievers.items():
        rb = b.retrievers.get(name)
        if rb is None:
            continue
        pairs = [(sa, rb.scores[qid]) for qid, sa in ra.scores.items() if qid in rb.scores]
        out.queries.extend(QueryChange(name, sa.qid, sa.query or sb.query, sa, sb) for sa, sb in pairs)
        if not pairs:
            continue
        for i, metric in enumerate(a.metrics):
            xs = [sa.values[i] for sa, _ in pairs]
            ys = [sb.values[i] for _, sb in pairs]
            out.changes.append(MetricChange(name, metric, len(pairs), sum(xs) / len(xs), sum(ys) / len(ys),
                                            randomisation_test(xs, ys, samples, seed)))
    return out
