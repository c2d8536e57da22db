# runs: 5
# requires: langchain_core
"""A user's own async handler sees every LLM and chat-model event under rtrace run, as under python.

LangChain's AsyncCallbackManager.on_llm_start skips non-inline handlers when any handler
is inline; rtrace's injected handler must not trigger that (it used to: on_llm_start was lost).
"""
import asyncio

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.language_models import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel


class Mine(AsyncCallbackHandler):
    def __init__(self):
        self.seen = []

    async def on_llm_start(self, serialized, prompts, **kwargs):
        self.seen.append(("llm_start", prompts))

    async def on_chat_model_start(self, serialized, messages, **kwargs):
        self.seen.append(("chat_model_start", [m.content for m in messages[0]]))

    async def on_llm_new_token(self, token, **kwargs):
        self.seen.append(("token", token))

    async def on_llm_end(self, response, **kwargs):
        self.seen.append(("llm_end", [g[0].text for g in response.generations]))


async def main():
    handler = Mine()
    llm = FakeListLLM(responses=["one", "two", "three", "four"])
    print(await llm.ainvoke("first", {"callbacks": [handler]}))
    print(await llm.abatch(["a", "b"], {"callbacks": [handler]}))
    chat = FakeListChatModel(responses=["chat!", "streamed"])
    print((await chat.ainvoke("hello", {"callbacks": [handler]})).content)
    print([c.content async for c in chat.astream("again", {"callbacks": [handler]})])
    for item in handler.seen:
        print(item)


asyncio.run(main())
