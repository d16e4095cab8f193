"""Tests that kill mutants of the ops which the rest of the suite let through.

Each test names the bug it guards against. They come from mutation testing of
minigrad/ops.py, engine.py (its helpers) and nn/losses.py: a small bug was
made, the op tests still passed, and the test here fails on it.
"""

from __future__ import annotations

import warnings

import numpy as np

import minigrad as mg


def test_logsumexp_shifts_by_the_max_and_keeps_rows_of_minus_inf() -> None:
    """logsumexp is m + log Σ exp(a - m): logits of 1000 do not overflow, and a row of -inf gives -inf, not NaN.

    Guards the shift by the max (without it, exp(1000) overflows to inf) and the
    rule that an infinite max shifts by 0 (else -inf - -inf = NaN).
    """
    x = np.array([[-np.inf, -np.inf], [0.0, np.log(3.0)], [1000.0, 1000.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # log 0 = -inf is the answer for the row of -inf, not a warning
        out = mg.Tensor(x).logsumexp(axis=1)
    np.testing.assert_array_equal(out.data[0], -np.inf)
    np.testing.assert_allclose(out.data[1:], [np.log(4.0), 1000.0 + np.log(2.0)], rtol=1e-14)
    t = mg.Tensor(x[1:], requires_grad=True)
    t.logsumexp(axis=1).backward(np.array([1.0, 2.0]))
    np.testing.assert_allclose(t.grad, [[0.25, 0.75], [1.0, 1.0]], rtol=1e-12)  # g · softmax


def test_reductions_over_unsorted_axis_tuples_of_a_4d_tensor() -> None:
    """axis=(2, 0) and (-1, 1) on a 4-D tensor: numpy's values, and gradients that pass gradcheck.

    The reductions' backward puts the removed axes back one by one, which needs
    them in increasing order (normalize_axes sorts them); the catalog's tensors
    have at most 3 axes, where inserting in the given order happens to work.
    """
    a = np.random.default_rng(0).normal(size=(2, 3, 4, 5))
    cases = [
        (lambda t, ax: t.sum(axis=ax), lambda x, ax: x.sum(axis=ax)),
        (lambda t, ax: t.mean(axis=ax), lambda x, ax: x.mean(axis=ax)),
        (lambda t, ax: t.max(axis=ax), lambda x, ax: x.max(axis=ax)),
        (lambda t, ax: t.logsumexp(axis=ax), lambda x, ax: np.log(np.exp(x).sum(axis=ax))),
    ]
    for axis in [(2, 0), (-1, 1)]:
        for fn, ref in cases:
            np.testing.assert_allclose(fn(mg.Tensor(a), axis).data, ref(a, axis), rtol=1e-12)
            assert mg.gradcheck(lambda t, fn=fn, axis=axis: fn(t, axis), mg.Tensor(a, requires_grad=True))


def test_cross_entropy_of_one_batch_size_with_several_class_counts() -> None:
    """Logits (2, C) for C = 2, 3, 4, 5, 3 in turn: numpy's loss and (softmax - onehot)/N every time.

    Guards the cache of flat row offsets [0, C, 2C, ...], which must be keyed by
    (N, C): offsets made for another C pick the wrong logits.
    """
    rng = np.random.default_rng(1)
    targets = np.array([1, 0])
    for c in (2, 3, 4, 5, 3):
        z = rng.normal(size=(2, c))
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        t = mg.Tensor(z, requires_grad=True)
        loss = mg.nn.cross_entropy(t, targets)
        np.testing.assert_allclose(loss.data, -np.log(p[[0, 1], targets]).mean(), rtol=1e-12)
        loss.backward()
        np.testing.assert_allclose(t.grad, (p - np.eye(c)[targets]) / 2, rtol=1e-12, atol=1e-15)


def test_concatenate_and_stack_give_arrays_the_first_tensors_dtype() -> None:
    """A float64 array joined to a float32 Tensor becomes a float32 constant (numpy would promote to float64)."""
    x = mg.Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    other = np.array([0.5, 3.0])
    joined, stacked = mg.concatenate([x, other]), mg.stack([x, other])
    assert joined.dtype == np.float32 and stacked.dtype == np.float32
    np.testing.assert_array_equal(joined.data, [1.0, 2.0, 0.5, 3.0])
    np.testing.assert_array_equal(stacked.data, [[1.0, 2.0], [0.5, 3.0]])
    (joined.sum() + (stacked * 2.0).sum()).backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_a_tuple_of_tensor_indices_picks_and_scatters_like_numpy() -> None:
    """a[i, j] with Tensors i, j (whole floats, a negative and a repeated pair): numpy's picks; repeats add up."""
    a = np.arange(12.0).reshape(3, 4)
    i, j = mg.Tensor(np.array([2.0, 0.0, 2.0])), mg.Tensor(np.array([1.0, -1.0, 1.0]))
    t = mg.Tensor(a, requires_grad=True)
    out = t[i, j]
    np.testing.assert_array_equal(out.data, [9.0, 3.0, 9.0])
    out.backward(np.array([1.0, 10.0, 100.0]))
    expected = np.zeros((3, 4))
    expected[0, 3], expected[2, 1] = 10.0, 101.0
    np.testing.assert_array_equal(t.grad, expected)
    assert mg.gradgradcheck(lambda t: t[i, j] ** 2, mg.Tensor(a, requires_grad=True))


def test_std_has_derivative_zero_where_the_variance_is_zero() -> None:
    """Std's rule: d√v/dv = 1/(2√v), and 0 at v = 0 (its docstring); a constant slice's Hessian is then 0 too.

    Without the outer where, the rule gives g/2 at v = 0: the first derivative in x is still 0 (∂v/∂x = 0
    there), so only the rule itself and the second derivative, g/2·∂²v/∂x², show it.
    """
    v = mg.Tensor(np.array([0.0, 4.0]), requires_grad=True)
    mg.ops.Std.apply(v).backward(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(v.grad, [0.0, 0.25])
    x = mg.Tensor(np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]]), requires_grad=True)
    (g,) = mg.autograd.grad(x.std(axis=1).sum(), x, create_graph=True)
    (h,) = mg.autograd.grad(g[0].sum() + g[0, 0], x)
    np.testing.assert_array_equal(h.data, np.zeros((2, 3)))


def test_tensor_power_at_base_zero_with_a_negative_exponent_follows_pytorch() -> None:
    """0 ** -1 = inf; d/dx = y·x^(y-1) = -inf and d/dy = x^y·ln x = inf·(-inf) = -inf (torch.pow).

    Only x = 0 with y >= 0 is flat in y (derivative 0); a negative exponent is not, so it is not NaN either.
    """
    x = mg.Tensor(np.array([0.0, 0.0]), requires_grad=True)
    y = mg.Tensor(np.array([-1.0, 1.0]), requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x**y
        out.backward(np.ones(2))
    np.testing.assert_array_equal(out.data, [np.inf, 0.0])
    np.testing.assert_array_equal(x.grad, [-np.inf, 1.0])
    np.testing.assert_array_equal(y.grad, [-np.inf, 0.0])


def test_gradients_through_indexing_and_broadcasting_are_differentiable_twice_more() -> None:
    """gradgradcheck of a gradient (third derivatives): the gradient's own ops, index_add and sum_to, differentiate.

    The gradient of x[idx] is index_add and that of a broadcast is sum_to; their
    backward rules on Tensors (getitem, broadcast_to) are reached only when a
    gradient of such a gradient is built with create_graph.
    """
    rng = np.random.default_rng(2)
    idx = np.array([1, -1, 1, 0])
    c = mg.Tensor(rng.normal(size=(1, 4)))

    def grad_of_indexed(x: mg.Tensor) -> mg.Tensor:
        with mg.enable_grad():  # (gradgradcheck first calls fn under no_grad, for the output's shape)
            return mg.autograd.grad((x[idx] ** 3).sum(), x, create_graph=True)[0]

    def grad_of_broadcast(x: mg.Tensor) -> mg.Tensor:
        with mg.enable_grad():
            return mg.autograd.grad(((x + c) ** 3).sum(), x, create_graph=True)[0]

    assert mg.gradgradcheck(grad_of_indexed, mg.Tensor(rng.normal(size=3), requires_grad=True))
    assert mg.gradgradcheck(grad_of_broadcast, mg.Tensor(rng.normal(size=(3, 1)), requires_grad=True))
