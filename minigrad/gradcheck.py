"""Gradient checks: backward (and the gradient's own gradient) against central differences in float64."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad.engine import Tensor, enable_grad, no_grad

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when backward disagrees with finite differences."""


def _float64_inputs(inputs: tuple[Any, ...], op: str) -> tuple[list[Any], list[int]]:
    xs = [
        Tensor(np.array(x.data, dtype=np.float64), requires_grad=x.requires_grad)
        if isinstance(x, Tensor) and x.dtype.kind == "f"
        else x
        for x in inputs
    ]
    checked = [i for i, x in enumerate(xs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError(f"{op}: no input is a Tensor with requires_grad=True")
    return xs, checked


def _check_settings(op: str, eps: float, atol: float, rtol: float) -> None:
    """Refuse an ``eps`` that is not a finite number > 0 and tolerances that are not finite numbers >= 0.

    (A NaN tolerance made every comparison pass: no error is > NaN.)
    """
    for name, value, least in (("eps", eps, None), ("atol", atol, 0.0), ("rtol", rtol, 0.0)):
        ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool) and (
            np.isfinite(value) and (value > 0 if least is None else value >= least))
        if not ok:
            bound = "> 0" if least is None else ">= 0"
            raise ValueError(f"{op}: {name} must be a finite number {bound}, got {value!r}")


def _weights(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random weights 0.5 to 2 in size, of alternating signs (the first negative): a backward must be right for
    any incoming gradient. (Weights of one sign let through a backward that took abs(g), or masked on g's sign.)
    """
    signs = np.where(np.arange(int(np.prod(shape))) % 2 == 0, -1.0, 1.0).reshape(shape)
    return rng.uniform(0.5, 2.0, size=shape) * signs


def _first_bad(array: np.ndarray) -> tuple[int, ...]:
    return tuple(int(k) for k in np.unravel_index(int(np.argmax(~np.isfinite(array))), array.shape))


def _compare(
    op: str, what: str, i: int, x: Tensor, analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float
) -> None:
    """Raise GradcheckError naming input ``i`` and the worst element unless the two agree."""
    for name, arr in (("backward", analytic), ("the central difference", numeric)):
        if not np.all(np.isfinite(arr)):
            at = _first_bad(arr)
            raise GradcheckError(
                f"{op}: input {i} (shape {x.shape}), element {at}: {name} gives {float(arr[at])} for the {what}; "
                "a gradient must be finite where it is checked (move the input away from the singularity)"
            )
    error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    if np.any(error > 0):
        worst = np.unravel_index(int(np.argmax(error)), x.shape)
        raise GradcheckError(
            f"{op}: input {i} (shape {x.shape}), element {tuple(int(k) for k in worst)}: "
            f"backward gives {float(analytic[worst])}, central difference gives {float(numeric[worst])} for the "
            f"{what} (of the output summed with fixed random weights of alternating signs, 0.5 to 2 in size, so these "
            "are not the op's own derivative values); if the input sits at a kink of the function (relu at 0), "
            "the two may rightly differ there: check it away from the kink; if the output is large for the "
            "change eps makes in it, rounding limits the central difference: pass a larger eps or rtol"
        )


def _numeric(f: Callable[[], np.ndarray], x: Tensor, eps: float) -> np.ndarray:
    """Central differences of ``Σ f()`` in every element of ``x``, moving ``x.data`` in place.

    ``f()`` gives the terms of the sum; each is differenced on its own before they are added, so a large term
    that the move does not change (the 1e7 beside a 1 in a concatenation) adds no rounding error.
    """
    numeric = np.zeros(x.data.shape)
    # .flat writes into the array itself whatever its layout (reshape(-1) of a column-major or transposed
    # array is a copy, and moving a copy moves nothing: every difference came out 0).
    flat = x.data.flat
    for j in range(x.data.size):
        saved = flat[j]
        flat[j] = saved + eps
        plus = f()
        flat[j] = saved - eps
        minus = f()
        flat[j] = saved
        numeric.flat[j] = float(np.sum(plus - minus)) / (2 * eps)
    return numeric


def gradcheck(
    fn: Callable[..., Tensor],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> bool:
    """Compare ``backward()`` of ``fn(*inputs)`` with central differences in float64.

    Every floating Tensor input is copied to float64; those with
    ``requires_grad`` are checked. A non-scalar output is reduced to
    ``sum(w * out)`` with fixed random weights ``w``, so every output element
    is tested. Element i of an input must satisfy
    ``|analytic - numeric| <= atol + rtol * |numeric|`` where
    numeric = (f(x + eps·e_i) - f(x - eps·e_i)) / (2·eps).

    The weights alternate in sign (the first is negative), so a backward
    that is wrong only for a negative incoming gradient fails. The central difference is taken of
    each output element before they are summed. Returns True, or raises
    :class:`GradcheckError` naming the input, the
    element and the values: when they disagree, and also when the function's
    value or either gradient holds a NaN or an infinity. An ``eps`` that is
    not a finite number > 0, or a tolerance that is not a finite number >= 0,
    is a ValueError.
    """
    _check_settings("gradcheck", eps, atol, rtol)
    xs, checked = _float64_inputs(inputs, "gradcheck")
    with enable_grad():
        out = fn(*xs)
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
        if not np.all(np.isfinite(out.data)):
            at = _first_bad(out.data) if out.ndim else ()
            raise GradcheckError(
                f"gradcheck: the function's value is not finite (element {at} is {float(out.data[at])}); "
                "check it at inputs where it is defined"
            )
        if not out.requires_grad:
            raise GradcheckError("gradcheck: the output does not depend on any input that requires grad")
        weights = _weights(np.random.default_rng(0), out.shape)

        def f() -> np.ndarray:
            with no_grad():
                return fn(*xs).data.astype(np.float64) * weights

        out.backward(weights.astype(out.dtype))

    for i in checked:
        x = xs[i]
        analytic = x.grad if x.grad is not None else np.zeros_like(x.data)
        _compare("gradcheck", "gradient", i, x, analytic, _numeric(f, x, eps), atol, rtol)
    return True


def gradgradcheck(
    fn: Callable[..., Tensor],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> bool:
    """Check second derivatives: the gradient's own gradient against central differences of the gradient.

    With ``out = fn(*inputs)`` and fixed random weights ``w`` and ``v``, the
    first derivative ``d = Σ_i v_i · ∂(Σ w·out)/∂x_i`` (a scalar, built with
    ``create_graph=True``) is differentiated by the engine and compared with
    central differences of the first derivative computed afresh, in float64.
    Every pair of inputs is covered, so mixed partials are checked too, and
    so is the derivative with respect to ``w`` (the output's gradient, which a
    backward must not treat as a constant); a failure there is reported as
    input ``len(inputs)``.
    """
    from minigrad.autograd import grad

    _check_settings("gradgradcheck", eps, atol, rtol)
    xs, checked = _float64_inputs(inputs, "gradgradcheck")
    rng = np.random.default_rng(1)
    with no_grad():  # only the output's shape is needed here
        out0 = fn(*xs)
        if not isinstance(out0, Tensor):
            raise TypeError(f"gradgradcheck: fn must return a Tensor, got {type(out0).__name__}")
        weights = _weights(rng, out0.shape)
    vs = [_weights(rng, xs[i].shape) for i in checked]
    ins = [xs[i] for i in checked]
    # The output's gradient is an input of the first derivative too: a backward must stay differentiable in
    # it (one that took value(g) would give a wrong Hessian once composed), so it is checked as PyTorch does.
    cotangent = Tensor(weights, requires_grad=True)

    def gradients(create_graph: bool) -> tuple[Tensor | None, ...]:
        with enable_grad():
            out = fn(*xs)
            if not out.requires_grad:  # (as gradcheck says it, rather than grad's own message)
                raise GradcheckError("gradgradcheck: the output does not depend on any input that requires grad")
            return grad(out, ins, grad_outputs=cotangent, create_graph=create_graph, allow_unused=True)

    with enable_grad():
        d: Tensor = Tensor(np.zeros((), dtype=np.float64))
        for g, v in zip(gradients(create_graph=True), vs):
            if g is not None:
                d = d + (g * Tensor(v)).sum()
    wrt = [*ins, cotangent]
    if not d.requires_grad:  # the first derivative is constant: every second derivative is 0
        second: list[Any] = [None] * len(wrt)
    else:
        second = list(grad(d, wrt, allow_unused=True))

    def f() -> np.ndarray:  # the terms of d, each differenced on its own
        terms = [g.data * v for g, v in zip(gradients(create_graph=False), vs) if g is not None]
        return np.concatenate([t.ravel() for t in terms]) if terms else np.zeros(0)

    for x, s, i in zip(wrt, second, [*checked, None]):
        analytic = np.zeros(x.data.shape) if s is None else s.data
        what = "second derivative" if i is not None else "derivative with respect to the output's gradient"
        _compare("gradgradcheck", what, len(inputs) if i is None else i, x, analytic, _numeric(f, x, eps),
                 atol, rtol)
    return True
