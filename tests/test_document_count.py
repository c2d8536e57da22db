"""``document_count``: each ``retriever_end`` says how many documents the retriever returned, just
before the documents, which end the line. ``rtrace stats`` counts documents from it without parsing
them (most of a log's bytes), and gives what it gave when it parsed them; older logs, without it,
are counted as before.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import read_events
from rtrace.core.read.reader import COUNTED, read_lines

ENV = {**{k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_"))},
       "COLUMNS": "120"}

# A real LangChain store (its scores captured: the end also records ``score_source``), a retriever
# of our own, one that finds nothing, and one that fails.
PROGRAM = """
    from langchain_core.documents import Document
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.vectorstores import InMemoryVectorStore
    from rtrace.core import retriever

    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
    store.add_documents([Document(f"passage {i} [see note {i}]" if i % 3 == 0 else f"passage {i}",
                                  metadata={"source": f"doc{i}.md", "tags": ["a", "b"] if i == 4 else "a"}, id=f"d{i}")
                         for i in range(12)])
    dense = store.as_retriever(search_kwargs={"k": 4})

    @retriever(name="Keyword")
    def keyword(query):
        return [Document(p, metadata={"source": "kw"}) for p in ("alpha", "beta") if p in query]

    @retriever(name="Broken")
    def broken(query):
        raise TimeoutError("the index is down")

    for q in ("alpha beta", "alpha", "gamma"):
        dense.invoke(q)
        keyword(q)
    try:
        broken("x")
    except TimeoutError:
        pass
"""


def rtrace(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "rtrace.cli", *args], cwd=cwd, capture_output=True, timeout=120, env=ENV)


def traced_log(where: Path) -> Path:
    """PROGRAM's log, written by ``rtrace run`` in ``where``."""
    script = where / "script.py"
    script.write_text(textwrap.dedent(PROGRAM))
    path = where / "log.jsonl"
    r = rtrace("run", "-q", "-o", str(path), str(script), cwd=where)
    assert r.returncode == 0, r.stderr
    return path


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return traced_log(tmp_path)


def rewrite(src: Path, dst: Path, change: Any) -> Path:
    """The log with each ``retriever_end`` changed (key order kept, as jq keeps it)."""
    out = []
    for line in src.read_bytes().splitlines():
        ev = orjson.loads(line)
        if ev["event"] == "retriever_end":
            change(ev)
        out.append(orjson.dumps(ev) + b"\n")
    dst.write_bytes(b"".join(out))
    return dst


@pytest.mark.timeout(120)
def test_every_end_counts_its_documents_just_before_them_and_they_end_the_line(log: Path, validate: Any) -> None:
    events = validate(read_events(log))
    ends = [e for e in events if e["event"] == "retriever_end"]
    assert len(ends) == 6 and any("score_source" in e for e in ends)  # three store searches, scores captured
    assert sorted(e["document_count"] for e in ends) == [0, 1, 2, 4, 4, 4]
    for e in ends:
        assert e["document_count"] == len(e["documents"])
        assert list(e)[-2:] == ["document_count", "documents"]
    # The reader leaves documents unparsed where the count is there and nothing follows them, but a
    # bracket in them (a list in metadata, a `[` in text) has the line parsed whole.
    counted = [e.data for e in read_lines([str(log)], documents=COUNTED) if e.data["event"] == "retriever_end"]
    assert [e["document_count"] for e in counted] == [e["document_count"] for e in ends]
    assert [("documents" in e) for e in counted] == [any("[" in d["page_content"] or isinstance(d["metadata"].get("tags"), list)
                                                         for d in e["documents"]) for e in ends]
    assert any("documents" in e for e in counted) and not all("documents" in e for e in counted)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_stats_count_the_same_from_the_count_as_from_the_documents(log: Path, tmp_path: Path, fmt: str) -> None:
    older = rewrite(log, tmp_path / "older.jsonl", lambda ev: ev.pop("document_count"))  # as an older rtrace wrote it
    a = rtrace("stats", "--format", fmt, str(log), cwd=tmp_path)
    b = rtrace("stats", "--format", fmt, str(older), cwd=tmp_path)
    assert a.returncode == 0 and a.stderr == b""
    assert a.stdout == b.stdout.replace(b"older.jsonl", b"log.jsonl")
    if fmt == "json":
        groups = {g["group"]: g for g in orjson.loads(a.stdout)["groups"]}
        assert (groups["Keyword"]["mean_docs"], groups["Keyword"]["empty_results"]) == (1.0, 1)
        assert groups["Broken"]["errors"] == 1


