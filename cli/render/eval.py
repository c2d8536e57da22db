"""`rtrace eval`: the grade as a terminal table, markdown, CSV or JUnit XML. Pure: data in, text out."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from typing import Any

from rtrace.cli.render.text import clean
from rtrace.core.read.eval import LISTED as LISTED_QUERIES
from rtrace.core.read.eval import EvalResult, QueryScore
from rtrace.core.read.grade import EvalReport
from rtrace.core.terminal import csv_cell

LISTED = 10  # labelled queries without a run / unlabelled queries named in a table (JSON lists all)


def _f(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


def _signed(x: float) -> str:
    return f"{x:+.4f}"


def _averaging(result: EvalResult) -> str:
    if result.complete:
        return "means over every labelled query, 0 where no run (--complete)"
    return "means over the labelled queries each retriever answered"


def _worst(result: EvalResult, name: str, n: int) -> list[QueryScore]:
    scores = list(result.retrievers[name].scores.values())
    return sorted(scores, key=lambda s: (s.values[0], s.qid))[:n]


def _named(qid: str, result: EvalResult) -> str:
    text = result.labels.text(qid)
    return f"{qid} “{clean(text, 60, True)}”" if text and text != qid else qid


def _listing(items: list[str], total: int) -> str:
    more = total - len(items)
    return ", ".join(items) + (f", … {more} more (--format json lists all)" if more > 0 else "")


# --- terminal --------------------------------------------------------------------------------------

def eval_table(report: EvalReport, worst: int) -> Any:
    """``rtrace eval``: means per retriever, the worst queries, what could not be graded, the gates."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = []
    for path, result in report.logs:
        parts.append(Text.assemble(("rtrace eval  ", "bold"), (clean(path, 100, True), "cyan"),
                                   f"  {len(result.labels.qrels)} labelled queries · {_averaging(result)}"))
        parts.append(_Fitted(lambda ms, first, r=result: _means_table(r, ms, first), result.metrics))
        for name in result.retrievers:
            shown = _worst(result, name, worst)
            if shown:
                parts.append(_Fitted(lambda ms, first, r=result, n=name, s=shown:
                                     _query_table(r, n, s, ms, first), result.metrics))
        parts.extend(Text(line, style="yellow") for line in _gaps(result))
    c = report.comparison
    if c is not None:
        (path_a, _), (path_b, _) = report.logs
        parts.append(Text.assemble(("rtrace eval  ", "bold"), (clean(path_a, 60, True), "cyan"), "  →  ",
                                   (clean(path_b, 60, True), "cyan")))
        parts.append(Text(f"{c.method}; * significant at α = {c.alpha:g}", style="dim"))
        table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
        table.add_column("retriever", overflow="ellipsis", max_width=30)
        table.add_column("metric", no_wrap=True)
        for col in ("queries", "A", "B", "Δ", "p"):
            table.add_column(col, justify="right", no_wrap=True)
        table.add_column("", no_wrap=True)
        for ch in c.changes:
            style = "" if not ch.significant(c.alpha) else "red" if ch.delta < 0 else "green"
            table.add_row(Text(clean(ch.retriever, 30, True), style="cyan"), str(ch.metric), str(ch.paired),
                          _f(ch.mean_a), _f(ch.mean_b), Text(_signed(ch.delta), style=style), f"{ch.p_value:.4f}",
                          Text("*" if ch.significant(c.alpha) else "", style=style))
        parts.append(table)
        moved = sorted((q for q in c.queries if q.b.values[0] != q.a.values[0]),
                       key=lambda q: (q.b.values[0] - q.a.values[0], q.retriever, q.qid))[:worst]
        if moved:
            metric = c.a.metrics[0]
            t = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True,
                      title=f"largest drops in {metric} ({len(moved)} of {len(c.queries)} paired queries)",
                      title_justify="left")
            t.add_column("retriever", overflow="ellipsis", max_width=20)
            t.add_column("qid", overflow="ellipsis", max_width=16)
            t.add_column("query", overflow="ellipsis", max_width=50)
            for col in ("A", "B", "Δ"):
                t.add_column(col, justify="right", no_wrap=True)
            for q in moved:
                d = q.b.values[0] - q.a.values[0]
                t.add_row(clean(q.retriever, 30, True), clean(q.qid, 30, True),
                          Text(clean(q.query, 80, True), no_wrap=True, overflow="ellipsis"),
                          _f(q.a.values[0]), _f(q.b.values[0]), Text(_signed(d), style="red" if d < 0 else "green"))
            parts.append(t)
    for g in report.gates:
        parts.append(Text.assemble(("✓ " if g.passed else "✗ ", "green" if g.passed else "bold red"), g.name,
                                   (f"  {clean(g.detail, 300, True)}" if g.detail else "", "red")))
    return Group(*parts)


