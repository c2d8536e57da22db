"""`--follow` of a run whose writer died (kill -9) ends by itself; a live writer that is quiet is still followed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RTRACE = [sys.executable, "-m", "rtrace.cli"]
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "RTRACE_"))}, "COLUMNS": "160"}

SCRIPT = """\
import sys
from rtrace.core import retriever

@retriever(name="Search")
def search(q):
    return [q]

@retriever(name="Stuck")
def stuck(q):
    print("ready", flush=True)
    sys.stdin.readline()  # held here until the test writes a line (or kills the run)
    return [q]

search("recorded before the pause")
stuck("in flight during the pause")
search("recorded after the pause")
"""


class Proc:
    """A process in its own group, read without blocking; killed with its group at the end."""

    def __init__(self, argv: list[str], cwd: Path, stdin: bool = False) -> None:
        self.p = subprocess.Popen(argv, cwd=cwd, env=ENV, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.out = self.err = b""
        for stream in (self.p.stdout, self.p.stderr):
            assert stream is not None
            os.set_blocking(stream.fileno(), False)

    def read(self) -> None:
        assert self.p.stdout is not None and self.p.stderr is not None
        self.out += self.p.stdout.read() or b""
        self.err += self.p.stderr.read() or b""

    def wait_for(self, what: bytes, stream: str = "out", timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read()
            if what in getattr(self, stream):
                return True
            time.sleep(0.05)
        return False

    def ended(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read()
            if self.p.poll() is not None:
                self.read()
                return True
            time.sleep(0.05)
        return False

    def kill(self) -> None:
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait(timeout=30)
        for stream in (self.p.stdin, self.p.stdout, self.p.stderr):
            if stream is not None:
                stream.close()


def start_run(tmp_path: Path, output: str | None) -> Proc:
    (tmp_path / "paused.py").write_text(SCRIPT)
    run = Proc([*RTRACE, "run", "-q", *(["-o", output] if output else []), "paused.py"], tmp_path, stdin=True)
    assert run.wait_for(b"ready\n"), run.err
    return run


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fmt", ["tree", "jsonl"])
def test_follow_of_a_run_killed_with_sigkill_ends_by_itself(tmp_path: Path, fmt: str) -> None:
    run = start_run(tmp_path, "paused.jsonl")
    shower = Proc([*RTRACE, "show", "--follow", "--format", fmt, "paused.jsonl"], tmp_path)
    try:
        assert shower.wait_for(b"recorded before the pause"), shower.err
        os.kill(run.p.pid, signal.SIGKILL)  # the script runs inside rtrace run: one process, no session_end
        run.p.wait(timeout=30)
        assert shower.ended(timeout=30), "--follow still waiting for a writer that is gone"
        assert shower.p.returncode == 0, shower.err
        assert shower.err.decode().splitlines()[-1] == (
            f"rtrace: warning: the writer (pid {run.p.pid}) died without ending its session; "
            "stopped following paused.jsonl")
        assert b"in flight during the pause" in shower.out  # what was recorded is shown, the open run too
        assert b"recorded after the pause" not in shower.out
    finally:
        shower.kill()
        run.kill()


@pytest.mark.timeout(120)
def test_a_quiet_live_writer_is_still_followed(tmp_path: Path) -> None:
    run = start_run(tmp_path, "paused.jsonl")
    shower = Proc([*RTRACE, "show", "--follow", "paused.jsonl"], tmp_path)
    try:
        assert shower.wait_for(b"recorded before the pause"), shower.err
        # Quiet for many poll intervals (0.2 s each): the writer is alive, so following goes on.
        assert not shower.ended(timeout=3), shower.err
        assert run.p.stdin is not None
        run.p.stdin.write(b"go\n")
        run.p.stdin.flush()
        assert run.ended(timeout=60) and run.p.returncode == 0, run.err
        assert shower.wait_for(b"recorded after the pause"), shower.err
        assert shower.p.poll() is None  # its session ended: followed like tail -f, until Ctrl-C
        shower.p.send_signal(signal.SIGINT)
        assert shower.ended(timeout=30) and shower.p.returncode == 0
        assert b"died" not in shower.err and b"Traceback" not in shower.err, shower.err
    finally:
        shower.kill()
        run.kill()


@pytest.mark.timeout(120)
def test_follow_without_a_log_says_the_run_died_and_waits_for_the_next(tmp_path: Path) -> None:
    run = start_run(tmp_path, None)
    shower = Proc([*RTRACE, "show", "--follow"], tmp_path)
    try:
        assert shower.wait_for(b"recorded before the pause"), shower.err  # joined the run in progress
        os.kill(run.p.pid, signal.SIGKILL)
        run.p.wait(timeout=30)
        assert shower.wait_for(b"died without ending its session", "err", timeout=30), shower.err
        assert f"rtrace: warning: the writer (pid {run.p.pid}) died".encode() in shower.err
        assert shower.wait_for(b"waiting for the next `rtrace run`", "err", timeout=30), shower.err
        assert shower.p.poll() is None
    finally:
        shower.kill()
        run.kill()


LOCKLESS_WRITER = """\
import datetime, json, os, sys
# A writer that takes no lock on its log (an older rtrace, or a file system without flock).
session = "0190cccc-0000-7000-8000-000000000001"
ts = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # after its process started
with open(sys.argv[1], "a") as f:
    for seq, ev in enumerate([
        {"event": "session_start", "argv": ["old.py"], "pid": os.getpid(), "python": "3", "rtrace_version": "0.0.9", "cwd": "/"},
        {"event": "retriever_start", "run_id": "0190cccc-0000-7000-8000-0000000000a1", "parent_run_id": None,
         "trace_id": "0190cccc-0000-7000-8000-0000000000a1", "name": "Lockless", "query": "written without a lock"},
        {"event": "retriever_end", "run_id": "0190cccc-0000-7000-8000-0000000000a1", "parent_run_id": None,
         "trace_id": "0190cccc-0000-7000-8000-0000000000a1", "name": "Lockless", "duration_ms": 1.0, "documents": []},
        {"event": "retriever_start", "run_id": "0190cccc-0000-7000-8000-0000000000a2", "parent_run_id": None,
         "trace_id": "0190cccc-0000-7000-8000-0000000000a2", "name": "Lockless", "query": "in flight"},
    ], 1):
        f.write(json.dumps({"v": 1, "seq": seq, "ts": ts, "session_id": session, **ev}) + "\\n")
        f.flush()
    print("ready", flush=True)
    sys.stdin.readline()  # quiet, alive, until the test writes a line or kills it
"""


@pytest.mark.timeout(120)
def test_a_live_writer_without_the_lock_is_followed_until_its_process_is_gone(tmp_path: Path) -> None:
    (tmp_path / "old.py").write_text(LOCKLESS_WRITER)
    writer = Proc([sys.executable, "old.py", "old.jsonl"], tmp_path, stdin=True)
    shower = Proc([*RTRACE, "show", "--follow", "old.jsonl"], tmp_path)
    try:
        assert writer.wait_for(b"ready\n"), writer.err
        assert shower.wait_for(b"written without a lock"), shower.err
        assert not shower.ended(timeout=3), shower.err  # no lock, but its process is there: still followed
        os.kill(writer.p.pid, signal.SIGKILL)
        writer.p.wait(timeout=30)
        assert shower.ended(timeout=30), "--follow still waiting for a writer that is gone"
        assert shower.p.returncode == 0, shower.err
        assert f"the writer (pid {writer.p.pid}) died without ending its session".encode() in shower.err
    finally:
        shower.kill()
        writer.kill()
