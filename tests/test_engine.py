"""Tests of the Tensor engine (issue 2).

The heart of the file is a catalog: every op, on several shapes (broadcast
ones included), checked three ways. ``mg.gradcheck`` compares backward() with
central differences in float64; the forward value is compared with numpy
computing the same expression; and the dtype must flow through (float64 in,
float64 out and float64 gradients; the same for float32). Hypothesis then
draws broadcastable shape pairs for the binary ops and matmul. The rest checks
the semantics one by one: node reuse, accumulation, the 100,000-op chain, a
training loop whose memory stays flat, no_grad, stability, seeding and the
error messages. Expected numbers come from the equations or from numpy, never
from a run of minigrad.
"""

from __future__ import annotations

import math
import re
import sys
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import minigrad as mg
from minigrad.engine import topological_order

# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

Shape = tuple[int, ...]


def values(shape: Shape, domain: str, rng: np.random.Generator) -> np.ndarray:
    """Random float64 values of ``shape`` from a domain where the op is smooth.

    "any": uniform in [-2, 2]; "pos": [0.5, 2] (log, fractional powers, the
    base of a tensor power); "nonzero": ±[0.5, 2] (divisors, relu's kink);
    "distinct": values at least 0.25 apart (max, so no two can tie).
    """
    if domain == "any":
        out = rng.uniform(-2.0, 2.0, shape)
    elif domain == "pos":
        out = rng.uniform(0.5, 2.0, shape)
    elif domain == "nonzero":
        out = rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 2.0, shape)
    elif domain == "distinct":
        n = math.prod(shape)
        out = (rng.permutation(n) * 0.25 - 0.1 * n).reshape(shape)
    else:
        raise ValueError(f"unknown domain {domain!r}")
    return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class Case:
    """One catalog entry: the minigrad expression, numpy's, and its inputs."""

    fn: Callable[..., mg.Tensor]
    ref: Callable[..., np.ndarray]
    shapes: tuple[Shape, ...]
    domains: tuple[str, ...]

    def arrays(self, seed: int = 0) -> list[np.ndarray]:
        """The float64 input arrays (the same ones for every check of a case)."""
        rng = np.random.default_rng(seed)
        return [values(s, d, rng) for s, d in zip(self.shapes, self.domains)]


def case(
    name: str,
    fn: Callable[..., mg.Tensor],
    *shapes: Shape,
    ref: Callable[..., np.ndarray] | None = None,
    domains: tuple[str, ...] | None = None,
) -> object:
    """A pytest param for the catalog.

    ``ref`` defaults to ``fn`` itself, applied to numpy arrays: an expression
    made only of operators, ``.sum``, ``.reshape``, ``.T`` or indexing means
    the same thing in numpy, which then computes the expected value.
    """
    domains = domains or ("any",) * len(shapes)
    assert len(domains) == len(shapes)
    return pytest.param(Case(fn, ref or fn, shapes, domains), id=name)


