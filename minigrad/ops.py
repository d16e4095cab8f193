"""Every op of the engine, one :class:`~minigrad.engine.Function` each.

Each op computes its output in ``forward`` from the inputs' arrays and gives,
right below, the ``backward`` that maps ``g = dL/d(out)`` to the inputs'
gradients, with the derivative it implements in its docstring. Broadcasting is
undone in one place, :func:`sum_to` (the adjoint of broadcasting is a sum).

Backward rules are written once, for arrays and Tensors alike (see the
engine's docstring): they use operators and methods that both have, and the
two-way functions in the first section below, which call numpy on an array
and the matching op on a Tensor. That is what makes every gradient here
differentiable again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minigrad import engine as _engine
from minigrad.engine import (
    ArrayLike,
    Axis,
    Function,
    Tensor,
    _is_int,
    _memory_owner,
    check_flag,
    normalize_axes,
    stable_sigmoid,
    unbroadcast,
)

__all__ = [
    "value",
    "sum_to",
    "broadcast_to",
    "exp",
    "log",
    "sqrt",
    "sin",
    "cos",
    "sigmoid",
    "cast",
    "where",
    "maximum",
    "minimum",
    "concatenate",
    "stack",
    "linear",
]

# ---------------------------------------------------------------------------
# Two-way functions: numpy on an array, the op on a Tensor
# ---------------------------------------------------------------------------


def value(x: Any) -> Any:
    """The array inside a Tensor (anything else as it is): for masks and signs, which carry no gradient."""
    return x.data if isinstance(x, Tensor) else x


def sum_to(x: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``x`` down to ``shape`` (the adjoint of broadcasting): an array or a Tensor."""
    if x.shape == shape:
        return x
    return SumTo.apply(x, shape) if isinstance(x, Tensor) else unbroadcast(x, shape)


def broadcast_to(x: Any, shape: tuple[int, ...]) -> Any:
    """Broadcast ``x`` to ``shape``: an array (a read-only view) or a Tensor."""
    if isinstance(x, Tensor):
        if x.shape == shape:
            return x
        return BroadcastTo.apply(x, tuple(shape))
    return np.broadcast_to(x, shape)


def exp(x: Any) -> Any:
    """e^x of an array or a Tensor."""
    return Exp.apply(x) if isinstance(x, Tensor) else np.exp(x)


def log(x: Any) -> Any:
    """ln x of an array or a Tensor."""
    return Log.apply(x) if isinstance(x, Tensor) else np.log(x)


def sqrt(x: Any) -> Any:
    """√x of an array or a Tensor."""
    return Sqrt.apply(x) if isinstance(x, Tensor) else np.sqrt(x)


def sin(x: Any) -> Any:
    """sin x of an array or a Tensor."""
    return Sin.apply(x) if isinstance(x, Tensor) else np.sin(x)


def cos(x: Any) -> Any:
    """cos x of an array or a Tensor."""
    return Cos.apply(x) if isinstance(x, Tensor) else np.cos(x)


def sigmoid(x: Any) -> Any:
    """σ(x) of an array or a Tensor."""
    return Sigmoid.apply(x) if isinstance(x, Tensor) else stable_sigmoid(x)


# Speed device: one 0-d zero per dtype, made once. np.maximum(a, 0) must first turn the Python 0
# into an array of a's dtype on every call; a ready zero of that dtype skips that work.
_ZERO: dict[np.dtype, np.ndarray] = {}


def zero_of(dtype: np.dtype) -> np.ndarray:
    """A 0-d zero of ``dtype`` (shared: never write into it)."""
    zero = _ZERO.get(dtype)
    if zero is None:
        zero = _ZERO[dtype] = np.zeros((), dtype=dtype)
        zero.flags.writeable = False
    return zero


def cast(x: Any, dtype: Any) -> Any:
    """``x`` as another floating dtype: an array (``astype``) or a Tensor (the Cast op, so it stays differentiable)."""
    return Cast.apply(x, np.dtype(dtype)) if isinstance(x, Tensor) else x.astype(dtype)


def _zeros_like(x: Any) -> Any:
    return Tensor(np.zeros_like(x.data)) if isinstance(x, Tensor) else np.zeros_like(x)


