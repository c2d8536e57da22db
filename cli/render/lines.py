"""A light line model for tree output: fast enough for 10,000 traces, exact at any width.

Each ``Line`` is a guide prefix plus styled spans; it is cut to the console's
width with an ellipsis (``wrap=True`` lines, such as full document text and
tracebacks, wrap under their guide instead). Spans added with ``give=N`` are
text that gives way first: when a line is too wide they shrink, last first,
down to N cells (0: dropped), so numbers after them stay whole on a narrow
terminal. ``Lines`` is a Rich renderable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions


# Non-ASCII characters rtrace itself draws, all one cell wide.
_OURS = re.compile("[“”…├─│└━↻✓✗✎◆»·\ufffd]")
_WIDE = re.compile("[^\x00-\x7f" + _OURS.pattern[1:-1] + "]")  # anything but ASCII and our symbols


def _narrow(text: str) -> bool:
    """One cell per character: ASCII, give or take our own symbols (a regex search, in C, that stops early)."""
    return text.isascii() or _WIDE.search(text) is None


def cells(text: str) -> int:
    """Terminal cells ``text`` takes, without Rich's grapheme walk when each character is one cell."""
    return len(text) if _narrow(text) else cell_len(text)


def _capped_cells(text: str, cap: int) -> int:
    # Only "more than cap?" matters when cutting; a long string surely is (each
    # printable character takes at least one cell), so skip measuring, or even scanning, all of it.
    if len(text) > 2 * cap + 8:
        return cap + 1
    return len(text) if _narrow(text) else cell_len(text)


@lru_cache(maxsize=256)
def style(spec: str) -> Style:
    return Style.parse(spec) if spec else Style.null()


@dataclass
class Line:
    prefix: str
    spans: list[tuple[str, str]] = field(default_factory=list)
    wrap: bool = False
    prefix_style: str = "dim"
    give: dict[int, int] = field(default_factory=dict)  # span index -> the fewest cells it shrinks to

    def add(self, text: str, spec: str = "", give: int | None = None) -> Line:
        """Append a span; ``give=N``: it shrinks to N cells (0: vanishes) before the line is cut."""
        if text:
            if give is not None:
                self.give[len(self.spans)] = give
            self.spans.append((text, spec))
        return self

    def text(self) -> str:
        return "".join(t for t, _ in self.spans)

    def fit(self, width: int) -> list[list[tuple[str, str]]]:
        """The rows this line takes at ``width`` cells, as span lists (prefix included)."""
        room = max(1, width - cells(self.prefix))
        rows: list[list[tuple[str, str]]] = []
        if not self.wrap:
            spans = self.spans
            widths = [_capped_cells(t, room) for t, _ in spans]
            if sum(widths) > room:  # measured once; most lines fit as they are
                if self.give:
                    spans, widths = _yield(spans, widths, self.give, room)
                if sum(widths) > room:
                    spans = _cut(spans, room)
            rows.append(spans)
        else:
            # Each span is walked by position, never re-sliced or re-measured whole: linear in its length
            # (a 200 MB document under --full), measuring at most a row's worth of text per row.
            current: list[tuple[str, str]] = []
            used = 0
            for text, spec in self.spans:
                pos, end = 0, len(text)
                wide_until = _last_wide(text)  # from here on the rest is one cell a character
                while pos < end:
                    free = room - used
                    narrow = pos > wide_until
                    rest = end - pos
                    if narrow:
                        n = rest
                    else:  # more characters than can fit (each takes a cell, but for rare zero-width ones): it does not
                        n = cell_len(text[pos:]) if rest <= 2 * free + 8 else free + 1
                    if n <= free:
                        current.append((text[pos:] if pos else text, spec))
                        used += n
                        pos = end
                    else:  # break at the last space that fits; a word longer than a row is cut
                        head = text[pos: pos + free] if narrow else _take_wide(text[pos: pos + 2 * free + 8], free)
                        after = pos + len(head)
                        space = head.rfind(" ") if after < end and text[after] != " " else len(head)
                        if space > 0:
                            head = head[:space]
                        elif used and space < 0:
                            head = ""  # the word starts the next row
                        if head:
                            current.append((head, spec))
                        pos += len(head)
                        if current:
                            rows.append(current)
                        current, used = [], 0
                        if rows and pos < end and text[pos] == " ":
                            pos += 1  # the space the row broke at
            rows.append(current)
        out = []
        for i, row in enumerate(rows):
            lead = self.prefix if i == 0 else _continuation(self.prefix)
            if row and row[-1][0].endswith(" "):  # padding that ends a row is not printed
                row = [*row[:-1], (row[-1][0].rstrip(" "), row[-1][1])]
            out.append([(lead, self.prefix_style), *row])
        return out


def _continuation(prefix: str) -> str:
    # Under "├── " a wrapped row continues with "│   "; under "└── " with spaces.
    return prefix.replace("├── ", "│   ").replace("└── ", "    ")


