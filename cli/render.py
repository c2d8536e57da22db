"""Turning what was recorded into Rich renderables. Pure: nothing here prints."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType

    from rtrace.core.read.summary import RunSummary

# ANSI CSI/OSC sequences, then every other C0/C1 control but tab and newline.
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: Any, limit: int | None = None, one_line: bool = False) -> str:
    """Log text made safe to show: control sequences neutralised, optionally one line and cut."""
    s = text if isinstance(text, str) else str(text)
    if not s.isprintable():  # the common case, printable text, skips both passes (checked in C)
        s = _CONTROL.sub(lambda m: "\ufffd" if len(m.group()) == 1 else "", s)
        if one_line:
            s = " ".join(s.split())
    if limit is not None and len(s) > limit:
        s = s[: max(0, limit - 1)] + "…"
    return s


def ms(value: float | None) -> str:
    if value is None:
        return "?"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"


def summary(s: RunSummary, log: str, show_command: str) -> RenderableType:
    """What ``rtrace run`` prints after the script: counts, slowest runs, where the log is."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    def plural(n: int, word: str, many: str | None = None) -> str:
        return f"{n} {word if n == 1 else many or word + 's'}"

    head = Text("rtrace: ", style="bold")
    head.append(f"{plural(s.runs, 'run')} in {plural(s.roots, 'trace')}")
    parts = [(plural(s.errors, "error"), "red" if s.errors else ""), (plural(s.retries, "retry", "retries"), "yellow" if s.retries else ""),
             (plural(s.documents, "document"), "")]
    if s.incomplete:
        parts.append((f"{s.incomplete} incomplete", "magenta"))
    for text, style in parts:
        head.append(" · ")
        head.append(text, style=style)
    if s.duration_ms is not None:
        head.append(f" · {ms(s.duration_ms)}")
    rows: list[RenderableType] = [head]
    slow = s.slowest
    if slow:
        table = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        table.add_column(overflow="ellipsis", no_wrap=True)
        for i, run in enumerate(slow):
            table.add_row(
                "  slowest" if i == 0 else "",
                Text(clean(run.name, 30, True), style="red" if run.status == "error" else "cyan"),
                ms(run.duration_ms),
                Text(clean(run.query, 80, True) if run.query is not None else "", style="dim"),
            )
        rows.append(table)
    rows.append(Text.assemble("  log    ", (log, "bold")))
    rows.append(Text.assemble("  see it ", (show_command, "bold green")))
    return Group(*rows)


def in_flight(s: RunSummary) -> RenderableType:
    """The ``--live`` view: counters and the runs still open."""
    from rich.console import Group
    from rich.text import Text

    runs = s.snapshot_in_flight()
    head = Text(f"rtrace: {s.runs} runs · {s.errors} errors · {s.retries} retries · {len(runs)} in flight", style="bold")
    lines: list[RenderableType] = [head]
    for r in runs[-10:]:
        line = Text("  ⋯ ", style="yellow")
        line.append(clean(r.get("name") or "?", 30, True), style="cyan")
        if r.get("query") is not None:
            line.append("  " + clean(r["query"], 60, True), style="dim")
        if r.get("retries"):
            line.append(f"  ↻{r['retries']}", style="yellow")
        lines.append(line)
    if len(runs) > 10:
        lines.append(Text(f"  … and {len(runs) - 10} more", style="dim"))
    return Group(*lines)


# --- trees -------------------------------------------------------------------

SOURCE_KEYS = ("source", "url", "path", "file", "filename", "title")
HIDDEN_META = ("ls_",)  # LangChain's bookkeeping keys: shown with --expand only
STATUS_MARK = {"ok": ("✓", "green"), "error": ("✗", "bold red"), "incomplete": ("…", "magenta")}
KIND_STYLE = {"retriever": "bold cyan", "chain": "blue", "tool": "blue", "llm": "blue"}


