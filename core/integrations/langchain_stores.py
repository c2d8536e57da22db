"""What LangChain's vector store retrievers compute and then drop: scores, k, stages.

``VectorStoreRetriever`` asks its store for documents and scores, then returns the
documents alone, so no callback ever sees a score. While installed (``rtrace run``
with LangChain on, or ``install()`` in a library), this module:

- wraps ``BaseRetriever.invoke`` / ``ainvoke`` so each retriever call has a
  ``RunCapture`` (``rtrace.core.record.capture``): what was asked (``k``,
  ``search_type``, ``score_threshold``, ``fetch_k``, the embedding model) and the
  scores computed inside it. The first retriever run that starts inside the call
  binds the capture; rtrace's handlers record the request on ``retriever_start``
  and put the scores on the documents of ``retriever_end``. (A call nothing could
  read a capture of gets none: a later call of a retriever class with no store or
  compressor while no store, embeddings or compressor class is wrapped yet.);
- wraps, class by class as retrievers meet them, the vector store methods that
  compute scores (``similarity_search_with_score``, ``..._by_vector``, InMemory's
  ``_similarity_search_with_score_by_vector``, FAISS's
  ``max_marginal_relevance_search_with_score_by_vector``, the ``..._relevance_scores``
  family). Each notes ``(document, score)`` keyed by the very document object it
  returned; when the retriever hands back that object, its score is recorded with
  its kind: ``similarity`` (InMemory's cosine, inner products), ``distance`` (L2,
  cosine distance) or ``relevance`` (LangChain's 0-1 normalised score). The outermost
  call wins, so ``similarity_score_threshold`` records the relevance it filtered on.
  MMR records each chosen document's similarity (or distance) to the query as its
  store computed it (not an MMR score: stores compute none to keep);
- records stages as child runs of the retriever run: the vector search (a chain run,
  ``rtrace_stage="search"``), the query embedding (``rtrace_stage="embedding"``) and
  a ``BaseDocumentCompressor`` (a retriever run, ``rtrace_stage="rerank"``, with the
  documents it was given as ``input_documents`` and the ones it returned).

Nothing the user's code calls or receives changes, and no extra search runs: the
wrappers call the original with the same arguments and return its result as is.
Outside a recorded retriever call a wrapper costs one context-variable read. An
exception passes through unchanged, without a frame of rtrace in its traceback.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from rtrace.core.integrations import _hooks, _runs
from rtrace.core.record import capture, context
from rtrace.core.record.managers import ParentRunManager

HOOK_MODULE = "langchain_core.retrievers"

# Methods whose results are (document, score, ...) tuples in the store's own measure.
RAW_SCORES = (
    "similarity_search_with_score", "asimilarity_search_with_score",
    "similarity_search_with_score_by_vector", "asimilarity_search_with_score_by_vector",
    "_similarity_search_with_score_by_vector",  # InMemoryVectorStore: (doc, similarity, vector)
    "max_marginal_relevance_search_with_score_by_vector",  # FAISS
    "amax_marginal_relevance_search_with_score_by_vector",
)
RELEVANCE_SCORES = (
    "similarity_search_with_relevance_scores", "asimilarity_search_with_relevance_scores",
    "_similarity_search_with_relevance_scores", "_asimilarity_search_with_relevance_scores",
    "similarity_search_by_vector_with_relevance_scores",  # Chroma
)
# What retrievers call first: the search stage spans the outermost of these.
SEARCHES = (
    "similarity_search", "asimilarity_search", "similarity_search_by_vector", "asimilarity_search_by_vector",
    "max_marginal_relevance_search", "amax_marginal_relevance_search",
    "max_marginal_relevance_search_by_vector", "amax_marginal_relevance_search_by_vector",
)
EMBED = ("embed_query", "aembed_query")
COMPRESS = ("compress_documents", "acompress_documents")

_lock = threading.Lock()
_patches: list[tuple[type, str, Any]] = []  # (class, attribute, original): what uninstall restores
_patched: set[tuple[type, str]] = set()
_seen: set[type] = set()  # store / embeddings / compressor classes already looked at
_installed = False
_k_defaults: dict[tuple[type, str], Any] = {}


def install() -> None:
    """Capture scores, requests and stages of LangChain retrievers (now, or once LangChain loads)."""
    global _installed
    if _installed:
        return
    _installed = True
    _hooks.when_imported(HOOK_MODULE, _patch_retrievers, "LangChain scores")


def uninstall() -> None:
    """Undo every patch (the classes get their own methods back)."""
    global _installed
    _hooks.cancel(HOOK_MODULE, _patch_retrievers)
    with _lock:
        for cls, name, original in reversed(_patches):
            setattr(cls, name, original)
        _patches.clear()
        _patched.clear()
        _seen.clear()
        _plans.clear()
        _installed = False


def installed() -> bool:
    return _installed


# patching -----------------------------------------------------------------


def _patch_retrievers(module: ModuleType) -> None:
    base = module.BaseRetriever
    for name, make in (("invoke", _wrap_invoke), ("ainvoke", _wrap_ainvoke)):
        _patch(base, name, make)


def _patch(cls: type, name: str, make: Callable[[Any], Any]) -> None:
    """Wrap ``cls.name`` where it is defined (so every subclass that inherits it is covered)."""
    for owner in cls.__mro__:
        if owner is object:
            return
        original = vars(owner).get(name)
        if original is None:
            continue
        if not inspect.isfunction(original):  # a staticmethod, a property: not ours to wrap
            return
        with _lock:
            if (owner, name) in _patched:
                return
            wrapper = make(original)
            setattr(owner, name, wrapper)
            _patches.append((owner, name, original))
            _patched.add((owner, name))
        return


def _hide(error: BaseException, code: Any) -> None:
    # The wrapper's own frame out of the traceback: the user sees what they would without rtrace.
    tb = error.__traceback__
    if tb is not None and tb.tb_frame.f_code is code:
        error.__traceback__ = tb.tb_next


Plan = tuple[bool, tuple[str, ...]]  # (has a store, compressor fields)
BARE: Plan = (False, ())  # a retriever class with neither: the one object, compared by identity
_plans: dict[type, Plan] = {}  # retriever class -> its plan


def _plan(retriever: Any) -> Plan:
    """Which fields of this retriever class matter, looked up once per class (invoke is hot)."""
    cls = type(retriever)
    plan = _plans.get(cls)
    if plan is None:
        from langchain_core.documents import BaseDocumentCompressor

        fields = getattr(retriever, "__dict__", None)
        fields = fields if isinstance(fields, dict) else {}
        plan = ("vectorstore" in fields,
                tuple(k for k, v in fields.items() if isinstance(v, BaseDocumentCompressor)))
        plan = _plans[cls] = BARE if plan == BARE else plan
    return plan


def _discover(retriever: Any, plan: Plan) -> dict[str, Any]:
    """Wrap the store, embeddings and compressor this retriever uses; return what it asks for."""
    has_store, compressor_fields = plan
    if not has_store and not compressor_fields:
        return {}
    request: dict[str, Any] = {}
    store = getattr(retriever, "vectorstore", None) if has_store else None
    if store is not None and type(store) not in _seen:
        _seen_store(type(store))
    if store is not None:
        embeddings = _embeddings(store)
        if embeddings is not None:
            if type(embeddings) not in _seen:
                _seen.add(type(embeddings))
                for name in EMBED:
                    _patch(type(embeddings), name, _wrap_embed)
            model = _model_name(embeddings)
            if model:
                request["embedding_model"] = model
        search_type = getattr(retriever, "search_type", None)
        kwargs = getattr(retriever, "search_kwargs", None)
        if isinstance(search_type, str):
            request["search_type"] = search_type
        if isinstance(kwargs, dict):
            k = kwargs.get("k")
            request["k"] = k if k is not None else _default(type(store), search_type, "k")
            if kwargs.get("score_threshold") is not None:
                request["score_threshold"] = kwargs["score_threshold"]
            if search_type == "mmr":
                fetch_k = kwargs.get("fetch_k")
                request["fetch_k"] = fetch_k if fetch_k is not None else _default(type(store), search_type, "fetch_k")
        request["vector_store"] = type(store).__name__
    for compressor in _compressors(retriever, compressor_fields) if compressor_fields else ():
        if type(compressor) not in _seen:
            _seen.add(type(compressor))
            for name in COMPRESS:
                _patch(type(compressor), name, _wrap_compress)
    return request


def _compressors(retriever: Any, names: tuple[str, ...]) -> list[Any]:
    """The document compressors (rerankers) a retriever holds: ``base_compressor`` of
    ContextualCompressionRetriever, or any field of a user's retriever, and a pipeline's parts."""
    if not names:
        return []
    from langchain_core.documents import BaseDocumentCompressor

    found = [v for v in (getattr(retriever, n, None) for n in names) if isinstance(v, BaseDocumentCompressor)]
    for compressor in list(found):
        parts = getattr(compressor, "transformers", None)  # DocumentCompressorPipeline
        if isinstance(parts, list):
            found += [p for p in parts if isinstance(p, BaseDocumentCompressor)]
    return found


def _seen_store(cls: type) -> None:
    _seen.add(cls)
    for name in RAW_SCORES:
        _patch(cls, name, functools.partial(_wrap_store, name=name, relevance=False, search=False))
    for name in RELEVANCE_SCORES:
        _patch(cls, name, functools.partial(_wrap_store, name=name, relevance=True, search=False))
    for name in SEARCHES:
        _patch(cls, name, functools.partial(_wrap_store, name=name, relevance=False, search=True))


def _embeddings(store: Any) -> Any:
    try:
        embeddings = store.embeddings  # a property on most stores
    except Exception:
        embeddings = None
    if embeddings is None:
        embeddings = getattr(store, "embedding", None)
    return embeddings if hasattr(embeddings, "embed_query") else None


_model_attrs: dict[type, str | None] = {}  # embeddings class -> the attribute naming its model


def _model_name(embeddings: Any) -> str | None:
    cls = type(embeddings)
    if cls not in _model_attrs:  # once per class: a missing attribute on a pydantic model is slow
        _model_attrs[cls] = next((a for a in _runs.MODEL_ATTRS
                                  if isinstance(getattr(embeddings, a, None), str)), None)
    attr = _model_attrs[cls]
    value = getattr(embeddings, attr, None) if attr is not None else None
    return value if isinstance(value, str) and value else None


def _default(cls: type, search_type: Any, param: str) -> Any:
    """The store's own default for ``param`` of the method the search type calls (k=4 mostly)."""
    method = {"mmr": "max_marginal_relevance_search",
              "similarity_score_threshold": "similarity_search_with_relevance_scores"}.get(search_type,
                                                                                           "similarity_search")
    key = (cls, method + "." + param)
    if key not in _k_defaults:
        value = None
        try:
            fn = getattr(cls, method)
            fn = inspect.unwrap(fn)
            p = inspect.signature(fn).parameters.get(param)
            if p is not None and isinstance(p.default, int):
                value = p.default
        except Exception:
            pass
        _k_defaults[key] = value
    return _k_defaults[key]


