"""`rtrace stats`, `rtrace diff`, `rtrace replay` on real and synthetic logs."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, read_events
from hypothesis import given, settings
from hypothesis import strategies as st
from rtrace.core.read.diff import jaccard, overlap_at_k, rbo
from rtrace.core.read.reader import read_lines
from rtrace.core.read.replay import Replayer
from rtrace.core.read.stats import RELATIVE_ERROR, Histogram
from synth import LogBuilder, doc, standard_log

RTRACE = [sys.executable, "-m", "rtrace.cli"]
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_"))}, "COLUMNS": "120"}
SAMPLES = ["bm25.py", "hybrid.py", "flaky.py", "fanout.py", "langchain_pipeline.py",
           "llamaindex_pipeline.py", "haystack_pipeline.py"]


def rtrace(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RTRACE, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env or ENV)


@pytest.fixture(scope="module")
def sample_logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("samples")
    logs = {}
    for sample in SAMPLES:
        log = d / f"{Path(sample).stem}.jsonl"
        r = rtrace("run", "-q", "-o", str(log), str(ROOT / "samples" / sample), cwd=d)
        assert r.returncode == 0, r.stderr
        logs[sample] = log
    return logs


# --- stats ---------------------------------------------------------------------------------------

def latency_log(path: Path) -> Path:
    b = LogBuilder().session_start()
    for i in range(1, 101):  # Dense: 1..100 ms, every 10th empty, every 25th an error
        b.start(i, "Dense", f"q{i}", tags=["vector"], metadata={"shard": str(i % 2)})
        if i % 25 == 0:
            b.error(i, "Dense", float(i))
        else:
            b.end(i, "Dense", [] if i % 10 == 0 else [doc("d", "x"), doc("e", "y")], float(i))
    for i in range(101, 111):
        b.start(i, "Sparse", f"q{i}", tags=["bm25"])
        b.retry(i, "Sparse", 1)
        b.end(i, "Sparse", [doc("s", "z")], 5.0)
    b.start(200, "Chain", "", kind="chain").end(200, "Chain", [], 1.0, kind="chain")  # not a retriever: not counted
    return b.session_end().write(path)


def test_stats_per_name(tmp_path: Path) -> None:
    log = latency_log(tmp_path / "l.jsonl")
    r = rtrace("stats", str(log), "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    dense, sparse = data["groups"]
    assert (dense["group"], dense["runs"], dense["errors"], dense["error_rate"]) == ("Dense", 100, 4, 0.04)
    assert dense["empty_results"] == 8  # 10, 20, ..., 90 but 50 (50 and 100 are errors)
    assert dense["mean_docs"] == round(2 * 88 / 96, 3)
    for q, exact in (("p50_ms", 50), ("p90_ms", 90), ("p99_ms", 99)):
        assert abs(dense[q] - exact) <= exact * RELATIVE_ERROR + 1e-9
    assert dense["max_ms"] == 100.0
    assert (sparse["runs"], sparse["retries"], sparse["retried_runs"], sparse["p50_ms"]) == (10, 10, 10, pytest.approx(5.0, rel=RELATIVE_ERROR))
    assert data["total"]["runs"] == 110


def test_stats_group_by_and_formats(tmp_path: Path) -> None:
    log = latency_log(tmp_path / "l.jsonl")
    by_tag = json.loads(rtrace("stats", str(log), "--by", "tag", "--format", "json", cwd=tmp_path).stdout)
    assert [(g["group"], g["runs"]) for g in by_tag["groups"]] == [("vector", 100), ("bm25", 10)]
    by_meta = json.loads(rtrace("stats", str(log), "--by", "meta.shard", "--format", "json", cwd=tmp_path).stdout)
    assert [(g["group"], g["runs"]) for g in by_meta["groups"]] == [("0", 50), ("1", 50), ("(none)", 10)]
    by_session = json.loads(rtrace("stats", str(log), "--by", "session", "--format", "json", cwd=tmp_path).stdout)
    assert [g["runs"] for g in by_session["groups"]] == [110]
    rows = list(csv.DictReader(io.StringIO(rtrace("stats", str(log), "--format", "csv", cwd=tmp_path).stdout)))
    assert [row["group"] for row in rows] == ["Dense", "Sparse", "(total)"] and rows[0]["errors"] == "4"
    table = rtrace("stats", str(log), cwd=tmp_path).stdout.splitlines()
    assert table[0] == f"rtrace stats: 110 retriever runs in {log}"
    assert table[1].split() == ["name", "runs", "err", "err%", "retry", "p50", "p90", "p99", "max", "self", "docs", "empty", "latency"]
    assert table[2].split()[:3] == ["Dense", "100", "4"] and table[5].split()[:2] == ["total", "110"]
    filtered = json.loads(rtrace("stats", str(log), "--tag", "bm25", "--format", "json", cwd=tmp_path).stdout)
    assert [g["group"] for g in filtered["groups"]] == ["Sparse"]
    bad = rtrace("stats", str(log), "--by", "colour", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr == ("rtrace: error: --by is one of name, tag, session, meta.KEY or a request field "
                                                  "(k, search_type, vector_store, ...), not 'colour'\n")


def test_stats_in_the_terminal_name_the_log_draw_latency_and_keep_numbers_whole(tmp_path: Path) -> None:
    log = latency_log(tmp_path / "l.jsonl")
    wide = rtrace("stats", log.name, "--slowest", "2", cwd=tmp_path, env={**ENV, "COLUMNS": "100"}).stdout
    assert wide == """\
