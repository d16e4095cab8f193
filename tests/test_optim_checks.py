"""Hyperparameters as attributes, the gradient-shape check of ``step()``, and a hostile ``load_state_dict``.

Every optimizer's hyperparameters are real, annotated attributes: assigning
one (``opt.lr = 0.01``) is checked like the constructor's argument and shows
in ``repr``, ``hyperparameters`` and ``state_dict()``. A state dict from a
file is checked entry by entry, and whatever is wrong with it is a
ValueError naming the entry, with the optimizer left as it was.
"""

from __future__ import annotations

import copy
import re
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import minigrad as mg
from minigrad.optim import SGD, Adagrad, Adam, AdamW, Lion, Momentum, NAdam, Optimizer, RMSprop, check_number

BUILT_IN: list[type[Optimizer]] = [SGD, Momentum, Adam, AdamW, NAdam, RMSprop, Adagrad, Lion]


def params() -> list[mg.Tensor]:
    """A (2, 3) and a (2,) parameter, float64."""
    return [
        mg.Tensor(np.array([[0.5, -1.0, 2.0], [0.0, 0.25, -0.75]]), requires_grad=True),
        mg.Tensor(np.array([1.0, -1.0]), requires_grad=True),
    ]


def build(cls: type[Optimizer]) -> Optimizer:
    """``cls`` on fresh parameters with its defaults (SGD and Momentum need a rate; SGD gets momentum)."""
    if cls is SGD:
        return SGD(params(), lr=0.1, momentum=0.9)
    if cls is Momentum:
        return Momentum(params(), lr=0.1)
    return cls(params())


def stepped(cls: type[Optimizer], steps: int = 2) -> Optimizer:
    """``build(cls)`` after ``steps`` steps with fixed gradients, so that every buffer exists."""
    optimizer = build(cls)
    for t in range(steps):
        for p in optimizer.params:
            p.grad = np.full(p.shape, 0.5 + t)
        optimizer.step()
    return optimizer


@pytest.mark.parametrize("cls", BUILT_IN, ids=lambda c: c.__name__)
def test_every_hyperparameter_is_an_annotated_attribute(cls: type[Optimizer]) -> None:
    """Each hyperparameter is annotated on the class (so type checkers see ``opt.lr``) and set on the instance."""
    optimizer = build(cls)
    hints = typing.get_type_hints(cls)
    for name, value in optimizer.hyperparameters.items():
        assert name in hints, f"{cls.__name__}.{name} is not annotated"
        assert getattr(optimizer, name) == value


@pytest.mark.parametrize("cls", BUILT_IN, ids=lambda c: c.__name__)
def test_assigning_lr_shows_in_repr_state_dict_and_the_next_step(cls: type[Optimizer]) -> None:
    """After ``opt.lr = x``, repr, hyperparameters and state_dict show x, and the step uses x."""
    optimizer, twin = build(cls), build(cls)
    optimizer.lr = 0.0123  # type: ignore[attr-defined]
    assert "lr=0.0123" in repr(optimizer)
    assert optimizer.hyperparameters["lr"] == 0.0123
    assert optimizer.state_dict()["hyperparameters"]["lr"] == 0.0123
    fresh = type(twin)(twin.params, **{**twin.hyperparameters, "lr": 0.0123})  # built with the rate from the start
    for opt in (optimizer, fresh):
        for p in opt.params:
            p.grad = np.full(p.shape, 0.5)
        opt.step()
    for p, q in zip(optimizer.params, fresh.params):
        assert np.array_equal(p.data, q.data)


def test_assignment_is_checked_and_a_refused_value_changes_nothing() -> None:
    """A bad assignment raises the constructor's message, prefixed with the class and attribute; the old value stays."""
    sgd = SGD(params(), lr=0.1, momentum=0.9, nesterov=True)
    with pytest.raises(ValueError, match=r"SGD\.lr = -1\.0: invalid lr: expected a number >= 0, got -1\.0"):
        sgd.lr = -1.0
    with pytest.raises(TypeError, match=r"SGD\.lr = '0\.5': invalid lr: expected a number"):
        sgd.lr = "0.5"  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"invalid nesterov: expected True or False, got 0\.5"):
        sgd.nesterov = 0.5  # type: ignore[assignment]
    with pytest.raises(ValueError, match=r"Nesterov momentum needs momentum > 0"):
        sgd.momentum = 0.0  # the checks across hyperparameters run too
    assert (sgd.lr, sgd.momentum, sgd.nesterov) == (0.1, 0.9, True)
    adam = Adam(params())
    adam.betas = [0.5, 0.6]  # type: ignore[assignment]  # stored as the constructor stores it: a tuple
    assert adam.betas == (0.5, 0.6) and "betas=(0.5, 0.6)" in repr(adam)
    with pytest.raises(ValueError, match=r"invalid betas\[1\]"):
        adam.betas = (0.5, 1.0)
    assert adam.betas == (0.5, 0.6)



