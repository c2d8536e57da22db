"""Consoles are made here, never at import time: tty, NO_COLOR, width and pager are decided per call."""

from __future__ import annotations

import os
import sys
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def make_console(file: IO[str] | None = None, *, stderr: bool = False, width: int | None = None,
                 color: bool | None = None) -> Console:
    """A Rich console: colour only on a terminal and never with NO_COLOR; ``color`` forces it."""
    from rich.console import Console

    target = file if file is not None else (sys.stderr if stderr else sys.stdout)
    is_tty = hasattr(target, "isatty") and target.isatty()
    no_color = "NO_COLOR" in os.environ and os.environ["NO_COLOR"] != ""
    use_color = (is_tty and not no_color) if color is None else color
    return Console(
        file=target,
        width=width,
        color_system="auto" if use_color else None,
        force_terminal=use_color if color is not None else None,
        no_color=not use_color,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=False,
    )
