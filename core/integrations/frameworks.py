"""The framework hooks, by name: what ``rtrace run`` installs and ``trace_frameworks`` turns on.

Each hook module has ``install(handler)`` and ``uninstall(handler)`` (LlamaIndex's and
Haystack's also take no handler: runs then go to the default handlers) and costs
nothing until its framework is imported.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

NAMES = ("langchain", "llamaindex", "haystack")


def hook(name: str) -> ModuleType:
    """The hook module of framework ``name`` (one of ``NAMES``)."""
    if name not in NAMES:
        raise ValueError(f"unknown framework {name!r}; expected one of {', '.join(NAMES)}")
    return importlib.import_module(f"rtrace.core.integrations.{name}")


def trace_frameworks(handler: Any = None, *, llamaindex: bool = True, haystack: bool = True,
                     langchain_scores: bool = True) -> None:
    """Record LlamaIndex and Haystack retrievals too (once each framework is imported).

    The one line a library user adds; runs then go wherever rtrace runs go
    (``trace_to``, ``RTRACE_OUTPUT``), and to ``handler`` if one is given.
    LangChain runs reach rtrace through ``callbacks=[JsonlHandler(...)]`` (or ``rtrace run``);
    ``langchain_scores`` adds what its vector store retrievers drop: each document's score,
    ``k`` and the search, embedding and rerank stages (``langchain_stores``).
    """
    if langchain_scores:
        from rtrace.core.integrations import langchain_stores

        langchain_stores.install()
    for name, on in (("llamaindex", llamaindex), ("haystack", haystack)):
        if on:
            hook(name).install(handler)
