"""Tests of every op of the engine, to second order (issues 12 and 15).

Three parts.

1. The catalog: one line per op, reached through the public API. Hypothesis
   draws the shapes (broadcasting ones for the binary ops), the axes and the
   other arguments; the values come from a domain where the op is smooth
   (positive for log, sqrt and divisors, away from the kinks of abs, relu and
   clip and from ties of max, min, maximum and minimum). Each draw is checked
   three ways in float64: the forward value against numpy, ``mg.gradcheck``
   (backward against central differences) and ``mg.gradgradcheck`` (the
   gradient's own gradient against central differences of the gradient), the
   latter also on the op's square, so that the gradient flowing into the op's
   backward depends on the inputs and the backward's own graph is exercised;
   float32 inputs must keep float32 through both orders. A test checks that
   every Function of the engine is made by some entry. Where PyTorch's
   conventions differ from numpy's or are a choice (ties, the clip gradient
   at the bounds, var's correction, squeeze, flatten), a test says which one
   holds, with values worked out by hand.
2. The engine's silent wrong answers listed in issue 12, one test each. Each
   failed on the engine before the rewrite (commit 50df5f3), apart from the
   parameters that were right already and stay as controls (a 1-D bias, the
   truth of a one-element tensor).
3. Higher derivatives in closed form: Hessians of a quadratic form, of
   (x·y)², of softmax cross-entropy; the third derivative of tanh; gradients
   made without ``create_graph`` are constants; and the first-order path gives
   every op's gradient, and trains a small MLP, bit for bit as the engine
   before the rewrite did.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, basic_indices, mutually_broadcastable_shapes

import minigrad as mg

Shape = tuple[int, ...]
Params = dict[str, Any]

# ---------------------------------------------------------------------------
# Values: domains where each op is smooth
# ---------------------------------------------------------------------------


def values(shape: Shape, domain: str, rng: np.random.Generator) -> np.ndarray:
    """Random float64 values of ``shape`` from a domain where the op is smooth.

    "any": [-2, 2]; "pos": [0.5, 2] (log, sqrt, fractional powers, divisors);
    "nonzero": ±[0.5, 2] (abs, relu and comparisons at 0); "above-1": [-0.5, 2]
    (log1p); "prob": [0.1, 0.9] (soft targets); "clip": away from the bounds
    -0.5 and 1 that the clip entries use. (Ties are the domain "distinct", see fill.)
    """
    if domain == "any":
        out = rng.uniform(-2.0, 2.0, shape)
    elif domain == "pos":
        out = rng.uniform(0.5, 2.0, shape)
    elif domain == "nonzero":
        out = rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 2.0, shape)
    elif domain == "above-1":
        out = rng.uniform(-0.5, 2.0, shape)
    elif domain == "prob":
        out = rng.uniform(0.1, 0.9, shape)
    elif domain == "clip":
        bands = np.array([[-2.0, -0.7], [-0.3, 0.8], [1.2, 2.0]])
        band = bands[rng.integers(0, 3, shape)]
        out = rng.uniform(band[..., 0], band[..., 1])
    else:
        raise ValueError(f"unknown domain {domain!r}")
    return np.asarray(out, dtype=np.float64)


def distinct(shapes: tuple[Shape, ...], rng: np.random.Generator) -> list[np.ndarray]:
    """Arrays whose elements, all of them together, are at least 0.25 apart: no two can tie."""
    sizes = [math.prod(s) for s in shapes]
    grid = rng.permutation(sum(sizes)) * 0.25 - 0.125 * sum(sizes)
    ends = np.cumsum(sizes)
    return [grid[e - n : e].reshape(s) for s, n, e in zip(shapes, sizes, ends)]


@dataclass(frozen=True)
class Inputs:
    """One draw for an op: the input arrays (they become Tensors) and the other arguments."""

    arrays: tuple[np.ndarray, ...]
    params: Params = field(default_factory=dict)


def fill(draw: st.DrawFn, shapes: tuple[Shape, ...], domains: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """Values for ``shapes``: the domain "distinct" is drawn jointly over every input that has it."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    out = [values(s, d, rng) if d != "distinct" else None for s, d in zip(shapes, domains)]
    tied = [i for i, d in enumerate(domains) if d == "distinct"]
    for i, a in zip(tied, distinct(tuple(shapes[i] for i in tied), rng)):
        out[i] = a
    return tuple(a for a in out if a is not None)


# ---------------------------------------------------------------------------
# Strategies: what each kind of op takes
# ---------------------------------------------------------------------------

SIDE = 3  # sides of at most 3 and at most 3 axes: up to 27 elements, so the checks stay fast


def shapes_of(ndim: tuple[int, int] = (0, 3), min_side: int = 1) -> st.SearchStrategy[Shape]:
    """Shapes with ndim in the closed range, sides in [min_side, SIDE]."""
    return array_shapes(min_dims=ndim[0], max_dims=ndim[1], min_side=min_side, max_side=SIDE)


@st.composite
def elementwise(draw: st.DrawFn, *domains: str) -> Inputs:
    """Inputs that broadcast together (0-d included), one per domain."""
    shapes = draw(mutually_broadcastable_shapes(num_shapes=len(domains), min_dims=0, max_dims=3, max_side=SIDE))
    return Inputs(fill(draw, shapes.input_shapes, domains))


@st.composite
def same_shape(draw: st.DrawFn, *domains: str) -> Inputs:
    """Inputs of one shape (for the losses, which do not broadcast), one per domain."""
    shape = draw(shapes_of())
    return Inputs(fill(draw, (shape,) * len(domains), domains))


@st.composite
def axis_of(draw: st.DrawFn, ndim: int) -> Any:
    """None, an int (negative too) or a tuple of distinct ints, valid for ``ndim`` axes."""
    if ndim == 0:
        return None
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


@st.composite
def reduction(draw: st.DrawFn, domain: str, shapes: st.SearchStrategy[Shape] | None = None) -> Inputs:
    """One input (of ``shapes``, any by default), an axis and keepdims."""
    shape = draw(shapes if shapes is not None else shapes_of())
    axis = draw(axis_of(len(shape)))
    return Inputs(fill(draw, (shape,), (domain,)), {"axis": axis, "keepdims": draw(st.booleans())})


@st.composite
def variance(draw: st.DrawFn, min_side: int = 1) -> Inputs:
    """var/std: a reduction with a correction that leaves degrees of freedom (n - correction > 0).

    std needs ``min_side=2``: over one element the variance is 0, where √ has no derivative.
    """
    inputs = draw(reduction("any", shapes_of((min_side - 1, 3), min_side)))
    (a,) = inputs.arrays
    axis = inputs.params["axis"]
    axes = range(a.ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
    n = math.prod(a.shape[i] for i in axes)
    correction = draw(st.integers(0, 1)) if n > 1 else 0
    return Inputs(inputs.arrays, {**inputs.params, "correction": correction})


@st.composite
def along_axis(draw: st.DrawFn, domain: str) -> Inputs:
    """softmax/log_softmax: one input of at least one axis, and an axis."""
    shape = draw(shapes_of((1, 3)))
    return Inputs(fill(draw, (shape,), (domain,)), {"axis": draw(st.integers(-len(shape), len(shape) - 1))})


@st.composite
def matmul(draw: st.DrawFn, ranks: tuple[tuple[int, int], ...]) -> Inputs:
    """a @ b for the rank pairs given (1 = vector, 2 = matrix, 3+ = batched, batch dims broadcasting)."""
    ra, rb = draw(st.sampled_from(ranks))
    n, k, m = (draw(st.integers(1, SIDE)) for _ in range(3))
    batch = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=2, max_side=SIDE))
    ba, bb = batch.input_shapes
    sa = (k,) if ra == 1 else (n, k) if ra == 2 else ba + (n, k)
    sb = (k,) if rb == 1 else (k, m) if rb == 2 else bb + (k, m)
    return Inputs(fill(draw, (sa, sb), ("any", "any")))


@st.composite
def reshaped(draw: st.DrawFn) -> Inputs:
    """One input and a shape of the same size (with -1, reversed, with ones, flat)."""
    shape = draw(shapes_of())
    size = math.prod(shape)
    target = draw(st.sampled_from([(-1,), shape[::-1], (1, *shape, 1), (size,), (size, 1), (1, -1)]))
    return Inputs(fill(draw, (shape,), ("any",)), {"shape": target})


@st.composite
def permuted(draw: st.DrawFn) -> Inputs:
    """One input of at least one axis and a permutation of its axes."""
    shape = draw(shapes_of((1, 3)))
    return Inputs(fill(draw, (shape,), ("any",)), {"axes": tuple(draw(st.permutations(range(len(shape)))))})


@st.composite
def cycled(draw: st.DrawFn) -> Inputs:
    """A 3-axis input and a 3-cycle of its axes: the permutations whose inverse is another (a backward that used
    the permutation itself where its inverse belongs passed whenever the draw gave a self-inverse one)."""
    shape = draw(shapes_of((3, 3)))
    return Inputs(fill(draw, (shape,), ("any",)), {"axes": draw(st.sampled_from([(1, 2, 0), (2, 0, 1)]))})


