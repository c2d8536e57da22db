"""``rtrace filter`` skips traces that cannot match before building them; what it prints must not change."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rtrace.core.read.filters import RunFilter, event_lines
from rtrace.core.read.pipeline import Source, selected_items
from rtrace.core.read.reader import ReadStats
from rtrace.core.read.trees import Session, TreeBuilder

FILTERS = [RunFilter(status="error"), RunFilter(status="incomplete"), RunFilter(retried=True),
           RunFilter(status="error", names=["B*"]), RunFilter(status="error", retried=True),
           RunFilter(status="incomplete", names=["A"]), RunFilter(status="incomplete", retried=True)]


def output(paths: list[str], rf: RunFilter, *, skim: bool, runs_only: bool = False,
           last: int | None = None) -> tuple[list[Any], dict[str, int]]:
    """What ``rtrace filter`` writes (lines, session by session), and the builder's warnings."""
    stats, builder = ReadStats(), TreeBuilder()
    out: list[Any] = []
    for item in selected_items(Source(paths), rf, runs_only, last, stats, builder, documents=False, skim_traces=skim):
        if isinstance(item, Session):
            out.append(("session", item.session_id, item.end is not None))
        else:
            out.append(list(event_lines(item)))
    return out, builder.warnings


def write(path: Path, events: list[dict[str, Any]]) -> str:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return str(path)


def well_formed(rng: random.Random, traces: int) -> list[dict[str, Any]]:
    """Interleaved traces of nested runs, some failing or retried, some never finishing."""
    streams = []
    for t in range(traces):
        runs = [(f"t{t}r0", None)]
        for i in range(1, rng.randrange(1, 5)):
            runs.append((f"t{t}r{i}", runs[rng.randrange(len(runs))][0]))
        evs: list[dict[str, Any]] = []
        for rid, parent in runs:
            evs.append({"event": rng.choice(["retriever_start", "chain_start"]), "run_id": rid,
                        "parent_run_id": parent, "name": rng.choice(["A", "B"]), "session_id": "s"})
            if rng.random() < 0.2:
                evs.append({"event": "retry", "run_id": rid, "attempt": 1})
        ends = [{"event": rng.choice(["retriever_end", "retriever_end", "retriever_error", "chain_error"]),
                 "run_id": rid, "parent_run_id": parent} for rid, parent in runs]
        rng.shuffle(ends)  # a parent may end before its children
        if rng.random() < 0.1:
            ends.pop()  # a run that never ends
        streams.append(evs + ends)
    merged = [{"event": "session_start", "session_id": "s"}]
    while any(streams):
        s = rng.choice([s for s in streams if s])
        merged.append(s.pop(0))
    merged.append({"event": "session_end", "session_id": "s"})
    return merged


HOSTILE = st.fixed_dictionaries({
    "event": st.sampled_from(["retriever_start", "retriever_end", "retriever_error", "retry", "text",
                              "chain_start", "session_start", "session_end", "odd_event", "_start", 3,
                              "chain_error", "x_error", "_error", "session_error", "error", "retriever_error_", None]),
    "run_id": st.sampled_from(["t0r0", "t0r1", "t1r0", "t2r2", "x", None, 5]),
    "parent_run_id": st.sampled_from([None, "t0r0", "t1r1", "x", "t0r1", 7]),
    "session_id": st.sampled_from(["s", "s2"]),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), traces=st.integers(1, 8), inject=st.lists(st.tuples(st.integers(0, 60), HOSTILE), max_size=3),
       rf=st.sampled_from(FILTERS), runs_only=st.booleans(), last=st.sampled_from([None, 1, 2]))
def test_skimming_changes_nothing_filter_prints(tmp_path: Path, seed: int, traces: int, inject: list[Any],
                                                rf: RunFilter, runs_only: bool, last: int | None) -> None:
    events = well_formed(random.Random(seed), traces)
    for pos, ev in inject:  # hostile events: repeated ids, unknown runs, double ends, odd names
        events.insert(min(pos, len(events)), ev)
    path = write(tmp_path / "log.jsonl", events)
    assert output([path], rf, skim=True, runs_only=runs_only, last=last) == \
        output([path], rf, skim=False, runs_only=runs_only, last=last)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(HOSTILE, max_size=30), rf=st.sampled_from(FILTERS))
def test_skimming_random_event_soup_changes_nothing(tmp_path: Path, events: list[dict[str, Any]], rf: RunFilter) -> None:
    path = write(tmp_path / "soup.jsonl", events)
    assert output([path], rf, skim=True) == output([path], rf, skim=False)


