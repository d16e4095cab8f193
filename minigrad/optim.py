"""Optimizers: they read the gradients (dW, db) that backward left in ``.grad``.

The base class :class:`Optimizer` owns the parameter list, per-parameter state,
the step count, ``zero_grad()``, ``state_dict()`` and the loop over parameters.
A new optimizer checks its hyperparameters in ``__init__`` and writes one rule,
``update(w, g, state)``, that changes the array ``w`` in place. Adam below is
the whole pattern.

Two forms of momentum, in the seed notes' names (lr = α, beta = β, velocity v,
gradient g):

- the exponentially weighted average ("EWA", optax's ``ema``), :class:`Momentum`:
  ``v = β·v + (1-β)·g``; ``w = w - α·v``; v starts at 0.
- the classic form ("trace" in optax; PyTorch's), :class:`SGD` with ``momentum=β``:
  ``v = β·v + g``; ``w = w - α·v``; v starts as the first g.

Momentum(α, β) takes exactly the steps of SGD(α·(1-β), momentum=β): the EWA's
velocity is (1-β) times the classic one. The first seed note's literal rule
``vdw = α(β·vdw + (1-β)·dw); w = w - vdw`` folds α into the velocity: it is
SGD with momentum α·β and lr α·(1-β).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from minigrad.engine import Tensor

__all__ = ["Optimizer", "SGD", "Momentum", "Adam"]


def _check(name: str, value: Any, low: float, high: float | None = None, *, open_low: bool = False) -> None:
    """Raise ValueError unless low <= value (< high); ``open_low`` makes it low < value."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and np.isfinite(value) and (value > low if open_low else value >= low)
    ok = ok and (high is None or value < high)
    if not ok:
        bound = f"in [{low}, {high})" if high is not None else (f"> {low}" if open_low else f">= {low}")
        raise ValueError(f"invalid {name}: {value!r} (must be {bound})")


