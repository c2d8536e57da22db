"""Hostile values never lose a run, never hang the program, never blow up the log.

Each case hands the recorder something a real program might: a 5000-digit int, a
``__repr__`` that recurses or hangs (plain python never calls it), a document property
that raises, a metadata key whose ``__hash__`` fails later, a query nested 100,000 deep.
Every run must still have its start and end, with a placeholder where a value cannot be kept.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import read_events
from rtrace.core import CallbackManager, Document, JsonlHandler


class RecursiveRepr:
    def __repr__(self) -> str:
        return repr(self)


class HangingRepr:
    def __repr__(self) -> str:
        time.sleep(3600)
        return "never"

    __str__ = __repr__


class RaisingContent:
    metadata: dict[str, Any] = {}

    @property
    def page_content(self) -> str:
        raise RuntimeError("lazy content failed to load")


class HashFailsLater:
    calls = 0

    def __hash__(self) -> int:
        HashFailsLater.calls += 1
        if HashFailsLater.calls > 1:
            raise RuntimeError("hash failed")
        return 1


def _deep(n: int) -> list[Any]:
    root: list[Any] = []
    cur = root
    for _ in range(n):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    return root


def _record(tmp_path: Path, query: Any = "q", docs: Any = (), metadata: Any = None) -> list[dict[str, Any]]:
    log = tmp_path / "t.jsonl"
    handler = JsonlHandler(log)
    rm = CallbackManager.configure([handler], local_metadata=metadata).on_retriever_start(None, query)
    rm.on_retriever_end(list(docs))
    handler.close()
    return read_events(log)


CASES = {
    "5000-digit int in metadata": dict(metadata={"n": 10**5000}),
    "5000-digit int as the query": dict(query=10**5000),
    "5000-digit int as a document id": dict(docs=[Document("d", id=None, metadata={"id": 10**5000})]),
    "recursive __repr__ as a document": dict(docs=[RecursiveRepr()]),
    "recursive __repr__ in metadata": dict(metadata={"obj": RecursiveRepr()}),
    "hanging __repr__ as a document": dict(docs=[HangingRepr()]),
    "hanging __repr__ in metadata": dict(metadata={"obj": HangingRepr()}),
    "hanging __str__ as the query": dict(query=HangingRepr()),
    "a document property that raises": dict(docs=[Document("good 1"), RaisingContent(), Document("good 2")]),
    "a 100,000-deep nested query": dict(query=_deep(100_000)),
    "100,000-deep nested metadata": dict(metadata={"deep": _deep(100_000)}),
    "a 10 MB metadata string": dict(metadata={"blob": "x" * 10_000_000}),
    "a 10 MB query": dict(query="q" * 10_000_000),
}


@pytest.mark.timeout(60)  # a call to the hanging __repr__ would hang here
@pytest.mark.parametrize("case", list(CASES))
def test_every_run_is_recorded_with_placeholders(tmp_path: Path, validate: Any, case: str) -> None:
    events = validate(_record(tmp_path, **CASES[case]))
    assert [e["event"] for e in events] == ["session_start", "retriever_start", "retriever_end", "session_end"]
    for e in events:  # every recorded string within its budget
        assert len(str(e)) < 2_000_000
    if case == "a document property that raises":
        assert [d["page_content"] for d in events[2]["documents"]] == ["good 1", "<unrecordable RaisingContent>", "good 2"]
    if "hanging" in case:
        assert "HangingRepr object>" in str(events[1:3])


def test_a_metadata_key_whose_hash_fails_later(tmp_path: Path) -> None:
    HashFailsLater.calls = 0
    meta = {HashFailsLater(): 1, "api_key": "secret-value", "source": "a.md"}
    events = _record(tmp_path, metadata=meta)
    assert [e["event"] for e in events][1:3] == ["retriever_start", "retriever_end"]
    written = events[1]["metadata"]
    assert written["api_key"] == "[REDACTED]" and written["source"] == "a.md" and len(written) == 3


@pytest.mark.timeout(120)
def test_an_exception_through_nested_runs_costs_linear_bytes(tmp_path: Path) -> None:
    depth = 400
    source = textwrap.dedent(f"""
        import sys
        from rtrace.core import retriever
        sys.setrecursionlimit(10_000)

        @retriever
        def nested(n):
            if n == 0:
                raise ValueError("bottom")
            return nested(n - 1)

        try:
            nested({depth})
        except ValueError:
            print("caught")
    """)
    (tmp_path / "prog.py").write_text(source)
    proc = subprocess.run([sys.executable, "-m", "rtrace.cli", "run", "-q", "-o", "log.jsonl", "prog.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if not k.startswith("RTRACE_")})
    assert proc.returncode == 0 and proc.stdout == "caught\n", proc.stderr
    events = read_events(tmp_path / "log.jsonl")
    errors = [e for e in events if e["event"] == "retriever_error"]
    assert len(errors) == depth + 1
    outermost = errors[-1]["error"]["traceback"]
    assert "outer frames omitted" in outermost and outermost.rstrip().endswith("ValueError: bottom")
    # whole tracebacks would be ~depth² frames (~100 MB here); bounded ones stay linear
    assert (tmp_path / "log.jsonl").stat().st_size < (depth + 1) * 8_000


def _ping(n: int) -> None:
    if n == 0:
        raise ValueError("m" * 100_000)
    _pong(n - 1)


def _pong(n: int) -> None:  # two functions in turn: no frame repeats the one before (python would fold it)
    _ping(n - 1)


def test_every_recorded_string_keeps_the_budget_the_readme_states(tmp_path: Path) -> None:
    """README: 64 KiB per text, 1 MiB per document, the innermost 30 frames and 16 KiB per traceback,
    and a value rtrace cannot keep is a placeholder that says what it was."""
    log = tmp_path / "t.jsonl"
    handler = JsonlHandler(log)
    manager = CallbackManager.configure([handler], local_metadata={"blob": "x" * 100_000, "n": 10**5000})
    rm = manager.on_retriever_start(None, "q" * 100_000)
    rm.on_retriever_end([Document("d" * ((1 << 20) + 10), {"note": "y" * 70_000})])
    rm = manager.on_retriever_start(None, "deep")
    try:
        _ping(40)
    except ValueError as e:
        rm.on_retriever_error(e)
    handler.close()
    start, end, _, error = read_events(log)[1:5]
    assert start["query"] == "q" * 65536 + "…[34464 more characters]"
    assert start["metadata"] == {"blob": "x" * 65536 + "…[34464 more characters]", "n": "<int of 16610 bits>"}
    doc = end["documents"][0]
    assert doc["page_content"] == "d" * (1 << 20) and doc["content_length"] == (1 << 20) + 10
    assert doc["metadata"]["note"] == "y" * 65536 + "…[4464 more characters]"
    err = error["error"]
    message = err["message"]  # a text: within 64 KiB (16 KiB on a line that big), cut where it says so
    kept = len(message) - len(message.lstrip("m"))
    assert 16384 <= kept <= 65536 and message[kept:].startswith("…[") and message.endswith(" more characters]")
    traceback = err["traceback"]
    assert len(traceback) <= 16384 + len("…[00000 more characters]")
    assert traceback.startswith("Traceback (most recent call last):\n  [outer frames omitted: only the innermost 30 are recorded]\n")
    assert traceback.count('\n  File "') == 30  # the 41 frames of _ping/_pong and the test, cut to the innermost 30
