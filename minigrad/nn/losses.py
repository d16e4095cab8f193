"""Losses: mean squared error, softmax cross-entropy and binary cross-entropy on logits."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.engine import ArrayLike, Function, Tensor
from minigrad.nn.layers import as_tensor
from minigrad.ops import sigmoid

__all__ = ["mse_loss", "cross_entropy", "binary_cross_entropy_with_logits"]


# ---------------------------------------------------------------------------


def mse_loss(pred: Tensor, target: ArrayLike) -> Tensor:
    """Mean squared error, mean((pred - target)²); shapes must match exactly."""
    pred = as_tensor(pred)
    target = target if isinstance(target, Tensor) else Tensor(np.asarray(target), dtype=pred.dtype)
    if pred.shape != target.shape:
        column = {pred.shape, target.shape} == {(len(pred), 1), (len(pred),)} if pred.ndim else False
        hint = (f" (no broadcasting: (N, 1) against (N,) would compare every prediction with every target); "
                f"reshape the target, target.reshape({pred.shape})" if column
                else "; give pred and target the same shape")
        raise ValueError(f"mse_loss: pred has shape {pred.shape} but target has shape {target.shape}{hint}")
    diff = pred - target
    return (diff * diff).mean()


def _class_indices(targets: ArrayLike, n: int, n_classes: int, op: str) -> np.ndarray:
    """Check that targets are n integer class indices in [0, n_classes)."""
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if t.ndim != 1 or t.shape[0] != n:
        hint = "; flatten them with y.ravel()" if t.size == n and t.ndim > 1 else ""  # a column (n, 1), say
        raise ValueError(f"{op}: targets must have shape ({n},) to match the batch, got {t.shape}{hint}")
    if t.dtype.kind == "f":
        bad = t[~np.isfinite(t) | (t != np.round(t)) | (t < 0) | (t >= n_classes)]
        if bad.size:
            raise ValueError(
                f"{op}: targets must be integer class indices in [0, {n_classes}), got {bad[:5].tolist()}"
            )
    elif t.dtype.kind not in "iu":
        raise ValueError(f"{op}: targets must be integer class indices, got dtype {t.dtype}")
    # One look checks both ends: viewed as unsigned, a negative index is huge, so
    # the largest value is in range only if all are (argmax, a plain scan, costs
    # a fraction of max, a ufunc reduction, on a batch of labels).
    if t.dtype.kind == "u":
        u = t  # checked before the cast to intp, which would wrap values >= 2**63
    else:
        t = t.astype(np.intp, copy=False)
        u = t.view(np.uintp)
    if t.size and u[u.argmax()] >= n_classes:
        bad = t[(t < 0) | (t >= n_classes)]
        raise ValueError(f"{op}: targets must lie in [0, {n_classes}), got {sorted(set(bad.tolist()))[:5]}")
    return t.astype(np.intp, copy=False)


_ROW_OFFSETS: dict[tuple[int, int], np.ndarray] = {}  # (N, C) -> [0, C, 2C, ...], reused across batches


class CrossEntropy(Function):
    """Mean over rows of -log softmax(z)[target]. d/dz = (softmax(z) - onehot(target)) / N."""

    name = "cross_entropy"

    @staticmethod
    def forward(ctx: Any, z: np.ndarray, t: np.ndarray) -> np.ndarray:
        n, c = z.shape
        t = _class_indices(t, n, c, "cross_entropy")  # here, not in cross_entropy(), so mg.compile's replays check it
        # Speed device: the flat positions [0, C, 2C, ...] are cached per batch shape.
        offsets = _ROW_OFFSETS.get((n, c))
        if offsets is None:
            offsets = _ROW_OFFSETS[(n, c)] = np.arange(0, n * c, c)
        flat = offsets + t  # where each row's target sits in the flattened (N, C) array
        # Speed device: the row max is taken on a column-major copy, one vectorised pass per class, instead of
        # one short reduction per row (1347 x 10 logits: about 8 instead of 75 µs); a max is exact, so it is the
        # same number.
        # z - rowmax: the same softmax, and exp never overflows. In row-major order whatever z's layout (a
        # transposed z is column-major), since the flat positions above and the backward's reshape(-1) assume it.
        e = np.subtract(z, np.asfortranarray(z).max(axis=1, keepdims=True), order="C")
        picked = e.reshape(-1)[flat]  # (z - rowmax)[target] of each row; a copy, so the exp below leaves it
        np.exp(e, out=e)
        total = e.sum(axis=1, keepdims=True)  # Σ_c exp(z - rowmax), one per row
        loss = (np.log(total[:, 0]) - picked).sum() / n  # mean of log Σ_c exp(z - rowmax) - (z - rowmax)[target]
        ctx.save_for_backward(z)
        ctx.e, ctx.total, ctx.flat, ctx.n = e, total, flat, n  # softmax(z) = e / total
        return np.asarray(loss, dtype=z.dtype)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        (z,) = ctx.saved_tensors
        if isinstance(z, np.ndarray):
            # First order, on arrays: the same formula computed in place on one new array, with
            # the forward's exponentials reused (a speed device; the line below is the formula).
            d = ctx.e / ctx.total  # softmax(z)
            d.reshape(-1)[ctx.flat] -= 1  # - onehot(target)
            d *= float(g) / ctx.n  # · g / N
            return d, None
        onehot = np.zeros(z.shape, dtype=z.dtype)
        onehot.reshape(-1)[ctx.flat] = 1
        return (z.softmax(axis=1) - onehot) * (g / ctx.n), None


def cross_entropy(logits: Tensor, targets: ArrayLike) -> Tensor:
    """Mean over the batch of -log softmax(logits)[target], as one node.

    ``logits`` has shape (N, C); ``targets`` holds N integer class indices.
    The log-softmax is shifted by the row max, so logits in the hundreds are
    fine. Backward: dlogits = (softmax(logits) - onehot(targets)) / N.
    """
    if not isinstance(logits, Tensor):
        logits = Tensor(logits)
    z = logits.data
    if z.ndim != 2:
        raise ValueError(f"cross_entropy: logits must have shape (N, C), got {logits.shape}")
    n, c = z.shape
    if n == 0 or c == 0:
        raise ValueError(f"cross_entropy: logits of shape {logits.shape} hold no samples or no classes")
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if t.shape == (n, c) and t.ndim == 2:
        raise ValueError(
            f"cross_entropy: targets have the logits' shape {t.shape}, as one-hot rows do; "
            "pass class indices instead, e.g. y.argmax(1)"
        )
    return CrossEntropy.apply(logits, t)


class _BCEWithLogits(Function):
    """Mean of max(z, 0) - z·y + log(1 + e^-|z|). d/dz = (σ(z) - y) / N, d/dy = -z / N."""

    name = "bce_with_logits"

    @staticmethod
    def forward(ctx: Any, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        # Checked here, not in binary_cross_entropy_with_logits(), so that mg.compile's replays check new targets.
        bad = y[~((y >= 0) & (y <= 1))]  # NaN fails both comparisons, so it counts as bad
        if bad.size:
            raise ValueError(f"binary_cross_entropy_with_logits: targets must lie in [0, 1], got {bad[:5].tolist()}")
        ctx.save_for_backward(z, y)
        ctx.n = z.size
        return np.asarray((np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).sum() / z.size, dtype=z.dtype)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        z, y = ctx.saved_tensors
        need_z, need_y = ctx.needs_input_grad
        return (g * (sigmoid(z) - y) / ctx.n if need_z else None, -g * z / ctx.n if need_y else None)


def binary_cross_entropy_with_logits(logits: Tensor, targets: ArrayLike) -> Tensor:
    """Mean of -[y log σ(z) + (1 - y) log(1 - σ(z))], computed from logits z.

    Written as max(z, 0) - z·y + log(1 + e^-|z|), which never overflows.
    Targets are 0 or 1 (probabilities in [0, 1] also work) and have the
    logits' shape. Backward: dz = (σ(z) - y) / N; a target Tensor that requires grad gets dy = -z / N.
    """
    logits = as_tensor(logits)
    y = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if y.shape != logits.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: targets have shape {y.shape} "
            f"but logits have shape {logits.shape}"
        )
    if y.dtype.kind not in "fiub":
        raise ValueError(f"binary_cross_entropy_with_logits: targets must be numeric, got dtype {y.dtype}")
    if isinstance(targets, Tensor) and targets.requires_grad:  # learned soft targets get their gradient
        return _BCEWithLogits.apply(logits, targets)
    return _BCEWithLogits.apply(logits, Tensor(y, dtype=logits.dtype))  # (the same array if it has that dtype)
