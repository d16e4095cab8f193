"""Adam and its two best-known variants: AdamW (decoupled weight decay) and NAdam (Nesterov momentum).

All three keep two exponentially weighted averages (optax's ``ema``: the new
gradient enters with weight 1-β), both starting at 0 and bias-corrected by
1/(1-β^t): the first moment m (the EWA momentum of :class:`~minigrad.optim.Momentum`)
and the second moment s of squared gradients, which scales each coordinate's
step by its recent gradient size. The learning rate sits outside both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from minigrad.engine import Tensor
from minigrad.optim.optimizer import Optimizer, _buffer, check_betas, check_number

__all__ = ["Adam", "AdamW", "NAdam"]


class Adam(Optimizer):
    r"""Adam (Kingma & Ba 2015), as PyTorch computes it, weight decay added to the gradient.

    With lr = α, betas = (β1, β2), weight_decay = λ, step t = 1, 2, ...:

        g = grad + λ·w
        m = β1·m + (1-β1)·g          (m, s start at 0)
        s = β2·s + (1-β2)·g²
        w = w - α · (m / (1-β1^t)) / (sqrt(s) / sqrt(1-β2^t) + eps)

    The learning rate sits outside both averages. m is the EWA momentum of
    :class:`Momentum` (vdw, vdb); s, the EWA of squared gradients,
    scales each coordinate by its recent gradient size; both start at 0 and
    are bias-corrected. Defaults: α = 1e-3, betas (0.9, 0.999), eps 1e-8,
    λ = 0.
    """

    lr: float
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    buffer_names = ("m", "s")
    required_names = ("m", "s")

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        check_number("lr", lr)
        betas = check_betas(betas)
        check_number("eps", eps, open_low=True)
        check_number("weight_decay", weight_decay)
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        """One Adam step on ``w`` in place."""
        beta1, beta2 = self.betas
        t = state["step"]
        if self.weight_decay:
            g = g + self.weight_decay * w  # g = grad + λ·w
        m = _buffer(state, "m", w)
        s = _buffer(state, "s", w)
        m *= beta1
        m += (1 - beta1) * g  # m = β1·m + (1-β1)·g
        s *= beta2
        s += (1 - beta2) * g * g  # s = β2·s + (1-β2)·g²
        denom = np.sqrt(s) / np.sqrt(1 - beta2**t) + self.eps  # sqrt(ŝ) + eps
        w -= (self.lr / (1 - beta1**t)) * m / denom  # w = w - α·m̂/(sqrt(ŝ) + eps)


class AdamW(Optimizer):
    r"""AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay, as PyTorch computes it.

    With lr = α, betas = (β1, β2), weight_decay = λ, step t = 1, 2, ...:

        w = w - α·λ·w                (the decay, before the Adam step; it does not enter m or s)
        m = β1·m + (1-β1)·grad       (m, s start at 0)
        s = β2·s + (1-β2)·grad²
        w = w - α · (m / (1-β1^t)) / (sqrt(s) / sqrt(1-β2^t) + eps)

    ``Adam(weight_decay=λ)`` adds λ·w to the gradient, so the decay is then
    divided by sqrt(ŝ) like the gradient and weights with large gradients
    are barely shrunk; AdamW shrinks every weight by the same fraction α·λ
    per step whatever its gradient history, which is what weight decay means
    for plain SGD and what regularises as intended once the rate is adaptive.
    The learning rate sits outside both averages and also scales the decay.
    Defaults: α = 1e-3, betas (0.9, 0.999), eps 1e-8, λ = 1e-2.
    """

    lr: float
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    buffer_names = ("m", "s")
    required_names = ("m", "s")

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        check_number("lr", lr)
        betas = check_betas(betas)
        check_number("eps", eps, open_low=True)
        check_number("weight_decay", weight_decay)
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        """One AdamW step on ``w`` in place."""
        beta1, beta2 = self.betas
        t = state["step"]
        w *= 1 - self.lr * self.weight_decay  # w = w - α·λ·w
        m = _buffer(state, "m", w)
        s = _buffer(state, "s", w)
        m *= beta1
        m += (1 - beta1) * g  # m = β1·m + (1-β1)·g
        s *= beta2
        s += (1 - beta2) * g * g  # s = β2·s + (1-β2)·g²
        denom = np.sqrt(s) / np.sqrt(1 - beta2**t) + self.eps  # sqrt(ŝ) + eps
        w -= (self.lr / (1 - beta1**t)) * m / denom  # w = w - α·m̂/(sqrt(ŝ) + eps)


class NAdam(Optimizer):
    r"""NAdam (Dozat 2016): Adam with Nesterov momentum and a warming momentum schedule, as PyTorch computes it.

    With lr = α, betas = (β1, β2), weight_decay = λ, momentum_decay = ψ,
    step t = 1, 2, ...:

        g = grad + λ·w
        μ_t = β1·(1 - ½·0.96^(t·ψ))             (the momentum weight of step t; μ_{t+1} likewise)
        Π = Π·μ_t                                (Π, the product μ_1···μ_t, starts at 1)
        m = β1·m + (1-β1)·g                      (m, s start at 0)
        s = β2·s + (1-β2)·g²
        d = sqrt(s / (1-β2^t)) + eps
        w = w - α·(1-μ_t)/(1-Π)·g/d - α·μ_{t+1}/(1-Π·μ_{t+1})·m/d

    The step looks one momentum step ahead: the gradient's share uses this
    step's μ_t, the average's the next one's μ_{t+1}. The learning rate sits
    outside the averages. Defaults: α = 2e-3, betas (0.9, 0.999), eps 1e-8,
    λ = 0, ψ = 4e-3.
    """

    lr: float
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    momentum_decay: float
    buffer_names = ("m", "s")
    scalar_names = ("mu_product",)
    required_names = ("m", "s", "mu_product")

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
    ) -> None:
        check_number("lr", lr)
        betas = check_betas(betas)
        check_number("eps", eps, open_low=True)
        check_number("weight_decay", weight_decay)
        check_number("momentum_decay", momentum_decay)
        super().__init__(
            params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay
        )

    def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        """One NAdam step on ``w`` in place."""
        beta1, beta2 = self.betas
        t = state["step"]
        if self.weight_decay:
            g = g + self.weight_decay * w  # g = grad + λ·w
        mu = beta1 * (1 - 0.5 * 0.96 ** (t * self.momentum_decay))  # μ_t = β1·(1 - ½·0.96^(t·ψ))
        mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * self.momentum_decay))  # μ_{t+1}
        mu_product = state["mu_product"] = state.get("mu_product", 1.0) * mu  # Π = Π·μ_t
        m = _buffer(state, "m", w)
        s = _buffer(state, "s", w)
        m *= beta1
        m += (1 - beta1) * g  # m = β1·m + (1-β1)·g
        s *= beta2
        s += (1 - beta2) * g * g  # s = β2·s + (1-β2)·g²
        d = np.sqrt(s / (1 - beta2**t)) + self.eps  # d = sqrt(ŝ) + eps
        w -= (self.lr * (1 - mu) / (1 - mu_product)) * g / d  # w -= α·(1-μ_t)/(1-Π)·g/d
        w -= (self.lr * mu_next / (1 - mu_product * mu_next)) * m / d  # w -= α·μ_{t+1}/(1-Π·μ_{t+1})·m/d
