"""The optimizer contract: a base class that owns everything but the update rule.

:class:`Optimizer` owns the parameter list, per-parameter state, the step
count, ``zero_grad()``, ``state_dict()``/``load_state_dict()`` and the loop
over parameters. A new optimizer checks its hyperparameters with
:func:`check_number`, :func:`check_betas` and :func:`check_flag`, passes them
to ``super().__init__``, names the buffers it keeps, and writes one rule,
``update(w, g, state)``, that changes the array ``w`` in place.

Hyperparameters are plain attributes: ``opt.lr = 0.01`` is how a user or a
learning-rate schedule changes the rate. The assignment runs the
constructor's checks on the new value first, and ``repr(opt)``,
``opt.hyperparameters`` and ``opt.state_dict()`` all read the attribute, so
they always agree with it.
"""

from __future__ import annotations

import math
import re
import types
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

import numpy as np

from minigrad import engine
from minigrad.engine import Tensor

__all__ = ["Optimizer", "check_number", "check_betas", "check_flag"]

_REAL = (int, float, np.integer, np.floating)
_INDEX = re.compile(r"0|[1-9][0-9]*")  # ASCII digits only: '\u0660' is a digit to str.isdigit()


def check_number(
    name: str, value: Any, low: float = 0.0, high: float | None = None, *, open_low: bool = False
) -> Any:
    """Return ``value`` if it is a finite real number with low <= value (< high); ``open_low`` makes it low < value.

    A bool, a string, None or an array is a TypeError and NaN, ±inf or a
    number out of range a ValueError, each naming the hyperparameter and the
    range of numbers expected.
    """
    if not isinstance(value, _REAL) or isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"invalid {name}: expected a number {_bound(low, high, open_low)}, got {value!r} ({type(value).__name__})"
        )
    ok = math.isfinite(value) and (value > low if open_low else value >= low) and (high is None or value < high)
    if not ok:
        raise ValueError(f"invalid {name}: expected a number {_bound(low, high, open_low)}, got {value!r}")
    return value


def _bound(low: float, high: float | None, open_low: bool) -> str:
    """The range check_number expects, in words for its messages."""
    return f"in [{low:g}, {high:g})" if high is not None else (f"> {low:g}" if open_low else f">= {low:g}")


