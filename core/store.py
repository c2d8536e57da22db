"""Where ``rtrace run`` writes: a new file under .rtrace/, a chosen path, or stdout."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rtrace.core.errors import OutputError
from rtrace.core.times import file_stamp

RUN_DIR = ".rtrace"
LATEST = "latest"


@dataclass
class Output:
    fd: int
    display: str
    show_command: str
    to_stdout: bool = False
    path: str | None = None  # None for stdout


def _open_append(path: Path) -> int:
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def open_output(option: str | None, session_id: str) -> Output:
    """Open the log ``rtrace run -o OPTION`` writes to (a new file under .rtrace/ by default)."""
    if option == "-":
        return Output(os.dup(1), "<stdout>", "rtrace run -o - … | rtrace show -", to_stdout=True)
    if option is not None:
        path = Path(option)
        if path.is_dir():
            raise OutputError(f"cannot write {path}: it is a directory")
        return Output(_open_append(path), str(path), f"rtrace show {_quote(str(path))}", path=str(path))
    run_dir = Path(RUN_DIR)
    try:
        run_dir.mkdir(exist_ok=True)
        ignore = run_dir / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# written by rtrace: traces stay out of version control\n*\n")
    except OSError as e:
        raise OutputError(f"cannot create {run_dir}/: {e.strerror or e}") from None
    name = f"{file_stamp()}-{session_id.replace('-', '')[-6:]}.jsonl"
    path = run_dir / name
    fd = _open_append(path)
    _point_latest(run_dir, name)
    return Output(fd, str(path), "rtrace show", path=str(path))


def _point_latest(run_dir: Path, name: str) -> None:
    tmp = run_dir / f".{LATEST}.{os.getpid()}"
    tmp.write_text(name + "\n")
    os.replace(tmp, run_dir / LATEST)


def latest_log(cwd: Path | None = None) -> Path:
    """The log the last ``rtrace run`` in this directory wrote."""
    run_dir = (cwd or Path.cwd()) / RUN_DIR
    try:
        name = (run_dir / LATEST).read_text().strip()
    except OSError:
        raise OutputError(f"no runs recorded here yet ({run_dir}/{LATEST} is missing): try `rtrace run script.py`") from None
    path = run_dir / name
    if not path.exists():
        raise OutputError(f"the latest run's log {path} is gone")
    return path


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)