class ShowOptions:
    """How much of each trace to show."""

    def __init__(self, *, docs: bool = True, max_docs: int | None = 5, full: bool = False,
                 expand: bool = False, traceback: bool = False) -> None:
        self.docs = docs
        self.max_docs = max_docs
        self.full = full
        self.expand = expand
        self.traceback = traceback


def _compact(value: Any, limit: int = 60) -> str:
    import orjson

    if isinstance(value, str):
        return clean(value, limit, one_line=True)
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except Exception:
        text = repr(value)
    return clean(text, limit, one_line=True)


def _score(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.4g}"
    return ""


def _source(meta: dict[str, Any]) -> str:
    for key in SOURCE_KEYS:
        if meta.get(key) not in (None, ""):
            return _compact(meta[key], 40)
    return ""


def session_header(session: Any) -> Any:
    from rtrace.cli.lines import Line, Lines

    start = session.start or {}
    argv = start.get("argv")
    line = Line("").add("━━ ", "dim").add("session ", "bold").add(clean(session.session_id[:13], 13), "bold")
    if isinstance(argv, list) and argv:
        line.add("  ").add(clean(" ".join(str(a) for a in argv), 120, one_line=True), "bold")
    if isinstance(start.get("pid"), int):
        line.add(f"  pid {start['pid']}", "dim")
    if isinstance(start.get("ts"), str):
        line.add("  " + clean(start["ts"][:19].replace("T", " "), 19) + " UTC", "dim")
    return Lines([line])


def session_footer(session: Any) -> Any:
    from rtrace.cli.lines import Line, Lines

    end = session.end or {}
    code = end.get("exit_code")
    line = Line("").add("━━ ", "dim").add("exit ", "dim")
    line.add(str(code) if code is not None else "?", "green" if code == 0 else "bold red")
    if isinstance(end.get("duration_ms"), (int, float)):
        line.add(f"  {ms(end['duration_ms'])}", "dim")
    err = end.get("error")
    if isinstance(err, dict):
        line.add(f"  {clean(err.get('type', '?'), 40)}: {clean(err.get('message', ''), 200, one_line=True)}", "red")
    incomplete = end.get("incomplete_runs")
    if isinstance(incomplete, list) and incomplete:
        line.add(f"  {len(incomplete)} runs left incomplete", "magenta")
    return Lines([line, Line("")])


def trace_lines(selected: Any, opts: ShowOptions) -> Any:
    """One trace (or its matching runs) as tree lines."""
    from rtrace.cli.lines import Line, Lines

    out = Lines()
    highlight = selected.matched_ids if selected.matched is not selected.trace.runs and len(selected.matched) < len(selected.trace.runs) else set()
    roots = selected.matched if selected.runs_only else [selected.trace.root]
    for root in roots:
        _run_lines(root, "", "", out, opts, highlight, depth=0, only=None if not selected.runs_only else {root.run_id})
    out.lines.append(Line(""))
    return out


