"""Losses: mean squared error, softmax cross-entropy and binary cross-entropy on logits."""

from __future__ import annotations

import numpy as np

from minigrad.engine import ArrayLike, Tensor, stable_sigmoid

__all__ = ["mse_loss", "cross_entropy", "binary_cross_entropy_with_logits"]


# ---------------------------------------------------------------------------


def _as_tensor(x: ArrayLike) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def mse_loss(pred: Tensor, target: ArrayLike) -> Tensor:
    """Mean squared error, mean((pred - target)²); shapes must match exactly."""
    pred = _as_tensor(pred)
    target = target if isinstance(target, Tensor) else Tensor(np.asarray(target), dtype=pred.dtype)
    if pred.shape != target.shape:
        raise ValueError(f"mse_loss: pred has shape {pred.shape} but target has shape {target.shape}")
    diff = pred - target
    return (diff * diff).mean()


def _class_indices(targets: ArrayLike, n: int, n_classes: int, op: str) -> np.ndarray:
    """Check that targets are n integer class indices in [0, n_classes)."""
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(f"{op}: targets must have shape ({n},) to match the batch, got {t.shape}")
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
    t = _class_indices(targets, n, c, "cross_entropy")
    offsets = _ROW_OFFSETS.get((n, c))
    if offsets is None:
        offsets = _ROW_OFFSETS[(n, c)] = np.arange(0, n * c, c)
    flat = offsets + t  # where each row's target sits in the flattened (N, C) array
    e = z - z.max(axis=1, keepdims=True)  # z - rowmax: the same softmax, and exp never overflows
    picked = e.reshape(-1)[flat]  # (z - rowmax)[target] of each row; a copy, so the exp below leaves it
    np.exp(e, out=e)
    total = e.sum(axis=1)  # Σ_c exp(z - rowmax), one per row
    loss = (np.log(total) - picked).sum() / n  # mean over rows of log Σ_c exp(z - rowmax) - (z - rowmax)[target]

    def backward(g):  # dL/dlogits = (softmax - onehot) / N, written over e (backward runs once)
        d = e
        d /= total[:, None]
        d.reshape(-1)[flat] -= 1
        d *= float(g) / n
        return (d,)

    return Tensor._make(np.asarray(loss, dtype=z.dtype), (logits,), backward, "cross_entropy")


def binary_cross_entropy_with_logits(logits: Tensor, targets: ArrayLike) -> Tensor:
    """Mean of -[y log σ(z) + (1 - y) log(1 - σ(z))], computed from logits z.

    Written as max(z, 0) - z·y + log(1 + e^-|z|), which never overflows.
    Targets are 0 or 1 (probabilities in [0, 1] also work) and have the
    logits' shape. Backward: dz = (σ(z) - y) / N.
    """
    logits = _as_tensor(logits)
    y = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if y.shape != logits.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: targets have shape {y.shape} "
            f"but logits have shape {logits.shape}"
        )
    if y.dtype.kind not in "fiub":
        raise ValueError(f"binary_cross_entropy_with_logits: targets must be numeric, got dtype {y.dtype}")
    bad = y[~((y >= 0) & (y <= 1))]  # NaN fails both comparisons, so it counts as bad
    if bad.size:
        raise ValueError(f"binary_cross_entropy_with_logits: targets must lie in [0, 1], got {bad[:5].tolist()}")
    y = y.astype(logits.dtype)
    z = logits.data
    n = z.size
    loss = (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).sum() / n

    def backward(g):  # dL/dz = (σ(z) - y) / N
        return (g * (stable_sigmoid(z) - y) / n,)

    return Tensor._make(np.asarray(loss, dtype=logits.dtype), (logits,), backward, "bce_with_logits")
