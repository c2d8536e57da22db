"""``rtrace run``: set up the writer and hooks, run the target, close the log, report."""

from __future__ import annotations

import atexit
import os
import signal
import stat
import sys
from collections.abc import Sequence
from typing import Any

from rtrace.core import events
from rtrace.core.errors import UsageError, warn
from rtrace.core.process import changes, children, pump, runner, signals
from rtrace.core.read.summary import RunSummary
from rtrace.core.record.ids import uuid7
from rtrace.core.record.jsonl import JsonlHandler
from rtrace.core.record.redact import DEFAULT_REDACT
from rtrace.core.record.sink import move_high
from rtrace.core.store import open_output, record_end, record_start, script_label


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
    if not items:  # the common case: no import of the reading side before the script starts
        return {}
    from rtrace.core.read.filters import parse_meta_filters

    return dict(parse_meta_filters(items))


def _exit_code(e: SystemExit) -> int:
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF if code >= 0 else code % 256
    _exit_message(str(code))
    return 1


def _exit_message(text: str) -> None:
    """``sys.exit("message")`` as python says it (``_Py_HandleSystemExit``): the message on the
    program's ``sys.stderr`` (on descriptor 2 when that is None), then a newline on
    ``sys.stderr``, or on descriptor 2 when that fails (a program that closed ``sys.stderr``)."""
    stream = sys.stderr
    try:
        if stream is None:
            os.write(2, text.encode("utf-8", "backslashreplace"))
        else:
            stream.write(text)
    except Exception:
        pass
    try:
        if stream is None:
            raise ValueError("no sys.stderr")
        stream.write("\n")
    except Exception:
        try:
            os.write(2, b"\n")
        except OSError:
            pass


class TraceRun:
    """One traced run of a target: writer, process changes, signals, summary.

    The script runs as python would run it: after it ends, python's own shutdown
    follows (non-daemon threads are joined, then the script's ``atexit`` handlers
    run, still traced); the log is closed and the summary printed last, from an
    ``atexit`` handler registered before the script's. Everything process-wide is
    installed and undone by ``rtrace.core.process.changes.RunChanges``.
    """

    def __init__(self, target: runner.Target, *, output: str | None, quiet: bool, live: bool,
                 langchain: bool, redact: Sequence[str], max_content: int | None,
                 tags: Sequence[str], metadata: dict[str, Any], children: bool = True,
                 export_endpoint: str | None = None, llamaindex: bool = True, haystack: bool = True,
                 verbose: bool = False, content: str | None = None, redact_content: bool = False) -> None:
        self.target = target
        self.content = content
        self.redact_content = redact_content
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
        self.verbose = verbose
        self.summary = RunSummary()
        self.pid = os.getpid()
        self.exit_code: int = 0
        self.error: BaseException | None = None
        self.finished = False

    def execute(self) -> int:
        """Run the target; return its exit code. The rest happens at interpreter exit (``finish``)."""
        runner.check(self.target)
        session_id = str(uuid7())
        if self.export_endpoint is not None:  # before any log exists: a wrong URL leaves nothing behind
            from rtrace.core.integrations.otel import check_endpoint

            check_endpoint(self.export_endpoint)
        label = script_label(self.target.kind, self.target.value)
        out = self.out = open_output(self.output_option, session_id, label)
        out.fd = move_high(out.fd)
        # A shared output that is not a regular file (stdout, a pipe, a terminal, /dev/full):
        # everyone writes a private file and one pump copies whole lines out; nothing is read back from it.
        # (-o - always: stdout redirected to a file has no path children could open.)
        self.pump = None if out.path is not None and _is_regular(out.fd) else pump.Pump(out.fd)
        log_fd = self.pump.fd if self.pump is not None else out.fd
        log_path = self.pump.path if self.pump is not None else os.path.abspath(str(out.path))
        self.log_path, self.log_offset = log_path, os.fstat(log_fd).st_size
        self.exporter = None
        if self.export_endpoint is not None:
            # Another process follows the log (the private one too): the script pays nothing
            # for it, and the children's spans are exported with the script's.
            self.exporter = _ExportProcess(log_path, self.log_offset, session_id, self.export_endpoint)
        handler = self.handler = JsonlHandler(
            log_fd, name=out.display, reopen_path=log_path, redact=self.redact, redact_content=self.redact_content,
            max_content=self.max_content, session_id=session_id, root_tags=self.tags, root_metadata=self.metadata,
            observers=[self.summary], content=self.content,
        )
        if out.to_stdout:
            sys.stdout.flush()
            os.dup2(2, 1)  # the script's stdout goes to stderr; fd `out.fd` keeps the real stdout
        handler.open_session(argv=self.target.argv, rtrace_argv=list(sys.argv))
        record_start(out, session_id, label if self.target.kind != "script" else os.path.basename(self.target.value),
                     list(self.target.argv))
        self.changes = changes.RunChanges(
            handler, children_log=log_path if self.children else None, frameworks=self.frameworks,
            redact=list(self.redact), max_content=self.max_content, on_term=self._on_term, verbose=self.verbose)
        self.changes.install()
        self.live_view = _live_view(self.summary)
        if self.live:
            self.live_view.__enter__()
        # Registered before the script registers its own: runs after them (atexit is LIFO).
        atexit.register(self.finish)
        try:
            runner.run(self.target, before_script=self.changes.before_script)
        except SystemExit as e:
            self.exit_code = _exit_code(e)
        except KeyboardInterrupt as e:
            self.exit_code, self.error = 130, e
            _print_traceback(e)
        except BaseException as e:
            self.exit_code, self.error = 1, e
            _print_traceback(e)
        return self.exit_code

    def _on_term(self, signum: int) -> None:
        self.exit_code, self.error = 128 + signum, None
        self.finish(dying=True)

    def finish(self, dying: bool = False) -> None:
        """Close the log, undo every change, report. In a forked child: close the child's session only."""
        if self.finished:
            return
        self.finished = True
        if os.getpid() != self.pid:  # a forked child leaving through the script's exit path
            self.handler.close(exit_code=self.exit_code, error=self.error)
            return
        atexit.unregister(self.finish)
        self.handler.close(exit_code=self.exit_code, error=self.error)
        self.live_view.__exit__()
        self.changes.uninstall()
        self._count_children()
        s = self.summary
        record_end(self.out, self.handler.session_id, {
            "runs": s.runs, "errors": s.errors, "retries": s.retries, "duration_ms": s.duration_ms,
            "exit_code": self.exit_code, "incomplete": s.incomplete})
        if self.exporter is not None:  # the script is done: now wait for the backend, so nothing is lost
            self.exporter.close()  # (before the pump stops: it removes the private log the exporter reads)
        problem = self.pump.finish() if self.pump is not None else None
        if problem is not None and problem != "Broken pipe":  # a reader that left (| head) is no news
            warn(f"cannot write trace log {self.out.display}: {problem}; events were lost")
        if not self.quiet:
            self._report(self.out.display, self.out.show_command)
        if isinstance(self.error, KeyboardInterrupt) and not dying:
            signals.die_of(signal.SIGINT)  # what python does after an uncaught KeyboardInterrupt

    def _count_children(self) -> None:
        """Count the children's runs in the summary, from the log's regular file (never another file)."""
        if not self.children:
            return
        from rtrace.core.errors import RtraceError
        from rtrace.core.read.reader import read_lines

        try:
            if not os.path.isfile(self.log_path):
                return
            for ev in read_lines([self.log_path], lenient=True, offset=self.log_offset):
                data = ev.data
                if data.get("session_id") != self.handler.session_id and data.get("event") not in events.SESSION_EVENTS:
                    self.summary(data)  # the summary is the main session's
        except (OSError, RtraceError):
            pass

    def _report(self, display: str, show_command: str) -> None:
        from rtrace.cli.console import make_console
        from rtrace.cli.render.summary import summary

        try:
            make_console(stderr=True).print(summary(self.summary, display, show_command))
        except Exception:  # a closed stderr must not change the exit code
            pass


