"""rtrace's managers against langchain_core's: same calls in, same handler calls out."""

from __future__ import annotations

import asyncio
import os
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


# ---- round two: what LangChain's own tests found (issue 12), one case per item ----


def test_configure_accepts_every_kind_of_callbacks() -> None:
    """Item 1: None, lists of rtrace or LangChain handlers, rtrace or LangChain managers."""
    import rtrace.core as rtc

    def scenario(impl: Any) -> Any:
        log = Log()
        rt_h, lc_h = recorder(RT, log, "rt"), recorder(LC, log, "lc")
        names = {id(rt_h): "rt", id(lc_h): "lc"}
        lc_m = LC.CallbackManager(handlers=[lc_h], inheritable_handlers=[lc_h], parent_run_id=FIXED,
                                  tags=["t"], inheritable_tags=["t"], metadata={"m": 1})
        rt_m = RT.CallbackManager(handlers=[rt_h], inheritable_handlers=[rt_h], parent_run_id=FIXED,
                                  tags=["t"], inheritable_tags=["t"], metadata={"m": 1})
        states = []
        for callbacks in (None, [], [rt_h, lc_h], lc_m, rt_m):
            for cls in (impl.CallbackManager, impl.AsyncCallbackManager):
                cm = cls.configure(callbacks, None, inheritable_tags=["x"])
                states.append((manager_state(cm, names), cm.parent_run_id))
        return states

    lc_states = scenario(LC)
    assert scenario(RT) == lc_states
    assert lc_states[6][0]["handlers"] == ["lc"] and lc_states[6][1] == FIXED  # a LangChain manager

    # ... which is what LangChain passes down: an rtrace Retriever called from a RunnableLambda.
    from langchain_core.runnables import RunnableLambda

    class Inner(rtc.Retriever):
        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Any]:
            return DOCS

    log = Log()
    out = RunnableLambda(lambda q, config: Inner().invoke(q, config)).invoke(
        "q", {"callbacks": [recorder(RT, log, "h")]})
    assert out == DOCS
    assert [c[1] for c in log.calls] == ["on_retriever_start", "on_retriever_end"]
    assert log.calls[0][3]["parent_run_id"] is not None  # a child of the lambda's run


def test_run_manager_custom_event_takes_the_documented_keywords() -> None:
    """Item 2: on_custom_event(name, data, run_id=, tags=, metadata=) as LangChain's run managers
    accept it; rtrace forwards it to the handlers (LangChain's is a no-op: a listed difference)."""
    seen = {}
    for impl in (LC, RT):
        log = Log()
        rm = impl.CallbackManager.configure([recorder(impl, log, "h")], local_tags=["own"]).on_retriever_start(None, "q")
        rm.on_custom_event("rerank", {"kept": 2}, run_id=FIXED, tags=["given"], metadata={"k": 1})
        if impl is RT:
            rm.on_custom_event("defaults", 1)
        seen[impl.label] = normalized(log)
    assert [c[1] for c in seen["langchain"]] == ["on_retriever_start"]
    assert seen["rtrace"][1] == ("h", "on_custom_event", ("rerank", {"kept": 2}),
                                 {"run_id": "id1", "tags": ["given"], "metadata": {"k": 1}})
    assert seen["rtrace"][2][3] == {"run_id": "id0", "tags": ["own"], "metadata": {}}


def test_a_single_async_handler_cannot_leak_context_into_the_caller() -> None:
    """Item 3: non-inline async handlers run in tasks, so their ContextVar writes stay there."""
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    def scenario(impl: Any) -> Any:
        class Setter(impl.AsyncCallbackHandler):  # type: ignore[name-defined, misc]
            def __init__(self, inline: bool) -> None:
                self.run_inline = inline

            async def on_retriever_start(self, *args: Any, **kwargs: Any) -> None:
                var.set("set by handler")

            async def on_text(self, *args: Any, **kwargs: Any) -> None:
                var.set("set by on_text")

        async def main() -> list[str]:
            out = []
            for inline in (False, True):
                var.set("unset")
                rm = await impl.AsyncCallbackManager.configure([Setter(inline)]).on_retriever_start(None, "q")
                out.append(var.get())
                await rm.on_text("t")
                out.append(var.get())
            return out

        return asyncio.run(main())

    assert _both(scenario) == ["unset", "unset", "set by handler", "set by on_text"]