def _expand(g: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    """Put back the axes a reduction removed, so ``g`` broadcasts to the input."""
    if keepdims or not axes:
        return g
    shape = list(g.shape)
    for a in axes:  # axes are sorted, so each insert lands where the axis was
        shape.insert(a, 1)
    return g.reshape(tuple(shape))


def _not_broadcast(op: str, *shapes: tuple[int, ...]) -> ValueError:
    """The error for ``shapes`` that do not broadcast together in ``op``, with the rule and what to do."""
    return ValueError(
        f"{op}: shapes {', '.join(map(str, shapes[:-1]))} and {shapes[-1]} cannot be broadcast together (dimensions "
        "are matched from the last one, and each pair must be equal or contain a 1; reshape an operand, e.g. "
        "b.reshape(-1, 1), to line them up)"
    )


def _binary(op: str, fn: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        return fn(a, b)
    except ValueError:
        raise _not_broadcast(op, a.shape, b.shape) from None
    except TypeError as e:  # numpy refuses the dtypes (mask - mask); say which op, and what to write instead
        if op == "sub" and np.asarray(a).dtype.kind == np.asarray(b).dtype.kind == "b":
            raise TypeError("sub: two masks (bool tensors) have no difference; mask ^ other is where they differ, "
                            "and 1.0 * mask - other gives numbers") from None
        raise TypeError(f"{op}: {e}") from None


# ---------------------------------------------------------------------------
# Arithmetic (binary ops broadcast; sum_to undoes it)
# ---------------------------------------------------------------------------


class Add(Function):
    """a + b. d(a+b)/da = d(a+b)/db = 1."""

    name = "add"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.shapes = a.shape, b.shape
        try:
            return a + b
        except ValueError:
            raise _not_broadcast("add", a.shape, b.shape) from None

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        need_a, need_b = ctx.needs_input_grad
        shape_a, shape_b = ctx.shapes
        return (sum_to(g, shape_a) if need_a else None, sum_to(g, shape_b) if need_b else None)


class Sub(Function):
    """a - b. d(a-b)/da = 1, d(a-b)/db = -1."""

    name = "sub"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.shapes = a.shape, b.shape
        return _binary("sub", np.subtract, a, b)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        need_a, need_b = ctx.needs_input_grad
        shape_a, shape_b = ctx.shapes
        return (sum_to(g, shape_a) if need_a else None, sum_to(-g, shape_b) if need_b else None)


class Mul(Function):
    """a * b, elementwise. d(ab)/da = b, d(ab)/db = a."""

    name = "mul"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        try:
            return a * b
        except ValueError:
            raise _not_broadcast("mul", a.shape, b.shape) from None

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return (sum_to(g * b, a.shape) if need_a else None, sum_to(g * a, b.shape) if need_b else None)


class Div(Function):
    """a / b, elementwise. d(a/b)/da = 1/b, d(a/b)/db = -a/b² = -(a/b)/b."""

    name = "div"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = _binary("div", np.true_divide, a, b)
        ctx.save_for_backward(b, out)
        ctx.shape_a = a.shape
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        b, out = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return (
            sum_to(g / b, ctx.shape_a) if need_a else None,
            sum_to(-g * out / b, b.shape) if need_b else None,
        )


class PowScalar(Function):
    """a ** p for a number p. d(a^p)/da = p·a^(p-1) (0 when p = 0, even at a = 0)."""

    name = "pow"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, p: float) -> np.ndarray:
        ctx.save_for_backward(a)
        ctx.p = p
        return a**p

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        (a,) = ctx.saved_tensors
        p = ctx.p
        if p == 0:
            return _zeros_like(a), None
        return g * p * a ** (p - 1), None


class Pow(Function):
    """a ** b for a tensor exponent b. d(a^b)/da = b·a^(b-1), d(a^b)/db = a^b·ln a.

    At a = 0 the derivative in b is taken as 0 for b >= 0 (0^b is flat
    there), and the derivative in a as 0 where b = 0 (a^0 = 1), as PyTorch and
    HIPS autograd do; a negative base gives NaN for the derivative in b.
    """

    name = "pow"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = _binary("pow", np.power, a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        a, b, out = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        da = db = None
        if need_a:
            da = sum_to(where(value(b) == 0, 0.0, g * b * a ** (b - 1)), a.shape)
        if need_b:
            flat = (value(a) == 0) & (value(b) >= 0)  # ln 0 is never taken: 0^b is flat in b there
            db = sum_to(g * out * log(where(flat, 1.0, a)), b.shape)
        return da, db


class Neg(Function):
    """-a. d(-a)/da = -1."""

    name = "neg"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray) -> np.ndarray:
        if a.dtype.kind == "b":
            raise TypeError("neg: a mask (bool tensor) has no negative; its complement is ~mask, and -1.0 * mask "
                            "gives numbers")
        return -a

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return -g


class MatMul(Function):
    """a @ b with numpy's matmul rules (1-D, 2-D, batched). dA = g·Bᵀ, dB = Aᵀ·g."""

    name = "matmul"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: operands must be at least 1-D, got shapes {a.shape} and {b.shape}")
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.shape[-1] != k_b:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned")
        ctx.save_for_backward(a, b)
        try:
            return a @ b
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions of shapes {a.shape} and {b.shape} cannot be broadcast"
            ) from None

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        a, b = ctx.saved_tensors
        # Treat a 1-D operand as a row (a) or a column (b), as numpy does.
        A = a.reshape((1, a.shape[0])) if a.ndim == 1 else a
        B = b.reshape((b.shape[0], 1)) if b.ndim == 1 else b
        if a.ndim == 1 and b.ndim == 1:  # a dot product: g is a scalar
            G = g.reshape((1, 1))
        elif a.ndim == 1:
            G = g.reshape(g.shape[:-1] + (1, g.shape[-1]))
        elif b.ndim == 1:
            G = g.reshape(g.shape + (1,))
        else:
            G = g
        need_a, need_b = ctx.needs_input_grad
        da = sum_to(G @ B.swapaxes(-1, -2), A.shape).reshape(a.shape) if need_a else None
        db = sum_to(A.swapaxes(-1, -2) @ G, B.shape).reshape(b.shape) if need_b else None
        return da, db


