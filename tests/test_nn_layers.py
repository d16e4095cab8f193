"""Tests of the layers beyond Linear: activations, Dropout, Flatten, Identity, LayerNorm, BatchNorm1d, MLP options.

Every layer's gradient is checked against central differences in float64
(``mg.gradcheck``) on shapes drawn by hypothesis; forward values are checked
against their formulas computed here with numpy (or against textbook values of
the normal CDF); BatchNorm's running statistics are recomputed step by step in
numpy; buffers go through ``state_dict``, ``load_state_dict`` and
``mg.save``/``mg.load``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import nn

FAST = settings(max_examples=12, deadline=None)


def away_from_zero(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """float64 values with |x| in [0.1, 2], so no finite difference straddles a kink at 0."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def with_affine(layer: nn.Module) -> Callable[..., mg.Tensor]:
    """fn(x, weight, bias) for gradcheck: the layer run with the given weight and bias tensors."""

    def fn(x: mg.Tensor, weight: mg.Tensor, bias: mg.Tensor) -> mg.Tensor:
        layer.weight, layer.bias = weight, bias  # type: ignore[attr-defined]
        return layer(x)

    return fn


shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


# ---------------------------------------------------------------------------
# Activations, Softmax, Identity, Flatten
# ---------------------------------------------------------------------------


@FAST
@given(shape=shapes, slope=st.sampled_from([0.01, 0.2, -0.5, 1.5]), seed=st.integers(0, 100))
def test_leaky_relu_gradcheck(shape: tuple[int, ...], slope: float, seed: int) -> None:
    """LeakyReLU's backward matches central differences (inputs away from the kink)."""
    x = mg.Tensor(away_from_zero(shape, seed), requires_grad=True)
    assert mg.gradcheck(nn.LeakyReLU(slope), x)


def test_leaky_relu_values_and_gradient_at_zero() -> None:
    """leaky_relu(x) = x for x > 0, slope·x else; the derivative at 0 is the slope, as in PyTorch."""
    x = mg.Tensor(np.array([-2.0, -0.5, 0.0, 0.5, 3.0]), requires_grad=True)
    out = nn.LeakyReLU(0.1)(x)
    np.testing.assert_array_equal(out.data, [-0.2, -0.05, 0.0, 0.5, 3.0])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.1, 0.1, 0.1, 1.0, 1.0])
    assert nn.LeakyReLU().negative_slope == 0.01
    assert out.dtype == np.float64 and nn.LeakyReLU()(mg.Tensor([1.0])).dtype == np.float32


# Φ(x), the standard normal CDF, from printed tables (Abramowitz & Stegun 26.2).
NORMAL_CDF = {-2.0: 0.022750131948179, -1.0: 0.158655253931457, 0.0: 0.5, 0.5: 0.691462461274013,
              1.0: 0.841344746068543, 2.0: 0.977249868051821, 3.0: 0.998650101968370}


def test_gelu_exact_is_x_times_the_normal_cdf() -> None:
    """GELU(x) = x·Φ(x), against tabulated values of Φ."""
    x = np.array(list(NORMAL_CDF))
    want = x * np.array(list(NORMAL_CDF.values()))
    np.testing.assert_allclose(nn.GELU()(mg.Tensor(x)).data, want, rtol=1e-13, atol=1e-15)


def test_gelu_tanh_form_and_its_distance_from_the_exact_one() -> None:
    """The tanh form is ½x(1 + tanh(√(2/π)(x + 0.044715x³))) and stays within 5e-4 of x·Φ(x)."""
    x = np.linspace(-6, 6, 241)
    want = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    got = nn.GELU(approximate="tanh")(mg.Tensor(x)).data
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    assert np.max(np.abs(got - nn.GELU()(mg.Tensor(x)).data)) < 5e-4


@FAST
@given(shape=shapes, approximate=st.sampled_from(["none", "tanh"]), seed=st.integers(0, 100))
def test_gelu_gradcheck(shape: tuple[int, ...], approximate: str, seed: int) -> None:
    """Both GELU forms' backward match central differences."""
    x = mg.Tensor(np.random.default_rng(seed).normal(0, 2, shape), requires_grad=True)
    assert mg.gradcheck(nn.GELU(approximate), x)


