"""Finding logs: .rtrace/ found as git finds .git, logs named by script, `rtrace ls`, `@` references, pruning."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

RTRACE = [sys.executable, "-m", "rtrace.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_"))}

SCRIPT = """\
import sys
import time
from rtrace.core import retriever

@retriever(name="Search")
def search(query):
    if query.startswith("bad"):
        raise ValueError("bad query")
    return [query.upper(), query]

for q in sys.argv[1:]:
    try:
        search(q)
    except ValueError:
        pass
"""


def rtrace(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RTRACE, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env or ENV)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(SCRIPT)
    (tmp_path / "other.py").write_text(SCRIPT)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    return tmp_path


def ls_json(cwd: Path) -> list[dict]:
    r = rtrace("ls", "--format", "json", cwd=cwd)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_log_names_say_what_ran_and_ls_lists_runs_newest_first(project: Path) -> None:
    assert rtrace("run", "-q", "app.py", "one", "bad", cwd=project).returncode == 0
    assert rtrace("run", "-q", "other.py", "x", "y", "z", cwd=project).returncode == 0
    assert rtrace("run", "-q", "-m", "app", "q", cwd=project).returncode == 0
    names = sorted(p.name for p in (project / ".rtrace").glob("*.jsonl"))
    assert len(names) == 3
    assert {n.split("-")[1] for n in names} == {"app", "other"}
    assert all(n[:8].isdigit() and n[8] == "T" and n[9:15].isdigit() for n in names)
    runs = ls_json(project)
    assert [r["ref"] for r in runs] == ["@", "@1", "@2"]
    assert [(r["script"], r["runs"], r["errors"], r["exit_code"]) for r in runs] == [
        ("app", 1, 0, 0), ("other.py", 3, 0, 0), ("app.py", 2, 1, 0)]
    assert all(r["ended"] and r["duration_ms"] > 0 for r in runs)
    for r in runs:  # the directory and everything in it is private
        assert stat.S_IMODE(os.stat(r["path"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(project / ".rtrace").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(project / ".rtrace" / "index").st_mode) == 0o600


def test_at_references_work_in_every_command_that_reads_a_log(project: Path) -> None:
    rtrace("run", "-q", "app.py", "first", cwd=project)
    rtrace("run", "-q", "app.py", "second", "bad", cwd=project)
    (project / "qrels.jsonl").write_text('{"query": "first", "doc_id": "x", "relevance": 1}\n')

    def queries(*args: str) -> list[str]:
        r = rtrace("filter", *args, cwd=project)
        assert r.returncode == 0, r.stderr
        return [e["query"] for e in map(json.loads, r.stdout.splitlines()) if "query" in e]

    assert queries() == queries("@") == ["second", "bad"]
    assert queries("@1") == ["first"]
    assert "“first”" in rtrace("show", "@1", "--no-pager", cwd=project).stdout
    assert "“second”" in rtrace("show", cwd=project).stdout
    stats = json.loads(rtrace("stats", "@1", "--format", "json", cwd=project).stdout)
    assert stats["total"]["runs"] == 1
    diff = json.loads(rtrace("diff", "@1", "@", "--format", "json", cwd=project).stdout)
    assert json.loads(rtrace("diff", "--format", "json", cwd=project).stdout) == diff  # @1 @ is the default
    assert "first" in json.dumps(diff) and "second" in json.dumps(diff)  # A is @1, B is @
    assert rtrace("replay", "@1", "--no-wait", cwd=project).returncode == 0
    exported = rtrace("export", "@1", "-o", "-", cwd=project)
    if exported.returncode == 0:  # the otel extra is in the test extra; export says so without it
        assert "first" in exported.stdout
    assert rtrace("eval", "@1", "--qrels", "qrels.jsonl", "--format", "json", cwd=project).returncode == 0
    assert rtrace("report", "@1", "@", "-o", "r.html", cwd=project).returncode == 0
    assert "first" in (project / "r.html").read_text()

    assert json.loads(rtrace("diff", "-k", "1", "--format", "json", cwd=project).stdout)["k"] == 1
    assert [x["ref"] for x in json.loads(rtrace("ls", "-n", "1", "--format", "json", cwd=project).stdout)] == ["@"]

    r = rtrace("show", "@2", cwd=project)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == "rtrace: error: @2: only 2 runs recorded in .rtrace/ (`rtrace ls` lists them)\n"


def test_rtrace_dir_is_found_in_the_nearest_parent_and_run_writes_there(project: Path) -> None:
    rtrace("run", "-q", "app.py", "from-top", cwd=project)
    deeper = project / "sub" / "deeper"
    (deeper / "inner.py").write_text(SCRIPT)
    assert rtrace("run", "-q", "inner.py", "from-below", cwd=deeper).returncode == 0
    assert not (deeper / ".rtrace").exists() and not (project / "sub" / ".rtrace").exists()
    assert len(list((project / ".rtrace").glob("*.jsonl"))) == 2
    r = rtrace("show", "--no-pager", cwd=deeper)
    assert "“from-below”" in r.stdout
    assert [x["script"] for x in ls_json(deeper)] == ["inner.py", "app.py"]


def test_a_rtrace_dir_in_a_shared_parent_is_not_used(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    (shared / ".rtrace").mkdir(parents=True)
    shared.chmod(0o1777)  # like /tmp: anyone may have put that .rtrace/ there
    work = shared / "me"
    work.mkdir()
    (work / "app.py").write_text(SCRIPT)
    assert rtrace("run", "-q", "app.py", "q", cwd=work).returncode == 0
    assert len(list((work / ".rtrace").glob("*.jsonl"))) == 1
    assert list((shared / ".rtrace").iterdir()) == []


def test_o_runs_are_listed_and_pruning_keeps_the_newest(project: Path) -> None:
    rtrace("run", "-q", "app.py", "old", cwd=project)
    rtrace("run", "-q", "-o", str(project / "mine.jsonl"), "app.py", "mine", cwd=project)
    rtrace("run", "-q", "other.py", "new", cwd=project)
    runs = ls_json(project)
    assert [Path(r["path"]).name for r in runs][1] == "mine.jsonl"
    assert json.loads(rtrace("filter", "@1", cwd=project).stdout.splitlines()[1])["query"] == "mine"

    r = rtrace("ls", "--prune", "1", cwd=project)
    assert r.returncode == 0
    assert r.stderr.startswith("rtrace: deleted 1 log, unlisted 1 -o log (the files are left alone); kept the 1 newest")
    assert (project / "mine.jsonl").exists()  # the user's own file
    assert len(list((project / ".rtrace").glob("*.jsonl"))) == 1
    assert [x["script"] for x in ls_json(project)] == ["other.py"]


def test_a_run_without_rtrace_dir_writing_elsewhere_creates_none(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(SCRIPT)
    assert rtrace("run", "-q", "-o", "out.jsonl", "app.py", "q", cwd=tmp_path).returncode == 0
    assert not (tmp_path / ".rtrace").exists()
    r = rtrace("ls", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("rtrace: error: no runs recorded here yet")


def test_ls_reads_only_the_ends_of_a_log_it_did_not_index(project: Path) -> None:
    # A log copied in from elsewhere: not in the index. Its middle is not JSON at all, so a
    # command that parsed the whole log would fail; ls reads its first and last lines only.
    start = {"v": 1, "seq": 1, "ts": "2026-11-24T10:00:00.000000Z", "event": "session_start",
             "session_id": "s-copied", "argv": ["/elsewhere/copied.py"], "pid": 1}
    end = {"v": 1, "seq": 3, "ts": "2026-11-24T10:00:05.000000Z", "event": "session_end", "session_id": "s-copied",
           "exit_code": 3, "duration_ms": 5000.0}
    (project / ".rtrace").mkdir(mode=0o700)
    with open(project / ".rtrace" / "copied.jsonl", "wb") as f:
        f.write(json.dumps(start).encode() + b"\n")
        f.write(b"\x00not json\x00\n" * 200_000)  # 2 MB of garbage
        f.write(json.dumps(end).encode() + b"\n")
    (run,) = ls_json(project)
    assert (run["script"], run["started"], run["exit_code"], run["duration_ms"], run["runs"]) == (
        "copied.py", "2026-11-24T10:00:00.000000Z", 3, 5000.0, None)
    wide = rtrace("ls", cwd=project, env={**ENV, "COLUMNS": "100"}).stdout.splitlines()
    assert wide == [
        "#  started (UTC)        script     runs  errors    took  exit  log",
        "@  2026-11-24 10:00:00  copied.py     ?       ?  5.00 s     3  .rtrace/copied.jsonl",
    ]
    narrow = rtrace("ls", cwd=project, env={**ENV, "COLUMNS": "60"}).stdout.splitlines()
    assert narrow == [  # numbers stay whole; the path moves under its run
        "#  started (UTC)  script     runs  err    took  exit",
        "@  11-24 10:00    copied.py     ?    ?  5.00 s     3",
        "    .rtrace/copied.jsonl",
    ]


def test_ls_times_are_local_unless_utc_and_said_once_in_the_header(project: Path) -> None:
    rtrace("run", "-q", "app.py", "q", cwd=project)
    (run,) = ls_json(project)
    paris = {**ENV, "TZ": "Europe/Paris", "COLUMNS": "200"}
    local = rtrace("ls", cwd=project, env=paris).stdout.splitlines()
    utc = rtrace("ls", "--utc", cwd=project, env=paris).stdout.splitlines()
    assert local[0].split()[1:3] == ["started", "(UTC+01:00"] and utc[0].split()[1:3] == ["started", "(UTC)"]
    import datetime as dt

    when = dt.datetime.fromisoformat(run["started"].replace("Z", "+00:00"))
    assert when.strftime("%Y-%m-%d %H:%M:%S") in utc[1]
    assert (when + dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S") in local[1]
    # show's session line says its zone too, and --utc switches it
    session = rtrace("show", "--no-pager", cwd=project, env=paris).stdout.splitlines()[0]
    assert (when + dt.timedelta(hours=1)).strftime("  %Y-%m-%d %H:%M:%S UTC+01:00") in session, session
    session = rtrace("show", "--no-pager", "--utc", cwd=project, env=paris).stdout.splitlines()[0]
    assert when.strftime("  %Y-%m-%d %H:%M:%S UTC") in session and "+01:00" not in session, session
    # --since takes times in the same zone: a time without zone is Paris time, or UTC with --utc.
    ahead = (when + dt.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S")  # 30 min after, in UTC
    assert '"query":"q"' not in rtrace("filter", "--utc", "--since", ahead, cwd=project, env=paris).stdout
    assert '"query":"q"' in rtrace("filter", "--since", ahead, cwd=project, env=paris).stdout  # 30 min before


def test_export_endpoint_that_cannot_connect_leaves_no_log_behind(project: Path) -> None:
    rtrace("run", "-q", "app.py", "before", cwd=project)
    before = sorted((project / ".rtrace").iterdir())
    r = rtrace("run", "--export-endpoint", "http://127.0.0.1:9/v1/traces", "app.py", "q", cwd=project)
    assert r.returncode != 0 and r.stderr.startswith("rtrace: error: ") and len(r.stderr.splitlines()) == 1
    assert sorted((project / ".rtrace").iterdir()) == before
    assert "“before”" in rtrace("show", "--no-pager", cwd=project).stdout


def test_concurrent_runs_are_all_listed(project: Path) -> None:
    procs = [subprocess.Popen([*RTRACE, "run", "-q", "app.py", f"q{i}"], cwd=project, env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(4)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    runs = ls_json(project)
    assert len(runs) == 4 and all(r["ended"] and r["runs"] == 1 for r in runs)
    index = (project / ".rtrace" / "index").read_bytes().splitlines()
    assert len(index) == 8 and all(json.loads(line) for line in index)


BLOCKING = """\
import sys
import time
from rtrace.core import retriever