class Cast(Function):
    """a as another floating dtype. The gradient is cast back."""

    name = "cast"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, dtype: np.dtype) -> np.ndarray:
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        return cast(g, ctx.dtype), None


# ---------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------


class Sum(Function):
    """Σ a over axes. d(Σ a)/da_i = 1: every input gets the output's gradient."""

    name = "sum"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        ctx.shape, ctx.axes, ctx.keepdims = a.shape, axes, keepdims
        return a.sum(axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None]:
        return broadcast_to(_expand(g, ctx.axes, ctx.keepdims), ctx.shape), None, None


class Mean(Function):
    """Mean of a over axes. d(mean a)/da_i = 1/n."""

    name = "mean"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        a = _real(a)  # (a mask's values as numbers)
        ctx.shape, ctx.axes, ctx.keepdims = a.shape, axes, keepdims
        ctx.count = int(np.prod([a.shape[i] for i in axes]))
        return a.mean(axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None]:
        expanded = _expand(g, ctx.axes, ctx.keepdims)
        return broadcast_to(expanded / ctx.count, ctx.shape), None, None


class Max(Function):
    """Max (or min) of a over axes. d(max a)/da_i = 1 where a_i is the max, split equally among ties."""

    name = "max"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, axes: tuple[int, ...], keepdims: bool, which: str) -> np.ndarray:
        if any(a.shape[i] == 0 for i in axes):
            raise ValueError(
                f"{which}: cannot take the {which} over an axis of length 0 (shape {a.shape}, axes {axes}): "
                "there is no element to pick"
            )
        top = a.max(axis=axes, keepdims=True) if which == "max" else a.min(axis=axes, keepdims=True)
        ctx.save_for_backward(a)
        ctx.top, ctx.axes, ctx.keepdims = top, axes, keepdims
        return top if keepdims else np.squeeze(top, axis=axes)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None, None]:
        (a,) = ctx.saved_tensors
        hit = value(a) == ctx.top  # a constant: which elements are the max
        if ctx.top.dtype.kind == "f" and np.isnan(ctx.top).any():  # NaN: its NaN elements share it (torch.max())
            hit |= np.isnan(value(a)) & np.isnan(ctx.top)
        share = hit.astype(a.dtype)
        share /= share.sum(axis=ctx.axes, keepdims=True)
        return share * _expand(g, ctx.axes, ctx.keepdims), None, None, None


class LogSumExp(Function):
    """log Σ exp(a) over axes, computed as m + log Σ exp(a - m). d/da_i = exp(a_i - out): the softmax."""

    name = "logsumexp"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        a = _real(a)  # (a mask's values as numbers)
        if any(a.shape[i] == 0 for i in axes):  # log of an empty sum, log 0 (PyTorch's -inf)
            out = np.full([1 if i in axes else n for i, n in enumerate(a.shape)], -np.inf, dtype=a.dtype)
        else:
            m = a.max(axis=axes, keepdims=True)
            m = np.where(np.isfinite(m), m, 0)  # rows of -inf stay -inf, not NaN
            with np.errstate(divide="ignore"):  # a row of -inf sums to 0, and log 0 = -inf is its answer
                out = np.log(np.exp(a - m).sum(axis=axes, keepdims=True)) + m
        if not keepdims:
            out = np.squeeze(out, axis=axes)
        ctx.save_for_backward(a, out)
        ctx.axes, ctx.keepdims = axes, keepdims
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None]:
        a, out = ctx.saved_tensors
        expand = _expand(out, ctx.axes, ctx.keepdims)
        return _expand(g, ctx.axes, ctx.keepdims) * exp(a - expand), None, None


def variance(a: Tensor, axis: Axis, keepdims: bool, correction: int, op: str) -> Tensor:
    """Σ(a - mean)² / (n - correction) over ``axis``, built from ops (so it is differentiable twice)."""
    axes = normalize_axes(axis, a.ndim, op)
    keepdims = check_flag(op, "keepdims", keepdims)
    if not isinstance(correction, (int, np.integer)) or isinstance(correction, bool) or correction < 0:
        raise ValueError(f"{op}: correction must be a non-negative integer, got {correction!r}")
    n = int(np.prod([a.shape[i] for i in axes]))
    if n - correction <= 0:
        raise ValueError(f"{op}: {n} elements leave no degrees of freedom with correction={correction}")
    d = a - a.mean(axis=axes, keepdims=True)
    return (d * d).sum(axis=axes, keepdims=keepdims) / float(n - correction)


# ---------------------------------------------------------------------------
# Elementwise functions
# ---------------------------------------------------------------------------


def _real(a: np.ndarray) -> np.ndarray:
    """A mask (bool) as float32, the default dtype, for an op with real values (numpy would give float16)."""
    return a.astype(np.float32) if a.dtype.kind == "b" else a


class Exp(Function):
    """e^a. d/da e^a = e^a."""

    name = "exp"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray) -> np.ndarray:
        a = _real(a)  # (a mask's values as numbers)
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (out,) = ctx.saved_tensors
        return g * out