@st.composite
def two_axes(draw: st.DrawFn) -> Inputs:
    """One input of at least one axis and two of its axes (negative ones too)."""
    shape = draw(shapes_of((1, 3)))
    ndim = len(shape)
    a1, a2 = draw(st.integers(-ndim, ndim - 1)), draw(st.integers(-ndim, ndim - 1))
    return Inputs(fill(draw, (shape,), ("any",)), {"axis1": a1, "axis2": a2})


@st.composite
def squeezable(draw: st.DrawFn) -> Inputs:
    """An input with some axes of length 1 and either None or some of those axes."""
    shape = draw(array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=2))
    ones = [i for i, n in enumerate(shape) if n == 1]
    axis = None
    if ones and draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(ones), min_size=1, unique=True))
        axis = chosen[0] if len(chosen) == 1 else tuple(chosen)
    return Inputs(fill(draw, (shape,), ("any",)), {"axis": axis})


@st.composite
def unsqueezable(draw: st.DrawFn) -> Inputs:
    """An input and a dim in [-ndim - 1, ndim]."""
    shape = draw(shapes_of())
    return Inputs(fill(draw, (shape,), ("any",)), {"dim": draw(st.integers(-len(shape) - 1, len(shape)))})


@st.composite
def flattenable(draw: st.DrawFn) -> Inputs:
    """An input of at least one axis and start_dim <= end_dim (given negative or not)."""
    shape = draw(shapes_of((1, 4), min_side=1).filter(lambda s: math.prod(s) <= 27))
    ndim = len(shape)
    start = draw(st.integers(0, ndim - 1))
    end = draw(st.integers(start, ndim - 1))
    start -= ndim * draw(st.booleans())
    end -= ndim * draw(st.booleans())
    return Inputs(fill(draw, (shape,), ("any",)), {"start_dim": start, "end_dim": end})


@st.composite
def broadcastable(draw: st.DrawFn) -> Inputs:
    """An input and a shape it broadcasts to."""
    shapes = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=SIDE))
    return Inputs(fill(draw, shapes.input_shapes[:1], ("any",)), {"shape": shapes.result_shape})


@st.composite
def basic_index(draw: st.DrawFn) -> Inputs:
    """An input and an index of ints, slices (steps and negative steps too) and Ellipsis."""
    shape = draw(shapes_of((1, 3), min_side=2))
    index = draw(basic_indices(shape, min_dims=0, allow_ellipsis=True))
    return Inputs(fill(draw, (shape,), ("any",)), {"index": index})


@st.composite
def integer_array_index(draw: st.DrawFn) -> Inputs:
    """An input and integer arrays that repeat entries, along the first axis or the first two."""
    shape = draw(shapes_of((2, 3), min_side=2))
    n = draw(st.integers(1, 4))
    rows = draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=n, max_size=n))
    rows = np.array(rows + rows[:1])  # the first index at least twice: its gradients must add up
    if draw(st.booleans()):
        index: Any = rows
    else:
        cols = draw(st.lists(st.integers(0, shape[1] - 1), min_size=n + 1, max_size=n + 1))
        index = (rows, np.array(cols))
    return Inputs(fill(draw, (shape,), ("any",)), {"index": index})


