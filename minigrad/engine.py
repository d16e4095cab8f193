"""The Tensor engine: reverse-mode automatic differentiation on numpy.

A :class:`Tensor` wraps a numpy array. Every operation on tensors that require
gradients records its inputs (``_parents``) and a small function
(``_backward``) that maps the gradient of the output, ``g = dL/d(out)``, to the
gradients of the inputs by the chain rule. ``loss.backward()`` sorts the
recorded graph once (iteratively, so chains of any length work) and runs those
functions from the loss back to the leaves, adding each contribution into the
leaves' ``.grad``.

Each op below computes its output, then defines its backward right under it,
with the derivative it implements in a comment.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Union

import numpy as np

__all__ = [
    "Tensor",
    "concatenate",
    "stack",
    "linear",
    "no_grad",
    "is_grad_enabled",
    "manual_seed",
    "get_generator",
    "gradcheck",
    "GradcheckError",
    "unbroadcast",
    "stable_sigmoid",
]

ArrayLike = Union["Tensor", np.ndarray, float, int, Sequence]
Axis = int | tuple[int, ...] | None

# ---------------------------------------------------------------------------
# Global switches: gradient recording and the one random generator.
# ---------------------------------------------------------------------------

_grad_enabled = True
_generator = np.random.default_rng()


def is_grad_enabled() -> bool:
    """Return True when new operations are being recorded for backward()."""
    return _grad_enabled


class _GradMode(contextlib.ContextDecorator):
    """Set whether operations are recorded inside a block; restore it after."""

    enabled: bool

    def _recreate_cm(self) -> _GradMode:
        return type(self)()  # a fresh one per decorated call, so recursion restores correctly

    def __enter__(self) -> None:
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self._previous


class no_grad(_GradMode):
    """Context manager (or decorator) under which no operation is recorded.

    Results computed inside have ``requires_grad=False`` and no graph, so
    evaluation and parameter updates cost no memory for backward.
    """

    enabled = False


class _enable_grad(_GradMode):
    """Turn recording back on inside a ``no_grad`` block (used by gradcheck)."""

    enabled = True


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the generator that layer initialisation and data shuffling use.

    The same seed gives a bit-identical run. Returns the new generator.
    """
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative integer, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def get_generator() -> np.random.Generator:
    """Return the generator seeded by :func:`manual_seed`."""
    return _generator


# ---------------------------------------------------------------------------
# Broadcasting and its adjoint.
# ---------------------------------------------------------------------------


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the adjoint of numpy broadcasting.

    Broadcasting copies a value along new leading axes and along axes of
    size 1, so the gradient of the original value is the sum of the
    gradients of all its copies.
    """
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^-x) on an array, as (1 + tanh(x/2)) / 2, which never overflows."""
    return 0.5 * (1 + np.tanh(0.5 * x))


def _normalize_axes(axis: Axis, ndim: int, op: str) -> tuple[int, ...]:
    """Turn ``axis`` (None, an int or a tuple) into sorted non-negative axes.

    As in PyTorch, a 0-d tensor takes axis 0 or -1 as if it had one axis of
    length 1; reducing over that changes nothing, so it becomes no axis at all.
    """
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    n = max(ndim, 1)
    out = []
    for a in axes:
        if not -n <= a < n:
            raise ValueError(f"{op}: axis {a} is out of range for a tensor of {ndim} dimensions")
        out.append(int(a) % n)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(out)) if ndim else ()