@retriever(name="Search")
def search(query):
    return [query]

search("before the prune")
print("ready", flush=True)
sys.stdin.readline()  # held here until the test says go
search("after the prune")
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("close", ["", "import os; os.closerange(3, 1 << 16)"], ids=["open", "descriptors closed"])
def test_prune_never_deletes_a_log_still_being_written(project: Path, close: str) -> None:
    # "descriptors closed": the program closes every descriptor it inherited (as daemons do), the
    # log's among them, and with it the lock that says a writer is at work; its process says so still.
    (project / "blocking.py").write_text(BLOCKING.replace('print("ready"', close + '\nprint("ready"'))
    assert rtrace("run", "-q", "app.py", "old", cwd=project).returncode == 0
    live = subprocess.Popen([*RTRACE, "run", "-q", "blocking.py"], cwd=project, env=ENV, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert live.stdout is not None and live.stdout.readline() == "ready\n"
        assert rtrace("run", "-q", "other.py", "newer", cwd=project).returncode == 0
        (live_log,) = [p for p in (project / ".rtrace").glob("*-blocking-*.jsonl")]

        r = rtrace("ls", "--prune", "0", cwd=project)
        assert r.returncode == 0, r.stderr
        assert r.stderr.splitlines() == [
            "rtrace: deleted 2 logs; kept the 0 newest runs",
            f"rtrace: kept 1 older log still being written: .rtrace/{live_log.name}"]
        assert [p.name for p in (project / ".rtrace").glob("*.jsonl")] == [live_log.name]
        assert [Path(x["path"]).name for x in ls_json(project)] == [live_log.name]  # still listed

        out, err = live.communicate("go\n", timeout=60)
        assert live.returncode == 0, err
    finally:
        if live.poll() is None:
            live.kill()
            live.communicate()
    queries = [json.loads(line).get("query") for line in live_log.read_text().splitlines()]
    assert "before the prune" in queries and "after the prune" in queries  # the later events landed in it
    (run,) = ls_json(project)
    assert run["ended"] and run["runs"] == 2

    r = rtrace("ls", "--prune", "0", cwd=project)  # finished now: pruned as any other
    assert r.stderr.splitlines()[0] == "rtrace: deleted 1 log; kept the 0 newest runs"
    assert list((project / ".rtrace").glob("*.jsonl")) == []


@pytest.mark.timeout(120)
def test_a_forked_child_still_writing_keeps_the_log_from_pruning(project: Path) -> None:
    # The writer's lock lives on the open file description: a forked child shares it, so the
    # log stays while the child writes, even after the parent (rtrace run itself) was killed.
    (project / "forks.py").write_text("""\
import os, sys
from rtrace.core import retriever

@retriever(name="Search")
def search(query):
    return [query]

if os.fork() == 0:
    search("child before")
    print("ready", flush=True)
    sys.stdin.readline()
    search("child after")
    os._exit(0)
sys.stdin.readline()
""")
    live = subprocess.Popen([*RTRACE, "run", "-q", "forks.py"], cwd=project, env=ENV, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # its own group: the forked child is killed with it
    try:
        assert live.stdout is not None and live.stdout.readline() == "ready\n"
        live.kill()  # rtrace run is gone; its forked child is not
        live.wait(timeout=30)
        (log,) = (project / ".rtrace").glob("*.jsonl")
        r = rtrace("ls", "--prune", "0", cwd=project)
        assert r.stderr.splitlines()[-1] == f"rtrace: kept 1 older log still being written: .rtrace/{log.name}"
        assert log.exists()
        assert live.stdin is not None
        live.stdin.write("go\n")
        live.stdin.close()  # the child reads it, writes, and exits
        for _ in range(300):
            if b"child after" in log.read_bytes():
                break
            time.sleep(0.1)
        assert b"child after" in log.read_bytes()
        for _ in range(300):  # the child's exit closes the last descriptor: the lock is gone
            r = rtrace("ls", "--prune", "0", cwd=project)
            if not log.exists():
                break
            time.sleep(0.1)
        assert not log.exists() and r.stderr.splitlines()[0] == "rtrace: deleted 1 log; kept the 0 newest runs"
    finally:
        try:
            os.killpg(live.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        live.wait(timeout=30)
        for stream in (live.stdin, live.stdout):
            if stream is not None and not stream.closed:
                stream.close()


@pytest.mark.timeout(120)
def test_ls_says_a_run_killed_without_ending_died_and_one_in_progress_is_running(project: Path) -> None:
    (project / "blocking.py").write_text(BLOCKING)
    live = subprocess.Popen([*RTRACE, "run", "-q", "blocking.py"], cwd=project, env=ENV, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert live.stdout is not None and live.stdout.readline() == "ready\n"
        (run,) = ls_json(project)
        assert (run["ended"], run["died"]) == (False, False)
        row = rtrace("ls", cwd=project).stdout.splitlines()[1]
        assert "…" in row.split() and "died" not in row  # in progress
        live.kill()  # kill -9: no session_end, no writer left
        live.communicate(timeout=30)
        (run,) = ls_json(project)
        assert (run["ended"], run["died"], run["exit_code"]) == (False, True, None)
        row = rtrace("ls", cwd=project).stdout.splitlines()[1]
        assert "died" in row.split() and "…" not in row.split()
    finally:
        if live.poll() is None:
            live.kill()
            live.communicate()


@pytest.mark.timeout(120)
def test_a_killed_run_whose_pid_a_later_process_took_is_died_and_pruned(project: Path) -> None:
    # kill -9 (a container killed, a machine crash): no session_end and no writer's lock left. Its
    # pid may be taken by a later process (a restarted container's pid 1, any pid after a reboot):
    # that process is not the writer, so the run is shown as died and pruned, not kept for ever.
    (project / "blocking.py").write_text(BLOCKING)
    killed = subprocess.Popen([*RTRACE, "run", "-q", "blocking.py"], cwd=project, env=ENV, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert killed.stdout is not None and killed.stdout.readline() == "ready\n"
    killed.kill()
    killed.communicate(timeout=30)
    (log,) = (project / ".rtrace").glob("*-blocking-*.jsonl")
    time.sleep(5.5)  # past the slack allowed between a process's start and its session's (sink._STARTED_SLACK)
    later = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lines = log.read_bytes().splitlines(keepends=True)
        for pid, died in ((os.getpid(), False), (later.pid, True)):  # this test's own process started before the run
            first = json.loads(lines[0])
            assert first["event"] == "session_start"
            log.write_bytes(json.dumps({**first, "pid": pid}).encode() + b"\n" + b"".join(lines[1:]))
            (run,) = ls_json(project)
            assert (run["ended"], run["died"]) == (False, died), pid
        r = rtrace("ls", "--prune", "0", cwd=project)
        assert r.stderr.splitlines()[0] == "rtrace: deleted 1 log; kept the 0 newest runs" and not log.exists()
    finally:
        later.kill()
        later.wait()


DAEMON = """
import os, time
from rtrace.core import retriever

@retriever
def search(q):
    return [{"page_content": q, "id": q}]

search("parent")
if os.fork() == 0:
    os.setsid()
    if DOUBLE and os.fork() != 0:  # the classic daemon: the first child exits, its child lives on
        os._exit(0)
    os.closerange(0, 4096)  # a daemon: every inherited descriptor closed, rtrace's lock with them
    for _ in range(600):
        if os.path.exists("go"):
            break
        time.sleep(0.05)
    search("child")
    os._exit(0)
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("double", [False, True], ids=["fork", "double fork"])
def test_prune_keeps_the_log_of_a_run_whose_forked_child_closed_everything_and_lives_on(tmp_path: Path,
                                                                                          double: bool) -> None:
    (tmp_path / "daemon.py").write_text(f"DOUBLE = {double}\n" + DAEMON)
    try:
        assert rtrace("run", "-q", "daemon.py", cwd=tmp_path).returncode == 0  # its main process has ended
        (log,) = (tmp_path / ".rtrace").glob("*daemon*.jsonl")
        assert rtrace("run", "-q", "-c", "pass", cwd=tmp_path).returncode == 0
        pruned = rtrace("ls", "--prune", "1", cwd=tmp_path)
        assert log.exists(), pruned.stderr  # the child will write its next run there
        assert "still being written" in pruned.stderr and log.name in pruned.stderr
    finally:
        (tmp_path / "go").touch()
    deadline = time.monotonic() + 30
    while b'"query":"child"' not in log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    queries = [json.loads(line).get("query") for line in log.read_bytes().splitlines()]
    assert "parent" in queries and "child" in queries  # one log, whole
