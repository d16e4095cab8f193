"""The Tensor engine: reverse-mode automatic differentiation on numpy.

How it works, in one paragraph. A :class:`Tensor` wraps a numpy array. Every
operation is a :class:`Function`: a small class whose ``forward`` computes the
output from the inputs' arrays and whose ``backward`` maps the gradient of the
output, ``g = dL/d(out)``, to the gradients of the inputs by the chain rule.
Built-in ops (:mod:`minigrad.ops`) and the ops users write are the same kind of
class, applied the same way (``Exp.apply(t)``). When some input requires
gradients, the output remembers the Function instance that made it (its
``ctx``, holding the inputs and whatever ``forward`` saved). ``loss.backward()``
walks the recorded graph from the loss back to the leaves, visiting each node
after every node that uses it (iteratively, so chains of any length work),
calls each ``backward``, and adds every contribution into the leaves'
``.grad``. All of that walk is one function,
:func:`run_backward`; every gradient an op returns is checked there against its
input's shape, in one place.

Gradients of gradients. Each ``backward`` is written with operators and methods
that numpy arrays and Tensors share (``g * b``, ``g.sum(axis)``, ``x.T``,
``g.reshape(shape)``) and with the few two-way functions of :mod:`minigrad.ops`
(``exp``, ``where``, ``sum_to``, ...). A first-order ``backward()`` runs it on
arrays, as fast as hand-written numpy. ``mg.autograd.grad(..., create_graph=True)``
runs the very same code on Tensors instead: the gradient is then built from
recorded ops, so it has a graph of its own and can be differentiated again,
to any order.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Union

import numpy as np

__all__ = [
    "Tensor",
    "Function",
    "concatenate",
    "stack",
    "linear",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "detect_anomaly",
    "manual_seed",
    "get_generator",
    "get_rng_state",
    "set_rng_state",
    "gradcheck",
    "gradgradcheck",
    "GradcheckError",
    "unbroadcast",
    "stable_sigmoid",
    "run_backward",
]

ArrayLike = Union["Tensor", np.ndarray, float, int, Sequence]
Axis = int | tuple[int, ...] | None

# ---------------------------------------------------------------------------
# Switches: gradient recording and anomaly detection (per thread), the one
# random generator.
# ---------------------------------------------------------------------------


class _ThreadState(threading.local):
    """Per-thread switch: a thread inside ``no_grad`` never affects another."""

    grad_enabled: bool = True
    #: Anomaly mode under create_graph: the node whose backward rule is running (its ops are recorded).
    backward_of: Any = None
    #: True while a backward into ``.grad`` walks its nodes, leaves' gradients still arriving (register_hook).
    adding_into_grads: bool = False


_state = _ThreadState()
_generator = np.random.default_rng()
# Anomaly detection is a debugging switch for the whole process (one global test per op when off).
_anomaly = False
# The recorder of mg.compile while it records a step (minigrad/compile.py), else None: one test per op.
_tape: Any = None
# How many in-place changes minigrad has made to any tensor; a tensor's _version is its value at the
# tensor's last change. Backward compares one integer per node to know that nothing changed.
_edits = 0


def is_grad_enabled() -> bool:
    """Return True when new operations are being recorded for backward() (in this thread)."""
    return _state.grad_enabled


class _GradMode(contextlib.ContextDecorator):
    """Set whether operations are recorded inside a block; restore it after."""

    enabled: bool

    def _recreate_cm(self) -> _GradMode:
        return type(self)()  # a fresh one per decorated call, so recursion restores correctly

    def __enter__(self) -> None:
        self._previous = _state.grad_enabled
        _state.grad_enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self._previous


class no_grad(_GradMode):
    """Context manager (or decorator) under which no operation is recorded.

    Results computed inside have ``requires_grad=False`` and no graph, so
    evaluation and parameter updates cost no memory for backward. The switch
    belongs to the current thread only.
    """

    enabled = False


class enable_grad(_GradMode):
    """Turn recording back on inside a ``no_grad`` block (the current thread only)."""

    enabled = True




class detect_anomaly(contextlib.ContextDecorator):
    """Context manager under which the first op that makes a NaN or infinity raises.

    Inside it, every op's forward output and every gradient its backward
    returns is checked; the first one holding a NaN or an infinity raises
    ``FloatingPointError`` naming the op, its input shapes, the phase
    (forward or backward) and the line of user code that created the op.
    Off by default; when off it costs one flag test per op. The switch is
    for the whole process (it is a debugging aid), unlike ``no_grad``.
    """

    def __enter__(self) -> None:
        global _anomaly
        self._previous = _anomaly
        _anomaly = True

    def __exit__(self, *exc: object) -> None:
        global _anomaly
        _anomaly = self._previous


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


def get_rng_state() -> dict[str, Any]:
    """The state of the generator :func:`manual_seed` seeds, in a form a checkpoint keeps (PyTorch's name).

    Dropout's masks, ``mg.data.batches``' shuffles and the layers' initial
    weights all draw from that generator, so a run that uses them resumes
    bit-identically only if its checkpoint holds this state too::

        mg.save({"model": model.state_dict(), "optim": opt.state_dict(), "rng": mg.get_rng_state()}, path)
        ...
        mg.set_rng_state(mg.load(path)["rng"])

    It is numpy's ``bit_generator.state`` with each integer written as
    decimal text (PCG64's are 128-bit, more than an array holds).
    """
    return _as_text_ints(_generator.bit_generator.state)


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore a :func:`get_rng_state` into the generator, in place (a generator held elsewhere follows).

    A state of another bit generator, or one that is not a state, raises
    ValueError and leaves the generator as it was.
    """
    name = type(_generator.bit_generator).__name__
    if not isinstance(state, Mapping) or state.get("bit_generator") != name:
        got = state.get("bit_generator") if isinstance(state, Mapping) else type(state).__name__
        raise ValueError(f"set_rng_state: expected the state of a {name} generator, as get_rng_state() returns, "
                         f"got {got!r:.80}")
    before = _generator.bit_generator.state
    try:
        _generator.bit_generator.state = _from_text_ints(state)
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        _generator.bit_generator.state = before
        raise ValueError(f"set_rng_state: the state is not one get_rng_state() returned ({e})") from None


def _as_text_ints(value: Any) -> Any:
    """``value`` with every Python int in it (nested in dicts) written as decimal text."""
    if isinstance(value, dict):
        return {k: _as_text_ints(v) for k, v in value.items()}
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _from_text_ints(value: Any) -> Any:
    """The inverse of :func:`_as_text_ints`: decimal text back to ints (a generator's name stays a name)."""
    if isinstance(value, Mapping):
        return {k: _from_text_ints(v) for k, v in value.items()}
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:  # (a number a checkpoint gave back as an array)
        return value.item()
    return value


# ---------------------------------------------------------------------------
# Array helpers: broadcasting's adjoint, a stable sigmoid, axes.
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
    """σ(x) = 1 / (1 + e^-x) on an array, from z = e^-|x| so that it never overflows.

    σ(|x|) = 1 / (1 + z), and σ(-|x|) = z·σ(|x|), which keeps full relative
    precision far into the negative tail: σ(-20) in float32 is 2.06e-9, where
    the form (1 + tanh(x/2)) / 2 rounds it to 0 (and log σ to -inf).
    """
    z = np.exp(-np.abs(x))
    s = 1 / (1 + z)
    return np.where(x >= 0, s, z * s)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def normalize_axes(axis: Axis, ndim: int, op: str) -> tuple[int, ...]:
    """Turn ``axis`` (None, an int or a tuple of ints) into sorted non-negative axes.

    As in PyTorch, a 0-d tensor takes axis 0 or -1 as if it had one axis of
    length 1; reducing over that changes nothing, so it becomes no axis at all.
    Booleans and other non-integers are refused (``axis=True`` is not axis 1).
    """
    if axis is None:
        return tuple(range(ndim))
    axes: Any = (axis,) if _is_int(axis) else axis
    if not isinstance(axes, (tuple, list)) or not all(_is_int(a) for a in axes):
        raise TypeError(f"{op}: axis must be an int, a tuple of ints or None, got {axis!r}")
    n = max(ndim, 1)
    out = []
    for a in axes:
        if not -n <= a < n:
            raise ValueError(f"{op}: axis {a} is out of range for a tensor of {ndim} dimensions")
        out.append(int(a) % n)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(out)) if ndim else ()


def check_flag(op: str, name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool; otherwise raise naming the argument."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be True or False, got {value!r}")
    return bool(value)


# ---------------------------------------------------------------------------
# Function: one op, forward and backward together
# ---------------------------------------------------------------------------


class Function:
    """One differentiable operation: subclass it, write ``forward`` and ``backward``.

    ``forward(ctx, *args)`` gets the inputs' numpy arrays (other arguments as
    they are) and returns the output array; ``ctx.save_for_backward(...)``
    keeps what backward needs. ``backward(ctx, g)`` gets ``g = dL/d(out)`` and
    returns one gradient per argument of ``forward`` (None where there is
    none), each of its input's shape; the engine checks that. ``ctx`` is an
    instance of the Function, so ``forward`` may also set plain attributes on
    it (``ctx.axis = axis``). ``ctx.needs_input_grad`` says which arguments
    need a gradient. Use it as ``MyOp.apply(t, ...)``:

        class Sin(mg.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return np.sin(x)

            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return g * mg.ops.cos(x)  # d/dx sin x = cos x

    ``backward`` runs on arrays for a first-order gradient. Under
    ``mg.autograd.grad(..., create_graph=True)`` it runs on Tensors (the saved
    inputs and output become the graph's own tensors), so that the gradient
    can be differentiated again; write it with operators, Tensor/array
    methods and the two-way functions of :mod:`minigrad.ops` (``exp``,
    ``cos``, ``where``, ``sum_to``, ...) to allow that. A value saved that is
    neither an input's array nor the output is a constant in that case. Set
    ``once_differentiable = True`` on a Function whose backward uses numpy
    directly: differentiating it twice then raises a clear error.
    """

    #: The op's name in graphs and messages; the lower-cased class name unless set.
    name: str = ""
    #: True for a Function whose backward works on arrays only.
    once_differentiable: bool = False

    inputs: tuple[Any, ...]
    needs_input_grad: tuple[bool, ...]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__.lower()
        for method in ("forward", "backward"):
            if method in cls.__dict__ and not isinstance(cls.__dict__[method], staticmethod):
                raise TypeError(
                    f"Function {cls.__name__}: {method} must be a @staticmethod (the engine calls "
                    f"{method}(ctx, ...) with the op's own context as ctx); put @staticmethod above it"
                )

    @staticmethod
    def forward(ctx: Any, *args: Any) -> np.ndarray:
        """Compute the output array from the inputs' arrays; subclasses define it."""
        raise NotImplementedError("a Function must define forward(ctx, *args)")

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        """Map dL/d(out) to one gradient per input; subclasses define it."""
        raise NotImplementedError("a Function must define backward(ctx, g)")

    # Defaults, read from the class until forward sets them (fewer attribute writes per op).
    #: What forward saved: arrays for a first-order backward, Tensors under create_graph.
    saved_tensors: tuple[Any, ...] = ()
    _edits = 0
    _created_at = ""  # where user code created the op (set in anomaly mode)

    def save_for_backward(self, *values: Any) -> None:
        """Keep arrays for backward (read back with ``ctx.saved_tensors``)."""
        self.saved_tensors = values

    def _graph_saved(self, node: Tensor) -> tuple[Any, ...]:
        """The saved values as the graph's Tensors: each is an input's array, the output's, or a constant."""
        out = []
        for value in self.saved_tensors:
            if value is node.data:
                out.append(node)
                continue
            owners = [t for t in self.inputs if isinstance(t, Tensor) and value is t.data]
            if owners and any(t is not owners[0] for t in owners):
                # Two different tensors over one array (x and Tensor(x.data)): which one was saved, the one
                # that needs the gradient or the constant, cannot be told, and a guess could be silently wrong.
                other = next(t for t in owners if t is not owners[0])
                i = next(k for k, t in enumerate(self.inputs) if t is owners[0])
                j = next(k for k, t in enumerate(self.inputs) if t is other)
                raise RuntimeError(
                    f"backward of {self.name}: inputs {i} and {j} are different tensors over one array (as "
                    "Tensor(x.data) is of x), so its gradient cannot be differentiated again; make the constant "
                    "with x.detach() (a view) or a copy"
                )
            if owners:
                out.append(owners[0])
            else:
                out.append(Tensor(value) if isinstance(value, np.ndarray) and value.dtype.kind == "f" else value)
        return tuple(out)

    @classmethod
    def apply(cls, *args: Any) -> Tensor:
        """Run the op on ``args`` (Tensors and plain values); record it when an input needs grad."""
        ctx = object.__new__(cls)  # (the context is the Function instance itself)
        arrays = []
        needs = []
        for a in args:  # the inputs' arrays for forward, and which inputs need a gradient
            if isinstance(a, Tensor):
                arrays.append(a.data)
                needs.append(a.requires_grad)
            else:
                arrays.append(a)
                needs.append(False)
        if _tape is not None:  # mg.compile: what the step's code changed before this op is checked first
            _tape.before_forward(cls)
        data = cls.forward(ctx, *arrays)
        if type(data) is not np.ndarray:  # a numpy scalar (ufuncs return them for 0-d inputs)
            scalar, data = data, np.asarray(data)
            if ctx.saved_tensors:  # a saved output must be the output's own array, to map back to it
                ctx.saved_tensors = tuple(data if v is scalar else v for v in ctx.saved_tensors)
        out = Tensor.__new__(Tensor)
        out.data = data
        out.grad = None
        out._version = 0
        out._hooks = None
        if _anomaly:
            _check_finite(cls, data, args, "forward")
        if True in needs and _state.grad_enabled:
            if data is arrays[0]:  # a forward that returned its input (an identity): its own array object, so
                out.data = data = data.view()  # that create_graph can tell the output from the input
            ctx.inputs = args  # Tensors and plain values; needs_input_grad marks the Tensors that matter
            ctx.needs_input_grad = tuple(needs)
            if _edits:
                ctx._edits = _edits  # to tell, at backward, whether anything changed in place since
            if _anomaly:
                ctx._created_at = _user_frame()
            out.requires_grad = True
            out._ctx = ctx
        else:
            out.requires_grad = False
            out._ctx = None
        if _tape is not None:
            _tape.on_forward(cls, ctx, args, out, needs)
        return out

    def __repr__(self) -> str:
        return f"<{type(self).__name__} node>"


class _Released(Function):
    """What a node holds after backward() released its graph."""

    name = "released"

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        raise RuntimeError(
            "backward: the graph through this tensor was released by an earlier backward(); "
            "run the forward pass again, or pass retain_graph=True to the first backward()"
        )


_RELEASED = _Released.__new__(_Released)
_RELEASED.inputs = ()
_RELEASED.needs_input_grad = ()


_PACKAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")  # minigrad's own files are in here


_OURS: dict[str, bool] = {}  # file name -> whether it is one of minigrad's own files


def _user_frames() -> Iterator[tuple[Any, bool]]:
    """The stack frames above the caller's, each with whether it runs code of minigrad's own files.

    It walks the frames directly (``sys._getframe``), which costs far less
    than formatting the whole stack, since anomaly mode does it for every op.
    """
    frame: Any = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        ours = _OURS.get(name)
        if ours is None:
            ours = _OURS[name] = os.path.abspath(name).startswith(_PACKAGE_DIR)
        yield frame, ours
        frame = frame.f_back


def _user_frame() -> str:
    """The innermost stack frame outside minigrad's own files, as 'file:line: code'."""
    for frame, ours in _user_frames():
        if not ours:
            name = frame.f_code.co_filename
            return f"{name}:{frame.f_lineno}: {linecache.getline(name, frame.f_lineno).strip()}"
    return "(unknown)"


def _user_stacklevel() -> int:
    """The ``stacklevel`` for ``warnings.warn`` called right here that points at the user's line.

    It counts the frames of minigrad's own files above the caller (a layer called through Sequential and
    Module.__call__ has several), as ``_user_frame`` finds the first outside them.
    """
    level = 1
    for _, ours in _user_frames():
        if not ours:
            return level
        level += 1
    return level


def _nonfinite(value: Any) -> str | None:
    """"a NaN" or "an infinity" if the floating array in ``value`` (a Tensor's, or an array) holds one, else None."""
    array = value.data if isinstance(value, Tensor) else value
    if isinstance(array, np.ndarray) and array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        return "a NaN" if np.isnan(array).any() else "an infinity"
    return None


def _check_finite(
    fn: type[Function] | Function, value: Any, inputs: Sequence[Any], phase: str, where: str = ""
) -> None:
    """Anomaly mode: raise FloatingPointError if ``value`` holds a NaN or an infinity."""
    kind = _nonfinite(value)
    if kind is not None:
        shapes = ", ".join(str(a.shape) for a in inputs if isinstance(a, (Tensor, np.ndarray)))
        node = _state.backward_of
        if node is not None and phase == "forward":  # an op of a backward rule that runs on Tensors
            where = node._created_at
            made = f"; {node.name} was created at {where}" if where else ""
            raise FloatingPointError(
                f"detect_anomaly: {node.name} produced {kind} in its backward pass (in the {fn.name} op its "
                f"gradient is built from, input shapes {shapes}, under create_graph){made}"
            )
        if not where and phase == "forward":
            where = _user_frame()
        if where:
            made = f"; the op was created at {where}"
        else:  # backward of an op recorded outside anomaly mode: its line was not kept
            made = "; run the forward pass inside detect_anomaly() too, to see the line that created the op"
        raise FloatingPointError(
            f"detect_anomaly: {fn.name} produced {kind} in its {phase} pass "
            f"(input shapes {shapes}){made}"
        )


def _check_seed(g: Any, what: str) -> None:
    """Anomaly mode: raise if a gradient that no op made (a seed, a hook's return) holds a NaN or an infinity."""
    kind = _nonfinite(g)
    if kind is not None:
        shape = g.shape if isinstance(g, Tensor) else np.shape(g)
        raise FloatingPointError(f"detect_anomaly: {what} holds {kind} (shape {shape}): no op's backward made it")


# ---------------------------------------------------------------------------
# Tensor
# ---------------------------------------------------------------------------

_FLOAT_KINDS = "f"


def _to_array(data: Any, dtype: Any) -> np.ndarray:
    """Convert user data to a floating (or boolean) numpy array, explaining any refusal."""
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
    checked = dtype is None and arr.dtype.kind in "iu"  # integers into the default float32: checked to be exact
    if dtype is None:
        if arr.dtype.kind == "b":
            return arr  # a boolean mask stays boolean, as in numpy and PyTorch
        keep = isinstance(data, (np.ndarray, np.generic)) and arr.dtype.kind == "f"
        dtype = arr.dtype if keep else np.dtype(np.float32)
    if checked:
        _check_exact_in_float32(arr)
    out = arr.astype(dtype, copy=False)
    if _tape is not None and isinstance(data, np.ndarray) and out is not data:
        _tape.on_cast(data, out, checked)  # mg.compile: a step argument cast here is read, and cast, at every replay
    return out


def _check_exact_in_float32(arr: np.ndarray) -> None:
    """Refuse integer data that float32, the default dtype, would round (whole numbers above 2**24)."""
    if arr.size and int(np.abs(arr).max()) > 2**24:  # (below, every one is exact)
        rounded = arr.astype(np.float32).astype(arr.dtype) != arr
        if rounded.any():
            raise ValueError(
                f"Tensor: integer data such as {arr[rounded].flat[0]} cannot be held exactly in float32 (whole "
                "numbers above 2**24 round); pass dtype=np.float64, or, to index a tensor, use the integer "
                "array itself instead of a Tensor of it"
            )


class RemovableHandle:
    """Returned by :meth:`Tensor.register_hook`; ``handle.remove()`` takes the hook away."""

    def __init__(self, hooks: list[Callable[[Any], Any]], hook: Callable[[Any], Any]) -> None:
        self._hooks = hooks
        self._hook = hook

    def remove(self) -> None:
        """Remove the hook (doing it twice is harmless)."""
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


class Tensor:
    """An n-dimensional array that records the operations that made it.

    ``Tensor(data, requires_grad=False, dtype=None)``: ``data`` is a number,
    nested lists or a numpy array. Python numbers, lists and integer arrays
    become float32 (integers that float32 would round, some above 2**24, are
    refused: pass ``dtype=np.float64``); a floating numpy array keeps its dtype (float64 stays
    float64), unless ``dtype`` says otherwise; booleans stay boolean (masks).
    A numpy array that already has the target dtype is used without a copy,
    as ``np.asarray`` would.

    After ``loss.backward()``, every tensor created with ``requires_grad=True``
    that the loss depends on holds ``dloss/dtensor`` in ``.grad`` (a numpy
    array). ``.data`` is the array itself: writing into it directly is not
    tracked by the version counter (as in PyTorch), so a backward that needs
    the old values cannot notice; in-place changes made through minigrad
    (``optimizer.step()``, ``nn.init``, ``load_state_dict``) are tracked.

    Arithmetic operators (``+ - * / ** @``, unary ``-``) record ops and
    broadcast as numpy does. Comparisons (``< <= > >= == !=``) give boolean
    masks, which carry no gradient and combine with ``& | ^ ~``:
    ``mg.where((x > 0) & (x < 1), x, 0.0)``.
    """

    __slots__ = (
        "data", "grad", "requires_grad", "_ctx", "_version", "_hooks", "_base", "__weakref__",
    )
    # Make numpy defer to Tensor: `np.ones(3) + t` calls Tensor.__radd__.
    __array_ufunc__ = None

    data: np.ndarray
    grad: np.ndarray | None
    requires_grad: bool
    _ctx: Function | None
    _version: int  # the value of the global count of in-place changes at this tensor's last one
    _hooks: list[Callable[[Any], Any]] | None
    _base: Any  # set on a view (ops._View, detach): the owner of the memory it shares (a leaf, or a _Memory)

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype: Any = None) -> None:
        if type(data) is np.ndarray and requires_grad is False and dtype is None and data.dtype.kind == "f":
            # Speed device: the common case (a float array, no options), which none of the checks below
            # can refuse, sets the fields at once; it is Tensor(xb) in every training step.
            self.data = data
            self.grad = None
            self.requires_grad = False
            self._ctx = None
            self._version = 0
            self._hooks = None
            return
        owner = view = None
        if isinstance(data, Tensor):
            owner = _memory_owner(data)  # a view of that memory (unless a dtype makes a copy, below)
            data = view = data.data.view()  # a constant over t's memory, told apart from t when differentiating twice
        if dtype is None and type(data) is np.ndarray and data.dtype.kind == "f":
            self.data = data  # the common case, a float array: used as it is
        else:
            self.data = _to_array(data, dtype)
        if not isinstance(requires_grad, (bool, np.bool_)):
            raise TypeError(f"Tensor: requires_grad must be True or False, got {requires_grad!r}")
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating tensors can require grad, got dtype {self.data.dtype}")
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self._version = 0
        self._hooks = None
        if owner is not None and self.data is view:  # still a view (no dtype copy): one memory
            self._base = owner

    # -- bookkeeping --------------------------------------------------------

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

    @property
    def is_leaf(self) -> bool:
        """True for a tensor no recorded op made (a parameter, an input, a constant)."""
        return self._ctx is None

    @property
    def op(self) -> str:
        """The name of the op that made this tensor ("" for a leaf)."""
        return "" if self._ctx is None else self._ctx.name

    @property
    def version(self) -> int:
        """The version counter: it grows at every in-place change minigrad makes (0 for a new tensor).

        It counts minigrad's in-place changes of any tensor, read at this
        tensor's last one, so one number per op tells backward that nothing
        it saved has changed since the forward pass.
        """
        return self._version

    def bump_version(self) -> None:
        """Record an in-place change of ``.data`` (optimizers, ``nn.init`` and ``load_state_dict`` call it).

        On a view (``W[0]``, ``W.T``, ``W.detach()``, ``Tensor(W)``) the change is
        also recorded on the tensor whose memory it shares, as it changed too.
        """
        bump_versions((self,))

    def __len__(self) -> int:
        """The length of the first axis."""
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor: it has no axis; t.shape is ()")
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        """The tensor's rows along its first axis, as Tensors (in the graph); a 0-d tensor is not iterable."""
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor: it has no axis to iterate over; use t.item()")
        return (self[i] for i in range(len(self.data)))

    def __bool__(self) -> bool:
        """The truth of a one-element tensor; several elements are ambiguous, as in numpy."""
        if self.data.size != 1:
            raise ValueError(
                f"bool: the truth value of a tensor of shape {self.shape} is ambiguous; "
                "use (t != 0).any() or .all() style reductions on .data, or t.item() for one element"
            )
        if _tape is not None:  # mg.compile is recording: a replay will not run the Python that reads this
            _tape.on_read("bool(tensor)")
        return bool(self.data.reshape(()))

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(", precision=4)
        extra = f", dtype={self.dtype}" if self.dtype != np.float32 else ""
        if self._ctx is not None:
            extra += f", op={self._ctx.name}"
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
        if _tape is not None:  # mg.compile is recording: a replay will not run the Python that reads this
            _tape.on_read("item()")
        return self.data.item()

    def __float__(self) -> float:
        """``float(t)`` of a one-element tensor, as numpy and PyTorch allow (the same as ``t.item()``)."""
        return float(self.item())

    def __int__(self) -> int:
        """``int(t)`` of a one-element tensor: its value truncated toward zero, as ``int(np.float64(x))``."""
        return int(self.item())

    def detach(self) -> Tensor:
        """Return a tensor sharing ``.data``'s memory that is cut off from the graph.

        Its array is a view of this tensor's (the same numbers, another array
        object), so that a backward differentiated again (``create_graph``)
        can tell ``x.detach()``, a constant, from ``x`` in ``x * x.detach()``.
        """
        out = Tensor(self.data.view())
        out._base = _memory_owner(self)  # an in-place change of either is a change of the other
        return out

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad = None``)."""
        self.grad = None

    # -- looking inside: hooks, retained gradients, the graph -----------------

    def register_hook(self, hook: Callable[[Any], Any]) -> RemovableHandle:
        """Call ``hook(grad)`` each time this tensor's gradient is computed in a backward pass.

        ``grad`` is the whole gradient of this tensor for that pass (an array;
        a Tensor under ``create_graph``). If the hook returns something other
        than None, it replaces the gradient that flows on (PyTorch's
        semantics). Returns a handle whose ``remove()`` takes the hook away.

        A hook (or a Function's backward) may register hooks on tensors the
        pass has not reached yet. On a leaf whose ``.grad`` is already set,
        that is refused (RuntimeError), also when an earlier pass set it
        (gradients accumulated without ``zero_grad``): part of this pass's
        gradient may be in ``.grad`` already, and the new hook would see only
        the rest.
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad, so no gradient will reach it")
        if not callable(hook):
            raise TypeError(f"register_hook: hook must be callable, got {type(hook).__name__}")
        if _state.adding_into_grads and self._ctx is None and self.grad is not None:
            # A backward into .grad adds a leaf's gradient into .grad as each part arrives, unless the leaf has
            # a hook, which must see the sum. A hook registered now would see only the parts still to come.
            raise RuntimeError(
                f"register_hook: a hook on a leaf of shape {self.shape} registered while backward() runs (from "
                "a hook or a Function's backward), with the leaf's .grad already set (by this pass or an earlier "
                "one): it would see only part of this pass's gradient; register it before backward()"
            )
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return RemovableHandle(self._hooks, hook)

    def retain_grad(self) -> None:
        """Keep this intermediate tensor's gradient in ``.grad`` after backward (leaves always do).

        It accumulates over backward calls, as a leaf's does. (It is a hook
        that adds the gradient into ``.grad``, registered once.)
        """
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        if self._ctx is None or self.retains_grad:
            return
        self.register_hook(_RetainGrad(self))

    @property
    def retains_grad(self) -> bool:
        """True when :meth:`retain_grad` was called on this non-leaf tensor."""
        return any(isinstance(h, _RetainGrad) for h in self._hooks or ())

    def graph(self, params: Iterable[tuple[str, Tensor]] | None = None) -> str:
        """The graph behind this tensor as indented text, one line per op or leaf."""
        from minigrad.graph import graph_text

        return graph_text(self, params=params)

    # -- backward ------------------------------------------------------------

    def backward(self, grad: ArrayLike | None = None, retain_graph: bool = False) -> None:
        """Backpropagate from this tensor, adding into every leaf's ``.grad``.

        ``grad`` is dL/d(self); it may be omitted only when self has one
        element (it is then 1). Gradients accumulate over calls until they are
        zeroed. Unless ``retain_graph`` is True the graph is released
        afterwards: intermediate tensors no longer hold their inputs, so
        memory stays flat in a training loop. With ``retain_graph=True`` it is
        kept, to be drawn or backpropagated again.
        """
        if retain_graph is not False:
            check_flag("backward", "retain_graph", retain_graph)
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
            if _tape is not None:
                _tape.on_unit_seed(g)  # (mg.compile: this 1 is the replay's own, not a gradient the step made)
        else:
            given = grad.data if isinstance(grad, Tensor) else grad
            g = np.asarray(given, dtype=self.dtype)
            if _tape is not None and isinstance(given, np.ndarray) and g is not given:
                _tape.on_cast(given, g, False)  # (mg.compile: as in _to_array)
            if g.shape != self.shape:
                raise ValueError(
                    f"backward: grad has shape {g.shape} but the output has shape {self.shape}"
                )
        run_backward([self], [g], retain_graph=retain_graph)

    def _topological_order(self) -> list[Tensor]:
        """Non-leaf nodes reachable from self, each before all of its inputs."""
        return topological_order([self])

    # -- arithmetic (binary ops broadcast; sum_to undoes it) ------------------

    def _other(self, other: ArrayLike) -> Tensor:
        """Wrap a number or array as a constant of this tensor's dtype."""
        if isinstance(other, Tensor):
            return other
        dtype = self.data.dtype if self.data.dtype.kind == "f" else None
        return Tensor(_to_array(other, dtype))

    def __add__(self, other: ArrayLike) -> Tensor:
        """a + b, broadcasting."""
        return ops.Add.apply(self, self._other(other))

    def __radd__(self, other: ArrayLike) -> Tensor:
        """other + a, for a number or array on the left."""
        return ops.Add.apply(self._other(other), self)

    def __sub__(self, other: ArrayLike) -> Tensor:
        """a - b, broadcasting."""
        return ops.Sub.apply(self, self._other(other))

    def __rsub__(self, other: ArrayLike) -> Tensor:
        """other - a, for a number or array on the left."""
        return ops.Sub.apply(self._other(other), self)

    def __mul__(self, other: ArrayLike) -> Tensor:
        """a * b, elementwise, broadcasting."""
        return ops.Mul.apply(self, self._other(other))

    def __rmul__(self, other: ArrayLike) -> Tensor:
        """other * a, for a number or array on the left."""
        return ops.Mul.apply(self._other(other), self)

    def __truediv__(self, other: ArrayLike) -> Tensor:
        """a / b, elementwise, broadcasting."""
        return ops.Div.apply(self, self._other(other))

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        """other / a, for a number or array on the left."""
        return ops.Div.apply(self._other(other), self)

    def __pow__(self, exponent: ArrayLike) -> Tensor:
        """a ** p for a number p, or a ** b for a tensor (or array) exponent b."""
        if isinstance(exponent, (int, float, np.integer, np.floating)) and not isinstance(exponent, bool):
            return ops.PowScalar.apply(self, float(exponent))  # a Python float keeps the tensor's dtype
        return ops.Pow.apply(self, self._other(exponent))

    def __rpow__(self, base: ArrayLike) -> Tensor:
        """base ** a, for a number or array as the base."""
        return ops.Pow.apply(self._other(base), self)

    def __neg__(self) -> Tensor:
        """-a."""
        return ops.Neg.apply(self)

    def __matmul__(self, other: ArrayLike) -> Tensor:
        """a @ b with numpy's matmul rules (1-D, 2-D, batched)."""
        return ops.MatMul.apply(self, self._other(other))

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        """other @ a, for an array on the left."""
        return ops.MatMul.apply(self._other(other), self)

    # -- comparisons: not differentiable, they give boolean masks ---------------

    def __lt__(self, other: ArrayLike) -> Tensor:
        """a < b, elementwise: a boolean Tensor (a mask; no gradient)."""
        return ops.compare("lt", self, other)

    def __le__(self, other: ArrayLike) -> Tensor:
        """a <= b, elementwise: a boolean Tensor."""
        return ops.compare("le", self, other)

    def __gt__(self, other: ArrayLike) -> Tensor:
        """a > b, elementwise: a boolean Tensor."""
        return ops.compare("gt", self, other)

    def __ge__(self, other: ArrayLike) -> Tensor:
        """a >= b, elementwise: a boolean Tensor."""
        return ops.compare("ge", self, other)

    def __eq__(self, other: object) -> Tensor:  # type: ignore[override]
        """a == b, elementwise: a boolean Tensor (Tensors still hash by identity)."""
        return ops.compare("eq", self, other)

    def __ne__(self, other: object) -> Tensor:  # type: ignore[override]
        """a != b, elementwise: a boolean Tensor."""
        return ops.compare("ne", self, other)

    __hash__ = object.__hash__

    # -- logic on boolean masks: &, |, ^, ~ (no gradient) ----------------------

    def __and__(self, other: ArrayLike) -> Tensor:
        """a & b on boolean masks, elementwise: ``(x > 0) & (x < 1)``."""
        return ops.logical("and", self, other)

    def __rand__(self, other: ArrayLike) -> Tensor:
        """b & a, for a mask array on the left."""
        return ops.logical("and", other, self)

    def __or__(self, other: ArrayLike) -> Tensor:
        """a | b on boolean masks, elementwise."""
        return ops.logical("or", self, other)

    def __ror__(self, other: ArrayLike) -> Tensor:
        """b | a, for a mask array on the left."""
        return ops.logical("or", other, self)

    def __xor__(self, other: ArrayLike) -> Tensor:
        """a ^ b on boolean masks, elementwise: True where exactly one holds."""
        return ops.logical("xor", self, other)

    def __rxor__(self, other: ArrayLike) -> Tensor:
        """b ^ a, for a mask array on the left."""
        return ops.logical("xor", other, self)

    def __invert__(self) -> Tensor:
        """~a on a boolean mask: True where it is False."""
        return ops.logical_not(self)

    # -- reductions ----------------------------------------------------------

    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (an int, a tuple or None for all)."""
        return ops.Sum.apply(self, normalize_axes(axis, self.ndim, "sum"), check_flag("sum", "keepdims", keepdims))

    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis`` (an int, a tuple or None for all)."""
        axes = normalize_axes(axis, self.ndim, "mean")
        return ops.Mean.apply(self, axes, check_flag("mean", "keepdims", keepdims))

    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``; the gradient is shared equally among ties."""
        axes = normalize_axes(axis, self.ndim, "max")
        return ops.Max.apply(self, axes, check_flag("max", "keepdims", keepdims), "max")

    def min(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Minimum over ``axis``; the gradient is shared equally among ties."""
        axes = normalize_axes(axis, self.ndim, "min")
        return ops.Max.apply(self, axes, check_flag("min", "keepdims", keepdims), "min")

    def logsumexp(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """log Σ exp(a) over ``axis``, shifted by the max so it never overflows."""
        axes = normalize_axes(axis, self.ndim, "logsumexp")
        return ops.LogSumExp.apply(self, axes, check_flag("logsumexp", "keepdims", keepdims))

    def var(self, axis: Axis = None, keepdims: bool = False, correction: int = 1) -> Tensor:
        """Variance over ``axis``: Σ(a - mean)² / (n - correction), as PyTorch (correction=1 by default)."""
        return ops.variance(self, axis, keepdims, correction, "var")

    def std(self, axis: Axis = None, keepdims: bool = False, correction: int = 1) -> Tensor:
        """Standard deviation over ``axis``: the square root of :meth:`var`."""
        return ops.Std.apply(ops.variance(self, axis, keepdims, correction, "std"))

    # -- elementwise functions -------------------------------------------------

    def exp(self) -> Tensor:
        """e^a, elementwise."""
        return ops.Exp.apply(self)

    def log(self) -> Tensor:
        """Natural logarithm, elementwise."""
        return ops.Log.apply(self)

    def log1p(self) -> Tensor:
        """ln(1 + a), elementwise, accurate for small a."""
        return ops.Log1p.apply(self)

    def expm1(self) -> Tensor:
        """e^a - 1, elementwise, accurate for small a."""
        return ops.Expm1.apply(self)

    def sqrt(self) -> Tensor:
        """√a, elementwise."""
        return ops.Sqrt.apply(self)

    def abs(self) -> Tensor:
        """|a|, elementwise (gradient sign(a), 0 at 0 as in PyTorch)."""
        return ops.Abs.apply(self)

    def __abs__(self) -> Tensor:
        """abs(a)."""
        return ops.Abs.apply(self)

    def sin(self) -> Tensor:
        """sin a, elementwise."""
        return ops.Sin.apply(self)

    def cos(self) -> Tensor:
        """cos a, elementwise."""
        return ops.Cos.apply(self)

    def tanh(self) -> Tensor:
        """Hyperbolic tangent, elementwise."""
        return ops.Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        """σ(a) = 1 / (1 + e^-a), computed from e^-|a| so it never overflows (stable_sigmoid)."""
        return ops.Sigmoid.apply(self)

    def relu(self) -> Tensor:
        """max(a, 0), elementwise."""
        return ops.ReLU.apply(self)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:
        """Limit values to [min, max] (either may be None); gradient 1 inside, 0 where clipped."""
        return ops.clip(self, min, max)

    def softmax(self, axis: int = -1) -> Tensor:
        """exp(a) / sum(exp(a)) along ``axis``, shifted by the max for stability."""
        return ops.Softmax.apply(self, normalize_axes(axis, self.ndim, "softmax"))

    def log_softmax(self, axis: int = -1) -> Tensor:
        """a - logsumexp(a) along ``axis``, stable for logits in the thousands."""
        return ops.LogSoftmax.apply(self, normalize_axes(axis, self.ndim, "log_softmax"))

    # -- shape ---------------------------------------------------------------

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        """Same data, new shape; one dimension may be -1."""
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, tuple(shape))

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        """Permute the axes (reverse them when none are given), like numpy."""
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = tuple(axes[0])
        return ops.Transpose.apply(self, ops.permutation(axes, self.shape))  # type: ignore[arg-type]

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        """Exchange two axes, like numpy's swapaxes."""
        perm = list(range(self.ndim))
        a1, a2 = normalize_axes(axis1, self.ndim, "swapaxes"), normalize_axes(axis2, self.ndim, "swapaxes")
        perm[a1[0]], perm[a2[0]] = perm[a2[0]], perm[a1[0]]
        return self.transpose(perm)

    @property
    def T(self) -> Tensor:
        """The tensor with its axes reversed."""
        return self.transpose()

    def squeeze(self, axis: Axis = None) -> Tensor:
        """Remove axes of length 1 (all of them, or those in ``axis``)."""
        return ops.squeeze(self, axis)

    def unsqueeze(self, dim: int) -> Tensor:
        """Insert an axis of length 1 at ``dim`` (PyTorch's name; numpy's expand_dims)."""
        return ops.unsqueeze(self, dim)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge axes start_dim..end_dim into one, as PyTorch's flatten."""
        return ops.flatten(self, start_dim, end_dim)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        """Repeat along new or length-1 axes to ``shape``, as numpy's broadcast_to."""
        return ops.broadcast_to(self, tuple(shape))

    def __getitem__(self, index: Any) -> Tensor:
        """Indexing with ints, slices, integer arrays and boolean masks; repeated indices add their gradients."""
        return ops.GetItem.apply(self, ops.as_index(index, self.shape))


def bump_versions(tensors: Iterable[Tensor]) -> int:
    """Record one in-place change of each tensor (what ``t.bump_version()`` does, for many at once).

    Returns the new version, for a caller that marks its tensors itself as it changes them.
    """
    global _edits
    if _tape is not None:  # mg.compile: a change made by the step's own code is not replayed
        tensors = list(tensors)
        _tape.on_bump(tensors)
    _edits += 1
    for t in tensors:
        t._version = _edits
        for base in _bases(t):  # a view: the memory it shares changed too
            base._version = _edits
    return _edits


def _bases(t: Any) -> Iterator[Any]:
    """What the view ``t`` shares memory with: its ``_base``, that one's, ... (nothing if ``t`` owns its memory)."""
    base = getattr(t, "_base", None)
    while base is not None:
        yield base
        base = getattr(base, "_base", None)


class _RetainGrad:
    """The hook behind :meth:`Tensor.retain_grad`: add the gradient into ``t.grad``."""

    def __init__(self, t: Tensor) -> None:
        self.t = t

    def __call__(self, g: Any) -> None:
        _accumulate(self.t, g.data if isinstance(g, Tensor) else g)


def _accumulate(leaf: Tensor, g: np.ndarray) -> None:
    """Add ``g`` into ``leaf.grad`` (a copy the first time: ``g`` may be shared)."""
    if leaf.grad is None:
        leaf.grad = np.array(g, dtype=leaf.data.dtype)
    else:
        leaf.grad += g


# ---------------------------------------------------------------------------
# The backward walk, in one place
# ---------------------------------------------------------------------------


def topological_order(roots: Sequence[Tensor]) -> list[Tensor]:
    """Non-leaf nodes reachable from ``roots``, each before all of its inputs.

    Only non-leaves are ordered; leaves receive their gradients as they
    arrive. The graph of a training step is mostly a chain, layer after
    layer, so from a single root the chain at the top is walked directly:
    while a node has a single non-leaf input, that input comes next. From the
    first node with several, an iterative depth-first search (an explicit
    stack, so a chain of 100,000 ops does not hit Python's recursion limit)
    orders the rest; nothing above it can be reached from it, since the graph
    has no cycles. (An input that needs no gradient has no graph behind it,
    so only the inputs marked in ``needs_input_grad`` are followed.)
    """
    chain: list[Tensor] = []
    if len(roots) == 1:
        node = roots[0]
        while node._ctx is not None:
            chain.append(node)
            inner = None  # the one non-leaf input, if there is just one
            ctx = node._ctx
            for parent, need in zip(ctx.inputs, ctx.needs_input_grad):
                if need and parent._ctx is not None and parent is not inner:
                    if inner is not None:  # several: leave the chain
                        chain.pop()
                        return chain + _depth_first_order([node])
                    inner = parent
            if inner is None:
                return chain
            node = inner
        return chain
    return _depth_first_order(roots)


def _depth_first_order(roots: Sequence[Tensor]) -> list[Tensor]:
    """Post-order depth-first search from ``roots`` over non-leaves, reversed."""
    order: list[Tensor] = []
    visited: set[Tensor] = set()
    stack: list[tuple[Tensor, bool]] = [(r, False) for r in reversed(roots) if r._ctx is not None]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif node not in visited:
            visited.add(node)
            stack.append((node, True))
            ctx = node._ctx
            assert ctx is not None
            for parent, need in zip(ctx.inputs, ctx.needs_input_grad):
                if need and parent._ctx is not None and parent not in visited:
                    stack.append((parent, False))
    order.reverse()
    return order


def _run_hooks(t: Tensor, g: Any) -> Any:
    hooks = list(t._hooks or ())
    # retain_grad() keeps the gradient after every other hook, wherever it was registered (PyTorch's order).
    hooks.sort(key=lambda h: isinstance(h, _RetainGrad))
    for hook in hooks:
        replaced = hook(g)
        if replaced is not None:
            if isinstance(g, np.ndarray):
                replaced = np.asarray(replaced.data if isinstance(replaced, Tensor) else replaced, dtype=g.dtype)
            elif not isinstance(replaced, Tensor):  # under create_graph: a number or an array is a constant
                replaced = Tensor(np.asarray(replaced, dtype=g.dtype))
            if replaced.shape != g.shape:
                raise ValueError(
                    f"register_hook: a hook returned shape {replaced.shape} for a gradient of shape {g.shape}"
                )
            g = replaced
    return g


class _Memory:
    """The memory of an op's output that views share (``y.detach()``, ``y.T``): its version, and no graph.

    A change made through such a view (``nn.init.zeros_(y.detach())``) bumps it, and ``y`` sees it in its
    own version checks; the views keep this token, not ``y``, so that a chain of ``h = h.detach()`` does not
    keep every step's graph alive.
    """

    __slots__ = ("_version", "_base")

    def __init__(self) -> None:
        self._version = 0
        self._base = None


def _memory_owner(t: Tensor) -> Any:
    """What a view of ``t`` records as the owner of its memory (its ``_base``): a leaf, or a memory token.

    ``t`` itself if it is a leaf (it holds no graph); the owner ``t`` already records if it is a view; else
    (an op's output, which owns its memory) a :class:`_Memory` token that ``t`` and its views share.
    """
    if t._ctx is None:
        return t
    owner = getattr(t, "_base", None)
    if owner is None:
        owner = t._base = _Memory()
    return owner


def _memory_version(t: Tensor) -> int:
    """The last in-place change of ``t``'s memory: its own, or that of the tensor it is a view of (its _base)."""
    return max([t._version, *(base._version for base in _bases(t))])


def _check_versions(ctx: Function, node: Tensor) -> None:
    """Raise if an input or the output that ``ctx`` saved for backward was changed in place after the forward pass."""
    if _memory_version(node) > ctx._edits and any(v is node.data for v in ctx.saved_tensors):
        raise RuntimeError(
            f"backward of {ctx.name}: its output (shape {node.shape}), which it saved for backward, was modified "
            f"in place after the forward pass (its version is {_memory_version(node)}, the op saw {ctx._edits} or "
            "less); compute it again instead of changing it, or change a copy"
        )
    for i, t in enumerate(ctx.inputs):
        if (isinstance(t, Tensor) and _memory_version(t) > ctx._edits
                and any(v is t.data for v in ctx.saved_tensors)):
            view = " (through a tensor that shares its memory)" if t._version <= ctx._edits else ""
            raise RuntimeError(
                f"backward of {ctx.name}: input {i} (shape {t.shape}), which it saved for backward, was "
                f"modified in place after the forward pass{view} (its version is {_memory_version(t)}, the op "
                f"saw {ctx._edits} or less), e.g. by "
                "optimizer.step(); compute the loss again after changing the parameters"
            )


def _checked_gradient(name: str, i: int, pg: Any, shape: tuple[int, ...]) -> Any:
    """``pg``, the gradient the backward of ``name`` returned for its input ``i`` (of ``shape``), as an array or a
    Tensor (a numpy scalar made an array); raise unless it is one of that shape and of a floating dtype."""
    if isinstance(pg, (list, tuple)):
        raise RuntimeError(
            f"backward of {name}: the gradient for input {i} is a {type(pg).__name__}; a backward returns one "
            "array per input, several as a tuple (return dx, dy), not a list"
        )
    if type(pg) is not np.ndarray and not isinstance(pg, Tensor):
        pg = np.asarray(pg)  # a numpy scalar, returned by ufuncs for 0-d inputs
    if pg.shape != shape:
        raise RuntimeError(
            f"backward of {name}: the gradient for input {i} has shape {pg.shape}, "
            f"but that input has shape {shape}; a backward must return one gradient "
            "of each input's shape (sum over broadcast axes with minigrad.ops.sum_to)"
        )
    if pg.dtype.kind != "f":
        raise RuntimeError(f"backward of {name}: the gradient for input {i} has dtype {pg.dtype}, not a float")
    return pg


def _checked(ctx: Function, parent: Tensor, pg: Any, pgs: tuple[Any, ...]) -> Any:
    """The gradient ``pg`` an op returned for ``parent``, checked against that input (the slow path)."""
    # The argument's position: an op may take the same tensor twice (x * x), so match the gradient too.
    i = next(k for k, (t, p) in enumerate(zip(ctx.inputs, pgs)) if t is parent and p is pg)
    pg = _checked_gradient(ctx.name, i, pg, parent.data.shape)
    if pg.dtype != parent.data.dtype:  # mixed-precision inputs: each gradient takes its input's dtype
        if isinstance(pg, Tensor) and not _state.grad_enabled:  # a first-order walk: its array, cast (no op)
            pg = pg.data
        pg = ops.cast(pg, parent.data.dtype)
    return pg


def run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Any],
    *,
    retain_graph: bool = False,
    create_graph: bool = False,
    inputs: Sequence[Tensor] | None = None,
) -> list[Any] | None:
    """Propagate ``root_grads`` from ``roots`` back through the graph.

    The one backward walk, used by ``Tensor.backward`` (``inputs=None``: add
    into every leaf's ``.grad``) and by ``mg.autograd.grad`` (return the
    gradients of ``inputs`` instead, touching no ``.grad``). With
    ``create_graph`` every backward rule runs on Tensors, with recording on,
    so the gradients carry a graph; otherwise rules run on arrays with
    recording off.

    Each node is visited after every node that uses it (see
    :func:`topological_order`): from a single root the walk follows the
    chain of single inner inputs as it goes, and sorts what lies below the
    first node with several once it gets there.
    """
    capture: dict[Tensor, Any] | None = None if inputs is None else {t: None for t in inputs}
    # mg.autograd.grad walks only the nodes above an input, as PyTorch does: below the others, no hook runs
    # and the graph is not released.
    leads = None if capture is None else _leading_to(roots, capture)
    pending_leaves: dict[Tensor, Any] = {}  # leaves whose whole gradient is needed before it is used
    grads: dict[Tensor, Any] = {}  # dL/dnode for inner nodes, summed over uses
    for r, g in zip(roots, root_grads):
        into = grads if r._ctx is not None else pending_leaves  # backward() may start at a leaf
        into[r] = into[r] + g if r in into else g
    tape = _tape  # mg.compile's recorder, when one is recording this step
    if tape is not None:
        tape.on_backward(roots, root_grads, retain_graph, create_graph, inputs)
    anomaly = _anomaly
    if anomaly:
        for k, g in enumerate(root_grads):
            given = "its grad argument" if inputs is None else f"grad_outputs[{k}] of mg.autograd.grad"
            _check_seed(g, f"the gradient the backward pass starts from ({given})")
    # The plain case, a first-order backward into .grad with nothing watching, skips the general case's tests.
    general = tape is not None or anomaly or create_graph or capture is not None
    ndarray = np.ndarray
    refcount, (alone, alone_tuple) = sys.getrefcount, _ALONE
    recording, adding = _state.grad_enabled, _state.adding_into_grads
    _state.grad_enabled = create_graph
    _state.adding_into_grads = capture is None  # (a hook registered on a leaf now may come too late: register_hook)
    try:
        order: list[Tensor] | None = None  # None: walking the chain down from a single root
        node: Tensor | None = next(iter(grads)) if len(grads) == 1 else None
        if len(grads) > 1:
            order = topological_order(list(grads))
            order.reverse()
        while True:
            if order is not None:
                if not order:
                    break
                node = order.pop()
            elif node is None:
                break
            g = grads.pop(node, None)
            if g is None:  # not reached from these roots' gradients
                node = None
                continue
            if general or node._hooks:
                if leads is not None and capture is not None and node not in leads and node not in capture:
                    node = None  # mg.autograd.grad: no input lies below this node, so its gradient goes nowhere
                    continue
                if tape is not None:
                    tape.on_node(node)
                if node._hooks:
                    g = _run_hooks(node, g)
                    if anomaly:
                        _check_seed(g, f"the gradient a hook on {node.op}'s output returned")
                if capture is not None and node in capture:
                    capture[node] = g
                if leads is not None and node not in leads:  # an input with no other input below it: done here
                    node = None
                    continue
            ctx = node._ctx
            assert ctx is not None
            # Something changed in place since this op ran (read live: a hook earlier in this walk may have made
            # the change): was it one of its inputs?
            if ctx._edits != _edits:
                _check_versions(ctx, node)
            if create_graph:
                if ctx.once_differentiable:
                    raise RuntimeError(
                        f"backward of {ctx.name}: this Function is marked once_differentiable, so its "
                        "gradient cannot be differentiated again (create_graph=True)"
                    )
                graph_saved = ctx._graph_saved(node)
            if not retain_graph:  # release the graph behind this node
                node._ctx = _RELEASED
            # Memory: let go of the node before its backward runs. ctx keeps whatever backward needs, so
            # unless the user holds the node, its array is freed before the gradients below are allocated.
            node = None
            if create_graph:
                arrays = ctx.saved_tensors
                ctx.saved_tensors = graph_saved
                outer = _state.backward_of
                if anomaly:  # the rule's own ops check their values: they name this node
                    _state.backward_of = ctx
                try:
                    pgs = ctx.backward(ctx, g)
                except TypeError as e:
                    if "ufunc" not in str(e):  # (numpy's refusal of a Tensor: "... __array_ufunc__=None")
                        raise
                    raise TypeError(
                        f"backward of {ctx.name}: it applies a numpy function to the Tensors it is given to "
                        f"build a second derivative ({e}); write it with operators and the functions of "
                        "minigrad.ops (exp, where, sum_to, ...), or set once_differentiable = True on the class"
                    ) from e
                finally:
                    ctx.saved_tensors = arrays
                    _state.backward_of = outer
            else:
                pgs = ctx.backward(ctx, g)
            if type(pgs) is not tuple:
                pgs = (pgs,)
            needs = ctx.needs_input_grad
            if len(pgs) != len(needs):
                kind = " (a list: return a tuple)" if len(pgs) == 1 and isinstance(pgs[0], list) else ""
                raise RuntimeError(
                    f"backward of {ctx.name} returned {len(pgs)} gradients{kind} for {len(needs)} inputs"
                )
            inner = None  # on the chain: the one inner input, if there is just one
            several = False
            for parent, pg, need in zip(ctx.inputs, pgs, needs):
                if not need:
                    continue
                if order is None and parent._ctx is not None and parent is not inner:
                    # On the chain, as topological_order walks it: every inner input counts, with a gradient or not.
                    several = inner is not None
                    inner = parent
                if pg is None:
                    continue
                data = parent.data
                if type(pg) is not ndarray or pg.shape != data.shape or pg.dtype is not data.dtype:
                    pg = _checked(ctx, parent, pg, pgs)  # every gradient is checked here, against its input
                if anomaly:
                    _check_finite(ctx, pg, ctx.inputs, "backward", ctx._created_at)
                if parent._ctx is not None:  # an inner node: sum its gradients over its uses
                    grads[parent] = grads[parent] + pg if parent in grads else pg
                    continue
                if general or parent._hooks:
                    if capture is not None or parent._hooks:
                        pending_leaves[parent] = pending_leaves[parent] + pg if parent in pending_leaves else pg
                        continue
                if type(pg) is not ndarray:  # a Tensor: under create_graph, or returned by a user's backward
                    _accumulate(parent, pg.data)
                    continue
                if (parent.grad is None and pg.base is None and refcount(pg) <= alone
                        and refcount(pgs) <= alone_tuple):
                    # Speed device: a new array the op made for this leaf alone becomes .grad as it is. A
                    # view is copied instead, and so is an array anything else holds, which its reference
                    # count shows: g itself (the name g holds it), an array returned for two inputs (the
                    # tuple holds it twice), one a user's backward returns from its module or its ctx
                    # (itself, or through the tuple it came in).
                    parent.grad = pg
                    continue
                _accumulate(parent, pg)
            if order is None:  # on the chain: the next node is the one inner input, or the rest is sorted
                if several:  # sorted as topological_order sorts below this node: its inputs' order, reversed
                    below = [t for t, need in zip(ctx.inputs, needs) if need and t._ctx is not None]
                    below.reverse()
                    order = _depth_first_order(below)
                    order.reverse()
                else:
                    node = inner
            parent = data = pgs = pg = ctx = inner = None  # (memory, as above: the names no longer hold the inputs)
        _state.adding_into_grads = adding  # every gradient has arrived: in .grad, or below, for a hooked leaf
        for leaf, g in pending_leaves.items():
            if capture is not None and leaf not in capture:  # a leaf mg.autograd.grad was not asked about
                continue
            if leaf._hooks:
                g = _run_hooks(leaf, g)
                if anomaly:
                    _check_seed(g, f"the gradient a hook on a leaf of shape {leaf.shape} returned")
            if capture is not None:
                if leaf in capture:
                    capture[leaf] = g
            else:
                _accumulate(leaf, g.data if isinstance(g, Tensor) else g)
        if tape is not None:
            tape.on_backward_end()
    finally:
        _state.grad_enabled, _state.adding_into_grads = recording, adding
    return None if capture is None else list(capture.values())


