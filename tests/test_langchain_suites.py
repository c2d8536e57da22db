"""LangChain's own unit tests as an oracle (slow: fetches source distributions once, then cached).

- Issue 12: the callback-manager, dispatch-custom-event and retriever tests of the installed
  langchain-core, with their imports pointed at ``rtrace.core``: every applicable test passes;
  every other test is listed with its reason in tests/langchain_suites.py (``NOT_APPLICABLE``).
  langchain-classic's callback and retriever tests are fetched and each file classified.
- Issue 10: langchain-core's runnable-events (v1, v2), runnable and callbacks tests, unmodified, end the
  same way under ``rtrace run -m pytest`` as under ``python -m pytest``, with nothing lost.
"""

from __future__ import annotations

import json
from pathlib import Path

import langchain_suites as suites
import pytest

pytestmark = pytest.mark.slow

ORACLE_PATHS = [
    "tests/unit_tests/runnables/test_runnable_events_v1.py",
    "tests/unit_tests/runnables/test_runnable_events_v2.py",
    "tests/unit_tests/runnables/test_runnable.py",
    "tests/unit_tests/callbacks",
]


@pytest.fixture(scope="module")
def core_sdist() -> Path:
    version = suites.installed_version("langchain-core")
    assert version, "langchain-core (the test extra) is not installed"
    return suites.fetch("langchain-core", version)


@pytest.fixture(scope="module")
def python() -> Path:
    return suites.venv_python()


@pytest.mark.timeout(1500)
def test_langchain_core_tests_pass_against_rtrace_core(core_sdist: Path, python: Path, tmp_path: Path) -> None:
    root = suites.workdir(core_sdist, tmp_path / "core")
    changed = suites.rewrite(root, suites.CORE_REWRITTEN)
    assert "tests/unit_tests/callbacks/test_dispatch_custom_event.py" in changed
    text = (root / "tests/unit_tests/callbacks/test_dispatch_custom_event.py").read_text()
    assert "from rtrace.core import adispatch_custom_event, dispatch_custom_event\n" in text

    got, tail = suites.run_pytest(python, root, list(suites.CORE_REWRITTEN), tmp_path / "report.xml")
    applicable = {t: s for t, s in got.items() if suites.not_applicable(t, suites.NOT_APPLICABLE) is None}
    assert len(applicable) >= 14, (sorted(got), tail)
    failing = {t: s for t, s in applicable.items() if s != "passed"}
    assert not failing, f"LangChain's own tests fail against rtrace.core: {failing}\n{tail}"
    # Every listed exception still names a test that exists (a new LangChain version is re-judged).
    for key in suites.NOT_APPLICABLE:
        assert any(t == key or t.startswith(key + "::") or t.split("[")[0] == key for t in got), key


@pytest.mark.timeout(1500)
def test_langchain_classic_callback_and_retriever_tests_are_classified(tmp_path: Path) -> None:
    version = suites.installed_version("langchain-classic") or suites.CLASSIC_FALLBACK_VERSION
    root = suites.fetch("langchain-classic", version)
    files = [p.relative_to(root).as_posix() for d in suites.CLASSIC_DIRS
             for p in sorted((root / d).rglob("test_*.py"))]
    assert files, "no tests found in langchain-classic's source distribution"
    unclassified = [f for f in files if suites.not_applicable(f, suites.CLASSIC_NOT_APPLICABLE) is None]
    assert not unclassified, f"judge these langchain-classic tests (applicable or why not): {unclassified}"


@pytest.mark.timeout(1500)
def test_langchain_tests_end_the_same_under_rtrace_run(core_sdist: Path, python: Path, tmp_path: Path) -> None:
    root = suites.workdir(core_sdist, tmp_path / "core")
    plain, plain_tail = suites.run_pytest(python, root, ORACLE_PATHS, tmp_path / "plain.xml")
    log = tmp_path / "traced.jsonl"
    traced, traced_tail = suites.run_pytest(python, root, ORACLE_PATHS, tmp_path / "traced.xml", traced_log=log)
    assert len(plain) >= 200, plain_tail
    assert not (root / "langchain_core").exists()  # the installed LangChain is what runs
    differ = {t: (plain.get(t), traced.get(t)) for t in plain.keys() | traced.keys() if plain.get(t) != traced.get(t)}
    assert not differ, f"(python, rtrace run) outcomes differ: {differ}\n{traced_tail}"
    assert "rtrace:" not in traced_tail
    events = [json.loads(line) for line in log.read_text().splitlines()]
    end = events[-1]
    assert end["event"] == "session_end" and end["lost_events"] == 0 and end["exit_code"] == 0
    assert sum(e["event"] == "llm_start" for e in events) == sum(e["event"] == "llm_end" for e in events) > 0
