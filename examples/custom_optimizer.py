"""A new optimizer in one small class: RMSProp against ``mg.optim.Optimizer``.

The base class owns the parameter list, the per-parameter state, the step
count, ``zero_grad()``, ``state_dict()`` and the loop over parameters. A new
optimizer checks its hyperparameters in ``__init__`` and writes one rule,
``update(w, g, state)``, that changes the array ``w`` in place. That is all of
:class:`RMSProp` below.

Importing this file has no side effects, so tools can load the class by path
(``examples/custom_optimizer.py:RMSProp``). Run ``python
examples/custom_optimizer.py`` to train a small MLP with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

import minigrad as mg


class RMSProp(mg.optim.Optimizer):
    r"""RMSProp as PyTorch computes it: each coordinate's step is divided by its recent RMS gradient.

    s = α_s·s + (1-α_s)·g²  (s starts at 0; α_s is ``alpha``);  w = w - lr·g / (sqrt(s) + eps).
    The learning rate sits outside; there is no velocity. Defaults: lr 1e-2, alpha 0.99, eps 1e-8.
    """

    def __init__(self, params: Iterable[mg.Tensor], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8) -> None:
        for name, value, ok in (("lr", lr, lr >= 0), ("alpha", alpha, 0 <= alpha < 1), ("eps", eps, eps > 0)):
            if not ok:  # also False for NaN
                raise ValueError(f"invalid {name}: {value!r} (need lr >= 0, 0 <= alpha < 1, eps > 0)")
        super().__init__(params, lr=lr, alpha=alpha, eps=eps)

    def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        """One RMSProp step on ``w`` in place."""
        s = state.setdefault("s", np.zeros_like(w))  # s starts at 0
        s[...] = self.alpha * s + (1 - self.alpha) * g * g  # s = α_s·s + (1-α_s)·g²
        w -= self.lr * g / (np.sqrt(s) + self.eps)  # w = w - lr·g / (sqrt(s) + eps)


def two_moons(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` noisy points on two interleaved half circles, labels 0 and 1 (float32)."""
    angle = rng.uniform(0, np.pi, n)
    label = rng.integers(0, 2, n)
    x = np.where(label == 0, np.cos(angle), 1 - np.cos(angle))
    y = np.where(label == 0, np.sin(angle), 0.5 - np.sin(angle))
    X = np.stack([x, y], axis=1) + rng.normal(0, 0.1, (n, 2))
    return X.astype(np.float32), label


def main() -> None:
    """Train an MLP (2-16-16-2) on two moons with RMSProp, one line per epoch.

    Seeded, so every run prints the same numbers; it takes well under a second.
    The convergence lab loads the class by path and races it against the
    built-in optimizers::

        python -m minigrad compare --optimizers sgd,momentum,examples/custom_optimizer.py:RMSProp
    """
    mg.manual_seed(0)
    rng = np.random.default_rng(0)
    X, y = two_moons(512, rng)
    model = mg.nn.MLP([2, 16, 16, 2], activation="tanh")
    optimizer = RMSProp(model.parameters(), lr=1e-2)

    def report(epoch: int) -> None:
        with mg.no_grad():
            logits = model(mg.Tensor(X))
            loss = mg.nn.cross_entropy(logits, y).item()
        accuracy = float(np.mean(logits.data.argmax(axis=1) == y))
        print(f"epoch {epoch:2d}  train loss {loss:.4f}  accuracy {accuracy:.3f}")

    report(0)  # before any step
    for epoch in range(1, 21):
        order = rng.permutation(len(X))
        for start in range(0, len(X), 32):
            rows = order[start : start + 32]
            optimizer.zero_grad()
            mg.nn.cross_entropy(model(mg.Tensor(X[rows])), y[rows]).backward()
            optimizer.step()
        report(epoch)


if __name__ == "__main__":
    main()