class Expm1(Function):
    """e^a - 1. d/da (e^a - 1) = e^a = out + 1."""

    name = "expm1"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray) -> np.ndarray:
        a = _real(a)  # (a mask's values as numbers)
        out = np.expm1(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (out,) = ctx.saved_tensors
        return g * (out + 1)


class Log(Function):
    """ln a. d/da ln a = 1/a."""

    name = "log"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray) -> np.ndarray:
        a = _real(a)  # (a mask's values as numbers)
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (a,) = ctx.saved_tensors
        return g / a


class Log1p(Function):
    """ln(1 + a). d/da ln(1 + a) = 1/(1 + a)."""

    name = "log1p"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray) -> np.ndarray:
        a = _real(a)  # (a mask's values as numbers)
        ctx.save_for_backward(a)
        return np.log1p(a)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (a,) = ctx.saved_tensors
        return g / (1 + a)


class Sqrt(Function):
    """√a. d/da √a = 1/(2√a)."""

    name = "sqrt"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray) -> np.ndarray:
        a = _real(a)  # (a mask's values as numbers)
        out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (out,) = ctx.saved_tensors
        return g / (2 * out)


class Std(Function):
    """√v of a variance v, for std. d/dv √v = 1/(2√v), and 0 where v = 0, as PyTorch takes it.

    Where every value of a slice is the same, v = 0 and dv/dx = 0 too, so the
    chain rule gives ∞·0; the slice's gradient is 0 (the std cannot fall below
    0, and moving one value raises it equally either way), not NaN.
    """

    name = "std"

    @staticmethod
    def forward(ctx: Any, v: np.ndarray) -> np.ndarray:
        out = np.sqrt(v)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (out,) = ctx.saved_tensors
        positive = value(out) > 0
        return where(positive, g / (2 * where(positive, out, 1.0)), 0.0)  # (no division by 0 where v = 0)


class Abs(Function):
    """|a|. d/da |a| = sign(a) (0 at a = 0, as PyTorch)."""

    name = "abs"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray) -> np.ndarray:
        a = _real(a)  # (a mask's values as numbers)
        ctx.save_for_backward(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (a,) = ctx.saved_tensors
        return g * np.sign(value(a))


class Sin(Function):
    """sin a. d/da sin a = cos a."""

    name = "sin"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray) -> np.ndarray:
        a = _real(a)  # (a mask's values as numbers)
        ctx.save_for_backward(a)
        return np.sin(a)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (a,) = ctx.saved_tensors
        return g * cos(a)


class Cos(Function):
    """cos a. d/da cos a = -sin a."""

    name = "cos"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray) -> np.ndarray:
        a = _real(a)  # (a mask's values as numbers)
        ctx.save_for_backward(a)
        return np.cos(a)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (a,) = ctx.saved_tensors
        return -g * sin(a)


class Tanh(Function):
    """tanh a. d/da tanh a = 1 - tanh² a."""

    name = "tanh"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray) -> np.ndarray:
        a = _real(a)  # (a mask's values as numbers)
        out = np.tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (out,) = ctx.saved_tensors
        return g * (1 - out * out)


class Sigmoid(Function):
    """σ(a) = 1/(1 + e^-a), from e^-|a| so it never overflows (engine.stable_sigmoid). dσ/da = σ·(1 - σ)."""

    name = "sigmoid"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray) -> np.ndarray:
        a = _real(a)  # (a mask's values as numbers)
        out = stable_sigmoid(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (out,) = ctx.saved_tensors
        return g * out * (1 - out)


class ReLU(Function):
    """max(a, 0). d/da relu a = 1 where a > 0, else 0."""

    name = "relu"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a)
        return np.maximum(a, zero_of(a.dtype))  # max(a, 0), with 0 already of a's dtype

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (a,) = ctx.saved_tensors
        x = value(a)
        return g * (x > zero_of(x.dtype))


class Clip(Function):
    """a limited to [low, high]. The gradient is 1 where low <= a <= high, else 0 (PyTorch's clamp)."""

    name = "clip"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
        ctx.save_for_backward(a)
        ctx.low, ctx.high = low, high
        return np.clip(a, low, high)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None]:
        (a,) = ctx.saved_tensors
        x = value(a)
        inside = np.ones(x.shape, dtype=bool)
        if ctx.low is not None:
            inside &= x >= ctx.low
        if ctx.high is not None:
            inside &= x <= ctx.high
        return g * inside, None, None


def clip(a: Tensor, low: float | None = None, high: float | None = None) -> Tensor:
    """Limit ``a`` to [low, high]; either bound may be None (not both)."""
    for name, bound in (("min", low), ("max", high)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float, np.number))):
            raise TypeError(f"clip: {name} must be a number or None, got {bound!r}")
    if low is None and high is None:
        raise ValueError("clip: give min, max or both")
    if low is not None and high is not None and low > high:
        raise ValueError(f"clip: min {low} is larger than max {high}")
    if a.data.dtype.kind == "f":  # the bounds take the tensor's dtype, as every number an op is given does
        low, high = (None if v is None else a.data.dtype.type(v) for v in (low, high))
    return Clip.apply(a, low, high)


