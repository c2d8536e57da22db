"""`rtrace run` as a user runs it: real subprocesses, real scripts, real logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, read_events

SAMPLES = ROOT / "samples"
RTRACE = [sys.executable, "-m", "rtrace.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_"))}


def rtrace(*args: str, cwd: Path, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RTRACE, *args], cwd=cwd, capture_output=True, text=True, input=input,
                          timeout=timeout, env=ENV)


def python(*args: str, cwd: Path, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, input=input,
                          timeout=120, env=ENV)


def latest(cwd: Path) -> list[dict[str, Any]]:
    name = (cwd / ".rtrace" / "latest").read_text().strip()
    return read_events(cwd / ".rtrace" / name)


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


PROBE = """
    import json, os, sys
    print(json.dumps({"name": __name__, "argv": sys.argv, "path0": sys.path[0], "cwd": os.getcwd(),
                      "file": globals().get("__file__"), "stdin": sys.stdin.read()}))
"""


@pytest.mark.parametrize("mode", ["script", "module", "code"])
def test_the_target_sees_what_python_would_give_it(tmp_path: Path, mode: str) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write(pkg / "probe.py", PROBE)
    args = {"script": ["pkg/probe.py"], "module": ["-m", "pkg.probe"], "code": ["-c", textwrap.dedent(PROBE)]}[mode]
    expected = python(*args, "x", "--flag", "-o", "y", cwd=tmp_path, input="from stdin")
    got = rtrace("run", "-q", *args, "x", "--flag", "-o", "y", cwd=tmp_path, input="from stdin")
    assert got.returncode == expected.returncode == 0, got.stderr
    assert json.loads(got.stdout) == json.loads(expected.stdout)
    assert got.stderr == ""


@pytest.mark.parametrize(
    "source, code",
    [("import sys; sys.exit(3)", 3), ("import sys; sys.exit(0)", 0), ("import sys; sys.exit()", 0),
     ("raise SystemExit(300)", 44), ("import sys; sys.exit('fatal: no index')", 1), ("x = 1", 0)],
)
def test_exit_codes_are_the_scripts(tmp_path: Path, source: str, code: int) -> None:
    write(tmp_path / "s.py", source)
    expected = python("s.py", cwd=tmp_path)
    got = rtrace("run", "-q", "s.py", cwd=tmp_path)
    assert got.returncode == expected.returncode == code
    assert got.stderr == expected.stderr
    assert latest(tmp_path)[-1] == {**latest(tmp_path)[-1], "event": "session_end", "exit_code": code}


def test_an_uncaught_exception_prints_pythons_traceback(tmp_path: Path) -> None:
    write(tmp_path / "boom.py", """
        from rtrace.core import retriever

        @retriever
        def search(query):
            try:
                return lookup(query)
            except LookupError:
                return []

        def lookup(query):
            raise LookupError("index 'docs' not found")

        search("q")
        lookup("q")
    """)
    expected = python("boom.py", cwd=tmp_path)
    got = rtrace("run", "-q", "boom.py", cwd=tmp_path)
    assert got.returncode == expected.returncode == 1
    assert got.stderr == expected.stderr
    assert got.stderr.startswith('Traceback (most recent call last):\n  File "' + str(tmp_path / "boom.py"))
    events = latest(tmp_path)
    assert [e["event"] for e in events] == ["session_start", "retriever_start", "retriever_end", "session_end"]
    assert events[-1]["error"]["type"] == "LookupError" and events[-1]["exit_code"] == 1


def _wait_for(proc: subprocess.Popen[str], text: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert text in line, line


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_close_the_log_with_open_runs_incomplete(tmp_path: Path, sig: int, code: int) -> None:
    write(tmp_path / "slow.py", """
        import time
        from rtrace.core import retriever

        @retriever
        def slow(query):
            print("ready", flush=True)
            time.sleep(60)

        slow("takes forever")
    """)
    proc = subprocess.Popen([*RTRACE, "run", "slow.py"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    _wait_for(proc, "ready")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -sig  # killed by the signal, as python is (the shell shows `code`)
    events = latest(tmp_path)
    end = events[-1]
    assert end["event"] == "session_end" and end["exit_code"] == code
    assert end["incomplete_runs"] == [events[1]["run_id"]]
    assert "1 incomplete" in err
    # show: the incomplete trace, then the session's footer, which says what ended it
    shown = rtrace("show", "--no-pager", cwd=tmp_path).stdout.splitlines()
    trace_at = next(i for i, line in enumerate(shown) if line.startswith("… slow"))
    footer_at = next(i for i, line in enumerate(shown) if line.startswith(f"━━ exit {code}"))
    assert trace_at < footer_at
    what = "KeyboardInterrupt  " if sig == signal.SIGINT else ""
    assert shown[footer_at].endswith(f"{what}1 run left incomplete"), shown[footer_at]


def test_dash_o_dash_keeps_stdout_pure_jsonl(tmp_path: Path) -> None:
    got = rtrace("run", "-o", "-", str(SAMPLES / "bm25.py"), "vector index", cwd=tmp_path)
    assert got.returncode == 0
    events = [json.loads(line) for line in got.stdout.splitlines()]  # every line is JSON
    assert events[0]["event"] == "session_start" and events[-1]["event"] == "session_end"
    assert events[0]["argv"] == [str(SAMPLES / "bm25.py"), "vector index"]
    assert "'vector index': " in got.stderr  # the script's own output moved to stderr
    assert not (tmp_path / ".rtrace").exists()


def test_dash_o_path_appends_and_bad_paths_fail_early(tmp_path: Path) -> None:
    for _ in range(2):
        assert rtrace("run", "-q", "-o", "log.jsonl", str(SAMPLES / "bm25.py"), "x", cwd=tmp_path).returncode == 0
    events = read_events(tmp_path / "log.jsonl")
    assert sum(e["event"] == "session_start" for e in events) == 2
    bad = rtrace("run", "-o", "missing/dir/log.jsonl", str(SAMPLES / "noop.py"), cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr == "rtrace: error: cannot write missing/dir/log.jsonl: No such file or directory\n"
    for args, message in [
        (["run", "nope.py"], "rtrace: error: cannot run nope.py: no such file\n"),
        (["run", "-m", "no_such_module_xyz"], "rtrace: error: cannot run -m no_such_module_xyz: no module named 'no_such_module_xyz'\n"),
        (["run", "--meta", "novalue", "x.py"], "rtrace: error: --meta takes KEY=VALUE, not 'novalue'\n"),
        (["run", "--max-content", "-3", "x.py"], None),
    ]:
        r = rtrace(*args, cwd=tmp_path)
        assert r.returncode == 2, r
        assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1
        if message:
            assert r.stderr == message


def test_default_output_and_latest_pointer(tmp_path: Path) -> None:
    r = rtrace("run", str(SAMPLES / "flaky.py"), cwd=tmp_path)
    assert r.returncode == 0
    logs = sorted((tmp_path / ".rtrace").glob("*.jsonl"))
    assert len(logs) == 1 and (tmp_path / ".rtrace" / "latest").read_text().strip() == logs[0].name
    assert (tmp_path / ".rtrace" / ".gitignore").read_text().endswith("*\n")
    summary = r.stderr.splitlines()
    events = read_events(logs[0])
    retries = sum(e["event"] == "retry" for e in events)
    docs = sum(len(e["documents"]) for e in events if e["event"] == "retriever_end")
    assert retries >= 6 and docs == 15
    assert summary[0] == f"rtrace: 6 runs in 6 traces · 1 error · {retries} retries · {docs} documents · " + summary[0].rsplit(" · ", 1)[1]
    assert any(line.startswith("  slowest  ") and line.split()[3] == "FlakyVectorStore" for line in summary)
    assert f"  log    .rtrace/{logs[0].name}" in summary and "  see it rtrace show" in summary


def test_langchain_script_is_traced_unmodified(tmp_path: Path, validate: Any) -> None:
    got = rtrace("run", "-q", str(SAMPLES / "langchain_pipeline.py"), cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert got.stdout == python(str(SAMPLES / "langchain_pipeline.py"), cwd=tmp_path).stdout
    events = validate(latest(tmp_path))
    starts = {e["run_id"]: e for e in events if e["event"].endswith("_start") and "run_id" in e}
    retrievers = [e for e in starts.values() if e["event"] == "retriever_start"]
    assert [r["name"] for r in retrievers] == ["VectorStoreRetriever", "VectorStoreRetriever", "SourceFilterRetriever",
                                               "VectorStoreRetriever", "RerankRetriever", "VectorStoreRetriever",
                                               "KeywordReranker"]
    for r in retrievers[:2]:  # inside the chain: the chain is recorded as the parent
        assert starts[r["parent_run_id"]]["name"] == "RunnableSequence"
        assert r["trace_id"] == r["parent_run_id"]
    child = retrievers[3]
    assert child["parent_run_id"] == retrievers[2]["run_id"] and "filtered" in child["tags"]
    assert len({e["run_id"] for e in events if e["event"] == "retriever_start"}) == 7  # no run twice
    ends = [e for e in events if e["event"] == "retriever_end"]
    assert all(d["id"] for e in ends for d in e["documents"])  # LangChain document ids survive

    off = rtrace("run", "-q", "--no-langchain", str(SAMPLES / "langchain_pipeline.py"), cwd=tmp_path)
    assert off.returncode == 0 and [e["event"] for e in latest(tmp_path)] == ["session_start", "session_end"]


def test_a_script_passing_the_handler_itself_is_not_recorded_twice(tmp_path: Path) -> None:
    write(tmp_path / "explicit.py", """
        from langchain_core.documents import Document
        from langchain_core.retrievers import BaseRetriever
        from rtrace.core.integrations.langchain import installed_handlers

        class R(BaseRetriever):
            def _get_relevant_documents(self, query, *, run_manager):
                return [Document("d", id="1")]

        R().invoke("q", {"callbacks": installed_handlers()})
    """)
    assert rtrace("run", "-q", "explicit.py", cwd=tmp_path).returncode == 0
    assert [e["event"] for e in latest(tmp_path)] == ["session_start", "retriever_start", "retriever_end", "session_end"]


def test_redaction_truncation_tags_and_meta(tmp_path: Path) -> None:
    write(tmp_path / "secret.py", """
        from rtrace.core import Document, retriever

        @retriever(metadata={"Authorization": "Bearer x", "tenant": "acme", "index": "v2"})
        def search(query):
            return [Document("0123456789" * 3, {"api_key": "sk-123", "source": "a.md"})]

        search("q")
    """)
    r = rtrace("run", "-q", "--redact", "TENANT", "--max-content", "12", "--tag", "ci", "--tag", "nightly",
               "--meta", "commit=abc123", "--meta", "k=v=w", "secret.py", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    start, end = latest(tmp_path)[1:3]
    assert start["metadata"] == {"Authorization": "[REDACTED]", "tenant": "[REDACTED]", "index": "v2",
                                 "commit": "abc123", "k": "v=w"}
    assert start["tags"] == ["ci", "nightly"]
    doc = end["documents"][0]
    assert doc["page_content"] == "012345678901" and doc["content_length"] == 30
    assert doc["metadata"] == {"api_key": "[REDACTED]", "source": "a.md"}


@pytest.mark.parametrize("sample", ["bm25.py", "hybrid.py", "flaky.py", "fanout.py", "langchain_pipeline.py", "noop.py"])
def test_samples_print_the_same_under_rtrace_run(tmp_path: Path, sample: str, validate: Any) -> None:
    plain = python(str(SAMPLES / sample), cwd=tmp_path)
    traced = rtrace("run", "-q", str(SAMPLES / sample), cwd=tmp_path)
    assert plain.returncode == traced.returncode == 0, traced.stderr
    assert traced.stdout == plain.stdout
    events = validate(latest(tmp_path))
    if sample != "noop.py":
        assert any(e["event"] == "retriever_end" for e in events)


def test_fanout_sample_nests_fifty_concurrent_traces(tmp_path: Path) -> None:
    assert rtrace("run", "-q", str(SAMPLES / "fanout.py"), cwd=tmp_path).returncode == 0
    events = latest(tmp_path)
    starts = [e for e in events if e["event"] == "retriever_start"]
    roots = {e["run_id"] for e in starts if e["parent_run_id"] is None}
    assert len(roots) == 50
    shards = [e for e in starts if e["name"] == "Shard"]
    assert len(shards) == 150 and all(s["parent_run_id"] in roots for s in shards)


def test_hybrid_sample_is_three_levels_deep(tmp_path: Path) -> None:
    assert rtrace("run", "-q", str(SAMPLES / "hybrid.py"), cwd=tmp_path).returncode == 0
    starts = {e["run_id"]: e for e in latest(tmp_path) if e["event"] == "retriever_start"}
    rerank = next(e for e in starts.values() if e["name"] == "Rerank")
    assert starts[rerank["parent_run_id"]]["name"] == "Hybrid"
    names = sorted(e["name"] for e in starts.values() if e["parent_run_id"] == rerank["parent_run_id"])
    assert names == ["Dense", "Keyword", "Rerank"]


def test_live_view_needs_a_terminal(tmp_path: Path) -> None:
    r = rtrace("run", "--live", "-q", str(SAMPLES / "bm25.py"), "x", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == ""  # stderr is a pipe: no Live output


def test_a_scripts_own_excepthook_is_called(tmp_path: Path) -> None:
    write(tmp_path / "hook.py", """
        import sys

        def hook(kind, value, tb):
            print(f"custom hook: {kind.__name__}: {value}", file=sys.stderr)

        sys.excepthook = hook
        raise RuntimeError("handled by the hook")
    """)
    expected = python("hook.py", cwd=tmp_path)
    got = rtrace("run", "-q", "hook.py", cwd=tmp_path)
    assert got.returncode == expected.returncode == 1
    assert got.stderr == expected.stderr == "custom hook: RuntimeError: handled by the hook\n"
