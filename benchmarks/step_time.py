"""Time one training epoch of minigrad against the same epoch written by hand in numpy.

The task: scikit-learn's digits (1,797 images of 8x8 pixels, 10 classes),
standardised with the whole set's mean and std, float32; an MLP with one ReLU
hidden layer; cross-entropy (mean over the batch); SGD with momentum 0.9 in
PyTorch's form (v = 0.9 v + g, v starts as the first g; w -= lr v), lr 0.01.
The batch order is one fixed permutation, the same for every implementation,
and the last, shorter batch is kept.

Implementations, timed in the same process:

- **minigrad**: ``mg.nn.MLP``, ``mg.optim.SGD``, ``mg.nn.cross_entropy`` and
  the ordinary loop (zero_grad, forward, backward, step).
- **numpy**: the same forward, backward and momentum update written out by
  hand, in place where natural: the floor for any framework built on numpy.
- **PyTorch** on the CPU with one thread (if importable), from the same
  initial weights.
- **scikit-learn**'s ``MLPClassifier(solver="sgd")`` (if importable), one
  ``partial_fit`` per epoch. An approximate reference: each call also
  validates its input and computes the loss its own way.

minigrad and numpy are timed first, alternating: each round times one full
epoch of each (the order rotates from round to round), after one warm-up
epoch each. PyTorch and scikit-learn are then timed in a second set of rounds
that alternate them with minigrad again. Kept apart, their much larger
working sets do not evict minigrad's and numpy's from the caches between
epochs. Mixed into one rotation they tilt the ratio: on our 2-core machine,
PyTorch epochs in the rotation raised minigrad/numpy from 1.28-1.30 to
1.32-1.33 (two runs each, 41 rounds), minigrad's Python being the larger part
to reload. A user trains with one framework at a time, so the separate
rotation is the one that matches use.

The table reports the median ms per epoch (minigrad twice: its epochs of
each set) and the median over rounds of the per-round ratios minigrad/numpy
(first set) and minigrad/PyTorch (second set). BLAS runs on one thread for
every implementation. Before timing, one epoch from identical weights checks
that minigrad, numpy (and PyTorch, scikit-learn) end with the same weights.

Run from the repository root::

    python benchmarks/step_time.py                 # 21 rounds, both configurations
    python benchmarks/step_time.py --rounds 41 --json results.json
    python benchmarks/step_time.py --configs 64-64-10:32 --no-sklearn
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# BLAS on one thread for every implementation. threadpoolctl limits the
# libraries once they are loaded (below, after the imports); without it the
# environment variables must be set before numpy is first imported.
try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:  # pragma: no cover - depends on the machine
    threadpool_info = threadpool_limits = None
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # time the working tree's minigrad

import minigrad as mg  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None

try:
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
except ImportError:  # pragma: no cover - depends on the machine
    sklearn = None

LR = 0.01
MOMENTUM = 0.9
N_IN, N_OUT = 64, 10
DEFAULT_CONFIGS = "64-64-10:32,64-256-10:128"

Params = list[np.ndarray]  # [W1 (in, hidden), b1, W2 (hidden, out), b2], minigrad's layout
Batches = list[tuple[np.ndarray, np.ndarray]]


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def load_digits_standardised() -> tuple[np.ndarray, np.ndarray]:
    """Digits as float32 features with zero mean and unit std per column, and int64 labels.

    Columns whose std is 0 (pixels that are always blank) are only centred.
    """
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    std[std == 0] = 1.0
    return ((X - mean) / std).astype(np.float32), y.astype(np.int64)


def make_batches(X: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> tuple[np.ndarray, np.ndarray, Batches]:
    """Permute the data once and cut it into batches in that order (the last one may be short).

    Returns the permuted X and y (for scikit-learn, which slices them itself
    with ``shuffle=False``) and the list of contiguous (xb, yb) batches.
    """
    order = np.random.default_rng(seed).permutation(len(X))
    Xp, yp = np.ascontiguousarray(X[order]), np.ascontiguousarray(y[order])
    batches = [(Xp[i : i + batch_size], yp[i : i + batch_size]) for i in range(0, len(Xp), batch_size)]
    return Xp, yp, batches


def parse_configs(text: str) -> list[tuple[int, int]]:
    """Parse ``"64-64-10:32,64-256-10:128"`` into [(hidden, batch), ...]."""
    configs = []
    for item in text.split(","):
        try:
            sizes_text, batch_text = item.strip().split(":")
            sizes = [int(s) for s in sizes_text.split("-")]
            batch = int(batch_text)
        except ValueError:
            raise SystemExit(f"--configs: cannot read {item!r}; write e.g. 64-64-10:32") from None
        if len(sizes) != 3 or sizes[0] != N_IN or sizes[2] != N_OUT or sizes[1] < 1 or batch < 1:
            raise SystemExit(f"--configs: {item!r} must be {N_IN}-HIDDEN-{N_OUT}:BATCH (digits: 64 inputs, 10 classes)")
        configs.append((sizes[1], batch))
    return configs


# ---------------------------------------------------------------------------
# The implementations: each has epoch() and weights() (minigrad's layout)
# ---------------------------------------------------------------------------


class MinigradRun:
    """minigrad's ordinary training loop."""

    name = "minigrad"

    def __init__(self, init: Params, hidden: int, batches: Batches) -> None:
        self.model = mg.nn.MLP([N_IN, hidden, N_OUT])
        self.model.load_state_dict(dict(zip(["layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b"], init)))
        self.optimizer = mg.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.batches = batches

    def epoch(self) -> None:
        """One pass over the batches."""
        model, opt, cross_entropy, Tensor = self.model, self.optimizer, mg.nn.cross_entropy, mg.Tensor
        for xb, yb in self.batches:
            opt.zero_grad()
            loss = cross_entropy(model(Tensor(xb)), yb)
            loss.backward()
            opt.step()

    def weights(self) -> Params:
        """The current weights."""
        return [p.data for p in self.model.parameters()]


