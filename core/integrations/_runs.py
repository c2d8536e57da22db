"""Runs of other frameworks (LlamaIndex, Haystack), recorded through rtrace's own managers.

A framework hook calls ``start_retriever`` / ``start_chain`` when one of its
operations begins and ``FrameworkRun.end`` / ``.error`` when it finishes. The run
is configured as any rtrace run is (``CallbackManager.configure``): it nests under
the current run (an rtrace ``@retriever``, or an enclosing framework run), goes to
the process's default handlers (``rtrace run``, ``trace_to``, ``RTRACE_OUTPUT``)
and to the handlers the hook was installed with. While it is open it *is* the
current run, so whatever starts inside it (framework runs, ``@retriever`` calls,
LangChain runs, child processes) becomes its child.

Stages that are not plain retrievals carry ``metadata["rtrace_stage"]``: rerankers
are retriever runs (their query and the reordered documents, with scores, are what
matters) with ``rtrace_stage="rerank"``; embedding calls are chain runs with
``rtrace_stage="embedding"``; query engines and pipelines are plain chain runs.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from typing import Any

from rtrace.core.events import STAGE_KEY as STAGE_KEY  # re-exported: the integrations use _runs.STAGE_KEY
from rtrace.core.record import context
from rtrace.core.record.dispatch import handle_event
from rtrace.core.record.ids import uuid7
from rtrace.core.record.managers import CallbackManager, CallbackManagerForRetrieverRun, ParentRunManager



class FrameworkRun:
    """One open run of a framework operation; ``end`` or ``error`` closes it (once)."""

    __slots__ = ("manager", "kind", "token", "closed")

    def __init__(self, manager: Any, kind: str) -> None:
        self.manager = manager
        self.kind = kind
        self.closed = False
        self.token: contextvars.Token[Any] | None = context.set_current_run(manager)

    @property
    def run_id(self) -> Any:
        return self.manager.run_id

    def end(self, documents: Sequence[Any] | None = None) -> None:
        if self._close():
            return
        m = self.manager
        if self.kind == "retriever":
            m.on_retriever_end(documents if documents is not None else [])
        else:
            handle_event(m.handlers, "on_chain_end", "ignore_chain", {},
                         run_id=m.run_id, parent_run_id=m.parent_run_id, tags=m.tags)

    def error(self, error: BaseException) -> None:
        if self._close():
            return
        m = self.manager
        if self.kind == "retriever":
            m.on_retriever_error(error)
        else:
            handle_event(m.handlers, "on_chain_error", "ignore_chain", error,
                         run_id=m.run_id, parent_run_id=m.parent_run_id, tags=m.tags)

    def leave(self) -> None:
        """Stop being the current run (where it became current; elsewhere there is nothing to undo)."""
        token, self.token = self.token, None
        if token is not None:
            try:
                context.reset_current_run(token)
            except ValueError:  # closed from another context (a future's callback): that one is untouched
                pass

    def _close(self) -> bool:
        self.leave()
        if self.closed:
            return True
        self.closed = True
        return False


def recording(targets: Sequence[Any]) -> bool:
    """Whether a run started now would reach any handler (cheap: checked on every framework call)."""
    return bool(targets) or bool(context.default_handlers()) or context.current_run() is not None


def _manager(targets: Sequence[Any], tags: Sequence[str], metadata: dict[str, Any]) -> CallbackManager | None:
    manager = CallbackManager.configure()
    for handler in targets:
        if not any(h is handler for h in manager.handlers):
            manager.add_handler(handler, inherit=True)
    if not manager.handlers:
        return None
    if tags:
        manager.add_tags(list(tags), inherit=False)
    if metadata:
        manager.add_metadata(metadata, inherit=False)
    return manager


def start_retriever(targets: Sequence[Any], name: str, query: Any, *, tags: Sequence[str] = (),
                    metadata: dict[str, Any] | None = None, **fields: Any) -> FrameworkRun | None:
    """A retriever run (or a rerank stage) named ``name`` for ``query``; None when nothing records.

    ``fields``: what the handlers record first-class (``k``, ``input_documents`` of a rerank stage...)."""
    manager = _manager(targets, tags, metadata or {})
    if manager is None:
        return None
    run: CallbackManagerForRetrieverRun = manager.on_retriever_start(
        {"name": name}, query if query is None or isinstance(query, str) else str(query), name=name, **fields)
    return FrameworkRun(run, "retriever")


def start_chain(targets: Sequence[Any], name: str, *, tags: Sequence[str] = (),
                metadata: dict[str, Any] | None = None) -> FrameworkRun | None:
    """A parent run (query engine, pipeline, embedding call); None when nothing records."""
    manager = _manager(targets, tags, metadata or {})
    if manager is None:
        return None
    run_id = uuid7()
    handle_event(manager.handlers, "on_chain_start", "ignore_chain", {"name": name}, {},
                 run_id=run_id, parent_run_id=manager.parent_run_id, tags=manager.tags,
                 metadata=manager.metadata, name=name)
    run = ParentRunManager(
        run_id=run_id, handlers=manager.handlers, inheritable_handlers=manager.inheritable_handlers,
        parent_run_id=manager.parent_run_id, tags=manager.tags, inheritable_tags=manager.inheritable_tags,
        metadata=manager.metadata, inheritable_metadata=manager.inheritable_metadata,
    )
    return FrameworkRun(run, "chain")


def fields_of(obj: Any) -> dict[str, Any]:
    """An object's own attributes, read from its ``__dict__``: no property, ``__getattr__`` or
    descriptor of the user's class runs (no side effect, no exception), and {} when it has none."""
    if not type(obj).__dictoffset__:  # None, str, int, a __slots__ class: no instance dict (and no raise)
        return {}
    try:
        found = object.__getattribute__(obj, "__dict__")
    except Exception:
        return {}
    return found if isinstance(found, dict) else {}


# The attributes that name an embedder's model, in the order they are asked (every framework's hook).
MODEL_ATTRS = ("model", "model_name", "model_id")


def model_name(own: dict[str, Any], unknown: str | None = None) -> str | None:
    """The model an embedder's own attributes (``fields_of``) name (``MODEL_ATTRS``), as LangChain's
    capture reads them; None if none does or ``unknown`` (a framework's placeholder for none) is all it says."""
    for attr in MODEL_ATTRS:
        value = own.get(attr)
        if isinstance(value, str) and value and value != unknown:
            return value
    return None


def count(value: Any) -> int | None:
    """``value`` if it is an int (a ``k``, a ``top_k``), else None: a bool is not a count."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def document(doc_id: Any, content: Any, metadata: Any, score: Any) -> dict[str, Any]:
    """A framework's document as what ``record_documents`` takes (metadata copied: redaction edits ours)."""
    meta = dict(metadata) if isinstance(metadata, dict) else {} if metadata is None else {"value": metadata}
    return {"id": doc_id, "page_content": content, "metadata": meta, "score": score}
