"""Layers: Linear, the activations, Dropout, Flatten, Identity, Sequential and MLP.

:class:`Linear` computes ``out = x W + b``; after ``loss.backward()``,
``layer.W.grad`` is dW = xᵀ·dout and ``layer.b.grad`` is db = Σ_rows dout.
The normalization layers, LayerNorm and BatchNorm1d, are in
:mod:`minigrad.nn.normalization`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, overload

import numpy as np

from minigrad import ops
from minigrad.engine import Function, Tensor, _user_stacklevel, get_generator
from minigrad.nn._checks import check_int, check_real
from minigrad.nn.module import Module, Parameter
from minigrad.nn.normalization import BatchNorm1d, LayerNorm
from minigrad.ops import exp, where

__all__ = [
    "Linear",
    "ReLU",
    "Tanh",
    "Sigmoid",
    "LeakyReLU",
    "GELU",
    "Softmax",
    "Identity",
    "Flatten",
    "Dropout",
    "Sequential",
    "MLP",
]


def as_tensor(x: Any) -> Tensor:
    """``x`` itself if it is a Tensor, else ``Tensor(x)``: every layer takes a numpy array as Linear does."""
    return x if isinstance(x, Tensor) else Tensor(x)


class Linear(Module):
    """out = x W + b, with W of shape (in_features, out_features).

    Rows of x are samples, as in scikit-learn. W and b start uniform in
    ±1/sqrt(in_features) (PyTorch's default), drawn from the generator that
    ``mg.manual_seed`` seeds. After backward, ``W.grad`` is dW = xᵀ·dout and
    ``b.grad`` is db = Σ_rows dout.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = np.float32) -> None:
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"Linear: {name} must be a positive integer, got {n!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        bound = 1.0 / np.sqrt(in_features)
        rng = get_generator()
        self.W = Parameter(rng.uniform(-bound, bound, (in_features, out_features)), dtype=dtype)
        self.b = Parameter(rng.uniform(-bound, bound, out_features), dtype=dtype) if bias else None
        self.warned_dtype = False  # a float64 Tensor into float32 weights is reported once per layer

    def forward(self, x: Tensor) -> Tensor:
        """Return x W + b for x of shape (..., in_features).

        An array input takes the layer's dtype. A Tensor keeps its own: a
        float64 Tensor into float32 weights computes in float64 (slower, and
        the gradients are cast back), which the layer reports once, with a
        UserWarning that says how to avoid it.
        """
        if not isinstance(x, Tensor):
            x = Tensor(x, dtype=self.W.dtype)  # an array input takes the layer's dtype
        elif x.data.dtype is not self.W.data.dtype and x.dtype == np.float64 and self.W.dtype == np.float32 \
                and not self.warned_dtype:
            self.warned_dtype = True
            warnings.warn(
                f"Linear({self.in_features}, {self.out_features}): the input is a float64 Tensor but the layer's "
                "weights are float32, so it computes in float64, which is slower. Pass float32 data "
                "(mg.Tensor(X, dtype=np.float32), or the numpy array itself, which the layer casts), or build "
                "the model with dtype=np.float64. (Shown once per layer.)",
                UserWarning,
                stacklevel=_user_stacklevel(),  # the user's line, however many layers call this one
            )
        return ops.Linear.apply(x, self.W, self.b)  # checks the input's width, naming both shapes

    def extra_repr(self) -> str:
        """The layer's sizes and whether it has a bias."""
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.b is not None}"


class ReLU(Module):
    """relu(x) = max(x, 0)."""

    def forward(self, x: Tensor) -> Tensor:
        """Apply relu elementwise."""
        return as_tensor(x).relu()


class Tanh(Module):
    """tanh(x)."""

    def forward(self, x: Tensor) -> Tensor:
        """Apply tanh elementwise."""
        return as_tensor(x).tanh()


class Sigmoid(Module):
    """σ(x) = 1 / (1 + e^-x)."""

    def forward(self, x: Tensor) -> Tensor:
        """Apply the sigmoid elementwise."""
        return as_tensor(x).sigmoid()


