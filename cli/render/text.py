"""Log text made safe and short for a terminal; durations as people read them."""

from __future__ import annotations

from typing import Any

from rtrace.core.terminal import harmless, neutralise


def clean(text: Any, limit: int | None = None, one_line: bool = False) -> str:
    """Log text made safe to show (``rtrace.core.terminal.neutralise``), optionally one line and cut."""
    s = text if isinstance(text, str) else str(text)
    cut = False
    if limit is not None and len(s) > 4 * limit + 64:
        # Only the head can be shown: neutralise no more than that (a 200 MB document in a one-line preview).
        s, cut = s[: 4 * limit + 64], True
    if not harmless(s):  # the common case, harmless text, skips both passes (checked in C)
        s = neutralise(s, lines=not one_line)
        if one_line:
            s = " ".join(s.split())
    if limit is not None and (cut or len(s) > limit):
        s = s[: max(0, limit - 1)] + "…"
    return s


def compact(value: Any, limit: int = 60) -> str:
    """A value on one line: text as it is, anything else as JSON (any depth: repr and orjson stop)."""
    from rtrace.core.jsontext import dumps

    if isinstance(value, str):
        return clean(value, limit, one_line=True)
    return clean(dumps(value).decode(), limit, one_line=True)


def key_values(fields: dict[str, Any]) -> str:
    """Fields on one line, ``k=4 search_type=mmr team=search``: a run's request (``Run.request``) or metadata."""
    return " ".join(f"{clean(k, 30, one_line=True)}={compact(v, 40)}" for k, v in fields.items())


def ms(value: float | None) -> str:
    if value is None:
        return "?"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"
