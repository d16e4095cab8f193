"""Tests of ``mg.optim.lr_scheduler``: every schedule against its formula, step by step.

The expected rates are written here from the formulas (PyTorch's, for
cosine annealing and one-cycle, transcribed phase by phase), never from a
run of the schedules. A resumed run with saved optimizer and scheduler state
is checked bit for bit against an unbroken one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_optim import param

import minigrad as mg
from minigrad.optim import SGD, Adagrad, Adam, Lion, Momentum, NAdam, Optimizer, RMSprop
from minigrad.optim.lr_scheduler import (
    ChainedScheduler,
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    SequentialLR,
    StepLR,
    schedule_from_spec,
)


def sgd(lr: float = 0.5, **kwargs: Any) -> SGD:
    """SGD on one fresh (3,) parameter."""
    return SGD([mg.Tensor(np.zeros(3), requires_grad=True)], lr=lr, **kwargs)


def rates(scheduler: LRScheduler, steps: int) -> list[float]:
    """optimizer.lr at construction and after each of ``steps`` calls to step(), checking get_last_lr agrees."""
    got = []
    for t in range(steps + 1):
        if t:
            scheduler.step()
        lr = scheduler.optimizer.hyperparameters["lr"]
        assert scheduler.get_last_lr() == [lr] and scheduler.last_epoch == t
        got.append(lr)
    return got


# ---------------------------------------------------------------------------
# Each schedule against its closed form
# ---------------------------------------------------------------------------

CLOSED_FORMS: list[Any] = [
    pytest.param(lambda o: StepLR(o, step_size=3, gamma=0.5), lambda t: 0.5 * 0.5 ** (t // 3), id="StepLR"),
    pytest.param(
        lambda o: MultiStepLR(o, milestones=[6, 2, 6], gamma=0.1),  # unsorted, 6 twice: two decays there
        lambda t: 0.5 * 0.1 ** ((t >= 2) + 2 * (t >= 6)),
        id="MultiStepLR",
    ),
    pytest.param(lambda o: ExponentialLR(o, gamma=0.9), lambda t: 0.5 * 0.9**t, id="ExponentialLR"),
    pytest.param(
        lambda o: CosineAnnealingLR(o, T_max=8),
        lambda t: 0.5 * (1 + math.cos(math.pi * t / 8)) / 2,
        id="CosineAnnealingLR",
    ),
    pytest.param(
        lambda o: CosineAnnealingLR(o, T_max=5, eta_min=0.1),
        lambda t: 0.1 + 0.4 * (1 + math.cos(math.pi * t / 5)) / 2,  # past T_max it climbs back, as PyTorch's
        id="CosineAnnealingLR eta_min",
    ),
    pytest.param(
        lambda o: LinearLR(o),  # 1/3 -> 1 over 5 steps
        lambda t: 0.5 * (1 / 3 + (2 / 3) * min(t, 5) / 5),
        id="LinearLR",
    ),
    pytest.param(
        lambda o: LinearLR(o, start_factor=1.0, end_factor=0.2, total_iters=4),
        lambda t: 0.5 * (1.0 - 0.8 * min(t, 4) / 4),
        id="LinearLR decay",
    ),
    pytest.param(lambda o: LambdaLR(o, lambda t: 1 / (1 + t)), lambda t: 0.5 / (1 + t), id="LambdaLR"),
]


@pytest.mark.parametrize("make, formula", CLOSED_FORMS)
def test_schedule_follows_its_formula_step_by_step(
    make: Callable[[Optimizer], LRScheduler], formula: Callable[[int], float]
) -> None:
    """From construction (step 0) through 12 steps, optimizer.lr is the formula's value, to 1e-15."""
    got = rates(make(sgd(0.5)), 12)
    np.testing.assert_allclose(got, [formula(t) for t in range(13)], rtol=1e-14, atol=1e-16)


def test_cosine_hits_its_ends_exactly() -> None:
    """Cosine annealing starts at the base rate, is halfway at T_max/2 and reaches eta_min at T_max."""
    got = rates(CosineAnnealingLR(sgd(0.8), T_max=10, eta_min=0.2), 10)
    assert got[0] == 0.8 and got[10] == 0.2
    assert got[5] == pytest.approx(0.5, abs=1e-15)
    assert all(a > b for a, b in zip(got, got[1:]))


def test_the_schedule_sets_the_rate_the_next_step_uses() -> None:
    """SGD stepped with g = 1 moves by exactly the rate the schedule set before that step."""
    w = mg.Tensor(np.zeros(1), requires_grad=True)
    optimizer = SGD([w], lr=1.0)
    scheduler = StepLR(optimizer, step_size=2, gamma=0.5)
    moves = []
    for _ in range(6):
        before = float(w.data[0])
        w.grad = np.ones(1)
        optimizer.step()
        scheduler.step()
        moves.append(before - float(w.data[0]))
    assert moves == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


@pytest.mark.parametrize(
    "make",
    [
        lambda o: CosineAnnealingLR(o, T_max=7),
        lambda o: OneCycleLR(o, max_lr=1.0, total_steps=10, cycle_momentum=False),
        lambda o: SequentialLR(o, [LinearLR(o, 0.25, total_iters=3), ExponentialLR(o, 0.9)], milestones=[3]),
    ],
    ids=["cosine", "onecycle", "sequential"],
)
def test_a_schedule_changes_only_the_rate(make: Callable[[Optimizer], LRScheduler]) -> None:
    """Every other hyperparameter, every buffer, the step count and the parameters are left as they were."""
    optimizer = Adam([mg.Tensor(np.ones(3), requires_grad=True)], lr=0.1, betas=(0.8, 0.9), weight_decay=0.01)
    optimizer.params[0].grad = np.ones(3)
    optimizer.step()
    before = optimizer.state_dict()
    data = optimizer.params[0].data.copy()
    scheduler = make(optimizer)
    for _ in range(5):
        scheduler.step()
    after = optimizer.state_dict()
    assert {k: v for k, v in after["hyperparameters"].items() if k != "lr"} == {
        k: v for k, v in before["hyperparameters"].items() if k != "lr"
    }
    assert after["hyperparameters"]["lr"] != before["hyperparameters"]["lr"]
    assert after["step_count"] == before["step_count"]
    for key, value in before["state"]["0"].items():
        assert np.array_equal(after["state"]["0"][key], value)
    assert np.array_equal(optimizer.params[0].data, data)


