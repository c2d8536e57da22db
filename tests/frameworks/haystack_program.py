"""An unmodified Haystack program (no rtrace import) with its own tracer, which records every call it gets.

The sample's hybrid pipeline runs sync twice, async once, then a pipeline whose
retriever fails. The user's tracer (``enable_tracing``) writes what it received —
each trace() with its tags and parent, each set_tag, each span exit — to the JSON
file named by argv[1].
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from haystack import Document, Pipeline, component, tracing
from haystack.tracing import Span, Tracer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "samples"))
from haystack_pipeline import async_pipeline, build, inputs  # noqa: E402

CALLS: list[Any] = []


def plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: (
        {"id": o.id, "content": o.content, "meta": o.meta, "score": o.score} if isinstance(o, Document) else repr(o))))


class RecordingSpan(Span):
    def __init__(self, number: int) -> None:
        self.number = number

    def set_tag(self, key: str, value: Any) -> None:
        CALLS.append(["set_tag", self.number, key, plain(value)])


class RecordingTracer(Tracer):
    def __init__(self) -> None:
        self.spans = 0
        self.stack: list[RecordingSpan] = []

    @contextlib.contextmanager
    def trace(self, operation_name: str, tags: dict[str, Any] | None = None,
              parent_span: Span | None = None) -> Iterator[Span]:
        self.spans += 1
        span = RecordingSpan(self.spans)
        parent = parent_span.number if isinstance(parent_span, RecordingSpan) else repr(parent_span)
        CALLS.append(["trace", span.number, operation_name, plain(tags), parent])
        self.stack.append(span)
        try:
            yield span
        except BaseException as e:
            CALLS.append(["error", span.number, type(e).__name__])
            raise
        finally:
            self.stack.pop()
            CALLS.append(["exit", span.number])

    def current_span(self) -> Span | None:
        return self.stack[-1] if self.stack else None


@component
class FailingRetriever:
    @component.output_types(documents=list[Document])
    def run(self, query: str) -> dict[str, list[Document]]:
        raise TimeoutError("document store timed out")


def main() -> None:
    print("tracing enabled before:", tracing.is_tracing_enabled())
    pipe = build()
    tracing.enable_tracing(RecordingTracer())
    print("tracing enabled after:", tracing.is_tracing_enabled())
    for q in ["how do rerankers work?", "chunk overlap and context"]:
        print(q, [d.id for d in pipe.run(inputs(q))["rerank"]["documents"]])
    result = asyncio.run(async_pipeline(pipe).run_async(inputs("approximate nearest neighbour index")))
    print("async", [d.id for d in result["rerank"]["documents"]])
    failing = Pipeline()
    failing.add_component("broken", FailingRetriever())
    try:
        failing.run({"broken": {"query": "this fails"}})
    except Exception as e:
        print("error:", type(e).__name__)
    tracing.disable_tracing()
    print("tracing enabled at the end:", tracing.is_tracing_enabled())


if __name__ == "__main__":
    main()
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(CALLS))