def np_softmax(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(a) / Σ exp(a), from the definition (inputs here are small)."""
    e = np.exp(a)
    return e / e.sum(axis=axis, keepdims=True)


def np_sigmoid(a: np.ndarray) -> np.ndarray:
    """σ(a) = 1 / (1 + e^-a) = exp(-log(1 + e^-a)), written stably with logaddexp."""
    return np.exp(-np.logaddexp(0.0, -a))


# ---------------------------------------------------------------------------
# The catalog
# ---------------------------------------------------------------------------

BROADCAST_PAIRS: list[tuple[Shape, Shape]] = [
    ((2, 3), (2, 3)),
    ((2, 3), (3,)),
    ((3,), (2, 3)),
    ((2, 1), (1, 3)),
    ((4, 1, 3), (2, 1)),
    ((), (2, 3)),
    ((2, 3), ()),
]

AXES: list[tuple[int | tuple[int, ...] | None, bool]] = [
    (None, False),
    (None, True),
    (0, False),
    (-1, False),
    (1, True),
    ((0, 2), False),
    ((0, 1), True),
]

CATALOG: list[object] = []

for sa, sb in BROADCAST_PAIRS:
    tag = f"{sa}{sb}".replace(" ", "")
    CATALOG += [
        case(f"add{tag}", lambda a, b: a + b, sa, sb),
        case(f"sub{tag}", lambda a, b: a - b, sa, sb),
        case(f"mul{tag}", lambda a, b: a * b, sa, sb),
        case(f"div{tag}", lambda a, b: a / b, sa, sb, domains=("any", "nonzero")),
        case(f"pow_tensor{tag}", lambda a, b: a**b, sa, sb, domains=("pos", "any")),
    ]

CATALOG += [
    # Scalar exponents (integer ones also for negative bases) and negation.
    case("pow2", lambda a: a**2, (2, 3)),
    case("pow3", lambda a: a**3, (2, 3)),
    case("pow0.5", lambda a: a**0.5, (2, 3), domains=("pos",)),
    case("pow-1.5", lambda a: a**-1.5, (2, 3), domains=("pos",)),
    case("pow2.5_0d", lambda a: a**2.5, (), domains=("pos",)),
    case("pow_numpy_scalar", lambda a: a ** np.float64(2.0), (2, 3)),
    case("neg", lambda a: -a, (2, 3)),
    case("neg_0d", lambda a: -a, ()),
    # A number or an ndarray on the left (the reflected operators).
    case("number+t", lambda a: 3.0 + a, (2, 3)),
    case("number-t", lambda a: 2 - a, (2, 3)),
    case("number*t", lambda a: 2 * a, (2, 3)),
    case("number/t", lambda a: 2 / a, (2, 3), domains=("nonzero",)),
    case("number**t", lambda a: 2**a, (2, 3)),
    case("ndarray+t", lambda a: np.ones(3) + a, (2, 3)),
    case("ndarray-t", lambda a: np.arange(3.0) - a, (2, 3)),
    case("ndarray*t_bcast", lambda a: np.full((2, 3), 2.0) * a, (3,)),
    case("ndarray/t", lambda a: np.ones(3) / a, (2, 3), domains=("nonzero",)),
    case("ndarray**t", lambda a: np.full(3, 2.0) ** a, (2, 3)),
    case("ndarray@t", lambda a: np.arange(6.0).reshape(2, 3) @ a, (3, 4)),
    # A number or an ndarray on the right.
    case("t+number", lambda a: a + 1.5, (2, 3)),
    case("t-number", lambda a: a - 1, (2, 3)),
    case("t*ndarray", lambda a: a * np.arange(3.0), (2, 3)),
    case("t/number", lambda a: a / 4, (2, 3)),
    case("t**ndarray", lambda a: a ** np.array([1.0, 2.0, 0.5]), (2, 3), domains=("pos",)),
    case("t@ndarray", lambda a: a @ np.arange(12.0).reshape(3, 4), (2, 3)),
    # matmul with numpy's semantics for 1-D, 2-D and batched operands.
    case("matmul_1d_1d", lambda a, b: a @ b, (3,), (3,)),
    case("matmul_1d_2d", lambda a, b: a @ b, (3,), (3, 4)),
    case("matmul_2d_1d", lambda a, b: a @ b, (2, 3), (3,)),
    case("matmul_2d_2d", lambda a, b: a @ b, (2, 3), (3, 4)),
    case("matmul_3d_2d", lambda a, b: a @ b, (5, 2, 3), (3, 4)),
    case("matmul_2d_3d", lambda a, b: a @ b, (2, 3), (5, 3, 4)),
    case("matmul_3d_3d", lambda a, b: a @ b, (5, 2, 3), (5, 3, 4)),
    case("matmul_3d_1d", lambda a, b: a @ b, (5, 2, 3), (3,)),
    case("matmul_1d_3d", lambda a, b: a @ b, (3,), (5, 3, 4)),
    case("matmul_batch_bcast", lambda a, b: a @ b, (2, 1, 2, 3), (3, 3, 4)),
    case("matmul_batch_bcast_1", lambda a, b: a @ b, (1, 2, 3), (4, 3, 2)),
    # Elementwise functions.
    case("exp", lambda a: a.exp(), (2, 3), ref=np.exp),
    case("exp_0d", lambda a: a.exp(), (), ref=np.exp),
    case("log", lambda a: a.log(), (2, 3), ref=np.log, domains=("pos",)),
    case("tanh", lambda a: a.tanh(), (2, 3), ref=np.tanh),
    case("sigmoid", lambda a: a.sigmoid(), (2, 3), ref=np_sigmoid),
    case("relu", lambda a: a.relu(), (3, 4), ref=lambda a: np.maximum(a, 0.0), domains=("nonzero",)),
    # softmax and log_softmax along different axes.
    case("softmax_1d", lambda a: a.softmax(), (5,), ref=np_softmax),
    case("softmax_last", lambda a: a.softmax(), (2, 3, 4), ref=np_softmax),
    case("softmax_axis0", lambda a: a.softmax(axis=0), (2, 3, 4), ref=lambda a: np_softmax(a, 0)),
    case("softmax_axis1", lambda a: a.softmax(axis=1), (2, 3, 4), ref=lambda a: np_softmax(a, 1)),
    case("log_softmax_1d", lambda a: a.log_softmax(), (5,), ref=lambda a: np.log(np_softmax(a))),
    case("log_softmax_last", lambda a: a.log_softmax(), (2, 3, 4), ref=lambda a: np.log(np_softmax(a))),
    case("log_softmax_axis0", lambda a: a.log_softmax(axis=0), (2, 3, 4), ref=lambda a: np.log(np_softmax(a, 0))),
    case("log_softmax_axis1", lambda a: a.log_softmax(axis=1), (2, 3, 4), ref=lambda a: np.log(np_softmax(a, 1))),
    # Shape ops.
    case("reshape", lambda a: a.reshape(3, 2), (2, 3)),
    case("reshape_tuple", lambda a: a.reshape((6,)), (2, 3)),
    case("reshape_-1", lambda a: a.reshape(-1), (2, 3)),
    case("reshape_3d_-1", lambda a: a.reshape(4, -1, 2), (2, 3, 4)),
    case("reshape_to_0d", lambda a: a.reshape(()), (1, 1)),
    case("transpose_2d", lambda a: a.transpose(), (2, 3)),
    case("transpose_3d", lambda a: a.transpose(), (2, 3, 4)),
    case("transpose_axes", lambda a: a.transpose(1, 0, 2), (2, 3, 4)),
    case("transpose_axes_tuple", lambda a: a.transpose((2, 0, 1)), (2, 3, 4)),
    case("T_2d", lambda a: a.T, (2, 3)),
    case("T_3d", lambda a: a.T, (2, 3, 4)),
    # Indexing; repeated integer indices must accumulate their gradients.
    case("index_int", lambda a: a[1], (4, 3)),
    case("index_negative_int", lambda a: a[-1], (4, 3)),
    case("index_slice", lambda a: a[1:3], (4, 3)),
    case("index_step_slices", lambda a: a[::2, ::-1], (4, 3)),
    case("index_column", lambda a: a[:, 1], (4, 3)),
    case("index_tuple_ints", lambda a: a[1, 2], (4, 3)),
    case("index_int_slice", lambda a: a[2, 1:], (4, 3)),
    case("index_array_repeated", lambda a: a[np.array([0, 2, 0, 0])], (4, 3)),
    case("index_list_repeated", lambda a: a[[3, 3, 1]], (4, 3)),
    case("index_2d_array_repeated", lambda a: a[np.array([[0, 1], [1, 1]])], (4, 3)),
    case("index_array_pair_repeated", lambda a: a[np.array([0, 0, 1, 0]), np.array([2, 2, 0, 2])], (4, 3)),
    case("index_slice_array", lambda a: a[1:, np.array([0, 0, 2])], (4, 3)),
    # Joining tensors.
    case(
        "concatenate_axis0",
        lambda a, b: mg.concatenate([a, b]),
        (2, 3),
        (1, 3),
        ref=lambda a, b: np.concatenate([a, b]),
    ),
    case(
        "concatenate_axis1_three",
        lambda a, b, c: mg.concatenate([a, b, c], axis=1),
        (2, 3),
        (2, 2),
        (2, 1),
        ref=lambda a, b, c: np.concatenate([a, b, c], axis=1),
    ),
    case(
        "concatenate_axis-1",
        lambda a, b: mg.concatenate([a, b], axis=-1),
        (2, 2, 3),
        (2, 2, 1),
        ref=lambda a, b: np.concatenate([a, b], axis=-1),
    ),
    case("stack_axis0", lambda a, b, c: mg.stack([a, b, c]), (2, 3), (2, 3), (2, 3), ref=lambda *t: np.stack(t)),
    case(
        "stack_axis1",
        lambda a, b: mg.stack([a, b], axis=1),
        (2, 3),
        (2, 3),
        ref=lambda a, b: np.stack([a, b], axis=1),
    ),
    case(
        "stack_axis-1",
        lambda a, b: mg.stack([a, b], axis=-1),
        (3,),
        (3,),
        ref=lambda a, b: np.stack([a, b], axis=-1),
    ),
    # linear: out = x·W + b, one node.
    case("linear", lambda x, W, b: mg.linear(x, W, b), (4, 3), (3, 2), (2,), ref=lambda x, W, b: x @ W + b),
    case("linear_no_bias", lambda x, W: mg.linear(x, W), (4, 3), (3, 2), ref=lambda x, W: x @ W),
    case("linear_3d", lambda x, W, b: mg.linear(x, W, b), (2, 4, 3), (3, 2), (2,), ref=lambda x, W, b: x @ W + b),
    case("linear_1d", lambda x, W, b: mg.linear(x, W, b), (3,), (3, 2), (2,), ref=lambda x, W, b: x @ W + b),
    # A small network, several ops deep.
    case(
        "composite_mlp",
        lambda x, W, b: ((x @ W + b).tanh() @ W.T).log_softmax().mean(),
        (4, 3),
        (3, 2),
        (2,),
        ref=lambda x, W, b: np.log(np_softmax(np.tanh(x @ W + b) @ W.T)).mean(),
    ),
]

for ax, kd in AXES:
    tag = f"axis={ax},keepdims={kd}".replace(" ", "")
    CATALOG += [
        case(f"sum[{tag}]", lambda a, ax=ax, kd=kd: a.sum(axis=ax, keepdims=kd), (2, 3, 4)),
        case(f"mean[{tag}]", lambda a, ax=ax, kd=kd: a.mean(axis=ax, keepdims=kd), (2, 3, 4)),
        case(
            f"max[{tag}]",
            lambda a, ax=ax, kd=kd: a.max(axis=ax, keepdims=kd),
            (2, 3, 4),
            domains=("distinct",),
        ),
    ]
CATALOG += [
    case("sum_1d", lambda a: a.sum(), (5,)),
    case("mean_1d_axis0", lambda a: a.mean(axis=0), (5,)),
    case("max_1d", lambda a: a.max(), (5,), domains=("distinct",)),
]


def run(c: Case, dtype: type, requires_grad: bool = True) -> tuple[list[mg.Tensor], mg.Tensor]:
    """Build the case's inputs as Tensors of ``dtype`` and apply its op."""
    ts = [mg.Tensor(a.astype(dtype), requires_grad=requires_grad) for a in c.arrays()]
    return ts, c.fn(*ts)


@pytest.mark.parametrize("c", CATALOG)
def test_catalog_gradcheck(c: Case) -> None:
    """backward() agrees with central differences in float64, for every op."""
    inputs = [mg.Tensor(a, requires_grad=True) for a in c.arrays()]
    assert mg.gradcheck(c.fn, *inputs) is True


@pytest.mark.parametrize("c", CATALOG)
def test_catalog_gradcheck_on_column_major_inputs(c: Case) -> None:
    """The same with every input column-major, as a transposed array is (cross_entropy lost a term on them)."""
    inputs = [mg.Tensor(np.array(a, order="F"), requires_grad=True) for a in c.arrays()]
    assert mg.gradcheck(c.fn, *inputs) is True


@pytest.mark.parametrize("c", CATALOG)
def test_catalog_forward_matches_numpy(c: Case) -> None:
    """The forward value is numpy's value of the same expression."""
    arrays = c.arrays()
    expected = np.asarray(c.ref(*arrays))
    _, out = run(c, np.float64)
    assert isinstance(out, mg.Tensor)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("c", CATALOG)
def test_catalog_dtype_flows(c: Case, dtype: type) -> None:
    """float64 in gives float64 out; every .grad has its tensor's shape and dtype."""
    ts, out = run(c, dtype)
    assert out.dtype == dtype
    assert out.requires_grad
    out.backward(np.ones(out.shape))
    for t in ts:
        assert t.grad is not None
        assert t.grad.shape == t.data.shape
        assert t.grad.dtype == t.data.dtype == dtype


# ---------------------------------------------------------------------------
# Hypothesis: broadcastable shapes for the binary ops and matmul
# ---------------------------------------------------------------------------

BINARY_OPS: dict[str, tuple[Callable, tuple[str, str]]] = {
    "add": (lambda a, b: a + b, ("any", "any")),
    "sub": (lambda a, b: a - b, ("any", "any")),
    "mul": (lambda a, b: a * b, ("any", "any")),
    "div": (lambda a, b: a / b, ("any", "nonzero")),
    "pow": (lambda a, b: a**b, ("pos", "any")),
}


@settings(max_examples=40, deadline=None)
@given(
    shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=3),
    op=st.sampled_from(sorted(BINARY_OPS)),
    constant=st.sampled_from(["neither", "left", "right"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_binary_ops_on_broadcastable_shapes(shapes: object, op: str, constant: str, seed: int) -> None:
    """Any broadcastable pair: numpy's value and shape, and a passing gradcheck.

    ``constant`` makes one operand a plain ndarray, so the reflected operators
    (``ndarray - tensor``) are covered on the same shapes.
    """
    fn, domains = BINARY_OPS[op]
    rng = np.random.default_rng(seed)
    a, b = (values(s, d, rng) for s, d in zip(shapes.input_shapes, domains))
    expected = fn(a, b)

    if constant == "left":
        out = fn(a, mg.Tensor(b))
        assert mg.gradcheck(lambda tb: fn(a, tb), mg.Tensor(b, requires_grad=True))
    elif constant == "right":
        out = fn(mg.Tensor(a), b)
        assert mg.gradcheck(lambda ta: fn(ta, b), mg.Tensor(a, requires_grad=True))
    else:
        out = fn(mg.Tensor(a), mg.Tensor(b))
        assert mg.gradcheck(fn, mg.Tensor(a, requires_grad=True), mg.Tensor(b, requires_grad=True))
    assert isinstance(out, mg.Tensor)
    assert out.shape == shapes.result_shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    shapes=mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=2, min_side=1, max_side=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_matmul_on_generated_shapes(shapes: object, seed: int) -> None:
    """1-D, 2-D and batched operands with broadcast batch dims: numpy's value, passing gradcheck."""
    rng = np.random.default_rng(seed)
    a, b = (values(s, "any", rng) for s in shapes.input_shapes)
    out = mg.Tensor(a) @ mg.Tensor(b)
    expected = a @ b
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    assert mg.gradcheck(lambda x, y: x @ y, mg.Tensor(a, requires_grad=True), mg.Tensor(b, requires_grad=True))


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


def test_matmul_values_by_hand() -> None:
    """[[1, 2], [3, 4]] @ [5, 6] = [17, 39]; and its gradients dA = g·bᵀ, db = Aᵀ·g."""
    A = mg.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = mg.Tensor([5.0, 6.0], requires_grad=True)
    out = A @ b
    np.testing.assert_array_equal(out.data, [17.0, 39.0])
    out.backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(A.grad, [[5.0, 6.0], [50.0, 60.0]])
    np.testing.assert_array_equal(b.grad, [31.0, 42.0])


def test_softmax_rows_sum_to_one_and_log_softmax_is_its_log() -> None:
    """softmax is positive and sums to 1 along its axis; log_softmax = log(softmax)."""
    x = mg.Tensor(np.random.default_rng(1).normal(size=(4, 5)) * 3)
    for axis in (-1, 0):
        s = x.softmax(axis=axis).data
        assert np.all(s > 0)
        np.testing.assert_allclose(s.sum(axis=axis), 1.0, rtol=1e-6)
        np.testing.assert_allclose(x.log_softmax(axis=axis).data, np.log(s), rtol=1e-5, atol=1e-6)


def test_max_splits_gradient_among_ties() -> None:
    """max([1, 3, 3]) = 3, and the two maxima share the gradient equally."""
    x = mg.Tensor([1.0, 3.0, 3.0], requires_grad=True)
    m = x.max()
    assert m.item() == 3.0
    m.backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5])


def test_max_backward_keeps_float32():
    x = mg.Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], dtype=np.float32), requires_grad=True)
    y = x * 1
    (y.max(axis=1) * 2).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [[0, 1, 1], [2, 0, 0]])


