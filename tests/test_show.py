"""`rtrace show` and `rtrace filter`: exact renderings, every filter, --follow, bad input, safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from rich.console import Console
from rendering import render
from rtrace.cli.render import tree
from rtrace.core.read.filters import RunFilter, select
from rtrace.core.read.reader import read_lines
from rtrace.core.read.trees import Session, TreeBuilder
from rtrace.core.times import parse_time
from synth import LogBuilder, doc, rid, standard_log

RTRACE = [sys.executable, "-m", "rtrace.cli"]
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "RTRACE_"))}, "COLUMNS": "160"}


def rtrace(*args: str, cwd: Path, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*RTRACE, *args], cwd=cwd, capture_output=True, input=input, timeout=120, env=ENV)


GOLDEN = Path(__file__).parent / "golden"


def rendered(path: Path, width: int, run_filter: RunFilter | None = None, **opts: Any) -> str:
    return render(path, width, run_filter=run_filter, **opts)


def golden(name: str, text: str) -> str:
    path = GOLDEN / name
    if os.environ.get("RTRACE_UPDATE_GOLDEN"):
        path.write_text(text)
    return path.read_text()


@pytest.mark.parametrize("fmt", ["tree", "table", "timeline"])
@pytest.mark.parametrize("width", [40, 60, 100, 160])
def test_exact_rendering_at_each_width(tmp_path: Path, fmt: str, width: int) -> None:
    log = standard_log(tmp_path / "l.jsonl")
    text = render(log, width, fmt)
    assert text == golden(f"standard-{fmt}-{width}.txt", text)
    assert all(len(line) <= width for line in text.splitlines())


def test_cli_plain_output_matches_the_console_rendering(tmp_path: Path) -> None:
    log = standard_log(tmp_path / "l.jsonl")
    for fmt in ("tree", "table", "timeline"):
        r = rtrace("show", str(log), "--width", "60", "--format", fmt, cwd=tmp_path)
        assert r.returncode == 0 and r.stderr == b""
        assert r.stdout.decode() == (GOLDEN / f"standard-{fmt}-60.txt").read_text()


def test_numbers_stay_whole_at_60_columns(tmp_path: Path) -> None:
    # Long names, queries, tags and ids: at 60 columns the text gives way, never a number.
    b = LogBuilder().session_start(["a-script-with-a-very-long-name.py", "--and", "many", "arguments"])
    b.start(1, "AVeryLongRetrieverNameThatGoesOnAndOn", "q " * 80, tags=["t" * 40], metadata={"index": "v" * 50})
    b.start(2, "AnotherVeryLongNestedRetrieverName", "other " * 30, parent=1, root=1)
    b.retry(2, "AnotherVeryLongNestedRetrieverName", 1, parent=1, root=1)
    b.end(2, "AnotherVeryLongNestedRetrieverName", [doc("a-document-id-that-is-long-" * 3, "text " * 80, 123.456, "s" * 60)],
          1234.5, parent=1, root=1)
    b.end(1, "AVeryLongRetrieverNameThatGoesOnAndOn", [doc("d", "x", 0.5)], 98765.4)
    log = b.session_end().write(tmp_path / "l.jsonl")
    tree_text, table, timeline = (render(log, 60, fmt) for fmt in ("tree", "table", "timeline"))
    for text in (tree_text, table, timeline):
        assert all(len(line) <= 60 for line in text.splitlines())
    assert "98.77 s  1 doc" in tree_text and "1.23 s  1 doc  ↻ 1" in tree_text and "#1  123.456  " in tree_text
    assert "wait 0.1 s  slept 0 s" in tree_text
    rows = table.splitlines()
    assert rows[1].split()[2:5] == ["✓", "98765.4", "1"] and rows[2].split()[2:6] == ["✓", "1234.5", "1", "1"]
    assert [line.split()[-2:] for line in timeline.splitlines()[2:4]] == [["98.77", "s"], ["1.23", "s"]]


def test_what_a_run_asked_of_its_store_is_on_its_head_and_the_store_is_below_with_expand(tmp_path: Path) -> None:
    b = LogBuilder().session_start()
    b.start(1, "VectorStoreRetriever", "what is rrf?", metadata={"team": "search"},
            request={"k": 4, "search_type": "mmr", "score_threshold": 0.5, "fetch_k": 20, "vector_store": "Chroma",
                     "embedding_provider": "OpenAIEmbeddings", "embedding_model": "text-embedding-3-small"})
    b.end(1, "VectorStoreRetriever", [doc("a", "x", 0.9)], 2.0)
    b.start(2, "BM25Retriever", "rrf")  # nothing recorded about the request: nothing said
    b.end(2, "BM25Retriever", [], 1.0)
    log = b.session_end().write(tmp_path / "l.jsonl")
    assert rendered(log, 120, docs=False) == """\