def _is_regular(fd: int) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


class _ExportProcess:
    """`rtrace export --follow` in a process of its own, started now and waited for at the end."""

    def __init__(self, path: str, offset: int, session_id: str, endpoint: str) -> None:
        import subprocess
        import tempfile

        self.dropped = 0
        # Its stderr goes to an unnamed file on a high descriptor: no pipe takes a low number
        # the script's own files would get under python.
        fd, name = tempfile.mkstemp(prefix="rtrace-export-")
        os.unlink(name)
        self.err_fd = move_high(fd)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rtrace.cli", "export", path, "--follow", "--endpoint", endpoint,
             "--until-session", session_id, "--offset", str(offset)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.err_fd,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH" or children.SITE_PREFIX not in v},
            close_fds=True, start_new_session=True,  # Ctrl-C is for the script; the exporter drains
        )

    def close(self, timeout: float = 120.0) -> None:
        import subprocess

        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            warn(f"the exporter did not finish within {timeout:.0f} s; some spans were not sent")
            return
        finally:
            os.lseek(self.err_fd, 0, os.SEEK_SET)
            err = os.read(self.err_fd, max(1, os.fstat(self.err_fd).st_size)).decode(errors="replace")
            os.close(self.err_fd)
        if self.proc.returncode != 0:
            last = err.strip().splitlines()[-1:] or ["the exporter failed"]
            warn(f"export: {last[0].removeprefix('rtrace: error: ')}")


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
    """``--live``: one status line on stderr's terminal, redrawn in place, cleared at the end.

    The script's own output is never touched (see ``StatusLine``). Redrawn at most 4 times a
    second by a daemon thread, and only when an event changed something.
    """

    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary
        self.line: Any = None
        self.thread: Any = None
        self.stopping: Any = None

    def __enter__(self) -> None:
        import threading

        from rtrace.cli.console import StatusLine

        if not StatusLine.available(2):
            return
        self.line = StatusLine(2)
        self.line.start()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="rtrace-live", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        from rtrace.cli.render.summary import status_text

        drawn = None
        while not self.stopping.wait(0.25):
            text = status_text(self.summary)
            if text != drawn:
                self.line.draw(text)
                drawn = text

    def __exit__(self, *exc: Any) -> None:
        if self.line is not None:
            self.stopping.set()
            self.thread.join(timeout=2)
            self.line.stop()
