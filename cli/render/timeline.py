"""`rtrace show --format timeline`: each trace as a waterfall, one row per run.

A run's bar starts at its start offset within the trace and is as long as its
duration, on one scale per trace, so runs that ran at the same time overlap.
Retries are marked ``↻`` where they happened, an error ends its bar with ``✗``,
a run that never ended runs to the edge with ``…``. The name gives way first on
a narrow terminal; the bar keeps at least ``BAR_MIN`` cells and the duration
stays whole.
"""

from __future__ import annotations

import math
from typing import Any

from rtrace.cli.render.lines import Line, Lines
from rtrace.cli.render.text import clean, ms
from rtrace.cli.render.tree import KIND_STYLE, STATUS_MARK
from rtrace.core.read.trees import sort_key, started_ns, walk_ordered
from rtrace.core.times import ts_nanos

BAR_MIN, NAME_MIN, NAME_MAX, MS_WIDTH = 10, 6, 32, 9
MAX_INDENT = 8
BAR_STYLE = {"ok": "green", "error": "red", "incomplete": "magenta"}


def _rows(selected: Any, sort: str) -> list[tuple[Any, int]]:
    if selected.runs_only:
        return [(run, 0) for run in sorted(selected.matched, key=sort_key(sort))]
    return list(walk_ordered(selected.trace.root, sort))


def _span(rows: list[tuple[Any, int]]) -> tuple[int, int]:
    """The trace's window in ns: first start to last end (a run without an end reaches no further)."""
    starts, ends = [], []
    for run, _ in rows:
        at = started_ns(run)
        if at is None:
            continue
        starts.append(at)
        if run.duration_ms is not None:
            ends.append(at + int(run.duration_ms * 1e6))
    if not starts:
        return 0, 0
    begin = min(starts)
    return begin, max([*ends, *starts])


def trace_timeline(selected: Any, opts: Any) -> Lines:
    """One trace as a header line, then a bar per run on one time scale, then a blank line."""
    sort = getattr(opts, "sort", "start")
    rows = _rows(selected, sort)
    begin, end = _span(rows)
    span_ns = max(end - begin, 1)
    names = ["  " * min(depth, MAX_INDENT) + clean(run.name, 60, one_line=True) for run, depth in rows]
    name_width = max(NAME_MIN, min(NAME_MAX, max(len(n) for n in names)))
    out = Lines([_head(selected, end - begin)])
    out.lines.extend(_BarLine(run, name, name_width, begin, span_ns) for (run, _), name in zip(rows, names))
    out.lines.append(Line(""))
    return out


def _head(selected: Any, span_ns: int) -> Line:
    root = selected.trace.root
    line = Line("").add("── ", "dim").add("trace ", "bold").add(selected.trace.short_id, "bold")
    line.add(f"  {ms(span_ns / 1e6)}", "dim")
    line.add("  " + clean(root.name, 60, one_line=True), KIND_STYLE.get(root.kind, "bold"), give=0)
    if root.query is not None:
        line.add("  “" + clean(root.query, 200, one_line=True) + "”", "", give=0)
    return line


class _BarLine(Line):
    """A row whose bar field is laid out when the width it is printed at is known (``fit``)."""

    def __init__(self, run: Any, name: str, name_width: int, begin: int, span_ns: int) -> None:
        super().__init__("")
        self.run, self.name, self.name_width, self.begin, self.span_ns = run, name, name_width, begin, span_ns

    def fit(self, width: int) -> list[list[tuple[str, str]]]:
        # mark + space, name, 2 spaces, bar, 2 spaces, duration: the name gives way to keep BAR_MIN cells.
        name_width = max(NAME_MIN, min(self.name_width, width - 2 - 2 - BAR_MIN - 2 - MS_WIDTH))
        bar_width = max(BAR_MIN, width - 2 - name_width - 2 - 2 - MS_WIDTH)
        run = self.run
        mark, mark_style = STATUS_MARK.get(run.status, ("?", ""))
        name = self.name if len(self.name) <= name_width else self.name[: name_width - 1] + "…"
        self.spans = [(mark + " ", mark_style), (name.ljust(name_width), KIND_STYLE.get(run.kind, "")), ("  ", "")]
        self.spans.extend(_bar(run, self.begin, self.span_ns, bar_width))
        took = "" if run.duration_ms is None else ms(run.duration_ms)
        self.spans.append(("  " + took.rjust(MS_WIDTH), "yellow" if (run.duration_ms or 0) >= 1000 else "dim"))
        self.give = {}
        return super().fit(width)


def _bar(run: Any, begin: int, span_ns: int, cells: int) -> list[tuple[str, str]]:
    """The bar field: blanks, then the run's bar with its retry and end marks, then blanks."""
    at = started_ns(run)
    if at is None:
        return [(" " * cells, "")]
    scale = cells / span_ns
    first = min(cells - 1, max(0, int((at - begin) * scale)))
    if run.duration_ms is None:
        last = cells - 1
    else:
        last = min(cells - 1, max(first, math.ceil((at - begin + run.duration_ms * 1e6) * scale) - 1))
    style = BAR_STYLE.get(run.status, "")
    bar = ["█"] * (last - first + 1)
    for ev in run.retries:
        when = ts_nanos(ev.get("ts"))
        if when is not None:
            bar[min(len(bar) - 1, max(0, int((when - begin) * scale) - first))] = "↻"
    if run.status == "error":
        bar[-1] = "✗"
    elif run.status == "incomplete":
        bar[-1] = "…"
    return [(" " * first, ""), ("".join(bar), style), (" " * (cells - 1 - last), "")]