━━ session 0190aaaa-0000  app.py  pid 4242  2026-11-24 10:00:01 UTC
✓ VectorStoreRetriever  2.00 ms  1 doc  “what is rrf?”  k=4 search_type=mmr score_threshold=0.5 fetch_k=20  team=search

✓ BM25Retriever  1.00 ms  0 docs  “rrf”

━━ exit 0  1.23 s

"""
    assert rendered(log, 120, docs=False, expand=True).splitlines()[1:7] == [
        "✓ VectorStoreRetriever  2.00 ms  1 doc  “what is rrf?”  k=4 search_type=mmr score_threshold=0.5 fetch_k=20",
        "├── vector_store = Chroma",
        "├── embedding_provider = OpenAIEmbeddings",
        "├── embedding_model = text-embedding-3-small",
        "└── team = search",
        "",
    ]
    # On a narrow terminal the request gives way before the numbers and the query do.
    assert rendered(log, 60, docs=False).splitlines()[1] == "✓ VectorStoreRetriever  2.00 ms  1 doc  “what is rrf?”  k=4…"
    data = json.loads(rtrace("show", str(log), "--format", "json", cwd=tmp_path).stdout)
    assert [t["root"]["request"] for t in data if "root" in t] == [
        {"k": 4, "search_type": "mmr", "score_threshold": 0.5, "fetch_k": 20, "vector_store": "Chroma",
         "embedding_provider": "OpenAIEmbeddings", "embedding_model": "text-embedding-3-small"}, {}]


def test_options_full_expand_traceback_docs(tmp_path: Path) -> None:
    b = LogBuilder().session_start()
    b.start(1, "R", "q", metadata={"ls_retriever_name": "r", "k": 3})
    b.end(1, "R", [doc("a", "line one\nline two", 0.5, "s.md", page=4), doc("b", "second"), doc("c", "third")], 2.0)
    b.start(2, "E", "q").error(2, "E", 1.0, "KeyError", "'idx'")
    log = b.write(tmp_path / "l.jsonl")
    full = rendered(log, 80, full=True, max_docs=1, expand=True, traceback=True)
    assert full == """\
━━ session 0190aaaa-0000  app.py  pid 4242  2026-11-24 10:00:01 UTC
✓ R  2.00 ms  3 docs  “q”
├── ls_retriever_name = r
├── k = 3
├── #1  0.500  a  s.md
│     line one
│     line two
│     page = 4
│     source = s.md
└── … 2 more documents (--max-docs)

✗ E  1.00 ms  “q”
└── ✗ KeyError: 'idx'
      Traceback (most recent call last):
        File "app.py", line 3
      KeyError: 'idx'

