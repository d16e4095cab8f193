"""Initializers: fill a parameter's array in place, as ``torch.nn.init`` does.

Each function overwrites ``tensor.data`` (keeping its dtype) and returns the
tensor, drawing from the generator ``mg.manual_seed`` seeds unless it is given
another ``generator``.

**Fans.** A weight here is ``W`` of shape (in_features, out_features), the
transpose of PyTorch's (out_features, in_features), so

    fan_in = W.shape[0]    (the inputs each output sums over)
    fan_out = W.shape[1]

which are the numbers PyTorch computes for the same layer: ``kaiming_*`` and
``xavier_*`` give a ``Linear(in, out)`` the spread PyTorch gives
``torch.nn.Linear(in, out)``. Fans are defined for 2-D weights only.

**Gains** (:func:`calculate_gain`) are PyTorch's: 1 for linear and sigmoid,
5/3 for tanh, √2 for relu, √(2 / (1 + a²)) for leaky_relu with slope a
(default 0.01), 3/4 for selu. ``Linear``'s own default, U(±1/√fan_in), is
``kaiming_uniform_(W, a=math.sqrt(5))``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigrad.engine import Tensor, get_generator
from minigrad.nn._checks import check_real

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "zeros_",
    "ones_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
]

_GAINS = {"linear": 1.0, "identity": 1.0, "sigmoid": 1.0, "tanh": 5 / 3, "relu": math.sqrt(2), "selu": 3 / 4}


def _check_tensor(op: str, tensor: Any) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op}: expected a Tensor or Parameter to fill in place, got {type(tensor).__name__}")
    return tensor


def _rng(generator: np.random.Generator | None) -> np.random.Generator:
    return get_generator() if generator is None else generator


def _fill(tensor: Tensor, values: np.ndarray) -> Tensor:
    tensor.data[...] = values  # in place: an optimizer holding this parameter sees the new values
    tensor.bump_version()  # and a graph that saved the old values refuses to backpropagate through them
    return tensor


def _fans(op: str, tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight W of shape (in_features, out_features)."""
    if tensor.ndim != 2:
        raise ValueError(
            f"{op}: fan_in and fan_out are defined for a 2-D weight W of shape (in_features, out_features), "
            f"got shape {tensor.shape}; use uniform_ or normal_ for other shapes"
        )
    fan_in, fan_out = tensor.shape
    if fan_in == 0 or fan_out == 0:
        raise ValueError(f"{op}: a weight of shape {tensor.shape} has a fan of 0; there is nothing to scale by")
    return fan_in, fan_out


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's recommended gain for a nonlinearity (√2 for relu, 5/3 for tanh, ...)."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else check_real("calculate_gain", "param", param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity not in _GAINS:
        raise ValueError(
            f"calculate_gain: unknown nonlinearity {nonlinearity!r}; choose one of {sorted([*_GAINS, 'leaky_relu'])}"
        )
    return _GAINS[nonlinearity]


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Fill ``tensor`` with draws from U(a, b)."""
    _check_tensor("uniform_", tensor)
    a, b = check_real("uniform_", "a", a), check_real("uniform_", "b", b)
    if a > b:
        raise ValueError(f"uniform_: need a <= b, got a={a}, b={b}")
    return _fill(tensor, _rng(generator).uniform(a, b, tensor.shape))


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: np.random.Generator | None = None
) -> Tensor:
    """Fill ``tensor`` with draws from N(mean, std²)."""
    _check_tensor("normal_", tensor)
    mean, std = check_real("normal_", "mean", mean), check_real("normal_", "std", std)
    if std < 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    return _fill(tensor, _rng(generator).normal(mean, std, tensor.shape))


def zeros_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with 0."""
    return _fill(_check_tensor("zeros_", tensor), np.zeros(()))


def ones_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with 1."""
    return _fill(_check_tensor("ones_", tensor), np.ones(()))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Glorot: U(-a, a) with a = gain·√(6 / (fan_in + fan_out)), so Var = gain²·2 / (fan_in + fan_out)."""
    fan_in, fan_out = _fans("xavier_uniform_", _check_tensor("xavier_uniform_", tensor))
    a = check_real("xavier_uniform_", "gain", gain) * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(tensor, _rng(generator).uniform(-a, a, tensor.shape))


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Glorot: N(0, std²) with std = gain·√(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans("xavier_normal_", _check_tensor("xavier_normal_", tensor))
    std = check_real("xavier_normal_", "gain", gain) * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, _rng(generator).normal(0.0, std, tensor.shape))


def _kaiming_std(op: str, tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    """gain / √fan, the standard deviation He et al. prescribe."""
    fan_in, fan_out = _fans(op, _check_tensor(op, tensor))
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{op}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, check_real(op, "a", a)) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Tensor:
    """He: U(-bound, bound) with bound = gain·√(3 / fan), so std = gain / √fan; ``a`` is leaky_relu's slope."""
    bound = math.sqrt(3.0) * _kaiming_std("kaiming_uniform_", tensor, a, mode, nonlinearity)
    return _fill(tensor, _rng(generator).uniform(-bound, bound, tensor.shape))


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Tensor:
    """He: N(0, std²) with std = gain / √fan; ``a`` is leaky_relu's slope."""
    std = _kaiming_std("kaiming_normal_", tensor, a, mode, nonlinearity)
    return _fill(tensor, _rng(generator).normal(0.0, std, tensor.shape))
