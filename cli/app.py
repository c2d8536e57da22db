"""The ``rtrace`` command: one small function per command, one error boundary."""

import os
import sys
from typing import Any, List, Optional

import typer
from rtrace.core.errors import RtraceError, message_line, tell, use_stderr
from rtrace.core.version import __version__

app = typer.Typer(
    name="rtrace",
    help="Trace retrievers locally: run a script traced, then show, filter and compare its runs.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (Typer's, for bash, zsh, fish)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rtrace {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(  # noqa: UP007 - typer needs Optional on 3.10
        None, "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """rtrace: local, offline tracing for retrievers."""


def _set_color(value: Optional[str]) -> Optional[str]:  # noqa: UP007
    if value is not None:  # Typer calls this without the option too: import nothing then
        from rtrace.cli.console import set_color_mode

        set_color_mode(value)
    return value


def _set_utc(value: bool) -> bool:
    if value:
        from rtrace.core.times import use_utc

        use_utc(True)
    return value


_COLOR = typer.Option(None, "--color", metavar="WHEN", callback=_set_color,
                      help="Colour: auto (on a terminal, unless NO_COLOR), always, never. FORCE_COLOR=1 forces it.")
_UTC = typer.Option(False, "--utc", callback=_set_utc, help="Show and parse times in UTC, not local time.")

_CONTENT = typer.Option(
    None, "--content", metavar="MODE",
    help="full, hash or none: query and document text as is, as a hash, or not at all "
    "(ids, scores and lengths stay). Default: $RTRACE_CONTENT, else full.",
)


def content_option(value: str | None) -> str | None:
    from rtrace.core.errors import UsageError

    if value is not None and value not in ("full", "hash", "none"):
        raise UsageError(f"--content is full, hash or none, not {value!r}")
    return value


@app.command(
    context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True},
    no_args_is_help=True,
)
def run(
    target: Optional[List[str]] = typer.Argument(  # noqa: UP006, UP007
        None, metavar="SCRIPT [ARGS]...", help="The script to run, then its own arguments."
    ),
    module: Optional[str] = typer.Option(None, "-m", metavar="MODULE", help="Run a module, like python -m."),  # noqa: UP007
    code: Optional[str] = typer.Option(None, "-c", metavar="CODE", help="Run a code string, like python -c."),  # noqa: UP007
    output: Optional[str] = typer.Option(  # noqa: UP007
        None, "-o", "--output", metavar="PATH",
        help="Write the log here (appending); '-' streams JSONL to stdout and moves the script's stdout to stderr. "
        "Default: a new file under .rtrace/.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary after the run."),
    color: Optional[str] = _COLOR,  # noqa: UP007
    live: bool = typer.Option(False, "--live", help="Show runs in flight while the script runs (on a terminal)."),
    no_langchain: bool = typer.Option(False, "--no-langchain", help="Do not hook into LangChain."),
    no_llamaindex: bool = typer.Option(False, "--no-llamaindex", help="Do not hook into LlamaIndex."),
    no_haystack: bool = typer.Option(False, "--no-haystack", help="Do not hook into Haystack."),
    no_frameworks: bool = typer.Option(
        False, "--no-frameworks", help="Do not hook into any framework (LangChain, LlamaIndex, Haystack)."
    ),
    no_children: bool = typer.Option(False, "--no-children", help="Do not trace child Python processes."),
    verbose: bool = typer.Option(
        False, "--verbose", help="Show rtrace's warnings from child processes (e.g. a child it cannot trace)."
    ),
    export_endpoint: Optional[str] = typer.Option(  # noqa: UP007
        None, "--export-endpoint", metavar="URL",
        help="Also stream spans to this OTLP/HTTP endpoint while the script runs (needs the otel extra).",
    ),
    redact: List[str] = typer.Option(  # noqa: UP006
        [], "--redact", metavar="KEY",
        help="Also redact values of keys ending with this word (case and separators ignored; repeatable). "
        "Always redacted: keys ending in api_key, token, secret, password, private_key, access_key, cookie, "
        "authorization...; URL credentials and well-known tokens (sk-, ghp_, AKIA, xox, JWT, Bearer) in every text.",
    ),
    redact_content: bool = typer.Option(
        False, "--redact-content", help="Also scrub credentials and tokens from documents' content."
    ),
    max_content: Optional[int] = typer.Option(  # noqa: UP007
        None, "--max-content", metavar="N", min=0, help="Keep at most N characters of each document's content."
    ),
    tag: List[str] = typer.Option([], "--tag", metavar="TAG", help="Add a tag to every root run (repeatable)."),  # noqa: UP006
    meta: List[str] = typer.Option(  # noqa: UP006
        [], "--meta", metavar="KEY=VALUE", help="Add metadata to every root run (repeatable)."
    ),
    content: Optional[str] = _CONTENT,  # noqa: UP007
) -> None:
    """Run a Python script or module traced, exactly as python would run it."""
    from rtrace.cli.commands.run import TraceRun, parse_meta, parse_target

    spec = parse_target(target or [], module, code)
    exit_code = TraceRun(
        spec, output=output, quiet=quiet, live=live, langchain=not (no_langchain or no_frameworks),
        llamaindex=not (no_llamaindex or no_frameworks), haystack=not (no_haystack or no_frameworks),
        redact=redact, redact_content=redact_content, max_content=max_content, tags=tag, metadata=parse_meta(meta), children=not no_children, verbose=verbose,
        export_endpoint=export_endpoint, content=content_option(content),
    ).execute()
    raise typer.Exit(exit_code)


# Filter options shared by `show` and `filter` (defined once, used by both).
_NAME = typer.Option([], "--name", metavar="NAME", help="Run name (glob, e.g. 'Dense*'; repeatable: any).")
_TAG = typer.Option([], "--tag", metavar="TAG", help="Runs with this tag (repeatable: all).")
_META = typer.Option([], "--meta", metavar="KEY=VALUE", help="Runs whose metadata KEY equals VALUE (repeatable).")
_STATUS = typer.Option(None, "--status", metavar="STATUS", help="ok, error or incomplete.")
_RETRIED = typer.Option(False, "--retried", help="Runs that were retried.")
_MIN_MS = typer.Option(None, "--min-ms", metavar="MS", help="Runs that took at least MS milliseconds.")
_MAX_MS = typer.Option(None, "--max-ms", metavar="MS", help="Runs that took at most MS milliseconds.")
_QUERY = typer.Option(None, "--query", metavar="REGEX", help="Runs whose query matches (case-insensitive).")
_DOC = typer.Option(None, "--doc", metavar="REGEX", help="Runs that returned a document whose text matches.")
_RUN = typer.Option(None, "--run", metavar="ID", help="The run with this short id (as show prints it), or whose id starts with this.")
_TRACE = typer.Option(None, "--trace", metavar="ID", help="The trace with this short id (as show prints it), or whose id starts with this.")
_SINCE = typer.Option(None, "--since", metavar="TIME", help="Runs from TIME on: ISO time, 10m, 2h, 3d, today.")
_UNTIL = typer.Option(None, "--until", metavar="TIME", help="Runs up to TIME.")
_LAST = typer.Option(None, "--last", "-n", metavar="N", min=1, help="Only the last N matching traces.")
_SESSION = typer.Option(None, "--session", metavar="ID-PREFIX", help="Runs of this session.")
_RUNS = typer.Option(False, "--runs", help="Keep only the matching runs, not their whole traces.")
_LENIENT = typer.Option(False, "--lenient", help="Skip malformed lines (counted) instead of stopping.")
_FOLLOW = typer.Option(False, "--follow", "-f", help="Keep reading the log as it grows; Ctrl-C stops.")
_PATHS = typer.Argument(None, metavar="[LOG]...",
                        help="Logs to read ('-' for stdin; @ the last run, @1 the one before, ...: rtrace ls). Default: @.")



def _run_filter(name: List[str], tag: List[str], meta: List[str], status: Optional[str], retried: bool,  # noqa: UP006, UP007
                min_ms: Optional[float], max_ms: Optional[float], query: Optional[str], doc: Optional[str],  # noqa: UP007
                run_prefix: Optional[str], trace_prefix: Optional[str], since: Optional[str],  # noqa: UP007
                until: Optional[str], session: Optional[str]) -> Any:  # noqa: UP007
    from rtrace.core.read.filters import RunFilter, parse_meta_filters
    from rtrace.core.times import parse_time

    return RunFilter(
        names=list(name), tags=list(tag), meta=parse_meta_filters(meta), status=status, retried=retried,
        min_ms=min_ms, max_ms=max_ms, query=query, doc=doc, run_prefix=run_prefix, trace_prefix=trace_prefix,
        since=parse_time(since) if since else None, until=parse_time(until) if until else None,
        session_prefix=session,
    )


@app.command()
def show(
    paths: Optional[List[str]] = _PATHS,  # noqa: UP006, UP007
    name: List[str] = _NAME, tag: List[str] = _TAG, meta: List[str] = _META,  # noqa: UP006
    status: Optional[str] = _STATUS, retried: bool = _RETRIED,  # noqa: UP007
    min_ms: Optional[float] = _MIN_MS, max_ms: Optional[float] = _MAX_MS,  # noqa: UP007
    query: Optional[str] = _QUERY, doc: Optional[str] = _DOC,  # noqa: UP007
    run_prefix: Optional[str] = _RUN, trace_prefix: Optional[str] = _TRACE,  # noqa: UP007
    since: Optional[str] = _SINCE, until: Optional[str] = _UNTIL,  # noqa: UP007
    last: Optional[int] = _LAST, session: Optional[str] = _SESSION,  # noqa: UP007
    runs: bool = _RUNS, lenient: bool = _LENIENT, follow: bool = _FOLLOW,
    fmt: str = typer.Option("tree", "--format", metavar="FORMAT", help="tree, table, timeline, jsonl or json."),
    sort: str = typer.Option("start", "--sort", metavar="ORDER",
                             help="Runs under a parent by start (as recorded), duration (slowest first) or name."),
    all_tags: bool = typer.Option(False, "--all-tags", help="Also LangChain's automatic tags (seq:step:N, map:key:K)."),
    docs: bool = typer.Option(True, "--docs/--no-docs", help="Show retrieved documents."),
    max_docs: int = typer.Option(5, "--max-docs", metavar="N", min=0, help="Documents shown per run."),
    full: bool = typer.Option(False, "--full", help="Whole document contents, not one-line previews."),
    expand: bool = typer.Option(False, "--expand", "-x", help="All metadata, of runs and documents."),
    traceback: bool = typer.Option(False, "--traceback", help="Full tracebacks of errors."),
    no_pager: bool = typer.Option(False, "--no-pager", help="Never page (never paged when not a terminal)."),
    width: Optional[int] = typer.Option(None, "--width", metavar="COLS", min=20, help="Render at this width."),  # noqa: UP007
    color: Optional[str] = _COLOR, utc: bool = _UTC,  # noqa: UP007
) -> None:
    """Show runs as trees: queries, documents, retries, errors."""
    from rtrace.cli.commands.show import run_show_command
    from rtrace.cli.render.tree import ShowOptions
    from rtrace.core.errors import UsageError
    from rtrace.core.read.pipeline import source_for
    from rtrace.core.read.trees import SORTS

    run_filter = _run_filter(name, tag, meta, status, retried, min_ms, max_ms, query, doc, run_prefix,
                             trace_prefix, since, until, session)
    if sort not in SORTS:
        raise UsageError(f"--sort is one of {', '.join(SORTS)}, not {sort!r}")
    opts = ShowOptions(docs=docs, max_docs=max_docs, full=full, expand=expand, traceback=traceback, sort=sort,
                       auto_tags=all_tags)
    raise typer.Exit(run_show_command(source_for(paths, lenient, follow, _announce), run_filter, runs, last, fmt,
                                      opts, pager=not no_pager, width=width))


@app.command(name="filter")
def filter_(
    paths: Optional[List[str]] = _PATHS,  # noqa: UP006, UP007
    name: List[str] = _NAME, tag: List[str] = _TAG, meta: List[str] = _META,  # noqa: UP006
    status: Optional[str] = _STATUS, retried: bool = _RETRIED,  # noqa: UP007
    min_ms: Optional[float] = _MIN_MS, max_ms: Optional[float] = _MAX_MS,  # noqa: UP007
    query: Optional[str] = _QUERY, doc: Optional[str] = _DOC,  # noqa: UP007
    run_prefix: Optional[str] = _RUN, trace_prefix: Optional[str] = _TRACE,  # noqa: UP007
    since: Optional[str] = _SINCE, until: Optional[str] = _UNTIL,  # noqa: UP007
    last: Optional[int] = _LAST, session: Optional[str] = _SESSION,  # noqa: UP007
    runs: bool = _RUNS, lenient: bool = _LENIENT, follow: bool = _FOLLOW, utc: bool = _UTC,
) -> None:
    """Write the matching events as JSONL, each line exactly as in the log (for jq, DuckDB, ...)."""
    from rtrace.cli.commands.show import run_filter_command
    from rtrace.core.read.pipeline import source_for

    run_filter = _run_filter(name, tag, meta, status, retried, min_ms, max_ms, query, doc, run_prefix,
                             trace_prefix, since, until, session)
    raise typer.Exit(run_filter_command(source_for(paths, lenient, follow, _announce), run_filter, runs, last))


@app.command()
def stats(
    paths: Optional[List[str]] = _PATHS,  # noqa: UP006, UP007
    by: str = typer.Option("name", "--by", metavar="KEY", help="Group by name, tag, session, meta.KEY, or a request field: k, search_type, vector_store, ..."),
    fmt: str = typer.Option("table", "--format", metavar="FORMAT", help="table, json or csv."),
    name: List[str] = _NAME, tag: List[str] = _TAG, meta: List[str] = _META,  # noqa: UP006
    status: Optional[str] = _STATUS, retried: bool = _RETRIED,  # noqa: UP007
    min_ms: Optional[float] = _MIN_MS, max_ms: Optional[float] = _MAX_MS,  # noqa: UP007
    query: Optional[str] = _QUERY, doc: Optional[str] = _DOC,  # noqa: UP007
    run_prefix: Optional[str] = _RUN, trace_prefix: Optional[str] = _TRACE,  # noqa: UP007
    since: Optional[str] = _SINCE, until: Optional[str] = _UNTIL,  # noqa: UP007
    session: Optional[str] = _SESSION, lenient: bool = _LENIENT,  # noqa: UP007
    slowest: int = typer.Option(5, "--slowest", metavar="N", min=0, help="List the N slowest runs (0: none)."),
    slowest_of: str = typer.Option("roots", "--slowest-of", metavar="WHICH",
                                   help="roots (whole traces) or leaves (retrievers with no child runs)."),
    color: Optional[str] = _COLOR, utc: bool = _UTC,  # noqa: UP007
) -> None:
    """Per retriever: runs, errors, retries, latency percentiles and histogram, self time, documents; the slowest runs."""
    from rtrace.cli.commands.stats import run_stats
    from rtrace.core.read.pipeline import Source, resolve_paths

    run_filter = _run_filter(name, tag, meta, status, retried, min_ms, max_ms, query, doc, run_prefix,
                             trace_prefix, since, until, session)
    raise typer.Exit(run_stats(Source(resolve_paths(paths or []), lenient), run_filter, by, fmt, slowest, slowest_of))


@app.command()
def diff(
    a: str = typer.Argument("@1", metavar="[A]", help="The baseline log (default @1: the run before the last)."),
    b: str = typer.Argument("@", metavar="[B]", help="The log to compare with it (default @: the last run)."),
    k: int = typer.Option(5, "-k", "--k", metavar="K", min=1, help="Compare the top K documents."),
    worst: int = typer.Option(10, "--worst", metavar="N", min=0, help="Show the N least similar queries."),
    fmt: str = typer.Option("table", "--format", metavar="FORMAT", help="table or json."),
    fail_under: Optional[float] = typer.Option(  # noqa: UP007
        None, "--fail-under", metavar="SCORE", help="Exit 1 when the mean overlap@K is below SCORE (for CI)."
    ),
    lenient: bool = _LENIENT, color: Optional[str] = _COLOR,  # noqa: UP007
    docs: Optional[str] = typer.Option(  # noqa: UP007
        None, "--docs", metavar="REGEX", help="List the documents of queries matching REGEX side by side, A | B."
    ),
) -> None:
    """Compare two runs' retrievals query by query (every retriever, matched by path and query): overlap@k, Jaccard, RBO, status, latency."""
    from rtrace.cli.commands.diff import run_diff
    from rtrace.core.read.pipeline import resolve_paths

    path_a, path_b = resolve_paths([a, b])
    raise typer.Exit(run_diff(path_a, path_b, k, worst, fmt, fail_under, lenient, docs))


@app.command(name="eval")
def eval_(
    paths: Optional[List[str]] = typer.Argument(  # noqa: UP006, UP007
        None, metavar="[LOG [B]]", help="A log to grade, or two (A B) to compare. Default: the last `rtrace run`."
    ),
    qrels: str = typer.Option(..., "--qrels", metavar="FILE",
                              help="Relevance labels: TREC qrels (qid 0 docid rel), BEIR qrels TSV, or JSONL "
                              '{"query", "doc_id", "relevance"}.'),
    queries: Optional[str] = typer.Option(  # noqa: UP007
        None, "--queries", metavar="FILE", help="Query texts for qrels: TSV qid<TAB>text or JSONL {id, text}."
    ),
    k: List[int] = typer.Option([], "-k", "--k", metavar="K", min=1, help="Cutoff for @k metrics (repeatable; default 10)."),  # noqa: UP006
    id_key: Optional[str] = typer.Option(  # noqa: UP007
        None, "--id-key", metavar="KEY", help="Identify documents by this metadata key (e.g. source), not their id."
    ),
    fmt: str = typer.Option("table", "--format", metavar="FORMAT", help="table, json, csv, junit or markdown."),
    fail_under: List[str] = typer.Option(  # noqa: UP006
        [], "--fail-under", metavar="METRIC=VALUE",
        help="Exit 1 when a retriever's mean METRIC is below VALUE, e.g. ndcg@10=0.6 (of B with two logs; repeatable).",
    ),
    fail_if_worse: List[str] = typer.Option(  # noqa: UP006
        [], "--fail-if-worse", metavar="METRIC", help="With two logs: exit 1 when B is significantly worse on METRIC."
    ),
    alpha: float = typer.Option(0.05, "--alpha", metavar="P", help="Significance level of the paired test."),
    samples: int = typer.Option(10_000, "--samples", metavar="N", min=100, help="Random sign flips of the paired test."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Seed of the paired test."),
    complete: bool = typer.Option(
        False, "--complete", help="Average over every labelled query, 0 where a retriever has no run (trec_eval -c)."
    ),
    worst: int = typer.Option(10, "--worst", metavar="N", min=0, help="Show the N worst queries per retriever."),
    name: List[str] = _NAME, tag: List[str] = _TAG, meta: List[str] = _META,  # noqa: UP006
    since: Optional[str] = _SINCE, until: Optional[str] = _UNTIL,  # noqa: UP007
    session: Optional[str] = _SESSION, lenient: bool = _LENIENT,  # noqa: UP007
    color: Optional[str] = _COLOR, utc: bool = _UTC,  # noqa: UP007
) -> None:
    """Grade retrievals against relevance labels: nDCG, recall, precision, MRR, MAP, hit rate (trec_eval's)."""
    from rtrace.cli.commands.eval import run_eval
    from rtrace.core.read.pipeline import resolve_paths

    run_filter = _run_filter(name, tag, meta, None, False, None, None, None, None, None, None, since, until, session)
    raise typer.Exit(run_eval(resolve_paths(paths or []), run_filter, qrels, queries, k, id_key, fmt, fail_under,
                              fail_if_worse, alpha, samples, seed, complete, worst, lenient))


@app.command()
def report(
    paths: Optional[List[str]] = typer.Argument(  # noqa: UP006, UP007
        None, metavar="[LOG [B]]", help="A log, or two (A B) to compare. Default: the last `rtrace run`."
    ),
    output: str = typer.Option("rtrace-report.html", "-o", "--output", metavar="FILE", help="The HTML file ('-': stdout)."),
    qrels: Optional[str] = typer.Option(  # noqa: UP007
        None, "--qrels", metavar="FILE", help="Relevance labels (as rtrace eval): grades and relevance marks."
    ),
    queries: Optional[str] = typer.Option(None, "--queries", metavar="FILE", help="Query texts for qrels."),  # noqa: UP007
    k: List[int] = typer.Option([], "-k", "--k", metavar="K", min=1, help="Cutoff for @k metrics (repeatable; default 10)."),  # noqa: UP006
    id_key: Optional[str] = typer.Option(  # noqa: UP007
        None, "--id-key", metavar="KEY", help="Identify documents by this metadata key, not their id."
    ),
    max_traces: int = typer.Option(200, "--max-traces", metavar="N", min=0, help="Traces shown per log (failed, then slowest)."),
    diff_k: int = typer.Option(5, "--diff-k", metavar="K", min=1, help="With two logs: compare the top K documents."),
    name: List[str] = _NAME, tag: List[str] = _TAG, meta: List[str] = _META,  # noqa: UP006
    status: Optional[str] = _STATUS, retried: bool = _RETRIED,  # noqa: UP007
    since: Optional[str] = _SINCE, until: Optional[str] = _UNTIL,  # noqa: UP007
    session: Optional[str] = _SESSION, lenient: bool = _LENIENT, utc: bool = _UTC,  # noqa: UP007
) -> None:
    """Write one self-contained HTML report: sessions, stats, traces, grades, diff (no network needed)."""
    from rtrace.cli.commands.report import run_report
    from rtrace.core.read.pipeline import resolve_paths

    run_filter = _run_filter(name, tag, meta, status, retried, None, None, None, None, None, None, since, until, session)
    run_report(resolve_paths(paths or []), run_filter, output, qrels, queries, k, id_key, max_traces, diff_k, lenient)


@app.command()
def replay(
    path: str = typer.Argument("@", metavar="[LOG]", help="The log to replay ('-' for stdin; default @: the last run)."),
    handler: List[str] = typer.Option(  # noqa: UP006
        [], "--handler", metavar="MODULE:ATTR", help="Send events to this handler (class or instance; repeatable)."
    ),
    speed: float = typer.Option(1.0, "--speed", metavar="X", help="Replay X times faster than recorded."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Do not wait between events."),
    lenient: bool = _LENIENT,
) -> None:
    """Re-emit a recorded log through callback handlers, in recorded order and timing."""
    from rtrace.cli.commands.replay import run_replay
    from rtrace.core.read.pipeline import Source, resolve_paths

    run_replay(Source(resolve_paths([path]), lenient), handler, None if no_wait else speed)


@app.command()
def export(
    paths: Optional[List[str]] = _PATHS,  # noqa: UP006, UP007
    fmt: str = typer.Option("otlp-json", "--format", metavar="FORMAT", help="otlp-json (the Collector's file format)."),
    output: Optional[str] = typer.Option(None, "-o", "--output", metavar="FILE", help="Write here ('-': stdout)."),  # noqa: UP007
    endpoint: Optional[str] = typer.Option(  # noqa: UP007
        None, "--endpoint", metavar="URL", help="Send with OTLP/HTTP, e.g. http://127.0.0.1:4318/v1/traces."
    ),
    service: Optional[str] = typer.Option(None, "--service", metavar="NAME", help="service.name (default: the script)."),  # noqa: UP007
    name: List[str] = _NAME, tag: List[str] = _TAG, meta: List[str] = _META,  # noqa: UP006
    status: Optional[str] = _STATUS, retried: bool = _RETRIED,  # noqa: UP007
    since: Optional[str] = _SINCE, until: Optional[str] = _UNTIL,  # noqa: UP007
    last: Optional[int] = _LAST, session: Optional[str] = _SESSION, lenient: bool = _LENIENT,  # noqa: UP007
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep exporting as the log grows (with --endpoint)."),
    utc: bool = _UTC,
    until_session: Optional[str] = typer.Option(None, "--until-session", hidden=True),  # noqa: UP007
    offset: int = typer.Option(0, "--offset", hidden=True, min=0),
    content: Optional[str] = _CONTENT,  # noqa: UP007
) -> None:
    """Export runs as OpenTelemetry spans: an OTLP/JSON file, or an OTLP/HTTP endpoint."""
    from rtrace.cli.commands.export import run_export
    from rtrace.core.read.pipeline import Source, resolve_paths

    run_filter = _run_filter(name, tag, meta, status, retried, None, None, None, None, None, None, since, until, session)
    run_export(Source(resolve_paths(paths or []), lenient, follow), run_filter, last, fmt, output, endpoint, service,
               until_session=until_session, offset=offset, content=content_option(content) or "full")


@app.command(name="ls")
def ls(
    limit: Optional[int] = typer.Option(None, "-n", "--last", metavar="N", min=1, help="Only the N newest runs."),  # noqa: UP007
    prune: Optional[int] = typer.Option(  # noqa: UP007
        None, "--prune", metavar="KEEP", min=0,
        help="Delete the logs in .rtrace/ older than the KEEP newest runs (-o logs are only unlisted).",
    ),
    fmt: str = typer.Option("table", "--format", metavar="FORMAT", help="table or json."),
    color: Optional[str] = _COLOR, utc: bool = _UTC,  # noqa: UP007
) -> None:
    """List recorded runs, newest first: @ is the last, @1 the one before (use them as LOG anywhere)."""
    from rtrace.cli.commands.ls import run_ls

    run_ls(limit, prune, fmt)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the event stream (schema v1)."""
    from rtrace.cli.console import standard_output
    from rtrace.core.events import schema_text

    standard_output().write(schema_text())


def _announce(message: str) -> None:
    tell(f"rtrace: {message}")


def main() -> None:
    """Entry point: the only place errors become messages and exit codes."""
    from rtrace.core.process.excepthook import remember_python_state

    remember_python_state()  # before Typer replaces sys.excepthook: `rtrace run` gives the script python's
    use_stderr(sys.stderr)  # rtrace's words go here, even after a traced script rebinds sys.stderr

    code: Any = 0
    try:
        code = app(standalone_mode=False, prog_name="rtrace")  # also under python -m rtrace
    except RtraceError as e:
        tell(f"rtrace: error: {message_line(e)}")
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        tell("rtrace: interrupted")
        sys.exit(130)
    except typer.Exit as e:
        code = e.exit_code
    except _click_exception() as e:
        tell(f"rtrace: error: {message_line(e.format_message())}")
        sys.exit(getattr(e, "exit_code", 2) or 2)
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as git log | head does
        _stdout_gone()
        code = 0
    except SystemExit as e:
        # Inside the app, only Typer (on EPIPE) and Rich (its help console's on_broken_pipe) exit
        # by themselves, with 1, after quieting stdout: a closed pipe is not an error.
        if e.code == 1 and _stdout_was_closed():
            _stdout_gone()
            code = 0
        else:
            raise
    except Exception as e:  # a bug in rtrace: still one line, unless asked for the traceback
        if os.environ.get("RTRACE_DEBUG"):
            raise
        tell(f"rtrace: internal error: {type(e).__name__}: {message_line(e)} (RTRACE_DEBUG=1 shows the traceback; "
             "please report it)")
        sys.exit(3)
    if isinstance(code, int) and code:  # typer.Exit(n) comes back as n without standalone mode
        sys.exit(code)


def _stdout_was_closed() -> bool:
    if type(sys.stdout).__name__ == "PacifyFlushWrapper":  # Typer's EPIPE handling
        return True
    try:  # Rich's: stdout replaced by /dev/null
        here, null = os.fstat(sys.stdout.fileno()), os.stat(os.devnull)
        return (here.st_dev, here.st_ino) == (null.st_dev, null.st_ino)
    except (OSError, ValueError, AttributeError):
        return False


def _stdout_gone() -> None:
    # Nothing more can reach the reader; make the interpreter's last flush of stdout a no-op.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _click_exception() -> type[Exception]:
    # Typer re-exports click's BadParameter (vendored in new Typer, click in old): its base is ClickException.
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


if __name__ == "__main__":
    main()
