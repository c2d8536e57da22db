"""`rtrace diff`: the summary, the worst queries (status changes first), what changed, side by side.

Numbers come first on each row and keep their width on a narrow terminal; the
run's path and query give way.
"""

from __future__ import annotations

from typing import Any

from rtrace.cli.render.lines import Line, Lines, fit_cells
from rtrace.cli.render.text import clean
from rtrace.cli.render.tree import STATUS_MARK
from rtrace.core.jsontext import value_text

NUMBERS = (("overlap", 7), ("jaccard", 7), ("rbo", 5), ("Δ ms", 8))


def diff_report(result: Any, worst: int, label_a: str, label_b: str) -> Any:
    """``rtrace diff``: the summary, then the worst queries in detail."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    def pct(x: float | None) -> str:
        return "" if x is None else f"{x:.3f}"

    head = Text.assemble(("rtrace diff  ", "bold"), (clean(label_a, 80), "cyan"), "  →  ", (clean(label_b, 80), "cyan"))
    summary = Table(box=None, show_header=False, pad_edge=False)
    summary.add_column(style="dim", no_wrap=True)
    summary.add_column(justify="right", no_wrap=True)
    summary.add_row("queries matched", str(len(result.queries)))
    summary.add_row("only in A / only in B", f"{len(result.only_a)} / {len(result.only_b)}")
    changes = result.status_changes
    summary.add_row("status changes", Text(str(len(changes)), style="bold red" if changes else ""))
    summary.add_row(f"mean overlap@{result.k}", pct(result.mean("overlap")))
    summary.add_row(f"mean Jaccard@{result.k}", pct(result.mean("jaccard")))
    summary.add_row(f"mean RBO@{result.k} (p=0.9)", pct(result.mean("rbo")))
    change = result.mean_latency_change_ms
    summary.add_row("mean latency change", "" if change is None else f"{change:+.1f} ms")
    parts: list[Any] = [head, summary]
    if result.request_changes:
        parts.append(request_lines(result.request_changes))
    shown = [q for q in result.worst(worst) if q.status_changed or q.overlap < 1.0 or q.rbo < 1.0]
    if shown:
        parts.append(worst_lines(shown, len(result.queries)))
    for label, keys in (("only in A", result.only_a), ("only in B", result.only_b)):
        for name, query in keys[:worst]:
            parts.append(Text.assemble((f"{label}: ", "dim"), (clean(name, 60, True), "cyan"), f"  “{clean(query, 80, True)}”"))
    listed = [q for q in result.queries if q.shown_a is not None or q.shown_b is not None]
    for q in listed:
        parts.append(side_by_side(q, result.k))
    return Group(*parts)


def request_lines(changes: list[Any]) -> Lines:
    """What the retrievers asked differently, one retriever a line: ``Dense  k 4 → 8  search_type similarity → mmr``."""
    out = Lines([Line("").add("asked differently (A → B)", "bold")])
    by_name: dict[str, list[Any]] = {}
    for change in changes:
        by_name.setdefault(change.name, []).append(change)
    for name, fields in by_name.items():
        line = Line("").add("  " + clean(name, 120, True), "cyan", give=6)
        for change in fields:
            a = ", ".join(_asked(v) for v in change.a) or "—"
            b = ", ".join(_asked(v) for v in change.b) or "—"
            line.add(f"  {clean(change.field, 30, True)} {a} → {b}", "yellow", give=0)
        out.lines.append(line)
    return out


def _asked(value: Any) -> str:
    # Values that differ read differently: never "k 5 → 5" for 5 and "5".
    return clean(value_text(value), 40, one_line=True)


def _status(status: str) -> str:
    return f"{STATUS_MARK.get(status, ('?', ''))[0]} {status}"


def worst_lines(shown: list[Any], matched: int) -> Lines:
    """The worst queries as rows (numbers, then run path and query), then what changed in each."""
    out = Lines([Line("").add(f"worst {len(shown)} of {matched} queries", "bold")])
    head = Line("")
    for i, (title, width) in enumerate(NUMBERS):
        head.add(("  " if i else "") + title.rjust(width), "bold")
    out.lines.append(head.add("  run  query", "bold"))
    numbers_width = sum(w for _, w in NUMBERS) + 2 * (len(NUMBERS) - 1)
    for q in shown:
        line = Line("")
        delta = q.latency_change_ms
        delta_text = "" if delta is None else f"{delta:+.1f}"
        if q.status_changed:  # the documents of a failed run say nothing: say how it ended instead
            status = f"{_status(q.status_a)} → {_status(q.status_b)}"
            line.add(status.ljust(numbers_width - NUMBERS[-1][1] - 2)[: numbers_width - NUMBERS[-1][1] - 2], "bold red")
            line.add("  " + delta_text.rjust(NUMBERS[-1][1]), "")
        else:
            for i, (value, (_, width)) in enumerate(zip((f"{q.overlap:.2f}", f"{q.jaccard:.2f}", f"{q.rbo:.2f}", delta_text), NUMBERS)):
                line.add(("  " if i else "") + value.rjust(width), "")
        line.add("  " + clean(q.name, 120, True), "cyan", give=6)
        line.add("  “" + clean(q.query, 200, True) + "”", "", give=0)
        out.lines.append(line)
    for q in shown:  # what changed, one query a line
        line = Line("").add("  ").add(clean(q.name, 60, True), "cyan", give=4).add(f" “{clean(q.query, 60, True)}”:", "", give=3)
        if q.status_changed:
            for side, status, error in (("A", q.status_a, q.error_a), ("B", q.status_b, q.error_b)):
                text = f" {side} {status}" + (f" ({clean(error, 200, True)})" if error else "")
                line.add(text, "red" if status != "ok" else "green")
        else:
            for doc, rank in q.lost:
                line.add(f" -{clean(doc, 40, True)}@{rank}", "red")
            for doc, rank in q.gained:
                line.add(f" +{clean(doc, 40, True)}@{rank}", "green")
            for doc, a, b in q.moved:
                line.add(f" {clean(doc, 40, True)} {a}→{b}", "yellow")
        out.lines.append(line)
    return out


def side_by_side(q: Any, k: int) -> Lines:
    """One query's top-k documents from A and B in two columns, each marked against the other side."""
    out = Lines([Line(""), Line("").add(clean(q.name, 120, True), "cyan", give=6)
                 .add("  “" + clean(q.query, 200, True) + "”", "bold", give=0)])
    a, b = (q.shown_a or [])[:k], (q.shown_b or [])[:k]
    out.lines.append(Line("").add(" = same rank, N: its rank on the other side, - only in A, + only in B", "dim", give=0))
    out.lines.append(_Pair(None, None, 0, {}, {}, q))
    rank_a = {d.key: i + 1 for i, d in enumerate(a)}
    rank_b = {d.key: i + 1 for i, d in enumerate(b)}
    for i in range(max(len(a), len(b))):
        out.lines.append(_Pair(a[i] if i < len(a) else None, b[i] if i < len(b) else None, i + 1, rank_a, rank_b, q))
    return out


