"""`rtrace diff`: the summary, then the worst queries in detail."""

from __future__ import annotations

from typing import Any

from rtrace.cli.render.text import clean


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