class Maximum(Function):
    """Elementwise max(a, b). The gradient goes to the larger input; ties split it in half (PyTorch)."""

    name = "maximum"
    pick = staticmethod(np.maximum)  # the forward
    wins = staticmethod(np.greater)  # where a alone gets the gradient

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return _binary(ctx.name, ctx.pick, a, b)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        a, b = ctx.saved_tensors
        va, vb = value(a), value(b)
        wins = ctx.wins(va, vb)
        share = wins + 0.5 * (va == vb)  # a constant: how much of g goes to a
        need_a, need_b = ctx.needs_input_grad
        return (
            sum_to(g * share.astype(a.dtype), a.shape) if need_a else None,
            sum_to(g * (1 - share).astype(b.dtype), b.shape) if need_b else None,
        )


class Minimum(Maximum):
    """Elementwise min(a, b). The gradient goes to the smaller input; ties split it in half."""

    name = "minimum"
    pick = staticmethod(np.minimum)
    wins = staticmethod(np.less)


def _pair(a: ArrayLike, b: ArrayLike, op: str) -> tuple[Tensor, Tensor]:
    """Two operands as Tensors; a number or array takes the other Tensor's dtype."""
    if isinstance(a, Tensor):
        return a, a._other(b)
    if isinstance(b, Tensor):
        return b._other(a), b
    raise TypeError(f"{op}: at least one operand must be a Tensor, got {type(a).__name__} and {type(b).__name__}")


