"""``rtrace report``: one self-contained HTML page of a log (or two), for a CI artifact."""

from __future__ import annotations

from collections.abc import Sequence

from rtrace.core.errors import UsageError, tell, warn
from rtrace.core.read.diff import compare
from rtrace.core.read.digest import digest_log
from rtrace.core.read.eval import metrics_for
from rtrace.core.read.filters import RunFilter
from rtrace.core.read.labels import load_labels
from rtrace.core.read.pipeline import Source
from rtrace.core.read.significance import compare_evals
from rtrace.core.times import utc_now_iso
from rtrace.core.version import __version__


def run_report(paths: Sequence[str], run_filter: RunFilter, output: str, qrels: str | None, queries: str | None,
               ks: Sequence[int], id_key: str | None, max_traces: int, diff_k: int, lenient: bool) -> None:
    from rtrace.cli.render.html import ReportPage, render_report

    if not 1 <= len(paths) <= 2:
        raise UsageError("rtrace report takes one log, or two to compare (A B)")
    if queries is not None and qrels is None:
        raise UsageError("--queries goes with --qrels")
    labels = load_labels(qrels, queries) if qrels is not None else None
    for message in labels.warnings if labels else []:
        warn(message)
    metrics = metrics_for(ks or [10])
    digests = [digest_log(Source([p], lenient), run_filter, max_traces, labels, metrics, id_key, retrievals=len(paths) == 2)
               for p in paths]
    page = ReportPage(digests, generated=utc_now_iso(),
                      version=__version__, labels=labels, labels_path=qrels, id_key=id_key)
    if len(digests) == 2:
        page.diff = compare(digests[0].retrievals, digests[1].retrievals, diff_k)
        if digests[0].grades is not None and digests[1].grades is not None:
            page.comparison = compare_evals(digests[0].grades, digests[1].grades)
    text = render_report(page)
    if output == "-":
        from rtrace.cli.console import write_text

        write_text(text)
        return
    from rtrace.cli.output import output_file

    data = text.encode("utf-8")
    with output_file(output) as f:
        f.write(data)
    tell(f"rtrace: report written to {output} ({len(text) / 1024:.0f} KB)")
