"""rtrace.core: trace retriever runs to JSONL, with LangChain's callback API.

    from rtrace.core import retriever, trace_to

    @retriever
    def search(query: str) -> list[Document]: ...

    with trace_to("runs.jsonl"):
        search("what is rrf?")
"""

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
