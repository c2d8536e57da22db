"""Reading-side benchmarks on a generated, realistic log.

    python tests/bench/read.py [--traces 100000] [--rounds 3] [--dir DIR] [--keep] [--base RTRACE]

Generates ~1.3 GB (written as rtrace writes logs: 100,000 traces of 3 runs with 5 documents each, ~2% of the
child runs failing, ~5% retried), then measures whole processes in one run:
- `rtrace filter --status error LOG` vs `jq -c 'select(.event=="retriever_error")' LOG` (target CPU-time ratio <= 0.20)
- `rtrace stats LOG` vs `rtrace filter --status error LOG` (target CPU-time ratio <= 1.5), and
  `rtrace stats --name Dense LOG` (filtered stats: a third of the runs counted) next to it, and
  `rtrace stats` of the same log as an older rtrace wrote it, without `document_count` (OLDER:
  its documents are parsed to count them)
- peak RSS of `rtrace show --format table LOG` into a file (target <= 100 MB), and of
  `show --status error`, `filter`, `stats`, `stats --name Dense` (target <= 250 MB)
- `rtrace show` of a 10,000-trace log into a file (target <= 5 s)

Each command runs once on a few lines first, so that its modules' bytecode is cached, as python
caches it by default (this machine sets PYTHONDONTWRITEBYTECODE; the bench lifts it for the commands).
The commands run interleaved, round by round in a shuffled order; each figure is the
median over the rounds; ratios are medians of per-round CPU-time ratios (CPU time is
what a command costs, even on a machine busy with other work). ``--base RTRACE``: the stats
cases also run with another build of rtrace (e.g. one installed from an older commit), in the
same rounds, and their CPU-time ratios to it are printed (before/after figures).
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


def generate(path: Path, traces: int, seed: int = 1, counted: bool = True) -> None:
    """``counted``: each ``retriever_end`` has ``document_count`` just before its documents, as rtrace
    writes them; without it, the log is an older rtrace's."""
    rng = random.Random(seed)
    session = "01a20000-0000-7000-8000-000000000001"
    seq = 0
    t0 = 1_795_000_000.0

    def uid(n: int) -> str:
        return f"01a2{n:028x}"[:8] + "-" + f"{n:028x}"[4:8] + "-7" + f"{n:028x}"[9:12] + "-8" + f"{n:028x}"[13:16] + "-" + f"{n:028x}"[16:28]

    def count(docs: list) -> dict:
        return {"document_count": len(docs)} if counted else {}

    with open(path, "wb", buffering=1 << 22) as f:
        def emit(ev: dict) -> None:
            nonlocal seq
            seq += 1
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + seq * 0.001)) + f".{seq % 1000:03d}000Z"
            # Keys in the order rtrace writes them: v, seq, ts, event, session_id, then the event's own.
            f.write(orjson.dumps({"v": 1, "seq": seq, "ts": ts, "event": ev["event"], "session_id": session, **ev}) + b"\n")

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
                emit({"event": "retriever_end", **base, "duration_ms": rng.uniform(1, 80), **count(docs), "documents": docs})
            docs = [{"id": f"doc-{rng.randrange(10**6)}", "page_content": " ".join(rng.choices(WORDS, k=85)),
                     "metadata": {"source": f"corpus/{rng.randrange(1000)}.md"}, "score": rng.random()} for _ in range(5)]
            emit({"event": "retriever_end", "run_id": root, "parent_run_id": None, "trace_id": root, "name": "Hybrid",
                  "duration_ms": rng.uniform(10, 200), **count(docs), "documents": docs})
        emit({"event": "session_end", "exit_code": 0, "error": None, "duration_ms": 1.0, "incomplete_runs": [], "lost_events": 0})


def reusable(path: Path, counted: bool) -> bool:
    """A log kept from an earlier run (``--keep``) of the same shape: it counts its documents or not."""
    if not path.exists():
        return False
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    # Logs generated before the keys were in rtrace's order (session_id before event) are made anew.
    return (b'"document_count":' in head) == counted and head.startswith(b'{"v":1,"seq":1,"ts":') and \
        b'"event":"session_start","session_id":' in head


