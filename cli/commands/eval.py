"""``rtrace eval``: grade one log's (or two logs') retrievals against relevance labels."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from rtrace.core.errors import UsageError, message_line, tell, warn
from rtrace.core.read.eval import EvalCollector, EvalResult, Metric, metrics_for, parse_gate, parse_metric
from rtrace.core.read.filters import RunFilter, Selected
from rtrace.core.read.grade import EvalReport, check_gates
from rtrace.core.read.labels import Labels, load_labels
from rtrace.core.read.pipeline import Source, report, selected_items
from rtrace.core.read.reader import ReadStats
from rtrace.core.read.significance import compare_evals
from rtrace.core.read.trees import TreeBuilder

FORMATS = ("table", "json", "csv", "junit", "markdown")


def grade_log(source: Source, run_filter: RunFilter, labels: Labels, metrics: Sequence[Metric],
              id_key: str | None, complete: bool) -> EvalResult:
    """One log, streamed: documents are parsed only for the runs that have labels."""
    collector = EvalCollector(labels, metrics, id_key=id_key, complete=complete)
    stats, builder = ReadStats(), TreeBuilder()
    seen = False
    for item in selected_items(source, run_filter, True, None, stats, builder, documents=False):
        if isinstance(item, Selected):
            seen = True
            for run in item.matched:
                collector.add(run)
    report(stats, builder, source, seen)
    return collector.finish()


def run_eval(paths: Sequence[str], run_filter: RunFilter, qrels: str, queries: str | None, ks: Sequence[int],
             id_key: str | None, fmt: str, fail_under: Sequence[str], fail_if_worse: Sequence[str], alpha: float,
             samples: int, seed: int, complete: bool, worst: int, lenient: bool) -> int:
    if fmt not in FORMATS:
        raise UsageError(f"--format is one of {', '.join(FORMATS)}, not {fmt!r}")
    if not 1 <= len(paths) <= 2:
        raise UsageError("rtrace eval takes one log, or two to compare (A B)")
    if fail_if_worse and len(paths) != 2:
        raise UsageError("--fail-if-worse compares two logs: give A and B")
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha is between 0 and 1, not {alpha}")
    gates = [parse_gate(g) for g in fail_under]
    worse = [parse_metric(m) for m in fail_if_worse]
    metrics = metrics_for(ks or [10], [g.metric for g in gates] + worse)
    labels = load_labels(qrels, queries)
    for message in labels.warnings:
        warn(message)
    logs = [(path, grade_log(Source([path], lenient), run_filter, labels, metrics, id_key, complete)) for path in paths]
    for path, result in logs:
        if not any(r.scores for r in result.retrievers.values()):
            hint = "" if labels.texts else f" (without --queries, runs match {qrels} only by a 'qid' in their metadata)"
            warn(f"no run in {path} matched a labelled query{hint}")
    out = EvalReport(qrels, logs)
    if len(logs) == 2:
        out.comparison = compare_evals(logs[0][1], logs[1][1], alpha=alpha, samples=samples, seed=seed)
    check_gates(out, gates, worse)
    _write(out, fmt, worst)
    for g in out.failed:
        tell(f"rtrace: eval: gate failed: {message_line(g.name)} ({message_line(g.detail)})")
    return 1 if out.failed else 0


def _write(out: EvalReport, fmt: str, worst: int) -> None:
    from rtrace.cli.console import data_writer, write_text
    from rtrace.cli.render import eval as render

    if fmt == "json":
        data_writer()(orjson.dumps(out.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    elif fmt == "csv":
        write_text(render.eval_csv(out))
    elif fmt == "junit":
        write_text(render.eval_junit(out))
    elif fmt == "markdown":
        write_text(render.eval_markdown(out, worst) + "\n")
    else:
        from rtrace.cli.console import make_console

        make_console().print(render.eval_table(out, worst))
