"""Review of engine.run_backward's chain walk (no separate sort from a single root): its order and results.

Tests named ``test_BUG_...`` failed on the reviewed code (4656ba8..0f6b2bc).
"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad.engine import topological_order


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


class _TensorBackward(mg.Function):
    """A user op whose first-order backward returns a Tensor (worked before 4656ba8)."""

    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return mg.Tensor(g * 2)


@pytest.mark.parametrize("uses", [1, 2])
def test_a_first_order_backward_that_returns_a_tensor_into_a_leaf(uses):
    # Was a bug: the leaf fast path read pg.base on the Tensor (AttributeError), or did ndarray += Tensor.
    x = mg.Tensor(np.ones(3), requires_grad=True)
    out = _TensorBackward.apply(x).sum()
    if uses == 2:
        out = out + _TensorBackward.apply(x).sum()
    out.backward()
    assert np.array_equal(x.grad, np.full(3, 2.0 * uses))


# -- passing checks of the new walk ------------------------------------------------------------------


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


class _HalfNone(mg.Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + 0 * b

    @staticmethod
    def backward(ctx, g):
        return g, None


def test_a_backward_returning_none_for_an_inner_input():
    x = mg.Tensor(np.arange(3.0), requires_grad=True)
    a, b = x * 2, x.exp()
    y = _HalfNone.apply(a, b).sum()
    y.backward()
    assert np.array_equal(x.grad, np.full(3, 2.0))


def test_multiple_roots_autograd_grad_and_create_graph():
    x = mg.Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    y1 = (x * x).sum()
    y2 = (x * 3).sum()
    (gx,) = mg.autograd.grad([y1, y2], [x])
    assert np.array_equal(np.asarray(gx.data if isinstance(gx, mg.Tensor) else gx), 2 * x.data + 3)
    (g,) = mg.autograd.grad([(x**3).sum()], [x], create_graph=True)
    (gg,) = mg.autograd.grad([g.sum()], [x])
    assert np.allclose(np.asarray(gg.data if isinstance(gg, mg.Tensor) else gg), 6 * x.data)


def test_retain_graph_then_a_second_backward_and_a_released_graph():
    x = mg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    assert np.array_equal(x.grad, first + first)
    with pytest.raises(RuntimeError, match="released"):
        y.backward()


def test_inner_capture_on_the_chain():
    x = mg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 2
    y = (h.exp()).sum()
    gh, gx = mg.autograd.grad([y], [h, x])
    gh = np.asarray(getattr(gh, "data", gh))
    gx = np.asarray(getattr(gx, "data", gx))
    assert np.allclose(gh, np.exp(h.data)) and np.allclose(gx, 2 * np.exp(h.data))
    assert x.grad is None
