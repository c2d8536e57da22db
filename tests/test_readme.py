"""The README stays true: its commands block and its DuckDB query."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_the_readme_starts_with_two_single_line_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block is not None and README.index("```sh") < README.index("\n## ")
    lines = first_block.group(1).strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("pip install -e . && rtrace run samples/")
    assert lines[1] == "pip install -e '.[test]' && pytest"


def test_the_duckdb_query_runs_on_a_real_log(tmp_path: Path) -> None:
    import duckdb

    sql = re.search(r"```sql\n(.*?)```", README, re.S).group(1)  # type: ignore[union-attr]
    log = tmp_path / "runs.jsonl"
    r = subprocess.run([sys.executable, "-m", "rtrace.cli", "run", "-q", "-o", str(log), str(ROOT / "samples" / "flaky.py")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = duckdb.sql(sql.replace("'runs.jsonl'", f"'{log}'")).fetchall()
    assert rows == [("FlakyVectorStore", 5, 1, rows[0][3])] and rows[0][3] > 0


def test_every_sample_the_readme_mentions_runs_after_the_install_it_names() -> None:
    """A sample imports only rtrace's own dependencies, the stdlib, its neighbours, or the
    `samples` extra; and one that needs the extra says so in one line when it is missing."""
    import ast
    import importlib.metadata as md

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import pytest

        pytest.skip("tomllib needs Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=\[; ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}

    allowed = names(project["dependencies"]) | names(project["optional-dependencies"]["samples"])
    distributions = md.packages_distributions()
    mentioned = sorted(set(re.findall(r"samples/(\w+)\.py", README)))
    assert "hybrid" in mentioned and len(mentioned) >= 3
    for sample in mentioned:
        tree = ast.parse((ROOT / "samples" / f"{sample}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for module in modules:
                    top = module.split(".")[0]
                    if top in sys.stdlib_module_names or top in ("rtrace", "__future__", "searchlib"):
                        continue
                    dists = {d.lower().replace("_", "-") for d in distributions.get(top, [])}
                    assert dists & allowed, f"samples/{sample}.py imports {module}: add it to the samples extra"
    r = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, 'samples'); sys.argv = ['flaky.py'];"
                        "import searchlib; searchlib.require('tenacity', 'no_such_module_here')"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr == "flaky.py needs no_such_module_here: pip install -e '.[samples]'\n"


def _command_options() -> dict[str, set[str]]:
    """Every rtrace command's option names (``""``: the root's), from the Typer app itself."""
    import typer.main
    from rtrace.cli.app import app

    root = typer.main.get_command(app)
    found = {"": {o for p in root.params for o in [*p.opts, *p.secondary_opts]}}
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        found[name] = {o for p in command.params for o in [*p.opts, *p.secondary_opts] if o.startswith("-")}
    return found


def _bench_options() -> dict[str, dict[str, object]]:
    """Each bench script's argparse options and their defaults (``None``: a flag or no default)."""
    import ast

    found: dict[str, dict[str, object]] = {}
    for script in sorted((ROOT / "tests" / "bench").glob("*.py")):
        options: dict[str, object] = {}
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
                default = next((ast.literal_eval(k.value) for k in node.keywords if k.arg == "default"), None)
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and str(arg.value).startswith("-"):
                        options[arg.value] = default
        found[script.name] = options
    return found


# Options the README shows as a traced script's own arguments, not rtrace's.
SCRIPT_ARGUMENTS = {"--k", "--api-key"}


def test_every_option_the_readme_names_is_an_option_of_its_command() -> None:
    options = _command_options()
    every = set().union(*options.values())
    bench = set().union(*_bench_options().values())
    for option in set(re.findall(r"(?<![\w./-])(--[a-z][\w-]*)", README)):
        assert option in every | bench | SCRIPT_ARGUMENTS, f"the README names {option}, which no command has"
    # `rtrace CMD ...` in a code block or in the text: each option after it is CMD's own (a script's
    # arguments after `rtrace run SCRIPT` are the script's).
    shown = re.findall(r"rtrace (" + "|".join(c for c in options if c) + r")\b([^\n`|#&;]*)", README)
    assert len(shown) > 40
    for command, rest in shown:
        for token in rest.split():
            if command == "run" and (token.endswith(".py") or token in ("-m", "-c")):
                break  # the script and its own arguments follow
            if re.fullmatch(r"--?[a-zA-Z][\w-]*", token):
                assert token in options[command] | options[""], f"`rtrace {command}{rest}`: {command} has no {token}"


