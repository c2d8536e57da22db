"""LangChain's own unit tests, from its source distributions, as an oracle for rtrace.

Nothing of LangChain is vendored: the source distributions of the installed
``langchain-core`` (and ``langchain-classic``) are fetched with pip once and cached
under ``~/.cache/rtrace-langchain-suites`` (reruns are offline), as is a virtual
environment holding only LangChain's test dependencies; a ``.pth`` file there makes
this interpreter's site-packages (rtrace, langchain-core at the installed version)
importable, so the suites run against exactly what is installed here.

Two uses (tests/test_langchain_suites.py, both ``@pytest.mark.slow``):
- ``rewrite`` points the callback-manager, dispatch-custom-event and retriever tests at
  ``rtrace.core`` by changing their import lines only; every applicable test must pass,
  and every other one is listed in ``NOT_APPLICABLE`` with the reason.
- ``outcomes`` runs LangChain's unmodified tests under ``python -m pytest`` and under
  ``rtrace run -m pytest``; each test must end the same way (do no harm).

Run by hand: ``python tests/langchain_suites.py`` prints both comparisons.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

CACHE = Path(os.environ.get("RTRACE_LANGCHAIN_SUITES", Path.home() / ".cache" / "rtrace-langchain-suites"))
# langchain-classic is not a dependency of rtrace's tests; its tests are classified at this
# version (the one the compatibility report used) unless another one is installed.
CLASSIC_FALLBACK_VERSION = "1.0.8"
OUTER_SITE = "RTRACE_SUITES_OUTER_SITE"
# LangChain's test dependencies (langchain-core's pyproject, [dependency-groups] test) that the
# selected files need, plus pytest-timeout so nothing can hang.
TEST_DEPS = (
    "pytest>=8,<10", "pytest-asyncio>=1.3,<2", "syrupy>=5,<6", "freezegun>=1.2.2,<2",
    "pytest-mock>=3.10,<4", "blockbuster>=1.5.18,<1.6", "responses>=0.25,<1",
    "pytest-socket>=0.7,<0.9", "pytest-timeout>=2.3",
)

# Modules whose names rtrace.core also exports: those names are imported from rtrace.core.
REWRITTEN_MODULES = (
    "langchain_core.callbacks", "langchain_core.callbacks.base", "langchain_core.callbacks.manager",
    "langchain_core.retrievers",
)
RENAMES = {"BaseRetriever": "Retriever"}

# The files of langchain-core whose imports are rewritten. test_handle_event.py runs LangChain's
# own handle_event with rtrace's handlers (its BaseCallbackHandler import is rewritten): rtrace
# handlers must behave as LangChain's there. tests/unit_tests/test_retrievers.py is empty in
# langchain-core 1.8; LangChain's other retriever tests compose retrievers as Runnables.
CORE_REWRITTEN = (
    "tests/unit_tests/callbacks/test_async_callback_manager.py",
    "tests/unit_tests/callbacks/test_dispatch_custom_event.py",
    "tests/unit_tests/callbacks/test_handle_event.py",
    "tests/unit_tests/callbacks/test_sync_callback_manager.py",
    "tests/unit_tests/callbacks/test_trace_group_cancellation.py",
    "tests/unit_tests/callbacks/test_usage_callback.py",
    "tests/unit_tests/callbacks/test_imports.py",
    "tests/unit_tests/test_retrievers.py",
)

_LLM = "LLM and chat-model runs (rtrace records retriever runs; LangChain's LLM runs keep LangChain's managers)"
_CHAIN = "chain runs (trace_as_chain_group): rtrace has no chain managers"
_IMPORTS = "an import list of LangChain's modules, not behaviour"
_UNTOUCHED = "; it imports no name rtrace.core has, so it would only test LangChain"

# test id (file::name, or a file for all its tests) -> why it does not apply to rtrace.core.
NOT_APPLICABLE: dict[str, str] = {
    "tests/unit_tests/callbacks/test_async_callback_manager.py::test_inline_handlers_share_parent_context":
        _LLM + "; the same isolation for retriever runs is "
        "tests/test_differential.py::test_a_single_async_handler_cannot_leak_context_into_the_caller",
    "tests/unit_tests/callbacks/test_async_callback_manager.py::test_inline_handlers_share_parent_context_multiple":
        _LLM,
    "tests/unit_tests/callbacks/test_async_callback_manager.py::test_shielded_callback_context_preservation":
        _LLM + " and chain runs",
    "tests/unit_tests/callbacks/test_trace_group_cancellation.py": _CHAIN + _UNTOUCHED,
    "tests/unit_tests/callbacks/test_usage_callback.py": _LLM + " (token usage of chat models)" + _UNTOUCHED,
    "tests/unit_tests/callbacks/test_imports.py": _IMPORTS + _UNTOUCHED,
}

# langchain-classic: fetched and every test file of its callback and retriever tests classified.
CLASSIC_DIRS = ("tests/unit_tests/callbacks", "tests/unit_tests/retrievers")
CLASSIC_NOT_APPLICABLE: dict[str, str] = {
    "tests/unit_tests/callbacks/test_base.py": _IMPORTS,
    "tests/unit_tests/callbacks/test_imports.py": _IMPORTS,
    "tests/unit_tests/callbacks/test_manager.py": _IMPORTS,
    "tests/unit_tests/callbacks/test_file.py": "chain runs written by FileCallbackHandler (LangChain chains)",
    "tests/unit_tests/callbacks/test_stdout.py": "chain runs printed by StdOutCallbackHandler (LangChain chains)",
    "tests/unit_tests/callbacks/tracers": "LangSmith and LangChain tracers",
    "tests/unit_tests/retrievers/test_imports.py": _IMPORTS,
    "tests/unit_tests/retrievers/test_ensemble.py":
        "EnsembleRetriever, a LangChain Runnable composing LangChain retrievers (rtrace's Retriever is not a Runnable)",
    "tests/unit_tests/retrievers/test_multi_query.py": "MultiQueryRetriever's query parsing (LLM chains)",
    "tests/unit_tests/retrievers/test_multi_vector.py": "MultiVectorRetriever over LangChain vector stores",
    "tests/unit_tests/retrievers/test_parent_document.py": "ParentDocumentRetriever over LangChain vector stores",
    "tests/unit_tests/retrievers/test_time_weighted_retriever.py":
        "TimeWeightedVectorStoreRetriever's scoring over LangChain vector stores",
    "tests/unit_tests/retrievers/document_compressors": "document compressors (LLM chains, embeddings)",
    "tests/unit_tests/retrievers/self_query": "SelfQueryRetriever's query construction (LLM chains)",
}


def installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def fetch(dist: str, version: str) -> Path:
    """The extracted source distribution of ``dist==version`` (downloaded once, then cached)."""
    sdists = CACHE / "sdists"
    target = sdists / f"{dist.replace('-', '_')}-{version}"
    if (target / "tests").is_dir():
        return target
    sdists.mkdir(parents=True, exist_ok=True)
    pattern = f"{dist.replace('-', '_')}-{version}.tar.gz"
    if not (sdists / pattern).exists():
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                            f"{dist}=={version}", "-d", str(sdists)], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"pip download {dist}=={version} failed: {r.stderr.strip()[-500:]}")
    with tarfile.open(sdists / pattern) as tar:
        tar.extractall(sdists, filter="data")
    return target


def venv_python() -> Path:
    """A cached virtual environment with LangChain's test dependencies, seeing this interpreter's packages."""
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
    venv = CACHE / f"venv-{tag}"
    python = venv / "bin" / "python"
    marker = venv / ".complete"
    if not marker.exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        r = subprocess.run([str(python), "-m", "pip", "install", "-q", *TEST_DEPS],
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError(f"installing LangChain's test dependencies failed: {r.stderr.strip()[-500:]}")
        # The site-packages named by OUTER_SITE (run_pytest: this interpreter's, with rtrace and the
        # installed langchain-core) come after the venv's own; site.addsitedir also runs the .pth
        # files there, so editable installs work. An environment variable, not a path written
        # here, so runs from several checkouts can share the cached venv.
        site_dir = Path(subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True).stdout.strip())
        (site_dir / "_rtrace_outer_site.pth").write_text(
            f"import os, site; _p = os.environ.get({OUTER_SITE!r}); _p and site.addsitedir(_p)\n")
        marker.write_text("ok\n")
    return python


def rewrite_source(source: str) -> str:
    """``source`` with the rtrace.core names of LangChain's callback and retriever imports taken from rtrace.core."""
    import rtrace.core as rtc

    exported = set(rtc.__all__)
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, str]] = []
    for node in tree.body:
        if not (isinstance(node, ast.ImportFrom) and node.module in REWRITTEN_MODULES and node.level == 0):
            continue
        ours, theirs = [], []
        for alias in node.names:
            name = RENAMES.get(alias.name, alias.name)
            if name in exported:
                local = alias.asname or alias.name
                ours.append(name if local == name else f"{name} as {local}")
            else:
                theirs.append(alias.name if alias.asname is None else f"{alias.name} as {alias.asname}")
        if not ours:
            continue
        text = f"from rtrace.core import {', '.join(ours)}\n"
        if theirs:
            text += f"from {node.module} import {', '.join(theirs)}\n"
        edits.append((node.lineno - 1, node.end_lineno or node.lineno, text))
    for start, end, text in reversed(edits):
        lines[start:end] = [text]
    return "".join(lines)