def test_gelu_float32_keeps_its_dtype_and_refuses_unknown_forms() -> None:
    """A float32 input gives float32 values and gradients; approximate is 'none' or 'tanh'."""
    x = mg.Tensor(np.linspace(-3, 3, 7, dtype=np.float32), requires_grad=True)
    out = nn.GELU()(x)
    out.sum().backward()
    assert out.dtype == np.float32 and x.grad is not None and x.grad.dtype == np.float32
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("erf")


@FAST
@given(shape=shapes, seed=st.integers(0, 100), data=st.data())
def test_softmax_gradcheck_and_values(shape: tuple[int, ...], seed: int, data: st.DataObject) -> None:
    """Softmax(dim) is exp(x)/Σ exp(x) along dim, and its backward matches central differences."""
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = np.random.default_rng(seed).normal(size=shape)
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    np.testing.assert_allclose(nn.Softmax(dim)(mg.Tensor(x)).data, e / e.sum(axis=dim, keepdims=True), rtol=1e-12)
    assert mg.gradcheck(nn.Softmax(dim), mg.Tensor(x, requires_grad=True))


def test_softmax_default_is_the_last_axis_and_refuses_a_bad_dim() -> None:
    """Softmax() normalizes rows of a matrix; dim must be an integer within the input's axes."""
    x = mg.Tensor(np.random.default_rng(0).normal(size=(3, 4)))
    np.testing.assert_allclose(nn.Softmax()(x).data.sum(axis=1), np.ones(3), rtol=1e-6)
    with pytest.raises(ValueError, match="dim"):
        nn.Softmax(1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="axis 2"):
        nn.Softmax(2)(x)


def test_identity_returns_its_input() -> None:
    """Identity gives back the very tensor, so gradients pass unchanged."""
    x = mg.Tensor(np.ones((2, 3)), requires_grad=True)
    assert nn.Identity()(x) is x and nn.Identity().parameters() == []


X = np.array([[-1.5, 0.0, 2.0], [0.5, -0.25, 3.0]])  # float64, as numpy makes it


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        (mg.nn.ReLU(), np.maximum(X, 0)),
        (mg.nn.Tanh(), np.tanh(X)),
        (mg.nn.Sigmoid(), 1 / (1 + np.exp(-X))),
        (mg.nn.LeakyReLU(0.1), np.where(X > 0, X, 0.1 * X)),
        (mg.nn.GELU("tanh"), 0.5 * X * (1 + np.tanh(np.sqrt(2 / np.pi) * (X + 0.044715 * X**3)))),
        (mg.nn.Softmax(), np.exp(X) / np.exp(X).sum(axis=1, keepdims=True)),
        (mg.nn.Identity(), X),
        (mg.nn.Flatten(), X),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, mg.nn.Module) else "",
)
def test_activations_accept_numpy_arrays_as_linear_does(layer: mg.nn.Module, expected: np.ndarray) -> None:
    out = layer(X)
    assert isinstance(out, mg.Tensor)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)


@pytest.mark.parametrize(
    "shape, start, end, want",
    [
        ((2, 3, 4), 1, -1, (2, 12)),
        ((2, 3, 4), 0, -1, (24,)),
        ((2, 3, 4, 5), 1, 2, (2, 12, 5)),
        ((2, 3, 4), -2, -2, (2, 3, 4)),
        ((2, 3), 0, 0, (2, 3)),
        ((5,), 0, -1, (5,)),
        ((), 0, -1, (1,)),
        ((2, 0, 3), 1, 2, (2, 0)),
    ],
)
def test_flatten_shapes(shape: tuple[int, ...], start: int, end: int, want: tuple[int, ...]) -> None:
    """Flatten merges axes start..end into one, keeping the values' order (numpy's reshape)."""
    x = np.arange(math.prod(shape), dtype=np.float64).reshape(shape)
    out = nn.Flatten(start, end)(mg.Tensor(x))
    assert out.shape == want
    np.testing.assert_array_equal(out.data, x.reshape(want))


