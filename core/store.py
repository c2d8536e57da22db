"""The ``.rtrace/`` directory: where ``rtrace run`` writes, the runs it recorded, and ``@`` references.

``.rtrace/`` is found as git finds ``.git``: in the current directory or the nearest parent
(owned by this user; the search stops at a world-writable directory such as /tmp). It holds the logs (``<time>-<script>-<id>.jsonl``), ``latest`` (the
name of the last log, for scripts) and ``index`` (JSON lines): two small lines per ``rtrace run``
(one when it starts, one with its counts when it ends), so listing runs never parses a log,
and runs written elsewhere with ``-o PATH`` are listed too. Every file here is created
private (0600, the directory 0700) without following a symlink.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from rtrace.core import events
from rtrace.core.errors import LogError, OutputError
from rtrace.core.read.writers import alive
from rtrace.core.record.sink import being_written, open_log, unlink_unless_written
from rtrace.core.times import file_stamp, utc_now_iso

RUN_DIR = ".rtrace"
LATEST = "latest"
INDEX = "index"  # JSON lines, but not *.jsonl: globs for logs must not match it
_LOCK = ".lock"
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_REF = re.compile(r"^@(\d*)$")
_HEAD_TAIL = 1 << 16  # bytes read at each end of a log that is not in the index


@dataclass
class Output:
    fd: int
    display: str
    show_command: str
    to_stdout: bool = False
    path: str | None = None  # None for stdout
    run_dir: Path | None = None  # the .rtrace/ that lists this run (None: not listed)


# --- finding and creating .rtrace/ ----------------------------------------------------------


def _is_own_dir(path: Path) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    # Not a symlink, and ours: a .rtrace/ someone else planted in a shared parent (/tmp) is ignored.
    return stat.S_ISDIR(st.st_mode) and (not hasattr(os, "getuid") or st.st_uid == os.getuid())


def find_run_dir(start: Path | None = None) -> Path | None:
    """The ``.rtrace/`` of ``start`` (default: the current directory) or its nearest parent."""
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if folder != here and _shared(folder):
            return None  # /tmp and the like: a .rtrace/ there belongs to whoever works there, not below
        candidate = folder / RUN_DIR
        if _is_own_dir(candidate):
            return candidate
    return None


def _shared(folder: Path) -> bool:
    try:
        return bool(os.stat(folder).st_mode & stat.S_IWOTH)
    except OSError:
        return True


def _make_run_dir(start: Path | None = None) -> Path:
    run_dir = find_run_dir(start) or (start or Path.cwd()).absolute() / RUN_DIR
    try:
        os.mkdir(run_dir, 0o700)
    except FileExistsError:
        if os.path.islink(run_dir):
            raise OutputError(f"refusing to use {run_dir}: it is a symbolic link") from None
        if not _is_own_dir(run_dir):
            raise OutputError(f"cannot use {run_dir}: it is not a directory of this user") from None
    except OSError as e:
        raise OutputError(f"cannot create {run_dir}/: {e.strerror or e}") from None
    _make_private(run_dir)
    if os.path.islink(run_dir / ".gitignore"):  # O_EXCL would not follow it; say why nothing is written
        raise OutputError(f"refusing to use {run_dir}: {run_dir}/.gitignore is a symbolic link")
    try:
        fd = _create(run_dir / ".gitignore", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.write(fd, b"# written by rtrace: traces stay out of version control\n*\n")
        os.close(fd)
    except (OSError, OutputError):
        pass  # another run made it first, or it cannot be written: the logs still can
    return run_dir


def _make_private(run_dir: Path) -> None:
    """``.rtrace/`` exactly 0700, whatever the umask (and one an older rtrace left 0755)."""
    try:
        fd = os.open(run_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _O_NOFOLLOW | _O_CLOEXEC)
    except OSError as e:
        raise OutputError(f"cannot use {run_dir}/: {e.strerror or e}") from None
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != 0o700:
            os.fchmod(fd, 0o700)  # traces hold queries, documents and errors: this user's only
    except OSError:
        pass
    finally:
        os.close(fd)


def _create(path: Path, flags: int) -> int:
    """Open a file rtrace owns: private, and never through a symlink."""
    try:
        return os.open(path, flags | _O_NOFOLLOW | _O_CLOEXEC, 0o600)
    except OSError as e:
        if e.errno is not None and os.path.islink(path):
            raise OutputError(f"cannot write {path}: it is a symbolic link") from None
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


# --- where `rtrace run` writes ---------------------------------------------------------------


def script_label(target_kind: str, target: str) -> str:
    """A short, file-name-safe name for what ran: a script's stem, a module's name, or ``c``."""
    if target_kind == "script":
        base = Path(target).stem
    elif target_kind == "module":
        base = target
    else:
        base = "c"
    label = re.sub(r"[^A-Za-z0-9_.]+", "_", base).strip("._")[:40]
    return label or "run"


def log_name(label: str, session_id: str) -> str:
    """``20261206T001500-hybrid-1a2b3c.jsonl``: sorts by time, says what ran."""
    return f"{file_stamp()}-{label}-{session_id.replace('-', '')[-6:]}.jsonl"


def open_output(option: str | None, session_id: str, label: str = "run") -> Output:
    """Open the log ``rtrace run -o OPTION`` writes to (a new file under .rtrace/ by default)."""
    if option == "-":
        for fd, name in ((1, "output"), (2, "error")):  # started with `>&-` or `2>&-`
            if _closed(fd):
                raise OutputError(f"-o -: standard {name} is closed (-o - writes the log to stdout and "
                                  "the script's output to stderr)")
        return Output(os.dup(1), "<stdout>", "rtrace run -o - … | rtrace show -", to_stdout=True)
    if option is not None:
        path = Path(option)
        if path.is_dir():
            raise OutputError(f"cannot write {path}: it is a directory")
        try:
            fd = open_log(str(path))  # 0600 if new; a link is followed only to a device or a pipe
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
        # Listed in the nearest .rtrace/ if there is one; a -o run never creates one.
        return Output(fd, str(path), f"rtrace show {_quote(str(path))}", path=str(path), run_dir=find_run_dir())
    run_dir = _make_run_dir()
    path = run_dir / log_name(label, session_id)
    fd = _create(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND)
    return Output(fd, display_path(path), "rtrace show", path=str(path), run_dir=run_dir)


def _closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def display_path(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


@contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    """Serialise index writes between concurrent ``rtrace`` processes."""
    try:
        import fcntl
    except ImportError:  # no flock: appends are still single writes
        yield
        return
    fd = _create(run_dir / _LOCK, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _index_entry_path(out_path: str, run_dir: Path) -> str:
    absolute = Path(out_path).absolute()
    return absolute.name if absolute.parent == run_dir else str(absolute)


def record_start(out: Output, session_id: str, script: str, argv: list[str]) -> None:
    """Index a run that starts now and point ``latest`` at it (never raises: listing is a convenience)."""
    if out.run_dir is None or out.path is None:
        return
    entry = {"event": "start", "session_id": session_id, "ts": utc_now_iso(),
             "path": _index_entry_path(out.path, out.run_dir), "script": script, "argv": argv}
    try:
        _append_index(out.run_dir, entry)
        # A fresh temporary (O_EXCL, a random part): never an existing file or a planted link.
        tmp = out.run_dir / f".{LATEST}.{os.getpid()}.{os.urandom(4).hex()}"
        fd = _create(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            os.write(fd, (entry["path"] + "\n").encode())
        finally:
            os.close(fd)
        os.replace(tmp, out.run_dir / LATEST)
    except (OSError, OutputError):
        pass


def record_end(out: Output, session_id: str, counts: dict[str, Any]) -> None:
    """Add a finished run's counts to the index."""
    if out.run_dir is None or out.path is None:
        return
    try:
        _append_index(out.run_dir, {"event": "end", "session_id": session_id, "ts": utc_now_iso(), **counts})
    except (OSError, OutputError):
        pass


