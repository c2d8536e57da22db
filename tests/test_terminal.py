"""Terminal manners, on a real pseudo-terminal: pager, colour, NO_COLOR."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest
from ptys import on_a_terminal
from synth import LogBuilder, standard_log

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    pager = tmp_path / "pager.sh"
    pager.write_text(f"#!/bin/sh\ncat > {tmp_path / 'paged.txt'}\n")
    pager.chmod(0o755)
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "RTRACE_PAGER", "PAGER", "LESS")}
    return {**base, "PAGER": str(pager), "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "10"}


def test_output_goes_through_the_pager_in_colour_on_a_terminal(tmp_path: Path, env: dict[str, str]) -> None:
    log = standard_log(tmp_path / "l.jsonl")
    on_a_terminal(["show", str(log)], tmp_path, env)
    paged = (tmp_path / "paged.txt").read_bytes()
    assert b"Hybrid" in paged and b"\x1b[" in paged  # coloured, through the pager


def test_rtrace_pager_wins_over_pager(tmp_path: Path, env: dict[str, str]) -> None:
    log = standard_log(tmp_path / "l.jsonl")
    ours = tmp_path / "rtrace-pager.sh"
    ours.write_text(f"#!/bin/sh\ncat > {tmp_path / 'rtrace-paged.txt'}\n")
    ours.chmod(0o755)
    on_a_terminal(["show", str(log)], tmp_path, {**env, "RTRACE_PAGER": str(ours)})
    assert b"Hybrid" in (tmp_path / "rtrace-paged.txt").read_bytes()
    assert not (tmp_path / "paged.txt").exists()  # $PAGER's script never ran


def test_no_pager_and_no_color(tmp_path: Path, env: dict[str, str]) -> None:
    log = standard_log(tmp_path / "l.jsonl")
    out = on_a_terminal(["show", "--no-pager", str(log)], tmp_path, env)
    assert not (tmp_path / "paged.txt").exists()
    assert b"Hybrid" in out and b"\x1b[" in out
    plain = on_a_terminal(["show", "--no-pager", str(log)], tmp_path, {**env, "NO_COLOR": "1"})
    assert b"Hybrid" in plain and b"\x1b[" not in plain


def test_never_paged_when_stdout_is_not_a_terminal(tmp_path: Path, env: dict[str, str]) -> None:
    log = standard_log(tmp_path / "l.jsonl")
    r = subprocess.run([sys.executable, "-m", "rtrace.cli", "show", str(log)], capture_output=True, env=env, cwd=tmp_path, timeout=60)
    assert r.returncode == 0 and b"Hybrid" in r.stdout and b"\x1b[" not in r.stdout
    assert not (tmp_path / "paged.txt").exists()


class Terminal:
    """A real pseudo-terminal of a given size, read through a terminal emulator (pyte): the
    screen a user would see, cursor movements, scroll regions and erasures included."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], rows: int = 12, cols: int = 72,
                 prompt: str = "") -> None:
        import pyte

        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.master = master
        self.proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        os.close(slave)
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        if prompt:  # a shell prompt on the last row, where the user typed the command
            self.stream.feed(b"\r\n" * (rows - 1) + prompt.encode() + b"\r\n")
        self.raw = b""

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def _pump(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:
            return False
        if not chunk:
            return False
        self.raw += chunk
        self.stream.feed(chunk)
        return True

    def wait_for(self, predicate: Any, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            if not self._pump(0.05):
                return predicate(self)
        return False

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def finish(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._pump(0.1):
            if self.proc.poll() is not None and not select.select([self.master], [], [], 0.2)[0]:
                break
        return self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.master)


@pytest.fixture
def terminals() -> Any:
    opened: list[Terminal] = []

    def open_terminal(*args: Any, **kwargs: Any) -> Terminal:
        t = Terminal(*args, **kwargs)
        opened.append(t)
        return t

    yield open_terminal
    for t in opened:
        t.close()


RTRACE = [sys.executable, "-m", "rtrace.cli"]
SLOW = (
    "import time\nfrom rtrace.core import retriever\n\n"
    "@retriever(name='SlowSearch')\ndef search(query):\n    time.sleep(0.7)\n    return [query]\n\n"
    "for i in range(3):\n    print(f'script line {i}', flush=True)\n    search(f'query {i}')\n"
    "print('script done', flush=True)\n"
)


@pytest.mark.timeout(60)
def test_live_keeps_the_scripts_output_and_clears_its_status_line(tmp_path: Path, env: dict[str, str],
                                                                   terminals: Any) -> None:
    (tmp_path / "slow.py").write_text(SLOW)
    term = terminals([*RTRACE, "run", "--live", "slow.py"], tmp_path, env, rows=12, cols=72,
                     prompt="$ rtrace run --live slow.py")

    def status_on_the_last_row(t: Terminal) -> bool:
        return t.lines()[-1].startswith("rtrace ⋯") and "script line 1" in "\n".join(t.lines())

    assert term.wait_for(status_on_the_last_row), term.lines()
    during = term.lines()
    assert "1 in flight" in during[-1] and "SlowSearch" in during[-1]
    shown = [line for line in during[:-1] if line]
    assert shown[shown.index("$ rtrace run --live slow.py"):][:3] == ["$ rtrace run --live slow.py", "script line 0",
                                                                      "script line 1"]
    assert term.finish() == 0
    after = [line for line in term.lines() if line]
    assert not any(line.startswith("rtrace ⋯") for line in after), after  # cleared
    start = after.index("script line 0") if "script line 0" in after else 0
    assert after[start:start + 5] == ["script line 0", "script line 1", "script line 2", "script done",
                                      after[start + 4]] and after[start + 4].startswith("rtrace: 3 runs in 3 traces")


@pytest.mark.timeout(60)
def test_live_status_of_a_wide_query_fits_its_row(tmp_path: Path, env: dict[str, str], terminals: Any) -> None:
    # A query of double-width characters: cut by the cells it takes, not by its characters, or
    # the status wraps onto the row of the script's output.
    (tmp_path / "slow.py").write_text(SLOW.replace("f'query {i}'", "'検索' * 30"))
    term = terminals([*RTRACE, "run", "--live", "slow.py"], tmp_path, env, rows=12, cols=80, prompt="$ run")
    assert term.wait_for(lambda t: t.lines()[-1].startswith("rtrace ⋯ 2 runs") and "script line 2" in "\n".join(t.lines()))
    term.wait_for(lambda t: False, timeout=0.6)  # a redraw or two with the third search in flight
    status, above = term.lines()[-1], term.lines()[:-1]
    assert "検" in status and not any("検" in line or "索" in line for line in above), term.lines()
    assert [line for line in above if line][:3] == ["$ run", "script line 0", "script line 1"], term.lines()
    assert term.finish() == 0


def test_live_draws_nothing_when_stderr_is_not_a_terminal(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "quick.py").write_text(SLOW.replace("0.7", "0.01"))
    r = subprocess.run([*RTRACE, "run", "--live", "quick.py"], cwd=tmp_path, env=env, capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout.decode().splitlines() == [
        "script line 0", "script line 1", "script line 2", "script done"]
    assert b"\x1b" not in r.stderr and b"\xe2\x8b\xaf" not in r.stderr  # no escapes, no status line


@pytest.mark.timeout(60)
def test_quitting_the_pager_early_exits_0(tmp_path: Path, env: dict[str, str], terminals: Any) -> None:
    if shutil.which("less") is None:
        pytest.skip("less is not installed")
    log = LogBuilder().session_start()
    for n in range(1, 3001):  # far more than a pipe holds: rtrace is still writing when q is pressed
        log.start(n, "Dense", f"query {n}").end(n, "Dense", [{"id": f"d{n}", "page_content": "x", "metadata": {},
                                                              "score": 0.5}], 2.0)
    path = log.session_end().write(tmp_path / "long.jsonl")
    real_less = {k: v for k, v in env.items() if k not in ("PAGER", "LESS")}
    term = terminals([*RTRACE, "show", str(path)], tmp_path, real_less, rows=10, cols=80)
    assert term.wait_for(lambda t: "query 1”" in "\n".join(t.lines()) and t.lines()[-1].startswith(":"))
    term.send(b"q")
    assert term.finish() == 0
    assert b"rtrace: error" not in term.raw and b"Traceback" not in term.raw


def follow_runs(tmp_path: Path, env: dict[str, str], terminals: Any) -> tuple[Terminal, Any]:
    (tmp_path / "app.py").write_text(
        "import sys\nfrom rtrace.core import retriever\n\n@retriever(name='Search')\n"
        "def search(q):\n    return [q]\n\nsearch(sys.argv[1])\n")

    def run(query: str) -> None:
        r = subprocess.run([*RTRACE, "run", "-q", "app.py", query], cwd=tmp_path, env=env, capture_output=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr

    run("old query")
    term = terminals([*RTRACE, "show", "--follow"], tmp_path, env, rows=30, cols=100)
    return term, run


@pytest.mark.timeout(90)
def test_follow_without_a_log_waits_for_the_next_run_and_follows_it(tmp_path: Path, env: dict[str, str],
                                                                    terminals: Any) -> None:
    term, run = follow_runs(tmp_path, env, terminals)
    assert term.wait_for(lambda t: "waiting for the next `rtrace run` in .rtrace/" in "\n".join(t.lines()))
    run("first new query")
    assert term.wait_for(lambda t: "first new query" in "\n".join(t.lines()))
    assert term.wait_for(lambda t: "waiting for the next" in t.lines()[-1] or "━━ exit 0" in "\n".join(t.lines()))
    run("second new query")  # and the run after it
    assert term.wait_for(lambda t: "second new query" in "\n".join(t.lines()))
    assert "old query" not in term.raw.decode("utf-8", "replace")  # the finished run before is history
    term.proc.send_signal(signal.SIGINT)  # Ctrl-C stops following, quietly
    assert term.finish() == 0
    assert b"Traceback" not in term.raw


@pytest.mark.parametrize("args, extra_env, coloured", [
    (["--color", "always"], {}, True),
    (["--color", "never"], {"FORCE_COLOR": "1"}, False),
    ([], {"FORCE_COLOR": "1"}, True),
    ([], {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
    (["--color", "always"], {"NO_COLOR": "1"}, True),  # the command line wins over the environment
    ([], {}, False),
])
def test_color_option_and_force_color_on_a_pipe(tmp_path: Path, env: dict[str, str], args: list[str],
                                                extra_env: dict[str, str], coloured: bool) -> None:
    log = standard_log(tmp_path / "l.jsonl")
    for command in (["show", str(log)], ["stats", str(log)]):
        r = subprocess.run([*RTRACE, *command, *args], capture_output=True, env={**env, **extra_env}, cwd=tmp_path,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        assert (b"\x1b[" in r.stdout) == coloured, (command, args, extra_env)


def test_color_never_on_a_terminal(tmp_path: Path, env: dict[str, str]) -> None:
    log = standard_log(tmp_path / "l.jsonl")
    out = on_a_terminal(["show", "--no-pager", "--color", "never", str(log)], tmp_path, env)
    assert b"Hybrid" in out and b"\x1b[" not in out
    r = subprocess.run([*RTRACE, "show", "--color", "sometimes", str(log)], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=60)
    assert r.returncode == 2 and r.stderr == "rtrace: error: --color is one of auto, always, never, not 'sometimes'\n"


@pytest.mark.parametrize("command", [["--help"], ["show", "--help"], ["show", "LOG"], ["show", "LOG", "--format", "table"],
                                     ["filter", "LOG"], ["stats", "LOG"], ["schema"], ["ls"]])
def test_a_closed_pipe_on_stdout_is_not_an_error(tmp_path: Path, env: dict[str, str], command: list[str]) -> None:
    # `rtrace ... | head -1`, made deterministic: the reader is gone before rtrace writes.
    log = standard_log(tmp_path / "l.jsonl")
    (tmp_path / ".rtrace").mkdir(mode=0o700)
    os.link(log, tmp_path / ".rtrace" / "copied.jsonl")
    read_end, write_end = os.pipe()
    os.close(read_end)
    proc = subprocess.Popen([*RTRACE, *[str(log) if a == "LOG" else a for a in command]], cwd=tmp_path, env=env,
                            stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and err == b"", err.decode()


@pytest.mark.timeout(90)
def test_follow_without_a_log_joins_a_run_still_in_progress(tmp_path: Path, env: dict[str, str],
                                                            terminals: Any) -> None:
    (tmp_path / "slow.py").write_text(
        "import time\nfrom rtrace.core import retriever\n\n@retriever(name='Slow')\n"
        "def search(q):\n    print('ready', flush=True)\n    time.sleep(3)\n    return [q]\n\n"
        "search('in progress query')\n")
    run = subprocess.Popen([*RTRACE, "run", "-q", "slow.py"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        assert run.stdout is not None and run.stdout.readline() == "ready\n"
        term = terminals([*RTRACE, "show", "--follow"], tmp_path, env, rows=30, cols=100)
        assert term.wait_for(lambda t: "in progress query" in "\n".join(t.lines()), timeout=30), term.lines()
        assert "waiting for the next" not in term.raw.decode("utf-8", "replace").split("in progress query")[0]
    finally:
        run.communicate(timeout=60)
    term.proc.send_signal(signal.SIGINT)
    assert term.finish() == 0
