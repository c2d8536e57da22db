"""Files rtrace creates: private whatever the umask, and never reached through a planted link.

Each attack plants a real symbolic link where rtrace would create a file; the file the
link points at must stay exactly as it was, and rtrace must say so in one line.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import read_events

RTRACE = [sys.executable, "-m", "rtrace.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_"))}
VICTIM_TEXT = "export PATH=/usr/bin\n"

PROG = """
    from rtrace.core import retriever, Document

    @retriever
    def search(query):
        return [Document("passage", {"source": "a.md"})]

    search("q")
    print("done")
"""


def run(*args: str, cwd: Path, umask: int = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RTRACE, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=ENV,
                          preexec_fn=lambda: os.umask(umask))


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "prog.py").write_text(textwrap.dedent(PROG))
    return tmp_path


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    other = tmp_path / "home"
    other.mkdir()
    path = other / ".bashrc"
    path.write_text(VICTIM_TEXT)
    return path


def assert_refused(proc: subprocess.CompletedProcess[str], words: str) -> None:
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtrace: error: ") and words in lines[0], proc.stderr
    assert "done" not in proc.stdout  # refused before the script ran


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_logs_are_0600_and_the_run_directory_0700_whatever_the_umask(project: Path, umask: int) -> None:
    proc = run("run", "-q", "prog.py", cwd=project, umask=umask)
    assert proc.returncode == 0, proc.stderr
    run_dir = project / ".rtrace"
    assert mode(run_dir) == 0o700
    logs = list(run_dir.glob("*.jsonl"))
    assert len(logs) == 1 and mode(logs[0]) == 0o600
    assert mode(run_dir / "latest") == 0o600
    proc = run("run", "-q", "-o", "chosen.jsonl", "prog.py", cwd=project, umask=umask)
    assert proc.returncode == 0, proc.stderr
    assert mode(project / "chosen.jsonl") == 0o600


def test_an_existing_run_directory_of_ours_is_made_private(project: Path) -> None:
    (project / ".rtrace").mkdir(mode=0o755)
    os.chmod(project / ".rtrace", 0o755)
    proc = run("run", "-q", "prog.py", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert mode(project / ".rtrace") == 0o700


def test_the_library_creates_its_log_0600(tmp_path: Path) -> None:
    code = "from rtrace.core import trace_to, retriever\nwith trace_to('lib.jsonl'):\n    retriever(lambda q: ['d'])('q')\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=ENV, preexec_fn=lambda: os.umask(0))
    assert proc.returncode == 0, proc.stderr
    assert mode(tmp_path / "lib.jsonl") == 0o600


def test_a_planted_run_directory_link_is_refused(project: Path, tmp_path: Path) -> None:
    attacker = tmp_path / "attacker"
    attacker.mkdir()
    (project / ".rtrace").symlink_to(attacker)
    proc = run("run", "-q", "prog.py", cwd=project)
    assert_refused(proc, "symbolic link")
    assert list(attacker.iterdir()) == []


def test_a_dangling_gitignore_link_creates_nothing(project: Path, tmp_path: Path) -> None:
    (project / ".rtrace").mkdir(mode=0o700)
    target = tmp_path / "elsewhere" / "created"
    target.parent.mkdir()
    (project / ".rtrace" / ".gitignore").symlink_to(target)
    proc = run("run", "-q", "prog.py", cwd=project)
    assert_refused(proc, ".gitignore is a symbolic link")
    assert not target.exists()


def test_a_latest_link_is_replaced_never_written_through(project: Path, victim: Path) -> None:
    (project / ".rtrace").mkdir(mode=0o700)
    (project / ".rtrace" / "latest").symlink_to(victim)
    proc = run("run", "-q", "prog.py", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == VICTIM_TEXT
    latest = project / ".rtrace" / "latest"
    assert not latest.is_symlink()
    assert read_events(project / ".rtrace" / latest.read_text().strip())[1]["query"] == "q"
    assert [p.name for p in (project / ".rtrace").iterdir() if p.name.startswith(".latest")] == []


def test_an_output_link_to_a_file_is_refused(project: Path, victim: Path) -> None:
    (project / "out.jsonl").symlink_to(victim)
    proc = run("run", "-q", "-o", "out.jsonl", "prog.py", cwd=project)
    assert_refused(proc, "symbolic link")
    assert victim.read_text() == VICTIM_TEXT


def test_a_dangling_output_link_creates_nothing(project: Path, tmp_path: Path) -> None:
    target = tmp_path / "home" / "planted.jsonl"
    target.parent.mkdir()
    (project / "out.jsonl").symlink_to(target)
    proc = run("run", "-q", "-o", "out.jsonl", "prog.py", cwd=project)
    assert proc.returncode == 1 and proc.stderr.startswith("rtrace: error: ") and len(proc.stderr.splitlines()) == 1
    assert not target.exists()


def test_an_output_link_to_a_device_is_followed(project: Path) -> None:
    (project / "null.jsonl").symlink_to("/dev/null")
    proc = run("run", "-q", "-o", "null.jsonl", "prog.py", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n"


def test_the_library_warns_and_runs_untraced_on_a_planted_link(tmp_path: Path, victim: Path) -> None:
    (tmp_path / "lib.jsonl").symlink_to(victim)
    code = "from rtrace.core import trace_to, retriever\nwith trace_to('lib.jsonl'):\n    print(retriever(lambda q: ['d'])('q'))\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=ENV)
    assert proc.returncode == 0 and proc.stdout == "['d']\n"
    assert proc.stderr.startswith("rtrace: warning: cannot open trace log lib.jsonl: it is a symbolic link")
    assert victim.read_text() == VICTIM_TEXT


# --- files the reading commands write (report -o, export -o) ------------------------------------

WRITERS = [["report", "-o"], ["export", "--format", "otlp-json", "-o"]]


@pytest.fixture
def log(project: Path) -> Path:
    assert run("run", "-q", "-o", "t.jsonl", "prog.py", cwd=project).returncode == 0
    return project / "t.jsonl"


@pytest.mark.parametrize("command", WRITERS, ids=["report", "export"])
@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_a_report_or_export_is_0600_whatever_the_umask(log: Path, command: list[str], umask: int) -> None:
    # It holds what the log holds (queries, document text): as private as the log.
    proc = run(*command, "out", str(log), cwd=log.parent, umask=umask)
    assert proc.returncode == 0, proc.stderr
    assert mode(log.parent / "out") == 0o600 and b"passage" in (log.parent / "out").read_bytes()


@pytest.mark.parametrize("command", WRITERS, ids=["report", "export"])
def test_a_report_or_export_link_to_a_file_is_refused(log: Path, victim: Path, command: list[str]) -> None:
    (log.parent / "out").symlink_to(victim)
    proc = run(*command, "out", str(log), cwd=log.parent)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("rtrace: error: ") and "symbolic link" in proc.stderr
    assert victim.read_text() == VICTIM_TEXT


@pytest.mark.parametrize("command", WRITERS, ids=["report", "export"])
def test_a_report_or_export_link_to_a_device_is_followed(log: Path, command: list[str]) -> None:
    (log.parent / "out").symlink_to("/dev/null")
    proc = run(*command, "out", str(log), cwd=log.parent)
    assert proc.returncode == 0, proc.stderr
    assert (log.parent / "out").is_symlink()


def test_a_report_never_writes_through_a_link_planted_at_a_name_it_may_use(log: Path, victim: Path) -> None:
    # The report used to be written to OUTPUT.tmpPID first: a name anyone could plant a link at.
    # The shell's pid is the pid rtrace runs with (exec).
    proc = subprocess.run(["sh", "-c", f'ln -s {victim} r.html.tmp$$ && exec "$@"', "sh", *RTRACE, "report",
                           str(log), "-o", "r.html"], cwd=log.parent, capture_output=True, text=True, timeout=120,
                          env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == VICTIM_TEXT
    assert not (log.parent / "r.html").is_symlink() and "passage" in (log.parent / "r.html").read_text()


@pytest.mark.parametrize("command", WRITERS, ids=["report", "export"])
def test_a_full_disk_is_one_line(log: Path, command: list[str]) -> None:
    # Through a link of our own: a report once replaced the file at its -o path, and as root
    # `-o /dev/full` replaced the device itself.
    (log.parent / "full").symlink_to("/dev/full")
    proc = run(*command, "full", str(log), cwd=log.parent)
    assert (proc.returncode, proc.stderr) == (1, "rtrace: error: cannot write full: No space left on device\n")
    assert (log.parent / "full").is_symlink()
