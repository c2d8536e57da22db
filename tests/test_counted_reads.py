"""Reading documents' counts instead of the documents (``reader.COUNTED``), checked from outside:
the commands that read counts print what they print when every line is parsed whole; damage
inside unparsed documents is reported where documents are shown; a log that keeps fewer
documents than its runs returned says so where it shows them; and every ``retriever_end``
rtrace writes says how many documents it holds.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import read_events
from test_document_count import ENV, rewrite, traced_log

# The command with every line parsed whole (documents=True), as before lines recorded their count:
# what ``stats`` and ``show`` must print, bar the rule that a usable recorded count wins.
WHOLE = """
import sys
import rtrace.cli.commands.show as show
import rtrace.cli.commands.stats as stats
from rtrace.core.read.pipeline import read_events

stats.stats_events = lambda source, run_filter, read_stats: read_events(source, read_stats)
show.COUNTED = True  # show passes documents=COUNTED where it shows no documents: True instead
from rtrace.cli.app import main
sys.argv[0] = "rtrace"
main()
"""


def rtrace(*args: str, cwd: Path, whole: bool = False) -> subprocess.CompletedProcess[bytes]:
    cmd = [sys.executable, "-c", WHOLE] if whole else [sys.executable, "-m", "rtrace.cli"]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, timeout=120, env=ENV)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return traced_log(tmp_path_factory.mktemp("counted"))


def _count_as(value: bytes) -> Any:
    return lambda line: re.sub(rb'"document_count":\d+', b'"document_count":' + value, line)


# Lines that are valid JSON but not as rtrace writes them: each changes one retriever_end line.
ODD = [
    lambda line: line.replace(b'"name":', b'"documents":[{"id":"early"}],"name":', 1),  # documents twice
    lambda line: line.replace(b'"name":', b'"document_count":99,"name":', 1),  # the count twice
    _count_as(b"-3"), _count_as(b"3.0"), _count_as(b"true"), _count_as(b'"3"'), _count_as(b"null"),
    _count_as(b"18446744073709551615"),  # the largest count orjson reads as an int
    lambda line: line[:-2] + b',"after":[1]}\n',  # a key after the documents
    lambda line: line[:-1] + b"\r\n",  # CRLF
    lambda line: re.sub(rb'"document_count":(\d+)', rb'"x":{"document_count":\1}', line),  # the count nested
    lambda line: line[:line.index(b',"documents":[')] + b',"documents":[1,"x",null,{"id":"a"}]}\n',  # not objects
    lambda line: line[:line.index(b',"documents":[')] + b',"documents":[]}\n',  # none, but a count
    lambda line: line.replace(b'"retriever_end"', b'"chain_end"', 1),  # the end of another kind of run
]


@pytest.mark.timeout(180)
def test_odd_lines_read_as_counts_print_what_whole_lines_print(log: Path, tmp_path: Path) -> None:
    lines = log.read_bytes().splitlines(keepends=True)
    ends = [i for i, line in enumerate(lines) if b'"retriever_end"' in line]
    assert ends
    odd_log = tmp_path / "odd.jsonl"
    out = []
    for copy in range(len(ODD)):  # the program's events again and again, each end changed another way
        for i, line in enumerate(lines):
            if i in ends:
                line = ODD[(copy + ends.index(i)) % len(ODD)](line)
            out.append(line.replace(b'"run_id":"', b'"run_id":"%d-' % copy).replace(b'"trace_id":"', b'"trace_id":"%d-' % copy)
                       .replace(b'"parent_run_id":"', b'"parent_run_id":"%d-' % copy))
    odd_log.write_bytes(b"".join(out))
    for args in (["stats", "--format", "csv"], ["stats", "--by", "tag", "--format", "json"],
                 ["show", "--no-pager", "--format", "table"], ["show", "--no-pager", "--format", "timeline"],
                 ["show", "--no-pager", "--no-docs", "--last", "9"]):
        a = rtrace(*args, str(odd_log), cwd=tmp_path)
        b = rtrace(*args, str(odd_log), cwd=tmp_path, whole=True)
        assert a.returncode == 0 and a.stderr == b"" and len(a.stdout) > 200, (args, a.stderr)
        assert (a.stdout, a.stderr, a.returncode) == (b.stdout, b.stderr, b.returncode), args


@pytest.mark.timeout(120)
def test_damage_inside_counted_documents_is_reported_where_documents_are_shown(log: Path, tmp_path: Path) -> None:
    lines = log.read_bytes().splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines) if b'"documents":[{' in line and line.count(b"]") == 1)  # read counted
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_bytes(b"".join(lines[:i]) + lines[i].replace(b'"page_content":"', b'"page_content":"\xff', 1)
                        + b"".join(lines[i + 1:]))
    # Counted: the line's count is what there is to know; the documents are not read.
    counted = rtrace("stats", "--format", "csv", str(damaged), cwd=tmp_path)
    assert (counted.returncode, counted.stderr) == (0, b"")
    assert counted.stdout == rtrace("stats", "--format", "csv", str(log), cwd=tmp_path).stdout
    # Shown: one line naming the line, and a non-zero exit; --lenient skips it and says so.
    r = rtrace("show", "--no-pager", str(damaged), cwd=tmp_path)
    assert r.returncode != 0 and r.stderr == f"rtrace: error: {damaged}:{i + 1}: not valid UTF-8\n".encode()
    r = rtrace("show", "--no-pager", "--lenient", str(damaged), cwd=tmp_path)
    assert r.returncode == 0 and b"skipped 1 malformed line" in r.stderr


@pytest.mark.timeout(120)
def test_documents_a_log_no_longer_holds_are_said_to_be_missing(log: Path, tmp_path: Path) -> None:
    # A log shrunk after it was written: the tree's head and the report's stats say how many each
    # retriever returned (the recorded count), so where the documents are shown, those gone say so.
    trimmed = rewrite(log, tmp_path / "trimmed.jsonl", lambda ev: ev.update(documents=ev["documents"][:1]))
    shrunk = rewrite(log, tmp_path / "shrunk.jsonl", lambda ev: ev.pop("documents"))
    tree = rtrace("show", "--no-pager", str(trimmed), cwd=tmp_path).stdout.decode()
    assert tree.count(" 4 docs") == 3 and tree.count("… 3 more documents not in the log") == 3
    assert "… 1 more document not in the log" in tree  # Keyword's two, one kept
    tree = rtrace("show", "--no-pager", str(shrunk), cwd=tmp_path).stdout.decode()
    assert tree.count("… 4 documents not in the log") == 3 and "passage" not in tree
    complete = rtrace("show", "--no-pager", str(log), cwd=tmp_path).stdout.decode()
    assert "not in the log" not in complete and "passage" in complete
    assert "not in the log" not in rtrace("show", "--no-pager", "--no-docs", str(shrunk), cwd=tmp_path).stdout.decode()
    for path, said in ((shrunk, "… 4 documents not in the log"), (trimmed, "… 3 more documents not in the log")):
        html = rtrace("report", "-o", "-", str(path), cwd=tmp_path).stdout.decode()
        assert html.count(said) == 3, path
    html = rtrace("report", "-o", "-", str(shrunk), cwd=tmp_path).stdout.decode()
    assert html.count(">no documents<") == 1  # the retriever that found nothing


# Over MAX_ITEMS (10,000) documents, one of which orjson cannot encode (a lone surrogate): the line
# goes through the fallback encoder, whose sanitizer keeps 10,000 items of any list.
MANY = """
    from langchain_core.documents import Document
    from rtrace.core import retriever

    @retriever(name="Many")
    def many(query):
        return [Document("bad \\ud800 text" if i == 0 else f"passage {i}") for i in range(10_050)]

    many("q")
