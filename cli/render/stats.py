"""`rtrace stats`: one row per group, then the totals."""

from __future__ import annotations

from typing import Any

from rtrace.cli.render.text import clean


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

