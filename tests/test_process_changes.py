"""Every process-wide change has an undo: after trace_to() and after rtrace run, python's objects are back."""

from __future__ import annotations

import contextvars
import decimal
import json
import os
import random
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import read_events
from rtrace.core import Document, retriever, trace_to
from rtrace.core.process.changes import patch_points

ENV = {k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_"))}


@retriever(name="Leaf")
def leaf(query: str) -> list[Document]:
    return [Document(query)]


def test_trace_to_block_patches_threads_only_while_it_lasts(tmp_path: Path) -> None:
    before = patch_points()
    var = contextvars.ContextVar("user", default="default")
    seen: dict[str, Any] = {}

    @retriever(name="Root")
    def root(query: str) -> list[Document]:
        var.set("starter's")
        decimal.getcontext().prec = 3

        def in_thread() -> None:
            seen["var"], seen["prec"] = var.get(), decimal.getcontext().prec
            leaf("from a thread")

        t = threading.Thread(target=in_thread)
        t.start()
        t.join()
        with ThreadPoolExecutor(1) as ex:
            ex.submit(leaf, "from a job").result()
        return []

    with trace_to(tmp_path / "log.jsonl"):
        assert threading.Thread.start is not before["threading.Thread.start"]  # installed while tracing
        root("q")
    assert patch_points() == before  # every patched object is python's again
    assert seen == {"var": "default", "prec": 28}  # the starter's context stayed behind
    events = read_events(tmp_path / "log.jsonl")
    starts = {e["query"]: e for e in events if e["event"] == "retriever_start"}
    assert starts["from a thread"]["parent_run_id"] == starts["q"]["run_id"]
    assert starts["from a job"]["parent_run_id"] == starts["q"]["run_id"]


def test_nested_trace_to_blocks_uninstall_with_the_last(tmp_path: Path) -> None:
    before = patch_points()
    with trace_to(tmp_path / "a.jsonl"):
        with trace_to(tmp_path / "b.jsonl"):
            pass
        assert threading.Thread.start is not before["threading.Thread.start"]
    assert patch_points() == before


def test_rtrace_run_undoes_every_change_when_the_script_ends(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(textwrap.dedent("""
        import threading
        from rtrace.core import Document, retriever

        @retriever(name="R")
        def r(query):
            t = threading.Thread(target=lambda: None)
            t.start()
            t.join()
            return [Document(query)]

        r("q")
    """))
    driver = textwrap.dedent("""
        import atexit, sys
        from rtrace.core.process.changes import patch_points

        before = patch_points()
        sys.argv = ["rtrace", "run", "-q", "-o", "log.jsonl", "script.py"]
        from rtrace.cli.app import main
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code
        during = patch_points()
        atexit._run_exitfuncs()  # what the interpreter does next: rtrace closes the log and undoes
        after = patch_points()
        import json
        print(json.dumps([code, sorted(k for k in before if during[k] != before[k]),
                          sorted(k for k in before if after[k] != before[k])]))
    """)
    r = subprocess.run([sys.executable, "-c", driver], cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=60)
    assert r.returncode == 0, r.stderr
    code, changed_during, changed_after = json.loads(r.stdout)
    assert code == 0
    assert {"threading.Thread.start", "signal.signal", "subprocess.Popen.__init__", "PYTHONPATH",
            "sys.getrecursionlimit"} <= set(changed_during), changed_during
    assert changed_after == []
    assert [e["event"] for e in read_events(tmp_path / "log.jsonl")][-1] == "session_end"


def test_ids_never_touch_the_global_random_and_never_repeat(tmp_path: Path) -> None:
    random.seed(99)
    state = random.getstate()
    with trace_to(tmp_path / "log.jsonl"):
        for _ in range(20):
            random.seed(1234)  # a script that re-seeds before every query
            leaf("q")
        assert random.getstate() == random.Random(1234).getstate()
    random.setstate(state)
    ids = [e["run_id"] for e in read_events(tmp_path / "log.jsonl") if e["event"] == "retriever_start"]
    assert len(ids) == len(set(ids)) == 20


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_ids_are_unique_across_fork(tmp_path: Path) -> None:
    from rtrace.core.record.ids import uuid7

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, json.dumps([str(uuid7()) for _ in range(50)]).encode())
        os._exit(0)
    os.close(w)
    mine = [str(uuid7()) for _ in range(50)]
    os.waitpid(pid, 0)
    with os.fdopen(r, "rb") as f:
        theirs = json.loads(f.read())
    assert not set(mine) & set(theirs)


@pytest.mark.parametrize("mode", ["-m", "-c"])
def test_recursion_headroom_of_modules_and_code_strings_is_pythons(tmp_path: Path, mode: str) -> None:
    source = textwrap.dedent("""
        import sys

        def depth(n=1):
            try:
                return depth(n + 1)
            except RecursionError:
                return n

        print(sys.getrecursionlimit(), depth())
    """)
    (tmp_path / "deep.py").write_text(source)
    target = ["-m", "deep"] if mode == "-m" else ["-c", source]
    plain = subprocess.run([sys.executable, *target], cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=60)
    traced = subprocess.run([sys.executable, "-m", "rtrace.cli", "run", "-q", *target], cwd=tmp_path,
                            capture_output=True, text=True, env=ENV, timeout=60)
    assert plain.returncode == traced.returncode == 0, traced.stderr
    assert traced.stdout == plain.stdout
