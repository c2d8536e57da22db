"""Calling handlers: LangChain's ``handle_event`` / ``ahandle_event`` semantics.

Sync: handlers in list order; a handler's exception is logged and swallowed
unless it has ``raise_error``; coroutines from async handlers run afterwards, in
order, on a fresh event loop (on a worker thread when a loop is already running).

Async: ``run_inline`` handlers first, in order; the rest concurrently; sync
handlers that are not inline run in the loop's executor so they never block it.

Beyond LangChain: when every handler is inline and synchronous (JsonlHandler
is), an async event is dispatched with no task, no ``gather`` and no executor.
That is the difference between ~45 µs and a few µs per run.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import sys
import threading
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

# asyncio is imported where it is used: async code has it loaded already, and
# importing it eagerly would add ~20 ms to every `rtrace run` start.

logger = logging.getLogger("rtrace")

_async_hooks: dict[tuple[type, str], bool] = {}
_logged: set[tuple[str, str]] = set()
_executor_lock = threading.Lock()
_executor_: ThreadPoolExecutor | None = None


def hook_is_async(handler: Any, event: str) -> bool:
    """Whether ``handler``'s hook for ``event`` is a coroutine function.

    Cached per class; a hook assigned on the instance (``h.on_retriever_end = coro_fn``)
    is looked at each time, as LangChain does for every handler.
    """
    own = getattr(handler, "__dict__", None)
    if own and event in own:
        return inspect.iscoroutinefunction(own[event])
    key = (type(handler), event)
    try:
        return _async_hooks[key]
    except KeyError:
        result = _async_hooks[key] = inspect.iscoroutinefunction(getattr(type(handler), event, None))
        return result


def inline_only(handlers: Sequence[Any], event: str) -> bool:
    """True when every handler can be called synchronously on the loop thread."""
    for h in handlers:
        if not h.run_inline or hook_is_async(h, event):
            return False
    return True


# Handler classes whose hooks are inline, synchronous and never return a coroutine
# (JsonlHandler registers itself). When one is a run's only handler, the managers call its
# hook directly, with handle_event's error handling, instead of through the generic loop
# (packing *args and **kwargs, two getattr, a coroutine check: ~1 µs a run). The managers
# test ``len(handlers) == 1 and type(handlers[0]) in DIRECT`` in place (no call: it runs on
# every event). Exact classes only: a subclass may make a hook async.
DIRECT: set[type] = set()


def direct_failed(handler: Any, event: str, exc: Exception) -> bool:
    """A directly called hook raised: log it as handle_event does; True if it must be re-raised."""
    _log_failure(handler, event, exc)
    return not isinstance(exc, NotImplementedError) and bool(handler.raise_error)


def _log_failure(handler: Any, event: str, exc: BaseException) -> None:
    # Once per handler class and hook: a broken handler must not flood the user's stderr.
    key = (type(handler).__qualname__, event)
    if key in _logged:
        return
    _logged.add(key)
    kind = "NotImplementedError" if isinstance(exc, NotImplementedError) else "Error"
    logger.warning("%s in %s.%s callback: %r", kind, type(handler).__name__, event, exc)


def handle_event(
    handlers: Sequence[Any], event: str, ignore: str | None, *args: Any, **kwargs: Any
) -> None:
    """Send ``event`` to ``handlers`` synchronously."""
    coros: list[Coroutine[Any, Any, Any]] | None = None
    for handler in handlers:
        try:
            if ignore is None or not getattr(handler, ignore):
                result = getattr(handler, event)(*args, **kwargs)
                if result is not None and inspect.iscoroutine(result):
                    if coros is None:
                        coros = []
                    coros.append(result)
        except NotImplementedError as e:
            _log_failure(handler, event, e)  # never re-raised, as in LangChain
        except Exception as e:
            _log_failure(handler, event, e)
            if handler.raise_error:
                if coros:  # LangChain runs collected coroutines even when re-raising
                    _run_coros_somewhere(coros)
                raise
    if coros:
        _run_coros_somewhere(coros)


def _run_coros_somewhere(coros: list[Coroutine[Any, Any, Any]]) -> None:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        _run_coros(coros)
        return
    # Running them on this loop from sync code would deadlock: use a worker thread.
    _executor().submit(contextvars.copy_context().run, _run_coros, coros).result()


def _executor() -> ThreadPoolExecutor:
    global _executor_
    if _executor_ is None:
        from concurrent.futures import ThreadPoolExecutor

        with _executor_lock:
            if _executor_ is None:
                _executor_ = ThreadPoolExecutor(max_workers=10, thread_name_prefix="rtrace-cb")
    return _executor_


def _run_coros(coros: list[Coroutine[Any, Any, Any]]) -> None:
    # Exceptions from coroutines are logged and swallowed whatever raise_error says,
    # matching LangChain's sync path.
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        for coro in coros:
            try:
                loop.run_until_complete(coro)
            except Exception as e:
                logger.warning("Error in callback coroutine: %r", e)
        while pending := asyncio.all_tasks(loop):
            loop.run_until_complete(asyncio.wait(pending))
    finally:
        loop.close()


async def _ahandle_one(handler: Any, event: str, ignore: str | None, *args: Any, **kwargs: Any) -> None:
    asyncio = sys.modules["asyncio"]
    try:
        if ignore is None or not getattr(handler, ignore):
            method = getattr(handler, event)
            if hook_is_async(handler, event):
                await method(*args, **kwargs)
            elif handler.run_inline:
                method(*args, **kwargs)
            else:
                await asyncio.get_running_loop().run_in_executor(
                    None, functools.partial(contextvars.copy_context().run, method, *args, **kwargs)
                )
    except NotImplementedError as e:
        _log_failure(handler, event, e)
    except Exception as e:
        _log_failure(handler, event, e)
        if handler.raise_error:
            raise


async def ahandle_event(
    handlers: Sequence[Any], event: str, ignore: str | None, *args: Any, **kwargs: Any
) -> None:
    """Send ``event`` to ``handlers`` from async code."""
    if inline_only(handlers, event):
        handle_event(handlers, event, ignore, *args, **kwargs)
        return
    for handler in handlers:
        if handler.run_inline:
            await _ahandle_one(handler, event, ignore, *args, **kwargs)
    rest = [h for h in handlers if not h.run_inline]
    if rest:
        # Each in a task of its own (even a single one), as LangChain's gather does: a
        # handler's ContextVar writes must not leak into the traced code.
        asyncio = sys.modules["asyncio"]
        await asyncio.gather(*(_ahandle_one(h, event, ignore, *args, **kwargs) for h in rest))


async def ahandle_event_shielded(
    handlers: Sequence[Any], event: str, ignore: str | None, *args: Any, **kwargs: Any
) -> None:
    """``ahandle_event`` that completes even if the awaiting task is cancelled.

    Synchronous inline handlers finish before control returns to the loop, so they
    need no shield; anything that awaits runs in a shielded task.
    """
    if inline_only(handlers, event):
        handle_event(handlers, event, ignore, *args, **kwargs)
        return
    asyncio = sys.modules["asyncio"]
    task = asyncio.ensure_future(ahandle_event(handlers, event, ignore, *args, **kwargs))
    await asyncio.shield(task)
