"""Replacing the values of secret-looking metadata keys before they are written."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DEFAULT_REDACT = ("api_key", "authorization", "password", "token", "secret")
REDACTED = "[REDACTED]"
SCALARS = frozenset({str, int, float, bool, type(None)})
_MAX_CLEAN = 4096


class Redactor:
    """Replaces values of ``keys`` (case-insensitive) anywhere in nested dicts and lists.

    Returns the very object it was given when nothing matches, so the common case
    copies nothing. It runs on every document's metadata, so the common case (keys
    seen before, scalar values) is decided by two set operations in C.
    """

    __slots__ = ("keys", "clean_keys")

    def __init__(self, keys: Iterable[str] | None = None) -> None:
        self.keys = frozenset(k.lower() for k in (DEFAULT_REDACT if keys is None else keys))
        self.clean_keys: set[Any] = set()  # keys known not to match

    def __bool__(self) -> bool:
        return bool(self.keys)

    def __call__(self, value: Any, _depth: int = 0) -> Any:
        if not self.keys or _depth > 32:
            return value
        if type(value) is dict and self.clean_keys.issuperset(value) and SCALARS.issuperset(map(type, value.values())):
            return value
        if isinstance(value, Mapping):
            out: dict[Any, Any] | None = None
            for k, v in value.items():
                if self._matches(k):
                    new: Any = REDACTED
                elif type(v) in SCALARS:
                    continue
                else:
                    new = self(v, _depth + 1)
                if new is not v:
                    if out is None:
                        out = dict(value)
                    out[k] = new
            return value if out is None else out
        if isinstance(value, (list, tuple)):
            items = [v if type(v) in SCALARS else self(v, _depth + 1) for v in value]
            if any(a is not b for a, b in zip(items, value)):
                return items
        return value

    def documents(self, docs: list[dict[str, Any]]) -> None:
        """Redact each recorded document's metadata in place (the record dicts are ours)."""
        if not self.keys:
            return
        clean = self.clean_keys
        for d in docs:
            m = d["metadata"]
            # __call__'s fast check, inlined: this loop runs for every document recorded.
            if m and not (type(m) is dict and clean.issuperset(m) and SCALARS.issuperset(map(type, m.values()))):
                d["metadata"] = self(m)

    def _matches(self, key: Any) -> bool:
        if key in self.clean_keys:
            return False
        if isinstance(key, str) and key.lower() in self.keys:
            return True
        if len(self.clean_keys) >= _MAX_CLEAN:  # bounded: keys are usually a small fixed set
            self.clean_keys.clear()
        try:
            self.clean_keys.add(key)
        except TypeError:  # unhashable key
            pass
        return False