class NumpyRun:
    """The same network by hand in numpy: the floor for a numpy framework."""

    name = "numpy"

    def __init__(self, init: Params, hidden: int, batches: Batches) -> None:
        self.params = [p.copy() for p in init]
        self.grads = [np.empty_like(p) for p in init]
        # v = 0.9·0 + g = g on the first step, exactly, so a zero start is
        # PyTorch's "v starts as the first g".
        self.velocity = [np.zeros_like(p) for p in init]
        self.scratch = [np.empty_like(p) for p in init]
        self.batches = batches
        self.rows = {len(yb): np.arange(len(yb)) for _, yb in batches}

    def epoch(self) -> None:
        """One pass over the batches."""
        W1, b1, W2, b2 = self.params
        dW1, db1, dW2, db2 = self.grads
        for x, y in self.batches:
            n = len(y)
            rows = self.rows[n]
            # forward: h = relu(x W1 + b1), z = h W2 + b2
            h = x @ W1
            h += b1
            np.maximum(h, 0, out=h)
            z = h @ W2
            z += b2
            # stable softmax cross-entropy: loss = mean(log Σ e^z' - z'[y]), z' = z - max z
            z -= z.max(axis=1, keepdims=True)
            picked = z[rows, y]
            np.exp(z, out=z)
            total = z.sum(axis=1, keepdims=True)
            self.loss = (np.log(total).sum() - picked.sum()) / n
            # backward: d = dL/dz = (softmax - onehot) / N, written over z
            z /= total
            z[rows, y] -= 1
            z /= n
            np.matmul(h.T, z, out=dW2)  # dW2 = hᵀ d
            z.sum(axis=0, out=db2)  # db2 = Σ_rows d
            dh = z @ W2.T  # dh = d W2ᵀ
            dh *= h > 0  # relu'(pre-activation) = 1 where h > 0
            np.matmul(x.T, dh, out=dW1)  # dW1 = xᵀ dh
            dh.sum(axis=0, out=db1)  # db1 = Σ_rows dh
            # momentum: v = 0.9 v + g; w -= lr v
            for w, g, v, s in zip(self.params, self.grads, self.velocity, self.scratch):
                v *= MOMENTUM
                v += g
                np.multiply(v, LR, out=s)
                w -= s

    def weights(self) -> Params:
        """The current weights."""
        return self.params