def _run_lines(run: Any, lead: str, indent: str, out: Any, opts: ShowOptions, highlight: set[str],
               depth: int, only: set[str] | None) -> None:
    from rtrace.cli.lines import Line

    mark, mark_style = STATUS_MARK.get(run.status, ("?", ""))
    head = Line(lead)
    if run.run_id in highlight:
        head.add("» ", "bold yellow")
    head.add(mark + " ", mark_style)
    head.add(clean(run.name, 60, one_line=True), KIND_STYLE.get(run.kind, "bold") + (" underline" if run.run_id in highlight else ""))
    if run.kind != "retriever":
        head.add(f" ({run.kind})", "dim")
    head.add("  " + ms(run.duration_ms) if run.duration_ms is not None else "", "yellow" if (run.duration_ms or 0) >= 1000 else "dim")
    if run.status == "incomplete":
        head.add("  incomplete", "magenta")
    if run.end is not None and run.kind == "retriever" and run.status == "ok":
        n = len(run.documents)
        head.add(f"  {n} doc{'s' if n != 1 else ''}", "green" if n else "yellow")
    retries = len(run.retries)
    if retries:
        head.add(f"  ↻ {retries}", "yellow")
    if run.query is not None:  # after the numbers, so a narrow terminal cuts the query, not them
        head.add("  ").add("“" + clean(run.query, 200, one_line=True) + "”", "")
    if run.tags:
        head.add("  [" + ", ".join(clean(t, 30, one_line=True) for t in run.tags) + "]", "magenta")
    meta = {k: v for k, v in run.metadata.items() if opts.expand or not str(k).startswith(HIDDEN_META)}
    if meta and not opts.expand:
        head.add("  " + " ".join(f"{clean(k, 30, one_line=True)}={_compact(v, 40)}" for k, v in meta.items()), "dim")
    if run.late:
        head.add(f"  (under {run.parent_run_id[:13]}…, shown earlier)", "dim italic")
    elif run.orphan:
        head.add("  (parent not in log)", "dim italic")
    if run.duplicate:
        head.add("  (repeated run id)", "dim italic")
    out.lines.append(head)

    # Below the head: expanded metadata, error, timeline (retries, texts, custom events, children), documents.
    items: list[tuple[str, Any]] = []
    if meta and opts.expand:
        for k, v in meta.items():
            items.append(("meta", (k, v)))
    for kind, payload in run.timeline:
        if kind == "child" and only is not None:
            continue
        items.append((kind, payload))
    if run.error is not None:  # how the run ended: after everything that happened in it
        items.append(("error", run.error))
    docs = run.documents if opts.docs else []
    shown_docs = docs if opts.max_docs is None else docs[: opts.max_docs]
    for i, d in enumerate(shown_docs):
        items.append(("doc", (i + 1, d)))
    if len(shown_docs) < len(docs):
        items.append(("more", len(docs) - len(shown_docs)))

    for index, (kind, payload) in enumerate(items):
        last = index == len(items) - 1
        branch = indent + ("└── " if last else "├── ")
        below = indent + ("    " if last else "│   ")
        if kind == "child":
            _run_lines(payload, branch, below, out, opts, highlight, depth + 1, only)
        elif kind == "retry":
            out.lines.append(_retry_line(branch, payload))
        elif kind == "text":
            out.lines.append(Line(branch).add("✎ ", "dim").add(clean(payload.get("text", ""), 500, one_line=True), "italic"))
        elif kind == "custom":
            out.lines.append(Line(branch).add("◆ ", "blue").add(clean(payload.get("custom_name", "?"), 60, one_line=True), "blue")
                             .add("  " + _compact(payload.get("data"), 300), "dim"))
        elif kind == "meta":
            k, v = payload
            out.lines.append(Line(branch).add(clean(k, 60, one_line=True), "dim").add(" = ").add(_compact(v, 2000)))
        elif kind == "error":
            _error_lines(branch, below, payload, opts, out)
        elif kind == "doc":
            _doc_lines(branch, below, payload, opts, out)
        elif kind == "more":
            out.lines.append(Line(branch).add(f"… {payload} more document{'s' if payload != 1 else ''} (--max-docs)", "dim"))


def _retry_line(branch: str, ev: dict[str, Any]) -> Any:
    from rtrace.cli.lines import Line

    line = Line(branch).add("↻ ", "yellow").add(f"attempt {ev.get('attempt', '?')}", "yellow")
    outcome = ev.get("outcome")
    if outcome:
        line.add(f" {clean(outcome, 20)}", "yellow")
    exc = ev.get("exception")
    if isinstance(exc, dict):
        line.add(f"  {clean(exc.get('type', '?'), 40)}: {clean(exc.get('message', ''), 200, one_line=True)}", "red")
    if isinstance(ev.get("slept_s"), (int, float)):
        line.add(f"  slept {ev['slept_s']:.3g} s", "dim")
    if isinstance(ev.get("next_sleep_s"), (int, float)):
        line.add(f"  next {ev['next_sleep_s']:.3g} s", "dim")
    return line