def test_repeated_index_accumulates_exactly() -> None:
    """x[[0, 0, 2, 0]].sum(): element 0 is used three times, element 2 once."""
    x = mg.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[np.array([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])


def test_reflected_operands_give_tensors() -> None:
    """A number, a numpy scalar or an ndarray on the left still gives a Tensor with numpy's values."""
    t = mg.Tensor([1.0, 2.0, 4.0])
    n = np.array([2.0, 3.0, 5.0])
    cases = [
        (np.ones(3) + t, [2.0, 3.0, 5.0]),
        (n - t, [1.0, 1.0, 1.0]),
        (n * t, [2.0, 6.0, 20.0]),
        (np.ones(3) / t, [1.0, 0.5, 0.25]),
        (n**t, [2.0, 9.0, 625.0]),
        (np.ones((2, 3)) @ t, [7.0, 7.0]),
        (2 - t, [1.0, 0.0, -2.0]),
        (2**t, [2.0, 4.0, 16.0]),
        (np.float64(3.0) * t, [3.0, 6.0, 12.0]),
    ]
    for out, expected in cases:
        assert isinstance(out, mg.Tensor)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out.data, expected)


# ---------------------------------------------------------------------------
# dtype rules
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kwargs", "dtype"),
    [
        (3, {}, np.float32),
        (2.5, {}, np.float32),
        ([1, 2, 3], {}, np.float32),
        ([[1.0, 2.0], [3.0, 4.0]], {}, np.float32),
        (np.arange(3), {}, np.float32),
        (np.arange(3, dtype=np.int8), {}, np.float32),
        (np.array([True, False]), {}, np.bool_),  # a boolean mask stays boolean
        (np.ones(3, dtype=np.float32), {}, np.float32),
        (np.ones(3), {}, np.float64),
        ([1, 2, 3], {"dtype": "float64"}, np.float64),
        (2.5, {"dtype": np.float64}, np.float64),
        (np.arange(3), {"dtype": np.dtype("float64")}, np.float64),
        (np.ones(3), {"dtype": np.float32}, np.float32),
    ],
)
def test_tensor_dtype_rules(data: object, kwargs: dict, dtype: type) -> None:
    """Numbers, lists and integer arrays become float32; float64 arrays or dtype= give float64."""
    t = mg.Tensor(data, **kwargs)
    assert t.dtype == dtype
    assert t.data.dtype == dtype
    np.testing.assert_array_equal(t.data, np.asarray(data, dtype=np.float64))


def test_array_of_the_target_dtype_is_not_copied() -> None:
    """A float64 (or float32) array keeps its dtype and is used as is, like np.asarray."""
    for a in (np.array([0.1, 0.2, 0.3]), np.array([0.1, 0.2], dtype=np.float32)):
        t = mg.Tensor(a)
        assert t.dtype == a.dtype
        assert np.shares_memory(t.data, a)


@pytest.mark.parametrize("data", ["abc", ["a", "b"], [1, "a"], object(), None, {"a": 1}])
def test_non_numeric_data_raises_type_error(data: object) -> None:
    """Strings and arbitrary objects are refused with a TypeError that says why."""
    with pytest.raises(TypeError, match="numeric"):
        mg.Tensor(data)


@pytest.mark.parametrize("data", [[[1, 2], [3]], [1, [2, 3]], [[1.0], [2.0, 3.0], []]])
def test_ragged_data_raises_value_error(data: object) -> None:
    """Ragged nested lists are refused with a ValueError that says so."""
    with pytest.raises(ValueError, match="ragged"):
        mg.Tensor(data)


@pytest.mark.parametrize("dtype", ["int32", np.int64, "not-a-dtype"])
def test_non_float_dtype_raises_type_error(dtype: object) -> None:
    """dtype= must name a floating type."""
    with pytest.raises(TypeError):
        mg.Tensor([1.0, 2.0], dtype=dtype)


def test_grad_has_shape_and_dtype_of_data_for_broadcast_operands() -> None:
    """Broadcast operands get gradients summed back to their own shape and dtype."""
    for dtype in (np.float32, np.float64):
        a = mg.Tensor(np.ones((3, 1), dtype=dtype), requires_grad=True)
        b = mg.Tensor(np.ones(4, dtype=dtype), requires_grad=True)
        c = mg.Tensor(np.float64(2.0).astype(dtype), requires_grad=True)
        ((a * b) + c).sum().backward()
        for t in (a, b, c):
            assert t.grad.shape == t.shape
            assert t.grad.dtype == dtype
        np.testing.assert_array_equal(a.grad, np.full((3, 1), 4.0))  # summed over the 4 columns
        np.testing.assert_array_equal(b.grad, np.full(4, 3.0))  # summed over the 3 rows
        assert c.grad == 12.0


