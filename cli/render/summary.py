"""What `rtrace run` prints after the script, and its `--live` view."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtrace.cli.render.text import clean, ms

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rtrace.core.read.summary import RunSummary


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


