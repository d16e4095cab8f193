"""Layers, losses and checkpoints: the engine turned into trainable MLPs.

A :class:`Module` finds its :class:`Parameter` s by walking its own attributes
(sub-modules, and lists or tuples of them), so no layer hand-writes
``parameters()``. :class:`Linear` computes ``out = x W + b``; after
``loss.backward()``, ``layer.W.grad`` is dW = xᵀ·dout and ``layer.b.grad`` is
db = Σ_rows dout.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from minigrad.engine import ArrayLike, Tensor, get_generator, linear, stable_sigmoid

__all__ = [
    "Parameter",
    "Module",
    "Linear",
    "ReLU",
    "Tanh",
    "Sigmoid",
    "Sequential",
    "MLP",
    "mse_loss",
    "cross_entropy",
    "binary_cross_entropy_with_logits",
    "save",
    "load",
]


class Parameter(Tensor):
    """A Tensor that requires grad and that a Module reports as its own.

    The data is always copied, since optimizers update it in place.
    """

    __slots__ = ()

    def __init__(self, data: ArrayLike, dtype: Any = None) -> None:
        super().__init__(data, requires_grad=True, dtype=dtype)
        self.data = self.data.copy()

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor"):]


class Module:
    """Base class of layers: write ``__init__`` and ``forward``; call the module.

    Parameters are found by walking attributes in the order they were set;
    their dotted names (``layers.0.W``) key the state dict.
    """

    training: bool = True

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        """The computation; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        """Run :meth:`forward`."""
        return self.forward(*args, **kwargs)

    def _children(self) -> Iterator[tuple[str, Any]]:
        """(name, value) for every attribute that holds parameters or modules."""
        for name, value in vars(self).items():
            if isinstance(value, (Parameter, Module)):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, (Parameter, Module)):
                        yield f"{name}.{i}", item

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Yield (dotted name, parameter) pairs, each parameter once."""
        seen: set[int] = set()  # parameters and modules already visited (shared, or back-references)
        stack: list[tuple[str, Any]] = [(prefix, self)]
        while stack:
            path, node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, Parameter):
                yield path, node
                continue
            children = [(f"{path}.{name}" if path else name, child) for name, child in node._children()]
            stack.extend(reversed(children))

    def parameters(self) -> list[Parameter]:
        """Every parameter of this module and its sub-modules."""
        return [p for _, p in self.named_parameters()]

    def modules(self) -> Iterator[Module]:
        """This module and every sub-module, depth first."""
        yield self
        for _, child in self._children():
            if isinstance(child, Module):
                yield from child.modules()

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        """Put this module and its sub-modules in training mode; returns self."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Put this module and its sub-modules in evaluation mode; returns self."""
        return self.train(False)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Map each parameter's dotted name to a copy of its array."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, ArrayLike]) -> None:
        """Copy ``state`` into the parameters after checking every entry.

        Keys, shapes and dtypes are all checked first; on any mismatch a
        ValueError lists the missing, unexpected and mismatched entries and no
        parameter has changed.
        """
        own = dict(self.named_parameters())
        arrays = {k: np.asarray(v.data if isinstance(v, Tensor) else v) for k, v in state.items()}
        missing = sorted(set(own) - set(arrays))
        unexpected = sorted(set(arrays) - set(own))
        mismatched = [
            f"{k}: expected {own[k].shape} {own[k].dtype}, got {arrays[k].shape} {arrays[k].dtype}"
            for k in own
            if k in arrays and (arrays[k].shape != own[k].shape or arrays[k].dtype != own[k].dtype)
        ]
        if missing or unexpected or mismatched:
            problems = []
            if missing:
                problems.append(f"missing {missing}")
            if unexpected:
                problems.append(f"unexpected {unexpected}")
            if mismatched:
                problems.append("mismatched [" + "; ".join(mismatched) + "]")
            raise ValueError(f"load_state_dict: {type(self).__name__} refused the state: " + ", ".join(problems))
        for k, p in own.items():
            p.data[...] = arrays[k]

    def extra_repr(self) -> str:
        """The text inside this module's parentheses in its repr."""
        return ""

    def __repr__(self) -> str:
        children = [(n, c) for n, c in self._children() if isinstance(c, Module)]
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)


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


# ---------------------------------------------------------------------------
# Losses
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


# ---------------------------------------------------------------------------
# Checkpoints: .npz files, written atomically, read without pickle
# ---------------------------------------------------------------------------

_MANIFEST = "__minigrad__"
_FORMAT = "minigrad-checkpoint"


def _flatten(state: Mapping[str, Any], prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Move every leaf of ``state`` into ``arrays`` under its dotted key.

    Returns the tree's shape: the same nesting, with each leaf replaced by its
    key (so empty mappings survive the round trip).
    """
    tree: dict[str, Any] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"save: state keys must be non-empty strings, got {key!r}")
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            tree[key] = _flatten(value, name, arrays)
            continue
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"save: entry {name!r} is not numeric (dtype {array.dtype})")
        if name in arrays or name == _MANIFEST:
            raise ValueError(f"save: two entries flatten to the same key {name!r}")
        arrays[name] = array
        tree[key] = name
    return tree


def _unflatten(tree: Any, arrays: dict[str, np.ndarray], used: set[str]) -> dict[str, Any]:
    """Rebuild the nested state from the manifest's tree and the stored arrays."""
    if not isinstance(tree, dict):
        raise ValueError("its manifest is malformed")
    state: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, str):
            if value not in arrays or value in used:
                raise ValueError(f"its manifest names a missing or repeated entry {value!r}")
            used.add(value)
            state[key] = arrays[value]
        else:
            state[key] = _unflatten(value, arrays, used)
    return state


def save(state: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` to a ``.npz`` file atomically.

    ``state`` maps names to arrays, numbers or nested mappings (stored under
    dotted keys, e.g. ``optim.state.0.v``). The file is written to a temporary
    file in the same folder, flushed and fsynced, then moved over ``path`` with
    ``os.replace``: a crash leaves either the old file or the new one.
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"save: state must be a mapping, got {type(state).__name__}")
    arrays: dict[str, np.ndarray] = {}
    tree = _flatten(state, "", arrays)
    arrays[_MANIFEST] = np.array(json.dumps({"format": _FORMAT, "version": 1, "tree": tree}))
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            # The .npz layout (a zip of .npy members), written member by member
            # so that any key is allowed, even one named like np.savez's arguments.
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
                for name, array in arrays.items():
                    with zf.open(name + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`, rebuilding nested mappings.

    Reads with ``allow_pickle=False``, so no code from the file ever runs. A
    truncated, corrupt or foreign file raises ValueError naming it; a missing
    one raises FileNotFoundError.
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile) or _MANIFEST not in npz.files:
                raise ValueError("it is not a minigrad checkpoint (no manifest)")
            manifest = json.loads(str(npz[_MANIFEST]))
            if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
                raise ValueError("its manifest is not a minigrad checkpoint's")
            arrays = {k: npz[k] for k in npz.files if k != _MANIFEST}
        used: set[str] = set()
        state = _unflatten(manifest.get("tree"), arrays, used)
        if used != set(arrays):
            raise ValueError(f"it holds entries its manifest does not name: {sorted(set(arrays) - used)}")
    except FileNotFoundError:
        raise
    except Exception as e:  # whatever a damaged file makes numpy, zipfile or json raise
        raise ValueError(f"load: cannot read checkpoint {path!r}: {e}") from None
    return state
