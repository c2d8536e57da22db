"""Does the backend's speed leak into the traced program? `rtrace run --export-endpoint`.

    python tests/bench/export.py [--runs N]

Runs a script that makes 2,000 traced retriever calls, and reports the time the
script's own loop takes (measured inside it), medians of N runs, for: no export,
export to a fast local OTLP/HTTP receiver, and to a slow one (0.5 s a request).
The ratio slow/fast should stay near 1: the script only puts events on a queue.
"""

from __future__ import annotations

import argparse
import http.server
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import time
    from rtrace.core import Document, retriever

    @retriever
    def search(query):
        return [Document("doc " + query, id=query)]

    t0 = time.perf_counter()
    for i in range(2000):
        search(f"q{i}")
    print(time.perf_counter() - t0)
""")


def receiver(delay: float) -> tuple[str, http.server.ThreadingHTTPServer]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(delay)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1/traces", server


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    rtrace = shutil.which("rtrace") or str(Path(sys.executable).with_name("rtrace"))
    work = Path(tempfile.mkdtemp(prefix="rtrace-export-"))
    (work / "loop.py").write_text(SCRIPT)
    fast_url, fast = receiver(0.0)
    slow_url, slow = receiver(0.5)
    cases = {
        "no export (baseline)": [],
        "export, fast backend": ["--export-endpoint", fast_url],
        "export, slow backend (0.5 s a request)": ["--export-endpoint", slow_url],
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    walls: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.runs):
        for name, extra in cases.items():
            t0 = time.perf_counter()
            out = subprocess.run([rtrace, "run", "-q", "-o", str(work / "log.jsonl"), *extra, "loop.py"], cwd=work,
                                 capture_output=True, text=True, check=True)
            walls[name].append(time.perf_counter() - t0)
            times[name].append(float(out.stdout.strip()))
    base = statistics.median(times["no export (baseline)"])
    print(f"2,000 traced calls, median of {args.runs} runs\n")
    print(f"{'case':<42} {'script loop':>12} {'ratio':>7} {'whole process':>14}")
    for name in cases:
        m = statistics.median(times[name])
        print(f"{name:<42} {m * 1000:9.1f} ms {m / base:7.2f} {statistics.median(walls[name]):11.2f} s")
    fast.shutdown()
    slow.shutdown()
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