@pytest.mark.parametrize("op", ["exp", "tanh", "square", "sum", "relu"])
def test_the_gradient_of_a_0d_leaf_is_a_0d_array(op: str):
    """numpy ufuncs return scalars for 0-d inputs; a leaf's .grad is still an ndarray (0-d), of its dtype."""
    for dtype in (np.float32, np.float64):
        t = mg.Tensor(np.array(0.5, dtype=dtype), requires_grad=True)
        out = t * t if op == "square" else getattr(t, op)()
        out.backward()
        assert type(t.grad) is np.ndarray and t.grad.shape == () and t.grad.dtype == dtype
        expected = {"exp": np.exp(0.5), "tanh": 1 - np.tanh(0.5) ** 2, "square": 1.0, "sum": 1.0, "relu": 1.0}[op]
        np.testing.assert_allclose(t.grad, expected, rtol=1e-6)


def test_grad_is_none_until_backward_reaches_it() -> None:
    """.grad starts as None, and stays None for a tensor the loss does not depend on."""
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    unused = mg.Tensor([1.0, 2.0], requires_grad=True)
    assert x.grad is None
    (x * 2).sum().backward()
    assert unused.grad is None
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


# ---------------------------------------------------------------------------
# Graph semantics
# ---------------------------------------------------------------------------


def test_node_reuse_gets_every_contribution() -> None:
    """d/dx (x·x + x) = 2x + 1: both uses of x contribute."""
    xs = np.array([-1.5, 0.0, 2.0, 3.0])
    x = mg.Tensor(xs, requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * xs + 1)


def test_intermediate_reuse_gets_every_contribution() -> None:
    """h = 2x; d/dx (h·h + h) = 2·(2h + 1) = 8x + 2."""
    xs = np.array([-1.5, 0.5, 2.0])
    x = mg.Tensor(xs, requires_grad=True)
    h = x * 2
    (h * h + h).sum().backward()
    np.testing.assert_array_equal(x.grad, 8 * xs + 2)


def test_chain_above_a_diamond() -> None:
    """A chain of nodes on top of a diamond: f = Σ tanh(0.5·(h·h + tanh h)), h = 2x.

    Backward walks the chain (sum, tanh, mul) directly and orders the diamond
    below it by depth-first search; both parts must meet correctly.
    df/dx = (1 - tanh²(0.5 d))·0.5·(2h + 1 - tanh²h)·2 with d = h² + tanh h.
    """
    xs = np.array([-1.2, -0.3, 0.0, 0.4, 1.1])
    x = mg.Tensor(xs, requires_grad=True)
    h = x * 2
    ((h * h + h.tanh()) * 0.5).tanh().sum().backward()
    hs = 2 * xs
    d = hs * hs + np.tanh(hs)
    expected = (1 - np.tanh(0.5 * d) ** 2) * 0.5 * (2 * hs + 1 - np.tanh(hs) ** 2) * 2
    np.testing.assert_allclose(x.grad, expected, rtol=1e-13, atol=1e-15)


def test_chain_through_a_node_used_twice_by_one_op(monkeypatch: pytest.MonkeyPatch) -> None:
    """f = Σ tanh(h·h), h = 2x: mul's two parents are one node, and the chain walk goes on through it
    (no depth-first search). df/dx = (1 - tanh²(h²))·2h·2.
    """

    def no_search(roots: list[mg.Tensor]) -> list[mg.Tensor]:
        raise AssertionError("the chain walk left the chain")

    monkeypatch.setattr(mg.engine, "_depth_first_order", no_search)
    xs = np.array([-0.7, 0.1, 0.5])
    x = mg.Tensor(xs, requires_grad=True)
    h = x * 2
    out = (h * h).tanh().sum()
    assert len(out._topological_order()) == 4  # sum, tanh, mul, h
    out.backward()
    hs = 2 * xs
    np.testing.assert_allclose(x.grad, (1 - np.tanh(hs * hs) ** 2) * 4 * hs, rtol=1e-13, atol=1e-15)


def test_branches_leaves_reached_twice_and_a_none_gradient():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4))
    x = mg.Tensor(a, requires_grad=True)
    w = mg.Tensor(rng.standard_normal(4), requires_grad=True)
    h = x * w  # used by two ops
    y = (h.tanh() + h * h).sum() + (x * 3.0).sum()  # x reached from the chain and from a branch
    y.backward()
    hv = a * w.data
    dh = (1 - np.tanh(hv) ** 2) + 2 * hv
    assert np.allclose(x.grad, dh * w.data + 3.0)
    assert np.allclose(w.grad, (dh * a).sum(axis=0))


OPS = st.sampled_from(["add", "mul", "tanh"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(OPS, st.integers(0, 99), st.integers(0, 99)), min_size=1, max_size=14), st.booleans())
def test_backward_order_on_random_graphs(steps: list[tuple[str, int, int]], wide_root: bool) -> None:
    """On random graphs, backward's order lists every non-leaf the output reaches once,
    each before its parents, and the gradients agree with central differences. With
    ``wide_root`` the output adds the last node to the middle one, so the root itself
    may have two non-leaf parents (no chain at the top at all)."""

    def build(a: mg.Tensor, b: mg.Tensor) -> tuple[mg.Tensor, list[mg.Tensor]]:
        nodes = [a, b]
        for op, i, j in steps:
            p, q = nodes[i % len(nodes)], nodes[j % len(nodes)]
            nodes.append(p + q if op == "add" else p * q * 0.5 if op == "mul" else p.tanh())
        top = nodes[-1] + nodes[len(nodes) // 2] if wide_root else nodes[-1]
        return top.sum(), top

    rng = np.random.default_rng(len(steps))
    a = mg.Tensor(rng.uniform(-1, 1, 3), requires_grad=True)
    b = mg.Tensor(rng.uniform(-1, 1, 3), requires_grad=True)
    out, top = build(a, b)

    for root in (out, top):  # the sum on top, and the node under it (which may branch at once)
        reachable, stack = set(), [root]  # every non-leaf the root depends on
        while stack:
            node = stack.pop()
            if node._ctx is not None and node not in reachable:
                reachable.add(node)
                stack.extend(p for p in node._ctx.inputs if isinstance(p, mg.Tensor))
        order = root._topological_order()
        assert len(order) == len(set(order)) == len(reachable) and set(order) == reachable
        position = {node: k for k, node in enumerate(order)}
        for node in order:
            for parent in node._ctx.inputs:
                if parent in position:
                    assert position[node] < position[parent]

    mg.gradcheck(lambda a, b: build(a, b)[0], a, b)


def _three_way(seed=0):
    """x feeds three products p0, p1, p2 of very different scales, summed as (p0 + p1) + p2."""
    rng = np.random.default_rng(seed)
    x = mg.Tensor(rng.standard_normal(1000), requires_grad=True)
    cs = [rng.standard_normal(1000) * 10.0**k for k in range(3)]
    ps = [x * mg.Tensor(c) for c in cs]
    return x, cs, ps, ((ps[0] + ps[1]) + ps[2]).sum()


def test_backward_visits_nodes_in_topological_order():
    # Was a bug: below the first node with several inner inputs, the walk sorted its inputs with
    # _depth_first_order(inputs), which visits them in the reverse of the order topological_order
    # (and the engine before 4656ba8) gives: p2, p1, p0 instead of p0, p1, p2.
    _, _, ps, root = _three_way()
    expected = [n for n in topological_order([root]) if any(n is p for p in ps)]
    visits = []
    for p in ps:
        p.register_hook(lambda g, p=p: visits.append(p))
    root.backward()
    assert [next(i for i, p in enumerate(ps) if p is v) for v in visits] == [
        next(i for i, p in enumerate(ps) if p is e) for e in expected
    ]


def test_a_leaf_used_three_times_sums_its_gradients_in_the_documented_order():
    # BUG (same cause): x.grad was (c2 + c1) + c0 instead of (c0 + c1) + c2, so the bits of a
    # gradient changed with the engine change (float addition is not associative).
    x, cs, _, root = _three_way()
    root.backward()
    expected = cs[0].copy()
    expected += cs[1]
    expected += cs[2]
    assert np.array_equal(x.grad, expected)


def test_gradients_accumulate_over_two_backward_calls() -> None:
    """Two backward() calls add up, as in PyTorch, until the gradient is zeroed."""
    xs = np.array([1.0, -2.0, 0.5])
    x = mg.Tensor(xs, requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * xs)
    (3 * x).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * xs + 3)
    (x * x).sum().backward()  # the same loss, built again
    np.testing.assert_array_equal(x.grad, 4 * xs + 3)
    x.zero_grad()
    assert x.grad is None
    (3 * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0, 3.0])