class TorchRun:
    """PyTorch on the CPU, one thread, from the same initial weights."""

    name = "torch"

    def __init__(self, init: Params, hidden: int, batches: Batches) -> None:
        nn = torch.nn
        self.model = nn.Sequential(nn.Linear(N_IN, hidden), nn.ReLU(), nn.Linear(hidden, N_OUT))
        with torch.no_grad():  # torch keeps W as (out, in): copy the transpose
            self.model[0].weight.copy_(torch.from_numpy(init[0].T.copy()))
            self.model[0].bias.copy_(torch.from_numpy(init[1]))
            self.model[2].weight.copy_(torch.from_numpy(init[2].T.copy()))
            self.model[2].bias.copy_(torch.from_numpy(init[3]))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.batches = [(torch.from_numpy(xb), torch.from_numpy(yb)) for xb, yb in batches]

    def epoch(self) -> None:
        """One pass over the batches."""
        model, opt, cross_entropy = self.model, self.optimizer, torch.nn.functional.cross_entropy
        for xb, yb in self.batches:
            opt.zero_grad()
            loss = cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()

    def weights(self) -> Params:
        """The current weights, in minigrad's layout."""
        m = self.model
        return [t.detach().numpy().copy() for t in (m[0].weight.T, m[0].bias, m[2].weight.T, m[2].bias)]


