"""`rtrace show --format table`: one row per run, streamed a trace at a time.

Column widths are fixed from the terminal's width before the first row (a
stream cannot be measured first), so every row lines up with the header. The
numbers (status, ms, self, docs, retries) keep their width at any terminal
width; the text columns give way first: the query shrinks, then the name, and
on narrower terminals the least needed columns go (time, then trace, then
self time); below 120 columns the status is its mark alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rtrace.cli.render.lines import Line, Lines, fit_cells
from rtrace.cli.render.text import clean
from rtrace.cli.render.tree import KIND_STYLE, STATUS_MARK
from rtrace.core.read.shortids import MIN_LENGTH
from rtrace.core.read.trees import self_ms, sort_key, walk_ordered
from rtrace.core.times import format_clock

NAME_MIN, NAME_MAX, QUERY_MIN, QUERY_WANT = 8, 22, 10, 30
MAX_INDENT = 8  # levels of nesting shown as indentation in the name column


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    width: int
    right: bool = False


@dataclass(frozen=True)
class Layout:
    columns: list[Column]
    gap: str


def plan(width: int) -> Layout:
    """The columns that fit ``width`` cells, and their widths."""
    wide = width >= 120  # room for the status as a word, not only its mark
    always = {"run", "name", "status", "ms", "docs", "retries"}
    optional = ["query", "self", "trace", "time"]  # most needed first: the last goes first
    fixed = {"time": 12, "trace": MIN_LENGTH, "run": MIN_LENGTH, "status": 12 if wide else 1, "ms": 8, "self": 8,
             "docs": 4, "retries": 7}
    gap = 2 if width >= 50 else 1

    def need(keys: set[str], query: int = QUERY_MIN) -> int:
        cells = sum(fixed[k] for k in keys if k in fixed) + NAME_MIN + (query if "query" in keys else 0)
        return cells + gap * (len(keys) - 1)

    keys = always | set(optional)
    for key in reversed(optional[1:]):  # time, trace, self go before the query gets narrower than QUERY_WANT
        if need(keys, QUERY_WANT) <= width:
            break
        keys.discard(key)
    if need(keys) > width:
        keys.discard("query")
    spare = max(0, width - need(keys))
    name = NAME_MIN + min(spare, NAME_MAX - NAME_MIN) if "query" in keys else NAME_MIN + spare
    query = QUERY_MIN + spare - (name - NAME_MIN) if "query" in keys else 0
    widths = {**fixed, "name": name, "query": query}
    order = ["time", "trace", "run", "name", "status", "ms", "self", "docs", "retries", "query"]
    headers = {"status": "status" if wide else ""}
    right = {"ms", "self", "docs", "retries"}
    return Layout([Column(k, headers.get(k, k), widths[k], k in right) for k in order if k in keys], " " * gap)


def header(layout: Layout) -> Lines:
    line = Line("")
    for i, col in enumerate(layout.columns):
        text = col.header.rjust(col.width) if col.right else col.header.ljust(col.width)
        line.add((layout.gap if i else "") + text, "bold")
    return Lines([_trim(line)])


def _trim(line: Line) -> Line:
    # No trailing padding: rows end where their last cell's text ends.
    if line.spans:
        text, spec = line.spans[-1]
        line.spans[-1] = (text.rstrip(" ") or " ", spec)
    return line


def _cell(run: Any, key: str, depth: int, wide: bool) -> tuple[str, str]:
    if key == "time":
        return format_clock(run.ts), "dim"  # in the zone every time is shown in (local, or --utc)
    if key == "trace":
        return (run.trace.short_id if run.trace else ""), "dim"
    if key == "run":
        return run.short_id, "dim"
    if key == "name":
        return "  " * min(depth, MAX_INDENT) + clean(run.name, 60, one_line=True), KIND_STYLE.get(run.kind, "")
    if key == "status":
        mark, style = STATUS_MARK.get(run.status, ("?", ""))
        return (f"{mark} {run.status}" if wide else mark), style
    if key == "ms":
        return _ms(run.duration_ms), ""
    if key == "self":
        return _ms(self_ms(run) if run.children else None), "dim"  # a leaf's own time is its time: not repeated
    if key == "docs":
        return (str(run.document_count) if run.status == "ok" and run.kind == "retriever" else ""), ""
    if key == "retries":
        n = len(run.retries)
        return (str(n) if n else ""), "yellow"
    if key == "query":
        return (clean(run.query, 200, one_line=True) if run.query is not None else ""), "dim"
    raise KeyError(key)


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def row(run: Any, depth: int, layout: Layout) -> Line:
    """One run as a row; a value wider than its column pushes the rest right (numbers are never cut)."""
    wide = any(c.key == "status" and c.width > 1 for c in layout.columns)
    line = Line("")
    for i, col in enumerate(layout.columns):
        text, style = _cell(run, col.key, depth, wide)
        lead = layout.gap if i else ""
        if col.key == "name":  # cut to its column, so the columns after it stay in line
            line.add(lead + fit_cells(text, col.width), style)
        elif col.key == "query":
            line.add(lead + text, style, give=0)
        elif col.right:
            line.add(lead + text.rjust(col.width), style)
        else:
            line.add(lead + text.ljust(col.width), style)
    return _trim(line)


def trace_rows(selected: Any, layout: Layout, sort: str = "start") -> Lines:
    """The rows of one selected trace: its runs depth first (siblings in ``sort`` order), or its matching runs."""
    out = Lines()
    if selected.runs_only:
        for run in sorted(selected.matched, key=sort_key(sort)):
            out.lines.append(row(run, 0, layout))
        return out
    for run, depth in walk_ordered(selected.trace.root, sort):
        out.lines.append(row(run, depth, layout))
    return out