# ---------------------------------------------------------------------------
# OneCycleLR against PyTorch's algorithm, transcribed
# ---------------------------------------------------------------------------


def torch_one_cycle(
    step: int,
    total: int,
    max_lr: float,
    pct: float = 0.3,
    div: float = 25.0,
    final_div: float = 1e4,
    three_phase: bool = False,
    anneal: str = "cos",
    base_m: float = 0.85,
    max_m: float = 0.95,
) -> tuple[float, float]:
    """(lr, momentum) at ``step`` as torch.optim.lr_scheduler.OneCycleLR.get_lr computes them."""
    initial = max_lr / div
    low = initial / final_div
    if three_phase:
        phases = [
            (float(pct * total) - 1, initial, max_lr, max_m, base_m),
            (float(2 * pct * total) - 2, max_lr, initial, base_m, max_m),
            (total - 1, initial, low, max_m, max_m),
        ]
    else:
        phases = [(float(pct * total) - 1, initial, max_lr, max_m, base_m), (total - 1, max_lr, low, base_m, max_m)]

    def cos(start: float, end: float, x: float) -> float:
        return end + (start - end) / 2.0 * (math.cos(math.pi * x) + 1)

    def linear(start: float, end: float, x: float) -> float:
        return (end - start) * x + start

    f = cos if anneal == "cos" else linear
    start_step = 0.0
    for i, (end_step, lr0, lr1, m0, m1) in enumerate(phases):
        if step <= end_step or i == len(phases) - 1:
            x = (step - start_step) / (end_step - start_step)
            return f(lr0, lr1, x), f(m0, m1, x)
        start_step = end_step
    raise AssertionError


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0},
        {"anneal_strategy": "linear"},
        {"three_phase": True},
        {"three_phase": True, "anneal_strategy": "linear", "pct_start": 0.4},
    ],
    ids=["default", "pct div", "linear", "three_phase", "three_phase linear"],
)
def test_one_cycle_matches_pytorchs_algorithm(kwargs: dict[str, Any]) -> None:
    """Rate and (Adam's β1) momentum at each of the 20 steps the optimizer takes, as PyTorch computes them."""
    optimizer = Adam([mg.Tensor(np.zeros(2), requires_grad=True)], betas=(0.5, 0.99))
    scheduler = OneCycleLR(optimizer, max_lr=0.4, total_steps=20, **kwargs)
    names = {"pct_start": "pct", "div_factor": "div", "final_div_factor": "final_div", "anneal_strategy": "anneal"}
    torch_kwargs = {names.get(k, k): v for k, v in kwargs.items()}
    for t in range(21):  # step() may be called total_steps times
        if t:
            scheduler.step()
        lr, momentum = torch_one_cycle(min(t, 19), 20, 0.4, **torch_kwargs)  # step 20 keeps step 19's values
        assert optimizer.lr == pytest.approx(lr, rel=1e-14, abs=1e-18), t
        assert optimizer.betas[0] == pytest.approx(momentum, rel=1e-14), t
        assert optimizer.betas[1] == 0.99
    with pytest.raises(ValueError, match="tried to step 21 times; total_steps is 20"):
        scheduler.step()


def test_one_cycle_landmarks() -> None:
    """It starts at max_lr/25, peaks at max_lr at step pct·T - 1, and ends at max_lr/25/1e4 at step T - 1."""
    got = rates(OneCycleLR(sgd(), max_lr=2.0, total_steps=100, cycle_momentum=False), 99)
    assert got[0] == pytest.approx(2.0 / 25, rel=1e-15)
    assert max(got) == got[29] == pytest.approx(2.0, rel=1e-15)
    assert got[99] == pytest.approx(2.0 / 25 / 1e4, rel=1e-12)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: SGD([mg.Tensor(np.zeros(2), requires_grad=True)], lr=0.1), "momentum"),
        (lambda: RMSprop([mg.Tensor(np.zeros(2), requires_grad=True)]), "momentum"),
        (lambda: Momentum([mg.Tensor(np.zeros(2), requires_grad=True)], lr=0.1), "beta"),
        (lambda: Lion([mg.Tensor(np.zeros(2), requires_grad=True)]), "betas"),
        (lambda: NAdam([mg.Tensor(np.zeros(2), requires_grad=True)]), "betas"),
    ],
    ids=["SGD", "RMSprop", "Momentum", "Lion", "NAdam"],
)
def test_one_cycle_cycles_the_matching_momentum(make: Callable[[], Optimizer], name: str) -> None:
    """cycle_momentum drives β1 where there are betas, else momentum, else beta: 0.95 at first, 0.85 at the peak."""
    optimizer = make()
    scheduler = OneCycleLR(optimizer, max_lr=0.1, total_steps=10)
    value = optimizer.hyperparameters[name]
    assert (value[0] if name == "betas" else value) == 0.95
    for _ in range(2):  # the peak is at step 0.3·10 - 1 = 2
        scheduler.step()
    value = optimizer.hyperparameters[name]
    assert (value[0] if name == "betas" else value) == pytest.approx(0.85, rel=1e-15)


def test_one_cycle_refuses_an_optimizer_without_momentum() -> None:
    """Adagrad has no momentum to cycle: refused unless cycle_momentum=False."""
    optimizer = Adagrad([mg.Tensor(np.zeros(2), requires_grad=True)])
    with pytest.raises(ValueError, match="cycle_momentum needs an optimizer with betas, momentum or beta; Adagrad"):
        OneCycleLR(optimizer, max_lr=0.1, total_steps=10)
    OneCycleLR(optimizer, max_lr=0.1, total_steps=10, cycle_momentum=False)


def test_one_cycle_takes_epochs_times_steps_per_epoch() -> None:
    """epochs=4, steps_per_epoch=5 is total_steps=20."""
    a = rates(OneCycleLR(sgd(), max_lr=1.0, epochs=4, steps_per_epoch=5, cycle_momentum=False), 20)
    b = rates(OneCycleLR(sgd(), max_lr=1.0, total_steps=20, cycle_momentum=False), 20)
    assert a == b


