from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the differential helpers

# rtrace shows times in local time: the suite runs in UTC wherever it runs, so renderings are
# the same on every machine (tests of other zones set TZ for their own subprocess).
os.environ["TZ"] = "UTC"
time.tzset()

ROOT = Path(__file__).resolve().parent.parent


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every line of a log as a dict; fails on a torn or non-JSON line."""
    raw = Path(path).read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), "log does not end with a newline"
    return [json.loads(line) for line in raw.splitlines()]


@pytest.fixture(scope="session")
def schema_validator() -> jsonschema.Draft202012Validator:
    from rtrace.core import schema_text

    schema = json.loads(schema_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture
def validate(schema_validator: jsonschema.Draft202012Validator) -> Any:
    def check(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        assert events, "no events to validate"
        for e in events:
            errors = sorted(schema_validator.iter_errors(e), key=str)
            assert not errors, f"{e.get('event')}: {errors[0].message}"
        return events

    return check


@pytest.fixture(autouse=True)
def _no_leftover_default_handlers() -> Any:
    from rtrace.core.record import context

    before = context._defaults
    yield
    for handler in context._defaults:
        if not any(h is handler for h in before):
            context.remove_default_handler(handler)  # also releases its use of the thread patches


def _proc_stat(pid: int | str) -> tuple[str, int, int, int] | None:
    """(state, ppid, session id, start time) of a process, from /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[3]), int(fields[19])


def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        st = _proc_stat(pid)
        if st is None:
            break
        pid = st[1]
        chain.append(pid)
    return chain


def _left_behind(me: int, since: int) -> list[str]:
    """Live descendants of this pytest (orphans of the tests come back to it: it is their subreaper)."""
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        st = _proc_stat(entry.name)
        if st is None or st[0] in ("Z", "X") or st[3] < since or me not in _ancestors(int(entry.name)):
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if st[1] == me and "from multiprocessing." in cmd:
            continue  # this pytest's own multiprocessing helpers (resource tracker, forkserver): they end with it
        left.append(f"{entry.name}: {cmd[:200]}")
    return left


def _become_subreaper() -> None:
    # Linux: processes orphaned by a test's process are re-parented to pytest, not to init,
    # so they are still found (and only they: never another process of this terminal session).
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


@pytest.fixture(scope="session", autouse=True)
def _no_process_left_behind() -> Any:
    """The suite fails when a process a test started (in this session) outlives the tests."""
    if not Path("/proc/self/stat").exists():
        yield
        return
    me = os.getpid()
    mine = _proc_stat(me)
    _become_subreaper()
    yield
    if mine is None:
        return
    import signal
    import time

    deadline = time.monotonic() + 10
    left = _left_behind(me, mine[3])
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _left_behind(me, mine[3])
    for line in left:
        try:
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
        except OSError:
            pass
    assert not left, "processes started by the tests are still running:\n" + "\n".join(left)
