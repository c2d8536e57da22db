"""Metrics, labels and the significance test against pytrec_eval (trec_eval's own code)."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest
import pytrec_eval
from hypothesis import given, settings
from hypothesis import strategies as st

from rtrace.core.errors import LogError, UsageError
from rtrace.core.read.eval import EvalCollector, Metric, metrics_for, parse_gate, parse_metric, score
from rtrace.core.read.labels import load_labels
from rtrace.core.read.reader import read_lines
from rtrace.core.read.significance import randomisation_test
from rtrace.core.read.trees import Run, Trace, TreeBuilder

KS = (1, 3, 5, 10)
METRICS = metrics_for(KS)
TREC_NAMES = {"ndcg": "ndcg_cut_{k}", "recall": "recall_{k}", "precision": "P_{k}", "hit": "success_{k}",
              "mrr": "recip_rank", "map": "map"}
MEASURES = {"map", "recip_rank"} | {f"{m}.{','.join(map(str, KS))}" for m in ("ndcg_cut", "P", "recall", "success")}


def trec_name(m: Metric) -> str:
    return TREC_NAMES[m.kind].format(k=m.k)


def pytrec(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, dict[str, float]]:
    """pytrec_eval on runs given as rtrace ranks them: recorded rank -> a strictly decreasing score."""
    run = {}
    for qid, ranking in rankings.items():
        unique = list(dict.fromkeys(ranking))  # rtrace's rule: the first occurrence counts
        run[qid] = {doc: float(len(unique) - i) for i, doc in enumerate(unique)}
    return pytrec_eval.RelevanceEvaluator(qrels, MEASURES).evaluate(run)


def assert_matches(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> None:
    expected = pytrec(rankings, qrels)
    for qid, ranking in rankings.items():
        ours = score(ranking, qrels[qid], METRICS)
        if qid not in expected:  # pytrec_eval leaves out a query whose run is empty: every metric is 0
            assert not ranking and ours == [0.0] * len(METRICS)
            continue
        for m, value in zip(METRICS, ours):
            assert value == pytest.approx(expected[qid][trec_name(m)], abs=1e-9), (qid, str(m), ranking, qrels[qid])


DOC = st.sampled_from([f"d{i}" for i in range(15)])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["q1", "q2", "q3"]),
                       st.tuples(st.lists(DOC, max_size=14),
                                 st.dictionaries(DOC, st.integers(-1, 3), min_size=1, max_size=10)),
                       min_size=1))
def test_generated_cases_equal_pytrec_eval(cases: dict[str, tuple[list[str], dict[str, int]]]) -> None:
    # Duplicates, unjudged documents, fewer than k documents, graded and negative labels,
    # queries with no relevant document all occur in these.
    assert_matches({q: r for q, (r, _) in cases.items()}, {q: j for q, (_, j) in cases.items()})


def test_edge_cases_equal_pytrec_eval() -> None:
    qrels = {
        "none-relevant": {"a": 0, "b": 0},
        "short": {"a": 1, "b": 2, "c": 1, "z": 3},
        "dups": {"a": 1, "b": 1},
        "unjudged": {"x": 2},
        "negative": {"a": -1, "b": 1},
    }
    rankings = {
        "none-relevant": ["a", "b", "c"],
        "short": ["b"],                      # fewer than k documents
        "dups": ["c", "a", "a", "a", "b"],   # a counted once, at rank 2; b moves up to rank 3
        "unjudged": ["u1", "u2", "x"],
        "negative": ["a", "b"],
    }
    assert_matches(rankings, qrels)
    dups = dict(zip(map(str, METRICS), score(rankings["dups"], qrels["dups"], METRICS)))
    assert dups["precision@3"] == pytest.approx(2 / 3) and dups["mrr"] == 0.5
    assert dict(zip(map(str, METRICS), score(["a"], {"a": 0}, METRICS))) == {str(m): 0.0 for m in METRICS}


def test_ties_in_score_keep_recorded_rank(tmp_path: Path) -> None:
    """trec_eval would break a tie by doc id (descending); rtrace keeps the order the retriever returned."""
    from synth import LogBuilder, doc

    b = LogBuilder().session_start()
    b.start(1, "Dense", "q").end(1, "Dense", [doc("a", "x", 0.5), doc("b", "y", 0.5)], 1.0)
    log = b.session_end().write(tmp_path / "l.jsonl")
    (tmp_path / "j.jsonl").write_text(json.dumps({"query": "q", "doc_id": "a", "relevance": 1}) + "\n")
    result = collect(log, load_labels(tmp_path / "j.jsonl"), [Metric("mrr")])
    assert list(result.retrievers["Dense"].scores["q"].values) == [1.0]
    by_trec = pytrec_eval.RelevanceEvaluator({"q": {"a": 1}}, {"recip_rank"}).evaluate({"q": {"a": 0.5, "b": 0.5}})
    assert by_trec["q"]["recip_rank"] == 0.5  # b > a: trec_eval ranks b first


def collect(log: Path, labels, metrics, id_key=None, complete=False):  # noqa: ANN001, ANN201
    builder = TreeBuilder()
    runs = (run for item in builder.build(read_lines([str(log)])) if isinstance(item, Trace) for run in item.runs)
    return EvalCollector(labels, metrics, id_key=id_key, complete=complete).add_all(runs)


ROOT = Path(__file__).resolve().parent.parent
HYBRID_QRELS = """\
bm25 0 bm25-01 2
bm25 0 bm25-02 1
bm25 0 tok-01 1
fuse 0 rrf-01 2
fuse 0 rrf-02 1
fuse 0 bm25-02 0
retry 0 retry-01 2
retry 0 retry-02 1
nothing 0 eval-01 0
unasked 0 dense-01 1
"""
HYBRID_QUERIES = ("bm25\thow does  bm25 length normalisation work\nfuse\tcombine keyword and vector results\n"
                  "retry\twhy retry a vector database with backoff\nnothing\tevaluate ranking quality with ndcg\n"
                  "unasked\twhat is a dense retriever\n")


@pytest.fixture(scope="module")
def hybrid_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import subprocess
    import sys

    d = tmp_path_factory.mktemp("hybrid")
    log = d / "hybrid.jsonl"
    r = subprocess.run([sys.executable, "-m", "rtrace.cli", "run", "-q", "-o", str(log), str(ROOT / "samples" / "hybrid.py")],
                       cwd=d, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return log


def test_real_log_equals_pytrec_eval(hybrid_log: Path, tmp_path: Path) -> None:
    (tmp_path / "qrels.txt").write_text(HYBRID_QRELS)
    (tmp_path / "queries.tsv").write_text(HYBRID_QUERIES)
    labels = load_labels(tmp_path / "qrels.txt", tmp_path / "queries.tsv")
    result = collect(hybrid_log, labels, METRICS)
    assert sorted(result.retrievers) == ["Dense", "Hybrid", "Keyword", "Rerank"]
    for name, r in result.retrievers.items():
        assert sorted(r.scores) == ["bm25", "fuse", "nothing", "retry"]
        assert result.missing(name) == ["unasked"]
        rankings = {}
        for line in hybrid_log.read_text().splitlines():
            ev = json.loads(line)
            if ev["event"] == "retriever_end" and ev["name"] == name:
                rankings[ev["run_id"]] = [d["id"] for d in ev["documents"]]
        expected = pytrec({s.qid: rankings[s.run_id] for s in r.scores.values()}, labels.qrels)
        for s in r.scores.values():
            for m, value in zip(METRICS, s.values):
                assert value == pytest.approx(expected[s.qid][trec_name(m)], abs=1e-9)
        for i, m in enumerate(METRICS):  # means: over the evaluated queries, as trec_eval's "all"
            mean = sum(expected[q][trec_name(m)] for q in r.scores) / 4
            assert result.mean(name, m) == pytest.approx(mean, abs=1e-9)
    # --complete: the labelled query nobody asked counts as 0 (trec_eval -c)
    complete = collect(hybrid_log, labels, METRICS, complete=True)
    assert complete.mean("Dense", Metric("map")) == pytest.approx(result.mean("Dense", Metric("map")) * 4 / 5)


def test_label_formats(tmp_path: Path) -> None:
    (tmp_path / "beir.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\n")
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "what  is\\tbm25", "metadata": {}}\n{"_id": "q9", "text": "x"}\n')
    labels = load_labels(tmp_path / "beir.tsv", tmp_path / "queries.jsonl")
    assert labels.qrels == {"q1": {"d1": 1, "d2": 2}}
    assert labels.match(" what is bm25 ", {}) == "q1" and labels.match("x", {}) is None  # q9 has no judgements
    assert labels.match("anything", {"qid": "q1"}) == "q1"
    (tmp_path / "j.jsonl").write_text('{"query": "a b", "doc_id": 7, "relevance": 1}\n\n{"query": "a  b", "doc_id": "8", "relevance": 0}\n'
                                      '{"query": "a b", "doc_id": 7, "relevance": 2}\n')
    labels = load_labels(tmp_path / "j.jsonl")
    assert labels.qrels == {"a b": {"7": 2, "8": 0}}
    assert labels.warnings == [f"1 repeated judgement in {tmp_path / 'j.jsonl'}; the last one counts"]


@pytest.mark.parametrize("content, message", [
    ("q1 0 d1 1 x\n", "qrels.txt:1: expected 'qid 0 docid relevance' (4 fields), found 5 fields"),
    ("q1 0 d1\n", "qrels.txt:1: relevance is not an integer: 'd1'"),
    ("query-id\tcorpus-id\tscore\n", "qrels.txt: no judgements in this file"),
    ("q1 0 d1 1\nq1 0 d2 high\n", "qrels.txt:2: relevance is not an integer: 'high'"),
    ('{"query": "a", "doc_id": "d"}\n', 'qrels.txt:1: expected {"query": text, "doc_id": id, "relevance": n}'),
    ('{"query": "a"\n', "qrels.txt:1: not a JSON line"),
    ("\n\n", "qrels.txt: no labels in this file"),
])
def test_bad_labels(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "qrels.txt").write_text(content)
    with pytest.raises(LogError) as e:
        load_labels(tmp_path / "qrels.txt")
    assert str(e.value) == f"{tmp_path}/{message}"


def test_metric_and_gate_parsing() -> None:
    assert [str(m) for m in metrics_for([10])] == ["ndcg@10", "recall@10", "precision@10", "mrr", "map", "hit@10"]
    assert [str(m) for m in metrics_for([10], [parse_metric("ndcg@3")])] == \
        ["ndcg@3", "ndcg@10", "recall@10", "precision@10", "mrr", "map", "hit@10"]
    gate = parse_gate("NDCG@10=0.6")
    assert (gate.metric, gate.threshold, str(gate)) == (Metric("ndcg", 10), 0.6, "ndcg@10 >= 0.6")
    for bad in ("ndcg", "mrr@3", "ndcg@0", "f1@3"):
        with pytest.raises(UsageError):
            parse_metric(bad)
    with pytest.raises(UsageError):
        parse_gate("ndcg@10")


def test_randomisation_test_exact_and_sampled() -> None:
    # Exact: 4 queries all improved by 1 -> of 16 sign patterns, 2 reach |sum| = 4.
    assert randomisation_test([0, 0, 0, 0], [1, 1, 1, 1]) == 2 / 16
    assert randomisation_test([0.5, 0.2], [0.5, 0.2]) == 1.0
    # Exact enumeration against a brute force over all patterns.
    rng = random.Random(3)
    a = [rng.random() for _ in range(9)]
    b = [x + rng.uniform(-0.2, 0.4) for x in a]
    d = [y - x for x, y in zip(a, b)]
    brute = sum(abs(sum(s * x for s, x in zip(signs, d))) >= abs(sum(d)) - 1e-12
                for signs in itertools.product((1, -1), repeat=len(d))) / 2 ** len(d)
    assert randomisation_test(a, b) == pytest.approx(brute)
    # Sampled: seeded (the same p twice), and a clear shift is significant, noise is not.
    a = [rng.random() for _ in range(60)]
    better = [x + 0.1 + rng.uniform(-0.05, 0.05) for x in a]
    noise = [x + rng.uniform(-0.05, 0.05) for x in a]
    assert randomisation_test(a, better) == randomisation_test(a, better) < 0.001
    assert randomisation_test(a, noise, seed=1) > 0.05
    # README: exact with up to 16 differing queries (equal ones do not count), else 10,000 samples, --seed 0.
    same = [0.5] * 5
    assert randomisation_test([0] * 16 + same, [1] * 16 + same) == 2 / 2**16  # every pattern: only all-same-sign hit
    sampled = randomisation_test([0] * 17, [1] * 17)
    assert sampled == randomisation_test([0] * 17, [1] * 17, seed=0) and round(sampled * 10_001, 9).is_integer()
    assert sampled != 2 / 2**17  # not enumerated: (hits + 1) / (10,000 + 1)


def test_id_key_and_repeats(tmp_path: Path) -> None:
    from synth import LogBuilder, doc

    b = LogBuilder().session_start()
    b.start(1, "Dense", "q", metadata={"qid": "Q"})
    b.end(1, "Dense", [doc("c1", "x", source="a.md"), doc("c2", "y", source="a.md"), doc("c3", "z"), doc("c4", "w", source="b.md")], 1.0)
    b.start(2, "Dense", "q", metadata={"qid": "Q"}).end(2, "Dense", [], 1.0)  # asked again: the first run counts
    b.start(3, "Dense", "other").end(3, "Dense", [], 1.0)
    log = b.session_end().write(tmp_path / "l.jsonl")
    (tmp_path / "q.txt").write_text("Q 0 a.md 1\nQ 0 b.md 1\n")
    result = collect(log, load_labels(tmp_path / "q.txt"), [Metric("precision", 3), Metric("map")], id_key="source")
    r = result.retrievers["Dense"]
    # a.md, a.md (dropped), c3 (no source: its own id), b.md -> a.md, c3, b.md
    assert list(r.scores["Q"].values) == [pytest.approx(2 / 3), pytest.approx((1 + 2 / 3) / 2)]
    assert (r.repeats, r.unlabelled, list(r.unlabelled_queries), result.missing_ids) == (1, 1, ["other"], 1)


def test_run_to_qid_prefers_metadata() -> None:
    from rtrace.core.read.labels import Labels

    labels = Labels(qrels={"1": {"d": 1}, "2": {"d": 1}}, texts={"2": "hello"}, by_text={"hello": "2"})
    run = Run("r", "retriever", "Dense", None, None, start={"query": "hello", "metadata": {"qid": 1}})
    assert labels.match(run.query, run.metadata) == "1"
    assert labels.match("hello", {"qid": "nope"}) == "2"
