"""An unmodified LlamaIndex program (no rtrace import) that also records what LlamaIndex itself reports.

Its own instrumentation (an event handler and a span handler on the root dispatcher)
writes, to the JSON file named by argv[1]: every span (id, parent, class, method),
the retrieval events (span, query, nodes), the embedding events and the
postprocessor spans' results. stdout is the program's own output.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from llama_index.core import VectorStoreIndex
from llama_index.core.base.base_selector import BaseSelector, SelectorResult, SingleSelection
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.embedding import EmbeddingStartEvent
from llama_index.core.instrumentation.events.retrieval import RetrievalEndEvent, RetrievalStartEvent
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.llms import MockLLM
from llama_index.core.postprocessor import SimilarityPostprocessor
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.retrievers import BaseRetriever, QueryFusionRetriever, RouterRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.tools import RetrieverTool

REPORT: dict[str, Any] = {"spans": {}, "retrievals": [], "embeddings": [], "reranks": []}


def nodes(items: list[NodeWithScore]) -> list[dict[str, Any]]:
    return [{"id": n.node.node_id, "text": n.node.get_content(), "metadata": n.node.metadata, "score": n.score}
            for n in items]


class Events(BaseEventHandler):
    @classmethod
    def class_name(cls) -> str:
        return "Events"

    def handle(self, event: Any, **kwargs: Any) -> None:
        if isinstance(event, RetrievalStartEvent):
            q = event.str_or_query_bundle
            REPORT["retrievals"].append({"span": event.span_id, "query": getattr(q, "query_str", q), "nodes": None})
        elif isinstance(event, RetrievalEndEvent):
            for r in REPORT["retrievals"]:
                if r["span"] == event.span_id:
                    r["nodes"] = nodes(event.nodes)
        elif isinstance(event, EmbeddingStartEvent):
            REPORT["embeddings"].append({"span": event.span_id})


class Spans(SimpleSpanHandler):
    def span_enter(self, id_: str, bound_args: Any, instance: Any = None, parent_id: Any = None, **kw: Any) -> None:
        method = id_.rsplit("-", 5)[0].rpartition(".")[2]  # span ids are "Class.method-<uuid4>"
        REPORT["spans"][id_] = {"parent": parent_id, "class": type(instance).__name__, "method": method}
        super().span_enter(id_=id_, bound_args=bound_args, instance=instance, parent_id=parent_id, **kw)

    def span_exit(self, id_: str, bound_args: Any, instance: Any = None, result: Any = None, **kw: Any) -> None:
        if isinstance(instance, BaseNodePostprocessor):
            REPORT["reranks"].append({"span": id_, "nodes": nodes(result)})
        super().span_exit(id_=id_, bound_args=bound_args, instance=instance, result=result, **kw)

    def span_drop(self, id_: str, bound_args: Any, instance: Any = None, err: Any = None, **kw: Any) -> None:
        REPORT["spans"][id_]["error"] = type(err).__name__
        super().span_drop(id_=id_, bound_args=bound_args, instance=instance, err=err, **kw)


class BrokenRetriever(BaseRetriever):
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        raise TimeoutError("vector store timed out")


class First(BaseSelector):
    def _get_prompts(self) -> dict:
        return {}

    def _update_prompts(self, prompts: dict) -> None:
        pass

    def _select(self, choices: Any, query: QueryBundle) -> SelectorResult:
        return SelectorResult(selections=[SingleSelection(index=0, reason="first")])

    async def _aselect(self, choices: Any, query: QueryBundle) -> SelectorResult:
        return self._select(choices, query)


async def gather(retriever: BaseRetriever, queries: list[str]) -> list[list[NodeWithScore]]:
    return await asyncio.gather(*(retriever.aretrieve(q) for q in queries))


def main() -> None:
    get_dispatcher().add_event_handler(Events())
    get_dispatcher().add_span_handler(Spans())
    texts = ["BM25 ranks documents by term frequency.", "Dense retrieval embeds queries.",
             "Rerankers rescore the top candidates.", "HNSW is a graph index."]
    index = VectorStoreIndex([TextNode(id_=f"n{i}", text=t, metadata={"i": i, "src": f"s{i % 2}"})
                              for i, t in enumerate(texts)], embed_model=MockEmbedding(embed_dim=8))
    vector = index.as_retriever(similarity_top_k=3)
    print("vector:", [n.node.node_id for n in vector.retrieve("what is bm25?")])
    fusion = QueryFusionRetriever([vector, index.as_retriever(similarity_top_k=2)], llm=MockLLM(),
                                  similarity_top_k=3, num_queries=1, use_async=False)
    router = RouterRetriever(selector=First(), retriever_tools=[
        RetrieverTool.from_defaults(retriever=fusion, description="fused"),
        RetrieverTool.from_defaults(retriever=vector, description="vector")], llm=MockLLM())
    print("router:", [n.node.node_id for n in router.retrieve("dense retrieval")])
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=3,
                                   node_postprocessors=[SimilarityPostprocessor(similarity_cutoff=0.0)])
    print("engine:", [n.node.node_id for n in engine.query("rerankers").source_nodes])
    print("async:", [n.node.node_id for n in asyncio.run(fusion.aretrieve("hnsw graph"))])
    print("concurrent:", [len(r) for r in asyncio.run(gather(fusion, ["bm25 index", "dense vectors"]))])
    print("async engine:", [n.node.node_id for n in asyncio.run(engine.aquery("graph index")).source_nodes])
    try:
        BrokenRetriever().retrieve("this fails")
    except TimeoutError as e:
        print("error:", e)


if __name__ == "__main__":
    main()
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            json.dump(REPORT, f)