def _last_wide(text: str) -> int:
    """The index of the last character that may not be one cell wide (-1: none)."""
    if _narrow(text):
        return -1
    m = _WIDE.search(text[::-1])  # the last one: search the reversed text once
    return -1 if m is None else len(text) - 1 - m.start()


def _take(text: str, room: int) -> str:
    if room <= 0:
        return ""
    head = text[: 2 * room + 8]  # what can fit, at most: look at no more than that
    return text[:room] if _narrow(head) else _take_wide(head, room)


def _take_wide(text: str, room: int) -> str:
    if room <= 0:
        return ""
    if cell_len(text) <= room:
        return text
    out = set_cell_size(text, room)
    return out.rstrip(" ") if out.strip() else out


def _yield(spans: list[tuple[str, str]], widths: list[int], give: dict[int, int],
           room: int) -> tuple[list[tuple[str, str]], list[int]]:
    """Shrink the spans that give way, last first, until the line fits ``room`` (or none can give more).

    ``widths``: each span's cells, a span far longer than the room counted as room + 1
    (the cut comes out the same, unmeasured). Returns the spans and their widths.
    """
    excess = sum(widths) - room
    out = list(spans)
    widths = list(widths)
    for index in sorted(give, reverse=True):
        least = give[index]
        text, spec = out[index]
        if widths[index] - least <= 0:
            continue
        keep = max(least, widths[index] - excess)
        body = text.rstrip(" ")  # padding goes before any text does
        lead = len(body) - len(body.lstrip(" "))
        if keep <= lead + 1:  # no room for a character and its ellipsis: the span goes
            out[index] = ("", spec)
        elif cells(body) <= keep:
            out[index] = (body + " " * (keep - cells(body)), spec)
        else:  # cut inside the span, keeping its leading separator spaces, and mark the cut
            out[index] = (_take(body, keep - 1) + "…", spec)
        now = _capped_cells(out[index][0], room)
        excess -= widths[index] - now
        widths[index] = now
        if excess <= 0:
            break
    kept = [i for i, span in enumerate(out) if span[0]]
    return [out[i] for i in kept], [widths[i] for i in kept]


def _cut(spans: list[tuple[str, str]], room: int) -> list[tuple[str, str]]:
    total = 0
    for t, _ in spans:
        total += _capped_cells(t, room)
        if total > room:
            break
    else:
        return spans
    out: list[tuple[str, str]] = []
    left = room - 1  # one cell for the ellipsis
    for text, spec in spans:
        if left <= 0:
            break
        n = _capped_cells(text, left)
        if n <= left:
            out.append((text, spec))
            left -= n
        else:
            out.append((_take(text, left), spec))
            left = 0
    out.append(("…", "dim"))
    return out


@dataclass
class Lines:
    """A block of ``Line``\\ s; renders through Rich or as plain text."""

    lines: list[Line] = field(default_factory=list)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        width = options.max_width
        new_line = Segment.line()
        for line in self.lines:
            for row in line.fit(width):
                for text, spec in row:
                    if text:
                        yield Segment(text, style(spec))
                yield new_line

    def plain(self, width: int) -> str:
        """The same text without styles, for writing to files fast."""
        out = []
        for line in self.lines:
            for row in line.fit(width):
                out.append("".join(t for t, _ in row).rstrip())
        return "\n".join(out) + ("\n" if out else "")

    def extend(self, other: Lines) -> None:
        self.lines.extend(other.lines)

    def __len__(self) -> int:
        return len(self.lines)


def fit_cells(text: str, width: int, pad: bool = True) -> str:
    """``text`` in exactly ``width`` terminal cells: cut with an ellipsis, or padded (``pad``)."""
    n = cells(text)
    if n > width:
        if width <= 0:
            return ""
        text = _take(text, width - 1) + "…"
        n = cells(text)
    return text + " " * (width - n) if pad else text


class Flow(Line):
    """Parts in a row, separated by ``sep``, wrapped between parts (never inside one) under ``indent``."""

    def __init__(self, parts: list[tuple[str, str]], sep: str = " · ", indent: str = "  ") -> None:
        super().__init__("")
        self.parts, self.sep, self.indent = parts, sep, indent

    def fit(self, width: int) -> list[list[tuple[str, str]]]:
        rows: list[list[tuple[str, str]]] = [[]]
        used = 0
        for text, spec in self.parts:
            n = cells(text)
            if rows[-1] and used + cells(self.sep) + n > width:
                rows.append([(self.indent, "")])
                used = cells(self.indent)
            elif rows[-1]:
                rows[-1].append((self.sep, "dim"))
                used += cells(self.sep)
            rows[-1].append((text, spec))
            used += n
        return [_cut(row, width) for row in rows]


def blank() -> Line:
    return Line("")