# Modules' bytecode is cached, as python caches it by default: this machine's PYTHONDONTWRITEBYTECODE
# would have every command compile rtrace's modules again (~45 ms), which no installed rtrace does.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(cmd: list[str], out: str = os.devnull) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MB) of one run of ``cmd``.

    A wrapper process runs ``cmd`` and reports its child's rusage, so the figures are the
    command's alone.
    """
    code = ("import resource, subprocess, sys, time; t=time.perf_counter(); "
            "rc=subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], 'wb')).returncode; "
            "dt=time.perf_counter()-t; r=resource.getrusage(resource.RUSAGE_CHILDREN); "
            "print(dt, r.ru_utime + r.ru_stime, r.ru_maxrss / 1024); sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, out, *cmd], capture_output=True, text=True, check=True, env=ENV)
    wall, cpu, rss = r.stdout.split()
    return float(wall), float(cpu), float(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traces", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=None, help="Where to write the logs (default: a temporary directory).")
    ap.add_argument("--keep", action="store_true", help="Keep the generated logs.")
    ap.add_argument("--skip", nargs="*", default=[], choices=["show", "stats", "stats-name", "stats-older", "table", "show-small"],
                    help="Cases to leave out (filter and jq always run).")
    ap.add_argument("--base", default=None, metavar="RTRACE",
                    help="Another rtrace executable to run the stats cases with too (a baseline).")
    args = ap.parse_args()
    rtrace = shutil.which("rtrace") or str(Path(sys.executable).with_name("rtrace"))
    jq = shutil.which("jq")
    work = Path(args.dir or tempfile.mkdtemp(prefix="rtrace-read-"))
    big, small, older = work / "big.jsonl", work / "small.jsonl", work / "older.jsonl"
    t = time.perf_counter()
    if not reusable(big, True):
        generate(big, args.traces)
    if not reusable(small, True) and "show-small" not in args.skip:
        generate(small, 10_000, seed=2)
    if not reusable(older, False) and "stats-older" not in args.skip:
        generate(older, args.traces, counted=False)
    print(f"log: {big.stat().st_size / 1e9:.2f} GB, {args.traces} traces (generated in {time.perf_counter() - t:.0f} s); "
          + (f"small: {small.stat().st_size / 1e6:.0f} MB, 10000 traces; " if small.exists() else "")
          + ("older: the same log without document_count; " if older.exists() else "")
          + f"{args.rounds} interleaved rounds; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")

    cases: dict[str, tuple[str, list[str], str]] = {
        "filter": ("rtrace filter --status error LOG", [rtrace, "filter", "--status", "error", str(big)], os.devnull),
        "show": ("rtrace show --status error LOG", [rtrace, "show", "--status", "error", "--no-pager", str(big)], os.devnull),
        "stats": ("rtrace stats LOG", [rtrace, "stats", str(big)], os.devnull),
        "stats-name": ("rtrace stats --name Dense LOG", [rtrace, "stats", "--name", "Dense", str(big)], os.devnull),
        "stats-older": ("rtrace stats OLDER (no document_count)", [rtrace, "stats", str(older)], os.devnull),
        "table": ("rtrace show --format table LOG > file", [rtrace, "show", "--format", "table", "--no-pager", str(big)],
                  str(work / "table.txt")),
        "show-small": ("rtrace show SMALL > file (10,000 traces)", [rtrace, "show", "--no-pager", str(small)],
                       str(work / "small.txt")),
    }
    if args.base:
        for key in ("stats", "stats-name"):
            label, cmd, out = cases[key]
            cases[f"{key}@base"] = (f"{label} (--base)", [args.base, *cmd[1:]], out)
    if jq:
        cases["jq"] = ("jq -c 'select(.event==\"retriever_error\")' LOG", [jq, "-c", 'select(.event=="retriever_error")', str(big)],
                       os.devnull)
    for key in args.skip:
        del cases[key]
        cases.pop(f"{key}@base", None)
    # Each command once on a few lines first: its modules' bytecode is written before any is timed.
    tiny = work / "tiny.jsonl"
    with open(big, "rb") as f:
        tiny.write_bytes(b"".join(line for _, line in zip(range(200), f)))
    for _, cmd, _ in cases.values():
        subprocess.run([str(tiny) if c in (str(big), str(small), str(older)) else c for c in cmd],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    tiny.unlink()
    runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in cases}
    rng = random.Random(14)
    for round_ in range(args.rounds):
        order = list(cases)
        rng.shuffle(order)
        for key in order:
            _, cmd, out = cases[key]
            runs[key].append(measure(cmd, out))
        print(f"\rround {round_ + 1}/{args.rounds}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    def med(key: str, i: int) -> float:
        return statistics.median(r[i] for r in runs[key])

    def ratio(key: str, base: str) -> float:
        """Median of the per-round CPU-time ratios (load that hits a whole round cancels out)."""
        return statistics.median(a[1] / b[1] for a, b in zip(runs[key], runs[base]))

    print(f"{'command':<50} {'wall s':>7} {'CPU s':>7} {'peak RSS MB':>12}")
    for key, (label, _, _) in cases.items():
        print(f"{label:<50} {med(key, 0):7.2f} {med(key, 1):7.2f} {max(r[2] for r in runs[key]):12.0f}")
    print()

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    if jq:
        r = ratio("filter", "jq")
        print(f"filter / jq, CPU time: {r:.2f} (target <= 0.20: {verdict(r <= 0.20)}); "
              f"wall: {med('filter', 0) / med('jq', 0):.2f}")
    if "stats" in cases:
        r = ratio("stats", "filter")
        print(f"stats / filter, CPU time: {r:.2f} (target <= 1.5: {verdict(r <= 1.5)}); "
              f"wall: {med('stats', 0) / med('filter', 0):.2f}")
    if "stats-name" in cases:
        r = ratio("stats-name", "filter")
        print(f"stats --name Dense / filter, CPU time: {r:.2f}; wall: {med('stats-name', 0) / med('filter', 0):.2f}"
              + (f"; / stats: {ratio('stats-name', 'stats'):.2f}" if "stats" in cases else ""))
    if "stats-older" in cases:
        r = ratio("stats-older", "filter")
        print(f"stats of an older log (documents parsed to count them) / filter, CPU time: {r:.2f}"
              + (f"; / stats: {ratio('stats-older', 'stats'):.2f}" if "stats" in cases else ""))
    for key in ("stats", "stats-name"):
        if f"{key}@base" in cases:
            print(f"{cases[key][0]} / the same with --base, CPU time: {ratio(key, key + '@base'):.2f}")
    if "table" in cases:
        rss = max(r[2] for r in runs["table"])
        print(f"show --format table peak RSS: {rss:.0f} MB (target <= 100: {verdict(rss <= 100)})")
    for key in ("filter", "show", "stats", "stats-name", "stats-older"):
        if key in cases:
            rss = max(r[2] for r in runs[key])
            print(f"{cases[key][0]} peak RSS: {rss:.0f} MB (target <= 250: {verdict(rss <= 250)})")
    if "show-small" in cases:
        s = med("show-small", 0)
        print(f"show of 10,000 traces into a file: {s:.2f} s wall (target <= 5: {verdict(s <= 5)})")
    if not args.keep and not args.dir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
