"""``rtrace stats`` counts runs without building run trees (``core/read/tally.py``): its output must not change.

Three proofs, with and without run filters: (1) on generated logs (nested runs of every kind, stages, LangChain retry
attempts, retries, texts, unknown events, sessions ending with traces open, odd values,
short-id collisions, hostile events that make it hand over to the tree builder), the
tally gives exactly what the tree-building path gives (every number, the slowest runs,
the builder's warnings); (2) the command prints the same bytes as the tree-building path
(forced in a subprocess by making every filter look like one that names runs by short id,
the one kind the tally leaves to built trees); (3) goldens of the command's output taken
before the tally existed (``tests/golden/stats/``).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rtrace.cli.commands.stats import matched_runs, stats_events
from rtrace.core.read.filters import STATUSES, RunFilter
from rtrace.core.read.pipeline import Source, read_events
from rtrace.core.read.reader import ReadStats
from rtrace.core.read.stats import StatsCollector
from rtrace.core.read.tally import tally
from rtrace.core.read.trees import TreeBuilder

GOLDEN = Path(__file__).parent / "golden" / "stats"
BENCH = Path(__file__).parent / "bench"
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_"))},
       "COLUMNS": "120"}
VARIANTS = {"table": [], "json": ["--format", "json"], "csv": ["--format", "csv"], "tag": ["--by", "tag"],
            "session": ["--by", "session", "--format", "json"], "meta": ["--by", "meta.k", "--format", "csv"],
            "leaves": ["--slowest-of", "leaves", "--slowest", "20", "--format", "json"], "noslow": ["--slowest", "0"]}


def _ts(rng: random.Random, step: int) -> Any:
    if rng.random() < 0.03:
        return rng.choice([None, 5, "2026-11-24T10:0x:01.000000Z", "yesterday"])
    minute, rest = divmod(step * rng.choice([137, 911, 4099]), 60_000_000)  # µs: some traces cross a minute
    return f"2026-11-24T10:{minute % 60:02d}:{rest // 1_000_000:02d}.{rest % 1_000_000:06d}Z"


def _run_id(rng: random.Random, t: int, i: int) -> str:
    # Heads differ, tails often share their last 7 (or 8) characters: short ids have to grow.
    tail = rng.choice("ab") + rng.choice(["0000000", "0000001", "1234567", f"{t * 10 + i:07x}", f"{rng.randrange(16**7):07x}"])
    return f"{t:08x}-{i:04x}-7000-8000-{rng.randrange(16**4):04x}{tail}"


def rich_log(seed: int, traces: int, counts: bool = False) -> list[dict[str, Any]]:
    """Interleaved traces of every shape ``stats`` counts, well formed (the builder has nothing to warn about).

    ``counts``: ends record ``document_count`` as rtrace writes it (just before the documents, which
    end the line), and also odd ones: wrong (a hand-edited line), unusable, elsewhere in the line, a
    nested key; and some ends have keys after their documents.
    """
    rng = random.Random(seed)
    streams: list[list[dict[str, Any]]] = []
    step = 0
    for t in range(traces):
        sid = rng.choice(["s1", "s1", "s2"])
        runs: list[tuple[str, str | None, str, str]] = []  # id, parent, kind, name
        evs: list[dict[str, Any]] = []
        for i in range(rng.randrange(1, 6)):
            rid = _run_id(rng, t, i)
            parent = runs[rng.randrange(len(runs))][0] if runs else None
            kind = rng.choice(["retriever", "retriever", "retriever", "chain", "chain", "tool", "llm"])
            name: Any = rng.choice(["Dense", "Sparse", "Hybrid", "Store.search", "Embed"])
            if rng.random() < 0.03:
                name = rng.choice([None, 7, ["x"]])
            elif kind == "retriever" and rng.random() < 0.03:
                name = "Embed (search)"  # as a stage's row is named: the same group as the search stages of Embed
            meta: dict[str, Any] = {"k": rng.choice([1, "a", None])} if rng.random() < 0.7 else {}
            if kind != "retriever" and rng.random() < 0.4:
                meta["rtrace_stage"] = rng.choice(["search", "embedding"])
            tags: Any = rng.sample(["prod", "vector", "bm25"], rng.randrange(3))
            if rng.random() < 0.03:
                tags = rng.choice(["prod", None, [1, "x"]])
            step += 1
            start = {"event": f"{kind}_start", "run_id": rid, "parent_run_id": parent, "name": name,
                     "session_id": sid if rng.random() < 0.97 else None, "ts": _ts(rng, step), "tags": tags,
                     "metadata": meta if rng.random() < 0.97 else "odd", "query": rng.choice(["q", "q2", None, 3])}
            if parent is None:
                start["trace_id"] = rng.choice([rid, rid, rid, "other-trace-0000000", None, 4])
            if step % 5:  # what it asked of its store (stats --by k); not drawn from rng: the goldens' logs keep their runs
                start["k"] = [2, 4, "4", True][step % 4]
            evs.append(start)
            runs.append((rid, parent, kind, name))
            for _ in range(rng.choice([0, 0, 0, 1, 2])):
                evs.append({"event": rng.choice(["retry", "retry", "text", "custom_event", "odd_event"]), "run_id": rid,
                            "session_id": sid})
            if parent is not None and isinstance(name, str) and rng.random() < 0.15:
                # A LangChain with_retry: the attempt fails, a sibling of the same name and kind retries it.
                step += 1
                evs.append({"event": f"{kind}_error", "run_id": rid, "duration_ms": round(rng.uniform(0, 50), 3),
                            "ts": _ts(rng, step), "error": {"type": "E", "message": "m"}})
                again = _run_id(rng, t, 100 + i)
                step += 1
                evs.append({"event": f"{kind}_start", "run_id": again, "parent_run_id": parent, "name": name,
                            "session_id": sid, "ts": _ts(rng, step), "tags": [f"retry:attempt:{rng.choice([2, 3, 1])}"],
                            "metadata": meta})
                runs.append((again, parent, kind, name))
                runs[-2] = (rid, parent, kind, "")  # ended already
        ends = []
        for rid, _parent, kind, name in runs:
            if name == "":
                continue
            if rng.random() < 0.08:
                continue  # never ends
            end_kind = kind if rng.random() < 0.95 else rng.choice(["retriever", "chain"])
            ev: dict[str, Any] = {"event": f"{end_kind}_{rng.choice(['end', 'end', 'end', 'error'])}", "run_id": rid,
                                  "duration_ms": rng.choice([round(rng.uniform(0, 3000), 3), rng.randrange(100), 0, None,
                                                             True, "12"])}
            if ev["event"].endswith("_end"):
                docs = rng.choice([[], [{"id": "d", "page_content": "x"}] * rng.randrange(1, 4),
                                   [{"id": "d"}, "not a dict", 3], "odd", None])
                if counts and rng.random() < 0.9:
                    ev.update(_document_count(rng, docs))
                ev["documents"] = docs
            ends.append(ev)
        rng.shuffle(ends)  # a parent may end before its children
        for ev in ends:
            step += 1
            ev["ts"] = _ts(rng, step)
            if counts and "documents" in ev and rng.random() < 0.85:  # last, as rtrace writes them
                for key in ("document_count", "documents"):
                    if key in ev:
                        ev[key] = ev.pop(key)
        streams.append(evs + ends)
    merged: list[dict[str, Any]] = [{"event": "session_start", "session_id": "s1"}, {"event": "session_start", "session_id": "s2"}]
    cut = rng.random() < 0.3
    while any(streams):
        s = rng.choice([s for s in streams if s])
        merged.append(s.pop(0))
        if cut and rng.random() < 0.01:  # a session ends with traces open (they end there, as incomplete)
            merged.append({"event": "session_end", "session_id": rng.choice(["s1", "s2"])})
    merged.append({"event": "session_end", "session_id": "s1"})
    return merged


def _document_count(rng: random.Random, docs: Any) -> dict[str, Any]:
    """What an end may say before its documents about how many it holds."""
    n = len(docs) if isinstance(docs, list) else 0
    return rng.choice([
        {"document_count": n}, {"document_count": n}, {"document_count": n},  # as rtrace writes it
        {"document_count": n + rng.randrange(1, 4)},  # documents dropped or trimmed by hand
        {"document_count": rng.choice([-1, "2", True, 2.0, None, [1]])},  # unusable: the documents are counted
        {"nested": {"document_count": 7}},  # not the event's
        {"document_count": n + 1, "pad": "x" * 50},  # not just before the documents: the line is parsed whole
    ])


HOSTILE = st.fixed_dictionaries({
    "event": st.sampled_from(["retriever_start", "retriever_end", "retriever_error", "retry", "text", "chain_start",
                              "session_start", "session_end", "odd_event", "_start", "session_error", 3]),
    "run_id": st.sampled_from(["a", "b", None, 5]),
    "parent_run_id": st.sampled_from([None, "a", "b", 7]),
    "session_id": st.sampled_from(["s1", "s2"]),
})


def write(path: Path, events: list[dict[str, Any]]) -> str:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return str(path)


TALLIED: list[bool] = []  # per tally: whether it counted everything itself (no hand-over to the builder)


def stats_of(paths: list[str], by: str, slowest: int, of: str, *, trees: bool,
             run_filter: RunFilter | None = None) -> tuple[Any, ...]:
    """Everything ``rtrace stats`` prints, from the tally or from built trees (the reference)."""
    collector, stats, builder = StatsCollector(by, slowest, of), ReadStats(), TreeBuilder()
    run_filter = run_filter or RunFilter()
    if trees:  # every line parsed whole
        collector.add_all(matched_runs(Source(paths), run_filter, stats, builder))
    else:  # as the command reads: documents unparsed where a line counts them
        TALLIED.append(tally(stats_events(Source(paths), run_filter, stats), collector, builder, run_filter))
    return (collector.rows(bins=8), collector.total.as_dict(), collector.slowest, builder.warnings,
            list(builder.sessions), stats.skipped, stats.warnings)


BYS = st.sampled_from(["name", "tag", "session", "meta.k", "meta.rtrace_stage", "k"])

SHORT_IDS = ["0000000", "a0000000", "b0000000", "B1234567", "1234567", "00000003", "00000003-0001", "e0000000",
             "other-trace", "0000001", "b0000001", "ab0000001"]
# Every run filter ``rtrace stats`` takes, with values
# that the rich logs match some of the time (their names, tags, metadata, queries, documents, times,
# sessions) and odd ones: each kind alone (``KIND_EXAMPLES``), none, one or two at once (``FILTERS``).
FILTER_KINDS: dict[str, Any] = {
    "names": st.lists(st.sampled_from(["Dense", "S*", "*search*", "Embed (search)", "7", "None", "['x']"]),
                      min_size=1, max_size=2),
    "tags": st.lists(st.sampled_from(["prod", "vector", "bm25", "1", "x", "retry:attempt:2"]), min_size=1, max_size=2),
    "meta": st.lists(st.tuples(st.sampled_from(["k", "rtrace_stage"]), st.sampled_from(["1", "a", "None", "search", "embedding"])),
                     min_size=1, max_size=2),
    "status": st.sampled_from(STATUSES),
    "retried": st.just(True),
    "min_ms": st.sampled_from([0.0, 12.0, 999.5, 2500.0]),
    "max_ms": st.sampled_from([0.0, 50.0, 1500.0]),
    "query": st.sampled_from(["q", "^q$", "2", "^3$", "Q2"]),
    "doc": st.sampled_from(["x", "^x$", "y"]),
    "since": st.sampled_from(["2026-11-24T10:00:00.1", "2026-11-24T10:00:00.5", "2026-11-24T10:01", "5", "z"]),
    "until": st.sampled_from(["2026-11-24T10:00:00.2", "2026-11-24T10:00:00.6", "2026-11-24T09", "5", "z"]),
    "session_prefix": st.sampled_from(["s", "s1", "S2", "x"]),
    # Short ids (the last 7 characters, more when taken: many ids here end alike) and id prefixes.
    "run_prefix": st.sampled_from(SHORT_IDS),
    "trace_prefix": st.sampled_from(SHORT_IDS),
}
FILTERS = (st.lists(st.sampled_from(sorted(FILTER_KINDS)), max_size=2, unique=True)
           .flatmap(lambda kinds: st.fixed_dictionaries({k: FILTER_KINDS[k] for k in kinds}))
           .map(lambda kw: RunFilter(**kw)))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), traces=st.integers(1, 25), by=BYS, slowest=st.sampled_from([0, 1, 3, 50]),
       of=st.sampled_from(["roots", "leaves"]), run_filter=FILTERS)
def test_the_tally_counts_what_built_trees_count(tmp_path: Path, seed: int, traces: int, by: str, slowest: int,
                                                 of: str, run_filter: RunFilter) -> None:
    events = rich_log(seed, traces, counts=seed % 2 == 0)
    path = write(tmp_path / "log.jsonl", events)
    got = stats_of([path], by, slowest, of, trees=False, run_filter=run_filter)
    assert got == stats_of([path], by, slowest, of, trees=True, run_filter=run_filter)
    if sum(e["event"] == "session_end" for e in events) == 1:  # well formed: the tally counted it all
        assert TALLIED[-1]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), traces=st.integers(1, 12), inject=st.lists(st.tuples(st.integers(0, 80), HOSTILE), max_size=3),
       by=BYS, of=st.sampled_from(["roots", "leaves"]), run_filter=FILTERS)
def test_hostile_events_hand_over_to_the_builder_and_change_nothing(tmp_path: Path, seed: int, traces: int,
                                                                   inject: list[Any], by: str, of: str,
                                                                   run_filter: RunFilter) -> None:
    events = rich_log(seed, traces, counts=seed % 2 == 0)
    for pos, ev in inject:  # repeated ids, unknown runs, double ends, odd names: the builder takes over
        events.insert(min(pos, len(events)), ev)
    path = write(tmp_path / "log.jsonl", events)
    got = stats_of([path], by, 3, of, trees=False, run_filter=run_filter)
    assert got == stats_of([path], by, 3, of, trees=True, run_filter=run_filter)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(HOSTILE, max_size=30), by=BYS, run_filter=FILTERS)
def test_event_soup_changes_nothing(tmp_path: Path, events: list[dict[str, Any]], by: str, run_filter: RunFilter) -> None:
    path = write(tmp_path / "soup.jsonl", events)
    got = stats_of([path], by, 5, "roots", trees=False, run_filter=run_filter)
    assert got == stats_of([path], by, 5, "roots", trees=True, run_filter=run_filter)


def test_past_the_held_events_bound_the_builder_takes_over_and_nothing_changes(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import rtrace.core.read.tally as tally_module
    import rtrace.core.read.trees as trees_module

    filters = [RunFilter(), RunFilter(names=["Dense"]), RunFilter(status="incomplete"), RunFilter(retried=True),
               RunFilter(since="2026-11-24T10:00:00.5", tags=["prod"])]
    for bound in (5, 20):  # the builder evicts unfinished traces past it: the tally hands over before
        monkeypatch.setattr(trees_module, "MAX_HELD_EVENTS", bound)
        monkeypatch.setattr(tally_module, "MAX_HELD_EVENTS", bound)
        path = write(tmp_path / "log.jsonl", rich_log(bound, 60))
        for run_filter in filters:  # the runs the builder builds after the hand-over are filtered too
            got = stats_of([path], "name", 5, "roots", trees=False, run_filter=run_filter)
            assert got == stats_of([path], "name", 5, "roots", trees=True, run_filter=run_filter), run_filter
            assert any("unfinished traces shown before they ended" in w for w in got[3])
            assert not TALLIED[-1]
            if run_filter.active:
                assert 0 < got[1]["runs"] < stats_of([path], "name", 5, "roots", trees=False)[1]["runs"]


# Each filter kind on its own, a few values: well formed, with hostile events (the builder takes over
# half way), across two files.
KIND_EXAMPLES: dict[str, list[Any]] = {
    "names": [["Dense"], ["S*", "*search*"], ["Embed (search)"], ["7"]],
    "tags": [["prod"], ["vector", "bm25"]],
    "meta": [[("k", "1")], [("rtrace_stage", "search")], [("k", "None")], [("k", "a"), ("rtrace_stage", "embedding")]],
    "status": list(STATUSES),
    "retried": [True],
    "min_ms": [12.0, 999.5],
    "max_ms": [0.0, 50.0, 1500.0],
    "query": ["^q$", "2", "^3$"],
    "doc": ["x", "^x$"],
    "since": ["2026-11-24T10:00:00.3", "2026-11-24T10:00:00.7", "5"],
    "until": ["2026-11-24T10:00:00.2", "2026-11-24T10:00:00.6", "5"],
    "session_prefix": ["s1", "S2", "s"],
    "run_prefix": SHORT_IDS,
    "trace_prefix": SHORT_IDS,
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", sorted(KIND_EXAMPLES))
def test_each_filter_kind_counts_what_built_trees_count(tmp_path: Path, kind: str) -> None:
    assert set(KIND_EXAMPLES) == set(FILTER_KINDS)  # every kind the hypothesis tests draw is here too
    events = rich_log(43, 150, counts=True)
    clean = write(tmp_path / "clean.jsonl", events)
    hostile = events[:]
    hostile.insert(len(hostile) // 2, dict(hostile[len(hostile) // 3]))  # a repeated start or end: the builder takes over
    dirty = write(tmp_path / "dirty.jsonl", hostile)
    a, b = write(tmp_path / "a.jsonl", events[: len(events) // 3]), write(tmp_path / "b.jsonl", events[len(events) // 3:])
    narrowed = 0
    everything = stats_of([clean], "name", 5, "roots", trees=False)[1]["runs"]
    for value in KIND_EXAMPLES[kind]:
        run_filter = RunFilter(**{kind: value})
        for paths, by, of in (([clean], "name", "roots"), ([clean], "tag", "leaves"), ([dirty], "name", "roots"),
                              ([dirty], "session", "leaves"), ([a, b], "meta.k", "roots")):
            got = stats_of(paths, by, 5, of, trees=False, run_filter=run_filter)
            assert got == stats_of(paths, by, 5, of, trees=True, run_filter=run_filter), (value, paths, by)
            assert TALLIED[-1] == (paths != [dirty])  # well formed: counted without the builder
        clean_runs = stats_of([clean], "name", 5, "roots", trees=False, run_filter=run_filter)[1]["runs"]
        narrowed += 0 < clean_runs < everything
    assert narrowed  # the filter matched some runs and not others


def test_two_files_and_traces_spanning_them(tmp_path: Path) -> None:
    events = rich_log(3, 40)
    a = write(tmp_path / "a.jsonl", events[: len(events) // 2])
    b = write(tmp_path / "b.jsonl", events[len(events) // 2:])
    for by in ("name", "tag"):
        got = stats_of([a, b], by, 5, "leaves", trees=False)
        assert got == stats_of([a, b], by, 5, "leaves", trees=True)
    assert got[1]["runs"] > 20


def rtrace(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "rtrace.cli.app", *args], input=stdin, cwd=cwd, capture_output=True,
                          timeout=120, env=ENV)


# The real command, counting runs of built trees as it did before the tally (``selected_items`` without
# skimming: the builder's traces, ``select`` with ``runs_only``), instead of ``tally``, from every line
# parsed whole (documents too, as before lines recorded ``document_count``).
TREES = """
import sys
import rtrace.cli.commands.stats as command
from rtrace.core.read.filters import Selected, select
from rtrace.core.read.pipeline import read_events

