"""What detect_anomaly costs when it is off: a training step timed with and without its tests.

``mg.detect_anomaly()`` promises to cost nothing when it is off: what is left
of it in the engine is a flag test in ``Function.apply`` (two per op) and in
``run_backward`` (one per gradient). To measure exactly that, this script
recompiles those two functions from the engine's own source with every
anomaly test replaced by ``if False:``, which Python's compiler removes
together with the block under it, and swaps them in for the "no checks"
rounds. Three variants of the same training step are timed in one process:

- **no checks**: the engine with the anomaly tests compiled out;
- **off**: the engine as shipped, outside ``detect_anomaly`` (the default);
- **on**: the same step inside ``detect_anomaly()``, for information (every
  op's output and every gradient is checked for NaN and infinity, and each op
  records the line of user code that created it).

The step: an MLP 64-64-10 (ReLU) on a fixed random batch of 32 float32 rows,
cross-entropy, SGD with momentum 0.9 (zero_grad, forward, backward, step).
Each round times ``--steps`` steps of every variant, in an order that rotates
from round to round, after one warm-up unit each; each variant has its own
model and optimizer from the same seed. The report gives the median µs per
step and the median over rounds of the per-round ratios off / no checks and
on / off, with their smallest and largest values.

Run from the repository root::

    python benchmarks/anomaly_overhead.py
    python benchmarks/anomaly_overhead.py --rounds 41 --steps 200 --json anomaly.json
"""

from __future__ import annotations

import argparse
import dis
import inspect
import json
import os
import platform
import shlex
import statistics
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # time the working tree's minigrad

import minigrad as mg  # noqa: E402
from minigrad import engine  # noqa: E402

VARIANTS = ("no checks", "off", "on")


def _recompiled(fn: Callable[..., Any], replacements: dict[str, tuple[str, int]]) -> Callable[..., Any]:
    """``fn`` compiled again from its source after text replacements (old -> (new, expected count))."""
    source = textwrap.dedent(inspect.getsource(fn))
    source = "\n".join(line for line in source.splitlines() if line.strip() != "@classmethod")
    for old, (new, count) in replacements.items():
        found = source.count(old)
        if found != count:
            raise RuntimeError(
                f"anomaly_overhead: expected {count} {old!r} in {fn.__qualname__}, found {found}; "
                "the engine changed, so update this script"
            )
        source = source.replace(old, new)
    namespace: dict[str, Any] = {}
    source = "from __future__ import annotations\n" + source  # annotations stay strings, as in the engine
    code = compile(source, f"<{fn.__qualname__} without anomaly tests>", "exec")
    exec(code, engine.__dict__, namespace)  # the engine's globals: the copy runs as the original does
    stripped = namespace[fn.__name__]
    loaded = {i.argval for i in dis.get_instructions(stripped) if i.opname == "LOAD_GLOBAL"}
    if loaded & {"_anomaly", "_check_finite", "_user_frame"}:
        raise RuntimeError(f"anomaly_overhead: the anomaly tests of {fn.__qualname__} were not compiled out")
    return stripped


# ``if False:`` blocks are dropped by the compiler, so the stripped copies do no anomaly work at all.
SHIPPED = (engine.Function.__dict__["apply"], engine.run_backward)  # the classmethod itself, not bound
STRIPPED = (
    classmethod(_recompiled(engine.Function.apply.__func__, {"if _anomaly:": ("if False:", 2)})),
    _recompiled(engine.run_backward, {"anomaly = _anomaly": ("anomaly = False", 1), "if anomaly:": ("if False:", 1)}),
)


def use_engine(variant: str) -> None:
    """Install the shipped or the stripped apply and run_backward."""
    apply, run_backward = STRIPPED if variant == "no checks" else SHIPPED
    engine.Function.apply = apply  # type: ignore[method-assign]
    engine.run_backward = run_backward


class Step:
    """One variant's model, optimizer and batch; ``run(n)`` takes n training steps."""

    def __init__(self, variant: str) -> None:
        self.variant = variant
        mg.manual_seed(0)
        self.model = mg.nn.MLP([64, 64, 10])
        self.opt = mg.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((32, 64)).astype(np.float32)
        self.y = rng.integers(0, 10, 32)

    def run(self, n: int) -> float:
        """Seconds for n steps."""
        use_engine(self.variant)
        model, opt, x, y = self.model, self.opt, self.x, self.y
        try:
            if self.variant == "on":
                start = time.perf_counter()
                with mg.detect_anomaly():
                    for _ in range(n):
                        opt.zero_grad()
                        mg.nn.cross_entropy(model(x), y).backward()
                        opt.step()
                return time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(n):
                opt.zero_grad()
                mg.nn.cross_entropy(model(x), y).backward()
                opt.step()
            return time.perf_counter() - start
        finally:
            use_engine("off")


def check_same_training() -> None:
    """The stripped engine must train exactly as the shipped one: same weights after 5 steps."""
    steps = {v: Step(v) for v in VARIANTS}
    for s in steps.values():
        s.run(5)
    for v in ("no checks", "on"):
        for (name, p), (_, q) in zip(steps["off"].model.named_parameters(), steps[v].model.named_parameters()):
            if not np.array_equal(p.data, q.data):
                raise RuntimeError(f"anomaly_overhead: {name} differs between 'off' and {v!r} after 5 steps")


def measure(rounds: int, n: int) -> dict[str, list[float]]:
    """Seconds per step of each variant in each round (the order rotates from round to round)."""
    steps = {v: Step(v) for v in VARIANTS}
    for s in steps.values():
        s.run(n)  # warm-up
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(rounds):
        order = VARIANTS[r % 3:] + VARIANTS[:r % 3]
        for v in order:
            times[v].append(steps[v].run(n) / n)
    return times


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    info = {
        "platform": platform.platform(),
        "CPUs": str(os.cpu_count()),
        "Python": platform.python_version(),
        "numpy": np.__version__,
        "minigrad": mg.__version__,
    }
    if hasattr(os, "getloadavg"):
        info["load average (1, 5, 15 min) at start"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print a Markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=41, help="rounds of every variant (default 41)")
    parser.add_argument("--steps", type=int, default=100, help="training steps per variant per round (default 100)")
    parser.add_argument("--json", type=Path, help="also write the per-round times to this file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be positive")

    info = machine()
    check_same_training()
    times = measure(args.rounds, args.steps)
    off_vs_none = [a / b for a, b in zip(times["off"], times["no checks"])]
    on_vs_off = [a / b for a, b in zip(times["on"], times["off"])]

    print("# detect_anomaly overhead\n")
    print(f"Command: `python {shlex.join(['benchmarks/anomaly_overhead.py'] + list(argv or sys.argv[1:]))}`\n")
    for key, value in info.items():
        print(f"- {key}: {value}")
    print(f"\nMLP 64-64-10, batch 32, SGD momentum 0.9; {args.rounds} rounds of {args.steps} steps per variant.\n")
    print("| variant | median µs per step | min | max |")
    print("|---|---:|---:|---:|")
    for v in VARIANTS:
        us = [t * 1e6 for t in times[v]]
        print(f"| {v} | {statistics.median(us):.1f} | {min(us):.1f} | {max(us):.1f} |")
    print("\n| ratio (median of per-round ratios) | median | min | max |")
    print("|---|---:|---:|---:|")
    for name, ratios in (("off / no checks", off_vs_none), ("on / off (for information)", on_vs_off)):
        print(f"| {name} | {statistics.median(ratios):.3f} | {min(ratios):.3f} | {max(ratios):.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "seconds_per_step": times}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
