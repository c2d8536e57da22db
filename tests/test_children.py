"""`rtrace run` follows child Python processes: subprocess, multiprocessing spawn and fork."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import read_events

RTRACE = [sys.executable, "-m", "rtrace.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_"))}

OTHER = """
    import sys
    from rtrace.core import Document, retriever

    @retriever(name="OtherProcess")
    def lookup(query):
        return [Document("found " + query, id="o1")]

    print(lookup(sys.argv[1])[0].page_content)
"""

FAN = """
    import multiprocessing as mp
    import subprocess
    import sys
    from rtrace.core import Document, retriever

    @retriever(name="Shard")
    def shard(query):
        return [Document("shard " + query, id=query)]

    @retriever(name="PoolFanOut")
    def fan_out(query, method):
        with mp.get_context(method).Pool(2) as pool:
            return [d for docs in pool.map(shard, [f"{query}-{i}" for i in range(4)]) for d in docs]

    @retriever(name="Spawner")
    def spawner(query):
        out = subprocess.run([sys.executable, "other.py", query], capture_output=True, text=True, check=True)
        return [Document(out.stdout.strip())]

    if __name__ == "__main__":
        print(len(fan_out("spawn", "spawn")), len(fan_out("fork", "fork")), spawner("sub")[0].page_content)
"""


def _setup(tmp_path: Path) -> None:
    (tmp_path / "other.py").write_text(textwrap.dedent(OTHER))
    (tmp_path / "fan.py").write_text(textwrap.dedent(FAN))


def _starts(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["query"]: e for e in events if e["event"] == "retriever_start"}


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_children_write_to_the_same_log_under_the_run_that_started_them(tmp_path: Path, validate: Any) -> None:
    _setup(tmp_path)
    r = subprocess.run([*RTRACE, "run", "-o", "log.jsonl", "fan.py"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "4 4 found sub\n"
    events = validate(read_events(tmp_path / "log.jsonl"))
    starts = _starts(events)
    main_session = events[0]["session_id"]
    for method in ("spawn", "fork"):
        parent = starts[method]
        for i in range(4):
            child = starts[f"{method}-{i}"]
            assert child["parent_run_id"] == parent["run_id"] and child["trace_id"] == parent["run_id"]
            assert child["session_id"] != main_session  # written by the worker process itself
    spawner = next(e for e in events if e["event"] == "retriever_start" and e["name"] == "Spawner")
    other = next(e for e in events if e["event"] == "retriever_start" and e["name"] == "OtherProcess")
    assert other["parent_run_id"] == spawner["run_id"] and other["trace_id"] == spawner["run_id"]
    child_sessions = [e for e in events if e["event"] == "session_start" and e["session_id"] != main_session]
    assert child_sessions and all(e.get("parent_run_id") or e.get("parent_session_id") for e in child_sessions)
    assert "12 runs in 3 traces" in r.stderr  # the summary counts the children's runs

    shown = subprocess.run([*RTRACE, "show", "log.jsonl", "--no-docs"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=60, env=ENV).stdout
    assert shown.count("━━ session") == 1  # child sessions are not separate headers
    assert "└── ✓ OtherProcess" in shown and "├── ✓ Shard" in shown


def test_no_children_turns_it_off(tmp_path: Path) -> None:
    _setup(tmp_path)
    r = subprocess.run([*RTRACE, "run", "-q", "--no-children", "-o", "log.jsonl", "fan.py"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    events = read_events(tmp_path / "log.jsonl")
    names = {e["name"] for e in events if e["event"] == "retriever_start"}
    assert "OtherProcess" not in names  # fresh interpreters are not followed...
    assert not any(str(e.get("query", "")).startswith("spawn-") for e in events)
    assert any(str(e.get("query", "")).startswith("fork-") for e in events)  # ...forked ones inherit tracing


def test_a_users_own_sitecustomize_still_runs(tmp_path: Path) -> None:
    _setup(tmp_path)
    site = tmp_path / "usersite"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import os\nos.environ['USER_SITE_RAN'] = 'yes'\n")
    (tmp_path / "check.py").write_text(
        "import subprocess, sys\n"
        "print(subprocess.run([sys.executable, '-c', 'import os; print(os.environ.get(\"USER_SITE_RAN\"))'],"
        " capture_output=True, text=True).stdout.strip())\n")
    env = {**ENV, "PYTHONPATH": str(site)}
    r = subprocess.run([*RTRACE, "run", "-q", "check.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "yes"