def test_backward_without_grad_on_non_scalar_names_the_shape() -> None:
    """backward() on a (2, 3) output without grad= raises with that shape."""
    x = mg.Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=re.escape("(2, 3)")):
        y.backward()


def test_backward_with_explicit_grad() -> None:
    """backward(grad) seeds dL/dy = grad; a one-element output needs no grad."""
    x = mg.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    g = np.arange(6.0).reshape(2, 3) + 1
    (x * 2).backward(g)
    np.testing.assert_array_equal(x.grad, 2 * g)
    z = mg.Tensor([[2.0]], requires_grad=True)
    (z * z).backward()
    np.testing.assert_array_equal(z.grad, [[4.0]])


def test_the_seed_of_a_one_element_output_has_the_outputs_shape():
    """Guards the seed's `g.reshape(self.data.shape)` (dropped: dL/dL was a 0-d array for an output of shape
    (1, 1), so a retained gradient, and the .grad of a leaf backpropagated from itself, had shape ())."""
    x = mg.Tensor(np.array([[2.0]]), requires_grad=True)
    y = x * 3.0
    y.retain_grad()
    y.backward()
    assert y.grad.shape == (1, 1) and y.grad[0, 0] == 1.0
    assert x.grad.shape == (1, 1) and x.grad[0, 0] == 3.0
    leaf = mg.Tensor(np.array([5.0]), requires_grad=True)
    leaf.backward()
    assert leaf.grad.shape == (1,) and leaf.grad[0] == 1.0


def test_backward_grad_of_wrong_shape_raises() -> None:
    """A grad= whose shape differs from the output's is refused, naming both shapes."""
    y = mg.Tensor(np.ones((2, 3)), requires_grad=True) * 2
    with pytest.raises(ValueError, match=re.escape("(3, 2)")) as info:
        y.backward(np.ones((3, 2)))
    assert "(2, 3)" in str(info.value)


def test_backward_on_tensor_without_graph_raises() -> None:
    """A tensor that does not require grad has nothing to backpropagate."""
    with pytest.raises(RuntimeError):
        (mg.Tensor([1.0, 2.0]) * 2).sum().backward()


def test_backward_through_released_graph_raises() -> None:
    """The graph is released by backward(): going through it again raises."""
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    loss = h.sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="released"):
        loss.backward()
    with pytest.raises(RuntimeError, match="released"):
        (h * 2).sum().backward()  # h's own graph went with the first backward
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])  # the failed calls added nothing


def test_backward_releases_the_graph_memory() -> None:
    """After backward(), a loss still held no longer keeps its intermediates alive."""
    n = 250_000  # 2 MB per float64 array
    x = mg.Tensor(np.full(n, 0.5), requires_grad=True)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        loss = ((x * 2.0).exp() * 3.0).sum()  # three intermediates of 2 MB each
        held = tracemalloc.get_traced_memory()[0] - base
        loss.backward()
        after = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert held > 3 * 8 * n
    assert after < 8 * n + 256 * 1024  # x.grad (2 MB) and not much else
    np.testing.assert_allclose(x.grad, 6 * np.exp(1.0))  # d/dx 3·e^(2x) = 6·e^(2x) at x = 0.5
    assert loss.item() == pytest.approx(3 * n * np.exp(1.0))


def test_chain_of_100000_ops_backpropagates() -> None:
    """y = x·c, 100,000 times: no recursion limit, and dy/dx = c^100000."""
    n = 100_000
    assert sys.getrecursionlimit() < n  # the walk must be iterative to pass
    c = mg.Tensor(1.0001, dtype=np.float64)
    x = mg.Tensor(1.0, dtype=np.float64, requires_grad=True)
    y = x
    for _ in range(n):
        y = y * c
    y.backward()
    expected = 1.0001**n
    assert y.item() == pytest.approx(expected, rel=1e-10)
    assert x.grad.item() == pytest.approx(expected, rel=1e-10)


def test_memory_stays_flat_over_2000_training_steps() -> None:
    """A small classifier trained for 2,000 steps: memory after step 2,000 is that after step 100.

    tracemalloc compares both the current and the peak traced memory. The
    margin allows for Python's free lists (it keeps up to 2,000 freed tuples
    of each size, and they fill during the first steps: about 200 KB); a
    graph kept alive by each step would cost at least one 64 x 8 float64
    array (4 KB) per step, over 7 MB in all.
    """
    n = 64
    rng = np.random.default_rng(0)
    X = mg.Tensor(rng.normal(size=(n, 4)))
    labels = (X.data[:, 0] + X.data[:, 1] > 0).astype(int) + (X.data[:, 2] > 0.5)
    rows = np.arange(n)
    W1 = mg.Tensor(rng.normal(size=(4, 8)) * 0.5, requires_grad=True)
    b1 = mg.Tensor(np.zeros(8), requires_grad=True)
    W2 = mg.Tensor(rng.normal(size=(8, 3)) * 0.5, requires_grad=True)
    b2 = mg.Tensor(np.zeros(3), requires_grad=True)
    params = [W1, b1, W2, b2]

    def step() -> float:
        h = (X @ W1 + b1).tanh()
        logits = mg.linear(h, W2, b2)
        loss = -logits.log_softmax(axis=1)[rows, labels].mean()
        for p in params:
            p.grad = None
        loss.backward()
        with mg.no_grad():
            for p in params:
                p.data -= 0.1 * p.grad
        return loss.item()

    first = step()
    tracemalloc.start()
    try:
        for _ in range(99):
            step()
        current_100, peak_100 = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(1900):
            last = step()
        current_2000, peak_2000 = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    margin = 512 * 1024
    assert current_2000 - current_100 < margin
    assert peak_2000 - peak_100 < margin
    assert last < first  # it did train


# ---------------------------------------------------------------------------
# no_grad
# ---------------------------------------------------------------------------


def test_no_grad_records_nothing_and_restores_state() -> None:
    """Inside no_grad results do not require grad; nesting and exceptions restore the state."""
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    assert mg.is_grad_enabled()
    with mg.no_grad():
        y = x * 2
        assert not mg.is_grad_enabled()
        with mg.no_grad():
            assert not mg.is_grad_enabled()
        assert not mg.is_grad_enabled()  # the inner block leaves the outer one off
        z = (y + x).exp()
    assert mg.is_grad_enabled()
    assert not y.requires_grad and not z.requires_grad
    np.testing.assert_array_equal(y.data, [2.0, 4.0])  # values are still computed
    with pytest.raises(RuntimeError):
        y.sum().backward()
    assert (x * 2).requires_grad

    with pytest.raises(ZeroDivisionError):
        with mg.no_grad():
            1 / 0  # noqa: B018
    assert mg.is_grad_enabled()


def test_no_grad_as_decorator() -> None:
    """@mg.no_grad() turns recording off for the call only."""

    @mg.no_grad()
    def double(t: mg.Tensor) -> mg.Tensor:
        assert not mg.is_grad_enabled()
        return t * 2

    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    assert not double(x).requires_grad
    assert mg.is_grad_enabled()
    assert not double(x).requires_grad  # reusable
    assert (x * 2).requires_grad


def test_no_grad_decorator_is_reentrant():
    @mg.no_grad()
    def countdown(n: int) -> bool:
        inside = mg.is_grad_enabled()
        if n:
            countdown(n - 1)
        return inside

    assert countdown(3) is False
    assert mg.is_grad_enabled() is True


def test_backward_inside_no_grad_leaves_recording_off():
    """Guards run_backward's `finally: _state.grad_enabled = recording` (set to True instead: a backward()
    inside no_grad turned recording on for the rest of the block)."""
    x = mg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (x * x).sum()
    with mg.no_grad():
        loss.backward()
        assert not mg.is_grad_enabled()
        assert not (x * 2.0).requires_grad
    assert mg.is_grad_enabled()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


# ---------------------------------------------------------------------------
# Error messages
# ---------------------------------------------------------------------------


