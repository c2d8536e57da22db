"""`rtrace stats`: which log, one row per group with a latency histogram, the totals, the slowest runs.

Every number keeps its width at any terminal width: the group names give way
first, then whole columns go, least needed first (the histogram, self time,
empty results, error rate, p99, documents).
"""

from __future__ import annotations

from typing import Any

from rtrace.cli.render.lines import Line, Lines
from rtrace.cli.render.text import clean, ms

BARS = "▁▂▃▄▅▆▇█"
BINS = 8
NAME_MIN, NAME_WANT = 6, 14
# (key in a row, header, style of a non-zero value); durations in ms.
COLUMNS = [("runs", "runs", ""), ("errors", "err", "red"), ("err%", "err%", "red"), ("retries", "retry", "yellow"),
           ("p50_ms", "p50", ""), ("p90_ms", "p90", ""), ("p99_ms", "p99", ""), ("max_ms", "max", ""),
           ("mean_self_ms", "self", "dim"), ("mean_docs", "docs", ""), ("empty_results", "empty", "yellow"),
           ("hist", "latency", "cyan")]
GIVE_WAY = ["hist", "mean_self_ms", "empty_results", "err%", "p99_ms", "mean_docs", "p90_ms", "retries"]  # first goes first


def sparkline(bins: list[int]) -> str:
    """Counts as bar heights, the fullest bin ``█``; an empty bin is a space."""
    top = max(bins) if bins else 0
    if not top:
        return ""
    return "".join(" " if not n else BARS[min(len(BARS) - 1, (n * len(BARS) - 1) // top)] for n in bins)


def _value(r: dict[str, Any], key: str) -> str:
    v = r.get(key)
    if key == "err%":
        return f"{100 * r['error_rate']:.1f}"
    if key == "hist":
        return sparkline(r["hist"]) if r.get("hist") else ""
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.2f}" if key.endswith("_ms") and v < 10 else f"{v:.1f}"
    return str(v)


def stats_lines(rows: list[dict[str, Any]], total: dict[str, Any], by: str, logs: str, runs_word: str = "runs") -> Lines:
    """``rtrace stats`` as lines: a line naming the log, the header, a row per group, the total."""
    out = Lines([_StatsHead(logs, total)])
    table = [*rows, {**total, "group": "total"}]
    out.lines.append(_Table(by, table, len(rows)))
    return out


class _StatsHead(Line):
    def __init__(self, logs: str, total: dict[str, Any]) -> None:
        super().__init__("")
        n = total["runs"]
        self.add("rtrace stats: ", "bold").add(f"{n} retriever run{'s' if n != 1 else ''} in ")
        self.add(clean(logs, 400, one_line=True), "bold")


class _Table(Line):
    """The group table, laid out when the width is known: it renders as several rows."""

    def __init__(self, by: str, rows: list[dict[str, Any]], groups: int) -> None:
        super().__init__("")
        self.by, self.rows, self.groups = by, rows, groups

    def fit(self, width: int) -> list[list[tuple[str, str]]]:
        cells = {key: [_value(r, key) for r in self.rows] for key, _, _ in COLUMNS}
        widths = {key: max(len(head), *(len(c) for c in cells[key])) for key, head, _ in COLUMNS}
        keys = [key for key, _, _ in COLUMNS if key != "hist" or any(cells["hist"])]
        names = [clean(r["group"], 60, one_line=True) for r in self.rows]
        name_want = max(len(self.by), *(len(n) for n in names))

        def need(ks: list[str]) -> int:
            return NAME_MIN + sum(widths[k] + 2 for k in ks)

        for key in GIVE_WAY:  # names get some room before the least needed columns do
            if need(keys) + min(name_want, NAME_WANT) - NAME_MIN <= width:
                break
            if key in keys:
                keys.remove(key)
        name_width = max(NAME_MIN, min(name_want, 40, width - need(keys) + NAME_MIN))
        heads = {key: head for key, head, _ in COLUMNS}
        styles = {key: style for key, _, style in COLUMNS}
        out: list[list[tuple[str, str]]] = []

        def fit_name(text: str) -> str:
            return text.ljust(name_width) if len(text) <= name_width else text[: name_width - 1] + "…"

        head: list[tuple[str, str]] = [(fit_name(self.by), "bold")]
        for key in keys:
            head.append(("  " + (heads[key].ljust(widths[key]) if key == "hist" else heads[key].rjust(widths[key])), "bold"))
        out.append(head)
        for i, (r, name) in enumerate(zip(self.rows, names)):
            is_total = i == len(self.rows) - 1
            if is_total and self.groups:
                out.append([("─" * min(width, name_width + sum(widths[k] + 2 for k in keys)), "dim")])
            row: list[tuple[str, str]] = [(fit_name(name), "bold" if is_total else "cyan")]
            for key in keys:
                text = cells[key][i]
                zero = text in ("", "0", "0.0")
                row.append(("  " + (text.ljust(widths[key]) if key == "hist" else text.rjust(widths[key])),
                            "" if zero else styles[key]))
            out.append(row)
        return [[(t.rstrip() if j == len(r) - 1 else t, s) for j, (t, s) in enumerate(r)] for r in out]


def slowest_lines(slowest: list[Any], of: str) -> Lines:
    """The slowest runs: duration, name, short id (for ``show --run``), query."""
    out = Lines()
    if not slowest:
        return out
    out.lines.append(Line(""))
    out.lines.append(Line("").add(f"slowest {of}", "bold").add("  (rtrace show --run ID)", "dim"))
    took = [ms(s.duration_ms) for s in slowest]
    names = [clean(s.name, 40, one_line=True) for s in slowest]
    tw, nw, iw = max(map(len, took)), max(map(len, names)), max(len(s.short_id) for s in slowest)
    for s, t, n in zip(slowest, took, names):
        line = Line("").add("  " + t.rjust(tw), "yellow" if s.duration_ms >= 1000 else "")
        line.add("  " + n.ljust(nw), "red" if s.status == "error" else "cyan", give=2 + min(nw, 8))
        line.add("  " + s.short_id.ljust(iw), "dim")
        if s.query is not None:
            line.add("  “" + clean(s.query, 200, one_line=True) + "”", "dim", give=0)
        out.lines.append(line)
    return out
