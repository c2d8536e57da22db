"""`rtrace report`: the HTML page, checked as a browser sees it (headless Chromium) and as text."""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from synth import LogBuilder, doc

RTRACE = [sys.executable, "-m", "rtrace.cli"]
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_", "RTRACE_"))}, "COLUMNS": "120"}
CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (apt-get install chromium)")
ATTACK = '<script>alert(1)</script><img src=x onerror=alert(2)>'


def rtrace(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RTRACE, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=ENV)


def browser(args: list[str], profile: Path, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Headless Chromium, in its own process group so nothing outlives the test."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={profile}", "--hide-scrollbars", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # helpers (zygote, gpu) that stayed behind
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


class Dom(HTMLParser):
    """Elements (tag, attrs) and text of a page, as parsed."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    def tags(self, name: str, cls: str | None = None) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements if t == name and (cls is None or cls in (a.get("class") or "").split())]

    @property
    def text(self) -> str:
        return "".join(self.texts)


def hostile_log(path: Path) -> Path:
    """Markup and control characters in every place a log can carry text."""
    b = LogBuilder().session_start(["app.py", ATTACK])
    b.start(1, f"Dense{ATTACK}", ATTACK, tags=[ATTACK], metadata={ATTACK: ATTACK, "qid": "q1"})
    b.text(1, f"Dense{ATTACK}", f"expanded {ATTACK}\x1b[31m")
    b.end(1, f"Dense{ATTACK}", [doc(ATTACK, f"</td></tr></table><h1>pwned</h1>{ATTACK}", 0.5, source=ATTACK),
                                 doc("ok-1", "fine", 0.4)], 12.0)
    b.start(2, "Flaky", "vector databases", request={"k": 3, "search_type": "mmr", "vector_store": f"Chroma{ATTACK}"})
    b.retry(2, "Flaky", 1)
    b.ev("retriever_error", run_id="0190bbbb-0000-7000-8000-000000000002", parent_run_id=None,
         trace_id="0190bbbb-0000-7000-8000-000000000002", name="Flaky", duration_ms=40.0,
         error={"type": f"Boom{ATTACK}", "message": ATTACK, "traceback": f"Traceback:\n  {ATTACK}\nBoom: </pre><h1>x</h1>\n"})
    for i in range(3, 33):  # 30 ordinary traces, 3..32 ms
        b.start(i, "Sparse", f"query {i}").end(i, "Sparse", [doc(f"s{i}", "text")], float(i))
    return b.session_end().write(path)


def labels(path: Path, never_asked: bool = False) -> None:
    rows = [{"query": ATTACK, "doc_id": ATTACK, "relevance": 2}, {"query": ATTACK, "doc_id": "ok-1", "relevance": 0}]
    rows += [{"query": "never asked", "doc_id": "nothing", "relevance": 1}] if never_asked else []
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    hostile_log(tmp_path / "h.jsonl")
    labels(tmp_path / "labels.jsonl", never_asked=True)
    r = rtrace("report", "h.jsonl", "--qrels", "labels.jsonl", "--max-traces", "5", "-o", "report.html", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("rtrace: report written to report.html (")
    return tmp_path / "report.html"


def assert_inert(dom: Dom) -> None:
    """No element or attribute came from the log."""
    assert dom.tags("script") == [] and dom.tags("img") == [] and dom.tags("svg") == []
    assert len(dom.tags("h1")) == 1  # the page's own title only
    for _, attrs in dom.elements:
        assert not any(k.startswith("on") for k in attrs), attrs
    assert ATTACK in dom.text  # shown as text, whole
    assert "\x1b" not in dom.text


def test_page_is_self_contained_and_inert_as_text(hostile: Path) -> None:
    page = hostile.read_text()
    dom = Dom(page)
    assert_inert(dom)
    csp = [a for a in dom.tags("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in (csp[0]["content"] or "")
    for _, attrs in dom.elements:  # nothing to fetch: no external src or stylesheet link
        assert "src" not in attrs
    assert dom.tags("link") == []
    hrefs = [a["href"] for a in dom.tags("a")]
    assert hrefs and all((h or "").startswith("#") for h in hrefs)


def test_page_content(hostile: Path) -> None:
    dom = Dom(hostile.read_text())
    traces = dom.tags("details", "trace")
    assert len(traces) == 5
    assert "showing 5 of 32 traces (capped at 5, --max-traces): failed first, then the slowest" in dom.text
    # The failed trace first (and open), then the slowest: Sparse 32, 31, 30 ms and Dense 12 ms is not among them.
    summaries = [s for s in dom.text.split("\n") if "ms ·" in s and "run" in s]
    assert summaries[0].startswith("error Flaky “vector databases” · 40.0 ms")
    assert "error Flaky" in dom.text and "Sparse “query 32” · 32.0 ms" in dom.text
    assert "open" in traces[0] and all("open" not in t for t in traces[1:])
    assert "retry · attempt 1 failed ConnectionError: refused · waited 0 s · next wait 0.1 s" in dom.text
    assert "Boom: </pre><h1>x</h1>" in dom.text  # the traceback, as text
    assert "Flaky “vector databases” · 40.0 ms k=3 search_type=mmr vector_store=Chroma" in dom.text  # what it asked
    assert len(dom.tags("span", "wf")) >= 5  # a waterfall bar per run shown
    assert len(dom.tags("div", "hist")) == 3  # a latency histogram per retriever
    assert "Evaluation" in dom.text and "no run for 1 labelled queries: never asked" in dom.text


def test_relevance_marks_and_whole_log_when_small(tmp_path: Path) -> None:
    hostile_log(tmp_path / "h.jsonl")
    labels(tmp_path / "labels.jsonl")
    r = rtrace("report", "h.jsonl", "--qrels", "labels.jsonl", "-o", "-", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    dom = Dom(r.stdout)
    assert "all 32 traces: failed first, then the slowest" in dom.text
    marks = [a for a in dom.tags("span") if "rel" in (a.get("class") or "").split()]
    assert [m["class"] for m in marks] == ["rel pos", "rel r0"]
    assert "✓ 2" in dom.text and "✗ 0" in dom.text


def test_two_logs_diff_and_grades(tmp_path: Path) -> None:
    for name, order in (("a", ["rel", "x"]), ("b", ["x", "rel"])):
        b = LogBuilder().session_start()
        b.start(1, "Dense", "q one").end(1, "Dense", [doc(d, d) for d in order], 1.0)
        b.session_end().write(tmp_path / f"{name}.jsonl")
    (tmp_path / "labels.jsonl").write_text('{"query": "q one", "doc_id": "rel", "relevance": 1}\n')
    r = rtrace("report", "a.jsonl", "b.jsonl", "--qrels", "labels.jsonl", "-k", "1", "-o", "r.html", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    dom = Dom((tmp_path / "r.html").read_text())
    ids = [a.get("id") for _, a in dom.elements if a.get("id")]
    assert {"log-1", "log-2", "diff", "comparison"} <= set(ids)
    assert "Diff per query, A → B (top 5)" in dom.text and "x 2→1" in dom.text and "rel 1→2" in dom.text
    assert "Grades, A → B" in dom.text and "-1.0000" in dom.text  # ndcg@1 from 1 to 0


def test_bad_input(tmp_path: Path) -> None:
    r = rtrace("report", "missing.jsonl", "-o", "r.html", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (1, "rtrace: error: missing.jsonl: no such file\n")
    hostile_log(tmp_path / "h.jsonl")
    r = rtrace("report", "h.jsonl", "-o", str(tmp_path / "no" / "dir" / "r.html"), cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("rtrace: error: ") and r.stderr.count("\n") == 1
    r = rtrace("report", "h.jsonl", "--queries", "q.tsv", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (2, "rtrace: error: --queries goes with --qrels\n")


# --- in a real browser ---------------------------------------------------------------------------------

@needs_browser
def test_browser_dom_is_inert(hostile: Path, tmp_path: Path) -> None:
    r = browser(["--dump-dom", hostile.as_uri()], tmp_path / "profile")
    assert r.returncode == 0, r.stderr[-2000:]
    dom = Dom(r.stdout.decode())
    assert_inert(dom)  # the DOM the browser built: no element from the log
    assert len(dom.tags("details", "trace")) == 5
    assert len(dom.tags("table", "docs")) >= 1


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB(A) rows of an 8-bit PNG (stdlib only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, bpp, rows


@needs_browser
def test_browser_renders_the_page(hostile: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    r = browser([f"--screenshot={shot}", "--window-size=1200,2400", hostile.as_uri()], tmp_path / "profile")
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    width, bpp, rows = png_pixels(shot.read_bytes())
    assert (width, len(rows)) == (1200, 2400)
    pixels = [row[x:x + 3] for row in rows for x in range(0, len(row), bpp)]
    ink = sum(1 for p in pixels if min(p) < 200)
    red = sum(1 for p in pixels if p[0] > 180 and p[1] < 80 and p[2] < 80)  # the "error" badges: the CSS applied
    assert ink > 0.01 * len(pixels), "the page looks blank"
    assert red > 50, "no error badge drawn"


def test_histogram_bins_cover_the_durations() -> None:
    from rtrace.cli.render.html import histogram_bins
    from rtrace.core.read.stats import RELATIVE_ERROR, Histogram

    h = Histogram()
    h.add(12.0)
    (lo, hi, n), = histogram_bins(h)
    assert n == 1 and lo == hi == pytest.approx(12.0, rel=2 * RELATIVE_ERROR)
    for ms_ in (0.0, 1.0, 10.0, 100.0, 1000.0):
        h.add(ms_)
    bins = histogram_bins(h, bins=4)
    assert [c for _, _, c in bins] == [2, 2, 1, 1]  # log-spaced: 0 and 1; 10 and 12; 100; 1000
    assert bins[0][0] == pytest.approx(1.0, rel=2 * RELATIVE_ERROR) and bins[-1][1] == pytest.approx(1000.0, rel=2 * RELATIVE_ERROR)
