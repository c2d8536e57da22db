"""The log writer under faults: descriptors the program takes over, full disks, signals mid-line.

Every case runs a real program in a subprocess and checks what a user would see: the
program's own files untouched, every line of the log whole, the runs recorded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import read_events

RTRACE = [sys.executable, "-m", "rtrace.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_"))}

RETRIEVE = """
    from rtrace.core import retriever, Document

    @retriever
    def search(query):
        return [Document("passage about " + query, {"source": "a.md"})]
"""

CLOSE_AND_TAKE_OVER = """
    import os
    search("before")
    os.closerange(3, 4096)
    # The program's own file, then every low descriptor number made to point at it:
    # whichever number rtrace had, it now names the program's file.
    mine = os.open("mine.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for n in range(3, 1024):
        if n != mine:
            os.dup2(mine, n)
    os.write(mine, b"the program's own data\\n")
    search("after")
"""


def test_rtrace_run_never_writes_into_a_descriptor_the_program_took_over(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text(textwrap.dedent(RETRIEVE) + textwrap.dedent(CLOSE_AND_TAKE_OVER))
    log = tmp_path / "log.jsonl"
    proc = subprocess.run([*RTRACE, "run", "-q", "--no-children", "-o", str(log), "prog.py"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "mine.txt").read_text() == "the program's own data\n"
    queries = [e["query"] for e in read_events(log) if e["event"] == "retriever_start"]
    assert queries == ["before", "after"]
    assert read_events(log)[-1]["event"] == "session_end"


def test_the_library_reopens_its_log_by_path_after_the_program_closes_it(tmp_path: Path) -> None:
    source = textwrap.dedent(RETRIEVE) + "from rtrace.core import trace_to\nwith trace_to('log.jsonl'):\n" + \
        textwrap.indent(textwrap.dedent(CLOSE_AND_TAKE_OVER), "    ") + "    os.chdir('/')\n    search('elsewhere')\n"
    (tmp_path / "prog.py").write_text(source)
    proc = subprocess.run([sys.executable, "prog.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert (tmp_path / "mine.txt").read_text() == "the program's own data\n"
    events = read_events(tmp_path / "log.jsonl")
    assert [e["query"] for e in events if e["event"] == "retriever_start"] == ["before", "after", "elsewhere"]


def test_a_handed_descriptor_that_is_lost_stops_the_log_with_one_warning(tmp_path: Path) -> None:
    # A descriptor the caller passed has no path to reopen: writing stops, nothing goes astray.
    source = textwrap.dedent(RETRIEVE) + textwrap.dedent("""
        import os
        from rtrace.core import trace_to
        fd = os.open("log.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with trace_to(fd):
            search("before")
            os.close(fd)
            mine = os.open("mine.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            assert mine == fd
            search("lost")
            os.write(mine, b"mine\\n")
    """)
    (tmp_path / "prog.py").write_text(source)
    proc = subprocess.run([sys.executable, "prog.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "mine.txt").read_text() == "mine\n"
    assert [e["query"] for e in read_events(tmp_path / "log.jsonl") if e["event"] == "retriever_start"] == ["before"]
    assert proc.stderr.count("rtrace: warning:") == 2, proc.stderr  # lost, then the count at close
    assert "file descriptor was closed" in proc.stderr


FULL_DISK = """
    import os, resource, signal
    from rtrace.core import trace_to
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    with trace_to("log.jsonl") as handler:
        search("fits")
        size = os.path.getsize("log.jsonl")
        # Room for part of the next line only: the disk is full in the middle of it.
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 300, hard))
        search("x" * 2000)
        search("y" * 2000)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space freed
        search("after")
"""


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
def test_a_full_disk_never_leaves_a_torn_line(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text(textwrap.dedent(RETRIEVE) + textwrap.dedent(FULL_DISK))
    proc = subprocess.run([sys.executable, "prog.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert "events are being lost" in proc.stderr
    events = read_events(tmp_path / "log.jsonl")  # fails on any torn line
    queries = [e["query"] for e in events if e["event"] == "retriever_start"]
    assert queries[0] == "fits" and queries[-1] == "after"
    assert "x" * 2000 not in queries
    assert events[-1]["event"] == "session_end" and events[-1]["lost_events"] >= 2
    # the log opens in `rtrace show`
    shown = subprocess.run([*RTRACE, "show", str(tmp_path / "log.jsonl")], capture_output=True, text=True,
                           timeout=120, env=ENV)
    assert shown.returncode == 0, shown.stderr


BIG_LINE_ON_SIGNAL = """
    import sys
    from rtrace.core import retriever, Document

    @retriever
    def search(query):
        size = 200_000 if query == "big" else 1
        return [Document(str(i) * size, {"i": i}) for i in range(4)]  # an 800 kB line

    search("small")
    print("ready", file=sys.stderr, flush=True)
    for _ in range(30):  # with rtrace run's private file nothing blocks: a bounded 24 MB
        search("big")
"""


LIBRARY_TO_A_PIPE = textwrap.dedent("""
    import signal, sys
    from rtrace.core import trace_to
    # A program that handles SIGTERM (plain python's default just kills it, mid-write or not).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with trace_to(1):  # stdout is the test's pipe: the library writes big lines straight into it
""") + textwrap.indent(textwrap.dedent(BIG_LINE_ON_SIGNAL), "    ")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["rtrace run -o -", "library to a pipe"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_a_big_line_waits_on_a_slow_pipe_never_tears_it(tmp_path: Path, sig: int, how: str) -> None:
    if how == "rtrace run -o -":
        (tmp_path / "prog.py").write_text(textwrap.dedent(BIG_LINE_ON_SIGNAL))
        args = [*RTRACE, "run", "-q", "--no-children", "-o", "-", "prog.py"]
    else:
        (tmp_path / "prog.py").write_text(LIBRARY_TO_A_PIPE)
        args = [sys.executable, "prog.py"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    try:
        assert proc.stderr is not None and proc.stdout is not None
        assert proc.stderr.readline() == b"ready\n"
        time.sleep(0.5)  # let a big line fill the pipe and block (the checks hold either way)
        proc.send_signal(sig)
        time.sleep(0.2)
        out = proc.stdout.read()  # now a reader drains it
        proc.wait(30)
    finally:
        proc.kill()
        proc.wait()
    events = [json.loads(line) for line in out.splitlines()]  # every line whole
    assert events[0]["event"] == "session_start"
    assert any(e["event"] == "retriever_end" and len(e["documents"]) == 4 for e in events)
    if how == "rtrace run -o -":  # its private file never blocks: the script may be done before the signal
        assert events[-1]["event"] == "session_end" and proc.returncode in (0, -sig, 128 + sig)
    else:  # KeyboardInterrupt or SystemExit unwinds the with block, raised in the middle of a line
        assert events[-1]["event"] == "session_end" and proc.returncode == (-sig if sig == signal.SIGINT else 143)


def test_a_traced_child_keeps_its_log_high_without_importing_more(tmp_path: Path) -> None:
    # One owner (sink.move_high) places rtrace's descriptors in the parent and in every child;
    # the child pays no import for it (the descriptor limit comes from os.sysconf, not resource).
    (tmp_path / "child.py").write_text(textwrap.dedent(RETRIEVE) + textwrap.dedent("""
        import os, sys
        search("in the child")
        log = [int(fd) for fd in os.listdir("/proc/self/fd") if os.path.realpath(f"/proc/self/fd/{fd}").endswith("log.jsonl")]
        print((log, [m for m in ("resource", "rtrace.core.process.pump") if m in sys.modules]))
    """))
    (tmp_path / "parent.py").write_text("import subprocess, sys\nsubprocess.run([sys.executable, 'child.py'], check=True)\n")
    r = subprocess.run([*RTRACE, "run", "-q", "-o", "log.jsonl", "parent.py"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    limit = os.sysconf("SC_OPEN_MAX")
    floor = 900 if limit < 0 or limit >= 1024 else max(3, limit // 2)
    (fds, imported) = eval(r.stdout)  # noqa: S307 - our own child's repr of two lists
    assert len(fds) == 1 and fds[0] >= floor and imported == []
    assert "in the child" in (tmp_path / "log.jsonl").read_text()


CHILD_FILES = """
from rtrace.core import retriever
retriever(lambda q: [q], name="Child")("in the child")
fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(100)]
print("child's files", fds[0], fds == list(range(fds[0], fds[0] + 100)))
print([int(fd) for fd in os.listdir("/proc/self/fd") if os.path.realpath(f"/proc/self/fd/{fd}").endswith("log.jsonl")],
      file=sys.stderr)
