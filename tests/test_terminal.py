"""Terminal manners, on a real pseudo-terminal: pager, colour, NO_COLOR."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from synth import standard_log

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")


def on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> bytes:
    """Run rtrace with stdout on a pty; return what reached the terminal."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "rtrace.cli", *args], cwd=cwd, stdout=slave, stderr=slave,
                            stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=60)
    os.close(master)
    return out


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


def test_live_view_shows_runs_in_flight_on_a_terminal(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "slow.py").write_text(
        "import time\nfrom rtrace.core import retriever\n\n"
        "@retriever(name='SlowSearch')\ndef search(query):\n    time.sleep(1.5)\n    return [query]\n\n"
        "search('a slow query')\n"
    )
    out = on_a_terminal(["run", "--live", "slow.py"], tmp_path, env).decode("utf-8", "replace")
    assert "1 in flight" in out and "SlowSearch" in out and "a slow query" in out
    assert "rtrace: 1 run in 1 trace" in out  # the summary after it
