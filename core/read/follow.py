"""``show --follow`` with no LOG: wait for the next ``rtrace run`` and follow it, then the next.

A run still in progress when following starts is followed at once; a finished one is not
(its events are history, ``rtrace show`` shows them). Each run is read until its own
``session_end``, or until its writers are gone without one (``writers.WriterWatch``);
then the next run is awaited. New runs are spotted from the names in
``.rtrace/`` and the index's size, so waiting reads no log.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rtrace.core import events
from rtrace.core.read.reader import Documents, Event, ReadStats, read_lines
from rtrace.core.store import INDEX, find_run_dir, list_runs

if TYPE_CHECKING:
    from rtrace.core.read.pipeline import Source


class _Watcher:
    """Spots runs that start after it was made, cheaply (directory names, index size)."""

    def __init__(self) -> None:
        self.run_dir: Path | None = find_run_dir()
        self.known: set[Path] = set()
        self.index_size = -1
        self.current: Path | None = None
        if self.run_dir is not None:
            runs = list_runs(self.run_dir)
            self.known = {r.path for r in runs}
            self.index_size = self._index_size()
            if runs and not runs[0].ended and not runs[0].died:  # a run killed with -9 never says it ended
                self.current = runs[0].path

    def _index_size(self) -> int:
        try:
            return os.stat(self.run_dir / INDEX).st_size  # type: ignore[operator]
        except OSError:
            return -1

    def poll(self) -> Path | None:
        if self.current is not None:
            path, self.current = self.current, None
            return path
        if self.run_dir is None:
            self.run_dir = find_run_dir()
            if self.run_dir is None:
                return None
        names = {self.run_dir / n for n in os.listdir(self.run_dir) if n.endswith(".jsonl") and n != INDEX}
        size = self._index_size()
        if names <= self.known and size == self.index_size:
            return None
        self.index_size = size
        new = [r for r in list_runs(self.run_dir) if r.path not in self.known]
        if not new:
            self.known |= names
            return None
        oldest = new[-1]  # list_runs is newest first: take runs in the order they started
        self.known.add(oldest.path)
        return oldest.path


def follow_next_runs(source: Source, stats: ReadStats, *, documents: Documents = True,
                     poll: float = 0.2) -> Iterator[Event]:
    """Events of each run that starts from now on, each read until its session ends."""
    watcher = _Watcher()
    waiting_said = False
    while True:
        path = watcher.poll()
        if path is None:
            if not waiting_said and source.announce is not None:
                where = watcher.run_dir or Path.cwd() / ".rtrace"
                source.announce(f"waiting for the next `rtrace run` in {os.path.relpath(where)}/ (Ctrl-C stops)")
                waiting_said = True
            time.sleep(poll)
            continue
        waiting_said = False
        source.paths = [os.path.relpath(path)]
        main_session = None
        said = len(stats.warnings)
        lines = read_lines([str(path)], lenient=source.lenient, stats=stats, follow=True, documents=documents,
                           poll=poll)
        try:
            for ev in lines:
                yield ev
                kind = ev.data.get("event")
                if kind == events.SESSION_START and main_session is None:
                    main_session = ev.data.get("session_id")
                elif kind == events.SESSION_END and ev.data.get("session_id") == main_session:
                    break
        finally:
            lines.close()
        if source.announce is not None:  # a run whose writer died (kill -9): said now, not at Ctrl-C
            for message in stats.warnings[said:]:
                source.announce(f"warning: {message}")
            del stats.warnings[said:]