class Optimizer:
    """Base class: holds the parameters, their state and the step count.

    A subclass calls ``super().__init__(params, **hyperparameters)`` after
    checking them (each becomes an attribute, e.g. ``self.lr``) and defines
    ``update(w, g, state)``. ``step()`` calls it once per parameter that has a
    gradient, with ``w`` the parameter's array (to change in place), ``g`` its
    gradient (read only) and ``state`` that parameter's dict, whose ``"step"``
    counts the updates it has had, this one included.
    """

    def __init__(self, params: Iterable[Tensor], **hyperparameters: Any) -> None:
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of Tensors, got a single Tensor")
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if not p.requires_grad:
                raise ValueError(f"{name}: parameter {i} (shape {p.shape}) does not require grad")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter appears more than once")
        self.params: list[Tensor] = params
        self.state: list[dict[str, Any]] = [{} for _ in params]
        self.step_count: int = 0
        reserved = [k for k in hyperparameters if hasattr(self, k)]
        if reserved:
            raise ValueError(f"{name}: hyperparameter names {reserved} clash with Optimizer's own attributes")
        self.hyperparameters: dict[str, Any] = dict(hyperparameters)
        # Each hyperparameter becomes an attribute, so update() reads self.lr, self.beta, ...
        for key, value in hyperparameters.items():
            setattr(self, key, value)

    def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        """Change ``w`` in place from its gradient ``g``; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define update(w, g, state)")

    def step(self) -> None:
        """Update every parameter that has a gradient; ``.grad`` is left as it is."""
        self.step_count += 1
        update = self.update
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                state["step"] = state.get("step", 0) + 1
                update(p.data, p.grad, state)
                p.bump_version()

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None."""
        for p in self.params:
            p.grad = None

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}({len(self.params)} parameters, {hp})"

    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters, step count and every buffer (copied), as nested dicts."""
        return {
            "hyperparameters": {k: getattr(self, k) for k in self.hyperparameters},
            "step_count": self.step_count,
            "state": {
                str(i): {k: np.array(v, copy=True) for k, v in s.items()}
                for i, s in enumerate(self.state)
                if s
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`, checking all of it before changing anything.

        Buffers must match their parameter's shape and dtype; hyperparameters
        must pass the same checks as in the constructor.
        """
        name = f"{type(self).__name__}.load_state_dict"
        missing = {"hyperparameters", "step_count", "state"} - set(state)
        if missing:
            raise ValueError(f"{name}: the state has no {sorted(missing)}")
        hyper = dict(state["hyperparameters"])
        if set(hyper) != set(self.hyperparameters):
            raise ValueError(
                f"{name}: hyperparameters {sorted(hyper)} do not match {sorted(self.hyperparameters)}"
            )
        restored = {}
        for k, current in self.hyperparameters.items():
            v = hyper[k]
            if isinstance(current, tuple):
                restored[k] = tuple(float(x) for x in np.ravel(v))
            else:  # a Python bool, int or float, as the stored value's dtype says
                restored[k] = np.asarray(v).item()
        try:
            type(self)(self.params, **restored)  # the constructor's own checks
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name}: {e}") from None
        buffers: list[dict[str, Any]] = [{} for _ in self.params]
        for key, entry in dict(state["state"]).items():
            if not str(key).isdigit() or int(key) >= len(self.params):
                raise ValueError(f"{name}: state for parameter {key!r}, but there are {len(self.params)} parameters")
            p = self.params[int(key)]
            for bname, value in entry.items():
                arr = np.asarray(value)
                if bname == "step":
                    if arr.ndim != 0 or arr.dtype.kind not in "iu" or arr < 0:
                        raise ValueError(f"{name}: {key}.step must be a non-negative integer, got {value!r}")
                    buffers[int(key)][bname] = int(arr)
                elif arr.shape != p.shape or arr.dtype != p.dtype:
                    raise ValueError(
                        f"{name}: buffer {key}.{bname} has shape {arr.shape} {arr.dtype}, "
                        f"parameter {key} has {p.shape} {p.dtype}"
                    )
                else:
                    buffers[int(key)][bname] = arr.copy()
        step_count = np.asarray(state["step_count"])
        if step_count.ndim != 0 or step_count.dtype.kind not in "iu" or step_count < 0:
            raise ValueError(f"{name}: step_count must be a non-negative integer, got {state['step_count']!r}")
        self.step_count = int(step_count)
        self.state = buffers
        self.hyperparameters = restored
        for k, v in restored.items():
            setattr(self, k, v)


class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional (Nesterov) momentum: PyTorch's rule.

    With lr = α, momentum = β, weight_decay = λ::

        g = grad + λ·w
        v = β·v + g            (v starts as the first g; the "classic" form)
        step = g + β·v  if nesterov  else  v      (step = g when β = 0)
        w = w - α·step

    The learning rate sits outside the velocity. Defaults: momentum 0 (plain
    gradient descent), no Nesterov, no weight decay. In the seed notes' names,
    ``vdw = β·vdw + dw; w = w - α·vdw`` and ``vdb = β·vdb + db; b = b - α·vdb``
    (their "works just as fine" aside).
    Note: this velocity is 1/(1-β) times the EWA's of :class:`Momentum`, so
    ``SGD(α·(1-β), momentum=β)`` equals ``Momentum(α, β)``.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        _check("lr", lr, 0.0)
        _check("momentum", momentum, 0.0)
        _check("weight_decay", weight_decay, 0.0)
        if nesterov and momentum == 0:
            raise ValueError(f"invalid nesterov: Nesterov momentum needs momentum > 0, got momentum={momentum!r}")
        super().__init__(params, lr=lr, momentum=momentum, nesterov=bool(nesterov), weight_decay=weight_decay)

    def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        """One SGD step on ``w`` in place."""
        if self.weight_decay:
            g = g + self.weight_decay * w  # g = grad + λ·w
        if self.momentum:
            v = state.get("v")
            if v is None:
                v = state["v"] = np.array(g, copy=True)  # v starts as the first g
            else:
                v *= self.momentum
                v += g  # v = β·v + g
            g = g + self.momentum * v if self.nesterov else v  # step = g + β·v (Nesterov) or v
        w -= self.lr * g  # w = w - α·step


