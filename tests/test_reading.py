"""core.reader and core.trees: streaming, bad input, cycles, duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtrace.core.errors import LogError, MalformedLineError
from rtrace.core.read.reader import ReadStats, read_lines
from rtrace.core.read.trees import Session, Trace, TreeBuilder
from synth import LogBuilder, doc, rid, standard_log


def traces(path: Path, **kw: object) -> list[Trace]:
    return [t for t in TreeBuilder().build(read_lines([str(path)], **kw)) if isinstance(t, Trace)]  # type: ignore[arg-type]


def test_trees_from_a_log(tmp_path: Path) -> None:
    items = list(TreeBuilder().build(read_lines([str(standard_log(tmp_path / "l.jsonl"))])))
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["Session", "Trace", "Trace", "Trace", "Trace", "Session"]
    hybrid, flaky, slow, orphan = [i for i in items if isinstance(i, Trace)]
    assert [c.name for c in hybrid.root.children] == ["Dense", "Sparse"]
    assert hybrid.root.status == "ok" and hybrid.root.documents[0]["id"] == "s1"
    assert [k for k, _ in hybrid.root.children[1].timeline] == ["text"]
    assert flaky.root.status == "error" and len(flaky.root.retries) == 2 and flaky.root.error["type"] == "TimeoutError"
    assert slow.root.duration_ms == 2500.0 and slow.root.tags == ["batch"]
    assert orphan.root.orphan and orphan.root.parent_run_id == rid(99)
    assert len(hybrid.events) == 7 and [e.line for e in hybrid.events] == [2, 3, 4, 5, 6, 7, 8]


def test_runs_that_never_end_are_incomplete_at_the_end_of_the_stream(tmp_path: Path) -> None:
    b = LogBuilder().session_start().start(1, "A", "q").start(2, "B", "q", parent=1, root=1).end(2, "B", [], 1.0, parent=1, root=1)
    (t,) = traces(b.write(tmp_path / "l.jsonl"))
    assert t.root.status == "incomplete" and t.root.children[0].status == "ok" and t.status == "incomplete"


def test_memory_holds_only_traces_in_flight(tmp_path: Path) -> None:
    b = LogBuilder().session_start()
    for n in range(1, 2001):
        b.start(n, "R", f"q{n}").end(n, "R", [doc("d", "x")], 1.0)
    builder = TreeBuilder()
    peak = 0
    for _ in builder.build(read_lines([str(b.write(tmp_path / "l.jsonl"))])):
        peak = max(peak, builder.in_flight, len(builder.runs))
    assert peak <= 1


def test_parent_cycles_and_duplicate_ids_never_hang(tmp_path: Path) -> None:
    b = LogBuilder().session_start()
    b.start(1, "A", "q", parent=2, root=2)  # A's parent is B, not seen yet
    b.start(2, "B", "q", parent=1, root=1)  # B's parent is A: a cycle in the data
    b.start(2, "B-again", "q")  # a repeated id
    b.end(1, "A", [], 1.0).end(2, "B", [], 1.0).end(2, "B", [], 1.0).end(7, "Ghost", [], 1.0)
    builder = TreeBuilder()
    out = [t for t in builder.build(read_lines([str(b.write(tmp_path / "l.jsonl"))])) if isinstance(t, Trace)]
    names = sorted(r.name for t in out for r in t.runs)
    # The repeated id shadows the first B, so the second end of id 2 has no start to join.
    assert names == ["A", "B", "B", "B-again", "Ghost"]
    assert builder.warnings["repeated run ids"] == 1
    assert builder.warnings["events of runs whose start is not in the log"] == 2


def test_wrong_types_in_known_keys_are_counted_not_fatal(tmp_path: Path) -> None:
    b = LogBuilder().session_start()
    b.ev("retriever_start", run_id=12345, name="bad id")
    b.ev(7, run_id=rid(1))
    b.ev("retriever_start", run_id=rid(2), parent_run_id=["x"], name=None, query={"q": 1}, tags="notalist", metadata=[1])
    b.ev("retriever_end", run_id=rid(2), documents="nope", duration_ms="slow", error=5)
    b.ev("brand_new_event", run_id=rid(2), extra=True)
    builder = TreeBuilder()
    out = [t for t in builder.build(read_lines([str(b.write(tmp_path / "l.jsonl"))])) if isinstance(t, Trace)]
    (t,) = out
    run = t.root
    assert (run.name, run.query, run.tags, run.metadata, run.documents, run.duration_ms) == ("retriever", "{'q': 1}", [], {}, [], None)
    assert builder.warnings == {"retriever_start events without a string run_id": 1,
                                "events without a string 'event' key": 1, "runs with a non-string parent_run_id": 1}
    assert builder.unknown_events == {"brand_new_event": 1}


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"event": "session_start"}\nnot json at all\n', "l.jsonl:2: not a JSON object"),
        (b'[1, 2]\n', "l.jsonl:1: not a JSON object (a list)"),
        (b'\x00\x01\x02garbage\xff\n', "l.jsonl:1: not a JSON line (binary data)"),
        (b'{"a": "\xff\xfe"}\n', "l.jsonl:1: not valid UTF-8"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "l.jsonl"
    path.write_bytes(content)
    with pytest.raises(MalformedLineError) as e:
        list(read_lines([str(path)]))
    assert str(e.value).endswith(message)
    stats = ReadStats()
    list(read_lines([str(path)], lenient=True, stats=stats))
    assert stats.skipped == 1


def test_a_truncated_last_line_is_a_warning(tmp_path: Path) -> None:
    path = standard_log(tmp_path / "l.jsonl")
    path.write_bytes(path.read_bytes() + b'{"v":1,"seq":99,"event":"retriever_st')
    stats = ReadStats()
    events = list(read_lines([str(path)], stats=stats))
    assert len(events) == 17 and stats.truncated == 1
    assert stats.warnings == [f"{path}:18: the last line is cut short (was the writer killed?); skipped it"]


def test_missing_files_directories_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="no such file"):
        list(read_lines([str(tmp_path / "nope.jsonl")]))
    with pytest.raises(LogError, match="is a directory"):
        list(read_lines([str(tmp_path)]))
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert list(read_lines([str(tmp_path / "empty.jsonl")])) == []


def test_a_single_50_mb_line(tmp_path: Path) -> None:
    big = "x" * (50 * 1024 * 1024)
    b = LogBuilder().session_start().start(1, "Big", "q").end(1, "Big", [doc("huge", big)], 1.0)
    (t,) = traces(b.write(tmp_path / "l.jsonl"))
    assert len(t.root.documents[0]["page_content"]) == len(big)


def test_several_files_in_order(tmp_path: Path) -> None:
    a = LogBuilder(session="0190aaaa-0000-7000-8000-000000000001").session_start().start(1, "A", "q").end(1, "A", [], 1.0)
    b = LogBuilder(session="0190aaaa-0000-7000-8000-000000000002").session_start().start(2, "B", "q").end(2, "B", [], 1.0)
    paths = [str(a.write(tmp_path / "a.jsonl")), str(b.write(tmp_path / "b.jsonl"))]
    items = list(TreeBuilder().build(read_lines(paths)))
    assert [i.root.name for i in items if isinstance(i, Trace)] == ["A", "B"]
    assert len([i for i in items if isinstance(i, Session)]) == 2


@pytest.mark.parametrize("ending", [b"", b"\n"])
def test_a_binary_file_is_an_error_with_or_without_a_final_newline(tmp_path: Path, ending: bytes) -> None:
    import subprocess
    import sys

    path = tmp_path / "picture.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\x00\x00\x00\rIHDR\x00\x00\x01\x00" + ending)
    r = subprocess.run([sys.executable, "-m", "rtrace.cli", "show", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith(f"rtrace: error: {path}:") and r.stderr.count("\n") == 1
    lenient = subprocess.run([sys.executable, "-m", "rtrace.cli", "filter", "--lenient", str(path)], capture_output=True,
                             text=True, timeout=60)
    assert "skipped" in lenient.stderr and lenient.stdout == ""


def test_a_json_line_cut_short_at_the_end_is_still_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_bytes(b'{"v":1,"event":"session_start","session_id":"s"}\n{"v":1,"event":"retriever_st\xc3')
    stats = ReadStats()
    assert len(list(read_lines([str(path)], stats=stats))) == 1
    assert stats.truncated == 1  # a writer killed mid-line, even mid-character: a warning, not an error