command.stats_events = lambda source, run_filter, stats: read_events(source, stats)

def trees(events, collector, builder, run_filter):
    for item in select(builder.build(events), run_filter, runs_only=True):
        if isinstance(item, Selected):
            collector.add_all(item.matched)

command.tally = trees
from rtrace.cli.app import main
sys.argv[0] = "rtrace"
main()
"""


def rtrace_trees(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-c", TREES, *args], input=stdin, cwd=cwd, capture_output=True, timeout=120,
                          env=ENV)


def golden_logs(where: Path) -> dict[str, Path]:
    """The logs the goldens were taken on: the read benchmark's generator, the standard log, a rich log."""
    sys.path.insert(0, str(BENCH))
    try:
        from read import generate  # tests/bench/read.py
    finally:
        sys.path.remove(str(BENCH))
    from synth import standard_log

    logs = {"bench300": where / "bench300.jsonl", "standard": where / "standard.jsonl", "rich": where / "rich.jsonl"}
    generate(logs["bench300"], 300, seed=7)
    standard_log(logs["standard"])
    write(logs["rich"], rich_log(2026, 200))
    return logs


@pytest.mark.timeout(120)
def test_stats_prints_what_it_printed_before_the_tally(tmp_path: Path) -> None:
    # Goldens: ``rtrace stats`` of main before the tally, per log and variant (tests/golden/stats/).
    for log, path in golden_logs(tmp_path).items():
        for variant in ("table", "json", "leaves") if log == "bench300" else VARIANTS:
            r = rtrace("stats", path.name, *VARIANTS[variant], cwd=tmp_path)
            golden = GOLDEN / f"{log}-{variant}.txt"
            text = r.stdout + b"--- stderr\n" + r.stderr + f"--- exit {r.returncode}\n".encode()
            if os.environ.get("RTRACE_WRITE_GOLDEN"):
                golden.write_bytes(text)
            assert text == golden.read_bytes(), (log, variant)


