"""Do no harm: every program in tests/harness/programs behaves under `rtrace run` as under python.

stdout, stderr and the exit code are compared byte for byte; the log must be whole JSON
lines with unique run ids, and hold exactly the runs the program's `# runs: N` header says.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from harness import runner

PROGRAMS = runner.programs()
PARALLEL = 3  # programs in flight at once: most of a run is interpreter start-up and waiting


@pytest.fixture(scope="module")
def started(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every selected program started up front, a few at a time; each test waits for its own."""
    selected = [item.callspec.params["program"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_traced_program_behaves_as_under_python"
                and hasattr(item, "callspec")]
    runnable = [p for p in selected if not runner.missing(p.requires) and not runner.missing(p.optional)]
    pool = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="harness")
    futures: dict[str, tuple[Path, Future[Any]]] = {}
    for program in runnable:
        workdir = tmp_path_factory.mktemp(program.name)
        futures[program.name] = (workdir, pool.submit(runner.run_both, program, workdir))
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def test_the_harness_has_enough_programs() -> None:
    assert len(PROGRAMS) >= 25


@pytest.mark.timeout(300)
@pytest.mark.parametrize("program", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_traced_program_behaves_as_under_python(program: runner.Program, started: dict[str, Any]) -> None:
    lacking = runner.missing(program.requires)
    assert not lacking, f"{program.name} needs {', '.join(lacking)} (the test extra): install '.[test]'"
    absent = runner.missing(program.optional)
    if absent:
        pytest.skip(f"{', '.join(absent)} not installed")
    workdir, future = started[program.name]
    plain, traced = future.result()
    assert traced.stderr.decode(errors="replace") == plain.stderr.decode(errors="replace")
    assert traced.stdout.decode(errors="replace") == plain.stdout.decode(errors="replace")
    assert traced.stdout == plain.stdout and traced.stderr == plain.stderr
    assert traced.returncode == plain.returncode

    events = runner.read_log(workdir / "rtrace")
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
