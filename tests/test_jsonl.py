"""JsonlHandler: schema v1 lines, durations, ids and scores, and lines that never tear."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import tenacity
from conftest import read_events
from langchain_core.documents import Document as LCDocument
from rtrace.core import (
    AsyncCallbackManager,
    CallbackManager,
    Document,
    JsonlHandler,
)


def test_a_run_writes_valid_schema_v1_events(tmp_path: Path, validate: Any) -> None:
    log = tmp_path / "t.jsonl"
    h = JsonlHandler(log)
    cm = CallbackManager.configure([h], inheritable_tags=["prod"], local_metadata={"k": 5})
    rm = cm.on_retriever_start(None, "what is bm25?", name="Hybrid")
    child = rm.get_child("dense").on_retriever_start(None, "what is bm25?", name="Dense")
    time.sleep(0.01)
    child.on_retriever_end([(LCDocument("bm25 is a ranking function", metadata={"source": "wiki"}, id="w1"), 0.82)])
    rm.on_text("fused 1 result")
    cm.on_custom_event("rerank", {"kept": 1}, run_id=rm.run_id)
    rm.on_retriever_end([Document("x", {"score": 0.5, "id": "m7"})])
    h.close(exit_code=0)

    events = validate(read_events(log))
    assert [e["event"] for e in events] == [
        "session_start", "retriever_start", "retriever_start", "retriever_end",
        "text", "custom_event", "retriever_end", "session_end",
    ]
    assert [e["seq"] for e in events] == list(range(1, 9))
    assert len({e["session_id"] for e in events}) == 1
    root, child_start, child_end = events[1], events[2], events[3]
    assert root["parent_run_id"] is None and root["trace_id"] == root["run_id"]
    assert root["tags"] == ["prod"] and root["metadata"] == {"k": 5} and root["query"] == "what is bm25?"
    assert child_start["parent_run_id"] == root["run_id"] and child_start["trace_id"] == root["run_id"]
    assert child_start["tags"] == ["prod", "dense"]
    assert child_end["name"] == "Dense" and child_end["duration_ms"] >= 10
    assert child_end["documents"] == [
        {"id": "w1", "page_content": "bm25 is a ranking function", "metadata": {"source": "wiki"}, "score": 0.82}
    ]
    assert events[5]["custom_name"] == "rerank" and events[5]["data"] == {"kept": 1}
    assert events[5]["run_id"] == root["run_id"]
    assert events[6]["documents"][0]["id"] == "m7" and events[6]["documents"][0]["score"] == 0.5
    assert events[7]["exit_code"] == 0 and events[7]["incomplete_runs"] == []
    assert events[0]["pid"] == os.getpid() and events[0]["argv"] == sys.argv


def test_errors_and_retries_are_recorded(tmp_path: Path, validate: Any) -> None:
    log = tmp_path / "t.jsonl"
    h = JsonlHandler(log)
    rm = CallbackManager.configure([h]).on_retriever_start(None, "q", name="Flaky")
    attempts = {"n": 0}

    def flaky() -> None:
        attempts["n"] += 1
        raise ConnectionError(f"refused #{attempts['n']}")

    with pytest.raises(ConnectionError):
        tenacity.Retrying(
            stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_fixed(0.02),
            before_sleep=rm.on_retry, reraise=True,
        )(flaky)
    try:
        raise TimeoutError("gave up")
    except TimeoutError as e:
        rm.on_retriever_error(e)

    events = validate(read_events(log))
    retries = [e for e in events if e["event"] == "retry"]
    assert [(r["attempt"], r["outcome"], r["exception"]["message"]) for r in retries] == [
        (1, "failed", "refused #1"), (2, "failed", "refused #2"),
    ]
    assert retries[0]["slept_s"] == 0.0 and retries[1]["slept_s"] == pytest.approx(0.02)
    assert retries[0]["next_sleep_s"] == pytest.approx(0.02)
    err = events[-1]
    assert err["event"] == "retriever_error" and err["error"]["type"] == "TimeoutError"
    assert "raise TimeoutError" in err["error"]["traceback"] and err["duration_ms"] >= 40


def test_async_manager_writes_the_same_events(tmp_path: Path, validate: Any) -> None:
    log = tmp_path / "t.jsonl"
    h = JsonlHandler(log)

    async def main() -> None:
        cm = AsyncCallbackManager.configure([h])
        rms = await asyncio.gather(*(cm.on_retriever_start(None, f"q{i}") for i in range(20)))
        await asyncio.gather(*(rm.on_retriever_end([Document(f"d{i}")]) for i, rm in enumerate(rms)))

    asyncio.run(main())
    events = validate(read_events(log))
    assert sum(e["event"] == "retriever_end" for e in events) == 20
    by_run = {e["run_id"]: e for e in events if e["event"] == "retriever_start"}
    for e in events:
        if e["event"] == "retriever_end":
            assert by_run[e["run_id"]]["query"] == "q" + e["documents"][0]["page_content"][1:]


def test_threads_never_tear_lines_and_seq_follows_file_order(tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    h = JsonlHandler(log)
    cm = CallbackManager.configure([h])
    big = "x" * 20_000  # larger than a pipe buffer, to make tearing likely if it could happen

    def work(i: int) -> None:
        for j in range(50):
            rm = cm.on_retriever_start(None, f"{i}-{j}")
            rm.on_retriever_end([Document(big, {"i": i, "j": j})])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = read_events(log)
    assert len(events) == 1 + 8 * 50 * 2
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


WRITER = textwrap.dedent("""
    import sys
    from rtrace.core import CallbackManager, Document, JsonlHandler
    h = JsonlHandler(sys.argv[1])
    cm = CallbackManager.configure([h])
    for j in range(int(sys.argv[2])):
        rm = cm.on_retriever_start(None, "p" + sys.argv[3] + "-" + str(j))
        rm.on_retriever_end([Document("y" * 9000, {"j": j})])
    h.close(exit_code=0)