class _Fitted:
    """A table with one column per metric, split into several tables when the terminal is too
    narrow for all of them, so every number stays whole (Rich would crop the last columns).
    Text columns give way first: a table fits when its minimum width (text squeezed to its
    longest word, numbers whole) does. ``build(metrics, first)`` makes one table; the counts
    and the title go in the first only."""

    def __init__(self, build: Callable[[list[int], bool], Any], metrics: Sequence[Any]) -> None:
        self.build, self.count = build, len(metrics)

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement

        unbounded = options.update(max_width=10_000)  # Measurement.get clamps to the width it is given
        chunk: list[int] = []
        first = True
        for i in range(self.count):
            trial = self.build([*chunk, i], first)
            if chunk and Measurement.get(console, unbounded, trial).minimum > options.max_width:
                yield self.build(chunk, first)
                chunk, first = [], False
            chunk.append(i)
        yield self.build(chunk, first)


def _means_table(result: EvalResult, shown: list[int], first: bool) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    table.add_column("retriever", overflow="ellipsis", max_width=30, min_width=9)
    counts = ("graded", "no run", "no labels") if first else ()
    for col in counts:  # min_width: Rich would measure a header by its longest word
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    for i in shown:
        table.add_column(str(result.metrics[i]), justify="right", no_wrap=True)
    for name, r in result.retrievers.items():
        missing = len(result.missing(name))
        cells = [str(len(r.scores)), Text(str(missing), style="yellow" if missing else ""),
                 Text(str(r.unlabelled), style="yellow" if r.unlabelled else "")] if first else []
        table.add_row(Text(clean(name, 30, True), style="cyan", no_wrap=True, overflow="ellipsis"), *cells,
                      *(_f(result.mean(name, result.metrics[i])) for i in shown))
    return table


def _query_table(result: EvalResult, name: str, shown: list[QueryScore], metrics: list[int], first: bool) -> Any:
    from rich.table import Table
    from rich.text import Text

    r = result.retrievers[name]
    title = f"{clean(name, 30, True)}: worst {len(shown)} of {len(r.scores)} queries by {result.metrics[0]}"
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True,
                  title=title if first else None, title_justify="left")
    table.add_column("qid", overflow="ellipsis", max_width=16)
    table.add_column("query", overflow="ellipsis", max_width=50)
    for i in metrics:
        table.add_column(str(result.metrics[i]), justify="right", no_wrap=True)
    for s in shown:
        qid = Text(clean(s.qid, 30, True), no_wrap=True, overflow="ellipsis")
        if s.status != "ok":
            qid.append(f" ({s.status})", style="red")
        table.add_row(qid, Text(clean(s.query, 80, True), no_wrap=True, overflow="ellipsis"),
                      *(_f(s.values[i]) for i in metrics))
    return table


