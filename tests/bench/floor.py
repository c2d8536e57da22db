"""The floor: the least a recorder keeping rtrace's guarantees can cost per retriever run.

Used by ``overhead.py`` (the ``floor`` cases of the ``sync`` and ``async`` groups). It is
not a tracer anyone should use: it knows one document class and one shape of metadata,
has no managers, no lineage, no capture, no content modes, no fallbacks. What it keeps
is what every recorded run must cost whatever the code around it:

- a UUIDv7 run id (rtrace's generator) and the id as text;
- two events, each one complete line written with one ``write(2)`` the moment it
  happens (``O_APPEND``), under a lock that makes ``seq`` and line order agree;
- ``seq``, an ISO-8601 ``ts`` (rtrace's clock) and a monotonic duration;
- each document as ``{id, page_content, metadata, score}``, the metadata checked for
  secrets with rtrace's ``Redactor`` caches (known-clean keys, scalar values,
  known-clean strings);
- with ``own_check``: before each write, rtrace's check that the descriptor is still
  the log (``F_GETSIG`` on the marked open file description, see ``core/record/sink.py``).

``overhead.py`` runs it with and without ``own_check``, beside rtrace itself, so the
report shows how far above the floor rtrace's general code is, and what the
ownership check alone costs.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from typing import Any
from uuid import UUID

import orjson
from rtrace.core.record.ids import uuid7
from rtrace.core.record.redact import SCALARS, Redactor
from rtrace.core.record.sink import MARK, open_log
from rtrace.core.times import utc_now_iso

_dumps = orjson.dumps
_NL = orjson.OPT_APPEND_NEWLINE
_ns = time.perf_counter_ns
_write = os.write
_fcntl = fcntl.fcntl
_GETSIG = getattr(fcntl, "F_GETSIG", 11)
_SETSIG = getattr(fcntl, "F_SETSIG", 10)


class FloorRun:
    __slots__ = ("recorder", "run_id", "record")


class FloorRecorder:
    """``start(query)`` returns a run; ``end(run, documents)`` records what it returned."""

    def __init__(self, path: str, own_check: bool = True) -> None:
        self.fd = open_log(path)
        _fcntl(self.fd, _SETSIG, MARK)
        self.own_check = own_check
        self.lock = threading.Lock()
        self.seq = 0
        self.session_id = str(uuid7())
        self.runs: dict[UUID, tuple[str, int]] = {}
        self.redact = Redactor()

    def _put(self, ev: dict[str, Any]) -> None:
        with self.lock:
            self.seq = ev["seq"] = self.seq + 1
            ev["ts"] = utc_now_iso()
            line = _dumps(ev, option=_NL)
            if self.own_check and _fcntl(self.fd, _GETSIG) != MARK:
                raise OSError("the log descriptor is not ours any more")
            _write(self.fd, line)

    def start(self, query: str, run_id: UUID | None = None) -> FloorRun:
        """``run_id``: the caller's (LangChain makes one per run), else one of rtrace's."""
        if run_id is None:
            run_id = uuid7()
        rid = _dumps(run_id)[1:-1].decode()
        self.runs[run_id] = (rid, _ns())
        self._put({"v": 1, "seq": 0, "ts": "", "event": "retriever_start", "session_id": self.session_id,
                   "run_id": rid, "parent_run_id": None, "trace_id": rid, "name": "Retriever", "tags": [],
                   "metadata": {}, "query": self.redact.text(query)})
        run = FloorRun()
        run.recorder, run.run_id, run.record = self, run_id, rid
        return run

    def end(self, run: FloorRun, documents: list[Any]) -> None:
        redact = self.redact
        clean_keys, clean_text = redact.clean_keys, redact.clean_text
        docs = []
        for d in documents:
            meta = d.metadata
            clean = meta.keys() <= clean_keys
            if clean:
                for v in meta.values():
                    if type(v) is str:
                        if v not in clean_text:
                            clean = False
                            break
                    elif type(v) not in SCALARS:
                        clean = False
                        break
            docs.append({"id": d.id, "page_content": d.page_content, "metadata": meta if clean else redact(meta),
                         "score": meta.get("score")})
        rid, t0 = self.runs.pop(run.run_id)
        self._put({"v": 1, "seq": 0, "ts": "", "event": "retriever_end", "session_id": self.session_id,
                   "run_id": rid, "parent_run_id": None, "trace_id": rid, "name": "Retriever",
                   "duration_ms": (_ns() - t0) // 1000 / 1000, "documents": docs})

    def close(self) -> None:
        os.close(self.fd)
