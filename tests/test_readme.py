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
