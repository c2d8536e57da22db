"""rtrace's managers against langchain_core's: same calls in, same handler calls out."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable
from uuid import UUID

import pytest
import tenacity
from differential import IMPLS, LC, RT, Log, manager_state, normalized, recorder
from langchain_core.documents import Document as LCDocument

DOCS = [LCDocument("alpha", metadata={"source": "a.md"}, id="d1"), LCDocument("beta")]
FIXED = UUID("01890000-0000-7000-8000-000000000001")


def _both(scenario: Callable[[Any], Any]) -> Any:
    """Run ``scenario`` on both implementations; they must agree; return rtrace's result."""
    lc, rt = scenario(LC), scenario(RT)
    assert rt == lc
    return rt


def _retry_with(before_sleep: Any) -> None:
    attempts = {"n": 0}

    def flaky() -> str:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise TimeoutError(f"attempt {attempts['n']} timed out")
        return "ok"

    tenacity.Retrying(
        stop=tenacity.stop_after_attempt(5), wait=tenacity.wait_fixed(0.001), before_sleep=before_sleep
    )(flaky)


def test_start_end_error_with_inheritable_and_local_config() -> None:
    def scenario(impl: Any) -> Any:
        log = Log()
        inh, loc = recorder(impl, log, "inh"), recorder(impl, log, "loc")
        cm = impl.CallbackManager.configure(
            [inh], [loc], inheritable_tags=["it"], local_tags=["lt"],
            inheritable_metadata={"im": 1}, local_metadata={"lm": 2},
        )
        rm = cm.on_retriever_start(None, "what is rrf?", name="Dense", run_id=FIXED, parent_run_id=UUID(int=5))
        rm.on_retriever_end(DOCS, extra_kw="x")
        child = rm.get_child()
        rm2 = child.on_retriever_start({"name": "Sparse"}, "q2")
        rm2.on_retriever_error(ValueError("index offline"))
        names = {id(inh): "inh", id(loc): "loc"}
        return normalized(log), manager_state(child, names), manager_state(rm2, names)

    calls, child, _ = _both(scenario)
    assert [c[:2] for c in calls] == [
        ("inh", "on_retriever_start"), ("loc", "on_retriever_start"),
        ("inh", "on_retriever_end"), ("loc", "on_retriever_end"),
        ("inh", "on_retriever_start"), ("inh", "on_retriever_error"),
    ]
    assert calls[4][3]["parent_run_id"] == "id0" and calls[4][3]["tags"] == ["it"]
    assert calls[0][3]["metadata"] == {"im": 1, "lm": 2}
    assert calls[0][3]["parent_run_id"] is None  # the parent_run_id argument is ignored
    assert "metadata" not in calls[2][3]  # metadata only travels on the start event
    assert child["handlers"] == ["inh"] and child["tags"] == ["it"]


def test_retry_with_real_tenacity_retry_state() -> None:
    def scenario(impl: Any) -> Any:
        log = Log()
        rm = impl.CallbackManager.configure([recorder(impl, log, "h")], inheritable_tags=["t"]).on_retriever_start(None, "q")
        _retry_with(rm.on_retry)
        return normalized(log)

    calls = _both(scenario)
    assert [(c[1], c[2]) for c in calls[1:]] == [
        ("on_retry", (("retry_state", 1, True),)), ("on_retry", (("retry_state", 2, True),)),
    ]
    assert calls[1][3] == {"run_id": "id0", "parent_run_id": None, "tags": ["t"]}


