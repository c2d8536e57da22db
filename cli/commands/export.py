"""``rtrace export``: read logs, select traces, write OTLP/JSON or send OTLP/HTTP."""

from __future__ import annotations

from collections.abc import Iterator

from rtrace.core import events
from rtrace.core.errors import UsageError, tell
from rtrace.core.read.filters import RunFilter, Selected, select
from rtrace.core.read.pipeline import Source, report
from rtrace.core.read.reader import Event, ReadStats, read_lines
from rtrace.core.read.trees import Session, Trace, TreeBuilder


def run_export(source: Source, run_filter: RunFilter, last: int | None, fmt: str, output: str | None,
               endpoint: str | None, service: str | None, until_session: str | None = None, offset: int = 0,
               content: str = "full") -> None:
    from rtrace.core.integrations import otel

    if fmt != "otlp-json":
        raise UsageError(f"--format is otlp-json, not {fmt!r}")
    if (output is None) == (endpoint is None):
        raise UsageError("give -o FILE (OTLP/JSON) or --endpoint URL (OTLP/HTTP)")
    stats, builder = ReadStats(), TreeBuilder()
    lines = read_lines(source.paths, lenient=source.lenient, stats=stats, follow=source.follow, offset=offset)

    def until_done() -> Iterator[Event]:
        # Following a live log for `rtrace run`: stop once that session has ended.
        for ev in lines:
            yield ev
            if ev.data.get("event") == events.SESSION_END and ev.data.get("session_id") == until_session:
                return

    def items() -> Iterator[Trace | Session]:
        for item in select(builder.build(until_done() if until_session else lines), run_filter, last=last):
            yield item.trace if isinstance(item, Selected) else item

    if endpoint is not None:
        if source.follow:
            sent = otel.export_http_streaming(items(), endpoint, service_name=service, content=content)
        else:
            sent = otel.export_http(items(), endpoint, service_name=service, content=content)
        tell(f"rtrace: sent {sent} spans to {endpoint}")
    else:
        from contextlib import nullcontext

        from rtrace.cli.console import data_writer, standard_output
        from rtrace.cli.output import output_file

        with nullcontext(standard_output().buffer) if output == "-" else output_file(output, whole=False) as out:
            class _Out:  # JSON as is into a file or pipe; on a terminal, dangerous characters as \u escapes
                write = staticmethod(data_writer(out))

            count = otel.write_otlp_json(items(), _Out(), service_name=service, content=content)
        if output != "-":
            tell(f"rtrace: wrote {count} spans to {output}")
    report(stats, builder, source, True)
