"""Reading-side benchmarks on a generated, realistic log.

    python tests/bench/read.py [--traces 100000] [--keep]

Generates ~1 GB (100,000 traces of 3 runs with 5 documents each, ~2% errors,
~5% retries), then measures whole processes in one run:
- `rtrace filter --status error LOG` vs `jq -c 'select(.event=="retriever_error")' LOG` (target ratio <= 0.35)
- peak RSS of `rtrace show --status error LOG` and `rtrace filter --status error LOG` (target <= 250 MB)
- `rtrace show` of a 10,000-trace log into a file (target <= 5 s)
- `rtrace stats LOG` vs `rtrace filter --status error LOG` (target ratio <= 3, peak RSS <= 250 MB)
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

WORDS = ("retrieval ranking vector index query document passage embedding score rerank chunk context "
         "latency cache filter hybrid sparse dense fusion recall precision").split()


def generate(path: Path, traces: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    session = "01a20000-0000-7000-8000-000000000001"
    seq = 0
    t0 = 1_795_000_000.0

    def uid(n: int) -> str:
        return f"01a2{n:028x}"[:8] + "-" + f"{n:028x}"[4:8] + "-7" + f"{n:028x}"[9:12] + "-8" + f"{n:028x}"[13:16] + "-" + f"{n:028x}"[16:28]

    with open(path, "wb", buffering=1 << 22) as f:
        def emit(ev: dict) -> None:
            nonlocal seq
            seq += 1
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + seq * 0.001)) + f".{seq % 1000:03d}000Z"
            f.write(orjson.dumps({"v": 1, "seq": seq, "ts": ts, "session_id": session, **ev}) + b"\n")

        emit({"event": "session_start", "argv": ["bench.py"], "pid": 1, "python": "3.11.7", "rtrace_version": "0.1.0", "cwd": "/"})
        n = 0
        for _ in range(traces):
            n += 1
            root = uid(n)
            query = " ".join(rng.choices(WORDS, k=6))
            emit({"event": "retriever_start", "run_id": root, "parent_run_id": None, "trace_id": root, "name": "Hybrid",
                  "tags": ["bench"], "metadata": {"k": 5}, "query": query})
            for child in ("Dense", "Sparse"):
                n += 1
                cid = uid(n)
                base = {"run_id": cid, "parent_run_id": root, "trace_id": root, "name": child}
                emit({"event": "retriever_start", **base, "tags": [], "metadata": {}, "query": query})
                if rng.random() < 0.05:
                    emit({"event": "retry", **base, "attempt": 1, "outcome": "failed",
                          "exception": {"type": "TimeoutError", "message": "slow"}, "slept_s": 0.0, "next_sleep_s": 0.1})
                if rng.random() < 0.02:
                    emit({"event": "retriever_error", **base, "duration_ms": rng.uniform(5, 500),
                          "error": {"type": "TimeoutError", "message": "gave up", "traceback": None}})
                    continue
                docs = [{"id": f"doc-{rng.randrange(10**6)}", "page_content": " ".join(rng.choices(WORDS, k=85)),
                         "metadata": {"source": f"corpus/{rng.randrange(1000)}.md", "chunk": i}, "score": rng.random()}
                        for i in range(5)]
                emit({"event": "retriever_end", **base, "duration_ms": rng.uniform(1, 80), "documents": docs})
            docs = [{"id": f"doc-{rng.randrange(10**6)}", "page_content": " ".join(rng.choices(WORDS, k=85)),
                     "metadata": {"source": f"corpus/{rng.randrange(1000)}.md"}, "score": rng.random()} for _ in range(5)]
            emit({"event": "retriever_end", "run_id": root, "parent_run_id": None, "trace_id": root, "name": "Hybrid",
                  "duration_ms": rng.uniform(10, 200), "documents": docs})
        emit({"event": "session_end", "exit_code": 0, "error": None, "duration_ms": 1.0, "incomplete_runs": [], "lost_events": 0})


def measure(cmd: list[str], out: str = os.devnull) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of ``cmd``, via a wrapper that reports the child's rusage."""
    code = ("import resource, subprocess, sys, time; t=time.perf_counter(); "
            "rc=subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], 'wb')).returncode; "
            "dt=time.perf_counter()-t; r=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss; "
            "print(dt, r / 1024); sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, out, *cmd], capture_output=True, text=True, check=True)
    wall, rss = r.stdout.split()
    return float(wall), float(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traces", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dir", default=None, help="Where to write the logs (default: a temporary directory).")
    ap.add_argument("--keep", action="store_true", help="Keep the generated logs.")
    args = ap.parse_args()
    rtrace = shutil.which("rtrace") or str(Path(sys.executable).with_name("rtrace"))
    jq = shutil.which("jq")
    work = Path(args.dir or tempfile.mkdtemp(prefix="rtrace-read-"))
    big, small = work / "big.jsonl", work / "small.jsonl"
    t = time.perf_counter()
    if not big.exists():
        generate(big, args.traces)
    if not small.exists():
        generate(small, 10_000, seed=2)
    print(f"log: {big.stat().st_size / 1e9:.2f} GB, {args.traces} traces (generated in {time.perf_counter() - t:.0f} s); "
          f"small: {small.stat().st_size / 1e6:.0f} MB, 10000 traces\n")

    def median(cmd: list[str], out: str = os.devnull) -> tuple[float, float]:
        runs = [measure(cmd, out) for _ in range(args.repeats)]
        return statistics.median(r[0] for r in runs), max(r[1] for r in runs)

    results = {}
    results["filter"] = median([rtrace, "filter", "--status", "error", str(big)])
    if jq:
        results["jq"] = median([jq, "-c", 'select(.event=="retriever_error")', str(big)])
    results["show"] = median([rtrace, "show", "--status", "error", "--no-pager", str(big)])
    results["stats"] = median([rtrace, "stats", str(big)])
    results["show-small"] = median([rtrace, "show", "--no-pager", str(small)], str(work / "small.txt"))
    print(f"{'command':<58} {'median s':>9} {'peak RSS MB':>12}")
    labels = {
        "filter": "rtrace filter --status error LOG",
        "jq": "jq -c 'select(.event==\"retriever_error\")' LOG (baseline)",
        "show": "rtrace show --status error LOG",
        "show-small": "rtrace show SMALL > file (10,000 traces)",
        "stats": "rtrace stats LOG",
    }
    for key, (wall, rss) in results.items():
        print(f"{labels[key]:<58} {wall:9.2f} {rss:12.0f}")
    print()
    if jq:
        ratio = results["filter"][0] / results["jq"][0]
        print(f"filter / jq ratio: {ratio:.2f} (target <= 0.35: {'met' if ratio <= 0.35 else 'MISSED'})")
    stats_ratio = results["stats"][0] / results["filter"][0]
    print(f"stats / filter ratio: {stats_ratio:.2f} (target <= 3: {'met' if stats_ratio <= 3 else 'MISSED'})")
    for key in ("filter", "show", "stats"):
        rss = results[key][1]
        print(f"{labels[key]} peak RSS: {rss:.0f} MB (target <= 250: {'met' if rss <= 250 else 'MISSED'})")
    s = results["show-small"][0]
    print(f"show of 10,000 traces into a file: {s:.2f} s (target <= 5: {'met' if s <= 5 else 'MISSED'})")
    if not args.keep and not args.dir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
