"""Where one eager training step spends its time: each phase of minigrad's loop against numpy by hand.

The task is ``step_time.py``'s (digits, an MLP with ReLU hidden layers,
cross-entropy, SGD with momentum 0.9, one fixed batch order), on one
configuration. Each step is cut into phases, timed with ``perf_counter``
around each one:

- **zero_grad**: ``opt.zero_grad()`` (numpy by hand has nothing to do);
- **forward**: ``model(x)`` and the loss;
- **backward**: ``loss.backward()`` (by hand: the gradients written out);
- **update**: ``opt.step()`` (by hand: the momentum update).

For each phase: the median over rounds (one epoch of each implementation per
round, alternating, after two warm-up epochs) of the mean µs per step, its
ratio to numpy's, and the Python bytecodes that one step executes in it
(counted with ``sys.settrace``; numpy's own C code runs no bytecode). The
eager step's distance from numpy by hand is Python, and this shows in which
phase it lies.

``--minigrad PATH`` times the minigrad in another checkout instead of this
tree's (its ``minigrad/`` must offer ``nn.MLP``, ``optim.SGD``,
``nn.cross_entropy``, ``Tensor`` and ``manual_seed``, as every version
does). ``--against PATH`` runs this script on both, this tree and PATH, in
alternating subprocesses, and prints the two side by side: the before and
after of an engine change, each as a ratio to numpy measured in its own run.

Run from the repository root::

    python benchmarks/step_phases.py                       # 64-64-10, batch 32, 21 rounds
    python benchmarks/step_phases.py --config 64-256-10:128
    git worktree add /tmp/old 50df5f3 && python benchmarks/step_phases.py --against /tmp/old --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PHASES = ("zero_grad", "forward", "backward", "update")


def _import_minigrad(path: Path) -> Any:
    """Import minigrad from the checkout at ``path`` (before anything else imports it)."""
    sys.path.insert(0, str(path))
    import minigrad

    if not Path(minigrad.__file__).resolve().is_relative_to(path.resolve()):
        raise SystemExit(f"--minigrad: {path} has no minigrad/ package (imported {minigrad.__file__})")
    return minigrad


class Phases:
    """Accumulated seconds per phase over the steps of an epoch."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.steps = 0


def minigrad_epoch(mg: Any, model: Any, opt: Any, batches: Sequence[tuple[Any, Any]], acc: Phases) -> None:
    """One epoch of minigrad's ordinary loop, each phase timed."""
    clock, s, Tensor, cross_entropy = time.perf_counter, acc.seconds, mg.Tensor, mg.nn.cross_entropy
    for xb, yb in batches:
        t0 = clock()
        opt.zero_grad()
        t1 = clock()
        loss = cross_entropy(model(Tensor(xb)), yb)
        t2 = clock()
        loss.backward()
        t3 = clock()
        opt.step()
        t4 = clock()
        s["zero_grad"] += t1 - t0
        s["forward"] += t2 - t1
        s["backward"] += t3 - t2
        s["update"] += t4 - t3
    acc.steps += len(batches)


class NumpyByHand:
    """step_time.py's numpy network, its step cut into the same phases (one method each)."""

    def __init__(self, np: Any, init: list[Any], batches: Sequence[tuple[Any, Any]], lr: float, momentum: float):
        self.np, self.lr, self.momentum = np, lr, momentum
        self.params = [p.copy() for p in init]
        self.grads = [np.empty_like(p) for p in init]
        self.velocity = [np.zeros_like(p) for p in init]  # v = 0.9·0 + g = g on the first step
        self.scratch = [np.empty_like(p) for p in init]
        self.batches = batches
        self.rows = {len(yb): np.arange(len(yb)) for _, yb in batches}

    def forward(self, x: Any, y: Any) -> None:
        """a_{l+1} = relu(a_l W_l + b_l), z = a_L W_L + b_L; loss = mean(log Σ e^z' - z'[y]), z' = z - max z."""
        np = self.np
        Ws, bs = self.params[0::2], self.params[1::2]
        self.n, self.y = len(y), y
        self.acts = acts = [x]
        for W, b in zip(Ws[:-1], bs[:-1]):
            h = acts[-1] @ W
            h += b
            np.maximum(h, 0, out=h)
            acts.append(h)
        z = acts[-1] @ Ws[-1]
        z += bs[-1]
        z -= z.max(axis=1, keepdims=True)
        picked = z[self.rows[self.n], y]
        np.exp(z, out=z)
        self.total = total = z.sum(axis=1, keepdims=True)
        self.z = z
        self.loss = (np.log(total).sum() - picked.sum()) / self.n

    def backward(self) -> None:
        """d = dL/dz = (softmax - onehot) / N, written over z; then dW = aᵀ d, db = Σ_rows d, da = d Wᵀ."""
        z, acts, Ws = self.z, self.acts, self.params[0::2]
        dWs, dbs = self.grads[0::2], self.grads[1::2]
        z /= self.total
        z[self.rows[self.n], self.y] -= 1
        z /= self.n
        d = z
        for i in range(len(Ws) - 1, -1, -1):
            self.np.matmul(acts[i].T, d, out=dWs[i])
            d.sum(axis=0, out=dbs[i])
            if i:
                d = d @ Ws[i].T
                d *= acts[i] > 0  # relu'(pre-activation) = 1 where the activation is > 0

    def update(self) -> None:
        """v = 0.9 v + g; w -= lr v."""
        for w, g, v, sc in zip(self.params, self.grads, self.velocity, self.scratch):
            v *= self.momentum
            v += g
            self.np.multiply(v, self.lr, out=sc)
            w -= sc

    def epoch(self, acc: Phases) -> None:
        """One pass over the batches, each phase timed."""
        clock, s = time.perf_counter, acc.seconds
        forward, backward, update = self.forward, self.backward, self.update
        for x, y in self.batches:
            t1 = clock()
            forward(x, y)
            t2 = clock()
            backward()
            t3 = clock()
            update()
            t4 = clock()
            s["forward"] += t2 - t1
            s["backward"] += t3 - t2
            s["update"] += t4 - t3
        acc.steps += len(self.batches)


