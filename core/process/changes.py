"""Every process-wide change ``rtrace run`` makes, in one place, each install beside its undo.

``RunChanges.install()`` makes them in order and records each undo; ``uninstall()``
undoes them in reverse, only in the process that made them (a forked child leaves
its parent's directory and environment alone). What ``trace_to`` changes is a subset
(the thread propagation, through ``context.add_default_handler``).

The changes, and where each install/uninstall pair lives:
- the default handler and, with it, run propagation into threads (``threads``)
- the children's bootstrap: a private sitecustomize directory (``children.SiteDir``),
  the environment variables that point Python children at it, and the patches that
  pass the current run to subprocess and multiprocessing children (``children``)
- the framework hooks (LangChain's configure hook, the post-import finder)
- SIGTERM: close the log, then die of it as python would (``signals``)
- ``sys.excepthook``: python's own while the script runs (the CLI framework replaces it)
- recursion headroom: the frames below the script cost it nothing (``recursion``)
- the at-fork hook (``forks``): registered once, inert with nothing installed
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.thread import _WorkItem
from typing import Any

from rtrace.core.process import children, recursion, signals
from rtrace.core.process.excepthook import python_excepthook


def patch_points() -> dict[str, Any]:
    """The object now at every place rtrace may patch (tests compare before and after)."""
    import signal
    import subprocess
    from multiprocessing import process

    return {
        "threading.Thread.start": threading.Thread.start,
        "threading.Thread._bootstrap_inner": threading.Thread._bootstrap_inner,  # type: ignore[attr-defined]
        "ThreadPoolExecutor.submit": ThreadPoolExecutor.submit,
        "_WorkItem.__init__": _WorkItem.__init__,
        "_WorkItem.run": _WorkItem.run,
        "subprocess.Popen.__init__": subprocess.Popen.__init__,
        "multiprocessing BaseProcess.start": process.BaseProcess.start,
        "os._exit": os._exit,
        "sys.getrecursionlimit": sys.getrecursionlimit,
        "sys.setrecursionlimit": sys.setrecursionlimit,
        "sys.recursion limit": sys.getrecursionlimit(),
        "sys.excepthook": sys.excepthook,
        "threading.excepthook": threading.excepthook,
        "signal.signal": signal.signal,
        "signal.getsignal": signal.getsignal,
        "SIGTERM": signal.getsignal(signal.SIGTERM),
        "SIGINT": signal.getsignal(signal.SIGINT),
        "sys.meta_path": list(sys.meta_path),
        "PYTHONPATH": os.environ.get("PYTHONPATH"),
        "RTRACE_OUTPUT": os.environ.get("RTRACE_OUTPUT"),
    }


class RunChanges:
    """The changes for one ``rtrace run``; ``install`` before the script, ``uninstall`` after it."""

    def __init__(self, handler: Any, *, children_log: str | None, frameworks: dict[str, bool],
                 redact: list[str], max_content: int | None, on_term: Callable[[int], None],
                 verbose: bool = False) -> None:
        self.handler = handler
        self.children_log = children_log
        self.frameworks = frameworks
        self.redact = redact
        self.max_content = max_content
        self.on_term = on_term
        self.verbose = verbose
        self.pid = os.getpid()
        self._undo: list[Callable[[], None]] = []
        self.site: children.SiteDir | None = None

    def install(self) -> None:
        from rtrace.core.record import context

        context.install_env_handler(self.handler)
        self._undo.append(lambda: context.remove_default_handler(self.handler))
        if self.children_log is not None:
            self._install_children(self.children_log)
        self._install_frameworks()
        term = signals.SigtermClosesLog(self.on_term)
        term.install()
        self._undo.append(term.uninstall)
        sys.excepthook = python_excepthook()  # Typer installed its own; the script gets python's

    def _install_children(self, log: str) -> None:
        self.site = site = children.SiteDir()
        self._undo.append(site.remove)
        env = children.child_environment(site.path, log, frameworks=self.frameworks, redact=self.redact,
                                         max_content=self.max_content)
        if getattr(self.handler.redact, "content", False):  # --redact-content
            env[children.ENV_REDACT_CONTENT] = "1"
        if self.verbose:
            env[children.ENV_VERBOSE] = "1"
        if getattr(self.handler, "content", "full") != "full":  # --content reaches the children too
            env["RTRACE_CONTENT"] = self.handler.content
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)

        def restore_environment() -> None:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

        self._undo.append(restore_environment)  # before the directory goes: no child is pointed at it
        children.install_process_starts()
        self._undo.append(children.uninstall_process_starts)

    def _install_frameworks(self) -> None:
        from rtrace.core.integrations.frameworks import NAMES, hook

        for name in NAMES:
            if self.frameworks.get(name, True):
                module = hook(name)
                module.install(self.handler)
                self._undo.append(lambda module=module: module.uninstall(self.handler))

    def before_script(self, frames_below: int) -> None:
        """Called by the runner just before the script's first line, ``frames_below`` deep."""
        recursion.install(frames_below)
        self._undo.append(recursion.uninstall)

    def uninstall(self) -> None:
        """Undo everything, in reverse order; in a forked child, nothing (it is the parent's)."""
        if os.getpid() != self.pid:
            return
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except Exception:  # one failing undo must not keep the others from running
                pass