@st.composite
def masked(draw: st.DrawFn, domain: str = "any") -> Inputs:
    """An input and a boolean mask of its full shape or of its leading axes."""
    shape = draw(shapes_of((1, 3)))
    lead = draw(st.integers(1, len(shape)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mask = rng.random(shape[:lead]) < 0.5
    return Inputs(fill(draw, (shape,), (domain,)), {"mask": mask})


@st.composite
def joinable(draw: st.DrawFn, new_axis: bool) -> Inputs:
    """1 to 3 inputs to concatenate (lengths differing along the axis) or to stack (one shape)."""
    shape = draw(shapes_of((1, 3)))
    ndim = len(shape)
    count = draw(st.integers(1, 3))
    if new_axis:
        axis = draw(st.integers(-ndim - 1, ndim))
        shapes = (shape,) * count
    else:
        axis = draw(st.integers(-ndim, ndim - 1))
        lengths = [draw(st.integers(1, SIDE)) for _ in range(count)]
        shapes = tuple(shape[: axis % ndim] + (n,) + shape[axis % ndim + 1 :] for n in lengths)
    return Inputs(fill(draw, shapes, ("any",) * count), {"axis": axis})


@st.composite
def linear_inputs(draw: st.DrawFn, x_ndim: tuple[int, ...], bias: str) -> Inputs:
    """x (of x_ndim axes, the last in_features), W (in, out) and a bias: "1d", "broadcast" or "none"."""
    ndim = draw(st.sampled_from(x_ndim))
    fan_in, fan_out = draw(st.integers(1, SIDE)), draw(st.integers(1, SIDE))
    lead = draw(array_shapes(min_dims=ndim - 1, max_dims=ndim - 1, min_side=1, max_side=SIDE)) if ndim > 1 else ()
    shapes: tuple[Shape, ...] = ((*lead, fan_in), (fan_in, fan_out))
    if bias == "1d":
        shapes += ((fan_out,),)
    elif bias == "broadcast":  # a shape that broadcasts to the output's, lead + (fan_out,)
        out_shape = (*lead, fan_out)
        cut = draw(st.integers(0, len(out_shape)))
        kept = out_shape[cut:]
        shapes += (tuple(1 if draw(st.booleans()) else n for n in kept),)
    return Inputs(fill(draw, shapes, ("any",) * len(shapes)))


@st.composite
def classification(draw: st.DrawFn) -> Inputs:
    """cross_entropy: logits (N, C) and N class indices."""
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    targets = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    return Inputs(fill(draw, ((n, c),), ("any",)), {"targets": targets})


@st.composite
def with_targets(draw: st.DrawFn, low: float, high: float) -> Inputs:
    """A loss's prediction (any shape) and a target of its shape with values in [low, high]."""
    shape = draw(shapes_of())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    targets = rng.uniform(low, high, shape)
    if draw(st.booleans()):
        targets = np.round(targets)  # 0/1 labels as well as probabilities
    return Inputs(fill(draw, (shape,), ("any",)), {"targets": targets})


# ---------------------------------------------------------------------------
# numpy's versions of the ops
# ---------------------------------------------------------------------------


def np_sigmoid(a: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-a)."""
    return 1 / (1 + np.exp(-a))


def np_softmax(a: np.ndarray, axis: int) -> np.ndarray:
    """exp(a) / Σ exp(a) along ``axis`` (the values here are small: no shift needed)."""
    e = np.exp(a)
    return e / e.sum(axis=axis, keepdims=True)


def np_cross_entropy(z: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Mean over rows of -log softmax(z)[target]."""
    log_p = np.log(np_softmax(z, axis=1))
    return -log_p[np.arange(len(targets)), targets].mean()


def np_bce(z: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Mean of -[y log σ(z) + (1 - y) log(1 - σ(z))], from the definition."""
    p = np_sigmoid(z)
    return -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean()


def np_flatten(a: np.ndarray, start_dim: int, end_dim: int) -> np.ndarray:
    """PyTorch's flatten: the axes start_dim..end_dim (inclusive) become one."""
    s, e = start_dim % a.ndim, end_dim % a.ndim
    return a.reshape(a.shape[:s] + (-1,) + a.shape[e + 1 :])


# ---------------------------------------------------------------------------
# The catalog: one line per op
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """A catalog entry: minigrad's op on Tensors, numpy's on arrays, and what to draw for them."""

    name: str
    fn: Callable[..., mg.Tensor]
    ref: Callable[..., Any]
    inputs: st.SearchStrategy[Inputs]


A, P, N, D = "any", "pos", "nonzero", "distinct"
BATCHED = ((3, 2), (2, 3), (3, 3), (3, 1), (1, 3))
M = mg.Tensor  # shorter lines below

CATALOG = [
    # Arithmetic, on inputs that broadcast together.
    Op("add", lambda a, b: a + b, np.add, elementwise(A, A)),
    Op("sub", lambda a, b: a - b, np.subtract, elementwise(A, A)),
    Op("mul", lambda a, b: a * b, np.multiply, elementwise(A, A)),
    Op("div", lambda a, b: a / b, np.divide, elementwise(A, N)),
    Op("pow_scalar", lambda a: a**2.5, lambda a: a**2.5, elementwise(P)),
    Op("pow_integer_negative_base", lambda a: a**3, lambda a: a**3, elementwise(A)),
    Op("pow_tensor", lambda a, b: a**b, np.power, elementwise(P, A)),
    Op("rpow", lambda a: 2.0**a, lambda a: 2.0**a, elementwise(A)),
    Op("neg", lambda a: -a, np.negative, elementwise(A)),
    # matmul: vectors, matrices, batches whose batch dims broadcast.
    Op("matmul_1d", lambda a, b: a @ b, np.matmul, matmul(((1, 1), (1, 2), (2, 1)))),
    Op("matmul_2d", lambda a, b: a @ b, np.matmul, matmul(((2, 2),))),
    Op("matmul_batched", lambda a, b: a @ b, np.matmul, matmul(BATCHED)),
    # Reductions over axes (None, an int, a tuple), with keepdims.
    Op("sum", lambda a, **k: a.sum(**k), lambda a, **k: np.sum(a, **k), reduction(A)),
    Op("mean", lambda a, **k: a.mean(**k), lambda a, **k: np.mean(a, **k), reduction(A)),
    Op("max", lambda a, **k: a.max(**k), lambda a, **k: np.max(a, **k), reduction(D)),
    Op("min", lambda a, **k: a.min(**k), lambda a, **k: np.min(a, **k), reduction(D)),
    Op("logsumexp", lambda a, **k: a.logsumexp(**k), lambda a, **k: np.log(np.sum(np.exp(a), **k)), reduction(A)),
    Op("var", lambda a, correction, **k: a.var(correction=correction, **k),
       lambda a, correction, **k: np.var(a, ddof=correction, **k), variance()),
    Op("std", lambda a, correction, **k: a.std(correction=correction, **k),
       lambda a, correction, **k: np.std(a, ddof=correction, **k), variance(min_side=2)),
    # Elementwise functions.
    Op("exp", lambda a: a.exp(), np.exp, elementwise(A)),
    Op("log", lambda a: a.log(), np.log, elementwise(P)),
    Op("log1p", lambda a: a.log1p(), np.log1p, elementwise("above-1")),
    Op("expm1", lambda a: a.expm1(), np.expm1, elementwise(A)),
    Op("sqrt", lambda a: a.sqrt(), np.sqrt, elementwise(P)),
    Op("abs", lambda a: a.abs(), np.abs, elementwise(N)),
    Op("abs_builtin", lambda a: abs(a), np.abs, elementwise(N)),
    Op("sin", lambda a: a.sin(), np.sin, elementwise(A)),
    Op("cos", lambda a: a.cos(), np.cos, elementwise(A)),
    Op("tanh", lambda a: a.tanh(), np.tanh, elementwise(A)),
    Op("sigmoid", lambda a: a.sigmoid(), np_sigmoid, elementwise(A)),
    Op("relu", lambda a: a.relu(), lambda a: np.maximum(a, 0), elementwise(N)),
    Op("clip", lambda a: a.clip(-0.5, 1.0), lambda a: np.clip(a, -0.5, 1.0), elementwise("clip")),
    Op("clip_min_only", lambda a: a.clip(min=-0.5), lambda a: np.maximum(a, -0.5), elementwise("clip")),
    Op("clip_max_only", lambda a: a.clip(max=1.0), lambda a: np.minimum(a, 1.0), elementwise("clip")),
    Op("maximum", lambda a, b: mg.maximum(a, b), np.maximum, elementwise(D, D)),
    Op("minimum", lambda a, b: mg.minimum(a, b), np.minimum, elementwise(D, D)),
    Op("maximum_number", lambda a: mg.maximum(a, 0.25), lambda a: np.maximum(a, 0.25), elementwise(N)),
    Op("where", lambda c, a, b: mg.where(c > 0, a, b), lambda c, a, b: np.where(c > 0, a, b), elementwise(N, A, A)),
    Op("where_number", lambda c, a: mg.where(c < 0, a, 2.0), lambda c, a: np.where(c < 0, a, 2.0), elementwise(N, A)),
    Op("softmax", lambda a, axis: a.softmax(axis), np_softmax, along_axis(A)),
    Op("log_softmax", lambda a, axis: a.log_softmax(axis), lambda a, axis: np.log(np_softmax(a, axis)), along_axis(A)),
    # Shape.
    Op("reshape", lambda a, shape: a.reshape(shape), np.reshape, reshaped()),
    Op("transpose", lambda a, axes: a.transpose(axes), np.transpose, permuted()),
    Op("transpose_cycle", lambda a, axes: a.transpose(axes), np.transpose, cycled()),
    Op("transpose_reversed", lambda a: a.transpose(), np.transpose, elementwise(A)),
    Op("T", lambda a: a.T, np.transpose, elementwise(A)),
    Op("swapaxes", lambda a, **k: a.swapaxes(**k), lambda a, **k: np.swapaxes(a, **k), two_axes()),
    Op("squeeze", lambda a, axis: a.squeeze(axis), lambda a, axis: np.squeeze(a, axis), squeezable()),
    Op("unsqueeze", lambda a, dim: a.unsqueeze(dim), lambda a, dim: np.expand_dims(a, dim), unsqueezable()),
    Op("flatten", lambda a, **k: a.flatten(**k), np_flatten, flattenable()),
    Op("broadcast_to", lambda a, shape: a.broadcast_to(shape), np.broadcast_to, broadcastable()),
    # Indexing: basic, integer arrays with repeats, boolean masks (numpy, Tensor, comparison).
    Op("getitem_basic", lambda a, index: a[index], lambda a, index: a[index], basic_index()),
    Op("getitem_int_arrays", lambda a, index: a[index], lambda a, index: a[index], integer_array_index()),
    Op("getitem_mask_numpy", lambda a, mask: a[mask], lambda a, mask: a[mask], masked()),
    Op("getitem_mask_tensor", lambda a, mask: a[M(mask)], lambda a, mask: a[mask], masked()),
    Op("getitem_comparison", lambda a: a[a > 0], lambda a: a[a > 0], elementwise(N)),
    # Several tensors.
    Op("concatenate", lambda *ts, axis: mg.concatenate(ts, axis), lambda *a, axis: np.concatenate(a, axis),
       joinable(new_axis=False)),
    Op("stack", lambda *ts, axis: mg.stack(ts, axis), lambda *a, axis: np.stack(a, axis), joinable(new_axis=True)),
    Op("linear", mg.linear, lambda x, W, b: x @ W + b, linear_inputs((2,), "1d")),
    Op("linear_1d_input", mg.linear, lambda x, W, b: x @ W + b, linear_inputs((1,), "1d")),
    Op("linear_3d_input", mg.linear, lambda x, W, b: x @ W + b, linear_inputs((3,), "1d")),
    Op("linear_broadcast_bias", mg.linear, lambda x, W, b: x @ W + b, linear_inputs((1, 2, 3), "broadcast")),
    Op("linear_no_bias", mg.linear, np.matmul, linear_inputs((1, 2, 3), "none")),
    # Losses.
    Op("cross_entropy", lambda z, targets: mg.nn.cross_entropy(z, targets), np_cross_entropy, classification()),
    Op("bce_with_logits", lambda z, targets: mg.nn.binary_cross_entropy_with_logits(z, targets), np_bce,
       with_targets(0.0, 1.0)),
    Op("bce_tensor_targets", mg.nn.binary_cross_entropy_with_logits, np_bce, same_shape(A, "prob")),
    Op("mse_loss", lambda p, targets: mg.nn.mse_loss(p, targets), lambda p, targets: np.mean((p - targets) ** 2),
       with_targets(-2.0, 2.0)),
    Op("mse_tensor_targets", mg.nn.mse_loss, lambda p, t: np.mean((p - t) ** 2), same_shape(A, A)),
]


@pytest.mark.parametrize("op", CATALOG, ids=[op.name for op in CATALOG])
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_catalog(op: Op, data: st.DataObject) -> None:
    """numpy's forward value; gradcheck and gradgradcheck (of the op and of its square) in float64; float32 flows."""
    drawn = data.draw(op.inputs, label="inputs")
    arrays, params = drawn.arrays, drawn.params
    if data.draw(st.booleans(), label="column-major"):  # as a transposed array is: no op may assume row-major
        arrays = [np.array(a, order="F") if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in arrays]
    expected = np.asarray(op.ref(*arrays, **params))
    out = op.fn(*(mg.Tensor(a) for a in arrays), **params)
    assert isinstance(out, mg.Tensor)
    assert out.dtype == np.float64
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)

    def f(*ts: mg.Tensor) -> mg.Tensor:
        return op.fn(*ts, **params)

    def squared(*ts: mg.Tensor) -> mg.Tensor:
        y = op.fn(*ts, **params)
        return y * y

    assert mg.gradcheck(f, *(mg.Tensor(a, requires_grad=True) for a in arrays))
    assert mg.gradgradcheck(f, *(mg.Tensor(a, requires_grad=True) for a in arrays))
    assert mg.gradgradcheck(squared, *(mg.Tensor(a, requires_grad=True) for a in arrays))

    # float32 stays float32, in the value and in gradients of both orders.
    ts = [mg.Tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    assert f(*ts).dtype == np.float32
    firsts = mg.autograd.grad(squared(*ts).sum(), ts, create_graph=True, allow_unused=True)
    assert all(g is None or (g.dtype == np.float32 and g.shape == t.shape) for g, t in zip(firsts, ts))
    used = [(g, t) for g, t in zip(firsts, ts) if g is not None and g.requires_grad]
    if used:
        total = sum((g.sum() for g, _ in used), mg.Tensor(np.float32(0)))
        seconds = mg.autograd.grad(total, ts, allow_unused=True)
        assert all(h is None or (h.dtype == np.float32 and h.shape == t.shape) for h, t in zip(seconds, ts))


@settings(max_examples=1, deadline=None)
@given(data=st.data())
def test_every_function_of_the_engine_is_in_the_catalog(data: st.DataObject) -> None:
    """Each Function subclass of minigrad.ops and of the losses is made by some catalog entry.

    It counts the ops of each entry's graph and of its gradient's graph (the ops backward rules use,
    such as sum_to and index_add, are reached there). A new op fails this test until it has its line.
    """
    functions = {
        cls
        for module in (mg.ops, mg.nn.losses)
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, mg.Function) and cls.__module__ == module.__name__
        and cls is not mg.ops._View  # the base class of the view ops, not an op
    }
    made: set[type] = set()

    def record(t: mg.Tensor) -> None:
        """Every Function in the graph behind ``t``."""
        stack = [t]
        while stack:
            node = stack.pop()
            if node._ctx is not None:
                made.add(type(node._ctx))
                stack.extend(x for x in node._ctx.inputs if isinstance(x, mg.Tensor))

    for op in CATALOG:
        drawn = data.draw(op.inputs)
        ts = [mg.Tensor(a, requires_grad=True) for a in drawn.arrays]
        out = op.fn(*ts, **drawn.params)
        record(out)
        for g in mg.autograd.grad((out * out).sum(), ts, create_graph=True, allow_unused=True):
            if g is not None:
                record(g)
    # Cast is reached only by mixed precision (the catalog is float64): see test_mixed_precision_double_backward.
    missing = functions - made - {mg.ops.Cast}
    assert not missing, f"Functions with no catalog entry: {sorted(cls.__name__ for cls in missing)}"
    assert len(functions) > 35


# ---------------------------------------------------------------------------
# Conventions, worked out by hand (PyTorch's where numpy has none or differs)
# ---------------------------------------------------------------------------


def grad_of(fn: Callable[[mg.Tensor], mg.Tensor], x: np.ndarray, g: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(fn(x), d(Σ g·fn(x))/dx) in float64."""
    t = mg.Tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    out = fn(t)
    out.backward(np.ones(out.shape) if g is None else np.asarray(g, dtype=np.float64))
    assert t.grad is not None
    return out.data, t.grad


def test_max_and_min_share_the_gradient_equally_among_ties() -> None:
    """As torch.amax/amin (and torch.max() with no dim): every tied extreme gets an equal share."""
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    value, g = grad_of(lambda t: t.max(axis=1), x, [1.0, 10.0])
    np.testing.assert_array_equal(value, [3.0, 2.0])
    np.testing.assert_array_equal(g, [[0.0, 0.5, 0.5], [5.0, 5.0, 0.0]])
    y = np.array([[1.0, 2.0, 0.0], [4.0, 2.0, 0.0]])
    value, g = grad_of(lambda t: t.min(axis=0, keepdims=True), y, [[1.0, 10.0, 100.0]])
    np.testing.assert_array_equal(value, [[1.0, 2.0, 0.0]])
    np.testing.assert_array_equal(g, [[1.0, 5.0, 50.0], [0.0, 5.0, 50.0]])
    value, g = grad_of(lambda t: t.max(), np.array([2.0, 2.0, 2.0, -1.0]))
    assert value == 2.0
    np.testing.assert_array_equal(g, [1 / 3, 1 / 3, 1 / 3, 0.0])


def test_maximum_and_minimum_split_a_tie_in_half() -> None:
    """torch.maximum/minimum: the larger (smaller) input gets g, a tie gives g/2 to each."""
    a = mg.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = mg.Tensor(np.array([2.0, 2.0, 2.0]), requires_grad=True)
    mg.maximum(a, b).backward(np.array([1.0, 10.0, 100.0]))
    np.testing.assert_array_equal(a.grad, [0.0, 5.0, 100.0])
    np.testing.assert_array_equal(b.grad, [1.0, 5.0, 0.0])
    a.grad = b.grad = None
    mg.minimum(a, b).backward(np.array([1.0, 10.0, 100.0]))
    np.testing.assert_array_equal(a.grad, [1.0, 5.0, 0.0])
    np.testing.assert_array_equal(b.grad, [0.0, 5.0, 100.0])


def test_clip_gradient_is_one_at_the_bounds() -> None:
    """torch.clamp: the gradient is 1 for low <= x <= high (the bounds included), 0 outside."""
    value, g = grad_of(lambda t: t.clip(-0.5, 0.5), np.array([-1.0, -0.5, 0.0, 0.5, 1.0]))
    np.testing.assert_array_equal(value, [-0.5, -0.5, 0.0, 0.5, 0.5])
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, 1.0, 0.0])


def test_abs_and_relu_have_gradient_zero_at_zero() -> None:
    """PyTorch's choice at the kink: d|x|/dx = sign(0) = 0 and relu'(0) = 0."""
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(grad_of(lambda t: t.abs(), x)[1], [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(grad_of(lambda t: t.relu(), x)[1], [0.0, 0.0, 1.0])


def test_var_and_std_use_the_correction_pytorch_does() -> None:
    """var() divides by n - 1 by default (torch.var), by n with correction=0 (np.var)."""
    x = np.array([[1.0, 2.0, 3.0, 6.0], [0.0, 0.0, 0.0, 4.0]])
    # Row 0: mean 3, squared deviations 4 + 1 + 0 + 9 = 14; row 1: mean 1, 1 + 1 + 1 + 9 = 12.
    np.testing.assert_allclose(mg.Tensor(x).var(axis=1).data, [14 / 3, 12 / 3])
    np.testing.assert_allclose(mg.Tensor(x).var(axis=1, correction=0).data, [14 / 4, 12 / 4])
    np.testing.assert_allclose(mg.Tensor(x).std(axis=1).data, np.sqrt([14 / 3, 12 / 3]))
    np.testing.assert_allclose(mg.Tensor(x).var().data, np.var(x, ddof=1))
    # d var/dx_i = 2 (x_i - mean) / (n - 1): the mean's own dependence on x_i sums to zero.
    _, g = grad_of(lambda t: t.var(axis=1), x)
    np.testing.assert_allclose(g, [[-4 / 3, -2 / 3, 0.0, 2.0], [-2 / 3, -2 / 3, -2 / 3, 2.0]])
    with pytest.raises(ValueError, match="var: 1 elements leave no degrees of freedom with correction=1"):
        mg.Tensor(x[:, :1]).var(axis=1)
    with pytest.raises(ValueError, match="std: correction must be a non-negative integer"):
        mg.Tensor(x).std(correction=-1)


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


def test_squeeze_and_flatten_follow_pytorch() -> None:
    """squeeze() drops every axis of length 1; an axis that is not 1 long is refused (as numpy).

    flatten(start_dim, end_dim) merges an inclusive range of axes; a 0-d tensor flattens to (1,).
    """
    t = mg.Tensor(np.zeros((1, 3, 1, 2)))
    assert t.squeeze().shape == (3, 2)
    assert t.squeeze(2).shape == (1, 3, 2)
    assert t.squeeze((0, -2)).shape == (3, 2)
    with pytest.raises(ValueError, match=r"squeeze: axis 1 of shape \(1, 3, 1, 2\) has length 3, not 1"):
        t.squeeze(1)
    assert t.flatten().shape == (6,)
    assert t.flatten(1).shape == (1, 6)
    assert t.flatten(1, 2).shape == (1, 3, 2)
    assert t.flatten(-3, -1).shape == (1, 6)
    assert mg.Tensor(np.array(5.0)).flatten().shape == (1,)
    with pytest.raises(ValueError, match="flatten: start_dim 2 comes after end_dim 1"):
        t.flatten(2, 1)
    assert t.unsqueeze(-1).shape == (1, 3, 1, 2, 1)
    with pytest.raises(ValueError, match="unsqueeze: dim 5 is out of range for a tensor of 4 dimensions"):
        t.unsqueeze(5)


def test_comparisons_give_boolean_masks_without_gradient() -> None:
    """< <= > >= == != are elementwise, give bool Tensors that need no grad, and broadcast."""
    a = mg.Tensor(np.array([[1.0, 2.0, 3.0]]), requires_grad=True)
    b = np.array([[2.0], [3.0]])
    for out, expected in [
        (a < b, [[True, False, False], [True, True, False]]),
        (a <= b, [[True, True, False], [True, True, True]]),
        (a > b, [[False, False, True], [False, False, False]]),
        (a >= b, [[False, True, True], [False, False, True]]),
        (a == b, [[False, True, False], [False, False, True]]),
        (a != b, [[True, False, True], [True, True, False]]),
    ]:
        assert out.dtype == np.bool_
        assert not out.requires_grad
        np.testing.assert_array_equal(out.data, expected)


def test_a_number_is_compared_in_the_tensors_dtype() -> None:
    """float32 x == 0.1 compares with float32 0.1, as numpy's weak scalars and PyTorch do (it used float64)."""
    a = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    x = mg.Tensor(a, requires_grad=True)
    np.testing.assert_array_equal((x == 0.1).data, [True, False, False])
    np.testing.assert_array_equal((x > 0.1).data, [False, True, True])
    np.testing.assert_array_equal((x <= 0.3).data, [True, True, True])
    np.testing.assert_array_equal((0.2 <= x).data, [False, True, True])
    np.testing.assert_array_equal((x.clip(min=0.2) == 0.2).data, [True, True, False])  # the clipped entries
    mg.where(x > 0.1, x * 10.0, x).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 10.0, 10.0])
    np.testing.assert_array_equal((x == None).data, [False, False, False])  # noqa: E711  (numpy's answer)
    np.testing.assert_array_equal((x != None).data, [True, True, True])  # noqa: E711


def test_clip_bounds_and_a_linear_bias_follow_the_dtype_rules() -> None:
    """A numpy float64 bound took clip to float64; a float64 bias was rounded into linear's float32 output."""
    x = mg.Tensor(np.array([0.5, 2.0], np.float32), requires_grad=True)
    assert x.clip(max=np.float64(1.0)).dtype == np.float32 == x.clip(min=np.float64(0.7), max=1.0).dtype
    np.testing.assert_array_equal(x.clip(min=np.float64(0.7)).data, np.array([0.7, 2.0], np.float32))
    X, W = mg.Tensor(np.ones((1, 1), np.float32)), mg.Tensor(np.ones((1, 1), np.float32), requires_grad=True)
    b = mg.Tensor(np.array([1e-9]), requires_grad=True)
    out = mg.linear(X, W, b)
    assert out.dtype == np.float64 and out.data.item() == 1.000000001 == (X @ W + b).data.item()
    out.sum().backward()
    assert W.grad.dtype == np.float32 and b.grad.dtype == np.float64  # each gradient in its input's dtype


def test_reductions_of_empty_tensors() -> None:
    """Over a non-empty axis of an empty tensor: numpy's empty result; logsumexp over an empty axis is -inf."""
    x = mg.Tensor(np.zeros((0, 3)), requires_grad=True)
    for out in (x.max(axis=1), x.min(axis=1), x.logsumexp(axis=1)):
        assert out.shape == (0,)
        out.sum().backward()
        assert x.grad.shape == (0, 3)
    e = mg.Tensor(np.zeros((2, 0)), requires_grad=True)
    np.testing.assert_array_equal(e.logsumexp(axis=1).data, [-np.inf, -np.inf])
    assert e.logsumexp(axis=1, keepdims=True).shape == (2, 1)
    with pytest.raises(ValueError, match=r"max: cannot take the max over an axis of length 0 \(shape \(2, 0\)"):
        e.max(axis=1)
    with pytest.raises(ValueError, match="min: cannot take the min over an axis of length 0"):
        e.min()


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


def test_concatenate_with_no_axis_flattens_and_a_bad_axis_is_named() -> None:
    a, b = mg.Tensor(np.ones((2, 2)), requires_grad=True), mg.Tensor(np.ones(3), requires_grad=True)
    c = mg.concatenate([a, b], axis=None)  # numpy's axis=None: flattened, then joined
    np.testing.assert_array_equal(c.data, np.concatenate([np.ones((2, 2)), np.ones(3)], axis=None))
    (c * mg.Tensor(np.arange(7.0))).sum().backward()
    np.testing.assert_array_equal(a.grad, [[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(b.grad, [4.0, 5.0, 6.0])
    with pytest.raises(TypeError, match="stack: axis must be an integer, got None"):
        mg.stack([a, a], axis=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="concatenate: axis must be an integer, got 0.5"):
        mg.concatenate([a, a], axis=0.5)  # type: ignore[arg-type]


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


def test_comparisons_with_any_python_value_give_numpys_answers() -> None:
    """These worked before comparisons took the tensor's dtype, then raised messages starting 'Tensor:'."""
    mask = mg.Tensor(np.array([True, False]))
    np.testing.assert_array_equal((mask == 2**25 + 1).data, [False, False])  # an int float32 would round
    x = mg.Tensor(np.array([1.0, 2.0]))
    np.testing.assert_array_equal((x == object()).data, [False, False])
    np.testing.assert_array_equal((x != 1 + 2j).data, [True, True])
    x32 = mg.Tensor(np.array([0.1, 0.2], np.float32))
    np.testing.assert_array_equal((x32 > np.float64(0.1)).data, [False, True])  # a numpy float takes x's dtype
    with pytest.raises(TypeError, match="lt: cannot compare a Tensor with a str"):
        x < "a"  # noqa: B015


def test_softmax_of_an_empty_tensor_is_empty() -> None:
    x = mg.Tensor(np.zeros((3, 0)), requires_grad=True)
    for out in (x.softmax(axis=1), x.log_softmax(axis=1), x.softmax(axis=0)):
        assert out.shape == (3, 0)
        out.sum().backward()
        assert x.grad.shape == (3, 0)


def test_masks_combine_with_and_or_xor_not() -> None:
    """& | ^ ~ on boolean masks are numpy's logical ops, broadcasting, with arrays and bools on either side."""
    x = mg.Tensor(np.array([[-1.0, 0.5, 2.0]]), requires_grad=True)
    low, high = x > 0, x < 1
    col = np.array([[True], [False]])
    for out, expected in [
        (low & high, [[False, True, False]]),
        (low | high, [[True, True, True]]),
        (low ^ high, [[True, False, True]]),
        (~low, [[True, False, False]]),
        (low & col, [[False, True, True], [False, False, False]]),
        (col | low, [[True, True, True], [False, True, True]]),
        (True ^ low, [[True, False, False]]),
    ]:
        assert out.dtype == np.bool_ and not out.requires_grad
        np.testing.assert_array_equal(out.data, expected)
    # A mask made so selects as any other: the gradient of the selected entries only.
    (x * ((x > 0) & (x < 1))).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 1.0, 0.0]])
    with pytest.raises(TypeError, match=r"and: & works on boolean masks .* got dtype float64; compare first"):
        low & x
    with pytest.raises(TypeError, match=r"not: ~ works on boolean masks .* got dtype float64"):
        _ = ~x
    with pytest.raises(ValueError, match=r"xor: shapes \(1, 3\) and \(2,\) cannot be broadcast together"):
        low ^ np.array([True, False])


A23, B4 = mg.Tensor(np.ones((2, 3))), mg.Tensor(np.ones(4))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: mg.maximum(A23, B4), ValueError, r"maximum: shapes \(2, 3\) and \(4,\) cannot be broadcast"),
        (lambda: mg.minimum(np.ones(4), A23), ValueError, r"minimum: shapes \(4,\) and \(2, 3\) cannot be broadcast"),
        (lambda: mg.maximum(1.0, 2.0), TypeError, "maximum: at least one operand must be a Tensor"),
        (lambda: mg.where(A23 > 0, A23, B4), ValueError, r"where: shapes \(2, 3\), \(2, 3\) and \(4,\) cannot be"),
        (lambda: mg.where(np.ones((2, 3)), A23, A23), TypeError, "where: cond must be a boolean mask, got dtype float"),
        (lambda: A23 < B4, ValueError, r"lt: shapes \(2, 3\) and \(4,\) cannot be broadcast together"),
        (lambda: A23 != B4, ValueError, r"ne: shapes \(2, 3\) and \(4,\) cannot be broadcast together"),
        (lambda: A23.broadcast_to((3, 3)), ValueError, r"broadcast_to: shape \(2, 3\) cannot be broadcast to \(3, 3\)"),
        (lambda: A23.clip(), ValueError, "clip: give min, max or both"),
        (lambda: A23.clip(1.0, 0.0), ValueError, "clip: min 1.0 is larger than max 0.0"),
        (lambda: A23.clip(max="1"), TypeError, "clip: max must be a number or None, got '1'"),
        (lambda: mg.Tensor(np.ones(0)).min(), ValueError, r"min: cannot take the min over an axis of length 0"),
        (lambda: A23.logsumexp(axis=2), ValueError, "logsumexp: axis 2 is out of range for a tensor of 2 dimensions"),
        (lambda: A23.var(correction=1.5), ValueError, "var: correction must be a non-negative integer, got 1.5"),
        (lambda: A23.std(axis=0, correction=2), ValueError, "std: 2 elements leave no degrees of freedom"),
        (lambda: A23.squeeze(5), ValueError, "squeeze: axis 5 is out of range for a tensor of 2 dimensions"),
        (lambda: A23.squeeze(axis=True), TypeError, "squeeze: axis must be an int, a tuple of ints or None"),
        (lambda: A23.unsqueeze(True), TypeError, "unsqueeze: dim must be an int, got True"),
        (lambda: A23.unsqueeze(-4), ValueError, "unsqueeze: dim -4 is out of range for a tensor of 2 dimensions"),
        (lambda: A23.flatten(3), ValueError, "flatten: start_dim 3 is out of range for a tensor of 2 dimensions"),
        (lambda: A23.flatten(0, 1.0), TypeError, "flatten: end_dim must be an int, got 1.0"),
        (lambda: A23.swapaxes(0, 2), ValueError, "swapaxes: axis 2 is out of range for a tensor of 2 dimensions"),
    ],
)
def test_new_ops_refuse_bad_input_naming_the_op(call: Callable[[], Any], error: type, message: str) -> None:
    """Each new op's refusals name the op and the shapes or values, as the older ops' messages do."""
    with pytest.raises(error, match=message):
        call()


