"""Tracing unmodified Haystack 2.x pipelines: rtrace inside Haystack's tracer proxy.

Haystack sends every pipeline and component run through ``haystack.tracing.tracer``,
a ``ProxyTracer`` that forwards to ``actual_tracer`` (a no-op ``NullTracer`` unless
the user called ``enable_tracing``). rtrace gives that one proxy object a subclass
whose ``trace`` records rtrace runs around the user's tracer:

- ``haystack.pipeline.run``: a chain run ``Pipeline`` (``metadata.execution_mode``
  sync or async), parent of the component runs;
- a component with a ``documents`` output and a query input (``query``,
  ``query_embedding``...): a retriever run (``InMemoryBM25Retriever``,
  ``InMemoryEmbeddingRetriever``, any store's retriever), documents with id, content,
  metadata and score; with ``documents`` in and out (a ranker): a retriever run with
  ``metadata.rtrace_stage = "rerank"``; a ``DocumentJoiner``: ``rtrace_stage = "join"``;
- a text embedder (``text`` in, ``embedding`` out): a chain run with
  ``rtrace_stage = "embedding"`` (and ``embedding_model`` if it names one); its text
  becomes the query of the embedding retriever it feeds;
- on a retriever run, what it asked for as LangChain runs record it: ``k`` (the
  run's ``top_k``, else the component's own), ``vector_store`` (its document store's
  class name), and the ``embedding_provider`` (class name) and ``embedding_model`` of
  the embedder feeding it. Haystack's span tags do not carry the component, so rtrace
  reads it from the frame of Haystack's ``_run_component`` that opened the span, and
  reads only the component's own attributes (its ``__dict__``);
- other components are not recorded (indexing components, builders, generators).

The component's inputs and outputs reach rtrace through the span's
``set_content_tag``, which rtrace reads whatever ``HAYSTACK_CONTENT_TRACING_ENABLED``
says, then forwards unchanged: the user's tracer gets exactly the calls, arguments
and spans it would get without rtrace, content tracing decides for it as before,
and ``enable_tracing`` / ``disable_tracing`` keep working (rtrace wraps whichever
tracer is current at each call). Installed when ``haystack.tracing.tracer`` is
imported; a version whose API differs is one warning line, never an exception.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from rtrace.core.integrations import _hooks, _runs

HOOK_MODULE = "haystack.tracing.tracer"
FRAMEWORK = "Haystack"

PIPELINE_RUN = "pipeline.run"  # "haystack.pipeline.run"; Haystack 2 AsyncPipeline: "haystack.async_pipeline.run"
COMPONENT_RUN = "haystack.component.run"
INPUT, OUTPUT = "haystack.component.input", "haystack.component.output"
QUERY_INPUTS = ("query", "queries", "query_embedding", "query_sparse_embedding")

_targets: list[Any] = []
_proxy: Any = None
_original_class: type | None = None
_span_class: type | None = None


def install(handler: Any = None) -> None:
    """Record Haystack pipelines (now, or once Haystack is imported).

    ``handler`` receives the runs in addition to the process's default handlers.
    """
    if handler is not None and not any(h is handler for h in _targets):
        _targets.append(handler)
    if _proxy is None and not _hooks.is_pending(HOOK_MODULE, _register):
        _hooks.when_imported(HOOK_MODULE, _register, FRAMEWORK)


def uninstall(handler: Any = None) -> None:
    """Stop sending Haystack runs to ``handler``; with no handler (or none left), remove the hook."""
    global _proxy, _original_class
    _targets[:] = [h for h in _targets if h is not handler]
    if handler is not None and _targets:
        return
    _targets.clear()
    _hooks.cancel(HOOK_MODULE, _register)
    if _proxy is not None and _original_class is not None and type(_proxy) is not _original_class:
        _proxy.__class__ = _original_class
    _proxy = _original_class = None


def installed() -> bool:
    return _proxy is not None or _hooks.is_pending(HOOK_MODULE, _register)


def _register(module: ModuleType) -> None:
    global _proxy, _original_class, _span_class
    if _proxy is not None:
        return
    proxy = module.tracer
    proxy_class, span_base = module.ProxyTracer, module.Span
    if not isinstance(proxy, proxy_class) or "actual_tracer" not in vars(proxy):
        raise AttributeError("haystack.tracing.tracer.tracer is not a ProxyTracer with an actual_tracer")
    if not callable(getattr(span_base, "set_content_tag", None)):
        raise AttributeError("haystack.tracing.Span has no set_content_tag")
    span_class = _make_span_class(span_base)
    span_class(module.NullSpan(), None)  # a Span with abstract methods rtrace does not know fails here, once
    _span_class = span_class
    traced = _make_tracer_class(type(proxy))
    _original_class = type(proxy)
    proxy.__class__ = traced  # the same object: every `from haystack.tracing import tracer` sees it
    _proxy = proxy


def _make_tracer_class(base: type) -> type:
    class RtraceProxyTracer(base):  # type: ignore[misc, valid-type]
        """Haystack's ProxyTracer, recording rtrace runs around the actual tracer's spans."""

        @contextlib.contextmanager
        def trace(self, operation_name: str, tags: dict[str, Any] | None = None,
                  parent_span: Any = None, **kwargs: Any) -> Iterator[Any]:
            parent = parent_span
            if _span_class is not None and isinstance(parent_span, _span_class):
                parent_span = parent_span._rtrace_inner  # the user's tracer sees only its own spans
            with self.actual_tracer.trace(operation_name, tags=tags, parent_span=parent_span, **kwargs) as span:
                record = _begin(operation_name, tags, parent) if _runs.recording(_targets) else None
                if record is None:
                    yield span
                    return
                try:
                    yield record.wrap(span)
                except BaseException as e:
                    record.fail(e)
                    raise
                record.finish()

    return RtraceProxyTracer


def _make_span_class(base: type) -> type:
    class RtraceSpan(base):  # type: ignore[misc, valid-type]
        """The user's span, forwarded to unchanged, with rtrace reading the component's inputs and outputs."""

        def __init__(self, inner: Any, record: _Record) -> None:
            self._rtrace_inner = inner
            self._rtrace_record = record

        def set_tag(self, key: str, value: Any) -> None:
            self._rtrace_inner.set_tag(key, value)

        def set_tags(self, tags: dict[str, Any]) -> None:
            self._rtrace_inner.set_tags(tags)

        def set_content_tag(self, key: str, value: Any) -> None:
            self._rtrace_record.content(key, value)
            self._rtrace_inner.set_content_tag(key, value)

        def raw_span(self) -> Any:
            return self._rtrace_inner.raw_span()

        def get_correlation_data_for_logs(self) -> dict[str, Any]:
            return self._rtrace_inner.get_correlation_data_for_logs()

        def __getattr__(self, name: str) -> Any:  # anything a tracer-specific span offers
            return getattr(self._rtrace_inner, name)

    return RtraceSpan


class _Record:
    """One recorded pipeline or component run; never raises into Haystack."""

    # Replaced, never mutated (per record only where there is something: this runs on every call).
    own: dict[str, Any] = {}  # the component's own attributes (its init values), if found
    embedders: dict[str, dict[str, Any]] = {}  # pipeline: each embedder's provider and model

    def __init__(self, stage: str, name: str, component: str | None, spec: dict[str, Any],
                 pipeline: _Record | None) -> None:
        self.stage = stage  # "pipeline", "retriever", "rerank", "join", "embedding"
        self.name = name
        self.component = component
        self.spec = spec
        self.pipeline = pipeline
        self.texts: dict[str, str] = {}  # pipeline: the text each embedder embedded
        self.run: _runs.FrameworkRun | None = None
        self.outputs: Any = None
        self.started = False

    def wrap(self, span: Any) -> Any:
        try:
            return _span_class(span, self)  # type: ignore[misc]
        except Exception:  # never into Haystack: the component runs with the user's span as is
            return span

    def start(self, inputs: Any = None) -> None:
        if self.started:
            return
        self.started = True
        try:
            self.run = self._start(inputs if isinstance(inputs, dict) else {})
        except Exception:
            self.run = None

    def _start(self, inputs: dict[str, Any]) -> _runs.FrameworkRun | None:
        meta: dict[str, Any] = {"component": self.component} if self.component else {}
        if self.stage == "pipeline":
            return _runs.start_chain(_targets, self.name, metadata=dict(self.spec))
        if self.stage == "embedding":
            text = inputs.get("text")
            if self.pipeline is not None and self.component:
                if isinstance(text, str):
                    self.pipeline.texts[self.component] = text
                if not self.pipeline.embedders:
                    self.pipeline.embedders = {}
                self.pipeline.embedders[self.component] = self._embedder()
            meta[_runs.STAGE_KEY] = "embedding"
            model = _runs.model_name(self.own)
            if model is not None:  # as LlamaIndex's and LangChain's embedding stages say it
                meta["embedding_model"] = model
            return _runs.start_chain(_targets, self.name, metadata=meta)
        if self.stage != "retriever":
            meta[_runs.STAGE_KEY] = self.stage
        docs = inputs.get("documents")
        if self.stage in ("rerank", "join") and isinstance(docs, list):
            flat = [d for group in docs for d in group] if docs and isinstance(docs[0], list) else docs
            meta["input_documents"] = len(flat)
        top_k = _runs.count(inputs.get("top_k"))
        if top_k is not None:
            meta["top_k"] = top_k
        fields = self._request(top_k) if self.stage == "retriever" else {}
        return _runs.start_retriever(_targets, self.name, self._query(inputs), metadata=meta, **fields)

    def _request(self, top_k: int | None) -> dict[str, Any]:
        """What the retriever asks for, as LangChain's runs record it: ``k`` (``run(top_k=...)``, else
        the component's ``top_k``), ``vector_store`` (its document store's class name), and the
        ``embedding_provider`` / ``embedding_model`` of the embedder feeding its query embedding."""
        own, pipeline = self.own, self.pipeline
        if top_k is None and not own and (pipeline is None or not pipeline.embedders):
            return {}
        try:
            out: dict[str, Any] = {}
            k = top_k if top_k is not None else _runs.count(own.get("top_k"))
            if k is not None:
                out["k"] = k
            store = own.get("document_store")
            if store is not None:
                out["vector_store"] = type(store).__name__
            if pipeline is not None and pipeline.embedders:
                for key in ("query_embedding", "query_sparse_embedding"):
                    socket = self.spec.get(key)
                    for sender in (socket.get("senders") or ()) if isinstance(socket, dict) else ():
                        embedder = pipeline.embedders.get(sender)
                        if embedder:
                            return {**out, **embedder}
            return out
        except Exception:  # never into Haystack
            return {}

    def _embedder(self) -> dict[str, Any]:
        out: dict[str, Any] = {"embedding_provider": self.name}  # Haystack's tags name its class
        model = _runs.model_name(self.own)
        if model is not None:
            out["embedding_model"] = model
        return out

    def _query(self, inputs: dict[str, Any]) -> Any:
        query = inputs.get("query")
        if isinstance(query, str):
            return query
        queries = inputs.get("queries")
        if isinstance(queries, list) and all(isinstance(q, str) for q in queries):
            return " | ".join(queries)
        # An embedding retriever's query is the text its embedder embedded in this pipeline run.
        if self.pipeline is not None:
            for key in ("query_embedding", "query_sparse_embedding"):
                socket = self.spec.get(key)
                senders = socket.get("senders") if isinstance(socket, dict) else None
                for sender in senders or ():
                    text = self.pipeline.texts.get(sender)
                    if text is not None:
                        return text
        return None if query is None else str(query)

    def content(self, key: str, value: Any) -> None:
        if key == INPUT:
            self.start(value)
        elif key == OUTPUT:
            self.outputs = value

    def finish(self) -> None:
        try:
            self.start()
            if self.run is not None:
                self.run.end(self._documents() if self.run.kind == "retriever" else None)
        except Exception:
            self._leave()

    def fail(self, error: BaseException) -> None:
        try:
            self.start()
            if self.run is not None:
                self.run.error(error)
        except Exception:
            self._leave()

    def _leave(self) -> None:
        if self.run is not None:
            self.run.leave()

    def _documents(self) -> list[dict[str, Any]]:
        docs = self.outputs.get("documents") if isinstance(self.outputs, dict) else None
        if not isinstance(docs, list):
            return []
        return [_runs.document(getattr(d, "id", None), getattr(d, "content", None), getattr(d, "meta", None),
                               getattr(d, "score", None)) for d in docs]


def _begin(operation: str, tags: dict[str, Any] | None, parent_span: Any) -> _Record | None:
    """The record of an operation rtrace follows (a pipeline started now), else None."""
    try:
        tags = tags if isinstance(tags, dict) else {}
        if operation.endswith(PIPELINE_RUN):
            mode = tags.get("haystack.pipeline.execution_mode")
            if not isinstance(mode, str):
                mode = "async" if "async" in operation else "sync"
            record = _Record("pipeline", "Pipeline", None, {"execution_mode": mode}, None)
            record.start()
            return record
        if operation != COMPONENT_RUN:
            return None
        stage = _stage(tags)
        if stage is None:
            return None
        pipeline = getattr(parent_span, "_rtrace_record", None) if parent_span is not None else None
        spec = tags.get("haystack.component.input_spec")
        name = tags.get("haystack.component.type")
        component = tags.get("haystack.component.name")
        record = _Record(stage, str(name or "Component"), str(component) if component else None,
                         spec if isinstance(spec, dict) else {}, pipeline)
        if stage in ("retriever", "embedding"):
            record.own = _own(tags.get("haystack.component.fully_qualified_type") or name, name)
        return record
    except Exception:
        return None


# The attributes rtrace reads from a component, and the component classes found to have none of
# them: reading a component costs a frame's locals (~2 µs), paid once for a class that has nothing.
_READ = ("top_k", "document_store", *_runs.MODEL_ATTRS)
_nothing: set[Any] = set()


def _own(key: Any, type_name: Any) -> dict[str, Any]:
    if key in _nothing:
        return {}
    own = _runs.fields_of(_instance(type_name))
    if own and not any(k in own for k in _READ) and len(_nothing) < 1000:
        _nothing.add(key)
    return own


def _instance(type_name: Any) -> Any:
    """The component Haystack is about to run: the ``instance`` of the pipeline's ``_run_component``
    (sync or async) that opened this span, a few frames up. Haystack's span tags name its class but
    do not carry it; only the frame that holds it is read, and only if it is of that class."""
    try:
        frame: Any = sys._getframe(3)  # _own <- _begin <- trace <- contextlib's __enter__ <- _run_component
        for _ in range(6):
            if frame is None:
                return None
            code = frame.f_code
            if code.co_name.startswith("_run_component") and "instance" in code.co_varnames:
                instance = frame.f_locals.get("instance")
                return instance if type(instance).__name__ == type_name else None
            frame = frame.f_back
    except Exception:
        pass
    return None


def _stage(tags: dict[str, Any]) -> str | None:
    inputs = tags.get("haystack.component.input_spec")
    outputs = tags.get("haystack.component.output_spec")
    if not isinstance(inputs, dict) or not isinstance(outputs, dict):
        return None
    kind = str(tags.get("haystack.component.type") or "")
    has_query = any(k in inputs for k in QUERY_INPUTS)
    if "documents" in outputs:
        if "documents" in inputs:
            if has_query or "Ranker" in kind:
                return "rerank"
            if "Joiner" in kind:
                return "join"
            return None  # cleaners, splitters: indexing, not retrieval
        if has_query or "Retriever" in kind:
            return "retriever"
        return None
    if "embedding" in outputs and "text" in inputs:
        return "embedding"
    return None
