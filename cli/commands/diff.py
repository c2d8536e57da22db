"""``rtrace diff``: the same queries in two logs, compared document by document."""

from __future__ import annotations


import orjson
from rtrace.cli.commands.stats import matched_runs
from rtrace.core.errors import UsageError, tell
from rtrace.core.read.diff import compare, retrievals
from rtrace.core.read.filters import RunFilter
from rtrace.core.read.pipeline import Source, report
from rtrace.core.read.reader import ReadStats
from rtrace.core.read.trees import TreeBuilder


def run_diff(a: str, b: str, k: int, worst: int, fmt: str, fail_under: float | None, lenient: bool,
             docs: str | None = None) -> int:
    """Compare A and B; ``docs``: list the documents of queries matching this regex side by side."""
    from rtrace.core.read.filters import _regex as regex

    if fmt not in ("table", "json"):
        raise UsageError(f"--format is one of table, json, not {fmt!r}")
    show = regex(docs, "--docs") if docs is not None else None
    sides = []
    for path in (a, b):
        stats, builder = ReadStats(), TreeBuilder()
        found, _ = retrievals(matched_runs(Source([path], lenient), RunFilter(), stats, builder), show)
        report(stats, builder, Source([path], lenient), bool(found) or bool(builder.sessions))
        sides.append(found)
    result = compare(sides[0], sides[1], k)
    if fmt == "json":
        from rtrace.cli.console import data_writer

        data_writer()(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        from rtrace.cli.console import make_console
        from rtrace.cli.render.diff import diff_report

        make_console().print(diff_report(result, worst, a, b))
    if fail_under is not None:
        mean = result.mean("overlap")
        if mean is None or mean < fail_under:
            shown = "no matched queries" if mean is None else f"mean overlap@{k} {mean:.3f}"
            tell(f"rtrace: diff: {shown} is below --fail-under {fail_under}")
            return 1
    return 0