def _gaps(result: EvalResult) -> list[str]:
    """What was not graded, said rather than dropped."""
    lines = []
    by_missing: dict[tuple[str, ...], list[str]] = {}  # retrievers missing the same queries share a line
    for name in result.retrievers:
        missing = tuple(result.missing(name))
        if missing:
            by_missing.setdefault(missing, []).append(clean(name, 30, True))
    for missing, names in by_missing.items():
        shown = [_named(q, result) for q in missing[:LISTED]]
        lines.append(f"{', '.join(names)}: no run for {len(missing)} labelled "
                     f"quer{'y' if len(missing) == 1 else 'ies'}: {_listing(shown, len(missing))}")
    for name, r in result.retrievers.items():
        if r.unlabelled:
            queries = list(r.unlabelled_queries)
            shown = [f"“{clean(q, 60, True)}”" for q in queries[:LISTED]]
            distinct = "" if len(queries) == r.unlabelled else \
                f" ({len(queries)}{'+' if len(queries) >= LISTED_QUERIES else ''} distinct queries)"
            lines.append(f"{clean(name, 30, True)}: {r.unlabelled} run{'s' if r.unlabelled != 1 else ''} without labels"
                         f"{distinct}: {_listing(shown, len(queries))}")
        if r.repeats:
            lines.append(f"{clean(name, 30, True)}: {r.repeats} repeated run{'s' if r.repeats != 1 else ''} of a "
                         "labelled query (the first one counts)")
    for name, r in result.retrievers.items():
        most = r.cap
        past = sorted({m.k for m in result.metrics if m.k is not None and most is not None and m.k > most})
        if past:  # precision@10 of a retriever asked for 4 documents is at most 0.4: say why
            lines.append(f"{clean(name, 30, True)}: asked its store for {'at most ' if len(r.asked_k) > 1 else ''}k={most}, "
                         f"so its {', '.join(f'@{k}' for k in past)} metrics count at most {most} documents a query")
    if result.missing_ids:
        lines.append(f"{result.missing_ids} documents had no metadata {result.id_key!r}: graded by their own id")
    if not result.retrievers:
        lines.append("no retriever runs in this log (or none matched the filters)")
    return lines


# --- markdown (a CI job summary) ---------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def md(text: Any, limit: int | None = 80) -> str:
    """Log text as inert markdown: HTML escaped, markdown punctuation backslashed, one line."""
    s = clean(text, limit, one_line=True).replace("\n", " ").replace("\t", " ")
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", s)


def _md_table(header: list[str], rows: list[list[str]], right_from: int) -> list[str]:
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---:" if i >= right_from else "---" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def eval_markdown(report: EvalReport, worst: int) -> str:
    """GitHub-flavoured markdown for a CI job summary (``>> $GITHUB_STEP_SUMMARY``)."""
    lines = ["### rtrace eval", ""]
    if report.gates:
        failed = len(report.failed)
        lines.append(f"**{'❌ ' + str(failed) + ' of ' + str(len(report.gates)) + ' gates failed' if failed else '✅ all gates passed'}**")
        lines.append("")
        for g in report.gates:
            lines.append(f"- {'✅' if g.passed else '❌'} {md(g.name, None)}" + (f" — {md(g.detail, 300)}" if g.detail else ""))
        lines.append("")
    for path, result in report.logs:
        lines.append(f"**{md(path, 120)}** · {len(result.labels.qrels)} labelled queries · {_averaging(result)}")
        lines.append("")
        header = ["retriever", "graded", "no run", "no labels", *map(str, result.metrics)]
        rows = [[md(name, 40), str(len(r.scores)), str(len(result.missing(name))), str(r.unlabelled),
                 *(_f(result.mean(name, m)) for m in result.metrics)] for name, r in result.retrievers.items()]
        lines += _md_table(header, rows, 1)
        lines.append("")
        for line in _gaps(result):
            lines.append(f"- {md(line, 2000)}")
        if _gaps(result):
            lines.append("")
        for name in result.retrievers:
            shown = _worst(result, name, worst)
            if not shown:
                continue
            lines.append(f"<details><summary>{md(name, 40)}: worst {len(shown)} of "
                         f"{len(result.retrievers[name].scores)} queries by {result.metrics[0]}</summary>")
            lines.append("")
            rows = [[md(s.qid, 30) + ("" if s.status == "ok" else f" ({s.status})"), md(s.query),
                     *(_f(v) for v in s.values)] for s in shown]
            lines += _md_table(["qid", "query", *map(str, result.metrics)], rows, 2)
            lines += ["", "</details>", ""]
    c = report.comparison
    if c is not None:
        lines.append(f"**A → B** · {md(c.method, None)}; \\* significant at α = {c.alpha:g}")
        lines.append("")
        rows = [[md(ch.retriever, 40), str(ch.metric), str(ch.paired), _f(ch.mean_a), _f(ch.mean_b), _signed(ch.delta),
                 f"{ch.p_value:.4f}" + (" \\*" if ch.significant(c.alpha) else "")] for ch in c.changes]
        lines += _md_table(["retriever", "metric", "queries", "A", "B", "Δ", "p"], rows, 2)
        lines.append("")
    return "\n".join(lines)


