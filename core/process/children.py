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

from rtrace.core.record import lineage

ENV_LANGCHAIN = "RTRACE_LANGCHAIN"
# One variable per framework hook: "0" turns it off in children, like --no-<framework> in the parent.
ENV_FRAMEWORKS = {"langchain": ENV_LANGCHAIN, "llamaindex": "RTRACE_LLAMAINDEX", "haystack": "RTRACE_HAYSTACK"}
ENV_REDACT = "RTRACE_REDACT"
ENV_MAX_CONTENT = "RTRACE_MAX_CONTENT"

_lock = threading.Lock()
_patched = False

def patch_process_starts() -> None:
    """Pass the current run to children started with subprocess or multiprocessing. Idempotent."""
    global _patched
    with _lock:
        if _patched:
            return
        _patched = True
    import subprocess

    original_init = subprocess.Popen.__init__

    @functools.wraps(original_init)
    def popen_init(self: Any, *args: Any, **kwargs: Any) -> None:
        value = lineage.for_children()
        if value is not None:
            env = kwargs.get("env")
            kwargs["env"] = {**(os.environ if env is None else env), lineage.ENV_PARENT: value}
        original_init(self, *args, **kwargs)

    subprocess.Popen.__init__ = popen_init  # type: ignore[method-assign]
    _patch_multiprocessing()


def _patch_multiprocessing() -> None:
    # multiprocessing's spawn children inherit os.environ (not an env argument), so
    # the parent run is put there for the duration of start().
    try:
        from multiprocessing import process
    except ImportError:
        return
    original_start = process.BaseProcess.start

    @functools.wraps(original_start)
    def start(self: Any) -> None:
        value = lineage.for_children()
        if value is None:
            return original_start(self)
        with _lock:
            previous = os.environ.get(lineage.ENV_PARENT)
            os.environ[lineage.ENV_PARENT] = value
            try:
                return original_start(self)
            finally:
                if previous is None:
                    os.environ.pop(lineage.ENV_PARENT, None)
                else:
                    os.environ[lineage.ENV_PARENT] = previous

    process.BaseProcess.start = start  # type: ignore[method-assign]


def close_on_os_exit(handler: Any) -> None:
    """multiprocessing children leave through os._exit, skipping atexit: close the log there."""
    original = os._exit

    def _exit(code: int) -> None:
        try:
            handler.close(exit_code=code)
        finally:
            original(code)

    os._exit = _exit  # type: ignore[assignment]


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
    )
    context.install_env_handler(handler)
    handler.close_at_exit()
    close_on_os_exit(handler)
    patch_process_starts()
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
except Exception as _e:  # tracing must never stop the program
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


def write_sitecustomize(directory: str) -> None:
    with open(os.path.join(directory, "sitecustomize.py"), "w", encoding="utf-8") as f:
        f.write(SITECUSTOMIZE)
    sys.path_importer_cache.pop(directory, None)