rtrace stats: 110 retriever runs in l.jsonl
name    runs  err  err%  retry   p50   p90   p99    max  self  docs  empty  latency
Dense    100    4   4.0      0  50.2  90.2  98.7  100.0  50.5   1.8      8  ▁▁▁▁▂▃▅█
Sparse    10    0   0.0     10  4.99  4.99  4.99   5.00  5.00   1.0      0  █
────────────────────────────────────────────────────────────────────────────────────
total    110    4   3.6     10  45.0  89.3  98.7  100.0  46.4   1.8      8

slowest roots  (rtrace show --run ID)
  100.0 ms  Dense  0000100  “q100”
   99.0 ms  Dense  0000099  “q99”
"""
    narrow = rtrace("stats", log.name, "--slowest", "0", cwd=tmp_path, env={**ENV, "COLUMNS": "60"}).stdout.splitlines()
    assert narrow[1:3] == ["name    runs  err  retry   p50   p90   p99    max  docs",
                           "Dense    100    4      0  50.2  90.2  98.7  100.0   1.8"]  # columns go, no number is cut
    assert all(len(line) <= 60 for line in narrow)


def test_stats_slowest_roots_or_leaves_and_self_time(tmp_path: Path) -> None:
    log = standard_log(tmp_path / "l.jsonl")

    def slowest(*args: str) -> list[tuple[str, float]]:
        data = json.loads(rtrace("stats", str(log), "--format", "json", *args, cwd=tmp_path).stdout)
        return [(s["name"], s["duration_ms"]) for s in data["slowest"]]

    assert slowest() == [("Slow", 2500.0), ("Flaky", 450.0), ("Hybrid", 20.0), ("Child", 1.0)]
    assert slowest("--slowest-of", "leaves", "--slowest", "3") == [("Slow", 2500.0), ("Flaky", 450.0), ("Dense", 12.5)]
    data = json.loads(rtrace("stats", str(log), "--format", "json", cwd=tmp_path).stdout)
    assert data["logs"] == [str(log)]
    dense = next(g for g in data["groups"] if g["group"] == "Dense")
    assert dense["mean_self_ms"] == 12.5  # a leaf's own time is all its time (a parent's: test_show.test_sort_and_self_time)
    bad = rtrace("stats", str(log), "--slowest-of", "middle", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr == "rtrace: error: --slowest-of is one of roots, leaves, not 'middle'\n"


def test_histogram_bins_hold_every_duration() -> None:
    h = Histogram()
    for v in [0.0, 1.0, 2.0, 4.0, 8.0, 1000.0]:
        h.add(v)
    bins = h.bins(8)
    assert bins == [3, 1, 1, 0, 0, 0, 0, 1]  # log-scale bins from 1 ms to 1 s; zero counts in the first


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1e7, allow_nan=False), min_size=1, max_size=300),
       st.sampled_from([0.01, 0.5, 0.9, 0.99, 1.0]))
def test_histogram_quantiles_are_within_the_stated_error(values: list[float], q: float) -> None:
    h = Histogram()
    for v in values:
        h.add(v)
    exact = sorted(values)[max(1, math.ceil(q * len(values))) - 1]
    got = h.quantile(q)
    assert got is not None and abs(got - exact) <= exact * RELATIVE_ERROR * (1 + 1e-9) + 1e-12
    assert h.max == max(values)


def test_stats_on_a_sample_log(sample_logs: dict[str, Path], tmp_path: Path) -> None:
    data = json.loads(rtrace("stats", str(sample_logs["flaky.py"]), "--format", "json", cwd=tmp_path).stdout)
    (g,) = data["groups"]
    events = read_events(sample_logs["flaky.py"])
    assert g["runs"] == 6 and g["errors"] == 1 and g["retries"] == sum(e["event"] == "retry" for e in events)


# --- diff ----------------------------------------------------------------------------------------

def test_ranking_metrics() -> None:
    same, other = list("abcde"), list("vwxyz")
    assert (overlap_at_k(same, same, 5), jaccard(same, same), rbo(same, same)) == (1.0, 1.0, 1.0)
    assert (overlap_at_k(same, other, 5), jaccard(same, other), rbo(same, other)) == (0.0, 0.0, 0.0)
    assert rbo(list("abcde"), list("bacde")) == pytest.approx(0.9)  # only the top two swapped
    assert rbo(list("abcde"), list("abcdz")) > rbo(list("abcde"), list("zbcde"))  # top ranks weigh more
    assert overlap_at_k(list("abc"), list("abc"), 5) == 1.0  # shorter than k is not penalised
    assert overlap_at_k([], [], 5) == 1.0 and rbo([], list("a")) == 0.0


def two_logs(tmp_path: Path) -> tuple[Path, Path]:
    a = LogBuilder().session_start()
    b = LogBuilder(session="0190aaaa-0000-7000-8000-00000000000b").session_start()
    for builder, variant in ((a, "a"), (b, "b")):
        builder.start(1, "R", "same").end(1, "R", [doc("1", "one"), doc("2", "two"), doc("3", "three")], 10.0)
        docs = [doc("1", "one"), doc("3", "three"), doc("2", "two")] if variant == "a" else [doc("1", "one"), doc("2", "two"), doc("9", "nine")]
        builder.start(2, "R", "changed").end(2, "R", docs, 10.0 if variant == "a" else 25.0)
        builder.start(3, "R", f"only {variant}").end(3, "R", [doc(None, "no id")], 1.0)  # type: ignore[arg-type]
        builder.start(4, "R", "no ids").end(4, "R", [{"id": None, "page_content": "hashed", "metadata": {}, "score": None}], 1.0)
        builder.start(5, "R", "same").end(5, "R", [], 1.0)  # a repeat: the first occurrence counts
    return a.write(tmp_path / "a.jsonl"), b.write(tmp_path / "b.jsonl")


def test_diff_json(tmp_path: Path) -> None:
    a, b = two_logs(tmp_path)
    r = rtrace("diff", str(a), str(b), "--k", "3", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["matched"] == 3 and data["only_in_a"] == [["R", "only a"]] and data["only_in_b"] == [["R", "only b"]]
    changed = next(q for q in data["queries"] if q["query"] == "changed")
    assert changed["overlap_at_k"] == pytest.approx(2 / 3) and changed["jaccard"] == pytest.approx(0.5)
    assert changed["lost"] == [{"id": "3", "rank": 2}] and changed["gained"] == [{"id": "9", "rank": 3}]
    assert changed["moved"] == [{"id": "2", "from": 3, "to": 2}] and changed["latency_change_ms"] == 15.0
    hashed = next(q for q in data["queries"] if q["query"] == "no ids")
    assert hashed["overlap_at_k"] == 1.0  # matched by a hash of the content
    assert data["mean_overlap_at_k"] == pytest.approx((1 + 2 / 3 + 1) / 3)


def test_diff_table_and_fail_under(tmp_path: Path) -> None:
    a, b = two_logs(tmp_path)
    r = rtrace("diff", str(a), str(b), "--k", "3", cwd=tmp_path)
    assert r.returncode == 0
    out = r.stdout
    assert "queries matched              3\n" in out and "mean overlap@3           0.889\n" in out
    assert "“changed”: -3@2 +9@3 2 3→2" in out and "only in A: R  “only a”" in out
    ok = rtrace("diff", str(a), str(b), "--k", "3", "--fail-under", "0.8", cwd=tmp_path)
    assert ok.returncode == 0
    fail = rtrace("diff", str(a), str(b), "--k", "3", "--fail-under", "0.95", cwd=tmp_path)
    assert fail.returncode == 1 and fail.stderr == "rtrace: diff: mean overlap@3 0.889 is below --fail-under 0.95\n"
    missing = rtrace("diff", str(a), str(tmp_path / "nope.jsonl"), cwd=tmp_path)
    assert missing.returncode == 1 and missing.stderr.startswith("rtrace: error: ") and "no such file" in missing.stderr


def test_diff_of_a_sample_with_itself(sample_logs: dict[str, Path], tmp_path: Path) -> None:
    log = str(sample_logs["hybrid.py"])
    data = json.loads(rtrace("diff", log, log, "--format", "json", "--fail-under", "1", cwd=tmp_path).stdout)
    assert data["matched"] == 16 and data["mean_overlap_at_k"] == 1.0 and data["mean_rbo"] == pytest.approx(1.0)
    assert {q["name"] for q in data["queries"]} == {"Hybrid", "Hybrid › Keyword", "Hybrid › Dense", "Hybrid › Rerank"}


def deeper_logs(tmp_path: Path) -> tuple[Path, Path]:
    """A nested retriever whose ranking changes, and a root that fails in B."""
    logs = []
    for side in ("a", "b"):
        b = LogBuilder().session_start()
        b.start(1, "Hybrid", "what is bm25").start(2, "Dense", "what is bm25", parent=1, root=1)
        dense = [doc("d1", "Dense retrieval embeds text.", 0.91), doc("d2", "BM25 ranks by term frequency.", 0.55),
                 doc("d3", "third", 0.3)]
        if side == "b":
            dense = [doc("d2", "BM25 ranks by term frequency.", 0.8), doc("d1", "Dense retrieval embeds text.", 0.7),
                     doc("d9", "new one", 0.2)]
        b.end(2, "Dense", dense, 10.0 if side == "a" else 12.0, parent=1, root=1)
        b.end(1, "Hybrid", [doc("d1", "Dense retrieval embeds text.", 0.91)], 20.0 if side == "a" else 22.0)
        b.start(3, "Hybrid", "flaky one")
        if side == "a":
            b.end(3, "Hybrid", [doc("x", "x text")], 5.0)
        else:
            b.error(3, "Hybrid", 50.0)
        logs.append(b.session_end().write(tmp_path / f"deep-{side}.jsonl"))
    return logs[0], logs[1]


def test_diff_compares_child_runs_and_explains_status_changes(tmp_path: Path) -> None:
    a, b = deeper_logs(tmp_path)
    data = json.loads(rtrace("diff", str(a), str(b), "--k", "3", "--format", "json", cwd=tmp_path).stdout)
    by_name = {(q["name"], q["query"]): q for q in data["queries"]}
    assert data["matched"] == 3 and data["status_changes"] == 1
    assert data["mean_overlap_at_k"] == pytest.approx((1 + 2 / 3 + 0) / 3)  # the failed run counts as its empty list
    dense = by_name[("Hybrid › Dense", "what is bm25")]  # a child run, matched by its path of names and its query
    assert dense["lost"] == [{"id": "d3", "rank": 3}] and dense["gained"] == [{"id": "d9", "rank": 3}]
    flaky = by_name[("Hybrid", "flaky one")]
    assert (flaky["status_a"], flaky["status_b"], flaky["error_b"]) == ("ok", "error", "TimeoutError: timed out")
    r = rtrace("diff", str(a), str(b), "--k", "3", "--docs", "bm25", cwd=tmp_path, env={**ENV, "COLUMNS": "70"})
    assert r.returncode == 0, r.stderr
    text = r.stdout.split("worst", 1)[1]
    assert text == """ 2 of 3 queries
