"""`rtrace eval` from the command line: every output format exactly, gates, two logs, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from synth import LogBuilder, doc

RTRACE = [sys.executable, "-m", "rtrace.cli"]
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_"))}, "COLUMNS": "120"}
HOSTILE = "never labelled | <b>x</b> \x1b[31mred"


def rtrace(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RTRACE, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=ENV)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """Dense answers q1 well and fails q2; Sparse answers q1 only; nobody asks q3; one run has no labels."""
    b = LogBuilder().session_start()
    b.start(1, "Dense", "what is  bm25").end(1, "Dense", [doc("d1", "a", 0.9), doc("d2", "b", 0.8), doc("d3", "c", 0.1)], 10.0)
    b.start(2, "Dense", "vector databases").error(2, "Dense", 5.0)
    b.start(3, "Dense", HOSTILE).end(3, "Dense", [doc("d1", "a")], 1.0)
    b.start(4, "Sparse", "what is bm25").end(4, "Sparse", [doc("d2", "b", 7.0)], 2.0)
    b.session_end().write(tmp_path / "a.jsonl")
    (tmp_path / "qrels.txt").write_text("q1 0 d1 2\nq1 0 d2 1\nq1 0 d9 1\nq2 0 v1 1\nq3 0 x 1\n")
    (tmp_path / "queries.tsv").write_text("q1\twhat is bm25\nq2\tvector databases\nq3\tsomething never asked\n")
    return tmp_path


LABELS = ("--qrels", "qrels.txt", "--queries", "queries.tsv", "-k", "2")

# Dense q1: d1 (2), d2 (1), d3 (unjudged); 3 relevant in the labels. By hand:
# ndcg@2 = (2 + 1/log2 3) / (2 + 1/log2 3) = 1; recall@2 = 2/3; P@2 = 1; mrr = 1; map = (1 + 1) / 3; hit@2 = 1.
# Dense q2 failed: all 0. Sparse q1: d2 only: ndcg@2 = (1/1) / (2 + 1/log2 3) = 0.3801; P@2 = 1/2; map = 1/3.
TABLE = """\
rtrace eval  a.jsonl  3 labelled queries · means over the labelled queries each retriever answered
retriever graded no run no labels ndcg@2 recall@2 precision@2    mrr    map  hit@2
Dense          2      1         1 0.5000   0.3333      0.5000 0.5000 0.3333 0.5000
Sparse         1      2         0 0.3801   0.3333      0.5000 1.0000 0.3333 1.0000
Dense: worst 1 of 2 queries by ndcg@2
qid        query            ndcg@2 recall@2 precision@2    mrr    map  hit@2
q2 (error) vector databases 0.0000   0.0000      0.0000 0.0000 0.0000 0.0000
Sparse: worst 1 of 1 queries by ndcg@2
qid query        ndcg@2 recall@2 precision@2    mrr    map  hit@2
q1  what is bm25 0.3801   0.3333      0.5000 1.0000 0.3333 1.0000
Dense: no run for 1 labelled query: q3 “something never asked”
Sparse: no run for 2 labelled queries: q2 “vector databases”, q3 “something never asked”
Dense: 1 run without labels: “never labelled | <b>x</b> red”
✗ mrr >= 0.6  below: Dense 0.5000
✓ hit@2 >= 0.5
"""


def test_table_exact(work: Path) -> None:
    from rtrace.cli.commands.eval import grade_log
    from rtrace.cli.render.eval import eval_table
    from rtrace.core.read.eval import metrics_for, parse_gate
    from rtrace.core.read.filters import RunFilter
    from rtrace.core.read.grade import EvalReport, check_gates
    from rtrace.core.read.labels import load_labels
    from rtrace.core.read.pipeline import Source

    os.chdir(work)
    labels = load_labels("qrels.txt", "queries.tsv")
    report = EvalReport("qrels.txt", [("a.jsonl", grade_log(Source(["a.jsonl"]), RunFilter(), labels, metrics_for([2]), None, False))])
    check_gates(report, [parse_gate("mrr=0.6"), parse_gate("hit@2=0.5")], [])
    console = Console(record=True, width=100, color_system=None)
    console.print(eval_table(report, 1))
    text = console.export_text()
    assert "\n".join(line.rstrip() for line in text.splitlines()) + "\n" == TABLE


# At 48 columns the metrics do not fit one table: they continue in a second, every number whole,
# the counts and the title only in the first, text columns squeezed before a number is.
NARROW = """\
retriever graded no run no labels ndcg@2
Dense          2      1         1 0.5000
Sparse         1      2         0 0.3801
retriever recall@2 precision@2    mrr    map
Dense       0.3333      0.5000 0.5000 0.3333
Sparse      0.3333      0.5000 1.0000 0.3333
retriever  hit@2
Dense     0.5000
Sparse    1.0000
Dense: worst 1 of 2 queries by ndcg@2
qid        query     ndcg@2 recall@2 precision@2
q2 (error) vector d… 0.0000   0.0000      0.0000
qid        query               mrr    map  hit@2
q2 (error) vector databases 0.0000 0.0000 0.0000
"""


def test_table_keeps_every_number_whole_when_narrow(work: Path) -> None:
    from rtrace.cli.commands.eval import grade_log
    from rtrace.cli.render.eval import eval_table
    from rtrace.core.read.eval import metrics_for
    from rtrace.core.read.filters import RunFilter
    from rtrace.core.read.grade import EvalReport
    from rtrace.core.read.labels import load_labels
    from rtrace.core.read.pipeline import Source

    os.chdir(work)
    labels = load_labels("qrels.txt", "queries.tsv")
    report = EvalReport("qrels.txt", [("a.jsonl", grade_log(Source(["a.jsonl"]), RunFilter(), labels, metrics_for([2]), None, False))])
    console = Console(record=True, width=48, color_system=None)
    console.print(eval_table(report, 1))
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    assert "\n".join(lines[3:17]) + "\n" == NARROW


def test_cli_table_and_gate_exit_codes(work: Path) -> None:
    r = rtrace("eval", "a.jsonl", *LABELS, "--worst", "1", "--fail-under", "mrr=0.6", "--fail-under", "hit@2=0.5", cwd=work)
    assert r.returncode == 1
    assert "\n".join(line.rstrip() for line in r.stdout.splitlines()) + "\n" == TABLE
    assert r.stderr == "rtrace: eval: gate failed: mrr >= 0.6 (below: Dense 0.5000)\n"
    r = rtrace("eval", "a.jsonl", *LABELS, "--fail-under", "mrr=0.5", "--fail-under", "ndcg@5=0.1", cwd=work)
    assert (r.returncode, r.stderr) == (0, "")
    assert "ndcg@5" in r.stdout.splitlines()[1]  # a gate's metric is computed even if -k did not ask for it


MARKDOWN = """\
### rtrace eval

