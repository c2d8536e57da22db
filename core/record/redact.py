"""Secrets out of the log: by key name, by token format, in URLs and in argv.

Two rules, applied to every string the recorder writes from user data: queries, texts,
run names, tags, custom event names and data, metadata (its keys too), document ids and
metadata, the request fields (``search_type``, ``vector_store``, ``embedding_model``...),
errors (type, message, traceback), argv and the working directory; document content only
when asked. Not scanned: what rtrace itself writes (event names, ids it made, times,
counts, its own labels such as ``id_source``). ``tests/test_secrets.py`` holds one row per
placement and fails on a string field it has not classified.

- **Key names**, after normalising case and separators (``x-api-key``, ``apiKey``,
  ``OPENAI_API_KEY`` are all ``apikey``), match when they end with a secret word
  (``...apikey``, ``...secret``, ``...token``, ``...password``, ``...privatekey``,
  ``...accesskey``, ``cookie``, ``authorization``...). Their values become ``[REDACTED]``.
- **Values**: one compiled alternation finds URL credentials (``https://user:pw@``),
  secret query parameters (``?api_key=``), ``key=value`` pairs with a secret key,
  ``Bearer``/``Basic`` credentials and well-known token formats (OpenAI/Anthropic
  ``sk-``, GitHub ``ghp_``/``gho_``/``github_pat_``, AWS ``AKIA``/``ASIA``, Slack
  ``xox?-``, Google ``AIza``, JWTs); only the secret part is replaced.

The fast path, taken on nearly every event: a key's verdict is cached per key, a
short string found clean is cached, and a dict of known-clean keys and values is
returned as is (nothing copied).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from rtrace.core.record.encode import sanitize

# Words a secret key name ends with (after normalising); ``redact=`` / ``--redact`` adds more.
DEFAULT_REDACT = ("apikey", "authorization", "password", "passwd", "passphrase", "token", "secret",
                  "secretkey", "privatekey", "accesskey", "cookie", "credential", "credentials")
_EXACT = frozenset({"auth", "pwd", "pass", "sig", "signature"})  # secret only as the whole name
REDACTED = "[REDACTED]"
SCALARS = frozenset({str, int, float, bool, type(None)})
_MAX_CACHE = 4096
_MAX_CACHED_LEN = 256  # strings longer than this are scanned every time (they rarely repeat)
_MAX_DEPTH = 32

_SECRET_PARAM = r"(?:[a-z0-9_.-]*?(?:api[_-]?key|token|secret|password|passwd|pwd|signature|sig|auth|credentials?|key))"
_VALUE = re.compile(
    r"(?P<url>(?<=://)[^\s/?#@'\"<>]+@)"  # URL userinfo
    r"|(?P<param>(?<=[?&;])(?i:" + _SECRET_PARAM + r")=)[^&#\s'\"<>]+"  # ?api_key=...
    r"|(?P<pair>\b(?i:api[_-]?key|access[_-]?token|refresh[_-]?token|auth[_-]?token|client[_-]?secret"
    r"|secret|password|passwd|pwd|token)\s*[=:]\s*)(?!\[REDACTED\])[^\s&,;'\"<>]{3,}"  # password=...
    r"|(?P<scheme>\b(?:Bearer|Basic|Token|bearer)\s+)[A-Za-z0-9._~+/=-]{8,}"  # Authorization values
    r"|\bsk-[A-Za-z0-9_-]{16,}"  # OpenAI, Anthropic (sk-ant-...), sk-proj-...
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}"  # GitHub
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"  # JWTs
)


def _may_hold_secret(s: str) -> bool:
    # Substring tests run in C: every pattern needs one of these, and most text has none.
    # (The full alternation costs ~1 µs per 40 characters; this, a few tens of ns.)
    return ("=" in s or ":" in s or "sk-" in s or "eyJ" in s or "xox" in s or "AKIA" in s or "ASIA" in s
            or "AIza" in s or "earer " in s or "Basic " in s or "Token " in s or ("gh" in s and "_" in s))


def _replace(m: re.Match[str]) -> str:
    kind = m.lastgroup
    if kind == "url":
        return REDACTED + "@"
    if kind is not None:  # the key, scheme or parameter name stays; its value goes
        return m.group(kind) + REDACTED
    return REDACTED


def normalise_key(key: str) -> str:
    """``X-Api-Key``, ``apiKey``, ``API_KEY`` -> ``apikey``."""
    return re.sub(r"[\W_]+", "", key).lower()


class Redactor:
    """Replaces secrets in recorded values; returns the very object when nothing matches.

    ``keys``: words a secret key name ends with (default ``DEFAULT_REDACT``; ``()``
    turns key matching off). ``patterns``: scan string values for credentials and
    tokens. ``content``: scan document content too.
    """

    __slots__ = ("words", "patterns", "content", "active", "clean_keys", "secret_keys", "clean_text", "token_keys")

    def __init__(self, keys: Iterable[str] | None = None, *, patterns: bool = True, content: bool = False) -> None:
        self.words = tuple(k for k in dict.fromkeys(normalise_key(k) for k in (DEFAULT_REDACT if keys is None else keys)) if k)
        self.patterns = patterns
        self.content = content and patterns
        self.active = bool(self.words) or patterns  # read per recorded batch of documents
        self.clean_keys: set[Any] = set()  # keys known not to match
        self.secret_keys: set[Any] = set()
        self.clean_text: set[str] = set()  # short strings known to hold no secret
        self.token_keys: dict[Any, str] = {}  # keys that hold a token themselves -> the key written

    def __bool__(self) -> bool:
        return self.active

    # keys ------------------------------------------------------------------

    def key_matches(self, key: Any) -> bool:
        """Whether values under ``key`` are secret (cached per key)."""
        try:
            if key in self.clean_keys:
                return False
            if key in self.secret_keys:
                return True
        except Exception:  # a key whose __hash__ or __eq__ fails: judged by its type's name only
            return False
        secret = False
        if isinstance(key, str):  # a str subclass too (an enum.StrEnum key), read as plain text
            plain = str.__str__(key)
            norm = normalise_key(plain)
            secret = bool(norm) and (norm in _EXACT or norm.endswith(self.words)) if self.words else False
            written = self.text(plain)
            if written is not plain:  # the name itself is a credential: never a clean key
                if len(self.token_keys) >= _MAX_CACHE:
                    self.token_keys.clear()
                self.token_keys[key] = written
                return secret
        cache = self.secret_keys if secret else self.clean_keys
        if len(cache) >= _MAX_CACHE:  # bounded: keys are usually a small fixed set
            cache.clear()
        cache.add(key)
        return secret

    # strings ---------------------------------------------------------------

    def text(self, s: str) -> str:
        """``s`` with credentials and tokens replaced (``s`` itself when it holds none)."""
        if not self.patterns or s in self.clean_text:
            return s
        if not _may_hold_secret(s) or _VALUE.search(s) is None:
            if len(s) <= _MAX_CACHED_LEN:
                if len(self.clean_text) >= _MAX_CACHE:
                    self.clean_text.clear()
                self.clean_text.add(s)
            return s
        return _VALUE.sub(_replace, s)

    def any_text(self, s: Any) -> Any:
        return self.text(s) if type(s) is str else s

    def strings(self, items: Iterable[Any]) -> list[Any]:
        """A new list of ``items`` (tags) with credentials and tokens replaced in its strings."""
        out = list(items)
        clean = self.clean_text
        for i, s in enumerate(out):
            if type(s) is str and s not in clean:
                out[i] = self.text(s)
        return out

    # nested values -----------------------------------------------------------

    def __call__(self, value: Any, _depth: int = 0) -> Any:
        """``value`` (metadata, custom data) with secret keys and secret strings replaced."""
        t = type(value)
        if t is str:
            return self.text(value)
        if t in SCALARS or _depth > _MAX_DEPTH:
            return value
        if t is dict and self.clean_flat(value):
            return value
        if isinstance(value, str):  # a str subclass: its text, read without calling its methods
            plain = str.__str__(value)
            redacted = self.text(plain)
            return value if redacted is plain else redacted
        if isinstance(value, Mapping):
            try:
                return self._mapping(value, _depth)
            except Exception:  # a key whose __hash__ fails, a hostile items(): redact a plain copy
                return self(sanitize(value), _depth + 1) if _depth == 0 else sanitize(value)
        if isinstance(value, (list, tuple)):
            items = [self(v, _depth + 1) for v in value]
            if any(a is not b for a, b in zip(items, value)):
                return items
        return value

    def _mapping(self, value: Mapping[Any, Any], depth: int) -> Any:
        out: dict[Any, Any] | None = None
        items = list(value.items())
        for k, v in items:
            if self.key_matches(k):
                new: Any = REDACTED
            else:
                new = self(v, depth + 1)
            renamed = self.token_keys.get(k) if self.token_keys and k not in self.clean_keys else None
            if new is not v or renamed is not None:
                if out is None:
                    out = dict(items)
                if renamed is not None:
                    del out[k]
                    k = renamed
                out[k] = new
        return value if out is None else out

    def clean_flat(self, d: dict[Any, Any]) -> bool:
        """The common metadata: keys seen before, scalar values, strings seen before (or scanned now
        and found clean). A loop: for the few keys metadata has, cheaper than C set operations on
        ``map``/``filter`` iterators."""
        try:
            if not self.clean_keys.issuperset(d):
                return False
        except Exception:  # a key whose __hash__ or __eq__ fails
            return False
        clean_text = self.clean_text
        for v in d.values():  # strings not seen before: scanned (and cached when clean)
            t = type(v)
            if t is str:
                if v not in clean_text and self.text(v) is not v:
                    return False
            elif t not in SCALARS:
                return False
        return True

    def documents(self, docs: list[dict[str, Any]]) -> None:
        """Redact each recorded document's id and metadata (and content if asked) in place: the records are ours.

        A flat metadata dict of known-clean keys and scalar values (``clean_flat``) is kept as it is.
        (``documents.record_documents``' fast path does the same in its own loop.)
        """
        clean_text, text = self.clean_text, self.text
        for d in docs:
            i = d["id"]
            # Ids are often URLs, signed ones too; a content hash (documents.ID_CONTENT_HASH) is rtrace's own.
            if i not in clean_text and type(i) is str and d.get("id_source") != "content_hash":
                d["id"] = text(i)
            m = d["metadata"]
            if m and not (type(m) is dict and self.clean_flat(m)):
                d["metadata"] = self(m)
            if self.content:
                c = d["page_content"]
                if type(c) is str:
                    d["page_content"] = self.text(c)

    def error(self, fields: dict[str, Any] | None) -> dict[str, Any] | None:
        """An ``error`` / ``exception`` field with its message and traceback scrubbed."""
        if fields is None or not self.patterns:
            return fields
        for key in ("type", "message", "traceback"):
            v = fields.get(key)
            if type(v) is str:
                fields[key] = self.text(v)
        return fields

    def argv(self, argv: Any) -> Any:
        """Command-line arguments: values of secret-looking flags and secret strings replaced."""
        if not isinstance(argv, list):
            return argv
        out: list[Any] = []
        hide_next = False
        for arg in argv:
            if type(arg) is not str:
                out.append(arg)
                continue
            if hide_next and not arg.startswith("-"):
                out.append(REDACTED)
                hide_next = False
                continue
            hide_next = False
            if arg.startswith("-") and len(arg) > 1:
                name, eq, _ = arg.partition("=")
                if self._flag_is_secret(name):
                    if eq:
                        out.append(name + "=" + REDACTED)
                        continue
                    hide_next = True
            out.append(self.text(arg))
        return out

    def _flag_is_secret(self, flag: str) -> bool:
        norm = normalise_key(flag)
        return bool(norm) and (norm in _EXACT or norm.endswith(self.words or DEFAULT_REDACT))
