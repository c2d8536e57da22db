"""``rtrace stats``: latency, errors, retries and documents per retriever (or tag, session, meta key)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator

import orjson
from rtrace.core.errors import UsageError
from rtrace.core.read.filters import RunFilter, Selected
from rtrace.core.read.pipeline import Source, report, selected_items
from rtrace.core.read.reader import ReadStats
from rtrace.core.read.stats import StatsCollector
from rtrace.core.read.trees import Run, TreeBuilder

STATS_FORMATS = ("table", "json", "csv")


def matched_runs(source: Source, run_filter: RunFilter, stats: ReadStats, builder: TreeBuilder) -> Iterator[Run]:
    for item in selected_items(source, run_filter, True, None, stats, builder):
        if isinstance(item, Selected):
            yield from item.matched


def run_stats(source: Source, run_filter: RunFilter, by: str, fmt: str) -> None:
    if fmt not in STATS_FORMATS:
        raise UsageError(f"--format is one of {', '.join(STATS_FORMATS)}, not {fmt!r}")
    collector = StatsCollector(by)
    stats, builder = ReadStats(), TreeBuilder()
    collector.add_all(matched_runs(source, run_filter, stats, builder))
    rows, total = collector.rows(), collector.total.as_dict()
    if fmt == "json":
        sys.stdout.buffer.write(orjson.dumps({"by": by, "groups": rows, "total": total}, option=orjson.OPT_INDENT_2) + b"\n")
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(total), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
        writer.writerow({**total, "group": "(total)"})
    else:
        from rtrace.cli.console import make_console
        from rtrace.cli.render.stats import stats_table

        make_console().print(stats_table(rows, total, by))
    report(stats, builder, source, bool(rows) or bool(builder.sessions))