**❌ 1 of 1 gates failed**

- ❌ mrr &gt;= 0.6 — below: Dense 0.5000

**a.jsonl** · 3 labelled queries · means over the labelled queries each retriever answered

| retriever | graded | no run | no labels | ndcg@2 | recall@2 | precision@2 | mrr | map | hit@2 |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| Dense | 2 | 1 | 1 | 0.5000 | 0.3333 | 0.5000 | 0.5000 | 0.3333 | 0.5000 |
| Sparse | 1 | 2 | 0 | 0.3801 | 0.3333 | 0.5000 | 1.0000 | 0.3333 | 1.0000 |

- Dense: no run for 1 labelled query: q3 “something never asked”
- Sparse: no run for 2 labelled queries: q2 “vector databases”, q3 “something never asked”
- Dense: 1 run without labels: “never labelled \\| &lt;b&gt;x&lt;/b&gt; red”

<details><summary>Dense: worst 2 of 2 queries by ndcg@2</summary>

| qid | query | ndcg@2 | recall@2 | precision@2 | mrr | map | hit@2 |
|---|---|---:|---:|---:|---:|---:|---:|
| q2 (error) | vector databases | 0.0000 | 0.0000 | 0.0000 | 0.0000 | 0.0000 | 0.0000 |
| q1 | what is bm25 | 1.0000 | 0.6667 | 1.0000 | 1.0000 | 0.6667 | 1.0000 |