def test_matmul_error_message_is_exact() -> None:
    """The issue pins this message word for word."""
    a = mg.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError) as info:
        a @ mg.Tensor(np.ones((2, 3)))
    assert str(info.value) == "matmul: shapes (2, 3) and (2, 3) are not aligned"


@pytest.mark.parametrize(
    ("sa", "sb"),
    [((3,), (4,)), ((2, 3), (4,)), ((3,), (2, 4, 5)), ((2, 3, 4), (5, 4, 2))],
)
def test_matmul_mismatch_names_both_shapes(sa: Shape, sb: Shape) -> None:
    """Inner dimensions or batch dimensions that do not fit: ValueError naming matmul and both shapes."""
    with pytest.raises(ValueError) as info:
        mg.Tensor(np.ones(sa)) @ mg.Tensor(np.ones(sb))
    msg = str(info.value)
    assert msg.startswith("matmul:")
    assert str(sa) in msg and str(sb) in msg


@pytest.mark.parametrize(
    ("op", "fn"),
    [
        ("add", lambda a, b: a + b),
        ("sub", lambda a, b: a - b),
        ("mul", lambda a, b: a * b),
        ("div", lambda a, b: a / b),
        ("pow", lambda a, b: a**b),
    ],
)
def test_broadcast_mismatch_names_op_and_both_shapes(op: str, fn: Callable) -> None:
    """(2, 3) against (4,): ValueError naming the op and both shapes, however the operands come."""
    a, b = mg.Tensor(np.ones((2, 3))), mg.Tensor(np.ones(4))
    for left, right in [(a, b), (b, a), (a, np.ones(4)), (np.ones(4), a)]:
        with pytest.raises(ValueError) as info:
            fn(left, right)
        msg = str(info.value)
        assert msg.startswith(f"{op}:")
        assert "(2, 3)" in msg and "(4,)" in msg


def test_reshape_errors() -> None:
    """An impossible shape or two -1s: ValueError naming reshape and both shapes."""
    t = mg.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError) as info:
        t.reshape(4, 2)
    msg = str(info.value)
    assert msg.startswith("reshape:")
    assert "(2, 3)" in msg and "(4, 2)" in msg
    with pytest.raises(ValueError, match="reshape"):
        t.reshape(-1, -1)
    with pytest.raises(ValueError, match="reshape"):
        t.reshape((5,))


def test_join_and_linear_errors_name_the_shapes() -> None:
    """concatenate, stack and linear refuse shapes that do not fit, naming them."""
    a, b = mg.Tensor(np.ones((2, 3))), mg.Tensor(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"^concatenate:.*\(2, 3\).*\(2, 4\)"):
        mg.concatenate([a, b], axis=0)
    with pytest.raises(ValueError, match=r"^stack:.*\(2, 3\).*\(2, 4\)"):
        mg.stack([a, b])
    with pytest.raises(ValueError, match=r"^linear:.*\(2, 3\).*\(4, 2\).*expected input width 4"):
        mg.linear(a, mg.Tensor(np.ones((4, 2))))
    with pytest.raises(ValueError, match=r"^linear: weight must be 2-D .*got shape \(3,\)"):
        mg.linear(a, mg.Tensor(np.ones(3)))


def test_reduction_axis_out_of_range_raises() -> None:
    """sum/mean/max over an axis the tensor lacks: ValueError naming the op."""
    t = mg.Tensor(np.ones((2, 3)))
    for name, reduce in [("sum", t.sum), ("mean", t.mean), ("max", t.max)]:
        with pytest.raises(ValueError, match=f"^{name}:"):
            reduce(axis=2)


def test_reductions_of_a_0d_tensor_take_axis_0_or_minus_1_as_pytorch_does() -> None:
    """A 0-d tensor takes axis 0 or -1 (one axis of length 1): sum/mean/max give the value back with
    gradient 1, softmax gives 1 and log_softmax 0; axis 1 raises, naming the op."""
    for name in ("sum", "mean", "max"):
        for axis in (0, -1, (), None):
            t = mg.Tensor(3.0, requires_grad=True, dtype=np.float64)
            out = getattr(t, name)(axis=axis)
            out.backward()
            assert out.shape == () and out.item() == 3.0 and t.grad == 1.0
        with pytest.raises(ValueError, match=f"^{name}: axis 1 is out of range for a tensor of 0 dimensions"):
            getattr(mg.Tensor(3.0), name)(axis=1)
    t = mg.Tensor(3.0, requires_grad=True, dtype=np.float64)
    assert t.softmax(axis=0).item() == 1.0 and t.log_softmax().item() == 0.0
    t.log_softmax(axis=0).backward()
    assert t.grad == 0.0  # d/da (a - log e^a) = 0
    with pytest.raises(ValueError, match="^softmax: axis 1"):
        t.softmax(axis=1)


# ---------------------------------------------------------------------------
# gradcheck itself
# ---------------------------------------------------------------------------


