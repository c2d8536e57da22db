"""The handler rtrace injects into LangChain leaves LangChain's dispatch as it is without rtrace.

LangChain's AsyncCallbackManager.on_llm_start skips every non-inline handler when any
handler is inline (a LangChain bug). rtrace's JSONL writer is inline, so injecting it
as is silenced the user's own async handlers' and astream_events' on_llm_start.
"""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

import pytest
from conftest import read_events
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.language_models import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from rtrace.core import JsonlHandler
from rtrace.core.integrations import langchain as lc_hook



class Mine(AsyncCallbackHandler):
    def __init__(self, run_inline: bool = False) -> None:
        self.run_inline = run_inline
        self.seen: list[Any] = []

    async def on_llm_start(self, serialized: Any, prompts: list[str], **kwargs: Any) -> None:
        self.seen.append(("llm_start", prompts))

    async def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.seen.append(("chat_model_start", len(messages)))

    async def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.seen.append(("llm_end", response.generations[0][0].text))


async def _program(handlers: list[Any]) -> tuple[list[Any], list[str], list[str]]:
    config: Any = {"callbacks": handlers or None}  # LangChain's batch fails on an empty list
    llm = FakeListLLM(responses=["one", "two", "three", "four"])
    await llm.ainvoke("first", config)
    await llm.abatch(["a", "b"], config)
    chat = FakeListChatModel(responses=["chat"])
    await chat.ainvoke("hi", config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v1 = [e["event"] async for e in llm.astream_events("q", version="v1")]
    v2 = [e["event"] async for e in llm.astream_events("q", version="v2")]
    return [h.seen for h in handlers], v1, v2


def _run(handlers_factory: Any, log: Path | None) -> tuple[Any, list[dict[str, Any]]]:
    if log is None:
        return asyncio.run(_program(handlers_factory())), []
    writer = JsonlHandler(log)
    lc_hook.install(writer)
    try:
        result = asyncio.run(_program(handlers_factory()))
    finally:
        lc_hook.uninstall(writer)
        writer.close()
    return result, read_events(log)


@pytest.mark.parametrize("handlers", [
    pytest.param(lambda: [Mine()], id="user-async-handler"),
    pytest.param(lambda: [Mine(run_inline=True), Mine()], id="user-inline-and-async"),
    pytest.param(lambda: [], id="no-user-handler"),
])
def test_async_llm_events_reach_every_handler_as_without_rtrace(handlers: Any, tmp_path: Path) -> None:
    plain, _ = _run(handlers, None)
    traced, events = _run(handlers, tmp_path / "t.jsonl")
    assert traced == plain
    seen, v1, v2 = traced
    assert v2 == ["on_llm_start", "on_llm_end"] and v1[0] == "on_llm_start"
    if seen and not handlers()[0].run_inline:
        assert seen[0][:2] == [("llm_start", ["first"]), ("llm_end", "one")]
    starts = [e for e in events if e["event"] == "llm_start"]
    ends = [e for e in events if e["event"] == "llm_end"]
    assert len(starts) == len(ends) == 6  # the writer records every LLM run whole, too


def test_the_hook_is_inline_outside_the_buggy_partition(tmp_path: Path) -> None:
    writer = JsonlHandler(tmp_path / "t.jsonl")
    hook = lc_hook.LangChainHook(writer)
    assert hook.run_inline is True and hook.raise_error is False and hook.ignore_llm is False
    assert hook.on_retriever_start == writer.on_retriever_start  # no extra call layer
    assert hook.on_hook_of_a_newer_langchain(1, run_id=None) is None and hook.ignore_newer is False
    writer.close()


def test_installed_handlers_passed_explicitly_are_not_added_twice(tmp_path: Path) -> None:
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    class R(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
            return [Document("d", id="1")]

    writer = JsonlHandler(tmp_path / "t.jsonl")
    lc_hook.install(writer)
    try:
        R().invoke("q", {"callbacks": lc_hook.installed_handlers()})
    finally:
        lc_hook.uninstall(writer)
        writer.close()
    assert [e["event"] for e in read_events(tmp_path / "t.jsonl")] == [
        "session_start", "retriever_start", "retriever_end", "session_end"]


def test_a_hook_passed_by_hand_keeps_the_users_llm_start(tmp_path: Path) -> None:
    """JsonlHandler itself is inline: passed to LangChain as is, LangChain's bug drops the user's
    async on_llm_start; wrapped in LangChainHook, it does not."""
    seen = {}
    for wrap in (False, True):
        writer = JsonlHandler(tmp_path / f"{wrap}.jsonl")
        mine = Mine()
        handler = lc_hook.LangChainHook(writer) if wrap else writer
        asyncio.run(FakeListLLM(responses=["x"]).ainvoke("q", {"callbacks": [handler, mine]}))
        writer.close()
        seen[wrap] = [s[0] for s in mine.seen]
        assert [e["event"] for e in read_events(tmp_path / f"{wrap}.jsonl")][1:3] == ["llm_start", "llm_end"]
    assert seen == {False: ["llm_end"], True: ["llm_start", "llm_end"]}


def test_an_rtrace_run_manager_handed_to_langchain_is_not_recorded_twice(tmp_path: Path) -> None:
    """LangChain adds the hook unless the hook or the handler it stands for is already in the run:
    an rtrace run's child manager (holding the handler itself) passed to a LangChain runnable."""
    from langchain_core.runnables import RunnableLambda
    from rtrace.core import Document, Retriever, trace_to

    class Outer(Retriever):
        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Any]:
            lam = RunnableLambda(lambda q: [Document(q)])
            return lam.invoke(query, {"callbacks": run_manager.get_child()}) + lam.invoke(query)

    log = tmp_path / "t.jsonl"
    with trace_to(log) as writer:  # as `rtrace run` does: a default handler, and LangChain's hook
        lc_hook.install(writer)
        try:
            Outer().invoke("q")
        finally:
            lc_hook.uninstall(writer)
    events = read_events(log)
    starts = [e for e in events if e["event"].endswith("_start") and e["event"] != "session_start"]
    assert [e["event"] for e in starts] == ["retriever_start", "chain_start", "chain_start"]
    assert len({e["run_id"] for e in starts}) == 3
    assert starts[1]["parent_run_id"] == starts[2]["parent_run_id"] == starts[0]["run_id"]
