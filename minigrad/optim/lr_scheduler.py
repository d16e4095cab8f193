"""Learning-rate schedules, with PyTorch's names and stepping convention.

A schedule is built on an optimizer, takes the optimizer's ``lr`` as its base
rate (or, if that rate is the one an earlier schedule on the optimizer set,
that schedule's base rate: the rate before any schedule), and sets
``optimizer.lr`` (the attribute, checked as any assignment) at once to its
value for step 0. Call ``scheduler.step()`` after each
``optimizer.step()``, once per epoch or once per batch, as you mean to count:

    optimizer = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = mg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=100)
    for epoch in range(100):
        train_one_epoch(model, optimizer)       # optimizer.step() inside
        scheduler.step()                         # lr for the next epoch

Each schedule is a closed form of its step count t (``last_epoch``):
``lr_at(t)`` gives it, and ``step()`` does ``t += 1`` and sets
``optimizer.lr = lr_at(t)``. A schedule changes the optimizer's ``lr`` (and,
for :class:`OneCycleLR` with ``cycle_momentum``, its momentum) and nothing
else. One schedule drives one optimizer: the last one built on it. A schedule
built earlier on the same optimizer refuses to ``step()`` (its rate would be
overwritten by the other's at every step, or overwrite it); to run one
schedule after another, use :class:`SequentialLR`; to run several at once
(a warm-up over a decay), :class:`ChainedScheduler`.

To resume, save ``scheduler.state_dict()`` next to the optimizer's and load
both into freshly built objects: ``load_state_dict`` restores the step count
and base rate and sets the optimizer's rate to the schedule's value at that
step, so the resumed run is bit-identical to an unbroken one whatever order
the two are loaded in.

:func:`schedule_from_spec` builds a schedule from a short string (``cosine``,
``step:EVERY:GAMMA``, ``warmup:STEPS``, ``onecycle``), for command lines.
"""

from __future__ import annotations

import bisect
import difflib
import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from minigrad import engine
from minigrad.optim.optimizer import Optimizer, _NamedChecks, check_flag, check_number

__all__ = [
    "LRScheduler",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "LinearLR",
    "LambdaLR",
    "SequentialLR",
    "ChainedScheduler",
    "OneCycleLR",
    "schedule_from_spec",
]


#: Each optimizer's schedule: the last one built on it (a weak reference, so that neither keeps the other alive).
_DRIVER: weakref.WeakKeyDictionary[Optimizer, weakref.ref[LRScheduler]] = weakref.WeakKeyDictionary()
#: Each scheduled optimizer's rate before any schedule (PyTorch's initial_lr, the base of every later schedule)
#: and the rate a schedule last set: kept with the optimizer, so they do not depend on the schedules' lives.
_RATES: weakref.WeakKeyDictionary[Optimizer, tuple[float, float]] = weakref.WeakKeyDictionary()