</details>

<details><summary>Sparse: worst 1 of 1 queries by ndcg@2</summary>

| qid | query | ndcg@2 | recall@2 | precision@2 | mrr | map | hit@2 |
|---|---|---:|---:|---:|---:|---:|---:|
| q1 | what is bm25 | 0.3801 | 0.3333 | 0.5000 | 1.0000 | 0.3333 | 1.0000 |

</details>

"""


def test_markdown_exact(work: Path) -> None:
    r = rtrace("eval", "a.jsonl", *LABELS, "--format", "markdown", "--fail-under", "mrr=0.6", cwd=work)
    assert r.returncode == 1
    assert r.stdout == MARKDOWN
    assert "<b>" not in r.stdout and "\x1b" not in r.stdout


CSV = """\
log,retriever,qid,query,status,documents,ndcg@2,recall@2,precision@2,mrr,map,hit@2
a.jsonl,Dense,q1,what is bm25,ok,3,1.0,0.6666666666666666,1.0,1.0,0.6666666666666666,1.0
a.jsonl,Dense,q2,vector databases,error,0,0.0,0.0,0.0,0.0,0.0,0.0
a.jsonl,Dense,q3,something never asked,no run,,,,,,,
a.jsonl,Dense,(mean),,,2,0.5,0.3333333333333333,0.5,0.5,0.3333333333333333,0.5
a.jsonl,Sparse,q1,what is bm25,ok,1,0.38009376671593426,0.3333333333333333,0.5,1.0,0.3333333333333333,1.0
a.jsonl,Sparse,q2,vector databases,no run,,,,,,,
a.jsonl,Sparse,q3,something never asked,no run,,,,,,,
a.jsonl,Sparse,(mean),,,1,0.38009376671593426,0.3333333333333333,0.5,1.0,0.3333333333333333,1.0
"""


def test_csv_exact(work: Path) -> None:
    r = rtrace("eval", "a.jsonl", *LABELS, "--format", "csv", cwd=work)
    assert (r.returncode, r.stdout) == (0, CSV)


def test_junit_one_case_per_query_and_gate(work: Path) -> None:
    r = rtrace("eval", "a.jsonl", *LABELS, "--format", "junit", "--fail-under", "mrr=0.6", "--fail-under", "map=0.1", cwd=work)
    assert r.returncode == 1
    root = ET.fromstring(r.stdout)
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")} == \
        {"tests": "8", "failures": "2", "errors": "0", "skipped": "3"}
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    assert sorted(cases) == [
        ("rtrace.eval.Dense", "q1: what is bm25"), ("rtrace.eval.Dense", "q2: vector databases"),
        ("rtrace.eval.Dense", "q3: something never asked"), ("rtrace.eval.Sparse", "q1: what is bm25"),
        ("rtrace.eval.Sparse", "q2: vector databases"), ("rtrace.eval.Sparse", "q3: something never asked"),
        ("rtrace.eval.gates", "map >= 0.1"), ("rtrace.eval.gates", "mrr >= 0.6"),
    ]
    q1 = cases[("rtrace.eval.Dense", "q1: what is bm25")]
    assert {p.get("name"): float(p.get("value")) for p in q1.iter("property")}["map"] == pytest.approx(2 / 3, abs=1e-15)
    assert q1.find("failure") is None and q1.find("skipped") is None
    assert cases[("rtrace.eval.Dense", "q2: vector databases")].find("failure").get("type") == "error"
    assert cases[("rtrace.eval.Sparse", "q3: something never asked")].find("skipped") is not None
    assert cases[("rtrace.eval.gates", "mrr >= 0.6")].find("failure").get("message") == "below: Dense 0.5000"
    assert cases[("rtrace.eval.gates", "map >= 0.1")].find("failure") is None


def test_json_lists_everything_and_name_glob(work: Path) -> None:
    r = rtrace("eval", "a.jsonl", *LABELS, "--format", "json", "--name", "Sp*", cwd=work)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["metrics"] == ["ndcg@2", "recall@2", "precision@2", "mrr", "map", "hit@2"]
    (log,) = data["logs"]
    assert [x["name"] for x in log["retrievers"]] == ["Sparse"]
    sparse = log["retrievers"][0]
    assert sparse["labelled_without_run"] == ["q2", "q3"]
    assert sparse["means"]["ndcg@2"] == pytest.approx(0.38009376671593426, abs=1e-12)
    assert sparse["queries"][0]["qid"] == "q1" and sparse["queries"][0]["documents"] == 1


def test_complete_averages_over_every_labelled_query(work: Path) -> None:
    # README: --complete averages over every labelled query, 0 where there is no run (trec_eval -c).
    def means(*extra: str) -> dict[str, float]:
        r = rtrace("eval", "a.jsonl", *LABELS, "--format", "json", *extra, cwd=work)
        assert r.returncode == 0, r.stderr
        return {x["name"]: x["means"]["ndcg@2"] for x in json.loads(r.stdout)["logs"][0]["retrievers"]}

    assert means() == pytest.approx({"Dense": 0.5, "Sparse": 0.38009376671593426}, abs=1e-12)
    # Dense: q1 1, q2 (failed) 0, q3 (no run) 0; Sparse: q1 0.3801, q2 and q3 (no run) 0.
    assert means("--complete") == pytest.approx({"Dense": 1 / 3, "Sparse": 0.38009376671593426 / 3}, abs=1e-12)


def two_logs(tmp_path: Path, n: int = 6) -> None:
    """B returns the relevant document last on every query: a significant drop in mrr."""
    for name, first in (("a", True), ("b", False)):
        b = LogBuilder().session_start()
        for i in range(1, n + 1):
            docs = [doc(f"rel{i}", "r"), doc("x", "x"), doc("y", "y")]
            b.start(i, "Dense", f"query {i}", metadata={"qid": f"q{i}"}).end(i, "Dense", docs if first else docs[::-1], 1.0)
        b.session_end().write(tmp_path / f"{name}.jsonl")
    (tmp_path / "qrels.txt").write_text("".join(f"q{i} 0 rel{i} 1\n" for i in range(1, n + 1)))


def test_two_logs_significant_drop(tmp_path: Path) -> None:
    two_logs(tmp_path)
    r = rtrace("eval", "a.jsonl", "b.jsonl", "--qrels", "qrels.txt", "--format", "json", "--fail-if-worse", "mrr", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.startswith("rtrace: eval: gate failed: no significant drop in mrr (dropped: Dense 1.0000 -> 0.3333 (p = 0.0312))")
    data = json.loads(r.stdout)
    comparison = data["comparison"]
    assert comparison["test"].startswith("paired randomisation test") and "seed 0" in comparison["test"]
    mrr = next(c for c in comparison["changes"] if c["metric"] == "mrr")
    # 6 queries, all worse: exact test, 2 of 64 sign patterns are as extreme.
    assert mrr == {"retriever": "Dense", "metric": "mrr", "paired_queries": 6, "mean_a": 1.0, "mean_b": pytest.approx(1 / 3),
                   "delta": pytest.approx(-2 / 3), "p_value": 2 / 64, "significant": True}
    assert len(comparison["queries"]) == 6 and comparison["queries"][0]["delta"]["mrr"] == pytest.approx(-2 / 3)
    # The reverse direction is an improvement: the gate holds.
    r = rtrace("eval", "b.jsonl", "a.jsonl", "--qrels", "qrels.txt", "--fail-if-worse", "mrr", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "✓ no significant drop in mrr" in r.stdout
    # Two queries are too few for significance at 0.05 (p = 2/4).
    two_logs(tmp_path, 2)
    r = rtrace("eval", "a.jsonl", "b.jsonl", "--qrels", "qrels.txt", "--fail-if-worse", "mrr", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args, code, message", [
    (["--format", "xml"], 2, "rtrace: error: --format is one of table, json, csv, junit, markdown, not 'xml'\n"),
    (["--fail-under", "ndcg@10"], 2, "rtrace: error: --fail-under takes METRIC=VALUE, e.g. ndcg@10=0.6, not 'ndcg@10'\n"),
    (["--fail-under", "f1@3=0.5"], 2, "rtrace: error: not a metric: 'f1@3' (ndcg@K, recall@K, precision@K, hit@K, mrr, map)\n"),
    (["--fail-if-worse", "mrr"], 2, "rtrace: error: --fail-if-worse compares two logs: give A and B\n"),
    (["a.jsonl", "a.jsonl"], 2, "rtrace: error: rtrace eval takes one log, or two to compare (A B)\n"),
    (["--alpha", "2"], 2, "rtrace: error: --alpha is between 0 and 1, not 2.0\n"),
])
def test_bad_usage(work: Path, args: list[str], code: int, message: str) -> None:
    r = rtrace("eval", "a.jsonl", *LABELS, *args, cwd=work)
    assert (r.returncode, r.stderr, r.stdout) == (code, message, "")


def test_bad_files(work: Path) -> None:
    r = rtrace("eval", "a.jsonl", "--qrels", "nope.txt", cwd=work)
    assert (r.returncode, r.stderr) == (1, "rtrace: error: nope.txt: no such file\n")
    r = rtrace("eval", "missing.jsonl", *LABELS, cwd=work)
    assert (r.returncode, r.stderr) == (1, "rtrace: error: missing.jsonl: no such file\n")
    (work / "bad.txt").write_text("q1 0 d1 yes\n")
    r = rtrace("eval", "a.jsonl", "--qrels", "bad.txt", cwd=work)
    assert (r.returncode, r.stderr) == (1, "rtrace: error: bad.txt:1: relevance is not an integer: 'yes'\n")
    r = rtrace("eval", "a.jsonl", "--qrels", "qrels.txt", cwd=work)  # no --queries: matched by metadata qid only
    assert r.returncode == 0
    assert r.stderr == ("rtrace: warning: no run in a.jsonl matched a labelled query (without --queries, runs match "
                        "qrels.txt only by a 'qid' in their metadata)\n")


COMPARISON_MARKDOWN = """\
**A → B** · paired randomisation test \\(sign flips of per-query differences\\), two-sided; exact with &lt;= 16 \
differing queries, else 10000 samples, seed 0; \\* significant at α = 0.05