def test_text_and_custom_events() -> None:
    def scenario(impl: Any) -> Any:
        log = Log()
        cm = impl.CallbackManager.configure([recorder(impl, log, "h")], local_tags=["x"], local_metadata={"m": 1})
        rm = cm.on_retriever_start(None, "q")
        rm.on_text("rewrote query", verbose=True)
        cm.on_custom_event("rerank", {"kept": 3}, run_id=FIXED)
        cm.on_custom_event("no-id", [1, 2])
        with pytest.raises(ValueError, match="does not accept additional keyword"):
            cm.on_custom_event("bad", {}, extra=1)
        return normalized(log)

    calls = _both(scenario)
    assert calls[1] == ("h", "on_text", ("rewrote query",), {"run_id": "id0", "parent_run_id": None, "tags": ["x"], "verbose": True})
    assert calls[2] == ("h", "on_custom_event", ("rerank", {"kept": 3}), {"run_id": "id1", "tags": ["x"], "metadata": {"m": 1}})
    assert calls[3][3]["run_id"] == "id2"  # a fresh id when none is given
    assert len(calls) == 4


@pytest.mark.parametrize("tag", [None, "child-tag", "shared"])
def test_get_child(tag: str | None) -> None:
    def scenario(impl: Any) -> Any:
        log = Log()
        inh, loc = recorder(impl, log, "inh"), recorder(impl, log, "loc")
        cm = impl.CallbackManager.configure(
            [inh], [loc], inheritable_tags=["shared", "i2"], local_tags=["l1"],
            inheritable_metadata={"a": 1}, local_metadata={"b": 2},
        )
        rm = cm.on_retriever_start(None, "q")
        child = rm.get_child(tag)
        child.on_retriever_start(None, "child q")
        return normalized(log), manager_state(child, {id(inh): "inh", id(loc): "loc"}), child.parent_run_id == rm.run_id

    calls, child, linked = _both(scenario)
    assert linked
    assert child["handlers"] == ["inh"] == child["inheritable_handlers"]
    assert child["metadata"] == {"a": 1}
    if tag == "shared":  # LangChain's quirk: re-adding an inheritable tag makes it local only
        assert child["tags"] == ["i2", "shared"] and child["inheritable_tags"] == ["i2"]
    elif tag:
        assert child["tags"] == ["shared", "i2", tag] and child["inheritable_tags"] == ["shared", "i2"]
    assert calls[-1][3]["parent_run_id"] == "id0"


def test_explicit_constructor_and_shared_references() -> None:
    def scenario(impl: Any) -> Any:
        log = Log()
        h = recorder(impl, log, "h")
        handlers, tags, meta = [h], ["a"], {"k": "v"}
        rm = impl.CallbackManagerForRetrieverRun(
            run_id=FIXED, handlers=handlers, inheritable_handlers=[], parent_run_id=UUID(int=9),
            tags=tags, inheritable_tags=None, metadata=meta, inheritable_metadata=None,
        )
        rm.on_text("t")
        rm.on_retriever_end([])
        shared = (rm.handlers is handlers, rm.tags is tags, rm.metadata is meta, rm.inheritable_tags == [])
        child = rm.get_child("c")
        return normalized(log), shared, manager_state(child, {id(h): "h"})

    calls, shared, child = _both(scenario)
    assert shared == (True, True, True, True)
    assert calls[0][3] == {"run_id": "id0", "parent_run_id": "id1", "tags": ["a"]}
    assert child["handlers"] == []  # the explicit inheritable list was empty


def test_noop_manager() -> None:
    def scenario(impl: Any) -> Any:
        for cls in (impl.CallbackManagerForRetrieverRun, impl.AsyncCallbackManagerForRetrieverRun):
            m = cls.get_noop_manager()
            assert isinstance(m.run_id, UUID) and m.parent_run_id is None
            assert (m.handlers, m.inheritable_handlers, m.tags, m.metadata) == ([], [], [], {})
        m = impl.CallbackManagerForRetrieverRun.get_noop_manager()
        m.on_retriever_end(DOCS)
        m.on_text("x")
        m.on_retry(None)
        a = impl.AsyncCallbackManagerForRetrieverRun.get_noop_manager()
        asyncio.run(a.on_retriever_end(DOCS))
        return type(m).__name__, type(a).__name__, m.run_id != impl.CallbackManagerForRetrieverRun.get_noop_manager().run_id

    assert _both(scenario) == ("CallbackManagerForRetrieverRun", "AsyncCallbackManagerForRetrieverRun", True)


