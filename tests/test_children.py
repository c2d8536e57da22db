"""`rtrace run` follows child Python processes: subprocess, multiprocessing spawn and fork."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import read_events
from ptys import read_until_closed

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


# --- one writer per shared output, nothing read back that rtrace does not own -------------------

BIG_DOCS = """
    import multiprocessing as mp
    from rtrace.core import Document, retriever

    @retriever(name="Big")
    def big(query):
        return [Document(query[-1] * 100_000, id=query)]  # one line of ~100 KB per run

    @retriever(name="FanOut")
    def fan_out(query):
        with mp.get_context("fork").Pool(8) as pool:
            return [d for docs in pool.map(big, [f"{query}-{i}" for i in range(32)]) for d in docs]

    if __name__ == "__main__":
        print(len(fan_out("q")), flush=True)
"""


def _run_pipe(args: list[str], cwd: Path, timeout: float = 120) -> tuple[int, bytes, str]:
    proc = subprocess.Popen([*RTRACE, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
        proc.wait()
    return proc.returncode, out, err.decode()


def test_dash_o_dash_every_line_is_whole_json_with_forked_workers_writing_large_lines(tmp_path: Path) -> None:
    (tmp_path / "big.py").write_text(textwrap.dedent(BIG_DOCS))
    code, out, err = _run_pipe(["run", "-q", "-o", "-", "big.py"], tmp_path)
    assert code == 0, err
    assert err == "32\n"  # the script's stdout, moved to stderr
    lines = out.split(b"\n")
    assert lines.pop() == b""
    events = [json.loads(line) for line in lines]  # fails on any torn line
    ends = [e for e in events if e["event"] == "retriever_end" and e["name"] == "Big"]
    assert len(ends) == 32 and all(len(e["documents"][0]["page_content"]) == 100_000 for e in ends)
    assert max(len(line) for line in lines) > 100_000 > 4096  # far beyond PIPE_BUF


@pytest.mark.timeout(120)
def test_dash_o_dash_kill_9_keeps_what_the_children_recorded(tmp_path: Path) -> None:
    (tmp_path / "killed.py").write_text(textwrap.dedent("""
        import os, sys, time
        from rtrace.core import Document, retriever

        @retriever(name="Child")
        def child(query):
            return [Document(query * 1000)]

        for i in range(4):
            if os.fork() == 0:
                child(f"c{i}")
                os._exit(0)
            os.wait()
        print("ready", file=sys.stderr, flush=True)
        time.sleep(60)
    """))
    proc = subprocess.Popen([*RTRACE, "run", "-q", "-o", "-", "killed.py"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    try:
        assert proc.stderr is not None and proc.stderr.readline() == b"ready\n"
        proc.kill()
        out, _ = proc.communicate(timeout=30)  # the pump drains, then closes stdout
    finally:
        proc.kill()
        proc.wait()
    events = [json.loads(line) for line in out.splitlines()]
    assert sorted(e["query"] for e in events if e["event"] == "retriever_start") == ["c0", "c1", "c2", "c3"]


NOISY = """
    from rtrace.core import Document, retriever

    @retriever(name="R")
    def r(query):
        return [Document(query * 50)]

    for i in range(200):
        r(f"q{i}")
    print("done")
