"""The layout's rules, checked on the source: each rule has one owner module."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT

SOURCES = sorted([*ROOT.glob("core/**/*.py"), *ROOT.glob("cli/**/*.py")])


def _code(path: Path) -> str:
    # Drop docstrings and comments roughly: rules are about code, not prose.
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'"""(?:.|\n)*?"""', "", text)
    return re.sub(r"#[^\n]*", "", text)


def test_event_names_come_from_core_events() -> None:
    from rtrace.core import events

    # "retry" and "text" double as field names and words: the check covers the names with a "_".
    names = sorted((n for n in events.EVENTS if "_" in n), key=len, reverse=True)
    literal = re.compile(r"""["'](%s)["']""" % "|".join(map(re.escape, names)))
    offenders = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in SOURCES if p.name != "events.py"
                 for m in literal.finditer(_code(p))]
    assert not offenders, "use rtrace.core.events constants, not literals:\n" + "\n".join(offenders)


def test_time_stamps_are_parsed_and_made_only_in_core_times() -> None:
    pattern = re.compile(r"fromisoformat|strftime\(|strptime")
    offenders = [str(p.relative_to(ROOT)) for p in SOURCES
                 if p != ROOT / "core" / "times.py" and pattern.search(_code(p))]
    assert not offenders, f"time parsing/formatting outside core/times.py: {offenders}"


def test_only_lineage_decides_a_recorded_runs_parent_and_trace() -> None:
    # The recording side may read ORIGIN / current_run for other reasons, but only lineage.py
    # turns them into a parent_run_id or trace_id.
    pattern = re.compile(r"ORIGIN|(?<!self\.)trace_id\s*=(?!=)")
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.glob("core/record/*.py")
                 if p.name != "lineage.py" and pattern.search(_code(p))]
    assert not offenders, f"parent/trace decided outside core/record/lineage.py: {offenders}"


def test_process_wide_patches_live_in_core_process() -> None:
    # Assigning to a stdlib attribute (threading.Thread.start = ..., os._exit = ..., signal.signal(...))
    # is a process-wide change: it belongs in core/process/, next to its undo.
    pattern = re.compile(r"^\s*(threading\.\w+(\.\w+)?|subprocess\.\w+(\.\w+)?|os\.\w+|sys\.excepthook|"
                         r"process\.BaseProcess\.\w+|ThreadPoolExecutor\.\w+)\s*=[^=]|signal\.signal\(", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in SOURCES
                 if not p.is_relative_to(ROOT / "core" / "process") and pattern.search(_code(p))]
    assert not offenders, f"process-wide changes outside core/process/: {offenders}"