def test_flatten_gradcheck_and_bad_ranges() -> None:
    """Flatten's backward puts the gradient back in the input's shape; a reversed range is refused."""
    x = mg.Tensor(np.random.default_rng(0).normal(size=(2, 3, 2)), requires_grad=True)
    assert mg.gradcheck(nn.Flatten(), x)
    for start, end in ((2, 1), (0, 3), (-4, -1)):
        with pytest.raises(ValueError, match=r"start_dim.*\(2, 3, 2\)"):
            nn.Flatten(start, end)(x)
    with pytest.raises(ValueError, match="start_dim"):
        nn.Flatten(True)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_mask_statistics(p: float) -> None:
    """About a fraction p is zeroed (within 4 standard deviations); the rest is x/(1-p); the mean is kept."""
    mg.manual_seed(0)
    n = 200_000
    x = np.random.default_rng(1).uniform(1.0, 2.0, n)
    out = nn.Dropout(p)(mg.Tensor(x)).data
    dropped = out == 0
    assert abs(dropped.mean() - p) < 4 * math.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(out[~dropped], x[~dropped] / (1 - p), rtol=1e-15)
    # E[out] = x: the mean of out over the mean of x is 1 within sampling error
    assert abs(out.mean() / x.mean() - 1) < 4 * math.sqrt(p / (1 - p) / n) * 1.2


def test_dropout_gradient_flows_through_the_same_mask() -> None:
    """dx = mask/(1-p): zero where the output was dropped, 1/(1-p) elsewhere; gradcheck agrees."""
    mg.manual_seed(3)
    x = mg.Tensor(np.random.default_rng(0).uniform(1, 2, (50, 8)), requires_grad=True)
    out = nn.Dropout(0.25)(x)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, np.where(out.data == 0, 0.0, 1 / 0.75))

    def seeded(x: mg.Tensor) -> mg.Tensor:
        mg.manual_seed(7)  # the same mask on every call gradcheck makes
        return nn.Dropout(0.4)(x)

    assert mg.gradcheck(seeded, mg.Tensor(np.random.default_rng(1).normal(size=(4, 5)), requires_grad=True))


def test_dropout_is_drawn_from_minigrads_seeded_generator() -> None:
    """The same seed gives the same mask; the next call draws a new one; another seed differs."""
    x = mg.Tensor(np.ones((64, 64)))
    drop = nn.Dropout(0.5)
    mg.manual_seed(11)
    first, second = drop(x).data, drop(x).data
    mg.manual_seed(11)
    assert np.array_equal(drop(x).data, first)
    assert not np.array_equal(first, second)
    mg.manual_seed(12)
    assert not np.array_equal(drop(x).data, first)


def test_dropout_is_the_identity_in_eval_and_at_p_0_and_zero_at_p_1() -> None:
    """eval() or p=0 return the input itself; p=1 drops everything, and the gradient is 0."""
    x = mg.Tensor(np.random.default_rng(0).normal(size=(3, 4)), requires_grad=True)
    drop = nn.Dropout(0.5)
    assert drop.eval()(x) is x
    assert drop.train()(x) is not x
    assert nn.Dropout(0.0)(x) is x
    out = nn.Dropout(1.0)(x)
    assert np.array_equal(out.data, np.zeros((3, 4)))
    out.sum().backward()
    assert np.array_equal(x.grad, np.zeros((3, 4)))
    assert nn.Dropout().p == 0.5


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_dropout_refuses_a_p_that_is_not_a_probability(bad: Any) -> None:
    """p must be a number in [0, 1]; the message names Dropout and p."""
    with pytest.raises(ValueError, match="Dropout: p"):
        nn.Dropout(bad)


def test_dropout_keeps_float32() -> None:
    """The mask has the input's dtype, so float32 stays float32."""
    assert nn.Dropout(0.3)(mg.Tensor(np.ones(10, dtype=np.float32))).dtype == np.float32


def test_dropout_accepts_a_numpy_array() -> None:
    drop = mg.nn.Dropout(0.5)
    drop.eval()
    np.testing.assert_array_equal(drop(X).data, X)
    drop.train()
    mg.manual_seed(0)
    out = drop(X).data
    assert set(np.unique(out[X != 0] / X[X != 0])) <= {0.0, 2.0}  # dropped, or kept and scaled by 1/(1-p)


# ---------------------------------------------------------------------------
# LayerNorm
# ---------------------------------------------------------------------------


