"""`rtrace report`: one self-contained HTML page. Pure: data in, a string out.

No script, no external resource: trees collapse with ``<details>``, bars and
histograms are CSS, and a Content-Security-Policy forbids scripts and network
loads, so a page opened from a CI artifact can neither run nor fetch anything.
Every piece of log text goes through ``esc`` (control characters neutralised,
then HTML-escaped), so a log cannot inject markup.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from rtrace.cli.render.text import clean, key_values, ms
from rtrace.core.read.diff import DiffResult
from rtrace.core.read.digest import Digest
from rtrace.core.read.eval import EvalResult, run_doc_ids, run_documents
from rtrace.core.read.labels import Labels
from rtrace.core.read.significance import Comparison
from rtrace.core.read.stats import GAMMA, Histogram
from rtrace.core.read.trees import Run, Session, Trace
from rtrace.core.times import ts_seconds

MAX_DOCS = 20  # documents shown per run
PREVIEW = 240  # characters of a document shown before "more"
MAX_ROWS = 500  # rows of a per-query table
BINS = 16


def esc(text: Any, limit: int | None = None) -> str:
    """Log text as inert HTML."""
    return html.escape(clean(text, limit), quote=True)


def _json(value: Any, limit: int | None = 2000) -> str:
    from rtrace.core.jsontext import dumps

    return esc(dumps(value, orjson.OPT_SORT_KEYS).decode(), limit)


def _f(x: float | None, digits: int = 4) -> str:
    return "" if x is None else f"{x:.{digits}f}"


@dataclass
class ReportPage:
    """Everything the page shows."""

    logs: list[Digest]
    generated: str
    version: str
    labels: Labels | None = None
    labels_path: str | None = None
    id_key: str | None = None
    diff: DiffResult | None = None
    comparison: Comparison | None = None


CSS = """
:root { --ok: #1a7f37; --err: #cf222e; --inc: #8250df; --dim: #57606a; --line: #d0d7de; --bg2: #f6f8fa; --bar: #0969da; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328; background: #fff; }
header.page { padding: 16px 24px; border-bottom: 1px solid var(--line); background: var(--bg2); }
header.page h1 { margin: 0 0 4px; font-size: 20px; }
main { padding: 8px 24px 40px; max-width: 1400px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; word-break: break-all; }
h3 { font-size: 15px; margin: 20px 0 6px; }
.dim, .meta { color: var(--dim); }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg2); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
pre { background: var(--bg2); border: 1px solid var(--line); padding: 8px; overflow-x: auto; white-space: pre-wrap; word-break: break-word; margin: 4px 0; }
.badge { display: inline-block; min-width: 1.4em; text-align: center; border-radius: 4px; padding: 0 5px; color: #fff; font-weight: 600; font-size: 12px; }
.ok { background: var(--ok); } .error { background: var(--err); } .incomplete { background: var(--inc); }
.warn { color: #9a6700; }
.fail { color: var(--err); font-weight: 600; } .pass { color: var(--ok); font-weight: 600; }
details { margin: 2px 0; }
details.trace { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; padding: 2px 8px; }
details.trace > summary { cursor: pointer; padding: 4px 0; }
details.run { margin-left: 18px; border-left: 2px solid var(--line); padding-left: 8px; }
details.run > summary { cursor: pointer; list-style-position: outside; }
.rname { font-weight: 600; } .query { color: #0550ae; } .request { color: #0a6b74; }
.wf { display: inline-block; position: relative; width: 220px; height: 10px; background: var(--bg2); border: 1px solid var(--line); vertical-align: middle; margin-left: 8px; }
.wf > span { position: absolute; top: 0; bottom: 0; background: var(--bar); min-width: 1px; }
.wf > span.error { background: var(--err); } .wf > span.incomplete { background: var(--inc); }
.docs td.content { max-width: 640px; }
.rel { font-weight: 600; } .rel.r0 { color: var(--dim); } .rel.pos { color: var(--ok); } .rel.unj { color: var(--dim); font-weight: 400; font-style: italic; }
.hist { display: flex; align-items: flex-end; gap: 1px; height: 48px; width: 260px; border-bottom: 1px solid var(--line); }
.hist > span { flex: 1; background: var(--bar); min-height: 0; }
.histaxis { display: flex; justify-content: space-between; width: 260px; font-size: 11px; color: var(--dim); }
.event { margin: 2px 0 2px 4px; }
nav a { margin-right: 14px; }
"""


def render_report(page: ReportPage) -> str:
    """The whole page as one HTML string."""
    title = "rtrace report — " + " vs ".join(d.path for d in page.logs)
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        f"<title>{esc(title, 300)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        f"<header class=\"page\"><h1>rtrace report</h1><div class=\"meta\">generated {esc(page.generated)} by rtrace "
        f"{esc(page.version)}",
    ]
    if page.labels_path:
        parts.append(f" · labels {esc(page.labels_path)} ({len(page.labels.qrels) if page.labels else 0} queries)")
    parts.append("</div>\n<nav>")
    for i, d in enumerate(page.logs):
        parts.append(f"<a href=\"#log-{i + 1}\">{'AB'[i] if len(page.logs) == 2 else 'log'}: {esc(d.path, 80)}</a>")
    if page.diff is not None:
        parts.append("<a href=\"#diff\">diff</a>")
    if page.comparison is not None:
        parts.append("<a href=\"#comparison\">A → B grades</a>")
    parts.append("</nav></header>\n<main>\n")
    for i, d in enumerate(page.logs):
        parts.append(_log_section(page, d, i))
    if page.diff is not None:
        parts.append(_diff_section(page.diff))
    if page.comparison is not None:
        parts.append(_comparison_section(page.comparison))
    parts.append("</main>\n</body>\n</html>\n")
    return "".join(parts)


# --- one log -------------------------------------------------------------------------------------------

def _log_section(page: ReportPage, d: Digest, index: int) -> str:
    label = f"{'AB'[index]}: " if len(page.logs) == 2 else ""
    out = [f"<section class=\"log\" id=\"log-{index + 1}\">\n<h2>{label}{esc(d.path)}</h2>\n"]
    span = ""
    if d.first_ts and d.last_ts:
        span = f" · runs from {esc(d.first_ts)} to {esc(d.last_ts)}"
    out.append(f"<p class=\"meta\">{d.total_traces} traces, {d.failed_traces} failed{span}</p>\n")
    out.append(_sessions(d.sessions))
    out.append(_stats(d))
    if d.grades is not None:
        out.append(_grades(d.grades))
    out.append(_traces(page, d))
    out.append("</section>\n")
    return "".join(out)


def _sessions(sessions: Sequence[Session]) -> str:
    if not sessions:
        return "<p class=\"dim\">No session_start in this log.</p>\n"
    rows = []
    for s in sessions:
        start, end = s.start or {}, s.end or {}
        argv = start.get("argv")
        command = " ".join(str(a) for a in argv) if isinstance(argv, list) else ""
        exit_code = end.get("exit_code") if s.end is not None else "still running or killed (no session_end)"
        rows.append(
            f"<tr><td class=\"mono\">{esc(s.session_id)}</td><td class=\"mono\">{esc(command, 300)}</td>"
            f"<td class=\"num\">{esc(start.get('pid', ''))}</td><td>{esc(start.get('python', ''))}</td>"
            f"<td>{esc(start.get('rtrace_version', ''))}</td><td class=\"mono\">{esc(start.get('cwd', ''), 200)}</td>"
            f"<td>{esc(start.get('ts', ''))}</td><td class=\"num\">{esc(exit_code)}</td>"
            f"<td class=\"num\">{esc(ms(end.get('duration_ms')) if isinstance(end.get('duration_ms'), (int, float)) else '')}</td></tr>\n")
    return ("<h3>Sessions</h3>\n<table class=\"sessions\"><tr><th>session</th><th>command</th><th>pid</th><th>python</th>"
            "<th>rtrace</th><th>cwd</th><th>started</th><th>exit</th><th>duration</th></tr>\n" + "".join(rows) + "</table>\n")


def histogram_bins(h: Histogram, bins: int = BINS) -> list[tuple[float, float, int]]:
    """The histogram's counts re-binned into ``bins`` log-spaced ranges (low ms, high ms, runs)."""
    if h.count == 0:
        return []
    points = sorted((GAMMA ** key, n) for key, n in h.buckets.items())
    lo = min([p for p, _ in points] or [1.0])
    hi = max([p for p, _ in points] or [1.0])
    if hi <= lo:  # one distinct duration: one bar
        return [(lo, hi, h.count)]
    lo_log, hi_log = math.log(lo), math.log(hi)
    width = (hi_log - lo_log) / bins
    counts = [0] * bins
    counts[0] += h.zeros
    for value, n in points:
        counts[min(bins - 1, int((math.log(value) - lo_log) / width))] += n
    return [(math.exp(lo_log + i * width), math.exp(lo_log + (i + 1) * width), c) for i, c in enumerate(counts)]


def _histogram(h: Histogram) -> str:
    bins = histogram_bins(h)
    if not bins:
        return "<span class=\"dim\">no durations</span>"
    top = max(c for _, _, c in bins) or 1
    bars = "".join(f"<span style=\"height:{100 * c / top:.1f}%\" title=\"{lo:.2f}–{hi:.2f} ms: {c} runs\"></span>"
                   for lo, hi, c in bins)
    return (f"<div class=\"hist\" role=\"img\" aria-label=\"latency histogram\">{bars}</div>"
            f"<div class=\"histaxis\"><span>{esc(ms(bins[0][0]))}</span><span>{esc(ms(bins[-1][1]))}</span></div>")


def _stats(d: Digest) -> str:
    groups = sorted(d.stats.groups.values(), key=lambda g: (-g.runs, g.key))
    if not groups:
        return "<h3>Retrievers</h3>\n<p class=\"dim\">No retriever runs.</p>\n"
    rows = []
    for g in groups:
        r = g.as_dict()
        rows.append(
            f"<tr><td class=\"rname\">{esc(g.key, 80)}</td><td class=\"num\">{r['runs']}</td>"
            f"<td class=\"num\">{r['errors']}</td><td class=\"num\">{100 * r['error_rate']:.1f}%</td>"
            f"<td class=\"num\">{r['retries']}</td><td class=\"num\">{_f(r['p50_ms'], 1)}</td>"
            f"<td class=\"num\">{_f(r['p90_ms'], 1)}</td><td class=\"num\">{_f(r['p99_ms'], 1)}</td>"
            f"<td class=\"num\">{_f(r['max_ms'], 1)}</td><td class=\"num\">{_f(r['mean_docs'], 1)}</td>"
            f"<td class=\"num\">{r['empty_results']}</td><td>{_histogram(g.durations)}</td></tr>\n")
    return ("<h3>Retrievers</h3>\n<table class=\"stats\"><tr><th>retriever</th><th class=\"num\">runs</th>"
            "<th class=\"num\">errors</th><th class=\"num\">error rate</th><th class=\"num\">retries</th>"
            "<th class=\"num\">p50 ms</th><th class=\"num\">p90 ms</th><th class=\"num\">p99 ms</th>"
            "<th class=\"num\">max ms</th><th class=\"num\">mean docs</th><th class=\"num\">empty</th>"
            "<th>latency (log scale)</th></tr>\n" + "".join(rows) + "</table>\n")


# --- grades --------------------------------------------------------------------------------------------

def _grades(result: EvalResult) -> str:
    metrics = [str(m) for m in result.metrics]
    head = "".join(f"<th class=\"num\">{esc(m)}</th>" for m in metrics)
    averaging = ("means over every labelled query, 0 where no run" if result.complete
                 else "means over the labelled queries each retriever answered (trec_eval's default)")
    out = [f"<h3>Evaluation</h3>\n<p class=\"meta\">{len(result.labels.qrels)} labelled queries · {averaging}</p>\n",
           "<table class=\"grades\"><tr><th>retriever</th><th class=\"num\">graded</th><th class=\"num\">no run</th>"
           f"<th class=\"num\">no labels</th>{head}</tr>\n"]
    for name, r in result.retrievers.items():
        cells = "".join(f"<td class=\"num\">{_f(result.mean(name, m))}</td>" for m in result.metrics)
        out.append(f"<tr><td class=\"rname\">{esc(name, 80)}</td><td class=\"num\">{len(r.scores)}</td>"
                   f"<td class=\"num\">{len(result.missing(name))}</td><td class=\"num\">{r.unlabelled}</td>{cells}</tr>\n")
    out.append("</table>\n")
    for name, r in result.retrievers.items():
        missing = result.missing(name)
        notes = []
        if missing:
            notes.append(f"no run for {len(missing)} labelled queries: " + ", ".join(esc(q, 60) for q in missing[:50])
                         + (f", … {len(missing) - 50} more" if len(missing) > 50 else ""))
        if r.unlabelled:
            notes.append(f"{r.unlabelled} runs without labels, e.g. "
                         + ", ".join(f"“{esc(q, 60)}”" for q in list(r.unlabelled_queries)[:10]))
        if r.repeats:
            notes.append(f"{r.repeats} repeated runs of a labelled query (the first one counts)")
        scores = sorted(r.scores.values(), key=lambda s: (s.values[0], s.qid))
        shown = scores[:MAX_ROWS]
        rows = "".join(
            f"<tr><td class=\"mono\">{esc(s.qid, 60)}</td><td>{esc(s.query, 200)}</td>"
            f"<td><span class=\"badge {esc(s.status)}\">{esc(s.status)}</span></td>"
            + "".join(f"<td class=\"num\">{v:.4f}</td>" for v in s.values) + "</tr>\n" for s in shown)
        cap = f" (the worst {len(shown)} of {len(scores)})" if len(shown) < len(scores) else ""
        out.append(f"<details class=\"perquery\"><summary>{esc(name, 80)}: per query{cap}, worst first"
                   f"{''.join('; ' + n for n in notes)}</summary>\n<table><tr><th>qid</th><th>query</th><th>status</th>{head}</tr>\n"
                   f"{rows}</table></details>\n")
    return "".join(out)


def _comparison_section(c: Comparison) -> str:
    metric = c.a.metrics[0]
    out = [f"<section id=\"comparison\"><h2>Grades, A → B</h2>\n<p class=\"meta\">{esc(c.method)}; "
           f"* significant at α = {c.alpha:g}</p>\n<table><tr><th>retriever</th><th>metric</th><th class=\"num\">queries</th>"
           "<th class=\"num\">A</th><th class=\"num\">B</th><th class=\"num\">Δ</th><th class=\"num\">p</th><th></th></tr>\n"]
    for ch in c.changes:
        sig = ch.significant(c.alpha)
        cls = " class=\"fail\"" if sig and ch.delta < 0 else " class=\"pass\"" if sig else ""
        out.append(f"<tr><td class=\"rname\">{esc(ch.retriever, 80)}</td><td>{esc(str(ch.metric))}</td>"
                   f"<td class=\"num\">{ch.paired}</td><td class=\"num\">{ch.mean_a:.4f}</td><td class=\"num\">{ch.mean_b:.4f}</td>"
                   f"<td class=\"num\"><span{cls}>{ch.delta:+.4f}</span></td><td class=\"num\">{ch.p_value:.4f}</td>"
                   f"<td>{'*' if sig else ''}</td></tr>\n")
    out.append("</table>\n")
    moved = sorted(c.queries, key=lambda q: (q.b.values[0] - q.a.values[0], q.retriever, q.qid))
    shown = moved[:MAX_ROWS]
    out.append(f"<h3>Per query, {esc(str(metric))}, largest drop first"
               f"{f' (first {len(shown)} of {len(moved)})' if len(shown) < len(moved) else ''}</h3>\n"
               "<table><tr><th>retriever</th><th>qid</th><th>query</th><th class=\"num\">A</th><th class=\"num\">B</th>"
               "<th class=\"num\">Δ</th></tr>\n")
    for q in shown:
        d = q.b.values[0] - q.a.values[0]
        cls = "fail" if d < 0 else "pass" if d > 0 else "dim"
        out.append(f"<tr><td>{esc(q.retriever, 80)}</td><td class=\"mono\">{esc(q.qid, 60)}</td><td>{esc(q.query, 200)}</td>"
                   f"<td class=\"num\">{q.a.values[0]:.4f}</td><td class=\"num\">{q.b.values[0]:.4f}</td>"
                   f"<td class=\"num\"><span class=\"{cls}\">{d:+.4f}</span></td></tr>\n")
    out.append("</table></section>\n")
    return "".join(out)


# --- diff ----------------------------------------------------------------------------------------------

def _diff_section(result: DiffResult) -> str:
    queries = result.worst(len(result.queries))
    shown = queries[:MAX_ROWS]
    out = [f"<section id=\"diff\"><h2>Diff per query, A → B (top {result.k})</h2>\n<p class=\"meta\">{len(result.queries)} queries "
           f"matched by (retriever, query); {len(result.only_a)} only in A, {len(result.only_b)} only in B · mean overlap@{result.k} "
           f"{_f(result.mean('overlap'), 3)} · mean RBO {_f(result.mean('rbo'), 3)}"
           f"{f' · the {len(shown)} least similar shown' if len(shown) < len(queries) else ''}</p>\n"
           "<table><tr><th>retriever</th><th>query</th><th class=\"num\">overlap</th><th class=\"num\">Jaccard</th>"
           "<th class=\"num\">RBO</th><th>lost (rank in A)</th><th>gained (rank in B)</th><th>moved</th><th class=\"num\">Δ ms</th></tr>\n"]
    for q in shown:
        delta = q.latency_change_ms
        out.append(
            f"<tr><td>{esc(q.name, 80)}</td><td>{esc(q.query, 200)}</td><td class=\"num\">{q.overlap:.2f}</td>"
            f"<td class=\"num\">{q.jaccard:.2f}</td><td class=\"num\">{q.rbo:.2f}</td>"
            f"<td class=\"mono fail\">{' '.join(f'{esc(d, 40)}@{r}' for d, r in q.lost)}</td>"
            f"<td class=\"mono pass\">{' '.join(f'{esc(d, 40)}@{r}' for d, r in q.gained)}</td>"
            f"<td class=\"mono\">{' '.join(f'{esc(d, 40)} {a}→{b}' for d, a, b in q.moved)}</td>"
            f"<td class=\"num\">{'' if delta is None else f'{delta:+.1f}'}</td></tr>\n")
    out.append("</table>\n")
    for label, keys in (("only in A", result.only_a), ("only in B", result.only_b)):
        if keys:
            listed = ", ".join(f"{esc(n, 40)} “{esc(q, 80)}”" for n, q in keys[:50])
            more = f", … {len(keys) - 50} more" if len(keys) > 50 else ""
            out.append(f"<p class=\"warn\">{label} ({len(keys)}): {listed}{more}</p>\n")
    out.append("</section>\n")
    return "".join(out)


# --- traces --------------------------------------------------------------------------------------------

def _traces(page: ReportPage, d: Digest) -> str:
    cap_note = (f"showing {len(d.traces)} of {d.total_traces} traces (capped at {d.cap}, --max-traces): failed first, then the slowest"
                if d.capped else f"all {d.total_traces} traces: failed first, then the slowest")
    out = [f"<h3>Traces</h3>\n<p class=\"meta\">{cap_note}</p>\n"]
    for trace in d.traces:
        out.append(_trace(page, trace))
    return "".join(out)


def _trace(page: ReportPage, trace: Trace) -> str:
    root = trace.root
    starts = {r.run_id: ts_seconds((r.start or {}).get("ts")) for r in trace.runs}
    t0 = min((s for s in starts.values() if s is not None), default=None)
    ends = [starts[r.run_id] + (r.duration_ms or 0) / 1000 for r in trace.runs if starts.get(r.run_id) is not None]
    span = (max(ends) - t0) if ends and t0 is not None else 0.0
    timing = (t0, span)
    query = f" <span class=\"query\">“{esc(root.query, 160)}”</span>" if root.query is not None else ""
    opened = " open" if trace.status != "ok" else ""  # failures are what a reader came for
    return (f"<details class=\"trace\"{opened} id=\"trace-{esc(trace.trace_id)}\"><summary><span class=\"badge {esc(trace.status)}\">"
            f"{esc(trace.status)}</span> <span class=\"rname\">{esc(root.name, 80)}</span>{query} · {esc(ms(root.duration_ms))} · "
            f"{len(trace.runs)} run{'s' if len(trace.runs) != 1 else ''} · <span class=\"dim\">{esc(root.ts or '')} · "
            f"trace {esc(trace.trace_id)}</span></summary>\n{_run(page, root, starts, timing)}</details>\n")


def _bar(run: Run, starts: dict[str, float | None], timing: tuple[float | None, float]) -> str:
    t0, span = timing
    start = starts.get(run.run_id)
    if start is None or t0 is None:
        return ""
    if span <= 0:
        left, width = 0.0, 100.0
    else:
        left = 100 * (start - t0) / span
        width = 100 * (run.duration_ms or 0) / 1000 / span
    left = min(max(left, 0.0), 100.0)
    width = min(max(width, 0.0), 100.0 - left)
    return (f"<span class=\"wf\" title=\"starts at +{(start - t0) * 1000:.1f} ms, takes {esc(ms(run.duration_ms))}\">"
            f"<span class=\"{esc(run.status)}\" style=\"left:{left:.2f}%;width:{width:.2f}%\"></span></span>")


def _run(page: ReportPage, root: Run, starts: dict[str, float | None], timing: tuple[float | None, float]) -> str:
    """A run and its subtree as nested <details>, with an explicit stack: runs nest deeper than Python recurses."""
    out: list[str] = []
    stack: list[Any] = [iter([("child", root)])]
    while stack:
        try:
            kind, item = next(stack[-1])
        except StopIteration:
            stack.pop()
            if stack:  # the run whose timeline this was is complete: its documents, error, and closing tag
                out.append(stack.pop()[1])
            continue
        if kind == "child":
            head, rest = _run_parts(page, item, starts, timing)
            out.append(head)
            stack.append((None, rest))  # what closes this run, once its timeline is done
            stack.append(iter(item.timeline))
        elif kind == "retry":
            out.append(_retry(item))
        elif kind == "text":
            out.append(f"<div class=\"event\"><span class=\"dim\">text</span> {esc(item.get('text'), 2000)}</div>\n")
        else:
            out.append(f"<div class=\"event\"><span class=\"dim\">event</span> {esc(item.get('custom_name'), 100)} "
                       f"<span class=\"mono\">{_json(item.get('data'))}</span></div>\n")
    return "".join(out)


def _run_parts(page: ReportPage, run: Run, starts: dict[str, float | None],
               timing: tuple[float | None, float]) -> tuple[str, str]:
    """A run's HTML before its timeline and after it."""
    query = f" <span class=\"query\">“{esc(run.query, 200)}”</span>" if run.query is not None else ""
    kind = "" if run.kind == "retriever" else f" <span class=\"dim\">({esc(run.kind)})</span>"
    tags = f" <span class=\"dim\">[{esc(', '.join(run.tags), 200)}]</span>" if run.tags else ""
    request = run.request  # what it asked of its store
    asked = f" <span class=\"request\">{esc(key_values(request), 300)}</span>" if request else ""
    flags = "".join(f" <span class=\"warn\">{f}</span>" for f, on in (("orphan", run.orphan), ("duplicate id", run.duplicate)) if on)
    out = [f"<details class=\"run\" open><summary><span class=\"badge {esc(run.status)}\">{esc(run.status)}</span> "
           f"<span class=\"rname\">{esc(run.name, 80)}</span>{kind}{query} · {esc(ms(run.duration_ms))}{asked}{tags}{flags}"
           f"{_bar(run, starts, timing)}</summary>\n"]
    if run.metadata:
        out.append(f"<div class=\"event dim mono\">metadata {_json(run.metadata)}</div>\n")
    head = "".join(out)
    out = []
    if run.status == "ok" and run.kind == "retriever":
        out.append(_documents(page, run))
    err = run.error
    if err is not None:
        out.append(f"<div class=\"event fail\">{esc(err.get('type'), 200)}: {esc(err.get('message'), 2000)}</div>\n")
        if err.get("traceback"):
            out.append(f"<pre class=\"traceback\">{esc(err.get('traceback'), 20000)}</pre>\n")
    out.append("</details>\n")
    return head, "".join(out)


def _retry(ev: dict[str, Any]) -> str:
    exc = ev.get("exception") if isinstance(ev.get("exception"), dict) else {}
    what = f"{esc(exc.get('type', ''), 100)}: {esc(exc.get('message', ''), 500)}" if exc else ""
    waits = []
    for key, label in (("slept_s", "waited"), ("next_sleep_s", "next wait")):
        value = ev.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            waits.append(f"{label} {value:.3g} s")
    return (f"<div class=\"event warn\">retry · attempt {esc(ev.get('attempt', '?'))} {esc(ev.get('outcome', ''))} "
            f"{what}{' · ' + ' · '.join(waits) if waits else ''}</div>\n")


def _documents(page: ReportPage, run: Run) -> str:
    docs = run_documents(run)
    # The count its end records (``Run.document_count``), where the log keeps fewer documents (trimmed with jq).
    absent = run.document_count - len(docs)
    not_here = (f"<div class=\"event dim\">… {absent} {'more ' if docs else ''}document{'s' if absent != 1 else ''} "
                "not in the log</div>\n") if absent > 0 else ""
    if not docs:
        return not_here or "<div class=\"event dim\">no documents</div>\n"
    judged: dict[str, int] | None = None
    ids = [str(d.get("id")) if d.get("id") is not None else "" for d in docs]
    if page.labels is not None:
        qid = page.labels.match(run.query, run.metadata)
        if qid is not None:
            judged = page.labels.qrels[qid]
            ids = run_doc_ids(run, page.id_key)[0]
    rel_head = "<th>relevance</th>" if judged is not None else ""
    rows = []
    for rank, (doc, key) in enumerate(zip(docs[:MAX_DOCS], ids), 1):
        content = doc.get("page_content")
        text = content if isinstance(content, str) else "" if content is None else str(content)
        preview = esc(text, PREVIEW)
        if len(text) > PREVIEW:
            preview = f"<details><summary>{preview}</summary><pre>{esc(text, 100_000)}</pre></details>"
        rel = ""
        if judged is not None:
            if key in judged:
                value = judged[key]
                rel = f"<td><span class=\"rel {'pos' if value >= 1 else 'r0'}\">{'✓' if value >= 1 else '✗'} {value}</span></td>"
            else:
                rel = "<td><span class=\"rel unj\">unjudged</span></td>"
        meta = doc.get("metadata")
        score = doc.get("score")
        score_text = f"{score:.4g}" if isinstance(score, (int, float)) and not isinstance(score, bool) else ""
        rows.append(f"<tr><td class=\"num\">{rank}</td><td class=\"mono\">{esc(doc.get('id') if doc.get('id') is not None else '', 120)}</td>"
                    f"<td class=\"num\">{score_text}</td>{rel}<td class=\"content\">{preview}</td>"
                    f"<td class=\"mono\">{_json(meta, 500) if meta else ''}</td></tr>\n")
    more = f"<div class=\"event dim\">… {len(docs) - MAX_DOCS} more documents</div>\n" if len(docs) > MAX_DOCS else ""
    return ("<table class=\"docs\"><tr><th class=\"num\">rank</th><th>id</th><th class=\"num\">score</th>"
            f"{rel_head}<th>content</th><th>metadata</th></tr>\n" + "".join(rows) + "</table>\n" + more + not_here)
