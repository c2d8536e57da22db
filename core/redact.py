"""Replacing the values of secret-looking metadata keys before they are written."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DEFAULT_REDACT = ("api_key", "authorization", "password", "token", "secret")
REDACTED = "[REDACTED]"


def redact_keys(keys: Iterable[str] | None) -> frozenset[str]:
    """Normalised (lower-case) key set; ``None`` means the defaults."""
    return frozenset(k.lower() for k in (DEFAULT_REDACT if keys is None else keys))


def redact(value: Any, keys: frozenset[str], _depth: int = 0) -> Any:
    """``value`` with the values of ``keys`` (matched case-insensitively) replaced.

    Returns the same object when nothing matches, so the common case copies nothing.
    """
    if not keys or _depth > 32:
        return value
    if isinstance(value, Mapping):
        out: dict[Any, Any] | None = None
        for k, v in value.items():
            if isinstance(k, str) and k.lower() in keys:
                new = REDACTED
            else:
                new = redact(v, keys, _depth + 1)
            if new is not v:
                if out is None:
                    out = dict(value)
                out[k] = new
        return value if out is None else out
    if isinstance(value, (list, tuple)):
        items = [redact(v, keys, _depth + 1) for v in value]
        if any(a is not b for a, b in zip(items, value)):
            return items
    return value
