"""Secrets never reach the log: one table of placements, checked in real `rtrace run` logs and the library.

Every placement carries its own secret, so each row proves its own redaction: the
secret must appear nowhere in the log, and the text around it must survive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import read_events

RTRACE = [sys.executable, "-m", "rtrace.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_"))}

# (placement, the secret, where the program puts it). {s} is the secret.
KEYS = [  # metadata keys, matched after normalising case and separators
    ("key apiKey", "k-apikey-value", "meta['apiKey'] = '{s}'"),
    ("key x-api-key", "k-xapikey-value", "meta['x-api-key'] = '{s}'"),
    ("key openai_api_key", "k-openai-value", "meta['openai_api_key'] = '{s}'"),
    ("key OPENAI_API_KEY", "k-openai-upper", "meta['OPENAI_API_KEY'] = '{s}'"),
    ("key access_token", "k-access-token", "meta['access_token'] = '{s}'"),
    ("key client_secret", "k-client-secret", "meta['client_secret'] = '{s}'"),
    ("key aws_secret_access_key", "k-aws-secret", "meta['aws_secret_access_key'] = '{s}'"),
    ("key private_key", "k-private-key", "meta['private_key'] = '{s}'"),
    ("key cookie", "k-cookie-value", "meta['cookie'] = '{s}'"),
    ("key Set-Cookie", "k-set-cookie", "meta['Set-Cookie'] = '{s}'"),
    ("key session_token", "k-session-token", "meta['session_token'] = '{s}'"),
    ("key db_password", "k-db-password", "meta['db_password'] = '{s}'"),
    ("key Authorization", "k-authorization", "meta['Authorization'] = '{s}'"),
    ("key nested headers.X-Api-Key", "k-nested-header", "meta['headers'] = {{'X-Api-Key': '{s}', 'Accept': 'json'}}"),
    ("key in a list of dicts", "k-list-token", "meta['creds'] = [{{'refreshToken': '{s}'}}]"),
    ("key in document metadata", "k-doc-apikey", "doc_meta['api_key'] = '{s}'"),
    ("key nested in document metadata", "k-doc-cookie", "doc_meta['headers'] = {{'Cookie': '{s}'}}"),
    ("key in custom-event data", "k-custom-secret", "custom['clientSecret'] = '{s}'"),
    ("str-subclass key in document metadata", "k-strsub-key",
     "doc_meta[type('Key', (str,), {{}})('session_token')] = '{s}'"),
]
TOKENS = [  # well-known formats and credentials inside any recorded string
    ("query sk- token", "sk-proj-abcdefghijklmnopqrstuvwx", "query = 'search with {s} please'"),
    ("query ghp_ token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "query2 = 'token {s} in a query'"),
    ("on_text AKIA key", "AKIAABCDEFGHIJKLMNOP", "text = 'aws {s} used'"),
    ("on_text Slack token", "xoxb-1234567890-abcdefghij", "text2 = 'slack {s}'"),
    ("on_text JWT", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "text3 = 'jwt {s}'"),
    ("custom value Bearer", "bearer-secret-credential", "custom['header'] = 'Bearer {s}'"),
    ("custom value gho_ token", "gho_abcdefghijklmnopqrstuvwxyz0123456789", "custom['list'] = ['x', '{s}']"),
    ("metadata value URL userinfo", "hunter2-url-pass", "meta['dsn'] = 'postgres://bob:{s}@db.example/app'"),
    ("metadata value query parameter", "qp-apikey-value", "meta['endpoint'] = 'https://api.example/v1?api_key={s}&page=2'"),
    ("metadata value password=", "pair-password-value", "meta['note'] = 'login password={s} failed'"),
    ("document metadata URL", "doc-url-secret", "doc_meta['source'] = 'https://u:{s}@files.example/a.md'"),
    ("exception message sk-ant-", "sk-ant-api03-abcdefghijklmnopqrstu", "error_message = 'auth failed for {s}'"),
    ("traceback source line", "sk-live-in-the-source-code-0123456789", "SOURCE_TOKEN = '{s}'"),
    ("retry exception message", "ghu_abcdefghijklmnopqrstuvwxyz0123456789", "retry_message = 'rate limited {s}'"),
    ("custom event name", "xoxp-9876543210-abcdefghij", "custom_name = 'event {s}'"),
    ("str-subclass metadata value", "sk-strsubclassvalue0123456789", "meta['note2'] = type('Text', (str,), {{}})('token {s}')"),
    # Every string the recorder writes from user data, not only the fields once thought to hold secrets:
    ("tag", "sk-tag-abcdefghijklmnopqrstu", "tags.append('openai={s}')"),
    ("run name", "ghp_runname0123456789abcdefghijklmn", "run_name = 'Search {s}'"),
    ("custom event tag", "xoxb-5555555555-customtagvalue", "custom_tags.append('slack {s}')"),
    ("document id, a signed URL", "docidsignaturevalue42", "doc_id = 'https://files.example/a.pdf?X-Amz-Signature={s}&v=1'"),
    ("document id from metadata 'id'", "sk-metaid-abcdefghijklmnopq", "doc_meta2['id'] = 'doc {s}'"),
    ("request field from ls_ metadata", "vs-url-password", "meta['ls_vector_store_provider'] = 'https://u:{s}@vs.example'"),
    ("request field given (embedding_model)", "sk-embedmodel-abcdefghijklmn", "embedding_model = 'model {s}'"),
    ("request field given (search_type)", "search-type-secret-value", "search_type = 'mmr?token={s}'"),
    ("metadata key holding a token", "sk-metakey-abcdefghijklmnop", "meta['note {s}'] = 1"),
    ("exception class name", "sk-classname-abcdefghijklmn", "ErrorType = type('Bad {s}', (ValueError,), {{}})"),
]
ARGV = [  # only `rtrace run` records these
    ("argv --api-key VALUE", "argv-flag-value-1"),
    ("argv --password=VALUE", "argv-flag-value-2"),
    ("argv sk- positional", "sk-positional-abcdefghijklmnop"),
    ("argv URL with credentials", "argv-url-pass"),
    ("--meta URL with credentials", "meta-url-pass"),
    ("--tag with a token", "sk-roottag-abcdefghijklmnop"),
]
CONTENT = ("document content token", "sk-in-the-document-content-0123456789")

PROGRAM = """
    import tenacity
    from rtrace.core import Document, retriever, current_run, dispatch_custom_event
    from rtrace.core import CallbackManager
    meta, doc_meta, doc_meta2, custom = {{"max_tokens": 512, "source": "notes.md"}}, {{"source": "a.md"}}, {{}}, {{}}
    query = query2 = text = text2 = text3 = error_message = retry_message = custom_name = ""
    tags, custom_tags, run_name, doc_id, ErrorType = ["plain-tag"], [], "Search", "d1", ValueError
    embedding_model = search_type = "plain"
    {placements}

    @retriever(name=run_name, tags=tags, metadata=meta)
    def search(q):
        rm = current_run()
        rm.on_text(text)
        rm.on_text(text2)
        rm.on_text(text3)
        rm.on_custom_event(custom_name, custom, tags=custom_tags)
        return [Document("the text {content}", doc_meta, id=doc_id), Document("second", doc_meta2)]

    search(query)
    search(query2)
    CallbackManager.configure().on_retriever_start(
        None, "plain", search_type=search_type, embedding_model=embedding_model).on_retriever_end([])

    @retriever
    def failing(q):
        raise ErrorType(error_message + " " + SOURCE_TOKEN)

    try:
        failing("q")
    except ValueError:
        pass

    calls = []

    @retriever
    def flaky(q):
        @tenacity.retry(stop=tenacity.stop_after_attempt(2), wait=tenacity.wait_none(),
                        before_sleep=current_run().on_retry, reraise=True)
        def attempt():
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError(retry_message)
            return []
        return attempt()

    flaky("q")