def bad_square_sum(x: mg.Tensor) -> mg.Tensor:
    """Σ x², with a backward that is deliberately wrong (by +g) at element (1, 2)."""

    class BadSquareSum(mg.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return (a**2).sum()

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            d = 2 * a * g
            d[1, 2] += g
            return d

    return BadSquareSum.apply(x)


def last_number(text: str) -> float:
    """The last number in ``text`` (so both ``1.5`` and ``np.float64(1.5)`` read as 1.5)."""
    return float(re.findall(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?", text)[-1])


def test_gradcheck_names_input_element_and_values_of_a_wrong_op() -> None:
    """A wrong backward raises GradcheckError naming input 1, element (1, 2) and both values."""
    a = mg.Tensor(np.array([0.5, -1.0]), requires_grad=True)  # correct: checked first, passes
    xs = np.arange(1.0, 13.0).reshape(3, 4) / 4
    x = mg.Tensor(xs, requires_grad=True)
    with pytest.raises(mg.GradcheckError) as info:
        mg.gradcheck(lambda a, x: (a * a).sum() + bad_square_sum(x), a, x)
    msg = str(info.value)
    assert "input 1" in msg
    assert "(1, 2)" in msg
    found = re.search(r"backward gives (\S+), central difference gives (\S+) for the gradient \(of the output", msg)
    assert found, msg
    analytic, numeric = last_number(found.group(1)), last_number(found.group(2))
    # The check weights the output by some w: numeric = w·2x, analytic = w·(2x + 1).
    x12 = xs[1, 2]
    assert analytic / numeric == pytest.approx((2 * x12 + 1) / (2 * x12), rel=1e-6)


def test_gradcheck_passes_and_leaves_inputs_alone() -> None:
    """gradcheck returns True on a correct op and does not touch the caller's tensors."""
    data = np.array([[0.3, -0.7], [1.1, 0.2]], dtype=np.float32)
    x = mg.Tensor(data.copy(), requires_grad=True)
    assert mg.gradcheck(lambda t: (t * t).tanh().sum(axis=0), x) is True
    assert x.grad is None
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x.data, data)


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


def test_gradcheck_needs_an_input_that_requires_grad() -> None:
    """With nothing to check, gradcheck refuses rather than passing vacuously."""
    with pytest.raises(ValueError):
        mg.gradcheck(lambda t: t * 2, mg.Tensor([1.0]))


def test_gradcheck_refuses_an_output_cut_from_the_inputs() -> None:
    """An output that does not depend on the inputs is a GradcheckError saying so, not the engine's RuntimeError.

    Guards the ``out.requires_grad`` check.
    """
    with pytest.raises(mg.GradcheckError, match="does not depend on any input that requires grad"):
        mg.gradcheck(lambda t: t.detach() * 2, mg.Tensor([1.0, 2.0], requires_grad=True))
    # gradgradcheck says it the same way (it raised grad's RuntimeError about "output 0").
    with pytest.raises(mg.GradcheckError, match="^gradgradcheck: the output does not depend on any input"):
        mg.gradgradcheck(lambda t: t.detach() * 2, mg.Tensor([1.0, 2.0], requires_grad=True))


# ---------------------------------------------------------------------------
# Numerical stability
# ---------------------------------------------------------------------------

# Logits in the thousands; softmax is shift-invariant, so each row's exact
# values are those of the row minus its maximum, which numpy computes safely.
HUGE_LOGITS = [[1000.0, -1000.0, 0.0], [1000.0, 1001.0, 1002.0], [-3000.0, -3001.0, -2999.5]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_log_softmax_are_stable(dtype: type) -> None:
    """Finite values and gradients, equal to the analytic ones, with no overflow on the way."""
    z = np.array(HUGE_LOGITS)
    shifted = z - z.max(axis=1, keepdims=True)
    s = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    log_s = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    w = np.array([[1.0, 2.0, -1.0], [0.5, -1.0, 3.0], [2.0, 1.0, 1.0]])
    rtol = 1e-5 if dtype == np.float32 else 1e-12

    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        x = mg.Tensor(z.astype(dtype), requires_grad=True)
        out = x.softmax(axis=1)
        out.backward(w)
        np.testing.assert_allclose(out.data, s, rtol=rtol, atol=1e-7)
        # ds/dz with upstream w: s·(w - Σ w·s)
        np.testing.assert_allclose(x.grad, s * (w - (w * s).sum(axis=1, keepdims=True)), rtol=rtol, atol=1e-6)

        x = mg.Tensor(z.astype(dtype), requires_grad=True)
        out = x.log_softmax(axis=1)
        out.backward(w)
        assert np.all(np.isfinite(out.data))
        np.testing.assert_allclose(out.data, log_s, rtol=rtol, atol=1e-6)
        # d(log softmax)/dz with upstream w: w - s·Σ w
        np.testing.assert_allclose(x.grad, w - s * w.sum(axis=1, keepdims=True), rtol=rtol, atol=1e-6)
        assert np.all(np.isfinite(x.grad))


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable(dtype: type) -> None:
    """σ on ±1000 gives 1 and 0, finite gradient σ(1 - σ), and no overflow."""
    z = np.array([1000.0, -1000.0, 0.0, 30.0, -30.0, 2.0])
    s = np_sigmoid(z)
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        x = mg.Tensor(z.astype(dtype), requires_grad=True)
        out = x.sigmoid()
        out.backward(np.ones(6))
    assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(x.grad))
    np.testing.assert_allclose(out.data, s, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(x.grad, s * (1 - s), rtol=1e-5, atol=1e-7)
    assert out.data[2] == 0.5


def test_stable_sigmoid_matches_the_formula_and_never_overflows():
    from minigrad.engine import stable_sigmoid

    x = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(stable_sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-12, atol=1e-15)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # (e^-1000 underflows to 0, as it should)
        np.testing.assert_array_equal(stable_sigmoid(np.array([-1000.0, 1000.0])), [0.0, 1.0])


# ---------------------------------------------------------------------------
# Seeding
# ---------------------------------------------------------------------------


def test_manual_seed_makes_init_and_draws_bit_identical() -> None:
    """The same seed gives bit-identical Linear weights and generator draws; another seed does not."""

    def draw(seed: int) -> tuple[bytes, bytes, bytes]:
        mg.manual_seed(seed)
        layer = mg.nn.Linear(5, 3)
        return layer.W.data.tobytes(), layer.b.data.tobytes(), mg.get_generator().normal(size=8).tobytes()

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


# ---------------------------------------------------------------------------
# Small API
# ---------------------------------------------------------------------------


def test_repr_shows_the_values() -> None:
    """repr names Tensor and shows the numbers."""
    r = repr(mg.Tensor([1.5, -2.25, 3.0]))
    assert r.startswith("Tensor(")
    for number in ("1.5", "-2.25", "3."):
        assert number in r
    assert "2.5" in repr(mg.Tensor([[2.5]], requires_grad=True))


def test_item_numpy_and_attributes() -> None:
    """item() gives a Python float; numpy() the values; shape, ndim and dtype describe .data."""
    assert mg.Tensor(3.5).item() == 3.5
    assert isinstance(mg.Tensor([[2.0]]).item(), float)
    with pytest.raises(ValueError):
        mg.Tensor([1.0, 2.0]).item()
    t = mg.Tensor(np.arange(24.0).reshape(2, 3, 4))
    assert isinstance(t.numpy(), np.ndarray)
    np.testing.assert_array_equal(t.numpy(), np.arange(24.0).reshape(2, 3, 4))
    assert t.shape == (2, 3, 4)
    assert t.ndim == 3
    assert t.dtype == np.float64
    assert isinstance(t.data, np.ndarray)
    s = mg.Tensor(1.0)
    assert s.shape == () and s.ndim == 0 and s.dtype == np.float32


def test_np_array_of_a_tensor_copies():
    t = mg.Tensor(np.zeros(3, dtype=np.float32))
    a = np.array(t)
    a[0] = 99
    assert t.data[0] == 0
    assert np.asarray(t) is t.data
    assert np.asarray(t, dtype=np.float64).dtype == np.float64


def test_float_and_int_of_a_one_element_tensor() -> None:
    """float(t) and int(t) as in numpy and PyTorch: the value, truncated toward zero for int."""
    assert float(mg.Tensor([[2.5]], dtype=np.float64)) == 2.5 and type(float(mg.Tensor(2.5))) is float
    assert int(mg.Tensor(-2.7)) == -2 and int(mg.Tensor(2.7)) == 2 and type(int(mg.Tensor(3.0))) is int
    x = mg.Tensor(np.array(3.0), requires_grad=True)
    assert float(x * 2) == 6.0  # a graph's value, read without the graph
    with pytest.raises(ValueError, match=r"item: only a one-element tensor has an item, got shape \(2,\)"):
        float(mg.Tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="item: only a one-element tensor"):
        int(mg.Tensor([1.0, 2.0]))


def test_detach_shares_data_and_cuts_the_graph() -> None:
    """detach() shares .data, needs no grad, and gradients do not flow through it."""
    xs = np.array([1.0, 2.0, 3.0])
    x = mg.Tensor(xs, requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad
    assert d.grad is None
    assert np.shares_memory(d.data, y.data)
    assert not (d * 3).requires_grad
    (x.detach() * x).sum().backward()  # d/dx (c·x) with c = x held constant
    np.testing.assert_array_equal(x.grad, xs)


def test_iterating_gives_the_rows_and_a_0d_tensor_refuses() -> None:
    """As numpy and PyTorch: rows along the first axis (in the graph); a 0-d tensor is not iterable."""
    x = mg.Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    rows = list(x)
    assert [r.data.tolist() for r in rows] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    sum(r.sum() * k for k, r in enumerate(rows)).backward()
    np.testing.assert_array_equal(x.grad, [[0, 0], [1, 1], [2, 2]])
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(mg.Tensor(3.0))  # it gave [], so sum(loss) was 0
    with pytest.raises(TypeError, match=r"len\(\) of a 0-d tensor"):
        len(mg.Tensor(3.0))


def test_a_backward_returning_a_list_is_told_to_return_a_tuple() -> None:
    class Pair(mg.Function):
        @staticmethod
        def forward(ctx, a, b):  # type: ignore[no-untyped-def]
            return a * b

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            return [g, g]

    class One(Pair):
        @staticmethod
        def forward(ctx, a):  # type: ignore[no-untyped-def]
            return a * 2

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            return [g * 2]

    a, b = mg.Tensor([1.0], requires_grad=True), mg.Tensor([2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"returned 1 gradients \(a list: return a tuple\) for 2 inputs"):
        Pair.apply(a, b).sum().backward()
    with pytest.raises(RuntimeError, match="the gradient for input 0 is a list.*as a tuple"):
        One.apply(a).sum().backward()


def test_std_of_a_constant_slice_has_a_zero_gradient_as_in_pytorch() -> None:
    x = mg.Tensor(np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]]), requires_grad=True)
    x.std(axis=1).sum().backward()
    assert x.grad[0].tolist() == [0.0, 0.0, 0.0]  # it was NaN: ∞·0 through the square root
    row = np.array([1.0, 2.0, 4.0])
    np.testing.assert_allclose(x.grad[1], (row - row.mean()) / (2 * row.std(ddof=1)), rtol=1e-12)
    (g,) = mg.autograd.grad(x.std(axis=1).sum(), x, create_graph=True)
    (h,) = mg.autograd.grad(g[1, 0], x)
    assert np.all(np.isfinite(h.data)) and h.data[0].tolist() == [0.0, 0.0, 0.0]


def test_integer_data_that_float32_would_round_is_refused() -> None:
    """Tensor(int array) is float32 by default: 2**24 + 1 would become 2**24 (an index Tensor picked another row)."""
    with pytest.raises(ValueError, match=r"integer data such as 16777217 cannot be held exactly in float32.*float64"):
        mg.Tensor(np.array([1, 16777217]))
    assert mg.Tensor(2**30).data == 2.0**30  # large, but exact in float32: fine
    assert mg.Tensor(np.array([-16777216])).data.tolist() == [-16777216.0]
    assert mg.Tensor(np.array([16777217]), dtype=np.float64).data.tolist() == [16777217.0]


def test_a_chain_of_detached_tensors_keeps_no_graph_alive() -> None:
    """h = f(h).detach() for many steps: each view keeps only a leaf, never the graph behind it (it leaked)."""
    import gc
    import weakref

    W = mg.Tensor(np.full((4, 4), 0.1), requires_grad=True)
    h = mg.Tensor(np.ones((1, 4)))
    first = None
    for step in range(50):
        out = (h @ W).tanh()
        if step == 0:
            first = weakref.ref(out)
        h = out.detach()
    del out
    gc.collect()
    assert first() is None  # the first step's output and its graph are gone
    assert type(h._base).__name__ == "_Memory"  # a view of an op's output shares a token of its memory, no graph
    assert W.detach()._base is W


def test_a_broadcast_error_says_how_shapes_line_up_and_what_to_do() -> None:
    """add of (2, 3) and (4,) named the shapes but not the rule, nor a fix."""
    a = mg.Tensor(np.ones((2, 3)))
    for make in (lambda: a + mg.Tensor(np.ones(4)), lambda: a * np.ones(4), lambda: mg.ops.where(a > 0, a, np.ones(4))):
        with pytest.raises(ValueError, match=r"cannot be broadcast together \(dimensions are matched from the last "
                                             r"one, and each pair must be equal or contain a 1; reshape an operand, "
                                             r"e.g. b.reshape\(-1, 1\), to line them up\)$"):
            make()


@pytest.mark.parametrize("op", ["exp", "expm1", "log", "log1p", "sqrt", "sin", "cos", "tanh", "sigmoid", "mean",
                                "std", "var", "softmax", "log_softmax", "logsumexp"])
def test_a_mask_into_a_real_valued_op_gives_float32(op: str) -> None:
    """A bool tensor into exp gave float16 (numpy's rule for bool), and into sigmoid numpy's TypeError.

    PyTorch gives its default dtype; minigrad's is float32. The values are those of the mask as 0.0 and 1.0.
    """
    mask = mg.Tensor(np.array([[True, False, True], [False, False, True]]))
    with np.errstate(divide="ignore"):
        got = getattr(mask, op)()
        want = getattr(mg.Tensor(mask.data.astype(np.float32)), op)()
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.data, want.data)


def test_the_gradient_of_a_nan_max_goes_to_its_nan_elements() -> None:
    """max of [nan, 1] had the gradient [nan, nan], with a divide warning; now the NaN elements share it.

    As torch.max() over all elements does, and as ties share it here (torch.amax along an axis gives NaN).
    """
    x = mg.Tensor(np.array([[np.nan, 1.0], [2.0, 3.0]]), requires_grad=True, dtype=np.float64)
    with np.errstate(all="raise"):
        x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[1.0, 0.0], [0.0, 1.0]])
    y = mg.Tensor(np.array([np.nan, 5.0, np.nan]), requires_grad=True, dtype=np.float64)
    y.min().backward()
    np.testing.assert_array_equal(y.grad, [0.5, 0.0, 0.5])