# --- CSV ---------------------------------------------------------------------------------------------

def eval_csv(report: EvalReport) -> str:
    """One row per (log, retriever, query), then a ``(mean)`` row per (log, retriever)."""
    out = io.StringIO()
    metrics = [str(m) for m in report.logs[0][1].metrics]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["log", "retriever", "qid", "query", "status", "documents", *metrics])
    for path, result in report.logs:
        for name, r in result.retrievers.items():
            for s in r.scores.values():
                writer.writerow([csv_cell(path), csv_cell(name), csv_cell(s.qid), csv_cell(s.query), s.status, s.documents,
                                 *(repr(v) for v in s.values)])
            for qid in result.missing(name):
                writer.writerow([csv_cell(path), csv_cell(name), csv_cell(qid), csv_cell(result.labels.text(qid)), "no run", "",
                                 *([""] * len(metrics))])
            writer.writerow([csv_cell(path), csv_cell(name), "(mean)", "", "", len(r.scores),
                             *("" if (v := result.mean(name, m)) is None else repr(v) for m in result.metrics)])
    return out.getvalue()


# --- JUnit XML ----------------------------------------------------------------------------------------

def _xml_text(text: Any, limit: int | None = 200) -> str:
    # clean() turns control characters (not allowed in XML 1.0) into U+FFFD.
    return clean(text, limit, one_line=True)


def eval_junit(report: EvalReport) -> str:
    """JUnit XML: a test case per (retriever, labelled query) and one per gate."""
    result = report.logs[-1][1]
    metrics = [str(m) for m in result.metrics]
    changes = {(q.retriever, q.qid): q for q in report.comparison.queries} if report.comparison else {}
    root = ET.Element("testsuites", name="rtrace eval")
    suites = []
    for name, r in result.retrievers.items():
        suite = ET.SubElement(root, "testsuite", name=f"rtrace eval: {_xml_text(name, 100)}")
        cases = failures = skipped = 0
        for s in r.scores.values():
            cases += 1
            case = ET.SubElement(suite, "testcase", classname=f"rtrace.eval.{_xml_text(name, 100)}",
                                 name=_case_name(s.qid, s.query))
            props = ET.SubElement(case, "properties")
            for m, v in zip(metrics, s.values):
                ET.SubElement(props, "property", name=m, value=repr(v))
            text = " ".join(f"{m}={v:.4f}" for m, v in zip(metrics, s.values))
            change = changes.get((name, s.qid))
            if change is not None:
                text += "\nchange from A: " + " ".join(f"{m}={y - x:+.4f}" for m, x, y in zip(metrics, change.a.values, s.values))
            ET.SubElement(case, "system-out").text = text
            if s.status != "ok":
                failures += 1
                ET.SubElement(case, "failure", message=f"the retriever run did not succeed ({s.status}); graded as returned",
                              type=s.status)
        for qid in result.missing(name):
            cases += 1
            skipped += 1
            case = ET.SubElement(suite, "testcase", classname=f"rtrace.eval.{_xml_text(name, 100)}",
                                 name=_case_name(qid, result.labels.text(qid)))
            ET.SubElement(case, "skipped", message="no traced run for this labelled query")
        suite.set("tests", str(cases))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        suite.set("skipped", str(skipped))
        suites.append((cases, failures, skipped))
    if report.gates:
        suite = ET.SubElement(root, "testsuite", name="rtrace eval: gates", tests=str(len(report.gates)),
                              failures=str(len(report.failed)), errors="0", skipped="0")
        for g in report.gates:
            case = ET.SubElement(suite, "testcase", classname="rtrace.eval.gates", name=g.name)
            if not g.passed:
                ET.SubElement(case, "failure", message=_xml_text(g.detail, 1000), type="gate")
        suites.append((len(report.gates), len(report.failed), 0))
    root.set("tests", str(sum(s[0] for s in suites)))
    root.set("failures", str(sum(s[1] for s in suites)))
    root.set("errors", "0")
    root.set("skipped", str(sum(s[2] for s in suites)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _case_name(qid: str, query: str) -> str:
    qid, query = _xml_text(qid, 60), _xml_text(query, 120)
    return f"{qid}: {query}" if query and query != qid else qid
