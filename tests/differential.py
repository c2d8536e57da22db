"""Helpers to drive LangChain's managers and rtrace's with the same calls and compare."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import langchain_core.callbacks.base as lc_base
import langchain_core.callbacks.manager as lc_manager
import rtrace.core as rt

LC = SimpleNamespace(
    label="langchain",
    BaseCallbackHandler=lc_base.BaseCallbackHandler,
    AsyncCallbackHandler=lc_base.AsyncCallbackHandler,
    CallbackManager=lc_manager.CallbackManager,
    AsyncCallbackManager=lc_manager.AsyncCallbackManager,
    CallbackManagerForRetrieverRun=lc_manager.CallbackManagerForRetrieverRun,
    AsyncCallbackManagerForRetrieverRun=lc_manager.AsyncCallbackManagerForRetrieverRun,
)
RT = SimpleNamespace(
    label="rtrace",
    BaseCallbackHandler=rt.BaseCallbackHandler,
    AsyncCallbackHandler=rt.AsyncCallbackHandler,
    CallbackManager=rt.CallbackManager,
    AsyncCallbackManager=rt.AsyncCallbackManager,
    CallbackManagerForRetrieverRun=rt.CallbackManagerForRetrieverRun,
    AsyncCallbackManagerForRetrieverRun=rt.AsyncCallbackManagerForRetrieverRun,
)
IMPLS = (LC, RT)

HOOKS = ("on_retriever_start", "on_retriever_end", "on_retriever_error", "on_retry", "on_text", "on_custom_event")


@dataclass
class Log:
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    threads: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *item: Any) -> None:
        with self.lock:
            self.calls.append(item)


def _snapshot(hook: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    # tenacity mutates its RetryCallState after before_sleep returns: record it as it was.
    if hook == "on_retry" and args and hasattr(args[0], "attempt_number"):
        state = args[0]
        return (("retry_state", state.attempt_number, None if state.outcome is None else state.outcome.failed),)
    return args


def recorder(impl: SimpleNamespace, log: Log, label: str, *, is_async: bool = False,
             run_inline: bool = False, raise_error: bool = False, fail: tuple[str, ...] = (),
             ignore: tuple[str, ...] = (), delay: float = 0.0) -> Any:
    """A handler of ``impl``'s base class that records every call of the hooks it has."""
    base = impl.AsyncCallbackHandler if is_async else impl.BaseCallbackHandler
    ns: dict[str, Any] = {"run_inline": run_inline, "raise_error": raise_error}
    for flag in ignore:
        ns[flag] = property(lambda self: True)

    def make(hook: str) -> Any:
        if is_async:
            async def method(self: Any, *args: Any, **kwargs: Any) -> None:
                log.threads[label] = threading.current_thread().name
                if delay:
                    await asyncio.sleep(delay)
                log.add(label, hook, _snapshot(hook, args), kwargs)
                if hook in fail:
                    raise RuntimeError(f"{label} fails in {hook}")
        else:
            def method(self: Any, *args: Any, **kwargs: Any) -> None:  # type: ignore[misc]
                log.threads[label] = threading.current_thread().name
                log.add(label, hook, _snapshot(hook, args), kwargs)
                if hook in fail:
                    raise RuntimeError(f"{label} fails in {hook}")
        method.__name__ = hook
        return method

    for hook in HOOKS:
        ns[hook] = make(hook)
    return type(f"Recorder_{label}", (base,), ns)()


class Normalizer:
    """Makes two implementations' calls comparable: UUIDs by first appearance, objects by value."""

    def __init__(self) -> None:
        self.ids: dict[UUID, str] = {}

    def __call__(self, v: Any) -> Any:
        if isinstance(v, UUID):
            return self.ids.setdefault(v, f"id{len(self.ids)}")
        if isinstance(v, BaseException):
            return ("exception", type(v).__name__, str(v))
        if hasattr(v, "page_content"):
            return ("document", v.page_content, self(v.metadata), getattr(v, "id", None))
        if hasattr(v, "attempt_number") and hasattr(v, "outcome"):
            failed = None if v.outcome is None else v.outcome.failed
            return ("retry_state", v.attempt_number, failed)
        if isinstance(v, (list, tuple)):
            return type(v)(self(x) for x in v)
        if isinstance(v, dict):
            return {k: self(x) for k, x in v.items()}
        return v


def normalized(log: Log) -> list[Any]:
    n = Normalizer()
    return [n(call) for call in log.calls]


def manager_state(manager: Any, names: dict[int, str]) -> dict[str, Any]:
    """A manager's fields, handlers by label, for comparing managers across implementations."""
    return {
        "type": type(manager).__name__,
        "handlers": [names.get(id(h), "?") for h in manager.handlers],
        "inheritable_handlers": [names.get(id(h), "?") for h in manager.inheritable_handlers],
        "tags": list(manager.tags),
        "inheritable_tags": list(manager.inheritable_tags),
        "metadata": dict(manager.metadata),
        "inheritable_metadata": dict(manager.inheritable_metadata),
    }