def layer_norm_reference(x: np.ndarray, k: int, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) · weight + bias over the last k axes, biased variance, in numpy."""
    axes = tuple(range(x.ndim - k, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * weight + bias


@pytest.mark.parametrize("shape, normalized", [((4, 6), 6), ((3, 2, 5), (5,)), ((3, 2, 5), (2, 5)), ((7,), 7)])
def test_layer_norm_matches_its_formula_in_train_and_eval(shape: tuple[int, ...], normalized: Any) -> None:
    """Against numpy, with a non-trivial weight and bias; train() and eval() compute the same."""
    rng = np.random.default_rng(0)
    ln = nn.LayerNorm(normalized, eps=1e-3, dtype=np.float64)
    k = len(ln.normalized_shape)
    assert ln.weight is not None and ln.bias is not None
    assert np.array_equal(ln.weight.data, np.ones(ln.normalized_shape))
    assert np.array_equal(ln.bias.data, np.zeros(ln.normalized_shape))
    ln.weight.data[...] = rng.normal(size=ln.normalized_shape)
    ln.bias.data[...] = rng.normal(size=ln.normalized_shape)
    x = rng.normal(3.0, 2.0, shape)
    want = layer_norm_reference(x, k, ln.weight.data, ln.bias.data, 1e-3)
    np.testing.assert_allclose(ln(mg.Tensor(x)).data, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ln.eval()(mg.Tensor(x)).data, want, rtol=1e-12, atol=1e-12)


def test_layer_norm_without_affine_has_mean_0_and_variance_1_per_sample() -> None:
    """elementwise_affine=False: no parameters; each row has mean 0 and biased variance 1/(1 + eps/var)."""
    x = np.random.default_rng(0).normal(5, 3, (6, 10))
    ln = nn.LayerNorm(10, elementwise_affine=False)
    assert ln.parameters() == []
    y = ln(mg.Tensor(x)).data
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=1), x.var(axis=1) / (x.var(axis=1) + 1e-5), rtol=1e-12)
    assert [n for n, _ in nn.LayerNorm(4, bias=False).named_parameters()] == ["weight"]


@FAST
@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple),
       normalized=st.lists(st.integers(1, 4), min_size=1, max_size=2).map(tuple), seed=st.integers(0, 100))
def test_layer_norm_gradcheck(lead: tuple[int, ...], normalized: tuple[int, ...], seed: int) -> None:
    """d/dx, d/dweight and d/dbias all match central differences."""
    if math.prod(normalized) == 1:
        normalized = normalized[:-1] + (2,)  # one value normalizes to exactly 0: nothing to differentiate
    rng = np.random.default_rng(seed)
    x = mg.Tensor(rng.normal(size=lead + normalized), requires_grad=True)
    w = mg.Tensor(rng.normal(size=normalized), requires_grad=True)
    b = mg.Tensor(rng.normal(size=normalized), requires_grad=True)
    assert mg.gradcheck(with_affine(nn.LayerNorm(normalized)), x, w, b)


def test_layer_norm_refuses_a_shape_that_does_not_end_in_normalized_shape() -> None:
    """The message names both shapes; bad constructor arguments name theirs."""
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(4,\)"):
        nn.LayerNorm(4)(mg.Tensor(np.ones((4, 5))))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        nn.LayerNorm((2, 3))(mg.Tensor(np.ones(3)))
    for args, name in (((0,), "normalized_shape"), (((),), "normalized_shape"), ((3, 0.0), "eps"),
                       ((3, 1e-5, 1), "elementwise_affine")):
        with pytest.raises((ValueError, TypeError), match=name):  # TypeError for a flag that is not a bool
            nn.LayerNorm(*args)


# ---------------------------------------------------------------------------
# BatchNorm1d
# ---------------------------------------------------------------------------


def batch_norm_reference(
    xs: list[np.ndarray], weight: np.ndarray, bias: np.ndarray, eps: float, momentum: float
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Training outputs for a sequence of batches and the running statistics after them, in numpy loops."""
    c = weight.shape[0]
    running_mean, running_var = np.zeros(c), np.ones(c)
    outs = []
    for x in xs:
        axes = (0,) if x.ndim == 2 else (0, 2)
        shape = (1, c) + (1,) * (x.ndim - 2)
        n = x.size // c
        mu = x.mean(axis=axes)
        biased = ((x - mu.reshape(shape)) ** 2).sum(axis=axes) / n
        unbiased = ((x - mu.reshape(shape)) ** 2).sum(axis=axes) / (n - 1)
        outs.append((x - mu.reshape(shape)) / np.sqrt(biased.reshape(shape) + eps) * weight.reshape(shape)
                    + bias.reshape(shape))
        running_mean = (1 - momentum) * running_mean + momentum * mu
        running_var = (1 - momentum) * running_var + momentum * unbiased
    return outs, running_mean, running_var