# ---------------------------------------------------------------------------
# SequentialLR: one schedule after another
# ---------------------------------------------------------------------------


def test_warmup_then_cosine() -> None:
    """LinearLR for 4 steps then cosine over 10: at the milestone the cosine starts at its own step 0."""
    optimizer = sgd(1.0)
    warmup = LinearLR(optimizer, start_factor=0.2, total_iters=4)
    cosine = CosineAnnealingLR(optimizer, T_max=10, eta_min=0.1)
    got = rates(SequentialLR(optimizer, [warmup, cosine], milestones=[4]), 14)
    want = [0.2 + 0.8 * t / 4 for t in range(4)] + [0.1 + 0.9 * (1 + math.cos(math.pi * k / 10)) / 2 for k in range(11)]
    np.testing.assert_allclose(got, want, rtol=1e-14)
    assert warmup.base_lr == cosine.base_lr == 1.0  # both schedules run off the optimizer's original rate


def test_three_schedules_in_a_row() -> None:
    """Constant (LambdaLR of 1), then StepLR from its step 0, then ExponentialLR from its step 0."""
    optimizer = sgd(0.5)
    chain = SequentialLR(
        optimizer,
        [LambdaLR(optimizer, lambda t: 1.0), StepLR(optimizer, 2, gamma=0.5), ExponentialLR(optimizer, 0.8)],
        milestones=[3, 7],
    )
    want = [0.5] * 3 + [0.5 * 0.5 ** (k // 2) for k in range(4)] + [0.5 * 0.8**k for k in range(6)]
    np.testing.assert_allclose(rates(chain, 12), want, rtol=1e-14)


def test_sequential_checks_its_arguments() -> None:
    """Milestones: one fewer than the schedulers, increasing; every scheduler on this optimizer."""
    optimizer, other = sgd(), sgd()
    a, b = ExponentialLR(optimizer, 0.9), ExponentialLR(optimizer, 0.5)
    with pytest.raises(ValueError, match="expected 1 milestones for 2 schedulers"):
        SequentialLR(optimizer, [a, b], milestones=[])
    with pytest.raises(ValueError, match=r"schedulers\[1\] is not a schedule of this optimizer"):
        SequentialLR(optimizer, [a, ExponentialLR(other, 0.5)], milestones=[2])
    with pytest.raises(ValueError, match="milestones must increase"):
        SequentialLR(optimizer, [a, b, ExponentialLR(optimizer, 0.1)], milestones=[3, 3])


def test_one_schedule_drives_one_optimizer() -> None:
    """A schedule built on an optimizer replaces the one built before: the earlier one refuses to step.

    (Stepping both would leave the rate to whichever stepped last, a schedule neither describes.)
    """
    optimizer = sgd(1.0)
    first, second = StepLR(optimizer, 2, gamma=0.5), ExponentialLR(optimizer, 0.5)
    second.step()
    assert optimizer.lr == 0.5
    with pytest.raises(RuntimeError, match=r"StepLR.step: the optimizer is driven by the ExponentialLR .*SequentialLR"):
        first.step()
    with pytest.raises(RuntimeError, match="StepLR.load_state_dict: the optimizer is driven by the ExponentialLR"):
        first.load_state_dict(first.state_dict())
    assert optimizer.lr == 0.5 and first.last_epoch == 0  # refused before anything changed
    second.step()
    assert optimizer.lr == 0.25
    # A schedule built again (a notebook cell run twice) drives the optimizer, and is the same schedule: its
    # base is the rate before any schedule (1.0), not the rate the earlier one had reached (0.25).
    third = ExponentialLR(optimizer, 0.5)
    assert third.base_lr == 1.0 and optimizer.lr == 1.0
    with pytest.raises(RuntimeError, match="driven by the ExponentialLR"):
        second.step()
    third.step()
    assert optimizer.lr == 0.5
    # A rate set by hand is a new base.
    optimizer.lr = 0.3
    assert StepLR(optimizer, 2).base_lr == 0.3


def test_the_schedules_of_a_sequence_share_the_rate_before_any_schedule_in_any_order() -> None:
    """Built warm-up first but listed second, the warm-up's step 0 (0.1·0.1) was taken as the decay's base.

    PyTorch's rates: 0.1, 0.09, 0.081, then the warm-up from 0.01 (each schedule's initial_lr is the optimizer's
    rate before the first one).
    """
    optimizer = sgd(0.1)
    warmup = LinearLR(optimizer, start_factor=0.1, total_iters=4)
    decay = ExponentialLR(optimizer, 0.9)
    got = rates(SequentialLR(optimizer, [decay, warmup], milestones=[3]), 6)
    want = [0.1, 0.1 * 0.9, 0.1 * 0.81] + [0.1 * (0.1 + 0.9 * k / 4) for k in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-14)


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


def test_a_part_of_a_sequence_is_stepped_through_it() -> None:
    """The schedules inside a SequentialLR run at their turn; stepping one directly is refused, naming the whole."""
    optimizer = sgd(1.0)
    warmup, decay = LinearLR(optimizer, 0.5, total_iters=2), ExponentialLR(optimizer, 0.5)
    chain = SequentialLR(optimizer, [warmup, decay], milestones=[2])
    with pytest.raises(RuntimeError, match="one part of a SequentialLR.*call the SequentialLR's step instead"):
        warmup.step()
    assert rates(chain, 4) == [0.5, 0.75, 1.0, 0.5, 0.25]


# ---------------------------------------------------------------------------
# Resume: bit-identical with saved optimizer and scheduler state
# ---------------------------------------------------------------------------

X = np.random.default_rng(3).normal(size=(64, 4))
Y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64)

RESUMABLE: dict[str, Callable[[Optimizer], LRScheduler]] = {
    "warmup then cosine": lambda o: SequentialLR(
        o, [LinearLR(o, start_factor=0.1, total_iters=10), CosineAnnealingLR(o, T_max=90)], milestones=[10]
    ),
    "onecycle with momentum": lambda o: OneCycleLR(o, max_lr=0.05, total_steps=100),
    "step": lambda o: StepLR(o, step_size=15, gamma=0.7),
}


def train(model: mg.nn.Module, optimizer: Optimizer, scheduler: LRScheduler, steps: int) -> None:
    """``steps`` full-batch steps of cross-entropy, the scheduler stepped after each optimizer step."""
    for _ in range(steps):
        optimizer.zero_grad()
        mg.nn.cross_entropy(model(mg.Tensor(X, dtype=np.float32)), Y).backward()
        optimizer.step()
        scheduler.step()


ORDERS = ["optimizer, scheduler", "scheduler, optimizer", "optimizer, then the scheduler is built"]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("name", RESUMABLE)
def test_resume_with_a_schedule_is_bit_identical(name: str, order: str, tmp_path: Path) -> None:
    """100 steps in one go equal 50, mg.save, fresh model/optimizer/scheduler, mg.load, 50 more: every bit.

    Whatever the order of loading; even when the scheduler is built after the
    optimizer got its saved (scheduled) rate, which it would take as its base.
    """
    make = RESUMABLE[name]
    mg.manual_seed(0)
    straight = mg.nn.MLP([4, 8, 2], activation="tanh")
    optimizer = SGD(straight.parameters(), lr=0.05, momentum=0.9)
    scheduler = make(optimizer)
    train(straight, optimizer, scheduler, 100)
    final_lr = optimizer.lr

    mg.manual_seed(0)
    first = mg.nn.MLP([4, 8, 2], activation="tanh")
    optimizer = SGD(first.parameters(), lr=0.05, momentum=0.9)
    scheduler = make(optimizer)
    train(first, optimizer, scheduler, 50)
    state = {"model": first.state_dict(), "optim": optimizer.state_dict(), "sched": scheduler.state_dict()}
    mg.save(state, tmp_path / "run.npz")

    mg.manual_seed(7)  # everything must come from the file
    resumed = mg.nn.MLP([4, 8, 2], activation="tanh")
    optimizer = SGD(resumed.parameters(), lr=0.05, momentum=0.9)
    checkpoint = mg.load(tmp_path / "run.npz")
    resumed.load_state_dict(checkpoint["model"])
    if order == ORDERS[0]:
        scheduler = make(optimizer)
        optimizer.load_state_dict(checkpoint["optim"])
        scheduler.load_state_dict(checkpoint["sched"])
    elif order == ORDERS[1]:
        scheduler = make(optimizer)
        scheduler.load_state_dict(checkpoint["sched"])
        optimizer.load_state_dict(checkpoint["optim"])
    else:
        optimizer.load_state_dict(checkpoint["optim"])
        scheduler = make(optimizer)  # its base is now the saved rate, and step 0 is applied to it...
        scheduler.load_state_dict(checkpoint["sched"])  # ...until the saved base and step are restored
    assert scheduler.last_epoch == 50
    train(resumed, optimizer, scheduler, 50)

    assert optimizer.lr == final_lr
    for (key, p), q in zip(straight.named_parameters(), resumed.parameters()):
        assert np.array_equal(p.data, q.data), key


def test_scheduler_state_dict_is_rejected_when_malformed() -> None:
    """A bad state is a ValueError naming what is wrong, and the scheduler keeps its own."""
    scheduler = StepLR(sgd(), step_size=2)
    scheduler.step()
    for bad, message in [
        ({"last_epoch": -1, "base_lr": 0.5}, "last_epoch must be a non-negative integer"),
        ({"last_epoch": 2.5, "base_lr": 0.5}, "last_epoch must be a non-negative integer"),
        ({"last_epoch": 2, "base_lr": float("nan")}, "base_lr must be a finite number"),
        ({"last_epoch": 2, "base_lr": "0.5"}, "base_lr must be a finite number"),
        ({"last_epoch": 2}, "expected a mapping with 'class', 'last_epoch', 'base_lr' and 'settings'"),
        ([2, 0.5], "expected a mapping"),
        ({"last_epoch": [[1], [1, 2]], "base_lr": 0.5}, "must be single numbers"),
        ({"last_epoch": None, "base_lr": 0.5}, "last_epoch must be a non-negative integer"),
    ]:
        with pytest.raises(ValueError, match=message):
            scheduler.load_state_dict(bad)  # type: ignore[arg-type]
        assert scheduler.state_dict() == {"class": "StepLR", "last_epoch": 1, "base_lr": 0.5,
                                          "settings": {"step_size": 2, "gamma": 0.1}}


def test_a_state_from_a_schedule_built_otherwise_is_refused_and_an_old_one_without_settings_loads() -> None:
    """PyTorch restores a schedule's settings from its state; here they are checked, so a mismatch is an error."""
    source = OneCycleLR(sgd(), max_lr=1.0, total_steps=20)
    for _ in range(5):
        source.step()
    state = source.state_dict()
    other = OneCycleLR(sgd(), max_lr=2.0, total_steps=20)
    with pytest.raises(ValueError, match=r"OneCycleLR.load_state_dict: the state was saved by a schedule with "
                                         r"max_lr=1.0, this one has max_lr=2.0"):
        other.load_state_dict(state)
    assert other.last_epoch == 0
    with pytest.raises(ValueError, match=r"the state was saved by 'StepLR', not by CosineAnnealingLR; load it"):
        CosineAnnealingLR(sgd(), T_max=10).load_state_dict(StepLR(sgd(), step_size=2).state_dict())
    unnamed = {k: v for k, v in StepLR(sgd(), step_size=2).state_dict().items() if k != "class"}  # (older states)
    with pytest.raises(ValueError, match=r"saved by another kind of schedule \(settings \['gamma', 'step_size'\]"):
        CosineAnnealingLR(sgd(), T_max=10).load_state_dict(unnamed)
    same = OneCycleLR(sgd(), max_lr=1.0, total_steps=20)
    same.load_state_dict(state)
    assert same.last_epoch == 5 and same.optimizer.lr == source.optimizer.lr
    old = StepLR(sgd(), step_size=2)
    old.load_state_dict({"last_epoch": 3, "base_lr": 0.5})  # saved before states held settings
    assert old.last_epoch == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pct_start": 0.1}, "pct_start=0.3, this one has pct_start=0.1"),
        ({"div_factor": 5.0}, "div_factor=25.0, this one has div_factor=5.0"),
        ({"final_div_factor": 10.0}, "final_div_factor=10000.0, this one has final_div_factor=10.0"),
        ({"anneal_strategy": "linear"}, "linear_anneal=False, this one has linear_anneal=True"),
        ({"base_momentum": 0.5}, "base_momentum=0.85, this one has base_momentum=0.5"),
        ({"max_momentum": 0.9}, "max_momentum=0.95, this one has max_momentum=0.9"),
        ({"three_phase": True}, "three_phase=False, this one has three_phase=True"),
    ],
)
def test_every_setting_of_a_one_cycle_is_checked(change: dict[str, Any], message: str) -> None:
    """Each of these loaded silently before (only total_steps, max_lr and cycle_momentum were kept): lr 0.30 vs 1.00."""
    state = OneCycleLR(sgd(momentum=0.9), max_lr=1.0, total_steps=100).state_dict()
    other = OneCycleLR(sgd(momentum=0.9), max_lr=1.0, total_steps=100, **change)
    with pytest.raises(ValueError, match=f"saved by a schedule with {re.escape(message)}"):
        other.load_state_dict(state)