# score kinds --------------------------------------------------------------


def raw_kind(store: Any, owner: type) -> str | None:
    """What the raw scores of ``store``'s ``owner`` class mean: ``similarity``, ``distance`` or unknown."""
    if owner.__name__ == "InMemoryVectorStore":
        return "similarity"  # cosine similarity (langchain_core.vectorstores.in_memory)
    strategy = getattr(store, "distance_strategy", None)  # FAISS and stores using LangChain's DistanceStrategy
    if strategy is not None:
        value = str(getattr(strategy, "value", strategy)).upper()
        return "similarity" if value in ("MAX_INNER_PRODUCT", "DOT_PRODUCT", "JACCARD") else "distance"
    try:
        fn = store._select_relevance_score_fn()
    except Exception:
        return None
    fn = getattr(fn, "__func__", fn)
    from langchain_core.vectorstores import VectorStore

    if fn in (VectorStore._euclidean_relevance_score_fn, VectorStore._cosine_relevance_score_fn):
        return "distance"  # what these functions take: Chroma's l2 / cosine spaces, among others
    return None


# stages -------------------------------------------------------------------


class _Stage:
    """A stage run under the capture's retriever run; ``close`` ends it (or records the error)."""

    __slots__ = ("cap", "kind", "run", "token")

    def __init__(self, cap: capture.RunCapture, kind: str, start: Callable[[], Any]) -> None:
        self.cap, self.kind, self.run, self.token = cap, kind, None, None
        first = cap.open_stage(kind)
        try:
            if first:  # the first stage: nest it under the LangChain retriever run
                handlers = cap.handlers or []
                self.token = context.set_current_run(ParentRunManager(
                    run_id=cap.run_id, handlers=list(handlers), inheritable_handlers=list(handlers),
                    parent_run_id=cap.parent_run_id))
            self.run = start()
        except Exception:
            self.run = None

    def close(self, error: BaseException | None = None, documents: Any = None) -> None:
        self.cap.close_stage(self.kind)
        try:
            if self.run is not None:
                if error is not None:
                    self.run.error(error)
                else:
                    self.run.end(documents)
        except Exception:
            pass
        finally:
            if self.token is not None:
                try:
                    context.reset_current_run(self.token)
                except ValueError:
                    pass


