"""Tracing code that does not use LangChain: ``@retriever`` and ``Retriever``.

Both start a run under the current run (a ``ContextVar``), so nested retrievers
become child runs in threads and asyncio tasks alike, record the result or the
exception, and re-raise. With no handler configured they cost a context lookup.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any, TypeVar, overload

from rtrace.core.record import context
from rtrace.core.record.managers import (
    AsyncCallbackManager,
    AsyncCallbackManagerForRetrieverRun,
    BaseCallbackManager,
    CallbackManager,
    CallbackManagerForRetrieverRun,
    _enclosing,
    _langchain_scope,
)

F = TypeVar("F", bound=Callable[..., Any])

_RETRIEVER_CODES: set[Any] = set()  # code objects of the wrappers that run a retriever
M = TypeVar("M", bound=BaseCallbackManager)


def _manager(cls: type[M], tags: list[str] | None, metadata: dict[str, Any] | None) -> M | None:
    """The manager for a new run here, or ``None`` when nothing would record it."""
    if context.current_run() is None and not context.default_handlers() and not _langchain_scope():
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
                # One call site for traced and untraced calls: a traceback through this
                # wrapper is the same under `rtrace run` as under python.
                manager = _manager(AsyncCallbackManager, local_tags, local_meta)
                rm = token = None
                if manager is None:
                    if wants_rm and "run_manager" not in kwargs:
                        kwargs["run_manager"] = AsyncCallbackManagerForRetrieverRun.get_noop_manager()
                else:
                    rm = await manager.on_retriever_start(None, _query(args, kwargs, index), name=run_name)
                    if wants_rm and "run_manager" not in kwargs:
                        kwargs["run_manager"] = rm
                    token = context.set_current_run(rm)
                try:
                    result = await fn(*args, **kwargs)
                except Exception as e:
                    if rm is not None:
                        await rm.on_retriever_error(e)
                    raise
                finally:
                    if token is not None:
                        context.reset_current_run(token)
                if rm is not None:
                    await rm.on_retriever_end(result)
                return result

            _RETRIEVER_CODES.add(async_wrapper.__code__)
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # One call site for traced and untraced calls: a traceback through this
            # wrapper is the same under `rtrace run` as under python.
            manager = _manager(CallbackManager, local_tags, local_meta)
            rm = token = None
            if manager is None:
                if wants_rm and "run_manager" not in kwargs:
                    kwargs["run_manager"] = CallbackManagerForRetrieverRun.get_noop_manager()
            else:
                rm = manager.on_retriever_start(None, _query(args, kwargs, index), name=run_name)
                if wants_rm and "run_manager" not in kwargs:
                    kwargs["run_manager"] = rm
                token = context.set_current_run(rm)
            try:
                result = fn(*args, **kwargs)
            except Exception as e:
                if rm is not None:
                    rm.on_retriever_error(e)
                raise
            finally:
                if token is not None:
                    context.reset_current_run(token)
            if rm is not None:
                rm.on_retriever_end(result)
            return result

        _RETRIEVER_CODES.add(wrapper.__code__)
        return wrapper  # type: ignore[return-value]

    return wrap(fn) if fn is not None else wrap


def _fields(cls: type) -> set[str]:
    """The names ``cls(**fields)`` accepts: annotated or public non-callable class attributes."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is object:
            continue
        names.update(n for n in getattr(klass, "__annotations__", {}) if not n.startswith("_"))
        names.update(n for n, v in vars(klass).items()
                     if not n.startswith("_") and not callable(v) and not isinstance(v, (property, classmethod, staticmethod)))
    return names


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

    def __init__(self, **fields: Any) -> None:
        # As a pydantic BaseRetriever: any field the class declares (an annotation or a
        # public class attribute, here or in a base) can be given to the constructor.
        known = _fields(type(self))
        for key, value in fields.items():
            if key not in known:
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {key!r}")
            setattr(self, key, value)

    def get_name(self) -> str:
        """``name`` if set, else the class name (LangChain's ``Runnable.get_name``)."""
        return self.name or type(self).__name__

    def _get_ls_params(self, **kwargs: Any) -> dict[str, Any]:
        """LangChain's standard tracing params: ``get_name()`` minus a leading or trailing "Retriever"."""
        n = self.get_name()
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
            inheritable_metadata={**(config.get("metadata") or {}), **self._get_ls_params(**kwargs)},
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


_NO_PARENT = (
    "Unable to dispatch an adhoc event without a parent run id. "
    "This function can only be called from within an existing run (e.g., "
    "inside a retriever, a tool or a RunnableLambda). "
    "If you are doing that and still seeing this error, try explicitly "
    "passing the config parameter to this function."
)


def _inside_untraced_retriever() -> bool:
    """Whether a ``@retriever`` or ``Retriever`` call that nothing records is on the stack.

    Such a call sets no current run (that would cost every untraced call); a custom
    event inside it is dropped, not an error, so a program behaves the same traced or not.
    Only looked at on the error path.
    """
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code in _RETRIEVER_CODES:
            return True
        frame = frame.f_back
    return False


def _custom_event_manager(cls: type[M], config: dict[str, Any] | None) -> M:
    config = config or {}
    callbacks = config.get("callbacks")
    if callbacks is None:
        # The enclosing run in this process (rtrace's or LangChain's); never the run that
        # started a traced child process, so a script raises here as it does under python.
        parent, lc_parent = _enclosing()
        if parent is None and lc_parent is None:
            if _inside_untraced_retriever():
                return cls(handlers=[])  # nothing records this run: the event goes nowhere, as its run
            raise RuntimeError(_NO_PARENT)
    manager = cls.configure(callbacks, inheritable_tags=config.get("tags"),
                            inheritable_metadata=config.get("metadata"))
    if manager.parent_run_id is None:
        raise RuntimeError(_NO_PARENT)
    return manager


def dispatch_custom_event(name: str, data: Any, *, config: dict[str, Any] | None = None) -> None:
    """Send a user-defined event to the run the calling code is inside, as LangChain's does.

    The run is the enclosing rtrace run or LangChain run, or the one ``config["callbacks"]``
    (a run's child manager) belongs to; ``RuntimeError`` when there is none.
    """
    manager = _custom_event_manager(CallbackManager, config)
    if manager.handlers:
        manager.on_custom_event(name, data, run_id=manager.parent_run_id)


async def adispatch_custom_event(name: str, data: Any, *, config: dict[str, Any] | None = None) -> None:
    """``dispatch_custom_event`` for async code (async handlers are awaited)."""
    manager = _custom_event_manager(AsyncCallbackManager, config)
    if manager.handlers:
        await manager.on_custom_event(name, data, run_id=manager.parent_run_id)


_RETRIEVER_CODES.update(f.__code__ for f in (Retriever.invoke, Retriever.ainvoke, Retriever._call_sync))
