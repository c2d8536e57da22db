"""``rtrace stats``, ``rtrace diff`` and ``rtrace replay``: read logs, compute, print."""

from __future__ import annotations

import csv
import importlib
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from rtrace.cli.show import Source, report, selected_items
from rtrace.core.read.diff import compare, retrievals
from rtrace.core.errors import UsageError
from rtrace.core.read.filters import RunFilter, Selected
from rtrace.core.read.reader import ReadStats, read_lines
from rtrace.core.read.stats import StatsCollector
from rtrace.core.read.trees import Run, TreeBuilder

STATS_FORMATS = ("table", "json", "csv")


def _runs(source: Source, run_filter: RunFilter, stats: ReadStats, builder: TreeBuilder) -> Iterator[Run]:
    for item in selected_items(source, run_filter, True, None, stats, builder):
        if isinstance(item, Selected):
            yield from item.matched


def run_stats(source: Source, run_filter: RunFilter, by: str, fmt: str) -> None:
    if fmt not in STATS_FORMATS:
        raise UsageError(f"--format is one of {', '.join(STATS_FORMATS)}, not {fmt!r}")
    collector = StatsCollector(by)
    stats, builder = ReadStats(), TreeBuilder()
    collector.add_all(_runs(source, run_filter, stats, builder))
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
        from rtrace.cli.render import stats_table

        make_console().print(stats_table(rows, total, by))
    report(stats, builder, source, bool(rows) or bool(builder.sessions))


def run_diff(a: str, b: str, k: int, worst: int, fmt: str, fail_under: float | None, lenient: bool) -> int:
    if fmt not in ("table", "json"):
        raise UsageError(f"--format is one of table, json, not {fmt!r}")
    sides = []
    for path in (a, b):
        stats, builder = ReadStats(), TreeBuilder()
        found, _ = retrievals(_runs(Source([path], lenient), RunFilter(), stats, builder))
        report(stats, builder, Source([path], lenient), bool(found) or bool(builder.sessions))
        sides.append(found)
    result = compare(sides[0], sides[1], k)
    if fmt == "json":
        sys.stdout.buffer.write(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        from rtrace.cli.console import make_console
        from rtrace.cli.render import diff_report

        make_console().print(diff_report(result, worst, a, b))
    if fail_under is not None:
        mean = result.mean("overlap")
        if mean is None or mean < fail_under:
            shown = "no matched queries" if mean is None else f"mean overlap@{k} {mean:.3f}"
            print(f"rtrace: diff: {shown} is below --fail-under {fail_under}", file=sys.stderr)
            return 1
    return 0


def load_handler(spec: str) -> Any:
    """``module:attr`` -> a handler instance (a class is instantiated with no arguments)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"--handler takes module:attr, not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise UsageError(f"--handler {spec}: cannot import {module_name}: {e}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"--handler {spec}: {module_name} has no {attr}") from None
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as e:
            raise UsageError(f"--handler {spec}: cannot create {attr}(): {e}") from None
    if not any(callable(getattr(obj, hook, None)) for hook in ("on_retriever_start", "on_retriever_end")):
        raise UsageError(f"--handler {spec}: {type(obj).__name__} is not a callback handler")
    return obj


def run_replay(source: Source, handler_specs: Sequence[str], speed: float | None) -> None:
    from rtrace.core.read.replay import Replayer

    if speed is not None and speed <= 0:
        raise UsageError(f"--speed must be above 0, not {speed}")
    handlers = [load_handler(spec) for spec in handler_specs]
    if not handlers:
        from rtrace.cli.console import make_console
        from rtrace.cli.console_handler import ConsoleHandler

        handlers = [ConsoleHandler(make_console())]
    stats = ReadStats()
    replayer = Replayer(handlers, speed=speed)
    try:
        replayer.replay(read_lines(source.paths, lenient=source.lenient, stats=stats))
    except KeyboardInterrupt:
        pass
    finally:
        for handler in handlers:
            close = getattr(handler, "close", None)
            if callable(close) and hasattr(handler, "session_id"):  # a JsonlHandler: write its session_end
                close(exit_code=0)
    report(stats, TreeBuilder(), source, replayer.stats.events > 0)
