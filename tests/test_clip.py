"""Tests of ``mg.nn.utils.clip_grad_norm_`` and ``clip_grad_value_``, against norms worked out by hand."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from test_optim import param

import minigrad as mg
from minigrad.nn.utils import clip_grad_norm_, clip_grad_value_
from minigrad.optim import SGD, Adagrad, Adam, AdamW, Lion, Momentum, NAdam, Optimizer, RMSprop


def with_grads(*grads: list[float] | float) -> list[mg.Tensor]:
    """One parameter per gradient, each holding it as its .grad (float64)."""
    params = []
    for g in grads:
        p = mg.Tensor(np.zeros(np.shape(g)), requires_grad=True)
        p.grad = np.array(g, dtype=np.float64)
        params.append(p)
    return params


def test_clip_grad_norm_returns_the_norm_before_and_scales_exactly() -> None:
    """Gradients (3, 4) and (12,): joint norm 13; clipped to 6.5 each is multiplied by 6.5 / (13 + 1e-6)."""
    params = with_grads([3.0, 4.0], [12.0])
    old = [p.grad for p in params]
    total = clip_grad_norm_(params, max_norm=6.5)
    assert total == 13.0
    coef = 6.5 / (13.0 + 1e-6)
    assert np.array_equal(params[0].grad, np.array([3.0, 4.0]) * coef)
    assert np.array_equal(params[1].grad, np.array([12.0]) * coef)
    new_norm = math.sqrt(sum(float(np.sum(p.grad**2)) for p in params))
    assert new_norm == pytest.approx(6.5, rel=1e-6)
    assert np.array_equal(old[0], [3.0, 4.0]) and np.array_equal(old[1], [12.0])  # the old arrays are not written


def test_clip_grad_norm_leaves_small_gradients_alone() -> None:
    """Below max_norm nothing changes (the same array objects stay), and the norm is still returned.

    At exactly max_norm the factor max_norm / (norm + 1e-6) is just below 1, so
    PyTorch's rule scales by it; that is kept.
    """
    params = with_grads([3.0, 4.0], 0.0)
    old = [p.grad for p in params]
    assert clip_grad_norm_(params, max_norm=10.0) == 5.0
    assert all(p.grad is g for p, g in zip(params, old))
    assert clip_grad_norm_(params, max_norm=5.0) == 5.0
    assert np.array_equal(params[0].grad, np.array([3.0, 4.0]) * (5.0 / (5.0 + 1e-6)))


@pytest.mark.parametrize(
    "norm_type, expected",
    [
        (1.0, 3 + 4 + 12 + 2),
        (2.0, math.sqrt(9 + 16 + 144 + 4)),
        (3.0, (27 + 64 + 1728 + 8) ** (1 / 3)),
        (0.5, (math.sqrt(3) + 2 + math.sqrt(12) + math.sqrt(2)) ** 2),
        (float("inf"), 12.0),
    ],
    ids=["1", "2", "3", "0.5", "inf"],
)
def test_clip_grad_norm_of_each_order(norm_type: float, expected: float) -> None:
    """The joint p-norm of all entries (-4 and -2 count by their size); inf is the largest |entry|."""
    params = with_grads([3.0, -4.0], [[12.0, -2.0]])
    total = clip_grad_norm_(params, max_norm=1.0, norm_type=norm_type)
    assert total == pytest.approx(expected, rel=1e-14)
    coef = 1.0 / (total + 1e-6)
    assert np.array_equal(params[1].grad, np.array([[12.0, -2.0]]) * coef)


def test_clip_grad_norm_skips_parameters_without_gradients_and_takes_one_tensor() -> None:
    """A None .grad is skipped; no gradients at all is a norm of 0; a single Tensor or a generator works."""
    a, b = with_grads([6.0, 8.0], [1.0])
    b.grad = None
    assert clip_grad_norm_((p for p in [a, b]), max_norm=5.0) == 10.0
    assert b.grad is None
    np.testing.assert_array_equal(a.grad, np.array([6.0, 8.0]) * (5.0 / (10.0 + 1e-6)))
    a.grad = None
    assert clip_grad_norm_([a, b], max_norm=1.0) == 0.0
    (c,) = with_grads([0.0, 5.0])
    assert clip_grad_norm_(c, max_norm=1.0) == 5.0


def test_clip_grad_norm_keeps_float32() -> None:
    """A float32 gradient stays float32 after scaling."""
    p = mg.Tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    p.grad = np.array([30.0, 40.0], dtype=np.float32)
    assert clip_grad_norm_([p], max_norm=1.0) == 50.0
    assert p.grad.dtype == np.float32
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-6)


def test_clip_grad_norm_sums_a_float32_gradient_in_float64() -> None:
    """Guards the norm's float64 accumulation: float32 (3e20, 4e20) has norm 5e20, though 9e40 overflows float32.

    Summed in float32 the norm would be inf and the factor 0, zeroing the gradient.
    """
    p = param(0.0, 0.0, dtype=np.float32)
    g = np.array([3e20, 4e20], dtype=np.float32)
    p.grad = g.copy()
    exact = float(np.sqrt(np.float64(g[0]) ** 2 + np.float64(g[1]) ** 2))
    assert clip_grad_norm_([p], max_norm=1.0) == pytest.approx(exact, rel=1e-15)
    np.testing.assert_allclose(p.grad, g.astype(np.float64) / (exact + 1e-6), rtol=1e-6)
    assert p.grad.dtype == np.float32


def test_clip_grad_norm_of_large_float32_gradients_does_not_overflow() -> None:
    """Gradients (3e20, 4e20) in float32 have norm 5e20; their squares overflow float32, so it is summed in float64.

    Guards the float64 cast of each gradient: in float32 the norm came out inf
    and every gradient was scaled by max_norm / inf = 0, silently.
    """
    p = mg.nn.Parameter(np.zeros(2, dtype=np.float32))
    p.grad = np.array([3e20, 4e20], dtype=np.float32)
    total = mg.nn.utils.clip_grad_norm_([p], max_norm=1.0)
    assert total == pytest.approx(5e20, rel=1e-6)
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-6)
    assert p.grad.dtype == np.float32


def test_clip_grad_norm_non_finite() -> None:
    """error_if_nonfinite: a NaN or inf norm is a RuntimeError and nothing changes; without it, PyTorch's scaling."""
    params = with_grads([1.0, float("nan")], [2.0])
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is nan"):
        clip_grad_norm_(params, max_norm=1.0, error_if_nonfinite=True)
    assert params[1].grad[0] == 2.0
    assert math.isnan(clip_grad_norm_(params, max_norm=1.0))
    assert np.isnan(params[1].grad).all()  # scaled by a NaN factor, as PyTorch does
    params = with_grads([1.0, float("inf")])
    with pytest.raises(RuntimeError, match="is inf"):
        clip_grad_norm_(params, max_norm=1.0, error_if_nonfinite=True)
    with np.errstate(invalid="ignore"):  # inf·0 is NaN, as the caller asked
        assert clip_grad_norm_(params, max_norm=1.0) == float("inf")
    assert params[0].grad[0] == 0.0 and np.isnan(params[0].grad[1])  # factor 1/inf = 0


