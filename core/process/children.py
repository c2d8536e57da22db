"""Following child processes: subprocesses and multiprocessing workers (spawn and fork).

The parent passes, in the child's environment, where to write (``RTRACE_OUTPUT``)
and which run started the child (``RTRACE_PARENT_RUN``: "run_id trace_id").
``rtrace run`` puts a ``sitecustomize`` on the children's ``PYTHONPATH`` that calls
``autotrace()``, so every Python child traces itself into the same log, its root
runs linked under the run that started it. Forked children inherit all of this
in memory. A child started with ``python -I``, ``-S`` or ``-E`` is not followed.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from typing import Any

from rtrace.core.process.patching import Patch, SharedPatches
from rtrace.core.record import lineage

ENV_LANGCHAIN = "RTRACE_LANGCHAIN"
# One variable per framework hook: "0" turns it off in children, like --no-<framework> in the parent.
ENV_FRAMEWORKS = {"langchain": ENV_LANGCHAIN, "llamaindex": "RTRACE_LLAMAINDEX", "haystack": "RTRACE_HAYSTACK"}
ENV_REDACT = "RTRACE_REDACT"
ENV_MAX_CONTENT = "RTRACE_MAX_CONTENT"
ENV_REDACT_CONTENT = "RTRACE_REDACT_CONTENT"

ENV_VERBOSE = "RTRACE_VERBOSE"  # "1": rtrace's warnings about untraced children go to stderr

_lock = threading.Lock()  # os.environ while a multiprocessing child starts


def _env_index() -> int:
    # Popen's env may come positionally: find its place in the signature once.
    import inspect
    import subprocess

    try:
        return list(inspect.signature(subprocess.Popen.__init__).parameters).index("env") - 1
    except (ValueError, TypeError):
        return -1


def _popen_init(self: Any, *args: Any, **kwargs: Any) -> None:
    value = lineage.for_children() if _SHARED.users else None
    if value is not None:
        if "env" in kwargs or len(args) <= _ENV_INDEX or _ENV_INDEX < 0:
            env = kwargs.get("env")
            kwargs["env"] = {**(os.environ if env is None else env), lineage.ENV_PARENT: value}
        else:
            env = args[_ENV_INDEX]
            args = (*args[:_ENV_INDEX], {**(os.environ if env is None else env), lineage.ENV_PARENT: value},
                    *args[_ENV_INDEX + 1:])
    _POPEN.original(self, *args, **kwargs)


def _process_start(self: Any) -> None:
    # multiprocessing's spawn children inherit os.environ (not an env argument), so
    # the parent run is put there for the duration of start().
    value = lineage.for_children() if _SHARED.users else None
    if value is None:
        return _START.original(self)
    with _lock:
        previous = os.environ.get(lineage.ENV_PARENT)
        os.environ[lineage.ENV_PARENT] = value
        try:
            return _START.original(self)
        finally:
            if previous is None:
                os.environ.pop(lineage.ENV_PARENT, None)
            else:
                os.environ[lineage.ENV_PARENT] = previous


def _patches() -> tuple[Patch, ...]:
    global _POPEN, _START, _ENV_INDEX
    if not _PATCHES:
        import subprocess
        from multiprocessing import process

        _ENV_INDEX = _env_index()
        _POPEN = Patch(subprocess.Popen, "__init__", functools.wraps(subprocess.Popen.__init__)(_popen_init))
        _START = Patch(process.BaseProcess, "start", functools.wraps(process.BaseProcess.start)(_process_start))
        _PATCHES.extend((_POPEN, _START))
    return tuple(_PATCHES)


_PATCHES: list[Patch] = []
_POPEN: Patch
_START: Patch
_ENV_INDEX = -1


_SHARED = SharedPatches(_patches)


def install_process_starts() -> None:
    """Pass the current run to children started with subprocess or multiprocessing (counted)."""
    _SHARED.acquire()


def uninstall_process_starts() -> None:
    """One user fewer; with none left, subprocess and multiprocessing are their own again."""
    _SHARED.release()


def close_on_os_exit(handler: Any) -> Patch:
    """multiprocessing children leave through os._exit, skipping atexit: close the log there."""

    def _exit(code: int) -> None:
        try:
            handler.close(exit_code=code)
        finally:
            patch.original(code)

    patch = Patch(os, "_exit", _exit)
    patch.install()
    return patch


def autotrace() -> None:
    """Trace this process into ``RTRACE_OUTPUT`` (called at start-up in children of ``rtrace run``)."""
    path = os.environ.get("RTRACE_OUTPUT")
    if not path:
        return
    lineage.ORIGIN = lineage.origin_from_env()
    from rtrace.core.record import context
    from rtrace.core.record.jsonl import JsonlHandler

    redact = os.environ.get(ENV_REDACT)
    max_content = os.environ.get(ENV_MAX_CONTENT)
    handler = JsonlHandler(
        path,
        redact=[k for k in redact.split(",") if k] if redact is not None else None,
        max_content=int(max_content) if max_content and max_content.isdigit() else None,
        redact_content=os.environ.get(ENV_REDACT_CONTENT) == "1",
    )
    context.install_env_handler(handler)
    handler.close_at_exit()
    close_on_os_exit(handler)
    install_process_starts()
    from rtrace.core.integrations.frameworks import NAMES, hook

    for name in NAMES:
        if os.environ.get(ENV_FRAMEWORKS[name], "1") != "0":
            hook(name).install(handler)


SITECUSTOMIZE = '''\
# Written by `rtrace run`: trace this Python process too, then run any other sitecustomize.
import os as _os
import sys as _sys

try:
    from rtrace.core.process.children import autotrace as _autotrace

    _autotrace()
except Exception as _e:  # tracing must never stop the program, nor write into its stderr
    if _os.environ.get("RTRACE_VERBOSE") == "1" and _sys.stderr is not None:  # never on its stdout
        print(f"rtrace: warning: this child process is not traced: {_e!r}", file=_sys.stderr)

_here = _os.path.dirname(_os.path.abspath(__file__))
for _entry in _sys.path:
    _candidate = _os.path.join(_entry or _os.getcwd(), "sitecustomize.py")
    if _os.path.abspath(_entry or _os.getcwd()) != _here and _os.path.isfile(_candidate):
        import importlib.util as _util

        _spec = _util.spec_from_file_location("_rtrace_chained_sitecustomize", _candidate)
        if _spec is not None and _spec.loader is not None:
            _spec.loader.exec_module(_util.module_from_spec(_spec))
        break
'''


def child_environment(site_dir: str, output: str, *, frameworks: dict[str, bool], redact: list[str],
                      max_content: int | None) -> dict[str, str]:
    """Environment variables that make Python children of this process trace themselves."""
    path = os.environ.get("PYTHONPATH")
    env = {
        "PYTHONPATH": site_dir + (os.pathsep + path if path else ""),
        "RTRACE_OUTPUT": output,
        ENV_REDACT: ",".join(redact),
    }
    for name, var in ENV_FRAMEWORKS.items():
        env[var] = "1" if frameworks.get(name, True) else "0"
    if max_content is not None:
        env[ENV_MAX_CONTENT] = str(max_content)
    return env


SITE_PREFIX = "rtrace-site-"
_OWNER = ".owner"  # its creator holds a shared lock on this file for as long as it lives
_YOUNG = 60.0  # seconds: a directory this new may not hold its lock yet
_LOCKLESS_STALE = 86_400.0  # an older rtrace's directory (no lock to ask): left for a day


class SiteDir:
    """The children's bootstrap directory: private (mkdtemp: 0700, ours), removed by its creator.

    Made in a private directory of ours (``_private_base``), so nobody else can re-create the
    name there after we remove it. A creator that never got to remove it (``kill -9``,
    ``os._exit``) leaves it behind; the next one sweeps such directories away (``_sweep``):
    its lock, held on ``.owner`` by the creator (and its forked children, which share the
    descriptor), is free once they are all gone.
    """

    def __init__(self) -> None:
        import tempfile

        from rtrace.core.record.sink import hold, move_high

        self.pid = os.getpid()
        base = _private_base()
        if base is not None:
            _sweep(base)
        # The creator's pid in the name: a program that closes every descriptor drops its lock on
        # .owner, and the sweep then asks whether the process is there.
        self.path = tempfile.mkdtemp(prefix=f"{SITE_PREFIX}{self.pid}-", dir=base)
        nofollow = getattr(os, "O_NOFOLLOW", 0)
        self.owner = -1
        try:  # one descriptor in the traced process, placed with rtrace's others, out of the program's way
            self.owner = move_high(os.open(os.path.join(self.path, _OWNER),
                                           os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | nofollow, 0o600))
        except OSError:
            pass  # no owner file: the directory is removed at exit as before, only never swept
        else:
            hold(self.owner)  # as a log's writers say they are alive (no lock here: never swept either)
        fd = os.open(os.path.join(self.path, "sitecustomize.py"), os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(SITECUSTOMIZE)
        sys.path_importer_cache.pop(self.path, None)

    def remove(self) -> None:
        if os.getpid() != self.pid:  # a forked child: the directory is its parent's
            return
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)
        if self.owner >= 0:
            os.close(self.owner)
            self.owner = -1


def _sweep(base: str) -> None:
    """Remove the bootstrap directories in ``base`` whose creators are gone (never raises)."""
    import fcntl
    import shutil
    import stat
    import time

    from rtrace.core.record.sink import pid_alive

    try:
        names = [n for n in os.listdir(base) if n.startswith(SITE_PREFIX)]
    except OSError:
        return
    now, uid = time.time(), os.getuid()
    for name in names:
        path = os.path.join(base, name)
        try:
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or now - st.st_mtime < _YOUNG:
                continue
            creator = name[len(SITE_PREFIX):].partition("-")[0]
            if creator.isdigit() and pid_alive(int(creator)):  # its lock may be gone, not its process
                continue
            try:
                fd = os.open(os.path.join(path, _OWNER), os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
            except FileNotFoundError:
                if now - st.st_mtime >= _LOCKLESS_STALE:
                    shutil.rmtree(path, ignore_errors=True)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken: its creator or a forked child lives
                shutil.rmtree(path, ignore_errors=True)
            except OSError:
                pass
            finally:
                os.close(fd)
        except OSError:
            continue


def _private_base() -> str | None:
    """A directory only we can create names in: ``$XDG_RUNTIME_DIR`` when it is private and
    ours, else ``<tmp>/rtrace-<uid>`` (made 0700 and kept, as tmux keeps ``/tmp/tmux-<uid>``).
    A bootstrap directory removed from it cannot be re-created by another user while an
    orphaned child still points at it. None (the bare temporary directory) only when neither
    can be had, e.g. someone else made ``rtrace-<uid>`` first."""
    import tempfile

    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isabs(base) and _private_dir(base):
        return base
    mine = os.path.join(tempfile.gettempdir(), f"rtrace-{os.getuid()}")
    try:
        os.mkdir(mine, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    return mine if _private_dir(mine) else None


def _private_dir(path: str) -> bool:
    """A real directory (not a link), owned by us, that nobody else may write or list."""
    import stat

    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077