def same(a: subprocess.CompletedProcess[bytes], b: subprocess.CompletedProcess[bytes]) -> bool:
    return (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr)


@pytest.mark.timeout(120)
def test_the_command_prints_the_same_as_the_tree_building_path(tmp_path: Path) -> None:
    path = write(tmp_path / "rich.jsonl", rich_log(41, 150, counts=True))
    for variant in ("table", "csv", "leaves"):
        a = rtrace("stats", path, *VARIANTS[variant], cwd=tmp_path)
        b = rtrace_trees("stats", path, *VARIANTS[variant], cwd=tmp_path)
        assert a.returncode == 0 and same(a, b), variant
    # From a pipe, and with damaged lines: strict (one line naming the line) and --lenient (skipped, counted).
    piped = [run("stats", "-", cwd=tmp_path, stdin=Path(path).read_bytes()) for run in (rtrace, rtrace_trees)]
    assert piped[0].returncode == 0 and same(*piped) and b"total" in piped[0].stdout
    lines = Path(path).read_bytes().splitlines(keepends=True)
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_bytes(b"".join(lines[:40]) + b'{"event": "retriever_end", "run_id": \n' + b"".join(lines[40:]))
    for args in ([], ["--lenient"], ["--name", "Dense"], ["--name", "Dense", "--lenient"]):
        a = rtrace("stats", str(damaged), *args, cwd=tmp_path)
        b = rtrace_trees("stats", str(damaged), *args, cwd=tmp_path)
        assert same(a, b)
        assert (a.returncode, a.stderr.count(b"\n")) == ((0, 1) if "--lenient" in args else (1, 1)), a.stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_filtered_stats_print_the_same_bytes_as_built_trees(tmp_path: Path, fmt: str) -> None:
    # Filtered stats count without building trees too: the same bytes, warnings and exit codes.
    events = rich_log(8, 150)
    assert sum(e["event"] == "session_end" for e in events) == 1  # well formed: the tally counts it all itself
    path = write(tmp_path / "rich.jsonl", events)
    again = next(e for e in events[200:] if e["event"].endswith("_start"))  # a repeated run id: the builder takes over
    hostile = write(tmp_path / "hostile.jsonl", events[:300] + [again] + events[300:])
    cases = [
        ["--name", "Dense", "--since", "2026-11-24T10:00:00.3"],
        ["--status", "error", "--by", "tag"],
        ["--retried", "--meta", "k=a", "--slowest-of", "leaves"],
        ["--doc", "x", "--query", "^q", "--by", "session", "--session", "S1"],
        ["--min-ms", "100", "--max-ms", "2000", "--tag", "prod", "--until", "2026-11-24T10:00:00.6"],
        ["--status", "incomplete", "--by", "meta.rtrace_stage", "--slowest", "0"],
        ["--trace", "E0000000", "--by", "tag"],  # the short id of a trace id many roots record
        ["--trace", "41b0000000"],  # short ids grow when ids end alike
        ["--run", "88b0000000", "--slowest-of", "leaves"],
        ["--run", "00000004"],  # an id prefix
        ["--name", "Nothing*"],  # no run matches: one line on stderr, exit 1 (every format)
    ]
    mine = cases[:-1][["table", "json", "csv"].index(fmt)::3]  # a third of the combinations per format
    for log, chosen in ((path, mine + [cases[-1]]), (hostile, mine[:2])):
        for args in chosen:
            a = rtrace("stats", log, "--format", fmt, *args, cwd=tmp_path)
            b = rtrace_trees("stats", log, "--format", fmt, *args, cwd=tmp_path)
            assert same(a, b), (log, args, a.stderr)
            if args == ["--name", "Nothing*"]:
                assert a.returncode == 1 and a.stderr.endswith(b"rtrace: no run matches the filters in " + log.encode() + b"\n")
            else:
                assert a.returncode == 0 and len(a.stdout) > 50, (args, a.stderr)
        assert (b"repeated run ids" in a.stderr) == (log == hostile)  # the builder's warnings, in both
    if fmt != "table":
        return
    # A bad regular expression: one line and a non-zero exit, before anything is read.
    a = rtrace("stats", path, "--format", fmt, "--query", "(", cwd=tmp_path)
    assert same(a, rtrace_trees("stats", path, "--format", fmt, "--query", "(", cwd=tmp_path))
    assert a.returncode != 0 and a.stderr.count(b"\n") == 1 and a.stderr.startswith(b"rtrace: error: ")


