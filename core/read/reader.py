"""Streaming reader: a log (files, stdin) as events with their file and line.

Memory stays flat: one line at a time. A malformed line is a ``MalformedLineError``
naming file and line, or, with ``lenient``, skipped and counted; a final line
without its newline that does not parse (a writer killed mid-line) is a warning.
The raw bytes of each line are kept so filters can echo lines byte-identical.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from rtrace.core.errors import LogError, MalformedLineError

STDIN = "-"


@dataclass(slots=True)
class Event:
    """One line of a log: its parsed object, where it came from, and its bytes."""

    data: dict[str, Any]
    source: str
    line: int
    raw: bytes


@dataclass
class ReadStats:
    """What the reader skipped or noticed, for warnings."""

    skipped: int = 0
    truncated: int = 0
    blank: int = 0
    warnings: list[str] = field(default_factory=list)


def _open(path: str) -> IO[bytes]:
    if path == STDIN:
        return sys.stdin.buffer
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise LogError(f"{path}: no such file") from None
    except OSError as e:
        raise LogError(f"{path}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise LogError(f"{path}: is a directory (give a .jsonl log)")
    try:
        return open(path, "rb", buffering=1 << 20)
    except OSError as e:
        raise LogError(f"{path}: {e.strerror or e}") from None


def _describe(raw: bytes) -> str:
    if b"\x00" in raw:
        return "not a JSON line (binary data)"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not valid UTF-8"
    return "not a JSON object"


def parse_line(raw: bytes, source: str, lineno: int) -> dict[str, Any]:
    """One line as a dict, or ``MalformedLineError``."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedLineError(source, lineno, _describe(raw)) from None
    if not isinstance(data, dict):
        raise MalformedLineError(source, lineno, f"not a JSON object (a {type(data).__name__})")
    return data


def read_lines(
    paths: Iterable[str],
    *,
    lenient: bool = False,
    stats: ReadStats | None = None,
    follow: bool = False,
    keep: Callable[[bytes], bool] | None = None,
    poll: float = 0.2,
    documents: bool = True,
    offset: int = 0,
) -> Iterator[Event]:
    """Every event of ``paths`` in order (``-`` is stdin).

    ``keep(raw)`` may reject a line before it is parsed (a fast pre-filter).
    ``follow`` keeps reading the last file as it grows, like ``tail -f``.
    ``documents=False`` skips parsing document lists (most of a log's bytes);
    such events have no ``documents`` key, and ``raw`` is still the whole line.
    ``offset``: start reading the first file at this byte (line numbers count from there).
    """
    stats = stats if stats is not None else ReadStats()
    paths = list(paths)
    for index, path in enumerate(paths):
        f = _open(path)
        if index == 0 and offset and path != STDIN:
            f.seek(offset)
        try:
            tail = follow and index == len(paths) - 1 and path != STDIN
            yield from _read_one(f, path, lenient, stats, keep, tail, poll, documents)
        finally:
            if f is not sys.stdin.buffer:
                f.close()


def _parse_without_documents(raw: bytes, source: str, lineno: int) -> dict[str, Any]:
    # `,"documents":[` cannot occur inside a JSON string (its quote would be escaped);
    # if it is a nested key instead, the cut is not valid JSON and we parse it all.
    cut = raw.find(b',"documents":[')
    if cut > 0:
        try:
            data = orjson.loads(raw[:cut] + b"}")
            if isinstance(data, dict):
                return data
        except orjson.JSONDecodeError:
            pass
    return parse_line(raw, source, lineno)


def _read_one(f: IO[bytes], source: str, lenient: bool, stats: ReadStats,
              keep: Callable[[bytes], bool] | None, follow: bool, poll: float,
              documents: bool = True) -> Iterator[Event]:
    parse = parse_line if documents else _parse_without_documents
    lineno = 0
    pending = b""  # a partial last line, while following
    while True:
        for raw in f:
            if pending:
                raw, pending = pending + raw, b""
            if not raw.endswith(b"\n"):
                if follow:
                    pending = raw  # the writer has not finished this line yet
                    continue
                lineno += 1
                event = _last_line(raw, source, lineno, lenient, stats)
                if event is not None and (keep is None or keep(raw)):
                    yield event
                continue
            lineno += 1
            if keep is not None and not keep(raw):
                continue
            if raw.isspace():
                stats.blank += 1
                continue
            try:
                data = parse(raw, source, lineno)
            except MalformedLineError:
                if not lenient:
                    raise
                stats.skipped += 1
                continue
            yield Event(data, source, lineno, raw)
        if not follow:
            return
        time.sleep(poll)
        try:
            if os.fstat(f.fileno()).st_size < f.tell():  # truncated or replaced: start over
                stats.warnings.append(f"{source} was truncated; reading it from the start")
                f.seek(0)
                lineno, pending = 0, b""
        except (OSError, ValueError):
            return


def _cut_json(raw: bytes) -> bool:
    """Could ``raw`` be the start of a JSON line that a killed writer left unfinished?"""
    if not raw.lstrip().startswith(b"{") or b"\x00" in raw:
        return False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(raw) - 3 and e.reason == "unexpected end of data"  # a character cut in two
    return True


def _last_line(raw: bytes, source: str, lineno: int, lenient: bool, stats: ReadStats) -> Event | None:
    if raw.isspace() or not raw:
        return None
    try:
        return Event(parse_line(raw, source, lineno), source, lineno, raw + b"\n")
    except MalformedLineError:
        if not _cut_json(raw):  # not a writer killed mid-line: binary or foreign data is an error
            if not lenient:
                raise
            stats.skipped += 1
            return None
        stats.truncated += 1
        stats.warnings.append(f"{source}:{lineno}: the last line is cut short (was the writer killed?); skipped it")
        return None
