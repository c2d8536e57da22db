"""Consoles are made here, never at import time: tty, colour, width and pager are decided per call.

Colour, in order: ``--color always|never`` (this command's), then ``NO_COLOR`` (any value but
empty: never), then ``FORCE_COLOR`` (any value but empty or ``0``: always), else only on a
terminal (``TERM=dumb`` is no terminal for colour). Every console rtrace prints with comes
from ``make_console``, so one rule decides it everywhere.

Every console made here also neutralises what it draws: a render hook passes the text of
every segment through ``rtrace.core.terminal.neutralise`` before Rich adds its own styles,
so no renderer can let a log's control sequences through by forgetting to clean a value
(Rich's own control segments, e.g. cursor moves, pass). Data (JSON, CSV, Markdown, XML,
HTML) goes out through ``data_writer`` and ``write_text``.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

COLOR_MODES = ("auto", "always", "never")
_mode = "auto"  # set once per command from --color, before anything prints


def set_color_mode(mode: str) -> None:
    """``--color WHEN``: auto, always or never."""
    from rtrace.core.errors import UsageError

    global _mode
    if mode not in COLOR_MODES:
        raise UsageError(f"--color is one of {', '.join(COLOR_MODES)}, not {mode!r}")
    _mode = mode


def use_color(terminal: bool) -> bool:
    """Whether output to a stream (on a terminal or not) is coloured."""
    if _mode != "auto":
        return _mode == "always"
    if os.environ.get("NO_COLOR"):
        return False
    force = os.environ.get("FORCE_COLOR")
    if force and force != "0":
        return True
    return terminal and os.environ.get("TERM") != "dumb"


def is_terminal(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False


class _Neutral:
    """A renderable drawn as ``inner`` is, with every text segment neutralised."""

    __slots__ = ("inner",)

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        from rich.segment import Segment

        from rtrace.core.terminal import harmless, neutralise

        for segment in console.render(self.inner, options):
            text = segment.text
            if segment.control or harmless(text) or text == "\n":
                yield segment
            else:
                yield Segment(neutralise(text, lines=True), segment.style, segment.control)

    def __rich_measure__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement

        return Measurement.get(console, options, self.inner)


def _neutral_hook() -> Any:
    from rich.console import RenderHook

    class NeutralHook(RenderHook):
        def process_renderables(self, renderables: Iterable[Any]) -> list[Any]:
            return [_Neutral(r) for r in renderables]

    return NeutralHook()


def standard_output() -> IO[str]:
    """``sys.stdout``, which every command's data and tables go to; a one-line error when rtrace was
    started with descriptor 1 closed (``>&-``): python then leaves ``sys.stdout`` None."""
    if sys.stdout is None:
        from rtrace.core.errors import OutputError

        raise OutputError("standard output is closed")
    return sys.stdout


def data_writer(stream: IO[bytes] | None = None) -> Any:
    """``write(bytes)`` for JSON/JSONL data: as is into a pipe or file; on a terminal, with every
    dangerous character of the log's strings written as a ``\\u`` escape (the same JSON value)."""
    out = stream if stream is not None else standard_output().buffer
    if not is_terminal(out):
        return out.write
    from rtrace.core.terminal import json_for_terminal

    return lambda data: out.write(json_for_terminal(data))


def write_text(text: str, stream: IO[str] | None = None) -> None:
    """Text data (CSV, Markdown, XML, HTML) on stdout, neutralised: a file of it is shown with ``cat`` too.

    rtrace's own text in these formats never holds a control character but newline and tab.
    """
    from rtrace.core.terminal import neutralise

    (stream if stream is not None else standard_output()).write(neutralise(text, lines=True))


class _Nowhere(io.TextIOBase):
    """Where rtrace's words go when it was started with stderr closed."""

    def write(self, text: str) -> int:
        return len(text)


def make_console(file: IO[str] | None = None, *, stderr: bool = False, width: int | None = None,
                 terminal: bool | None = None) -> Console:
    """A Rich console that follows the colour rule.

    ``terminal=True`` says ``file`` ends on a terminal though it is not one (a pager's pipe).
    """
    # stdout is the command's output: closed, an error. stderr is the one rtrace started with
    # (a traced script may have put its own file in sys.stderr); closed (None): nowhere.
    if file is None and stderr:
        from rtrace.core.errors import own_stderr

        file = own_stderr() or _Nowhere()
    target = file if file is not None else standard_output()
    if terminal is None:
        terminal = is_terminal(target)
    color = use_color(terminal)
    console = _console_class()(
        file=target,
        width=width,
        color_system="auto" if color else None,
        force_terminal=color or None,
        no_color=not color,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=False,
    )
    console.push_render_hook(_neutral_hook())
    return console


_class: type | None = None


def _console_class() -> type:
    """Rich's Console, but a closed pipe is ``BrokenPipeError`` (exit 0 in ``main``), not exit 1."""
    global _class
    if _class is None:
        from rich.console import Console

        class _Console(Console):
            def on_broken_pipe(self) -> None:
                self.quiet = True
                raise BrokenPipeError

        _class = _Console
    return _class


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, "")) or default
    except ValueError:
        return default


class StatusLine:
    """A status line on the terminal's last row that never overwrites the program's output.

    The rows above it become the scrolling region (DECSTBM, as apt's progress bar does), so
    whatever the traced script prints scrolls there, intact; the status is drawn on the last
    row with the cursor saved and restored, in one ``write(2)`` per draw, and cleared (the
    region reset) at the end. Only used when ``fd`` is a terminal that is not ``dumb``.
    """

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd
        self.rows = 0
        self.color = use_color(True)

    @staticmethod
    def available(fd: int = 2) -> bool:
        return os.isatty(fd) and os.environ.get("TERM", "") not in ("", "dumb")

    def _size(self) -> tuple[int, int]:
        try:
            size = os.get_terminal_size(self.fd)
            lines, columns = size.lines, size.columns
        except OSError:
            lines = columns = 0
        # A terminal that does not know its size (0x0): the environment's, else 24x80.
        return (lines or _env_int("LINES", 24)), (columns or _env_int("COLUMNS", 80))

    def _write(self, text: str) -> None:
        try:
            os.write(self.fd, text.encode("utf-8", "replace"))
        except OSError:
            pass  # the terminal went away: the run goes on

    def start(self) -> None:
        self.rows, _ = self._size()
        if self.rows < 3:
            self.rows = 0
            return
        # Make room for the status row, then keep it out of the scrolling region.
        # (Up again before saving the cursor: a restore outside the region is clamped by some terminals.)
        self._write(f"\n\033[1A\0337\033[1;{self.rows - 1}r\0338")

    def draw(self, text: str) -> None:
        if not self.rows:
            return
        rows, columns = self._size()
        prefix = ""
        if rows != self.rows and rows >= 3:  # resized: move the region with it
            prefix = f"\0337\033[1;{rows - 1}r\0338"
            self.rows = rows
        from rich.cells import cell_len, set_cell_size

        from rtrace.core.terminal import neutralise

        # Never the last column, counted in cells (a CJK character takes two): no wrap onto the
        # script's rows, no scroll.
        text, width = neutralise(text), max(0, columns - 1)
        if cell_len(text) > width:
            text = set_cell_size(text, width)
        styled = f"\033[7m{text}\033[0m" if self.color else text
        self._write(f"{prefix}\0337\033[{self.rows};1H\033[2K{styled}\0338")

    def stop(self) -> None:
        if not self.rows:
            return
        self._write(f"\0337\033[r\033[{self.rows};1H\033[2K\0338")
        self.rows = 0