def test_mixed_precision_double_backward() -> None:
    """A float32 input times a float64 one: gradients take each input's dtype, to second order too.

    f = (x·y)² with x float32 and y float64: df/dx = 2(x·y) y, d²f/dx² = 2 y yᵀ.
    """
    x = mg.Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = mg.Tensor(np.array([3.0, -1.0]), requires_grad=True)
    (gx,) = mg.autograd.grad(((x * y).sum()) ** 2, x, create_graph=True)
    assert gx.dtype == np.float32
    np.testing.assert_allclose(gx.data, 2 * 1.0 * np.array([3.0, -1.0]))  # x·y = 3 - 2 = 1
    (hx,) = mg.autograd.grad(gx[0], x)
    assert hx.dtype == np.float32
    np.testing.assert_allclose(hx.data, 2 * 3.0 * np.array([3.0, -1.0]))


# ---------------------------------------------------------------------------
# Issue 12: silent wrong answers of the engine before the rewrite, one test each
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("bias_shape", [(4, 2), (1, 2), (4, 1), (1, 1), (2,), ()])
def test_linear_bias_that_broadcasts_gets_the_composites_gradient(bias_shape: Shape) -> None:
    """mg.linear(x, W, b) = x @ W + b for any b that broadcasts to the output (4, 2), gradients included.

    By hand: db is g summed over the axes b was broadcast along; for b of shape (4, 2), db = g itself.
    """
    rng = np.random.default_rng(0)
    x0, W0, b0 = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=bias_shape)
    g = rng.normal(size=(4, 2))
    grads = []
    for f in (mg.linear, lambda x, W, b: x @ W + b):
        x, W, b = (mg.Tensor(a, requires_grad=True) for a in (x0, W0, b0))
        out = f(x, W, b)
        np.testing.assert_allclose(out.data, x0 @ W0 + b0, rtol=1e-12)
        out.backward(g)
        grads.append((x.grad, W.grad, b.grad))
    (dx, dW, db), (cx, cW, cb) = grads
    assert db is not None and db.shape == bias_shape
    np.testing.assert_allclose(dx, cx, rtol=1e-12)
    np.testing.assert_allclose(dW, cW, rtol=1e-12)
    np.testing.assert_allclose(db, cb, rtol=1e-12)
    expected_db = {(4, 2): g, (1, 2): g.sum(0, keepdims=True), (4, 1): g.sum(1, keepdims=True),
                   (1, 1): g.sum(keepdims=True), (2,): g.sum(0), (): g.sum()}[bias_shape]
    np.testing.assert_allclose(db, expected_db, rtol=1e-12)


