# runs: 5
# requires: langchain_core
"""rtrace retrievers called from LangChain code (sync and async) report to the LangChain run's
handlers and nest under it; a custom event dispatched there reaches the same handlers."""
import asyncio

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableLambda

from rtrace.core import Document, Retriever, adispatch_custom_event, dispatch_custom_event, retriever


class Seen(BaseCallbackHandler):
    def __init__(self):
        self.calls = []

    def on_retriever_start(self, serialized, query, *, run_id, parent_run_id=None, **kwargs):
        self.calls.append(("start", kwargs.get("name"), query, parent_run_id is not None))

    def on_retriever_end(self, documents, **kwargs):
        self.calls.append(("end", [d.page_content for d in documents]))

    def on_custom_event(self, name, data, **kwargs):
        self.calls.append(("custom", name, data))


@retriever(name="Dense")
def dense(query):
    dispatch_custom_event("dense-called", {"q": query})
    return [Document(f"dense {query}", id="d1")]


@retriever(name="AsyncDense")
async def adense(query):
    await adispatch_custom_event("adense-called", {"q": query})
    return [Document(f"adense {query}", id="a1")]


class Keyword(Retriever):
    def _get_relevant_documents(self, query, *, run_manager):
        return [Document(f"keyword {query}", id="k1")]


seen = Seen()
chain = RunnableLambda(lambda q, config: dense(q) + Keyword().invoke(q, config))
print([d.page_content for d in chain.invoke("rrf", {"callbacks": [seen]})])


async def main():
    achain = RunnableLambda(adense)
    print([d.page_content for d in await achain.ainvoke("bm25", {"callbacks": [seen]})])


asyncio.run(main())
for call in seen.calls:
    print(call)
try:
    dispatch_custom_event("outside", {})
except RuntimeError as e:
    print("RuntimeError:", str(e)[:40])
