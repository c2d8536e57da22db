"""The one rule that decides a run's parent and trace while recording.

A run's parent is the ``parent_run_id`` it was started with; a run started
with none nests under rtrace's current run (a LangChain run inside an
``@retriever``), else under the run that started this process (a root of a
traced child process), else it is a root. Its trace is its parent's trace
when the parent is known, else the parent's id, else its own id.

Readers, filters and export use the recorded ``parent_run_id`` / ``trace_id``
and never re-derive them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from rtrace.core.record.context import current_run, default_handlers
from rtrace.core.record.ids import uuid_str

ENV_PARENT = "RTRACE_PARENT_RUN"  # "run_id trace_id", set by a traced parent for its children

# The run (id, trace id) that started this process; set at start-up by the child bootstrap.
ORIGIN: tuple[UUID, str] | None = None


def origin_from_env() -> tuple[UUID, str] | None:
    """The run that started this process, as a traced parent passed it in the environment."""
    run_id, _, trace_id = os.environ.get(ENV_PARENT, "").partition(" ")
    try:
        return UUID(run_id), trace_id or run_id
    except ValueError:
        return None


def origin_run_id() -> str | None:
    """The id of the run that started this process, if a traced parent started it."""
    return None if ORIGIN is None else str(ORIGIN[0])


def implicit_parent(run_id: UUID | None = None) -> UUID | None:
    """The parent of a run started without one (``run_id`` itself never parents itself)."""
    current = current_run()
    if current is not None and current.run_id != run_id:
        return current.run_id
    return ORIGIN[0] if ORIGIN is not None else None


def link(run_id: UUID, parent_run_id: UUID | None, known: Mapping[UUID, Any],
         run_id_str: str | None = None) -> tuple[str | None, str]:
    """``(parent_run_id, trace_id)`` to record for a run.

    ``known`` maps open run ids to ``(run_id, parent_run_id, trace_id, ...)`` tuples (the
    writers' open runs). ``run_id_str``: the run's id as text, when the caller has it
    already (a root's trace id).
    """
    if parent_run_id is None:  # implicit_parent, inline: this runs on every recorded start
        current = current_run()
        if current is not None and current.run_id != run_id:
            parent_run_id = current.run_id
        elif ORIGIN is not None:
            parent_run_id = ORIGIN[0]
        else:  # a root: the common case of a plain script
            return None, uuid_str(run_id) if run_id_str is None else run_id_str
    parent = known.get(parent_run_id)
    if parent is not None:  # the parent is open in this writer: its id and trace as recorded
        return parent[0], parent[2]
    pid = uuid_str(parent_run_id) if type(parent_run_id) is UUID else str(parent_run_id)
    if ORIGIN is not None and parent_run_id == ORIGIN[0]:
        return pid, ORIGIN[1]
    return pid, pid


def unseen(run_id: UUID, parent_run_id: UUID | None) -> tuple[str | None, str]:
    """``(parent_run_id, trace_id)`` for an event of a run whose start was not seen: only what the event says."""
    pid = None if parent_run_id is None else str(parent_run_id)
    return pid, pid or str(run_id)


def trace_of(run_id: UUID) -> str:
    """The trace of an open run, as the process's writers recorded it."""
    for handler in default_handlers():
        runs = getattr(handler, "_runs", None)
        if runs is not None and run_id in runs:
            return runs[run_id][2]
    return str(run_id)


def for_children() -> str | None:
    """What to pass a child process as its origin: the current run, else our own origin."""
    run = current_run()
    if run is not None:
        return f"{run.run_id} {trace_of(run.run_id)}"
    return os.environ.get(ENV_PARENT)  # pass our own parent on to grandchildren
