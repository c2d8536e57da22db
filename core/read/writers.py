"""Following a log: when has every writer of it gone without ending its session?

A run killed with ``kill -9`` never writes its ``session_end``, so a follower waiting for
it would wait forever. The follower stops once three things hold: a session read from
the log is still open, its writers are gone (``alive``), and the log has not grown since
the previous poll. A writer that is alive but quiet (a retriever sleeping for a minute)
is followed as long as it lives. A log whose sessions all ended, or that has none yet, is
followed as ``tail -f`` follows a file: until Ctrl-C.

Gone means both: no process holds the log open for writing (``sink.being_written``: the
writers' lock, which the kernel drops with the last descriptor, so a forked child still
writing counts), and no open session's process is alive. The lock alone would end the
following of a live writer that holds none: an older rtrace, or a file system without
``flock``. The pid alone would trust a pid the system may have reused (then the follower
waits, as ``tail -f`` does, rather than end early).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from rtrace.core import events
from rtrace.core.record.sink import being_written, pid_alive
from rtrace.core.times import ts_seconds

if TYPE_CHECKING:
    from rtrace.core.read.reader import Event


class WriterWatch:
    """The sessions opened in one followed log, and whether their writers are gone."""

    __slots__ = ("path", "open", "size")

    def __init__(self, path: str) -> None:
        self.path = path
        self.open: dict[object, tuple[object, object]] = {}  # session_id -> the pid and ts its session_start names
        self.size = -1  # the log's size at the previous idle poll

    def each(self, read: Iterator[Event]) -> Iterator[Event]:
        """``read``'s events, noting the sessions they open and end."""
        for ev in read:
            kind = ev.data.get("event")
            if kind == events.SESSION_START:
                self.open[ev.data.get("session_id")] = (ev.data.get("pid"), ev.data.get("ts"))
            elif kind == events.SESSION_END:
                self.open.pop(ev.data.get("session_id"), None)
            yield ev

    def gone(self, size: int) -> str | None:
        """At an idle poll (everything up to ``size`` read): the warning to end on, or None to keep following."""
        grown, self.size = size != self.size, size
        if not self.open or grown or alive(self.path, self.open.values()):
            return None
        pid = next(iter(self.open.values()))[0]
        who = f"the writer (pid {pid})" if isinstance(pid, int) else "the writer"
        return f"{who} died without ending its session; stopped following {self.path}"


def alive(path: str, writers: Iterable[tuple[object, object]]) -> bool:
    """Is the log at ``path`` still written: a writer holds its lock, or a process named by ``writers``
    (the pid and ``ts`` of an unfinished session's start) is there and was there then?"""
    return being_written(path) or any(pid_alive(pid, ts_seconds(ts)) for pid, ts in writers)
