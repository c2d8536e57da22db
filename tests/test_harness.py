"""Do no harm: every program in tests/harness/programs behaves under `rtrace run` as under python.

stdout, stderr and the exit code are compared byte for byte; the log must be whole JSON
lines with unique run ids, and hold exactly the runs the program's `# runs: N` header says.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import runner

PROGRAMS = runner.programs()


def test_the_harness_has_enough_programs() -> None:
    assert len(PROGRAMS) >= 25


@pytest.mark.timeout(300)
@pytest.mark.parametrize("program", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_traced_program_behaves_as_under_python(program: runner.Program, tmp_path: Path) -> None:
    lacking = runner.missing(program.requires)
    assert not lacking, f"{program.name} needs {', '.join(lacking)} (the test extra): install '.[test]'"
    absent = runner.missing(program.optional)
    if absent:
        pytest.skip(f"{', '.join(absent)} not installed")
    plain, traced = runner.run_both(program, tmp_path)
    assert traced.stderr.decode(errors="replace") == plain.stderr.decode(errors="replace")
    assert traced.stdout.decode(errors="replace") == plain.stdout.decode(errors="replace")
    assert traced.stdout == plain.stdout and traced.stderr == plain.stderr
    assert traced.returncode == plain.returncode

    events = runner.read_log(tmp_path / "rtrace")
    starts = runner.run_starts(events)
    if program.runs is not None:
        assert len(starts) == program.runs, [(e["event"], e.get("name"), e.get("query")) for e in starts]
    ids = [e["run_id"] for e in starts]
    assert len(set(ids)) == len(ids), "a run id was used twice"
    ended: set[str] = set()
    for e in events:  # nothing of a session is written after its session_end
        assert e["session_id"] not in ended, f"{e['event']} after its session's end"
        if e["event"] == "session_end":
            ended.add(e["session_id"])