def test_get_sync_shares_everything() -> None:
    def scenario(impl: Any) -> Any:
        log = Log()

        async def main() -> Any:
            cm = impl.AsyncCallbackManager.configure(
                [recorder(impl, log, "h")], inheritable_tags=["t"], inheritable_metadata={"i": 0}, local_metadata={"m": 1})
            rm = await cm.on_retriever_start(None, "q")
            s = rm.get_sync()
            same = tuple(getattr(s, f) is getattr(rm, f) for f in (
                "handlers", "inheritable_handlers", "tags", "inheritable_tags", "metadata", "inheritable_metadata"))
            s.on_text("from a worker thread")
            s.on_retriever_end(DOCS)
            return type(s).__name__, same, s.run_id == rm.run_id, s.parent_run_id == rm.parent_run_id

        result = asyncio.run(main())
        return result, normalized(log)

    (name, same, same_id, same_parent), calls = _both(scenario)
    assert name == "CallbackManagerForRetrieverRun" and all(same) and same_id and same_parent
    assert [c[1] for c in calls] == ["on_retriever_start", "on_text", "on_retriever_end"]


@pytest.mark.parametrize("raise_error", [False, True])
def test_raise_error(raise_error: bool) -> None:
    def scenario(impl: Any) -> Any:
        log = Log()
        bad = recorder(impl, log, "bad", raise_error=raise_error, fail=("on_retriever_end", "on_text"))
        good = recorder(impl, log, "good")
        rm = impl.CallbackManager.configure([bad, good]).on_retriever_start(None, "q")
        raised = []
        for call in (lambda: rm.on_retriever_end(DOCS), lambda: rm.on_text("t")):
            try:
                call()
                raised.append(None)
            except RuntimeError as e:
                raised.append(str(e))
        return normalized(log), raised

    calls, raised = _both(scenario)
    if raise_error:
        assert raised == ["bad fails in on_retriever_end", "bad fails in on_text"]
        assert ("good", "on_retriever_end") not in [c[:2] for c in calls]  # later handlers skipped
    else:
        assert raised == [None, None]
        assert ("good", "on_retriever_end") in [c[:2] for c in calls]


@pytest.mark.parametrize("raise_error", [False, True])
def test_raise_error_async(raise_error: bool) -> None:
    def scenario(impl: Any) -> Any:
        log = Log()
        bad = recorder(impl, log, "bad", is_async=True, raise_error=raise_error, fail=("on_retriever_end",))

        async def main() -> Any:
            rm = await impl.AsyncCallbackManager.configure([bad]).on_retriever_start(None, "q")
            try:
                await rm.on_retriever_end(DOCS)
            except RuntimeError as e:
                return str(e)
            return None

        return asyncio.run(main()), normalized(log)

    raised, calls = _both(scenario)
    assert raised == ("bad fails in on_retriever_end" if raise_error else None)
    assert len(calls) == 2


def test_ignore_flags() -> None:
    def scenario(impl: Any) -> Any:
        log = Log()
        handlers = [
            recorder(impl, log, "no-retriever", ignore=("ignore_retriever",)),
            recorder(impl, log, "no-retry", ignore=("ignore_retry",)),
            recorder(impl, log, "no-custom", ignore=("ignore_custom_event",)),
        ]
        cm = impl.CallbackManager.configure(handlers)
        rm = cm.on_retriever_start(None, "q")
        _retry_with(rm.on_retry)
        rm.on_text("text is never filtered")
        cm.on_custom_event("e", {})
        rm.on_retriever_end(DOCS)
        return sorted(c[:2] for c in normalized(log))

    calls = _both(scenario)
    assert ("no-retriever", "on_retriever_start") not in calls
    assert ("no-retry", "on_retry") not in calls and ("no-retriever", "on_retry") in calls
    assert ("no-custom", "on_custom_event") not in calls
    assert sum(1 for c in calls if c[1] == "on_text") == 3