@pytest.mark.timeout(300)
def test_filtered_stats_hold_unfinished_traces_within_the_bound(tmp_path: Path) -> None:
    # As unfiltered stats (test_hostile_logs): 150,000 runs that never end, under a 400 MB address-space
    # cap; the tally hands over at the builder's bound and the builder's runs are filtered (every other one).
    from test_hostile_logs import unfinished_log

    log = unfinished_log(tmp_path / "runs.jsonl", 150_000, "runs")
    code = ("import resource, sys, runpy; resource.setrlimit(resource.RLIMIT_AS, (400 << 20, 400 << 20)); "
            "sys.argv = ['rtrace', *sys.argv[1:]]; runpy.run_module('rtrace.cli', run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", code, "stats", "--query", "[02468]$", "--tag", "t", "--format", "json",
                        str(log)], cwd=tmp_path, capture_output=True, timeout=280, env=ENV)
    err = r.stderr.decode()
    assert r.returncode == 0 and "Traceback" not in err, err[-500:]
    assert err.endswith("unfinished traces shown before they ended: more than 50,000 events of unfinished traces is "
                        "all rtrace holds (their later events are shown on their own)\n"), err[-500:]
    total = orjson.loads(r.stdout)["total"]
    assert (total["runs"], total["incomplete"]) == (75_000, 75_000)
