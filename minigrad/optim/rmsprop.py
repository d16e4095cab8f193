"""RMSprop (Hinton's lecture 6e): each coordinate's step divided by its recent root-mean-square gradient."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from minigrad.engine import Tensor
from minigrad.optim.optimizer import Optimizer, _buffer, check_flag, check_number

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop as PyTorch computes it, with optional centring and momentum.

    With lr = α, alpha = ρ, weight_decay = λ, momentum = β:

        g = grad + λ·w
        s = ρ·s + (1-ρ)·g²                (s starts at 0: an EWA, optax's ema)
        a = ρ·a + (1-ρ)·g                 (only if centered; a starts at 0)
        d = sqrt(s - a²) + eps  if centered  else  sqrt(s) + eps
        v = β·v + g/d                     (only if β > 0; v starts at 0, a trace)
        w = w - α·v  if β > 0  else  w - α·g/d

    Centring divides by an estimate of the gradient's standard deviation
    instead of its root mean square. The learning rate sits outside the
    velocity, which accumulates already-scaled steps. Defaults: α = 1e-2,
    ρ = 0.99, eps 1e-8, λ = 0, β = 0, not centred.
    """

    lr: float
    alpha: float
    eps: float
    weight_decay: float
    momentum: float
    centered: bool
    buffer_names = ("s", "a", "v")
    required_names = ("s",)  # (a: centered only; v: with momentum only)

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        check_number("lr", lr)
        check_number("alpha", alpha, 0.0, 1.0)
        check_number("eps", eps, open_low=True)
        check_number("weight_decay", weight_decay)
        check_number("momentum", momentum, 0.0, 1.0)
        centered = check_flag("centered", centered)
        super().__init__(
            params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered
        )

    def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        """One RMSprop step on ``w`` in place."""
        rho = self.alpha
        if self.weight_decay:
            g = g + self.weight_decay * w  # g = grad + λ·w
        s = _buffer(state, "s", w)
        s *= rho
        s += (1 - rho) * g * g  # s = ρ·s + (1-ρ)·g²
        if self.centered:
            a = _buffer(state, "a", w)
            a *= rho
            a += (1 - rho) * g  # a = ρ·a + (1-ρ)·g
            d = np.sqrt(s - a * a) + self.eps  # d = sqrt(s - a²) + eps
        else:
            d = np.sqrt(s) + self.eps  # d = sqrt(s) + eps
        if self.momentum:
            v = _buffer(state, "v", w)
            v *= self.momentum
            v += g / d  # v = β·v + g/d
            w -= self.lr * v  # w = w - α·v
        else:
            w -= self.lr * g / d  # w = w - α·g/d