def check_betas(betas: Any, name: str = "betas") -> tuple[float, float]:
    """Return ``betas`` as a tuple of two numbers, each in [0, 1); anything else raises naming it."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"invalid {name}: expected a pair of numbers in [0, 1), got {betas!r}")
    return (check_number(f"{name}[0]", betas[0], 0.0, 1.0), check_number(f"{name}[1]", betas[1], 0.0, 1.0))


def check_flag(name: str, value: Any) -> bool:
    """Return ``value`` as a bool if it is True or False (numpy's too); anything else, 0.5 or 1 or 'no', raises."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"invalid {name}: expected True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def _buffer(state: dict[str, Any], name: str, w: np.ndarray, start: float = 0.0) -> np.ndarray:
    """``state[name]``, made the first time as an array like ``w`` filled with ``start``.

    (``state.setdefault(name, np.zeros_like(w))`` reads the same but builds a
    new array at every step, to throw it away once the buffer exists.)
    """
    buffer = state.get(name)
    if buffer is None:
        buffer = state[name] = np.full_like(w, start)
    return buffer


class _Checking:
    """The stand-in parameter list of :meth:`Optimizer._checked`: iterable, and empty."""

    def __iter__(self) -> Iterator[Tensor]:
        return iter(())

    def __repr__(self) -> str:
        return "<the parameters, not passed: only the hyperparameters are being checked>"


_CHECKING = _Checking()


class _NamedChecks(type):
    """The metaclass of Optimizer and LRScheduler: a failed constructor check names the class (``SGD: invalid lr``).

    ``check_number`` and ``check_flag`` name only the argument, since the same
    checks serve every optimizer; the class is added here, once, for the
    built-ins and for every subclass a user writes.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except (TypeError, ValueError) as e:
            if str(e).startswith("invalid "):
                raise type(e)(f"{cls.__name__}: {e}") from None
            raise


class Optimizer(metaclass=_NamedChecks):
    """Base class: holds the parameters, their state, the step count and the hyperparameters.

    A subclass calls ``super().__init__(params, **hyperparameters)`` after
    checking them (each becomes an attribute, e.g. ``self.lr``; annotate it on
    the class so type checkers see it), lists in ``buffer_names`` the arrays
    its rule keeps per parameter (each shaped like the parameter) and in
    ``scalar_names`` the numbers (and in ``required_names`` those it keeps
    at every update, whatever its settings), and defines ``update(w, g, state)``.
    ``step()`` calls it once per parameter that has a gradient, with ``w`` the
    parameter's array (to change in place), ``g`` its gradient (read only)
    and ``state`` that parameter's dict, whose ``"step"`` counts the updates
    it has had, this one included.

    Assigning a hyperparameter, ``opt.lr = 0.01``, re-runs the constructor on
    the new set of values before storing it, so a bad value is refused with
    the constructor's own message and the optimizer keeps the old one. (So,
    as in every built-in, the constructor takes each hyperparameter under
    the name it passes to ``super().__init__``; ``load_state_dict`` relies
    on that too.)
    """

    buffer_names: ClassVar[tuple[str, ...]] = ()
    scalar_names: ClassVar[tuple[str, ...]] = ()
    #: The buffers and scalars ``update`` keeps for every parameter it steps, whatever the hyperparameters:
    #: ``load_state_dict`` refuses a stepped parameter's state without one (its next step would start it again
    #: from nothing, silently). Not those a setting decides, which a setting changed since the last step may
    #: have left out of a true state (SGD's ``v`` exists only with momentum, RMSprop's ``a`` only centered):
    #: those are not checked, so a state with one deleted by hand loads, and starts it again.
    required_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Iterable[Tensor], **hyperparameters: Any) -> None:
        if params is _CHECKING:  # only the constructor's checks of a hyperparameter assignment (see _checked)
            self.__dict__.update(hyperparameters)
            self.__dict__["_hyperparameter_names"] = tuple(hyperparameters)
            return
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of Tensors, got a single Tensor")
        method = getattr(params, "__name__", "") if callable(params) else ""
        if method in ("parameters", "named_parameters"):
            owner = type(getattr(params, "__self__", None)).__name__
            raise TypeError(
                f"{name}: params is the method {owner}.{method} itself, not the parameters it returns; "
                "did you mean model.parameters()?"
            )
        if not isinstance(params, Iterable):
            raise TypeError(f"{name}: params must be an iterable of Tensors (such as model.parameters()), "
                            f"got {type(params).__name__}")
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                hint = " (a (name, parameter) pair: pass model.parameters())" if isinstance(p, tuple) else ""
                raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, not a Tensor{hint}")
            if not p.requires_grad:
                raise ValueError(f"{name}: parameter {i} (shape {p.shape}) does not require grad")
            if not p.is_leaf:
                raise ValueError(
                    f"{name}: parameter {i} (shape {p.shape}) is the output of an op ({p.op}), not a leaf: "
                    "backward() never sets its .grad, so it would never change; optimize the tensor it is "
                    "computed from, or make a leaf of its value, mg.Tensor(t.data, requires_grad=True)"
                )
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter appears more than once")
        reserved = [k for k in hyperparameters if hasattr(Optimizer, k) or k in ("params", "state", "step_count")]
        if reserved:
            raise ValueError(f"{name}: hyperparameter names {reserved} clash with Optimizer's own attributes")
        self.params: list[Tensor] = params
        # The tensors whose memory a parameter shares, if it is a view (W.detach() made to require grad):
        # step() changes them too, so their version counters record it (usually none).
        self._shared: list[Tensor] = [b for p in params for b in engine._bases(p)]
        self.state: list[dict[str, Any]] = [{} for _ in params]
        self.step_count: int = 0
        for key, value in hyperparameters.items():  # each hyperparameter becomes an attribute: self.lr, ...
            setattr(self, key, value)
        self._hyperparameter_names: tuple[str, ...] = tuple(hyperparameters)  # from now on, assignments are checked

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """Each hyperparameter's current value, by name, in the constructor's order."""
        return {k: getattr(self, k) for k in self._hyperparameter_names}

    def __setattr__(self, name: str, value: Any) -> None:
        """Store an attribute; a hyperparameter's new value first passes the constructor's checks."""
        if name in self.__dict__.get("_hyperparameter_names", ()):
            try:
                value = self._checked({**self.hyperparameters, name: value})[name]
            except (TypeError, ValueError) as e:
                raise type(e)(f"{type(self).__name__}.{name} = {value!r}: {e}") from None
        object.__setattr__(self, name, value)

    def _checked(self, hyperparameters: dict[str, Any]) -> dict[str, Any]:
        """``hyperparameters`` as the constructor stores them, after its own checks (which raise).

        The constructor runs on a stand-in for the parameter list, so that a
        learning-rate schedule, which assigns ``lr`` after every step, does
        not pay for checking the parameters again (they have not changed):
        about 2 µs instead of 7 for SGD. If that raises, it runs again on the
        real parameters, whose verdict and message are the ones that count.
        (So a subclass's check that depends on the parameters runs at
        construction and then only when a value is refused.)
        """
        cls = type(self)
        probe: Optimizer | None = cls.__new__(cls)
        try:
            probe.__init__(_CHECKING, **hyperparameters)  # type: ignore[misc, union-attr]
        except Exception:
            probe = None
        if probe is None or "_hyperparameter_names" not in probe.__dict__:  # refused, or never reached __init__
            probe = cls.__new__(cls)  # (not cls(...): the assignment's message names the class itself)
            probe.__init__(self.params, **hyperparameters)  # type: ignore[misc]
        return probe.hyperparameters

    def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        """Change ``w`` in place from its gradient ``g``; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define update(w, g, state)")

    def _refuse_grads(self) -> None:
        """Raise for the first ``.grad`` that is not an array of its parameter's shape (one set by hand)."""
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if not isinstance(p.grad, np.ndarray):
                raise TypeError(
                    f"{type(self).__name__}.step: parameter {i}'s .grad is a {type(p.grad).__name__}, "
                    "not a numpy array; set it to an array of the parameter's shape or to None"
                )
            if p.grad.shape != p.data.shape:
                raise ValueError(
                    f"{type(self).__name__}.step: parameter {i} has shape {p.data.shape} but its .grad has shape "
                    f"{p.grad.shape}; a gradient must have its parameter's shape (it is not broadcast)"
                )

    def step(self) -> None:
        """Update every parameter that has a gradient; ``.grad`` is left as it is."""
        if engine._tape is not None:  # mg.compile is recording a step: replay this call too
            # Optimizer.step itself, not self.step: a subclass's step() that calls super().step() around its
            # own code would be replayed whole at each super() call (twice per call, or a clip done again).
            engine._tape.on_call(types.MethodType(Optimizer.step, self))
        params = self.params
        ndarray = np.ndarray
        for p in params:  # a .grad set by hand that is not an array of its parameter's shape is refused first
            g = p.grad
            if g is not None and (type(g) is not ndarray or g.shape != p.data.shape):
                self._refuse_grads()
        self.__dict__["step_count"] += 1  # a plain counter: no need for __setattr__'s hyperparameter checks
        update = self.update
        version = engine.bump_versions(self._shared)  # every w changes in place: saved old values are stale
        for p, state in zip(params, self.state):
            g = p.grad
            if g is not None:
                state["step"] = state.get("step", 0) + 1
                update(p.data, g, state)
                p._version = version
        if engine._tape is not None:  # (mg.compile: what follows is the step's own code again)
            engine._tape.on_call_end()

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None."""
        if engine._tape is not None:  # mg.compile is recording a step: replay this call too
            engine._tape.on_call(self.zero_grad)
        for p in self.params:
            p.grad = None
        if engine._tape is not None:
            engine._tape.on_call_end()

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        count = f"{len(self.params)} parameter{'' if len(self.params) == 1 else 's'}"
        return f"{type(self).__name__}({count}, {hp})"

    def state_dict(self) -> dict[str, Any]:
        """The class's name, hyperparameters, step count, the number of parameters and every buffer (copied).

        As nested dicts; ``class`` is the optimizer's class name (Adam and AdamW have the same
        hyperparameters, which mean different things, so the name tells their states apart).

        A buffer ``update`` keeps that the class does not declare (in ``buffer_names`` or ``scalar_names``)
        is refused here, where the state is made: :meth:`load_state_dict` would refuse it later.
        """
        known = {"step", *self.buffer_names, *self.scalar_names}
        for i, s in enumerate(self.state):
            undeclared = sorted(set(s) - known, key=str)
            if undeclared:
                raise ValueError(
                    f"{type(self).__name__}.state_dict: parameter {i}'s state holds {undeclared}, which "
                    f"{type(self).__name__} does not declare; name the arrays update() keeps in buffer_names "
                    "and the numbers in scalar_names, so that they are saved and loaded"
                )
        return {
            "class": type(self).__name__,
            "hyperparameters": self.hyperparameters,
            "step_count": self.step_count,
            "param_count": len(self.params),
            "state": {
                str(i): {k: np.array(v, copy=True) for k, v in s.items()}
                for i, s in enumerate(self.state)
                if s
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`, checking all of it before changing anything.

        Hyperparameters must pass the constructor's checks; each parameter's
        entry is keyed by its index written in ASCII digits ('0', '1', ...),
        holds its ``step`` and only the buffers the class names, each of its
        parameter's shape and dtype, and, once stepped, every buffer of
        ``required_names`` (one missing would start again from nothing, silently);
        ``param_count`` (absent from states saved before it was kept) must be
        the number of parameters, and ``class`` (absent from those states too)
        this optimizer's class name. Anything else is a ValueError naming the
        entry.
        """
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, Mapping):
            raise ValueError(f"{name}: expected a mapping as state_dict() returns, got a {type(state).__name__}")
        expected = {"hyperparameters", "step_count", "state"}
        missing = sorted(expected - set(state))
        unknown = sorted(set(state) - expected - {"param_count", "class"}, key=str)
        if missing or unknown:
            wrong = [f"has no {', '.join(map(repr, missing))}" if missing else "",
                     f"has unknown entries {unknown}" if unknown else ""]
            raise ValueError(f"{name}: the state {' and '.join(w for w in wrong if w)}; load what "
                             f"{type(self).__name__}.state_dict() returned")
        if "class" in state and not isinstance(state["class"], str):
            raise ValueError(f"{name}: the state's 'class' must be the name of its optimizer's class, got "
                             f"{state['class']!r:.80}")
        if "class" in state and state["class"] != type(self).__name__:
            example = (" (Adam's weight_decay is an L2 term, AdamW's is decoupled)"
                       if {state["class"], type(self).__name__} == {"Adam", "AdamW"} else "")
            raise ValueError(
                f"{name}: the state was saved by {state['class']!r}, not by {type(self).__name__}, whose "
                f"hyperparameters and buffers may mean something else{example}; load it into {state['class']}, "
                f"or, if the two are one rule under two names, set state['class'] = {type(self).__name__!r} first"
            )
        if "param_count" in state:
            count = _as_array(state["param_count"])
            if count is None or count.ndim != 0 or count.dtype.kind not in "iu" or int(count) != len(self.params):
                raise ValueError(
                    f"{name}: the state was saved for {state['param_count']!r} parameters, this optimizer has "
                    f"{len(self.params)}; load the state of an optimizer over the same parameters, in the same order"
                )
        hyper = state["hyperparameters"]
        if not isinstance(hyper, Mapping) or set(hyper) != set(self._hyperparameter_names):
            got = sorted(hyper, key=str) if isinstance(hyper, Mapping) else type(hyper).__name__
            raise ValueError(f"{name}: hyperparameters {got} do not match {sorted(self._hyperparameter_names)}")
        restored = {k: _stored_value(name, k, hyper[k], current) for k, current in self.hyperparameters.items()}
        try:
            restored = self._checked(restored)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name}: {e}") from None

        entries = state["state"]
        if not isinstance(entries, Mapping):
            raise ValueError(f"{name}: 'state' must map parameter indices to dicts, got a {type(entries).__name__}")
        n = len(self.params)
        step_count = _as_array(state["step_count"])
        if step_count is None or step_count.ndim != 0 or step_count.dtype.kind not in "iu" or step_count < 0:
            raise ValueError(f"{name}: step_count must be a non-negative integer, got {state['step_count']!r}")
        buffers: list[dict[str, Any]] = [{} for _ in self.params]
        for key, entry in entries.items():
            if not (isinstance(key, str) and _INDEX.fullmatch(key) and int(key) < n):
                raise ValueError(f"{name}: state for parameter {key!r}, but there are {n} parameters, '0' to '{n - 1}'")
            if not isinstance(entry, Mapping) or "step" not in entry:
                raise ValueError(f"{name}: state {key} must be a dict holding its 'step', got {entry!r:.80}")
            entry_buffers = buffers[int(key)] = self._stored_buffers(name, key, entry)
            if entry_buffers["step"] > int(step_count):
                raise ValueError(f"{name}: {key}.step is {entry_buffers['step']}, more than the optimizer's "
                                 f"step_count {int(step_count)}: the state is not one state_dict() saved")
            lacking = [b for b in self.required_names if b not in entry_buffers] if entry_buffers["step"] else []
            if lacking:
                raise ValueError(
                    f"{name}: state {key} has no buffer {', '.join(map(repr, lacking))}, which "
                    f"{type(self).__name__} keeps for every parameter it has stepped (without it the next step "
                    "would start it again, silently); load a complete state_dict()"
                )
        self.step_count = int(step_count)
        self.state = buffers
        for k, v in restored.items():
            object.__setattr__(self, k, v)  # already checked as a set

    def _stored_buffers(self, name: str, key: str, entry: Mapping[str, Any]) -> dict[str, Any]:
        """Parameter ``key``'s saved buffers, checked against the class's names and the parameter's shape and dtype."""
        p = self.params[int(key)]
        out: dict[str, Any] = {}
        for bname, value in entry.items():
            arr = _as_array(value)
            if bname == "step":
                if arr is None or arr.ndim != 0 or arr.dtype.kind not in "iu" or arr < 0:
                    raise ValueError(f"{name}: {key}.step must be a non-negative integer, got {value!r:.80}")
                out[bname] = int(arr)
            elif bname in self.scalar_names:
                if arr is None or arr.ndim != 0 or arr.dtype.kind not in "iuf" or not np.isfinite(arr):
                    raise ValueError(f"{name}: {key}.{bname} must be a finite number, got {value!r:.80}")
                out[bname] = float(arr)
            elif bname in self.buffer_names:
                if arr is None or arr.shape != p.shape or arr.dtype != p.dtype:
                    shape = "not an array" if arr is None else f"shape {arr.shape} {arr.dtype}"
                    raise ValueError(
                        f"{name}: buffer {key}.{bname} has {shape}, parameter {key} has {p.shape} {p.dtype}"
                    )
                out[bname] = arr.copy()
            else:
                known = ("step", *self.buffer_names, *self.scalar_names)
                hint = " (declare the arrays update() keeps in buffer_names and the numbers in scalar_names)"
                raise ValueError(f"{name}: unknown buffer {key}.{bname!r}; {type(self).__name__} keeps {known}{hint}")
        return out


def _stored_value(name: str, key: str, value: Any, current: Any) -> Any:
    """A saved hyperparameter as a Python value of the current one's kind (a tuple of floats, bool, int or float)."""
    arr = _as_array(value)
    if arr is None:
        raise ValueError(f"{name}: hyperparameter {key} must be stored as numbers, got {value!r:.80}")
    if isinstance(current, tuple):
        return tuple(x.item() for x in arr.ravel())
    if arr.ndim != 0:
        raise ValueError(f"{name}: hyperparameter {key} must be a single value, got shape {arr.shape}")
    return arr.item()


def _as_array(value: Any) -> np.ndarray | None:
    """``value`` as a numpy array if it is numbers (an array, a number, or a flat list or tuple of them), else None."""
    if not isinstance(value, (np.ndarray, np.generic, int, float, tuple, list)):
        return None
    try:
        arr = np.asarray(value)
    except ValueError:  # a ragged list
        return None
    return arr if arr.dtype.kind in "biuf" else None