# The phase of a call made directly by a step function, by the called function's name.
_PHASE_OF_CALL = {"zero_grad": "zero_grad", "backward": "backward", "step": "update", "update": "update"}


def count_bytecodes(step: Callable[[], None]) -> dict[str, int]:
    """Bytecodes that the calls made by one call of ``step`` execute, per phase (``step``'s own are left out).

    A call that ``step`` makes directly starts a phase, named by the function
    it calls (``zero_grad``, ``backward``, ``step``/``update``; anything else is
    the forward pass); everything below it counts in that phase. Counted on
    CPython 3.11 and earlier only, where ``sys.settrace`` reports every
    bytecode of every frame; from 3.12 on it misses frames, so the counts are
    None.
    """
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return dict.fromkeys(PHASES, None)  # type: ignore[arg-type]
    counts = dict.fromkeys(PHASES, 0)
    phase = ["forward"]
    top = step.__code__

    def trace(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code is top:
            return trace  # the step's own bytecodes are not counted
        if event == "call":
            if frame.f_back is not None and frame.f_back.f_code is top:
                phase[0] = _PHASE_OF_CALL.get(frame.f_code.co_name, "forward")
            frame.f_trace_opcodes = True
        elif event == "opcode":
            counts[phase[0]] += 1
        return trace

    sys.settrace(trace)
    try:
        step()
    finally:
        sys.settrace(None)
    return counts


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Time and count every phase of both implementations; the results as a dict."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    mg = _import_minigrad(Path(args.minigrad) if args.minigrad else ROOT)
    import numpy as np

    sys.path.insert(0, str(HERE))
    import step_time  # the task's data and settings, shared with step_time.py

    if step_time.threadpool_limits is not None:
        step_time.threadpool_limits(1)
    (sizes, batch), = step_time.parse_configs(args.config)
    X, y = step_time.load_digits_standardised()
    _, _, batches = step_time.make_batches(X, y, batch, args.seed)
    mg.manual_seed(args.seed)
    model = mg.nn.MLP(sizes)
    init = [p.data.copy() for p in model.parameters()]
    opt = mg.optim.SGD(model.parameters(), lr=step_time.LR, momentum=step_time.MOMENTUM)
    by_hand = NumpyByHand(np, init, batches, step_time.LR, step_time.MOMENTUM)

    def mine(acc: Phases) -> None:
        minigrad_epoch(mg, model, opt, batches, acc)

    runs: list[tuple[str, Callable[[Phases], None]]] = [("minigrad", mine), ("numpy", by_hand.epoch)]
    for _, epoch in runs:  # two warm-up epochs each
        epoch(Phases())
        epoch(Phases())
    per_round: dict[str, list[dict[str, float]]] = {"minigrad": [], "numpy": []}
    for k in range(args.rounds):
        order = runs if k % 2 == 0 else runs[::-1]
        for name, epoch in order:
            acc = Phases()
            epoch(acc)
            per_round[name].append({p: acc.seconds[p] / acc.steps * 1e6 for p in PHASES})

    # Bytecodes of one full-size step of each, by phase.
    xb, yb = batches[0]

    def mg_step() -> None:
        opt.zero_grad()
        loss = mg.nn.cross_entropy(model(mg.Tensor(xb)), yb)
        loss.backward()
        opt.step()

    def numpy_step() -> None:
        by_hand.forward(xb, yb)
        by_hand.backward()
        by_hand.update()

    bytecodes = {"minigrad": count_bytecodes(mg_step), "numpy": count_bytecodes(numpy_step)}
    for counts in bytecodes.values():
        counts["total"] = None if None in counts.values() else sum(counts.values())

    medians = {
        name: {p: statistics.median(r[p] for r in rounds) for p in PHASES} for name, rounds in per_round.items()
    }
    ratios = {
        p: statistics.median(a[p] / b[p] for a, b in zip(per_round["minigrad"], per_round["numpy"]))
        for p in PHASES
        if p != "zero_grad"
    }
    totals = [sum(a.values()) / sum(b.values()) for a, b in zip(per_round["minigrad"], per_round["numpy"])]
    ratios["total"] = statistics.median(totals)
    return {
        "minigrad": str(Path(mg.__file__).resolve().parent.parent),
        "revision": _revision(Path(args.minigrad) if args.minigrad else ROOT),
        "config": args.config,
        "rounds": args.rounds,
        "us_per_step": medians,
        "ratio": ratios,
        "bytecodes": bytecodes,
        "load": os.getloadavg(),
    }


def _revision(path: Path) -> str:
    """Short commit of the checkout at ``path``, with a "+" when its minigrad/ has uncommitted changes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=path, capture_output=True, text=True)
        dirty = subprocess.run(["git", "diff", "--stat", "HEAD", "--", "minigrad"], cwd=path, capture_output=True,
                               text=True)
    except OSError:
        return "unknown"
    return (rev.stdout.strip() or "unknown") + ("+" if dirty.stdout.strip() else "")


def _count(n: int | None) -> str:
    return "n/a" if n is None else str(n)


def report(results: Sequence[dict[str, Any]]) -> str:
    """A Markdown table: per phase, µs per step, the ratio to numpy and the bytecodes, for each run."""
    first = results[0]
    lines = [
        f"Eager training step by phase, {first['config']}: median over {first['rounds']} rounds of one epoch "
        "each (minigrad and numpy by hand alternating) of the mean µs per step; the ratio is minigrad / numpy "
        "in the same run; bytecodes are those one step executes (a + after a commit: with uncommitted changes).",
        "",
    ]
    head = "| phase |"
    for r in results:
        head += f" minigrad {r['revision']}: µs (x numpy) | bytecodes |"
    lines += [head + " numpy: µs | bytecodes |", "|---|" + "---|---|" * (len(results) + 1)]
    for p in (*PHASES, "total"):
        row = f"| {p} |"
        for r in results:
            us = r["us_per_step"]["minigrad"]
            ratio = r["ratio"].get(p)
            row += f" {sum(us.values()) if p == 'total' else us[p]:.1f}"
            row += f" ({ratio:.2f}x) |" if ratio is not None else " |"
            row += f" {_count(r['bytecodes']['minigrad'][p])} |"
        np_us = first["us_per_step"]["numpy"]
        row += " — | — |" if p == "zero_grad" else f" {sum(np_us.values()) if p == 'total' else np_us[p]:.1f} |"
        if p != "zero_grad":
            row += f" {_count(first['bytecodes']['numpy'][p])} |"
        lines.append(row)
    lines += [
        "",
        "The timers add about the same to both (four perf_counter calls per step). Bytecodes are counted on "
        "CPython 3.11 and earlier (n/a otherwise). "
        + "Load average (1 min) at the end of each run: "
        + ", ".join(f"{r['load'][0]:.2f}" for r in results)
        + ".",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="64-64-10:32", help="network and batch, as in step_time.py")
    parser.add_argument("--rounds", type=int, default=21, help="timed epochs of each implementation")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the batch order")
    parser.add_argument("--minigrad", metavar="PATH", help="time the minigrad of the checkout at PATH")
    parser.add_argument("--against", metavar="PATH", help="also run on the checkout at PATH, alternating")
    parser.add_argument("--repeats", type=int, default=1, help="with --against: runs of each, alternating")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)  # a subprocess's JSON on stdout
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.repeats < 1:
        parser.error("--rounds and --repeats must be at least 1")
    if args.against:
        results = []
        base = [sys.executable, __file__, "--raw", "--config", args.config, "--rounds", str(args.rounds),
                "--seed", str(args.seed)]
        for _ in range(args.repeats):
            for path in (None, args.against):
                cmd = base + (["--minigrad", path] if path else [])
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode != 0:  # the run's own message (a checkout without minigrad/, say), not a traceback
                    sys.stderr.write(out.stderr)
                    return out.returncode
                results.append(json.loads(out.stdout))
    else:
        results = [measure(args)]
        if args.raw:
            print(json.dumps(results[0]))
            return 0
    print(f"Command: python benchmarks/step_phases.py {' '.join(sys.argv[1:] if argv is None else argv)}\n")
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