def _check_count(name: str, value: Any, low: int = 1) -> int:
    """Return ``value`` if it is an integer >= low (not a bool); otherwise raise naming it."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"invalid {name}: expected an integer >= {low}, got {value!r} ({type(value).__name__})")
    if value < low:
        raise ValueError(f"invalid {name}: expected an integer >= {low}, got {value!r}")
    return int(value)


def _shown(value: Any) -> Any:
    """A saved setting as a number or list (a checkpoint gives it back as an array)."""
    return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value


class LRScheduler(metaclass=_NamedChecks):
    """Base class: a closed-form rate ``lr_at(t)`` of the step count ``t``, applied to ``optimizer.lr``.

    A subclass stores and checks its settings, then calls
    ``super().__init__(optimizer)``, which records ``base_lr`` (the
    optimizer's ``lr`` now) and applies step 0; it defines ``lr_at``.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        name = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: expected a minigrad.optim.Optimizer, got a {type(optimizer).__name__}")
        if "lr" not in optimizer.hyperparameters:
            raise ValueError(f"{name}: {type(optimizer).__name__} has no hyperparameter 'lr' to schedule")
        self.optimizer = optimizer
        lr = optimizer.hyperparameters["lr"]
        rates = _RATES.get(optimizer)
        if rates is not None and lr == rates[1]:
            # The rate is the one a schedule set: this one starts from the rate before any schedule (PyTorch's
            # initial_lr), so the schedules of a SequentialLR share it whatever their order, and a schedule built
            # again is the same schedule. A rate set by hand since is a new base.
            lr = rates[0]
        self.base_lr: float = lr
        self.last_epoch: int = 0
        self._last_lr: float = self.base_lr
        # The settings as the constructor stored them, before any step: what a loaded state is checked against
        # (a value a schedule keeps changing, such as a plateau schedule's best loss, is only its start here).
        self._built_with = self._settings()
        self._apply_whole(0)
        _DRIVER[optimizer] = weakref.ref(self)  # this schedule drives the optimizer from now on

    def lr_at(self, epoch: int) -> float:
        """The learning rate at step ``epoch`` (0 is the rate before the first ``step()``)."""
        raise NotImplementedError(f"{type(self).__name__} must define lr_at(epoch)")

    def _apply(self, epoch: int) -> None:
        """Set the optimizer's rate (and anything else the schedule drives) for step ``epoch``."""
        lr = self.lr_at(epoch)
        setattr(self.optimizer, "lr", lr)  # noqa: B010  (lr is a subclass's attribute; the base class has none)
        self._last_lr = lr

    def _apply_whole(self, epoch: int) -> None:
        """``_apply(epoch)``, or nothing: if the optimizer refuses a value, every value set before it is undone."""
        before, last = self.optimizer.hyperparameters, self._last_lr
        try:
            self._apply(epoch)
        except BaseException:
            for key, value in before.items():  # the values it had, which it accepted then
                object.__setattr__(self.optimizer, key, value)
            self._last_lr = last
            raise
        _RATES[self.optimizer] = (self._base_for_next(), self._last_lr)

    def _base_for_next(self) -> float:
        """The base rate of a schedule built after this one on the same optimizer (PyTorch's initial_lr)."""
        return self.base_lr

    def _check_drives(self, call: str) -> None:
        """Refuse ``call`` on a schedule that another one, built later on the same optimizer, has replaced."""
        driver = _DRIVER.get(self.optimizer)
        other = driver() if driver is not None else None
        if other is not None and other is not self:
            if self in getattr(other, "schedulers", ()):
                raise RuntimeError(
                    f"{type(self).__name__}.{call}: this schedule is one part of a {type(other).__name__}, which "
                    f"runs it at its turn; call the {type(other).__name__}'s {call} instead"
                )
            raise RuntimeError(
                f"{type(self).__name__}.{call}: the optimizer is driven by the {type(other).__name__} built on it "
                "after this schedule (one schedule drives one optimizer: the last one built on it); to run "
                "schedules one after another combine them in a SequentialLR, or at once in a ChainedScheduler, "
                "and step that, or build this one last"
            )

    def step(self) -> None:
        """Advance one step: ``last_epoch += 1``, then ``optimizer.lr = lr_at(last_epoch)``."""
        self._check_drives("step")
        if engine._tape is not None:  # mg.compile is recording a step: replay this call too
            engine._tape.on_call(self.step)
        try:
            self._apply_whole(self.last_epoch + 1)  # (a refused step changes nothing, not even the count)
        except (TypeError, ValueError) as e:
            if str(e).startswith("invalid "):
                raise type(e)(f"{type(self).__name__}.step: {e}") from None
            raise
        self.last_epoch += 1
        if engine._tape is not None:
            engine._tape.on_call_end()

    def get_last_lr(self) -> list[float]:
        """The rate the schedule last set, as a one-element list (PyTorch's, with one parameter group)."""
        return [self._last_lr]

    def state_dict(self) -> dict[str, Any]:
        """The step count and the base rate, all a closed-form schedule needs to resume, and its settings.

        The settings (``step_size``, ``gamma``, ``max_lr``, ``total_steps``, ...: the
        schedule's numbers, as its constructor stored them) are not restored
        by :meth:`load_state_dict` but checked: a state saved by a schedule
        built otherwise is refused, instead of resuming on another schedule.
        ``class`` is the schedule's class name, checked too (two kinds of
        schedule can have the same settings: ExponentialLR and a MultiStepLR
        without milestones both have only ``gamma``; LambdaLR has none).
        """
        return {"class": type(self).__name__, "last_epoch": self.last_epoch, "base_lr": self.base_lr,
                "settings": dict(self._built_with)}

    def _settings(self) -> dict[str, Any]:
        """The schedule's own numeric settings: its public attributes that are numbers or lists of numbers.

        A list of lists (OneCycleLR's phases) is flattened; a setting that is not a number (a function, a
        string) is left to a subclass, which can add it as numbers.
        """
        out: dict[str, Any] = {}
        for key, value in vars(self).items():
            if key.startswith("_") or key in ("optimizer", "base_lr", "last_epoch"):
                continue
            if isinstance(value, (bool, int, float, np.number)):
                out[key] = value
            elif isinstance(value, (list, tuple)) and value:
                flat = [v for item in value for v in (item if isinstance(item, (list, tuple)) else [item])]
                if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in flat):
                    out[key] = flat
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (checked first) and set the optimizer's rate for the restored step."""
        name = f"{type(self).__name__}.load_state_dict"
        self._check_drives("load_state_dict")
        keys = set(state) if isinstance(state, Mapping) else set()
        if not isinstance(state, Mapping) or keys - {"settings", "class"} != {"last_epoch", "base_lr"}:
            got = sorted(state, key=str) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(f"{name}: expected a mapping with 'class', 'last_epoch', 'base_lr' and 'settings', "
                             f"got {got}")
        if "class" in keys and state["class"] != type(self).__name__:  # (absent from states saved before it was)
            raise ValueError(f"{name}: the state was saved by {_shown(state['class'])!r:.80}, not by "
                             f"{type(self).__name__}; load it into the schedule that saved it")
        if "settings" in keys:  # (a state saved before settings were saved has none: it is taken as it is)
            self._check_settings(state["settings"], name)
        try:
            epoch, base_lr = np.asarray(state["last_epoch"]), np.asarray(state["base_lr"])
        except ValueError:  # a ragged list
            shown = f"{dict(state)!r:.80}"
            raise ValueError(f"{name}: last_epoch and base_lr must be single numbers, got {shown}") from None
        if epoch.ndim != 0 or epoch.dtype.kind not in "iu" or epoch < 0:
            raise ValueError(f"{name}: last_epoch must be a non-negative integer, got {state['last_epoch']!r}")
        if base_lr.ndim != 0 or base_lr.dtype.kind not in "iuf" or not np.isfinite(base_lr) or base_lr < 0:
            raise ValueError(f"{name}: base_lr must be a finite number >= 0, got {state['base_lr']!r}")
        old = (self.last_epoch, self.base_lr)
        self.last_epoch, self.base_lr = int(epoch), base_lr.item()
        try:
            self._apply_whole(self.last_epoch)
        except (TypeError, ValueError) as e:
            self.last_epoch, self.base_lr = old
            raise ValueError(f"{name}: {e}") from None

    def _check_settings(self, saved: Any, name: str) -> None:
        """Refuse a state saved by a schedule with other settings (another kind, or other numbers)."""
        mine = self._built_with
        legacy = getattr(self, "_legacy_settings", ())  # (a class with none: every setting must be there)
        if legacy and isinstance(saved, Mapping) and set(saved) == set(legacy) != set(mine):
            mine = {k: v for k, v in mine.items() if k in saved}  # a state of a version that saved fewer settings
        if not isinstance(saved, Mapping) or set(saved) != set(mine):
            got = sorted(saved, key=str) if isinstance(saved, Mapping) else type(saved).__name__
            raise ValueError(
                f"{name}: the state was saved by another kind of schedule (settings {got}; "
                f"{type(self).__name__} has {sorted(mine)}); load it into the schedule that saved it"
            )
        for key, value in mine.items():
            try:
                same = np.array_equal(np.asarray(saved[key], dtype=float), np.asarray(value, dtype=float))
            except (TypeError, ValueError):
                same = False
            if not same:
                raise ValueError(
                    f"{name}: the state was saved by a schedule with {key}={_shown(saved[key])!r}, this one has "
                    f"{key}={value!r}; build the schedule with the settings it was saved with, then load"
                )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, base_lr={self.base_lr!r}, lr={self._last_lr!r})"


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` steps: lr_t = base·γ^⌊t / step_size⌋."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _check_count("step_size", step_size)
        self.gamma = check_number("gamma", gamma, open_low=True)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        """base·γ^⌊t / step_size⌋."""
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each milestone: lr_t = base·γ^(number of milestones <= t)."""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1) -> None:
        if not isinstance(milestones, (list, tuple)):
            raise ValueError(f"invalid milestones: expected a list of integers >= 1, got {milestones!r}")
        self.milestones = sorted(_check_count("milestones[i]", m) for m in milestones)
        self.gamma = check_number("gamma", gamma, open_low=True)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        """base·γ^k, k the milestones passed (a repeated milestone counts twice, as in PyTorch)."""
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every step: lr_t = base·γ^t."""

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = check_number("gamma", gamma, open_low=True)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        """base·γ^t."""
        return self.base_lr * self.gamma**epoch


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from the base rate down to ``eta_min`` over ``T_max`` steps (SGDR without restarts).

    lr_t = η_min + (base - η_min)·(1 + cos(π·t / T_max)) / 2; past T_max it
    climbs back along the same cosine, as PyTorch's does.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max = _check_count("T_max", T_max)
        self.eta_min = check_number("eta_min", eta_min)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        """η_min + (base - η_min)·(1 + cos(π·t / T_max)) / 2."""
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LinearLR(LRScheduler):
    """Scale the rate linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` steps (a warm-up).

    lr_t = base·(s + (e - s)·min(t, total_iters) / total_iters), then base·e.
    Defaults: s = 1/3, e = 1, total_iters = 5.
    """

    def __init__(
        self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5
    ) -> None:
        self.start_factor = check_number("start_factor", start_factor, open_low=True)
        if start_factor > 1:
            raise ValueError(f"invalid start_factor: expected a number in (0, 1], got {start_factor!r}")
        self.end_factor = check_number("end_factor", end_factor)
        if end_factor > 1:
            raise ValueError(f"invalid end_factor: expected a number in [0, 1], got {end_factor!r}")
        self.total_iters = _check_count("total_iters", total_iters)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        """base·(s + (e - s)·min(t, total_iters) / total_iters)."""
        s, e = self.start_factor, self.end_factor
        return self.base_lr * (s + (e - s) * min(epoch, self.total_iters) / self.total_iters)


class LambdaLR(LRScheduler):
    """The base rate times a function of the step: lr_t = base·f(t); f(t) must be a finite number >= 0."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float]) -> None:
        if not callable(lr_lambda):
            raise TypeError(f"LambdaLR: lr_lambda must be a function of the step, got {lr_lambda!r}")
        self.lr_lambda = lr_lambda
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        """base·f(t)."""
        return self.base_lr * check_number(f"lr_lambda({epoch})", self.lr_lambda(epoch))


