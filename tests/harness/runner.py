"""Run a harness program under python and under `rtrace run -q`; compare what a user sees."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROGRAMS = Path(__file__).parent / "programs"
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_", "PYTEST_"))},
    "PYTHONHASHSEED": "0",  # set and dict orders of str keys are the same in both runs
}
ENV.pop("PYTHONPATH", None)
ENV.pop("COVERAGE_PROCESS_START", None)


@dataclass
class Program:
    path: Path
    runs: int | None = None
    requires: list[str] = field(default_factory=list)
    optional: list[str] = field(default_factory=list)
    timeout: float = 60.0
    args: list[str] = field(default_factory=list)
    rtrace_args: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.stem


def parse(path: Path) -> Program:
    """The program's header comments (see README.md)."""
    program = Program(path)
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].strip().partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "runs":
            program.runs = int(value)
        elif key in ("requires", "optional"):
            getattr(program, key).extend(m.strip() for m in value.split(",") if m.strip())
        elif key == "timeout":
            program.timeout = float(value)
        elif key == "args":
            program.args = shlex.split(value)
        elif key == "rtrace-args":
            program.rtrace_args = shlex.split(value)
    return program


def programs() -> list[Program]:
    return [parse(p) for p in sorted(PROGRAMS.glob("*.py"))]


def missing(modules: list[str]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def rtrace_command() -> list[str]:
    """The `rtrace` console script a user runs (python -m rtrace.cli when it is not installed)."""
    script = Path(sys.executable).parent / "rtrace"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rtrace.cli"]


@dataclass
class Outcome:
    returncode: int
    stdout: bytes
    stderr: bytes


def _start(cmd: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, cwd=cwd, env=ENV, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def _finish(proc: subprocess.Popen[bytes], timeout: float) -> Outcome:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        raise AssertionError(f"timed out after {timeout:.0f} s: {proc.args}\nstdout: {out[-2000:]!r}\n"
                             f"stderr: {err[-2000:]!r}") from None
    finally:
        _kill_group(proc)  # whatever the program left behind in its session (an orphaned worker)
    return Outcome(proc.returncode, out, err)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_both(program: Program, workdir: Path) -> tuple[Outcome, Outcome]:
    """The program under python and under `rtrace run -q`, run at the same time in two directories."""
    plain_dir, traced_dir = workdir / "python", workdir / "rtrace"
    plain_dir.mkdir()
    traced_dir.mkdir()
    script = str(program.path)
    plain = _start([sys.executable, script, *program.args], plain_dir)
    traced = _start([*rtrace_command(), "run", "-q", *program.rtrace_args, script, *program.args], traced_dir)
    return _finish(plain, program.timeout), _finish(traced, program.timeout)


def read_log(traced_dir: Path) -> list[dict[str, Any]]:
    """The events of the traced run's log; fails on a line that is not whole JSON."""
    name = (traced_dir / ".rtrace" / "latest").read_text().strip()
    raw = (traced_dir / ".rtrace" / name).read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), "the log does not end with a newline"
    events = []
    for number, line in enumerate(raw.splitlines(), 1):
        try:
            events.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"line {number} of the log is not JSON: {line[:200]!r}") from None
    return events


def run_starts(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if str(e.get("event", "")).endswith("_start") and e["event"] != "session_start"]