| retriever | metric | queries | A | B | Δ | p |
|---|---|---:|---:|---:|---:|---:|
| Dense | ndcg@3 | 6 | 1.0000 | 0.5000 | -0.5000 | 0.0312 \\* |
| Dense | recall@3 | 6 | 1.0000 | 1.0000 | +0.0000 | 1.0000 |
| Dense | precision@3 | 6 | 0.3333 | 0.3333 | +0.0000 | 1.0000 |
| Dense | mrr | 6 | 1.0000 | 0.3333 | -0.6667 | 0.0312 \\* |
| Dense | map | 6 | 1.0000 | 0.3333 | -0.6667 | 0.0312 \\* |
| Dense | hit@3 | 6 | 1.0000 | 1.0000 | +0.0000 | 1.0000 |
"""


def test_two_logs_markdown_and_junit(tmp_path: Path) -> None:
    two_logs(tmp_path)
    r = rtrace("eval", "a.jsonl", "b.jsonl", "--qrels", "qrels.txt", "-k", "3", "--format", "markdown", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(COMPARISON_MARKDOWN + "\n")
    r = rtrace("eval", "a.jsonl", "b.jsonl", "--qrels", "qrels.txt", "-k", "3", "--format", "junit",
               "--fail-if-worse", "ndcg@3", "--fail-if-worse", "recall@3", cwd=tmp_path)
    assert r.returncode == 1
    root = ET.fromstring(r.stdout)
    case = next(c for c in root.iter("testcase") if c.get("name") == "q1: query 1")
    assert case.find("system-out").text.endswith("\nchange from A: ndcg@3=-0.5000 recall@3=+0.0000 precision@3=+0.0000 "
                                                 "mrr=-0.6667 map=-0.6667 hit@3=+0.0000")
    gates = {c.get("name"): c.find("failure") for c in root.iter("testcase") if c.get("classname") == "rtrace.eval.gates"}
    assert gates["no significant drop in recall@3"] is None
    assert gates["no significant drop in ndcg@3"].get("message") == "dropped: Dense 1.0000 -> 0.5000 (p = 0.0312)"


ASKED_K = """
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore

store = InMemoryVectorStore(DeterministicFakeEmbedding(size=32))
store.add_texts([f"passage {i} about retrieval" for i in range(12)], ids=[f"p{i}" for i in range(12)])
store.as_retriever(search_kwargs={"k": 2}).invoke("what is rrf?")
store.as_retriever(search_kwargs={"k": 3}).invoke("bm25 basics")
"""


@pytest.mark.timeout(180)
def test_a_retriever_asked_for_fewer_documents_than_a_cutoff_is_said_to_be(tmp_path: Path) -> None:
    # precision@10 of a store asked for 3 documents is at most 0.3: the grades say why.
    (tmp_path / "app.py").write_text(ASKED_K)
    r = subprocess.run([*RTRACE, "run", "-q", "-o", "a.jsonl", "app.py"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    (tmp_path / "qrels.jsonl").write_text('{"query": "what is rrf?", "doc_id": "p1", "relevance": 1}\n'
                                          '{"query": "bm25 basics", "doc_id": "p2", "relevance": 1}\n')
    out = rtrace("eval", "a.jsonl", "--qrels", "qrels.jsonl", "-k", "2", "-k", "10", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == \
        "VectorStoreRetriever: asked its store for at most k=3, so its @10 metrics count at most 3 documents a query"
    data = json.loads(rtrace("eval", "a.jsonl", "--qrels", "qrels.jsonl", "--format", "json", cwd=tmp_path).stdout)
    assert data["logs"][0]["retrievers"][0]["asked_k"] == [2, 3]
    within = rtrace("eval", "a.jsonl", "--qrels", "qrels.jsonl", "-k", "2", cwd=tmp_path)
    assert "asked its store" not in within.stdout  # @2: no cutoff past what it asked for


MERGING = """
from rtrace.core import CallbackManager, Document, trace_to

