"""Time in logs: the ``ts`` stamps rtrace writes, and every parse of them or of a user's time.

``ts`` is ISO-8601 UTC with microseconds and ``Z``; stamps compare as strings.
"""

from __future__ import annotations

import datetime as dt
import re
import time

from rtrace.core.errors import UsageError

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

_cache: tuple[str, str] = ("-", "")  # (seconds as digits, their prefix): one object, so threads read a matching pair
_time_ns = time.time_ns


def utc_now_iso() -> str:
    """Now as ISO-8601 UTC with microseconds and ``Z``; the date part is cached per second.

    On every recorded event: the clock's nanoseconds as digits, cut as text (the last nine are
    the fraction of the second), which costs less than dividing the 64-bit integer twice."""
    global _cache
    digits = str(_time_ns())
    seconds, prefix = _cache
    if digits[:-9] != seconds:
        if len(digits) < 10:  # the first second of 1970 (a clock not set): no digits before the fraction
            digits = digits.zfill(10)
        seconds = digits[:-9]
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(int(seconds)))
        _cache = (seconds, prefix)
    return f"{prefix}{digits[-9:-3]}Z"


def file_stamp() -> str:
    """Local time for a log's file name: ``20261124T101500`` sorts as it reads."""
    return time.strftime("%Y%m%dT%H%M%S")


def iso_from_seconds(seconds: float) -> str:
    """Seconds since the epoch as a log ``ts`` string."""
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# The zone times are shown and parsed in: local unless the user says --utc. One setting per
# command invocation, made by the CLI before it reads or prints any time.
_show_utc = False


def use_utc(utc: bool) -> None:
    """Show and parse times in UTC (``True``) or in local time (``False``, the default)."""
    global _show_utc
    _show_utc = bool(utc)


def _zone() -> dt.tzinfo | None:
    return dt.timezone.utc if _show_utc else None  # None: astimezone() picks the local zone


def zone_label(ts: object = None) -> str:
    """The zone times are shown in, said once in a header: ``UTC`` or e.g. ``UTC+01:00 (CET)``."""
    if _show_utc:
        return "UTC"
    when = parse_ts(ts) or dt.datetime.now(dt.timezone.utc)
    local = when.astimezone()
    offset = local.strftime("%z")
    name = local.tzname() or ""
    label = "UTC" if offset in ("+0000", "-0000") else f"UTC{offset[:3]}:{offset[3:]}"
    return f"{label} ({name})" if name and name not in ("UTC", label) and not name.startswith(("+", "-")) else label


def format_clock(ts: object) -> str:
    """A recorded ``ts`` as a clock time in the display zone, ``10:15:00.123``; ``""`` when it is not a stamp."""
    when = parse_ts(ts)
    if when is None:
        return ""
    return when.astimezone(_zone()).strftime("%H:%M:%S.%f")[:12]


def format_ts(ts: object, *, seconds: bool = True) -> str:
    """A recorded ``ts`` in the display zone, ``2026-12-06 01:15:00``; ``?`` when it is not a stamp."""
    when = parse_ts(ts)
    if when is None:
        return "?"
    return when.astimezone(_zone()).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def parse_ts(value: object) -> dt.datetime | None:
    """A recorded ``ts`` as an aware datetime; ``None`` when it is not a valid stamp."""
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)


def ts_seconds(value: object) -> float | None:
    """A recorded ``ts`` as seconds since the epoch."""
    when = parse_ts(value)
    return None if when is None else when.timestamp()


def ts_nanos(value: object) -> int | None:
    """A recorded ``ts`` as integer nanoseconds since the epoch (exact to the microsecond)."""
    when = parse_ts(value)
    if when is None:
        return None
    try:
        return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000
    except (OverflowError, ValueError, OSError):
        return None


def parse_time(text: str, now: dt.datetime | None = None) -> str:
    """An ISO time, ``10m``/``2h``/``3d`` ago, ``today`` or ``yesterday``, as a log ``ts`` string (UTC)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    t = text.strip().lower()
    when: dt.datetime
    m = _RELATIVE.match(t)
    if m:
        when = now - dt.timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    elif t in ("today", "yesterday"):
        midnight = now.astimezone(_zone()).replace(hour=0, minute=0, second=0, microsecond=0)
        when = midnight - dt.timedelta(days=1 if t == "yesterday" else 0)
    elif t == "now":
        when = now
    else:
        try:
            when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"not a time: {text!r} (use an ISO time like 2026-11-24T10:00, or 10m, 2h, 3d, today)") from None
        if when.tzinfo is None:  # a time without zone is in the display zone, as times are shown
            when = when.replace(tzinfo=dt.timezone.utc) if _show_utc else when.astimezone()
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