"""
    no_docs = rendered(log, 80, docs=False)
    assert "#1" not in no_docs and "k=3" in no_docs and "ls_retriever_name" not in no_docs


def _ids(stdout: bytes) -> list[str]:
    return [json.loads(line)["run_id"][-2:] for line in stdout.splitlines() if b'"retriever_start"' in line]


@pytest.mark.parametrize(
    "args, runs",
    [
        ([], ["01", "02", "03", "04", "05", "06"]),
        (["--name", "Sparse"], ["01", "02", "03"]),
        (["--name", "S*"], ["01", "02", "03", "05"]),
        (["--tag", "vector"], ["01", "02", "03"]),
        (["--meta", "store=qdrant"], ["04"]),
        (["--status", "error"], ["04"]),
        (["--status", "ok", "--min-ms", "1000"], ["05"]),
        (["--max-ms", "2"], ["06"]),
        (["--retried"], ["04"]),
        (["--query", "RERANK"], ["05"]),
        (["--doc", "okapi"], ["01", "02", "03"]),
        (["--run", rid(4)], ["04"]),
        (["--run", rid(4)[:30]], ["01", "02", "03", "04", "05", "06"]),
        (["--trace", rid(1)], ["01", "02", "03"]),
        (["--last", "2"], ["05", "06"]),
        (["--session", "0190aaaa"], ["01", "02", "03", "04", "05", "06"]),
        (["--session", "ffff"], []),
        (["--since", "2026-11-24T10:00:09Z"], ["04", "05", "06"]),
        (["--until", "2026-11-24T10:00:03Z"], ["01", "02", "03"]),
        (["--name", "Sparse", "--runs"], ["03"]),
    ],
)
def test_filters(tmp_path: Path, args: list[str], runs: list[str]) -> None:
    log = standard_log(tmp_path / "l.jsonl")
    r = rtrace("filter", str(log), *args, cwd=tmp_path)
    if not runs:  # as grep does: nothing matched is said on stderr, naming the log, and exit 1
        assert (r.returncode, r.stdout, r.stderr.decode()) == (1, b"", f"rtrace: no run matches the filters in {log}\n")
        return
    assert r.returncode == 0, r.stderr
    assert _ids(r.stdout) == runs
    original = log.read_bytes().splitlines(keepends=True)
    out = r.stdout.splitlines(keepends=True)
    assert all(line in original for line in out)  # byte-identical lines
    assert out == sorted(out, key=original.index)  # in log order


def test_filter_keeps_sessions_and_whole_traces(tmp_path: Path) -> None:
    log = standard_log(tmp_path / "l.jsonl")
    r = rtrace("filter", str(log), "--status", "error", cwd=tmp_path)
    events = [json.loads(line)["event"] for line in r.stdout.splitlines()]
    assert events == ["session_start", "retriever_start", "retry", "retry", "retriever_error", "session_end"]
    assert rtrace("filter", str(log), cwd=tmp_path).stdout == log.read_bytes()  # no filter: the log itself


def test_show_highlights_matches_and_formats(tmp_path: Path) -> None:
    log = standard_log(tmp_path / "l.jsonl")
    r = rtrace("show", str(log), "--name", "Dense", cwd=tmp_path)
    text = r.stdout.decode()
    assert "├── » ✓ Dense" in text and "Flaky" not in text and "━━ exit 0" in text
    table = rtrace("show", str(log), "--format", "table", "--status", "error", cwd=tmp_path).stdout.decode()
    assert table.splitlines()[0].split() == ["time", "trace", "run", "name", "status", "ms", "self", "docs", "retries", "query"]
    assert "Flaky" in table and "✗ error" in table and "Hybrid" not in table
    data = json.loads(rtrace("show", str(log), "--format", "json", cwd=tmp_path).stdout)
    assert [t["root"]["name"] for t in data] == ["Hybrid", "Flaky", "Slow", "Child"]
    assert [c["name"] for c in data[0]["root"]["children"]] == ["Dense", "Sparse"]
    assert rtrace("show", str(log), "--format", "jsonl", cwd=tmp_path).stdout == log.read_bytes()


def test_show_reads_stdin_and_the_latest_run(tmp_path: Path) -> None:
    log = standard_log(tmp_path / "l.jsonl")
    assert b"Hybrid" in rtrace("show", "-", cwd=tmp_path, input=log.read_bytes()).stdout
    none = rtrace("show", cwd=tmp_path)
    assert none.returncode == 1 and none.stderr.decode().startswith("rtrace: error: no runs recorded here yet")
    assert rtrace("run", "-q", str(ROOT / "samples" / "bm25.py"), cwd=tmp_path).returncode == 0
    r = rtrace("show", "--no-docs", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.decode().count("✓ BM25Retriever") == 3


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: p.write_bytes(b""), "rtrace: no runs in {p}\n"),
        (lambda p: p.mkdir(), "rtrace: error: {p}: is a directory (give a .jsonl log)\n"),
        (lambda p: None, "rtrace: error: {p}: no such file\n"),
        (lambda p: p.write_bytes(os.urandom(64).replace(b"\n", b"") + b"\n"), None),
        (lambda p: p.write_bytes(b'{"event": "session_start"}\n{"a": "\xff"}\n'), "rtrace: error: {p}:2: not valid UTF-8\n"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, setup: Any, message: str | None) -> None:
    p = tmp_path / "bad.jsonl"
    setup(p)
    for command in ("show", "filter"):
        r = rtrace(command, str(p), cwd=tmp_path)
        err = r.stderr.decode()
        assert "Traceback" not in err and len(err.splitlines()) == 1, err
        if message:
            assert err == message.format(p=p)
        assert r.returncode == 1


def test_lenient_skips_and_counts(tmp_path: Path) -> None:
    p = standard_log(tmp_path / "l.jsonl")
    p.write_bytes(p.read_bytes().replace(b"\n", b"\nnot json\n", 2))
    strict = rtrace("show", str(p), cwd=tmp_path)
    assert strict.returncode == 1 and strict.stderr.decode() == f"rtrace: error: {p}:2: not a JSON object\n"
    lenient = rtrace("show", str(p), "--lenient", cwd=tmp_path)
    assert lenient.returncode == 0 and b"Hybrid" in lenient.stdout
    assert lenient.stderr.decode() == "rtrace: warning: skipped 2 malformed lines (--lenient)\n"


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    log = standard_log(tmp_path / "l.jsonl")
    for args, message in [
        (["--status", "weird"], "rtrace: error: --status is one of ok, error, incomplete, not 'weird'\n"),
        (["--query", "("], None),
        (["--since", "last tuesday"], None),
        (["--format", "xml"], "rtrace: error: --format is one of tree, table, timeline, jsonl, json, not 'xml'\n"),
    ]:
        r = rtrace("show", str(log), *args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        err = r.stderr.decode()
        assert len(err.splitlines()) == 1 and err.startswith("rtrace: error: ")
        if message:
            assert err == message


def test_log_text_is_data_not_markup_or_terminal_control(tmp_path: Path) -> None:
    hostile = "[bold red]not markup[/] \x1b[31mred\x1b[0m \x1b]8;;http://evil\x07link\x1b]8;;\x07 bell\x07 back\x08space cr\rret \x9bcsi \x00nul"
    b = LogBuilder().session_start([hostile])
    b.start(1, hostile, hostile, tags=[hostile], metadata={hostile: hostile})
    b.text(1, hostile, hostile)
    b.end(1, hostile, [doc(hostile, hostile, 1.0, hostile)], 1.0)
    log = b.write(tmp_path / "l.jsonl")
    for extra in ([], ["--full", "-x"], ["--format", "table"]):
        out = rtrace("show", str(log), *extra, cwd=tmp_path).stdout
        for byte in (b"\x1b", b"\x07", b"\x08", b"\r", "\x9b".encode(), b"\x00"):
            assert byte not in out, (extra, byte)
        assert b"[bold red]not markup[/]" in out
    # and in colour, through Rich, too
    console = Console(record=True, width=200, color_system="truecolor", force_terminal=True, file=open(os.devnull, "w"))
    for item in select(TreeBuilder().build(read_lines([str(log)])), RunFilter()):
        if not isinstance(item, Session):
            console.print(tree.trace_lines(item, tree.ShowOptions(full=True, expand=True)))
    styled = console.export_text(styles=True, clear=False)
    assert "[bold red]not markup[/]" in console.export_text()
    assert "\x1b]8" not in styled and "\x07" not in styled and "\x08" not in styled and "\r" not in styled


@pytest.mark.parametrize("fmt", ["tree", "table", "timeline", "jsonl", "json"])  # README: --follow works in every format
def test_follow_renders_traces_as_a_writer_adds_them(tmp_path: Path, fmt: str) -> None:
    log = tmp_path / "live.jsonl"
    log.write_bytes(b"")
    writer = subprocess.Popen([sys.executable, "-c", f"""