def _leading_to(roots: Sequence[Tensor], targets: Mapping[Tensor, Any]) -> set[Tensor]:
    """The non-leaf nodes reachable from ``roots`` that have one of ``targets`` among the nodes below them."""
    leads: set[Tensor] = set()
    order = _depth_first_order(roots)
    _check_not_released(order, targets)
    for node in reversed(order):  # each node after every node below it
        ctx = node._ctx
        assert ctx is not None
        if any(need and (t in targets or t in leads) for t, need in zip(ctx.inputs, ctx.needs_input_grad)):
            leads.add(node)
    return leads


def _check_not_released(order: Sequence[Tensor], targets: Mapping[Tensor, Any]) -> None:
    """Refuse a walk to ``targets`` through a node whose graph an earlier backward released.

    A released node no longer knows its inputs, so whether a target lies below it cannot be told; skipping it
    would silently leave out every gradient that flows through it. It is passed only when no target can lie
    below it: each target is the node itself or lies above it (a graph has no cycles).
    """
    below: dict[Tensor, set[Tensor]] = {}  # each target's inner nodes, found once when a released node is met
    for node in order:
        if node._ctx is not _RELEASED:
            continue
        for t in targets:
            if t is not node and t._ctx is not None and t not in below:
                below[t] = set(_depth_first_order([t]))
            if t is not node and (t._ctx is None or node not in below[t]):
                raise RuntimeError(
                    "grad: the graph below a tensor the outputs depend on was released by an earlier backward() "
                    "or autograd.grad() (minigrad lets go of a node's inputs with its graph), so whether an input "
                    "asked about lies below it cannot be told, and a guess could silently leave gradients out; "
                    "pass retain_graph=True to the earlier call, or run the forward pass again"
                )


def _references_of_a_fresh_gradient() -> tuple[int, int]:
    """How many references ``run_backward``'s loop holds to a gradient no one else holds, and to its tuple.

    The loop over ``zip(ctx.inputs, pgs, needs)`` holds a new array in the tuple of gradients, in zip's own
    result tuple, in the name ``pg``, and getrefcount's argument adds one; it holds the tuple in the name
    ``pgs`` and in zip's iterator over it. A loop of the same shape, run once here, gives both counts on this
    Python. One more means that something else (a module's constant, a cache, ``ctx``) holds the array or the
    tuple too, and the array must not become a ``.grad`` that later gradients are added into.
    """
    pgs = (np.empty(0),)
    for _parent, pg, _need in zip((None,), pgs, (True,)):
        return sys.getrefcount(pg), sys.getrefcount(pgs)
    raise AssertionError("unreachable")


_ALONE = _references_of_a_fresh_gradient()


# ``ops`` needs Tensor and Function, so it is imported once they exist.
from minigrad import ops  # noqa: E402
from minigrad.gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: E402
from minigrad.ops import concatenate, linear, stack  # noqa: E402