def test_the_negative_of_a_mask_says_what_to_use() -> None:
    """-mask raised numpy's own TypeError, which names no minigrad op."""
    mask = mg.Tensor(np.array([1.0, -1.0])) > 0
    with pytest.raises(TypeError, match=r"^neg: a mask \(bool tensor\) has no negative; its complement is ~mask"):
        _ = -mask
    np.testing.assert_array_equal((~mask).data, [False, True])


def test_the_difference_of_two_masks_says_what_to_use() -> None:
    """mask - mask raised numpy's own TypeError, which names no minigrad op."""
    mask = mg.Tensor(np.array([1.0, -1.0])) > 0
    other = mg.Tensor(np.array([1.0, 1.0])) > 0
    with pytest.raises(TypeError, match=r"^sub: two masks \(bool tensors\) have no difference; mask \^ other"):
        _ = mask - other
    np.testing.assert_array_equal((mask ^ other).data, [False, True])
    np.testing.assert_array_equal((1.0 * mask - other).data, [0.0, -1.0])



def test_a_gradient_no_one_else_holds_still_becomes_grad_without_a_copy() -> None:
    """The guard of the one above must not cost the no-copy path: a linear's fresh dW is kept as it is."""
    seen = []

    class Keep(mg.Function):
        @staticmethod
        def forward(ctx, w):
            return w * 2

        @staticmethod
        def backward(ctx, g):
            out = g * 2
            seen.append(id(out))
            return out

    w = mg.Tensor(np.ones(3), requires_grad=True)
    Keep.apply(w).sum().backward()
    assert id(w.grad) == seen[0]


@pytest.mark.parametrize("in_a_tuple", [False, True])
def test_an_array_a_users_backward_returns_that_something_else_holds_is_copied_into_grad(in_a_tuple: bool) -> None:
    """return None, ONES (a module constant), or return CONST (a module's tuple holding it): it became b.grad,
    and the next backward's += wrote into the constant (helpers 49, 50)."""
    ones = np.ones(4, np.float32)
    const = (None, ones)

    class Bias(mg.Function):
        @staticmethod
        def forward(ctx, x, b):
            return x.sum(axis=0) + b

        @staticmethod
        def backward(ctx, g):
            return const if in_a_tuple else (None, ones)

    b = mg.Tensor(np.zeros(4, np.float32), requires_grad=True)
    for _ in range(3):
        Bias.apply(mg.Tensor(np.ones((2, 4), np.float32)), b).sum().backward()
    np.testing.assert_array_equal(b.grad, 3.0)
    np.testing.assert_array_equal(ones, 1.0)
    assert b.grad is not ones


def test_no_leaf_gradient_shares_memory_with_another_array():
    """backward keeps an op's new array as a leaf's .grad without a copy; nothing may alias it."""
    rng = np.random.default_rng(0)
    a, b, c = (mg.Tensor(rng.standard_normal((3, 4)), requires_grad=True) for _ in range(3))
    W = mg.Tensor(rng.standard_normal((4, 2)), requires_grad=True)
    bias = mg.Tensor(rng.standard_normal(2), requires_grad=True)
    logits = mg.Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    seed = np.ones(3)
    out = (
        mg.linear(a + b, W, bias)                        # add hands one gradient to two leaves
        + (c.reshape(4, 3).T * 2)[:, :2]                 # views on the way back
        + mg.stack([logits, logits]).sum(axis=0)         # one leaf used twice
    ).sum(axis=1) + mg.nn.cross_entropy(logits, [0, 1, 1])
    out.backward(seed)
    leaves = [a, b, c, W, bias, logits]
    arrays = [t.grad for t in leaves] + [t.data for t in leaves] + [seed]
    for i, x in enumerate(arrays):
        for y in arrays[i + 1:]:
            assert not np.shares_memory(x, y)
    np.testing.assert_array_equal(a.grad, b.grad)


# An array held by this module's globals alone (one reference more than a fresh gradient has), and a tuple
# held likewise whose array nothing but the tuple holds.
_HELD_ONCE = np.ones(4)
_HELD_TUPLE = (np.ones(4),)


class _SumReturningAConstant(mg.Function):
    """sum(x), whose backward returns the module's constant ones (the gradient for a seed of 1).

    ``returned`` names which: the array or the tuple (not the object itself, which would hold it once more).
    """

    returned = "array"

    @staticmethod
    def forward(ctx, x):
        return x.sum()

    @staticmethod
    def backward(ctx, g):
        return _HELD_ONCE if _SumReturningAConstant.returned == "array" else _HELD_TUPLE


@pytest.mark.parametrize("returned", ["array", "tuple"])
def test_a_gradient_array_held_once_elsewhere_is_copied_into_grad(returned, monkeypatch):
    """Guards `refcount(pg) <= alone + 1` (an array a module holds once became .grad) and the dropped
    `refcount(pgs) <= alone_tuple` (the array of a tuple a module holds became .grad): the next backward's
    += then wrote into the module's constant, and three backwards gave 4 instead of 3."""
    monkeypatch.setattr(_SumReturningAConstant, "returned", returned)
    x = mg.Tensor(np.zeros(4), requires_grad=True)
    for _ in range(3):
        _SumReturningAConstant.apply(x).backward()
    np.testing.assert_array_equal(x.grad, [3.0] * 4)
    np.testing.assert_array_equal(_HELD_ONCE, 1.0)
    np.testing.assert_array_equal(_HELD_TUPLE[0], 1.0)
