"""Layers: Linear, the activations, Sequential and MLP.

:class:`Linear` computes ``out = x W + b``; after ``loss.backward()``,
``layer.W.grad`` is dW = xᵀ·dout and ``layer.b.grad`` is db = Σ_rows dout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad.engine import Tensor, get_generator, linear
from minigrad.nn.module import Module, Parameter

__all__ = ["Linear", "ReLU", "Tanh", "Sigmoid", "Sequential", "MLP"]


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

    def forward(self, x: Tensor) -> Tensor:
        """Return x W + b for x of shape (..., in_features)."""
        if not isinstance(x, Tensor):
            x = Tensor(x, dtype=self.W.dtype)  # an array input takes the layer's dtype
        return linear(x, self.W, self.b)  # checks the input's width, naming both shapes

    def extra_repr(self) -> str:
        """The layer's sizes and whether it has a bias."""
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.b is not None}"


class ReLU(Module):
    """relu(x) = max(x, 0)."""

    def forward(self, x: Tensor) -> Tensor:
        """Apply relu elementwise."""
        return x.relu()


class Tanh(Module):
    """tanh(x)."""

    def forward(self, x: Tensor) -> Tensor:
        """Apply tanh elementwise."""
        return x.tanh()


class Sigmoid(Module):
    """σ(x) = 1 / (1 + e^-x)."""

    def forward(self, x: Tensor) -> Tensor:
        """Apply the sigmoid elementwise."""
        return x.sigmoid()


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

    def __getitem__(self, i: int) -> Module:
        """The i-th module."""
        return self.layers[i]

    def __len__(self) -> int:
        """The number of modules."""
        return len(self.layers)


_ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}


class MLP(Sequential):
    """A multilayer perceptron: Linear layers with an activation between them.

    ``MLP([64, 64, 10])`` is Linear(64, 64), ReLU, Linear(64, 10); nothing
    follows the last layer, so it outputs logits. ``activation`` is "relu",
    "tanh" or "sigmoid".
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu", dtype: Any = np.float32) -> None:
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs at least an input and an output size, got {sizes}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"MLP: unknown activation {activation!r}; choose one of {sorted(_ACTIVATIONS)}")
        modules: list[Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i > 0:
                modules.append(_ACTIVATIONS[activation]())
            modules.append(Linear(n_in, n_out, dtype=dtype))
        super().__init__(*modules)
        self.sizes = sizes
