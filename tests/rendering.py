"""Rendering a log exactly as ``rtrace show`` does, into a recording console at a given width."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rtrace.cli.commands.show import blocks
from rtrace.cli.render.tree import ShowOptions
from rtrace.core.read.filters import RunFilter
from rtrace.core.read.pipeline import Source, selected_items
from rtrace.core.read.reader import ReadStats
from rtrace.core.read.trees import TreeBuilder


def render(log: Path, width: int, fmt: str = "tree", run_filter: RunFilter | None = None, runs_only: bool = False,
           color: bool = False, **opts: Any) -> str:
    """What ``rtrace show LOG --format FMT --width WIDTH`` prints, through Rich (styles dropped unless ``color``)."""
    with open(os.devnull, "w") as sink:
        console = Console(record=True, width=width, color_system="truecolor" if color else None,
                          force_terminal=color or None, file=sink)
        items = selected_items(Source([str(log)]), run_filter or RunFilter(), runs_only, None, ReadStats(), TreeBuilder(),
                               start_order=True)
        for block, _ in blocks(items, fmt, ShowOptions(**opts), width):
            console.print(block)
        return console.export_text(styles=color)
