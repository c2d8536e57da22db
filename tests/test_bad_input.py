"""Faults in tracing never break the traced program: they are converted or warned about once."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import read_events
from rtrace.core import (
    BaseCallbackHandler,
    CallbackManager,
    Document,
    JsonlHandler,
    retriever,
    trace_to,
)


class Exploding(BaseCallbackHandler):
    def on_retriever_start(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("handler bug")

    def on_retriever_end(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("handler bug")


def test_a_raising_handler_is_logged_once_and_user_code_runs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "t.jsonl"
    good = JsonlHandler(log)
    cm = CallbackManager.configure([Exploding(), good])
    with caplog.at_level(logging.WARNING, logger="rtrace"):
        for i in range(5):
            cm.on_retriever_start(None, f"q{i}").on_retriever_end([])
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "Error in Exploding.on_retriever_start callback: RuntimeError('handler bug')",
        "Error in Exploding.on_retriever_end callback: RuntimeError('handler bug')",
    ]
    assert sum(e["event"] == "retriever_end" for e in read_events(log)) == 5  # later handlers still ran


@pytest.mark.parametrize(
    "result, expected",
    [
        (None, []),
        (42, ["42"]),
        ([None, 7, 3.5], ["None", "7", "3.5"]),
        ({"text": "a dict", "score": 0.4, "id": 9}, ["a dict"]),
        ([{"content": "c"}, {"unrelated": 1}], ["c", ""]),
        ("just a string", ["just a string"]),
        ([("tuple doc", 0.7)], ["tuple doc"]),
        ([["nested", ["list"]]], ["['nested', ['list']]"]),
        ((x for x in ["generator"]), []),  # not consumed: the caller still gets its items
    ],
)
def test_results_that_are_not_documents(tmp_path: Path, validate: Any, result: Any, expected: list[str]) -> None:
    log = tmp_path / "t.jsonl"
    with trace_to(log):
        returned = retriever(lambda query: result)("q")
    assert returned is result
    end = validate(read_events(log))[2]
    assert [d["page_content"] for d in end["documents"]] == expected
    if isinstance(result, dict):
        assert end["documents"][0]["score"] == 0.4 and end["documents"][0]["id"] == "9"


def test_documents_with_hostile_attributes(tmp_path: Path, validate: Any) -> None:
    class Weird:
        @property
        def page_content(self) -> str:
            return 123  # type: ignore[return-value]

        metadata = "not a dict"

    log = tmp_path / "t.jsonl"
    with trace_to(log):
        retriever(lambda query: [Weird()])("q")
    doc = validate(read_events(log))[2]["documents"][0]
    assert doc["page_content"] == "123" and doc["metadata"] == {"value": "not a dict"}


@pytest.mark.parametrize("query, recorded", [(None, None), (42, "42"), ({"q": "x"}, "{'q': 'x'}"), (b"raw", "b'raw'")])
def test_queries_that_are_not_strings(tmp_path: Path, validate: Any, query: Any, recorded: Any) -> None:
    log = tmp_path / "t.jsonl"
    with trace_to(log):
        retriever(lambda query: [])(query)
    assert validate(read_events(log))[1]["query"] == recorded


def test_an_output_path_that_cannot_be_opened(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocked = tmp_path / "no" / "such" / "dir" / "t.jsonl"
    with trace_to(blocked):
        assert retriever(lambda query: [query])("still works") == ["still works"]
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"rtrace: warning: cannot open trace log {blocked}: No such file or directory")
    assert len([line for line in err if "cannot open" in line]) == 1


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_disk_error_mid_run_warns_once_and_keeps_running() -> None:
    script = textwrap.dedent("""
        from rtrace.core import CallbackManager, Document, JsonlHandler
        h = JsonlHandler("/dev/full")
        cm = CallbackManager.configure([h])
        for i in range(50):
            cm.on_retriever_start(None, str(i)).on_retriever_end([Document("d")])
        h.close(exit_code=0)
        print("finished")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == "finished\n"
    assert out.stderr.splitlines() == [
        "rtrace: warning: cannot write trace log /dev/full: No space left on device; events are being lost",
        "rtrace: warning: 102 events could not be written to /dev/full",
    ]


def test_a_bad_handler_target_is_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match="needs a path, a file descriptor or a binary file"):
        JsonlHandler(3.5)  # type: ignore[arg-type]


def test_document_construction_mirrors_langchain() -> None:
    from langchain_core.documents import Document as LCDocument

    for args, kwargs in [(("hi",), {}), (("hi",), {"metadata": {"a": 1}, "id": "x1"}), (("hi",), {"id": 5})]:
        ours, theirs = Document(*args, **kwargs), LCDocument(*args, **kwargs)
        assert (ours.page_content, ours.metadata, ours.id) == (theirs.page_content, theirs.metadata, theirs.id)
        assert repr(ours) == repr(theirs) and str(ours) == str(theirs)
    assert Document("a", {"k": 1}) == Document("a", {"k": 1}) != Document("b")
