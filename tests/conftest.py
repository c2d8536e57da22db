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
