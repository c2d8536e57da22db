"""Packaging: every subpackage is listed, and a built wheel installs rtrace.core / rtrace.cli only."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = None  # type: ignore[assignment]


def _setuptools_config() -> dict:
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _source_packages() -> dict[str, str]:
    """Every package directory under core/ and cli/, as dotted name -> directory."""
    found = {}
    for top, name in (("core", "rtrace.core"), ("cli", "rtrace.cli")):
        for init in sorted((ROOT / top).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT / top)
            dotted = ".".join((name, *rel.parts)) if rel.parts else name
            found[dotted] = init.parent.relative_to(ROOT).as_posix()
    return found


def test_every_subpackage_is_listed_for_packaging() -> None:
    config = _setuptools_config()
    # "rtrace" itself: a namespace whose folder holds only __main__.py (python -m rtrace).
    found = {**_source_packages(), "rtrace": "cli/_rtrace"}
    assert set(found) == set(config["packages"]), "pyproject.toml [tool.setuptools] packages is out of date"
    assert sorted(p.name for p in (ROOT / "cli" / "_rtrace").iterdir() if p.name != "__pycache__") == ["__main__.py"]
    for dotted, directory in found.items():
        assert config["package-dir"][dotted] == directory


def test_no_namespace_root_module() -> None:
    # rtrace is a PEP 420 namespace: an rtrace/__init__.py anywhere would shadow it.
    assert importlib.util.find_spec("rtrace").origin in (None, "namespace")
    assert not (ROOT / "rtrace").exists()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # With build isolation, as a user's `pip install .` builds it (setuptools>=68 from pyproject).
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    (path,) = out.glob("rtrace-*.whl")
    return path


def test_the_wheel_holds_only_the_rtrace_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("rtrace-")}
    assert tops == {"rtrace"}
    assert "rtrace/__init__.py" not in names
    for required in ("rtrace/core/__init__.py", "rtrace/core/schema/events-v1.json", "rtrace/core/py.typed",
                     "rtrace/core/integrations/__init__.py", "rtrace/cli/app.py", "rtrace/cli/__main__.py",
                     "rtrace/__main__.py"):
        assert required in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "rtrace = rtrace.cli.app:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_installed_wheel_runs(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import rtrace.core, rtrace.cli.app as app;"
        "assert rtrace.core.__file__.startswith(sys.argv[1]), rtrace.core.__file__;"
        "import json; json.loads(rtrace.core.schema_text());"
        "sys.argv = ['rtrace', '--version']; app.main()"
    )
    r = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"rtrace {rtrace_version()}"


def test_python_m_rtrace_runs_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import importlib.util as u, rtrace; "
                            "print(u.find_spec('rtrace.__main__').origin); print(u.find_spec('rtrace').origin)"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert where.returncode == 0, where.stderr
    main_origin, rtrace_origin = where.stdout.splitlines()
    assert main_origin == str(target / "rtrace" / "__main__.py") and rtrace_origin in ("None", "namespace")
    r = subprocess.run([sys.executable, "-m", "rtrace", "--version"], capture_output=True, text=True, cwd=tmp_path,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"rtrace {rtrace_version()}"


def test_python_m_rtrace_in_this_install(tmp_path: Path) -> None:
    # The suite runs on the README's editable install: python -m rtrace works there too, and
    # rtrace stays a namespace (no regular package named rtrace shadows rtrace.core / rtrace.cli).
    r = subprocess.run([sys.executable, "-m", "rtrace", "ls", "--help"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Usage: rtrace ls" in " ".join(r.stdout.split())
    probe = subprocess.run([sys.executable, "-c", "import rtrace, importlib.util as u; "
                            "print(u.find_spec('rtrace').origin, hasattr(rtrace, 'app'))"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert probe.stdout.split() in (["None", "False"], ["namespace", "False"])


def test_shell_completion_completes_commands_and_options(tmp_path: Path) -> None:
    def complete(words: str, cword: int) -> list[str]:
        env = {**os.environ, "_RTRACE_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
        r = subprocess.run([sys.executable, "-m", "rtrace"], capture_output=True, text=True, cwd=tmp_path,
                           env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    assert complete("rtrace sh", 1) == ["show"]
    assert complete("rtrace show --fo", 2) == ["--follow", "--format"]
    # Typer takes the shell as a value only when it does not detect the shell itself (that depends
    # on the processes above the test: CI's, a background job's); its switch for tests says so.
    script = subprocess.run([sys.executable, "-m", "rtrace", "--show-completion", "bash"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=60,
                            env={**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert script.returncode == 0 and "_RTRACE_COMPLETE=complete_bash" in script.stdout


def rtrace_version() -> str:
    from rtrace.core import __version__

    return __version__


def test_rtrace_schema_prints_the_shipped_json_schema(tmp_path: Path) -> None:
    import json

    r = subprocess.run([sys.executable, "-m", "rtrace.cli", "schema"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0
    schema = json.loads(r.stdout)
    assert schema == json.loads((ROOT / "core" / "schema" / "events-v1.json").read_text())
    assert schema["properties"]["v"] == {"const": 1}


def test_imports_follow_the_layout() -> None:
    """Never the bare `core`/`cli` packages; core stays free of typer and rich."""
    import re

    bare = re.compile(r"^\s*(from|import)\s+(core|cli)(\.|\s|$)", re.M)
    ui = re.compile(r"^\s*(from|import)\s+(typer|rich|click)\b", re.M)
    for path in [*ROOT.glob("core/**/*.py"), *ROOT.glob("cli/**/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("samples/*.py")]:
        text = path.read_text()
        assert not bare.search(text), f"{path}: import rtrace.core / rtrace.cli, not the bare package"
        if path.is_relative_to(ROOT / "core"):
            assert not ui.search(text), f"{path}: core must not import typer, rich or click"


def test_importing_core_does_not_load_the_cli_stack() -> None:
    code = "import sys, rtrace.core; print(sorted(m for m in ('typer', 'rich', 'click', 'asyncio') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]"


# rtrace.core loads its public API on first use (PEP 562): what a user, a type checker and pickle see.
LAZY_API = """
import ast, copy, pickle, sys
import rtrace.core as c

