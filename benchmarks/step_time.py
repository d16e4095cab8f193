"""Time one training epoch of minigrad against the same epoch written by hand in numpy, and its peers.

The task: scikit-learn's digits (1,797 images of 8x8 pixels, 10 classes),
standardised with the whole set's mean and std, float32; an MLP with ReLU
hidden layers; cross-entropy (mean over the batch); SGD with momentum 0.9 in
PyTorch's form (v = 0.9 v + g, v starts as the first g; w -= lr v), lr 0.01.
The batch order is one fixed permutation, the same for every implementation,
and the last, shorter batch is kept.

Implementations, timed in the same process:

- **minigrad**: ``mg.nn.MLP``, ``mg.optim.SGD``, ``mg.nn.cross_entropy`` and
  the ordinary loop (zero_grad, forward, backward, step).
- **minigrad compiled**: the same step under ``mg.compile`` (recorded and confirmed once
  per batch shape, then replayed).
- **numpy**: the same forward, backward and momentum update written out by
  hand, in place where natural: the floor for any framework built on numpy.
- peers, each if importable: **JAX** on the CPU (``jax.jit`` of the whole
  step, forward, gradient and update, with XLA on one thread), **PyTorch**
  on the CPU with one thread, **mygrad** and **HIPS autograd** (numpy
  autodiff libraries) and **scikit-learn**'s ``MLPClassifier(solver="sgd")``,
  one ``partial_fit`` per epoch (an approximate reference: each call also
  validates its input and computes the loss its own way).

minigrad (eager and compiled) and numpy are timed first, alternating: each
round times one full epoch of each (the order rotates from round to round),
after two warm-up epochs each; that set gives minigrad / numpy. The peers are
then timed in a second set of rounds, in one rotation with numpy and
minigrad again, which gives each peer's ratio to numpy and minigrad / JAX. Kept apart, the peers'
much larger working sets do not evict minigrad's and numpy's from the caches
between epochs in the first set: mixed into one rotation, PyTorch's epochs
raised minigrad/numpy from 1.28-1.30 to 1.32-1.33 on our 2-core machine. A
user trains with one framework at a time, so the separate rotation is the one
that matches use.

Memory: for the numpy-based implementations (minigrad, numpy, mygrad,
autograd, scikit-learn), the peak of the memory that Python's tracemalloc
sees allocated during one epoch, above what was allocated at its start. numpy
reports its arrays to tracemalloc; PyTorch and JAX allocate outside it, so
they get no figure.

BLAS runs on one thread for every implementation. Before timing, one epoch
from identical weights checks that every implementation ends with numpy's
weights (within float32 rounding).

Run from the repository root::

    python benchmarks/step_time.py                 # 21 rounds, three configurations
    python benchmarks/step_time.py --rounds 41 --json results.json
    python benchmarks/step_time.py --configs 64-64-10:32 --no-sklearn
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# BLAS on one thread for every implementation. threadpoolctl limits the
# libraries once they are loaded (below, after the imports); without it the
# environment variables must be set before numpy is first imported. XLA reads
# its flags when JAX is first imported.
try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:  # pragma: no cover - depends on the machine
    threadpool_info = threadpool_limits = None
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # time the working tree's minigrad

import minigrad as mg  # noqa: E402


def _optional(name: str) -> Any:
    """The module ``name`` if it can be imported, else None."""
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - depends on the machine
        return None


torch = _optional("torch")
jax = _optional("jax")
mygrad = _optional("mygrad")
autograd = _optional("autograd")
sklearn = _optional("sklearn")
if sklearn is not None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

LR = 0.01
MOMENTUM = 0.9
N_IN, N_OUT = 64, 10
DEFAULT_CONFIGS = "64-64-10:32,64-256-10:128,64-512-512-10:256"

Params = list[np.ndarray]  # [W1 (in, hidden), b1, W2, b2, ...], minigrad's layout
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


def parse_configs(text: str) -> list[tuple[list[int], int]]:
    """Parse ``"64-64-10:32,64-512-512-10:256"`` into [(layer sizes, batch), ...]."""
    configs = []
    for item in text.split(","):
        try:
            sizes_text, batch_text = item.strip().split(":")
            sizes = [int(s) for s in sizes_text.split("-")]
            batch = int(batch_text)
        except ValueError:
            raise SystemExit(f"--configs: cannot read {item!r}; write e.g. 64-64-10:32") from None
        if len(sizes) < 3 or sizes[0] != N_IN or sizes[-1] != N_OUT or min(sizes) < 1 or batch < 1:
            raise SystemExit(
                f"--configs: {item!r} must be {N_IN}-HIDDEN[-HIDDEN...]-{N_OUT}:BATCH (digits: 64 inputs, 10 classes)"
            )
        configs.append((sizes, batch))
    return configs


# ---------------------------------------------------------------------------
# The implementations: each has epoch() and weights() (minigrad's layout)
# ---------------------------------------------------------------------------


class MinigradRun:
    """minigrad's ordinary training loop."""

    name = "minigrad"

    def __init__(self, init: Params, sizes: list[int], batches: Batches) -> None:
        self.model = mg.nn.MLP(sizes)
        names = [name for name, _ in self.model.named_parameters()]
        self.model.load_state_dict(dict(zip(names, init)))
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

    def kept_bytes(self) -> int:
        """Bytes of arrays kept from one step to the next besides the weights and the velocity: the .grads."""
        return sum(p.grad.nbytes for p in self.model.parameters() if p.grad is not None)


