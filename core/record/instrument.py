"""Tracing code that does not use LangChain: ``@retriever`` and ``Retriever``.

Both start a run under the current run (a ``ContextVar``), so nested retrievers
become child runs in threads and asyncio tasks alike, record the result or the
exception, and re-raise. With no handler configured they cost a context lookup.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, overload

from rtrace.core.record import context
from rtrace.core.record.managers import (
    AsyncCallbackManager,
    AsyncCallbackManagerForRetrieverRun,
    BaseCallbackManager,
    CallbackManager,
    CallbackManagerForRetrieverRun,
)

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseCallbackManager)


def _manager(cls: type[M], tags: list[str] | None, metadata: dict[str, Any] | None) -> M | None:
    """The manager for a new run here, or ``None`` when nothing would record it."""
    parent = context.current_run()
    if parent is None and not context.default_handlers():
        return None
    manager = cls.configure(local_tags=tags, local_metadata=metadata)
    return manager if manager.handlers else None


def _query_locator(fn: Callable[..., Any]) -> tuple[int | None, bool]:
    """Where the query is (a positional index, skipping self/cls), and whether fn takes run_manager."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return 0, False
    wants_rm = any(p.name == "run_manager" for p in params)
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if "query" in positional:
        return positional.index("query"), wants_rm
    first = 1 if positional[:1] in (["self"], ["cls"]) else 0
    return (first if first < len(positional) else None), wants_rm


def _query(args: tuple[Any, ...], kwargs: dict[str, Any], index: int | None) -> Any:
    if "query" in kwargs:
        return kwargs["query"]
    if index is not None and index < len(args):
        return args[index]
    return None


