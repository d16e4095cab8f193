"""``mg.func``: derivatives as functions, with the names of JAX and ``torch.func``.

``mg.func.grad(f)`` is a new function that returns the gradient of ``f``;
``value_and_grad``, ``jacobian``, ``hessian``, ``hvp`` and ``vjp`` likewise.
Each one calls ``f`` on its inputs, records the graph, and runs
:func:`minigrad.autograd.grad` on it. They take Tensors or numpy arrays and
return Tensors. ``argnums`` picks the argument(s) to differentiate with
respect to: an int gives one gradient, a tuple gives a tuple of them.

How they compose. An input Tensor that already requires grad is used as it
is, so its graph runs through; any other input becomes a fresh leaf. A
result carries a graph exactly when ``f``'s output depends on some tensor
that requires grad and is not one of those fresh leaves (an input that
already required grad, or a Parameter ``f`` closes over): then
``grad(grad(f))`` and ``jacobian(grad(f))`` work, to any order. Otherwise
the results are constants. As in JAX, an input that ``f`` does not use gets a zero gradient,
and ``f`` is differentiated even inside ``mg.no_grad()`` (its results then
carry no graph).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minigrad import autograd
from minigrad.engine import Tensor, enable_grad, is_grad_enabled, stack, topological_order

__all__ = ["grad", "value_and_grad", "jacobian", "hessian", "hvp", "vjp"]

Argnums = int | tuple[int, ...]


# ---------------------------------------------------------------------------
# Shared plumbing: argnums, inputs, outputs
# ---------------------------------------------------------------------------


def _check_argnums(name: str, argnums: Any, n_args: int) -> tuple[int, ...]:
    """``argnums`` as a tuple of non-negative positions, checked against ``n_args`` arguments."""
    many = isinstance(argnums, tuple)
    items = argnums if many else (argnums,)
    if many and not items:
        raise ValueError(f"{name}: argnums is an empty tuple; give at least one argument position")
    positions = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"{name}: argnums must be an int or a tuple of ints, got {argnums!r}")
        if not -n_args <= a < n_args:
            raise ValueError(f"{name}: argnums {a} is out of range for a call with {n_args} positional arguments")
        positions.append(int(a) % n_args)
    if len(set(positions)) != len(positions):
        raise ValueError(f"{name}: argnums {argnums!r} names an argument more than once")
    return tuple(positions)


def _as_input(name: str, x: Any, position: int) -> tuple[Tensor, bool]:
    """The Tensor to differentiate with respect to, and whether it is a fresh leaf made here."""
    if isinstance(x, Tensor):
        if x.requires_grad:
            return x, False  # keep its graph: nested transforms differentiate through it
        if x.dtype.kind != "f":
            raise TypeError(f"{name}: argument {position} has dtype {x.dtype}; only floating inputs have gradients")
        # A view, not x.data itself: a constant made in fn from the same array (Tensor(x0)) stays a constant
        # when a backward is differentiated (Function._graph_saved tells the graph's tensors apart by array).
        return Tensor(x.data.view(), requires_grad=True), True
    arr = np.asarray(x)
    if arr.dtype.kind != "f":
        raise TypeError(
            f"{name}: argument {position} has dtype {arr.dtype}; only floating inputs have gradients "
            "(pass a float array, e.g. x.astype(np.float64))"
        )
    return Tensor(arr.view() if arr is x else arr, requires_grad=True), True  # (a view, as above)


def _prepare(name: str, args: Sequence[Any], positions: tuple[int, ...]) -> tuple[list[Any], list[Tensor], set[int]]:
    """Replace the differentiated arguments by Tensors; return all arguments, those Tensors, and the fresh leaves."""
    call_args = list(args)
    # One tensor that requires grad given as two arguments, f(x, x): each argument is a variable of its own
    # (JAX's partial derivatives), so every place it takes becomes a reshape of it, a node of its own that passes
    # its graph on (recorded even inside no_grad, as f is). A differentiated place then has no other below it.
    for i, a in enumerate(args):
        if isinstance(a, Tensor) and a.requires_grad and sum(b is a for b in args) > 1:
            with enable_grad():
                call_args[i] = a.reshape(a.shape)
    inputs: list[Tensor] = []
    fresh = set()
    for p in positions:
        t, is_fresh = _as_input(name, call_args[p], p)
        call_args[p] = t
        inputs.append(t)
        if is_fresh:
            fresh.add(id(t))
    return call_args, inputs, fresh


def _call(name: str, f: Callable[..., Any], call_args: Sequence[Any], kwargs: dict[str, Any]) -> Tensor:
    """Run ``f`` with recording on; it must return a Tensor."""
    with enable_grad():
        out = f(*call_args, **kwargs)
    if not isinstance(out, Tensor):
        raise TypeError(
            f"{name}: f must return a Tensor, got {type(out).__name__} (a value computed outside minigrad, "
            "e.g. with .item() or .numpy() or from plain arrays, has no gradient)"
        )
    return out


def _check_scalar(name: str, out: Tensor) -> None:
    if out.size != 1:
        raise TypeError(
            f"{name}: f must return a scalar Tensor (one element), got shape {out.shape}; "
            "reduce it (e.g. .sum()) or use mg.func.jacobian or mg.func.vjp for a vector output"
        )


def _depends_on_outside(outputs: Sequence[Tensor], fresh: set[int]) -> bool:
    """Whether any output depends on a tensor that requires grad and is not a fresh leaf of this call."""
    roots = [o for o in outputs if o.requires_grad]
    for o in roots:
        if o._ctx is None and id(o) not in fresh:
            return True  # f returned such a tensor itself
    for node in topological_order(roots):
        ctx = node._ctx
        assert ctx is not None
        for parent, need in zip(ctx.inputs, ctx.needs_input_grad):
            if need and parent._ctx is None and id(parent) not in fresh:
                return True
    return False


def _gradients(
    outputs: Sequence[Tensor],
    inputs: Sequence[Tensor],
    seeds: Sequence[Any] | None,
    *,
    create_graph: bool,
    retain_graph: bool,
) -> list[Tensor]:
    """d(Σ seed·output)/d(input) for each input, zeros for inputs the outputs do not reach."""
    live = [i for i, o in enumerate(outputs) if o.requires_grad]
    if not live:
        return [Tensor(np.zeros(t.shape, dtype=t.dtype)) for t in inputs]
    found = autograd.grad(
        [outputs[i] for i in live],
        list(inputs),
        grad_outputs=None if seeds is None else [seeds[i] for i in live],
        create_graph=create_graph,
        retain_graph=retain_graph,
        allow_unused=True,
    )
    return [Tensor(np.zeros(t.shape, dtype=t.dtype)) if g is None else g for t, g in zip(inputs, found)]


def _pick(many: bool, values: Sequence[Any]) -> Any:
    return tuple(values) if many else values[0]


def _result(t: Tensor, keep_graph: bool) -> Tensor:
    return t if keep_graph else t.detach()


# ---------------------------------------------------------------------------
# The transforms
# ---------------------------------------------------------------------------


def _value_and_grad(f: Callable[..., Tensor], argnums: Argnums, name: str) -> Callable[..., tuple[Tensor, Any]]:
    def value_and_grad_f(*args: Any, **kwargs: Any) -> tuple[Tensor, Any]:
        positions = _check_argnums(name, argnums, len(args))
        call_args, inputs, fresh = _prepare(name, args, positions)
        out = _call(name, f, call_args, kwargs)
        _check_scalar(name, out)
        keep = is_grad_enabled() and _depends_on_outside([out], fresh)
        grads = _gradients([out], inputs, None, create_graph=keep, retain_graph=keep)
        return _result(out, keep), _pick(isinstance(argnums, tuple), grads)

    return value_and_grad_f


def value_and_grad(f: Callable[..., Tensor], argnums: Argnums = 0) -> Callable[..., tuple[Tensor, Any]]:
    """A function returning ``(f(*args), ∇f)``, the gradient taken with respect to ``args[argnums]``.

    ``f`` must return a one-element Tensor. The gradient has the shape of its
    argument; with a tuple ``argnums`` it is a tuple of gradients.
    """
    return _value_and_grad(f, argnums, "mg.func.value_and_grad")


def grad(f: Callable[..., Tensor], argnums: Argnums = 0) -> Callable[..., Any]:
    """A function returning ∇f, the gradient of the scalar ``f`` with respect to ``args[argnums]`` (JAX's grad).

    ``mg.func.grad(lambda x: (x**3).sum())(x)`` is ``3·x²``. Nested,
    ``grad(grad(f))`` gives second derivatives.
    """
    inner = _value_and_grad(f, argnums, "mg.func.grad")

    def grad_f(*args: Any, **kwargs: Any) -> Any:
        return inner(*args, **kwargs)[1]

    return grad_f


def _jacobian_rows(
    outputs: Sequence[Tensor], inputs: Sequence[Tensor], keep: bool
) -> list[list[Tensor]]:
    """J[i][j] = d outputs[i] / d inputs[j], of shape outputs[i].shape + inputs[j].shape, one backward per element."""
    table = []
    for out in outputs:
        rows: list[list[Any]] = [[] for _ in inputs]
        for k in range(out.size):
            seed = np.zeros(out.size, dtype=out.dtype)
            seed[k] = 1.0  # the k-th row of the Jacobian is e_kᵀ·J
            found = _gradients([out], inputs, [seed.reshape(out.shape)], create_graph=keep, retain_graph=True)
            for j, g in enumerate(found):
                rows[j].append(g)
        blocks = []
        for x, r in zip(inputs, rows):
            if not r:  # an empty output
                blocks.append(Tensor(np.zeros(out.shape + x.shape, dtype=x.dtype)))
            elif keep:
                blocks.append(stack(r).reshape(out.shape + x.shape))
            else:
                blocks.append(Tensor(np.stack([g.data for g in r]).reshape(out.shape + x.shape)))
        table.append(blocks)
    return table


def jacobian(f: Callable[..., Tensor], argnums: Argnums = 0) -> Callable[..., Any]:
    """A function returning the Jacobian of ``f`` with respect to ``args[argnums]`` (JAX's jacrev).

    For ``f`` returning shape ``S`` and an argument of shape ``X`` the
    Jacobian has shape ``S + X``: entry ``[i..., j...]`` is
    d f(x)[i...] / d x[j...]. It is built row by row, one backward pass per
    output element (reverse mode). A tuple ``argnums`` gives a tuple.
    """

    def jacobian_f(*args: Any, **kwargs: Any) -> Any:
        name = "mg.func.jacobian"
        positions = _check_argnums(name, argnums, len(args))
        call_args, inputs, fresh = _prepare(name, args, positions)
        out = _call(name, f, call_args, kwargs)
        keep = is_grad_enabled() and _depends_on_outside([out], fresh)
        return _pick(isinstance(argnums, tuple), _jacobian_rows([out], inputs, keep)[0])

    return jacobian_f


def hessian(f: Callable[..., Tensor], argnums: Argnums = 0) -> Callable[..., Any]:
    """A function returning the Hessian of the scalar ``f`` with respect to ``args[argnums]`` (JAX's hessian).

    For an argument of shape ``X`` the Hessian has shape ``X + X``: entry
    ``[i..., j...]`` is d²f / dx[i...] dx[j...]. It is the Jacobian of the
    gradient: the gradient is computed with ``create_graph=True`` and each of
    its elements is differentiated again. With a tuple ``argnums`` the result
    is a tuple of tuples, ``H[i][j]`` = d²f / d args[i] d args[j], of shape
    ``args[i].shape + args[j].shape``. For large inputs use :func:`hvp`.
    """

    def hessian_f(*args: Any, **kwargs: Any) -> Any:
        name = "mg.func.hessian"
        positions = _check_argnums(name, argnums, len(args))
        call_args, inputs, fresh = _prepare(name, args, positions)
        out = _call(name, f, call_args, kwargs)
        _check_scalar(name, out)
        keep = is_grad_enabled() and _depends_on_outside([out], fresh)
        with enable_grad():
            grads = _gradients([out], inputs, None, create_graph=True, retain_graph=True)
        table = _jacobian_rows(grads, inputs, keep)
        if isinstance(argnums, tuple):
            return tuple(tuple(row) for row in table)
        return table[0][0]

    return hessian_f


def hvp(f: Callable[..., Tensor], x: Any, v: Any) -> Any:
    """The Hessian-vector product H·v of the scalar ``f`` at ``x``, by double backward, never forming H.

    With g(x) = ∇f(x), H·v = ∇(g(x)·v): one backward pass with
    ``create_graph=True`` gives g as a Tensor with a graph, a second one
    differentiates the number g·v. That costs about two gradients, whatever
    the size of x. ``x`` and ``v`` are Tensors (or arrays) of one shape; or
    tuples of them, one per argument of ``f``, and then H·v is a tuple.
    """
    name = "mg.func.hvp"
    many = isinstance(x, (tuple, list))
    xs, vs = (list(x), list(v)) if many else ([x], [v])
    if many and not isinstance(v, (tuple, list)):
        raise TypeError(f"{name}: x is a sequence of {len(xs)} arguments, so v must be a sequence too")
    if len(xs) != len(vs):
        raise ValueError(f"{name}: {len(xs)} arguments in x but {len(vs)} vectors in v")
    call_args, inputs, fresh = _prepare(name, xs, tuple(range(len(xs))))
    tangents = []
    for i, (t, vi) in enumerate(zip(inputs, vs)):
        arr = np.asarray(vi.data if isinstance(vi, Tensor) else vi)
        if arr.shape != t.shape:
            raise ValueError(f"{name}: v[{i}] has shape {arr.shape}, but x[{i}] has shape {t.shape}")
        tangents.append(vi if isinstance(vi, Tensor) and vi.requires_grad else Tensor(arr.astype(t.dtype)))
    out = _call(name, f, call_args, {})
    _check_scalar(name, out)
    keep = is_grad_enabled() and (
        _depends_on_outside([out], fresh) or any(t.requires_grad for t in tangents)
    )
    with enable_grad():
        grads = _gradients([out], inputs, None, create_graph=True, retain_graph=True)
        gv = sum(((g * t).sum() for g, t in zip(grads, tangents)), Tensor(np.zeros((), dtype=out.dtype)))
    products = _gradients([gv], inputs, None, create_graph=keep, retain_graph=keep)
    return _pick(many, products)


def vjp(f: Callable[..., Tensor], *xs: Any) -> tuple[Tensor, Callable[[Any], tuple[Tensor, ...]]]:
    """``(f(*xs), vjp_fn)``: ``vjp_fn(u)`` is the tuple of uᵀ·∂f/∂x for each x (JAX's vjp).

    ``u`` (the cotangent) has the shape of ``f``'s output; ``vjp_fn`` can be
    called many times, one backward pass each, without running ``f`` again.
    """
    name = "mg.func.vjp"
    if not xs:
        raise TypeError(f"{name}: give at least one input after f")
    call_args, inputs, fresh = _prepare(name, xs, tuple(range(len(xs))))
    out = _call(name, f, call_args, {})
    keep = is_grad_enabled() and _depends_on_outside([out], fresh)

    def vjp_fn(u: Any) -> tuple[Tensor, ...]:
        """uᵀ·∂f/∂x for each input x of the ``vjp`` call, as a tuple of Tensors."""
        seed = u if isinstance(u, Tensor) and u.requires_grad else np.asarray(u.data if isinstance(u, Tensor) else u)
        if seed.shape != out.shape:
            raise ValueError(f"{name}: the cotangent has shape {seed.shape}, but f's output has shape {out.shape}")
        with_graph = keep or (isinstance(seed, Tensor) and seed.requires_grad)
        return tuple(_gradients([out], inputs, [seed], create_graph=with_graph, retain_graph=True))

    return _result(out, keep), vjp_fn
