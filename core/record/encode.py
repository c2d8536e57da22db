"""Safe JSON encoding: whatever a traced program hands us becomes a JSON line.

orjson handles the common types natively; ``_default`` converts the rest (sets to
lists, bytes to base64, arrays via ``tolist``, models via ``model_dump``, anything
else to ``repr``). When orjson still fails (a cycle, a 100-bit int, a lone
surrogate) ``_sanitize`` rebuilds the value in Python and the line is written
anyway: values are converted, never dropped, and encoding never raises.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
_MAX_DEPTH = 64
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def safe_repr(obj: object) -> str:
    """``repr`` that cannot raise."""
    try:
        return repr(obj)
    except Exception:
        try:
            return f"<{type(obj).__name__} object (repr failed)>"
        except Exception:
            return "<object (repr failed)>"


def _default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, BaseException):
        return {"type": type(obj).__name__, "message": str(obj)}
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays, array.array
    if callable(tolist):
        try:
            return tolist()
        except Exception:
            pass
    dump = getattr(obj, "model_dump", None)  # pydantic v2
    if callable(dump):
        try:
            return dump()
        except Exception:
            pass
    if hasattr(obj, "page_content") and hasattr(obj, "metadata"):  # a Document
        return {"page_content": obj.page_content, "metadata": obj.metadata}
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, (tuple, list)):
        return list(obj)
    return safe_repr(obj)


def _sanitize(obj: Any, depth: int = 0, seen: frozenset[int] = frozenset()) -> Any:
    """Rebuild ``obj`` from plain JSON types; the slow path, used only on failure."""
    if obj is None or isinstance(obj, (bool, float)):
        return obj
    if isinstance(obj, int):
        return obj if _INT_MIN <= obj <= _INT_MAX else str(obj)
    if isinstance(obj, str):
        return obj.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time, uuid.UUID, enum.Enum)):
        return obj
    if depth >= _MAX_DEPTH:
        return safe_repr(obj)[:200]
    if id(obj) in seen:
        return "<cycle>"
    seen = seen | {id(obj)}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        try:
            obj = dataclasses.asdict(obj)
        except Exception:
            return safe_repr(obj)
    if isinstance(obj, Mapping):
        out = {}
        for k, v in list(obj.items()):
            key = k if isinstance(k, str) else _key(k)
            out[_sanitize(key, depth + 1, seen)] = _sanitize(v, depth + 1, seen)
        return out
    if isinstance(obj, (list, tuple)):
        return [_sanitize(v, depth + 1, seen) for v in obj]
    converted = _default(obj)
    if converted is obj:  # nothing better than its repr
        return safe_repr(obj)
    if isinstance(converted, Iterable) and not isinstance(converted, (str, Mapping)):
        return [_sanitize(v, depth + 1, seen) for v in converted]
    return _sanitize(converted, depth + 1, seen)


def _key(k: object) -> str:
    if isinstance(k, (int, float, bool)) or k is None:
        return str(k)
    return safe_repr(k)


def dumps_line(obj: Any) -> bytes:
    """One JSON line (with its ``\\n``) for ``obj``; never raises."""
    try:
        return orjson.dumps(obj, default=_default, option=OPTIONS)
    except Exception:
        pass
    try:
        return orjson.dumps(_sanitize(obj), default=safe_repr, option=OPTIONS)
    except Exception as e:  # pragma: no cover - _sanitize yields plain types
        return orjson.dumps({"unencodable": safe_repr(obj), "reason": safe_repr(e)}, option=OPTIONS)


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types (a round trip through ``dumps_line``)."""
    return orjson.loads(dumps_line(obj))