assert "rtrace.core.record.managers" not in sys.modules  # nothing loaded yet
assert set(c.__all__) <= set(dir(c)), set(c.__all__) - set(dir(c))
names = {}
exec("from rtrace.core import *", names)
assert set(c.__all__) <= set(names), set(c.__all__) - set(names)
for name in c.__all__:  # each one the object its own module defines
    where = c._WHERE[name]
    assert names[name] is getattr(sys.modules[where], name), name
# A type checker reads the TYPE_CHECKING block: it names the same objects, from the same modules.
block = next(n for n in ast.walk(ast.parse(open(c.__file__).read()))
             if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
checked = {a.asname or a.name: imp.module for imp in block.body for a in imp.names}
assert checked == c._WHERE, set(checked.items()) ^ set(c._WHERE.items())
try:
    c.no_such_name
except AttributeError as e:
    assert str(e) == "module 'rtrace.core' has no attribute 'no_such_name'", e
else:
    raise AssertionError("no AttributeError")
doc = c.Document("text", metadata={"a": [1]}, id="d1")
assert pickle.loads(pickle.dumps(doc)) == doc == copy.deepcopy(doc)
assert pickle.loads(pickle.dumps(c.JsonlHandler)) is c.JsonlHandler
print("ok")
"""


def test_the_public_api_resolves_lazily_as_an_eager_module_would() -> None:
    r = subprocess.run([sys.executable, "-c", LAZY_API], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, "ok\n", "")


RECORDER = ("rtrace.core.record.managers", "rtrace.core.record.dispatch", "rtrace.core.record.jsonl",
            "rtrace.core.record.handlers", "rtrace.core.record.documents", "rtrace.core.record.instrument",
            "rtrace.core.record.context", "rtrace.core.integrations")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args", [["show", "--no-pager"], ["show", "--format", "table", "--no-pager"], ["filter"],
                                  ["stats"]], ids=lambda a: " ".join(a))
def test_reading_commands_do_not_import_the_recorder(tmp_path: Path, args: list[str]) -> None:
    # Their start-up time: the managers, the writer and the framework hooks are for `rtrace run`.
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"v":1,"seq":1,"ts":"2026-01-01T00:00:00.000000Z","event":"session_start","session_id":"s"}\n'
                    b'{"v":1,"seq":2,"ts":"2026-01-01T00:00:00.000001Z","event":"retriever_start","session_id":"s",'
                    b'"run_id":"r","parent_run_id":null,"trace_id":"r","name":"R","query":"q"}\n')
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "rtrace.cli", *args, str(log)],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "rtrace.core.read.reader" in imported
    assert not {m for m in imported if m.startswith(RECORDER)}, sorted(m for m in imported if m.startswith(RECORDER))
