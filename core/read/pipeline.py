"""The reading pipeline every command shares: logs -> events -> traces -> selected items.

Commands (show, filter, stats, diff, export, eval) call ``selected_items`` and, when
they are done, ``report`` the lines that were skipped or oddities in the trees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from rtrace.core.errors import UsageError
from rtrace.core.read.filters import RunFilter, Selected, select
from rtrace.core.read.reader import STDIN, Documents, Event, ReadStats, read_lines
from rtrace.core.read.skim import skim
from rtrace.core.read.trees import Session, Trace, TreeBuilder, in_start_order
from rtrace.core.store import resolve_log


@dataclass
class Source:
    paths: list[str]
    lenient: bool = False
    follow: bool = False
    next_run: bool = False  # follow: wait for the next `rtrace run` to start, then follow it
    announce: Callable[[str], None] | None = None  # says what a follow waits for (stderr)


def resolve_paths(paths: Sequence[str]) -> list[str]:
    """LOG arguments as paths: none is the latest run, ``@N`` the run N before it (``rtrace ls``)."""
    if list(paths).count(STDIN) > 1:  # the second would read nothing: `diff - -` compared a log with nothing
        raise UsageError("- (standard input) can be read once: give it as one LOG at most")
    return [resolve_log(p) for p in paths] if paths else [resolve_log("@")]


def source_for(paths: Sequence[str] | None, lenient: bool = False, follow: bool = False,
               announce: Callable[[str], None] | None = None) -> Source:
    """What a reading command reads; following with no LOG waits for the next run."""
    if follow and not paths:
        return Source([], lenient, follow=True, next_run=True, announce=announce)
    return Source(resolve_paths(paths or []), lenient, follow)


def read_events(source: Source, stats: ReadStats, documents: Documents = True) -> Iterator[Event]:
    """The events of ``source`` in log order (following it, or waiting for the next run, if asked)."""
    if source.next_run:
        from rtrace.core.read.follow import follow_next_runs

        return follow_next_runs(source, stats, documents=documents)
    return read_lines(source.paths, lenient=source.lenient, stats=stats, follow=source.follow, documents=documents)


def selected_items(source: Source, run_filter: RunFilter, runs_only: bool, last: int | None,
           stats: ReadStats, builder: TreeBuilder, documents: Documents = True,
           skim_traces: bool = False, start_order: bool = False) -> Iterator[Selected | Session]:
    """``skim_traces``: drop traces that cannot match before building them (``skim``); the
    selection is unchanged, but the builder never sees those traces (no run flags or
    counts from them), so only commands that echo lines (``filter``) ask for it.
    ``start_order``: traces in the order they started (what people read), not the order they finished."""
    events = read_events(source, stats, documents)
    # Short ids are assigned over every run read, so a filter naming one must see them all.
    hint = run_filter.line_hint() if skim_traces and not run_filter.by_short_id else None
    if hint is not None:
        events = skim(events, hint, run_filter.event_hint())
    traces: Iterable[Trace | Session] = builder.build(events)
    if start_order:
        traces = in_start_order(traces, builder)
    return select(traces, run_filter, runs_only=runs_only, last=last)


def report(stats: ReadStats, builder: TreeBuilder, source: Source, seen_any: bool) -> None:
    """Warnings about what was skipped, one line each, on stderr."""
    from rtrace.core.errors import warn

    for message in stats.warnings:
        warn(message)
    if stats.skipped:
        warn(f"skipped {stats.skipped} malformed line{'s' if stats.skipped != 1 else ''} (--lenient)")
    for what, count in sorted(builder.warnings.items()):
        warn(f"{count} {what}" if count != 1 else f"1 of {what}")
    if not seen_any and not builder.sessions and source.paths:
        warn(f"no events in {', '.join(source.paths)}")