def test_a_sequence_checks_the_settings_of_its_schedules_and_survives_a_checkpoint(tmp_path: Path) -> None:
    """A SequentialLR kept only its milestones: a [LinearLR, Cosine] state loaded into [Exponential, StepLR]."""
    def build(kinds: str) -> SequentialLR:
        o = sgd(0.1)
        parts = ([LinearLR(o, 0.1, total_iters=5), CosineAnnealingLR(o, T_max=95)] if kinds == "warm-cos"
                 else [LinearLR(o, 0.1, total_iters=5), CosineAnnealingLR(o, T_max=50)] if kinds == "warm-cos50"
                 else [ExponentialLR(o, 0.9), StepLR(o, 10)])
        return SequentialLR(o, parts, milestones=[5])
    source = build("warm-cos")
    for _ in range(7):
        source.step()
    mg.save({"schedule": source.state_dict()}, tmp_path / "s.npz")
    state = mg.load(tmp_path / "s.npz")["schedule"]
    with pytest.raises(ValueError, match="saved by another kind of schedule"):
        build("exp-step").load_state_dict(state)
    with pytest.raises(ValueError, match=r"T_max of schedulers\[1\]=95, this one has T_max of schedulers\[1\]=50"):
        build("warm-cos50").load_state_dict(state)
    resumed = build("warm-cos")
    resumed.load_state_dict(state)
    assert resumed.last_epoch == 7 and resumed.optimizer.lr == source.optimizer.lr