def test_async_run_inline_ordering_and_threads() -> None:
    def scenario(impl: Any) -> Any:
        log = Log()
        hs = [
            recorder(impl, log, "a1", is_async=True),
            recorder(impl, log, "s1"),
            recorder(impl, log, "s_inline", run_inline=True),
            recorder(impl, log, "a_inline", is_async=True, run_inline=True),
            recorder(impl, log, "a2", is_async=True),
        ]

        async def main() -> str:
            rm = await impl.AsyncCallbackManager.configure(hs).on_retriever_start(None, "q")
            await rm.on_retriever_end(DOCS)
            return threading.current_thread().name

        loop_thread = asyncio.run(main())
        ends = [c[0] for c in log.calls if c[1] == "on_retriever_end"]
        return (ends[:2], sorted(ends[2:]),
                log.threads["s_inline"] == loop_thread, log.threads["s1"] != loop_thread,
                log.threads["a1"] == loop_thread)

    inline, rest, inline_on_loop, sync_off_loop, async_on_loop = _both(scenario)
    assert inline == ["s_inline", "a_inline"] and rest == ["a1", "a2", "s1"]
    assert inline_on_loop and sync_off_loop and async_on_loop


def test_async_handlers_under_the_sync_manager() -> None:
    def scenario(impl: Any) -> Any:
        log = Log()
        hs = [recorder(impl, log, "async", is_async=True), recorder(impl, log, "sync")]
        rm = impl.CallbackManager.configure(hs).on_retriever_start(None, "q")
        rm.on_retriever_end(DOCS)
        return [c[:2] for c in normalized(log)]

    calls = _both(scenario)
    # sync handlers first; coroutines of async handlers run after them
    assert calls == [("sync", "on_retriever_start"), ("async", "on_retriever_start"),
                     ("sync", "on_retriever_end"), ("async", "on_retriever_end")]


def test_async_handlers_under_the_sync_manager_inside_a_running_loop() -> None:
    def scenario(impl: Any) -> Any:
        log = Log()

        async def main() -> None:
            rm = impl.CallbackManager.configure([recorder(impl, log, "async", is_async=True)]).on_retriever_start(None, "q")
            rm.on_retriever_end(DOCS)  # sync call from async code: must not deadlock

        asyncio.run(main())
        return [c[:2] for c in normalized(log)]

    assert _both(scenario) == [("async", "on_retriever_start"), ("async", "on_retriever_end")]


@pytest.mark.parametrize("hook", ["on_retriever_end", "on_retriever_error"])
def test_cancelling_the_caller_does_not_cancel_end_handlers(hook: str) -> None:
    def scenario(impl: Any) -> Any:
        log = Log()
        slow = recorder(impl, log, "slow", is_async=True, delay=0.05)

        async def main() -> bool:
            rm = await impl.AsyncCallbackManager.configure([slow]).on_retriever_start(None, "q")
            arg = DOCS if hook == "on_retriever_end" else ValueError("x")
            task = asyncio.ensure_future(getattr(rm, hook)(arg))
            await asyncio.sleep(0.01)
            task.cancel()
            cancelled = False
            try:
                await task
            except asyncio.CancelledError:
                cancelled = True
            await asyncio.sleep(0.1)
            return cancelled

        return asyncio.run(main()), [c[1] for c in log.calls]

    cancelled, hooks = _both(scenario)
    assert cancelled and hooks == ["on_retriever_start", hook]


