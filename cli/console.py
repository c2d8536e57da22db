"""Consoles are made here, never at import time: tty, NO_COLOR, width and pager are decided per call."""

from __future__ import annotations

import os
import sys
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def make_console(file: IO[str] | None = None, *, stderr: bool = False, width: int | None = None,
                 terminal: bool | None = None) -> Console:
    """A Rich console: colour only on a terminal and never with NO_COLOR.

    ``terminal=True`` says ``file`` ends on a terminal though it is not one (a pager's pipe).
    """
    from rich.console import Console

    target = file if file is not None else (sys.stderr if stderr else sys.stdout)
    if terminal is None:
        terminal = hasattr(target, "isatty") and target.isatty()
    use_color = terminal and not os.environ.get("NO_COLOR")
    return Console(
        file=target,
        width=width,
        color_system="auto" if use_color else None,
        force_terminal=use_color or None,
        no_color=not use_color,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=False,
    )