def test_states_saved_before_every_setting_was_kept_still_load() -> None:
    """A OneCycleLR or SequentialLR state of the version that kept fewer settings was refused as another kind."""
    cycle = OneCycleLR(sgd(0.1, momentum=0.9), max_lr=0.5, total_steps=20)
    old = {"last_epoch": 3, "base_lr": 0.1, "settings": {"total_steps": 20, "max_lr": 0.5, "cycle_momentum": True}}
    cycle.load_state_dict(old)
    assert cycle.last_epoch == 3 and cycle.optimizer.lr == cycle.lr_at(3)
    with pytest.raises(ValueError, match="saved by a schedule with max_lr=0.9, this one has max_lr=0.5"):
        OneCycleLR(sgd(0.1, momentum=0.9), max_lr=0.5, total_steps=20).load_state_dict(
            {**old, "settings": {**old["settings"], "max_lr": 0.9}})
    o = sgd(0.1)
    chain = SequentialLR(o, [LinearLR(o, 0.1, total_iters=5), CosineAnnealingLR(o, T_max=10)], milestones=[5])
    chain.load_state_dict({"last_epoch": 3, "base_lr": 0.1, "settings": {"milestones": [5]}})
    assert chain.last_epoch == 3


def test_the_base_of_a_later_schedule_does_not_depend_on_the_earlier_ones_being_alive() -> None:
    """After a OneCycleLR, a StepLR started from 0.1 if the OneCycleLR was kept and 0.04 if not (PyTorch: 0.04)."""
    bases = []
    for keep in (True, False):
        optimizer = sgd(0.1, momentum=0.9)
        cycle = OneCycleLR(optimizer, max_lr=1.0, total_steps=10)  # starts at max_lr / 25 = 0.04
        if not keep:
            del cycle
        bases.append(StepLR(optimizer, 2).base_lr)
    assert bases == [0.04, 0.04]


def test_a_refused_step_changes_nothing() -> None:
    """A value the optimizer refuses mid-run left the rate changed and the count advanced (then saved as such)."""
    optimizer = sgd(0.1)
    schedule = LambdaLR(optimizer, lambda t: 1.0 if t < 2 else -1.0)
    schedule.step()
    with pytest.raises(ValueError, match=r"LambdaLR.step: invalid lr_lambda\(2\): expected a number >= 0"):
        schedule.step()
    assert (schedule.last_epoch, optimizer.lr, schedule.get_last_lr()) == (1, 0.1, [0.1])
    cycle = OneCycleLR(sgd(0.1, momentum=0.9), max_lr=1.0, total_steps=4)
    for _ in range(4):
        cycle.step()
    lr, momentum = cycle.optimizer.lr, cycle.optimizer.momentum
    with pytest.raises(ValueError, match="OneCycleLR: tried to step 5 times; total_steps is 4"):
        cycle.step()
    assert (cycle.last_epoch, cycle.optimizer.lr, cycle.optimizer.momentum) == (4, lr, momentum)
    OneCycleLR(sgd(0.1, momentum=0.9), max_lr=1.0, total_steps=4).load_state_dict(cycle.state_dict())


def test_a_one_cycle_whose_momentum_the_optimizer_refuses_is_refused_when_built() -> None:
    """Nesterov SGD needs momentum > 0: base_momentum=0 was accepted, then the run failed at step 2."""
    optimizer = sgd(0.1, momentum=0.9, nesterov=True)
    with pytest.raises(ValueError, match=r"OneCycleLR: cycle_momentum would set SGD's momentum to 0.0, which it "
                                         r"refuses \(invalid nesterov"):
        OneCycleLR(optimizer, max_lr=1.0, total_steps=10, base_momentum=0.0)
    assert (optimizer.lr, optimizer.momentum) == (0.1, 0.9)  # untouched
    adam = Adam([mg.Tensor(np.zeros(3), requires_grad=True)], lr=0.1, betas=(0.9, 0.99))
    OneCycleLR(adam, max_lr=1.0, total_steps=10)  # betas[0] from 0.95 to 0.85: accepted
    assert adam.betas == (0.95, 0.99)


