"""Event schema v1: the event names (every module uses these) and the JSON Schema.

Every line of a log is one event object. Keys are flat and stable; a new key may
be added, none renamed or removed without bumping ``v`` (see schema/events-v1.json).
"""

from __future__ import annotations

SCHEMA_VERSION = 1

SESSION_START = "session_start"
SESSION_END = "session_end"
RETRIEVER_START = "retriever_start"
RETRIEVER_END = "retriever_end"
RETRIEVER_ERROR = "retriever_error"
RETRY = "retry"
TEXT = "text"
CUSTOM_EVENT = "custom_event"
SESSION_EVENTS = frozenset({SESSION_START, SESSION_END})
TIMELINE_EVENTS = frozenset({RETRY, TEXT, CUSTOM_EVENT})  # events attached to a run

RUN_KINDS = ("retriever", "chain", "tool", "llm")
# metadata key naming a stage of a retrieval (search, embedding, rerank, join): written by the
# framework integrations, read by stats, diff and export.
STAGE_KEY = "rtrace_stage"
CHAIN_START, CHAIN_END, CHAIN_ERROR = "chain_start", "chain_end", "chain_error"
TOOL_START, TOOL_END, TOOL_ERROR = "tool_start", "tool_end", "tool_error"
LLM_START, LLM_END, LLM_ERROR = "llm_start", "llm_end", "llm_error"
START_EVENTS = frozenset(f"{k}_start" for k in RUN_KINDS)
END_EVENTS = frozenset(f"{k}_end" for k in RUN_KINDS)
ERROR_EVENTS = frozenset(f"{k}_error" for k in RUN_KINDS)
RUN_EVENTS = START_EVENTS | END_EVENTS | ERROR_EVENTS
EVENTS = RUN_EVENTS | {SESSION_START, SESSION_END, RETRY, TEXT, CUSTOM_EVENT}


# `retriever_start`: what the retrieval asked of its store, where known (the recorder's
# ``fields.request_fields``); replayed as recorded, shown beside the run's query.
REQUEST_FIELDS = ("k", "search_type", "score_threshold", "fetch_k", "vector_store", "embedding_provider",
                  "embedding_model")

# `retriever_end`: how many documents the retriever returned, written just before `documents`
# so that a reader can count them without parsing them (``recorded_count``).
DOCUMENT_COUNT = "document_count"


def recorded_count(end: dict) -> int | None:  # type: ignore[type-arg]
    """The ``document_count`` an end event records, or None when it has no usable one (an older
    log, another writer, a hand-edited line): then its ``documents`` are what there is to count."""
    n = end.get(DOCUMENT_COUNT)
    return n if type(n) is int and n >= 0 else None


def schema_text() -> str:
    """The JSON Schema of event schema v1, as shipped in the package."""
    from importlib import resources

    return resources.files("rtrace.core").joinpath("schema/events-v1.json").read_text("utf-8")