@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_a_log_shrunk_with_jq_still_counts_what_retrievers_returned(log: Path, tmp_path: Path) -> None:
    # Documents are most of a log: dropping them keeps every run, and how many documents each returned.
    small = tmp_path / "small.jsonl"
    with open(small, "wb") as out:
        subprocess.run(["jq", "-c", "del(.documents?)"], stdin=open(log, "rb"), stdout=out, check=True, timeout=60)
    assert b'"documents"' not in small.read_bytes()
    a = rtrace("stats", "--format", "json", str(log), cwd=tmp_path)
    b = rtrace("stats", "--format", "json", str(small), cwd=tmp_path)
    assert a.returncode == b.returncode == 0 and b.stderr == b""
    assert orjson.loads(a.stdout)["groups"] == orjson.loads(b.stdout)["groups"]
    trimmed = tmp_path / "trimmed.jsonl"  # the first document of each run kept
    with open(trimmed, "wb") as out:
        subprocess.run(["jq", "-c", "if .documents then .documents |= .[:1] else . end"], stdin=open(log, "rb"),
                       stdout=out, check=True, timeout=60)
    c = rtrace("stats", "--format", "json", str(trimmed), cwd=tmp_path)
    assert orjson.loads(a.stdout)["groups"] == orjson.loads(c.stdout)["groups"]
    # Without the count either, nothing is left to count.
    bare = rewrite(small, tmp_path / "bare.jsonl", lambda ev: ev.pop("document_count"))
    d = orjson.loads(rtrace("stats", "--format", "json", str(bare), cwd=tmp_path).stdout)
    assert {g["group"]: g["mean_docs"] for g in d["groups"]}["Keyword"] == 0.0


@pytest.mark.timeout(120)
def test_a_count_that_is_not_a_count_leaves_the_documents_to_count(log: Path, tmp_path: Path) -> None:
    for odd in (-1, "4", True, 2.5, None):
        bad = rewrite(log, tmp_path / "bad.jsonl", lambda ev, odd=odd: ev.update(document_count=odd))
        a = rtrace("stats", "--format", "json", str(log), cwd=tmp_path)
        b = rtrace("stats", "--format", "json", str(bad), cwd=tmp_path)
        assert orjson.loads(a.stdout)["groups"] == orjson.loads(b.stdout)["groups"], odd


@pytest.mark.timeout(120)
def test_show_says_how_many_documents_each_retriever_returned_from_the_count(log: Path, tmp_path: Path) -> None:
    older = rewrite(log, tmp_path / "older.jsonl", lambda ev: ev.pop("document_count"))
    shrunk = rewrite(log, tmp_path / "shrunk.jsonl", lambda ev: ev.pop("documents"))
    for args in (["--format", "table"], ["--no-docs"], ["--format", "timeline"]):  # the count, not the documents
        a, b, c = (rtrace("show", "--no-pager", *args, str(path), cwd=tmp_path) for path in (log, older, shrunk))
        assert a.returncode == 0 and a.stderr == b""
        assert a.stdout == b.stdout == c.stdout, args
    tree = rtrace("show", "--no-pager", str(shrunk), cwd=tmp_path).stdout.decode()
    assert tree.count(" 4 docs") == 3 and "passage" not in tree  # said, though no longer in the log
