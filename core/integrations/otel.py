"""Runs as OpenTelemetry spans, with the official SDK: OTLP/JSON files and OTLP/HTTP export.

Each run becomes a span:
- its trace id is the root run's UUID (128 bits) and its span id the low 64 bits of its own run id, so
  the same log always exports to the same ids;
- retriever spans carry the OpenInference conventions (``openinference.span.kind=RETRIEVER``,
  ``input.value``, ``retrieval.documents.N.document.id|content|score|metadata``) and the OTel GenAI
  retrieval attributes (``gen_ai.operation.name=retrieval``, ``gen_ai.data_source.id``,
  ``gen_ai.retrieval.query.text``, ``gen_ai.retrieval.documents``);
- retries, texts and custom events become span events, and an error becomes ERROR status plus an
  ``exception`` event.

Needs the ``otel`` extra (``opentelemetry-sdk``, ``opentelemetry-exporter-otlp-proto-http``).
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlparse
from uuid import UUID

import hashlib
import math
from collections import OrderedDict

import orjson
from rtrace.core.errors import OutputError, UsageError
from rtrace.core.events import STAGE_KEY
from rtrace.core.jsontext import dumps
from rtrace.core.read.reader import Event
from rtrace.core.read.trees import ERROR, INCOMPLETE, MAX_SESSIONS, Run, Session, Trace, TreeBuilder
from rtrace.core.record.documents import content_hash
from rtrace.core.times import ts_nanos
from rtrace.core.version import __version__

OPENINFERENCE_KIND = {"retriever": "RETRIEVER", "chain": "CHAIN", "tool": "TOOL", "llm": "LLM"}
# Framework stages (metadata.rtrace_stage) that OpenInference has a kind of its own for.
OPENINFERENCE_STAGE_KIND = {"rerank": "RERANKER", "embedding": "EMBEDDING"}
_MASK64 = (1 << 64) - 1


def _require() -> None:
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        raise UsageError("OpenTelemetry export needs the otel extra: pip install 'rtrace[otel]'") from None


_NANOS_MAX = (1 << 63) - 1  # OTLP times are fixed64; the SDK and backends treat them as signed


def is_uuid(run_id: Any) -> bool:
    try:
        UUID(run_id)
        return True
    except (ValueError, TypeError, AttributeError):
        return False


def ids(run_id: str) -> int:
    """A run id as 128 bits: the UUID, or (a log from another writer) a stable hash of the string."""
    try:
        value = UUID(run_id).int
    except (ValueError, TypeError, AttributeError):
        value = int.from_bytes(hashlib.blake2b(str(run_id).encode("utf-8", "surrogatepass"), digest_size=16).digest(), "big")
    return value or 1  # 0 is OTel's invalid id


def span_id(run_id: str) -> int:
    return (ids(run_id) & _MASK64) or 1


def _nanos(value: int | None) -> int | None:
    """A time in OTLP's range, else None (a stamp in the year 9999 or before 1970)."""
    return value if value is not None and 0 <= value <= _NANOS_MAX else None


def _json(value: Any) -> str:
    return dumps(value).decode()


def _text(text: str, content: str) -> str | None:
    """Text under ``--content``: as is, its hash, or None (the attribute is then left out)."""
    if content == "full":
        return text
    return content_hash(text) if content == "hash" else None


def _document_attrs(attrs: dict[str, Any], key: str, docs: list[Any], content: str) -> None:
    """OpenInference's flattened documents; an unknown id or score is left out, never null."""
    for i, d in enumerate(docs):
        if not isinstance(d, dict):
            continue
        prefix = f"{key}.{i}.document."
        if d.get("id") is not None:
            attrs[prefix + "id"] = str(d["id"])
        if isinstance(d.get("page_content"), str):
            text = _text(d["page_content"], content)
            if text is not None:
                attrs[prefix + "content"] = text
        if isinstance(d.get("score"), (int, float)) and not isinstance(d.get("score"), bool):
            attrs[prefix + "score"] = float(d["score"])
        if d.get("metadata"):
            attrs[prefix + "metadata"] = _json(d["metadata"])


