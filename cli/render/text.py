"""Log text made safe and short for a terminal; durations as people read them."""

from __future__ import annotations

import re
from typing import Any

# ANSI CSI/OSC sequences, then every other C0/C1 control but tab and newline.
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: Any, limit: int | None = None, one_line: bool = False) -> str:
    """Log text made safe to show: control sequences neutralised, optionally one line and cut."""
    s = text if isinstance(text, str) else str(text)
    if not s.isprintable():  # the common case, printable text, skips both passes (checked in C)
        s = _CONTROL.sub(lambda m: "\ufffd" if len(m.group()) == 1 else "", s)
        if one_line:
            s = " ".join(s.split())
    if limit is not None and len(s) > limit:
        s = s[: max(0, limit - 1)] + "…"
    return s


def ms(value: float | None) -> str:
    if value is None:
        return "?"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"