def _append_index(run_dir: Path, entry: dict[str, Any]) -> None:
    line = orjson.dumps(entry, default=str) + b"\n"
    with _locked(run_dir):
        fd = _create(run_dir / INDEX, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, line)  # one write(2) on O_APPEND: concurrent runs never tear lines
        finally:
            os.close(fd)


# --- listing runs ----------------------------------------------------------------------------


@dataclass
class LoggedRun:
    """One recorded run, as ``rtrace ls`` lists it."""

    path: Path
    session_id: str | None = None
    started: str | None = None  # ISO UTC, as in logs
    script: str | None = None
    argv: list[str] = field(default_factory=list)
    ended: bool = False
    runs: int | None = None
    errors: int | None = None
    duration_ms: float | None = None
    exit_code: int | None = None
    in_run_dir: bool = True
    died: bool = False  # never ended, and no writer is left (killed with -9, or its machine went down)

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "session_id": self.session_id, "started": self.started,
                "script": self.script, "argv": self.argv, "ended": self.ended, "runs": self.runs,
                "errors": self.errors, "duration_ms": self.duration_ms, "exit_code": self.exit_code,
                "died": self.died}


def _read_index(run_dir: Path) -> list[dict[str, Any]]:
    try:
        raw = (run_dir / INDEX).read_bytes()
    except OSError:
        return []
    entries = []
    for line in raw.splitlines():
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a torn or foreign line: the rest of the index still counts
        if isinstance(item, dict) and isinstance(item.get("session_id"), str):
            entries.append(item)
    return entries


