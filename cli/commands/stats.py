"""``rtrace stats``: latency, errors, retries and documents per retriever (or tag, session, meta key)."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator

import orjson
from rtrace.core.errors import UsageError
from rtrace.core.read.filters import RunFilter, Selected
from rtrace.core.read.pipeline import Source, read_events, report, selected_items
from rtrace.core.read.reader import COUNTED, Event, ReadStats
from rtrace.core.read.stats import StatsCollector
from rtrace.core.read.tally import tally
from rtrace.core.read.trees import Run, TreeBuilder

STATS_FORMATS = ("table", "json", "csv")


def matched_runs(source: Source, run_filter: RunFilter, stats: ReadStats, builder: TreeBuilder) -> Iterator[Run]:
    for item in selected_items(source, run_filter, True, None, stats, builder):
        if isinstance(item, Selected):
            yield from item.matched


def stats_events(source: Source, run_filter: RunFilter, stats: ReadStats) -> Iterator[Event]:
    """The events ``stats`` reads: documents are left unparsed in lines that record how many they hold
    (most of a log's bytes), unless a filter reads their text."""
    return read_events(source, stats, True if run_filter.doc is not None else COUNTED)


def run_stats(source: Source, run_filter: RunFilter, by: str, fmt: str, slowest: int = 5,
              slowest_of: str = "roots") -> int:
    """Aggregate the matching runs; 1 (and a line on stderr naming the log) when no run matched."""
    from rtrace.cli.commands.show import log_names, nothing_matched
    from rtrace.cli.render.stats import BINS

    if fmt not in STATS_FORMATS:
        raise UsageError(f"--format is one of {', '.join(STATS_FORMATS)}, not {fmt!r}")
    collector = StatsCollector(by, slowest, slowest_of)
    stats, builder = ReadStats(), TreeBuilder()
    tally(stats_events(source, run_filter, stats), collector, builder, run_filter)  # the numbers, without run trees
    rows, total = collector.rows(bins=BINS if fmt == "table" else 0), collector.total.as_dict()
    report(stats, builder, source, True)
    if not total["runs"] and not collector.slowest:
        return nothing_matched(source, run_filter)
    logs = log_names(source)
    if fmt == "json":
        slow = [{"duration_ms": s.duration_ms, "name": s.name, "short_id": s.short_id, "query": s.query,
                 "status": s.status} for s in collector.slowest]
        data = {"logs": source.paths, "by": by, "groups": rows, "total": total, "slowest": slow, "slowest_of": slowest_of}
        from rtrace.cli.console import data_writer

        data_writer()(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    elif fmt == "csv":
        from rtrace.cli.console import write_text
        from rtrace.core.terminal import csv_cell

        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(total), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: csv_cell(v) for k, v in row.items()})  # log text: neutralised, formulas defused
        writer.writerow({**total, "group": "(total)"})
        write_text(text.getvalue())
    else:
        from rtrace.cli.console import make_console
        from rtrace.cli.render.stats import slowest_lines, stats_lines

        console = make_console()
        console.print(stats_lines(rows, total, by, logs))
        console.print(slowest_lines(collector.slowest, slowest_of))
    return 0
