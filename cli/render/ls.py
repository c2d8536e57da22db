"""``rtrace ls``: recorded runs as a table, newest first, each with its ``@`` reference."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rtrace.cli.render.text import clean, ms
from rtrace.core.times import format_ts, zone_label

if TYPE_CHECKING:
    from rich.console import Group
    from rtrace.core.store import LoggedRun


def reference(index: int) -> str:
    return "@" if index == 0 else f"@{index}"


def _path(run: LoggedRun) -> str:
    try:
        return os.path.relpath(run.path)
    except ValueError:
        return str(run.path)


def runs_table(runs: Sequence[LoggedRun], width: int) -> Group:
    """One row per run. Numbers never wrap or shrink: the script gives way first, and below
    90 columns the log's path moves to a line of its own under its run."""
    from rich.console import Group
    from rich.text import Text

    cells = []
    for i, run in enumerate(runs):
        exit_style = ("bold red" if run.died else "magenta") if not run.ended else "green" if run.exit_code == 0 else "bold red"
        cells.append([
            (reference(i), "bold"),
            (format_ts(run.started), ""),
            (clean(run.script or "?", 60, one_line=True), "cyan"),
            ("?" if run.runs is None else str(run.runs), ""),
            ("?" if run.errors is None else str(run.errors), "red" if run.errors else ""),
            (ms(run.duration_ms) if run.duration_ms is not None else "?", ""),
            (("died" if run.died else "…") if not run.ended else str(run.exit_code) if run.exit_code is not None else "?",
             exit_style),
            (clean(_path(run), None, one_line=True), "dim"),
        ])
    headers = ["#", f"started ({zone_label(runs[0].started if runs else None)})", "script", "runs", "errors",
               "took", "exit", "log"]
    right = {3, 4, 5, 6}
    widths = [max([len(h)] + [len(row[c][0]) for row in cells]) for c, h in enumerate(headers)]
    gap = 2
    total = sum(widths) + gap * 7
    wide = total <= width  # everything fits: the log's path in its column
    if not wide and width < 72:  # narrow: minutes are enough, and "err" says errors
        headers[1], headers[4] = f"started ({zone_label(runs[0].started if runs else None)})", "err"
        for row in cells:
            row[1] = (row[1][0][5:16], "")
        widths = [max([len(h)] + [len(row[c][0]) for row in cells]) for c, h in enumerate(headers)]
        headers[1] = headers[1] if len(headers[1]) <= widths[1] else "started"
        widths[1] = max(len(headers[1]), max([len(row[1][0]) for row in cells], default=0))
    if not wide:
        fixed = sum(w for c, w in enumerate(widths) if c not in (2, 7)) + gap * 6
        widths[2] = max(6, min(widths[2], width - fixed))
    columns = range(8) if wide else range(7)

    def line(values: list[tuple[str, str]], header: bool = False) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for n, c in enumerate(columns):
            value, style = values[c]
            if len(value) > widths[c]:
                value = value[: max(0, widths[c] - 1)] + "…"
            text.append(" " * gap if n else "")
            padded = value.rjust(widths[c]) if c in right else value.ljust(widths[c]) if c != 7 else value
            text.append(padded, style="bold" if header else style)
        return text

    lines = [line([(h, "") for h in headers], header=True)]
    for row in cells:
        lines.append(line(row))
        if not wide:
            lines.append(Text("    " + row[7][0], style="dim", no_wrap=True, overflow="ellipsis"))
    return Group(*lines)