@pytest.mark.parametrize("shape", [(8, 3), (5, 3, 4)])
def test_batch_norm_train_and_eval_match_their_formulas_over_several_steps(shape: tuple[int, ...]) -> None:
    """Five training batches: outputs and running stats as recomputed in numpy; eval uses the running stats."""
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(3, eps=1e-3, momentum=0.3, dtype=np.float64)
    assert bn.weight is not None and bn.bias is not None
    bn.weight.data[...] = rng.normal(size=3)
    bn.bias.data[...] = rng.normal(size=3)
    xs = [rng.normal(loc=[2.0, -1.0, 0.5], scale=3.0, size=shape[:1] + shape[2:] + (3,)) for _ in range(5)]
    xs = [np.moveaxis(x, -1, 1) for x in xs]  # features on axis 1, means differing per feature
    outs, running_mean, running_var = batch_norm_reference(xs, bn.weight.data, bn.bias.data, 1e-3, 0.3)
    for x, want in zip(xs, outs):
        np.testing.assert_allclose(bn(mg.Tensor(x)).data, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean.data, running_mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, running_var, rtol=1e-12)

    bn.eval()
    x = rng.normal(size=shape)
    per = (1, 3) + (1,) * (len(shape) - 2)
    want = ((x - running_mean.reshape(per)) / np.sqrt(running_var.reshape(per) + 1e-3) * bn.weight.data.reshape(per)
            + bn.bias.data.reshape(per))
    np.testing.assert_allclose(bn(mg.Tensor(x)).data, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean.data, running_mean, rtol=0)  # eval leaves them alone


def test_batch_norm_defaults_and_first_step() -> None:
    """Running stats start at 0 and 1; after one batch with momentum 0.1 they are 0.1·mean and 0.9 + 0.1·var."""
    bn = nn.BatchNorm1d(2, dtype=np.float64)
    assert (bn.eps, bn.momentum) == (1e-5, 0.1)
    np.testing.assert_array_equal(bn.running_mean.data, [0, 0])
    np.testing.assert_array_equal(bn.running_var.data, [1, 1])
    x = np.array([[1.0, 10.0], [2.0, 20.0], [6.0, 60.0]])  # means 3, 30; unbiased variances 7, 700
    bn(mg.Tensor(x))
    np.testing.assert_allclose(bn.running_mean.data, [0.3, 3.0], rtol=1e-14)
    np.testing.assert_allclose(bn.running_var.data, [0.9 + 0.7, 0.9 + 70.0], rtol=1e-14)


@FAST
@given(n=st.integers(2, 5), c=st.integers(1, 3), length=st.sampled_from([None, 1, 3]), seed=st.integers(0, 100))
def test_batch_norm_gradcheck_in_training(n: int, c: int, length: int | None, seed: int) -> None:
    """d/dx, d/dweight and d/dbias of the training-mode BatchNorm1d match central differences."""
    shape = (n, c) if length is None else (n, c, length)
    rng = np.random.default_rng(seed)
    x = mg.Tensor(rng.normal(size=shape), requires_grad=True)
    w = mg.Tensor(rng.normal(size=c), requires_grad=True)
    b = mg.Tensor(rng.normal(size=c), requires_grad=True)
    assert mg.gradcheck(with_affine(nn.BatchNorm1d(c)), x, w, b)


def test_batch_norm_gradcheck_in_eval() -> None:
    """In eval the running stats are constants: the layer is affine in x and the gradients match."""
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(3, dtype=np.float64)
    bn(mg.Tensor(rng.normal(size=(6, 3))))
    bn.eval()
    x = mg.Tensor(rng.normal(size=(4, 3)), requires_grad=True)
    assert mg.gradcheck(with_affine(bn), x, mg.Tensor(rng.normal(size=3), requires_grad=True),
                        mg.Tensor(rng.normal(size=3), requires_grad=True))


