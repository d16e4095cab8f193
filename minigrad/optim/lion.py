"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): the sign of an interpolated momentum."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from minigrad.engine import Tensor
from minigrad.optim.optimizer import Optimizer, _buffer, check_betas, check_number

__all__ = ["Lion"]


class Lion(Optimizer):
    r"""Lion (EvoLved Sign Momentum), the update of Chen et al. 2023 (Program 1); not in PyTorch.

    With lr = α, betas = (β1, β2), weight_decay = λ:

        c = β1·m + (1-β1)·g          (the interpolation the step uses)
        w = w - α·(sign(c) + λ·w)    (decoupled decay, as in AdamW)
        m = β2·m + (1-β2)·g          (m starts at 0: an EWA, optax's ema, updated after the step)

    Every coordinate moves by exactly ±α (or 0) before decay, so Lion's rate
    is typically 3-10 times smaller than AdamW's and λ correspondingly larger.
    Two betas: β1 mixes the gradient into the step, the slower β2 keeps the
    momentum. The learning rate sits outside; sign(0) = 0. Defaults (the
    paper's): α = 1e-4, betas (0.9, 0.99), λ = 0.
    """

    lr: float
    betas: tuple[float, float]
    weight_decay: float
    buffer_names = ("m",)
    required_names = ("m",)

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
    ) -> None:
        check_number("lr", lr)
        betas = check_betas(betas)
        check_number("weight_decay", weight_decay)
        super().__init__(params, lr=lr, betas=betas, weight_decay=weight_decay)

    def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        """One Lion step on ``w`` in place."""
        beta1, beta2 = self.betas
        m = _buffer(state, "m", w)
        c = beta1 * m + (1 - beta1) * g  # c = β1·m + (1-β1)·g
        w -= self.lr * (np.sign(c) + self.weight_decay * w)  # w = w - α·(sign(c) + λ·w)
        m *= beta2
        m += (1 - beta2) * g  # m = β2·m + (1-β2)·g
