# runs: 5
# requires: langchain_core
"""A user's inline handler beside a non-inline one: LangChain's own on_llm_start quirk is kept
as it is (the non-inline handler misses llm_start under python, so it must under rtrace run)."""
import asyncio
import contextvars

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.language_models import FakeListLLM

var = contextvars.ContextVar("var", default="unset")


class Recorder(AsyncCallbackHandler):
    def __init__(self, label, run_inline):
        self.label = label
        self.run_inline = run_inline
        self.seen = []

    async def on_llm_start(self, serialized, prompts, **kwargs):
        var.set(self.label)  # visible to the caller only from an inline handler
        self.seen.append("llm_start")

    async def on_llm_end(self, response, **kwargs):
        self.seen.append("llm_end")


class SyncRecorder(BaseCallbackHandler):
    def __init__(self):
        self.seen = []

    def on_llm_start(self, serialized, prompts, **kwargs):
        self.seen.append("llm_start")

    def on_llm_end(self, response, **kwargs):
        self.seen.append("llm_end")


async def main():
    llm = FakeListLLM(responses=["x"] * 6)
    for handlers in ([Recorder("inline", True), Recorder("plain", False)],
                     [Recorder("plain", False)], [SyncRecorder()]):
        var.set("unset")
        await llm.ainvoke("q", {"callbacks": handlers})
        print([(getattr(h, "label", "sync"), h.seen) for h in handlers], var.get())
    print(await llm.ainvoke("no callbacks"))
    print(llm.invoke("sync path", {"callbacks": [Recorder("async-in-sync", False)]}))


asyncio.run(main())