overlap  jaccard    rbo      Δ ms  run  query
✓ ok → ✗ error              +45.0  Hybrid  “flaky one”
   0.67     0.50   0.63      +2.0  Hybrid › Dense  “what is bm25”
  Hybrid “flaky one”: A ok B error (TimeoutError: timed out)
  Hybrid › Dense “what is bm25”: -d3@3 +d9@3 d1 1→2 d2 2→1

Hybrid  “what is bm25”
 = same rank, N: its rank on the other side, - only in A, + only in B
   A  ✓ ok                          │ B  ✓ ok
 1  = 0.910 d1 Dense retrieval emb… │  = 0.910 d1 Dense retrieval emb…

Hybrid › Dense  “what is bm25”
 = same rank, N: its rank on the other side, - only in A, + only in B
   A  ✓ ok                          │ B  ✓ ok
 1  2 0.910 d1 Dense retrieval emb… │  2 0.800 d2 BM25 ranks by term …
 2  1 0.550 d2 BM25 ranks by term … │  1 0.700 d1 Dense retrieval emb…
 3  - 0.300 d3 third                │  + 0.200 d9 new one
"""
    assert all(len(line) <= 70 for line in r.stdout.splitlines())


STORE_SCRIPT = """
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore

store = InMemoryVectorStore(DeterministicFakeEmbedding(size=32))
store.add_texts([f"passage {i} about retrieval" for i in range(12)], ids=[f"p{i}" for i in range(12)])
retriever = store.as_retriever(search_type=SEARCH_TYPE, search_kwargs=SEARCH_KWARGS)
for query in ("what is rrf?", "bm25 basics"):
    retriever.invoke(query)
