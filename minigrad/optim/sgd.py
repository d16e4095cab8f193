"""Gradient descent and its two forms of momentum.

In the usual names (lr = α, beta = β, velocity v, gradient g):

- the exponentially weighted average ("EWA", optax's ``ema``), :class:`Momentum`:
  ``v = β·v + (1-β)·g``; ``w = w - α·v``; v starts at 0.
- the classic form ("trace" in optax; PyTorch's), :class:`SGD` with ``momentum=β``:
  ``v = β·v + g``; ``w = w - α·v``; v starts as the first g.

Momentum(α, β) takes exactly the steps of SGD(α·(1-β), momentum=β): the EWA's
velocity is (1-β) times the classic one. The literal rule
``vdw = α(β·vdw + (1-β)·dw); w = w - vdw`` folds α into the velocity: it is
SGD with momentum α·β and lr α·(1-β).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from minigrad.engine import Tensor
from minigrad.optim.optimizer import Optimizer, _buffer, check_flag, check_number

__all__ = ["SGD", "Momentum"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional (Nesterov) momentum: PyTorch's rule.

    With lr = α, momentum = β, weight_decay = λ:

        g = grad + λ·w
        v = β·v + g            (v starts as the first g; the "classic" form, optax's trace)
        step = g + β·v  if nesterov  else  v      (step = g when β = 0)
        w = w - α·step

    The learning rate sits outside the velocity. Defaults: momentum 0 (plain
    gradient descent), no Nesterov, no weight decay. In the W, b names,
    ``vdw = β·vdw + dw; w = w - α·vdw`` and ``vdb = β·vdb + db; b = b - α·vdb``.
    Note: this velocity is 1/(1-β) times the EWA's of :class:`Momentum`, so
    ``SGD(α·(1-β), momentum=β)`` equals ``Momentum(α, β)``.
    """

    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    buffer_names = ("v",)  # (with momentum only: a missing one starts as v = g, as in an unbroken run)

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        check_number("lr", lr)
        check_number("momentum", momentum, 0.0, 1.0)  # β in [0, 1): at 1, v never forgets
        check_number("weight_decay", weight_decay)
        nesterov = check_flag("nesterov", nesterov)
        if nesterov and momentum == 0:
            raise ValueError(f"invalid nesterov: Nesterov momentum needs momentum > 0, got momentum={momentum!r}")
        super().__init__(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)

    def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        """One SGD step on ``w`` in place."""
        if self.weight_decay:
            g = g + self.weight_decay * w  # g = grad + λ·w
        if self.momentum:
            v = state.get("v")
            if v is None:
                v = state["v"] = np.array(g, dtype=w.dtype, copy=True)  # v starts as the first g
            else:
                v *= self.momentum
                v += g  # v = β·v + g
            g = g + self.momentum * v if self.nesterov else v  # step = g + β·v (Nesterov) or v
        w -= self.lr * g  # w = w - α·step


class Momentum(Optimizer):
    r"""Gradient descent with momentum as an exponentially weighted average (EWA) of gradients.

    With lr = α, beta = β, weight_decay = λ, step t = 1, 2, ...:

        g = grad + λ·w
        v = β·v + (1-β)·g            (v starts at 0; optax's ema)
        w = w - α·v                  or, with bias_correction,  w = w - α·v / (1 - β^t)

    ``vdw``/``vdb`` are the velocities ``v`` of W and b, α the learning rate
    (outside the velocity here), β the averaging weight; β = 0.9 averages
    over roughly the last 1/(1-β) = 10 gradients. Defaults: β = 0.9, no bias
    correction, no weight decay.

    The rule ``vdw = α(β·vdw + (1-β)·dw); w = w - vdw`` folds α into the
    velocity: that is SGD(lr=α·(1-β), momentum=α·β). Without it,
    Momentum(α, β) takes exactly the steps of SGD(lr=α·(1-β), momentum=β).
    On a constant gradient g, v tends to g, so the steady step is α·g, the
    same as plain SGD's; the classic form's tends to α·g/(1-β).
    """

    lr: float
    beta: float
    bias_correction: bool
    weight_decay: float
    buffer_names = ("v",)
    required_names = ("v",)

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        beta: float = 0.9,
        bias_correction: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        check_number("lr", lr)
        check_number("beta", beta, 0.0, 1.0)
        check_number("weight_decay", weight_decay)
        bias_correction = check_flag("bias_correction", bias_correction)
        super().__init__(params, lr=lr, beta=beta, bias_correction=bias_correction, weight_decay=weight_decay)

    def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        """One step of the EWA momentum rule on ``w`` in place."""
        if self.weight_decay:
            g = g + self.weight_decay * w  # g = grad + λ·w
        v = _buffer(state, "v", w)  # v starts at 0
        v *= self.beta
        v += (1 - self.beta) * g  # v = β·v + (1-β)·g
        if self.bias_correction:
            w -= (self.lr / (1 - self.beta ** state["step"])) * v  # w = w - α·v/(1-β^t)
        else:
            w -= self.lr * v  # w = w - α·v