def _active(kind: str) -> capture.RunCapture | None:
    """The capture of the retriever run this call belongs to, when a stage of ``kind`` may open."""
    cap = capture.current()
    if cap is None or cap.run_id is None or not cap.handlers:
        return None
    return cap


def _search_stage(cap: capture.RunCapture, store: Any, name: str) -> _Stage | None:
    if cap.in_stage("search"):
        return None
    meta = {_runs.STAGE_KEY: "search", "method": name, "vector_store": type(store).__name__}
    return _Stage(cap, "search", lambda: _runs.start_chain([], f"{type(store).__name__}.{name}", metadata=meta))


def _wrap_store(original: Any, *, name: str, relevance: bool, search: bool) -> Any:
    owner_name = original.__qualname__.rpartition(".")[0]
    found: dict[type, tuple[type, str]] = {}  # store class -> (the class defining the method, score source)

    def finish(cap: capture.RunCapture, store: Any, result: Any) -> None:
        if search or not isinstance(result, list):
            return
        try:
            cls = type(store)
            hit = found.get(cls)
            if hit is None:
                owner = next((k for k in cls.__mro__ if k.__name__ == owner_name), cls)
                hit = found[cls] = (owner, f"{cls.__name__}.{name}")
            kind = "relevance" if relevance else raw_kind(store, hit[0])
            cap.note(result, kind, hit[1])
        except Exception:
            pass

    def end(cap: capture.RunCapture, store: Any, stage: _Stage | None, result: Any) -> None:
        finish(cap, store, result)
        if stage is not None:
            stage.close()

    return _staged(original, "search", lambda cap, store, args, kwargs: _search_stage(cap, store, name), end,
                   needs_stage=False)


