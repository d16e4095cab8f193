"""Time the lab's default ``compare`` against its pure training time, at ``--jobs 1`` and ``--jobs 2``.

Each round runs ``python -m minigrad --out TMP --jobs J`` in a fresh process
for J = 1 and J = 2 (alternating, so drift in the machine's speed touches both)
and measures its wall time. The training time is the sum over the runs in
results.csv of their last ``seconds`` (the fit loop only: forward, backward,
step; no evaluation). The lab's overhead is everything else: process start
and imports, evaluation, the journal, CSVs and plots. The report gives, per
round, the wall times, the training sum, the overhead as a fraction of the
``--jobs 1`` wall time, and the ratio of ``--jobs 2`` to ``--jobs 1``, then
their medians; ``--tune`` also times ``--lr tune --jobs 2`` once.

Run from the repository root::

    python benchmarks/lab_time.py
    python benchmarks/lab_time.py --rounds 3 --tune
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str]) -> tuple[float, float]:
    """Run ``python -m minigrad ARGS --out TMP``; return (wall seconds, summed training seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "minigrad", *args, "--out", out], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"lab_time: {shlex.join(args)} failed with status {done.returncode}: {done.stderr[-500:]}")
        last: dict[tuple[str, str, str], float] = {}
        with open(os.path.join(out, "results.csv"), newline="") as f:
            for row in csv.DictReader(f):
                last[row["dataset"], row["optimizer"], row["seed"]] = float(row["seconds"])
    return wall, sum(last.values())


def load_text() -> str:
    """The 1-, 5- and 15-minute load averages, or "n/a" where the system has none."""
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    """Parse the options, run the rounds, print a Markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --jobs 1 and --jobs 2 (default: 3)")
    parser.add_argument("--tune", action="store_true", help="also time --lr tune --jobs 2 once")
    args = parser.parse_args()
    print(f"# lab_time: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
          f"load average before: {load_text()}")
    print("command: python -m minigrad --out TMP --jobs J\n")
    print("| round | wall, --jobs 1 | training (sum) | overhead | wall, --jobs 2 | jobs 2 / jobs 1 |")
    print("|---|---|---|---|---|---|")
    walls1, walls2, overheads = [], [], []
    for i in range(args.rounds):
        wall1, train1 = run(["--jobs", "1"])
        wall2, _ = run(["--jobs", "2"])
        overhead = 1 - train1 / wall1
        walls1.append(wall1)
        walls2.append(wall2)
        overheads.append(overhead)
        print(f"| {i + 1} | {wall1:.1f} s | {train1:.1f} s | {overhead:.0%} | {wall2:.1f} s | {wall2 / wall1:.2f} |")
    ratio = statistics.median(w2 / w1 for w1, w2 in zip(walls1, walls2))
    print(f"| median | {statistics.median(walls1):.1f} s | | {statistics.median(overheads):.0%} | "
          f"{statistics.median(walls2):.1f} s | {ratio:.2f} |")
    if args.tune:
        wall, _ = run(["--lr", "tune", "--jobs", "2"])
        print(f"\n`python -m minigrad --lr tune --jobs 2`: {wall:.1f} s")
    print(f"\nload average after: {load_text()}")


if __name__ == "__main__":
    main()
