"""``rtrace show`` and ``rtrace filter``: read logs, select traces, write trees or lines."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from rtrace.core.errors import UsageError, tell
from rtrace.core.read.filters import RunFilter, Selected, event_lines
from rtrace.core.read.pipeline import Source, report, selected_items
from rtrace.core.read.reader import COUNTED, ReadStats
from rtrace.core.read.trees import Session, TreeBuilder, trace_to_dict

FORMATS = ("tree", "table", "timeline", "jsonl", "json")


def log_names(source: Source) -> str:
    return ", ".join("stdin" if p == "-" else p for p in source.paths)


def nothing_matched(source: Source, run_filter: RunFilter) -> int:
    """As grep does: say so on stderr, naming the log, and exit 1."""
    what = "no run matches the filters in" if run_filter.active else "no runs in"
    tell(f"rtrace: {what} {log_names(source)}")
    return 1


def run_filter_command(source: Source, run_filter: RunFilter, runs_only: bool, last: int | None) -> int:
    """Matching events, each line byte-identical to the input, on stdout; 1 when no run matched."""
    from rtrace.cli.console import data_writer, standard_output

    stats, builder = ReadStats(), TreeBuilder()
    out = standard_output().buffer
    write = data_writer(out)  # lines byte for byte; on a terminal, dangerous characters as \u escapes
    seen = False  # a trace was written
    written_sessions: set[str] = set()
    try:
        # Lines are echoed raw, so documents are parsed only when a filter reads them.
        for item in selected_items(source, run_filter, runs_only, last, stats, builder,
                                   documents=run_filter.doc is not None, skim_traces=True):
            if isinstance(item, Session):
                if item.session_id not in written_sessions and item.start_event is not None:
                    written_sessions.add(item.session_id)
                    write(item.start_event.raw)
                elif item.end is not None and item.end_event is not None:
                    write(item.end_event.raw)
                continue
            seen = True
            for raw in event_lines(item):
                write(raw)
            if source.follow:
                out.flush()
        out.flush()
    except BrokenPipeError:
        _quiet_broken_pipe()
        return 0
    except KeyboardInterrupt:
        if not source.follow:
            raise
    report(stats, builder, source, True)
    return 0 if seen else nothing_matched(source, run_filter)


def run_show_command(source: Source, run_filter: RunFilter, runs_only: bool, last: int | None, fmt: str,
                     opts: Any, pager: bool, width: int | None) -> int:
    """Trees, a table, timelines or JSON of the matching traces; 1 when no run matched."""
    from rtrace.cli.console import make_console, standard_output

    if fmt not in FORMATS:
        raise UsageError(f"--format is one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "jsonl":
        return run_filter_command(source, run_filter, runs_only, last)
    stats, builder = ReadStats(), TreeBuilder()
    # Documents are parsed only where they are shown or filtered on: a table or timeline shows their count.
    shows_documents = fmt == "json" or (fmt == "tree" and opts.docs) or run_filter.doc is not None
    # Traces in the order they started; when following, each as soon as it ends.
    items = selected_items(source, run_filter, runs_only, last, stats, builder, documents=True if shows_documents else COUNTED,
                           start_order=not source.follow)
    shown = _Shown()
    try:
        if fmt == "json":
            _write_json(items, source.follow, shown)
        else:
            use_pager = pager and not source.follow and standard_output().isatty()
            with _pager(use_pager) as stream:
                console = make_console(stream, width=width, terminal=True if use_pager else None)
                _write_blocks(items, console, fmt, opts, source.follow, shown)
    except BrokenPipeError:
        _quiet_broken_pipe()
        return 0
    except KeyboardInterrupt:
        if not source.follow:
            raise
    report(stats, builder, source, True)
    return 0 if shown.traces else nothing_matched(source, run_filter)


class _Shown:
    traces = 0  # kept outside the writer: Ctrl-C while following ends it mid-stream


def blocks(items: Iterable[Selected | Session], fmt: str, opts: Any, width: int) -> Iterator[tuple[Any, bool]]:
    """Each session and trace as a block of lines (``Lines``), with whether it is a trace, as soon as it is read."""
    from rtrace.cli.render import table, timeline, tree

    headed: set[str] = set()
    layout = table.plan(width) if fmt == "table" else None
    header = layout is not None
    for item in items:
        if isinstance(item, Session):
            if fmt == "table":
                continue  # a table is rows of runs: sessions are not rows
            if item.session_id not in headed:
                headed.add(item.session_id)
                yield tree.session_header(item), False
            elif item.end is not None:
                yield tree.session_footer(item), False
        elif layout is not None:
            block = table.trace_rows(item, layout, opts.sort)
            if header:
                block.lines[:0] = table.header(layout).lines
                header = False
            yield block, True
        elif fmt == "timeline":
            yield timeline.trace_timeline(item, opts), True
        else:
            yield tree.trace_lines(item, opts), True


def _write_blocks(items: Iterator[Selected | Session], console: Any, fmt: str, opts: Any, follow: bool,
                  shown: _Shown) -> None:
    """Write each block as soon as it is read (so ``--follow`` streams in every format)."""
    from rtrace.core.terminal import neutralise

    plain = console.no_color or console.color_system is None
    width = console.width
    stream = console.file
    for block, is_trace in blocks(items, fmt, opts, width):
        shown.traces += is_trace
        if plain:  # no styles to draw: skip Rich's pipeline (10,000 traces in a few seconds)
            stream.write(neutralise(block.plain(width), lines=True))
        else:
            console.print(block)
        if follow:
            stream.flush()


def _write_json(items: Iterator[Selected | Session], follow: bool, shown: _Shown) -> None:
    """One JSON array of traces, each written as it is read; Ctrl-C ends a ``--follow`` with the array
    closed, so what was written still parses."""
    from rtrace.cli.console import data_writer, standard_output
    from rtrace.core.jsontext import dumps

    out = standard_output().buffer
    write = data_writer(out)  # on a terminal, dangerous characters as \u escapes
    write(b"[")
    try:
        for item in items:
            if isinstance(item, Session):
                continue
            # any depth: a run tree is as deep as its runs
            write((b",\n" if shown.traces else b"\n") + dumps(trace_to_dict(item.trace)))
            shown.traces += 1
            if follow:
                out.flush()
    except KeyboardInterrupt:
        if not follow:
            raise
    write(b"\n]\n")
    out.flush()


@contextmanager
def _pager(enabled: bool) -> Iterator[IO[str]]:
    """Output through a pager that quits when it fits one screen, as git does."""
    from rtrace.cli.console import standard_output

    if not enabled:
        yield standard_output()
        return
    command = os.environ.get("RTRACE_PAGER") or os.environ.get("PAGER") or "less"
    argv = command.split()
    if not argv or shutil.which(argv[0]) is None:
        yield standard_output()
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")  # quit if one screen, keep colours, leave the text on screen
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, env=env, text=True, encoding="utf-8")
    assert proc.stdin is not None
    try:
        yield proc.stdin
    except BrokenPipeError:
        pass  # the user quit the pager early
    finally:
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        proc.wait()


def _quiet_broken_pipe() -> None:
    # The reader went away (| head): stop quietly, like other Unix tools.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
