"""Running a script, module or code string exactly as ``python`` would (the pyinstrument way).

``runpy`` with ``__name__ == "__main__"``; ``sys.argv`` swapped and restored;
``sys.path[0]`` set as python sets it (the script's directory, the current
directory for ``-m``, ``""`` for ``-c``). Exceptions, ``SystemExit`` and
``KeyboardInterrupt`` propagate to the caller, who records them and exits.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import io
import os
import runpy
import sys
import traceback
import types
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from rtrace.core.errors import UsageError
from rtrace.core.process import recursion


@dataclass(frozen=True)
class Target:
    """What to run: ``kind`` is "script", "module" or "code"."""

    kind: str
    value: str
    args: list[str] = field(default_factory=list)

    @property
    def argv(self) -> list[str]:
        """``sys.argv`` as python would set it (module: resolved by runpy at run time)."""
        first = {"script": self.value, "module": self.value, "code": "-c"}[self.kind]
        return [first, *self.args]

    @property
    def display(self) -> str:
        return {"script": self.value, "module": f"-m {self.value}", "code": "-c …"}[self.kind]


def check(target: Target) -> None:
    """Fail early, with one line, for a target python could not run either."""
    if target.kind == "script":
        if not os.path.exists(target.value):
            raise UsageError(f"cannot run {target.value}: no such file")
        if os.path.isdir(target.value) and not os.path.exists(os.path.join(target.value, "__main__.py")):
            raise UsageError(f"cannot run {target.value}: a directory without __main__.py")
    elif target.kind == "module":
        import importlib.util

        sys.path.insert(0, os.getcwd())  # as python -m would search
        try:
            spec = importlib.util.find_spec(target.value)
        except (ImportError, ValueError):
            spec = None
        finally:
            sys.path.pop(0)
        if spec is None:
            raise UsageError(f"cannot run -m {target.value}: no module named {target.value!r}")


def run(target: Target, before_script: Callable[[int], None] | None = None) -> None:
    """Run ``target`` in this process; its exceptions propagate.

    ``before_script(n)`` is called just before the target's first line, with the number
    of frames it will run on beyond those python itself puts below it.
    """
    hook = before_script or _no_hook
    saved_argv = sys.argv[:]
    saved_path0 = sys.path[0] if sys.path else None
    try:
        if target.kind == "script":
            sys.argv[:] = [target.value, *target.args]
            _set_path0(os.path.dirname(os.path.realpath(target.value)))
            if os.path.isfile(target.value) and not zipfile.is_zipfile(target.value):
                _run_script_file(target.value, hook)
            else:  # a directory or zip app with __main__.py
                hook(recursion.depth())
                runpy.run_path(target.value, run_name="__main__")
        elif target.kind == "module":
            sys.argv[:] = [target.value, *target.args]  # runpy replaces [0] with the module's file
            _set_path0(os.getcwd())
            # python -m runs the module under runpy's frames too: as many levels as run_module's.
            hook(recursion.depth())
            runpy.run_module(target.value, run_name="__main__", alter_sys=True)
        else:
            sys.argv[:] = ["-c", *target.args]
            _set_path0("")
            code = compile(target.value, "<string>", "exec")
            main = sys.modules["__main__"]
            namespace = {"__name__": "__main__", "__builtins__": __builtins__, "__file__": None,
                         "__doc__": None, "__loader__": getattr(main, "__loader__", None)}
            hook(recursion.depth())
            exec(code, namespace)
    finally:
        sys.argv[:] = saved_argv
        if saved_path0 is not None:
            _set_path0(saved_path0)


def _no_hook(frames: int) -> None:
    return None


def _run_script_file(path: str, hook: Callable[[int], None]) -> None:
    # Like python (and coverage.py): a fresh __main__ module, an absolute __file__,
    # sys.argv[0] left as typed (runpy.run_path would make it absolute).
    abspath = os.path.abspath(path)
    with io.open_code(abspath) as f:
        source = f.read()
    code = compile(source, abspath, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    # The keys in python's order (a script listing globals() sees the same list).
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", abspath)
    main.__spec__ = None
    main.__annotations__ = {}
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    main.__file__ = abspath
    main.__cached__ = None  # type: ignore[attr-defined]
    saved = sys.modules["__main__"]
    sys.modules["__main__"] = main
    try:
        hook(recursion.depth())
        exec(code, main.__dict__)
    finally:
        sys.modules["__main__"] = saved


def _set_path0(value: str) -> None:
    if sys.path:
        sys.path[0] = value
    else:
        sys.path.append(value)


def user_traceback(error: BaseException) -> str:
    """The traceback python would print: rtrace's and runpy's own frames removed."""
    return "".join(traceback.format_exception(type(error), error, user_frames(error)))


def user_frames(error: BaseException) -> TracebackType | None:
    """``error``'s traceback from the first frame of the user's code on."""
    tb: TracebackType | None = error.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        # rtrace's own frames (the CLI's and this module's), by module name: they live in two folders.
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("rtrace.") or filename == runpy.__file__ or "importlib._bootstrap" in filename or filename.startswith("<frozen runpy"):
            tb = tb.tb_next
            continue
        break
    return tb
