"""`rtrace eval` against `rtrace filter` on the reading benchmark's log.

    python tests/bench/eval.py [--traces 100000] [--labelled 1000] [--repeats 3] [--dir DIR] [--keep]

Generates the log of tests/bench/read.py (100,000 traces of 3 runs with 5 documents
each: ~1.3 GB), writes TREC qrels and a queries TSV for ``--labelled`` of its queries
(evenly spread through the log; each with graded judgements of documents the log
returned and one it did not), then times, interleaved, in fresh processes:

- `rtrace filter --status error LOG` (the baseline)
- `rtrace eval LOG --qrels Q --queries T` (target: at most 2x the baseline)
- the same with every query of the log labelled (the worst case: documents parsed for every run),
  as a table and as JSON (which holds every grade's output in memory)

and prints medians of wall and CPU time, CPU-time ratios to filter and peak RSS.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))
from read import generate, measure  # noqa: E402  (the reading benchmark's log and measuring wrapper)


def write_labels(log: Path, qrels: Path, queries: Path, labelled: int | None, traces: int) -> int:
    """Qrels for every ``step``-th root query of ``log`` (all when ``labelled`` is None)."""
    step = 1 if labelled is None else max(1, traces // labelled)
    roots: dict[str, str] = {}  # run id -> query, for the roots chosen
    texts: dict[str, str] = {}
    chosen: set[str] = set()
    n = 0
    with open(log, "rb") as f, open(qrels, "w") as q:
        for line in f:
            if b'"parent_run_id":null' not in line:
                continue
            ev = orjson.loads(line)
            if ev["event"] == "retriever_start":
                n += 1
                if (n - 1) % step == 0 and ev["query"] not in chosen:
                    chosen.add(ev["query"])
                    roots[ev["run_id"]] = ev["query"]
            elif ev["event"] == "retriever_end" and ev["run_id"] in roots:
                qid = f"q{len(texts) + 1}"
                texts[qid] = roots.pop(ev["run_id"])
                ids = [d["id"] for d in ev["documents"]]
                for doc, rel in zip(ids[::2], (2, 1, 0)):
                    q.write(f"{qid} 0 {doc} {rel}\n")
                q.write(f"{qid} 0 unretrieved-{qid} 1\n")
    queries.write_text("".join(f"{qid}\t{text}\n" for qid, text in texts.items()))
    return len(texts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traces", type=int, default=100_000)
    ap.add_argument("--labelled", type=int, default=1000, help="Labelled queries in the first eval.")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dir", default=None, help="Where to write the log (default: a temporary directory).")
    ap.add_argument("--keep", action="store_true", help="Keep the generated files.")
    args = ap.parse_args()
    rtrace = shutil.which("rtrace") or str(Path(sys.executable).with_name("rtrace"))
    work = Path(args.dir or tempfile.mkdtemp(prefix="rtrace-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / f"bench-{args.traces}.jsonl"
    t = time.perf_counter()
    if not log.exists():
        generate(log, args.traces)
    some = write_labels(log, work / "qrels.txt", work / "queries.tsv", args.labelled, args.traces)
    every = write_labels(log, work / "qrels-all.txt", work / "queries-all.tsv", None, args.traces)
    print(f"log: {log.stat().st_size / 1e9:.2f} GB, {args.traces} traces; labels: {some} queries, and all {every} "
          f"(prepared in {time.perf_counter() - t:.0f} s)\n")
    commands = {
        "filter": [rtrace, "filter", "--status", "error", str(log)],
        "eval": [rtrace, "eval", str(log), "--qrels", str(work / "qrels.txt"), "--queries", str(work / "queries.tsv")],
        "eval-all": [rtrace, "eval", str(log), "--qrels", str(work / "qrels-all.txt"),
                     "--queries", str(work / "queries-all.tsv")],
        "eval-all-json": [rtrace, "eval", str(log), "--qrels", str(work / "qrels-all.txt"),
                          "--queries", str(work / "queries-all.tsv"), "--format", "json"],
    }
    runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in commands}  # wall, CPU, peak RSS
    for _ in range(args.repeats):  # interleaved: drift in the machine's load hits every command alike
        for key, cmd in commands.items():
            runs[key].append(measure(cmd))
    labels = {
        "filter": "rtrace filter --status error LOG (baseline)",
        "eval": f"rtrace eval LOG ({some} labelled queries)",
        "eval-all": f"rtrace eval LOG (all {every} queries labelled)",
        "eval-all-json": "  the same, --format json (every grade written)",
    }
    print(f"{'command':<56} {'wall s':>7} {'CPU s':>7} {'peak RSS MB':>12}")
    for key, values in runs.items():
        print(f"{labels[key]:<56} {statistics.median(v[0] for v in values):7.2f} "
              f"{statistics.median(v[1] for v in values):7.2f} {max(v[2] for v in values):12.0f}")
    print()

    def ratio(key: str) -> float:
        """Median of the per-repeat CPU-time ratios to filter (load that hits a whole repeat cancels out)."""
        return statistics.median(a[1] / b[1] for a, b in zip(runs[key], runs["filter"]))

    r = ratio("eval")
    print(f"eval / filter, CPU time: {r:.2f} (target <= 2: {'met' if r <= 2 else 'MISSED'})")
    print(f"eval with every query labelled / filter, CPU time: {ratio('eval-all'):.2f}; "
          f"--format json: {ratio('eval-all-json'):.2f}")
    if not args.keep and not args.dir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