def test_assignment_checks_without_the_parameters_and_asks_them_when_a_check_fails() -> None:
    """An assignment runs the constructor on a stand-in parameter list (a schedule assigns lr every step).

    A subclass whose constructor looks at the parameters before ``super().__init__`` still gets the real ones
    when the stand-in is refused, so its verdict and its message are the ones that count.
    """
    seen: list[int] = []

    class ByShape(Optimizer):
        lr: float

        def __init__(self, params: Any, lr: float = 0.1) -> None:
            params = list(params)
            seen.append(len(params))
            if lr > 1 and any(p.data.ndim > 1 for p in params):
                raise ValueError(f"invalid lr: {lr} is too large for a matrix")
            check = mg.optim.check_number("lr", lr)
            super().__init__(params, lr=check)

        def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
            w -= self.lr * g

    opt = ByShape(params())
    seen.clear()
    opt.lr = 0.5  # the stand-in is empty: list() of it is [], which Optimizer refuses, so the real ones are asked
    assert opt.lr == 0.5 and seen == [0, 2]
    with pytest.raises(ValueError, match=r"ByShape\.lr = 2\.0: invalid lr: 2\.0 is too large for a matrix"):
        opt.lr = 2.0
    assert opt.lr == 0.5

    sgd = SGD(params(), lr=0.1, momentum=0.9)
    state = copy.deepcopy(sgd.state)
    sgd.lr = 0.25
    assert sgd.lr == 0.25 and sgd.params and sgd.state == state  # the optimizer itself is untouched but for lr

def test_other_attributes_are_not_checked_as_hyperparameters() -> None:
    """Only hyperparameters go through the constructor; the optimizer's own attributes are plain."""
    optimizer = SGD(params(), lr=0.1)
    optimizer.step_count = 7
    optimizer.note = "mine"  # type: ignore[attr-defined]
    assert optimizer.step_count == 7 and "note" not in optimizer.hyperparameters


# ---------------------------------------------------------------------------
# step() and a gradient of the wrong shape
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_grad", [np.zeros((1, 2)), np.zeros(1), np.zeros(()), np.zeros((2, 1))], ids=["(1, 2)", "(1,)", "()", "(2, 1)"]
)
def test_step_refuses_a_grad_of_another_shape_before_any_update(bad_grad: np.ndarray) -> None:
    """A hand-set .grad that would broadcast is refused with the parameter's index and both shapes; nothing moves."""
    optimizer = Adam(params())
    w, b = optimizer.params
    before = (w.data.copy(), b.data.copy())
    w.grad, b.grad = np.ones(w.shape), bad_grad
    message = rf"Adam\.step: parameter 1 has shape \(2,\) but its \.grad has shape {re.escape(str(bad_grad.shape))}"
    with pytest.raises(ValueError, match=message):
        optimizer.step()
    assert np.array_equal(w.data, before[0]) and np.array_equal(b.data, before[1])  # not even parameter 0
    assert optimizer.step_count == 0 and optimizer.state == [{}, {}]


def test_step_refuses_a_grad_that_is_not_an_array() -> None:
    """A list or a Tensor set as .grad is a TypeError naming the parameter."""
    optimizer = SGD(params(), lr=0.1)
    w, _ = optimizer.params
    w.grad = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"parameter 0's \.grad is a list"):
        optimizer.step()



def test_an_update_that_fails_midway_still_marks_what_it_changed() -> None:
    """A graph that saved a parameter an update already changed is refused, though step() raised after it."""

    class FailsOnSecond(Optimizer):
        lr: float

        def __init__(self, params: Any, lr: float = 0.1) -> None:
            super().__init__(params, lr=check_number("lr", lr))

        def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
            if w.ndim == 1:
                raise RuntimeError("the rule fails on the bias")
            w -= self.lr * g

    w, b = params()
    (w.sum() + b.sum()).backward()
    loss = (w * w).sum()  # saves w for its backward
    with pytest.raises(RuntimeError, match="fails on the bias"):
        FailsOnSecond([w, b]).step()
    with pytest.raises(RuntimeError, match=r"backward of mul: input 0 .* modified in place"):
        loss.backward()