""")


def test_several_processes_append_to_one_file_without_interleaving(tmp_path: Path) -> None:
    log = tmp_path / "shared.jsonl"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(log), "200", str(i)]) for i in range(4)
    ]
    assert all(p.wait(60) == 0 for p in procs)
    events = read_events(log)
    sessions: dict[str, list[int]] = {}
    for e in events:
        sessions.setdefault(e["session_id"], []).append(e["seq"])
    assert len(sessions) == 4
    for seqs in sessions.values():  # each writer's lines appear whole and in its own order
        assert seqs == list(range(1, 200 * 2 + 3))


def test_kill_9_loses_no_emitted_event(tmp_path: Path) -> None:
    log = tmp_path / "k.jsonl"
    script = textwrap.dedent("""
        import sys, time
        from rtrace.core import CallbackManager, Document, JsonlHandler
        cm = CallbackManager.configure([JsonlHandler(sys.argv[1])])
        for j in range(100):
            cm.on_retriever_start(None, str(j)).on_retriever_end([Document("d")])
        print("emitted", flush=True)
        time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", script, str(log)], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "emitted"
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    events = read_events(log)
    assert sum(e["event"] == "retriever_end" for e in events) == 100


def test_unencodable_values_are_converted_never_raised(tmp_path: Path, validate: Any) -> None:
    class BadRepr:
        def __repr__(self) -> str:
            raise RuntimeError("no repr for you")

    cyclic: dict[str, Any] = {"name": "loop"}
    cyclic["self"] = cyclic
    import datetime

    meta = {
        "set": {3}, "bytes": b"\x00\xff", "when": datetime.datetime(2026, 1, 2, 3, 4, 5),
        "bad": BadRepr(), "cycle": cyclic, "huge": 2**100, 7: "int key", "surrogate": "\udc80",
    }
    log = tmp_path / "t.jsonl"
    h = JsonlHandler(log)
    rm = CallbackManager.configure([h], local_metadata=meta).on_retriever_start(None, "q")
    rm.on_retriever_end([Document("d", meta)])
    events = validate(read_events(log))
    written = events[1]["metadata"]
    assert written["set"] == [3] and written["bytes"] == "AP8=" and written["when"] == "2026-01-02T03:04:05"
    assert written["bad"] == f"<{__name__}.{BadRepr.__qualname__} object>"  # a user's __repr__ is never called
    assert written["huge"] == str(2**100) and written["7"] == "int key"
    assert written["cycle"]["self"] == "<cycle>"
    assert events[2]["documents"][0]["metadata"]["set"] == [3]


