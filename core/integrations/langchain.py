"""Tracing unmodified LangChain code: one handler injected into every LangChain run.

``install(handler)`` registers a LangChain configure hook (``register_configure_hook``)
whose context variable holds ``handler`` as its default, so every
``CallbackManager.configure`` in every thread and task adds that one instance,
inheritably. When ``langchain_core`` is not imported yet, the hook is registered
the moment it is, so scripts that never use LangChain never pay for importing it.
A script that also passes the same handler in ``callbacks=[...]`` is not recorded
twice: LangChain adds a hook's handler only when that instance is not present.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable
from contextvars import ContextVar
from types import ModuleType
from typing import Any

HOOK_MODULE = "langchain_core.tracers.context"

_installed: list[tuple[Any, ContextVar[Any]]] = []
_pending: list[Any] = []


def install(handler: Any) -> None:
    """Send every LangChain run in this process to ``handler`` (now, or once LangChain loads)."""
    if HOOK_MODULE in sys.modules:
        _register(handler)
        return
    _pending.append(handler)
    if not any(isinstance(f, _PostImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PostImportFinder(HOOK_MODULE, _register_pending))


def uninstall(handler: Any) -> None:
    """Stop sending LangChain runs to ``handler``."""
    if handler in _pending:
        _pending.remove(handler)
    for item in [i for i in _installed if i[0] is handler]:
        _installed.remove(item)
        hooks = getattr(sys.modules.get(HOOK_MODULE), "_configure_hooks", None)
        if hooks is not None:
            hooks[:] = [h for h in hooks if h[0] is not item[1]]


def installed_handlers() -> list[Any]:
    """The handlers LangChain runs are currently sent to."""
    return [h for h, _ in _installed] + list(_pending)


def _register(handler: Any) -> None:
    from langchain_core.tracers.context import register_configure_hook

    # The default (not .set()) makes the handler visible in every thread and task.
    var: ContextVar[Any] = ContextVar(f"rtrace_langchain_{id(handler)}", default=handler)
    register_configure_hook(var, inheritable=True)
    _installed.append((handler, var))


def _register_pending(_module: ModuleType) -> None:
    while _pending:
        _register(_pending.pop(0))


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Runs ``callback(module)`` right after ``name`` is first imported."""

    def __init__(self, name: str, callback: Callable[[ModuleType], None]) -> None:
        self.name = name
        self.callback = callback

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once only; and let the other finders find it
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return spec
        callback = self.callback

        def exec_and_notify(module: ModuleType) -> None:
            exec_module(module)
            try:
                callback(module)
            except Exception as e:  # tracing must never break the import
                from rtrace.core.errors import warn

                warn(f"LangChain tracing is off: {e!r}")

        loader.exec_module = exec_and_notify  # type: ignore[union-attr, method-assign]
        return spec