with trace_to("a.jsonl"):
    for query, k, ids in (("what is rrf?", 2, ["p1", "p2", "p3", "p4"]), ("bm25 basics", -1, ["p2"])):
        # asks each of its two stores for k, and returns what both found: more than k
        run = CallbackManager.configure().on_retriever_start(None, query, name="Hybrid", k=k)
        run.on_retriever_end([Document(page_content=i, id=i) for i in ids])
"""


@pytest.mark.timeout(120)
def test_a_retriever_that_returned_more_than_it_asked_for_is_not_said_to_be_capped(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(MERGING)
    r = subprocess.run([sys.executable, "app.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=ENV)
    assert r.returncode == 0, r.stderr
    (tmp_path / "qrels.jsonl").write_text('{"query": "what is rrf?", "doc_id": "p4", "relevance": 1}\n'
                                          '{"query": "bm25 basics", "doc_id": "p2", "relevance": 1}\n')
    out = rtrace("eval", "a.jsonl", "--qrels", "qrels.jsonl", "-k", "10", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "asked its store" not in out.stdout  # its @10 counted 4 documents of a query, past k=2
    data = json.loads(rtrace("eval", "a.jsonl", "--qrels", "qrels.jsonl", "--format", "json", cwd=tmp_path).stdout)
    assert data["logs"][0]["retrievers"][0]["asked_k"] == [2, -1]  # as recorded