def _id_and_score(d: Any) -> dict[str, Any]:
    # gen_ai.retrieval.documents: {id, score}, each omitted when unknown
    if not isinstance(d, dict):
        return {}
    out: dict[str, Any] = {}
    if d.get("id") is not None:
        out["id"] = str(d["id"])
    if isinstance(d.get("score"), (int, float)) and not isinstance(d.get("score"), bool):
        out["score"] = float(d["score"])
    return out


def _attributes(run: Run, content: str = "full") -> dict[str, Any]:
    stage = run.metadata.get(STAGE_KEY)
    kind = OPENINFERENCE_STAGE_KIND.get(stage) or OPENINFERENCE_KIND.get(run.kind, "UNKNOWN")
    start = run.start if isinstance(run.start, dict) else {}
    attrs: dict[str, Any] = {
        "openinference.span.kind": kind,
        "rtrace.run_id": run.run_id,
        "rtrace.status": run.status,
    }
    if run.session_id:
        attrs["rtrace.session_id"] = run.session_id
    if run.tags:
        attrs["tag.tags"] = run.tags
    if run.metadata:
        attrs["metadata"] = _json(run.metadata)
    error = run.error
    if error is not None and isinstance(error.get("type"), str) and error["type"]:
        attrs["error.type"] = error["type"]
    if run.kind == "retriever":
        attrs["gen_ai.operation.name"] = "retrieval"
        source = start.get("vector_store")
        attrs["gen_ai.data_source.id"] = source if isinstance(source, str) and source else run.name
        k = start.get("k")
        if isinstance(k, int) and not isinstance(k, bool):
            attrs["gen_ai.retrieval.top_k"] = k
        query = _text(run.query, content) if run.query is not None else None
        if query is not None:
            attrs["input.value"] = query
            attrs["input.mime_type"] = "text/plain"
            attrs["gen_ai.retrieval.query.text"] = query
        for key in ("search_type", "score_threshold", "fetch_k", "embedding_model", "embedding_provider"):
            if isinstance(start.get(key), (str, int, float)) and not isinstance(start.get(key), bool):
                attrs[f"rtrace.{key}"] = start[key]
        documents_key = "retrieval.documents"
        if stage == "rerank":
            documents_key = "reranker.output_documents"
            attrs["reranker.model_name"] = run.name
            if query is not None:
                attrs["reranker.query"] = query
            top = run.metadata.get("top_n", run.metadata.get("top_k"))
            if isinstance(top, int) and not isinstance(top, bool):
                attrs["reranker.top_k"] = top
            given = start.get("input_documents")
            if isinstance(given, list):
                _document_attrs(attrs, "reranker.input_documents", given, content)
        docs = run.documents
        _document_attrs(attrs, documents_key, docs, content)
        kinds = {d.get("score_kind") for d in docs if isinstance(d, dict) and isinstance(d.get("score_kind"), str)}
        if len(kinds) == 1:
            attrs["rtrace.score_kind"] = kinds.pop()
        if isinstance((run.end or {}).get("score_source"), str):
            attrs["rtrace.score_source"] = run.end["score_source"]  # type: ignore[index]
        if run.end is not None:
            attrs["gen_ai.retrieval.documents"] = _json([_id_and_score(d) for d in docs])
    elif stage == "embedding":
        attrs["gen_ai.operation.name"] = "embeddings"
        model = run.metadata.get("embedding_model")
        if isinstance(model, str):
            attrs["embedding.model_name"] = model
            attrs["gen_ai.request.model"] = model
    return attrs


