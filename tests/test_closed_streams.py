"""rtrace started with a standard stream closed (`<&-`, `>&-`, a daemon's or a cron job's).

Python then sets ``sys.stdin``/``sys.stdout`` to None. A traced program must see exactly what
python shows it (nothing of rtrace's on its stderr), a reading command must not care that a
stream it does not use is closed, and one that needs it says so in one line.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

RTRACE = [sys.executable, "-m", "rtrace.cli"]

PROGRAM = textwrap.dedent("""\
    import sys
    from rtrace.core import retriever

    @retriever
    def search(q):
        return [{"page_content": q, "id": "d1"}]

    search("closed")
    print("stdin is", sys.stdin, file=sys.stderr)
""")


def closed(fd_redirect: str, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """``argv`` run by a shell with one of its standard streams closed (``<&-``, ``>&-``)."""
    return subprocess.run(["sh", "-c", f'exec "$@" {fd_redirect}', "sh", *argv], cwd=cwd, capture_output=True,
                          timeout=60)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    (tmp_path / "prog.py").write_text(PROGRAM)
    out = tmp_path / "t.jsonl"
    subprocess.run([*RTRACE, "run", "-q", "-o", str(out), "prog.py"], cwd=tmp_path, check=True, capture_output=True,
                   timeout=60)
    return out


@pytest.mark.timeout(60)
def test_a_program_run_with_stdin_closed_gets_what_python_gives_it(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    python = closed("<&-", [sys.executable, "prog.py"], tmp_path)
    traced = closed("<&-", [*RTRACE, "run", "-q", "prog.py"], tmp_path)
    assert python.stderr == b"stdin is None\n"
    assert (traced.returncode, traced.stdout, traced.stderr) == (python.returncode, python.stdout, python.stderr)
    logs = list((tmp_path / ".rtrace").glob("*.jsonl"))
    assert len(logs) == 1 and b'"query":"closed"' in logs[0].read_bytes()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", [["show"], ["filter"], ["stats"], ["show", "--format", "json"], ["replay"]])
def test_a_reading_command_does_not_need_stdin(log: Path, command: list[str]) -> None:
    with_stdin = subprocess.run([*RTRACE, *command, str(log)], capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    without = closed("<&-", [*RTRACE, *command, str(log)], log.parent)
    assert with_stdin.returncode == 0, with_stdin.stderr
    assert (without.returncode, without.stdout, without.stderr) == (0, with_stdin.stdout, with_stdin.stderr)


@pytest.mark.timeout(60)
def test_reading_a_closed_stdin_is_one_line(log: Path) -> None:
    result = closed("<&-", [*RTRACE, "show", "-"], log.parent)
    assert result.returncode == 1
    assert result.stderr == b"rtrace: error: -: standard input is closed\n"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", [
    ["show"], ["show", "--format", "json"], ["show", "--format", "jsonl"], ["filter"], ["stats"], ["replay"],
    ["diff", "@LOG"], ["export", "--format", "otlp-json", "-o", "-"], ["report", "-o", "-"], ["ls"],
    ["ls", "--format", "json"], ["schema"],
])
def test_writing_to_a_closed_stdout_is_one_line(log: Path, command: list[str]) -> None:
    argv = [str(log) if a == "@LOG" else a for a in command]
    if command[0] not in ("ls", "schema"):
        argv.append(str(log))
    else:  # a run for ls to list
        subprocess.run([*RTRACE, "run", "-q", "prog.py"], cwd=log.parent, check=True, capture_output=True, timeout=60)
    result = closed(">&-", [*RTRACE, *argv], log.parent)
    assert result.returncode == 1, result.stderr
    assert result.stderr.decode().splitlines()[-1] == "rtrace: error: standard output is closed"


@pytest.mark.timeout(60)
def test_report_to_a_file_does_not_need_stdout(log: Path) -> None:
    result = closed(">&-", [*RTRACE, "report", str(log), "-o", "r.html"], log.parent)
    assert result.returncode == 0, result.stderr
    assert b"closed" in (log.parent / "r.html").read_bytes()


EXITS = textwrap.dedent("""\
    import sys
    from rtrace.core import retriever

    @retriever
    def search(q):
        return [{"page_content": q, "id": "d1"}]

    search("closed")
    print("out")
    sys.exit("goodbye")