@pytest.mark.parametrize("bias_shape", [(3,), (4, 3), (5, 4, 2), (2, 2)])
def test_linear_refuses_a_bias_that_does_not_broadcast_to_the_output(bias_shape: Shape) -> None:
    """A bias that does not broadcast to the output's shape (4, 2), or would enlarge it, is refused."""
    x, W = mg.Tensor(np.ones((4, 3))), mg.Tensor(np.ones((3, 2)), requires_grad=True)
    b = mg.Tensor(np.ones(bias_shape), requires_grad=True)
    shape = str(bias_shape).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=rf"linear: bias of shape {shape} does not broadcast to the output's shape"):
        mg.linear(x, W, b)


def test_tensor_power_follows_pytorch_at_base_zero_and_negative_bases() -> None:
    """x ** y with a tensor exponent: values and both gradients, by hand, as torch.pow gives them.

    d(x^y)/dx = y·x^(y-1), taken as 0 where y = 0 (x^0 = 1); d(x^y)/dy = x^y·ln x, taken as 0 where
    x = 0 and y >= 0 (0^y is flat in y there); a negative base has no real logarithm: NaN.
    """
    x0 = np.array([0.0, 0.0, 0.0, -2.0, -2.0, 3.0])
    y0 = np.array([2.0, 0.0, 0.5, 3.0, 2.0, 0.0])
    x, y = mg.Tensor(x0, requires_grad=True), mg.Tensor(y0, requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0^-1 and ln(-2) are computed, then masked
        out = x**y
        out.backward(np.ones(6))
    np.testing.assert_array_equal(out.data, [0.0, 1.0, 0.0, -8.0, 4.0, 1.0])
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, np.inf, 12.0, -4.0, 0.0])
    np.testing.assert_array_equal(y.grad, [0.0, 0.0, 0.0, np.nan, np.nan, np.log(3.0)])


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