def _events(run: Run, default_time: int) -> list[Any]:
    from opentelemetry.sdk.trace import Event as SpanEvent

    out = []
    for kind, ev in run.timeline:
        if kind == "child":
            continue
        when = _nanos(ts_nanos(ev.get("ts"))) or default_time
        if kind == "retry":
            exc = ev.get("exception") if isinstance(ev.get("exception"), dict) else {}
            attrs = {k: v for k, v in {
                "retry.attempt": ev.get("attempt"), "retry.outcome": ev.get("outcome"),
                "exception.type": exc.get("type"), "exception.message": exc.get("message"),
                "retry.slept_s": ev.get("slept_s"), "retry.next_sleep_s": ev.get("next_sleep_s"),
            }.items() if v is not None}
            out.append(SpanEvent("retry", attrs, when))
        elif kind == "text":
            out.append(SpanEvent("text", {"text": str(ev.get("text", ""))}, when))
        elif kind == "custom":
            out.append(SpanEvent(str(ev.get("custom_name", "custom")), {"data": _json(ev.get("data"))}, when))
    error = run.error
    if error is not None:
        attrs = {"exception.type": str(error.get("type", "")), "exception.message": str(error.get("message", ""))}
        if isinstance(error.get("traceback"), str):
            attrs["exception.stacktrace"] = error["traceback"]
        out.append(SpanEvent("exception", attrs, _nanos(ts_nanos((run.end or {}).get("ts"))) or default_time))
    return out


