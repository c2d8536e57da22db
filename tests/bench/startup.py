"""Whole-process start-up cost of `rtrace run` over plain python, on samples/noop.py.

    python tests/bench/startup.py [--runs N]

Alternates the two commands N times each (so drift hits both), prints medians,
the difference (target: <= 150 ms added) and the ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOOP = ROOT / "samples" / "noop.py"


def wall(cmd: list[str], cwd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


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
    times: dict[str, list[float]] = {k: [] for k in cases}
    for cmd in cases.values():
        wall(cmd, cwd)  # warm the page cache
    for _ in range(args.runs):
        for k, cmd in cases.items():
            times[k].append(wall(cmd, cwd))
    base = statistics.median(times["python samples/noop.py (baseline)"])
    print(f"start-up, median of {args.runs} runs each (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)\n")
    for k, ts in times.items():
        m = statistics.median(ts)
        print(f"{k:<46} {m * 1000:7.1f} ms   +{(m - base) * 1000:6.1f} ms   ratio {m / base:5.2f}")
    added = (statistics.median(times["rtrace run samples/noop.py"]) - base) * 1000
    print(f"\ntarget: <= 150 ms added: {added:.1f} ms ({'met' if added <= 150 else 'MISSED'})")


if __name__ == "__main__":
    main()
