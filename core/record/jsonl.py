"""``JsonlHandler``: every event as one JSON line, written with one ``write(2)``.

The file is opened with ``O_APPEND`` and each line goes out in a single
unbuffered ``os.write``: lines from threads, tasks and several processes never
interleave, and an event is in the kernel (safe from ``kill -9``) as soon as
the hook returns. No background thread, no flush to forget. ``sink.Sink`` owns
the descriptor: created private, never through a link, written only while it is
still the log, one whole line or nothing.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any
from uuid import UUID

import orjson
from rtrace.core import events
from rtrace.core.errors import warn
from rtrace.core.process import forks
from rtrace.core.record import capture, dispatch, lineage
from rtrace.core.record.lineage import link
from rtrace.core.record.documents import CONTENT_MODES, apply_content_mode, content_text, record_documents
from rtrace.core.record.encode import MAX_TEXT, OPTIONS, bounded, dumps_line
from rtrace.core.record.encode import text_of as _text
from rtrace.core.record.fields import error_fields, request_fields, retry_fields, session_fields
from rtrace.core.record.handlers import BaseCallbackHandler
from rtrace.core.record.ids import uuid7, uuid_str
from rtrace.core.record.redact import Redactor
from rtrace.core.record.sink import Sink, open_log
from rtrace.core.times import utc_now_iso
from rtrace.core.version import __version__

_monotonic = time.perf_counter
_ns = time.perf_counter_ns  # run durations in integer nanoseconds: no float rounding per event
_dumps = orjson.dumps
# The first try for every line. Without OPT_NON_STR_KEYS (~0.6 µs a line): a dict with a
# non-string key makes orjson raise, and the line then goes through dumps_line, which has it.
_FAST_OPTIONS = orjson.OPT_APPEND_NEWLINE  # numpy values too (~0.3 µs a line) go to dumps_line

ENV_CONTENT = "RTRACE_CONTENT"
_RETRIEVER_START, _RETRIEVER_END = events.RETRIEVER_START, events.RETRIEVER_END


def content_mode(mode: str | None) -> str:
    """``full``, ``hash`` or ``none``: the argument, else ``$RTRACE_CONTENT``, else ``full``.

    A bad argument raises ValueError; a bad environment value warns and records no text at all
    (whoever set it asked for privacy)."""
    if mode is not None:
        if mode not in CONTENT_MODES:
            raise ValueError(f"content is one of {', '.join(CONTENT_MODES)}, not {mode!r}")
        return mode
    env = os.environ.get(ENV_CONTENT)
    if not env:
        return "full"
    if env not in CONTENT_MODES:
        warn(f"{ENV_CONTENT}={env!r} is not one of {', '.join(CONTENT_MODES)}; recording no text")
        return "none"
    return env


def _name(name: Any, serialized: Any, default: str) -> str:
    if type(name) is str and name:
        return name
    if name:
        return str(name)
    if isinstance(serialized, dict):
        if serialized.get("name"):
            return str(serialized["name"])
        ids = serialized.get("id")
        if isinstance(ids, list) and ids:
            return str(ids[-1])
    return default


# An open run, as its events record it: (run_id, parent_run_id, trace_id, name, start in ns;
# -1 when its start was not seen). A tuple: built and read on every traced run, no __init__.
_Run = tuple


class JsonlHandler(BaseCallbackHandler):
    """Writes event schema v1 to a path (appending), a file descriptor or a binary file.

    ``redact``: words a secret key name ends with, matched after normalising case and
    separators (default ``redact.DEFAULT_REDACT``: ``...api_key``, ``...token``, ``...secret``,
    ``...password``, ``cookie``...; ``()`` for none). Credentials and well-known token formats
    are replaced in every recorded string (``redact_values=False`` turns that off), document
    content included only with ``redact_content=True``. ``max_content``:
    truncate each document's ``page_content`` to this many characters, recording
    the original ``content_length``. ``content``: ``"full"`` (default, or ``$RTRACE_CONTENT``),
    ``"hash"`` or ``"none"``: query and document text recorded as is, as a hash, or not at all
    (ids, scores, metadata and lengths stay). ``root_tags`` / ``root_metadata``: added to
    every root run. ``observers``: called with each event after it is written
    (a summary, a live view); an observer that raises is dropped with a warning. ``reopen_path``: for a
    descriptor, where to reopen the log if the program closes it. Never raises into traced code: a path that
    cannot be opened or a failing disk is one warning on stderr.
    """

    run_inline = True  # a local append is cheaper than any thread hop
    # Plain attributes, not properties: they are read on every event.
    ignore_llm = ignore_retry = ignore_chain = ignore_agent = False
    ignore_retriever = ignore_chat_model = ignore_custom_event = False

    def __init__(
        self,
        path_or_file: str | os.PathLike[str] | int | IO[bytes],
        *,
        redact: Iterable[str] | None = None,
        redact_values: bool = True,
        redact_content: bool = False,
        max_content: int | None = None,
        session_id: str | None = None,
        root_tags: Sequence[str] = (),
        root_metadata: dict[str, Any] | None = None,
        observers: Sequence[Callable[[dict[str, Any]], None]] = (),
        name: str | None = None,
        reopen_path: str | None = None,
        content: str | None = None,
    ) -> None:
        self.content = content_mode(content)
        self._lock = threading.Lock()
        self._sink: Sink | None = None
        self._file: IO[bytes] | None = None
        self._runs: dict[UUID, _Run] = {}
        self._seq = 0
        self._session_id = session_id or str(uuid7())
        self._session_t0 = 0.0
        self._started = False
        self._closed = False
        self._write_failed = False
        self.lost = 0
        self.redact = Redactor(redact, patterns=redact_values, content=redact_content)
        self.max_content = max_content
        self.root_tags = self.redact.strings(root_tags)  # --tag openai=sk-...
        self.root_metadata = self.redact(dict(root_metadata or {}))  # --meta db=postgres://bob:pw@h
        self.observers = list(observers)
        self._session_extra: dict[str, Any] = {}
        origin = lineage.origin_run_id()
        if origin is not None:  # a child process of a traced one
            self._session_extra["parent_run_id"] = origin
        self.target = name or self._open(path_or_file, reopen_path)
        if name is not None:
            self._open(path_or_file, reopen_path)
        forks.track(self)

    def _open(self, target: Any, reopen_path: str | None) -> str:
        if isinstance(target, int):  # the caller's descriptor: reopened by reopen_path if lost, never closed
            self._sink = Sink(target, reopen_path)
            return f"fd {target}"
        if isinstance(target, (str, os.PathLike)):
            path = os.fspath(target)
            if path == "-":
                buffer = getattr(sys.stdout, "buffer", None)  # None: python was started with stdout closed
                if buffer is None:
                    warn("cannot write trace log <stdout>: standard output is closed; this run is not traced")
                    self._write_failed = True
                else:
                    self._file = buffer
                return "<stdout>"
            try:
                self._sink = Sink(open_log(path), path, owned=True)
            except OSError as e:
                warn(f"cannot open trace log {path}: {e.strerror or e}; this run is not traced")
                self._write_failed = True
                return path
            weakref.finalize(self, self._sink.close)
            return path
        if hasattr(target, "write"):
            self._file = target
            return getattr(target, "name", repr(target))
        raise TypeError(f"JsonlHandler needs a path, a file descriptor or a binary file, not {type(target).__name__}")

    @property
    def session_id(self) -> str:
        return self._session_id

    # writing ---------------------------------------------------------------

    def _emit(self, ev: dict[str, Any]) -> None:
        """Stamp ``seq`` and ``ts`` on a fully built event and write it as one line."""
        with self._lock:
            if not self._started:
                self._start_session()
            self._seq = ev["seq"] = self._seq + 1
            ev["ts"] = utc_now_iso()
            try:
                line = _dumps(ev, option=_FAST_OPTIONS)
            except Exception:  # non-string keys, unusual values: the safe, slower encoder
                line = dumps_line(ev)
            if len(line) > MAX_TEXT:  # only a big line can hold a string over its budget
                line = dumps_line(bounded(ev))
            sink = self._sink
            if sink is not None:  # _write's common case, without its call (on every event)
                try:
                    sink.write(line)
                except OSError as e:
                    self._lose(e)
            else:
                self._write(line)
        if self.observers:
            for observer in self.observers:  # _notify's loop, inline
                try:
                    observer(ev)
                except Exception as e:
                    self._drop(observer, e)

    def _notify(self, ev: dict[str, Any]) -> None:
        # No copy of the list per event: a failing observer is dropped by replacing the list.
        for observer in self.observers:
            try:
                observer(ev)
            except Exception as e:
                self._drop(observer, e)

    def _drop(self, observer: Callable[[dict[str, Any]], None], e: Exception) -> None:
        self.observers = [o for o in self.observers if o is not observer]
        warn(f"observer {observer!r} failed and was removed: {e!r}")

    def open_session(self, **fields: Any) -> None:
        """Write ``session_start`` now (normally it waits for the first event).

        ``fields`` override or add to its keys, e.g. the traced script's ``argv``.
        """
        with self._lock:
            self._session_extra = fields
            if not self._started:
                self._start_session()

    def _event(self, event: str, run: _Run) -> dict[str, Any]:
        # seq and ts are placeholders here so they come first in the line.
        return {
            "v": 1, "seq": 0, "ts": "", "event": event, "session_id": self._session_id,
            "run_id": run[0], "parent_run_id": run[1], "trace_id": run[2], "name": run[3],
        }

    def _start_session(self) -> None:
        self._started = True
        self._session_t0 = _monotonic()
        self._seq += 1
        ev = {
            "v": 1, "seq": self._seq, "ts": utc_now_iso(), "event": events.SESSION_START,
            "session_id": self._session_id, **session_fields(__version__), **self._session_extra,
        }
        if self.content != "full":
            ev["content"] = self.content
        for key in ("argv", "rtrace_argv"):  # `--api-key sk-...` on a command line
            if key in ev:
                ev[key] = self.redact.argv(ev[key])
        ev["cwd"] = self.redact.any_text(ev["cwd"])
        self._write(dumps_line(ev))
        if self.observers:
            self._notify(ev)

    def _write(self, line: bytes) -> None:
        # Exceptions other than the file's own (a signal handler's KeyboardInterrupt) are
        # the program's: they pass through, and the sink finishes the line before the next.
        sink = self._sink
        if sink is not None:
            try:
                sink.write(line)
                return
            except OSError as e:  # ENOSPC, EIO, a closed pipe, a lost descriptor
                self._lose(e)
                return
        if self._file is not None:
            try:
                self._file.write(line)
                self._file.flush()
            except Exception as e:
                self._lose(e)
        else:
            self.lost += 1

    def _lose(self, e: BaseException) -> None:
        # Warn once, keep the program running.
        self.lost += 1
        if not self._write_failed:
            self._write_failed = True
            reason = getattr(e, "strerror", None) or e
            warn(f"cannot write trace log {self.target}: {reason}; events are being lost")

    def close(self, exit_code: int | None = None, error: BaseException | None = None) -> None:
        """Write ``session_end`` (once). Events that still arrive are written after it."""
        with self._lock:
            if self._closed or not self._started:
                self._closed = True
                return
            self._closed = True
            self._seq += 1
            ev = {
                "v": 1, "seq": self._seq, "ts": utc_now_iso(), "event": events.SESSION_END,
                "session_id": self._session_id,
                "exit_code": exit_code,
                "error": self.redact.error(error_fields(error)),  # the script's uncaught exception
                "duration_ms": round((_monotonic() - self._session_t0) * 1000.0, 3),
                "incomplete_runs": [r[0] for r in self._runs.values()],
                "lost_events": self.lost,
            }
            self._write(dumps_line(ev))
        if self.observers:
            self._notify(ev)
        if self.lost:
            warn(f"{self.lost} events could not be written to {self.target}")

    def close_at_exit(self) -> None:
        """Close at interpreter exit (for handlers nobody else closes)."""
        atexit.register(self.close)

    def _after_fork(self) -> None:
        # A forked child is a new writer: its own session and seq, same file.
        self._lock = threading.Lock()
        self._session_extra = {**self._session_extra, "parent_session_id": self._session_id}
        origin = lineage.origin_run_id()  # set at the fork to the run that was current
        if origin is not None:
            self._session_extra["parent_run_id"] = origin
        self._runs = {}  # the parent's open runs are the parent's to end, not this child's
        self._session_id = str(uuid7())
        self._seq = 0
        self._started = False
        self._closed = False

    # run bookkeeping -------------------------------------------------------

    def _begin(self, run_id: UUID, parent_run_id: UUID | None, name: str) -> _Run:
        runs = self._runs
        rid = uuid_str(run_id)
        parent, trace = lineage.link(run_id, parent_run_id, runs, rid)
        run = runs[run_id] = (rid, parent, trace, name, _ns())
        return run

    def _lookup(self, run_id: UUID, parent_run_id: UUID | None, pop: bool) -> _Run:
        run = self._runs.pop(run_id, None) if pop else self._runs.get(run_id)
        if run is None:  # a run whose start this handler did not see
            parent, trace = lineage.unseen(run_id, parent_run_id)
            run = (str(run_id), parent, trace, None, -1)
        return run

    def _start(self, kind: str, run_id: UUID, parent_run_id: UUID | None, name: str,
               tags: list[str] | None, metadata: dict[str, Any] | None) -> dict[str, Any]:
        redact = self.redact
        run = self._begin(run_id, parent_run_id, name if name in redact.clean_text else redact.text(name))
        ev = self._event(kind, run)
        ev["tags"] = redact.strings(tags) if tags else []
        ev["metadata"] = self.redact(metadata) if metadata else {}
        if run[1] is None and (self.root_tags or self.root_metadata):
            ev["tags"] += [t for t in self.root_tags if t not in ev["tags"]]
            ev["metadata"] = {**ev["metadata"], **self.root_metadata}
        return ev

    def _finish(self, kind: str, run_id: UUID, parent_run_id: UUID | None,
                duration_ms: Any = None) -> dict[str, Any]:
        run = self._lookup(run_id, parent_run_id, pop=True)
        ev = self._event(kind, run)
        if isinstance(duration_ms, (int, float)) and not isinstance(duration_ms, bool):
            ev["duration_ms"] = duration_ms  # given by the caller (a replay of a recorded run)
        else:
            # Microseconds, as milliseconds with three decimals.
            ev["duration_ms"] = (_ns() - run[4]) // 1000 / 1000 if run[4] >= 0 else None
        return ev

    # retriever hooks -------------------------------------------------------

    # The two hooks on every traced retrieval: _start, _finish and _event inlined.

    def on_retriever_start(self, serialized: dict[str, Any] | None, query: Any, *, run_id: UUID,
                           parent_run_id: UUID | None = None, tags: list[str] | None = None,
                           metadata: dict[str, Any] | None = None, name: str | None = None,
                           **kwargs: Any) -> None:
        if type(name) is not str or not name:
            name = _name(name, serialized, "Retriever") if name or serialized else "Retriever"
        redact = self.redact
        if name not in redact.clean_text:
            name = redact.text(name)
        runs = self._runs
        rid = _dumps(run_id)[1:-1].decode() if type(run_id) is UUID else str(run_id)  # ids.uuid_str, inlined
        pid, trace = link(run_id, parent_run_id, runs, rid)
        runs[run_id] = (rid, pid, trace, name, _ns())
        if type(query) is not str:
            if query is not None:
                query = redact.text(_text(query))
        elif query not in redact.clean_text:  # redact.text's own first test, without its call
            query = redact.text(query)
        content = self.content
        ev = {
            "v": 1, "seq": 0, "ts": "", "event": _RETRIEVER_START, "session_id": self._session_id,
            "run_id": rid, "parent_run_id": pid, "trace_id": trace, "name": name,
            "tags": redact.strings(tags) if tags else [],
            # redact()'s own first test for a dict, without its call: LangChain's metadata is never empty
            "metadata": (metadata if type(metadata) is dict and redact.clean_flat(metadata) else redact(metadata))
            if metadata else {},
            "query": query if content == "full" else content_text(query, content),
        }
        if pid is None and (self.root_tags or self.root_metadata):
            ev["tags"] += [t for t in self.root_tags if t not in ev["tags"]]
            ev["metadata"] = {**ev["metadata"], **self.root_metadata}
        if content != "full" and isinstance(query, str):
            ev["query_length"] = len(query)
        cap = capture.current()
        asked = cap.bind(run_id, parent_run_id, self) if cap is not None else None
        if metadata or kwargs or asked:
            request = request_fields(metadata, {**asked, **kwargs} if asked else kwargs)
            if request:  # mostly none: LangChain's metadata is never empty, but rarely names a store
                ev.update(redact(request))
            given = kwargs.get("input_documents") if kwargs else None
            if isinstance(given, list):  # a rerank stage: what it was given, to compare with what it returned
                docs = record_documents(given, self.max_content, redact)
                apply_content_mode(docs, content)
                ev["input_documents"] = docs
        self._emit(ev)

    def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID,
                         parent_run_id: UUID | None = None, tags: list[str] | None = None,
                         **kwargs: Any) -> None:
        # ``tags`` named (unused: the start recorded them) so that ``kwargs`` is empty in the
        # common case, as both rtrace's and LangChain's managers pass it.
        docs = record_documents(documents, self.max_content, self.redact)
        cap = capture.current()
        source = cap.annotate(run_id, documents, docs) if cap is not None else None
        if self.content != "full":
            apply_content_mode(docs, self.content)
        run = self._runs.pop(run_id, None)
        if run is None or (kwargs and "duration_ms" in kwargs):  # an unseen run, or a replay's duration
            if run is not None:
                self._runs[run_id] = run
            ev = self._finish(_RETRIEVER_END, run_id, parent_run_id, kwargs.get("duration_ms"))
        else:
            ev = {
                "v": 1, "seq": 0, "ts": "", "event": _RETRIEVER_END, "session_id": self._session_id,
                "run_id": run[0], "parent_run_id": run[1], "trace_id": run[2], "name": run[3],
                "duration_ms": (_ns() - run[4]) // 1000 / 1000,
            }
        if kwargs and source is None and isinstance(kwargs.get("score_source"), str):
            source = kwargs["score_source"]  # a replay of a recorded run
        if source is not None:
            ev["score_source"] = source
        # The documents last, their count just before them: a reader can then count them without parsing them.
        # A replay of a recorded run passes the count it recorded (its log may keep fewer documents).
        ev["document_count"] = len(docs) if not kwargs or events.recorded_count(kwargs) is None else kwargs["document_count"]
        ev["documents"] = docs
        self._emit(ev)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID,
                           parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._error(events.RETRIEVER_ERROR, error, run_id, parent_run_id, kwargs.get("duration_ms"))

    def _error(self, kind: str, error: BaseException, run_id: UUID, parent_run_id: UUID | None,
               duration_ms: Any = None) -> None:
        ev = self._finish(kind, run_id, parent_run_id, duration_ms)
        ev["error"] = self.redact.error(error_fields(error))
        self._emit(ev)

    def on_retry(self, retry_state: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                 **kwargs: Any) -> None:
        ev = self._event(events.RETRY, self._lookup(run_id, parent_run_id, pop=False))
        ev.update(retry_fields(retry_state))
        ev["exception"] = self.redact.error(ev.get("exception"))
        self._emit(ev)

    def on_text(self, text: str, *, run_id: UUID, parent_run_id: UUID | None = None,
                **kwargs: Any) -> None:
        ev = self._event(events.TEXT, self._lookup(run_id, parent_run_id, pop=False))
        ev["text"] = self.redact.text(text if type(text) is str else _text(text))
        self._emit(ev)

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, tags: list[str] | None = None,
                        metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        ev = self._event(events.CUSTOM_EVENT, self._lookup(run_id, None, pop=False))
        ev["custom_name"] = self.redact.text(name if type(name) is str else _text(name))
        ev["data"] = self.redact(data)
        ev["tags"] = self.redact.strings(tags) if tags else []
        ev["metadata"] = self.redact(metadata) if metadata else {}
        self._emit(ev)

    # LangChain parents: recorded lightly, so retriever runs inside chains stay connected.

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID,
                       parent_run_id: UUID | None = None, tags: list[str] | None = None,
                       metadata: dict[str, Any] | None = None, name: str | None = None,
                       **kwargs: Any) -> None:
        self._emit(self._start(events.CHAIN_START, run_id, parent_run_id, _name(name, serialized, "Chain"), tags, metadata))

    def on_chain_end(self, outputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                     **kwargs: Any) -> None:
        self._emit(self._finish(events.CHAIN_END, run_id, parent_run_id, kwargs.get("duration_ms")))

    def on_chain_error(self, error: BaseException, *, run_id: UUID,
                       parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._error(events.CHAIN_ERROR, error, run_id, parent_run_id, kwargs.get("duration_ms"))

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID,
                      parent_run_id: UUID | None = None, tags: list[str] | None = None,
                      metadata: dict[str, Any] | None = None, name: str | None = None,
                      **kwargs: Any) -> None:
        self._emit(self._start(events.TOOL_START, run_id, parent_run_id, _name(name, serialized, "Tool"), tags, metadata))

    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                    **kwargs: Any) -> None:
        self._emit(self._finish(events.TOOL_END, run_id, parent_run_id, kwargs.get("duration_ms")))

    def on_tool_error(self, error: BaseException, *, run_id: UUID,
                      parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._error(events.TOOL_ERROR, error, run_id, parent_run_id, kwargs.get("duration_ms"))

    def on_llm_start(self, serialized: Any, prompts: list[str], *, run_id: UUID,
                     parent_run_id: UUID | None = None, tags: list[str] | None = None,
                     metadata: dict[str, Any] | None = None, name: str | None = None,
                     **kwargs: Any) -> None:
        self._emit(self._start(events.LLM_START, run_id, parent_run_id, _name(name, serialized, "LLM"), tags, metadata))

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID,
                            parent_run_id: UUID | None = None, tags: list[str] | None = None,
                            metadata: dict[str, Any] | None = None, name: str | None = None,
                            **kwargs: Any) -> None:
        self._emit(self._start(events.LLM_START, run_id, parent_run_id, _name(name, serialized, "ChatModel"), tags, metadata))

    def on_llm_end(self, response: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                   **kwargs: Any) -> None:
        self._emit(self._finish(events.LLM_END, run_id, parent_run_id, kwargs.get("duration_ms")))

    def on_llm_error(self, error: BaseException, *, run_id: UUID,
                     parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._error(events.LLM_ERROR, error, run_id, parent_run_id, kwargs.get("duration_ms"))

    def __repr__(self) -> str:
        return f"JsonlHandler({self.target!r})"


dispatch.DIRECT.add(JsonlHandler)  # its hooks are inline, sync and never raise: managers call them directly
