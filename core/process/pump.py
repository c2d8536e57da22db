"""One writer owns a shared output that is not a regular file (``-o -``, a pipe, a terminal).

Lines longer than ``PIPE_BUF`` written into one pipe by several processes tear. So
when the log goes to such an output, every process (the script, its forked and
spawned children) appends to a private regular file, and one pump process copies
whole lines from it to the output as they arrive. The pump is detached (double
fork): the script never sees it as a child (``os.wait``, ``SIGCHLD``), and it
outlives a ``kill -9`` of ``rtrace run``, so what was recorded still reaches the
output. It stops when ``rtrace run`` closes its end of the ``alive`` pipe (or dies),
after copying what is left; then it removes the private file.
"""

from __future__ import annotations

import os
import select
import signal
import tempfile
from typing import Any

from rtrace.core.process import forks
from rtrace.core.record.sink import move_high


class Pump:
    """A private log file and the detached process that copies its lines to ``out_fd``."""

    def __init__(self, out_fd: int) -> None:
        self.pid = os.getpid()
        self.out_fd = out_fd
        fd, self.path = tempfile.mkstemp(prefix="rtrace-log-", suffix=".jsonl")  # 0600, O_EXCL
        os.close(fd)
        self.fd = move_high(os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)))
        alive_r, alive_w = os.pipe()
        done_r, done_w = os.pipe()
        self._alive_w, self._done_r = move_high(alive_w), move_high(done_r)
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the pump's own processes
            try:
                os.close(self._alive_w)
                os.close(self._done_r)
                if os.fork() == 0:
                    _pump(self.path, out_fd, alive_r, done_w)
            finally:
                os._exit(0)
        os.close(alive_r)
        os.close(done_w)
        os.waitpid(child, 0)  # the intermediate process exits at once; the pump is init's
        forks.add_child_hook(self._forget)

    def _forget(self) -> None:
        # A forked child of the script must not keep the pump waiting after rtrace run ends,
        # nor hold the shared output open (the reader waits for its end): it writes the private file.
        for fd in (self._alive_w, self._done_r, self.out_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    def finish(self, timeout: float = 60.0) -> str | None:
        """Let the pump copy what is left and stop; the problem it had, if any."""
        if os.getpid() != self.pid:
            return None
        forks.remove_child_hook(self._forget)
        os.close(self._alive_w)
        try:
            ready, _, _ = select.select([self._done_r], [], [], timeout)
            if not ready:
                return f"the log's last lines were still being copied after {timeout:.0f} s"
            problem = os.read(self._done_r, 4096).decode(errors="replace")
            return problem or None
        except OSError as e:
            return str(e)
        finally:
            os.close(self._done_r)


def _write_lines(fd: int, data: bytes, end: int) -> None:
    """``data[:end]`` (whole lines) in writes of whole lines of at most ``PIPE_BUF`` bytes where
    the lines allow: the output may be shared with the script (``-o /dev/stdout``, a terminal),
    and only a write that small is never split by another process's write into the same pipe."""
    view = memoryview(data)
    start = 0
    while start < end:
        cut = data.rfind(b"\n", start, min(start + select.PIPE_BUF, end)) + 1
        if not cut:  # one line longer than PIPE_BUF: nothing keeps it whole, write it at once
            cut = data.index(b"\n", start) + 1
        while start < cut:
            start += os.write(fd, view[start:cut])


def _pump(path: str, out_fd: int, alive_r: int, done_w: int) -> Any:  # pragma: no cover - the pump
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the script; the pump drains
    devnull = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):
        if std != out_fd:
            os.dup2(devnull, std)
    src = os.open(path, os.O_RDONLY)
    rest = b""
    parent_gone = False
    try:
        while True:
            chunk = os.read(src, 1 << 20)
            if chunk:
                rest += chunk
                cut = rest.rfind(b"\n") + 1
                if cut:
                    _write_lines(out_fd, rest, cut)
                    rest = rest[cut:]
                continue
            if parent_gone:
                break
            ready, _, _ = select.select([alive_r], [], [], 0.02)
            if ready and os.read(alive_r, 1) == b"":
                parent_gone = True  # one more pass copies what came last
    except OSError as e:  # a full disk, or the reader went away: nothing more to do
        try:
            os.write(done_w, (e.strerror or str(e)).encode())
        except OSError:
            pass
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(done_w)
    os._exit(0)
