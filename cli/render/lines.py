"""A light line model for tree output: fast enough for 10,000 traces, exact at any width.

Each ``Line`` is a guide prefix plus styled spans; it is cut to the console's
width with an ellipsis (``wrap=True`` lines, such as full document text and
tracebacks, wrap under their guide instead). ``Lines`` is a Rich renderable.
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


def _narrow(text: str) -> bool:
    """One cell per character: ASCII, give or take our own symbols (a regex, in C)."""
    return text.isascii() or _OURS.sub("", text).isascii()


def cells(text: str) -> int:
    """Terminal cells ``text`` takes, without Rich's grapheme walk when each character is one cell."""
    return len(text) if _narrow(text) else cell_len(text)


def _capped_cells(text: str, cap: int) -> int:
    # Only "more than cap?" matters when cutting; a long string surely is (each
    # printable character takes at least one cell), so skip measuring all of it.
    if _narrow(text):
        return len(text)
    if len(text) > 2 * cap + 8:
        return cap + 1
    return cell_len(text)


@lru_cache(maxsize=256)
def style(spec: str) -> Style:
    return Style.parse(spec) if spec else Style.null()


@dataclass
class Line:
    prefix: str
    spans: list[tuple[str, str]] = field(default_factory=list)
    wrap: bool = False
    prefix_style: str = "dim"

    def add(self, text: str, spec: str = "") -> Line:
        if text:
            self.spans.append((text, spec))
        return self

    def text(self) -> str:
        return "".join(t for t, _ in self.spans)

    def fit(self, width: int) -> list[list[tuple[str, str]]]:
        """The rows this line takes at ``width`` cells, as span lists (prefix included)."""
        room = max(1, width - cells(self.prefix))
        rows: list[list[tuple[str, str]]] = []
        if not self.wrap:
            rows.append(_cut(self.spans, room))
        else:
            current: list[tuple[str, str]] = []
            used = 0
            for text, spec in self.spans:
                while text:
                    free = room - used
                    n = cells(text)
                    if n <= free:
                        current.append((text, spec))
                        used += n
                        text = ""
                    else:
                        head = _take(text, free)
                        if head:
                            current.append((head, spec))
                        text = text[len(head):]
                        rows.append(current)
                        current, used = [], 0
            rows.append(current)
        out = []
        for i, row in enumerate(rows):
            lead = self.prefix if i == 0 else _continuation(self.prefix)
            out.append([(lead, self.prefix_style), *row])
        return out


def _continuation(prefix: str) -> str:
    # Under "├── " a wrapped row continues with "│   "; under "└── " with spaces.
    return prefix.replace("├── ", "│   ").replace("└── ", "    ")


def _take(text: str, room: int) -> str:
    if room <= 0:
        return ""
    if _narrow(text):
        return text[:room]
    text = text[: 2 * room + 8]  # what can fit, at most: measure no more than that
    if cell_len(text) <= room:
        return text
    out = set_cell_size(text, room)
    return out.rstrip(" ") if out.strip() else out


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
        n = cells(text)
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


def blank() -> Line:
    return Line("")
