"""What ``rtrace eval`` reports: one or two graded logs, their comparison and the gates' verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rtrace.core.read.eval import EvalResult, Gate, Metric
from rtrace.core.read.significance import Comparison


@dataclass
class GateCheck:
    """One CI gate: its name, whether it held, and what made it fail."""

    name: str
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"gate": self.name, "passed": self.passed, "detail": self.detail}


@dataclass
class EvalReport:
    labels_path: str
    logs: list[tuple[str, EvalResult]]
    comparison: Comparison | None = None
    gates: list[GateCheck] = field(default_factory=list)

    @property
    def graded(self) -> EvalResult:
        """The log the --fail-under gates apply to: the only one, or B."""
        return self.logs[-1][1]

    @property
    def failed(self) -> list[GateCheck]:
        return [g for g in self.gates if not g.passed]

    def as_dict(self) -> dict[str, Any]:
        first = self.logs[0][1]
        return {
            "labels": self.labels_path, "labelled_queries": len(first.labels.qrels),
            "metrics": [str(m) for m in first.metrics],
            "logs": [{"log": path, **result.as_dict()} for path, result in self.logs],
            "comparison": self.comparison.as_dict() if self.comparison is not None else None,
            "gates": [g.as_dict() for g in self.gates],
        }


def check_gates(report: EvalReport, under: Sequence[Gate], worse: Sequence[Metric]) -> None:
    """Fill ``report.gates``: each --fail-under on the graded log, each --fail-if-worse on the comparison."""
    result = report.graded
    for gate in under:
        failures = gate.failures(result)
        detail = ", ".join(f"{name} {'no graded query' if mean is None else f'{mean:.4f}'}" for name, mean in failures)
        report.gates.append(GateCheck(str(gate), not failures, f"below: {detail}" if failures else ""))
    for metric in worse:
        if report.comparison is None:
            continue
        drops = report.comparison.worse(metric)
        detail = ", ".join(f"{c.retriever} {c.mean_a:.4f} -> {c.mean_b:.4f} (p = {c.p_value:.4f})" for c in drops)
        report.gates.append(GateCheck(f"no significant drop in {metric}", not drops,
                                      f"dropped: {detail}" if drops else ""))
