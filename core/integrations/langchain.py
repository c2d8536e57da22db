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

import sys
from contextvars import ContextVar
from types import ModuleType
from typing import Any

from rtrace.core.integrations import _hooks

HOOK_MODULE = "langchain_core.tracers.context"

_installed: list[tuple[Any, ContextVar[Any]]] = []
_pending: list[Any] = []


def install(handler: Any) -> None:
    """Send every LangChain run in this process to ``handler`` (now, or once LangChain loads)."""
    if HOOK_MODULE in sys.modules:
        _register(handler)
        return
    _pending.append(handler)
    if not _hooks.is_pending(HOOK_MODULE, _register_pending):
        _hooks.when_imported(HOOK_MODULE, _register_pending, "LangChain")


def uninstall(handler: Any) -> None:
    """Stop sending LangChain runs to ``handler``."""
    if handler in _pending:
        _pending.remove(handler)
        if not _pending:
            _hooks.cancel(HOOK_MODULE, _register_pending)
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