def maximum(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elementwise maximum of two tensors (or a tensor and a number or array), broadcasting."""
    return Maximum.apply(*_pair(a, b, "maximum"))


def minimum(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elementwise minimum of two tensors (or a tensor and a number or array), broadcasting."""
    return Minimum.apply(*_pair(a, b, "minimum"))


class Where(Function):
    """cond ? a : b, elementwise, broadcasting. The gradient goes to a where cond holds, to b elsewhere."""

    name = "where"

    @staticmethod
    def forward(ctx: Any, cond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.cond, ctx.shapes = cond, (a.shape, b.shape)
        try:
            return np.where(cond, a, b)
        except ValueError:
            raise _not_broadcast("where", cond.shape, a.shape, b.shape) from None

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[None, Any, Any]:
        need_a, need_b = ctx.needs_input_grad[1:]
        shape_a, shape_b = ctx.shapes
        zero = zero_of(g.dtype)
        return (
            None,
            sum_to(where(ctx.cond, g, zero), shape_a) if need_a else None,
            sum_to(where(ctx.cond, zero, g), shape_b) if need_b else None,
        )


def where(cond: Any, a: Any, b: Any) -> Any:
    """Elementwise ``a`` where ``cond`` holds, else ``b`` (numpy's where), differentiable in a and b.

    ``cond`` is a boolean mask (an array, or a Tensor such as ``x > 0``). On
    numpy arrays alone it is ``np.where``; when ``a`` or ``b`` is a Tensor the
    result is a Tensor, numbers and arrays taking the Tensor's dtype.
    """
    c = np.asarray(value(cond))
    if c.dtype != bool:
        raise TypeError(f"where: cond must be a boolean mask, got dtype {c.dtype}; compare first, e.g. x > 0")
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        return np.where(c, a, b)
    a, b = _pair(a, b, "where")
    return Where.apply(Tensor(c), a, b)


_COMPARISONS = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
                "eq": np.equal, "ne": np.not_equal}


def compare(op: str, a: Tensor, other: Any) -> Tensor:
    """a <op> b elementwise as a boolean Tensor (no gradient: a mask for where and indexing).

    A number or array is compared in the tensor's dtype, as arithmetic takes it
    (a float32 ``x == 0.1`` finds the entries equal to float32 0.1, as numpy
    and PyTorch do).
    """
    fn = _COMPARISONS[op]
    if isinstance(other, (int, float, complex)) and not isinstance(other, np.generic):  # (np.float64 is a float)
        # A Python number: numpy compares it in the tensor's dtype (a float32 x == 0.1 with float32 0.1).
        b: Any = other
    elif isinstance(other, (Tensor, np.ndarray, np.generic, list, tuple)):
        b = a._other(np.asarray(other) if isinstance(other, np.generic) else other)  # (in the tensor's dtype)
    else:  # None, an object: numpy's answer (nothing is equal to it), or its refusal, naming the comparison
        try:
            return Tensor(np.asarray(fn(a.data, other)))
        except TypeError as e:
            raise TypeError(f"{op}: cannot compare a Tensor with a {type(other).__name__} ({e})") from None
    try:
        mask = fn(a.data, value(b))
    except ValueError:
        raise _not_broadcast(op, a.shape, np.shape(value(b))) from None
    return _mask_of(mask, fn, a, b)


def _mask_of(mask: np.ndarray, fn: Callable[..., np.ndarray], *inputs: Any) -> Tensor:
    """The mask ``fn(*inputs)`` as a Tensor; mg.compile, when recording, is told how to compute it again."""
    mask = np.asarray(mask)  # (0-d inputs give a numpy bool; told of that, mg.compile saw a new array, a constant)
    if _engine._tape is not None:
        _engine._tape.on_derived(mask, fn, inputs)
    return Tensor(mask)


_LOGICAL = {"and": (np.logical_and, "&"), "or": (np.logical_or, "|"), "xor": (np.logical_xor, "^")}


def _mask(x: Any, op: str, sign: str) -> np.ndarray:
    """``x`` as a boolean array, for the logical operators; anything else is refused, naming the operator."""
    m = np.asarray(value(x))
    if m.dtype != bool:
        raise TypeError(
            f"{op}: {sign} works on boolean masks (comparisons such as x > 0), got dtype {m.dtype}; "
            "compare first, or for numbers use multiplication and addition"
        )
    return m


def logical(op: str, a: Any, b: Any) -> Tensor:
    """a & b, a | b or a ^ b on boolean masks, elementwise and broadcasting: a boolean Tensor (no gradient)."""
    fn, sign = _LOGICAL[op]
    x, y = _mask(a, op, sign), _mask(b, op, sign)
    try:
        mask = fn(x, y)
    except ValueError:
        raise _not_broadcast(op, x.shape, y.shape) from None
    return _mask_of(mask, fn, a, b)


def logical_not(a: Any) -> Tensor:
    """~a on a boolean mask: True where ``a`` is False (no gradient)."""
    return _mask_of(np.logical_not(_mask(a, "not", "~")), np.logical_not, a)


class Softmax(Function):
    """s = exp(a) / Σ exp(a) along an axis, shifted by the max. ds/da = diag(s) - s sᵀ: da = s·(g - Σ g·s)."""

    name = "softmax"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
        a = _real(a)  # (a mask's values as numbers)
        if a.size == 0:  # (no element: an empty result of the same shape, as numpy's formula and PyTorch give)
            ctx.save_for_backward(a)
            ctx.axis = axis
            return a.copy()
        e = np.exp(a - a.max(axis=axis, keepdims=True))
        s = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(s)
        ctx.axis = axis
        return s

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        (s,) = ctx.saved_tensors
        return s * (g - (g * s).sum(axis=ctx.axis, keepdims=True)), None


class LogSoftmax(Function):
    """a - logsumexp(a) along an axis. d(log softmax)/da = I - softmax: da = g - softmax·Σ g."""

    name = "log_softmax"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
        a = _real(a)  # (a mask's values as numbers)
        if a.size == 0:  # (no element: an empty result of the same shape)
            ctx.save_for_backward(a)
            ctx.axis = axis
            return a.copy()
        shifted = a - a.max(axis=axis, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        (out,) = ctx.saved_tensors
        return g - exp(out) * g.sum(axis=ctx.axis, keepdims=True), None


# ---------------------------------------------------------------------------
# Shape
# ---------------------------------------------------------------------------


class _View(Function):
    """An op whose output may share its first input's memory (reshape, transpose, basic indexing).

    Such an output remembers the owner of the memory it shares as its
    ``_base`` (the leaf, or a memory token of an op's output), so that an
    in-place change of that leaf (``optimizer.step()`` on ``W``) is seen by
    the version check of a later op that saved the view (``x @ W.T``), as it
    is for ``W`` itself, and a change made through the view by the owner's.
    Neither a leaf nor a token holds a graph, so the reference keeps nothing
    else alive.
    """

    @classmethod
    def apply(cls, *args: Any) -> Tensor:
        out = super().apply(*args)
        base = args[0]
        if isinstance(base, Tensor) and np.may_share_memory(out.data, base.data):
            out._base = _memory_owner(base)
        return out


class Reshape(_View):
    """Same values, new shape. Reshaping moves no values: the gradient is reshaped back."""

    name = "reshape"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        ctx.shape = a.shape
        try:
            return a.reshape(shape)
        except (ValueError, TypeError):
            raise ValueError(f"reshape: cannot reshape shape {a.shape} into {tuple(shape)}") from None

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        return g.reshape(ctx.shape), None


def permutation(axes: Sequence[int], shape: tuple[int, ...]) -> tuple[int, ...]:
    """Check ``axes`` as a permutation for ``transpose`` (reversed axes when empty)."""
    ndim = len(shape)
    if not axes:
        return tuple(range(ndim))[::-1]
    if all(_is_int(i) and -ndim <= i < ndim for i in axes):
        perm = tuple(int(i) % ndim for i in axes)
        if sorted(perm) == list(range(ndim)):
            return perm
    raise ValueError(f"transpose: axes {tuple(axes)} are not a permutation of a tensor of shape {shape}")


class Transpose(_View):
    """Permute the axes. The adjoint of a permutation is the inverse permutation."""

    name = "transpose"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, perm: tuple[int, ...]) -> np.ndarray:
        ctx.inverse = tuple(int(i) for i in np.argsort(perm))
        return a.transpose(perm)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        return g.transpose(ctx.inverse), None


class BroadcastTo(_View):
    """Repeat a along new or length-1 axes. Its adjoint sums the copies back: sum_to."""

    name = "broadcast_to"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        ctx.shape = a.shape
        try:
            return np.broadcast_to(a, shape)
        except (ValueError, TypeError):
            raise ValueError(f"broadcast_to: shape {a.shape} cannot be broadcast to {tuple(shape)}") from None

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        return sum_to(g, ctx.shape), None


class SumTo(Function):
    """Sum a down to a shape it was broadcast from. Its adjoint broadcasts back: broadcast_to."""

    name = "sum_to"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        ctx.shape = a.shape
        return unbroadcast(a, shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        return broadcast_to(g, ctx.shape), None


def squeeze(a: Tensor, axis: Axis = None) -> Tensor:
    """Remove axes of length 1 (all, or those in ``axis``; PyTorch leaves a longer axis alone, numpy refuses it)."""
    if axis is None:
        shape = tuple(n for n in a.shape if n != 1)
    else:
        axes = normalize_axes(axis, a.ndim, "squeeze")
        bad = [i for i in axes if a.shape[i] != 1]
        if bad:
            raise ValueError(f"squeeze: axis {bad[0]} of shape {a.shape} has length {a.shape[bad[0]]}, not 1")
        shape = tuple(n for i, n in enumerate(a.shape) if i not in axes)
    return Reshape.apply(a, shape)


def _dim(op: str, name: str, dim: Any, low: int, high: int, ndim: int) -> int:
    """Check a dimension argument: an int (not a bool) in [low, high] for a tensor of ``ndim`` axes."""
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be an int, got {dim!r}")
    if not low <= dim <= high:
        raise ValueError(f"{op}: {name} {dim} is out of range for a tensor of {ndim} dimensions")
    return int(dim)


def unsqueeze(a: Tensor, dim: int) -> Tensor:
    """Insert an axis of length 1 at ``dim`` (in -ndim-1 .. ndim)."""
    d = _dim("unsqueeze", "dim", dim, -a.ndim - 1, a.ndim, a.ndim) % (a.ndim + 1)
    return Reshape.apply(a, a.shape[:d] + (1,) + a.shape[d:])


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge axes start_dim..end_dim (inclusive) into one; a 0-d tensor counts as 1-D (PyTorch)."""
    n = max(a.ndim, 1)
    start = _dim("flatten", "start_dim", start_dim, -n, n - 1, a.ndim) % n
    end = _dim("flatten", "end_dim", end_dim, -n, n - 1, a.ndim) % n
    if a.ndim == 0:
        return Reshape.apply(a, (1,))
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {a.shape}")
    merged = int(np.prod(a.shape[start : end + 1]))
    return Reshape.apply(a, a.shape[:start] + (merged,) + a.shape[end + 1 :])


def as_index(index: Any, shape: tuple[int, ...]) -> Any:
    """A Tensor index as an array: a boolean mask stays a mask; float values must be whole numbers."""
    if isinstance(index, tuple):
        return tuple(_tensor_index(i) if isinstance(i, Tensor) else i for i in index)
    return _tensor_index(index) if isinstance(index, Tensor) else index


def _tensor_index(t: Tensor) -> np.ndarray:
    if t.data.dtype == bool:
        return t.data
    if not np.all(t.data == np.round(t.data)):
        raise IndexError(f"getitem: a Tensor index must hold whole numbers, got {t.data.ravel()[:5].tolist()}")
    return t.data.astype(np.intp)


def _is_basic(index: Any) -> bool:
    """True for an index of ints, slices, None and Ellipsis only: it picks each element at most once."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


class GetItem(_View):
    """a[index]. Scatter the gradient back; repeated indices add up (np.add.at)."""

    name = "getitem"

    @staticmethod
    def forward(ctx: Any, a: np.ndarray, index: Any) -> np.ndarray:
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        try:
            return np.asarray(a[index])
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor shape {a.shape})") from None

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        if isinstance(g, Tensor):
            return IndexAdd.apply(g, ctx.index, ctx.shape), None
        return _index_add(g, ctx.index, ctx.shape, ctx.dtype), None


def _index_add(g: np.ndarray, index: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    grad = np.zeros(shape, dtype=dtype)
    if _is_basic(index):
        grad[index] = g  # a basic index picks every element once: plain assignment is exact
    else:
        np.add.at(grad, index, g)
    return grad


class IndexAdd(Function):
    """zeros(shape) with g added at ``index`` (the adjoint of indexing). Its adjoint is indexing again."""

    name = "index_add"

    @staticmethod
    def forward(ctx: Any, g: np.ndarray, index: Any, shape: tuple[int, ...]) -> np.ndarray:
        ctx.index = index
        return _index_add(g, index, shape, g.dtype)

    @staticmethod
    def backward(ctx: Any, gg: Any) -> tuple[Any, None, None]:
        return GetItem.apply(gg, ctx.index) if isinstance(gg, Tensor) else np.asarray(gg[ctx.index]), None, None


# ---------------------------------------------------------------------------
# Functions of several tensors
# ---------------------------------------------------------------------------


def _as_tensors(tensors: Any, op: str) -> list[Tensor]:
    """Tensors as they are; numbers and arrays as constants of the first Tensor's dtype."""
    if isinstance(tensors, (Tensor, np.ndarray)):
        raise TypeError(f"{op}: expected a sequence of tensors, got a single {type(tensors).__name__}")
    items = list(tensors)
    if not items:
        raise ValueError(f"{op}: needs at least one tensor")
    dtype = next((t.dtype for t in items if isinstance(t, Tensor)), None)
    return [t if isinstance(t, Tensor) else Tensor(t, dtype=dtype) for t in items]


class Concatenate(Function):
    """Join along an existing axis. Each input gets back its own slice of the gradient."""

    name = "concatenate"

    @staticmethod
    def forward(ctx: Any, axis: int, *arrays: np.ndarray) -> np.ndarray:
        try:
            out = np.concatenate(arrays, axis=axis)
        except (ValueError, np.exceptions.AxisError):
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"concatenate: shapes {shapes} cannot be joined along axis {axis}") from None
        ctx.axis = axis % out.ndim
        ctx.ends = np.cumsum([a.shape[ctx.axis] for a in arrays]).tolist()
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, ...]:
        lead = (slice(None),) * ctx.axis
        starts = [0, *ctx.ends[:-1]]
        return (None, *(g[lead + (slice(s, e),)] for s, e in zip(starts, ctx.ends)))