def test_clip_grad_value_clamps_each_entry() -> None:
    """Entries outside [-c, c] become ±c; the others keep their value; the old arrays are not written."""
    params = with_grads([-3.0, 0.5, 2.0], [[0.1, -0.1]])
    old = params[0].grad
    assert clip_grad_value_(params, clip_value=1.0) is None  # type: ignore[func-returns-value]
    np.testing.assert_array_equal(params[0].grad, [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(params[1].grad, [[0.1, -0.1]])
    np.testing.assert_array_equal(old, [-3.0, 0.5, 2.0])


def test_clip_grad_value_keeps_a_float32_gradient_float32() -> None:
    """Guards clip_grad_value_ leaving a float32 .grad in float32 (not upcast to float64), values clamped."""
    p = param(0.0, 0.0, 0.0, dtype=np.float32)
    p.grad = np.array([-3.0, 0.5, 2.0], dtype=np.float32)
    clip_grad_value_([p], clip_value=1.0)
    assert p.grad.dtype == np.float32
    np.testing.assert_array_equal(p.grad, np.array([-1.0, 0.5, 1.0], dtype=np.float32))


def test_an_infinite_limit_reads_the_norm_and_changes_nothing() -> None:
    """clip_grad_norm_(ps, inf) is PyTorch's way to read the joint norm; both limits accept inf."""
    params = with_grads([3.0, 4.0])
    old = params[0].grad
    assert clip_grad_norm_(params, float("inf")) == 5.0
    clip_grad_value_(params, float("inf"))
    np.testing.assert_array_equal(params[0].grad, [3.0, 4.0])
    assert clip_grad_norm_(params, np.float32(10), norm_type=np.float32(2)) == 5.0  # numpy numbers are numbers
    assert params[0].grad is old or np.array_equal(params[0].grad, old)


def test_an_integer_gradient_set_by_hand_is_scaled_in_its_parameters_dtype() -> None:
    """An integer .grad was scaled in its own dtype: 0.2 became 0, and the gradient [3, 4] became [0, 0]."""
    p = mg.Tensor(np.zeros(2), requires_grad=True)
    p.grad = np.array([3, 4])
    assert clip_grad_norm_([p], 1.0) == 5.0
    assert p.grad.dtype == np.float64
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-6)
    p.grad = np.array([3, -4])
    clip_grad_value_([p], 0.5)
    np.testing.assert_array_equal(p.grad, [0.5, -0.5])


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m: clip_grad_norm_(m.parameters, 1.0), TypeError,
         r"clip_grad_norm_: got the method parameters itself; call it: model.parameters\(\)"),
        (lambda m: clip_grad_value_(m, 1.0), TypeError,
         r"clip_grad_value_: expected a Tensor or an iterable of Tensors, got a Linear; pass model.parameters\(\)"),
        (lambda m: clip_grad_norm_(m.named_parameters(), 1.0), TypeError,
         r"parameter 0 is a tuple, not a Tensor \(a \(name, parameter\) pair: pass model.parameters\(\)\)"),
    ],
    ids=["method", "module", "named"],
)
def test_clip_tells_what_to_pass(call: Callable[[mg.nn.Module], object], error: type, message: str) -> None:
    """The optimizers' hints for the same mistakes (they raised "'method' object is not iterable")."""
    with pytest.raises(error, match=message):
        call(mg.nn.Linear(3, 2))


