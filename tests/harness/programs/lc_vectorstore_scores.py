# runs: 8
# requires: langchain_core, numpy
"""LangChain vector store retrievers whose scores rtrace records: the script sees the same
documents, the same tracebacks (no rtrace frame) and the same method objects' behaviour."""

import inspect
import traceback

from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore

store = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
store.add_documents([Document(f"text {i} about {w}", id=f"d{i}") for i, w in enumerate("abcdefgh")])
print([d.id for d in store.as_retriever(search_kwargs={"k": 3}).invoke("about c")])
print([d.id for d in store.as_retriever(search_type="mmr", search_kwargs={"k": 2}).invoke("about c")])
try:
    store.as_retriever(search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.2}).invoke("q")
except NotImplementedError:
    traceback.print_exc()
print(list(inspect.signature(InMemoryVectorStore.similarity_search_with_score).parameters))
print(InMemoryVectorStore.similarity_search.__name__, InMemoryVectorStore.similarity_search.__doc__ is None)