"""


@pytest.mark.timeout(180)
def test_diff_says_what_a_retriever_asked_differently(tmp_path: Path) -> None:
    # The same LangChain retriever, tuned between two runs: B asks for more documents, by MMR.
    for side, search_type, kwargs in (("a", "similarity", {"k": 2}), ("b", "mmr", {"k": 4, "fetch_k": 8})):
        script = tmp_path / f"{side}.py"
        script.write_text(STORE_SCRIPT.replace("SEARCH_TYPE", repr(search_type)).replace("SEARCH_KWARGS", repr(kwargs)))
        r = rtrace("run", "-q", "-o", f"{side}.jsonl", str(script), cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    data = json.loads(rtrace("diff", "a.jsonl", "b.jsonl", "--format", "json", cwd=tmp_path).stdout)
    assert data["request_changes"] == [
        {"name": "VectorStoreRetriever", "field": "k", "a": [2], "b": [4]},
        {"name": "VectorStoreRetriever", "field": "search_type", "a": ["similarity"], "b": ["mmr"]},
        {"name": "VectorStoreRetriever", "field": "fetch_k", "a": [], "b": [8]},
    ]
    text = rtrace("diff", "a.jsonl", "b.jsonl", cwd=tmp_path).stdout
    assert "asked differently (A → B)\n  VectorStoreRetriever  k 2 → 4  search_type similarity → mmr  fetch_k — → 8\n" in text
    same = json.loads(rtrace("diff", "a.jsonl", "a.jsonl", "--format", "json", cwd=tmp_path).stdout)
    assert same["request_changes"] == [] and "asked differently" not in rtrace("diff", "a.jsonl", "a.jsonl", cwd=tmp_path).stdout


@pytest.mark.timeout(180)
def test_stats_by_a_request_field_groups_retriever_runs_by_what_they_asked(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(STORE_SCRIPT.split("retriever = ")[0] + """
for k in (2, 4, 4):
    store.as_retriever(search_kwargs={"k": k}).invoke(f"query for k={k}")