class SpanBuilder:
    """Turns finished traces into SDK ``ReadableSpan``\\ s, one resource per session."""

    def __init__(self, service_name: str | None = None, content: str = "full") -> None:
        _require()
        self.content = content  # --content: query and document text as recorded, hashed, or left out
        from opentelemetry.sdk.resources import Resource

        self._Resource = Resource
        self.service_name = service_name
        self.resources: OrderedDict[str | None, Any] = OrderedDict()  # the last MAX_SESSIONS sessions' (bounded)
        self.warnings: dict[str, int] = {}  # values skipped, counted for one warning each

    def _warn(self, what: str) -> None:
        self.warnings[what] = self.warnings.get(what, 0) + 1

    def session(self, session: Session) -> None:
        start = session.start or {}
        argv = start.get("argv") if isinstance(start.get("argv"), list) else []
        attrs = {
            "service.name": self.service_name or (os.path.basename(str(argv[0])) if argv else "rtrace"),
            "rtrace.session_id": session.session_id,
            "telemetry.sdk.name": "rtrace", "telemetry.sdk.version": __version__,
        }
        if isinstance(start.get("pid"), int):
            attrs["process.pid"] = start["pid"]
        if argv:
            attrs["process.command_args"] = [str(a) for a in argv]
        self.resources[session.session_id] = self._Resource(attrs)  # not .create(): no random instance id
        if len(self.resources) > MAX_SESSIONS:
            self.resources.popitem(last=False)

    def _resource(self, session_id: str | None) -> Any:
        resource = self.resources.get(session_id)
        if resource is None:
            resource = self.resources[session_id] = self._Resource(
                {"service.name": self.service_name or "rtrace", "rtrace.session_id": session_id or ""})
        return resource

    def spans(self, trace: Trace) -> list[Any]:
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        scope = InstrumentationScope("rtrace", __version__)
        trace_id = ids(trace.trace_id)  # as recorded: a child process's runs join their parent's trace
        out = []
        for run in trace.runs:
            ctx = SpanContext(trace_id, span_id(run.run_id), is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
            parent = None
            if run.parent_run_id:
                parent = SpanContext(trace_id, span_id(run.parent_run_id), is_remote=run.parent is None,
                                     trace_flags=TraceFlags(TraceFlags.SAMPLED))
            if not is_uuid(run.run_id):
                self._warn("runs whose id is not a UUID (span ids derived from a hash of it)")
            stamps = [ts_nanos(ev.get("ts")) for ev in (run.start, run.end) if ev is not None]
            if any(t is not None and _nanos(t) is None for t in stamps):
                self._warn("time stamps out of OTLP's range (skipped)")
            start = _nanos(ts_nanos((run.start or {}).get("ts"))) or _nanos(ts_nanos((run.end or {}).get("ts"))) or 0
            end = _nanos(ts_nanos((run.end or {}).get("ts")))
            duration = run.duration_ms
            if duration is not None and run.start is not None:
                nanos = duration * 1_000_000 if math.isfinite(duration) else -1.0
                if 0 <= nanos <= _NANOS_MAX - start:
                    end = start + int(nanos)  # the monotonic duration, not wall-clock stamps
                else:
                    self._warn("durations that are negative or out of range (skipped)")
            if end is None or end < start:
                end = start
            if run.status == ERROR:
                err = run.error or {}
                status = Status(StatusCode.ERROR, f"{err.get('type', 'Error')}: {err.get('message', '')}")
            else:
                status = Status(StatusCode.UNSET if run.status == INCOMPLETE else StatusCode.OK)
            name = f"retrieval {run.name}" if run.kind == "retriever" else run.name
            out.append(ReadableSpan(
                name=name, context=ctx, parent=parent, resource=self._resource(run.session_id),
                attributes=_attributes(run, self.content), events=_events(run, start),
                kind=SpanKind.CLIENT if run.kind == "retriever" else SpanKind.INTERNAL,
                status=status, start_time=start, end_time=end, instrumentation_scope=scope,
            ))
        return out

    def from_items(self, items: Iterable[Trace | Session]) -> Iterator[list[Any]]:
        for item in items:
            if isinstance(item, Session):
                self.session(item)
            else:
                yield self.spans(item)
        self.report()

    def report(self) -> None:
        """One warning per kind of value that was skipped."""
        from rtrace.core.errors import warn

        for what, count in sorted(self.warnings.items()):
            warn(f"export: {count} {what}")
        self.warnings.clear()


def otlp_json(spans: list[Any]) -> bytes:
    """One OTLP/JSON ``ExportTraceServiceRequest`` (what the Collector's file exporter writes per line)."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    data = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    # OTLP/JSON differs from protobuf's JSON mapping: ids are hex strings, not base64.
    import base64

    for rs in data.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64decode(span[key]).hex()
    return orjson.dumps(data) + b"\n"


def write_otlp_json(items: Iterable[Trace | Session], out: Any, batch: int = 200, service_name: str | None = None,
                    content: str = "full") -> int:
    """Write spans as OTLP/JSON lines (``batch`` traces a line); returns the number of spans."""
    builder = SpanBuilder(service_name, content)
    pending: list[Any] = []
    traces = count = 0
    for spans in builder.from_items(items):
        pending += spans
        traces += 1
        if traces % batch == 0:
            out.write(otlp_json(pending))
            count += len(pending)
            pending = []
    if pending:
        out.write(otlp_json(pending))
        count += len(pending)
    return count


def check_endpoint(endpoint: str, timeout: float = 3.0) -> None:
    """Fail fast, with one line, when nothing listens at ``endpoint``."""
    url = urlparse(endpoint)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise UsageError(f"--endpoint takes an http(s) URL like http://127.0.0.1:4318/v1/traces, not {endpoint!r}")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            pass
    except OSError as e:
        raise OutputError(f"cannot reach {endpoint}: {e.strerror or e}") from None


def http_exporter(endpoint: str, timeout: float = 10.0) -> Any:
    _require()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint, timeout=timeout)


class _SdkLog(logging.Handler):
    """Keeps the OTel SDK's own log lines (e.g. "code: 404") for our one-line error, off stderr."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.last = record.getMessage()

    def __enter__(self) -> _SdkLog:
        self.logger = logging.getLogger("opentelemetry")
        self.saved = self.logger.propagate
        self.logger.addHandler(self)
        self.logger.propagate = False
        return self

    def __exit__(self, *exc: Any) -> None:
        self.logger.removeHandler(self)
        self.logger.propagate = self.saved


def export_http(items: Iterable[Trace | Session], endpoint: str, batch: int = 512,
                service_name: str | None = None, content: str = "full") -> int:
    """Send spans to an OTLP/HTTP endpoint in batches (the SDK exporter retries transient failures)."""
    _require()
    from opentelemetry.sdk.trace.export import SpanExportResult

    check_endpoint(endpoint)
    exporter = http_exporter(endpoint)
    builder = SpanBuilder(service_name, content)
    pending: list[Any] = []
    sent = 0

    sdk_log = _SdkLog()

    def flush() -> None:
        nonlocal pending, sent
        if pending:
            if exporter.export(pending) is not SpanExportResult.SUCCESS:
                why = f" ({sdk_log.last})" if sdk_log.last else ""
                raise OutputError(f"{endpoint} refused the spans{why}; {sent} were sent before")
            sent += len(pending)
            pending = []

    with sdk_log:
        try:
            for spans in builder.from_items(items):
                pending += spans
                if len(pending) >= batch:
                    flush()
            flush()
        finally:
            exporter.shutdown()
    return sent


def export_http_streaming(items: Iterable[Trace | Session], endpoint: str, service_name: str | None = None,
                          delay_ms: int = 1000, content: str = "full") -> int:
    """Like ``export_http``, for a stream that goes on (a log being written): the SDK's
    ``BatchSpanProcessor`` sends what has finished every ``delay_ms``; everything is flushed at the end."""
    _require()
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    check_endpoint(endpoint)
    processor = BatchSpanProcessor(http_exporter(endpoint), schedule_delay_millis=delay_ms)
    builder = SpanBuilder(service_name, content)
    sent = 0
    try:
        for spans in builder.from_items(items):
            for span in spans:
                processor.on_end(span)
            sent += len(spans)
    finally:
        processor.force_flush(60_000)
        processor.shutdown()
    return sent


class LiveExporter:
    """For ``rtrace run --export-endpoint``: an observer that ships spans from a background thread.

    The traced program only puts events on a queue; trees are built and spans
    batched and sent (by the SDK's ``BatchSpanProcessor``) on other threads, so the
    program's speed does not depend on the backend's. ``close()`` flushes everything.
    """

    def __init__(self, endpoint: str, service_name: str | None = None, max_queue: int = 1_000_000) -> None:
        _require()
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        check_endpoint(endpoint)
        self.processor = BatchSpanProcessor(http_exporter(endpoint), max_queue_size=max(2048, max_queue // 10))
        self.builder = SpanBuilder(service_name)
        self.trees = TreeBuilder()
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=max_queue)
        self.dropped = 0
        self.sdk_log = _SdkLog().__enter__()  # the SDK's complaints, reported once at close()
        self.thread = threading.Thread(target=self._work, name="rtrace-otel", daemon=True)
        self.thread.start()

    def __call__(self, ev: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(ev)
        except queue.Full:
            self.dropped += 1

    def _work(self) -> None:
        line = 0
        while True:
            ev = self.queue.get()
            if ev is None:
                break
            line += 1
            for item in self.trees.feed(Event(ev, "live", line, b"")):
                self._ship(item)
        for item in self.trees.finish():
            self._ship(item)

    def _ship(self, item: Trace | Session) -> None:
        if isinstance(item, Session):
            self.builder.session(item)
            return
        for span in self.builder.spans(item):
            self.processor.on_end(span)

    def close(self, timeout: float = 30.0) -> None:
        self.queue.put(None)
        self.thread.join(timeout)
        self.processor.force_flush(int(timeout * 1000))
        self.processor.shutdown()
        self.sdk_log.__exit__(None, None, None)
        if self.sdk_log.last:
            from rtrace.core.errors import warn

            warn(f"export: {self.sdk_log.last}")
