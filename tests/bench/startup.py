"""Whole-process start-up cost of `rtrace run` over plain python, on samples/noop.py.

    python tests/bench/startup.py [--runs N]

Alternates the commands N times each (so drift hits all alike), prints medians of wall
and CPU time (user + system, what start-up costs even on a busy machine) and what
`rtrace run` adds (target: <= 150 ms of CPU added). Modules' bytecode is cached as python
caches it by default (a warm-up run writes it), whatever PYTHONDONTWRITEBYTECODE says here:
without the cache every run compiles rtrace's modules again, which no installed rtrace does.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOOP = ROOT / "samples" / "noop.py"


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall(cmd: list[str], cwd: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the process and its children) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return dt, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    rtrace = shutil.which("rtrace") or str(Path(sys.executable).with_name("rtrace"))
    cwd = tempfile.mkdtemp(prefix="rtrace-startup-")
    cases = {
        "python samples/noop.py (baseline)": [sys.executable, str(NOOP)],
        "rtrace run samples/noop.py": [rtrace, "run", str(NOOP)],
        "rtrace run -q --no-langchain samples/noop.py": [rtrace, "run", "-q", "--no-langchain", str(NOOP)],
    }
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
    for cmd in cases.values():
        wall(cmd, cwd)  # warm the page cache, and write the modules' bytecode
    for _ in range(args.runs):
        for k, cmd in cases.items():
            times[k].append(wall(cmd, cwd))
    base_key = "python samples/noop.py (baseline)"
    print(f"start-up, median of {args.runs} alternating runs each (Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}); CPU: user + system time; "
          "bytecode cached\n")
    med = {k: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)) for k, ts in times.items()}
    for k in times:
        (w, c), (bw, bc) = med[k], med[base_key]
        print(f"{k:<46} wall {w * 1000:7.1f} ms (+{(w - bw) * 1000:6.1f})   CPU {c * 1000:7.1f} ms (+{(c - bc) * 1000:6.1f})")
    added = (med["rtrace run samples/noop.py"][1] - med[base_key][1]) * 1000
    print(f"\ntarget: <= 150 ms of CPU added: {added:.1f} ms ({'met' if added <= 150 else 'MISSED'})")
    shutil.rmtree(cwd, ignore_errors=True)

if __name__ == "__main__":
    main()
