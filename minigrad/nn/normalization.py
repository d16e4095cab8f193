"""Normalization layers: LayerNorm (per sample) and BatchNorm1d (per feature, over the batch).

Both compute x̂ = (x - μ) / √(σ² + eps) and then y = γ·x̂ + β, with γ
(``weight``, starting at 1) and β (``bias``, starting at 0) learned per
element as in PyTorch. They differ in which axes μ and σ² are taken over:
LayerNorm over each sample's trailing axes, BatchNorm1d over the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad import engine
from minigrad.engine import Function, Tensor, check_flag
from minigrad.nn._checks import check_int, check_real
from minigrad.nn.module import Buffer, Module, Parameter

__all__ = ["LayerNorm", "BatchNorm1d"]


def _check_eps(op: str, eps: Any) -> float:
    """``eps`` as a float if it is a positive finite number."""
    eps = check_real(op, "eps", eps)
    if eps <= 0:
        raise ValueError(f"{op}: eps must be positive, got {eps!r}")
    return eps


class LayerNorm(Module):
    """y = (x - μ) / √(σ² + eps) · weight + bias, μ and σ² over each sample's trailing axes.

    ``normalized_shape`` (an int or a tuple) is the shape of those trailing
    axes: LayerNorm(64) normalizes each row of an (N, 64) input. σ² is the
    biased variance (divided by n, not n - 1), as in PyTorch. ``weight`` and
    ``bias`` have shape ``normalized_shape`` and start at 1 and 0; with
    ``elementwise_affine=False`` there are none (``bias=False`` drops only
    the bias). The same computation runs in train() and eval().
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        if not shape or any(isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1
                            for n in shape):
            raise ValueError(
                f"LayerNorm: normalized_shape must be a positive integer or a tuple of them, got {normalized_shape!r}"
            )
        self.normalized_shape = tuple(int(n) for n in shape)
        self.eps = _check_eps("LayerNorm", eps)
        self.elementwise_affine = check_flag("LayerNorm", "elementwise_affine", elementwise_affine)
        check_flag("LayerNorm", "bias", bias)
        self.dtype = np.dtype(dtype)  # (an array input takes it, with or without a weight to take it from)
        self.weight = Parameter(np.ones(self.normalized_shape), dtype=dtype) if elementwise_affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape), dtype=dtype) if elementwise_affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        """Normalize each sample over its last len(normalized_shape) axes, then scale and shift."""
        if not isinstance(x, Tensor):
            x = Tensor(x, dtype=self.dtype)  # an array input takes the layer's dtype, as in Linear
        k = len(self.normalized_shape)
        if x.shape[x.ndim - k :] != self.normalized_shape or x.ndim < k:
            raise ValueError(
                f"LayerNorm: input of shape {x.shape} does not end in normalized_shape {self.normalized_shape}"
            )
        axes = tuple(range(x.ndim - k, x.ndim))
        y, _ = _normalize(x, axes, self.eps)  # (x - μ)/√(σ² + eps), the biased σ² over the last axes
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y

    def extra_repr(self) -> str:
        """The normalized shape, eps and whether there is an affine part."""
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class BatchNorm1d(Module):
    """Batch normalization over the batch axis of (N, C) or (N, C, L) inputs, C = ``num_features``.

    In train(): μ and σ² are the batch's mean and biased variance per feature
    (over N, or over N and L), y = (x - μ) / √(σ² + eps) · weight + bias, and
    the running statistics move towards the batch's:

        running_mean = (1 - momentum)·running_mean + momentum·μ
        running_var  = (1 - momentum)·running_var  + momentum·σ²·n/(n - 1)

    (the unbiased variance, n values per feature, as in PyTorch). In eval():
    y = (x - running_mean) / √(running_var + eps) · weight + bias. The running
    statistics start at 0 and 1 and are buffers: saved in ``state_dict``,
    never trained. ``weight`` and ``bias`` start at 1 and 0 (none with
    ``affine=False``).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        self.num_features = check_int("BatchNorm1d", "num_features", num_features)
        if self.num_features < 1:
            raise ValueError(f"BatchNorm1d: num_features must be positive, got {num_features!r}")
        self.momentum = check_real("BatchNorm1d", "momentum", momentum)
        if not 0 <= self.momentum <= 1:
            raise ValueError(f"BatchNorm1d: momentum must lie in [0, 1], got {momentum!r}")
        self.eps = _check_eps("BatchNorm1d", eps)
        self.affine = check_flag("BatchNorm1d", "affine", affine)
        self.weight = Parameter(np.ones(num_features), dtype=dtype) if affine else None
        self.bias = Parameter(np.zeros(num_features), dtype=dtype) if affine else None
        self.running_mean = Buffer(np.zeros(num_features), dtype=dtype)
        self.running_var = Buffer(np.ones(num_features), dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        """Normalize with the batch's statistics in train(), with the running ones in eval()."""
        if not isinstance(x, Tensor):
            x = Tensor(x, dtype=self.running_mean.dtype)  # an array input takes the layer's dtype, as in Linear
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm1d: expected input of shape (N, {self.num_features}) or (N, {self.num_features}, L), "
                f"got {x.shape}"
            )
        axes = (0,) if x.ndim == 2 else (0, 2)
        per_feature = (1, self.num_features) + (1,) * (x.ndim - 2)  # how a (C,) vector broadcasts over x
        if self.training:
            n = x.size // self.num_features  # values per feature
            if n < 2:
                raise ValueError(
                    f"BatchNorm1d: training needs more than one value per feature to take a variance, "
                    f"got input of shape {x.shape}; use a larger batch or eval()"
                )
            if engine._tape is not None:  # mg.compile replays only ops: the update below would be skipped
                raise RuntimeError(
                    "compile: BatchNorm1d in training mode updates its running statistics outside the ops, "
                    "which a replay would skip; run this step without mg.compile (or the model in eval())"
                )
            y = BatchNormTrain.apply(x, self.weight, self.bias, axes, self.eps)
            # The running statistics are plain arrays, updated in place (no gradient flows into them).
            mu = x.data.mean(axis=axes)
            unbiased = x.data.var(axis=axes, ddof=1)  # Σ (x - μ)² / (n - 1)
            m = self.momentum
            self.running_mean.data[...] = (1 - m) * self.running_mean.data + m * mu
            self.running_var.data[...] = (1 - m) * self.running_var.data + m * unbiased
            self.running_mean.bump_version()
            self.running_var.bump_version()
            return y
        # eval: the running statistics are constants (buffers need no gradient)
        y = (x - self.running_mean.reshape(per_feature)) * (self.running_var.reshape(per_feature) + self.eps) ** -0.5
        if self.weight is not None and self.bias is not None:
            y = y * self.weight.reshape(per_feature) + self.bias.reshape(per_feature)
        return y

    def extra_repr(self) -> str:
        """The number of features, eps, momentum and whether there is an affine part."""
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