# ---------------------------------------------------------------------------
# Checks of the settings, and the lab's spec strings
# ---------------------------------------------------------------------------

INVALID = [
    (lambda o: StepLR(o, step_size=0), "invalid step_size: expected an integer >= 1, got 0"),
    (lambda o: StepLR(o, step_size=2.0), "invalid step_size: expected an integer >= 1"),
    (lambda o: StepLR(o, step_size=2, gamma=-0.5), "invalid gamma: expected a number > 0"),
    (lambda o: ExponentialLR(o, gamma=float("nan")), "invalid gamma: expected a number > 0"),
    (lambda o: MultiStepLR(o, milestones=3), "invalid milestones"),
    (lambda o: CosineAnnealingLR(o, T_max=0), "invalid T_max"),
    (lambda o: CosineAnnealingLR(o, T_max=5, eta_min="0"), "invalid eta_min: expected a number"),
    (lambda o: LinearLR(o, start_factor=0.0), "invalid start_factor"),
    (lambda o: LinearLR(o, start_factor=1.5), "invalid start_factor: expected a number in \\(0, 1\\]"),
    (lambda o: LambdaLR(o, 0.5), "lr_lambda must be a function"),
    (lambda o: LambdaLR(o, lambda t: -1.0), r"invalid lr_lambda\(0\): expected a number >= 0"),
    (lambda o: OneCycleLR(o, max_lr=0.1), "give total_steps, or epochs and steps_per_epoch"),
    (lambda o: OneCycleLR(o, max_lr=-0.1, total_steps=10), "invalid max_lr"),
    (lambda o: OneCycleLR(o, max_lr=0.1, total_steps=3), "a phase would be empty"),
    (lambda o: OneCycleLR(o, max_lr=0.1, total_steps=10, anneal_strategy="exp"), "invalid anneal_strategy"),
    (lambda o: OneCycleLR(o, max_lr=0.1, total_steps=10, cycle_momentum=1), "invalid cycle_momentum"),
]


@pytest.mark.parametrize("build, message", INVALID, ids=[m.split(":")[0] for _, m in INVALID])
def test_invalid_settings_are_refused_naming_them(build: Callable[[Optimizer], LRScheduler], message: str) -> None:
    """Each bad setting is a TypeError or ValueError whose message names it; the optimizer's rate is untouched."""
    optimizer = sgd(0.5, momentum=0.9)
    with pytest.raises((TypeError, ValueError), match=message):
        build(optimizer)
    assert optimizer.lr == 0.5 or "lr_lambda" in message  # LambdaLR fails while applying step 0


