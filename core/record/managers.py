"""Callback managers with the API and semantics of ``langchain_core.callbacks.manager``.

``CallbackManager.configure`` builds a manager; ``on_retriever_start`` returns a
run manager (``CallbackManagerForRetrieverRun``) whose ``on_retriever_end``,
``on_retriever_error``, ``on_retry``, ``on_text`` and ``on_custom_event`` report
on that run; ``get_child`` nests a run under it. Lists and dicts are shared by
reference exactly where LangChain shares them (see reference/langchain-callbacks.md).

``configure`` takes what LangChain's takes: ``None``, a list of handlers (rtrace's or
LangChain's), or a callback manager (rtrace's or LangChain's, as LangChain code passes
down in ``config["callbacks"]``).

Where rtrace departs from LangChain, on purpose (the README's "Differences from
LangChain" lists these with the others):
- ``configure`` with no callbacks nests under the innermost enclosing run: rtrace's
  current run (``rtrace.core.current_run``) or the LangChain run whose code is running
  (LangChain's runnable config), and adds the process's default handlers (``trace_to``,
  ``RTRACE_OUTPUT``, ``rtrace run``); this plays the part of LangChain's tracing context
  and configure hooks. With callbacks given, the handlers see what LangChain's would.
- A run manager's ``on_custom_event`` reaches handlers (LangChain's is a no-op),
  so an event can be attached to the run it belongs to.
- Async events skip tasks and ``gather`` when every handler is inline and sync.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from rtrace.core.record import context, lineage
from rtrace.core.record.dispatch import (
    DIRECT,
    ahandle_event,
    ahandle_event_shielded,
    direct_failed,
    handle_event,
    inline_only,
)
from rtrace.core.record.handlers import BaseCallbackHandler
from rtrace.core.record.ids import uuid7

if TYPE_CHECKING:
    from typing_extensions import Self

_new = object.__new__

_CUSTOM_KWARGS_ERROR = (
    "The dispatcher API does not accept additional keyword arguments."
    "Please do not pass any additional keyword arguments, instead "
    "include them in the data field."
)


def _merge_metadata(base: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    # LangChain's _merge_metadata_dicts: last writer wins, except lc_versions accumulates.
    merged = {**base, **incoming}
    b, i = base.get("lc_versions"), incoming.get("lc_versions")
    if isinstance(b, dict) and isinstance(i, dict):
        merged["lc_versions"] = {**b, **i}
    elif isinstance(i, dict):
        merged["lc_versions"] = {**i}
    elif "lc_versions" not in incoming and isinstance(b, dict):
        merged["lc_versions"] = {**b}
    return merged


def _share(source: Any, cls: type[Any], run_id: UUID | None = None) -> Any:
    """``cls`` for ``run_id`` (default: ``source``'s run), sharing ``source``'s lists and dicts.

    What ``BaseRunManager.__init__`` does, without its keyword arguments (on every run):
    empty lists and dicts are replaced by new ones, as there (and in LangChain).
    """
    manager = _new(cls)
    manager.run_id = source.run_id if run_id is None else run_id
    manager.handlers = source.handlers
    manager.inheritable_handlers = source.inheritable_handlers
    manager.parent_run_id = source.parent_run_id
    manager.tags = source.tags or []
    manager.inheritable_tags = source.inheritable_tags or []
    manager.metadata = source.metadata or {}
    manager.inheritable_metadata = source.inheritable_metadata or {}
    scope = source._lc_scope
    if scope is not None:
        manager._lc_scope = scope
    return manager


class BaseRunManager:
    """A manager bound to one run (``run_id``)."""

    _lc_scope: Any = None  # the LangChain runnable config this run was started in (see _enclosing)

    def __init__(
        self,
        *,
        run_id: UUID,
        handlers: list[BaseCallbackHandler],
        inheritable_handlers: list[BaseCallbackHandler],
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        inheritable_tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inheritable_metadata: dict[str, Any] | None = None,
    ) -> None:
        self.run_id = run_id
        self.handlers = handlers
        self.inheritable_handlers = inheritable_handlers
        self.parent_run_id = parent_run_id
        self.tags = tags or []
        self.inheritable_tags = inheritable_tags or []
        self.metadata = metadata or {}
        self.inheritable_metadata = inheritable_metadata or {}

    @classmethod
    def get_noop_manager(cls) -> Self:
        """A manager with a fresh run id and no handlers: every event returns at once."""
        return cls(
            run_id=uuid7(),
            handlers=[],
            inheritable_handlers=[],
            tags=[],
            inheritable_tags=[],
            metadata={},
            inheritable_metadata={},
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(run_id={self.run_id}, parent_run_id={self.parent_run_id})"


class RunManager(BaseRunManager):
    """Sync events of a run."""

    def on_text(self, text: str, **kwargs: Any) -> None:
        """Attach free text to this run."""
        if not self.handlers:
            return
        handle_event(
            self.handlers, "on_text", None, text,
            run_id=self.run_id, parent_run_id=self.parent_run_id, tags=self.tags, **kwargs,
        )

    def on_retry(self, retry_state: Any, **kwargs: Any) -> None:
        """Record a retry; usable directly as tenacity's ``before_sleep``."""
        if not self.handlers:
            return
        handle_event(
            self.handlers, "on_retry", "ignore_retry", retry_state,
            run_id=self.run_id, parent_run_id=self.parent_run_id, tags=self.tags, **kwargs,
        )

    def on_custom_event(
        self, name: str, data: Any, *, run_id: UUID | None = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        """Record a user-defined event on this run (or on ``run_id``), with its tags and metadata."""
        if not self.handlers:
            return
        if kwargs:
            raise ValueError(_CUSTOM_KWARGS_ERROR)
        handle_event(
            self.handlers, "on_custom_event", "ignore_custom_event", name, data,
            run_id=self.run_id if run_id is None else run_id,
            tags=self.tags if tags is None else tags,
            metadata=self.metadata if metadata is None else metadata,
        )


class ParentRunManager(RunManager):
    """A sync run that can have child runs."""

    def get_child(self, tag: str | None = None) -> CallbackManager:
        """A manager for child runs: inheritable handlers, tags and metadata only."""
        manager = CallbackManager(handlers=[], parent_run_id=self.run_id)
        manager.set_handlers(self.inheritable_handlers)
        manager.add_tags(self.inheritable_tags)
        manager.add_metadata(self.inheritable_metadata)
        if tag is not None:
            manager.add_tags([tag], inherit=False)
        if self._lc_scope is not None:
            manager._lc_scope = self._lc_scope
        return manager


class AsyncRunManager(BaseRunManager, ABC):
    """Async events of a run."""

    @abstractmethod
    def get_sync(self) -> RunManager:
        """The sync manager for the same run."""

    async def on_text(self, text: str, **kwargs: Any) -> None:
        """Attach free text to this run."""
        if not self.handlers:
            return
        await ahandle_event(
            self.handlers, "on_text", None, text,
            run_id=self.run_id, parent_run_id=self.parent_run_id, tags=self.tags, **kwargs,
        )

    async def on_retry(self, retry_state: Any, **kwargs: Any) -> None:
        """Record a retry; usable directly as tenacity's async ``before_sleep``."""
        if not self.handlers:
            return
        await ahandle_event(
            self.handlers, "on_retry", "ignore_retry", retry_state,
            run_id=self.run_id, parent_run_id=self.parent_run_id, tags=self.tags, **kwargs,
        )

    async def on_custom_event(
        self, name: str, data: Any, *, run_id: UUID | None = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        """Record a user-defined event on this run (or on ``run_id``), with its tags and metadata."""
        if not self.handlers:
            return
        if kwargs:
            raise ValueError(_CUSTOM_KWARGS_ERROR)
        await ahandle_event(
            self.handlers, "on_custom_event", "ignore_custom_event", name, data,
            run_id=self.run_id if run_id is None else run_id,
            tags=self.tags if tags is None else tags,
            metadata=self.metadata if metadata is None else metadata,
        )


class AsyncParentRunManager(AsyncRunManager):
    """An async run that can have child runs."""

    def get_child(self, tag: str | None = None) -> AsyncCallbackManager:
        """A manager for child runs: inheritable handlers, tags and metadata only."""
        manager = AsyncCallbackManager(handlers=[], parent_run_id=self.run_id)
        manager.set_handlers(self.inheritable_handlers)
        manager.add_tags(self.inheritable_tags)
        manager.add_metadata(self.inheritable_metadata)
        if tag is not None:
            manager.add_tags([tag], inherit=False)
        if self._lc_scope is not None:
            manager._lc_scope = self._lc_scope
        return manager


class CallbackManagerForRetrieverRun(ParentRunManager):
    """The manager of one sync retriever run."""

    def on_retriever_end(self, documents: Sequence[Any], **kwargs: Any) -> None:
        """The retriever returned ``documents``."""
        handlers = self.handlers
        if not handlers:
            return
        if len(handlers) == 1 and type(h := handlers[0]) in DIRECT:  # a sole direct handler (dispatch.DIRECT)
            _direct_end(h, self, documents, kwargs)
            return
        handle_event(
            self.handlers, "on_retriever_end", "ignore_retriever", documents,
            run_id=self.run_id, parent_run_id=self.parent_run_id, tags=self.tags, **kwargs,
        )

    def on_retriever_error(self, error: BaseException, **kwargs: Any) -> None:
        """The retriever raised ``error``."""
        if not self.handlers:
            return
        handle_event(
            self.handlers, "on_retriever_error", "ignore_retriever", error,
            run_id=self.run_id, parent_run_id=self.parent_run_id, tags=self.tags, **kwargs,
        )


class AsyncCallbackManagerForRetrieverRun(AsyncParentRunManager):
    """The manager of one async retriever run."""

    def get_sync(self) -> CallbackManagerForRetrieverRun:
        """The sync manager of this run, sharing its handler, tag and metadata objects."""
        return _share(self, CallbackManagerForRetrieverRun)

    async def on_retriever_end(self, documents: Sequence[Any], **kwargs: Any) -> None:
        """The retriever returned ``documents``; completes even if the caller is cancelled."""
        handlers = self.handlers
        if not handlers:
            return
        if len(handlers) == 1 and type(h := handlers[0]) in DIRECT:  # inline and sync: no shield needed
            _direct_end(h, self, documents, kwargs)
            return
        await ahandle_event_shielded(
            self.handlers, "on_retriever_end", "ignore_retriever", documents,
            run_id=self.run_id, parent_run_id=self.parent_run_id, tags=self.tags, **kwargs,
        )

    async def on_retriever_error(self, error: BaseException, **kwargs: Any) -> None:
        """The retriever raised ``error``; completes even if the caller is cancelled."""
        if not self.handlers:
            return
        await ahandle_event_shielded(
            self.handlers, "on_retriever_error", "ignore_retriever", error,
            run_id=self.run_id, parent_run_id=self.parent_run_id, tags=self.tags, **kwargs,
        )


_R = TypeVar("_R", bound=BaseRunManager)


class BaseCallbackManager:
    """Handlers, tags and metadata, each split into local and inheritable."""

    _lc_scope: Any = None  # the LangChain runnable config this manager was configured in

    def __init__(
        self,
        handlers: list[BaseCallbackHandler],
        inheritable_handlers: list[BaseCallbackHandler] | None = None,
        parent_run_id: UUID | None = None,
        *,
        tags: list[str] | None = None,
        inheritable_tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inheritable_metadata: dict[str, Any] | None = None,
    ) -> None:
        self.handlers = handlers
        self.inheritable_handlers = inheritable_handlers or []
        self.parent_run_id = parent_run_id
        self.tags = tags or []
        self.inheritable_tags = inheritable_tags or []
        self.metadata = metadata or {}
        self.inheritable_metadata = inheritable_metadata or {}

    @property
    def is_async(self) -> bool:
        return False

    def copy(self) -> Self:
        """A copy whose lists and dicts are new objects."""
        return type(self)(
            handlers=self.handlers.copy(),
            inheritable_handlers=self.inheritable_handlers.copy(),
            parent_run_id=self.parent_run_id,
            tags=self.tags.copy(),
            inheritable_tags=self.inheritable_tags.copy(),
            metadata=self.metadata.copy(),
            inheritable_metadata=self.inheritable_metadata.copy(),
        )

    def add_handler(self, handler: BaseCallbackHandler, inherit: bool = True) -> None:
        """Add ``handler`` (once); ``inherit`` passes it on to child runs."""
        if handler not in self.handlers:
            self.handlers.append(handler)
        if inherit and handler not in self.inheritable_handlers:
            self.inheritable_handlers.append(handler)

    def remove_handler(self, handler: BaseCallbackHandler) -> None:
        """Remove ``handler`` from both lists."""
        if handler in self.handlers:
            self.handlers.remove(handler)
        if handler in self.inheritable_handlers:
            self.inheritable_handlers.remove(handler)

    def set_handlers(self, handlers: list[BaseCallbackHandler], inherit: bool = True) -> None:
        """Replace all handlers (new list objects)."""
        self.handlers = []
        self.inheritable_handlers = []
        for handler in handlers:
            self.add_handler(handler, inherit=inherit)

    def set_handler(self, handler: BaseCallbackHandler, inherit: bool = True) -> None:
        """Make ``handler`` the only handler."""
        self.set_handlers([handler], inherit=inherit)

    def add_tags(self, tags: list[str], inherit: bool = True) -> None:
        """Add tags; a tag already present is first removed from both lists (LangChain's quirk)."""
        for tag in tags:
            if tag in self.tags:
                self.remove_tags([tag])
        self.tags.extend(tags)
        if inherit:
            self.inheritable_tags.extend(tags)

    def remove_tags(self, tags: list[str]) -> None:
        """Remove tags from both lists."""
        for tag in tags:
            if tag in self.tags:
                self.tags.remove(tag)
            if tag in self.inheritable_tags:
                self.inheritable_tags.remove(tag)

    def add_metadata(self, metadata: dict[str, Any], inherit: bool = True) -> None:
        """Merge metadata (new dict objects)."""
        self.metadata = _merge_metadata(self.metadata, metadata)
        if inherit:
            self.inheritable_metadata = _merge_metadata(self.inheritable_metadata, metadata)

    def remove_metadata(self, keys: list[str]) -> None:
        """Remove metadata keys from both dicts."""
        for key in keys:
            self.metadata.pop(key, None)
            self.inheritable_metadata.pop(key, None)

    def _start(self, serialized: Any, query: str, run_id: UUID, kwargs: dict[str, Any]) -> None:
        """``on_retriever_start`` to every handler, synchronously (the handlers allow it)."""
        handlers = self.handlers
        if len(handlers) == 1 and type(h := handlers[0]) in DIRECT:  # a sole direct handler (dispatch.DIRECT)
            _direct_start(h, self, serialized, query, run_id, kwargs)
            return
        handle_event(
            handlers, "on_retriever_start", "ignore_retriever", serialized, query,
            run_id=run_id, parent_run_id=self.parent_run_id, tags=self.tags,
            metadata=self.metadata, **kwargs,
        )

    def _bind(self, cls: type[_R], run_id: UUID) -> _R:
        """A run manager for ``run_id`` sharing this manager's lists and dicts (as LangChain's do)."""
        return _share(self, cls, run_id)

    def merge(self, other: BaseCallbackManager) -> Self:
        """A manager with the handlers, tags and metadata of both (order not kept)."""
        return type(self)(
            parent_run_id=self.parent_run_id or other.parent_run_id,
            handlers=list(set(self.handlers) | set(other.handlers)),
            inheritable_handlers=list(set(self.inheritable_handlers) | set(other.inheritable_handlers)),
            tags=list(set(self.tags + other.tags)),
            inheritable_tags=list(set(self.inheritable_tags + other.inheritable_tags)),
            metadata={**self.metadata, **other.metadata},
            inheritable_metadata={**self.inheritable_metadata, **other.inheritable_metadata},
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(handlers={self.handlers!r}, parent_run_id={self.parent_run_id})"


Callbacks = list[BaseCallbackHandler] | BaseCallbackManager | None


class CallbackManager(BaseCallbackManager):
    """Starts sync retriever runs."""

    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        run_id: UUID | None = None,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> CallbackManagerForRetrieverRun:
        """Start a retriever run; ``parent_run_id`` is ignored (the manager's is used), as in LangChain."""
        if run_id is None:
            run_id = uuid7()
        handlers = self.handlers
        if len(handlers) == 1 and type(h := handlers[0]) in DIRECT:  # _start's test, without its call
            _direct_start(h, self, serialized, query, run_id, kwargs)
        else:
            self._start(serialized, query, run_id, kwargs)
        return _share(self, CallbackManagerForRetrieverRun, run_id)

    def on_custom_event(self, name: str, data: Any, run_id: UUID | None = None, **kwargs: Any) -> None:
        """Send a user-defined event (``run_id`` is the run it belongs to)."""
        if not self.handlers:
            return
        if kwargs:
            raise ValueError(_CUSTOM_KWARGS_ERROR)
        if run_id is None:
            run_id = uuid7()
        handle_event(
            self.handlers, "on_custom_event", "ignore_custom_event", name, data,
            run_id=run_id, tags=self.tags, metadata=self.metadata,
        )

    @classmethod
    def configure(
        cls,
        inheritable_callbacks: Callbacks = None,
        local_callbacks: Callbacks = None,
        verbose: bool = False,
        inheritable_tags: list[str] | None = None,
        local_tags: list[str] | None = None,
        inheritable_metadata: dict[str, Any] | None = None,
        local_metadata: dict[str, Any] | None = None,
    ) -> CallbackManager:
        """Build a manager from callbacks, tags and metadata, as LangChain's ``configure``."""
        return _configure(
            cls, inheritable_callbacks, local_callbacks, verbose,
            inheritable_tags, local_tags, inheritable_metadata, local_metadata,
        )


class AsyncCallbackManager(BaseCallbackManager):
    """Starts async retriever runs."""

    @property
    def is_async(self) -> bool:
        return True

    async def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        run_id: UUID | None = None,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> AsyncCallbackManagerForRetrieverRun:
        """Start a retriever run; ``parent_run_id`` is ignored (the manager's is used), as in LangChain."""
        if run_id is None:
            run_id = uuid7()
        handlers = self.handlers
        if len(handlers) == 1 and type(h := handlers[0]) in DIRECT:
            _direct_start(h, self, serialized, query, run_id, kwargs)
        elif inline_only(handlers, "on_retriever_start"):
            self._start(serialized, query, run_id, kwargs)  # no coroutine, task or gather needed
        else:
            await ahandle_event(
                handlers, "on_retriever_start", "ignore_retriever", serialized, query,
                run_id=run_id, parent_run_id=self.parent_run_id, tags=self.tags,
                metadata=self.metadata, **kwargs,
            )
        return _share(self, AsyncCallbackManagerForRetrieverRun, run_id)

    async def on_custom_event(self, name: str, data: Any, run_id: UUID | None = None, **kwargs: Any) -> None:
        """Send a user-defined event (``run_id`` is the run it belongs to)."""
        if not self.handlers:
            return
        if run_id is None:
            run_id = uuid7()
        if kwargs:
            raise ValueError(_CUSTOM_KWARGS_ERROR)
        await ahandle_event(
            self.handlers, "on_custom_event", "ignore_custom_event", name, data,
            run_id=run_id, tags=self.tags, metadata=self.metadata,
        )

    @classmethod
    def configure(
        cls,
        inheritable_callbacks: Callbacks = None,
        local_callbacks: Callbacks = None,
        verbose: bool = False,
        inheritable_tags: list[str] | None = None,
        local_tags: list[str] | None = None,
        inheritable_metadata: dict[str, Any] | None = None,
        local_metadata: dict[str, Any] | None = None,
    ) -> AsyncCallbackManager:
        """Build a manager from callbacks, tags and metadata, as LangChain's ``configure``."""
        return _configure(
            cls, inheritable_callbacks, local_callbacks, verbose,
            inheritable_tags, local_tags, inheritable_metadata, local_metadata,
        )


_M = TypeVar("_M", bound=BaseCallbackManager)


def _is_manager(callbacks: Any) -> bool:
    """A callback manager, rtrace's or LangChain's (anything with the manager's handler lists)."""
    return isinstance(callbacks, BaseCallbackManager) or (
        not isinstance(callbacks, (list, tuple)) and hasattr(callbacks, "inheritable_handlers")
    )


def _unwrapped(handlers: Any) -> list[Any]:
    # rtrace's LangChain hook handler stands for an rtrace handler (integrations/langchain.py):
    # inside rtrace's managers the handler itself is used, so it is not added twice.
    return [h.rtrace_handler if getattr(type(h), "rtrace_wrapper", False) else h for h in handlers]


def _from_manager(cls: type[_M], m: Any) -> _M:
    """A copy of manager ``m`` (rtrace's or LangChain's): all six fields, as LangChain copies them."""
    return cls(
        handlers=_unwrapped(m.handlers),
        inheritable_handlers=_unwrapped(m.inheritable_handlers),
        parent_run_id=m.parent_run_id,
        tags=list(m.tags),
        inheritable_tags=list(m.inheritable_tags),
        metadata=dict(m.metadata),
        inheritable_metadata=dict(m.inheritable_metadata),
    )


_lc_config_var: Any = None  # LangChain's var_child_runnable_config, once LangChain is imported


def _langchain_scope() -> Any:
    """The config of the LangChain runnable whose code is running here, if any."""
    global _lc_config_var
    var = _lc_config_var
    if var is None:
        config_module = sys.modules.get("langchain_core.runnables.config")
        if config_module is None:  # LangChain not imported: no LangChain run can enclose this code
            return None
        var = getattr(config_module, "var_child_runnable_config", None)
        if var is None:  # a LangChain version without it
            return None
        _lc_config_var = var
    return var.get()


def _enclosing() -> tuple[Any, Any]:
    """``(rtrace run, None)`` or ``(None, LangChain child manager)``: the innermost enclosing run.

    rtrace's current run is the innermost unless a LangChain runnable started after it
    (its config differs from the one the rtrace run was started in).
    """
    scope = _langchain_scope()
    current = context.current_run()
    if scope:
        callbacks = scope.get("callbacks")
        if _is_manager(callbacks) and (current is None or getattr(current, "_lc_scope", None) is not scope):
            return None, callbacks
    return current, None


def _configure(
    cls: type[_M],
    inheritable_callbacks: Callbacks,
    local_callbacks: Callbacks,
    verbose: bool,
    inheritable_tags: list[str] | None,
    local_tags: list[str] | None,
    inheritable_metadata: dict[str, Any] | None,
    local_metadata: dict[str, Any] | None,
) -> _M:
    if _is_manager(inheritable_callbacks):
        manager = _from_manager(cls, inheritable_callbacks)
    elif inheritable_callbacks or local_callbacks:
        # Callbacks given: exactly what LangChain's configure makes (no rtrace nesting here;
        # the log still nests the run, see lineage.py).
        handlers = _unwrapped(inheritable_callbacks or [])
        manager = cls(handlers=handlers.copy(), inheritable_handlers=handlers)
    else:
        parent, lc_parent = _enclosing()
        if lc_parent is not None:  # inside LangChain code: a child of that LangChain run
            manager = _from_manager(cls, lc_parent)
        elif parent is not None:  # nest under the rtrace run this code is running inside
            inherited = parent.inheritable_handlers
            manager = cls(
                handlers=inherited.copy(),
                inheritable_handlers=inherited.copy(),
                parent_run_id=parent.run_id,
                tags=parent.inheritable_tags.copy(),
                inheritable_tags=parent.inheritable_tags.copy(),
                metadata=parent.inheritable_metadata.copy(),
                inheritable_metadata=parent.inheritable_metadata.copy(),
            )
        else:  # a root here; in a child process, a child of the run that started the process
            manager = cls(handlers=[], parent_run_id=lineage.implicit_parent())
    scope = _langchain_scope()
    if scope is not None:  # runs started from this manager know which LangChain run they are inside
        manager._lc_scope = scope
    if local_callbacks:
        local = local_callbacks.handlers if _is_manager(local_callbacks) else local_callbacks
        for handler in _unwrapped(local):
            manager.add_handler(handler, inherit=False)
    if inheritable_tags or local_tags:
        manager.add_tags(inheritable_tags or [])
        manager.add_tags(local_tags or [], inherit=False)
    if inheritable_metadata or local_metadata:
        manager.add_metadata(inheritable_metadata or {})
        manager.add_metadata(local_metadata or {}, inherit=False)
    if verbose and not any(isinstance(h, StdOutCallbackHandler) for h in manager.handlers):
        manager.add_handler(StdOutCallbackHandler(), inherit=False)
    for handler in context.default_handlers():
        if not any(h is handler for h in manager.handlers):
            manager.add_handler(handler, inherit=True)
    return manager


# The managers' calls to a run's only handler when its class is in ``dispatch.DIRECT``:
# handle_event's semantics (``ignore_retriever``, a failure logged once and re-raised only
# with ``raise_error``) without its generic loop. No ``**kwargs`` when there are none:
# unpacking even an empty dict costs ~0.2 µs a call, on every traced run.

def _direct_start(h: Any, m: BaseCallbackManager, serialized: Any, query: Any, run_id: UUID,
                  kwargs: dict[str, Any]) -> None:
    try:
        if h.ignore_retriever:
            return
        if kwargs:
            h.on_retriever_start(serialized, query, run_id=run_id, parent_run_id=m.parent_run_id,
                                 tags=m.tags, metadata=m.metadata, **kwargs)
        else:
            h.on_retriever_start(serialized, query, run_id=run_id, parent_run_id=m.parent_run_id,
                                 tags=m.tags, metadata=m.metadata)
    except Exception as e:
        if direct_failed(h, "on_retriever_start", e):
            raise


def _direct_end(h: Any, rm: BaseRunManager, documents: Any, kwargs: dict[str, Any]) -> None:
    try:
        if h.ignore_retriever:
            return
        if kwargs:
            h.on_retriever_end(documents, run_id=rm.run_id, parent_run_id=rm.parent_run_id, tags=rm.tags, **kwargs)
        else:
            h.on_retriever_end(documents, run_id=rm.run_id, parent_run_id=rm.parent_run_id, tags=rm.tags)
    except Exception as e:
        if direct_failed(h, "on_retriever_end", e):
            raise


class StdOutCallbackHandler(BaseCallbackHandler):
    """Prints text events to stdout (what ``verbose=True`` adds, as in LangChain)."""

    def on_text(self, text: str, *, end: str = "", **kwargs: Any) -> None:
        print(text, end=end, flush=True)
