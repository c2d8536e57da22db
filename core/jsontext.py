"""JSON text of values read from a log, at any nesting depth.

orjson stops at 255 levels (``Recursion limit reached``), yet a log line may nest
deeper (orjson reads up to 1024) and a run tree is as deep as its runs. ``dumps``
uses orjson and, only when a value is too deep for it, an encoder with an explicit
stack that hands every subtree shallow enough back to orjson. Nothing here recurses.
"""

from __future__ import annotations

from typing import Any

import orjson

OPTIONS = orjson.OPT_NON_STR_KEYS
_SHALLOW = 200  # subtrees at most this high go to orjson in one call (its limit is 255)


def dumps(value: Any, option: int = 0) -> bytes:
    """``value`` as compact JSON (``default=str``, non-string keys as strings), at any depth.

    ``option`` adds orjson options (e.g. ``OPT_SORT_KEYS``); indentation is not supported.
    """
    option |= OPTIONS
    try:
        return orjson.dumps(value, default=str, option=option)
    except orjson.JSONEncodeError:
        return _dumps_deep(value, option)


def value_text(value: Any) -> str:
    """A value read from a log as text that no other value shares: a string as it is, unless it
    would read as another value (``"5"`` beside 5, ``"true"``, ``""``, ``" mmr"``) or as one of
    rtrace's placeholders (``(none)``): then, as anything else, as JSON. What ``k=`` shows, what
    diff says was asked, what stats groups by."""
    if (isinstance(value, str) and value and value == value.strip() and not _reads_as_json(value)
            and not (value[0] == "(" and value[-1] == ")")):
        return value
    return dumps(value).decode()


_JSONISH = frozenset('-0123456789tfn"[{')  # how a JSON number, true, false, null, string or container starts


def _reads_as_json(text: str) -> bool:
    if text[0] not in _JSONISH:
        return False
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def _leaf(value: Any, option: int) -> bytes:
    try:
        return orjson.dumps(value, default=str, option=option)
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits
        return orjson.dumps(str(value))


def _heights(value: Any) -> dict[int, int]:
    """The height of every container in ``value`` (a leaf is 0), by id, without recursing."""
    heights: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, done = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        if done:
            heights[id(node)] = 1 + max((heights.get(id(c), 0) for c in children), default=0)
        elif id(node) not in heights:
            stack.append((node, True))
            stack.extend((c, False) for c in children if isinstance(c, (dict, list, tuple)))
    return heights


def _dumps_deep(value: Any, option: int) -> bytes:
    heights = _heights(value)
    sort = bool(option & orjson.OPT_SORT_KEYS)
    out = bytearray()
    # A frame: (items iterator, is_dict, closing byte, whether anything was written yet)
    stack: list[list[Any]] = []

    def open_node(node: Any) -> None:
        if not isinstance(node, (dict, list, tuple)) or heights.get(id(node), 0) <= _SHALLOW:
            out.extend(_leaf(node, option))
        elif isinstance(node, dict):
            out.extend(b"{")
            items = sorted(node.items(), key=lambda kv: str(kv[0])) if sort else node.items()
            stack.append([iter(items), True, b"}", False])
        else:
            out.extend(b"[")
            stack.append([iter(node), False, b"]", False])

    open_node(value)
    while stack:
        frame = stack[-1]
        try:
            item = next(frame[0])
        except StopIteration:
            out.extend(frame[2])
            stack.pop()
            continue
        if frame[3]:
            out.extend(b",")
        frame[3] = True
        if frame[1]:
            key, item = item
            out.extend(orjson.dumps(key if isinstance(key, str) else str(key)))
            out.extend(b":")
        open_node(item)
    return bytes(out)