def test_dispatch_custom_event_as_langchain() -> None:
    """Item 4: RuntimeError outside a run, config=, inside LangChain runnables, and the async one."""
    import langchain_core.callbacks.manager as lcm
    import rtrace.core as rtc
    from langchain_core.runnables import RunnableLambda

    dispatchers = {"langchain": (lcm.dispatch_custom_event, lcm.adispatch_custom_event),
                   "rtrace": (rtc.dispatch_custom_event, rtc.adispatch_custom_event)}

    def scenario(impl: Any) -> Any:
        sync, asyn = dispatchers[impl.label]
        with pytest.raises(RuntimeError, match="without a parent run id"):
            sync("outside", {})
        with pytest.raises(RuntimeError, match="without a parent run id"):
            asyncio.run(asyn("outside", {}))
        log = Log()

        def body(x: int, config: Any) -> int:
            sync("implicit", {"x": x})
            sync("explicit", {"x": x}, config=config)
            return x

        async def abody(x: int, config: Any) -> int:
            await asyn("implicit", {"x": x})
            await asyn("explicit", {"x": x}, config=config)
            return x

        RunnableLambda(body).invoke(1, {"callbacks": [recorder(impl, log, "h")], "run_id": FIXED,
                                        "tags": ["t"], "metadata": {"m": 1}})
        asyncio.run(RunnableLambda(abody).ainvoke(2, {"callbacks": [recorder(impl, log, "a", is_async=True)],
                                                      "run_id": UUID(int=8)}))
        return [c for c in normalized(log) if c[1] == "on_custom_event"]

    calls = _both(scenario)
    assert calls[0] == ("h", "on_custom_event", ("implicit", {"x": 1}),
                        {"run_id": "id0", "tags": ["t"], "metadata": {"m": 1}})
    assert len(calls) == 4 and calls[3][3]["run_id"] == "id1"


def test_retriever_name_ls_params_and_fields() -> None:
    """Item 5: ls_retriever_name from name=/get_name(), _get_ls_params, fields in the constructor."""
    import rtrace.core as rtc
    from langchain_core.retrievers import BaseRetriever

    class MyRetriever(BaseRetriever):
        throw_error: bool = False
        k: int = 2

        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Any]:
            if self.throw_error:
                raise ValueError("asked to")
            return DOCS[: self.k]

    class MyRetrieverRT(rtc.Retriever):
        throw_error: bool = False
        k: int = 2

        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Any]:
            if self.throw_error:
                raise ValueError("asked to")
            return DOCS[: self.k]

    MyRetrieverRT.__name__ = "MyRetriever"

    def run(cls: Any, impl: Any) -> Any:
        log = Log()
        r = cls(name="CustomRetriever", k=1, tags=["x"])
        params = r._get_ls_params()
        r.invoke("q", {"callbacks": [recorder(impl, log, "h")]})
        with pytest.raises(ValueError, match="asked to"):
            cls(throw_error=True).invoke("q", {"callbacks": [recorder(impl, log, "h")]})
        return params, r.get_name(), normalized(log)

    lc, rt = run(MyRetriever, LC), run(MyRetrieverRT, RT)
    assert rt == lc
    with pytest.raises(TypeError, match="unexpected keyword argument 'throw_eror'"):
        MyRetrieverRT(throw_eror=True)  # a listed difference: pydantic would ignore the typo
    assert lc[0] == {"ls_retriever_name": "custom"} and lc[2][0][3]["name"] == "CustomRetriever"


def test_async_hook_assigned_on_the_instance_and_hasattr() -> None:
    """Item 6: a coroutine function set on a handler instance is awaited; no catch-all hooks."""

    def scenario(impl: Any) -> Any:
        log = Log()
        handler = impl.BaseCallbackHandler()

        async def on_retriever_end(documents: Any, **kwargs: Any) -> None:
            log.add("instance", "on_retriever_end", len(documents))

        handler.on_retriever_end = on_retriever_end

        async def main() -> None:
            rm = await impl.AsyncCallbackManager.configure([handler]).on_retriever_start(None, "q")
            await rm.on_retriever_end(DOCS)

        asyncio.run(main())
        return log.calls, hasattr(handler, "on_anything"), hasattr(handler, "ignore_anything")

    assert _both(scenario) == ([("instance", "on_retriever_end", 2)], False, False)


def test_configure_with_callbacks_does_not_nest_under_the_current_run() -> None:
    """Item 7: only configure *without* callbacks nests under rtrace's current run."""
    import rtrace.core as rtc

    log = Log()
    h = recorder(RT, log, "h")

    @rtc.retriever
    def outer(query: str) -> list[Any]:
        cm = RT.CallbackManager.configure([h])
        return [cm.parent_run_id, RT.CallbackManager.configure().parent_run_id]

    with rtc.trace_to(os.devnull):
        explicit, implicit = outer("q")
    assert explicit is None  # as LangChain's configure([h]) gives
    assert implicit is not None
    assert LC.CallbackManager.configure([recorder(LC, log, "l")]).parent_run_id is None