def _normalize(x: Any, axes: tuple[int, ...], eps: float) -> tuple[Any, Any]:
    """(x̂, r): x̂ = (x - μ)·r with r = 1/√(σ² + eps), μ and the biased σ² over ``axes``; arrays or Tensors."""
    centred = x - x.mean(axis=axes, keepdims=True)
    r = ((centred * centred).mean(axis=axes, keepdims=True) + eps) ** -0.5
    return centred * r, r


class BatchNormTrain(Function):
    """Training-mode batch norm as one node: y = γ·x̂ + β, x̂ = (x - μ)/√(σ² + eps) over the batch.

    Per feature, over the n values the ``axes`` hold:

        μ = Σ x_i / n,   σ² = Σ (x_i - μ)² / n,   r = 1/√(σ² + eps),
        x̂_i = (x_i - μ)·r,   y_i = γ·x̂_i + β.

    Backward, with g_i = dL/dy_i. The affine part gives dβ = Σ g_i,
    dγ = Σ g_i·x̂_i and dx̂_i = γ·g_i. Each x̂_j depends on x_i directly and
    through μ and σ²: ∂μ/∂x_i = 1/n, and ∂σ²/∂x_i = 2(x_i - μ)/n (the part
    through μ vanishes, as Σ_j (x_j - μ) = 0), so

        ∂x̂_j/∂x_i = r·(δ_ij - 1/n) - (x_j - μ)·r³·(x_i - μ)/n
                  = (r/n)·(n·δ_ij - 1 - x̂_j·x̂_i),

    and summing dx̂_j·∂x̂_j/∂x_i over j:

        dx_i = (r/n)·(n·dx̂_i - Σ_j dx̂_j - x̂_i·Σ_j dx̂_j·x̂_j).

    One node and three sums, where the composite (mean, subtract, square,
    mean, add, power, multiply, ...) records about ten nodes. ``weight`` and
    ``bias`` may be None (no affine part).
    """

    name = "batch_norm"

    @staticmethod
    def forward(
        ctx: Any, x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None, axes: tuple[int, ...], eps: float
    ) -> np.ndarray:
        x_hat, r = _normalize(x, axes, eps)
        ctx.save_for_backward(x, weight)
        ctx.x_hat, ctx.r, ctx.axes, ctx.eps = x_hat, r, axes, eps
        if weight is None or bias is None:
            return x_hat
        return x_hat * weight.reshape(r.shape) + bias.reshape(r.shape)  # r has shape (1, C) or (1, C, 1)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any, Any, None, None]:
        x, weight = ctx.saved_tensors
        axes = ctx.axes
        if isinstance(x, np.ndarray):
            x_hat, r = ctx.x_hat, ctx.r
        else:  # create_graph: x̂ and r as ops of x, so that this gradient can be differentiated again
            x_hat, r = _normalize(x, axes, ctx.eps)
        n = x.size // r.size  # values per feature
        dx_hat = g if weight is None else g * weight.reshape(r.shape)  # dx̂ = γ·g
        dx = (r / n) * (n * dx_hat - dx_hat.sum(axis=axes, keepdims=True)
                        - x_hat * (dx_hat * x_hat).sum(axis=axes, keepdims=True))
        if weight is None:
            return dx, None, None, None, None
        return dx, (g * x_hat).sum(axis=axes), g.sum(axis=axes), None, None  # dx, dγ = Σ g·x̂, dβ = Σ g