"""


def program(content: str = CONTENT[1]) -> str:
    lines = [code.format(s=secret) for _, secret, code in KEYS + TOKENS]
    return textwrap.dedent(PROGRAM).format(placements=textwrap.indent("\n".join(lines), ""), content=content)


def check(log_text: str, rows: list[tuple[str, str]]) -> None:
    leaked = [name for name, secret in rows if secret in log_text]
    assert leaked == [], f"secrets leaked from: {leaked}"


@pytest.fixture(scope="module")
def run_log(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("secrets")
    (tmp / "prog.py").write_text(program())
    argv = ["--api-key", ARGV[0][1], f"--password={ARGV[1][1]}", ARGV[2][1], f"https://me:{ARGV[3][1]}@h/x"]
    proc = subprocess.run([*RTRACE, "run", "-q", "-o", "log.jsonl", "--meta", f"db=postgres://bob:{ARGV[4][1]}@h/db",
                           "--tag", f"openai={ARGV[5][1]}",
                           "prog.py", *argv], cwd=tmp, capture_output=True, text=True, timeout=120, env=ENV)
    assert proc.returncode == 0, proc.stderr
    return (tmp / "log.jsonl").read_text()


@pytest.mark.parametrize("name,secret", [(n, s) for n, s, _ in KEYS + TOKENS] + ARGV)
def test_rtrace_run_redacts(run_log: str, name: str, secret: str) -> None:
    check(run_log, [(name, secret)])


def test_redaction_keeps_what_is_not_secret(run_log: str) -> None:
    events = [json.loads(line) for line in run_log.splitlines()]
    start = next(e for e in events if e["event"] == "retriever_start")
    assert start["query"] == "search with [REDACTED] please"
    meta = start["metadata"]
    assert meta["max_tokens"] == 512 and meta["source"] == "notes.md"  # a count of tokens is no token
    assert meta["apiKey"] == "[REDACTED]" and meta["headers"] == {"X-Api-Key": "[REDACTED]", "Accept": "json"}
    assert meta["dsn"] == "postgres://[REDACTED]@db.example/app"
    assert meta["endpoint"] == "https://api.example/v1?api_key=[REDACTED]&page=2"
    session = events[0]
    assert session["argv"][1:] == ["--api-key", "[REDACTED]", "--password=[REDACTED]", "[REDACTED]",
                                   "https://[REDACTED]@h/x"]
    assert start["metadata"]["db"] == "postgres://[REDACTED]@h/db"
    custom = next(e for e in events if e["event"] == "custom_event")
    assert custom["data"]["header"] == "Bearer [REDACTED]"
    # document content is the user's data: kept unless asked
    end = next(e for e in events if e["event"] == "retriever_end")
    assert end["documents"][0]["page_content"] == f"the text {CONTENT[1]}"


# Every string field a log holds is either user data, scanned (each with a row above), or written by
# rtrace itself. A new field is classified here before it can be written unscanned.
SCANNED = {"name", "tags", "query", "text", "custom_name", "argv", "rtrace_argv", "cwd", "search_type", "vector_store",
           "embedding_provider", "embedding_model", "id", "type", "message", "traceback", "page_content"}
NESTED = {"metadata", "data"}  # any depth, keys and values (Redactor.__call__)
RTRACE_OWN = {"ts", "event", "session_id", "run_id", "parent_run_id", "trace_id", "python", "rtrace_version",
              "parent_session_id", "content", "score_source", "outcome", "id_source", "score_kind", "incomplete_runs"}


def string_fields(value: object, name: str = "") -> set[str]:
    if isinstance(value, str) or (isinstance(value, list) and value and all(isinstance(x, str) for x in value)):
        return {name}
    if isinstance(value, dict) and name not in NESTED:
        return set().union(*(string_fields(v, k) for k, v in value.items()))
    if isinstance(value, list):
        return set().union(*(string_fields(v, name) for v in value))
    return set()


def test_every_string_field_is_scanned_or_rtrace_s_own(run_log: str) -> None:
    fields = set().union(*(string_fields(json.loads(line)) for line in run_log.splitlines()))
    assert {"name", "tags", "id", "vector_store", "embedding_model", "search_type", "cwd"} <= fields
    assert fields - SCANNED - RTRACE_OWN == set()


# Only a script that fails, run from a directory whose name holds a token, records these.
ENDING = [("session_end error message", "sk-uncaught-abcdefghijklmnopq"),
          ("session_start cwd", "ghp_cwddirectory0123456789abcdefghij")]


@pytest.mark.parametrize("name,secret", ENDING)
def test_an_uncaught_error_and_the_working_directory_are_redacted(tmp_path: Path, name: str, secret: str) -> None:
    work = tmp_path / f"token {ENDING[1][1]}"
    work.mkdir()
    (work / "prog.py").write_text(f"raise RuntimeError('gave up with {ENDING[0][1]}')\n")
    proc = subprocess.run([*RTRACE, "run", "-q", "-o", str(tmp_path / "log.jsonl"), "prog.py"], cwd=work,
                          capture_output=True, text=True, timeout=120, env=ENV)
    assert proc.returncode == 1 and "RuntimeError: gave up with" in proc.stderr  # python's own report is the user's
    events = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert events[-1]["error"]["message"] == "gave up with [REDACTED]"
    check("\n".join(json.dumps(e) for e in events), [(name, secret)])


def test_redact_content_scrubs_documents_too(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text(program())
    proc = subprocess.run([*RTRACE, "run", "-q", "-o", "log.jsonl", "--redact-content", "prog.py"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=ENV)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "log.jsonl").read_text()
    check(text, [CONTENT] + [(n, s) for n, s, _ in KEYS + TOKENS])
    assert "the text [REDACTED]" in text


def test_the_library_redacts_every_placement(tmp_path: Path) -> None:
    source = "from rtrace.core import trace_to\nwith trace_to('log.jsonl'):\n" + textwrap.indent(program(), "    ")
    (tmp_path / "prog.py").write_text(source)
    proc = subprocess.run([sys.executable, "prog.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=ENV)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "log.jsonl").read_text()
    check(text, [(n, s) for n, s, _ in KEYS + TOKENS])
    assert len(read_events(tmp_path / "log.jsonl")) > 8


def test_the_library_can_turn_value_scanning_off_and_add_keys(tmp_path: Path) -> None:
    from rtrace.core import CallbackManager, JsonlHandler

    log = tmp_path / "t.jsonl"
    handler = JsonlHandler(log, redact=["tenant"], redact_values=False)
    rm = CallbackManager.configure([handler], local_metadata={"Tenant": "acme", "api_key": "kept"}).on_retriever_start(
        None, "sk-proj-abcdefghijklmnopqrstuvwx")
    rm.on_retriever_end([])
    handler.close()
    start = read_events(log)[1]
    assert start["metadata"] == {"Tenant": "[REDACTED]", "api_key": "kept"}
    assert start["query"] == "sk-proj-abcdefghijklmnopqrstuvwx"
