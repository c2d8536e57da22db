"""Running framework programs plainly and under `rtrace run`, and reading the runs they logged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import ROOT, read_events

ENV = {k: v for k, v in os.environ.items()
       if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_", "HAYSTACK_"))}
PROGRAMS = ROOT / "tests" / "frameworks"


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**ENV, **(env or {})})


def traced(program: str | Path, cwd: Path, *args: str, options: tuple[str, ...] = (),
           env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """`rtrace run -q -o LOG program args...`: the process and the log's events."""
    log = cwd / "log.jsonl"
    if log.exists():
        log.unlink()
    r = run(["-m", "rtrace.cli", "run", "-q", "-o", str(log), *options, str(program), *args], cwd, env)
    return r, read_events(log) if log.exists() else []


@dataclass
class LoggedRun:
    start: dict[str, Any]
    end: dict[str, Any] | None = None
    children: list[LoggedRun] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.start["event"].removesuffix("_start")

    @property
    def stage(self) -> str | None:
        return (self.start.get("metadata") or {}).get("rtrace_stage")

    @property
    def docs(self) -> list[dict[str, Any]]:
        return (self.end or {}).get("documents") or []


def logged_runs(events: list[dict[str, Any]]) -> list[LoggedRun]:
    """Runs in start order (their start and end events)."""
    runs: dict[str, LoggedRun] = {}
    for ev in events:
        name = ev.get("event", "")
        if name.endswith("_start") and name != "session_start":
            runs[ev["run_id"]] = LoggedRun(ev)
        elif name.endswith(("_end", "_error")) and ev.get("run_id") in runs:
            runs[ev["run_id"]].end = ev
    return list(runs.values())


def report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def check_commands(log: Path, cwd: Path, rerank_name: str, retriever_name: str) -> None:
    """show, filter, stats, diff, replay, eval and export read a framework's log as any other."""
    rtrace = ["-m", "rtrace.cli"]
    show = run([*rtrace, "show", str(log), "--name", rerank_name, "--runs"], cwd)
    assert show.returncode == 0 and rerank_name in show.stdout, show.stderr
    filtered = run([*rtrace, "filter", str(log), "--meta", "rtrace_stage=rerank", "--runs"], cwd)
    assert filtered.returncode == 0, filtered.stderr
    events = [json.loads(line) for line in filtered.stdout.splitlines()]
    assert {e["name"] for e in events if not e["event"].startswith("session_")} == {rerank_name}
    stats = run([*rtrace, "stats", str(log), "--format", "json"], cwd)
    assert stats.returncode == 0 and retriever_name in stats.stdout, stats.stderr
    diff = run([*rtrace, "diff", str(log), str(log), "--format", "json"], cwd)
    assert diff.returncode == 0, diff.stderr
    replay = run([*rtrace, "replay", str(log), "--no-wait"], cwd)
    assert replay.returncode == 0 and f"✓ {retriever_name}" in replay.stdout, replay.stderr
    # Label each retriever run's top document relevant: every labelled query is then graded
    # with recall@10 = 1 for that retriever (its other documents are unjudged).
    events = [json.loads(line) for line in log.read_text().splitlines()]
    queries = {e["run_id"]: e["query"] for e in events if e["event"] == "retriever_start" and e["name"] == retriever_name}
    labels: dict[str, str] = {}  # a query asked twice is graded by its first run, as eval does
    for e in events:
        if e["event"] == "retriever_end" and e["run_id"] in queries and e["documents"]:
            labels.setdefault(queries[e["run_id"]], e["documents"][0]["id"])
    assert labels
    (cwd / "labels.jsonl").write_text("".join(json.dumps({"query": q, "doc_id": d, "relevance": 1}) + "\n"
                                             for q, d in labels.items()))
    graded = run([*rtrace, "eval", str(log), "--qrels", "labels.jsonl", "--name", retriever_name,
                  "--format", "json"], cwd)
    assert graded.returncode == 0, graded.stderr
    (graded_retriever,) = json.loads(graded.stdout)["logs"][0]["retrievers"]
    assert graded_retriever["name"] == retriever_name and graded_retriever["evaluated"] == len(labels)
    assert graded_retriever["means"]["recall@10"] == 1.0, graded_retriever
    spans = cwd / "spans.json"
    export = run([*rtrace, "export", str(log), "-o", str(spans)], cwd)
    assert export.returncode == 0, export.stderr
    exported = json.loads(spans.read_text())
    spans_out = [s for rs in exported["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    kinds = {s["name"]: a["value"]["stringValue"] for s in spans_out for a in s["attributes"]
             if a["key"] == "openinference.span.kind"}
    assert kinds[f"retrieval {rerank_name}"] == "RERANKER" and kinds[f"retrieval {retriever_name}"] == "RETRIEVER"


BREAK_API = """
import importlib.abc, sys
class _Break(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != {module!r}:
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                run = spec.loader.exec_module
                def exec_module(module, run=run):
                    run(module)
                    obj = module
                    for part in filter(None, {owner!r}.split(".")):
                        obj = getattr(obj, part)
                    delattr(obj, {attr!r})
                spec.loader.exec_module = exec_module
                return spec
sys.meta_path.insert(0, _Break())
"""


def break_api(tmp_path: Path, module: str, owner: str, attr: str) -> dict[str, str]:
    """An environment whose Python sees ``module``'s ``owner.attr`` missing (another framework version)."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BREAK_API.format(module=module, owner=owner, attr=attr))
    return {"PYTHONPATH": str(site)}
