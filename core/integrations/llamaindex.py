"""Tracing unmodified LlamaIndex code: a span handler on LlamaIndex's root dispatcher.

LlamaIndex wraps its public operations in dispatcher spans (``span_enter`` with the
bound arguments and the instance, ``span_exit`` with the result, ``span_drop`` with
the exception). One span handler on the root dispatcher turns the spans that matter
for retrieval into rtrace runs:

- ``BaseRetriever.retrieve`` / ``aretrieve`` (vector, BM25, fusion, router, any
  subclass): a retriever run, the query and the returned nodes as documents (node
  id, text, metadata, score), and what it asked for as LangChain runs record it:
  ``k`` (``similarity_top_k``), ``search_type`` (the query mode; ``default`` is
  ``similarity``), ``vector_store``, ``embedding_provider`` (class names) and
  ``embedding_model``, read from the retriever's own attributes;
- node postprocessors (``_postprocess_nodes``, what rerankers implement): a retriever
  run with ``metadata.rtrace_stage = "rerank"``, the reordered nodes as documents;
- ``BaseEmbedding`` calls made inside a recorded run: a chain run with
  ``metadata.rtrace_stage = "embedding"`` (index building outside any run is not
  recorded: it is not retrieval);
- ``BaseQueryEngine.query`` / ``aquery``: a chain run, parent of the above.

Nesting follows LlamaIndex's own span tree: a span's run becomes the current run
while it is open, and LlamaIndex's ``active_span_id`` and rtrace's current run live
in the same context (tasks and threads alike). Every other span costs one dict
lookup. LlamaIndex's instrumentation events carry nothing these spans do not (the
retrieval events repeat the query and nodes; most rerankers send no event), so no
event handler is added: one hook, not two, on every call.

Installed when ``llama_index.core`` is imported (``install``); a version whose API
differs is one warning line and no LlamaIndex tracing, never an exception.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from rtrace.core.integrations import _hooks, _runs
from rtrace.core.record import context

HOOK_MODULE = "llama_index.core"
FRAMEWORK = "LlamaIndex"

RETRIEVE = frozenset({"retrieve", "aretrieve"})
QUERY = frozenset({"query", "aquery"})
RERANK = frozenset({"_postprocess_nodes", "_apostprocess_nodes"})
EMBED = frozenset({
    "get_query_embedding", "aget_query_embedding", "get_text_embedding", "aget_text_embedding",
    "get_text_embedding_batch", "aget_text_embedding_batch",
    "get_agg_embedding_from_queries", "aget_agg_embedding_from_queries",
})

_targets: list[Any] = []
_span_handler: Any = None
_dispatcher: Any = None
_kinds: dict[tuple[type, str], str | None] = {}
_open: dict[str, _runs.FrameworkRun] = {}
_bases: dict[str, type] = {}


def install(handler: Any = None) -> None:
    """Record LlamaIndex retrievals (now, or once LlamaIndex is imported).

    ``handler`` (e.g. a ``JsonlHandler``) receives the runs in addition to the
    process's default handlers; with none, runs go where ``trace_to`` /
    ``RTRACE_OUTPUT`` / ``rtrace run`` send every rtrace run.
    """
    if handler is not None and not any(h is handler for h in _targets):
        _targets.append(handler)
    if _span_handler is None and not _hooks.is_pending(HOOK_MODULE, _register):
        _hooks.when_imported(HOOK_MODULE, _register, FRAMEWORK)


def uninstall(handler: Any = None) -> None:
    """Stop sending LlamaIndex runs to ``handler``; with no handler (or none left), remove the hook."""
    global _span_handler, _dispatcher
    _targets[:] = [h for h in _targets if h is not handler]
    if handler is not None and _targets:
        return
    _targets.clear()
    _hooks.cancel(HOOK_MODULE, _register)
    if _dispatcher is not None and _span_handler is not None:
        _dispatcher.span_handlers = [h for h in _dispatcher.span_handlers if h is not _span_handler]
    _span_handler = _dispatcher = None


def installed() -> bool:
    """Whether LlamaIndex spans are being recorded (or will be, once it is imported)."""
    return _span_handler is not None or _hooks.is_pending(HOOK_MODULE, _register)


def _register(_module: ModuleType) -> None:
    global _span_handler, _dispatcher
    if _span_handler is not None:
        return
    # Everything this hook relies on, checked before anything is changed.
    from llama_index.core.base.base_query_engine import BaseQueryEngine
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
    from llama_index.core.postprocessor.types import BaseNodePostprocessor

    dispatcher = get_dispatcher()
    for name in ("span_enter", "span_exit", "span_drop"):
        if not callable(getattr(BaseSpanHandler, name, None)):
            raise AttributeError(f"llama-index-core {_version()}: BaseSpanHandler has no {name}")
    if not callable(getattr(dispatcher, "add_span_handler", None)):
        raise AttributeError(f"llama-index-core {_version()}: the root dispatcher has no add_span_handler")
    if not isinstance(getattr(dispatcher, "span_handlers", None), list):
        raise AttributeError(f"llama-index-core {_version()}: the root dispatcher has no span_handlers list")
    _bases.update(retriever=BaseRetriever, query=BaseQueryEngine, rerank=BaseNodePostprocessor,
                  embedding=BaseEmbedding)
    handler = _span_handler_class(BaseSpanHandler)()
    dispatcher.add_span_handler(handler)
    _span_handler, _dispatcher = handler, dispatcher


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("llama-index-core")
    except Exception:
        return "(unknown version)"


def _span_handler_class(base: type) -> type:
    class RtraceSpanHandler(base):  # type: ignore[misc, valid-type]
        """Turns retriever, reranker, embedding and query-engine spans into rtrace runs."""

        @classmethod
        def class_name(cls) -> str:
            return "RtraceSpanHandler"

        def span_enter(self, id_: str, bound_args: Any, instance: Any = None, parent_id: Any = None,
                       tags: Any = None, **kwargs: Any) -> None:
            if instance is None or not _runs.recording(_targets):
                return
            try:
                kind = _kind(type(instance), id_)
                if kind is not None:
                    run = _start(kind, instance, bound_args)
                    if run is not None:
                        _open[id_] = run
            except Exception:  # tracing must never change the program
                pass

        def span_exit(self, id_: str, bound_args: Any, instance: Any = None, result: Any = None,
                      **kwargs: Any) -> None:
            run = _open.pop(id_, None)
            if run is not None:
                try:
                    run.end(_documents(result) if run.kind == "retriever" else None)
                except Exception:
                    run.leave()

        def span_drop(self, id_: str, bound_args: Any, instance: Any = None, err: Any = None,
                      **kwargs: Any) -> None:
            run = _open.pop(id_, None)
            if run is not None:
                try:
                    run.error(err if isinstance(err, BaseException) else RuntimeError(str(err)))
                except Exception:
                    run.leave()

        # BaseSpanHandler's abstract methods: never called, span_enter/exit/drop are overridden.
        def new_span(self, *args: Any, **kwargs: Any) -> None:
            return None

        def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
            return None

        def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
            return None

    return RtraceSpanHandler


def _method(span_id: str) -> str:
    # The dispatcher names a method's span "Class.method-<uuid4>".
    head = span_id[:-37] if len(span_id) > 37 and span_id[-37] == "-" else span_id
    return head.rpartition(".")[2]


def _kind(cls: type, span_id: str) -> str | None:
    method = _method(span_id)
    key = (cls, method)
    try:
        return _kinds[key]
    except KeyError:
        pass
    kind = None
    if method in RETRIEVE and issubclass(cls, _bases["retriever"]):
        kind = "retriever"
    elif method in RERANK and issubclass(cls, _bases["rerank"]):
        kind = "rerank"
    elif method in EMBED and issubclass(cls, _bases["embedding"]):
        kind = "embedding"
    elif method in QUERY and issubclass(cls, _bases["query"]):
        kind = "query"
    _kinds[key] = kind
    return kind


def _arguments(bound_args: Any) -> dict[str, Any]:
    args = getattr(bound_args, "arguments", None)
    return args if isinstance(args, dict) else {}


def _query_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    text = getattr(value, "query_str", None)  # QueryBundle
    return text if isinstance(text, str) else str(value)


def _start(kind: str, instance: Any, bound_args: Any) -> _runs.FrameworkRun | None:
    name = type(instance).__name__
    args = _arguments(bound_args)
    if kind == "retriever":
        query = args.get("str_or_query_bundle", next(iter(args.values()), None))
        return _runs.start_retriever(_targets, name, _query_text(query), **_request(instance))
    if kind == "rerank":
        meta: dict[str, Any] = {_runs.STAGE_KEY: "rerank", "input_documents": len(args.get("nodes") or ())}
        top_n = getattr(instance, "top_n", None)
        if isinstance(top_n, int):
            meta["top_n"] = top_n
        return _runs.start_retriever(_targets, name, _query_text(args.get("query_bundle")), metadata=meta)
    if kind == "embedding":
        if context.current_run() is None:  # building an index, not retrieving
            return None
        meta = {_runs.STAGE_KEY: "embedding"}
        model = getattr(instance, "model_name", None)
        if isinstance(model, str):
            meta["embedding_model"] = model
        texts = args.get("texts", args.get("queries"))
        meta["texts"] = len(texts) if isinstance(texts, list) else 1
        return _runs.start_chain(_targets, name, metadata=meta)
    return _runs.start_chain(_targets, name)


_REQUEST_ATTRS = frozenset({"_similarity_top_k", "similarity_top_k", "_vector_store_query_mode", "_vector_store",
                            "vector_store", "_embed_model", "embed_model"})
# LlamaIndex's VectorStoreQueryMode, as LangChain's search_type names the same search.
_SEARCH_TYPES = {"default": "similarity"}


def _request(retriever: Any) -> dict[str, Any]:
    """What the retriever asks for, as LangChain's runs record it: ``k`` (``similarity_top_k``),
    ``search_type`` (its query mode), ``vector_store`` and ``embedding_provider`` (class names),
    ``embedding_model``. Read from the instance's own attributes only; {} for anything odd."""
    try:
        own = _runs.fields_of(retriever)
        if _REQUEST_ATTRS.isdisjoint(own):  # a custom retriever: nothing to read (every call pays this)
            return {}
        out: dict[str, Any] = {}
        k = _runs.count(own.get("_similarity_top_k", own.get("similarity_top_k")))
        if k is not None:
            out["k"] = k
        mode = own.get("_vector_store_query_mode")
        if mode is not None and type(mode) is not str:
            mode = _runs.fields_of(mode).get("_value_", mode)  # an Enum member's value (a str Enum's too)
        if isinstance(mode, str) and mode:
            out["search_type"] = _SEARCH_TYPES.get(mode, mode)
        store = own.get("_vector_store", own.get("vector_store"))
        if store is not None:
            out["vector_store"] = type(store).__name__
        embed = own.get("_embed_model", own.get("embed_model"))
        if embed is not None and isinstance(embed, _bases["embedding"]):
            out["embedding_provider"] = type(embed).__name__
            model = _runs.model_name(_runs.fields_of(embed), unknown="unknown")  # BaseEmbedding's default model_name
            if model is not None:
                out["embedding_model"] = model
        return out
    except Exception:  # never into the user's call
        return {}


def _documents(result: Any) -> list[dict[str, Any]]:
    if not isinstance(result, list):
        return []
    return [_document(item) for item in result]


def _document(item: Any) -> dict[str, Any]:
    node = getattr(item, "node", item)  # NodeWithScore, or a bare node
    text = getattr(node, "text", None)
    if not isinstance(text, str):
        try:
            text = node.get_content()
        except Exception:
            text = None
    return _runs.document(getattr(node, "node_id", None), text, getattr(node, "metadata", None),
                          getattr(item, "score", None))
