"""``rtrace run``: set up the writer and hooks, run the target, close the log, report."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from rtrace.core import events
from rtrace.core.errors import UsageError, warn
from rtrace.core.process import runner, signals
from rtrace.core.read.summary import RunSummary
from rtrace.core.record.context import install_env_handler, remove_default_handler
from rtrace.core.record.ids import uuid7
from rtrace.core.record.jsonl import JsonlHandler
from rtrace.core.record.redact import DEFAULT_REDACT
from rtrace.core.store import open_output


def parse_target(args: Sequence[str], module: str | None, code: str | None) -> runner.Target:
    if module is not None and code is not None:
        raise UsageError("give -m MODULE or -c CODE, not both")
    if module is not None:
        return runner.Target("module", module, list(args))
    if code is not None:
        return runner.Target("code", code, list(args))
    if not args:
        raise UsageError("nothing to run: give a script, -m MODULE or -c CODE")
    return runner.Target("script", args[0], list(args[1:]))


def parse_meta(items: Sequence[str]) -> dict[str, str]:
    from rtrace.core.read.filters import parse_meta_filters

    return dict(parse_meta_filters(items))


def _exit_code(e: SystemExit) -> int:
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF if code >= 0 else code % 256
    print(code, file=sys.stderr)  # what python does with sys.exit("message")
    return 1


class TraceRun:
    """One traced run of a target: writer, LangChain hook, signals, summary."""

    def __init__(self, target: runner.Target, *, output: str | None, quiet: bool, live: bool,
                 langchain: bool, redact: Sequence[str], max_content: int | None,
                 tags: Sequence[str], metadata: dict[str, Any], children: bool = True,
                 export_endpoint: str | None = None, llamaindex: bool = True, haystack: bool = True) -> None:
        self.target = target
        self.output_option = output
        self.quiet = quiet
        self.live = live
        self.frameworks = {"langchain": langchain, "llamaindex": llamaindex, "haystack": haystack}
        self.redact = tuple(DEFAULT_REDACT) + tuple(redact)
        self.max_content = max_content
        self.tags = list(tags)
        self.metadata = metadata
        self.children = children
        self.export_endpoint = export_endpoint
        self.summary = RunSummary()

    def execute(self) -> int:
        runner.check(self.target)
        exporter = None
        session_id = str(uuid7())
        out = open_output(self.output_option, session_id)
        if self.export_endpoint is not None:  # before the script runs: a wrong URL fails fast
            from rtrace.core.integrations.otel import LiveExporter, check_endpoint

            check_endpoint(self.export_endpoint)
            if out.path is None:  # JSONL on stdout: nothing to follow, so export from this process
                exporter = LiveExporter(self.export_endpoint)
            else:  # another process follows the log: the script pays nothing for it
                exporter = _ExportProcess(out.path, os.fstat(out.fd).st_size, session_id, self.export_endpoint)
        handler = JsonlHandler(
            out.fd, name=out.display, redact=self.redact, max_content=self.max_content,
            session_id=session_id, root_tags=self.tags, root_metadata=self.metadata,
            observers=[self.summary] + ([exporter] if callable(exporter) else []),  # a LiveExporter; _ExportProcess follows the file
        )
        if out.to_stdout:
            sys.stdout.flush()
            os.dup2(2, 1)  # the script's stdout goes to stderr; fd `out.fd` keeps the real stdout
        handler.open_session(argv=self.target.argv, rtrace_argv=list(sys.argv))
        exit_code, error = 0, None
        with ExitStack() as stack:
            install_env_handler(handler)  # also marks RTRACE_OUTPUT as handled in this process
            stack.callback(remove_default_handler, handler)
            children_log = None
            if self.children:
                children_log = stack.enter_context(
                    _follow_children(out, self.redact, self.max_content, self.frameworks))
            install_frameworks(handler, self.frameworks, stack)
            stack.enter_context(signals.sigterm_as_exit())
            if self.live:
                stack.enter_context(_live_view(self.summary))
            try:
                runner.run(self.target)
            except SystemExit as e:
                exit_code = _exit_code(e)
            except KeyboardInterrupt as e:
                exit_code, error = 130, e
                _print_traceback(e)
            except BaseException as e:
                exit_code, error = 1, e
                _print_traceback(e)
            handler.close(exit_code=exit_code, error=error)
            if children_log is not None:
                _absorb_children(children_log, handler.session_id, self.summary, out)
        if exporter is not None:  # the script is done: now wait for the backend, so nothing is lost
            exporter.close()
            if exporter.dropped:
                warn(f"{exporter.dropped} events were not exported")
        if not self.quiet:
            self._report(out.display, out.show_command)
        return exit_code

    def _report(self, display: str, show_command: str) -> None:
        from rtrace.cli.console import make_console
        from rtrace.cli.render.summary import summary

        try:
            make_console(stderr=True).print(summary(self.summary, display, show_command))
        except Exception:  # a closed stderr must not change the exit code
            pass


class _ExportProcess:
    """`rtrace export --follow` in a process of its own, started now and waited for at the end."""

    def __init__(self, path: str, offset: int, session_id: str, endpoint: str) -> None:
        import subprocess

        self.dropped = 0
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rtrace.cli", "export", path, "--follow", "--endpoint", endpoint,
             "--until-session", session_id, "--offset", str(offset)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH" or "rtrace-site-" not in v},
        )

    def close(self, timeout: float = 120.0) -> None:
        import subprocess

        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            warn(f"the exporter did not finish within {timeout:.0f} s; some spans were not sent")
            return
        if self.proc.returncode != 0:
            last = (err or "").strip().splitlines()[-1:] or ["the exporter failed"]
            warn(f"export: {last[0].removeprefix('rtrace: error: ')}")


def install_frameworks(handler: JsonlHandler, enabled: dict[str, bool], stack: ExitStack) -> None:
    """Hook the frameworks turned on (each installs when the script imports it), undone by ``stack``."""
    from rtrace.core.integrations.frameworks import NAMES, hook

    for name in NAMES:
        if enabled.get(name, True):
            module = hook(name)
            module.install(handler)
            stack.callback(module.uninstall, handler)


@dataclass
class _ChildrenLog:
    path: str
    offset: int
    temporary: bool


@contextmanager
def _follow_children(out: Any, redact: Sequence[str], max_content: int | None,
                     frameworks: dict[str, bool]) -> Iterator[_ChildrenLog]:
    """Make Python children trace themselves into our log (or, for -o -, a file merged at the end)."""
    from rtrace.core.process import children

    site_dir = tempfile.mkdtemp(prefix="rtrace-site-")
    if out.path is None:  # stdout: children cannot share the pipe safely; they write a file we copy out
        fd, path = tempfile.mkstemp(prefix="rtrace-children-", suffix=".jsonl")
        os.close(fd)
        log = _ChildrenLog(path, 0, True)
    else:
        log = _ChildrenLog(os.path.abspath(out.path), os.fstat(out.fd).st_size, False)
    children.write_sitecustomize(site_dir)
    env = children.child_environment(site_dir, log.path, frameworks=frameworks, redact=list(redact),
                                     max_content=max_content)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    children.patch_process_starts()
    try:
        yield log
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(site_dir, ignore_errors=True)


def _absorb_children(log: _ChildrenLog, session_id: str, summary: RunSummary, out: Any) -> None:
    """Count the children's runs in the summary; for -o -, copy their events to stdout."""
    from rtrace.core.errors import RtraceError
    from rtrace.core.read.reader import read_lines

    try:
        for ev in read_lines([log.path], lenient=True, offset=log.offset):
            if ev.data.get("session_id") == session_id:
                continue
            if ev.data.get("event") not in events.SESSION_EVENTS:  # the summary is the main session's
                summary(ev.data)
            if log.temporary:
                os.write(out.fd, ev.raw)
    except (OSError, RtraceError):
        pass
    finally:
        if log.temporary:
            try:
                os.unlink(log.path)
            except OSError:
                pass


def _print_traceback(error: BaseException) -> None:
    # Through sys.excepthook, as python does, so a script's own hook still runs.
    try:
        tb = runner.user_frames(error)
        sys.excepthook(type(error), error.with_traceback(tb), tb)  # the default hook prints __traceback__
    except Exception:
        try:
            sys.stderr.write(runner.user_traceback(error))
        except Exception:
            pass


class _live_view:
    """Rich Live on stderr, only when stderr is a terminal."""

    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary
        self.live: Any = None

    def __enter__(self) -> None:
        if not sys.stderr.isatty():
            return
        from rich.live import Live
        from rtrace.cli.console import make_console
        from rtrace.cli.render.summary import in_flight

        self.live = Live(get_renderable=lambda: in_flight(self.summary), console=make_console(stderr=True),
                         refresh_per_second=4, transient=True, redirect_stdout=False, redirect_stderr=False)
        self.live.start()

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.stop()