def test_a_retriever_inside_langchain_code_nests_under_the_langchain_run() -> None:
    """Item 8: an rtrace @retriever / Retriever in a RunnableLambda is a child of it, reported to
    the LangChain run's handlers as a LangChain retriever there is."""
    import rtrace.core as rtc
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import RunnableLambda

    class LCDocs(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Any]:
            return DOCS

    class RTDocs(rtc.Retriever):
        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Any]:
            return DOCS

    RTDocs.__name__ = "LCDocs"

    def scenario(impl: Any) -> Any:
        log = Log()
        inner = LCDocs().invoke if impl is LC else RTDocs().invoke
        RunnableLambda(lambda q: inner(q)).invoke("q", {"callbacks": [recorder(impl, log, "h")], "run_id": FIXED})

        async def main() -> None:
            ainner = LCDocs().ainvoke if impl is LC else rtc.retriever(name="LCDocs")(_adocs)
            await RunnableLambda(_alambda(ainner)).ainvoke("q", {"callbacks": [recorder(impl, log, "a")]})

        asyncio.run(main())
        calls = [c for c in normalized(log) if c[1].startswith("on_retriever")]
        for call in calls[2:]:  # a decorated function has no class to take ls_retriever_name from
            call[3].pop("metadata", None)
        return calls

    calls = _both(scenario)
    assert calls[0][3]["parent_run_id"] == "id1" and calls[0][3]["name"] == "LCDocs"
    assert calls[2][3]["parent_run_id"] is not None
    assert [c[1] for c in calls] == ["on_retriever_start", "on_retriever_end"] * 2


async def _adocs(query: str) -> list[Any]:
    return DOCS


def _alambda(inner: Any) -> Any:
    async def body(q: str) -> Any:
        return await inner(q)
    return body


def test_with_retry_attempts_are_retries_of_one_call(tmp_path: Any) -> None:
    """Item 9: LangChain's with_retry records each attempt as a run (tagged retry:attempt:N from
    the second on); show, --retried and stats present them as retries of one call."""
    import json
    import subprocess
    import sys

    from langchain_core.retrievers import BaseRetriever
    from rtrace.core import JsonlHandler

    class Flaky(BaseRetriever):
        calls: int = 0
        fail_times: int = 2

        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Any]:
            self.calls += 1
            if self.calls <= self.fail_times:
                raise TimeoutError(f"attempt {self.calls} timed out")
            return DOCS

    log = tmp_path / "retry.jsonl"
    writer = JsonlHandler(log)
    retrying = Flaky().with_retry(stop_after_attempt=4, wait_exponential_jitter=False)
    assert retrying.invoke("q", {"callbacks": [writer]}) == DOCS
    with pytest.raises(TimeoutError):
        Flaky(fail_times=9).with_retry(stop_after_attempt=2, wait_exponential_jitter=False).invoke(
            "never", {"callbacks": [writer]})
    writer.close()

    def rtrace(*args: str) -> str:
        r = subprocess.run([sys.executable, "-m", "rtrace.cli", *args, str(log)], capture_output=True,
                           text=True, timeout=60, env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1"})
        assert r.returncode == 0, r.stderr
        return r.stdout

    stats = json.loads(rtrace("stats", "--format", "json"))["groups"]
    assert [(g["group"], g["runs"], g["errors"], g["retries"]) for g in stats] == [("Flaky", 2, 1, 3)]
    shown = rtrace("show", "--retried", "--no-docs")
    assert "↻ attempt 1 failed  TimeoutError: attempt 1 timed out" in shown
    assert "↻ attempt 2 failed  TimeoutError: attempt 2 timed out" in shown
    assert "“never”" in shown  # the call that failed in every attempt is a retried call too
    from rtrace.core.read.summary import RunSummary

    summary = RunSummary()  # what `rtrace run` prints at the end, fed the same events
    for line in log.read_text().splitlines():
        summary(json.loads(line))
    assert (summary.runs, summary.errors, summary.retries) == (2, 1, 3)
    kept = [json.loads(line) for line in rtrace("filter", "--retried").splitlines()]
    assert sum(e["event"] == "retriever_start" for e in kept) == 5  # both calls' traces, whole


def test_a_failing_handler_is_logged_once_per_hook_unlike_langchain(caplog: Any) -> None:
    """A listed difference: LangChain logs a failing handler on every event; rtrace once per
    handler class and hook, so a broken handler cannot flood the program's stderr."""
    counts = {}
    for impl in (LC, RT):
        caplog.clear()
        log = Log()
        bad = recorder(impl, log, f"bad_{impl.label}", fail=("on_text",))
        rm = impl.CallbackManager.configure([bad]).on_retriever_start(None, "q")
        for _ in range(5):
            rm.on_text("t")
        counts[impl.label] = sum("fails in on_text" in r.getMessage() for r in caplog.records)
        assert len([c for c in log.calls if c[1] == "on_text"]) == 5  # called every time all the same
    assert counts == {"langchain": 5, "rtrace": 1}