def test_configure_from_a_manager() -> None:
    def scenario(impl: Any) -> Any:
        log = Log()
        a, b = recorder(impl, log, "a"), recorder(impl, log, "b")
        base = impl.CallbackManager(handlers=[a], inheritable_handlers=[a], parent_run_id=FIXED,
                                    tags=["t"], inheritable_tags=["t"], metadata={"x": 1})
        cm = impl.CallbackManager.configure(base, [b], local_tags=["lt"])
        cm.add_metadata({"y": 2}, inherit=False)
        cm.remove_handler(a)
        cm.add_handler(a, inherit=False)
        rm = cm.on_retriever_start(None, "q")
        names = {id(a): "a", id(b): "b"}
        return normalized(log), manager_state(cm, names), manager_state(base, names), rm.parent_run_id == FIXED

    calls, cm, base, parent_kept = _both(scenario)
    assert parent_kept and base["handlers"] == ["a"]  # the given manager is copied, not changed
    assert cm["handlers"] == ["b", "a"] and cm["inheritable_handlers"] == []
    assert calls[0][3]["metadata"] == {"x": 1, "y": 2}


def test_retriever_invoke_matches_base_retriever() -> None:
    """rtrace's Retriever.invoke sends what LangChain's BaseRetriever.invoke sends."""
    import rtrace.core as rtc
    from langchain_core.retrievers import BaseRetriever

    class MyRetriever(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Any]:
            run_manager.on_text("looked up " + query)
            return DOCS

    class MyRetrieverRT(rtc.Retriever):
        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Any]:
            run_manager.on_text("looked up " + query)
            return DOCS

    MyRetrieverRT.__name__ = "MyRetriever"
    config_of = lambda h: {"callbacks": [h], "tags": ["itag"], "metadata": {"im": 2}, "run_name": "custom"}  # noqa: E731

    lc_log, rt_log = Log(), Log()
    MyRetriever(tags=["ltag"], metadata={"lm": 1}).invoke("q", config_of(recorder(LC, lc_log, "h")))
    MyRetrieverRT(tags=["ltag"], metadata={"lm": 1}).invoke("q", config_of(recorder(RT, rt_log, "h")))
    lc, rt = normalized(lc_log), normalized(rt_log)
    assert rt == lc
    assert rt[0][3] == {"run_id": "id0", "parent_run_id": None, "tags": ["itag", "ltag"],
                        "metadata": {"im": 2, "ls_retriever_name": "my", "lm": 1}, "name": "custom"}

    async def both_async() -> tuple[list[Any], list[Any]]:
        la, ra = Log(), Log()
        await MyRetriever().ainvoke("q", {"callbacks": [recorder(LC, la, "h", is_async=True)]})
        await MyRetrieverRT().ainvoke("q", {"callbacks": [recorder(RT, ra, "h", is_async=True)]})
        return normalized(la), normalized(ra)

    lc_a, rt_a = asyncio.run(both_async())
    assert rt_a == lc_a and [c[1] for c in rt_a] == ["on_retriever_start", "on_text", "on_retriever_end"]


def test_run_manager_custom_events_reach_handlers_unlike_langchain() -> None:
    """A deliberate difference: LangChain's run managers drop on_custom_event; rtrace records it."""
    logs = {}
    for impl in (LC, RT):
        log = Log()
        rm = impl.CallbackManager.configure([recorder(impl, log, "h")]).on_retriever_start(None, "q")
        if impl is LC:  # LangChain's run manager only has the no-op mixin, which needs run_id
            rm.on_custom_event("rerank", {"kept": 2}, run_id=rm.run_id)
        else:
            rm.on_custom_event("rerank", {"kept": 2})
        logs[impl.label] = [c[1] for c in log.calls]
    assert logs["langchain"] == ["on_retriever_start"]
    assert logs["rtrace"] == ["on_retriever_start", "on_custom_event"]


def test_both_implementations_are_really_different_objects() -> None:
    assert IMPLS[0].CallbackManager is not IMPLS[1].CallbackManager
    assert IMPLS[1].CallbackManager.__module__.startswith("rtrace.core")
