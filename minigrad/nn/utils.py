"""Gradient clipping, PyTorch's ``torch.nn.utils`` pair: call either between ``backward()`` and ``step()``.

Both change only ``.grad`` (each parameter gets a new array; the old one is
not written to, since an array may be shared), so they work with every
optimizer.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from minigrad import engine
from minigrad.engine import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _parameters(parameters: Any, name: str) -> Tensor | list[Tensor]:
    """``parameters`` as a Tensor or a list (a generator can be read once; mg.compile's replays read it again)."""
    if isinstance(parameters, Tensor):
        return parameters
    if callable(parameters) and getattr(parameters, "__name__", "") in ("parameters", "named_parameters"):
        raise TypeError(f"{name}: got the method {parameters.__name__} itself; call it: model.parameters()")
    if not isinstance(parameters, Iterable):
        hint = "; pass model.parameters()" if hasattr(parameters, "parameters") else ""
        raise TypeError(f"{name}: expected a Tensor or an iterable of Tensors, got a {type(parameters).__name__}{hint}")
    return list(parameters)


def _limit(value: Any, what: str, name: str) -> float:
    """A limit: a number >= 0, float('inf') included (no limit: the gradients are read, not changed)."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: {what} must be a number >= 0 (float('inf') for no limit), got {value!r}")
    if not float(value) >= 0:  # (NaN too)
        raise ValueError(f"{name}: {what} must be a number >= 0 (float('inf') for no limit), got {value!r}")
    return float(value)


def _with_grads(parameters: Tensor | list[Tensor], name: str) -> list[tuple[Tensor, np.ndarray]]:
    """(parameter, gradient) for each of ``parameters`` (a Tensor or a list of them) that has a gradient."""
    params = [parameters] if isinstance(parameters, Tensor) else parameters
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            hint = " (a (name, parameter) pair: pass model.parameters())" if isinstance(p, tuple) else ""
            raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, not a Tensor{hint}")
        if p.grad is not None and not isinstance(p.grad, np.ndarray):
            raise TypeError(
                f"{name}: parameter {i}'s .grad is a {type(p.grad).__name__}, not a numpy array; "
                "set it to an array of the parameter's shape or to None"
            )
    return [(p, p.grad) for p in params if p.grad is not None]


def _float(g: np.ndarray, p: Tensor) -> np.dtype:
    """The dtype a changed gradient takes: its own if floating, else its parameter's (an integer .grad set by hand)."""
    return g.dtype if g.dtype.kind == "f" else p.data.dtype


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients together so that their joint norm is at most ``max_norm``; return the norm before.

    The joint norm is the ``norm_type``-norm of all gradient entries as one
    vector (``float('inf')``: the largest absolute entry). Every gradient
    is multiplied by the same factor ``max_norm / (norm + 1e-6)`` whenever
    that factor is below 1 (PyTorch's rule: a norm above ``max_norm - 1e-6``,
    so one equal to ``max_norm`` is scaled by a hair), and the direction is
    kept; otherwise the gradients are left as they are (``max_norm=float('inf')``
    reads the norm and, while it is finite, changes nothing). Parameters without a
    gradient are skipped (none at all: the norm is 0). A NaN or infinite
    norm is a RuntimeError with ``error_if_nonfinite``; without it the
    gradients are scaled by the non-finite factor, as in PyTorch.
    """
    max_norm = _limit(max_norm, "max_norm", "clip_grad_norm_")
    if not isinstance(norm_type, numbers.Real) or isinstance(norm_type, (bool, np.bool_)) or not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be a number > 0 or float('inf'), got {norm_type!r}")
    norm_type = float(norm_type)
    parameters = _parameters(parameters, "clip_grad_norm_")
    if engine._tape is not None:  # mg.compile is recording a step: replay this call too
        engine._tape.on_call(functools.partial(clip_grad_norm_, parameters, max_norm, norm_type, error_if_nonfinite))
    pairs = _with_grads(parameters, "clip_grad_norm_")
    norms = [np.linalg.norm(np.ravel(g).astype(np.float64), ord=norm_type) for _, g in pairs]
    # The norm of the norms: the joint norm, in float64 (0 when no parameter has a gradient).
    total = float(np.linalg.norm(np.array(norms), ord=norm_type)) if pairs else 0.0
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}, so it cannot be "
            "clipped; pass error_if_nonfinite=False to scale the gradients by it anyway"
        )
    coef = max_norm / (total + 1e-6)
    if coef < 1 or math.isnan(coef):
        for p, g in pairs:
            # A new array (.grad may be shared); asarray: numpy gives a 0-d gradient back as a scalar.
            p.grad = np.asarray(g * np.asarray(coef, dtype=_float(g, p)))
    if engine._tape is not None:
        engine._tape.on_call_end()
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clip every gradient entry into [-clip_value, clip_value]."""
    clip_value = _limit(clip_value, "clip_value", "clip_grad_value_")
    parameters = _parameters(parameters, "clip_grad_value_")
    if engine._tape is not None:  # mg.compile is recording a step: replay this call too
        engine._tape.on_call(functools.partial(clip_grad_value_, parameters, clip_value))
    for p, g in _with_grads(parameters, "clip_grad_value_"):
        p.grad = np.asarray(np.clip(g.astype(_float(g, p), copy=False), -clip_value, clip_value))  # (0-d: an array)
    if engine._tape is not None:
        engine._tape.on_call_end()
