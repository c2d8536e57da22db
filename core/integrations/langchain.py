"""Tracing unmodified LangChain code: one handler injected into every LangChain run.

``install(handler)`` registers a LangChain configure hook (``register_configure_hook``)
whose context variable holds ``handler`` as its default, so every
``CallbackManager.configure`` in every thread and task adds that one instance,
inheritably. When ``langchain_core`` is not imported yet, the hook is registered
the moment it is, so scripts that never use LangChain never pay for importing it.
A script that also passes the same handler in ``callbacks=[...]`` is not recorded
twice: LangChain adds a hook's handler only when that instance is not present.

LangChain sees the handler through a ``LangChainHook``: LangChain's
``AsyncCallbackManager.on_llm_start`` skips every handler that is not ``run_inline``
when any handler is (a LangChain bug), so an inline rtrace handler would silence
the user's own async handlers and ``astream_events``' ``on_llm_start``. The hook is
inline everywhere but in that one partition, where it counts as inline only when
another handler already is: LangChain then dispatches exactly as without rtrace.
"""

from __future__ import annotations

import inspect
import sys
from operator import attrgetter
from contextvars import ContextVar
from types import CodeType, ModuleType
from typing import Any

from rtrace.core.integrations import _hooks
from rtrace.core.record.handlers import BaseCallbackHandler

HOOK_MODULE = "langchain_core.tracers.context"

_installed: list[tuple[Any, ContextVar[Any]]] = []
_pending: list[Any] = []


def install(handler: Any) -> None:
    """Send every LangChain run in this process to ``handler`` (now, or once LangChain loads).

    Vector store scores, requests and stages are captured too (``langchain_stores``)."""
    from rtrace.core.integrations import langchain_stores

    langchain_stores.install()
    hook = LangChainHook(handler)
    if HOOK_MODULE in sys.modules:
        _register(hook)
        return
    _pending.append(hook)
    if not _hooks.is_pending(HOOK_MODULE, _register_pending):
        _hooks.when_imported(HOOK_MODULE, _register_pending, "LangChain")


def uninstall(handler: Any) -> None:
    """Stop sending LangChain runs to ``handler``."""
    for hook in [h for h in _pending if h.rtrace_handler is handler]:
        _pending.remove(hook)
        if not _pending:
            _hooks.cancel(HOOK_MODULE, _register_pending)
    for item in [i for i in _installed if i[0].rtrace_handler is handler]:
        _installed.remove(item)
        hooks = getattr(sys.modules.get(HOOK_MODULE), "_configure_hooks", None)
        if hooks is not None:
            hooks[:] = [h for h in hooks if h[0] is not item[1]]
    if not _installed and not _pending:
        from rtrace.core.integrations import langchain_stores

        langchain_stores.uninstall()


def installed_handlers() -> list[Any]:
    """What LangChain runs are currently sent to (pass these in ``callbacks=`` to avoid doubles)."""
    return [h for h, _ in _installed] + list(_pending)


# Code of LangChain's AsyncCallbackManager.on_llm_start, whose inline/non-inline split is buggy.
_llm_start_codes: set[CodeType] = set()
_looked_up: list[bool] = []


def _find_llm_start_code() -> None:
    _looked_up.append(True)
    try:
        from langchain_core.callbacks.manager import AsyncCallbackManager

        _llm_start_codes.add(inspect.unwrap(AsyncCallbackManager.on_llm_start).__code__)
    except Exception:  # another LangChain layout: the hook is then simply inline
        pass


class LangChainHook(BaseCallbackHandler):
    """What LangChain is given for an rtrace handler: its hooks, and a ``run_inline`` that
    keeps LangChain's dispatch as it is without rtrace (see the module docstring).

    ``callbacks=[LangChainHook(JsonlHandler("runs.jsonl"))]`` does the same for a handler
    passed to LangChain by hand.
    """

    rtrace_wrapper = True  # rtrace's managers use ``rtrace_handler`` itself (managers._unwrapped)

    def __init__(self, handler: Any) -> None:
        self.rtrace_handler = handler
        # The handler's own bound hooks, so a call costs no extra layer.
        for name in dir(BaseCallbackHandler):
            if name.startswith("on_") and hasattr(handler, name):
                setattr(self, name, getattr(handler, name))

    @property
    def run_inline(self) -> bool:  # type: ignore[override]
        if not self.rtrace_handler.run_inline:
            return False
        if not _looked_up:  # first read: LangChain is loaded now (it is asking)
            _find_llm_start_code()
        frame: Any = sys._getframe(1)
        if frame.f_code.co_name == "<listcomp>":  # Python 3.11; 3.12+ inlines comprehensions
            frame = frame.f_back
        if frame is None or frame.f_code not in _llm_start_codes:
            return True
        manager = frame.f_locals.get("self")
        others = getattr(manager, "handlers", None) or ()
        return any(h is not self and not getattr(type(h), "rtrace_wrapper", False)
                   and getattr(h, "run_inline", False) for h in others)

    @property
    def raise_error(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.rtrace_handler, "raise_error", False))

    # The handler's own flags, read on every event: attrgetter runs in C (no Python frame).
    ignore_llm = property(attrgetter("rtrace_handler.ignore_llm"))
    ignore_retry = property(attrgetter("rtrace_handler.ignore_retry"))
    ignore_chain = property(attrgetter("rtrace_handler.ignore_chain"))
    ignore_agent = property(attrgetter("rtrace_handler.ignore_agent"))
    ignore_retriever = property(attrgetter("rtrace_handler.ignore_retriever"))
    ignore_chat_model = property(attrgetter("rtrace_handler.ignore_chat_model"))
    ignore_custom_event = property(attrgetter("rtrace_handler.ignore_custom_event"))

    def __getattr__(self, name: str) -> Any:
        # A hook a newer LangChain calls that rtrace does not know: a no-op (and its ignore_
        # flag False), never an "Error in callback" warning in the user's stderr per event.
        if name.startswith("on_"):
            return _noop
        if name.startswith("ignore_"):
            return False
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"LangChainHook({self.rtrace_handler!r})"


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


class _StandsFor(type):
    """``isinstance(h, cls)`` is True for one hook and the handler it stands for, nothing else."""

    hook: LangChainHook

    def __instancecheck__(cls, instance: Any) -> bool:
        return instance is cls.hook or instance is cls.hook.rtrace_handler


def _register(hook: LangChainHook) -> None:
    from langchain_core.tracers.context import register_configure_hook

    # The default (not .set()) makes the hook visible in every thread and task. LangChain adds
    # it unless a handler in the run is an instance of the class given: with this one, neither
    # the hook nor its handler (passed in callbacks=, or in an rtrace run manager handed to
    # LangChain) gets a second copy of every event.
    var: ContextVar[Any] = ContextVar(f"rtrace_langchain_{id(hook)}", default=hook)
    stands_for = _StandsFor("RtraceHandler", (), {"hook": hook})
    register_configure_hook(var, inheritable=True, handle_class=stands_for)  # type: ignore[arg-type]
    _installed.append((hook, var))


def _register_pending(_module: ModuleType) -> None:
    while _pending:
        _register(_pending.pop(0))