class LeakyReLU(Module):
    """leaky_relu(x) = x for x > 0, negative_slope·x otherwise (PyTorch's default slope 0.01).

    Written as where(x > 0, x, slope·x), so the derivative is 1 for x > 0 and
    the slope for x <= 0 (at 0 too, as in PyTorch).
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = check_real("LeakyReLU", "negative_slope", negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        """Apply leaky relu elementwise."""
        x = as_tensor(x)
        return where(x > 0, x, x * self.negative_slope)

    def extra_repr(self) -> str:
        """The slope for negative inputs."""
        return f"negative_slope={self.negative_slope}"


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_erf = np.frompyfunc(math.erf, 1, 1)  # Python's erf, elementwise (numpy has none)


class GELU(Module):
    """gelu(x) = x·Φ(x), Φ the standard normal CDF; ``approximate="tanh"`` uses PyTorch's tanh form.

    Exact: gelu(x) = x·Φ(x) with Φ(x) = ½(1 + erf(x/√2)) as one node
    (:class:`NormalCDF`, whose derivative is φ(x) = e^(-x²/2)/√(2π)), so
    d gelu/dx = Φ(x) + x·φ(x) by the product rule. numpy has no erf, so Φ
    applies Python's ``math.erf`` element by element: exact, but slower than
    the tanh form, ½x(1 + tanh(√(2/π)(x + 0.044715x³))), which is built from
    Tensor ops.
    """

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        """Apply gelu elementwise."""
        x = as_tensor(x)
        if self.approximate == "tanh":
            return 0.5 * x * (1 + (_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh())
        return x * NormalCDF.apply(x)

    def extra_repr(self) -> str:
        """Which form of gelu."""
        return f"approximate={self.approximate!r}"


class NormalCDF(Function):
    """Φ(x) = ½(1 + erf(x/√2)), the standard normal CDF. dΦ/dx = φ(x) = e^(-x²/2)/√(2π)."""

    name = "normal_cdf"

    @staticmethod
    def forward(ctx: Any, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return (0.5 * (1 + np.asarray(_erf(x / math.sqrt(2)), dtype=np.float64))).astype(x.dtype)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (x,) = ctx.saved_tensors
        return g * exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))  # ops.exp: an array or a Tensor


class Softmax(Module):
    """softmax(x)_i = e^(x_i) / Σ_j e^(x_j) along ``dim`` (default the last axis)."""

    def __init__(self, dim: int = -1) -> None:
        self.dim = check_int("Softmax", "dim", dim)

    def forward(self, x: Tensor) -> Tensor:
        """Apply softmax along ``dim``."""
        return as_tensor(x).softmax(axis=self.dim)

    def extra_repr(self) -> str:
        """The axis softmax normalizes over."""
        return f"dim={self.dim}"


class Identity(Module):
    """Return the input unchanged: a placeholder where a layer is optional."""

    def forward(self, x: Tensor) -> Tensor:
        """Return x itself (an array becomes a Tensor, as every layer takes arrays)."""
        return as_tensor(x)


class Flatten(Module):
    """Merge axes ``start_dim`` to ``end_dim`` into one (PyTorch's defaults: all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim = check_int("Flatten", "start_dim", start_dim)
        self.end_dim = check_int("Flatten", "end_dim", end_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Reshape x so that axes start_dim..end_dim become one axis of their product's length."""
        x = as_tensor(x)
        n = max(x.ndim, 1)  # as in PyTorch, a 0-d tensor flattens as if it had one axis
        start, end = self.start_dim, self.end_dim
        if not (-n <= start < n and -n <= end < n) or start % n > end % n:
            raise ValueError(
                f"Flatten: start_dim={start}, end_dim={end} do not pick a range of axes of a tensor of shape "
                f"{x.shape}; need -{n} <= start_dim <= end_dim < {n} once negative axes count from the end"
            )
        start, end = start % n, end % n
        shape = x.shape if x.ndim else (1,)
        return x.reshape(shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :])

    def extra_repr(self) -> str:
        """The first and last axis merged."""
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability p and scale the rest by 1/(1-p).

    The kept elements are scaled so that the expected output equals the input,
    so in ``eval()`` the layer is the identity. The mask is drawn from the
    generator ``mg.manual_seed`` seeds (``mg.get_generator()``); the gradient
    flows through the same mask (dx = mask·g / (1-p)).
    """

    def __init__(self, p: float = 0.5) -> None:
        p = check_real("Dropout", "p", p)
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p is a probability, so it must lie in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """x·mask/(1-p) in training, with mask ~ Bernoulli(1-p); x itself in eval."""
        x = as_tensor(x)
        if not self.training or self.p == 0:
            return x
        keep = get_generator().random(x.shape) >= self.p  # True with probability 1 - p
        scale = 0.0 if self.p == 1 else 1 / (1 - self.p)
        return x * Tensor((keep * scale).astype(x.dtype))

    def extra_repr(self) -> str:
        """The drop probability."""
        return f"p={self.p}"


class Sequential(Module):
    """Apply modules one after another: ``Sequential(a, b)(x) == b(a(x))``."""

    def __init__(self, *modules: Module) -> None:
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: item {i} is a {type(m).__name__}, not a Module")
        self.layers = list(modules)

    def forward(self, x: Tensor) -> Tensor:
        """Feed x through every module in order."""
        for layer in self.layers:
            x = layer.forward(x)  # forward directly: Module.__call__ only adds a call
        return x

    @overload
    def __getitem__(self, i: int) -> Module: ...
    @overload
    def __getitem__(self, i: slice) -> Sequential: ...

    def __getitem__(self, i: int | slice) -> Module:
        """The i-th module; a slice is a Sequential of those modules (the same objects), as in PyTorch."""
        if isinstance(i, slice):
            return Sequential(*self.layers[i])
        return self.layers[i]

    def __len__(self) -> int:
        """The number of modules."""
        return len(self.layers)


_ACTIVATIONS: dict[str, type[Module]] = {
    "relu": ReLU,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "leaky_relu": LeakyReLU,
    "gelu": GELU,
}
_NORMS = ("batch", "layer")


class MLP(Sequential):
    """A multilayer perceptron: Linear layers with an activation between them.

    ``MLP([64, 64, 10])`` is Linear(64, 64), ReLU, Linear(64, 10); nothing
    follows the last layer, so it outputs logits. Each hidden layer is
    Linear, then the norm (if any), the activation, then Dropout (if any), as
    in torchvision's MLP:

    - ``activation``: "relu", "tanh", "sigmoid", "leaky_relu" or "gelu";
    - ``dropout``: the probability p of a Dropout after each activation (0: none);
    - ``norm``: None, "batch" (BatchNorm1d) or "layer" (LayerNorm) after each hidden Linear.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        dtype: Any = np.float32,
        *,
        dropout: float = 0.0,
        norm: str | None = None,
    ) -> None:
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs at least an input and an output size, got {sizes}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"MLP: unknown activation {activation!r}; choose one of {sorted(_ACTIVATIONS)}")
        if norm is not None and norm not in _NORMS:
            raise ValueError(f"MLP: unknown norm {norm!r}; choose None, 'batch' or 'layer'")
        Dropout(dropout)  # checks p, naming Dropout in the message
        modules: list[Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            modules.append(Linear(n_in, n_out, dtype=dtype))
            if i == len(sizes) - 2:
                break  # nothing after the last layer: it gives the logits
            if norm == "batch":
                modules.append(BatchNorm1d(n_out, dtype=dtype))
            elif norm == "layer":
                modules.append(LayerNorm(n_out, dtype=dtype))
            modules.append(_ACTIVATIONS[activation]())
            if dropout > 0:
                modules.append(Dropout(dropout))
        super().__init__(*modules)
        self.sizes = sizes
