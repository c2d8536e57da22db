"""The one rule for log text that reaches a terminal: it is data, never control.

A log is written by whatever program was traced, so any string in it may carry
terminal control: SGR/CSI/OSC/DCS sequences, BEL, BS, NUL, bare CR, VT/FF, C1
controls (8-bit CSI is U+009B), bidi overrides that reorder what is shown, and
zero-width characters that hide text. ``neutralise`` is the only place that
decides what is harmless; every message, warning and rendered view that quotes a
log passes through it (renderers through ``rtrace.cli.render.text.clean``).

CSI and OSC sequences are removed whole (their parameters are noise); every other
dangerous character becomes U+FFFD, so something visibly stood there. Tab and
newline survive only where the caller allows them.
"""

from __future__ import annotations

import re

# Cc, Cf, Zl, Zp and surrogates (Unicode 14), plus the Hangul fillers that draw as
# blank: everything that moves the cursor, changes the terminal, reorders or hides text.
_DANGER_CLASS = (
    "\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ud800-\udfff\ufeff\uffa0"
    "\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
# An OSC runs to BEL/ST; unterminated, it ends at the line (never swallows the rest of a document).
_SEQUENCE = r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
_UNSAFE = re.compile(f"{_SEQUENCE}|[{_DANGER_CLASS}\t\n]")
_UNSAFE_KEEP_LINES = re.compile(f"{_SEQUENCE}|[{_DANGER_CLASS}]")
_UNSAFE_JSON = re.compile(f"[{_DANGER_CLASS}]")  # raw (unescaped) in a JSON text: only inside strings

REPLACEMENT = "\ufffd"
_FILLERS = ("\u115f", "\u1160", "\u3164", "\uffa0")  # in the class above, yet printable (Lo): they draw as blank


def harmless(text: str) -> bool:
    """Whether ``text`` holds nothing ``neutralise`` would change, not even a tab or newline (checked in C)."""
    return text.isprintable() and (text.isascii() or not any(filler in text for filler in _FILLERS))


def _replace(match: re.Match[str]) -> str:
    s = match.group()
    if len(s) > 1:  # a whole CSI/OSC sequence
        return ""
    if s == "\t" or s == "\n":
        return " "
    return REPLACEMENT


def neutralise(text: str, *, lines: bool = False) -> str:
    """``text`` with nothing a terminal would act on.

    ``lines=False``: tab and newline become spaces; ``lines=True`` keeps them.
    """
    if harmless(text):  # the common case
        return text
    if lines and harmless(text.replace("\n", "").replace("\t", "")):  # lines of harmless text: a copy in C beats a scan
        return text
    return (_UNSAFE_KEEP_LINES if lines else _UNSAFE).sub(_replace, text)


def is_safe(text: str, *, lines: bool = True) -> bool:
    """Whether ``neutralise`` would leave ``text`` unchanged."""
    return harmless(text) or (_UNSAFE_KEEP_LINES if lines else _UNSAFE).search(text) is None


def _json_escape(match: re.Match[str]) -> str:
    c = ord(match.group())
    if c > 0xFFFF:  # JSON escapes astral characters as a surrogate pair
        c -= 0x10000
        return f"\\u{0xD800 + (c >> 10):04x}\\u{0xDC00 + (c & 0x3FF):04x}"
    return f"\\u{c:04x}"


def json_for_terminal(data: bytes) -> bytes:
    """JSON text with every dangerous character written as a ``\\u`` escape: the same JSON value.

    A JSON text can hold such characters raw only inside strings (orjson and the
    JSON grammar escape C0 controls already; DEL, C1 and bidi characters may be raw).
    """
    if data.isascii():
        return data.replace(b"\x7f", b"\\u007f") if b"\x7f" in data else data
    text = data.decode("utf-8", "replace")
    return _UNSAFE_JSON.sub(_json_escape, text).encode("utf-8")


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A log string as a CSV cell: neutralised, on one line, and inert in a spreadsheet
    (a leading ``= + - @``, tab or CR gets a ``'``, as OWASP advises). Numbers pass unchanged."""
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA):
        value = "'" + value
    return neutralise(value)