def test_two_files_and_traces_spanning_them(tmp_path: Path) -> None:
    events = well_formed(random.Random(3), 30)
    a = write(tmp_path / "a.jsonl", events[: len(events) // 2])
    b = write(tmp_path / "b.jsonl", events[len(events) // 2:])
    for rf in FILTERS:
        got = output([a, b], rf, skim=True)
        assert got == output([a, b], rf, skim=False)
    assert got[0], "the log has matching traces"


def test_filter_status_error_prints_every_line_of_failed_traces_and_nothing_else(tmp_path: Path) -> None:
    events = well_formed(random.Random(7), 200)
    path = write(tmp_path / "log.jsonl", events)
    failed = {e["run_id"].split("r")[0] for e in events if str(e.get("event")).endswith("_error")}
    r = subprocess.run([sys.executable, "-m", "rtrace.cli.app", "filter", "--status", "error", path],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert failed and {e["run_id"].split("r")[0] for e in lines if "run_id" in e} == failed
    want = [e for e in events if e.get("run_id", "").split("r")[0] in failed]
    # Each trace's lines in log order; traces in the order they finished.
    assert sorted(orjson.dumps(e) for e in lines if "run_id" in e) == sorted(orjson.dumps(e) for e in want)
    for t in failed:
        assert [e for e in lines if e.get("run_id", "").split("r")[0] == t] == [e for e in want if e["run_id"].split("r")[0] == t]


@pytest.mark.timeout(60)
def test_a_malformed_line_inside_a_skipped_trace_is_still_an_error(tmp_path: Path) -> None:
    events = well_formed(random.Random(5), 5)
    path = tmp_path / "bad.jsonl"
    lines = [orjson.dumps(e) for e in events]
    lines.insert(3, b'{"event": "retriever_start", "run_id": ')
    path.write_bytes(b"\n".join(lines) + b"\n")
    r = subprocess.run([sys.executable, "-m", "rtrace.cli.app", "filter", "--status", "error", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("rtrace: error:") and ":4" in r.stderr


def test_skim_hands_over_past_its_bound_and_still_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rtrace.core.read.skim as skim_module

    monkeypatch.setattr(skim_module, "MAX_HELD_EVENTS", 10)
    events = well_formed(random.Random(11), 40)
    path = write(tmp_path / "log.jsonl", events)
    for rf in FILTERS:
        assert output([path], rf, skim=True) == output([path], rf, skim=False)
    # Never-ending traces: past the bound, skim holds nothing back (its memory stays bounded).
    from rtrace.core.read.reader import Event

    consumed = 0

    def stream() -> Any:
        nonlocal consumed
        for i in range(100):
            consumed += 1
            yield Event({"event": "retriever_start", "run_id": f"r{i}", "parent_run_id": None}, "x", i + 1, b"{}\n")

    out = skim_module.skim(stream(), lambda ev: False)
    next(out)
    assert consumed <= 12


def sessions_ending_midway(rng: random.Random, traces: int) -> list[dict[str, Any]]:
    """Well-formed traces of three sessions (a run may be another session's: a child process nested
    under its parent's run), each session's session_end anywhere: some runs go on after it, as a
    daemon thread's do after its program exits, and some sessions end twice."""
    events = well_formed(rng, traces)[1:-1]
    for ev in events:
        if ev["event"].endswith("_start"):
            ev["session_id"] = rng.choice(["s1", "s1", "s2", "s3"]) if rng.random() < 0.3 else f"s{1 + int(ev['run_id'][1:].split('r')[0]) % 3}"
    for sid in ("s1", "s2", "s3"):
        for _ in range(rng.randrange(1, 3)):
            events.insert(rng.randrange(len(events) + 1), {"event": "session_end", "session_id": sid})
        events.insert(0, {"event": "session_start", "session_id": sid})
    return events


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), traces=st.integers(2, 12), rf=st.sampled_from(FILTERS), runs_only=st.booleans())
def test_skimming_sessions_that_end_while_their_runs_go_on_changes_nothing(tmp_path: Path, seed: int, traces: int,
                                                                           rf: RunFilter, runs_only: bool) -> None:
    # At a session_end the builder ends that session's open traces; later events of their runs start
    # traces of their own, in the order the builder meets them, which skim must not change.
    path = write(tmp_path / "log.jsonl", sessions_ending_midway(random.Random(seed), traces))
    assert output([path], rf, skim=True, runs_only=runs_only) == output([path], rf, skim=False, runs_only=runs_only)