def concatenate(tensors: Sequence[ArrayLike], axis: int | None = 0) -> Tensor:
    """Join tensors along an existing axis, like ``np.concatenate`` (``axis=None``: each flattened first)."""
    parts = _as_tensors(tensors, "concatenate")
    if axis is None:
        return Concatenate.apply(0, *(t.reshape(-1) for t in parts))
    _check_axis_argument(axis, "concatenate")
    return Concatenate.apply(axis, *parts)


def _check_axis_argument(axis: Any, op: str) -> None:
    """Refuse an axis that is not an integer, naming the op (numpy's own error comes from deep inside)."""
    if not _is_int(axis):
        raise TypeError(f"{op}: axis must be an integer, got {axis!r}")


class Stack(Function):
    """Join along a new axis. Input i gets the gradient's slice i along that axis."""

    name = "stack"

    @staticmethod
    def forward(ctx: Any, axis: int, *arrays: np.ndarray) -> np.ndarray:
        try:
            out = np.stack(arrays, axis=axis)
        except (ValueError, np.exceptions.AxisError):
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"stack: shapes {shapes} cannot be stacked along axis {axis}") from None
        ctx.axis, ctx.n = axis % out.ndim, len(arrays)
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, ...]:
        lead = (slice(None),) * ctx.axis
        return (None, *(g[lead + (i,)] for i in range(ctx.n)))