# ---------------------------------------------------------------------------
# load_state_dict against a hostile state
# ---------------------------------------------------------------------------


def unknown_buffer(state: dict[str, Any]) -> None:
    """A buffer no optimizer of this class keeps (a misspelt velocity)."""
    state["state"]["0"]["velocity"] = state["state"]["0"]["v"]


def fractional_flag(state: dict[str, Any]) -> None:
    """nesterov = 0.5: truthy, but not a flag."""
    state["hyperparameters"]["nesterov"] = 0.5


def integer_flag(state: dict[str, Any]) -> None:
    """nesterov = 1 (an int, not a bool)."""
    state["hyperparameters"]["nesterov"] = np.array(1)


def arabic_indic_zero(state: dict[str, Any]) -> None:
    """Parameter 0's entry under '\u0660' (ARABIC-INDIC DIGIT ZERO, which int() reads as 0)."""
    state["state"]["\u0660"] = state["state"].pop("0")


def padded_index(state: dict[str, Any]) -> None:
    """'01' is not how state_dict() writes parameter 1."""
    state["state"]["01"] = state["state"].pop("1")


def integer_index(state: dict[str, Any]) -> None:
    """An int key instead of '0'."""
    state["state"][0] = state["state"].pop("0")


def not_a_mapping(state: dict[str, Any]) -> None:
    """The hyperparameters as a list."""
    state["hyperparameters"] = [0.1, 0.9]


def entry_not_a_mapping(state: dict[str, Any]) -> None:
    """Parameter 0's entry is an array."""
    state["state"]["0"] = np.zeros(3)


def entry_without_step(state: dict[str, Any]) -> None:
    """Parameter 1's entry has lost its step."""
    del state["state"]["1"]["step"]


def string_buffer(state: dict[str, Any]) -> None:
    """A buffer holding text."""
    state["state"]["0"]["v"] = "zeros"


def string_step(state: dict[str, Any]) -> None:
    """A step count holding text."""
    state["state"]["0"]["step"] = np.array("2")


def float_step(state: dict[str, Any]) -> None:
    """A fractional step count."""
    state["state"]["0"]["step"] = 2.5


def string_lr(state: dict[str, Any]) -> None:
    """A learning rate holding text."""
    state["hyperparameters"]["lr"] = "0.1"


def object_lr(state: dict[str, Any]) -> None:
    """A learning rate that is some object."""
    state["hyperparameters"]["lr"] = object()


def vector_lr(state: dict[str, Any]) -> None:
    """A learning rate with two values."""
    state["hyperparameters"]["lr"] = np.array([0.1, 0.2])


def extra_top_level(state: dict[str, Any]) -> None:
    """An entry state_dict() never writes."""
    state["param_groups"] = {}


def state_not_a_mapping(state: dict[str, Any]) -> None:
    """'state' as a list of entries."""
    state["state"] = [state["state"]["0"], state["state"]["1"]]


def ragged_step_count(state: dict[str, Any]) -> None:
    """A step count numpy cannot even make an array of."""
    state["step_count"] = [[1], [1, 2]]


def none_step_count(state: dict[str, Any]) -> None:
    """No step count, as None."""
    state["step_count"] = None


HOSTILE = [
    (unknown_buffer, r"unknown buffer 0\.'velocity'; SGD keeps \('step', 'v'\)"),
    (fractional_flag, r"invalid nesterov: expected True or False, got 0\.5"),
    (integer_flag, r"invalid nesterov: expected True or False, got 1"),
    (arabic_indic_zero, r"state for parameter '\u0660', but there are 2 parameters"),
    (padded_index, r"state for parameter '01'"),
    (integer_index, r"state for parameter 0, but"),
    (not_a_mapping, r"hyperparameters list do not match"),
    (entry_not_a_mapping, r"state 0 must be a dict holding its 'step'"),
    (entry_without_step, r"state 1 must be a dict holding its 'step'"),
    (string_buffer, r"buffer 0\.v has not an array"),
    (string_step, r"0\.step must be a non-negative integer"),
    (float_step, r"0\.step must be a non-negative integer"),
    (string_lr, r"hyperparameter lr must be stored as numbers"),
    (object_lr, r"hyperparameter lr must be stored as numbers"),
    (vector_lr, r"hyperparameter lr must be a single value"),
    (extra_top_level, r"unknown entries \['param_groups'\]"),
    (state_not_a_mapping, r"'state' must map parameter indices to dicts, got a list"),
    (ragged_step_count, r"step_count must be a non-negative integer"),
    (none_step_count, r"step_count must be a non-negative integer"),
]