class _Composite(LRScheduler):
    """A schedule made of other schedules of one optimizer (SequentialLR, ChainedScheduler): what they share.

    The parts keep their own base rates (``[s.base_lr for s in schedulers]``,
    saved as ``base_lrs``); ``base_lr`` is the first part's.
    """

    schedulers: list[LRScheduler]

    def _take(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler]) -> None:
        """Check that ``schedulers`` is a non-empty list of schedules of ``optimizer``, and keep it."""
        name = type(self).__name__
        if not isinstance(schedulers, (list, tuple)) or not schedulers:
            raise ValueError(f"{name}: expected a non-empty list of schedulers, got {schedulers!r}")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler) or s.optimizer is not optimizer:
                raise ValueError(f"{name}: schedulers[{i}] is not a schedule of this optimizer: {s!r}")
        self.schedulers = list(schedulers)

    def _settings(self) -> dict[str, Any]:
        """Its own settings and each part's, as ``T_max of schedulers[1]`` (names a checkpoint keeps)."""
        out = super()._settings()
        for i, s in enumerate(self.schedulers):
            out.update({f"{k} of schedulers[{i}]": v for k, v in s._settings().items()})
        return out

    @property  # type: ignore[override]
    def base_lr(self) -> float:
        """The first schedule's base rate (each keeps its own: ``[s.base_lr for s in schedulers]``)."""
        return self.schedulers[0].base_lr

    @base_lr.setter
    def base_lr(self, value: float) -> None:
        self.schedulers[0].base_lr = value

    def _leaves(self) -> list[LRScheduler]:
        """The parts that are not combined schedules themselves, depth first (a chain's parts inside a sequence)."""
        return [leaf for s in self.schedulers for leaf in (s._leaves() if isinstance(s, _Composite) else [s])]

    def state_dict(self) -> dict[str, Any]:
        """The base class's state, and the base rate of each part (``base_lrs``; a combined part's, each of its)."""
        return {**super().state_dict(), "base_lrs": [s.base_lr for s in self._leaves()]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`, each part's base rate with it (one for all from a state saved without them)."""
        name = f"{type(self).__name__}.load_state_dict"
        bases = None
        leaves = self._leaves()
        parts: list[LRScheduler] = leaves  # whose bases base_lrs holds (the top-level parts in an older state)
        if isinstance(state, Mapping) and "base_lrs" in state:
            state = dict(state)
            bases = np.asarray(state.pop("base_lrs"), dtype=object)
            if bases.shape == (len(self.schedulers),) != (len(leaves),):
                parts = self.schedulers  # (saved before a combined part's own parts' bases were kept)
            if bases.shape != (len(parts),) or not all(
                    isinstance(b, (int, float, np.number)) and not isinstance(b, bool) and 0 <= b < np.inf
                    for b in bases):
                raise ValueError(
                    f"{name}: base_lrs must hold {len(leaves)} finite rates >= 0, one per schedule, got "
                    f"{_shown(bases)!r}; load a state saved by a {type(self).__name__} of the same schedules"
                )
        else:
            parts = self.schedulers
        count, old = self.last_epoch, [p.base_lr for p in leaves]
        # What the optimizer and the schedule hold now: a refused load puts all of it back (the first apply,
        # in the base class's load, succeeds with the old bases of the later parts before the second is tried).
        hyperparameters, last, rates = self.optimizer.hyperparameters, self._last_lr, _RATES.get(self.optimizer)
        super().load_state_dict(state)  # checked, and the count and the first part's base restored
        for part, base in zip(parts, [self.base_lr] * len(parts) if bases is None else bases):
            part.base_lr = float(base)
        try:
            self._apply_whole(self.last_epoch)  # again, with every part's base
        except (TypeError, ValueError) as e:
            self.last_epoch, self._last_lr = count, last
            for part, base in zip(leaves, old):
                part.base_lr = base
            for key, value in hyperparameters.items():
                object.__setattr__(self.optimizer, key, value)
            if rates is not None:
                _RATES[self.optimizer] = rates
            raise ValueError(f"{name}: {e}") from None


class SequentialLR(_Composite):
    """Run ``schedulers`` one after the other, switching at ``milestones`` (one fewer than the schedulers).

    Schedule i runs from milestone i-1 (0 for the first) and starts at its
    own step 0 there: lr_t = schedulers[i].lr_at(t - milestones[i-1]). Each
    keeps the base rate it was built with: the optimizer's rate before any
    schedule, whatever order they were built in, except after a
    ``OneCycleLR``, which passes on the rate it starts from (``max_lr /
    div_factor``, as PyTorch's ``initial_lr``). Typical:
    ``SequentialLR(opt, [LinearLR(opt, 0.1, total_iters=5),
    CosineAnnealingLR(opt, T_max=95)], milestones=[5])``.
    """

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int]) -> None:
        self._take(optimizer, schedulers)
        if not isinstance(milestones, (list, tuple)) or len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR: expected {len(schedulers) - 1} milestones for {len(schedulers)} schedulers, "
                f"got {milestones!r}"
            )
        self.milestones = [_check_count(f"milestones[{i}]", m) for i, m in enumerate(milestones)]
        if any(a >= b for a, b in zip(self.milestones, self.milestones[1:])):
            raise ValueError(f"SequentialLR: milestones must increase, got {list(milestones)}")
        setattr(optimizer, "lr", schedulers[0].base_lr)  # noqa: B010  (undo the schedulers' own step 0)
        super().__init__(optimizer)  # base_lr = the first's (see the property above); the others keep theirs

    #: The settings a state saved by minigrad before its schedules' settings were checked holds.
    _legacy_settings = ("milestones",)

    def _current(self, epoch: int) -> tuple[LRScheduler, int]:
        """The schedule that runs at step ``epoch`` and its own step count there."""
        i = bisect.bisect_right(self.milestones, epoch)
        return self.schedulers[i], epoch - (self.milestones[i - 1] if i else 0)

    def lr_at(self, epoch: int) -> float:
        """schedulers[i].lr_at(t - milestones[i-1]), i the schedule running at t."""
        scheduler, own = self._current(epoch)
        return scheduler.lr_at(own)

    def _apply(self, epoch: int) -> None:
        """Let the running schedule set the optimizer (its momentum too, for a OneCycleLR)."""
        scheduler, own = self._current(epoch)
        scheduler._apply(own)
        self._last_lr = scheduler._last_lr

    def _base_for_next(self) -> float:
        """A OneCycleLR part's starting rate if there is one (PyTorch's initial_lr), else the first part's base."""
        for s in self.schedulers:
            if isinstance(s, OneCycleLR):
                return s._base_for_next()
        return self.schedulers[0]._base_for_next()


class ChainedScheduler(_Composite):
    """Run ``schedulers`` together, at every step: the rate is the base rate times each one's factor.

    lr_t = base·Π_i f_i(t), with f_i(t) = schedulers[i].lr_at(t) / schedulers[i].base_lr
    (0 for a part whose base is 0), base the first part's base rate. So a
    warm-up and a decay run at once: ``ChainedScheduler([LinearLR(opt, 0.1,
    total_iters=5), ExponentialLR(opt, gamma=0.95)])`` gives
    base·warm-up(t)·0.95^t. That is PyTorch's ChainedScheduler for the
    schedules PyTorch can chain (StepLR, MultiStepLR, ExponentialLR,
    LinearLR, and CosineAnnealingLR with eta_min=0 up to T_max), each a
    closed form here. It differs where PyTorch's recursive forms do: its
    cosine past T_max and with eta_min > 0; its LambdaLR, which sets
    base·f(t) and overrides the parts before it, where here f(t) multiplies
    like any other factor; and a rate set by hand between building the parts,
    which PyTorch's later parts start from, where here the chain starts from
    its first part's base. The parts' own ``last_epoch`` stays 0: the chain
    counts the steps. A OneCycleLR, which sets the rate (and momentum) itself
    rather than a factor of it, or another combined schedule, is refused.
    ``optimizer`` may be omitted (it is the parts'), as in PyTorch.
    """

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None) -> None:
        if optimizer is None and isinstance(schedulers, (list, tuple)) and schedulers:
            optimizer = getattr(schedulers[0], "optimizer", None)
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"ChainedScheduler: expected a non-empty list of schedulers of one optimizer, got "
                            f"{schedulers!r}")
        self._take(optimizer, schedulers)
        for i, s in enumerate(self.schedulers):
            if isinstance(s, (OneCycleLR, _Composite)):
                raise ValueError(
                    f"ChainedScheduler: schedulers[{i}] is a {type(s).__name__}, which sets the rate itself rather "
                    "than a factor of the base rate; chain StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, "
                    "LinearLR or LambdaLR, or run it after the chain with a SequentialLR"
                )
        setattr(optimizer, "lr", self.schedulers[0].base_lr)  # noqa: B010  (undo the schedulers' own step 0)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        """base·Π_i schedulers[i].lr_at(t) / schedulers[i].base_lr."""
        lr = self.base_lr
        for s in self.schedulers:
            lr *= s.lr_at(epoch) / s.base_lr if s.base_lr else 0.0
        return lr


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy (Smith & Topin 2018) as PyTorch computes it: up to ``max_lr``, then far below the start.

    With T = total_steps (or epochs·steps_per_epoch), p = pct_start,
    initial = max_lr / div_factor and min = initial / final_div_factor, the
    rate follows phases that end at step p·T - 1 and T - 1:

        phase 1 (t <= p·T - 1):  initial -> max_lr,    momentum max_momentum -> base_momentum
        phase 2 (up to T - 1):   max_lr -> min,        momentum base_momentum -> max_momentum

    and with ``three_phase`` ends at p·T - 1, 2p·T - 2 and T - 1: initial ->
    max_lr, max_lr -> initial, initial -> min (momentum down, up, flat).
    Within a phase from a to b at fraction x of it, ``cos`` annealing gives
    b + (a - b)·(1 + cos(π·x)) / 2 and ``linear`` a + (b - a)·x. The base rate
    of the optimizer is not used. With ``cycle_momentum`` the schedule also
    sets the optimizer's ``betas[0]`` (Adam, AdamW, NAdam, Lion), else its
    ``momentum`` (SGD, RMSprop), else its ``beta`` (Momentum), and refuses an
    optimizer that has none. ``step()`` may be called T times, once after
    each optimizer step; the T-th call, after the last optimizer step, keeps
    the final values (PyTorch extrapolates the last phase there, which the
    linear strategy would take below zero). Once more is an error.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float,
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ) -> None:
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = _check_count("epochs", epochs) * _check_count("steps_per_epoch", steps_per_epoch)
        self.total_steps = T = _check_count("total_steps", total_steps)
        self.max_lr = check_number("max_lr", max_lr, open_low=True)
        self.pct_start = p = check_number("pct_start", pct_start)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"invalid anneal_strategy: expected 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.cycle_momentum = check_flag("cycle_momentum", cycle_momentum)
        self.base_momentum = base_m = check_number("base_momentum", base_momentum, 0.0, 1.0)
        self.max_momentum = max_m = check_number("max_momentum", max_momentum, 0.0, 1.0)
        self.div_factor = check_number("div_factor", div_factor, open_low=True)
        self.final_div_factor = check_number("final_div_factor", final_div_factor, open_low=True)
        initial = self.max_lr / self.div_factor
        low = initial / self.final_div_factor
        self.three_phase = check_flag("three_phase", three_phase)
        if self.three_phase:
            # (end step, lr from, lr to, momentum from, momentum to)
            self.phases = [
                (p * T - 1, initial, self.max_lr, max_m, base_m),
                (2 * p * T - 2, self.max_lr, initial, base_m, max_m),
                (T - 1.0, initial, low, max_m, max_m),
            ]
        else:
            self.phases = [(p * T - 1, initial, self.max_lr, max_m, base_m), (T - 1.0, self.max_lr, low, base_m, max_m)]
        ends = [0.0] + [phase[0] for phase in self.phases]
        if any(a >= b for a, b in zip(ends, ends[1:])):
            raise ValueError(
                f"OneCycleLR: with total_steps={T} and pct_start={p!r} a phase would be empty; "
                "each phase needs at least one step (pct_start·total_steps > 1)"
            )
        if self.cycle_momentum:
            names = [k for k in ("betas", "momentum", "beta") if k in optimizer.hyperparameters]
            if not names:
                raise ValueError(
                    f"OneCycleLR: cycle_momentum needs an optimizer with betas, momentum or beta; "
                    f"{type(optimizer).__name__} has none (pass cycle_momentum=False)"
                )
            self.momentum_name = names[0]
            for m in (base_m, max_m):  # the momentum runs between these two: the optimizer must take both
                try:
                    optimizer._checked({**optimizer.hyperparameters, **self._momentum(optimizer, m)})
                except (TypeError, ValueError) as e:
                    raise ValueError(
                        f"OneCycleLR: cycle_momentum would set {type(optimizer).__name__}'s {self.momentum_name} "
                        f"to {m!r}, which it refuses ({e}); choose base_momentum and max_momentum it takes, or "
                        "pass cycle_momentum=False"
                    ) from None
        super().__init__(optimizer)

    def _momentum(self, optimizer: Optimizer, m: float) -> dict[str, Any]:
        """The hyperparameter a momentum of ``m`` sets: ``betas=(m, β2)``, ``momentum=m`` or ``beta=m``."""
        if self.momentum_name == "betas":
            return {"betas": (m, optimizer.hyperparameters["betas"][1])}
        return {self.momentum_name: m}

    #: The settings a state saved by minigrad before pct_start, the momenta and the rest were checked holds.
    _legacy_settings = ("total_steps", "max_lr", "cycle_momentum")

    def _base_for_next(self) -> float:
        """max_lr / div_factor, the rate it starts from (PyTorch's OneCycleLR sets initial_lr to it)."""
        return self.max_lr / self.div_factor

    def _settings(self) -> dict[str, Any]:
        """The constructor's numbers and flags, and the strategy as a flag (a checkpoint stores numbers)."""
        out = super()._settings()
        del out["phases"]  # (made from the settings)
        out["linear_anneal"] = self.anneal_strategy == "linear"
        return out

    def _phase(self, epoch: int) -> tuple[float, tuple[float, float, float, float, float]]:
        """The fraction of its phase reached at step ``epoch``, and that phase."""
        if epoch > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {epoch} times; total_steps is {self.total_steps}")
        start = 0.0
        for i, phase in enumerate(self.phases):
            if epoch <= phase[0] or i == len(self.phases) - 1:
                return min((epoch - start) / (phase[0] - start), 1.0), phase  # step T keeps step T - 1's values
            start = phase[0]
        raise AssertionError("unreachable: the last phase always matches")

    def _anneal(self, a: float, b: float, x: float) -> float:
        """From a to b at fraction x: cosine or linear."""
        if self.anneal_strategy == "cos":
            return b + (a - b) / 2.0 * (math.cos(math.pi * x) + 1)
        return (b - a) * x + a

    def lr_at(self, epoch: int) -> float:
        """The rate at step ``epoch``, annealed within its phase."""
        x, (_, lr_a, lr_b, _, _) = self._phase(epoch)
        return self._anneal(lr_a, lr_b, x)

    def momentum_at(self, epoch: int) -> float:
        """The momentum (or β1) at step ``epoch``, annealed within its phase."""
        x, (_, _, _, m_a, m_b) = self._phase(epoch)
        return self._anneal(m_a, m_b, x)

    def _apply(self, epoch: int) -> None:
        """Set the rate, and with ``cycle_momentum`` the momentum, for step ``epoch``."""
        super()._apply(epoch)
        if self.cycle_momentum:
            for key, value in self._momentum(self.optimizer, self.momentum_at(epoch)).items():
                setattr(self.optimizer, key, value)


def schedule_from_spec(spec: str, optimizer: Optimizer, total_steps: int) -> LRScheduler | None:
    """Build the schedule a command line names, for a run of ``total_steps`` calls to ``scheduler.step()``.

    - ``none``: no schedule (returns None; the rate stays the optimizer's);
    - ``cosine``: ``CosineAnnealingLR(T_max=total_steps)``, from the rate down to 0;
    - ``step:EVERY:GAMMA``: ``StepLR(step_size=EVERY, gamma=GAMMA)``, e.g. ``step:100:0.5``;
    - ``warmup:STEPS``: ``LinearLR(start_factor=1/STEPS, total_iters=STEPS-1)``: the
      rate is lr·(t+1)/STEPS for the first STEPS steps, then lr;
    - ``onecycle``: ``OneCycleLR(max_lr=lr, total_steps=total_steps, cycle_momentum=False)``:
      the rate peaks at the optimizer's own rate; the momentum is left alone so
      that every optimizer gets the same treatment.

    A malformed spec is a ValueError that lists the forms above.
    """
    forms = "none, cosine, step:EVERY:GAMMA, warmup:STEPS or onecycle"
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"schedule: expected a minigrad.optim.Optimizer, got a {type(optimizer).__name__}")
    if not isinstance(spec, str):
        raise ValueError(f"schedule: expected one of {forms}, got {spec!r}")
    total_steps = _check_count("total_steps", total_steps)
    name, *args = spec.strip().split(":")
    try:
        if name == "none" and not args:
            return None
        if name == "cosine" and not args:
            return CosineAnnealingLR(optimizer, T_max=total_steps)
        if name == "step" and len(args) == 2:
            return StepLR(optimizer, step_size=int(args[0]), gamma=float(args[1]))
        if name == "warmup" and len(args) == 1:
            steps = int(args[0])
            if steps < 1:
                raise ValueError(f"warm-up steps must be >= 1, got {steps}")
            return LinearLR(optimizer, start_factor=1 / steps, end_factor=1.0, total_iters=max(steps - 1, 1))
        if name == "onecycle" and not args:
            max_lr = optimizer.hyperparameters.get("lr", 0.0)
            return OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps, cycle_momentum=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"schedule {spec!r}: {e}") from None
    close = difflib.get_close_matches(name.lower(), ["none", "cosine", "step", "warmup", "onecycle"], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close and close[0] != name else ""
    raise ValueError(f"schedule {spec!r}: expected one of {forms}{hint}")