def _embed_stage(cap: capture.RunCapture, embeddings: Any) -> _Stage | None:
    if cap.in_stage("embedding"):
        return None
    meta: dict[str, Any] = {_runs.STAGE_KEY: "embedding", "texts": 1}
    model = _model_name(embeddings)
    if model:
        meta["embedding_model"] = model
    return _Stage(cap, "embedding", lambda: _runs.start_chain([], type(embeddings).__name__, metadata=meta))


def _wrap_embed(original: Any) -> Any:
    return _staged(original, "embedding", lambda cap, embeddings, args, kwargs: _embed_stage(cap, embeddings),
                   lambda cap, embeddings, stage, result: stage.close(), needs_stage=True)


def _rerank_stage(cap: capture.RunCapture, compressor: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> _Stage | None:
    if cap.in_stage("rerank"):
        return None
    documents = args[0] if args else kwargs.get("documents")
    query = args[1] if len(args) > 1 else kwargs.get("query")
    given = list(documents) if isinstance(documents, (list, tuple)) else []
    meta: dict[str, Any] = {_runs.STAGE_KEY: "rerank", "input_documents": len(given)}
    top = getattr(compressor, "top_n", None)
    if isinstance(top, int) and not isinstance(top, bool):
        meta["top_n"] = top
    name = type(compressor).__name__
    return _Stage(cap, "rerank", lambda: _runs.start_retriever([], name, query, metadata=meta,
                                                               input_documents=given))


def _wrap_compress(original: Any) -> Any:
    def end(cap: capture.RunCapture, compressor: Any, stage: _Stage, result: Any) -> None:
        stage.close(documents=list(result) if isinstance(result, (list, tuple)) else [])

    return _staged(original, "rerank", _rerank_stage, end, needs_stage=True)


def _staged(original: Any, kind: str, begin: Callable[..., _Stage | None], end: Callable[..., None], *,
            needs_stage: bool) -> Any:
    """``original`` (sync or async) recorded as a stage of ``kind`` of the retriever call it is in.

    ``begin(cap, self, args, kwargs)`` opens the stage (None: one of its kind is open already);
    ``end(cap, self, stage, result)`` records the result and closes it. Outside a recorded call,
    or with no stage when ``needs_stage``, the original is called untouched. An exception closes
    the stage with it and passes through with no frame of rtrace in its traceback.
    """
    if inspect.iscoroutinefunction(original):
        @functools.wraps(original)
        async def awrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            cap = _active(kind)
            stage = begin(cap, self, args, kwargs) if cap is not None else None
            if cap is None or (stage is None and needs_stage):
                return await original(self, *args, **kwargs)
            try:
                result = await original(self, *args, **kwargs)
            except BaseException as e:
                if stage is not None:
                    stage.close(e)
                _hide(e, awrapper.__code__)
                raise
            end(cap, self, stage, result)
            return result

        return awrapper

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        cap = _active(kind)
        stage = begin(cap, self, args, kwargs) if cap is not None else None
        if cap is None or (stage is None and needs_stage):
            return original(self, *args, **kwargs)
        try:
            result = original(self, *args, **kwargs)
        except BaseException as e:
            if stage is not None:
                stage.close(e)
            _hide(e, wrapper.__code__)
            raise
        end(cap, self, stage, result)
        return result

    return wrapper


# retriever calls ----------------------------------------------------------

_get = capture.current
_reset = capture._current.reset


def _open(retriever: Any, kwargs: dict[str, Any]) -> Any:
    """Open the capture of one retriever call (its token), or None when nothing could read one.

    Its readers are the handlers (the request: nothing for a retriever with no store or
    compressor) and the wrapped stores, embeddings and compressors (none while ``_seen`` is
    empty). An enclosing call's capture is hidden from the call all the same.

    A class's first call always gets one: it may be what brings a store into use (a
    VectorStoreRetriever it invokes wraps the store class), and its own direct calls to that
    store later in the same call read it, as they do on every later call."""
    try:
        plan = _plans.get(type(retriever))
        if plan is None:
            plan = _plan(retriever)
        elif plan is BARE and not _seen:
            return capture.enter(None) if _get() is not None else None
        request = _discover(retriever, plan)
        if request:
            k = kwargs.get("k")  # invoke(query, k=2) reaches the search when the retriever takes kwargs
            if isinstance(k, int) and not isinstance(k, bool) and "k" in request:
                request["k"] = k
    except Exception:
        request = {}
    return capture.enter(capture.RunCapture(request))


def _wrap_invoke(original: Any) -> Any:
    @functools.wraps(original)
    def invoke(self: Any, *args: Any, **kwargs: Any) -> Any:
        # The common case decided inline (this runs on every retriever call): see _open.
        token = None if _plans.get(type(self)) is BARE and not _seen and _get() is None else _open(self, kwargs)
        try:
            return original(self, *args, **kwargs)
        except BaseException as e:
            _hide(e, invoke.__code__)
            raise
        finally:
            if token is not None:
                try:
                    _reset(token)
                except ValueError:  # another context (a generator resumed elsewhere): that one is untouched
                    pass

    return invoke


def _wrap_ainvoke(original: Any) -> Any:
    @functools.wraps(original)
    async def ainvoke(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = None if _plans.get(type(self)) is BARE and not _seen and _get() is None else _open(self, kwargs)
        try:
            return await original(self, *args, **kwargs)
        except BaseException as e:
            _hide(e, ainvoke.__code__)
            raise
        finally:
            if token is not None:
                try:
                    _reset(token)
                except ValueError:
                    pass

    return ainvoke
