"""`rtrace show --format table`: one row per run."""

from __future__ import annotations

from typing import Any

from rtrace.cli.render.text import clean
from rtrace.cli.render.tree import KIND_STYLE, STATUS_MARK


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