class Momentum(Optimizer):
    r"""Gradient descent with momentum as in the seed notes: an EWA of gradients.

    With lr = α, beta = β, weight_decay = λ, step t = 1, 2, ...::

        g = grad + λ·w
        v = β·v + (1-β)·g            (v starts at 0)
        w = w - α·v                  or, with bias_correction,  w = w - α·v / (1 - β^t)

    The notes' names: ``vdw``/``vdb`` are the velocities ``v`` of W and b, α
    the learning rate (outside the velocity here), β the averaging weight;
    β = 0.9 averages over roughly the last 1/(1-β) = 10 gradients. Defaults:
    β = 0.9, no bias correction, no weight decay.

    The first note writes ``vdw = α(β·vdw + (1-β)·dw); w = w - vdw``, folding α
    into the velocity: that is SGD(lr=α·(1-β), momentum=α·β). Without it,
    Momentum(α, β) takes exactly the steps of SGD(lr=α·(1-β), momentum=β).
    On a constant gradient g, v tends to g, so the steady step is α·g, the
    same as plain SGD's; the classic form's tends to α·g/(1-β).
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        beta: float = 0.9,
        bias_correction: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        _check("lr", lr, 0.0)
        _check("beta", beta, 0.0, 1.0)
        _check("weight_decay", weight_decay, 0.0)
        super().__init__(params, lr=lr, beta=beta, bias_correction=bool(bias_correction), weight_decay=weight_decay)

    def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        """One step of the EWA momentum rule on ``w`` in place."""
        if self.weight_decay:
            g = g + self.weight_decay * w  # g = grad + λ·w
        v = state.setdefault("v", np.zeros_like(w))  # v starts at 0
        v *= self.beta
        v += (1 - self.beta) * g  # v = β·v + (1-β)·g
        if self.bias_correction:
            w -= (self.lr / (1 - self.beta ** state["step"])) * v  # w = w - α·v/(1-β^t)
        else:
            w -= self.lr * v  # w = w - α·v


class Adam(Optimizer):
    r"""Adam (Kingma & Ba), as PyTorch computes it, weight decay added to the gradient.

    With lr = α, betas = (β1, β2), weight_decay = λ, step t = 1, 2, ...::

        g = grad + λ·w
        m = β1·m + (1-β1)·g          (m, s start at 0)
        s = β2·s + (1-β2)·g²
        w = w - α · (m / (1-β1^t)) / (sqrt(s / (1-β2^t)) + eps)

    The learning rate sits outside both averages. m is the EWA momentum of
    :class:`Momentum` (the notes' vdw, vdb); s, the EWA of squared gradients,
    scales each coordinate by its recent gradient size; both start at 0 and
    are bias-corrected. Defaults: α = 1e-3, betas (0.9, 0.999), eps 1e-8,
    λ = 0.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        _check("lr", lr, 0.0)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"invalid betas: {betas!r} (must be a pair)")
        _check("betas[0]", betas[0], 0.0, 1.0)
        _check("betas[1]", betas[1], 0.0, 1.0)
        _check("eps", eps, 0.0, open_low=True)
        _check("weight_decay", weight_decay, 0.0)
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)

    def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        """One Adam step on ``w`` in place."""
        beta1, beta2 = self.betas
        t = state["step"]
        if self.weight_decay:
            g = g + self.weight_decay * w
        m = state.setdefault("m", np.zeros_like(w))
        s = state.setdefault("s", np.zeros_like(w))
        m *= beta1
        m += (1 - beta1) * g  # m = β1·m + (1-β1)·g
        s *= beta2
        s += (1 - beta2) * g * g  # s = β2·s + (1-β2)·g²
        denom = np.sqrt(s) / np.sqrt(1 - beta2**t) + self.eps
        w -= (self.lr / (1 - beta1**t)) * m / denom  # w = w - α·m̂/(sqrt(ŝ) + eps)
