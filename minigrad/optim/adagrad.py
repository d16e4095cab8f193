"""Adagrad (Duchi, Hazan & Singer 2011): each coordinate's rate shrinks with the sum of its squared gradients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from minigrad.engine import Tensor
from minigrad.optim.optimizer import Optimizer, _buffer, check_number

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad as PyTorch computes it, with optional learning-rate decay.

    With lr = α, lr_decay = δ, weight_decay = λ, step t = 1, 2, ...:

        g = grad + λ·w
        α_t = α / (1 + (t-1)·δ)
        S = S + g²                   (S starts at initial_accumulator_value: a sum, not an average)
        w = w - α_t·g / (sqrt(S) + eps)

    Because S only grows, every coordinate's effective rate only falls: fast
    on rarely-seen features, slow on frequent ones. The learning rate sits
    outside the sum; there is no velocity. Defaults: α = 1e-2, δ = 0, λ = 0,
    initial_accumulator_value 0, eps 1e-10.
    """

    lr: float
    lr_decay: float
    weight_decay: float
    initial_accumulator_value: float
    eps: float
    buffer_names = ("sum",)
    required_names = ("sum",)

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        check_number("lr", lr)
        check_number("lr_decay", lr_decay)
        check_number("weight_decay", weight_decay)
        check_number("initial_accumulator_value", initial_accumulator_value)
        check_number("eps", eps, open_low=True)
        super().__init__(
            params,
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )

    def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        """One Adagrad step on ``w`` in place."""
        if self.weight_decay:
            g = g + self.weight_decay * w  # g = grad + λ·w
        lr_t = self.lr / (1 + (state["step"] - 1) * self.lr_decay)  # α_t = α / (1 + (t-1)·δ)
        S = _buffer(state, "sum", w, self.initial_accumulator_value)  # S starts at S₀
        S += g * g  # S = S + g²
        w -= lr_t * g / (np.sqrt(S) + self.eps)  # w = w - α_t·g / (sqrt(S) + eps)
