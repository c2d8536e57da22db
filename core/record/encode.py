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


# Budgets for recorded strings (characters): no value can make a line, or the log, explode.
MAX_TEXT = 64 * 1024  # a query, a text, a message, any string inside metadata or custom data
MAX_TRACEBACK = 16 * 1024  # per error, after frames are limited (see fields.error_fields)
MAX_CONTENT = 1024 * 1024  # a document's content when --max-content is not given
MAX_ITEMS = 10_000  # items kept of one list or dict inside metadata or custom data
TRUNCATED = "…[{} more characters]"

# Types whose repr is the stdlib's own and calls no user code: rtrace calls repr on nothing
# else (plain python would not call a user's __repr__ here, and one that hangs must not
# hang the program). Everything else is recorded as "<module.Class object>".
_SAFE_REPR_MODULES = frozenset({"builtins", "datetime", "decimal", "_decimal", "uuid", "pathlib", "fractions",
                                "ipaddress", "numpy", "enum", "_pydecimal"})
_CONTAINERS = (list, tuple, dict, set, frozenset)


def clip(s: str, limit: int = MAX_TEXT) -> str:
    """``s`` cut to ``limit`` characters, saying how many were dropped."""
    if len(s) <= limit:
        return s
    return s[:limit] + TRUNCATED.format(len(s) - limit)


def _placeholder(obj: object) -> str:
    cls = type(obj)
    return f"<{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', '?')} object>"


def _repr_is_safe(obj: object, name: str = "__repr__") -> bool:
    method = getattr(type(obj), name)
    owner = getattr(method, "__objclass__", None)  # a slot wrapper: the C type that defines it
    module = getattr(owner, "__module__", None) if owner is not None else getattr(method, "__module__", None)
    return module in _SAFE_REPR_MODULES


def safe_repr(obj: object) -> str:
    """``repr`` that cannot raise, hang in user code, or return an unbounded string."""
    try:
        if isinstance(obj, int) and type(obj) in (int, bool):
            return int_text(obj)
        if type(obj) in _CONTAINERS:  # their repr calls every element's: built here, bounded
            return clip(_container_repr(obj, 0))
        if not _repr_is_safe(obj):
            return _placeholder(obj)
        return clip(repr(obj))
    except Exception:
        try:
            return f"<{type(obj).__name__} object (repr failed)>"
        except Exception:
            return "<object (repr failed)>"


def _container_repr(obj: Any, depth: int) -> str:
    if depth > 8:
        return "..."
    t = type(obj)
    if t is dict:
        body = ", ".join(f"{_element(k, depth)}: {_element(v, depth)}" for k, v in list(obj.items())[:100])
        return "{" + body + (", ..." if len(obj) > 100 else "") + "}"
    items = list(obj)[:100] if t in (list, tuple) else list(obj)[:100]
    body = ", ".join(_element(x, depth) for x in items) + (", ..." if len(obj) > 100 else "")
    if t is list:
        return "[" + body + "]"
    if t is tuple:
        return "(" + body + ("," if len(obj) == 1 else "") + ")"
    if not obj:
        return f"{t.__name__}()"
    return ("{" + body + "}") if t is set else f"frozenset({{{body}}})"


def _element(x: Any, depth: int) -> str:
    return _container_repr(x, depth + 1) if type(x) in _CONTAINERS else safe_repr(x)


def int_text(n: int) -> str:
    """``str(n)``, or a placeholder past python's digit limit (a 5000-digit int)."""
    try:
        return clip(str(int(n)), 4300)
    except ValueError:
        return f"<int of {n.bit_length()} bits>"


def text_of(obj: Any) -> str:
    """A recorded text for a value that should have been a string (a query, a text)."""
    if isinstance(obj, str):
        return clip(str.__str__(obj))
    if isinstance(obj, int) and type(obj) in (int, bool):
        return int_text(obj)
    if type(obj) in _CONTAINERS:  # str() of a list or dict is its repr: built here, bounded
        return safe_repr(obj)
    if _repr_is_safe(obj, "__str__") and _repr_is_safe(obj):
        try:
            return clip(str(obj))
        except Exception:
            return safe_repr(obj)
    return _placeholder(obj)  # a user's __str__ python would not call here


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
        return obj if _INT_MIN <= obj <= _INT_MAX else int_text(obj)
    if isinstance(obj, str):
        return clip(obj).encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time, uuid.UUID, enum.Enum)):
        return obj
    if depth >= _MAX_DEPTH:
        return f"<{type(obj).__name__} nested deeper than {_MAX_DEPTH}>"
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
        try:
            items = list(obj.items())
        except Exception:
            return _placeholder(obj)
        for k, v in items[:MAX_ITEMS]:
            key = k if isinstance(k, str) else _key(k)
            out[_sanitize(key, depth + 1, seen)] = _sanitize(v, depth + 1, seen)
        return out
    if isinstance(obj, (list, tuple)):
        return [_sanitize(v, depth + 1, seen) for v in obj[:MAX_ITEMS]]
    try:
        converted = _default(obj)
    except Exception:  # a property that raises, a hostile __getattr__
        return _placeholder(obj)
    if converted is obj:  # nothing better than its repr
        return safe_repr(obj)
    if isinstance(converted, Iterable) and not isinstance(converted, (str, Mapping)):
        return [_sanitize(v, depth + 1, seen) for v in converted]
    return _sanitize(converted, depth + 1, seen)


def _key(k: object) -> str:
    if isinstance(k, int) and type(k) in (int, bool):
        return int_text(k)
    if isinstance(k, float) or k is None:
        return str(k)
    return safe_repr(k)


sanitize = _sanitize  # for the redactor: a plain copy of a mapping it cannot walk


def dumps_line(obj: Any) -> bytes:
    """One JSON line (with its ``\\n``) for ``obj``; never raises."""
    try:
        return orjson.dumps(obj, default=_default, option=OPTIONS)
    except Exception:
        pass
    try:
        return orjson.dumps(_sanitize(obj), default=safe_repr, option=OPTIONS)
    except Exception:  # RecursionError deep inside, or worse: keep every field that can be kept
        pass
    if not isinstance(obj, dict):
        return orjson.dumps(_placeholder(obj), option=OPTIONS)
    out: dict[str, Any] = {}
    for k, v in list(obj.items()):
        try:
            out[str(k)] = orjson.loads(orjson.dumps(_sanitize(v), default=safe_repr))
        except Exception:
            out[str(k)] = f"<unencodable {type(v).__name__}>"
    return orjson.dumps(out, option=OPTIONS)


def bounded(ev: dict[str, Any]) -> dict[str, Any]:
    """An event whose line came out big: every string and list inside it cut to its budget.

    The common, small line never comes here (one length check), so the budgets cost nothing.
    """
    out = {}
    for k, v in ev.items():
        if k in ("documents", "input_documents") and isinstance(v, list):
            v = [{**d, "metadata": _sanitize(d.get("metadata"))} if isinstance(d, dict) else d for d in v]
        elif type(v) is str:
            v = clip(v)
        elif k == "error" or k == "exception":
            if isinstance(v, dict):
                v = {**v, **{f: clip(v[f], MAX_TRACEBACK) for f in ("message", "traceback") if type(v.get(f)) is str}}
        elif not isinstance(v, (int, float)) and v is not None:
            v = _sanitize(v)
        out[k] = v
    return out


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types (a round trip through ``dumps_line``)."""
    return orjson.loads(dumps_line(obj))