"""


@pytest.mark.timeout(120)
def test_a_retriever_end_counts_what_it_returned_when_its_line_keeps_fewer(tmp_path: Path, validate: Any) -> None:
    # An end that needs the fallback encoder (one document orjson cannot encode) keeps MAX_ITEMS (10,000)
    # documents of the 10,050 returned: the count is what the retriever returned, and show says the rest
    # are not in the log.
    script = tmp_path / "many.py"
    script.write_text(textwrap.dedent(MANY))
    path = tmp_path / "log.jsonl"
    r = rtrace("run", "-q", "-o", str(path), str(script), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (end,) = [e for e in validate(read_events(path)) if e["event"] == "retriever_end"]
    assert list(end)[-2:] == ["document_count", "documents"]
    assert (end["document_count"], len(end["documents"])) == (10_050, 10_000)
    assert orjson.loads(rtrace("stats", "--format", "json", str(path), cwd=tmp_path).stdout)["total"]["mean_docs"] == 10_050
    tree = rtrace("show", "--no-pager", "--max-docs", "1", str(path), cwd=tmp_path).stdout.decode()
    assert "10050 docs" in tree and "50 more documents not in the log" in tree, tree


@pytest.mark.timeout(120)
def test_a_torn_line_with_the_next_writers_end_on_it_is_reported(log: Path, tmp_path: Path) -> None:
    # A writer killed in the middle of a long line leaves it cut short; the next writer's line lands on it.
    lines = log.read_bytes().splitlines(keepends=True)
    ends = [i for i, line in enumerate(lines) if b'"documents":[{' in line and line.count(b"]") == 1]
    a, b = ends[:2]
    torn = lines[a][:lines[a].index(b'"documents":[') + 40] + lines[b]  # A cut short, B appended after it
    merged = tmp_path / "torn.jsonl"
    merged.write_bytes(b"".join(lines[:a] + [torn] + lines[a + 1:b] + lines[b + 1:]))
    for args in ([], ["--lenient"]):
        shipped = rtrace("stats", *args, str(merged), cwd=tmp_path)
        whole = rtrace("stats", *args, str(merged), cwd=tmp_path, whole=True)
        assert whole.stderr.count(b"\n") == 1 and (b"malformed" in whole.stderr or b"not a JSON object" in whole.stderr)
        assert (shipped.returncode, shipped.stderr) == (whole.returncode, whole.stderr), args


@pytest.mark.timeout(180)
@pytest.mark.parametrize("bracket", [False, True], ids=["plain documents", "a [ in the documents"])
def test_commands_that_echo_lines_report_a_torn_line_instead_of_losing_the_one_on_it(
        log: Path, tmp_path: Path, bracket: bool) -> None:
    # filter, show --format jsonl and eval read lines without their documents. A line cut short in
    # its documents, with the next writer's line appended, must not read as its first event alone
    # (losing the appended one without a word): it is malformed, as when it is parsed whole.
    lines = log.read_bytes().splitlines(keepends=True)
    ends = [i for i, line in enumerate(lines) if b'"documents":[{' in line and line.count(b"]") == 1]
    a, b = ends[:2]
    first = lines[a]
    if bracket:  # a list in the first document's metadata, before the cut
        first = first.replace(b'"metadata":{', b'"metadata":{"tags":["x"],', 1)
    torn = first[:first.index(b'"documents":[') + 60] + lines[b]
    merged = tmp_path / "torn.jsonl"
    merged.write_bytes(b"".join(lines[:a] + [torn] + lines[a + 1:b] + lines[b + 1:]))
    lineno = a + 1
    qrels = tmp_path / "qrels.jsonl"
    queries = {e["query"] for e in read_events(log) if e["event"] == "retriever_start" and isinstance(e.get("query"), str)}
    qrels.write_bytes(b"".join(orjson.dumps({"query": q, "doc_id": "x", "relevance": 1}) + b"\n" for q in sorted(queries)))
    for cmd in (["filter"], ["filter", "--status", "error"], ["show", "--format", "jsonl"], ["eval", "--qrels", str(qrels)]):
        strict = rtrace(*cmd, str(merged), cwd=tmp_path)
        assert strict.returncode != 0 and strict.stderr.startswith(b"rtrace: error: ") and \
            f"torn.jsonl:{lineno}:".encode() in strict.stderr and strict.stderr.count(b"\n") == 1, (cmd, strict.stderr)
        lenient = rtrace(*cmd, "--lenient", str(merged), cwd=tmp_path)
        assert b"skipped 1 malformed line (--lenient)" in lenient.stderr, (cmd, lenient.stderr)


def test_the_run_summary_counts_what_retrievers_returned_where_lines_keep_fewer(log: Path, tmp_path: Path) -> None:
    from rtrace.core.read.summary import RunSummary

    returned = sum(e["document_count"] for e in read_events(log) if e["event"] == "retriever_end")
    trimmed = rewrite(log, tmp_path / "trimmed.jsonl", lambda ev: ev.update(documents=ev["documents"][:1]))
    for path in (log, trimmed):
        summary = RunSummary()
        for ev in read_events(path):
            summary(ev)
        assert summary.documents == returned == 15, path


@pytest.mark.timeout(120)
def test_a_replay_of_a_trimmed_log_keeps_what_each_retriever_returned(log: Path, tmp_path: Path) -> None:
    trimmed = rewrite(log, tmp_path / "trimmed.jsonl", lambda ev: ev.update(documents=ev["documents"][:1]))
    out = tmp_path / "replayed.jsonl"
    (tmp_path / "into_file.py").write_text(f"from rtrace.core import JsonlHandler\nhandler = JsonlHandler({str(out)!r})\n")
    r = subprocess.run([sys.executable, "-m", "rtrace.cli", "replay", "--no-wait", "--handler", "into_file:handler",
                        str(trimmed)], cwd=tmp_path, capture_output=True, timeout=120, env={**ENV, "PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    ends = [(e["document_count"], len(e["documents"])) for e in read_events(out) if e["event"] == "retriever_end"]
    assert ends == [(e["document_count"], min(1, e["document_count"])) for e in read_events(log)
                    if e["event"] == "retriever_end"]
    assert (4, 1) in ends


@pytest.mark.timeout(120)
def test_show_json_gives_each_retrievers_count_beside_the_documents_the_log_keeps(log: Path, tmp_path: Path) -> None:
    trimmed = rewrite(log, tmp_path / "trimmed.jsonl", lambda ev: ev.update(documents=ev["documents"][:1]))
    out = rtrace("show", "--format", "json", str(trimmed), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    runs = [t["root"] for t in orjson.loads(out.stdout) if "root" in t]
    pairs = [(r["name"], r["document_count"], len(r["documents"])) for r in runs if r["kind"] == "retriever"]
    assert ("VectorStoreRetriever", 4, 1) in pairs and ("Keyword", 2, 1) in pairs and ("Keyword", 0, 0) in pairs
    assert ("Broken", 0, 0) in pairs  # it failed: nothing returned


@pytest.mark.timeout(120)
def test_a_log_rewritten_with_sorted_keys_reads_as_the_log(log: Path, tmp_path: Path) -> None:
    # `jq -cS .` (or any tool that sorts keys) puts `duration_ms`, `event`, `run_id`, ... after the
    # documents. filter, show --format jsonl and eval read lines without their documents: cut there,
    # each retriever_end lost its event and run id (dropped from filter's output, eval's runs incomplete
    # and scored 0).
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    original, sorted_log = tmp_path / "a" / "log.jsonl", tmp_path / "b" / "log.jsonl"  # one name: one header
    original.write_bytes(log.read_bytes())
    sorted_log.write_bytes(b"".join(orjson.dumps(orjson.loads(line), option=orjson.OPT_SORT_KEYS) + b"\n"
                                    for line in log.read_bytes().splitlines()))
    assert b'"documents":[{' in sorted_log.read_bytes() and b'],"duration_ms":' in sorted_log.read_bytes()
    qrels = tmp_path / "qrels.jsonl"
    queries = {e["query"] for e in read_events(log) if e["event"] == "retriever_start" and isinstance(e.get("query"), str)}
    qrels.write_bytes(b"".join(orjson.dumps({"query": q, "doc_id": "d4", "relevance": 1}) + b"\n" for q in sorted(queries)))
    for cmd in (["filter"], ["filter", "--name", "VectorStoreRetriever"], ["show", "--format", "jsonl"]):
        a, b = rtrace(*cmd, "log.jsonl", cwd=original.parent), rtrace(*cmd, "log.jsonl", cwd=sorted_log.parent)
        assert (b.returncode, b.stderr) == (0, b""), (cmd, b.stderr)
        assert [orjson.loads(x) for x in b.stdout.splitlines()] == [orjson.loads(x) for x in a.stdout.splitlines()], cmd
    a = rtrace("eval", "--qrels", str(qrels), "log.jsonl", cwd=original.parent)
    b = rtrace("eval", "--qrels", str(qrels), "log.jsonl", cwd=sorted_log.parent)
    assert b.returncode == 0 and b.stderr == b"" and b"0.7103" in a.stdout
    assert b.stdout == a.stdout


# Valid lines as odd as JSON allows around a documents list: keys before and after it (a list last
# too), a nested `documents` key, `[`, `]`, `{"v":` and `,"documents":[` in text and metadata.
_TEXT = st.lists(st.sampled_from([*'ab[]{}",:\\ v', '{"v":', ',"documents":[', '],"', "\n", "é"]), max_size=6).map("".join)
_VALUE = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-5, 5), _TEXT),
                      lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(
                          st.sampled_from(["documents", "a", "v", "document_count"]), inner, max_size=3)), max_leaves=8)
_DOC = st.fixed_dictionaries({"id": st.one_of(st.none(), _TEXT), "page_content": _TEXT,
                              "metadata": st.dictionaries(st.sampled_from(["a", "tags", "documents"]), _VALUE, max_size=3)})
_KEYS = st.sampled_from(["v", "seq", "event", "name", "run_id", "document_count", "tags", "metadata", "duration_ms"])


@st.composite
def _odd_line(draw: Any, v_first: bool = False) -> bytes:
    fields = [(k, v) for k, v in draw(st.dictionaries(_KEYS, _VALUE, max_size=5)).items()]
    fields.insert(draw(st.integers(0, len(fields))), ("documents", draw(st.lists(_DOC, max_size=3))))
    fields += draw(st.lists(st.tuples(_KEYS, _VALUE), max_size=2))  # after the documents, maybe a key again
    if v_first or draw(st.booleans()):  # as rtrace writes every line
        fields.insert(0, ("v", 1))
    return b"{" + b",".join(orjson.dumps(k) + b":" + orjson.dumps(v) for k, v in fields) + b"}\n"


def _without_documents(data: Any) -> Any:
    return {k: v for k, v in data.items() if k != "documents"} if type(data) is dict else None


def _whole(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


@settings(max_examples=300, deadline=None)
@given(_odd_line(), _odd_line(v_first=True), st.booleans())
def test_a_line_read_without_its_documents_reads_as_the_whole_line_does(line: bytes, other: bytes, crlf: bool) -> None:
    # Each valid line, and each line cut short anywhere with another rtrace line (LF or CRLF, starting
    # `{"v":`) appended to it: its head (documents=False, documents=COUNTED) is what parsing it whole
    # gives, or it is malformed.
    from rtrace.core.events import recorded_count
    from rtrace.core.read.reader import _head

    other = other[:-1] + b"\r\n" if crlf else other
    for raw in (line, *(line[:i] + other for i in range(1, len(line) - 1))):
        whole = _whole(raw)
        for counted in (False, True):
            head = _head(raw, counted)
            assert _without_documents(head) == _without_documents(whole), (counted, raw)
            if counted and type(whole) is dict:
                assert recorded_count(head) == recorded_count(whole), raw
