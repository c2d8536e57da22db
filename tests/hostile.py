"""Hostile logs: terminal control planted in every string field, and values no writer of rtrace would produce."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Each sequence a terminal would act on, between letters so a test can see what survived.
SEQUENCES = {
    "sgr": "\x1b[31;1m", "csi": "\x1b[2J\x1b[H", "osc": "\x1b]0;pwned\x07", "osc8": "\x1b]8;;http://evil/\x1b\\",
    "dcs": "\x1bP1$r0m\x1b\\", "bel": "\x07", "bs": "\x08", "nul": "\x00", "cr": "\r", "vt": "\x0b", "ff": "\x0c",
    "c1csi": "\x9b31m", "c1osc": "\x9d0;t\x9c", "del": "\x7f", "esc": "\x1bc",
    "rlo": "\u202e", "lri": "\u2066", "zwsp": "\u200b", "zwj": "\u200d", "bom": "\ufeff", "lsep": "\u2028",
}
H = "A" + "B".join(SEQUENCES.values()) + "Z"

# Bytes (UTF-8) that must never reach a terminal from a log.
FORBIDDEN = [b"\x1b", b"\x07", b"\x08", b"\x00", b"\r", b"\x0b", b"\x0c", b"\x7f", *(
    chr(c).encode() for c in (0x9b, 0x9d, 0x9c, 0x202e, 0x2066, 0x200b, 0x200d, 0xfeff, 0x2028))]
# ESC, BEL, BS, NUL, CR, VT, FF are the ASCII part; a terminal's own output may hold ESC (colour) and CR (a pty's
# newline translation), which ``forbidden_in`` allows when asked.


def forbidden_in(data: bytes, *, colour: bool = False, pty: bool = False) -> list[bytes]:
    """The forbidden bytes in ``data``: rtrace's own SGR colour (``colour``) and a pty's CRLF (``pty``) allowed."""
    import re

    if colour:
        data = re.sub(rb"\x1b\[[0-9;]*m", b"", data)
    if pty:
        data = data.replace(b"\r\n", b"\n")
    return [b for b in FORBIDDEN if b in data]


SESSION = "0190aaaa-0000-7000-8000-00000000000a"


def uid(n: int) -> str:
    return f"0190bbbb-0000-7000-8000-{n:012d}"


def hostile_events(h: str = H) -> list[dict[str, Any]]:
    """A session whose every string field carries ``h``: runs, retries, text, custom events, errors, documents."""
    ts = "2026-11-24T10:00:0{}.000000Z"
    common = {"v": 1, "session_id": SESSION}
    evs: list[dict[str, Any]] = [
        {**common, "seq": 1, "ts": ts.format(0), "event": "session_start", "argv": [h, h], "pid": h, "python": h,
         "rtrace_version": h, "cwd": h},
        {**common, "seq": 2, "ts": ts.format(1), "event": "retriever_start", "run_id": uid(1), "parent_run_id": None,
         "trace_id": uid(1), "name": h, "query": h, "tags": [h, h], "metadata": {h: h, "qid": h, "source": h}},
        {**common, "seq": 3, "ts": ts.format(1), "event": "retriever_start", "run_id": h, "parent_run_id": uid(1),
         "trace_id": uid(1), "name": h, "query": h, "tags": [h], "metadata": {h: [h, {h: h}]}},
        {**common, "seq": 4, "ts": ts.format(2), "event": "retry", "run_id": h, "parent_run_id": uid(1), "name": h,
         "attempt": h, "outcome": h, "exception": {"type": h, "message": h}, "slept_s": 0.1, "next_sleep_s": 0.2},
        {**common, "seq": 5, "ts": ts.format(2), "event": "text", "run_id": h, "parent_run_id": uid(1), "text": h},
        {**common, "seq": 6, "ts": ts.format(2), "event": "custom_event", "run_id": h, "parent_run_id": uid(1),
         "custom_name": h, "data": {h: h}, "tags": [h], "metadata": {h: h}},
        {**common, "seq": 7, "ts": ts.format(3), "event": "retriever_error", "run_id": h, "parent_run_id": uid(1),
         "trace_id": uid(1), "name": h, "duration_ms": 12.5,
         "error": {"type": h, "message": h, "traceback": f"Traceback\n  {h}\n{h}: {h}\n"}},
        {**common, "seq": 8, "ts": ts.format(3), "event": "text", "run_id": h + "-unknown", "parent_run_id": h, "text": h},
        {**common, "seq": 9, "ts": ts.format(4), "event": "retriever_end", "run_id": uid(1), "parent_run_id": None,
         "trace_id": uid(1), "name": h, "duration_ms": 40.0,
         "documents": [{"id": h, "page_content": h + "\n" + h, "metadata": {h: h, "source": h}, "score": 0.9},
                       {"id": None, "page_content": h, "metadata": {}, "score": None}]},
        {**common, "seq": 10, "ts": ts.format(4), "event": h + "_start", "run_id": uid(3), "name": h},
        {**common, "seq": 11, "ts": ts.format(4), "event": h, "run_id": 5},
        {**common, "seq": 12, "ts": ts.format(5), "event": "retriever_start", "run_id": uid(2), "parent_run_id": h,
         "trace_id": h, "name": h, "query": h, "tags": [], "metadata": {}},
        {**common, "seq": 13, "ts": ts.format(5), "event": "retriever_end", "run_id": uid(2), "parent_run_id": h,
         "trace_id": h, "name": h, "duration_ms": 1.0, "documents": [{"id": h, "page_content": h, "metadata": {}}]},
        {**common, "seq": 14, "ts": ts.format(6), "event": "session_end", "exit_code": h, "duration_ms": 100.0,
         "error": {"type": h, "message": h, "traceback": h}, "incomplete_runs": [h]},
    ]
    return evs


def write_log(path: Path, events: list[dict[str, Any]]) -> Path:
    # json (not orjson) with ensure_ascii=False: C1, DEL and bidi characters stay raw, as any writer may leave them.
    with open(path, "w", encoding="utf-8") as f:
        for ev in events:
            f.write(json.dumps(ev, ensure_ascii=False) + "\n")
    return path


def hostile_qrels(path: Path, h: str = H) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps({"query": h, "doc_id": h, "relevance": 1}, ensure_ascii=False) + "\n")
        f.write(json.dumps({"query": "=never asked " + h, "doc_id": "=x", "relevance": 1}, ensure_ascii=False) + "\n")
    return path