@overload
def retriever(fn: F) -> F: ...
@overload
def retriever(
    fn: None = None, *, name: str | None = None, tags: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Callable[[F], F]: ...


def retriever(
    fn: Any = None,
    *,
    name: str | None = None,
    tags: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Any:
    """Trace a function (sync or async) as a retriever run.

    The first argument (or ``query=``) is the query; the return value (Documents,
    dicts, strings, ``(doc, score)`` pairs) is the result; an exception is recorded
    and re-raised. A function that declares ``run_manager`` receives the run's
    manager (a no-op one when nothing is traced), e.g. for tenacity's ``before_sleep``.
    """

    def wrap(fn: F) -> F:
        run_name = name or getattr(fn, "__name__", "retriever")
        index, wants_rm = _query_locator(fn)
        local_tags = list(tags) if tags else None
        local_meta = dict(metadata) if metadata else None

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                manager = _manager(AsyncCallbackManager, local_tags, local_meta)
                if manager is None:
                    if wants_rm and "run_manager" not in kwargs:
                        kwargs["run_manager"] = AsyncCallbackManagerForRetrieverRun.get_noop_manager()
                    return await fn(*args, **kwargs)
                rm = await manager.on_retriever_start(None, _query(args, kwargs, index), name=run_name)
                if wants_rm and "run_manager" not in kwargs:
                    kwargs["run_manager"] = rm
                token = context.set_current_run(rm)
                try:
                    result = await fn(*args, **kwargs)
                except Exception as e:
                    await rm.on_retriever_error(e)
                    raise
                finally:
                    context.reset_current_run(token)
                await rm.on_retriever_end(result)
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            manager = _manager(CallbackManager, local_tags, local_meta)
            if manager is None:
                if wants_rm and "run_manager" not in kwargs:
                    kwargs["run_manager"] = CallbackManagerForRetrieverRun.get_noop_manager()
                return fn(*args, **kwargs)
            rm = manager.on_retriever_start(None, _query(args, kwargs, index), name=run_name)
            if wants_rm and "run_manager" not in kwargs:
                kwargs["run_manager"] = rm
            token = context.set_current_run(rm)
            try:
                result = fn(*args, **kwargs)
            except Exception as e:
                rm.on_retriever_error(e)
                raise
            finally:
                context.reset_current_run(token)
            rm.on_retriever_end(result)
            return result

        return wrapper  # type: ignore[return-value]

    return wrap(fn) if fn is not None else wrap


def _accepts(method: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _expects_other_args(method: Callable[..., Any]) -> bool:
    try:
        params = set(inspect.signature(method).parameters) - {"self", "query", "run_manager"}
    except (TypeError, ValueError):
        return False
    return bool(params)


class Retriever:
    """A retriever base class mirroring LangChain's ``BaseRetriever``.

    Subclass and implement ``_get_relevant_documents(query, *, run_manager)``
    (and optionally ``_aget_relevant_documents``); call ``invoke`` / ``ainvoke``.
    ``config`` takes LangChain's keys: ``callbacks``, ``tags``, ``metadata``, ``run_name``.
    """

    name: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None

    _new_arg_supported: bool = True
    _expects_other_args: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        get = cls.__dict__.get("_get_relevant_documents")
        if get is not None:
            cls._new_arg_supported = _accepts(get, "run_manager")
            cls._expects_other_args = _expects_other_args(get)
        aget = cls.__dict__.get("_aget_relevant_documents")
        if aget is not None:
            cls._anew_arg_supported = _accepts(aget, "run_manager")

    _anew_arg_supported: bool = True

    def __init__(self, *, name: str | None = None, tags: list[str] | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        if name is not None:
            self.name = name
        if tags is not None:
            self.tags = tags
        if metadata is not None:
            self.metadata = metadata

    def get_name(self) -> str:
        return self.name or type(self).__name__

    def _ls_params(self) -> dict[str, Any]:
        # LangChain's _get_ls_params: class name minus a leading or trailing "Retriever".
        n = type(self).__name__
        if n.startswith("Retriever"):
            n = n[len("Retriever"):]
        elif n.endswith("Retriever"):
            n = n[: -len("Retriever")]
        return {"ls_retriever_name": n.lower()}

    def _configure(self, cls: type[M], config: dict[str, Any] | None, kwargs: dict[str, Any]) -> tuple[M, dict[str, Any]]:
        config = config or {}
        manager = cls.configure(
            config.get("callbacks"),
            None,
            verbose=kwargs.get("verbose", False),
            inheritable_tags=config.get("tags"),
            local_tags=self.tags,
            inheritable_metadata={**(config.get("metadata") or {}), **self._ls_params()},
            local_metadata=self.metadata,
        )
        return manager, config

    def invoke(self, input: str, config: dict[str, Any] | None = None, **kwargs: Any) -> list[Any]:
        """Run the retriever on ``input``, traced."""
        manager, config = self._configure(CallbackManager, config, kwargs)
        rm = manager.on_retriever_start(
            None, input, name=config.get("run_name") or self.get_name(), run_id=kwargs.pop("run_id", None)
        )
        token = context.set_current_run(rm)
        try:
            extra = kwargs if self._expects_other_args else {}
            if self._new_arg_supported:
                result = self._get_relevant_documents(input, run_manager=rm, **extra)
            else:
                result = self._get_relevant_documents(input, **extra)  # type: ignore[call-arg]
        except Exception as e:
            rm.on_retriever_error(e)
            raise
        finally:
            context.reset_current_run(token)
        rm.on_retriever_end(result)
        return result

    async def ainvoke(self, input: str, config: dict[str, Any] | None = None, **kwargs: Any) -> list[Any]:
        """Run the retriever on ``input`` from async code, traced."""
        manager, config = self._configure(AsyncCallbackManager, config, kwargs)
        rm = await manager.on_retriever_start(
            None, input, name=config.get("run_name") or self.get_name(), run_id=kwargs.pop("run_id", None)
        )
        token = context.set_current_run(rm)
        try:
            extra = kwargs if self._expects_other_args else {}
            if self._anew_arg_supported:
                result = await self._aget_relevant_documents(input, run_manager=rm, **extra)
            else:
                result = await self._aget_relevant_documents(input, **extra)  # type: ignore[call-arg]
        except Exception as e:
            await rm.on_retriever_error(e)
            raise
        finally:
            context.reset_current_run(token)
        await rm.on_retriever_end(result)
        return result

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement _get_relevant_documents")

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Any]:
        # As LangChain: the sync implementation in the default executor, with the
        # context copied so nested runs still find their parent.
        import asyncio

        loop = asyncio.get_running_loop()
        sync_rm = run_manager.get_sync()
        ctx = contextvars.copy_context()
        fn = functools.partial(ctx.run, self._call_sync, query, sync_rm)
        return await loop.run_in_executor(None, fn)

    def _call_sync(self, query: str, run_manager: CallbackManagerForRetrieverRun) -> list[Any]:
        token = context.set_current_run(run_manager)
        try:
            if self._new_arg_supported:
                return self._get_relevant_documents(query, run_manager=run_manager)
            return self._get_relevant_documents(query)  # type: ignore[call-arg]
        finally:
            context.reset_current_run(token)


def dispatch_custom_event(name: str, data: Any) -> None:
    """Record a user-defined event on the current run (a no-op outside any run)."""
    run = context.current_run()
    if run is None:
        return
    if isinstance(run, AsyncCallbackManagerForRetrieverRun):
        run = run.get_sync()
    run.on_custom_event(name, data)