def test_power_second_derivative_in_the_exponent_at_base_zero() -> None:
    """d²(x^y)/dy² = x^y (ln x)², which is 0 at x = 0 (y > 0): finite, not NaN."""
    x = mg.Tensor(np.array([0.0, 2.0]))
    y = mg.Tensor(np.array([2.0, 1.5]), requires_grad=True)
    (gy,) = mg.autograd.grad((x**y).sum(), y, create_graph=True)
    np.testing.assert_allclose(gy.data, [0.0, 2**1.5 * np.log(2.0)], rtol=1e-12)
    (hy,) = mg.autograd.grad(gy.sum(), y)
    np.testing.assert_allclose(hy.data, [0.0, 2**1.5 * np.log(2.0) ** 2], rtol=1e-12)


def test_scalar_power_zero_has_gradient_zero_everywhere() -> None:
    """x ** 0 = 1 and its gradient is 0, at x = 0 too (PyTorch); x ** 3 at a negative base is fine."""
    value, g = grad_of(lambda t: t**0, np.array([0.0, -2.0, 3.0]))
    np.testing.assert_array_equal(value, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.0])
    value, g = grad_of(lambda t: t**3, np.array([0.0, -2.0]))
    np.testing.assert_array_equal(value, [0.0, -8.0])
    np.testing.assert_array_equal(g, [0.0, 12.0])


def test_boolean_tensor_index_selects_and_scatters_the_gradient_back() -> None:
    """x[Tensor([True, False, True])] is elements 0 and 2 (not 1, 0, 1); the gradient goes back to them."""
    x = mg.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    picked = x[mg.Tensor(np.array([True, False, True]))]
    np.testing.assert_array_equal(picked.data, [1.0, 3.0])
    picked.backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 10.0])


def test_numpy_mask_and_comparison_result_select_with_the_gradient_scattered_back() -> None:
    """A 2-D numpy mask, a comparison result, and a mask on the first axis with a slice after it."""
    x0 = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]])
    mask = np.array([[True, False, False], [False, True, True]])
    value, g = grad_of(lambda t: t[mask], x0, [1.0, 10.0, 100.0])
    np.testing.assert_array_equal(value, [1.0, 5.0, -6.0])
    np.testing.assert_array_equal(g, [[1.0, 0.0, 0.0], [0.0, 10.0, 100.0]])
    value, g = grad_of(lambda t: t[t > 0], x0, [1.0, 10.0, 100.0])
    np.testing.assert_array_equal(value, [1.0, 3.0, 5.0])
    np.testing.assert_array_equal(g, [[1.0, 0.0, 10.0], [0.0, 100.0, 0.0]])
    value, g = grad_of(lambda t: t[np.array([False, True]), 1:], x0, [[1.0, 10.0]])
    np.testing.assert_array_equal(value, [[5.0, -6.0]])
    np.testing.assert_array_equal(g, [[0.0, 0.0, 0.0], [0.0, 1.0, 10.0]])
    # Through the mask to second order: d²/dx² of Σ x[m]³ is 6x on the masked elements, 0 elsewhere.
    x = mg.Tensor(x0, requires_grad=True)
    (gx,) = mg.autograd.grad((x[x > 0] ** 3).sum(), x, create_graph=True)
    np.testing.assert_array_equal(gx.data, np.where(x0 > 0, 3 * x0**2, 0.0))
    (hx,) = mg.autograd.grad(gx.sum(), x)
    np.testing.assert_array_equal(hx.data, np.where(x0 > 0, 6 * x0, 0.0))


def test_mask_of_the_wrong_shape_and_fractional_index_are_refused() -> None:
    """A mask that does not fit, or a float Tensor index with a fraction, raises IndexError naming getitem."""
    x = mg.Tensor(np.arange(3.0))
    with pytest.raises(IndexError, match=r"getitem: .*\(tensor shape \(3,\)\)"):
        x[np.array([True, False])]
    with pytest.raises(IndexError, match="getitem: a Tensor index must hold whole numbers"):
        x[mg.Tensor(np.array([0.5]))]
    np.testing.assert_array_equal(x[mg.Tensor(np.array([2.0, 0.0]))].data, [2.0, 0.0])  # whole floats index


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


def test_a_tensor_index_must_hold_whole_numbers():
    t = mg.Tensor([10.0, 20.0, 30.0])
    assert t[mg.Tensor([2.0, 0.0])].data.tolist() == [30.0, 10.0]
    with pytest.raises(IndexError, match="whole numbers"):
        t[mg.Tensor([1.7])]


@pytest.mark.parametrize("data", [[0.0], [1.0], [[2.0]], 0.0, -1.5, [True], [False], [1.0, 2.0], [[0.0, 0.0]], []])
def test_bool_follows_numpy(data: Any) -> None:
    """bool(t) is numpy's: the truth of a one-element tensor; several (or none) are ambiguous."""
    array = np.array(data)
    try:
        expected: bool | None = bool(array)
    except ValueError:
        expected = None
    t = mg.Tensor(array)
    if expected is None:
        with pytest.raises(ValueError, match=r"bool: the truth value of a tensor of shape .* is ambiguous"):
            bool(t)
    else:
        assert bool(t) is expected
    assert array.size != 1 or expected is not None


