"""Exact renderings of logs written by running the samples (ids, times and durations normalised).

Regenerate after an intended rendering change with: RTRACE_UPDATE_GOLDEN=1 pytest tests/test_sample_renderings.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from rendering import render

GOLDEN = Path(__file__).parent / "golden"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_"))}


def normalise(raw: Path, out: Path) -> Path:
    """Same structure and content; ids by order of appearance, fixed times and durations."""
    ids: dict[str, str] = {}

    def fix(value: Any) -> Any:
        if isinstance(value, str):
            return UUID.sub(lambda m: ids.setdefault(m.group(), f"00000000-0000-7000-8000-{len(ids) + 1:012d}"), value)
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value

    lines = []
    started: dict[str, int] = {}
    for i, line in enumerate(raw.read_text().splitlines()):
        ev = fix(json.loads(line))
        ev["ts"] = f"2026-01-01T00:00:{i // 1000:02d}.{i % 1000:03d}000Z"  # a line a millisecond
        if str(ev.get("event", "")).endswith("_start") and isinstance(ev.get("run_id"), str):
            started[ev["run_id"]] = i
        for key in ("duration_ms", "slept_s", "next_sleep_s"):
            if isinstance(ev.get(key), (int, float)):
                ev[key] = 1.5
        if isinstance(ev.get("duration_ms"), float) and ev.get("run_id") in started:
            ev["duration_ms"] = float(i - started[ev["run_id"]])  # as long as its lines span: timelines add up
        for key in ("pid",):
            if key in ev:
                ev[key] = 1000
        if "argv" in ev:
            ev["argv"] = [Path(ev["argv"][0]).name, *ev["argv"][1:]]
        lines.append(json.dumps(ev, ensure_ascii=False))
    out.write_text("\n".join(lines) + "\n")
    return out


def run_sample(sample: str, tmp_path: Path) -> Path:
    log = tmp_path / "raw.jsonl"
    r = subprocess.run([sys.executable, "-m", "rtrace.cli", "run", "-q", "-o", str(log), str(ROOT / "samples" / sample)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    return normalise(log, tmp_path / "log.jsonl")


SAMPLES = ["bm25.py", "hybrid.py", "flaky.py", "langchain_pipeline.py", "llamaindex_pipeline.py", "haystack_pipeline.py"]
WIDTHS = [40, 60, 100, 160]
_logs: dict[str, Path] = {}


@pytest.fixture(scope="module")
def sample_log(tmp_path_factory: pytest.TempPathFactory) -> Any:
    def get(sample: str) -> Path:  # each sample runs once for all its renderings
        if sample not in _logs:
            _logs[sample] = run_sample(sample, tmp_path_factory.mktemp(Path(sample).stem))
        return _logs[sample]
    return get


def check_golden(text: str, name: str, width: int) -> None:
    golden = GOLDEN / name
    if os.environ.get("RTRACE_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert all(len(line) <= width for line in text.splitlines())


@pytest.mark.parametrize("sample", SAMPLES)
@pytest.mark.parametrize("width", WIDTHS)
def test_sample_rendering_is_exact(sample: str, width: int, sample_log: Any) -> None:
    check_golden(render(sample_log(sample), width), f"{Path(sample).stem}-{width}.txt", width)


@pytest.mark.parametrize("sample", ["hybrid.py", "flaky.py", "langchain_pipeline.py"])
@pytest.mark.parametrize("fmt", ["table", "timeline"])
@pytest.mark.parametrize("width", WIDTHS)
def test_sample_table_and_timeline_are_exact(sample: str, fmt: str, width: int, sample_log: Any) -> None:
    check_golden(render(sample_log(sample), width, fmt), f"{Path(sample).stem}-{fmt}-{width}.txt", width)


@pytest.mark.parametrize("width", [60, 160])
def test_fanout_rendering(width: int, tmp_path: Path) -> None:
    # 50 concurrent traces, shown in the order they started; each one's shards run at the same time.
    log = run_sample("fanout.py", tmp_path)
    lines = render(log, width).splitlines()
    assert sum(line.startswith("✓ FanOut") for line in lines) == 50
    assert sum(line.startswith(("├── ✓ Shard", "└── ✓ Shard")) for line in lines) == 150
    assert all(len(line) <= width for line in lines)
    assert lines[-2].startswith("━━ exit 0")
    queries = [line.split("“")[1].split("”")[0] for line in lines if line.startswith("✓ FanOut")]
    topics = ["bm25", "vector", "rerank", "chunk", "retry", "filter", "cache", "fusion", "ndcg", "index"]
    assert queries == [f"{topics[i % 10]} query {i}" for i in range(50)]  # start order, not finish order


def test_fanout_timeline_draws_concurrent_runs_as_overlapping_bars(tmp_path: Path) -> None:
    # Each FanOut gathers its three shards: all start before any ends, so their bars overlap.
    raw = tmp_path / "raw.jsonl"
    r = subprocess.run([sys.executable, "-m", "rtrace.cli", "run", "-q", "-o", str(raw), str(ROOT / "samples" / "fanout.py")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    text = render(raw, 100, "timeline")
    blocks = [b for b in text.split("\n\n") if "── trace" in b]
    assert len(blocks) == 50
    for block in blocks:
        rows = block.splitlines()[-4:]
        assert rows[0].startswith("✓ FanOut") and all(row.startswith("✓   Shard") for row in rows[1:])
        spans = [(row.index("█"), row.rindex("█")) for row in rows]
        fan_out, shards = spans[0], spans[1:]
        assert max(a for a, _ in shards) <= min(b for _, b in shards)  # one moment when all three ran
        # inside their parent's bar (a cell of slack: wall-clock starts, monotonic durations)
        assert all(fan_out[0] <= a and b <= fan_out[1] + 1 for a, b in shards)
        assert all(len(row) <= 100 for row in rows)