# What the README says each bench runs by default, as it says it: script, option, phrase ({} is the default).
BENCH_DEFAULTS = [
    ("overhead.py", "--calls", "{:,} calls per sample"),
    ("overhead.py", "--rounds", "{} interleaved rounds"),
    ("overhead.py", "--run-calls", "the `run` group: {:,} calls per sample"),
    ("frameworks.py", "--calls", "{:,} calls ×"),
    ("frameworks.py", "--rounds", "× {} interleaved rounds"),
    ("startup.py", "--runs", "{} alternating runs each"),
    ("read.py", "--traces", "{:,} traces of 3 runs"),
    ("read.py", "--rounds", "{} interleaved rounds"),
    ("eval.py", "--labelled", "labels for {:,} of its queries"),
    ("eval.py", "--repeats", "{} runs each"),
    ("export.py", "--runs", "{} interleaved runs"),
]


def test_the_run_counts_the_readme_states_are_the_bench_scripts_defaults() -> None:
    """Every bench command the README shows exists with the options it is given, and the counts the
    README states beside `python tests/bench/X.py` (its paragraph) are that script's defaults."""
    benches = _bench_options()
    paragraphs = README.split("\n\n")
    for script, option, phrase in BENCH_DEFAULTS:
        text = next(p for p in paragraphs if f"`python tests/bench/{script}`" in p or f"`python tests/bench/{script} " in p)
        stated = phrase.format(benches[script][option])
        assert stated in " ".join(text.split()), f"README, beside {script}: expected {stated!r} ({option}'s default)"
    for script, args in re.findall(r"python tests/bench/(\w+\.py)([^`\n]*)", README):
        assert script in benches, f"the README runs tests/bench/{script}, which does not exist"
        for token in args.split():
            if token.startswith("--"):
                assert token in benches[script], f"the README runs {script} with {token}, which it does not take"


def test_every_file_test_and_extra_the_readme_cites_exists() -> None:
    """What the README points to as its backing (a test file, a test, a bench, a sample, a module)
    and the extras it tells users to install are there."""
    for path in set(re.findall(r"\b((?:tests|samples|core|cli)/[\w./*-]*\w/?)", README)):
        assert list(ROOT.glob(path.rstrip("/"))), f"the README cites {path}, which does not exist"
    tests = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    for name in set(re.findall(r"\b(test_\w+)\b", README)):
        assert f"def {name}(" in tests or (ROOT / "tests" / f"{name}.py").exists(), f"the README cites {name}"
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    named = set(re.findall(r"'\.\[(\w+)\]'", README))
    assert {"test", "otel", "samples"} <= named <= set(extras), named - set(extras)


def test_the_python_api_example_runs_as_its_comments_say(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The README's first Python block, with a small index behind it whose first search fails once."""
    import types

    import tenacity
    from conftest import read_events
    from rtrace.core import Document

    class Index:
        calls = 0

        def search(self, query: str, k: int) -> list[tuple[Document, float]]:
            Index.calls += 1
            if Index.calls == 1:
                raise ConnectionError("index warming up")
            return [(Document(f"passage {i}", id=f"d{i}"), 1 - i / 10) for i in range(k)]

    block = re.search(r"```python\n(.*?)```", README, re.S).group(1)  # type: ignore[union-attr]
    monkeypatch.chdir(tmp_path)
    namespace = {"index": Index(), "tenacity": tenacity, "sparse": lambda q: [],
                 "rerank": lambda pairs: [doc for doc, _ in pairs][:3]}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    assert isinstance(namespace["BM25"], type) and isinstance(namespace["dense"], types.FunctionType)
    events = read_events(tmp_path / "runs.jsonl")
    starts = {e["run_id"]: e for e in events if e["event"] == "retriever_start"}
    hybrid = next(e for e in starts.values() if e["name"] == "Hybrid")
    assert hybrid["tags"] == ["prod"] and hybrid["parent_run_id"] is None
    dense = [e for e in starts.values() if e["name"] == "dense"]
    assert len(dense) == 2 and all(e["parent_run_id"] == hybrid["run_id"] for e in dense)  # nested: child runs
    (retry,) = [e for e in events if e["event"] == "retry"]
    assert retry["run_id"] == hybrid["run_id"] and retry["attempt"] == 1  # tenacity's retry, recorded
    (failed,) = [e for e in events if e["event"] == "retriever_error"]
    assert failed["run_id"] == dense[0]["run_id"] and failed["error"]["type"] == "ConnectionError"
    ok = next(e for e in events if e["event"] == "retriever_end" and e["run_id"] == dense[1]["run_id"])
    assert [d["score"] for d in ok["documents"]] == [1.0, 0.9, 0.8, 0.7, 0.6]  # (doc, score) pairs keep their scores
    end = next(e for e in events if e["event"] == "retriever_end" and e["run_id"] == hybrid["run_id"])
    assert [d["id"] for d in end["documents"]] == ["d0", "d1", "d2"]