def test_grad_mode_belongs_to_each_thread() -> None:
    """A thread inside no_grad does not stop another thread's recording, and the reverse.

    The two threads take turns through a Barrier, so each step of one happens while the other is
    inside (or outside) no_grad, deterministically.
    """
    turn = threading.Barrier(2, timeout=10)
    seen: dict[str, Any] = {}

    def evaluator() -> None:
        with mg.no_grad():
            turn.wait()  # 1: the evaluator is inside no_grad
            turn.wait()  # 2: the trainer has recorded its step meanwhile
            seen["evaluator"] = (mg.is_grad_enabled(), (mg.Tensor([1.0], requires_grad=True) * 2).requires_grad)
        turn.wait()  # 3: the trainer goes into no_grad
        seen["evaluator after"] = (mg.Tensor([1.0], requires_grad=True) * 2).requires_grad
        turn.wait()  # 4: done

    worker = threading.Thread(target=evaluator)
    worker.start()
    w = mg.Tensor(np.array([1.0, -3.0]), requires_grad=True)
    turn.wait()  # 1
    loss = (w * w).sum()
    seen["trainer"] = (mg.is_grad_enabled(), loss.requires_grad)
    loss.backward()
    turn.wait()  # 2
    with mg.no_grad():
        turn.wait()  # 3
        turn.wait()  # 4
        seen["trainer inside"] = (w * 2).requires_grad
    worker.join(timeout=10)
    assert seen == {
        "trainer": (True, True),
        "evaluator": (False, False),
        "evaluator after": True,
        "trainer inside": False,
    }
    np.testing.assert_array_equal(w.grad, [2.0, -6.0])


REDUCTIONS: dict[str, Callable[..., mg.Tensor]] = {
    "sum": lambda t, **k: t.sum(**k),
    "mean": lambda t, **k: t.mean(**k),
    "max": lambda t, **k: t.max(**k),
    "min": lambda t, **k: t.min(**k),
    "logsumexp": lambda t, **k: t.logsumexp(**k),
    "var": lambda t, **k: t.var(**k),
    "std": lambda t, **k: t.std(**k),
}


