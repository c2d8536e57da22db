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
from rich.console import Console
from rtrace.cli.render import tree as render
from rtrace.core.read.filters import RunFilter, select
from rtrace.core.read.reader import read_lines
from rtrace.core.read.trees import Session, TreeBuilder

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
    for i, line in enumerate(raw.read_text().splitlines()):
        ev = fix(json.loads(line))
        ev["ts"] = f"2026-01-01T00:00:{i % 60:02d}.000000Z"
        for key in ("duration_ms", "slept_s", "next_sleep_s"):
            if isinstance(ev.get(key), (int, float)):
                ev[key] = 1.5
        for key in ("pid",):
            if key in ev:
                ev[key] = 1000
        if "argv" in ev:
            ev["argv"] = [Path(ev["argv"][0]).name, *ev["argv"][1:]]
        lines.append(json.dumps(ev, ensure_ascii=False))
    out.write_text("\n".join(lines) + "\n")
    return out


def render_text(log: Path, width: int) -> str:
    console = Console(record=True, width=width, color_system=None, file=open(os.devnull, "w"))
    headed: set[str] = set()
    for item in select(TreeBuilder().build(read_lines([str(log)])), RunFilter()):
        if isinstance(item, Session):
            console.print(render.session_footer(item) if item.session_id in headed else render.session_header(item))
            headed.add(item.session_id)
        else:
            console.print(render.trace_lines(item, render.ShowOptions()))
    return console.export_text()


def run_sample(sample: str, tmp_path: Path) -> Path:
    log = tmp_path / "raw.jsonl"
    r = subprocess.run([sys.executable, "-m", "rtrace.cli", "run", "-q", "-o", str(log), str(ROOT / "samples" / sample)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    return normalise(log, tmp_path / "log.jsonl")


@pytest.mark.parametrize("sample", ["bm25.py", "hybrid.py", "flaky.py", "langchain_pipeline.py",
                                    "llamaindex_pipeline.py", "haystack_pipeline.py"])
@pytest.mark.parametrize("width", [60, 160])
def test_sample_rendering_is_exact(sample: str, width: int, tmp_path: Path) -> None:
    text = render_text(run_sample(sample, tmp_path), width)
    golden = GOLDEN / f"{Path(sample).stem}-{width}.txt"
    if os.environ.get("RTRACE_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert all(len(line) <= width for line in text.splitlines())


@pytest.mark.parametrize("width", [60, 160])
def test_fanout_rendering(width: int, tmp_path: Path) -> None:
    # 50 concurrent traces finish in an order the event loop decides: check the shape, not the order.
    text = render_text(run_sample("fanout.py", tmp_path), width)
    lines = text.splitlines()
    assert sum(line.startswith("✓ FanOut") for line in lines) == 50
    assert sum(line.startswith(("├── ✓ Shard", "└── ✓ Shard")) for line in lines) == 150
    assert all(len(line) <= width for line in lines)
    assert lines[-2].startswith("━━ exit 0")
