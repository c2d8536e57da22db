"""After ``fork``: each live writer in the child becomes a writer of its own (new session, seq)."""

from __future__ import annotations

import os
import weakref
from typing import Any

_writers: weakref.WeakSet[Any] = weakref.WeakSet()


def track(writer: Any) -> None:
    """Call ``writer._after_fork()`` in every forked child while ``writer`` lives."""
    _writers.add(writer)


def _reset_after_fork() -> None:
    for writer in list(_writers):
        writer._after_fork()


if hasattr(os, "register_at_fork"):  # at-fork hooks cannot be unregistered: this one is a no-op with no writers
    os.register_at_fork(after_in_child=_reset_after_fork)