"""

OWN_FILES = """
import os, subprocess, sys
search("in the parent")
fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(100)]
print("parent's files", fds[0], fds == list(range(fds[0], fds[0] + 100)), flush=True)
subprocess.run([sys.executable, "-c", "import os, sys" + CHILD], check=True)
logs = [int(fd) for fd in os.listdir("/proc/self/fd") if os.path.realpath(f"/proc/self/fd/{fd}").endswith("log.jsonl")]
print(logs, file=sys.stderr)
"""


@pytest.mark.timeout(120)
def test_under_a_low_descriptor_limit_the_log_sits_in_the_upper_half_and_the_programs_files_are_pythons(
        tmp_path: Path) -> None:
    # README: rtrace's descriptors sit from 900 up, or from half a lower descriptor limit, in children too.
    import resource

    (tmp_path / "prog.py").write_text(textwrap.dedent(RETRIEVE) + f"CHILD = {CHILD_FILES!r}\n" + OWN_FILES)

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    runs = [subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=100, env=ENV, preexec_fn=low_limit)
            for cmd in ([sys.executable, "prog.py"], [*RTRACE, "run", "-q", "-o", "log.jsonl", "prog.py"])]
    assert [r.returncode for r in runs] == [0, 0], runs[1].stderr
    assert runs[1].stdout == runs[0].stdout == "parent's files 3 True\nchild's files 3 True\n"
    assert runs[0].stderr == "[]\n[]\n"
    (child_log,), (parent_log,) = map(json.loads, runs[1].stderr.splitlines())
    assert 128 <= child_log < 256 and 128 <= parent_log < 256
    events = read_events(tmp_path / "log.jsonl")
    assert [e["name"] for e in events if e["event"] == "retriever_end"] == ["search", "Child"]