class CompiledRun(MinigradRun):
    """The same loop with the step under ``mg.compile``: recorded (and confirmed) per batch shape, then replayed."""

    name = "compiled"

    def __init__(self, init: Params, sizes: list[int], batches: Batches) -> None:
        super().__init__(init, sizes, batches)
        model, opt, cross_entropy = self.model, self.optimizer, mg.nn.cross_entropy

        def train_step(x: mg.Tensor, y: np.ndarray) -> mg.Tensor:
            opt.zero_grad()
            loss = cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        self.step = mg.compile(train_step)

    def epoch(self) -> None:
        """One pass over the batches."""
        step, Tensor = self.step, mg.Tensor
        for xb, yb in self.batches:
            step(Tensor(xb), yb)

    def kept_bytes(self) -> int:
        """The arrays the records keep (outputs, gradients, scratch; the .grads are among them)."""
        return self.step.kept_nbytes


class NumpyRun:
    """The same network by hand in numpy: the floor for a numpy framework."""

    name = "numpy"

    def __init__(self, init: Params, sizes: list[int], batches: Batches) -> None:
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
        Ws, bs = self.params[0::2], self.params[1::2]
        dWs, dbs = self.grads[0::2], self.grads[1::2]
        last = len(Ws) - 1
        for x, y in self.batches:
            n = len(y)
            rows = self.rows[n]
            # forward: a_{l+1} = relu(a_l W_l + b_l), logits z = a_L W_L + b_L
            acts = [x]
            for W, b in zip(Ws[:-1], bs[:-1]):
                h = acts[-1] @ W
                h += b
                np.maximum(h, 0, out=h)
                acts.append(h)
            z = acts[-1] @ Ws[-1]
            z += bs[-1]
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
            d = z
            for i in range(last, -1, -1):
                np.matmul(acts[i].T, d, out=dWs[i])  # dW = aᵀ d
                d.sum(axis=0, out=dbs[i])  # db = Σ_rows d
                if i:
                    d = d @ Ws[i].T  # da = d Wᵀ
                    d *= acts[i] > 0  # relu'(pre-activation) = 1 where the activation is > 0
            # momentum: v = 0.9 v + g; w -= lr v
            for w, g, v, s in zip(self.params, self.grads, self.velocity, self.scratch):
                v *= MOMENTUM
                v += g
                np.multiply(v, LR, out=s)
                w -= s

    def weights(self) -> Params:
        """The current weights."""
        return self.params

    def kept_bytes(self) -> int:
        """The gradient and scratch arrays allocated once, besides the weights and the velocity."""
        return sum(a.nbytes for a in self.grads + self.scratch) + sum(r.nbytes for r in self.rows.values())


