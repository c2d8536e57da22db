"""Run ids and clocks, made cheaply: they sit on every traced call."""

from __future__ import annotations

import os
import random
import time
from typing import Any
from uuid import UUID, SafeUUID

import orjson

# A private generator seeded from the OS: the program's global ``random`` stream is never
# consumed, and its ``random.seed()`` never makes ids repeat. Reseeded in every forked child
# (the copy would otherwise give parent and child the same ids).
_rng = random.Random(os.urandom(32))
_getrandbits = _rng.getrandbits


def _reseed() -> None:
    _rng.seed(os.urandom(32))


if hasattr(os, "register_at_fork"):  # touches only rtrace's own generator: nothing to undo
    os.register_at_fork(after_in_child=_reseed)
_new = object.__new__
_time_ns = time.time_ns
_UNKNOWN = SafeUUID.unknown  # looked up once, not per id
_dumps = orjson.dumps
_set = object.__setattr__
# UUID's slots, set through their descriptors (~80 ns less than object.__setattr__ by name);
# a UUID class without those slots (another Python) falls back to the name.
_slots = UUID.__dict__
_set_int = _slots["int"].__set__ if type(_slots.get("int")).__name__ == "member_descriptor" else None
_set_safe = _slots["is_safe"].__set__ if type(_slots.get("is_safe")).__name__ == "member_descriptor" else None
# 80 random bits under the 48-bit millisecond time; version (4 bits at 76) and variant (2 bits
# at 62) then overwrite theirs: 74 random bits, as RFC 9562 lays out, in four int operations.
_KEEP = ((1 << 128) - 1) ^ ((0xF << 76) | (0x3 << 62))
_VERSION_VARIANT = (0x7 << 76) | (0b10 << 62)


def uuid7() -> UUID:
    """A time-ordered UUID version 7 (RFC 9562), as LangChain uses for run ids."""
    # UUID(int=n) validates and is ~3x slower; the int is valid by construction.
    u = _new(UUID)
    n = ((((_time_ns() // 1_000_000) << 80) | _getrandbits(80)) & _KEEP) | _VERSION_VARIANT
    if _set_int is not None and _set_safe is not None:
        _set_int(u, n)
        _set_safe(u, _UNKNOWN)
    else:
        _set(u, "int", n)
        _set(u, "is_safe", _UNKNOWN)
    return u


def uuid_str(u: Any) -> str:
    """``str(u)``: a ``UUID`` formatted by orjson (~3x faster than ``UUID.__str__``)."""
    if type(u) is UUID:
        return _dumps(u)[1:-1].decode()
    return str(u)
