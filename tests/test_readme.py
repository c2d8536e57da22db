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
