"""The ``rtrace`` command: one small function per command, one error boundary."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from rtrace.core.errors import RtraceError
from rtrace.core.version import __version__

app = typer.Typer(
    name="rtrace",
    help="Trace retrievers locally: run a script traced, then show, filter and compare its runs.",
    no_args_is_help=True,
    add_completion=False,
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
    live: bool = typer.Option(False, "--live", help="Show runs in flight while the script runs (on a terminal)."),
    no_langchain: bool = typer.Option(False, "--no-langchain", help="Do not hook into LangChain."),
    redact: List[str] = typer.Option(  # noqa: UP006
        [], "--redact", metavar="KEY",
        help="Also redact this metadata key (case-insensitive; repeatable). Always redacted: "
        "api_key, authorization, password, token, secret.",
    ),
    max_content: Optional[int] = typer.Option(  # noqa: UP007
        None, "--max-content", metavar="N", min=0, help="Keep at most N characters of each document's content."
    ),
    tag: List[str] = typer.Option([], "--tag", metavar="TAG", help="Add a tag to every root run (repeatable)."),  # noqa: UP006
    meta: List[str] = typer.Option(  # noqa: UP006
        [], "--meta", metavar="KEY=VALUE", help="Add metadata to every root run (repeatable)."
    ),
) -> None:
    """Run a Python script or module traced, exactly as python would run it."""
    from rtrace.cli.tracerun import TraceRun, parse_meta, parse_target

    spec = parse_target(target or [], module, code)
    exit_code = TraceRun(
        spec, output=output, quiet=quiet, live=live, langchain=not no_langchain,
        redact=redact, max_content=max_content, tags=tag, metadata=parse_meta(meta),
    ).execute()
    raise typer.Exit(exit_code)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the event stream (schema v1)."""
    from rtrace.core.events import schema_text

    sys.stdout.write(schema_text())


def main() -> None:
    """Entry point: the only place errors become messages and exit codes."""
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:  # typer.Exit(n) comes back as n without standalone mode
            sys.exit(code)
    except RtraceError as e:
        print(f"rtrace: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("rtrace: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except _click_exception() as e:
        print(f"rtrace: error: {e.format_message()}", file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 2) or 2)


def _click_exception() -> type[Exception]:
    # Typer re-exports click's BadParameter (vendored in new Typer, click in old): its base is ClickException.
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


if __name__ == "__main__":
    main()
