"""Time backward() against graph size, to show that it grows linearly in the number of nodes.

Two graphs of N recorded nodes (ops), on a small vector (16 float32 values)
so that the per-node bookkeeping, not arithmetic, is what is measured:

- **chain**: a chain of depth N whose ops cycle through ``y = y * c``,
  ``y = y + x`` and ``y = tanh(y)`` (x a leaf used N/3 times, c a constant);
- **wide**: N/2 products ``x * c_i`` of one leaf, summed by a balanced tree
  of N/2 - 1 additions (depth log2 N, fan-out N/2 from x).

Every run builds the graph anew (not timed) and times ``backward()``. The
sizes are visited in ``--rounds`` rounds, so drift in the machine's speed
touches them all alike; small graphs run several times per round. Each size
reports the median of its runs. The report gives µs per node, a least-squares
fit time = a + b·N with its R², the log-log slope (1 for linear growth) and
the ratio of the per-node time at the largest N to that at the smallest.

Run from the repository root::

    python benchmarks/backward_scaling.py
    python benchmarks/backward_scaling.py --sizes 1000,10000,100000 --rounds 7 --plot scaling.png
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # time the working tree's minigrad

from step_time import cpu_model  # noqa: E402  (a sibling script; its folder is on sys.path)

import minigrad as mg  # noqa: E402

WIDTH = 16  # values per tensor: small, so the time is per-node overhead
DEFAULT_SIZES = "1000,3000,10000,30000,100000"


# A built graph: (output, the leaf x, the number of ops recorded).
Graph = tuple[mg.Tensor, mg.Tensor, int]


def build_chain(n: int) -> Graph:
    """A chain of exactly ``n`` ops cycling through mul by a constant, add of a leaf, tanh."""
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal(WIDTH).astype(np.float32), requires_grad=True)
    c = mg.Tensor(np.full(WIDTH, 0.9, dtype=np.float32))
    y = x
    for i in range(n):
        step = i % 3
        if step == 0:
            y = y * c
        elif step == 1:
            y = y + x
        else:
            y = y.tanh()
    return y, x, n


def build_wide(n: int) -> Graph:
    """n//2 products x * c_i of one leaf x, summed pairwise by a balanced tree: 2·(n//2) - 1 ops."""
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal(WIDTH).astype(np.float32), requires_grad=True)
    consts = rng.uniform(0.5, 1.5, size=(max(n // 2, 1), WIDTH)).astype(np.float32)
    level = [x * mg.Tensor(c) for c in consts]
    while len(level) > 1:
        paired = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0], x, 2 * len(consts) - 1


GRAPHS: dict[str, Callable[[int], Graph]] = {"chain": build_chain, "wide": build_wide}


def time_once(build: Callable[[int], Graph], n: int) -> tuple[float, float]:
    """Build a graph of size ``n`` and run backward() on it; returns (build seconds, backward seconds)."""
    t0 = time.perf_counter()
    out, leaf, _ = build(n)
    t1 = time.perf_counter()
    grad = np.ones(out.shape, dtype=out.dtype)
    gc.collect()  # start every timing from the same collector state
    t2 = time.perf_counter()
    out.backward(grad)
    t3 = time.perf_counter()
    if not np.all(np.isfinite(leaf.grad)):
        raise RuntimeError(f"backward of a graph of {n} nodes gave a non-finite gradient")
    return t1 - t0, t3 - t2


def time_sizes(build: Callable[[int], Graph], sizes: Sequence[int], rounds: int) -> list[dict[str, Any]]:
    """Time backward() for every size, in ``rounds`` rounds that each visit every size.

    Interleaving the sizes spreads any drift in the machine's speed over all
    of them. Within a round a graph of size n is run max(1, largest / (10 n))
    times, so small graphs, whose times are short and noisy, get more runs.
    """
    rows = []
    for n in sizes:
        out, _, ops = build(n)  # warm-up, and the node count
        rows.append({"n": n, "nodes": ops, "seconds": [], "build_seconds": []})
        out.backward(np.ones(out.shape, dtype=out.dtype))
        del out
    for _ in range(rounds):
        for row in rows:
            for _ in range(max(1, sizes[-1] // (10 * row["n"]))):
                build_s, backward_s = time_once(build, row["n"])
                row["build_seconds"].append(build_s)
                row["seconds"].append(backward_s)
    for row in rows:
        row["median_s"] = statistics.median(row["seconds"])
        row["build_median_s"] = statistics.median(row["build_seconds"])
    return rows


def linear_fit(n: Sequence[float], t: Sequence[float]) -> dict[str, float]:
    """Least squares t = a + b·n, its R², and the slope of log t against log n."""
    n_arr, t_arr = np.asarray(n, dtype=float), np.asarray(t, dtype=float)
    b, a = np.polyfit(n_arr, t_arr, 1)
    residual = t_arr - (a + b * n_arr)
    r2 = 1.0 - float(residual @ residual) / float(((t_arr - t_arr.mean()) ** 2).sum())
    loglog = float(np.polyfit(np.log(n_arr), np.log(t_arr), 1)[0])
    return {"intercept_s": float(a), "slope_s_per_node": float(b), "r2": r2, "loglog_slope": loglog}


def plot(results: dict[str, list[dict[str, Any]]], fits: dict[str, dict[str, float]], path: str) -> None:
    """Save backward time against N (linear axes, with each fit line) and µs per node to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_p) = plt.subplots(1, 2, figsize=(10, 4))
    for name, rows in results.items():
        nodes = np.array([r["nodes"] for r in rows], dtype=float)
        ms = np.array([r["median_s"] for r in rows]) * 1e3
        fit = fits[name]
        (line,) = ax_t.plot(nodes, ms, "o", label=f"{name} (measured)")
        grid = np.array([0.0, nodes.max()])
        ax_t.plot(
            grid,
            (fit["intercept_s"] + fit["slope_s_per_node"] * grid) * 1e3,
            "-",
            color=line.get_color(),
            label=f"{name}: fit a + b·N, b = {fit['slope_s_per_node'] * 1e6:.2f} µs, R² = {fit['r2']:.4f}",
        )
        ax_p.semilogx(nodes, ms * 1e3 / nodes, "o-", color=line.get_color(), label=name)
    ax_t.set_xlabel("nodes N")
    ax_t.set_ylabel("backward() time (ms)")
    ax_t.set_title("backward time against graph size")
    ax_t.legend(fontsize=8)
    ax_p.set_xlabel("nodes N")
    ax_p.set_ylabel("µs per node")
    ax_p.set_ylim(bottom=0)
    ax_p.set_title("time per node (flat = linear growth)")
    ax_p.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(
    results: dict[str, list[dict[str, Any]]],
    fits: dict[str, dict[str, float]],
    sizes: Sequence[int],
    rounds: int,
    command: str,
) -> str:
    """The Markdown report: one row per graph and size, then one fit per graph."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    lines = [
        "### minigrad backward() time against graph size",
        "",
        f"Machine: {platform.platform()}, {cpu_model()} ({os.cpu_count()} logical CPUs), load average {load}; "
        f"Python {platform.python_version()}, numpy {np.__version__}, minigrad {mg.__version__}. "
        f"Tensors of {WIDTH} float32 values; median of all runs of {rounds} rounds over the sizes.",
        "",
        f"Command: `{command}`",
        "",
        "| graph | N (ops) | runs | backward ms | µs / node | forward build ms (not timed) |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        for r in rows:
            lines.append(
                f"| {name} | {r['nodes']:,} | {len(r['seconds'])} | {r['median_s'] * 1e3:.2f} | "
                f"{r['median_s'] * 1e6 / r['nodes']:.2f} | {r['build_median_s'] * 1e3:.1f} |"
            )
    lines += [
        "",
        "| graph | fit: µs / node (slope b) | intercept a (ms) | R² | log-log slope | "
        f"µs/node at {sizes[-1]:,} ÷ at {sizes[0]:,} |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in fits.items():
        lines.append(
            f"| {name} | {f['slope_s_per_node'] * 1e6:.2f} | {f['intercept_s'] * 1e3:.3f} | {f['r2']:.5f} | "
            f"{f['loglog_slope']:.3f} | {f['per_node_ratio_last_first']:.2f} |"
        )
    lines += ["", "Linear growth: R² near 1, log-log slope near 1, per-node ratio near 1."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print a Markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default=DEFAULT_SIZES, help=f"graph sizes N, comma separated (default {DEFAULT_SIZES})"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=7,
        help="rounds over all sizes (default 7); small graphs run several times per round",
    )
    parser.add_argument("--graphs", default="chain,wide", help="which graphs: chain, wide (default both)")
    parser.add_argument("--plot", metavar="PATH", help="save a PNG of time and time per node against N")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",")})
    except ValueError:
        parser.error(f"--sizes: expected integers separated by commas, got {args.sizes!r}")
    if len(sizes) < 2 or sizes[0] < 2:
        parser.error("--sizes: give at least two sizes, each at least 2")
    graphs = [g.strip() for g in args.graphs.split(",")]
    unknown = [g for g in graphs if g not in GRAPHS]
    if unknown:
        parser.error(f"--graphs: unknown {unknown}; choose from {sorted(GRAPHS)}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    command = shlex.join(["python", *sys.argv]) if argv is None else shlex.join(["python", sys.argv[0], *argv])
    results: dict[str, list[dict[str, Any]]] = {}
    fits: dict[str, dict[str, float]] = {}
    for name in graphs:
        results[name] = time_sizes(GRAPHS[name], sizes, args.rounds)
        rows = results[name]
        fits[name] = linear_fit([r["nodes"] for r in rows], [r["median_s"] for r in rows])
        first, last = rows[0], rows[-1]
        fits[name]["per_node_ratio_last_first"] = (last["median_s"] / last["nodes"]) / (
            first["median_s"] / first["nodes"]
        )

    print(report(results, fits, sizes, args.rounds, command))
    if args.plot:
        plot(results, fits, args.plot)
        print(f"\nWrote {args.plot}")
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command, "results": results, "fits": fits}, indent=2) + "\n")
        print(f"Wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
