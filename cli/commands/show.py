"""``rtrace show`` and ``rtrace filter``: read logs, select traces, write trees or lines."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import orjson
from rtrace.core.errors import UsageError
from rtrace.core.read.filters import RunFilter, Selected, event_lines
from rtrace.core.read.pipeline import Source, report, selected_items
from rtrace.core.read.reader import ReadStats
from rtrace.core.read.trees import Session, TreeBuilder, trace_to_dict

FORMATS = ("tree", "table", "jsonl", "json")


def run_filter_command(source: Source, run_filter: RunFilter, runs_only: bool, last: int | None) -> None:
    """Matching events, each line byte-identical to the input, on stdout."""
    stats, builder = ReadStats(), TreeBuilder()
    out = sys.stdout.buffer
    seen = False
    written_sessions: set[str] = set()
    try:
        # Lines are echoed raw, so documents are parsed only when a filter reads them.
        for item in selected_items(source, run_filter, runs_only, last, stats, builder,
                                   documents=run_filter.doc is not None, skim_traces=True):
            seen = True
            if isinstance(item, Session):
                if item.session_id not in written_sessions and item.start_event is not None:
                    written_sessions.add(item.session_id)
                    out.write(item.start_event.raw)
                elif item.end is not None and item.end_event is not None:
                    out.write(item.end_event.raw)
                continue
            for raw in event_lines(item):
                out.write(raw)
            if source.follow:
                out.flush()
        out.flush()
    except BrokenPipeError:
        _quiet_broken_pipe()
        return
    report(stats, builder, source, seen)


def run_show_command(source: Source, run_filter: RunFilter, runs_only: bool, last: int | None, fmt: str,
                     opts: Any, pager: bool, width: int | None) -> None:
    from rtrace.cli.console import make_console
    from rtrace.cli.render import table

    if fmt not in FORMATS:
        raise UsageError(f"--format is one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "jsonl":
        run_filter_command(source, run_filter, runs_only, last)
        return
    stats, builder = ReadStats(), TreeBuilder()
    items = selected_items(source, run_filter, runs_only, last, stats, builder)
    seen = False
    try:
        if fmt == "json":
            seen = _write_json(items)
        else:
            use_pager = pager and not source.follow and sys.stdout.isatty()
            with _pager(use_pager) as stream:
                console = make_console(stream, width=width, terminal=True if use_pager else None)
                if fmt == "table":
                    rows = [(item, run) for item in items if isinstance(item, Selected)
                            for run in (item.matched if item.runs_only else item.trace.runs)]
                    seen = bool(rows)
                    if rows:
                        console.print(table.runs_table(rows))
                else:
                    seen = _write_trees(items, console, opts, source.follow)
    except BrokenPipeError:
        _quiet_broken_pipe()
        return
    except KeyboardInterrupt:
        if not source.follow:
            raise
    report(stats, builder, source, seen)


def _write_trees(items: Iterator[Selected | Session], console: Any, opts: Any, follow: bool) -> bool:
    from rtrace.cli.render import tree

    plain = console.no_color or console.color_system is None
    width = console.width
    stream = console.file
    headed: set[str] = set()
    seen = False
    for item in items:
        seen = True
        if isinstance(item, Session):
            if item.session_id not in headed:
                headed.add(item.session_id)
                block = tree.session_header(item)
            elif item.end is not None:
                block = tree.session_footer(item)
            else:
                continue
        else:
            block = tree.trace_lines(item, opts)
        if plain:  # no styles to draw: skip Rich's pipeline (10,000 traces in a few seconds)
            stream.write(block.plain(width))
        else:
            console.print(block)
        if follow:
            stream.flush()
    return seen


def _write_json(items: Iterator[Selected | Session]) -> bool:
    out = sys.stdout.buffer
    out.write(b"[")
    first = True
    for item in items:
        if isinstance(item, Session):
            continue
        out.write(b"\n" if first else b",\n")
        first = False
        out.write(orjson.dumps(trace_to_dict(item.trace), default=str, option=orjson.OPT_NON_STR_KEYS))
    out.write(b"\n]\n")
    out.flush()
    return not first


@contextmanager
def _pager(enabled: bool) -> Iterator[IO[str]]:
    """Output through a pager that quits when it fits one screen, as git does."""
    if not enabled:
        yield sys.stdout
        return
    command = os.environ.get("RTRACE_PAGER") or os.environ.get("PAGER") or "less"
    argv = command.split()
    if not argv or shutil.which(argv[0]) is None:
        yield sys.stdout
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