class JaxRun:
    """JAX on the CPU: the whole step (forward, gradient, momentum update) under one jax.jit."""

    name = "jax"

    def __init__(self, init: Params, sizes: list[int], batches: Batches) -> None:
        jnp = jax.numpy

        def loss_fn(params: list[Any], x: Any, y: Any) -> Any:
            h = x
            for i in range(0, len(params) - 2, 2):
                h = jnp.maximum(h @ params[i] + params[i + 1], 0)
            z = h @ params[-2] + params[-1]
            logp = jax.nn.log_softmax(z, axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

        def step(params: list[Any], velocity: list[Any], x: Any, y: Any) -> tuple[list[Any], list[Any]]:
            grads = jax.grad(loss_fn)(params, x, y)
            velocity = [MOMENTUM * v + g for v, g in zip(velocity, grads)]  # v starts at 0: v = g first
            return [w - LR * v for w, v in zip(params, velocity)], velocity

        self.step = jax.jit(step)
        self.params = [jnp.asarray(p) for p in init]
        self.velocity = [jnp.zeros_like(p) for p in self.params]
        self.batches = [(jnp.asarray(xb), jnp.asarray(yb.astype(np.int32))) for xb, yb in batches]

    def epoch(self) -> None:
        """One pass over the batches (waiting for the last update to finish)."""
        params, velocity, step = self.params, self.velocity, self.step
        for xb, yb in self.batches:
            params, velocity = step(params, velocity, xb, yb)
        jax.block_until_ready(params)
        self.params, self.velocity = params, velocity

    def weights(self) -> Params:
        """The current weights."""
        return [np.asarray(p) for p in self.params]


class TorchRun:
    """PyTorch on the CPU, one thread, from the same initial weights."""

    name = "torch"

    def __init__(self, init: Params, sizes: list[int], batches: Batches) -> None:
        nn = torch.nn
        layers: list[Any] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i:
                layers.append(nn.ReLU())
            layers.append(nn.Linear(n_in, n_out))
        self.model = nn.Sequential(*layers)
        self.linears = [m for m in self.model if isinstance(m, nn.Linear)]
        with torch.no_grad():  # torch keeps W as (out, in): copy the transpose
            for lin, W, b in zip(self.linears, init[0::2], init[1::2]):
                lin.weight.copy_(torch.from_numpy(W.T.copy()))
                lin.bias.copy_(torch.from_numpy(b))
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
        out = []
        for lin in self.linears:
            out += [lin.weight.detach().numpy().T.copy(), lin.bias.detach().numpy().copy()]
        return out


class MygradRun:
    """mygrad: its Tensors, relu and softmax_crossentropy; the momentum update by hand on the arrays."""

    name = "mygrad"

    def __init__(self, init: Params, sizes: list[int], batches: Batches) -> None:
        from mygrad.nnet.activations import relu
        from mygrad.nnet.losses import softmax_crossentropy

        self.relu, self.loss = relu, softmax_crossentropy
        self.params = [mygrad.Tensor(p.copy()) for p in init]
        self.velocity = [np.zeros_like(p) for p in init]
        self.batches = batches

    def epoch(self) -> None:
        """One pass over the batches."""
        params, matmul, relu = self.params, mygrad.matmul, self.relu
        for xb, yb in self.batches:
            h = xb
            for i in range(0, len(params) - 2, 2):
                h = relu(matmul(h, params[i]) + params[i + 1])
            loss = self.loss(matmul(h, params[-2]) + params[-1], yb)
            loss.backward()
            for p, v in zip(params, self.velocity):
                v *= MOMENTUM
                v += p.grad
                p.data -= LR * v

    def weights(self) -> Params:
        """The current weights."""
        return [p.data for p in self.params]


class AutogradRun:
    """HIPS autograd: ``autograd.grad`` of the loss written in autograd.numpy; the update by hand."""

    name = "autograd"

    def __init__(self, init: Params, sizes: list[int], batches: Batches) -> None:
        anp = importlib.import_module("autograd.numpy")

        def loss_fn(params: list[Any], x: np.ndarray, y: np.ndarray) -> Any:
            h = x
            for i in range(0, len(params) - 2, 2):
                h = anp.maximum(anp.dot(h, params[i]) + params[i + 1], 0)
            z = anp.dot(h, params[-2]) + params[-1]
            z = z - anp.max(z, axis=1, keepdims=True)
            logp = z - anp.log(anp.sum(anp.exp(z), axis=1, keepdims=True))
            return -anp.mean(logp[np.arange(len(y)), y])

        self.grad = autograd.grad(loss_fn)
        self.params = [p.copy() for p in init]
        self.velocity = [np.zeros_like(p) for p in init]
        self.batches = batches

    def epoch(self) -> None:
        """One pass over the batches."""
        for xb, yb in self.batches:
            grads = self.grad(self.params, xb, yb)
            for w, g, v in zip(self.params, grads, self.velocity):
                v *= MOMENTUM
                v += g
                w -= LR * v

    def weights(self) -> Params:
        """The current weights."""
        return self.params


class SklearnRun:
    """scikit-learn's MLPClassifier, one partial_fit per epoch.

    The first partial_fit (at construction) initialises the network; the
    initial weights are then copied in and the velocities zeroed, so the
    arithmetic matches the others (sklearn's v' = -lr·v of PyTorch's).
    """

    name = "sklearn"

    def __init__(self, init: Params, sizes: list[int], batch_size: int, Xp: np.ndarray, yp: np.ndarray) -> None:
        self.X, self.y = Xp, yp
        self.model = MLPClassifier(
            hidden_layer_sizes=tuple(sizes[1:-1]),
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
        for dst, src in zip(m.coefs_ + m.intercepts_, init[0::2] + init[1::2]):
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
        return [a for pair in zip(m.coefs_, m.intercepts_) for a in pair]


LABELS = {
    "minigrad": "minigrad",
    "compiled": "minigrad, `mg.compile`d step",
    "numpy": "numpy (by hand)",
    "jax": "JAX CPU, `jax.jit` of the step",
    "torch": "PyTorch CPU, 1 thread",
    "mygrad": "mygrad",
    "autograd": "HIPS autograd",
    "sklearn": "scikit-learn MLPClassifier †",
}
PEERS = ("jax", "torch", "mygrad", "autograd", "sklearn")
MODULES = {"jax": jax, "torch": torch, "mygrad": mygrad, "autograd": autograd, "sklearn": sklearn}
# Their arrays are numpy's, which tracemalloc sees.
TRACED = ("minigrad", "compiled", "numpy", "mygrad", "autograd", "sklearn")


# ---------------------------------------------------------------------------
# Benchmark
# ---------------------------------------------------------------------------


def initial_weights(sizes: list[int], seed: int) -> Params:
    """minigrad's own initialisation of the MLP, as numpy arrays."""
    mg.manual_seed(seed)
    model = mg.nn.MLP(sizes)
    return [p.data.copy() for p in model.parameters()]


def build(names: Sequence[str], init: Params, sizes: list[int], batch: int, data: tuple) -> list[Any]:
    """Fresh instances of the named implementations, all from ``init``."""
    Xp, yp, batches = data
    classes = {
        "minigrad": MinigradRun, "compiled": CompiledRun, "numpy": NumpyRun, "jax": JaxRun, "torch": TorchRun,
        "mygrad": MygradRun, "autograd": AutogradRun,
    }
    runs: list[Any] = []
    for name in names:
        if name == "sklearn":
            runs.append(SklearnRun(init, sizes, batch, Xp, yp))
        else:
            runs.append(classes[name](init, sizes, batches))
    return runs


def check_correctness(names: Sequence[str], init: Params, sizes: list[int], batch: int, data: tuple) -> dict[str, Any]:
    """One epoch of each from ``init``; compare every implementation's weights with numpy's."""
    runs = {r.name: r for r in build(names, init, sizes, batch, data)}
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
    """Warm up each run with two epochs, then time ``rounds`` epochs each, in rotating order (ms).

    (Two, so that a compiled step has recorded and confirmed its record of the last, shorter batch too.)
    """
    for r in runs:
        r.epoch()
        r.epoch()
    times: dict[str, list[float]] = {r.name: [] for r in runs}
    for k in range(rounds):
        shift = k % len(runs)
        for r in list(runs[shift:]) + list(runs[:shift]):
            t0 = time.perf_counter()
            r.epoch()
            times[r.name].append((time.perf_counter() - t0) * 1e3)
    return times


def peak_memory(run: Any) -> int:
    """Peak bytes that tracemalloc sees allocated during one epoch, above its start (after two warm-up epochs)."""
    run.epoch()
    run.epoch()
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        run.epoch()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - start


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


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, or 'unknown'."""
    if not hasattr(os, "getloadavg"):
        return "unknown"
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def version(name: str) -> str:
    """The installed version of the peer ``name``, or 'not installed'."""
    module = MODULES[name]
    if module is None:
        return "not installed"
    text = getattr(module, "__version__", None)
    if text is None:
        from importlib.metadata import version as dist_version

        text = dist_version(name)
    if name == "torch":
        text += ", torch.set_num_threads(1)"
    if name == "jax":
        text += f", jaxlib {importlib.import_module('jaxlib').__version__}, XLA_FLAGS={os.environ.get('XLA_FLAGS')!r}"
    return text


def machine_info(threads_note: str) -> dict[str, str]:
    """What the numbers were measured on."""
    info = {
        "platform": platform.platform(),
        "CPU": f"{cpu_model()} ({os.cpu_count()} logical CPUs)",
        "Python": platform.python_version(),
        "numpy": np.__version__,
        "BLAS": threads_note,
        "minigrad": f"{mg.__version__} (git {git_revision()})",
    }
    for name in PEERS:
        info[LABELS[name].split(",")[0].rstrip(" †")] = version(name)
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            info[var] = os.environ[var]
    # Other processes on the machine make every number noisier.
    info["load average (1, 5, 15 min) at start"] = load_average()
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
    return f"{statistics.median(values):.1f}" if values else "—"


def fmt_ratio(value: float | None, bold: bool = False) -> str:
    """A ratio with two decimals, or a dash."""
    if value is None:
        return "—"
    return f"**{value:.2f}x**" if bold else f"{value:.2f}x"


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
    configs = results["configs"]
    names = results["implementations"]
    lines += ["Time of one epoch against numpy by hand (median over rounds of the per-round ratio):", ""]
    head = ["system"] + [c["label"] for c in configs]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in names:
        if n == "numpy":
            row = [LABELS[n]] + [f"1 ({fmt_ms(c['ms']['numpy'])} ms)" for c in configs]
        elif n in ("minigrad", "compiled"):
            row = [LABELS[n]] + [
                f"{fmt_ratio(c['over_numpy'][n], bold=True)} ({fmt_ms(c['ms'][n])} ms); "
                f"second set {fmt_ratio(c['over_numpy'].get(n + '2'))}"
                for c in configs
            ]
        else:
            row = [LABELS[n]] + [f"{fmt_ratio(c['over_numpy'].get(n))} ({fmt_ms(c['ms'].get(n))} ms)" for c in configs]
        lines.append("| " + " | ".join(row) + " |")
    if "jax" in names:
        for n in ("minigrad", "compiled"):
            row = [f"{LABELS[n]} / JAX (second set)"] + [fmt_ratio(c.get(f"{n}_over_jax"), bold=True) for c in configs]
            lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        f"Median of {rounds} rounds, one epoch per implementation per round (order rotating), after two warm-up "
        "epochs. minigrad (eager and compiled) and numpy alternate in the first set of rounds, which gives "
        "minigrad's ratios; the peers then alternate with numpy and minigrad in a second set, which gives "
        "theirs (and minigrad's again, 'second set').",
    ]
    if "sklearn" in names:
        lines.append(
            "† approximate reference: one `partial_fit` per epoch, which also validates its input and "
            "computes the loss its own way."
        )
    lines += ["", "Peak memory allocated during one epoch, above its start (tracemalloc), against numpy's:", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in names:
        if n not in TRACED:
            continue
        row = [LABELS[n]]
        for c in configs:
            mem = c["peak_bytes"]
            row.append(f"{mem[n] / 1024:.0f} KiB ({mem[n] / mem['numpy']:.2f}x)" if n in mem else "—")
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "The same peak plus the arrays each keeps from one step to the next besides the weights and the "
        "velocity (numpy by hand: its gradient and scratch arrays; minigrad: the .grads; the compiled step: "
        "every array its records keep, the .grads among them), against numpy's:",
        "",
    ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in ("minigrad", "compiled", "numpy"):
        if n not in names:
            continue
        row = [LABELS[n]]
        for c in configs:
            mem = {k: c["peak_bytes"][k] + v for k, v in c["kept_bytes"].items()}
            row.append(f"{mem[n] / 1024:.0f} KiB ({mem[n] / mem['numpy']:.2f}x)")
        lines.append("| " + " | ".join(row) + " |")
    if any(n not in TRACED for n in names):
        lines.append("")
        lines.append("PyTorch and JAX allocate outside Python's allocator, so tracemalloc cannot see their arrays.")
    lines += ["", "Spread and time per step:", ""]
    lines += ["| configuration | implementation | min ms | median ms | max ms | µs/step |", "|---|---|---|---|---|---|"]
    for cfg in configs:
        for n, v in cfg["ms"].items():
            med = statistics.median(v)
            label = LABELS[n] if n in LABELS else LABELS[n[:-1]] + " (second set)"
            per_step = med * 1e3 / cfg["steps"]
            lines.append(f"| {cfg['label']} | {label} | {min(v):.2f} | {med:.2f} | {max(v):.2f} | {per_step:.0f} |")
    lines += ["", "Correctness (one epoch from identical weights, max |w - w_numpy| over all weights):", ""]
    for cfg in configs:
        checks = ", ".join(
            f"{n} {c['max_abs_diff']:.2e} ({'allclose' if c['allclose'] else 'NOT allclose'})"
            for n, c in cfg["correctness"].items()
        )
        lines.append(f"- {cfg['label']}: {checks}")
    lines += ["", f"Load average (1, 5, 15 min) at the end: {results['load_at_end']}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns 1 if any implementation's weights disagree with numpy's."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds",
        type=int,
        default=21,
        help="rounds in each set; a round times one epoch of each implementation in the set (default 21, at least 7)",
    )
    parser.add_argument(
        "--configs",
        default=DEFAULT_CONFIGS,
        help=f"64-HIDDEN[-HIDDEN...]-10:BATCH, comma separated (default {DEFAULT_CONFIGS})",
    )
    for name in PEERS:
        parser.add_argument(f"--no-{name}", action="store_true", help=f"skip {LABELS[name].split(',')[0]}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the batch order")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 7:
        parser.error("--rounds must be at least 7")
    if sklearn is None:
        parser.error("scikit-learn is needed for the digits data set (pip install scikit-learn)")
    configs = parse_configs(args.configs)
    peers = [n for n in PEERS if MODULES[n] is not None and not getattr(args, f"no_{n}")]
    names = ["minigrad", "compiled", "numpy", *peers]
    if torch is not None:
        torch.set_num_threads(1)

    limiter = threadpool_limits(limits=1) if threadpool_limits is not None else None
    command = shlex.join(["python", *sys.argv]) if argv is None else shlex.join(["python", sys.argv[0], *argv])
    info = machine_info(blas_note())
    X, y = load_digits_standardised()
    results: dict[str, Any] = {"implementations": names, "n_samples": len(X), "rounds": args.rounds, "configs": []}
    failed = False
    for sizes, batch in configs:
        data = make_batches(X, y, batch, args.seed)
        init = initial_weights(sizes, args.seed)
        correctness = check_correctness(names, init, sizes, batch, data)
        failed |= not all(c["allclose"] for c in correctness.values())
        runs = build(names, init, sizes, batch, data)
        times = time_epochs(runs[:3], args.rounds)  # minigrad (eager, compiled) and numpy, alternating
        over_numpy = {n: median_ratio(times[n], times["numpy"]) for n in ("minigrad", "compiled")}
        label = f"{'-'.join(map(str, sizes))}, batch {batch}"
        cfg: dict[str, Any] = {"label": label, "sizes": sizes, "batch_size": batch}
        if len(runs) > 3:  # the peers, alternating with numpy and minigrad again
            others = time_epochs(runs, args.rounds)
            numpy2 = others.pop("numpy")
            for n in ("minigrad", "compiled"):
                times[n + "2"] = others.pop(n)
                over_numpy[n + "2"] = median_ratio(times[n + "2"], numpy2)
                if "jax" in others:
                    cfg[f"{n}_over_jax"] = median_ratio(times[n + "2"], others["jax"])
            for n, v in others.items():
                over_numpy[n] = median_ratio(v, numpy2)
            times.update(others)
        cfg.update(
            steps=len(data[2]),
            ms=times,
            median_ms={n: statistics.median(v) for n, v in times.items()},
            over_numpy=over_numpy,
            peak_bytes={r.name: peak_memory(r) for r in runs if r.name in TRACED},
            kept_bytes={r.name: r.kept_bytes() for r in runs if hasattr(r, "kept_bytes")},
            correctness=correctness,
        )
        results["configs"].append(cfg)
    if limiter is not None:
        limiter.restore_original_limits()
    results["load_at_end"] = load_average()

    print(report(results, info, command, args.rounds))
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command, "machine": info, **results}, indent=2) + "\n")
        print(f"\nWrote {args.json}")
    if failed:
        print("\nFAIL: an implementation's weights differ from numpy's after one epoch", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
