# runs: 12
# requires: langchain_core
"""astream_events (v1 and v2) over a retriever, a prompt, a completion LLM and a chat model."""
import asyncio
import warnings

from langchain_core.documents import Document
from langchain_core.language_models import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.prompts import PromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda

warnings.simplefilter("ignore")  # astream_events v1's deprecation warning


class Docs(BaseRetriever):
    def _get_relevant_documents(self, query, *, run_manager):
        return [Document(f"about {query}", id="d1")]


def join(docs):
    return " ".join(d.page_content for d in docs)


async def main():
    llm = FakeListLLM(responses=["answer one", "answer two", "answer three"])
    chat = FakeListChatModel(responses=["chat one", "chat two", "chat three"])
    chain = Docs() | RunnableLambda(join) | PromptTemplate.from_template("Q: {x}") | llm
    for version in ("v2", "v1"):
        async for event in chain.astream_events("rrf", version=version):
            print(version, event["event"], event["name"])
        async for event in chat.astream_events("hi", version=version):
            print(version, event["event"], event["name"])


asyncio.run(main())
