"""Tests that kill mutants the rest of the optimizer suite let live (mutation testing of ``mg.optim`` and clipping).

Each test names, in its docstring, the bug it guards against. Expected values
come from the update equations written out here in float64 numpy, step by
step, never from a run of the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad.nn.utils import clip_grad_norm_, clip_grad_value_
from minigrad.optim import SGD, Adagrad, Adam, RMSprop
from minigrad.optim.lr_scheduler import ChainedScheduler, ExponentialLR, LinearLR, SequentialLR, StepLR


def param(*values: float, dtype: type = np.float64) -> mg.Tensor:
    """A leaf parameter holding ``values``."""
    return mg.Tensor(np.array(values, dtype=dtype), requires_grad=True)


# ---------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------


def test_rmsprop_momentum_keeps_the_rate_outside_the_velocity() -> None:
    """Guards v = β·v + g/d; w -= α·v against v = β·v + α·g/d; w -= v (the two agree until α changes).

    w₀ = 1, ρ = 0.5, eps = 0.1, β = 0.5; g = 3 at α = 0.1, then g = -1 at α = 0.01.
    """
    p = param(1.0)
    opt = RMSprop([p], lr=0.1, alpha=0.5, eps=0.1, momentum=0.5)
    w, s, v = 1.0, 0.0, 0.0
    for g, lr in ((3.0, 0.1), (-1.0, 0.01)):
        opt.lr = lr
        p.grad = np.array([g])
        opt.step()
        s = 0.5 * s + 0.5 * g * g
        v = 0.5 * v + g / (np.sqrt(s) + 0.1)
        w = w - lr * v
        np.testing.assert_allclose(p.data, [w], rtol=1e-14)


def test_adagrad_lr_decay_counts_each_parameters_own_steps() -> None:
    """Guards α_t = α/(1 + (t-1)·δ) with t the parameter's own step count, not the optimizer's.

    b first gets a gradient at the optimizer's second step: its t is 1, so its
    step is α·g/(|g| + eps) = 0.1·4/(4 + 1e-10), not half of it.
    """
    a, b = param(0.0), param(1.0)
    opt = Adagrad([a, b], lr=0.1, lr_decay=1.0)
    a.grad = np.array([1.0])
    opt.step()
    a.grad, b.grad = np.array([1.0]), np.array([4.0])
    opt.step()
    np.testing.assert_allclose(b.data, [1.0 - 0.1 * 4.0 / (4.0 + 1e-10)], rtol=1e-15)
    # a: t = 2, S = 2, so α_2 = 0.1/2
    np.testing.assert_allclose(a.data, [-0.1 * 1 / (1 + 1e-10) - 0.05 / (np.sqrt(2.0) + 1e-10)], rtol=1e-14)


def test_a_saved_state_is_a_snapshot_that_later_steps_do_not_change() -> None:
    """Guards state_dict() copying its buffers: Adam's m and s, saved after one step, stay (1-β1)·g and (1-β2)·g²."""
    p = param(1.0, -2.0)
    opt = Adam([p], lr=0.1)
    g = np.array([3.0, -0.5])
    p.grad = g.copy()
    opt.step()
    saved = opt.state_dict()
    for _ in range(3):
        opt.step()
    np.testing.assert_allclose(saved["state"]["0"]["m"], (1 - 0.9) * g, rtol=1e-15)
    np.testing.assert_allclose(saved["state"]["0"]["s"], (1 - 0.999) * g * g, rtol=1e-15)


def test_a_loaded_state_is_copied_so_it_can_be_loaded_again() -> None:
    """Guards load_state_dict() copying the buffers it is given: stepping after a load must not write the state.

    SGD(momentum 0.5), g = 2 then g = 3 from w₀ = 0: v = 2, then 0.5·2 + 3 = 4, so w = -0.2 - 0.4.
    Loading the same saved state twice must give that second step twice.
    """
    p = param(0.0)
    opt = SGD([p], lr=0.1, momentum=0.5)
    p.grad = np.array([2.0])
    opt.step()
    saved = opt.state_dict()
    for _ in range(2):
        q = param(-0.2)
        again = SGD([q], lr=0.1, momentum=0.5)
        again.load_state_dict(saved)
        q.grad = np.array([3.0])
        again.step()
        np.testing.assert_allclose(q.data, [-0.2 - 0.1 * (0.5 * 2.0 + 3.0)], rtol=1e-15)
    np.testing.assert_array_equal(saved["state"]["0"]["v"], [2.0])


# ---------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------


def test_a_chained_part_divides_by_its_own_base() -> None:
    """Guards f_i(t) = part_i.lr_at(t) / part_i.base_lr against dividing by the chain's (first part's) base.

    ExponentialLR(0.9) built at lr 0.5, then lr set to 0.2 by hand, then StepLR(2, 0.5), whose base is 0.2:
    lr_t = 0.5·0.9^t·0.5^⌊t/2⌋.
    """
    opt = SGD([param(0.0)], lr=0.5)
    exp = ExponentialLR(opt, gamma=0.9)
    opt.lr = 0.2
    step = StepLR(opt, step_size=2, gamma=0.5)
    assert (exp.base_lr, step.base_lr) == (0.5, 0.2)
    chain = ChainedScheduler([exp, step])
    for t in range(6):
        np.testing.assert_allclose(opt.lr, 0.5 * 0.9**t * 0.5 ** (t // 2), rtol=1e-14, err_msg=f"step {t}")
        chain.step()


def test_a_chained_part_with_a_base_of_zero_contributes_a_factor_of_zero() -> None:
    """Guards the documented rule "0 for a part whose base is 0" (against a factor of 1, ignoring the part)."""
    opt = SGD([param(0.0)], lr=0.5)
    exp = ExponentialLR(opt, gamma=0.9)
    opt.lr = 0.0
    chain = ChainedScheduler([exp, StepLR(opt, step_size=2, gamma=0.5)])
    for _ in range(3):
        assert opt.lr == 0.0
        chain.step()
    assert opt.lr == 0.0


def test_a_schedule_built_after_a_sequence_starts_from_the_sequences_first_base() -> None:
    """Guards SequentialLR passing on its first part's base (the rate before any schedule), not its last part's.

    LinearLR built at lr 1.0; lr set to 0.4 by hand; ExponentialLR(0.5) built (base 0.4); the sequence switches at 2.
    After 3 steps the rate is 0.4·0.5 = 0.2, the sequence's own; a StepLR built then starts at 1.0.
    """
    opt = SGD([param(0.0)], lr=1.0)
    warm = LinearLR(opt, start_factor=0.5, total_iters=2)
    opt.lr = 0.4
    seq = SequentialLR(opt, [warm, ExponentialLR(opt, gamma=0.5)], milestones=[2])
    for _ in range(3):
        seq.step()
    assert opt.lr == 0.4 * 0.5
    after = StepLR(opt, step_size=10)
    assert after.base_lr == 1.0 and opt.lr == 1.0


# ---------------------------------------------------------------------------
# Clipping
# ---------------------------------------------------------------------------


def test_clip_grad_value_keeps_a_float32_gradient_float32() -> None:
    """Guards clip_grad_value_ leaving a float32 .grad in float32 (not upcast to float64), values clamped."""
    p = param(0.0, 0.0, 0.0, dtype=np.float32)
    p.grad = np.array([-3.0, 0.5, 2.0], dtype=np.float32)
    clip_grad_value_([p], clip_value=1.0)
    assert p.grad.dtype == np.float32
    np.testing.assert_array_equal(p.grad, np.array([-1.0, 0.5, 1.0], dtype=np.float32))


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