"""


def _capped(limit: int) -> Any:
    import resource

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


@pytest.mark.parametrize("device", ["/dev/full", "/dev/zero", "/dev/null"])
def test_devices_as_output_are_written_never_read_back(tmp_path: Path, device: str) -> None:
    (tmp_path / "noisy.py").write_text(textwrap.dedent(NOISY))
    r = subprocess.run([*RTRACE, "run", "-o", device, "noisy.py"], cwd=tmp_path, capture_output=True, text=True,
                       env=ENV, timeout=60, preexec_fn=_capped(2 << 30))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "done\n"
    assert "rtrace: 200 runs" in r.stderr  # the summary comes from counters, not from reading the device
    if device == "/dev/full":
        assert "No space left on device" in r.stderr


@pytest.mark.parametrize("device", ["/dev/stdout", "/dev/stderr"])
def test_std_streams_as_output_do_not_hang(tmp_path: Path, device: str) -> None:
    (tmp_path / "noisy.py").write_text(textwrap.dedent(NOISY))
    code, out, err = _run_pipe(["run", "-q", "-o", device, "noisy.py"], tmp_path, timeout=60)
    assert code == 0, err
    stream = out if device == "/dev/stdout" else err.encode()
    jsonl = [line for line in stream.splitlines() if line.startswith(b"{")]
    assert len([1 for line in jsonl if json.loads(line)["event"] == "retriever_start"]) == 200


@pytest.mark.timeout(60)
def test_tty_as_output_does_not_hang(tmp_path: Path) -> None:
    import fcntl
    import pty
    import termios

    (tmp_path / "noisy.py").write_text(textwrap.dedent(NOISY))
    master, slave = pty.openpty()

    def controlling_tty() -> None:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([*RTRACE, "run", "-q", "-o", "/dev/tty", "noisy.py"], cwd=tmp_path, stdin=slave,
                            stdout=slave, stderr=slave, env=ENV, preexec_fn=controlling_tty)
    os.close(slave)
    try:
        seen = read_until_closed(master)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    assert seen.count(b'"event":"retriever_start"') == 200 and b"done" in seen


# --- forks and children ---------------------------------------------------------------------------


def test_forked_children_start_clean_and_there_is_one_summary(tmp_path: Path) -> None:
    (tmp_path / "forky.py").write_text(textwrap.dedent("""
        import os, sys
        from rtrace.core import Document, retriever

        @retriever(name="Parent")
        def parent(query):
            done = root("before")
            pid = os.fork()
            if pid == 0:
                root("in child")
                sys.exit(0)  # the child leaves through the script's exit path
            os.waitpid(pid, 0)
            return done

        @retriever(name="Root")
        def root(query):
            return [Document(query)]

        parent("p")
    """))
    r = subprocess.run([*RTRACE, "run", "-o", "log.jsonl", "forky.py"], cwd=tmp_path, capture_output=True, text=True,
                       env=ENV, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("rtrace: ") == 1  # one summary, the parent's
    events = read_events(tmp_path / "log.jsonl")
    sessions = [e for e in events if e["event"] == "session_start"]
    assert len(sessions) == 2
    parent_run = next(e for e in events if e["event"] == "retriever_start" and e["name"] == "Parent")
    child_session = next(e for e in sessions if e.get("parent_session_id"))
    assert child_session["parent_run_id"] == parent_run["run_id"]
    child_end = next(e for e in events if e["event"] == "session_end" and e["session_id"] == child_session["session_id"])
    assert child_end["incomplete_runs"] == []  # the parent's open run is not the child's
    in_child = next(e for e in events if e.get("query") == "in child")
    assert in_child["parent_run_id"] == parent_run["run_id"] and in_child["trace_id"] == parent_run["run_id"]


def test_sitecustomize_directory_is_private_and_removed_by_its_creator(tmp_path: Path) -> None:
    (tmp_path / "site.py").write_text(textwrap.dedent("""
        import os, stat, sys
        site = next(p for p in os.environ["PYTHONPATH"].split(os.pathsep) if "rtrace-site-" in p)
        st = os.stat(site)
        print(oct(st.st_mode & 0o777), st.st_uid == os.getuid(), oct(os.stat(site + "/sitecustomize.py").st_mode & 0o777))
        if os.fork() == 0:
            sys.exit(0)  # a forked child ending must not remove its parent's directory
        os.wait()
        print(os.path.isdir(site), site, flush=True)
    """))
    r = subprocess.run([*RTRACE, "run", "-q", "-o", "log.jsonl", "site.py"], cwd=tmp_path, capture_output=True,
                       text=True, env=ENV, timeout=60)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.splitlines()
    assert first == "0o700 True 0o600"
    alive, site = second.split(" ", 1)
    assert alive == "True"
    assert not os.path.exists(site)  # removed by rtrace run when it ended


@pytest.mark.parametrize("planted", [False, True])
def test_the_bootstrap_directory_lives_where_only_its_user_can_create_names(tmp_path: Path, planted: bool) -> None:
    # Without $XDG_RUNTIME_DIR it goes under <tmp>/rtrace-<uid> (0700, ours, kept): once removed,
    # its name cannot be re-created by another user for an orphaned child that still points at it.
    # A planted rtrace-<uid> that is not private is never used.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    mine = tmp / f"rtrace-{os.getuid()}"
    if planted:
        mine.mkdir(mode=0o777)
        mine.chmod(0o777)
    (tmp_path / "site.py").write_text(
        "import os\nprint(next(p for p in os.environ['PYTHONPATH'].split(os.pathsep) if 'rtrace-site-' in p))\n")
    env = {k: v for k, v in ENV.items() if k != "XDG_RUNTIME_DIR"} | {"TMPDIR": str(tmp)}
    r = subprocess.run([*RTRACE, "run", "-q", "-o", "log.jsonl", "site.py"], cwd=tmp_path, capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    site = Path(r.stdout.strip())
    if planted:
        assert site.parent == tmp and not any(mine.iterdir())
    else:
        assert site.parent == mine and oct(mine.stat().st_mode & 0o777) == "0o700"
        assert mine.is_dir() and not site.exists()  # the base stays; the bootstrap directory is gone


@pytest.mark.timeout(120)
def test_untraced_child_warnings_stay_out_of_the_users_stderr(tmp_path: Path) -> None:
    import venv

    other = tmp_path / "other-venv"  # another interpreter: it cannot import rtrace
    venv.EnvBuilder(with_pip=False).create(other)
    (tmp_path / "spawn.py").write_text(
        "import subprocess, sys\n"
        f"r = subprocess.run([{str(other / 'bin' / 'python')!r}, '-c', 'print(42)'], capture_output=True, text=True)\n"
        "print(r.stdout.strip(), repr(r.stderr))\n")
    quiet = subprocess.run([*RTRACE, "run", "-q", "spawn.py"], cwd=tmp_path, capture_output=True, text=True,
                           env=ENV, timeout=60)
    assert quiet.returncode == 0 and quiet.stdout == "42 ''\n" and quiet.stderr == ""
    for args, env in ((["--verbose"], ENV), ([], {**ENV, "RTRACE_VERBOSE": "1"})):
        verbose = subprocess.run([*RTRACE, "run", "-q", *args, "spawn.py"], cwd=tmp_path, capture_output=True,
                                 text=True, env=env, timeout=60)
        assert "rtrace: warning: this child process is not traced" in verbose.stdout  # the child's stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_fork_pool_stress_50_runs_no_hang_no_orphan(tmp_path: Path) -> None:
    """The fork-pool program 50 times under rtrace run: each ends in time and leaves no process behind."""
    program = Path(__file__).parent / "harness" / "programs" / "pool_fork.py"
    expected = subprocess.run([sys.executable, str(program)], capture_output=True, env=ENV, timeout=60).stdout
    for i in range(50):
        proc = subprocess.Popen([*RTRACE, "run", "-q", "-o", f"log{i}.jsonl", str(program)], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**ENV, "PYTHONFAULTHANDLER": "1"},
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            for pid in _session_members(proc.pid):  # every process's Python stack, into the report
                os.kill(pid, signal.SIGABRT)
            _, err = proc.communicate(timeout=10)
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"run {i} hung: {err.decode(errors='replace')[-8000:]}") from None
        assert proc.returncode == 0 and out == expected, err
        left = _session_members(proc.pid)
        if left:
            os.killpg(proc.pid, 9)
        assert not left, f"run {i} left processes behind: {left}"
        assert sum(json.loads(line)["event"] == "retriever_start" for line in (tmp_path / f"log{i}.jsonl").open()) == 15


def _session_members(sid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


# --- export: the children's spans, in the recorded traces ----------------------------------------

from test_otel import receiver  # noqa: E402, F401 - the OTLP/HTTP receiver fixture


def test_dash_o_dash_with_export_endpoint_exports_the_childrens_spans(tmp_path: Path, receiver: Any) -> None:  # noqa: F811
    url, received = receiver
    _setup(tmp_path)
    r = subprocess.run([*RTRACE, "run", "-q", "-o", "-", "--export-endpoint", url, "fan.py"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    starts = {e["run_id"]: e for e in events if e["event"] == "retriever_start"}
    assert len(starts) == 12
    spans = {s.span_id.hex(): s for s in received}
    assert len(spans) == 12  # the workers' and the subprocess's runs too
    for start in starts.values():  # each span in the trace the log recorded
        span = next(s for s in received if s.name == f"retrieval {start['name']}"
                    and s.attributes and _attr(s, "input.value") == start["query"])
        assert span.trace_id.hex() == start["trace_id"].replace("-", "")


def _attr(span: Any, key: str) -> Any:
    for kv in span.attributes:
        if kv.key == key:
            return kv.value.string_value
    return None


def test_export_uses_the_recorded_trace_of_a_child_run_written_after_its_parent_session_ended(tmp_path: Path) -> None:
    from synth import LogBuilder, rid

    b = LogBuilder().session_start().start(1, "Parent", "q").end(1, "Parent", [], 1.0).session_end()
    log = tmp_path / "l.jsonl"
    b.write(log)
    child = {"v": 1, "seq": 1, "ts": "2026-01-01T00:00:01.000000Z", "event": "retriever_start",
             "session_id": "child-session", "run_id": rid(2), "parent_run_id": rid(1), "trace_id": rid(1),
             "name": "Late", "tags": [], "metadata": {}, "query": "late"}
    end = {**child, "seq": 2, "event": "retriever_end", "documents": [], "duration_ms": 1.0}
    for key in ("tags", "metadata", "query"):
        end.pop(key)
    with log.open("a") as f:
        f.write(json.dumps(child) + "\n" + json.dumps(end) + "\n")
    r = subprocess.run([*RTRACE, "export", str(log), "-o", "out.json"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60, env=ENV)
    assert r.returncode == 0, r.stderr
    spans = [s for rs in json.loads((tmp_path / "out.json").read_text())["resourceSpans"]
             for ss in rs["scopeSpans"] for s in ss["spans"]]
    by_name = {s["name"]: s for s in spans}
    assert by_name["retrieval Late"]["traceId"] == by_name["retrieval Parent"]["traceId"] == rid(1).replace("-", "")


def test_dash_o_dash_into_a_file_holds_the_childrens_runs(tmp_path: Path) -> None:
    _setup(tmp_path)
    with (tmp_path / "out.jsonl").open("wb") as out:
        r = subprocess.run([*RTRACE, "run", "-q", "-o", "-", "fan.py"], cwd=tmp_path, stdout=out,
                           stderr=subprocess.PIPE, text=True, timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    events = read_events(tmp_path / "out.jsonl")
    assert sum(e["event"] == "retriever_start" for e in events) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fan.py", "other.py", "out.jsonl"]  # no stray log file


@pytest.mark.timeout(120)
@pytest.mark.parametrize("close", ["", "import os; os.closerange(3, 1 << 16)\n"], ids=["open", "descriptors closed"])
def test_a_bootstrap_directory_left_by_a_killed_run_is_swept_by_the_next_and_a_live_ones_is_not(tmp_path: Path,
                                                                                              close: str) -> None:
    # `kill -9` (or os._exit) leaves rtrace run no chance to remove its directory; the next run
    # removes those whose creator is gone, never one whose run is still going, even one that
    # closed every descriptor it inherited (and with them its lock on the directory).
    base = tmp_path / "runtime"
    base.mkdir(mode=0o700)
    env = ENV | {"XDG_RUNTIME_DIR": str(base)}
    (tmp_path / "wait.py").write_text(f"import sys\n{close}print('ready', flush=True)\nsys.stdin.readline()\n")
    (tmp_path / "noop.py").write_text("pass\n")

    def start() -> tuple[subprocess.Popen[str], Path]:
        before = set(base.iterdir())
        p = subprocess.Popen([*RTRACE, "run", "-q", "-o", "log.jsonl", "wait.py"], cwd=tmp_path, env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
        (site,) = set(base.iterdir()) - before
        return p, site

    killed, killed_site = start()
    live, live_site = start()
    try:
        killed.kill()
        killed.communicate(timeout=30)
        assert killed_site.is_dir()  # left behind
        for site in (killed_site, live_site):  # past the grace a brand-new directory gets
            old = time.time() - 600
            os.utime(site, (old, old))
        r = subprocess.run([*RTRACE, "run", "-q", "-o", "log.jsonl", "noop.py"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert not killed_site.exists()
        assert live_site.is_dir() and (live_site / "sitecustomize.py").is_file()
        assert sorted(base.iterdir()) == [live_site]  # and the sweeping run removed its own at exit
        out, err = live.communicate("go\n", timeout=60)
        assert live.returncode == 0, err
        assert not live_site.exists()
    finally:
        for p in (killed, live):
            if p.poll() is None:
                p.kill()
                p.communicate()
