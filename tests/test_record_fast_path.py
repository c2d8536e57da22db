"""The recorder's fast paths record exactly what the general code records."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document as LCDocument
from rtrace.core import AsyncCallbackManager, CallbackManager, Document, JsonlHandler
from rtrace.core.record.documents import record_document, record_documents
from rtrace.core.record.redact import Redactor

VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, width=32),
                   st.text(max_size=3), st.just(np.float32(0.5)), st.just({"nested": 1}))
META = st.dictionaries(st.sampled_from(["id", "doc_id", "score", "relevance_score", "source", "api_key"]), VALUES, max_size=4)


@st.composite
def documents(draw: Any) -> Any:
    content = draw(st.one_of(st.text(max_size=12), st.just("x" * 40)))
    meta = draw(META)
    doc_id = draw(st.one_of(st.none(), st.text(max_size=3)))
    if draw(st.booleans()):
        return LCDocument(content, metadata=meta, id=doc_id)
    doc = Document(content, metadata=meta, id=doc_id)
    if draw(st.booleans()):  # values a user may put there by hand
        doc.id = draw(st.one_of(st.integers(), st.none(), st.text(max_size=2)))
        doc.page_content = draw(st.one_of(st.none(), st.integers(), st.text(max_size=5)))
        doc.metadata = draw(st.one_of(META, st.none(), st.just([1])))
    return doc


@settings(max_examples=300, deadline=None)
@given(items=st.lists(documents(), max_size=6), max_content=st.sampled_from([None, 0, 5, 100]),
       redaction=st.sampled_from(["none", "default", "content", "off"]))
def test_documents_fast_path_matches_record_document(items: list[Any], max_content: int | None,
                                                     redaction: str) -> None:
    def redactor() -> Redactor | None:  # a fresh one per side: its caches must not decide the result
        return {"none": None, "default": Redactor(), "content": Redactor(content=True),
                "off": Redactor((), patterns=False)}[redaction]

    fast = record_documents(items, max_content, redactor())
    slow_redact = redactor()
    slow = [record_document(i, max_content) for i in items]
    if slow_redact is not None:
        slow_redact.documents(slow)
    assert orjson.dumps(fast, option=orjson.OPT_SERIALIZE_NUMPY) == orjson.dumps(slow, option=orjson.OPT_SERIALIZE_NUMPY)


def test_secret_metadata_is_redacted_without_touching_the_callers_documents() -> None:
    doc = LCDocument("text", metadata={"source": "https://bob:hunter2@db.example/x",
                                       "api_key": "sk-abcdefghijklmnopqrstuv", "score": 1}, id="d1")
    meta = doc.metadata
    (rec,) = record_documents([doc], None, Redactor())
    assert rec["metadata"] == {"source": "https://[REDACTED]@db.example/x", "api_key": "[REDACTED]", "score": 1}
    assert rec["score"] == 1.0
    assert doc.metadata is meta and meta["api_key"] == "sk-abcdefghijklmnopqrstuv"  # the program's own, unchanged


def test_a_document_subclass_with_a_score_keeps_its_score() -> None:
    class Scored(LCDocument):
        score: float = 0.0

    (d,) = record_documents([Scored("text", metadata={"score": 0.1}, score=0.9)])
    assert d["score"] == 0.9


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def test_sync_and_async_managers_write_the_same_events(tmp_path: Path) -> None:
    docs = [LCDocument("alpha", metadata={"source": "a.md", "score": 0.5, "api_key": "sk-1"}, id="d1"),
            Document("beta", metadata={"relevance_score": 2})]
    h1 = JsonlHandler(tmp_path / "sync.jsonl")
    rm = CallbackManager.configure([h1], inheritable_tags=["t"], inheritable_metadata={"k": 1}).on_retriever_start(
        None, "q", name="Dense")
    rm.get_child().on_retriever_start(None, "q2").on_retriever_end(docs)
    rm.on_retriever_end(docs)
    h1.close()

    async def main(h: JsonlHandler) -> None:
        rm = await AsyncCallbackManager.configure([h], inheritable_tags=["t"], inheritable_metadata={"k": 1}).on_retriever_start(
            None, "q", name="Dense")
        child = await rm.get_child().on_retriever_start(None, "q2")
        await child.on_retriever_end(docs)
        await rm.on_retriever_end(docs)

    h2 = JsonlHandler(tmp_path / "async.jsonl")
    asyncio.run(main(h2))
    h2.close()
    volatile = ("ts", "session_id", "run_id", "parent_run_id", "trace_id", "duration_ms", "argv", "pid", "cwd")
    a, b = lines(tmp_path / "sync.jsonl"), lines(tmp_path / "async.jsonl")
    assert [{k: v for k, v in e.items() if k not in volatile} for e in a] == \
        [{k: v for k, v in e.items() if k not in volatile} for e in b]
    start, child_start, child_end, end = a[1:5]
    assert child_start["parent_run_id"] == start["run_id"] == child_start["trace_id"] == end["run_id"]
    assert child_end["documents"][0] == {"id": "d1", "page_content": "alpha", "score": 0.5,
                                         "metadata": {"source": "a.md", "score": 0.5, "api_key": "[REDACTED]"}}
    assert child_end["documents"][1]["score"] == 2.0
    assert isinstance(end["duration_ms"], float) and end["duration_ms"] >= child_end["duration_ms"] >= 0


def test_a_non_string_metadata_key_is_still_written(tmp_path: Path) -> None:
    h = JsonlHandler(tmp_path / "log.jsonl")
    CallbackManager.configure([h], inheritable_metadata={1: "one"}).on_retriever_start(None, "q").on_retriever_end(
        [LCDocument("x", metadata={(1, 2): "pair"})])
    h.close()
    start, end = lines(tmp_path / "log.jsonl")[1:3]
    assert start["metadata"] == {"1": "one"} and end["documents"][0]["metadata"] == {"(1, 2)": "pair"}


def test_ignore_retriever_set_on_the_handler_is_honoured(tmp_path: Path) -> None:
    h = JsonlHandler(tmp_path / "log.jsonl")
    h.ignore_retriever = True
    CallbackManager.configure([h]).on_retriever_start(None, "q").on_retriever_end([])
    assert not (tmp_path / "log.jsonl").exists() or not (tmp_path / "log.jsonl").read_bytes()


def test_a_failing_write_hook_is_logged_and_raises_only_with_raise_error(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Exception):
        pass

    h = JsonlHandler(tmp_path / "log.jsonl")

    def boom(*a: Any, **k: Any) -> None:
        raise Broken("disk on fire")

    h.on_retriever_end = boom  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="rtrace"):
        CallbackManager.configure([h]).on_retriever_start(None, "q").on_retriever_end([])
    assert "disk on fire" in caplog.text
    h.raise_error = True
    with pytest.raises(Broken):
        CallbackManager.configure([h]).on_retriever_start(None, "q").on_retriever_end([])


# Metadata as LangChain and stores give it: flat dicts of short strings and numbers, secrets
# by key name and by value, now and then something nested or a key that is not a string.
FLAT_KEYS = st.sampled_from(["source", "page", "api_key", "ls_retriever_name", "Authorization", 7, "sk-abcdefghijklmnopqrstuv"])
FLAT_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False),
                        st.sampled_from(["doc.md", "fixed", "https://bob:pw@db/x", "sk-proj-abcdefghijklmnopqrst",
                                         "token=abcdef", ""]),
                        st.text(max_size=6), st.just([1, "sk-abcdefghijklmnopqrstuv"]), st.just({"password": "x"}))


@settings(max_examples=400, deadline=None)
@given(dicts=st.lists(st.dictionaries(FLAT_KEYS, FLAT_VALUES, max_size=4), min_size=1, max_size=4),
       options=st.sampled_from([{}, {"patterns": False}, {"keys": ()}, {"keys": ("source",)}]))
def test_redactor_flat_dict_fast_path_matches_the_general_walk(dicts: list[dict[Any, Any]], options: dict[str, Any]) -> None:
    # The same redactor across the dicts: its caches (clean keys, clean strings) fill as on a real run.
    fast, general = Redactor(**options), Redactor(**options)
    for d in dicts:
        before = orjson.dumps(d, option=orjson.OPT_NON_STR_KEYS)
        got, want = fast(d), general._mapping(d, 0)
        assert orjson.dumps(got, option=orjson.OPT_NON_STR_KEYS) == orjson.dumps(want, option=orjson.OPT_NON_STR_KEYS)
        assert (got is d) == (want is d)  # nothing copied unless something changed
        assert orjson.dumps(d, option=orjson.OPT_NON_STR_KEYS) == before  # the caller's dict untouched


def test_run_ids_are_uuid7_unique_and_time_ordered() -> None:
    import time
    from uuid import UUID

    from rtrace.core.record.ids import uuid7

    before = time.time_ns() // 1_000_000
    ids = [uuid7() for _ in range(20_000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    assert all(u.version == 7 and u.variant == "specified in RFC 4122" for u in ids)
    assert all(UUID(str(u)) == u and hash(u) == hash(UUID(str(u))) for u in ids[:200])  # usable as any UUID
    stamps = [u.int >> 80 for u in ids]
    assert before <= stamps[0] and stamps == sorted(stamps) and stamps[-1] <= after
    # The 74 random bits do vary: every one of them is seen both set and clear.
    random_bits = [b for b in range(128) if b < 62 or 64 <= b < 76]
    assert all(0 < sum((u.int >> b) & 1 for u in ids) < len(ids) for b in random_bits)


@pytest.mark.parametrize("ns", [0, 5, 999_999_999, 1_000_000_000, 1_234_567_891, 999_999_999_123_456_789,
                                1_796_543_919_721_123_456, 1_796_543_919_999_999_999, 1_796_543_920_000_000_000,
                                4_102_444_800_000_001_000])
def test_timestamps_are_the_clock_in_iso_utc_with_microseconds(monkeypatch: pytest.MonkeyPatch, ns: int) -> None:
    import datetime as dt

    from rtrace.core import times

    want = (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=ns // 1000)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")
    monkeypatch.setattr(times, "_time_ns", lambda: ns)
    assert times.utc_now_iso() == want
    assert times.utc_now_iso() == want  # from the cached second too
    monkeypatch.setattr(times, "_time_ns", lambda: ns + 1_000_000_000)  # the next second: a new prefix
    assert times.parse_ts(times.utc_now_iso()) == dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(
        microseconds=ns // 1000 + 1_000_000)


@settings(max_examples=300, deadline=None)
@given(metadata=st.one_of(st.none(), st.dictionaries(
           st.sampled_from(["ls_retriever_name", "ls_vector_store_provider", "ls_embedding_provider",
                            "ls_embedding_model", "source", 3]),
           st.one_of(st.none(), st.sampled_from(["", "InMemoryVectorStore", "openai"]), st.integers(0, 3)), max_size=4)),
       given_=st.dictionaries(st.sampled_from(["k", "fetch_k", "search_type", "score_threshold", "name", "other"]),
                              st.one_of(st.none(), st.booleans(), st.integers(0, 5), st.floats(0, 1), st.text(max_size=3)),
                              max_size=3))
def test_request_fields_fast_exit_matches_reading_every_key(metadata: dict[Any, Any] | None, given_: dict[str, Any]) -> None:
    from rtrace.core.record.fields import _LS_KEYS, REQUEST_KEYS, request_fields

    want: dict[str, Any] = {}
    for ls_key, key in _LS_KEYS:  # the rule read plainly: every key looked up
        value = (metadata or {}).get(ls_key)
        if isinstance(value, str) and value:
            want[key] = value
    for key in REQUEST_KEYS:
        value = given_.get(key)
        if key in ("k", "fetch_k") and isinstance(value, int) and not isinstance(value, bool):
            want[key] = value
        elif key == "score_threshold" and isinstance(value, (int, float)) and not isinstance(value, bool):
            want[key] = float(value)
        elif key not in ("k", "fetch_k", "score_threshold") and isinstance(value, str):
            want[key] = value
    assert request_fields(metadata, given_) == want