def batch_norm_composite(x: mg.Tensor, weight: mg.Tensor | None, bias: mg.Tensor | None, eps: float) -> mg.Tensor:
    """Training-mode batch norm written with Tensor ops (mean, subtract, square, power...), the reference."""
    axes = (0,) if x.ndim == 2 else (0, 2)
    per = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    mu = x.mean(axis=axes, keepdims=True)
    centred = x - mu
    y = centred * ((centred * centred).mean(axis=axes, keepdims=True) + eps) ** -0.5
    if weight is None or bias is None:
        return y
    return y * weight.reshape(per) + bias.reshape(per)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("shape", [(16, 4), (6, 3, 5), (2, 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_fused_node_matches_the_composite(shape: tuple[int, ...], dtype: type, tol: float,
                                                     affine: bool) -> None:
    """The one-node BatchNorm1d gives the composite's output and its dx, dweight, dbias for a random dL/dy."""
    rng = np.random.default_rng(len(shape) * 10 + shape[0])
    c = shape[1]
    x_data = rng.normal(2.0, 3.0, shape).astype(dtype)
    w_data, b_data = rng.normal(size=c).astype(dtype), rng.normal(size=c).astype(dtype)
    dout = rng.normal(size=shape).astype(dtype)
    results = []
    for run in ("fused", "composite"):
        x = mg.Tensor(x_data.copy(), requires_grad=True)
        bn = nn.BatchNorm1d(c, eps=1e-4, affine=affine, dtype=dtype)
        if affine:
            assert bn.weight is not None and bn.bias is not None
            bn.weight.data[...], bn.bias.data[...] = w_data, b_data
        out = bn(x) if run == "fused" else batch_norm_composite(x, bn.weight, bn.bias, 1e-4)
        if run == "fused":
            assert out.op == "batch_norm" and out._ctx is not None  # one node, straight from x and the leaves
            assert out._ctx.inputs[0] is x and all(t is None or t.is_leaf for t in out._ctx.inputs[:3])
        (out * mg.Tensor(dout)).sum().backward()
        grads = [x.grad] + ([bn.weight.grad, bn.bias.grad] if affine else [])  # type: ignore[union-attr]
        results.append((out.data, grads))
    (fused_out, fused_grads), (ref_out, ref_grads) = results
    assert fused_out.dtype == ref_out.dtype == dtype
    np.testing.assert_allclose(fused_out, ref_out, rtol=tol, atol=tol)
    for got, want in zip(fused_grads, ref_grads):
        assert got is not None and want is not None and got.dtype == dtype
        # against the scale of the gradients (dx of a batch of 2 is all cancellation, near 0)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(np.abs(want).max(), np.abs(dout).max()))


def test_batch_norm_refuses_bad_input_and_arguments() -> None:
    """A wrong feature count, a wrong rank or one value per feature in training raise, naming the shape."""
    bn = nn.BatchNorm1d(3)
    for shape in ((4, 2), (4,), (2, 3, 4, 5)):
        with pytest.raises(ValueError, match=r"BatchNorm1d.*\(N, 3\)"):
            bn(mg.Tensor(np.ones(shape)))
    with pytest.raises(ValueError, match=r"more than one value.*\(1, 3\)"):
        bn(mg.Tensor(np.ones((1, 3))))
    bn.eval()(mg.Tensor(np.ones((1, 3))))  # fine in eval: the running stats need no batch
    for kwargs, name in (({"num_features": 0}, "num_features"), ({"num_features": 2, "momentum": 1.5}, "momentum"),
                         ({"num_features": 2, "eps": -1.0}, "eps"), ({"num_features": 2, "affine": "yes"}, "affine"),
                         ({"num_features": 2.0}, "num_features"), ({"num_features": 2, "momentum": "0.1"}, "momentum")):
        with pytest.raises((ValueError, TypeError), match=name):  # TypeError for a flag that is not a bool
            nn.BatchNorm1d(**kwargs)


def test_batch_norm_running_stats_are_buffers_not_parameters() -> None:
    """running_mean and running_var are in state_dict and buffers(), never in parameters() or an optimizer."""
    bn = nn.BatchNorm1d(4)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var"]
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var"]
    assert all(isinstance(b, nn.Buffer) and not b.requires_grad for b in bn.buffers())
    out = bn(mg.Tensor(np.random.default_rng(0).normal(size=(5, 4)), requires_grad=True))
    out.sum().backward()
    assert all(b.grad is None for b in bn.buffers())
    assert nn.BatchNorm1d(4, affine=False).parameters() == []
    assert "Buffer(" in repr(bn.running_mean)


# ---------------------------------------------------------------------------
# state_dict with buffers
# ---------------------------------------------------------------------------


def trained_bn_mlp(seed: int) -> nn.MLP:
    """An MLP with BatchNorm whose running statistics have moved."""
    mg.manual_seed(seed)
    model = nn.MLP([3, 6, 2], norm="batch", dtype=np.float64)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        model(mg.Tensor(rng.normal(2.0, 3.0, (8, 3))))
    return model


def test_state_dict_round_trip_with_buffers_through_save_and_load(tmp_path: Path) -> None:
    """Parameters and running stats come back bit for bit, in a fresh model, through a checkpoint file."""
    source = trained_bn_mlp(0)
    assert list(source.state_dict()) == ["layers.0.W", "layers.0.b", "layers.1.weight", "layers.1.bias",
                                         "layers.1.running_mean", "layers.1.running_var", "layers.3.W", "layers.3.b"]
    mg.save({"model": source.state_dict()}, tmp_path / "bn.npz")
    target = trained_bn_mlp(1)
    buffers_before = target.buffers()
    target.load_state_dict(mg.load(tmp_path / "bn.npz")["model"])
    assert all(a is b for a, b in zip(target.buffers(), buffers_before))  # copied in, not replaced
    for (name, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
        assert a.tobytes() == b.tobytes(), name
    x = mg.Tensor(np.random.default_rng(5).normal(size=(4, 3)))
    assert np.array_equal(source.eval()(x).data, target.eval()(x).data)


@pytest.mark.parametrize("spoil", ["buffer shape", "buffer missing", "buffer dtype", "not a mapping", "ragged entry"])
def test_a_failed_load_leaves_parameters_and_buffers_as_they_were(spoil: str) -> None:
    """Any bad entry, a buffer's included, raises before anything is copied: the model is unchanged."""
    model = trained_bn_mlp(0)
    state: Any = trained_bn_mlp(1).state_dict()  # every entry differs from the model's
    if spoil == "buffer shape":
        state["layers.1.running_var"] = np.ones(5)
    elif spoil == "buffer missing":
        del state["layers.1.running_mean"]
    elif spoil == "buffer dtype":
        state["layers.1.running_mean"] = state["layers.1.running_mean"].astype(np.float32)
    elif spoil == "not a mapping":
        state = list(state.values())
    else:
        state["layers.3.b"] = [[1.0], [2.0, 3.0]]
    before = {k: v.tobytes() for k, v in model.state_dict().items()}
    with pytest.raises((ValueError, TypeError)) as info:
        model.load_state_dict(state)
    assert "load_state_dict" in str(info.value)
    if spoil.startswith("buffer"):
        assert "layers.1.running_" in str(info.value)
    assert {k: v.tobytes() for k, v in model.state_dict().items()} == before


def test_buffers_are_found_in_lists_and_reported_once() -> None:
    """A buffer in a list, or reachable twice, appears once under its first name."""

    class Holder(nn.Module):
        def __init__(self) -> None:
            self.shared = nn.Buffer(np.zeros(2))
            self.items = [nn.Buffer(np.ones(3)), self.shared]
            self.w = nn.Parameter(np.ones(1))

    h = Holder()
    assert [n for n, _ in h.named_buffers()] == ["shared", "items.0"]
    assert list(h.state_dict()) == ["shared", "items.0", "w"]
    assert h.parameters() == [h.w]
    source = np.arange(2.0)
    b = nn.Buffer(source)
    source[0] = 9
    assert b.data[0] == 0  # the data is copied


# ---------------------------------------------------------------------------
# MLP options
# ---------------------------------------------------------------------------


def kinds(model: nn.Module) -> list[str]:
    return [type(m).__name__ for m in model.layers]  # type: ignore[attr-defined]


def test_mlp_options_build_linear_norm_activation_dropout_per_hidden_layer() -> None:
    """Each hidden layer is Linear, norm, activation, Dropout; nothing follows the last Linear."""
    assert kinds(nn.MLP([2, 4, 4, 3])) == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    model = nn.MLP([2, 4, 4, 3], activation="gelu", dropout=0.2, norm="batch")
    assert kinds(model) == ["Linear", "BatchNorm1d", "GELU", "Dropout"] * 2 + ["Linear"]
    assert model.layers[3].p == 0.2  # type: ignore[attr-defined]
    assert kinds(nn.MLP([2, 4, 3], activation="leaky_relu", norm="layer")) == [
        "Linear", "LayerNorm", "LeakyReLU", "Linear"]
    assert kinds(nn.MLP([2, 3])) == ["Linear"]
    for kwargs, name in (({"activation": "swish"}, "activation"), ({"norm": "group"}, "norm"),
                         ({"dropout": 1.5}, "Dropout")):
        with pytest.raises(ValueError, match=name):
            nn.MLP([2, 4, 3], **kwargs)


def test_mlp_with_dropout_and_batch_norm_trains_and_is_deterministic_in_eval() -> None:
    """Training outputs vary with the dropout mask; eval outputs are the same every time; gradients reach all."""
    mg.manual_seed(0)
    model = nn.MLP([3, 16, 2], dropout=0.5, norm="batch", dtype=np.float64)
    x = mg.Tensor(np.random.default_rng(0).normal(size=(32, 3)))
    a, b = model(x), model(x)
    assert not np.array_equal(a.data, b.data)
    (a.sum() + b.sum()).backward()
    assert all(p.grad is not None and np.any(p.grad != 0) for p in model.parameters())
    model.eval()
    assert np.array_equal(model(x).data, model(x).data)


NEW_LAYERS = (nn.LeakyReLU, nn.GELU, nn.Softmax, nn.Identity, nn.Flatten, nn.Dropout, nn.LayerNorm, nn.BatchNorm1d)


def test_no_new_layer_hand_writes_parameters_or_state() -> None:
    """Parameters and buffers are found by Module alone: no layer defines its own discovery or state dict."""
    for cls in NEW_LAYERS:
        for method in ("parameters", "named_parameters", "buffers", "named_buffers", "state_dict",
                       "load_state_dict", "zero_grad", "train", "eval"):
            assert method not in vars(cls), f"{cls.__name__} defines {method}()"


def test_reprs_show_the_settings() -> None:
    """Each layer's repr gives its arguments."""
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.Dropout(0.1)) == "Dropout(p=0.1)"
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(nn.LayerNorm(4)) == "LayerNorm((4,), eps=1e-05, elementwise_affine=True)"
    assert repr(nn.BatchNorm1d(3)) == "BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True)"


# ---------------------------------------------------------------------------
# Second derivatives and in-place changes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "leaky_relu", "softmax", "layer_norm", "batch_norm",
                                  "batch_norm_3d", "batch_norm_no_affine"])
def test_second_derivatives_match_central_differences(name: str) -> None:
    """Each layer's gradient is itself differentiable (create_graph): mg.gradgradcheck in float64."""
    rng = np.random.default_rng(0)
    x = mg.Tensor(away_from_zero((5, 3), 0), requires_grad=True)
    w = mg.Tensor(rng.normal(size=3), requires_grad=True)
    b = mg.Tensor(rng.normal(size=3), requires_grad=True)
    cases: dict[str, tuple[Callable[..., mg.Tensor], tuple[mg.Tensor, ...]]] = {
        "gelu": (nn.GELU(), (x,)),
        "gelu_tanh": (nn.GELU("tanh"), (x,)),
        "leaky_relu": (nn.LeakyReLU(0.2), (x,)),
        "softmax": (nn.Softmax(), (x,)),
        "layer_norm": (with_affine(nn.LayerNorm(3)), (x, w, b)),
        "batch_norm": (with_affine(nn.BatchNorm1d(3)), (x, w, b)),
        "batch_norm_3d": (with_affine(nn.BatchNorm1d(3)), (mg.Tensor(rng.normal(size=(3, 3, 2)), requires_grad=True),
                                                          w, b)),
        "batch_norm_no_affine": (nn.BatchNorm1d(3, affine=False), (x,)),
    }
    fn, inputs = cases[name]
    assert mg.gradgradcheck(fn, *inputs)


def test_init_and_load_state_dict_count_as_in_place_changes() -> None:
    """A graph built before nn.init or load_state_dict changed a weight refuses to backpropagate."""
    for change in ("init", "load"):
        mg.manual_seed(0)
        layer = nn.Linear(3, 2)
        state = nn.Linear(3, 2).state_dict()
        loss = (layer(mg.Tensor(np.ones((2, 3)), dtype=np.float32)) ** 2).sum()
        before = layer.W.version
        if change == "init":
            nn.init.zeros_(layer.W)
        else:
            layer.load_state_dict(state)
        assert layer.W.version > before
        with pytest.raises(RuntimeError, match="modified in place"):
            loss.backward()



def test_norm_layers_take_arrays_in_their_dtype() -> None:
    """A numpy input is taken as a Tensor of the layer's dtype, as Linear does."""
    x = np.random.default_rng(0).normal(size=(4, 3))
    for layer in (nn.BatchNorm1d(3), nn.LayerNorm(3), nn.BatchNorm1d(3).eval()):
        out = layer(x)  # type: ignore[arg-type]
        assert isinstance(out, mg.Tensor) and out.dtype == np.float32
        np.testing.assert_allclose(out.data, layer(mg.Tensor(x, dtype=np.float32)).data, rtol=1e-6)