@pytest.mark.parametrize("op", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis", [True, False, 1.0, (0, True), "1"])
def test_reductions_refuse_an_axis_that_is_not_an_integer(op: str, axis: Any) -> None:
    """sum(axis=True) is not axis 1: booleans, floats and strings are refused, naming the argument."""
    t = mg.Tensor(np.ones((2, 3)))
    with pytest.raises(TypeError, match=rf"{op}: axis must be an int, a tuple of ints or None, got"):
        REDUCTIONS[op](t, axis=axis)


@pytest.mark.parametrize("op", sorted(REDUCTIONS))
@pytest.mark.parametrize("keepdims", ["yes", 1, 0, None])
def test_reductions_refuse_a_keepdims_that_is_not_a_bool(op: str, keepdims: Any) -> None:
    """keepdims must be True or False; the message names the op and the argument."""
    t = mg.Tensor(np.ones((2, 3)))
    with pytest.raises(TypeError, match=rf"{op}: keepdims must be True or False, got {keepdims!r}"):
        REDUCTIONS[op](t, axis=0, keepdims=keepdims)


@pytest.mark.parametrize("flag", ["no", 1, 0, None, 1.0])
def test_flags_that_are_not_bools_are_refused(flag: Any) -> None:
    """requires_grad='no' is not True; backward's and grad's flags are checked the same way."""
    with pytest.raises(TypeError, match=rf"Tensor: requires_grad must be True or False, got {flag!r}"):
        mg.Tensor([1.0], requires_grad=flag)
    x = mg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(TypeError, match="backward: retain_graph must be True or False"):
        (x * x).sum().backward(retain_graph=flag)
    with pytest.raises(TypeError, match="grad: create_graph must be True or False"):
        mg.autograd.grad((x * x).sum(), x, create_graph=flag)
    assert mg.Tensor([1.0], requires_grad=np.bool_(True)).requires_grad is True  # numpy's bool is a bool


# ---------------------------------------------------------------------------
# Issue 15: higher derivatives in closed form
# ---------------------------------------------------------------------------


def hessian(f: Callable[..., mg.Tensor], *arrays: np.ndarray) -> np.ndarray:
    """The Hessian of the scalar f over all inputs (flattened, concatenated), by grad of grad."""
    xs = [mg.Tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    grads = mg.autograd.grad(f(*xs), xs, create_graph=True)
    flat = mg.concatenate([g.reshape(-1) for g in grads])
    rows = []
    for k in range(flat.shape[0]):
        row = mg.autograd.grad(flat[k], xs, retain_graph=True, allow_unused=True)
        rows.append(np.concatenate([np.zeros(x.size) if r is None else r.data.reshape(-1) for x, r in zip(xs, row)]))
    return np.stack(rows)


def test_hessian_of_a_quadratic_form_is_the_symmetric_part() -> None:
    """f = ½ xᵀAx has gradient (A + Aᵀ)x / 2 and Hessian (A + Aᵀ)/2, for A not symmetric."""
    rng = np.random.default_rng(0)
    A0, x0 = rng.normal(size=(4, 4)), rng.normal(size=4)
    A = mg.Tensor(A0)
    x = mg.Tensor(x0, requires_grad=True)
    (g,) = mg.autograd.grad(0.5 * (x @ (A @ x)), x, create_graph=True)
    np.testing.assert_allclose(g.data, (A0 + A0.T) @ x0 / 2, rtol=1e-12)
    for f in (lambda x: 0.5 * (x @ (A @ x)), lambda x: (x * (x @ A.T)).sum() / 2, lambda x: 0.5 * mg.linear(x, A) @ x):
        np.testing.assert_allclose(hessian(f, x0), (A0 + A0.T) / 2, rtol=1e-12, atol=1e-14)


def test_hessian_of_the_squared_dot_product() -> None:
    """f = (x·y)² with s = x·y: H_xx = 2yyᵀ, H_yy = 2xxᵀ, H_xy[i, j] = 2 y_i x_j + 2s·δ_ij."""
    x0, y0 = np.array([1.0, -2.0, 0.5]), np.array([3.0, 1.0, -1.0])
    s = x0 @ y0
    H = hessian(lambda x, y: (x * y).sum() ** 2, x0, y0)
    H_xy = 2 * np.outer(y0, x0) + 2 * s * np.eye(3)
    expected = np.block([[2 * np.outer(y0, y0), H_xy], [H_xy.T, 2 * np.outer(x0, x0)]])
    np.testing.assert_allclose(H, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "loss",
    [
        pytest.param(lambda z, t: mg.nn.cross_entropy(z, t), id="cross_entropy"),
        pytest.param(lambda z, t: -z.log_softmax(axis=1)[np.arange(len(t)), t].mean(), id="composite"),
    ],
)
def test_hessian_of_softmax_cross_entropy(loss: Callable[[mg.Tensor, np.ndarray], mg.Tensor]) -> None:
    """Mean over N rows of -log softmax(z)[t]: the Hessian in z is block-diagonal, (diag p - ppᵀ)/N per row.

    It does not depend on the targets; each block is the softmax's Jacobian.
    """
    rng = np.random.default_rng(1)
    z0, t = rng.normal(size=(3, 4)), np.array([0, 3, 3])
    p = np.exp(z0) / np.exp(z0).sum(axis=1, keepdims=True)
    expected = np.zeros((12, 12))
    for n in range(3):
        expected[4 * n : 4 * n + 4, 4 * n : 4 * n + 4] = (np.diag(p[n]) - np.outer(p[n], p[n])) / 3
    np.testing.assert_allclose(hessian(lambda z: loss(z, t), z0), expected, rtol=1e-10, atol=1e-14)


def test_third_derivative_of_tanh() -> None:
    """With t = tanh x: t' = 1 - t², t'' = -2t(1 - t²), t''' = -2(1 - t²)(1 - 3t²)."""
    x0 = np.linspace(-2.0, 2.0, 7)
    t = np.tanh(x0)
    x = mg.Tensor(x0, requires_grad=True)
    (d1,) = mg.autograd.grad(x.tanh().sum(), x, create_graph=True)
    (d2,) = mg.autograd.grad(d1.sum(), x, create_graph=True)
    (d3,) = mg.autograd.grad(d2.sum(), x)
    np.testing.assert_allclose(d1.data, 1 - t**2, rtol=1e-12)
    np.testing.assert_allclose(d2.data, -2 * t * (1 - t**2), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(d3.data, -2 * (1 - t**2) * (1 - 3 * t**2), rtol=1e-12, atol=1e-15)


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


def test_gradients_without_create_graph_carry_no_graph() -> None:
    """create_graph=False gives constant leaves; create_graph=True gives Tensors that differentiate again."""
    x = mg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (g,) = mg.autograd.grad((x**3).sum(), x)
    assert not g.requires_grad and g.is_leaf and g.op == ""
    np.testing.assert_array_equal(g.data, [3.0, 12.0])
    with pytest.raises(RuntimeError, match="grad: output 0 does not require grad"):
        mg.autograd.grad(g.sum(), x)
    assert x.grad is None  # autograd.grad touches no .grad
    (g,) = mg.autograd.grad((x**3).sum(), x, create_graph=True)
    assert g.requires_grad and not g.is_leaf
    g.sum().backward()  # Σ_i d/dx_j (3x_i²) = 6x_j, into .grad as PyTorch's double backward does
    np.testing.assert_array_equal(x.grad, [6.0, 12.0])


def test_first_derivative_is_the_same_with_and_without_create_graph() -> None:
    """The same backward code on arrays and on Tensors gives the same first derivative, to the last bit."""
    rng = np.random.default_rng(2)
    x0, W0, b0 = rng.normal(size=(5, 3)), rng.normal(size=(3, 4)), rng.normal(size=4)
    t = np.array([0, 1, 3, 3, 2])
    results = []
    for create_graph in (False, True):
        x, W, b = (mg.Tensor(a, requires_grad=True) for a in (x0, W0, b0))
        h = mg.linear(x, W, b).tanh()
        loss = mg.nn.cross_entropy(h * h.sigmoid() + (h.abs() + 1).log(), t) + (W.var() + b.max()) / 2
        results.append([g.data for g in mg.autograd.grad(loss, [x, W, b], create_graph=create_graph)])
    for plain, graphed in zip(*results):
        np.testing.assert_array_equal(plain, graphed)


# σ's formula changed after the rewrite, on purpose: from (1 + tanh(x/2)) / 2 to one built on e^-|x|, which keeps
# its relative precision in the negative tail (σ(-20) in float32 was 0). The script gives both engines this one,
# so that what it compares is the engine; test_the_sigmoid_formula_given_to_both_engines_is_mains checks it.
SIGMOID = """
def _sigmoid(x):
    z = np.exp(-np.abs(x))
    s = 1 / (1 + z)
    return np.where(x >= 0, s, z * s)
"""

TRAINING = """
import sys
import numpy as np
import minigrad as mg
""" + SIGMOID + """
for _module in ("minigrad.engine", "minigrad.ops", "minigrad.nn.losses"):
    if hasattr(sys.modules.get(_module), "stable_sigmoid"):
        sys.modules[_module].stable_sigmoid = _sigmoid

print("Function" in dir(mg))  # False before the rewrite: tells which engine this run imported

# Every op both engines have: its value and first-order gradients, in float32 and float64.
rng = np.random.default_rng(3)
OPS = {
    "add": lambda a, b, W: a + b, "sub": lambda a, b, W: b - a, "mul": lambda a, b, W: a * b,
    "div": lambda a, b, W: b / a, "pow": lambda a, b, W: a**2.5 + b**2, "pow_tensor": lambda a, b, W: a**b,
    "neg": lambda a, b, W: -a, "matmul": lambda a, b, W: a @ W, "matvec": lambda a, b, W: a @ b,
    "sum": lambda a, b, W: a.sum(axis=0), "mean": lambda a, b, W: a.mean(axis=1, keepdims=True),
    "max": lambda a, b, W: (a * b).max(axis=1), "exp": lambda a, b, W: b.exp(), "log": lambda a, b, W: a.log(),
    "tanh": lambda a, b, W: (a * b).tanh(), "sigmoid": lambda a, b, W: (a * b).sigmoid(),
    "relu": lambda a, b, W: (a * b).relu(), "softmax": lambda a, b, W: (a * b).softmax(axis=0),
    "log_softmax": lambda a, b, W: (a * b).log_softmax(), "reshape": lambda a, b, W: a.reshape(2, 6),
    "T": lambda a, b, W: a.T @ a, "getitem": lambda a, b, W: a[np.array([0, 0, 2])] * b,
    "concatenate": lambda a, b, W: mg.concatenate([a, a * 2], axis=1),
    "stack": lambda a, b, W: mg.stack([a, a * b]), "linear": lambda a, b, W: mg.linear(a, W, W[0]),
    "cross_entropy": lambda a, b, W: mg.nn.cross_entropy(a @ W, np.array([0, 1, 1])),
    "bce": lambda a, b, W: mg.nn.binary_cross_entropy_with_logits(a @ W, np.ones((3, 2))),
    "mse": lambda a, b, W: mg.nn.mse_loss(a @ W, np.zeros((3, 2))),
}
for dtype in (np.float32, np.float64):
    arrays = [rng.uniform(0.5, 2, (3, 4)), rng.uniform(-2, 2, 4), rng.normal(size=(4, 2))]
    for name, f in OPS.items():
        a, b, W = (mg.Tensor(x.astype(dtype), requires_grad=True) for x in arrays)
        out = f(a, b, W)
        out.backward(np.linspace(0.5, 1.5, out.data.size).reshape(out.shape).astype(dtype))
        grads = [t.grad.tobytes().hex() for t in (a, b, W) if t.grad is not None]
        print(name, out.data.dtype, out.data.tobytes().hex(), *grads)

# A small MLP trained five steps by three optimizers.
mg.manual_seed(0)
rng = np.random.default_rng(1)
X = rng.normal(size=(32, 2))
y = rng.integers(0, 3, 32)
for activation, dtype, make in [
    ("relu", np.float32, lambda ps: mg.optim.SGD(ps, lr=0.1, momentum=0.9)),
    ("tanh", np.float64, lambda ps: mg.optim.Adam(ps, lr=0.01)),
    ("sigmoid", np.float32, lambda ps: mg.optim.Momentum(ps, lr=0.05, beta=0.9)),
]:
    model = mg.nn.MLP([2, 16, 16, 3], activation=activation, dtype=dtype)
    opt = make(model.parameters())
    for step in range(5):
        opt.zero_grad()
        logits = model(mg.Tensor(X.astype(dtype)))
        loss = mg.nn.cross_entropy(logits, y) + mg.nn.mse_loss(logits.softmax(), np.eye(3)[y].astype(dtype))
        loss.backward()
        opt.step()
    for name, p in model.named_parameters():
        print(activation, name, p.data.dtype, p.data.tobytes().hex())
"""

BEFORE_THE_REWRITE = "50df5f3"  # the last commit with the engine before every op became a Function


def test_first_order_training_is_bit_identical_to_the_engine_before_the_rewrite(tmp_path: Path) -> None:
    """Every op's gradients, and five steps of three optimizers on an MLP, are the same bits as before.

    The old engine is taken from git history into a temporary folder; the same script runs there and
    on the tree under test, each in its own interpreter, and prints every weight's bytes.
    """
    root = Path(mg.__file__).resolve().parents[1]
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed: the engine before the rewrite cannot be taken from history")
    archive = subprocess.run(
        [git, "-C", str(root), "archive", "--format=tar", BEFORE_THE_REWRITE, "minigrad"],
        capture_output=True,
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {BEFORE_THE_REWRITE} is not in this checkout's history: {archive.stderr.decode()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.12 and the security releases before it
            tar.extractall(tmp_path / "before", filter="data")
        else:
            tar.extractall(tmp_path / "before")  # noqa: S202 (our own repository's archive)
    printed = []
    for tree in (tmp_path / "before", root):
        env = {**os.environ, "PYTHONPATH": str(tree)}
        run = subprocess.run(
            [sys.executable, "-c", TRAINING], capture_output=True, text=True, env=env, cwd=tmp_path, check=True
        )
        printed.append(run.stdout)
    (old_engine, *before), (new_engine, *now) = (text.splitlines() for text in printed)
    assert (old_engine, new_engine) == ("False", "True")
    assert len(now) == 2 * 28 + 18  # 28 ops in two dtypes; 3 models × 3 layers × (W, b)
    assert now == before


def test_the_sigmoid_formula_given_to_both_engines_is_mains() -> None:
    """The σ the bit-identity script gives both engines is, bit for bit, the one minigrad uses now."""
    scope: dict[str, Any] = {"np": np}
    exec(SIGMOID, scope)  # noqa: S102  (this module's own text)
    x = np.linspace(-60, 60, 1001)
    for dtype in (np.float32, np.float64):
        v = x.astype(dtype)
        assert scope["_sigmoid"](v).tobytes() == mg.engine.stable_sigmoid(v).tobytes()
        assert mg.Tensor(v).sigmoid().data.tobytes() == mg.engine.stable_sigmoid(v).tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_keeps_its_relative_precision_in_the_negative_tail(dtype: type) -> None:
    """σ(x) ≈ e^x far below 0: relative error of a few ulp, and log σ(x) ≈ x with gradient 1 (it gave -inf, nan)."""
    x0 = np.array([-5.0, -15.0, -20.0, -30.0, -80.0])
    exact = np.array([1 / (1 + math.exp(-v)) for v in x0])
    x = mg.Tensor(x0.astype(dtype), requires_grad=True)
    s = x.sigmoid()
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(s.data, exact, rtol=8 * eps, atol=0)
    s.log().sum().backward()
    np.testing.assert_allclose(x.grad, 1 - exact, rtol=8 * eps)  # d log σ / dx = 1 - σ


def test_bce_gives_a_target_that_requires_grad_its_gradient() -> None:
    """Soft targets that are learned get d/dy = -z / N (they used to be treated as constants, silently)."""
    z0, y0 = np.array([0.5, -1.0, 2.0]), np.array([0.2, 0.9, 0.5])
    z, y = mg.Tensor(z0, requires_grad=True), mg.Tensor(y0, requires_grad=True)
    mg.nn.binary_cross_entropy_with_logits(z, y).backward()
    np.testing.assert_allclose(z.grad, (1 / (1 + np.exp(-z0)) - y0) / 3, rtol=1e-12)
    np.testing.assert_allclose(y.grad, -z0 / 3, rtol=1e-12)


def test_transpose_refuses_booleans_as_axes_as_the_reductions_do() -> None:
    t = mg.Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="not a permutation"):
        t.transpose(True, False)
    assert t.transpose(1, 0).shape == (3, 2)


def test_transpose_refuses_out_of_range_axes():
    t = mg.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"transpose: axes \(3, 0\)"):
        t.transpose(3, 0)