def test_clip_refuses_a_gradient_that_is_not_an_array() -> None:
    p = mg.Tensor(np.zeros(2), requires_grad=True)
    p.grad = [1.0, 2.0]  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"clip_grad_norm_: parameter 0's .grad is a list, not a numpy array"):
        clip_grad_norm_([p], 1.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda ps: clip_grad_norm_(ps, max_norm=-1.0), r"clip_grad_norm_: max_norm must be a number >= 0 \(float"),
        (lambda ps: clip_grad_norm_(ps, max_norm="1"), "clip_grad_norm_: max_norm must be a number >= 0"),
        (lambda ps: clip_grad_norm_(ps, max_norm=1.0, norm_type=0), "norm_type must be a number > 0"),
        (lambda ps: clip_grad_norm_(ps, max_norm=1.0, norm_type="fro"), "norm_type must be a number > 0"),
        (lambda ps: clip_grad_value_(ps, clip_value=float("nan")), "clip_grad_value_: clip_value must be a number"),
        (lambda ps: clip_grad_norm_([ps[0], np.ones(2)], max_norm=1.0), "parameter 1 is a ndarray, not a Tensor"),
    ],
    ids=["max_norm<0", "max_norm str", "norm_type 0", "norm_type str", "clip_value nan", "not a Tensor"],
)
def test_clip_refuses_bad_arguments(call: Callable[[list[mg.Tensor]], object], message: str) -> None:
    """Each bad argument is refused with a message naming it."""
    with pytest.raises((TypeError, ValueError), match=message):
        call(with_grads([1.0, 2.0]))


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: Momentum(ps, lr=0.1),
        lambda ps: Adam(ps),
        lambda ps: AdamW(ps),
        lambda ps: NAdam(ps),
        lambda ps: RMSprop(ps, centered=True),
        lambda ps: Adagrad(ps),
        lambda ps: Lion(ps, lr=0.1),
    ],
    ids=["SGD", "Momentum", "Adam", "AdamW", "NAdam", "RMSprop", "Adagrad", "Lion"],
)
def test_clipping_works_with_every_optimizer(make: Callable[[list[mg.Tensor]], Optimizer]) -> None:
    """Clipping then stepping is exactly stepping with the clipped gradient set by hand, for three steps."""
    clipped, by_hand = with_grads([0.0, 0.0]), with_grads([0.0, 0.0])
    a, b = make(clipped), make(by_hand)
    for g in ([3.0, 4.0], [-6.0, 8.0], [0.3, 0.4]):
        clipped[0].grad = np.array(g)
        norm = clip_grad_norm_(clipped, max_norm=1.0)
        by_hand[0].grad = np.array(g) * min(1.0, 1.0 / (norm + 1e-6))
        a.step()
        b.step()
        assert np.array_equal(clipped[0].data, by_hand[0].data)
    assert not np.array_equal(clipped[0].data, [0.0, 0.0])


def test_clipping_a_0d_gradient_leaves_an_array_the_optimizer_accepts():
    """numpy gives g * coef and clip of a 0-d array back as a scalar, which step() refused (h74)."""
    p = mg.nn.Parameter(np.array(3.0, np.float32))
    opt = mg.optim.SGD([p], lr=0.1)
    p.grad = np.array(5.0, np.float32)
    assert mg.nn.utils.clip_grad_norm_([p], 1.0) == 5.0
    assert type(p.grad) is np.ndarray and p.grad.shape == () and p.grad.dtype == np.float32
    np.testing.assert_allclose(p.grad, 1.0 / (5.0 + 1e-6) * 5.0, rtol=1e-6)
    opt.step()
    p.grad = np.array(-5.0, np.float32)
    mg.nn.utils.clip_grad_value_([p], 1.0)
    assert type(p.grad) is np.ndarray and p.grad.shape == () and float(p.grad) == -1.0
    opt.step()
    np.testing.assert_allclose(p.data, 3.0 - 0.1 * float(1.0 / (5.0 + 1e-6) * 5.0) + 0.1, rtol=1e-6)
