"""OpenTelemetry export: OTLP/JSON files, OTLP/HTTP, `rtrace run --export-endpoint`, and a real Phoenix."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from conftest import ROOT, read_events
from synth import standard_log

RTRACE = [sys.executable, "-m", "rtrace.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_", "OTEL_"))}


def rtrace(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RTRACE, *args], cwd=cwd, capture_output=True, text=True, timeout=180, env=ENV)


def _spans(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    out.append({**span, "resource": {a["key"]: a["value"] for a in rs["resource"]["attributes"]}})
    return out


def _attrs(span: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values())) for a in span.get("attributes", [])}


def test_otlp_json_file(tmp_path: Path) -> None:
    log = standard_log(tmp_path / "l.jsonl")
    r = rtrace("export", str(log), "-o", "out.json", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == "rtrace: wrote 6 spans to out.json\n", r.stderr
    spans = {s["name"]: s for s in _spans(tmp_path / "out.json")}
    hybrid, dense, flaky = spans["retrieval Hybrid"], spans["retrieval Dense"], spans["retrieval Flaky"]
    root_id = next(e["run_id"] for e in read_events(log) if e.get("name") == "Hybrid")
    assert hybrid["traceId"] == UUID(root_id).hex and len(hybrid["spanId"]) == 16
    assert dense["traceId"] == hybrid["traceId"] and dense["parentSpanId"] == hybrid["spanId"]
    assert "parentSpanId" not in hybrid and hybrid["kind"] == 3  # CLIENT
    a = _attrs(dense)
    assert a["openinference.span.kind"] == "RETRIEVER" and a["input.value"] == "what is bm25"
    assert a["retrieval.documents.0.document.id"] == "d1" and a["retrieval.documents.0.document.score"] == 0.91
    assert a["retrieval.documents.1.document.content"] == "BM25 ranks by term frequency."
    assert json.loads(a["retrieval.documents.0.document.metadata"]) == {"source": "wiki/dense.md"}
    assert a["gen_ai.operation.name"] == "retrieval" and a["gen_ai.data_source.id"] == "Dense"
    assert json.loads(a["gen_ai.retrieval.documents"]) == [{"id": "d1", "score": 0.91}, {"id": "d2", "score": 0.55}]
    assert int(dense["endTimeUnixNano"]) - int(dense["startTimeUnixNano"]) == 12_500_000  # the recorded 12.5 ms
    assert flaky["status"] == {"message": "TimeoutError: timed out", "code": 2}
    events = [e["name"] for e in flaky["events"]]
    assert events == ["retry", "retry", "exception"]
    assert {x["key"] for x in flaky["events"][0]["attributes"]} >= {"retry.attempt", "exception.type"}
    assert hybrid["resource"]["service.name"] == {"stringValue": "search.py"}
    again = rtrace("export", str(log), "-o", "again.json", cwd=tmp_path)
    assert again.returncode == 0
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "out.json").read_bytes()  # deterministic


class _Receiver(http.server.BaseHTTPRequestHandler):
    """A slow OTLP/HTTP backend: records what it receives, 0.3 s per request."""

    received: list[Any] = []

    def do_POST(self) -> None:  # noqa: N802
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        time.sleep(0.3)
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                self.received.extend(ss.spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Any:
    _Receiver.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", _Receiver.received
    server.shutdown()


def test_export_to_an_otlp_http_endpoint(tmp_path: Path, receiver: Any) -> None:
    url, received = receiver
    log = standard_log(tmp_path / "l.jsonl")
    r = rtrace("export", str(log), "--endpoint", url, cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == f"rtrace: sent 6 spans to {url}\n"
    assert sorted(s.name for s in received) == sorted(
        ["retrieval Hybrid", "retrieval Dense", "retrieval Sparse", "retrieval Flaky", "retrieval Slow", "retrieval Child"])


def test_run_streams_spans_and_loses_none_at_exit(tmp_path: Path, receiver: Any) -> None:
    url, received = receiver
    r = rtrace("run", "-q", "--export-endpoint", url, str(ROOT / "samples" / "fanout.py"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    names = [s.name for s in received]
    assert names.count("retrieval FanOut") == 50, r.stderr
    assert names.count("retrieval Shard") == 150  # all, with a slow backend
    by_id = {s.span_id: s for s in received}
    shard = next(s for s in received if s.name == "retrieval Shard")
    assert by_id[shard.parent_span_id].name == "retrieval FanOut"


def test_unreachable_endpoints_are_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    log = standard_log(tmp_path / "l.jsonl")
    for args in (["export", str(log), "--endpoint", f"http://127.0.0.1:{port}/v1/traces"],
                 ["run", "--export-endpoint", f"http://127.0.0.1:{port}/v1/traces", str(ROOT / "samples" / "noop.py")]):
        r = rtrace(*args, cwd=tmp_path)
        assert r.returncode == 1
        assert r.stderr == f"rtrace: error: cannot reach http://127.0.0.1:{port}/v1/traces: Connection refused\n"
    bad = rtrace("export", str(log), "--endpoint", "ftp://x", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("rtrace: error: --endpoint takes an http(s) URL")
    both = rtrace("export", str(log), cwd=tmp_path)
    assert both.returncode == 2 and both.stderr == "rtrace: error: give -o FILE (OTLP/JSON) or --endpoint URL (OTLP/HTTP)\n"


# --- a real backend: Arize Phoenix ----------------------------------------------------------

PHOENIX_VENV = Path(os.environ.get("RTRACE_PHOENIX_VENV", Path.home() / ".cache" / "rtrace-test-phoenix"))


def _phoenix_python() -> Path:
    """A virtual environment with arize-phoenix (made once and reused), or skip saying why."""
    python = PHOENIX_VENV / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import phoenix"], capture_output=True).returncode == 0:
        return python
    shutil.rmtree(PHOENIX_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(PHOENIX_VENV)], check=True, capture_output=True)
    r = subprocess.run([str(python), "-m", "pip", "install", "-q", "arize-phoenix"], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        reason = (r.stderr.strip().splitlines() or ["pip failed"])[-1]
        print(f"\nPhoenix could not be installed: {reason}", file=sys.stderr)
        pytest.skip(f"arize-phoenix could not be installed here: {reason}")
    return python


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())



def test_phoenix_receives_spans_links_and_documents(tmp_path: Path) -> None:
    python = _phoenix_python()
    port, grpc = _free_port(), _free_port()
    env = {**ENV, "PHOENIX_WORKING_DIR": str(tmp_path / "phoenix"), "PHOENIX_HOST": "127.0.0.1",
           "PHOENIX_PORT": str(port), "PHOENIX_GRPC_PORT": str(grpc)}
    server = subprocess.Popen([str(python), "-m", "phoenix.server.main", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while True:
            try:
                _get(base + "/v1/projects")
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    pytest.fail("Phoenix did not start")
                time.sleep(1)
        log = tmp_path / "hybrid.jsonl"
        assert rtrace("run", "-q", "-o", str(log), str(ROOT / "samples" / "hybrid.py"), cwd=tmp_path).returncode == 0
        r = rtrace("export", str(log), "--endpoint", base + "/v1/traces", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        deadline = time.time() + 60
        spans: list[dict[str, Any]] = []
        while time.time() < deadline and len(spans) < 16:
            spans = _get(base + "/v1/projects/default/spans?limit=100")["data"]
            time.sleep(1)
        assert len(spans) == 16  # 4 queries x (Hybrid, Keyword, Dense, Rerank)
        by_id = {s["context"]["span_id"]: s for s in spans}
        rerank = next(s for s in spans if s["name"] == "retrieval Rerank")
        assert by_id[rerank["parent_id"]]["name"] == "retrieval Hybrid"
        assert rerank["span_kind"] == "RETRIEVER"
        assert rerank["attributes"]["retrieval.documents.0.document.id"] in {e["id"] for e in _docs(log)}

        # scores LangChain's VectorStoreRetriever drops, and a reranker's stage, arrive as such
        lc = tmp_path / "langchain.jsonl"
        assert rtrace("run", "-q", "-o", str(lc), str(ROOT / "samples" / "langchain_pipeline.py"), cwd=tmp_path).returncode == 0
        r = rtrace("export", str(lc), "--endpoint", base + "/v1/traces", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        expected = 16 + sum(e["event"].endswith("_start") and e["event"] != "session_start" for e in read_events(lc))
        deadline = time.time() + 60
        while time.time() < deadline and len(spans) < expected:
            spans = _get(base + "/v1/projects/default/spans?limit=200")["data"]
            time.sleep(1)
        assert len(spans) == expected
        recorded = next(e for e in read_events(lc) if e["event"] == "retriever_end" and e["name"] == "VectorStoreRetriever")
        vs = next(s for s in spans if s["context"]["span_id"] == f"{UUID(recorded['run_id']).int & ((1 << 64) - 1):016x}")
        assert vs["attributes"]["retrieval.documents.0.document.score"] == recorded["documents"][0]["score"]
        assert vs["attributes"]["gen_ai.retrieval.top_k"] == 4
        reranker = next(s for s in spans if s["name"] == "retrieval KeywordReranker")
        assert reranker["span_kind"] == "RERANKER"
        assert reranker["attributes"]["reranker.input_documents.0.document.id"] == "rerank-01"
        assert isinstance(reranker["attributes"]["reranker.output_documents.0.document.score"], float)
        assert any(s["span_kind"] == "EMBEDDING" for s in spans)
    finally:
        server.terminate()
        server.wait(30)


def _docs(log: Path) -> list[dict[str, Any]]:
    return [d for e in read_events(log) if e["event"] == "retriever_end" for d in e["documents"]]


def test_run_with_stdout_jsonl_exports_from_the_process_itself(tmp_path: Path, receiver: Any) -> None:
    url, received = receiver
    r = rtrace("run", "-q", "-o", "-", "--export-endpoint", url, str(ROOT / "samples" / "hybrid.py"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert all(json.loads(line)["v"] == 1 for line in r.stdout.splitlines())  # stdout is still pure JSONL
    assert len(received) == 16


def test_texts_and_custom_events_become_span_events(tmp_path: Path) -> None:
    from synth import LogBuilder, rid

    b = LogBuilder().session_start().start(1, "R", "q")
    b.text(1, "R", "rewrote the query")
    b.ev("custom_event", run_id=rid(1), parent_run_id=None, trace_id=rid(1), name="R", custom_name="rerank",
         data={"kept": 3}, tags=[], metadata={})
    b.end(1, "R", [], 2.0).session_end().write(tmp_path / "l.jsonl")
    assert rtrace("export", "l.jsonl", "-o", "out.json", cwd=tmp_path).returncode == 0
    (span,) = _spans(tmp_path / "out.json")
    events = {e["name"]: {a["key"]: next(iter(a["value"].values())) for a in e.get("attributes", [])} for e in span["events"]}
    assert events == {"text": {"text": "rewrote the query"}, "rerank": {"data": '{"kept":3}'}}
    assert span["status"] == {"code": 1}  # OK


def test_an_endpoint_that_refuses_is_one_line(tmp_path: Path) -> None:
    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/wrong/path"
        r = rtrace("export", str(standard_log(tmp_path / "l.jsonl")), "--endpoint", url, cwd=tmp_path)
        assert r.returncode == 1
        assert r.stderr == f"rtrace: error: {url} refused the spans (Failed to export spans batch code: 404, reason: Not Found); 0 were sent before\n"
    finally:
        server.shutdown()


def test_export_follows_genai_and_openinference_for_scores_stages_and_content(tmp_path: Path) -> None:
    log = tmp_path / "lc.jsonl"
    r = rtrace("run", "-q", "-o", str(log), str(ROOT / "samples" / "langchain_pipeline.py"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    events = read_events(log)
    for mode in ("full", "hash", "none"):
        out = tmp_path / f"{mode}.json"
        assert rtrace("export", str(log), "-o", str(out), "--content", mode, cwd=tmp_path).returncode == 0
        spans = _spans(out)
        end = next(e for e in events if e["event"] == "retriever_end" and e["name"] == "VectorStoreRetriever")
        a = _attrs(next(s for s in spans if s["spanId"] == f"{UUID(end['run_id']).int & ((1 << 64) - 1):016x}"))
        assert a["gen_ai.operation.name"] == "retrieval" and a["gen_ai.retrieval.top_k"] == "4"  # int64 as a string
        assert a["gen_ai.data_source.id"] == "InMemoryVectorStore" and a["rtrace.score_kind"] == "similarity"
        docs = end["documents"]
        assert json.loads(a["gen_ai.retrieval.documents"]) == [{"id": d["id"], "score": d["score"]} for d in docs]
        assert a["retrieval.documents.0.document.score"] == docs[0]["score"]
        text = a.get("retrieval.documents.0.document.content")
        assert text == {"full": docs[0]["page_content"], "none": None}.get(mode, "sha256:" + __import__("hashlib").sha256(
            docs[0]["page_content"].encode()).hexdigest()[:16])
        assert ("input.value" in a) == (mode != "none")

        def asked(name: str) -> str | None:  # a run's query as the content mode records it
            query = next(e for e in events if e["event"] == "retriever_start" and e["name"] == name)["query"]
            return {"full": query, "none": None}.get(mode, "sha256:" + hashlib.sha256(query.encode()).hexdigest()[:16])

        assert a.get("gen_ai.retrieval.query.text") == a.get("input.value") == asked("VectorStoreRetriever")
        reranker = _attrs(next(s for s in spans if s["name"] == "retrieval KeywordReranker"))
        assert reranker.get("reranker.query") == asked("KeywordReranker") and reranker["reranker.top_k"] == "3"  # top_n
        assert reranker["openinference.span.kind"] == "RERANKER" and reranker["reranker.model_name"] == "KeywordReranker"
        assert reranker["reranker.input_documents.0.document.id"] == "rerank-01"
        assert [reranker[f"reranker.output_documents.{i}.document.id"] for i in range(3)] == ["rerank-01", "quant-01", "ctx-01"]
        embedding = _attrs(next(s for s in spans if s["name"] == "HashEmbeddings"))
        assert embedding["openinference.span.kind"] == "EMBEDDING" and embedding["gen_ai.operation.name"] == "embeddings"
    bad = rtrace("export", str(log), "-o", "x.json", "--content", "some", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr == "rtrace: error: --content is full, hash or none, not 'some'\n"


def test_unknown_ids_and_scores_are_left_out_and_failures_carry_error_type(tmp_path: Path) -> None:
    from synth import LogBuilder, rid

    b = LogBuilder().session_start().start(1, "R", "q")
    b.ev("retriever_end", run_id=rid(1), parent_run_id=None, trace_id=rid(1), name="R", duration_ms=1.0,
         documents=[{"id": None, "page_content": "x", "metadata": {}, "score": None},
                    {"id": "d2", "page_content": "y", "metadata": {}, "score": 0.5}])
    b.start(2, "F", "q").ev("retriever_error", run_id=rid(2), parent_run_id=None, trace_id=rid(2), name="F",
                            duration_ms=1.0, error={"type": "TimeoutError", "message": "slow", "traceback": None})
    b.session_end().write(tmp_path / "l.jsonl")
    assert rtrace("export", "l.jsonl", "-o", "out.json", cwd=tmp_path).returncode == 0
    spans = {s["name"]: _attrs(s) for s in _spans(tmp_path / "out.json")}
    ok, failed = spans["retrieval R"], spans["retrieval F"]
    assert json.loads(ok["gen_ai.retrieval.documents"]) == [{}, {"id": "d2", "score": 0.5}]
    assert "retrieval.documents.0.document.id" not in ok and "retrieval.documents.0.document.score" not in ok
    assert failed["error.type"] == "TimeoutError" and "error.type" not in ok