@pytest.mark.parametrize("corrupt, message", HOSTILE, ids=[c.__name__ for c, _ in HOSTILE])
def test_hostile_state_is_a_value_error_naming_the_entry(
    corrupt: Callable[[dict[str, Any]], None], message: str
) -> None:
    """Each corruption is a ValueError (never a TypeError or AttributeError) and the optimizer is unchanged."""
    optimizer = stepped(SGD)
    before = optimizer.state_dict()
    bad = copy.deepcopy(before)
    corrupt(bad)
    with pytest.raises(ValueError, match=message) as info:
        optimizer.load_state_dict(bad)
    assert type(info.value) is ValueError
    after = optimizer.state_dict()
    assert after["hyperparameters"] == before["hyperparameters"] and after["step_count"] == before["step_count"]
    for key in before["state"]:
        for name, value in before["state"][key].items():
            assert np.array_equal(after["state"][key][name], value)


def test_a_state_that_is_not_a_mapping_is_a_value_error() -> None:
    """None, a list or a number in place of the whole state: ValueError."""
    optimizer = SGD(params(), lr=0.1)
    for bad in (None, [1, 2], 3.0):
        with pytest.raises(ValueError, match="expected a mapping"):
            optimizer.load_state_dict(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", BUILT_IN, ids=lambda c: c.__name__)
def test_each_optimizer_refuses_a_buffer_it_does_not_keep(cls: type[Optimizer]) -> None:
    """Every built-in names its buffers, so an extra one is refused, naming it and the class's list."""
    optimizer = stepped(cls)
    bad = optimizer.state_dict()
    bad["state"]["1"]["m_hat"] = np.zeros(2)
    with pytest.raises(ValueError, match=rf"unknown buffer 1\.'m_hat'; {cls.__name__} keeps \('step'"):
        optimizer.load_state_dict(bad)


@pytest.mark.parametrize("cls", BUILT_IN, ids=lambda c: c.__name__)
def test_each_state_dict_round_trips_through_a_file(cls: type[Optimizer], tmp_path: Path) -> None:
    """mg.save then mg.load then load_state_dict gives back every hyperparameter, buffer and count, bit for bit."""
    optimizer = stepped(cls, steps=3)
    mg.save({"optim": optimizer.state_dict()}, tmp_path / "o.npz")
    fresh = build(cls)
    fresh.load_state_dict(mg.load(tmp_path / "o.npz")["optim"])
    assert fresh.hyperparameters == optimizer.hyperparameters and fresh.step_count == 3
    for mine, theirs in zip(optimizer.state, fresh.state):
        assert set(mine) == set(theirs)
        for key in mine:
            assert np.array_equal(mine[key], theirs[key]) and type(theirs[key]) is type(mine[key])


def test_a_constructor_check_that_fails_names_the_class():
    """check_number names the argument; the class's name is added once, for built-ins and subclasses alike."""
    p = [mg.nn.Parameter(np.zeros(2))]
    with pytest.raises(ValueError, match=r"^SGD: invalid lr: expected a number >= 0, got -1$"):
        mg.optim.SGD(p, lr=-1)
    with pytest.raises(TypeError, match=r"^Adam: invalid betas: expected a pair"):
        mg.optim.Adam(p, betas=0.9)
    with pytest.raises(ValueError, match=r"^StepLR: invalid step_size"):
        mg.optim.lr_scheduler.StepLR(mg.optim.SGD(p, lr=0.1), step_size=0)

    class Mine(mg.optim.SGD):
        pass

    with pytest.raises(ValueError, match=r"^Mine: invalid momentum"):
        Mine(p, lr=0.1, momentum=-1)
    opt = mg.optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match=r"^SGD.lr = -1: invalid lr"):  # an assignment names it once, its own way
        opt.lr = -1
    with pytest.raises(ValueError, match=r"^SGD: got an empty parameter list$"):  # already named: unchanged
        mg.optim.SGD([], lr=0.1)
