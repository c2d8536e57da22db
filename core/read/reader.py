"""Streaming reader: a log (files, stdin) as events with their file and line.

Memory stays flat: one line at a time. A malformed line is a ``MalformedLineError``
naming file and line, or, with ``lenient``, skipped and counted; a final line
without its newline that does not parse (a writer killed mid-line) is a warning.
The raw bytes of each line are kept so filters can echo lines byte-identical.

Bounded on any input: a line is read at most ``CHUNK`` bytes at a time; a line
longer than ``MAX_LINE`` is malformed (and, skipped, is never held whole), as is
a line that does not start like a JSON object once it passes ``CHUNK`` (discarded
as it is read). With ``lenient``, ``GARBAGE_LINES`` malformed lines or
``GARBAGE_BYTES`` of them in a row, with no event between, is a ``LogError``: the
input is not a damaged log but no log (``/dev/urandom``, ``/dev/zero``).
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import IO, TYPE_CHECKING, Any, Literal, Union

import orjson
from rtrace.core.errors import LogError, MalformedLineError
from rtrace.core.events import recorded_count

if TYPE_CHECKING:
    from rtrace.core.read.writers import WriterWatch

STDIN = "-"
# ``documents=COUNTED``: documents are cut off only where the line says how many it holds.
COUNTED = "counted"
Documents = Union[bool, Literal["counted"]]
CHUNK = 1 << 20  # bytes read at a time: a line longer than this takes the bounded path
MAX_LINE = 256 << 20  # the longest line read (a retriever_end with ~250 MB of documents)
GARBAGE_LINES = 10_000  # --lenient gives up after this many malformed lines in a row ...
GARBAGE_BYTES = 64 << 20  # ... or this many bytes of them


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
        if sys.stdin is None:  # started with descriptor 0 closed (`<&-`): python leaves no stream
            raise LogError(f"{path}: standard input is closed")
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
    if raw.lstrip()[:1] == b"{" and raw.count(b"{") + raw.count(b"[") > 1000:
        return "nested deeper than the 1024 levels a log line may have"
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
    documents: Documents = True,
    offset: int = 0,
) -> Iterator[Event]:
    """Every event of ``paths`` in order (``-`` is stdin).

    ``keep(raw)`` may reject a line before it is parsed (a fast pre-filter).
    ``follow`` keeps reading the last file as it grows, like ``tail -f``.
    ``documents=False`` skips parsing document lists (most of a log's bytes);
    such events have no ``documents`` key, and ``raw`` is still the whole line.
    ``documents=COUNTED`` skips them only in lines that record how many there are
    (``document_count``, ``events.recorded_count``): what counting documents needs.
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
            if tail:  # followed: until its writers are gone without ending their sessions (kill -9)
                from rtrace.core.read.writers import WriterWatch

                watch = WriterWatch(path)
                yield from watch.each(_read_one(f, path, lenient, stats, keep, tail, poll, documents, watch))
            else:
                yield from _read_one(f, path, lenient, stats, keep, tail, poll, documents)
        finally:
            if path != STDIN:  # ours to close; stdin is the caller's (and None when it has none)
                f.close()


def _head(raw: bytes, counted: bool = False) -> Any:
    """The line without its documents when it can be cut there, else the whole line; None if it does not parse.

    ``counted``: cut only a line that says how many documents it holds (``events.recorded_count``)
    and whose documents are its last key, so that nothing but the documents is left unread;
    any other line (an older log's, one with a ``[`` in its documents) is parsed once, whole.
    Either way, a line cut short by a kill mid-write with the next line appended to it is parsed
    whole, so the damage is reported (or skipped and counted with ``--lenient``): cut at its
    documents, it would read as its first event, and the appended one would be lost without a word.
    """
    # `,"documents":[` cannot occur inside a JSON string (its quote would be escaped);
    # if it is a nested key instead, the cut is not valid JSON and we parse it all.
    cut = raw.find(b',"documents":[')
    if cut > 0:
        # The documents end the line when it ends `]}` and their `[` is its last: the line's last
        # value is then their list, so no key follows them, and no line is appended (ending `]}`,
        # it would bring a `[`). Inline, not a function: on every line with documents.
        last = raw.endswith(b"]}\n") and raw.rfind(b"[") == cut + 13
        # rtrace writes `"document_count":N,"documents":[...]}` (a nested key of that name there
        # leaves the parsed head without one: recorded_count decides). Without the count, documents
        # with a `[` in them (a nested list, a `[` in text) are cut when nothing can follow them: a
        # key after them (a log rewritten with sorted keys, `jq -S`) would come after a `],"`, which
        # no JSON string holds (its quote is escaped); and no appended line, which starts `{"v":`
        # (among documents only a nested object's key).
        if (last and raw.find(b'"document_count":', cut - 40 if cut > 40 else 0, cut) > 0 if counted
                else last or (raw.endswith(b"]}\n") and raw.find(b'],"', cut) < 0 and raw.find(b'{"v":', cut) < 0)):
            try:
                data = orjson.loads(raw[:cut] + b"}")
                if type(data) is dict and (not counted or recorded_count(data) is not None):
                    return data
            except orjson.JSONDecodeError:
                pass
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


class _Garbage:
    """Malformed input since the last event, for --lenient's limit."""

    __slots__ = ("lines", "bytes", "source")

    def __init__(self, source: str) -> None:
        self.source, self.lines, self.bytes = source, 0, 0

    def add(self, lineno: int, size: int) -> None:
        self.lines += 1
        self.bytes += size
        if self.lines >= GARBAGE_LINES or self.bytes >= GARBAGE_BYTES:
            raise LogError(f"{self.source}:{lineno}: gave up after {self.lines:,} malformed line{'s' if self.lines != 1 else ''} "
                           f"({self.bytes / (1 << 20):.1f} MB) in a row with no event: this is not an rtrace log "
                           "(--lenient skips damaged lines in a log)")


def _long_line(f: IO[bytes], first: bytes, garbage: _Garbage | None, lineno: int) -> tuple[bytes | None, int, str]:
    """The rest of a line longer than ``CHUNK``: (line, bytes read, why it was dropped).

    A line that cannot be an event (it does not start with ``{``) or grows past
    ``MAX_LINE`` is read to its end and dropped, a chunk at a time (never held whole);
    ``line`` is then None. ``line`` has no newline at the end of the input. Without
    ``garbage`` (strict reading) a line that cannot be an event is not read further.
    """
    pieces, size = [first], len(first)
    why = "" if first.lstrip()[:1] == b"{" else _describe(first[:4096])
    if why and garbage is None:
        return None, size, why
    # What may be discarded before giving up: garbage's budget, or past MAX_LINE as much again.
    budget = GARBAGE_BYTES - (garbage.bytes if garbage is not None else 0) + (MAX_LINE if not why else 0)
    while True:
        piece = f.readline(CHUNK)
        size += len(piece)
        if not why:
            pieces.append(piece)
            if size > MAX_LINE:
                why, pieces = f"a line longer than {MAX_LINE >> 20} MiB", []
                if garbage is None:
                    return None, size, why
        elif size > budget and garbage is not None:
            garbage.bytes += size
            garbage.add(lineno, 0)  # over the limit: raises
        if not piece or piece.endswith(b"\n"):
            break
    return (b"".join(pieces) if not why else None), size, why


def _read_one(f: IO[bytes], source: str, lenient: bool, stats: ReadStats,
              keep: Callable[[bytes], bool] | None, follow: bool, poll: float,
              documents: Documents = True, watch: WriterWatch | None = None) -> Iterator[Event]:
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    head, whole, counted = _head, documents is True, documents == COUNTED
    lineno = 0
    pending = b""  # a partial last line, while following
    garbage = _Garbage(source) if lenient else None
    readline = f.readline
    while True:
        for raw in iter(partial(readline, CHUNK), b""):  # C-level: no Python frame a line
            # Rare: anything but a whole line read at once (10 is the newline byte: no slice made a line).
            if pending or raw[-1] != 10:
                if pending:
                    raw, pending = pending + raw, b""
                if not raw.endswith(b"\n") and len(raw) >= CHUNK:
                    # a long line, or no line at all (binary data): bounded from here on
                    line, size, why = _long_line(f, raw, garbage, lineno + 1)
                    if line is None:
                        lineno += 1
                        if garbage is None:
                            raise MalformedLineError(source, lineno, why)
                        stats.skipped += 1
                        garbage.add(lineno, size)
                        continue
                    raw = line
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
            if whole:
                try:
                    data = loads(raw)
                except decode_error:
                    data = None
            else:
                data = head(raw, counted)
            if type(data) is dict:  # orjson makes plain dicts
                if garbage is not None and garbage.lines:
                    garbage.lines = garbage.bytes = 0
                yield Event(data, source, lineno, raw)
                continue
            if raw.isspace():
                stats.blank += 1
                continue
            try:
                parse_line(raw, source, lineno)  # raises, naming what is wrong with the line
            except MalformedLineError:
                if garbage is None:
                    raise
                stats.skipped += 1
                garbage.add(lineno, len(raw))
        if not follow:
            return
        time.sleep(poll)
        try:
            size = os.fstat(f.fileno()).st_size
            if size < f.tell():  # truncated or replaced: start over
                stats.warnings.append(f"{source} was truncated; reading it from the start")
                f.seek(0)
                lineno, pending = 0, b""
        except (OSError, ValueError):
            return
        if watch is not None and size == f.tell() and (why := watch.gone(size)) is not None:
            event = _last_line(pending, source, lineno + 1, lenient, stats) if pending else None
            if event is not None:
                yield event
            stats.warnings.append(why)
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