def _mark(rank: int, other: int | None, missing: str) -> tuple[str, str]:
    """``=`` at the same rank on the other side, else its rank there, else ``-`` (only in A) / ``+`` (only in B)."""
    if other is None:
        return missing.rjust(2), "red" if missing == "-" else "green"
    if other == rank:
        return " =", "dim"
    return f"{other:>2}" if other < 100 else "≫", "yellow"


class _Pair(Line):
    """A rank's document in A and in B, laid out when the width is known; the header row when ``rank`` is 0."""

    def __init__(self, a: Any, b: Any, rank: int, rank_a: dict[str, int], rank_b: dict[str, int], q: Any) -> None:
        super().__init__("")
        self.a, self.b, self.rank, self.rank_a, self.rank_b, self.q = a, b, rank, rank_a, rank_b, q

    def fit(self, width: int) -> list[list[tuple[str, str]]]:
        half = max(12, (width - 3 - 3) // 2)
        if not self.rank:
            left = f"A  {_status(self.q.status_a)}"
            right = f"B  {_status(self.q.status_b)}"
            return [[("   ", ""), (fit_cells(left, half), "bold"), (" │ ", "dim"), (fit_cells(right, half, pad=False), "bold")]]
        row: list[tuple[str, str]] = [(f"{self.rank:>2} ", "bold")]
        left = self._cell(self.a, self.rank_b, "-", half)
        right = self._cell(self.b, self.rank_a, "+", half)
        row.extend(left)
        row.append((" │ ", "dim"))
        row.extend(right)
        while row and not row[-1][0].strip():  # no trailing blanks
            row.pop()
        row[-1] = (row[-1][0].rstrip(), row[-1][1])
        return [row]

    def _cell(self, doc: Any, other_ranks: dict[str, int], missing: str, half: int) -> list[tuple[str, str]]:
        if doc is None:
            return [(" " * half, "")]
        mark, style = _mark(self.rank, other_ranks.get(doc.key), missing)
        score = "" if doc.score is None else (f"{doc.score:.3f}" if abs(doc.score) < 1000 else f"{doc.score:.4g}")
        room = max(2, half - 3 - (len(score) + 1 if score else 0))  # after the mark and the score
        key = fit_cells(clean(doc.key, 40, True), max(4, room // 2), pad=False)
        text = fit_cells(clean(doc.text, 300, True), max(0, room - len(key) - 1))
        cells = [(mark + " ", style)]
        if score:
            cells.append((score + " ", "green"))
        cells.extend([(key, "cyan"), (" " + text if text else " " * (room - len(key)), "")])
        return cells