def _expand_reduced(g: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """Put back the axes a reduction removed, so ``g`` broadcasts to the input."""
    if keepdims or not axes:
        return g
    return np.expand_dims(g, axes)


# ---------------------------------------------------------------------------
# Tensor
# ---------------------------------------------------------------------------

_FLOAT_KINDS = "f"


def _to_array(data: Any, dtype: Any) -> np.ndarray:
    """Convert user data to a floating numpy array, explaining any refusal."""
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError as e:
            raise TypeError(f"Tensor: {dtype!r} is not a numpy dtype") from e
        if dtype.kind not in _FLOAT_KINDS:
            raise TypeError(f"Tensor: dtype must be a floating type, got {dtype}")
    if isinstance(data, (np.ndarray, np.generic)):
        arr = np.asarray(data)
    else:
        try:
            arr = np.asarray(data)
        except ValueError as e:
            raise ValueError(f"Tensor: data is ragged or malformed: {e}") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(
            f"Tensor: data must be numeric, got dtype {arr.dtype} "
            f"from {type(data).__name__}"
        )
    if dtype is None:
        keep = isinstance(data, (np.ndarray, np.generic)) and arr.dtype.kind == "f"
        dtype = arr.dtype if keep else np.dtype(np.float32)
    return arr.astype(dtype, copy=False)


class Tensor:
    """An n-dimensional array that records the operations that made it.

    ``Tensor(data, requires_grad=False, dtype=None)``: ``data`` is a number,
    nested lists or a numpy array. Python numbers, lists and integer arrays
    become float32; a floating numpy array keeps its dtype (float64 stays
    float64), unless ``dtype`` says otherwise. A numpy array that already has
    the target dtype is used without a copy, as ``np.asarray`` would.

    After ``loss.backward()``, every tensor created with ``requires_grad=True``
    that the loss depends on holds ``dloss/dtensor`` in ``.grad``.
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_op")
    # Make numpy defer to Tensor: `np.ones(3) + t` calls Tensor.__radd__.
    __array_ufunc__ = None

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        if dtype is None and type(data) is np.ndarray and data.dtype.kind == "f":
            self.data: np.ndarray = data  # the common case, a float array: used as it is
        else:
            self.data = _to_array(data, dtype)
        self.grad: np.ndarray | None = None
        self.requires_grad: bool = bool(requires_grad)
        self._parents: tuple[Tensor, ...] = ()
        self._backward: Callable | None = None
        self._op: str = ""

    # -- bookkeeping --------------------------------------------------------

    @staticmethod
    def _make(
        data: np.ndarray, parents: tuple[Tensor, ...], backward: Callable, op: str
    ) -> Tensor:
        """Wrap an op's result; record the graph only if some input needs it.

        ``backward(g)`` returns one gradient per parent (None where the parent
        needs none), each already of that parent's shape. Each is ``g`` itself,
        a view, or a new array made for that parent alone (never one new array
        for two parents): backward keeps such a new array as a leaf's ``.grad``
        without copying it.
        """
        out = Tensor.__new__(Tensor)
        out.data = data
        out.grad = None
        out._op = op
        if _grad_enabled:
            for p in parents:
                if p.requires_grad:
                    out.requires_grad = True
                    out._parents = parents
                    out._backward = backward
                    return out
        out.requires_grad = False
        out._parents = ()
        out._backward = None
        return out

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``.data``."""
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        """The dtype of ``.data`` (float32 unless asked otherwise)."""
        return self.data.dtype

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """The number of elements."""
        return self.data.size

    def __len__(self) -> int:
        """The length of the first axis."""
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(", precision=4)
        extra = f", dtype={self.dtype}" if self.dtype != np.float32 else ""
        if self._op:
            extra += f", op={self._op}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(t)`` gives ``t.data`` (a copy when asked, or when the dtype changes)."""
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            if copy is False:
                raise ValueError(f"__array__: converting {self.dtype} to {np.dtype(dtype)} needs a copy")
            return self.data.astype(dtype)
        return self.data

    def numpy(self) -> np.ndarray:
        """Return ``.data`` (the same array, not a copy)."""
        return self.data

    def item(self) -> float:
        """Return the value of a one-element tensor as a Python float."""
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor has an item, got shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        """Return a tensor sharing ``.data`` that is cut off from the graph."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad = None``)."""
        self.grad = None

    # -- backward ------------------------------------------------------------

    def backward(self, grad: ArrayLike | None = None) -> None:
        """Backpropagate from this tensor, adding into every leaf's ``.grad``.

        ``grad`` is dL/d(self); it may be omitted only when self has one
        element (it is then 1). Gradients accumulate over calls until they are
        zeroed. The graph is released afterwards: intermediate tensors no
        longer hold their inputs, so memory stays flat in a training loop.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad and has no graph; "
                "create the inputs with requires_grad=True (and not under no_grad)"
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be omitted only for a one-element output, "
                    f"got shape {self.shape}; pass grad= of that shape"
                )
            g = np.array(1, dtype=self.data.dtype)  # dL/dL = 1 (np.ones is slower)
            if self.data.ndim:
                g = g.reshape(self.data.shape)
        else:
            g = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if g.shape != self.shape:
                raise ValueError(
                    f"backward: grad has shape {g.shape} but the output has shape {self.shape}"
                )

        if self._backward is None:  # backward() on a leaf
            _accumulate(self, g)
            return
        grads: dict[Tensor, np.ndarray] = {self: g}  # dL/dnode, summed over uses
        for node in self._topological_order():
            g = grads.pop(node)
            for parent, pg in zip(node._parents, node._backward(g)):
                if pg is None:
                    continue
                if parent._backward is not None:  # an inner node (they all require grad)
                    grads[parent] = grads[parent] + pg if parent in grads else pg
                elif parent.requires_grad:  # a leaf: add into .grad now
                    # A new array the op made for this parent alone, of its dtype, becomes .grad
                    # without a copy. (Built-in dtypes are single objects, so `is` settles the
                    # common case before the slower ==. A numpy scalar, which ufuncs return for
                    # 0-d inputs, is copied into a 0-d array instead.)
                    new_array = type(pg) is np.ndarray and pg.base is None and pg is not g
                    same_dtype = pg.dtype is parent.data.dtype or pg.dtype == parent.data.dtype
                    if parent.grad is None and new_array and same_dtype:
                        parent.grad = pg
                    else:
                        _accumulate(parent, pg)
            # Release the graph behind this node.
            node._parents = ()
            node._backward = _released

    def _topological_order(self) -> list[Tensor]:
        """Non-leaf nodes reachable from self, each before all of its parents.

        Only non-leaves (which all require grad) are ordered; backward adds
        into leaves as their gradients arrive. The graph of a training step is
        mostly a chain, layer after layer, so the chain at the top is walked
        directly: while a node has a single non-leaf parent, that parent comes
        next. From the first node with several, a depth-first search orders
        the rest (nothing above it can be reached from it: the graph has no
        cycles).
        """
        chain: list[Tensor] = []
        node = self
        while True:
            chain.append(node)
            inner = None  # the one non-leaf parent, if there is just one
            for parent in node._parents:
                if parent._backward is not None and parent is not inner:
                    if inner is not None:  # several: leave the chain
                        chain.pop()
                        return chain + node._depth_first_order()
                    inner = parent
            if inner is None:
                return chain
            node = inner

    def _depth_first_order(self) -> list[Tensor]:
        """Non-leaf nodes reachable from self, each before all of its parents.

        Iterative depth-first search with an explicit stack, so a chain of
        100,000 ops does not hit Python's recursion limit. A node is appended
        after all of its parents (post-order); the reversed list is the order.
        """
        order: list[Tensor] = []
        visited: set[Tensor] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)
            elif node not in visited:
                visited.add(node)
                stack.append((node, True))
                for parent in node._parents:
                    if parent._backward is not None and parent not in visited:
                        stack.append((parent, False))
        order.reverse()
        return order

    # -- arithmetic (binary ops broadcast; unbroadcast undoes it) -----------

    def _other(self, other: ArrayLike) -> Tensor:
        """Wrap a number or array as a constant of this tensor's dtype."""
        if isinstance(other, Tensor):
            return other
        return Tensor(_to_array(other, self.data.dtype))

    def _broadcast_error(self, op: str, other: Tensor, error: ValueError) -> ValueError:
        return ValueError(f"{op}: shapes {self.shape} and {other.shape} cannot be broadcast together")

    def __add__(self, other: ArrayLike) -> Tensor:
        """a + b, broadcasting. d(a+b)/da = d(a+b)/db = 1."""
        other = self._other(other)
        try:
            data = self.data + other.data
        except ValueError as e:
            raise self._broadcast_error("add", other, e) from None
        a, b = self, other

        def backward(g):  # d(a+b)/da = d(a+b)/db = 1
            return (
                unbroadcast(g, a.shape) if a.requires_grad else None,
                unbroadcast(g, b.shape) if b.requires_grad else None,
            )

        return Tensor._make(data, (a, b), backward, "add")

    def __radd__(self, other: ArrayLike) -> Tensor:
        """other + a, for a number or array on the left."""
        return self._other(other) + self

    def __sub__(self, other: ArrayLike) -> Tensor:
        """a - b, broadcasting. d(a-b)/da = 1, d(a-b)/db = -1."""
        other = self._other(other)
        try:
            data = self.data - other.data
        except ValueError as e:
            raise self._broadcast_error("sub", other, e) from None
        a, b = self, other

        def backward(g):  # d(a-b)/da = 1, d(a-b)/db = -1
            return (
                unbroadcast(g, a.shape) if a.requires_grad else None,
                unbroadcast(-g, b.shape) if b.requires_grad else None,
            )

        return Tensor._make(data, (a, b), backward, "sub")

    def __rsub__(self, other: ArrayLike) -> Tensor:
        """other - a, for a number or array on the left."""
        return self._other(other) - self

    def __mul__(self, other: ArrayLike) -> Tensor:
        """a * b, elementwise, broadcasting. d(ab)/da = b, d(ab)/db = a."""
        other = self._other(other)
        try:
            data = self.data * other.data
        except ValueError as e:
            raise self._broadcast_error("mul", other, e) from None
        a, b = self, other

        def backward(g):  # d(ab)/da = b, d(ab)/db = a
            return (
                unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
                unbroadcast(g * a.data, b.shape) if b.requires_grad else None,
            )

        return Tensor._make(data, (a, b), backward, "mul")

    def __rmul__(self, other: ArrayLike) -> Tensor:
        """other * a, for a number or array on the left."""
        return self._other(other) * self

    def __truediv__(self, other: ArrayLike) -> Tensor:
        """a / b, elementwise, broadcasting. d(a/b)/da = 1/b, d(a/b)/db = -a/b²."""
        other = self._other(other)
        try:
            data = self.data / other.data
        except ValueError as e:
            raise self._broadcast_error("div", other, e) from None
        a, b = self, other

        def backward(g):  # d(a/b)/da = 1/b, d(a/b)/db = -a/b²
            return (
                unbroadcast(g / b.data, a.shape) if a.requires_grad else None,
                unbroadcast(-g * data / b.data, b.shape) if b.requires_grad else None,
            )

        return Tensor._make(data, (a, b), backward, "div")

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        """other / a, for a number or array on the left."""
        return self._other(other) / self

    def __pow__(self, exponent: ArrayLike) -> Tensor:
        """a ** p. d(a^p)/da = p·a^(p-1); for a tensor exponent, d(a^b)/db = a^b·ln a."""
        if isinstance(exponent, (int, float, np.integer, np.floating)):
            a, p = self, float(exponent)  # a Python float keeps the tensor's dtype
            data = a.data**p

            def backward(g):  # d(a^p)/da = p·a^(p-1)  (0 when p = 0, even at a = 0)
                if p == 0:
                    return (np.zeros_like(a.data),)
                return (g * p * a.data ** (p - 1),)

            return Tensor._make(data, (a,), backward, "pow")
        other = self._other(exponent)
        try:
            data = self.data**other.data
        except ValueError as e:
            raise self._broadcast_error("pow", other, e) from None
        a, b = self, other

        def backward_tensor(g):  # d(a^b)/da = b·a^(b-1), d(a^b)/db = a^b·ln a
            return (
                unbroadcast(g * b.data * a.data ** (b.data - 1), a.shape) if a.requires_grad else None,
                unbroadcast(g * data * np.log(a.data), b.shape) if b.requires_grad else None,
            )

        return Tensor._make(data, (a, b), backward_tensor, "pow")

    def __rpow__(self, base: ArrayLike) -> Tensor:
        """base ** a, for a number or array as the base."""
        return self._other(base) ** self

    def __neg__(self) -> Tensor:
        """-a. d(-a)/da = -1."""
        def backward(g):  # d(-a)/da = -1
            return (-g,)

        return Tensor._make(-self.data, (self,), backward, "neg")

    def __matmul__(self, other: ArrayLike) -> Tensor:
        """a @ b with numpy's matmul rules (1-D, 2-D, batched). dA = g·Bᵀ, dB = Aᵀ·g."""
        other = self._other(other)
        a, b = self, other
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: operands must be at least 1-D, got shapes {a.shape} and {b.shape}")
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.shape[-1] != k_b:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned")
        try:
            data = a.data @ b.data
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions of shapes {a.shape} and {b.shape} cannot be broadcast"
            ) from None

        def backward(g):  # out = A·B: dA = g·Bᵀ, dB = Aᵀ·g (summed over broadcast batches)
            # Treat a 1-D operand as a row (a) or a column (b), as numpy does.
            A = a.data[None, :] if a.ndim == 1 else a.data
            B = b.data[:, None] if b.ndim == 1 else b.data
            if a.ndim == 1 and b.ndim == 1:  # a dot product: g is a scalar
                G = g.reshape(1, 1)
            elif a.ndim == 1:
                G = np.expand_dims(g, -2)
            elif b.ndim == 1:
                G = np.expand_dims(g, -1)
            else:
                G = g
            da = db = None
            if a.requires_grad:
                da = unbroadcast(G @ np.swapaxes(B, -1, -2), A.shape).reshape(a.shape)
            if b.requires_grad:
                db = unbroadcast(np.swapaxes(A, -1, -2) @ G, B.shape).reshape(b.shape)
            return da, db

        return Tensor._make(data, (a, b), backward, "matmul")

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        """other @ a, for an array on the left."""
        return self._other(other) @ self

    # -- reductions ----------------------------------------------------------

    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (an int, a tuple or None for all)."""
        axes = _normalize_axes(axis, self.ndim, "sum")
        a = self

        def backward(g):  # d(sum a)/da_i = 1: every input gets the output's gradient
            return (np.broadcast_to(_expand_reduced(g, axes, keepdims), a.shape),)

        return Tensor._make(self.data.sum(axis=axes, keepdims=keepdims), (a,), backward, "sum")

    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis`` (an int, a tuple or None for all)."""
        axes = _normalize_axes(axis, self.ndim, "mean")
        count = int(np.prod([self.shape[i] for i in axes]))
        a = self

        def backward(g):  # d(mean a)/da_i = 1/n
            return (np.broadcast_to(_expand_reduced(g, axes, keepdims) / count, a.shape),)

        return Tensor._make(self.data.mean(axis=axes, keepdims=keepdims), (a,), backward, "mean")

    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``; the gradient is shared equally among ties."""
        axes = _normalize_axes(axis, self.ndim, "max")
        if self.data.size == 0:
            raise ValueError(f"max: cannot reduce an empty tensor of shape {self.shape}")
        a = self
        top = self.data.max(axis=axes, keepdims=True)

        def backward(g):  # d(max a)/da_i = 1 where a_i is the max (split among ties)
            share = (a.data == top).astype(a.dtype)
            share /= share.sum(axis=axes, keepdims=True)
            return (share * _expand_reduced(g, axes, keepdims),)

        data = top if keepdims else np.squeeze(top, axis=axes)
        return Tensor._make(data, (a,), backward, "max")

    # -- elementwise functions -------------------------------------------------

    def exp(self) -> Tensor:
        """e^a, elementwise."""
        data = np.exp(self.data)

        def backward(g):  # d/da e^a = e^a
            return (g * data,)

        return Tensor._make(data, (self,), backward, "exp")

    def log(self) -> Tensor:
        """Natural logarithm, elementwise."""
        a = self

        def backward(g):  # d/da ln a = 1/a
            return (g / a.data,)

        return Tensor._make(np.log(self.data), (a,), backward, "log")

    def tanh(self) -> Tensor:
        """Hyperbolic tangent, elementwise."""
        data = np.tanh(self.data)

        def backward(g):  # d/da tanh a = 1 - tanh² a
            return (g * (1 - data * data),)

        return Tensor._make(data, (self,), backward, "tanh")

    def sigmoid(self) -> Tensor:
        """σ(a) = 1 / (1 + e^-a), computed as (1 + tanh(a/2)) / 2 so it never overflows."""
        data = stable_sigmoid(self.data)

        def backward(g):  # d/da σ(a) = σ(a)·(1 - σ(a))
            return (g * data * (1 - data),)

        return Tensor._make(data, (self,), backward, "sigmoid")

    def relu(self) -> Tensor:
        """max(a, 0), elementwise."""
        a = self

        def backward(g):  # d/da relu a = 1 where a > 0, else 0
            return (g * (a.data > 0),)

        return Tensor._make(np.maximum(self.data, 0), (a,), backward, "relu")

    def softmax(self, axis: int = -1) -> Tensor:
        """exp(a) / sum(exp(a)) along ``axis``, shifted by the max for stability."""
        axis = _normalize_axes(axis, self.ndim, "softmax")  # a tuple; () for a 0-d tensor
        e = np.exp(self.data - self.data.max(axis=axis, keepdims=True))
        s = e / e.sum(axis=axis, keepdims=True)

        def backward(g):  # ds/da = diag(s) - s sᵀ, so da = s·(g - Σ g·s)
            return (s * (g - (g * s).sum(axis=axis, keepdims=True)),)

        return Tensor._make(s, (self,), backward, "softmax")

    def log_softmax(self, axis: int = -1) -> Tensor:
        """a - logsumexp(a) along ``axis``, stable for logits in the thousands."""
        axis = _normalize_axes(axis, self.ndim, "log_softmax")  # a tuple; () for a 0-d tensor
        shifted = self.data - self.data.max(axis=axis, keepdims=True)
        data = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

        def backward(g):  # d(log softmax)/da = I - softmax: da = g - softmax·Σ g
            return (g - np.exp(data) * g.sum(axis=axis, keepdims=True),)

        return Tensor._make(data, (self,), backward, "log_softmax")

    # -- shape ---------------------------------------------------------------

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        """Same data, new shape; one dimension may be -1."""
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        try:
            data = self.data.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape shape {self.shape} into {tuple(shape)}") from None
        a = self

        def backward(g):  # reshaping moves no values: reshape the gradient back
            return (g.reshape(a.shape),)

        return Tensor._make(data, (a,), backward, "reshape")

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        """Permute the axes (reverse them when none are given), like numpy."""
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = tuple(axes[0])
        if not axes:
            perm = tuple(range(self.ndim))[::-1]
        elif all(-self.ndim <= i < self.ndim for i in axes):
            perm = tuple(int(i) % self.ndim for i in axes)
        else:
            perm = ()
        if sorted(perm) != list(range(self.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of a tensor of shape {self.shape}")
        inverse = tuple(np.argsort(perm))

        def backward(g):  # the adjoint of a permutation is the inverse permutation
            return (g.transpose(inverse),)

        return Tensor._make(self.data.transpose(perm), (self,), backward, "transpose")

    @property
    def T(self) -> Tensor:
        """The tensor with its axes reversed."""
        return self.transpose()

    def __getitem__(self, index: Any) -> Tensor:
        """Indexing with ints, slices and integer arrays; repeated indices add their gradients."""
        if isinstance(index, Tensor):
            index = _tensor_index(index)
        elif isinstance(index, tuple):
            index = tuple(_tensor_index(i) if isinstance(i, Tensor) else i for i in index)
        try:
            data = self.data[index]
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor shape {self.shape})") from None
        a = self

        def backward(g):  # scatter back; np.add.at adds repeated indices up
            grad = np.zeros_like(a.data)
            np.add.at(grad, index, g)
            return (grad,)

        return Tensor._make(data, (a,), backward, "getitem")


def _accumulate(leaf: Tensor, g: np.ndarray) -> None:
    """Add ``g`` into ``leaf.grad`` (a copy the first time: ``g`` may be shared)."""
    if leaf.grad is None:
        leaf.grad = np.array(g, dtype=leaf.data.dtype)
    else:
        leaf.grad += g


def _tensor_index(t: Tensor) -> np.ndarray:
    """A Tensor used as an index: its (float) values must be whole numbers."""
    if not np.all(t.data == np.round(t.data)):
        raise IndexError(f"getitem: a Tensor index must hold whole numbers, got {t.data.ravel()[:5].tolist()}")
    return t.data.astype(np.intp)


def _released(g: np.ndarray) -> tuple:
    raise RuntimeError(
        "backward: the graph through this tensor was released by an earlier backward(); "
        "run the forward pass again"
    )


# ---------------------------------------------------------------------------
# Functions of several tensors
# ---------------------------------------------------------------------------


def _as_tensors(tensors: Iterable[ArrayLike], op: str) -> list[Tensor]:
    """Tensors as they are; numbers and arrays as constants of the first Tensor's dtype."""
    items = list(tensors)
    if not items:
        raise ValueError(f"{op}: needs at least one tensor")
    dtype = next((t.dtype for t in items if isinstance(t, Tensor)), None)
    return [t if isinstance(t, Tensor) else Tensor(t, dtype=dtype) for t in items]


def concatenate(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis, like ``np.concatenate``."""
    ts = _as_tensors(tensors, "concatenate")
    try:
        data = np.concatenate([t.data for t in ts], axis=axis)
    except (ValueError, np.exceptions.AxisError):
        shapes = ", ".join(str(t.shape) for t in ts)
        raise ValueError(f"concatenate: shapes {shapes} cannot be joined along axis {axis}") from None
    ends = np.cumsum([t.shape[axis] for t in ts])[:-1]

    def backward(g):  # each input gets back its own slice of the gradient
        return tuple(np.split(g, ends, axis=axis))

    return Tensor._make(data, tuple(ts), backward, "concatenate")


def stack(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new axis, like ``np.stack``."""
    ts = _as_tensors(tensors, "stack")
    try:
        data = np.stack([t.data for t in ts], axis=axis)
    except (ValueError, np.exceptions.AxisError):
        shapes = ", ".join(str(t.shape) for t in ts)
        raise ValueError(f"stack: shapes {shapes} cannot be stacked along axis {axis}") from None

    def backward(g):  # input i gets the gradient's slice i along the new axis
        return tuple(np.take(g, i, axis=axis) for i in range(len(ts)))

    return Tensor._make(data, tuple(ts), backward, "stack")


def linear(x: Tensor, W: Tensor, b: Tensor | None = None) -> Tensor:
    """out = x·W + b as one node (rows of ``x`` are samples).

    Backward: dx = g·Wᵀ, dW = xᵀ·g, db = Σ_rows g. One node instead of two
    keeps the graph small, which is what decides speed on small networks.
    """
    if W.data.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (in_features, out_features), got shape {W.shape}")
    try:
        data = x.data @ W.data  # numpy checks the widths; the message below names them
    except ValueError:
        raise ValueError(
            f"linear: input of shape {x.shape} does not fit weight of shape {W.shape}; "
            f"expected input width {W.shape[0]}"
        ) from None
    if b is not None:
        data += b.data

    def backward(g):
        x2, g2 = x.data, g
        if x2.ndim != 2:  # fold leading batch dimensions into rows
            x2, g2 = x2.reshape(-1, W.shape[0]), g.reshape(-1, W.shape[1])
        dx = (g @ W.data.T) if x.requires_grad else None  # dx = g·Wᵀ
        dW = (x2.T @ g2) if W.requires_grad else None  # dW = xᵀ·g
        if b is None:
            return dx, dW
        db = g2.sum(axis=0) if b.requires_grad else None  # db = Σ_rows g
        return dx, dW, db

    parents = (x, W) if b is None else (x, W, b)
    return Tensor._make(data, parents, backward, "linear")


# ---------------------------------------------------------------------------
# Gradient checking
# ---------------------------------------------------------------------------


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when backward disagrees with finite differences."""


def gradcheck(
    fn: Callable[..., Tensor],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> bool:
    """Compare ``backward()`` of ``fn(*inputs)`` with central differences in float64.

    Every Tensor input is copied to float64; those with ``requires_grad`` are
    checked. A non-scalar output is reduced to ``sum(w * out)`` with fixed
    random weights ``w``, so every output element is tested. Element i of an
    input must satisfy ``|analytic - numeric| <= atol + rtol * |numeric|``
    where numeric = (f(x + eps·e_i) - f(x - eps·e_i)) / (2·eps).

    Returns True, or raises :class:`GradcheckError` naming the input, the worst
    element and both values.
    """
    xs = [
        Tensor(np.array(x.data, dtype=np.float64), requires_grad=x.requires_grad)
        if isinstance(x, Tensor)
        else x
        for x in inputs
    ]
    checked = [i for i, x in enumerate(xs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input is a Tensor with requires_grad=True")

    with _enable_grad():
        out = fn(*xs)
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
        weights = np.random.default_rng(0).uniform(0.5, 1.5, size=out.shape)

        def f() -> float:
            with no_grad():
                return float((fn(*xs).data.astype(np.float64) * weights).sum())

        out.backward(weights.astype(out.dtype))

    for i in checked:
        x = xs[i]
        analytic = x.grad if x.grad is not None else np.zeros_like(x.data)
        numeric = np.zeros_like(x.data)
        flat = x.data.reshape(-1)  # a view: writing it moves the input
        for j in range(flat.size):
            saved = flat[j]
            flat[j] = saved + eps
            plus = f()
            flat[j] = saved - eps
            minus = f()
            flat[j] = saved
            numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if np.any(error > 0) or not np.all(np.isfinite(analytic)):
            worst = np.unravel_index(int(np.nanargmax(np.where(np.isfinite(error), error, np.inf))), x.shape)
            raise GradcheckError(
                f"gradcheck: input {i} (shape {x.shape}), element {tuple(int(k) for k in worst)}: "
                f"backward gives {analytic[worst]!r}, central difference gives {numeric[worst]!r}"
            )
    return True