def _error_lines(branch: str, below: str, err: dict[str, Any], opts: ShowOptions, out: Any) -> None:
    from rtrace.cli.lines import Line

    out.lines.append(Line(branch).add("✗ ", "bold red").add(clean(err.get("type", "Error"), 60, one_line=True), "bold red")
                     .add(": " + clean(err.get("message", ""), 1000, one_line=True), "red"))
    tb = err.get("traceback")
    if opts.traceback and isinstance(tb, str):
        for text in clean(tb).rstrip("\n").split("\n"):
            out.lines.append(Line(below + "  ", wrap=True).add(text, "red dim"))


def _doc_lines(branch: str, below: str, payload: tuple[int, dict[str, Any]], opts: ShowOptions, out: Any) -> None:
    from rtrace.cli.lines import Line

    rank, d = payload
    meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
    line = Line(branch).add(f"#{rank}", "bold")
    doc_id = d.get("id")
    if doc_id is not None:
        line.add("  " + clean(doc_id, 40, one_line=True), "cyan")
    sc = _score(d.get("score"))
    if sc:
        line.add("  " + sc, "green")
    src = _source(meta)
    if src:
        line.add("  " + src, "blue")
    content = d.get("page_content")
    content = content if isinstance(content, str) else ""
    if not opts.full:
        line.add("  " + clean(content, 300, one_line=True), "")
        if isinstance(d.get("content_length"), int):
            line.add(f" ({d['content_length']} chars recorded as {len(content)})", "dim")
    out.lines.append(line)
    if opts.full:
        for text in clean(content).split("\n"):
            out.lines.append(Line(below + "  ", wrap=True).add(text))
    if opts.expand:
        for k, v in meta.items():
            out.lines.append(Line(below + "  ", wrap=True).add(clean(k, 60, one_line=True), "dim").add(" = ").add(_compact(v, 2000), "dim"))


def runs_table(rows: list[tuple[Any, Any]]) -> Any:
    """``--format table``: one row per run."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col, kw in (("time", {}), ("trace", {}), ("run", {}), ("name", {}), ("status", {}), ("ms", {"justify": "right"}),
                    ("docs", {"justify": "right"}), ("retries", {"justify": "right"}), ("query", {"overflow": "ellipsis"})):
        table.add_column(col, no_wrap=True, **kw)
    for _selected, run in rows:
        mark, mark_style = STATUS_MARK.get(run.status, ("?", ""))
        table.add_row(
            Text(clean((run.ts or "")[11:23], 12), style="dim"),
            Text(run.trace.trace_id[:8] if run.trace else "", style="dim"),
            Text(run.run_id[:8], style="dim"),
            Text(("  " * _depth(run)) + clean(run.name, 40, one_line=True), style=KIND_STYLE.get(run.kind, "")),
            Text(f"{mark} {run.status}", style=mark_style),
            Text(f"{run.duration_ms:.1f}" if run.duration_ms is not None else "", style="dim"),
            Text(str(len(run.documents)) if run.end is not None and run.kind == "retriever" else ""),
            Text(str(len(run.retries)) if run.retries else ""),
            Text(clean(run.query, 200, one_line=True) if run.query is not None else "", style="dim"),
        )
    return table


def _depth(run: Any) -> int:
    depth, parent = 0, run.parent
    while parent is not None and depth < 50:
        depth, parent = depth + 1, parent.parent
    return depth


# --- stats and diff ----------------------------------------------------------------

def _num(value: Any, fmt: str = "{:.1f}") -> str:
    return "" if value is None else fmt.format(value)


def stats_table(rows: list[dict[str, Any]], total: dict[str, Any], by: str) -> Any:
    """``rtrace stats``: one row per group, then the totals."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False, show_footer=False, collapse_padding=True)
    table.add_column(by, overflow="ellipsis", max_width=40, min_width=8)  # the column that gives way
    # Durations in ms; short headers so the table fits 80 columns.
    for col in ("runs", "err", "err%", "retry", "p50", "p90", "p99", "max", "docs", "empty"):
        table.add_column(col, justify="right", no_wrap=True)

    def cells(r: dict[str, Any], name_style: str) -> list[Any]:
        return [
            Text(clean(r["group"], 40, one_line=True), style=name_style, no_wrap=True, overflow="ellipsis"),
            str(r["runs"]),
            Text(str(r["errors"]), style="red" if r["errors"] else ""),
            Text(f"{100 * r['error_rate']:.1f}", style="red" if r["errors"] else "dim"),
            Text(str(r["retries"]), style="yellow" if r["retries"] else ""),
            _num(r["p50_ms"]), _num(r["p90_ms"]), _num(r["p99_ms"]), _num(r["max_ms"]),
            _num(r["mean_docs"]),
            Text(str(r["empty_results"]), style="yellow" if r["empty_results"] else ""),
        ]

    for r in rows:
        table.add_row(*cells(r, "cyan"))
    if rows:
        table.add_section()
    table.add_row(*cells({**total, "group": "total"}, "bold"))
    return table


