"""A new optimizer in one small class: AdaBelief against ``mg.optim.Optimizer``.

The base class owns the parameter list, the per-parameter state, the step
count, ``zero_grad()``, ``state_dict()`` and the loop over parameters. A new
optimizer checks its hyperparameters in ``__init__``, names the buffers it
keeps, and writes one rule, ``update(w, g, state)``, that changes the array
``w`` in place. That is all of :class:`AdaBelief` below, an optimizer
minigrad does not ship.

Importing this file has no side effects, so tools can load the class by path
(``examples/custom_optimizer.py:AdaBelief``). Run ``python
examples/custom_optimizer.py`` (``--quick`` for three epochs, ``--out DIR``) to
train a small MLP with it, next to Adam; it saves ``custom_optimizer.png``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

import minigrad as mg
from minigrad.optim import check_betas, check_number

FIGURES = Path(__file__).resolve().parent / "figures"


class AdaBelief(mg.optim.Optimizer):
    r"""AdaBelief (Zhuang et al. 2020): Adam that divides by the spread of g around its average, not by g².

    m = β1·m + (1-β1)·g;  s = β2·s + (1-β2)·(g - m)² + eps  (m, s start at 0, both EWAs);
    w = w - lr·(m / (1-β1^t)) / (sqrt(s / (1-β2^t)) + eps). Where the gradient is
    what the average predicted (g ≈ m, a "belief" held), s is small and the step
    large. The learning rate sits outside. Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-16.
    """

    lr: float
    betas: tuple[float, float]
    eps: float
    buffer_names = ("m", "s")
    required_names = ("m", "s")  # (kept at every update: a state without them is refused)

    def __init__(
        self,
        params: Iterable[mg.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-16,
    ) -> None:
        check_number("lr", lr)
        check_number("eps", eps, open_low=True)
        super().__init__(params, lr=lr, betas=check_betas(betas), eps=eps)

    def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        """One AdaBelief step on ``w`` in place."""
        beta1, beta2, t = *self.betas, state["step"]
        if "m" not in state:  # both start at 0
            state["m"], state["s"] = np.zeros_like(w), np.zeros_like(w)
        m, s = state["m"], state["s"]
        m[...] = beta1 * m + (1 - beta1) * g  # m = β1·m + (1-β1)·g
        s[...] = beta2 * s + (1 - beta2) * (g - m) ** 2 + self.eps  # s = β2·s + (1-β2)·(g - m)² + eps
        w -= self.lr / (1 - beta1**t) * m / (np.sqrt(s / (1 - beta2**t)) + self.eps)  # w = w - lr·m̂/(sqrt(ŝ) + eps)


def two_moons(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` noisy points on two interleaved half circles, labels 0 and 1 (float32)."""
    angle = rng.uniform(0, np.pi, n)
    label = rng.integers(0, 2, n)
    x = np.where(label == 0, np.cos(angle), 1 - np.cos(angle))
    y = np.where(label == 0, np.sin(angle), 0.5 - np.sin(angle))
    X = np.stack([x, y], axis=1) + rng.normal(0, 0.1, (n, 2))
    return X.astype(np.float32), label


def train(make_optimizer: Any, X: np.ndarray, y: np.ndarray, epochs: int) -> list[float]:
    """Train an MLP (2-16-16-2, tanh, seed 0) with ``make_optimizer(params)``; print and return the loss per epoch."""
    mg.manual_seed(0)
    rng = np.random.default_rng(1)  # the batch order
    model = mg.nn.MLP([2, 16, 16, 2], activation="tanh")
    optimizer = make_optimizer(model.parameters())

    def report(epoch: int) -> float:
        with mg.no_grad():
            logits = model(X)
            loss = mg.nn.cross_entropy(logits, y).item()
        accuracy = float(np.mean(logits.data.argmax(axis=1) == y))
        print(f"  epoch {epoch:2d}  train loss {loss:.4f}  accuracy {accuracy:.3f}")
        return loss

    losses = [report(0)]  # before any step
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(X))
        for start in range(0, len(X), 32):
            rows = order[start : start + 32]
            optimizer.zero_grad()
            mg.nn.cross_entropy(model(X[rows]), y[rows]).backward()
            optimizer.step()
        losses.append(report(epoch))
    return losses


def main(quick: bool = False, out_dir: str | Path = FIGURES) -> dict[str, list[float]]:
    """Train an MLP (2-16-16-2) on two moons with AdaBelief and with Adam; save their loss curves.

    One line per epoch (3 epochs with ``quick``, else 20); seeded, so every run
    prints the same numbers, in about a second. Returns the train loss per
    epoch of each. The convergence lab loads the class by path and races it
    against the built-in optimizers::

        python -m minigrad compare --optimizers sgd,momentum,examples/custom_optimizer.py:AdaBelief
    """
    import matplotlib.pyplot as plt

    X, y = two_moons(512, np.random.default_rng(0))
    epochs = 3 if quick else 20
    makers = {"AdaBelief": lambda ps: AdaBelief(ps, lr=1e-2), "Adam": lambda ps: mg.optim.Adam(ps, lr=1e-2)}
    curves = {}
    for name, make in makers.items():
        print(name)
        curves[name] = train(make, X, y, epochs)

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, losses in curves.items():
        ax.plot(range(epochs + 1), losses, marker="o", ms=3, label=f"{name} (lr 0.01)")
    ax.set(title="two moons, MLP 2-16-16-2: a new optimizer in one class", xlabel="epoch",
           ylabel="train loss (cross-entropy)", yscale="log")
    ax.legend()
    fig.tight_layout()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "custom_optimizer.png", dpi=70 if quick else 110)
    plt.close(fig)
    print(f"saved {out / 'custom_optimizer.png'}")
    return curves


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three epochs instead of twenty")
    parser.add_argument(
        "--out", help="folder for the PNG (default: examples/figures; with --quick, examples/figures/quick, "
        "which git ignores, so the committed figures stay)"
    )
    args = parser.parse_args()
    main(quick=args.quick, out_dir=args.out or (FIGURES / "quick" if args.quick else FIGURES))