""")


@pytest.mark.timeout(60)
def test_with_stderr_closed_nothing_of_rtraces_reaches_the_programs_stdout(tmp_path: Path) -> None:
    # python prints nothing for sys.exit("goodbye") when stderr is closed; rtrace's summary has nowhere to go.
    (tmp_path / "prog.py").write_text(EXITS)
    python = closed("2>&-", [sys.executable, "prog.py"], tmp_path)
    traced = closed("2>&-", [*RTRACE, "run", "prog.py"], tmp_path)
    assert (python.returncode, python.stdout) == (1, b"out\n")
    assert (traced.returncode, traced.stdout) == (python.returncode, python.stdout)
    assert b'"query":"closed"' in next((tmp_path / ".rtrace").glob("*.jsonl")).read_bytes()


@pytest.mark.timeout(60)
def test_with_stderr_closed_warnings_stay_out_of_the_data(log: Path) -> None:
    damaged = log.parent / "damaged.jsonl"
    damaged.write_bytes(log.read_bytes() + b'{"v":1,"event":"retriever_st\n')
    result = closed("2>&-", [*RTRACE, "filter", "--lenient", str(damaged)], log.parent)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith(b'{"v":1,') for line in lines)
    nothing = closed("2>&-", [*RTRACE, "show", str(log), "--name", "no-such-retriever"], log.parent)
    assert (nothing.returncode, nothing.stdout) == (1, b"")  # "no run matches" is not output


@pytest.mark.timeout(60)
@pytest.mark.parametrize("redirect, stream", [(">&-", "output"), ("2>&-", "error")])
def test_run_to_stdout_with_a_stream_closed_is_one_line(tmp_path: Path, redirect: str, stream: str) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    result = closed(redirect, [*RTRACE, "run", "-o", "-", "prog.py"], tmp_path)
    assert result.returncode == 1
    said = result.stderr if redirect == ">&-" else b""
    assert said == (f"rtrace: error: -o -: standard {stream} is closed (-o - writes the log to stdout and the "
                    "script's output to stderr)\n".encode() if redirect == ">&-" else b"")
    assert result.stdout == b""


@pytest.mark.timeout(60)
def test_rtraces_words_never_go_into_a_file_the_script_put_in_sys_stderr(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text('import sys\nsys.stderr = open("mine.txt", "w")\nprint("mine", file=sys.stderr)\n')
    traced = subprocess.run([*RTRACE, "run", "prog.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert traced.returncode == 0
    assert (tmp_path / "mine.txt").read_text() == "mine\n"
    assert traced.stderr.startswith("rtrace: 0 runs in 0 traces")  # the summary, where rtrace was started
    for redirect in ("2>&-", ""):
        (tmp_path / "mine.txt").unlink()
        closed(redirect, [*RTRACE, "run", "prog.py"], tmp_path)
        assert (tmp_path / "mine.txt").read_text() == "mine\n"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("stderr", ["sys.stderr.close()", "sys.stderr = None"])
@pytest.mark.parametrize("ending", ['sys.exit("bye")', "sys.exit(3)", "print('out')"])
def test_a_script_without_sys_stderr_ends_as_under_python(tmp_path: Path, stderr: str, ending: str) -> None:
    # python still says sys.exit's message, or its newline, on descriptor 2
    (tmp_path / "prog.py").write_text(f"import sys\n{stderr}\n{ending}\n")
    python = subprocess.run([sys.executable, "prog.py"], cwd=tmp_path, capture_output=True, timeout=60)
    traced = subprocess.run([*RTRACE, "run", "-q", "prog.py"], cwd=tmp_path, capture_output=True, timeout=60)
    assert (traced.returncode, traced.stdout, traced.stderr) == (python.returncode, python.stdout, python.stderr)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", [["diff", "-", "-"], ["eval", "-", "-", "--qrels", "q.txt"],
                                     ["report", "-", "-", "-o", "r.html"], ["show", "-", "-"], ["stats", "-", "-"]])
def test_stdin_given_twice_is_a_usage_error(log: Path, command: list[str]) -> None:
    # The second read of stdin finds nothing: `diff - -` said every query was only in A.
    (log.parent / "q.txt").write_text("q 0 d1 1\n")
    with log.open("rb") as stdin:
        result = subprocess.run([*RTRACE, *command], cwd=log.parent, stdin=stdin, capture_output=True, timeout=60)
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr == b"rtrace: error: - (standard input) can be read once: give it as one LOG at most\n"
    assert not (log.parent / "r.html").exists()


@pytest.mark.timeout(60)
def test_trace_to_stdout_in_a_program_started_with_stdout_closed_runs_it_untraced(tmp_path: Path) -> None:
    # python leaves sys.stdout None under >&-: the program must run as without rtrace, told once why nothing is recorded.
    (tmp_path / "t.py").write_text(textwrap.dedent("""\
        import sys
        from rtrace.core import retriever, trace_to

        @retriever
        def search(q):
            return [q]

        with trace_to("-"):
            search("x")
        print("ran", file=sys.stderr)
    """))
    r = closed(">&-", [sys.executable, "t.py"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.decode().splitlines() == [  # as for a log path that cannot be opened
        "rtrace: warning: cannot write trace log <stdout>: standard output is closed; this run is not traced",
        "rtrace: warning: 4 events could not be written to <stdout>",  # session start and end, the run's two
        "ran"]