store.as_retriever(search_type="mmr", search_kwargs={"k": 4, "fetch_k": 8}).invoke("mmr query")
""")
    assert rtrace("run", "-q", "-o", "log.jsonl", "app.py", cwd=tmp_path).returncode == 0
    for by, want in (("k", [("4", 3), ("2", 1)]), ("search_type", [("similarity", 3), ("mmr", 1)]),
                     ("vector_store", [("InMemoryVectorStore", 4)])):
        data = json.loads(rtrace("stats", "--by", by, "log.jsonl", "--format", "json", cwd=tmp_path).stdout)
        # retriever runs only: the search and embedding stages inside them ask nothing of their own
        assert [(g["group"], g["runs"]) for g in data["groups"]] == want and data["total"]["runs"] == 4, by
    bad = rtrace("stats", "--by", "kk", "log.jsonl", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("rtrace: error: --by is one of name, tag, session, meta.KEY or a request field")


def test_diff_request_changes_of_hostile_values_stay_one_line(tmp_path: Path) -> None:
    logs = []
    for side, k in (("a", {"nested": ["x" * 500, "\x1b[31m"]}), ("b", "\u202eevil\x1b]0;t\x07")):
        b = LogBuilder().session_start()
        b.start(1, "R", "q", request={"k": k}).end(1, "R", [doc("1", "one")], 1.0)
        logs.append(b.session_end().write(tmp_path / f"{side}.jsonl"))
    r = rtrace("diff", str(logs[0]), str(logs[1]), cwd=tmp_path, env={**ENV, "COLUMNS": "60"})
    assert r.returncode == 0, r.stderr
    line = r.stdout.split("asked differently (A → B)\n", 1)[1].splitlines()[0]
    assert line.startswith("  R  k {") and len(line) <= 60 and "\x1b" not in r.stdout and "\u202e" not in r.stdout


def _asked_logs(tmp_path: Path, a: dict[str, Any], b: dict[str, Any]) -> list[Path]:
    logs = []
    for side, request in (("a", a), ("b", b)):
        log = LogBuilder().session_start()
        log.start(1, "R", "q", request=request).end(1, "R", [doc("1", "one")], 1.0)
        logs.append(log.session_end().write(tmp_path / f"{side}.jsonl"))
    return logs


def test_diff_shows_values_that_differ_as_different_text(tmp_path: Path) -> None:
    # k=5 and k="5" (a number read from argv), "similarity" and "similarity " are different requests:
    # the line saying so must not read "k 5 → 5".
    logs = _asked_logs(tmp_path, {"k": 5, "search_type": "similarity", "fetch_k": 1},
                       {"k": "5", "search_type": "similarity ", "fetch_k": True})
    r = rtrace("diff", str(logs[0]), str(logs[1]), cwd=tmp_path, env={**ENV, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    line = r.stdout.split("asked differently (A → B)\n", 1)[1].splitlines()[0]
    assert line == '  R  k 5 → "5"  search_type similarity → "similarity "  fetch_k 1 → true'


def test_stats_by_a_request_field_keeps_a_number_and_its_text_apart(tmp_path: Path) -> None:
    log = LogBuilder().session_start()
    for n, k in enumerate((5, "5", 5, None, "(none)", True, {"a": None}), start=1):
        log.start(n, "R", "q", request={"k": k}).end(n, "R", [doc("1", "one")], 1.0)
    path = log.session_end().write(tmp_path / "log.jsonl")
    data = json.loads(rtrace("stats", "--by", "k", str(path), "--format", "json", cwd=tmp_path).stdout)
    assert sorted((g["group"], g["runs"]) for g in data["groups"]) == [
        ('"(none)"', 1), ('"5"', 1), ("(none)", 1), ("5", 2), ("true", 1), ('{"a":null}', 1)]


# --- replay --------------------------------------------------------------------------------------

def _comparable(path: Path) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k not in ("seq", "ts", "session_id")}
            for e in read_events(path) if not e["event"].startswith("session_")]


@pytest.mark.parametrize("sample", SAMPLES)
def test_replay_into_a_jsonl_handler_reproduces_the_log(sample: str, sample_logs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "replayed.jsonl"
    (tmp_path / "into_file.py").write_text(
        f"from rtrace.core import JsonlHandler\nhandler = JsonlHandler({str(out)!r}, redact=())\n")
    r = rtrace("replay", "--no-wait", "--handler", "into_file:handler", str(sample_logs[sample]), cwd=tmp_path,
               env={**ENV, "PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert _comparable(out) == _comparable(sample_logs[sample])
    events = read_events(out)
    assert events[0]["event"] == "session_start" and events[-1]["event"] == "session_end"


def test_replay_default_console_view(sample_logs: dict[str, Path], tmp_path: Path) -> None:
    r = rtrace("replay", "--no-wait", str(sample_logs["flaky.py"]), cwd=tmp_path)
    lines = r.stdout.splitlines()
    assert lines[0] == "▶ FlakyVectorStore  “approximate nearest neighbour graph”"
    assert lines[1] == "  ↻ attempt 1  TimeoutError: vector store did not answer within 200 ms"
    assert any(line.startswith("✗ FlakyVectorStore  TimeoutError: vector store did not answer") for line in lines)


def test_replay_to_langchains_own_run_collector(sample_logs: dict[str, Path]) -> None:
    from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

    collector = RunCollectorCallbackHandler()
    Replayer([collector], speed=None).replay(read_lines([str(sample_logs["hybrid.py"])]))
    roots = [r for r in collector.traced_runs if r.parent_run_id is None]
    assert [r.name for r in roots] == ["Hybrid"] * 4
    assert all(r.run_type == "retriever" for r in roots)
    assert [c.name for c in roots[0].child_runs] == ["Keyword", "Dense", "Rerank"]
    assert [d.id for d in roots[0].outputs["documents"]] == ["bm25-01", "bm25-02", "eval-01"]


def test_replay_recreates_documents_errors_and_timing(tmp_path: Path) -> None:
    log = standard_log(tmp_path / "l.jsonl")
    seen: list[tuple[str, Any]] = []

    class Recorder:
        run_inline = True
        raise_error = True
        ignore_retriever = ignore_retry = ignore_custom_event = ignore_chain = ignore_agent = ignore_llm = False

        def on_retriever_start(self, serialized: Any, query: str, **kw: Any) -> None:
            seen.append(("start", (query, kw["name"], kw["tags"], kw["metadata"])))

        def on_retriever_end(self, documents: Any, **kw: Any) -> None:
            seen.append(("end", [(d.id, d.page_content, d.score) for d in documents]))

        def on_retriever_error(self, error: BaseException, **kw: Any) -> None:
            seen.append(("error", (type(error).__name__, str(error))))

        def on_retry(self, state: Any, **kw: Any) -> None:
            seen.append(("retry", (state.attempt_number, state.outcome.failed, type(state.outcome.exception()).__name__)))

        def on_text(self, text: str, **kw: Any) -> None:
            seen.append(("text", text))

    sleeps: list[float] = []
    Replayer([Recorder()], speed=2.0, sleep=sleeps.append).replay(read_lines([str(log)]))
    assert ("start", ("what is bm25", "Hybrid", ["prod"], {"index": "v2"})) in seen
    assert ("end", [("d1", "Dense retrieval embeds text.", 0.91), ("d2", "BM25 ranks by term frequency.", 0.55)]) in seen
    assert ("error", ("TimeoutError", "timed out")) in seen
    assert ("retry", (1, True, "ConnectionError")) in seen and ("text", "expanded query to bm25 okapi") in seen
    assert sleeps and all(s == pytest.approx(0.5) for s in sleeps)  # 1 s apart in the log, at 2x speed


def test_replay_bad_handler_specs(sample_logs: dict[str, Path], tmp_path: Path) -> None:
    log = str(sample_logs["bm25.py"])
    for spec, message in [
        ("nocolon", "rtrace: error: --handler takes module:attr, not 'nocolon'\n"),
        ("no_such_module_x:h", None),
        ("json:nothing_here", "rtrace: error: --handler json:nothing_here: json has no nothing_here\n"),
        ("json:dumps", "rtrace: error: --handler json:dumps: function is not a callback handler\n"),
    ]:
        r = rtrace("replay", "--no-wait", "--handler", spec, log, cwd=tmp_path)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
        if message:
            assert r.stderr == message


def test_stats_gives_the_stages_of_a_retrieval_rows_of_their_own(tmp_path: Path) -> None:
    # A retriever whose store's search and query embedding are chain runs with rtrace_stage, as
    # the LangChain store capture, LlamaIndex and Haystack record them; a plain chain is a parent only.
    b = LogBuilder().session_start()
    b.start(1, "Dense", "q")
    b.start(2, "Store.search", "", parent=1, root=1, metadata={"rtrace_stage": "search"}, kind="chain")
    b.start(3, "Embed", "", parent=2, root=1, metadata={"rtrace_stage": "embedding"}, kind="chain")
    b.end(3, "Embed", [], 1.0, parent=2, root=1, kind="chain").end(2, "Store.search", [], 4.0, parent=1, root=1, kind="chain")
    b.start(4, "Sequence", "", parent=1, root=1, kind="chain").end(4, "Sequence", [], 0.5, parent=1, root=1, kind="chain")
    b.end(1, "Dense", [doc("a", "x")], 6.0)
    log = b.session_end().write(tmp_path / "l.jsonl")
    r = rtrace("stats", str(log), "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    rows = {g["group"]: g for g in out["groups"]}
    assert set(rows) == {"Dense", "Store.search (search)", "Embed (embedding)"}
    assert rows["Store.search (search)"]["mean_docs"] is None and rows["Dense"]["mean_docs"] == 1.0
    assert rows["Store.search (search)"]["max_ms"] == 4.0
    assert out["total"]["runs"] == 1  # the total counts retriever runs
    r = rtrace("stats", str(log), "--by", "meta.rtrace_stage", "--format", "json", cwd=tmp_path)
    assert {g["group"]: g["runs"] for g in json.loads(r.stdout)["groups"]} == {"(none)": 1, "search": 1, "embedding": 1}