import time
from rtrace.core import CallbackManager, Document, JsonlHandler
cm = CallbackManager.configure([JsonlHandler({str(log)!r})])
for i in range(3):
    cm.on_retriever_start(None, f"live query {{i}}", name="Live").on_retriever_end([Document("d")])
    time.sleep(0.3)
time.sleep(30)
"""], env=ENV)
    shower = subprocess.Popen([*RTRACE, "show", "--follow", "--format", fmt, str(log)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=ENV)
    try:
        deadline = time.time() + 30
        seen = b""
        assert shower.stdout is not None
        os.set_blocking(shower.stdout.fileno(), False)
        while time.time() < deadline and seen.count(b"live query") < 3:
            chunk = shower.stdout.read()
            if chunk:
                seen += chunk
            time.sleep(0.1)
        assert [seen.count(f"live query {i}".encode()) for i in range(3)] == [1, 1, 1]  # each trace as it ends
        if fmt == "table":
            assert seen.split(b"\n")[0].split() == [b"time", b"trace", b"run", b"name", b"status", b"ms", b"self", b"docs",
                                                    b"retries", b"query"]
        shower.send_signal(signal.SIGINT)
        rest, err = shower.communicate(timeout=10)
        assert (shower.returncode, err) == (0, b"")  # Ctrl-C ends a follow quietly, having shown runs
        if fmt == "json":  # the array is closed: what was written parses
            assert [t["root"]["query"] for t in json.loads(seen + rest)] == [f"live query {i}" for i in range(3)]
    finally:
        writer.kill()
        shower.kill()


def test_parse_time() -> None:
    import datetime as dt

    now = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.timezone.utc)
    assert parse_time("10m", now) == "2026-11-24T11:50:00.000000Z"
    assert parse_time("2h", now) == "2026-11-24T10:00:00.000000Z"
    assert parse_time("2026-11-24T09:30:00Z", now) == "2026-11-24T09:30:00.000000Z"
    assert parse_time("today", now).endswith(".000000Z")


def test_short_ids_tell_runs_apart_and_select_them(tmp_path: Path) -> None:
    # Runs 1 and 10000001 end in the same 7 digits: the later one gets a longer short id.
    b = LogBuilder().session_start()
    for n in (1, 10000001, 2):
        b.start(n, f"R{n}", f"q{n}").end(n, f"R{n}", [], 1.0)
    log = b.session_end().write(tmp_path / "l.jsonl")
    rows = rtrace("show", str(log), "--format", "table", "--width", "100", cwd=tmp_path).stdout.decode().splitlines()
    assert [row.split()[:3] for row in rows[1:]] == [["0000001", "0000001", "R1"], ["10000001", "10000001", "R10000001"],
                                                     ["0000002", "0000002", "R2"]]
    for short, name in (("0000001", "R1"), ("10000001", "R10000001"), ("0000002", "R2")):
        for option in ("--run", "--trace"):
            r = rtrace("filter", str(log), option, short, cwd=tmp_path)
            assert [json.loads(line)["name"] for line in r.stdout.splitlines() if b"retriever_start" in line] == [name]
    assert b"R1" in rtrace("show", str(log), "--run", rid(1)[:30], cwd=tmp_path).stdout  # a prefix of the id works too


def test_short_ids_are_unique_among_many() -> None:
    import random
    import uuid

    from rtrace.core.read.shortids import MIN_LENGTH, ShortIds

    rng = random.Random(7)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(60_000)]  # some tails collide at 7 digits
    short = ShortIds()
    shown = [short(i) for i in ids]
    assert len(set(shown)) == len(ids) and min(map(len, shown)) == MIN_LENGTH and max(map(len, shown)) > MIN_LENGTH
    assert [short(i) for i in ids] == shown  # asked again, the same


@pytest.mark.timeout(60)
def test_table_streams_in_bounded_memory(tmp_path: Path) -> None:
    import importlib.util
    import resource

    spec = importlib.util.spec_from_file_location("bench_read", ROOT / "tests" / "bench" / "read.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    log = tmp_path / "big.jsonl"
    bench.generate(log, 2000)  # 26 MB: a table held in memory takes ~5x that (676 MB for 131 MB before)
    cap = 100 * 2**20

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    out = tmp_path / "table.txt"
    with out.open("wb") as sink:
        r = subprocess.run([*RTRACE, "show", "--format", "table", str(log)], stdout=sink, stderr=subprocess.PIPE,
                           preexec_fn=limit, env=ENV, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = out.read_bytes().splitlines()
    assert len(lines) == 1 + sum(1 for line in log.open("rb") if b'"retriever_start"' in line)


def test_sort_and_self_time(tmp_path: Path) -> None:
    b = LogBuilder().session_start()
    b.start(1, "Root", "q").start(2, "Zed", "q", parent=1, root=1).end(2, "Zed", [], 5.0, parent=1, root=1)
    b.start(3, "Alpha", "q", parent=1, root=1).end(3, "Alpha", [], 9.0, parent=1, root=1)
    b.end(1, "Root", [], 5000.0)
    log = b.session_end().write(tmp_path / "l.jsonl")

    def names(fmt: str, sort: str) -> list[str]:
        return [line.split()[2] for line in render(log, 100, fmt, sort=sort).splitlines() if line.startswith(("├── ✓", "└── ✓"))]

    assert names("tree", "start") == ["Zed", "Alpha"] and names("tree", "name") == ["Alpha", "Zed"]
    assert names("tree", "duration") == ["Alpha", "Zed"]
    table = render(log, 100, "table", sort="duration").splitlines()
    assert [row.split()[2] for row in table[1:]] == ["Root", "Alpha", "Zed"]
    # Root: 5 s, its children start 2 s and 4 s in and take 5 and 9 ms: its own time is 5000 - 14 ms.
    assert table[1].split()[4:6] == ["5000.0", "4986.0"]
    r = rtrace("show", str(log), "--sort", "size", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr == b"rtrace: error: --sort is one of start, duration, name, not 'size'\n"


def test_langchain_automatic_tags_are_hidden_unless_asked(tmp_path: Path) -> None:
    b = LogBuilder().session_start()
    b.start(1, "R", "q", tags=["seq:step:2", "map:key:docs", "prod", "retry:attempt:3", "branch:default"]).end(1, "R", [], 1.0)
    log = b.session_end().write(tmp_path / "l.jsonl")
    assert "✓ R  1.00 ms  0 docs  “q”  [prod]\n" in render(log, 100)
    assert "[seq:step:2, map:key:docs, prod, retry:attempt:3, branch:default]" in render(log, 100, auto_tags=True)
    shown = rtrace("show", str(log), "--all-tags", cwd=tmp_path).stdout.decode()
    assert "[seq:step:2, map:key:docs, prod, retry:attempt:3, branch:default]" in shown


def test_full_text_wraps_between_words(tmp_path: Path) -> None:
    b = LogBuilder().session_start()
    b.start(1, "R", "q").end(1, "R", [doc("a", "alpha beta gamma delta epsilon zeta eta theta iota kappa")], 1.0)
    log = b.session_end().write(tmp_path / "l.jsonl")
    assert render(log, 26, full=True).split("\n")[2:7] == [
        "└── #1  a", "      alpha beta gamma", "      delta epsilon zeta", "      eta theta iota kappa", ""]


@pytest.mark.parametrize("command", ["show", "filter", "stats"])
def test_nothing_matched_is_said_and_exits_1(tmp_path: Path, command: str) -> None:
    log = standard_log(tmp_path / "l.jsonl")
    r = rtrace(command, str(log), "--name", "Nope", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr.decode()) == (1, b"", f"rtrace: no run matches the filters in {log}\n")


def test_at_most_10000_finished_traces_wait_for_an_older_one(tmp_path: Path) -> None:
    # README: traces come in the order they started; at most 10,000 finished ones wait for an older one
    # (memory stays bounded when a trace never ends). 10,002 finish after one that never does: the two
    # oldest of them go out before it, the rest wait for it and come after it.
    b = LogBuilder().session_start()
    b.start(1, "Never", "never ends")
    for n in range(2, 10_004):
        b.start(n, "Quick", f"q{n}").end(n, "Quick", [], 1.0)
    log = b.write(tmp_path / "l.jsonl")
    r = rtrace("show", "--format", "table", "--no-pager", str(log), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    queries = [row.split()[-1] for row in r.stdout.decode().splitlines()[1:]]
    assert queries == ["q2", "q3", "ends", *(f"q{n}" for n in range(4, 10_004))]


def test_summary_counts_the_traces_show_draws(tmp_path: Path) -> None:
    r = rtrace("run", str(ROOT / "samples" / "langchain_pipeline.py"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    head = r.stderr.decode().splitlines()[0]
    shown = rtrace("show", "--no-docs", cwd=tmp_path).stdout.decode().splitlines()
    roots = [line for line in shown if line.startswith(("✓ ", "✗ ", "… "))]
    traces = int(head.split(" runs in ")[1].split(" trace")[0])
    assert traces == len(roots) and any("(chain)" in line for line in roots)  # chain roots count as traces too


@pytest.mark.parametrize("width", [40, 60])
def test_run_summary_keeps_durations_whole_when_narrow(width: int) -> None:
    from rtrace.cli.render.summary import summary
    from rtrace.core.read.summary import RunSummary

    s = RunSummary()
    for n, (name, ms) in enumerate([("HybridRetrieverWithALongName", 50123.4), ("Dense", 450.0)], 1):
        s({"event": "retriever_start", "run_id": rid(n), "parent_run_id": None, "name": name, "query": "why " * 30})
        s({"event": "retriever_end", "run_id": rid(n), "name": name, "documents": [{}] * 3, "duration_ms": ms})
    s({"event": "session_end", "exit_code": 0, "duration_ms": 51000.0})
    console = Console(record=True, width=width, color_system=None, file=open(os.devnull, "w"))
    console.print(summary(s, ".rtrace/x.jsonl", "rtrace show @"))
    lines = console.export_text().splitlines()
    assert all(len(line) <= width for line in lines)
    head = [part.strip() for line in lines[:2] for part in line.split(" · ")]  # counts wrap between themselves
    assert head == ["rtrace: 2 runs in 2 traces", "0 errors", "0 retries", "6 documents", "51.00 s"]
    assert lines[2].startswith("  slowest   50.12 s  Hybrid") and lines[3].startswith("           450.0 ms  Dense")


def test_live_status_line_shows_the_newest_run_in_flight_and_its_retries() -> None:
    from rtrace.cli.render.summary import status_text
    from rtrace.core.read.summary import RunSummary

    s = RunSummary()
    s({"event": "retriever_start", "run_id": rid(1), "parent_run_id": None, "name": "Dense", "query": "a"})
    s({"event": "retriever_start", "run_id": rid(2), "parent_run_id": rid(1), "name": "Flaky", "query": "why"})
    for _ in range(2):
        s({"event": "retry", "run_id": rid(2), "name": "Flaky"})
    assert status_text(s) == "rtrace ⋯ 2 runs · 0 errors · 2 retries · 2 in flight  Flaky “why” ↻2"
    s({"event": "retriever_end", "run_id": rid(2), "name": "Flaky", "documents": [{}], "duration_ms": 3.0})
    assert status_text(s) == "rtrace ⋯ 2 runs · 0 errors · 2 retries · 1 in flight  Dense “a”"
    s({"event": "retriever_error", "run_id": rid(1), "name": "Dense", "duration_ms": 9.0})
    assert status_text(s) == "rtrace ⋯ 2 runs · 1 error · 2 retries · 0 in flight"
    assert [(r.name, r.query, r.status) for r in s.slowest] == [("Dense", "a", "error"), ("Flaky", "why", "ok")]
    assert (s.roots, s.documents) == (1, 1)


def test_a_rerank_stage_says_what_it_moved(tmp_path: Path) -> None:
    # A reranker given a, b, c returns c, a: c moved up two places, a down one, b was dropped.
    b = LogBuilder().session_start()
    b.start(1, "Pipeline", "q")
    b.ev("retriever_start", run_id=rid(2), parent_run_id=rid(1), trace_id=rid(1), name="Rerank", tags=[],
         metadata={"rtrace_stage": "rerank"}, query="q",
         input_documents=[doc("a", "A"), doc("b", "B"), doc("c", "C")])
    b.end(2, "Rerank", [doc("c", "C", 0.9), doc("a", "A", 0.5)], 1.0, parent=1, root=1)
    b.end(1, "Pipeline", [doc("c", "C")], 2.0)
    log = b.session_end().write(tmp_path / "l.jsonl")
    out = rtrace("show", str(log), cwd=tmp_path).stdout.decode()
    assert "│   ├── ⇅ reranked  2 of 3 kept  c ↑2  a ↓1  b dropped\n" in out, out
    # The line goes with the documents: --no-docs drops it.
    plain = rtrace("show", str(log), "--no-docs", cwd=tmp_path).stdout.decode()
    assert "reranked" not in plain