class SklearnRun:
    """scikit-learn's MLPClassifier, one partial_fit per epoch.

    The first partial_fit (at construction) initialises the network; the
    initial weights are then copied in and the velocities zeroed, so the
    arithmetic matches the others (sklearn's v' = -lr·v of PyTorch's).
    """

    name = "sklearn"

    def __init__(self, init: Params, hidden: int, batch_size: int, Xp: np.ndarray, yp: np.ndarray) -> None:
        self.X, self.y = Xp, yp
        self.model = MLPClassifier(
            hidden_layer_sizes=(hidden,),
            solver="sgd",
            momentum=MOMENTUM,
            nesterovs_momentum=False,
            learning_rate_init=LR,
            batch_size=batch_size,
            max_iter=1,
            shuffle=False,
            alpha=0.0,
            tol=0.0,
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.partial_fit(Xp, yp, classes=np.arange(N_OUT))
        m = self.model
        for dst, src in zip(m.coefs_ + m.intercepts_, [init[0], init[2], init[1], init[3]]):
            dst[...] = src
        try:  # private, but the only way to restart the momentum (exactness check only)
            m._optimizer.velocities = [np.zeros_like(p) for p in m.coefs_ + m.intercepts_]
        except AttributeError:  # pragma: no cover - other scikit-learn versions
            pass

    def epoch(self) -> None:
        """One pass over the data, in the given order."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.partial_fit(self.X, self.y)

    def weights(self) -> Params:
        """The current weights."""
        m = self.model
        return [m.coefs_[0], m.intercepts_[0], m.coefs_[1], m.intercepts_[1]]


LABELS = {
    "minigrad": "minigrad",
    "numpy": "numpy (by hand)",
    "minigrad2": "minigrad (second set)",
    "torch": "PyTorch CPU, 1 thread",
    "sklearn": "scikit-learn MLPClassifier †",
}


# ---------------------------------------------------------------------------
# Benchmark
# ---------------------------------------------------------------------------


def initial_weights(hidden: int, seed: int) -> Params:
    """minigrad's own initialisation of a 64-hidden-10 MLP, as numpy arrays."""
    mg.manual_seed(seed)
    model = mg.nn.MLP([N_IN, hidden, N_OUT])
    return [p.data.copy() for p in model.parameters()]


def build(names: Sequence[str], init: Params, hidden: int, batch: int, data: tuple) -> list[Any]:
    """Fresh instances of the named implementations, all from ``init``."""
    Xp, yp, batches = data
    runs: list[Any] = []
    for name in names:
        if name == "minigrad":
            runs.append(MinigradRun(init, hidden, batches))
        elif name == "numpy":
            runs.append(NumpyRun(init, hidden, batches))
        elif name == "torch":
            runs.append(TorchRun(init, hidden, batches))
        elif name == "sklearn":
            runs.append(SklearnRun(init, hidden, batch, Xp, yp))
    return runs


def check_correctness(names: Sequence[str], init: Params, hidden: int, batch: int, data: tuple) -> dict[str, Any]:
    """One epoch of each from ``init``; compare every implementation's weights with numpy's."""
    runs = {r.name: r for r in build(names, init, hidden, batch, data)}
    for r in runs.values():
        r.epoch()
    ref = runs["numpy"].weights()
    out: dict[str, Any] = {}
    for name, r in runs.items():
        if name == "numpy":
            continue
        w = r.weights()
        diff = max(float(np.max(np.abs(a.astype(np.float64) - b))) for a, b in zip(w, ref))
        ok = all(np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(w, ref))
        out[name] = {"max_abs_diff": diff, "allclose": ok}
    return out


def time_epochs(runs: Sequence[Any], rounds: int) -> dict[str, list[float]]:
    """Warm up each run with one epoch, then time ``rounds`` epochs each, in rotating order (ms)."""
    for r in runs:
        r.epoch()
    times: dict[str, list[float]] = {r.name: [] for r in runs}
    for k in range(rounds):
        shift = k % len(runs)
        for r in list(runs[shift:]) + list(runs[:shift]):
            t0 = time.perf_counter()
            r.epoch()
            times[r.name].append((time.perf_counter() - t0) * 1e3)
    return times


def median_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median over rounds of a[k] / b[k]."""
    return statistics.median(x / y for x, y in zip(a, b))


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or platform.processor()."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_revision() -> str:
    """Short commit of HEAD, noting uncommitted changes to minigrad/'s tracked files."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "diff", "--stat", "HEAD", "--", "minigrad"], cwd=ROOT, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + (" + uncommitted changes in minigrad/" if dirty.stdout.strip() else "")


def machine_info(threads_note: str) -> dict[str, str]:
    """What the numbers were measured on."""
    info = {
        "platform": platform.platform(),
        "CPU": f"{cpu_model()} ({os.cpu_count()} logical CPUs)",
        "Python": platform.python_version(),
        "numpy": np.__version__,
        "BLAS": threads_note,
        "minigrad": f"{mg.__version__} (git {git_revision()})",
        "PyTorch": f"{torch.__version__}, torch.set_num_threads(1)" if torch is not None else "not installed",
        "scikit-learn": sklearn.__version__ if sklearn is not None else "not installed",
    }
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        info[var] = os.environ.get(var, "unset")
    if hasattr(os, "getloadavg"):  # other processes on the machine make every number noisier
        info["load average (1, 5, 15 min) at start"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


def blas_note() -> str:
    """Describe the BLAS libraries and how they were held to one thread."""
    if threadpool_info is None:
        return "threadpoolctl not installed; OPENBLAS/OMP/MKL_NUM_THREADS=1 set before importing numpy"
    parts = []
    for lib in threadpool_info():
        if lib.get("user_api") != "blas":
            continue
        arch = f" ({lib['architecture']})" if lib.get("architecture") else ""
        parts.append(f"{lib.get('internal_api')} {lib.get('version')}{arch}, {lib.get('num_threads')} thread(s)")
    return "; ".join(parts or ["no BLAS found"]) + " — limited with threadpoolctl.threadpool_limits(1)"


def fmt_ms(values: Sequence[float] | None) -> str:
    """Median ms, or a dash."""
    return f"{statistics.median(values):.1f} ms" if values else "—"


def report(results: dict[str, Any], info: dict[str, str], command: str, rounds: int) -> str:
    """The Markdown report."""
    lines = [
        f"### minigrad step time: one epoch of digits ({results['n_samples']} samples), "
        f"SGD momentum {MOMENTUM}, lr {LR}, cross-entropy",
        "",
        "| machine | |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines += ["", f"Command: `{command}`", ""]
    # Columns: the first set (minigrad, numpy), then the second (minigrad again, PyTorch, scikit-learn).
    names = [n for n in ("minigrad", "numpy", "minigrad2", "torch", "sklearn") if n in results["configs"][0]["ms"]]
    head = ["configuration", "steps/epoch"] + [LABELS[n] for n in names]
    if "numpy" in names:
        head.append("minigrad / numpy")
    if "torch" in names:
        head.append("minigrad / PyTorch")
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cfg in results["configs"]:
        row = [cfg["label"], str(cfg["steps"])] + [fmt_ms(cfg["ms"].get(n)) for n in names]
        if "numpy" in names:
            row.append(f"**{cfg['minigrad_over_numpy']:.2f}**")
        if "torch" in names:
            row.append(f"**{cfg['minigrad_over_torch']:.2f}**")
        lines.append("| " + " | ".join(row) + " |")
    note = (
        f"Median of {rounds} rounds, one epoch per implementation per round (order rotating), after a warm-up "
        "epoch; ratios are the median over rounds of the per-round ratio. minigrad and numpy alternate in one "
        "set of rounds, which gives minigrad / numpy."
    )
    if "minigrad2" in names:
        refs = " and ".join(LABELS[n].split(",")[0].rstrip(" †") for n in names if n in ("torch", "sklearn"))
        note += f" In a second set of {rounds} rounds minigrad alternates with {refs} (column minigrad (second set))"
        note += "; that set gives minigrad / PyTorch." if "torch" in names else "."
    lines += ["", note]
    if "sklearn" in names:
        lines.append(
            "† approximate reference: one `partial_fit` per epoch, which also validates its input and "
            "computes the loss its own way."
        )
    lines += ["", "Spread and time per step:", ""]
    lines += ["| configuration | implementation | min ms | median ms | max ms | µs/step |", "|---|---|---|---|---|---|"]
    for cfg in results["configs"]:
        for n in names:
            v = cfg["ms"][n]
            med = statistics.median(v)
            lines.append(
                f"| {cfg['label']} | {LABELS[n]} | {min(v):.2f} | {med:.2f} | {max(v):.2f} | "
                f"{med * 1e3 / cfg['steps']:.0f} |"
            )
    lines += ["", "Correctness (one epoch from identical weights, max |w - w_numpy| over all weights):", ""]
    for cfg in results["configs"]:
        checks = ", ".join(
            f"{n} {c['max_abs_diff']:.2e} ({'allclose' if c['allclose'] else 'NOT allclose'})"
            for n, c in cfg["correctness"].items()
        )
        lines.append(f"- {cfg['label']}: {checks}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns 1 if minigrad's weights disagree with numpy's."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds",
        type=int,
        default=21,
        help="rounds in each set; a round times one epoch of each implementation in the set (default 21, at least 7)",
    )
    parser.add_argument(
        "--configs", default=DEFAULT_CONFIGS, help=f"64-HIDDEN-10:BATCH, comma separated (default {DEFAULT_CONFIGS})"
    )
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    parser.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn's MLPClassifier")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the batch order")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 7:
        parser.error("--rounds must be at least 7")
    if sklearn is None:
        parser.error("scikit-learn is needed for the digits data set (pip install scikit-learn)")
    configs = parse_configs(args.configs)
    names = ["minigrad", "numpy"]
    if torch is not None and not args.no_torch:
        names.append("torch")
        torch.set_num_threads(1)
    if not args.no_sklearn:
        names.append("sklearn")

    limiter = threadpool_limits(limits=1) if threadpool_limits is not None else None
    command = shlex.join(["python", *sys.argv]) if argv is None else shlex.join(["python", sys.argv[0], *argv])
    info = machine_info(blas_note())
    X, y = load_digits_standardised()
    results: dict[str, Any] = {"implementations": names, "n_samples": len(X), "rounds": args.rounds, "configs": []}
    failed = False
    for hidden, batch in configs:
        data = make_batches(X, y, batch, args.seed)
        init = initial_weights(hidden, args.seed)
        correctness = check_correctness(names, init, hidden, batch, data)
        failed |= not correctness["minigrad"]["allclose"]
        runs = build(names, init, hidden, batch, data)
        times = time_epochs(runs[:2], args.rounds)  # minigrad and numpy, alternating
        if len(runs) > 2:  # PyTorch and scikit-learn, alternating with minigrad again
            others = time_epochs([runs[0]] + runs[2:], args.rounds)
            times["minigrad2"] = others.pop("minigrad")
            times.update(others)
        cfg: dict[str, Any] = {
            "label": f"{N_IN}-{hidden}-{N_OUT}, batch {batch}",
            "hidden": hidden,
            "batch_size": batch,
            "steps": len(data[2]),
            "ms": times,
            "median_ms": {n: statistics.median(v) for n, v in times.items()},
            "correctness": correctness,
        }
        cfg["minigrad_over_numpy"] = median_ratio(times["minigrad"], times["numpy"])
        if "torch" in times:
            cfg["minigrad_over_torch"] = median_ratio(times["minigrad2"], times["torch"])
        results["configs"].append(cfg)
    if limiter is not None:
        limiter.restore_original_limits()

    print(report(results, info, command, args.rounds))
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command, "machine": info, **results}, indent=2) + "\n")
        print(f"\nWrote {args.json}")
    if failed:
        print("\nFAIL: minigrad's weights differ from numpy's after one epoch", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
