"""The ``rtrace`` command: one small function per command, one error boundary."""

from __future__ import annotations

import sys
from typing import Optional

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


@app.command()
def schema() -> None:
    """Print the JSON Schema of the event stream (schema v1)."""
    from rtrace.core.events import schema_text

    sys.stdout.write(schema_text())


def main() -> None:
    """Entry point: the only place errors become messages and exit codes."""
    try:
        app(standalone_mode=False)
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
