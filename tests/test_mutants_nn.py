"""Tests that kill mutants of gradcheck, nn.Module, nn.init, nn.utils and data which the rest of the suite let through.

Each test names the bug it guards against. They come from mutation testing of
minigrad/gradcheck.py, nn/module.py, nn/init.py, nn/utils.py and data.py: a
small bug was made, the existing tests still passed, and the test here fails
on it. A gradcheck that passes a wrong gradient is the worst of them, so most
gradcheck tests feed it a deliberately wrong custom backward.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_inside import Sin  # sin with the right backward (subclasses below break it)

import minigrad as mg

# ---------------------------------------------------------------------------
# gradcheck and gradgradcheck
# ---------------------------------------------------------------------------


def test_gradcheck_catches_a_gradient_off_by_a_thousandth() -> None:
    """A backward off by 1e-3 everywhere fails the default tolerance (atol 1e-5, rtol 1e-4).

    Guards the tolerance test ``error > 0``: with ``error > 1`` (or any slack of
    that size) a gradient wrong by less than 1 passed.
    """

    class AlmostSin(Sin):
        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            (x,) = ctx.saved_tensors
            return g * (mg.ops.cos(x) + 1e-3)

    xs = np.array([0.1, 0.2, 0.3])
    assert mg.gradcheck(Sin.apply, mg.Tensor(xs, requires_grad=True))
    with pytest.raises(mg.GradcheckError, match=r"input 0 \(shape \(3,\)\)"):
        mg.gradcheck(AlmostSin.apply, mg.Tensor(xs, requires_grad=True))


def test_gradcheck_relative_tolerance_is_taken_on_the_central_difference() -> None:
    """The rule is |analytic - numeric| <= atol + rtol·|numeric|: twice the gradient fails rtol=0.6, passes rtol=1.01.

    Guards the scale of rtol: taken on |analytic| instead, a backward that
    doubles the gradient passed rtol=0.6 (|2n - n| = n <= 0.6·2n).
    """

    class DoubleSin(Sin):
        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            (x,) = ctx.saved_tensors
            return 2 * g * mg.ops.cos(x)

    xs = np.array([0.1, 0.2, 0.3])
    assert mg.gradcheck(DoubleSin.apply, mg.Tensor(xs, requires_grad=True), atol=0.0, rtol=1.01)
    with pytest.raises(mg.GradcheckError):
        mg.gradcheck(DoubleSin.apply, mg.Tensor(xs, requires_grad=True), atol=0.0, rtol=0.6)


def test_gradcheck_catches_a_backward_that_ignores_the_output_gradient() -> None:
    """A backward returning cos(x) instead of g·cos(x) is wrong for any g but ones: gradcheck must catch it.

    Guards the random weights of the output (in [0.5, 1.5]): with weights of 1,
    backward is fed g = 1 and the missing factor g went unseen.
    """

    class SinWithoutG(Sin):
        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            (x,) = ctx.saved_tensors
            return mg.ops.cos(x)

    with pytest.raises(mg.GradcheckError, match="gradcheck: input 0"):
        mg.gradcheck(SinWithoutG.apply, mg.Tensor([0.1, 0.2, 0.3], requires_grad=True))


def test_gradcheck_puts_each_perturbed_element_back() -> None:
    """Each element is moved by ±eps and restored before the next: a bilinear t0·t1 passes even with eps=0.01.

    Guards the restore in the central difference: without ``flat[j] = saved``,
    t0 stayed at t0 - eps while t1 was differenced, so the gradient was checked
    at the wrong point (numeric t0 - eps against analytic t0) and a right
    gradient failed. Also every call of fn sees the input at most one element
    away from where it was given.
    """
    start = np.array([2.0, 3.0])
    seen: list[np.ndarray] = []

    def fn(t: mg.Tensor) -> mg.Tensor:
        seen.append(t.data.copy())
        return t[0] * t[1]

    assert mg.gradcheck(fn, mg.Tensor(start, requires_grad=True), eps=1e-2)
    for data in seen:
        moved = np.flatnonzero(data != start)
        assert len(moved) <= 1
        np.testing.assert_allclose(np.abs(data - start)[moved], 1e-2, rtol=1e-12)
    assert len(seen) == 1 + 2 * 2  # the value, then two evaluations per element


def test_gradcheck_never_moves_the_callers_array() -> None:
    """gradcheck perturbs a float64 copy: the caller's array stays put even while fn runs.

    Guards the copy in ``_float64_inputs``: with ``np.asarray`` a float64 input
    was perturbed in place, so fn(t) = t·x (x the caller's tensor, a constant
    here) was differenced as t² and a right gradient x failed.
    """
    x = mg.Tensor(np.array([0.5, 2.0]), requires_grad=True)
    original = x.data.copy()
    seen: list[np.ndarray] = []

    def fn(t: mg.Tensor) -> mg.Tensor:
        seen.append(x.data.copy())
        return t * x.detach()

    assert mg.gradcheck(fn, x)
    assert seen and all(np.array_equal(s, original) for s in seen)
    np.testing.assert_array_equal(x.data, original)


def test_gradcheck_refuses_an_output_cut_from_the_inputs() -> None:
    """An output that does not depend on the inputs is a GradcheckError saying so, not the engine's RuntimeError.

    Guards the ``out.requires_grad`` check.
    """
    with pytest.raises(mg.GradcheckError, match="does not depend on any input that requires grad"):
        mg.gradcheck(lambda t: t.detach() * 2, mg.Tensor([1.0, 2.0], requires_grad=True))
    # gradgradcheck says it the same way (it raised grad's RuntimeError about "output 0").
    with pytest.raises(mg.GradcheckError, match="^gradgradcheck: the output does not depend on any input"):
        mg.gradgradcheck(lambda t: t.detach() * 2, mg.Tensor([1.0, 2.0], requires_grad=True))


class Product(mg.Function):
    """out = x0·x1 (scalar) whose backward has the right value g·(x1, x0) but, written with value(),
    tells the engine the wrong second derivatives: ∂G_i/∂x_j = g·δ_ij instead of g·(1 - δ_ij).

    Its Hessian's row sums are right ([g, g]), so only weights that differ per element see it.
    """

    @staticmethod
    def forward(ctx, x):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(x)
        return np.asarray(x[0] * x[1])

    @staticmethod
    def backward(ctx, g):  # type: ignore[no-untyped-def]
        (x,) = ctx.saved_tensors
        v = mg.ops.value
        return g * (x + v(x[::-1]) - v(x))


def test_gradgradcheck_catches_second_derivatives_put_on_the_wrong_elements() -> None:
    """The Product above passes gradcheck (its first derivative is right) and fails gradgradcheck.

    Guards the random weights v of the first derivative (d = Σ v·∂L/∂x): with
    v dropped (all ones), only the Hessian's row sums were compared and a
    backward with the mixed partials on the diagonal passed.
    """
    x = mg.Tensor([0.3, 0.7], requires_grad=True)
    assert mg.gradcheck(Product.apply, x)
    with pytest.raises(mg.GradcheckError, match=r"input 0 \(shape \(2,\)\).*second derivative"):
        mg.gradgradcheck(Product.apply, x)


def test_gradgradcheck_catches_a_dependence_on_the_output_gradient_that_is_right_only_at_one() -> None:
    """A backward h(g)·cos(x) with h(g) = g²/2 + value(g) - value(g)²/2 = g; the engine's dh/dg is g, not 1.

    gradcheck passes it (the values are right); gradgradcheck must not, since
    its derivative with respect to the output's gradient is wrong wherever g ≠ 1.
    Guards the random weights of gradgradcheck's cotangent: with weights of
    ones, g = 1 exactly where the two derivatives agree.
    """

    class HalfCutSin(Sin):
        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            (x,) = ctx.saved_tensors
            v = mg.ops.value(g)
            return (g * g / 2 + v - v * v / 2) * mg.ops.cos(x)

    x = mg.Tensor([0.1, 0.2, 0.3], requires_grad=True)
    assert mg.gradcheck(HalfCutSin.apply, x)
    with pytest.raises(mg.GradcheckError, match="derivative with respect to the output's gradient"):
        mg.gradgradcheck(HalfCutSin.apply, x)


def test_gradcheck_and_gradgradcheck_work_inside_no_grad() -> None:
    """Called under ``mg.no_grad()`` (as in an evaluation loop), both still build their graphs and check.

    Guards their ``enable_grad()``: without it the output had no graph and
    gradcheck refused a right op, gradgradcheck found no derivative to check.
    """
    with mg.no_grad():
        assert mg.gradcheck(Sin.apply, mg.Tensor([0.1, 0.2], requires_grad=True))
        assert mg.gradgradcheck(Sin.apply, mg.Tensor([0.1, 0.2], requires_grad=True))
        assert not mg.is_grad_enabled()


# ---------------------------------------------------------------------------
# nn.Module
# ---------------------------------------------------------------------------


def test_a_parameter_owns_its_array() -> None:
    """Parameter(a) copies a: a step of the optimizer moves the parameter, not the caller's array.

    Guards the copy in Parameter.__init__: without it, a model built from
    another's arrays (Parameter(other.W.data)) trained both at once.
    """
    a = np.array([1.0, 2.0, 3.0])
    p = mg.nn.Parameter(a)
    assert not np.shares_memory(p.data, a)
    p.grad = np.array([1.0, 1.0, 1.0])
    mg.optim.SGD([p], lr=0.5).step()
    np.testing.assert_array_equal(p.data, [0.5, 1.5, 2.5])
    np.testing.assert_array_equal(a, [1.0, 2.0, 3.0])


def test_training_and_train_accept_only_bools() -> None:
    """``m.training = "False"`` is a TypeError, not a truthy string that keeps Dropout dropping; train() names itself.

    Guards the check_flag of the ``training`` setter (dropped, the string was
    stored and Dropout kept dropping in "evaluation") and the one of train()
    (dropped, the error named the setter, not the call the user made).
    """
    drop = mg.nn.Dropout(0.5)
    with pytest.raises(TypeError, match=r"training: mode must be True or False, got 'False'"):
        drop.training = "False"  # type: ignore[assignment]
    assert drop.training is True
    drop.training = np.bool_(False)
    assert drop.training is False  # stored as a Python bool
    model = mg.nn.Sequential(mg.nn.Linear(2, 2), mg.nn.Dropout(0.5))
    with pytest.raises(TypeError, match=r"^train: mode must be True or False, got 0$"):
        model.train(0)  # type: ignore[arg-type]
    assert all(m.training is True for m in model.modules())


class _Views(mg.nn.Module):
    """Two parameters that are views of one buffer: a = buf[0::3] (elements 0, 3), b = buf[1:2] (element 1)."""

    def __init__(self) -> None:
        self.buf = np.arange(6.0)
        self.a = mg.nn.Parameter(np.zeros(2))
        self.b = mg.nn.Parameter(np.zeros(1))
        self.a.data = self.buf[0::3]
        self.b.data = self.buf[1:2]


def test_load_state_dict_copies_an_entry_that_overlaps_a_span_enclosing_a_later_one() -> None:
    """An entry reading buf[3] (inside a's span [0, 32), after b's [8, 16)) is copied before a is written.

    Guards the running maximum of the spans' ends: with each span's own end,
    the search saw only b's span (ending at 16 < 24) and missed a's, so b
    silently got a's new value 20 instead of the 3.0 it was given.
    """
    model = _Views()
    model.load_state_dict({"a": np.array([10.0, 20.0]), "b": model.buf[3:4]})
    np.testing.assert_array_equal(model.a.data, [10.0, 20.0])
    np.testing.assert_array_equal(model.b.data, [3.0])
    np.testing.assert_array_equal(model.buf, [10.0, 3.0, 2.0, 20.0, 4.0, 5.0])


# ---------------------------------------------------------------------------
# nn.init
# ---------------------------------------------------------------------------


def test_normal_with_std_0_and_uniform_with_a_equal_b_fill_a_constant() -> None:
    """std=0 and a=b are degenerate but valid (as in PyTorch): every element becomes the mean, or a.

    Guards the bounds of the argument checks: ``std <= 0`` or ``a >= b`` refused them.
    """
    w = mg.nn.Parameter(np.zeros((3, 2)))
    np.testing.assert_array_equal(mg.nn.init.normal_(w, mean=1.5, std=0.0).data, np.full((3, 2), 1.5))
    np.testing.assert_array_equal(mg.nn.init.uniform_(w, a=-2.0, b=-2.0).data, np.full((3, 2), -2.0))


# ---------------------------------------------------------------------------
# nn.utils
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


def test_standardize_treats_a_column_constant_up_to_rounding_as_constant() -> None:
    """Three 0.1s have a float64 std of 1.4e-17, not 0: their std is taken as 1, not 1.4e-17.

    Guards the rounding term (n·mean·eps)² of the constant test: without it the
    test value 0.2 was scaled to (0.2 - 0.1) / 1.4e-17 ≈ 7e15.
    """
    train = np.array([[0.1, 1.0], [0.1, 2.0], [0.1, 3.0]])
    assert train[:, 0].std() > 0  # the premise: rounding leaves a tiny spread
    tr, te, mean, std = mg.data.standardize(train, np.array([[0.2, 4.0]]))
    np.testing.assert_allclose(mean, [0.1, 2.0], rtol=1e-15)
    np.testing.assert_allclose(std, [1.0, np.sqrt(2 / 3)], rtol=1e-15)
    np.testing.assert_allclose(te, [[0.1, 2 / np.sqrt(2 / 3)]], rtol=1e-6)
    np.testing.assert_allclose(tr[:, 0], 0.0, atol=1e-7)


_X = np.arange(80.0).reshape(40, 2)
_Y = np.array([1] * 8 + [0] * 32)  # 8 of one class in 40


def test_split_is_stratified_for_every_seed() -> None:
    """With stratify, the test half holds exactly 4 of the 8 rare labels, whatever the seed; rows stay paired.

    Guards ``stratify=y``: ignored, seed 1 gave the test half 5 or 3 of them
    (breast_cancer, the suite's other check, happens to come out within 1).
    """
    pytest.importorskip("sklearn")
    for seed in range(5):
        X_train, X_test, y_train, y_test = mg.data.split(_X, _Y, test_size=0.5, seed=seed)
        assert (int(y_train.sum()), int(y_test.sum())) == (4, 4)
        for X_part, y_part in ((X_train, y_train), (X_test, y_test)):
            np.testing.assert_array_equal(y_part, _Y[(X_part[:, 0] // 2).astype(int)])


def test_split_without_stratify_is_not_the_cached_stratified_split() -> None:
    """split(stratify=False) after split(stratify=True) of the same arrays is scikit-learn's plain split.

    Guards the cache key's ``stratify``: without it the second call got the
    first's (stratified) arrays back from the cache.
    """
    model_selection = pytest.importorskip("sklearn.model_selection")
    strat = mg.data.split(_X, _Y, test_size=0.5, seed=1, stratify=True)
    plain = mg.data.split(_X, _Y, test_size=0.5, seed=1, stratify=False)
    expected = model_selection.train_test_split(_X, _Y, test_size=0.5, random_state=1)
    for got, want in zip(plain, expected):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(strat[3], plain[3])


def test_load_raw_with_another_noise_is_not_the_cached_draw() -> None:
    """load_raw("moons", noise=0.3) after noise=0.0 gives scikit-learn's noisy moons, not the cached clean ones.

    Guards the cache key's ``noise``.
    """
    skdatasets = pytest.importorskip("sklearn.datasets")
    clean, _ = mg.data.load_raw("moons", n_samples=40, noise=0.0, seed=2)
    noisy, y = mg.data.load_raw("moons", n_samples=40, noise=0.3, seed=2)
    X_sk, y_sk = skdatasets.make_moons(n_samples=40, noise=0.3, random_state=2)
    np.testing.assert_array_equal(noisy, X_sk)
    np.testing.assert_array_equal(y, y_sk)
    assert not np.array_equal(clean, noisy)


def test_load_dataset_seed_also_draws_the_split() -> None:
    """For a fixed dataset (iris), seed changes only the split: load_dataset(seed=s) is split(..., seed=s).

    Guards passing ``seed`` to split: with split's seed fixed at 0, every seed gave the same split of iris.
    """
    pytest.importorskip("sklearn")
    X, y = mg.data.load_raw("iris")
    tests = []
    for seed in (1, 2):
        _, _, _, y_test = mg.data.load_dataset("iris", seed=seed)
        np.testing.assert_array_equal(y_test, mg.data.split(X, y, seed=seed)[3])
        tests.append(mg.data.load_dataset("iris", seed=seed)[1])
    assert not np.array_equal(tests[0], tests[1])


def test_batches_of_a_tensor_are_tensors_in_its_graph() -> None:
    """batches(Tensor, ...) yields Tensors whose gradients reach the whole Tensor: each row's once.

    Guards keeping Tensors as they are: converted to arrays, the batches were
    numpy arrays and the gradient never reached X.
    """
    X = mg.Tensor(np.arange(10.0).reshape(5, 2), requires_grad=True)
    y = np.arange(5)
    total = None
    for Xb, yb in mg.data.batches(X, y, 2, seed=0):
        assert isinstance(Xb, mg.Tensor) and Xb.shape == (len(yb), 2)
        np.testing.assert_array_equal(Xb.data, np.arange(10.0).reshape(5, 2)[yb])
        part = (Xb * Xb).sum()
        total = part if total is None else total + part
    assert total is not None
    total.backward()
    np.testing.assert_array_equal(X.grad, 2 * np.arange(10.0).reshape(5, 2))
