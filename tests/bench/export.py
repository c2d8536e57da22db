"""Does the backend's speed leak into the traced program? `rtrace run --export-endpoint`.

    python tests/bench/export.py [--runs N]

Runs a script that makes 2,000 traced retriever calls, and reports the time the
script's own loop takes (measured inside it: CPU time, what the script's process pays,
and wall time, which also feels the exporter process competing for the CPUs), medians
of N interleaved runs and medians of the per-run ratios to the run without export, for:
no export, export to a fast local OTLP/HTTP receiver, and to a slow one (0.5 s a
request), and the whole process's wall time (which waits for the exporter to finish).
The slow backend's ratios should stay near the fast one's: a separate exporter process
follows the log, so the backend's speed never reaches the script.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
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
    import json, time
    from rtrace.core import Document, retriever

    @retriever
    def search(query):
        return [Document("doc " + query, id=query)]

    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(2000):
        search(f"q{i}")
    print(json.dumps({"cpu": time.process_time() - c0, "wall": time.perf_counter() - w0}))
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
    loops: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}  # the script's loop: CPU s, wall s
    walls: dict[str, list[float]] = {k: [] for k in cases}  # the whole process
    for _ in range(args.runs):  # interleaved: drift in the machine's load hits every case alike
        for name, extra in cases.items():
            t0 = time.perf_counter()
            out = subprocess.run([rtrace, "run", "-q", "-o", str(work / "log.jsonl"), *extra, "loop.py"], cwd=work,
                                 capture_output=True, text=True, check=True)
            walls[name].append(time.perf_counter() - t0)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            loops[name].append((got["cpu"], got["wall"]))
    base = loops["no export (baseline)"]
    print(f"2,000 traced calls, {args.runs} interleaved runs; medians; ratios: medians of per-run ratios to the baseline; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    print(f"{'case':<40} {'loop CPU':>9} {'ratio':>6} {'loop wall':>10} {'ratio':>6} {'whole process':>14}")
    for name in cases:
        got = loops[name]
        cpu, wall = statistics.median(c for c, _ in got), statistics.median(w for _, w in got)
        cpu_ratio = statistics.median(c / b for (c, _), (b, _) in zip(got, base))
        wall_ratio = statistics.median(w / b for (_, w), (_, b) in zip(got, base))
        print(f"{name:<40} {cpu * 1000:6.1f} ms {cpu_ratio:6.2f} {wall * 1000:7.1f} ms {wall_ratio:6.2f} "
              f"{statistics.median(walls[name]):12.2f} s")
    fast.shutdown()
    slow.shutdown()
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