def stack(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new axis, like ``np.stack``."""
    _check_axis_argument(axis, "stack")
    return Stack.apply(axis, *_as_tensors(tensors, "stack"))


class Linear(Function):
    """out = x·W + b as one node (rows of x are samples).

    Backward: dx = g·Wᵀ, dW = xᵀ·g, db = Σ_rows g. One node instead of two
    keeps the graph small, which is what decides speed on small networks.
    """

    name = "linear"

    @staticmethod
    def forward(ctx: Any, x: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        if W.ndim != 2:
            raise ValueError(f"linear: weight must be 2-D (in_features, out_features), got shape {W.shape}")
        try:
            out = x @ W  # numpy checks the widths; the message below names them
        except ValueError:
            raise ValueError(
                f"linear: input of shape {x.shape} does not fit weight of shape {W.shape}; "
                f"expected input width {W.shape[0]}"
            ) from None
        if b is not None:
            if b.shape != (W.shape[1],) and not _broadcasts_to(b.shape, out.shape):
                raise ValueError(
                    f"linear: bias of shape {b.shape} does not broadcast to the output's shape {out.shape}; "
                    f"use a bias of shape ({W.shape[1]},)"
                )
            if b.dtype is out.dtype:
                out += b  # in place: no second array
            else:  # (mixed precision: numpy's promotion, as x @ W + b gives; += would round b into out's dtype)
                out = out + b
        ctx.save_for_backward(x, W)
        ctx.bias_shape = None if b is None else b.shape
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any, Any]:
        x, W = ctx.saved_tensors
        need_x, need_W, need_b = ctx.needs_input_grad
        x2, g2 = x, g
        if x.ndim != 2:  # fold leading batch dimensions into rows
            x2, g2 = x.reshape((-1, W.shape[0])), g.reshape((-1, W.shape[1]))
        dx = (g @ W.T) if need_x else None  # dx = g·Wᵀ
        dW = (x2.T @ g2) if need_W else None  # dW = xᵀ·g
        db = None
        if need_b:  # db = Σ_rows g (a bias of another shape sums g down to its own)
            db = g2.sum(axis=0) if ctx.bias_shape == (W.shape[1],) else sum_to(g, ctx.bias_shape)
        return dx, dW, db


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def linear(x: ArrayLike, W: Tensor, b: Tensor | None = None) -> Tensor:
    """out = x·W + b as one node; ``b`` is usually of shape (out_features,), any shape that broadcasts works."""
    if not isinstance(x, Tensor):
        x = Tensor(x, dtype=W.dtype)
    return Linear.apply(x, W, b)
