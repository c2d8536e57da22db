"""rtrace.core: trace retriever runs to JSONL, with LangChain's callback API.

    from rtrace.core import retriever, trace_to

    @retriever
    def search(query: str) -> list[Document]: ...

    with trace_to("runs.jsonl"):
        search("what is rrf?")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rtrace.core.errors import LogError, MalformedLineError, OutputError, RtraceError, UsageError
    from rtrace.core.events import SCHEMA_VERSION, schema_text
    from rtrace.core.integrations.frameworks import trace_frameworks
    from rtrace.core.record.context import current_run, trace_to
    from rtrace.core.record.documents import Document
    from rtrace.core.record.handlers import AsyncCallbackHandler, BaseCallbackHandler
    from rtrace.core.record.instrument import Retriever, adispatch_custom_event, dispatch_custom_event, retriever
    from rtrace.core.record.jsonl import JsonlHandler
    from rtrace.core.record.managers import (
        AsyncCallbackManager,
        AsyncCallbackManagerForRetrieverRun,
        AsyncParentRunManager,
        AsyncRunManager,
        BaseCallbackManager,
        BaseRunManager,
        CallbackManager,
        CallbackManagerForRetrieverRun,
        Callbacks,
        ParentRunManager,
        RunManager,
        StdOutCallbackHandler,
    )
    from rtrace.core.version import __version__

__all__ = [
    "SCHEMA_VERSION",
    "AsyncCallbackHandler",
    "AsyncCallbackManager",
    "AsyncCallbackManagerForRetrieverRun",
    "AsyncParentRunManager",
    "AsyncRunManager",
    "BaseCallbackHandler",
    "BaseCallbackManager",
    "BaseRunManager",
    "CallbackManager",
    "CallbackManagerForRetrieverRun",
    "Callbacks",
    "Document",
    "JsonlHandler",
    "LogError",
    "MalformedLineError",
    "OutputError",
    "ParentRunManager",
    "Retriever",
    "RtraceError",
    "RunManager",
    "StdOutCallbackHandler",
    "UsageError",
    "__version__",
    "adispatch_custom_event",
    "current_run",
    "dispatch_custom_event",
    "retriever",
    "schema_text",
    "trace_frameworks",
    "trace_to",
]

# The public API is loaded when first asked for: the reading commands import rtrace.core's
# modules (rtrace.core.events, rtrace.core.read.*) without the recording machinery, and every
# `rtrace show`/`filter`/`stats` starts faster for it.
_WHERE = {
    "LogError": "rtrace.core.errors",
    "MalformedLineError": "rtrace.core.errors",
    "OutputError": "rtrace.core.errors",
    "RtraceError": "rtrace.core.errors",
    "UsageError": "rtrace.core.errors",
    "SCHEMA_VERSION": "rtrace.core.events",
    "schema_text": "rtrace.core.events",
    "trace_frameworks": "rtrace.core.integrations.frameworks",
    "current_run": "rtrace.core.record.context",
    "trace_to": "rtrace.core.record.context",
    "Document": "rtrace.core.record.documents",
    "AsyncCallbackHandler": "rtrace.core.record.handlers",
    "BaseCallbackHandler": "rtrace.core.record.handlers",
    "Retriever": "rtrace.core.record.instrument",
    "adispatch_custom_event": "rtrace.core.record.instrument",
    "dispatch_custom_event": "rtrace.core.record.instrument",
    "retriever": "rtrace.core.record.instrument",
    "JsonlHandler": "rtrace.core.record.jsonl",
    "AsyncCallbackManager": "rtrace.core.record.managers",
    "AsyncCallbackManagerForRetrieverRun": "rtrace.core.record.managers",
    "AsyncParentRunManager": "rtrace.core.record.managers",
    "AsyncRunManager": "rtrace.core.record.managers",
    "BaseCallbackManager": "rtrace.core.record.managers",
    "BaseRunManager": "rtrace.core.record.managers",
    "CallbackManager": "rtrace.core.record.managers",
    "CallbackManagerForRetrieverRun": "rtrace.core.record.managers",
    "Callbacks": "rtrace.core.record.managers",
    "ParentRunManager": "rtrace.core.record.managers",
    "RunManager": "rtrace.core.record.managers",
    "StdOutCallbackHandler": "rtrace.core.record.managers",
    "__version__": "rtrace.core.version",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'rtrace.core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # asked once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