def rewrite(root: Path, files: tuple[str, ...]) -> list[str]:
    """Rewrite ``files`` under ``root`` in place; the files that changed."""
    changed = []
    for rel in files:
        path = root / rel
        if not path.exists():
            continue
        old = path.read_text()
        new = rewrite_source(old)
        if new != old:
            path.write_text(new)
            changed.append(rel)
    return changed


def workdir(src: Path, dest: Path) -> Path:
    """A private copy of an extracted sdist's tests and config (the cache is never modified).

    The sdist's own package is left out: ``python -m pytest`` puts the working directory on
    ``sys.path``, and the tests must import the installed LangChain, not this copy of it.
    """
    dest.mkdir(parents=True)
    for item in src.iterdir():
        if item.name == "tests":
            shutil.copytree(item, dest / "tests", ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
        elif item.is_file():
            shutil.copy2(item, dest / item.name)
    return dest


def outcomes(junit: Path) -> dict[str, str]:
    """``{file::test: passed|failed|error|skipped}`` from a JUnit XML report."""
    result: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        parts = classname.split(".")
        # tests.unit_tests.callbacks.test_x[.Class] -> tests/unit_tests/callbacks/test_x.py
        idx = next((i for i, p in enumerate(parts) if p.startswith("test_")), len(parts) - 1)
        test_id = "/".join(parts[: idx + 1]) + ".py::" + "::".join(parts[idx + 1:] + [name])
        kinds = {child.tag for child in case}
        status = ("failed" if "failure" in kinds else "error" if "error" in kinds
                  else "skipped" if "skipped" in kinds else "passed")
        if status == "error" and test_id in result:  # a teardown error after a result
            status = "failed"
        result[test_id] = status
    return result


def run_pytest(python: Path, cwd: Path, paths: list[str], junit: Path, *, traced_log: Path | None = None,
               timeout: float = 480) -> tuple[dict[str, str], str]:
    """Run LangChain's tests (``rtrace run -m pytest`` when ``traced_log``); outcomes and the output tail."""
    pytest_args = ["-m", "pytest", "-p", "no:cacheprovider", "-q", "--timeout", "120", "-o", "addopts=",
                   "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
                   f"--junitxml={junit}", *paths]
    if traced_log is None:
        cmd = [str(python), *pytest_args]
    else:
        cmd = [str(python), "-m", "rtrace.cli", "run", "-q", "-o", str(traced_log), *pytest_args]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RTRACE_", "LANGCHAIN_", "LANGSMITH_"))}
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env[OUTER_SITE] = sysconfig.get_paths()["purelib"]
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    tail = (r.stdout + r.stderr)[-3000:]
    if not junit.exists():
        raise RuntimeError(f"pytest wrote no report (exit {r.returncode}):\n{tail}")
    return outcomes(junit), tail


def not_applicable(test_id: str, table: dict[str, str]) -> str | None:
    """The reason ``test_id`` does not apply, from a per-test or per-file (or folder) entry."""
    path = test_id.split("::")[0]
    for key in (test_id.split("[")[0], path):
        if key in table:
            return table[key]
    for key, reason in table.items():
        if path.startswith(key.rstrip("/") + "/"):
            return reason
    return None


if __name__ == "__main__":  # a quick look by hand
    import tempfile

    version = installed_version("langchain-core")
    assert version, "langchain-core is not installed"
    with tempfile.TemporaryDirectory() as tmp:
        root = workdir(fetch("langchain-core", version), Path(tmp) / "core")
        print("rewritten:", rewrite(root, CORE_REWRITTEN))
        got, tail = run_pytest(venv_python(), root, list(CORE_REWRITTEN), Path(tmp) / "r.xml")
        for test_id, status in sorted(got.items()):
            print(f"{status:8} {test_id}  {not_applicable(test_id, NOT_APPLICABLE) or ''}")