def test_secret_metadata_is_redacted_and_content_truncated(tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    h = JsonlHandler(log, max_content=5)
    cm = CallbackManager.configure([h], local_metadata={"API_KEY": "sk-1", "nested": {"Password": "p"}, "k": 1})
    rm = cm.on_retriever_start(None, "q")
    rm.on_retriever_end([Document("0123456789", {"token": "t", "source": "s"})])
    events = read_events(log)
    assert events[1]["metadata"] == {"API_KEY": "[REDACTED]", "nested": {"Password": "[REDACTED]"}, "k": 1}
    doc = events[2]["documents"][0]
    assert doc["page_content"] == "01234" and doc["content_length"] == 10
    assert doc["metadata"] == {"token": "[REDACTED]", "source": "s"}

    log2 = tmp_path / "t2.jsonl"
    rm = CallbackManager.configure([JsonlHandler(log2, redact=["source"])], local_metadata={"token": "t"}).on_retriever_start(None, "q")
    rm.on_retriever_end([Document("d", {"SOURCE": "s"})])
    events = read_events(log2)
    assert events[1]["metadata"] == {"token": "t"} and events[2]["documents"][0]["metadata"] == {"SOURCE": "[REDACTED]"}


def test_langchain_managers_can_drive_the_handler(tmp_path: Path, validate: Any) -> None:
    """JsonlHandler works as a LangChain callback: chains are recorded as parents of retrievers."""
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import RunnableLambda

    class Kw(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[LCDocument]:
            return [LCDocument("hit for " + query, id="k1")]

    log = tmp_path / "lc.jsonl"
    h = JsonlHandler(log)
    chain = RunnableLambda(lambda q: q.strip()) | Kw()
    docs = chain.invoke("  rag  ", {"callbacks": [h]})
    assert docs[0].page_content == "hit for rag"
    events = validate(read_events(log))
    starts = {e["name"]: e for e in events if e["event"].endswith("_start") and e["event"] != "session_start"}
    assert starts["Kw"]["event"] == "retriever_start"
    assert starts["Kw"]["parent_run_id"] == starts["RunnableSequence"]["run_id"]
    assert starts["Kw"]["trace_id"] == starts["RunnableSequence"]["run_id"]
    assert starts["Kw"]["metadata"]["ls_retriever_name"] == "kw"
    end = next(e for e in events if e["event"] == "retriever_end")
    assert end["documents"][0]["id"] == "k1"
    assert {e["event"] for e in events} >= {"chain_start", "chain_end", "retriever_start", "retriever_end"}


def test_a_forked_child_writes_its_own_session(tmp_path: Path) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    log = tmp_path / "f.jsonl"
    h = JsonlHandler(log)
    cm = CallbackManager.configure([h])
    parent_rm = cm.on_retriever_start(None, "parent")
    pid = os.fork()
    if pid == 0:  # child
        try:
            parent_rm.get_child().on_retriever_start(None, "in child").on_retriever_end([])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    parent_rm.on_retriever_end([])
    events = read_events(log)
    child_start = next(e for e in events if e.get("query") == "in child")
    assert child_start["session_id"] != events[0]["session_id"]
    assert child_start["parent_run_id"] == str(parent_rm.run_id)
    assert child_start["trace_id"] == str(parent_rm.run_id)


def test_observers_see_every_event_as_written_and_a_failing_one_is_dropped_with_one_warning(
        tmp_path: Path, capsys: Any) -> None:
    seen: list[str] = []
    calls = {"bad": 0}

    def good(ev: dict[str, Any]) -> None:
        seen.append(ev["event"])

    def bad(ev: dict[str, Any]) -> None:
        calls["bad"] += 1
        raise RuntimeError("observer bug")

    for observers in ([good], [bad, good]):  # one observer (called inline) and several
        seen.clear()
        calls["bad"] = 0
        log = tmp_path / f"obs{len(observers)}.jsonl"
        h = JsonlHandler(log, observers=observers)
        m = CallbackManager.configure([h])
        for _ in range(2):
            m.on_retriever_start(None, "q").on_retriever_end([LCDocument("a", id="d")])
        h.close()
        written = [e["event"] for e in read_events(log)]
        assert seen == written  # session_start ... session_end, in the order written
        assert calls["bad"] == (1 if bad in observers else 0)  # dropped after its first failure
        assert h.observers == [good]
    err = capsys.readouterr().err
    assert err.count("failed and was removed") == 1 and "observer bug" in err