def diff_report(result: Any, worst: int, label_a: str, label_b: str) -> Any:
    """``rtrace diff``: the summary, then the worst queries in detail."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    def pct(x: float | None) -> str:
        return "" if x is None else f"{x:.3f}"

    head = Text.assemble(("rtrace diff  ", "bold"), (clean(label_a, 80), "cyan"), "  →  ", (clean(label_b, 80), "cyan"))
    summary = Table(box=None, show_header=False, pad_edge=False)
    summary.add_column(style="dim")
    summary.add_column(justify="right")
    summary.add_row("queries matched", str(len(result.queries)))
    summary.add_row("only in A / only in B", f"{len(result.only_a)} / {len(result.only_b)}")
    summary.add_row(f"mean overlap@{result.k}", pct(result.mean("overlap")))
    summary.add_row(f"mean Jaccard@{result.k}", pct(result.mean("jaccard")))
    summary.add_row(f"mean RBO@{result.k} (p=0.9)", pct(result.mean("rbo")))
    change = result.mean_latency_change_ms
    summary.add_row("mean latency change", "" if change is None else f"{change:+.1f} ms")
    parts: list[Any] = [head, summary]
    shown = [q for q in result.worst(worst) if q.overlap < 1.0 or q.rbo < 1.0]
    if shown:
        table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True,
                      title=f"worst {len(shown)} of {len(result.queries)} queries", title_justify="left")
        table.add_column("name", overflow="ellipsis", max_width=24)
        table.add_column("query", overflow="ellipsis", max_width=50)
        for col in ("overlap", "jaccard", "rbo", "Δ ms"):
            table.add_column(col, justify="right", no_wrap=True)
        for q in shown:
            delta = q.latency_change_ms
            table.add_row(Text(clean(q.name, 30, True), no_wrap=True, overflow="ellipsis"),
                          Text(clean(q.query, 80, True), no_wrap=True, overflow="ellipsis"),
                          f"{q.overlap:.2f}", f"{q.jaccard:.2f}", f"{q.rbo:.2f}", "" if delta is None else f"{delta:+.1f}")
        parts.append(table)
        for q in shown:  # what changed, one query a line
            line = Text.assemble("  ", (clean(q.name, 30, True), "cyan"), f" “{clean(q.query, 60, True)}”:")
            for doc, rank in q.lost:
                line.append(f" -{clean(doc, 40, True)}@{rank}", style="red")
            for doc, rank in q.gained:
                line.append(f" +{clean(doc, 40, True)}@{rank}", style="green")
            for doc, a, b in q.moved:
                line.append(f" {clean(doc, 40, True)} {a}→{b}", style="yellow")
            parts.append(line)
    for label, keys in (("only in A", result.only_a), ("only in B", result.only_b)):
        for name, query in keys[:worst]:
            parts.append(Text.assemble((f"{label}: ", "dim"), (clean(name, 30, True), "cyan"), f"  “{clean(query, 80, True)}”"))
    return Group(*parts)