def log_ends(path: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The first line (session_start) and the last complete line of a log, reading only its ends."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD_TAIL)
            size = os.fstat(f.fileno()).st_size
            if size > _HEAD_TAIL:
                f.seek(size - _HEAD_TAIL)
                tail = f.read(_HEAD_TAIL)
            else:
                tail = head
    except OSError:
        return None, None

    def parse(line: bytes) -> dict[str, Any] | None:
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        return item if isinstance(item, dict) else None

    first = parse(head.split(b"\n", 1)[0]) if b"\n" in head else None
    lines = tail.rstrip(b"\n").rsplit(b"\n", 1)
    last = parse(lines[-1]) if tail.endswith(b"\n") else None
    return first, last


def _apply_end(run: LoggedRun, end: dict[str, Any]) -> None:
    run.ended = True
    for key in ("runs", "errors", "duration_ms", "exit_code"):
        value = end.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            setattr(run, key, value)


def list_runs(run_dir: Path | None = None) -> list[LoggedRun]:
    """Every run recorded in ``run_dir`` (default: the nearest ``.rtrace/``), newest first.

    Reads the index and, for a log not in it (or whose run never said it ended), the first
    and last line of the log: never a whole log.
    """
    run_dir = run_dir if run_dir is not None else find_run_dir()
    if run_dir is None:
        return []
    found: dict[Path, LoggedRun] = {}
    by_session: dict[str, LoggedRun] = {}
    for entry in _read_index(run_dir):
        if entry.get("event") == "start" and isinstance(entry.get("path"), str):
            path = run_dir / entry["path"]  # an absolute -o path stays absolute
            argv = entry.get("argv")
            run = LoggedRun(path=path, session_id=entry["session_id"], started=entry.get("ts"),
                            script=entry.get("script"), argv=argv if isinstance(argv, list) else [],
                            in_run_dir=path.parent == run_dir)
            found[path] = run
            by_session[entry["session_id"]] = run
        elif entry.get("event") == "end" and entry["session_id"] in by_session:
            _apply_end(by_session[entry["session_id"]], entry)
    for path in run_dir.glob("*.jsonl"):
        if path.name != INDEX and path not in found:
            found[path] = LoggedRun(path=path)
    runs = []
    for path, run in found.items():
        if not path.is_file():
            continue  # deleted or moved since: nothing to show
        if run.session_id is None or not run.ended:
            first, last = log_ends(path)
            if run.session_id is None and first is not None and first.get("event") == events.SESSION_START:
                run.session_id = first.get("session_id")
                run.started = first.get("ts") if isinstance(first.get("ts"), str) else None
                argv = first.get("argv")
                run.argv = [str(a) for a in argv] if isinstance(argv, list) else []
                run.script = Path(run.argv[0]).name if run.argv else None
            if last is not None and last.get("event") == events.SESSION_END and last.get("session_id") == run.session_id:
                _apply_end(run, last)
            if not run.ended:
                run.died = not alive(str(path), [(first.get("pid"), first.get("ts")) if first else (None, None)])
        if run.started is None:
            from rtrace.core.times import iso_from_seconds

            run.started = iso_from_seconds(path.stat().st_mtime)
        runs.append(run)
    runs.sort(key=lambda r: (r.started or "", str(r.path)), reverse=True)
    return runs


# --- @ references ----------------------------------------------------------------------------


def resolve_log(arg: str | None) -> str:
    """A LOG argument as a path: ``@`` is the latest run, ``@1`` the one before it, ...; a path stays."""
    ref = _REF.match(arg if arg is not None else "@")
    if ref is None:
        return arg  # type: ignore[return-value]
    back = int(ref.group(1) or 0)
    run_dir = find_run_dir()
    if run_dir is None:
        raise LogError(f"no runs recorded here yet (no {RUN_DIR}/ in {Path.cwd()} or its parents): "
                       "try `rtrace run script.py`")
    runs = list_runs(run_dir)
    if not runs:
        raise LogError(f"no runs recorded in {display_path(run_dir)}/ yet: try `rtrace run script.py`")
    if back >= len(runs):
        have = f"only {len(runs)} run{'s' if len(runs) != 1 else ''}"
        raise LogError(f"{arg}: {have} recorded in {display_path(run_dir)}/ (`rtrace ls` lists them)")
    return display_path(runs[back].path)


# --- pruning ---------------------------------------------------------------------------------


@dataclass
class Pruned:
    """What ``prune`` did: logs deleted, ``-o`` runs unlisted, and old logs left because a writer holds them."""

    deleted: list[Path] = field(default_factory=list)
    unlisted: int = 0
    live: list[Path] = field(default_factory=list)


def prune(keep: int, run_dir: Path | None = None) -> Pruned:
    """Delete the logs in ``.rtrace/`` older than the ``keep`` newest runs.

    Runs written elsewhere (``-o PATH``) are the user's files: they leave the list, never the disk.
    A log still being written (``sink.being_written``: its writer, or a child of it, is alive)
    stays, and stays listed, however old: deleting it would send the rest of the run to a file
    no one can open. So does an unfinished run whose process is alive (``writers.alive``): a
    program that closed every descriptor it inherited holds no lock until rtrace writes again.
    """
    run_dir = run_dir if run_dir is not None else find_run_dir()
    done = Pruned()
    if run_dir is None:
        return done
    with _locked(run_dir):
        runs = list_runs(run_dir)
        gone = set()
        for run in runs[keep:]:
            if not run.ended and not run.died:  # its process is alive (list_runs asked): still written
                done.live.append(run.path)
                continue
            if run.in_run_dir and run.path.parent == run_dir:
                try:
                    removed = unlink_unless_written(str(run.path))
                except OSError:
                    continue
                if not removed:
                    done.live.append(run.path)
                    continue
                done.deleted.append(run.path)
            elif being_written(str(run.path)):
                done.live.append(run.path)
                continue
            else:
                done.unlisted += 1
            if run.session_id is not None:
                gone.add(run.session_id)
        kept = [e for e in _read_index(run_dir) if e["session_id"] not in gone]
        tmp = run_dir / f".{INDEX}.{os.getpid()}"
        fd = _create(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            os.write(fd, b"".join(orjson.dumps(e) + b"\n" for e in kept))
        finally:
            os.close(fd)
        os.replace(tmp, run_dir / INDEX)
    return done


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)