def test_a_schedule_needs_an_optimizer() -> None:
    """Passing something else is a TypeError saying what was expected."""
    with pytest.raises(TypeError, match="expected a minigrad.optim.Optimizer, got a list"):
        StepLR([], step_size=2)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "spec, formula",
    [
        ("cosine", lambda t: 0.5 * (1 + math.cos(math.pi * t / 20)) / 2),
        ("step:5:0.5", lambda t: 0.5 * 0.5 ** (t // 5)),
        (" step:3:0.1 ", lambda t: 0.5 * 0.1 ** (t // 3)),
        ("warmup:4", lambda t: 0.5 * min(1.0, (t + 1) / 4)),
        ("warmup:1", lambda t: 0.5),
        ("onecycle", lambda t: torch_one_cycle(min(t, 19), 20, 0.5)[0]),
    ],
)
def test_schedule_from_spec(spec: str, formula: Callable[[int], float]) -> None:
    """Each spec string builds the schedule its documentation names, over the run's total steps (here 20)."""
    optimizer = sgd(0.5, momentum=0.9)
    scheduler = schedule_from_spec(spec, optimizer, total_steps=20)
    assert scheduler is not None
    np.testing.assert_allclose(rates(scheduler, 20), [formula(t) for t in range(21)], rtol=1e-13, atol=1e-18)
    assert optimizer.momentum == 0.9  # onecycle from a spec leaves the momentum alone


def test_schedule_from_spec_none_and_errors() -> None:
    """'none' is no schedule; a malformed spec is a ValueError listing the forms, naming the spec."""
    optimizer = sgd(0.5)
    assert schedule_from_spec("none", optimizer, total_steps=10) is None and optimizer.lr == 0.5
    for bad in ["", "cos", "step:5", "step:a:0.5", "step:0:0.5", "step:5:-1", "warmup:0", "warmup:x", "none:1"]:
        with pytest.raises(ValueError, match=f"schedule '{bad}'"):
            schedule_from_spec(bad, optimizer, total_steps=10)
    with pytest.raises(ValueError, match="expected one of none, cosine, step:EVERY:GAMMA, warmup:STEPS or onecycle"):
        schedule_from_spec("linear", optimizer, total_steps=10)
    with pytest.raises(ValueError, match="invalid total_steps"):
        schedule_from_spec("cosine", optimizer, total_steps=0)
    assert optimizer.lr == 0.5


def test_a_schedule_whose_own_numbers_change_loads_its_state() -> None:
    """The settings checked are those its constructor stored, not values it keeps changing (a best loss)."""

    class Plateau(LRScheduler):
        def __init__(self, optimizer, factor=0.5):  # type: ignore[no-untyped-def]
            self.factor, self.best, self.scale = factor, float("inf"), 1.0
            super().__init__(optimizer)

        def lr_at(self, epoch: int) -> float:
            return self.base_lr * self.scale

    s = Plateau(sgd())
    s.best, s.scale = 0.9, 0.5
    s.step()
    state = s.state_dict()
    assert state["settings"] == {"factor": 0.5, "best": float("inf"), "scale": 1.0}
    other = Plateau(sgd())
    other.load_state_dict(state)  # it raised: best=0.9 against inf
    assert other.last_epoch == 1
    with pytest.raises(ValueError, match="factor=0.5, this one has factor=0.25"):
        Plateau(sgd(), factor=0.25).load_state_dict(state)


def test_a_schedule_after_a_one_cycle_inside_a_sequence_starts_where_the_one_cycle_began(tmp_path: Path) -> None:
    """[OneCycleLR, Cosine]: the cosine ran from 0.1, the rate before the cycle; PyTorch runs it from 0.04.

    OneCycleLR with max_lr 1 starts at max_lr / 25 = 0.04, the base PyTorch gives every schedule built after
    it (its initial_lr); a schedule built after the whole sequence takes it too. Each part keeps its own base,
    and a checkpoint keeps each one.
    """
    optimizer = sgd(0.1, momentum=0.9)
    cycle = OneCycleLR(optimizer, max_lr=1.0, total_steps=10)
    cosine = CosineAnnealingLR(optimizer, T_max=10)
    chain = SequentialLR(optimizer, [cycle, cosine], milestones=[10])
    assert (cycle.base_lr, cosine.base_lr, chain.base_lr) == (0.1, 0.04, 0.1)
    got = rates(chain, 15)
    np.testing.assert_allclose(got[:10], [cycle.lr_at(t) for t in range(10)], rtol=0, atol=0)
    np.testing.assert_allclose(got[10:], [0.04 * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(6)], rtol=1e-15)
    assert got[10] == 0.04 and got[15] == pytest.approx(0.02, rel=1e-15)  # (PyTorch 2.13: 0.04 and 0.02)

    mg.save({"schedule": chain.state_dict()}, tmp_path / "s.npz")
    state = mg.load(tmp_path / "s.npz")["schedule"]
    o2 = sgd(0.3, momentum=0.9)  # another rate by hand: the state's bases are the ones that count
    resumed = SequentialLR(o2, [OneCycleLR(o2, max_lr=1.0, total_steps=10), CosineAnnealingLR(o2, T_max=10)],
                           milestones=[10])
    resumed.load_state_dict(state)
    assert [s.base_lr for s in resumed.schedulers] == [0.1, 0.04] and resumed.last_epoch == 15
    assert o2.lr == optimizer.lr
    resumed.step()
    chain.step()
    assert o2.lr == optimizer.lr == pytest.approx(0.04 * (1 + math.cos(math.pi * 6 / 10)) / 2, rel=1e-15)

    after = StepLR(optimizer, 2)
    assert after.base_lr == 0.04


def test_a_sequence_refuses_a_state_with_wrong_bases_and_keeps_its_own() -> None:
    o = sgd(0.1)
    chain = SequentialLR(o, [LinearLR(o, 0.5, total_iters=2), ExponentialLR(o, 0.5)], milestones=[2])
    chain.step()
    state = chain.state_dict()
    assert state["base_lrs"] == [0.1, 0.1]
    for bad in ([0.1], [0.1, -1.0], [0.1, float("nan")], [0.1, "x"]):
        with pytest.raises(ValueError, match=r"SequentialLR.load_state_dict: base_lrs must hold 2 finite rates "
                           r">= 0, one per schedule"):
            chain.load_state_dict({**state, "last_epoch": 3, "base_lrs": bad})
        assert chain.last_epoch == 1 and [s.base_lr for s in chain.schedulers] == [0.1, 0.1]
        assert o.lr == pytest.approx(0.1 * 0.75, rel=1e-15)
    with pytest.raises(ValueError, match="base_lr must be a finite number"):
        chain.load_state_dict({**state, "base_lr": -2.0, "base_lrs": [0.2, 0.2]})
    assert [s.base_lr for s in chain.schedulers] == [0.1, 0.1] and chain.last_epoch == 1
    legacy = {k: v for k, v in state.items() if k != "base_lrs"}  # saved when the parts shared one base
    chain.load_state_dict({**legacy, "base_lr": 0.2, "last_epoch": 3})
    assert [s.base_lr for s in chain.schedulers] == [0.2, 0.2] and o.lr == pytest.approx(0.2 * 0.5, rel=1e-15)


def test_schedules_with_the_same_settings_or_none_refuse_each_others_states() -> None:
    """LambdaLR saves no settings, and its state loaded into any schedule; ExponentialLR and MultiStepLR([]) alike."""
    lam = LambdaLR(sgd(), lambda t: 0.9**t)
    for _ in range(5):
        lam.step()
    cosine = CosineAnnealingLR(sgd(), T_max=10)
    with pytest.raises(ValueError, match=r"saved by 'LambdaLR', not by CosineAnnealingLR"):
        cosine.load_state_dict(lam.state_dict())
    unnamed = {k: v for k, v in lam.state_dict().items() if k != "class"}
    with pytest.raises(ValueError, match=r"saved by another kind of schedule \(settings \[\]; CosineAnnealingLR has"):
        cosine.load_state_dict(unnamed)  # (the check of settings alone let {} through: no legacy settings here)
    assert cosine.last_epoch == 0
    exponential = ExponentialLR(sgd(), gamma=0.5)
    with pytest.raises(ValueError, match=r"saved by 'MultiStepLR', not by ExponentialLR"):
        exponential.load_state_dict(MultiStepLR(sgd(), milestones=[], gamma=0.5).state_dict())
    again = LambdaLR(sgd(), lambda t: 0.9**t)
    again.load_state_dict(lam.state_dict())
    assert again.last_epoch == 5 and again.get_last_lr() == lam.get_last_lr()


def test_a_refused_sequential_load_leaves_the_optimizers_rate_as_it_was() -> None:
    """The first apply (old bases) succeeded, the second (the state's) failed: lr went 0.05 -> 1.0, not back."""
    opt = sgd()
    seq = SequentialLR(opt, [LinearLR(opt, 0.5, total_iters=2), LambdaLR(opt, lambda t: 10.0)], [2])
    lr, last = opt.lr, seq.get_last_lr()
    state = dict(seq.state_dict(), last_epoch=5, base_lrs=[0.1, 1e308])
    with pytest.raises(ValueError, match="SequentialLR.load_state_dict"):
        seq.load_state_dict(state)
    assert opt.lr == lr and seq.get_last_lr() == last and seq.last_epoch == 0
    seq.step()
    fresh = sgd()
    SequentialLR(fresh, [LinearLR(fresh, 0.5, total_iters=2), LambdaLR(fresh, lambda t: 10.0)], [2]).step()
    assert opt.lr == fresh.lr == 0.375  # the schedule goes on as if the load had not been tried


# PyTorch 2.13's ChainedScheduler over SGD(lr=0.5), opt.step() then sched.step(), 12 steps (rate before each step).
TORCH_CHAINED = {
    "warmup_exponential": [0.05, 0.126, 0.1863, 0.23328, 0.269001, 0.29524500000000004, 0.2657205,
                           0.23914845000000004, 0.21523360500000005, 0.19371024450000005, 0.17433922005000005,
                           0.15690529804500006, 0.14121476824050005],
    "step_cosine": [0.5, 0.4877641290737884, 0.45225424859373686, 0.19847315653655914, 0.16362712429686843, 0.125,
                    0.04318643785156579, 0.025763421731720436, 0.011936437851565791, 0.0015294838657764522, 0.0],
    "multistep_linear": [0.25, 0.3125, 0.0375, 0.043750000000000004, 0.05, *[0.005000000000000001] * 8],
}


@pytest.mark.parametrize("case", sorted(TORCH_CHAINED))
def test_chained_scheduler_gives_pytorchs_rates(case: str) -> None:
    opt = sgd()
    parts = {
        "warmup_exponential": lambda: [LinearLR(opt, 0.1, total_iters=5), ExponentialLR(opt, 0.9)],
        "step_cosine": lambda: [StepLR(opt, 3, 0.5), CosineAnnealingLR(opt, T_max=10)],  # (to T_max: past it,
        "multistep_linear": lambda: [MultiStepLR(opt, [2, 5], 0.1), LinearLR(opt, 0.5, 1.0, total_iters=4)],
    }[case]()  # PyTorch's recursive cosine climbs again, as CosineAnnealingLR's docstring says)
    chain = ChainedScheduler(parts)
    rates = [opt.lr]
    for _ in range(len(TORCH_CHAINED[case]) - 1):
        opt.step()
        chain.step()
        rates.append(opt.lr)
    np.testing.assert_allclose(rates, TORCH_CHAINED[case], rtol=1e-13, atol=1e-17)
    assert chain.get_last_lr() == [rates[-1]]


def test_chained_scheduler_is_the_product_of_the_factors_and_drives_its_parts() -> None:
    opt = sgd(lr=0.2)
    warm, lam = LinearLR(opt, 0.5, total_iters=2), LambdaLR(opt, lambda t: 1.0 / (t + 1))
    chain = ChainedScheduler([warm, lam], opt)
    for t in range(5):
        assert opt.lr == pytest.approx(0.2 * warm.lr_at(t) / 0.2 * (1.0 / (t + 1)), rel=1e-15)
        chain.step()
    with pytest.raises(RuntimeError, match=r"this schedule is one part of a ChainedScheduler.*call the "
                                           r"ChainedScheduler's step instead"):
        warm.step()
    with pytest.raises(ValueError, match=r"schedulers\[1\] is a OneCycleLR, which sets the rate itself"):
        other = sgd()
        ChainedScheduler([StepLR(other, 2), OneCycleLR(other, max_lr=1.0, total_steps=10)])
    with pytest.raises(ValueError, match=r"schedulers\[1\] is not a schedule of this optimizer"):
        ChainedScheduler([StepLR(sgd(), 2), StepLR(sgd(), 2)])
    with pytest.raises(TypeError, match="expected a non-empty list of schedulers of one optimizer"):
        ChainedScheduler([])


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


def test_chained_scheduler_resumes_bit_identically_and_refuses_another_chain() -> None:
    def build() -> tuple[SGD, ChainedScheduler]:
        opt = sgd()
        return opt, ChainedScheduler([LinearLR(opt, 0.1, total_iters=5), ExponentialLR(opt, 0.9)])

    opt, chain = build()
    for _ in range(7):
        chain.step()
    state = chain.state_dict()
    assert state["class"] == "ChainedScheduler" and state["base_lrs"] == [0.5, 0.5]
    again_opt, again = build()
    again.load_state_dict(state)
    assert again.last_epoch == 7 and again_opt.lr == opt.lr
    again.step()
    chain.step()
    assert again_opt.lr == opt.lr
    other = sgd()
    different = ChainedScheduler([LinearLR(other, 0.2, total_iters=5), ExponentialLR(other, 0.9)])
    with pytest.raises(ValueError, match=r"start_factor of schedulers\[0\]=0\.1, this one has "):
        different.load_state_dict(state)
    seq_opt = sgd()
    seq = SequentialLR(seq_opt, [LinearLR(seq_opt, 0.1, total_iters=5), ExponentialLR(seq_opt, 0.9)], [5])
    with pytest.raises(ValueError, match=r"saved by 'ChainedScheduler', not by SequentialLR"):
        seq.load_state_dict(state)


def test_a_chain_inside_a_sequence_resumes_its_parts_bases_too() -> None:
    """base_lrs held the outer parts' bases only: a chain inside a SequentialLR, loaded into schedules built on
    another rate, resumed its later parts on that rate (it showed with eta_min > 0; helper 47)."""
    def build(lr: float) -> tuple[SGD, SequentialLR]:
        opt = sgd(lr=lr)
        warm = LinearLR(opt, 0.5, total_iters=2)
        chain = ChainedScheduler([ExponentialLR(opt, 0.9), CosineAnnealingLR(opt, T_max=8, eta_min=0.01)])
        return opt, SequentialLR(opt, [warm, chain], milestones=[2])

    opt, seq = build(0.5)
    for _ in range(4):
        seq.step()
    state = seq.state_dict()
    assert state["base_lrs"] == [0.5, 0.5, 0.5]  # the warm-up's, then each of the chain's parts
    again_opt, again = build(0.2)
    again.load_state_dict(state)
    assert again_opt.lr == opt.lr
    for _ in range(5):
        seq.step()
        again.step()
        assert again_opt.lr == opt.lr
    older = {**state, "base_lrs": [0.5, 0.5]}  # (one per outer part, as states were saved before)
    old_opt, old = build(0.5)
    old.load_state_dict(older)
    assert old.last_epoch == 4
