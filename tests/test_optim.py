"""Tests of ``mg.optim`` and of the custom optimizer in ``examples/custom_optimizer.py``.

Every expected value is computed here from the update equations, in plain
numpy, with the gradients fed in by hand (``p.grad = ...``) unless a test is
about driving an optimizer through ``backward()``.

Run ``python tests/test_optim.py`` to print the ravine measurement (the step
counts and best learning rates that ``test_momentum_beats_sgd_in_the_ravine``
asserts on).
"""

from __future__ import annotations

import copy
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import minigrad as mg
from minigrad.optim import SGD, Adagrad, Adam, AdamW, Lion, Momentum, NAdam, Optimizer, RMSprop

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_optimizer.py"


def load_example() -> ModuleType:
    """Import ``examples/custom_optimizer.py`` by its path, as the lab does."""
    spec = importlib.util.spec_from_file_location("custom_optimizer_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


AdaBelief = load_example().AdaBelief

Factory = Callable[[list[mg.Tensor]], Optimizer]

# The registry: every optimizer, with a learning rate that suits the quadratic
# below. A new optimizer's tests are one line here.
OPTIMIZERS: dict[str, Factory] = {
    "SGD": lambda ps: SGD(ps, lr=0.1),
    "SGD momentum": lambda ps: SGD(ps, lr=0.05, momentum=0.9),
    "SGD nesterov": lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "Momentum": lambda ps: Momentum(ps, lr=0.2, beta=0.9),
    "Momentum bias-corrected": lambda ps: Momentum(ps, lr=0.2, beta=0.9, bias_correction=True),
    "Adam": lambda ps: Adam(ps, lr=0.05),
    "AdamW": lambda ps: AdamW(ps, lr=0.05, weight_decay=0.0),
    "NAdam": lambda ps: NAdam(ps, lr=0.05),
    "RMSprop": lambda ps: RMSprop(ps, lr=0.01),
    "RMSprop centered momentum": lambda ps: RMSprop(ps, lr=0.005, momentum=0.5, centered=True),
    "Adagrad": lambda ps: Adagrad(ps, lr=1.0),
    "AdaBelief (example)": lambda ps: AdaBelief(ps, lr=0.05),
}
# Optimizers that do not settle exactly on the minimum, with how near they must get:
# Lion moves every coordinate by ±lr, and decoupled decay pulls the fixed point towards 0.
APPROXIMATE: dict[str, tuple[Factory, float]] = {
    "Lion": (lambda ps: Lion(ps, lr=0.01), 0.05),
    "AdamW weight_decay": (lambda ps: AdamW(ps, lr=0.05, weight_decay=1e-3), 0.05),
    "Lion weight_decay": (lambda ps: Lion(ps, lr=0.01, weight_decay=1e-2), 0.1),
}
# The same plus weight decay, for the invariants of step().
ALL_CONFIGS: dict[str, Factory] = {
    **OPTIMIZERS,
    "SGD weight_decay": lambda ps: SGD(ps, lr=0.1, weight_decay=0.01),
    "SGD nesterov weight_decay": lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "Momentum weight_decay": lambda ps: Momentum(ps, lr=0.2, beta=0.9, weight_decay=0.01),
    "Adam weight_decay": lambda ps: Adam(ps, lr=0.05, weight_decay=0.01),
    "AdamW default decay": lambda ps: AdamW(ps, lr=0.05),
    "NAdam weight_decay": lambda ps: NAdam(ps, lr=0.05, weight_decay=0.01),
    "RMSprop all options": lambda ps: RMSprop(ps, lr=0.01, weight_decay=0.01, momentum=0.9, centered=True),
    "Adagrad all options": lambda ps: Adagrad(
        ps, lr=0.1, lr_decay=0.1, weight_decay=0.01, initial_accumulator_value=0.1
    ),
    **{name: make for name, (make, _) in APPROXIMATE.items()},
}


# ---------------------------------------------------------------------------
# The first three steps of each optimizer, against the equations
# ---------------------------------------------------------------------------

W0 = np.array([[0.5, -1.0, 2.0], [0.0, 0.25, -0.75]])
GRADS = [
    np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]),
    np.array([[-0.5, -1.0, 2.0], [1.0, 0.0, 4.0]]),
    np.array([[2.0, 0.5, -3.0], [-1.0, 1.5, 0.25]]),
]


def three_steps(make: Factory) -> list[np.ndarray]:
    """The parameter after each of three steps from W0 with GRADS set by hand."""
    p = mg.Tensor(W0.copy(), requires_grad=True)
    optimizer = make([p])
    path = []
    for grad in GRADS:
        p.grad = grad.copy()
        optimizer.step()
        path.append(p.data.copy())
    return path


def hand_sgd(lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0) -> list[np.ndarray]:
    """PyTorch's SGD: g = grad + λw; v = βv + g (v₁ = g₁); step = g + βv (Nesterov) or v; w -= lr·step."""
    w, v, path = W0.copy(), None, []
    for grad in GRADS:
        g = grad + weight_decay * w
        if momentum:
            v = g if v is None else momentum * v + g
            step = g + momentum * v if nesterov else v
        else:
            step = g
        w = w - lr * step
        path.append(w)
    return path


def hand_momentum(lr: float, beta: float, bias_correction: bool = False, weight_decay: float = 0.0) -> list[np.ndarray]:
    """Momentum as an EWA: g = grad + λw; v = βv + (1-β)g (v₀ = 0); w -= lr·v (or lr·v/(1-βᵗ))."""
    w, v, path = W0.copy(), np.zeros_like(W0), []
    for t, grad in enumerate(GRADS, start=1):
        g = grad + weight_decay * w
        v = beta * v + (1 - beta) * g
        w = w - lr * (v / (1 - beta**t) if bias_correction else v)
        path.append(w)
    return path


def hand_adam(lr: float, beta1: float, beta2: float, eps: float, weight_decay: float = 0.0) -> list[np.ndarray]:
    """Adam: m = β1·m + (1-β1)g; s = β2·s + (1-β2)g²; w -= lr·m̂/(sqrt(ŝ) + eps), hats dividing by 1-βᵗ."""
    w, m, s, path = W0.copy(), np.zeros_like(W0), np.zeros_like(W0), []
    for t, grad in enumerate(GRADS, start=1):
        g = grad + weight_decay * w
        m = beta1 * m + (1 - beta1) * g
        s = beta2 * s + (1 - beta2) * g**2
        m_hat, s_hat = m / (1 - beta1**t), s / (1 - beta2**t)
        w = w - lr * m_hat / (np.sqrt(s_hat) + eps)
        path.append(w)
    return path


def hand_adamw(lr: float, beta1: float, beta2: float, eps: float, weight_decay: float) -> list[np.ndarray]:
    """AdamW: w -= lr·λ·w first; then Adam on the raw gradient (m̂, ŝ bias-corrected)."""
    w, m, s, path = W0.copy(), np.zeros_like(W0), np.zeros_like(W0), []
    for t, g in enumerate(GRADS, start=1):
        w = w - lr * weight_decay * w
        m = beta1 * m + (1 - beta1) * g
        s = beta2 * s + (1 - beta2) * g**2
        w = w - lr * (m / (1 - beta1**t)) / (np.sqrt(s / (1 - beta2**t)) + eps)
        path.append(w)
    return path


def hand_nadam(
    lr: float, beta1: float, beta2: float, eps: float, weight_decay: float = 0.0, psi: float = 4e-3
) -> list[np.ndarray]:
    """NAdam (Dozat; PyTorch): μ_t = β1(1 - ½·0.96^(tψ)); the gradient weighted by (1-μ_t)/(1-Πμ), m by μ_{t+1}."""
    w, m, s, path = W0.copy(), np.zeros_like(W0), np.zeros_like(W0), []
    mus = [beta1 * (1 - 0.5 * 0.96 ** (t * psi)) for t in range(1, len(GRADS) + 2)]  # μ_1 .. μ_4
    for t, grad in enumerate(GRADS, start=1):
        g = grad + weight_decay * w
        m = beta1 * m + (1 - beta1) * g
        s = beta2 * s + (1 - beta2) * g**2
        mu, mu_next = mus[t - 1], mus[t]
        prod = float(np.prod(mus[:t]))  # μ_1···μ_t
        d = np.sqrt(s / (1 - beta2**t)) + eps
        w = w - lr * (1 - mu) / (1 - prod) * g / d - lr * mu_next / (1 - prod * mu_next) * m / d
        path.append(w)
    return path


def hand_rmsprop(
    lr: float, alpha: float, eps: float, weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False
) -> list[np.ndarray]:
    """RMSprop (PyTorch): s = αs + (1-α)g²; a = αa + (1-α)g; d = sqrt(s - a²) + eps; v = βv + g/d; w -= lr·v."""
    w, s, a, v, path = W0.copy(), np.zeros_like(W0), np.zeros_like(W0), np.zeros_like(W0), []
    for grad in GRADS:
        g = grad + weight_decay * w
        s = alpha * s + (1 - alpha) * g**2
        if centered:
            a = alpha * a + (1 - alpha) * g
        d = np.sqrt(s - a**2) + eps  # a stays 0 unless centred
        v = momentum * v + g / d  # with β = 0, v = g/d
        w = w - lr * v
        path.append(w)
    return path


def hand_adagrad(
    lr: float, lr_decay: float = 0.0, weight_decay: float = 0.0, initial: float = 0.0, eps: float = 1e-10
) -> list[np.ndarray]:
    """Adagrad (PyTorch): S = S₀ + Σg²; w -= lr/(1 + (t-1)δ) · g/(sqrt(S) + eps)."""
    w, S, path = W0.copy(), np.full_like(W0, initial), []
    for t, grad in enumerate(GRADS, start=1):
        g = grad + weight_decay * w
        S = S + g**2
        w = w - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(S) + eps)
        path.append(w)
    return path


def hand_lion(lr: float, beta1: float, beta2: float, weight_decay: float = 0.0) -> list[np.ndarray]:
    """Lion (Chen et al. 2023, Program 1): w -= lr·(sign(β1·m + (1-β1)g) + λw); then m = β2·m + (1-β2)g."""
    w, m, path = W0.copy(), np.zeros_like(W0), []
    for g in GRADS:
        w = w - lr * (np.sign(beta1 * m + (1 - beta1) * g) + weight_decay * w)
        m = beta2 * m + (1 - beta2) * g
        path.append(w)
    return path


def hand_adabelief(lr: float, beta1: float, beta2: float, eps: float) -> list[np.ndarray]:
    """AdaBelief (Zhuang et al. 2020): s = β2·s + (1-β2)(g - m)² + eps with the new m; Adam's step otherwise."""
    w, m, s, path = W0.copy(), np.zeros_like(W0), np.zeros_like(W0), []
    for t, g in enumerate(GRADS, start=1):
        m = beta1 * m + (1 - beta1) * g
        s = beta2 * s + (1 - beta2) * (g - m) ** 2 + eps
        w = w - lr * (m / (1 - beta1**t)) / (np.sqrt(s / (1 - beta2**t)) + eps)
        path.append(w)
    return path


FIRST_STEPS = [
    pytest.param(lambda ps: SGD(ps, lr=0.1), hand_sgd(0.1), id="SGD"),
    pytest.param(lambda ps: SGD(ps, lr=0.1, momentum=0.9), hand_sgd(0.1, momentum=0.9), id="SGD momentum"),
    pytest.param(
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
        hand_sgd(0.1, momentum=0.9, nesterov=True),
        id="SGD nesterov",
    ),
    pytest.param(lambda ps: SGD(ps, lr=0.1, weight_decay=0.3), hand_sgd(0.1, weight_decay=0.3), id="SGD weight_decay"),
    pytest.param(
        lambda ps: SGD(ps, lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.3),
        hand_sgd(0.1, momentum=0.5, nesterov=True, weight_decay=0.3),
        id="SGD nesterov weight_decay",
    ),
    pytest.param(lambda ps: Momentum(ps, lr=0.1, beta=0.8), hand_momentum(0.1, 0.8), id="Momentum"),
    pytest.param(
        lambda ps: Momentum(ps, lr=0.1, beta=0.8, bias_correction=True),
        hand_momentum(0.1, 0.8, bias_correction=True),
        id="Momentum bias_correction",
    ),
    pytest.param(
        lambda ps: Momentum(ps, lr=0.1, beta=0.8, weight_decay=0.3),
        hand_momentum(0.1, 0.8, weight_decay=0.3),
        id="Momentum weight_decay",
    ),
    pytest.param(
        lambda ps: Momentum(ps, lr=0.1, beta=0.8, bias_correction=True, weight_decay=0.3),
        hand_momentum(0.1, 0.8, bias_correction=True, weight_decay=0.3),
        id="Momentum bias_correction weight_decay",
    ),
    pytest.param(lambda ps: Adam(ps, lr=0.1), hand_adam(0.1, 0.9, 0.999, 1e-8), id="Adam"),
    pytest.param(
        lambda ps: Adam(ps, lr=0.1, betas=(0.5, 0.7), eps=0.1, weight_decay=0.3),
        hand_adam(0.1, 0.5, 0.7, 0.1, weight_decay=0.3),
        id="Adam betas eps weight_decay",
    ),
    pytest.param(lambda ps: AdamW(ps, lr=0.1), hand_adamw(0.1, 0.9, 0.999, 1e-8, 1e-2), id="AdamW"),
    pytest.param(
        lambda ps: AdamW(ps, lr=0.1, betas=(0.5, 0.7), eps=0.1, weight_decay=0.3),
        hand_adamw(0.1, 0.5, 0.7, 0.1, 0.3),
        id="AdamW betas eps weight_decay",
    ),
    pytest.param(lambda ps: NAdam(ps, lr=0.1), hand_nadam(0.1, 0.9, 0.999, 1e-8), id="NAdam"),
    pytest.param(
        lambda ps: NAdam(ps, lr=0.1, betas=(0.5, 0.7), eps=0.1, weight_decay=0.3, momentum_decay=0.5),
        hand_nadam(0.1, 0.5, 0.7, 0.1, weight_decay=0.3, psi=0.5),
        id="NAdam betas eps weight_decay momentum_decay",
    ),
    pytest.param(lambda ps: RMSprop(ps, lr=0.1), hand_rmsprop(0.1, 0.99, 1e-8), id="RMSprop"),
    pytest.param(
        lambda ps: RMSprop(ps, lr=0.1, alpha=0.5, eps=0.1), hand_rmsprop(0.1, 0.5, 0.1), id="RMSprop alpha eps"
    ),
    pytest.param(
        lambda ps: RMSprop(ps, lr=0.1, weight_decay=0.3), hand_rmsprop(0.1, 0.99, 1e-8, weight_decay=0.3),
        id="RMSprop weight_decay",
    ),
    pytest.param(
        lambda ps: RMSprop(ps, lr=0.1, momentum=0.8), hand_rmsprop(0.1, 0.99, 1e-8, momentum=0.8), id="RMSprop momentum"
    ),
    pytest.param(
        lambda ps: RMSprop(ps, lr=0.1, alpha=0.5, centered=True), hand_rmsprop(0.1, 0.5, 1e-8, centered=True),
        id="RMSprop centered",
    ),
    pytest.param(
        lambda ps: RMSprop(ps, lr=0.1, alpha=0.5, eps=0.1, weight_decay=0.3, momentum=0.8, centered=True),
        hand_rmsprop(0.1, 0.5, 0.1, weight_decay=0.3, momentum=0.8, centered=True),
        id="RMSprop every option",
    ),
    pytest.param(lambda ps: Adagrad(ps, lr=0.1), hand_adagrad(0.1), id="Adagrad"),
    pytest.param(lambda ps: Adagrad(ps, lr=0.1, lr_decay=0.5), hand_adagrad(0.1, lr_decay=0.5), id="Adagrad lr_decay"),
    pytest.param(
        lambda ps: Adagrad(ps, lr=0.1, lr_decay=0.5, weight_decay=0.3, initial_accumulator_value=0.7, eps=0.1),
        hand_adagrad(0.1, lr_decay=0.5, weight_decay=0.3, initial=0.7, eps=0.1),
        id="Adagrad every option",
    ),
    pytest.param(lambda ps: Lion(ps, lr=0.1), hand_lion(0.1, 0.9, 0.99), id="Lion"),
    pytest.param(
        lambda ps: Lion(ps, lr=0.1, betas=(0.5, 0.7), weight_decay=0.3),
        hand_lion(0.1, 0.5, 0.7, weight_decay=0.3),
        id="Lion betas weight_decay",
    ),
    pytest.param(lambda ps: AdaBelief(ps, lr=0.1), hand_adabelief(0.1, 0.9, 0.999, 1e-16), id="AdaBelief (example)"),
    pytest.param(
        lambda ps: AdaBelief(ps, lr=0.1, betas=(0.5, 0.7), eps=0.1),
        hand_adabelief(0.1, 0.5, 0.7, 0.1),
        id="AdaBelief (example) betas eps",
    ),
]


@pytest.mark.parametrize("make, expected", FIRST_STEPS)
def test_first_three_steps_match_the_equations(make: Factory, expected: list[np.ndarray]) -> None:
    """Each optimizer's first three steps equal its recurrence written out in numpy."""
    for t, (got, want) in enumerate(zip(three_steps(make), expected), start=1):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, err_msg=f"step {t}")


def test_first_steps_by_hand_on_a_scalar() -> None:
    """Numbers worked out on paper: w₀ = 1, gradients 1, 2, 3, lr 0.1.

    SGD(momentum 0.9): v = 1, 2.9, 5.61, so w = 0.9, 0.61, 0.049.
    Momentum(β 0.5): v = 0.5, 1.25, 2.125, so w = 0.95, 0.825, 0.6125;
    bias-corrected, v/(1-βᵗ) = 1, 5/3, 17/7, so w = 0.9, 11/15, 103/210.
    Adam's first step is lr·g/(|g| + eps): m̂ = g and sqrt(ŝ) = |g|.
    """
    cases = [
        (lambda ps: SGD(ps, lr=0.1, momentum=0.9), [0.9, 0.61, 0.049]),
        (lambda ps: Momentum(ps, lr=0.1, beta=0.5), [0.95, 0.825, 0.6125]),
        (lambda ps: Momentum(ps, lr=0.1, beta=0.5, bias_correction=True), [0.9, 11 / 15, 103 / 210]),
    ]
    for make, want in cases:
        p = mg.Tensor(np.array([1.0]), requires_grad=True)
        optimizer = make([p])
        got = []
        for g in (1.0, 2.0, 3.0):
            p.grad = np.array([g])
            optimizer.step()
            got.append(p.data[0])
        np.testing.assert_allclose(got, want, rtol=1e-12)
    p = mg.Tensor(np.array([1.0, 1.0, 1.0]), requires_grad=True)
    optimizer = Adam([p], lr=0.1)
    p.grad = np.array([3.0, -0.02, 1e3])
    optimizer.step()
    want = [1 - 0.1 * 3 / (3 + 1e-8), 1 + 0.1 * 0.02 / (0.02 + 1e-8), 1 - 0.1 * 1e3 / (1e3 + 1e-8)]
    np.testing.assert_allclose(p.data, want, rtol=1e-12)


def scalar_path(optimizer_class: type[Optimizer], grads: list[float], **hyperparameters: Any) -> list[float]:
    """w after each step from w₀ = 1 with the given gradients set by hand."""
    p = mg.Tensor(np.array([1.0]), requires_grad=True)
    optimizer = optimizer_class([p], **hyperparameters)
    path = []
    for g in grads:
        p.grad = np.array([g])
        optimizer.step()
        path.append(float(p.data[0]))
    return path


def test_new_optimizers_first_steps_worked_on_paper() -> None:
    """Numbers worked out by hand from w₀ = 1, lr 0.1 (eps tiny, so the tolerance is 1e-9).

    AdamW(λ 0.5), g = 3: decay to 0.95, then Adam's first step lr·g/|g|: 0.85.
    Lion(λ 0.5), g = 3, -2: c = 0.3, w = 1 - 0.1·(1 + 0.5) = 0.85; m = 0.03,
    c = 0.027 - 0.2 < 0, w = 0.85 - 0.1·(-1 + 0.425) = 0.9075.
    Adagrad(lr_decay 1), g = 3, 4: 1 - 0.1·3/3 = 0.9; S = 25, lr/2: 0.9 - 0.05·4/5 = 0.86.
    RMSprop(α 0.75), g = 3: s = 0.25·9, step 0.1·3/1.5 = 0.2: 0.8; centred with
    α = 0.5: s - a² = 4.5 - 2.25, step 0.1·3/1.5 again.
    NAdam(ψ = 0, so μ = β1/2 = 0.45 every step), g = 3: lr·(1 + 0.45·0.1/(1 - 0.45²)).
    Lion(betas 0.9, 0.5), g = 1, -4, 15, which tell β1's role from β2's:
    c = 0.1 > 0, w = 0.9, m = 0.5; c = 0.45 - 0.4 > 0, w = 0.8, m = 0.25 - 2 = -1.75;
    c = -1.575 + 1.5 < 0, w = 0.9 (had m kept β1, m = -1.55 and c > 0).
    """
    np.testing.assert_allclose(scalar_path(AdamW, [3.0], lr=0.1, weight_decay=0.5, eps=1e-12), [0.85], rtol=1e-9)
    np.testing.assert_allclose(scalar_path(Lion, [3.0, -2.0], lr=0.1, weight_decay=0.5), [0.85, 0.9075], rtol=1e-12)
    np.testing.assert_allclose(scalar_path(Adagrad, [3.0, 4.0], lr=0.1, lr_decay=1.0), [0.9, 0.86], rtol=1e-9)
    np.testing.assert_allclose(scalar_path(RMSprop, [3.0], lr=0.1, alpha=0.75, eps=1e-12), [0.8], rtol=1e-9)
    centred = scalar_path(RMSprop, [3.0], lr=0.1, alpha=0.5, eps=1e-12, centered=True)
    np.testing.assert_allclose(centred, [0.8], rtol=1e-9)
    lion = scalar_path(Lion, [1.0, -4.0, 15.0], lr=0.1, betas=(0.9, 0.5))
    np.testing.assert_allclose(lion, [0.9, 0.8, 0.9], rtol=1e-12)
    nadam = scalar_path(NAdam, [3.0], lr=0.1, momentum_decay=0.0)
    np.testing.assert_allclose(nadam, [1 - 0.1 * (1 + 0.45 * 0.1 / (1 - 0.45**2))], rtol=1e-9)


# ---------------------------------------------------------------------------
# The two equivalences, over 50 steps on a non-quadratic loss
# ---------------------------------------------------------------------------

_rng = np.random.default_rng(0)
A = _rng.normal(size=(8, 5)) / 2
START_W = _rng.normal(size=5)
START_B = _rng.normal(size=8) / 2


def bumpy_loss(w: mg.Tensor, b: mg.Tensor) -> mg.Tensor:
    """f(w, b) = Σ log cosh(A·w + b) + ¼Σ w⁴ + ¼Σ b⁴ (not quadratic; its Hessian moves)."""
    z = mg.Tensor(A) @ w + b
    log_cosh = ((z.exp() + (-z).exp()) * 0.5).log()
    return log_cosh.sum() + 0.25 * (w * w * w * w).sum() + 0.25 * (b * b * b * b).sum()


def bumpy_grad(w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dw, db) of :func:`bumpy_loss` by hand: t = tanh(A·w + b); dw = Aᵀt + w³, db = t + b³."""
    t = np.tanh(A @ w + b)
    return A.T @ t + w**3, t + b**3


def descend_bumpy(make: Factory, steps: int = 50) -> list[tuple[np.ndarray, np.ndarray]]:
    """Run ``make([w, b])`` on :func:`bumpy_loss` through backward(); (w, b) after each step."""
    w = mg.Tensor(START_W.copy(), requires_grad=True)
    b = mg.Tensor(START_B.copy(), requires_grad=True)
    optimizer = make([w, b])
    path = []
    for _ in range(steps):
        optimizer.zero_grad()
        bumpy_loss(w, b).backward()
        optimizer.step()
        path.append((w.data.copy(), b.data.copy()))
    return path


def test_bumpy_loss_gradient_is_what_the_hand_version_uses() -> None:
    """backward() on the test loss agrees with its hand gradient (so the equivalences compare like with like)."""
    w = mg.Tensor(START_W.copy(), requires_grad=True)
    b = mg.Tensor(START_B.copy(), requires_grad=True)
    bumpy_loss(w, b).backward()
    dw, db = bumpy_grad(START_W, START_B)
    np.testing.assert_allclose(w.grad, dw, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(b.grad, db, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("lr, beta, weight_decay", [(0.1, 0.9, 0.0), (0.3, 0.5, 0.0), (0.1, 0.9, 0.05)])
def test_momentum_equals_sgd_with_lr_times_one_minus_beta(lr: float, beta: float, weight_decay: float) -> None:
    """Momentum(lr, β) takes the steps of SGD(lr·(1-β), momentum=β), at every one of 50 steps."""
    ewa = descend_bumpy(lambda ps: Momentum(ps, lr=lr, beta=beta, weight_decay=weight_decay))
    classic = descend_bumpy(lambda ps: SGD(ps, lr=lr * (1 - beta), momentum=beta, weight_decay=weight_decay))
    for t, ((w1, b1), (w2, b2)) in enumerate(zip(ewa, classic), start=1):
        np.testing.assert_allclose(w1, w2, rtol=1e-12, atol=1e-13, err_msg=f"w at step {t}")
        np.testing.assert_allclose(b1, b2, rtol=1e-12, atol=1e-13, err_msg=f"b at step {t}")
    assert np.abs(ewa[-1][0] - START_W).max() > 0.1  # the run went somewhere


@pytest.mark.parametrize("alpha, beta", [(0.1, 0.9), (0.5, 0.9), (0.3, 0.5)])
def test_lr_inside_the_velocity_is_sgd_with_folded_alpha(alpha: float, beta: float) -> None:
    """The rule vdw = α(β·vdw + (1-β)·dw); w = w - vdw (and vdb for b) is SGD(α(1-β), momentum=αβ)."""
    w, b = START_W.copy(), START_B.copy()
    vdw, vdb = np.zeros_like(w), np.zeros_like(b)
    literal = []
    for _ in range(50):
        dw, db = bumpy_grad(w, b)
        vdw = alpha * (beta * vdw + (1 - beta) * dw)
        vdb = alpha * (beta * vdb + (1 - beta) * db)
        w = w - vdw
        b = b - vdb  # each parameter with its own velocity
        literal.append((w, b))
    sgd = descend_bumpy(lambda ps: SGD(ps, lr=alpha * (1 - beta), momentum=alpha * beta))
    for t, ((w1, b1), (w2, b2)) in enumerate(zip(literal, sgd), start=1):
        np.testing.assert_allclose(w2, w1, rtol=1e-12, atol=1e-13, err_msg=f"w at step {t}")
        np.testing.assert_allclose(b2, b1, rtol=1e-12, atol=1e-13, err_msg=f"b at step {t}")
    assert np.abs(literal[-1][0] - START_W).max() > 0.1


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


def test_steady_state_step_on_a_constant_gradient() -> None:
    """On a constant g, Momentum's step tends to lr·g (plain SGD's), SGD(momentum=β)'s to lr·g/(1-β)."""
    g = np.array([1.0, -2.0, 0.5])
    lr, beta = 0.1, 0.9
    expected = {
        "sgd": (lambda ps: SGD(ps, lr=lr), lr * g),
        "momentum": (lambda ps: Momentum(ps, lr=lr, beta=beta), lr * g),
        "classic": (lambda ps: SGD(ps, lr=lr, momentum=beta), lr * g / (1 - beta)),
    }
    for name, (make, steady) in expected.items():
        p = mg.Tensor(np.zeros(3), requires_grad=True)
        optimizer = make([p])
        steps = []
        for _ in range(400):  # β^400 ≈ 5e-19: the transient is gone
            before = p.data.copy()
            p.grad = g.copy()
            optimizer.step()
            steps.append(before - p.data)
        np.testing.assert_allclose(steps[-1], steady, rtol=1e-9, err_msg=name)
    # The two momentum forms differ by exactly 1/(1-β) = 10 in the limit, so
    # a learning rate tuned for one is 10x off for the other.
    np.testing.assert_allclose(expected["classic"][1] / expected["momentum"][1], 1 / (1 - beta))


# ---------------------------------------------------------------------------
# The registry: every optimizer drives a quadratic to its minimum
# ---------------------------------------------------------------------------

H_W, C_W = np.array([1.0, 3.0, 10.0]), np.array([2.0, -1.0, 0.5])
H_B, C_B = np.array([0.5, 4.0]), np.array([-3.0, 1.0])


def quadratic(w: mg.Tensor, b: mg.Tensor) -> mg.Tensor:
    """f = ½Σ h_w·(w - c_w)² + ½Σ h_b·(b - c_b)², minimum 0 at (c_w, c_b)."""
    dw, db = w - C_W, b - C_B
    return 0.5 * (dw * dw * H_W).sum() + 0.5 * (db * db * H_B).sum()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_minimises_a_quadratic(name: str) -> None:
    """Each registered optimizer, the example's AdaBelief included, reaches the quadratic's minimum."""
    w = mg.Tensor(np.zeros(3), requires_grad=True)
    b = mg.Tensor(np.zeros(2), requires_grad=True)
    optimizer = OPTIMIZERS[name]([w, b])
    for _ in range(1000):
        optimizer.zero_grad()
        quadratic(w, b).backward()
        optimizer.step()
    np.testing.assert_allclose(w.data, C_W, atol=1e-6)
    np.testing.assert_allclose(b.data, C_B, atol=1e-6)
    with mg.no_grad():
        assert quadratic(w, b).item() < 1e-10


@pytest.mark.parametrize("name", APPROXIMATE)
def test_sign_and_decay_optimizers_get_near_the_quadratic_minimum(name: str) -> None:
    """Lion and decoupled decay cannot settle exactly, but the loss falls 10⁴-fold and w, b end near the minimum."""
    make, tol = APPROXIMATE[name]
    w = mg.Tensor(np.zeros(3), requires_grad=True)
    b = mg.Tensor(np.zeros(2), requires_grad=True)
    optimizer = make([w, b])
    with mg.no_grad():
        start = quadratic(w, b).item()
    for _ in range(1000):
        optimizer.zero_grad()
        quadratic(w, b).backward()
        optimizer.step()
    np.testing.assert_allclose(w.data, C_W, atol=tol)
    np.testing.assert_allclose(b.data, C_B, atol=tol)
    with mg.no_grad():
        assert quadratic(w, b).item() < 1e-4 * start


# ---------------------------------------------------------------------------
# The claim, measured: momentum in the ravine
# ---------------------------------------------------------------------------

RAVINE = np.array([1.0, 100.0])  # f = (x² + 100·y²)/2, condition number 100
LR_GRID = np.logspace(-4, 1, 31)  # one shared grid, 1e-4 .. 10
STEP_CAP = 20_000


def ravine_steps(make: Callable[[list[mg.Tensor], float], Optimizer], lr: float, cap: int) -> int | None:
    """Steps from (1, 1) until f < 1e-8 (None if not within ``cap`` steps, or diverging).

    The gradient (x, 100·y) is set by hand; the optimizer does the rest, in float64.
    """
    w = mg.Tensor(np.array([1.0, 1.0]), requires_grad=True)
    optimizer = make([w], lr)
    for t in range(cap + 1):
        f = 0.5 * float(np.sum(RAVINE * w.data**2))
        if f < 1e-8:
            return t
        if t == cap or not f < 1e12:
            return None
        w.grad = RAVINE * w.data
        optimizer.step()
    return None


def best_on_grid(make: Callable[[list[mg.Tensor], float], Optimizer]) -> tuple[int, float]:
    """Fewest steps to f < 1e-8 over LR_GRID, and the learning rate that took them.

    Rates are tried from the largest down, each capped at one step fewer than
    the best so far (a run that needs more cannot be the best): the answer is
    the full search's, without running the tiny rates for 20,000 steps.
    """
    best_steps, best_lr = STEP_CAP + 1, float("nan")
    for lr in LR_GRID[::-1]:
        steps = ravine_steps(make, float(lr), min(STEP_CAP, best_steps - 1))
        if steps is not None:
            best_steps, best_lr = steps, float(lr)
    return best_steps, best_lr


def ravine_measurement() -> dict[str, tuple[int, float]]:
    """{"sgd": (steps, lr), "momentum": (steps, lr)} at each one's best grid rate."""
    return {
        "sgd": best_on_grid(lambda ps, lr: SGD(ps, lr=lr)),
        "momentum": best_on_grid(lambda ps, lr: Momentum(ps, lr=lr, beta=0.9)),
    }


def test_momentum_beats_sgd_in_the_ravine() -> None:
    """Momentum(β=0.9) reaches f < 1e-8 in at least 2.5x fewer steps than plain SGD, both tuned."""
    result = ravine_measurement()
    (sgd_steps, sgd_lr), (momentum_steps, momentum_lr) = result["sgd"], result["momentum"]
    assert sgd_steps <= STEP_CAP and momentum_steps <= STEP_CAP
    # Neither best rate sits at the edge of the grid, so the grid was wide enough.
    assert LR_GRID[0] < sgd_lr < LR_GRID[-1] and LR_GRID[0] < momentum_lr < LR_GRID[-1]
    assert sgd_steps >= 2.5 * momentum_steps, result


# ---------------------------------------------------------------------------
# What step() must not do
# ---------------------------------------------------------------------------


def buffers(optimizer: Optimizer) -> list[np.ndarray]:
    """Every array in the optimizer's per-parameter state."""
    return [v for state in optimizer.state for v in state.values() if isinstance(v, np.ndarray)]


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_step_leaves_grad_unchanged_and_unaliased(name: str) -> None:
    """.grad keeps its object, dtype and every bit; no buffer shares memory with .grad or .data."""
    w = mg.Tensor(W0.copy(), requires_grad=True)
    b = mg.Tensor(np.array([0.5, -0.5], dtype=np.float32), requires_grad=True)
    optimizer = ALL_CONFIGS[name]([w, b])
    for grad_w, grad_b in zip(GRADS, ([1.0, -2.0], [0.0, 3.0], [-1.0, 0.5])):
        w.grad, b.grad = grad_w.copy(), np.array(grad_b, dtype=np.float32)
        kept = [(p.grad, p.grad.copy()) for p in (w, b)]
        optimizer.step()
        for p, (obj, copy_) in zip((w, b), kept):
            assert p.grad is obj
            assert p.grad.dtype == copy_.dtype and np.array_equal(p.grad, copy_)
        for buf in buffers(optimizer):
            for p in (w, b):
                assert not np.shares_memory(buf, p.grad)
                assert not np.shares_memory(buf, p.data)
    # A gradient kept for several steps (never re-set) stays put too.
    frozen = w.grad.copy()
    for _ in range(3):
        optimizer.step()
    assert np.array_equal(w.grad, frozen)
    assert w.data.dtype == np.float64 and b.data.dtype == np.float32


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_parameter_without_gradient_is_skipped(name: str) -> None:
    """A parameter whose .grad is None keeps its data and gets no state."""
    a = mg.Tensor(W0.copy(), requires_grad=True)
    b = mg.Tensor(np.array([0.5, -0.5]), requires_grad=True)
    optimizer = ALL_CONFIGS[name]([a, b])
    for grad in GRADS:
        a.grad = grad.copy()
        optimizer.step()
    assert b.grad is None
    assert np.array_equal(b.data, [0.5, -0.5])
    assert optimizer.state[1] == {}
    assert optimizer.state[0]["step"] == 3
    assert not np.array_equal(a.data, W0)


def test_skipped_steps_do_not_count_towards_bias_correction() -> None:
    """A parameter that first gets a gradient at step 4 is corrected with t = 1: its step is lr·g."""
    a = mg.Tensor(np.zeros(2), requires_grad=True)
    b = mg.Tensor(np.array([1.0, -1.0]), requires_grad=True)
    optimizer = Momentum([a, b], lr=0.1, beta=0.9, bias_correction=True)
    for _ in range(3):
        a.grad = np.ones(2)
        optimizer.step()
    b.grad = np.array([2.0, 4.0])
    optimizer.step()
    # v = (1-β)·g and v/(1-β¹) = g
    np.testing.assert_allclose(b.data, [1.0 - 0.1 * 2.0, -1.0 - 0.1 * 4.0], rtol=1e-12)
    assert optimizer.state[1]["step"] == 1


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


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_step_records_no_graph(name: str) -> None:
    """After step() the parameter is still a leaf holding the same array, updated in place."""
    p = mg.Tensor(W0.copy(), requires_grad=True)
    optimizer = OPTIMIZERS[name]([p])
    array = p.data
    (p * p).sum().backward()
    optimizer.step()
    assert mg.is_grad_enabled()
    assert p.data is array and not np.array_equal(array, W0)
    assert p.requires_grad and p.is_leaf
    # The next forward/backward works as on any leaf.
    p.grad = None
    (p * 3.0).sum().backward()
    np.testing.assert_array_equal(p.grad, np.full(W0.shape, 3.0))


# ---------------------------------------------------------------------------
# Validation: the parameter list and the hyperparameters
# ---------------------------------------------------------------------------


def test_optimizer_rejects_an_empty_parameter_list() -> None:
    """An empty list (or an exhausted generator) is a ValueError."""
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        Adam(p for p in [])


def test_optimizer_rejects_a_non_tensor_naming_it() -> None:
    """An item that is not a Tensor is a TypeError naming its position and type."""
    p = mg.Tensor(np.zeros(2), requires_grad=True)
    with pytest.raises(TypeError, match=r"parameter 1 is a ndarray"):
        SGD([p, np.zeros(2)], lr=0.1)


def test_optimizer_rejects_a_tensor_without_grad_naming_it() -> None:
    """A tensor that does not require grad is a ValueError saying which one."""
    p = mg.Tensor(np.zeros(2), requires_grad=True)
    frozen = mg.Tensor(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"parameter 1 \(shape \(4, 3\)\) does not require grad"):
        Momentum([p, frozen], lr=0.1)


def test_optimizer_rejects_the_output_of_an_op() -> None:
    """A non-leaf never gets a .grad from backward(): it was accepted and then never changed (PyTorch refuses it)."""
    p = mg.Tensor(np.zeros(2), requires_grad=True)
    scaled = mg.Tensor(np.ones(3), requires_grad=True) * 0.01
    with pytest.raises(ValueError, match=r"SGD: parameter 1 \(shape \(3,\)\) is the output of an op \(mul\), not a"):
        SGD([p, scaled], lr=0.1)


def test_optimizer_rejects_a_single_tensor() -> None:
    """A Tensor instead of a list of Tensors is a TypeError that says so."""
    p = mg.Tensor(np.zeros(2), requires_grad=True)
    with pytest.raises(TypeError, match="single Tensor"):
        SGD(p, lr=0.1)


def test_optimizer_given_the_method_not_its_result_says_call_it() -> None:
    model = mg.nn.MLP([2, 3, 2])
    with pytest.raises(TypeError, match=r"did you mean model\.parameters\(\)"):
        mg.optim.SGD(model.parameters, lr=0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"did you mean model\.parameters\(\)"):
        mg.optim.Adam(model.named_parameters, lr=0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"pass model\.parameters\(\)"):
        mg.optim.SGD(model.named_parameters(), lr=0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"iterable of Tensors .*got int"):
        mg.optim.SGD(3, lr=0.1)  # type: ignore[arg-type]


def test_optimizer_rejects_a_repeated_parameter() -> None:
    """The same parameter twice would be updated twice per step: a ValueError."""
    p = mg.Tensor(np.zeros(2), requires_grad=True)
    with pytest.raises(ValueError, match="more than once"):
        SGD([p, p], lr=0.1)


def test_optimizer_takes_any_iterable_of_parameters() -> None:
    """A generator such as model.parameters() written lazily is accepted and kept as a list."""
    mg.manual_seed(0)
    model = mg.nn.MLP([3, 4, 2])
    optimizer = SGD((p for p in model.parameters()), lr=0.1)
    assert optimizer.params == model.parameters()


def test_base_class_needs_an_update_rule() -> None:
    """Optimizer itself has no rule: step() on a parameter with a gradient says update() is missing."""
    p = mg.Tensor(np.zeros(2), requires_grad=True)
    optimizer = Optimizer([p])
    p.grad = np.ones(2)
    with pytest.raises(NotImplementedError, match="update"):
        optimizer.step()


def test_hyperparameter_names_cannot_shadow_the_base_class():
    class Bad(mg.optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, lr=lr, state=0.5)

    with pytest.raises(ValueError, match=r"\['state'\]"):
        Bad([mg.nn.Parameter(np.zeros(2))])


def make_param() -> list[mg.Tensor]:
    """A one-parameter list for the constructors below."""
    return [mg.Tensor(np.zeros(2), requires_grad=True)]


def param(*values: float, dtype: type = np.float64) -> mg.Tensor:
    """A leaf parameter holding ``values``."""
    return mg.Tensor(np.array(values, dtype=dtype), requires_grad=True)


INVALID = [
    pytest.param(lambda: SGD(make_param(), lr=-0.1), "-0.1", id="SGD lr<0"),
    pytest.param(lambda: SGD(make_param(), lr=float("nan")), "nan", id="SGD lr nan"),
    pytest.param(lambda: SGD(make_param(), lr=0.1, momentum=-0.5), "-0.5", id="SGD momentum<0"),
    pytest.param(lambda: SGD(make_param(), lr=0.1, nesterov=True), "momentum=0.0", id="SGD nesterov without momentum"),
    pytest.param(lambda: SGD(make_param(), lr=0.1, weight_decay=-1e-4), "-0.0001", id="SGD weight_decay<0"),
    pytest.param(lambda: Momentum(make_param(), lr=-1.0), "-1.0", id="Momentum lr<0"),
    pytest.param(lambda: Momentum(make_param(), lr=0.1, beta=1.0), "1.0", id="Momentum beta=1"),
    pytest.param(lambda: Momentum(make_param(), lr=0.1, beta=1.5), "1.5", id="Momentum beta>1"),
    pytest.param(lambda: Momentum(make_param(), lr=0.1, beta=-0.1), "-0.1", id="Momentum beta<0"),
    pytest.param(lambda: Momentum(make_param(), lr=0.1, weight_decay=-0.5), "-0.5", id="Momentum weight_decay<0"),
    pytest.param(lambda: Adam(make_param(), lr=-0.001), "-0.001", id="Adam lr<0"),
    pytest.param(lambda: Adam(make_param(), betas=(1.0, 0.999)), "1.0", id="Adam beta1=1"),
    pytest.param(lambda: Adam(make_param(), betas=(-0.2, 0.999)), "-0.2", id="Adam beta1<0"),
    pytest.param(lambda: Adam(make_param(), betas=(0.9, 1.0)), "1.0", id="Adam beta2=1"),
    pytest.param(lambda: Adam(make_param(), betas=(0.9, 1.25)), "1.25", id="Adam beta2>1"),
    pytest.param(lambda: Adam(make_param(), eps=0.0), "0.0", id="Adam eps=0"),
    pytest.param(lambda: Adam(make_param(), eps=-1e-8), "-1e-08", id="Adam eps<0"),
    pytest.param(lambda: Adam(make_param(), weight_decay=-0.01), "-0.01", id="Adam weight_decay<0"),
    pytest.param(lambda: RMSprop(make_param(), alpha=1.0), "1.0", id="RMSprop alpha=1"),
    pytest.param(lambda: RMSprop(make_param(), eps=0.0), "0.0", id="RMSprop eps=0"),
    pytest.param(lambda: AdamW(make_param(), betas=(0.9, 1.0)), "1.0", id="AdamW beta2=1"),
    pytest.param(lambda: NAdam(make_param(), eps=0.0), "0.0", id="NAdam eps=0"),
    pytest.param(lambda: Lion(make_param(), betas=(1.5, 0.99)), "1.5", id="Lion beta1>1"),
    pytest.param(lambda: Adagrad(make_param(), eps=0.0), "0.0", id="Adagrad eps=0"),
    pytest.param(lambda: AdaBelief(make_param(), lr=-0.01), "-0.01", id="AdaBelief lr<0"),
]


@pytest.mark.parametrize("build, value", INVALID)
def test_invalid_hyperparameter_raises_with_its_value(build: Callable[[], Optimizer], value: str) -> None:
    """Each invalid hyperparameter is a ValueError whose message shows the value."""
    with pytest.raises(ValueError, match=re.escape(value)):
        build()


# Every number-valued hyperparameter of every optimizer, with the rest at valid values.
NUMERIC_HYPERPARAMETERS: list[tuple[type[Optimizer], dict[str, Any], list[str]]] = [
    (SGD, {"lr": 0.1, "momentum": 0.5}, ["lr", "momentum", "weight_decay"]),
    (Momentum, {"lr": 0.1}, ["lr", "beta", "weight_decay"]),
    (Adam, {}, ["lr", "eps", "weight_decay"]),
    (AdamW, {}, ["lr", "eps", "weight_decay"]),
    (NAdam, {}, ["lr", "eps", "weight_decay", "momentum_decay"]),
    (RMSprop, {}, ["lr", "alpha", "eps", "weight_decay", "momentum"]),
    (Adagrad, {}, ["lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"]),
    (Lion, {}, ["lr", "weight_decay"]),
]
BAD_NUMBERS = [-1.0, -1, float("nan"), float("inf"), -float("inf"), "0.1", None, True, [0.1], np.array(0.1)]


@pytest.mark.parametrize(
    "cls, valid, name",
    [(cls, valid, name) for cls, valid, names in NUMERIC_HYPERPARAMETERS for name in names],
    ids=lambda x: x.__name__ if isinstance(x, type) else (x if isinstance(x, str) else ""),
)
@pytest.mark.parametrize("bad", BAD_NUMBERS, ids=repr)
def test_each_bad_number_is_refused_naming_the_hyperparameter(
    cls: type[Optimizer], valid: dict[str, Any], name: str, bad: Any
) -> None:
    """Negative, NaN, ±inf, a string, None, a bool, a list or an array: refused, naming it and asking for a number."""
    with pytest.raises((TypeError, ValueError), match=rf"invalid {name}: expected a number"):
        cls(make_param(), **{**valid, name: bad})


@pytest.mark.parametrize("cls", [Adam, AdamW, NAdam, Lion])
@pytest.mark.parametrize(
    "betas, message",
    [
        ((float("nan"), 0.9), r"invalid betas\[0\]: expected a number in \[0, 1\)"),
        ((0.9, "0.99"), r"invalid betas\[1\]: expected a number"),
        ("0.9", r"invalid betas: expected a pair of numbers"),
        ((0.9,), r"invalid betas: expected a pair of numbers"),
        (None, r"invalid betas: expected a pair of numbers"),
    ],
)
def test_bad_betas_are_refused_naming_them(cls: type[Optimizer], betas: Any, message: str) -> None:
    """betas must be a pair of numbers in [0, 1); the message names which one is wrong."""
    with pytest.raises((TypeError, ValueError), match=message):
        cls(make_param(), betas=betas)


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda v: SGD(make_param(), lr=0.1, momentum=0.9, nesterov=v), "nesterov"),
        (lambda v: Momentum(make_param(), lr=0.1, bias_correction=v), "bias_correction"),
        (lambda v: RMSprop(make_param(), centered=v), "centered"),
    ],
    ids=["nesterov", "bias_correction", "centered"],
)
@pytest.mark.parametrize("bad", [0.5, 1, 0, "no", None], ids=repr)
def test_flags_must_be_bools(build: Callable[[Any], Optimizer], name: str, bad: Any) -> None:
    """A flag is True or False (numpy's too); 0.5, 1, 'no' or None is refused, naming it."""
    with pytest.raises(TypeError, match=rf"invalid {name}: expected True or False, got {re.escape(repr(bad))}"):
        build(bad)
    assert build(np.True_).hyperparameters[name] is True  # numpy's bool is a bool, stored as Python's


def test_boundary_hyperparameters_are_valid() -> None:
    """lr = 0, momentum = 0, beta = 0 and weight_decay = 0 are allowed (the ranges are [0, ...))."""
    SGD(make_param(), lr=0.0, momentum=0.0, weight_decay=0.0)
    Momentum(make_param(), lr=0.0, beta=0.0)
    Adam(make_param(), lr=0.0, betas=(0.0, 0.0), eps=1e-30)
    RMSprop(make_param(), lr=0.0, alpha=0.0, momentum=0.0)
    Adagrad(make_param(), lr=0.0, lr_decay=0.0, initial_accumulator_value=0.0)
    NAdam(make_param(), lr=0.0, betas=(0.0, 0.0), momentum_decay=0.0)
    Lion(make_param(), lr=0.0, betas=(0.0, 0.0))
    AdamW(make_param(), lr=0.0, weight_decay=0.0)


# ---------------------------------------------------------------------------
# state_dict / load_state_dict and an exact resume
# ---------------------------------------------------------------------------


def assert_same_state(a: Any, b: Any) -> None:
    """Nested dicts of arrays/numbers are equal bit for bit (and have the same keys)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (a, b)
        for k in a:
            assert_same_state(a[k], b[k])
    else:
        assert np.array_equal(np.asarray(a), np.asarray(b)), (a, b)


def two_params() -> list[mg.Tensor]:
    """Parameters of shapes (2, 3) and (2,), float64."""
    return [mg.Tensor(W0.copy(), requires_grad=True), mg.Tensor(np.array([1.0, -1.0]), requires_grad=True)]


def run_steps(optimizer: Optimizer, grads_b: list[list[float]]) -> None:
    """Step ``optimizer`` (two_params) with GRADS for the first and ``grads_b`` for the second."""
    w, b = optimizer.params
    for grad_w, grad_b in zip(GRADS, grads_b):
        w.grad, b.grad = grad_w.copy(), np.array(grad_b)
        optimizer.step()


def test_state_dict_holds_hyperparameters_step_count_and_buffers() -> None:
    """SGD(momentum)'s state after two steps: its hyperparameters, 2, and v = β·g₁ + g₂ (+ decay) by hand."""
    params = two_params()
    optimizer = SGD(params, lr=0.1, momentum=0.9, weight_decay=0.01)
    run_steps(optimizer, [[1.0, 2.0], [3.0, -4.0]])
    state = optimizer.state_dict()
    assert state["hyperparameters"] == {"lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 0.01}
    assert state["step_count"] == 2
    assert set(state["state"]) == {"0", "1"}
    w, b = W0.copy(), np.array([1.0, -1.0])
    v_w = GRADS[0] + 0.01 * w
    v_b = np.array([1.0, 2.0]) + 0.01 * b
    w, b = w - 0.1 * v_w, b - 0.1 * v_b
    v_w = 0.9 * v_w + GRADS[1] + 0.01 * w
    v_b = 0.9 * v_b + np.array([3.0, -4.0]) + 0.01 * b
    np.testing.assert_allclose(state["state"]["0"]["v"], v_w, rtol=1e-12)
    np.testing.assert_allclose(state["state"]["1"]["v"], v_b, rtol=1e-12)
    assert int(state["state"]["0"]["step"]) == 2
    # The state dict is a copy: changing it changes nothing in the optimizer.
    state["state"]["0"]["v"][...] = 0.0
    assert not np.array_equal(optimizer.state[0]["v"], 0.0)


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


@pytest.mark.parametrize(
    "make, names",
    [
        (lambda ps: Momentum(ps, lr=0.1, bias_correction=True), {"lr", "beta", "bias_correction", "weight_decay"}),
        (lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.99)), {"lr", "betas", "eps", "weight_decay"}),
        (lambda ps: AdaBelief(ps, lr=0.01), {"lr", "betas", "eps"}),
        (lambda ps: AdamW(ps), {"lr", "betas", "eps", "weight_decay"}),
        (lambda ps: NAdam(ps), {"lr", "betas", "eps", "weight_decay", "momentum_decay"}),
        (
            lambda ps: RMSprop(ps, momentum=0.5, centered=True),
            {"lr", "alpha", "eps", "weight_decay", "momentum", "centered"},
        ),
        (lambda ps: Adagrad(ps), {"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"}),
        (lambda ps: Lion(ps), {"lr", "betas", "weight_decay"}),
    ],
    ids=["Momentum", "Adam", "AdaBelief", "AdamW", "NAdam", "RMSprop", "Adagrad", "Lion"],
)
def test_state_dict_of_each_optimizer(make: Factory, names: set[str]) -> None:
    """Each optimizer's state dict names its hyperparameters and holds one buffer per parameter per kind."""
    optimizer = make(two_params())
    run_steps(optimizer, [[1.0, 2.0], [3.0, -4.0], [0.5, 0.5]])
    state = optimizer.state_dict()
    assert set(state["hyperparameters"]) == names
    assert state["step_count"] == 3
    for i, p in enumerate(optimizer.params):
        entry = state["state"][str(i)]
        assert int(entry["step"]) == 3
        assert set(entry) == {"step", *optimizer.buffer_names, *optimizer.scalar_names}  # each kind is used
        for key, value in entry.items():
            if key in optimizer.buffer_names:
                assert value.shape == p.shape and value.dtype == p.dtype
            else:
                assert value.shape == ()


def test_load_state_dict_restores_hyperparameters() -> None:
    """Loading replaces the hyperparameters the optimizer was built with by the saved ones."""
    source = SGD(two_params(), lr=0.5, momentum=0.25)
    target = SGD(two_params(), lr=1, momentum=0.9, nesterov=True)  # an int lr is a valid lr
    target.load_state_dict(source.state_dict())
    assert (target.lr, target.momentum, target.nesterov) == (0.5, 0.25, False)
    adam = Adam(two_params())
    adam.load_state_dict(Adam(two_params(), lr=0.02, betas=(0.5, 0.6), eps=1e-6).state_dict())
    assert (adam.lr, adam.betas, adam.eps) == (0.02, (0.5, 0.6), 1e-6)


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


def corrupt_wrong_shape(state: dict[str, Any]) -> None:
    """Parameter 1's velocity gets the wrong shape (after a valid change to parameter 0's)."""
    state["state"]["0"]["v"] = state["state"]["0"]["v"] + 1.0
    state["state"]["1"]["v"] = np.zeros(5)


def corrupt_wrong_dtype(state: dict[str, Any]) -> None:
    """Parameter 1's velocity gets float32 for a float64 parameter."""
    state["state"]["0"]["v"] = state["state"]["0"]["v"] + 1.0
    state["state"]["1"]["v"] = state["state"]["1"]["v"].astype(np.float32)


def corrupt_index(state: dict[str, Any]) -> None:
    """State for a parameter 2 that does not exist (two parameters)."""
    state["state"]["0"]["v"] = state["state"]["0"]["v"] + 1.0
    state["state"]["2"] = {"step": np.array(1), "v": np.zeros(2)}


def corrupt_lr(state: dict[str, Any]) -> None:
    """A negative learning rate (with valid new buffers)."""
    state["state"]["0"]["v"] = state["state"]["0"]["v"] + 1.0
    state["hyperparameters"]["lr"] = -0.5


def corrupt_missing(state: dict[str, Any]) -> None:
    """No step count at all."""
    del state["step_count"]


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (corrupt_wrong_shape, r"shape \(5,\)"),
        (corrupt_wrong_dtype, "float32"),
        (corrupt_index, "'2'"),
        (corrupt_lr, "-0.5"),
        (corrupt_missing, "step_count"),
    ],
    ids=["buffer shape", "buffer dtype", "index out of range", "invalid lr", "missing key"],
)
def test_load_state_dict_validates_before_changing_anything(
    corrupt: Callable[[dict[str, Any]], None], message: str
) -> None:
    """A bad state is a ValueError, and the optimizer is untouched: same state, same next step."""
    optimizer, twin = SGD(two_params(), lr=0.1, momentum=0.9), SGD(two_params(), lr=0.1, momentum=0.9)
    for opt in (optimizer, twin):
        run_steps(opt, [[1.0, 2.0], [3.0, -4.0]])
    before = optimizer.state_dict()
    bad = copy.deepcopy(before)
    bad["step_count"] = 99
    corrupt(bad)
    with pytest.raises(ValueError, match=message):
        optimizer.load_state_dict(bad)
    assert_same_state(optimizer.state_dict(), before)
    assert optimizer.lr == 0.1
    run_steps(optimizer, [[0.5, 0.5]])
    run_steps(twin, [[0.5, 0.5]])
    for p, q in zip(optimizer.params, twin.params):
        assert np.array_equal(p.data, q.data)


def test_negative_step_count_is_refused_and_nothing_changes():
    p = mg.nn.Parameter(np.ones(2))
    opt = mg.optim.Adam([p])
    state = opt.state_dict()
    state["step_count"] = -5
    with pytest.raises(ValueError, match="step_count"):
        opt.load_state_dict(state)
    assert opt.step_count == 0


X_FIXED = np.random.default_rng(1).normal(size=(64, 4)).astype(np.float32)
Y_FIXED = (X_FIXED[:, 0] * X_FIXED[:, 1] > 0).astype(np.int64) + (X_FIXED[:, 2] > 0.5)

RESUMABLE = {  # every optimizer of the registry (so that a new one is checked too), and options on top
    **OPTIMIZERS,
    "SGD momentum": lambda ps: SGD(ps, lr=0.05, momentum=0.9),
    "SGD nesterov weight_decay": lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "Momentum bias_correction": lambda ps: Momentum(ps, lr=0.1, beta=0.9, bias_correction=True),
    "Adam": lambda ps: Adam(ps, lr=0.01, weight_decay=1e-3),
    "AdaBelief (example)": lambda ps: AdaBelief(ps, lr=0.005),
    "AdamW": lambda ps: AdamW(ps, lr=0.01),
    "NAdam weight_decay": lambda ps: NAdam(ps, lr=0.01, weight_decay=1e-3),
    "RMSprop all options": lambda ps: RMSprop(ps, lr=0.005, weight_decay=1e-3, momentum=0.5, centered=True),
    "Adagrad all options": lambda ps: Adagrad(ps, lr=0.05, lr_decay=1e-3, weight_decay=1e-3),
    "Lion": lambda ps: Lion(ps, lr=1e-3, weight_decay=0.1),
}


def train(model: mg.nn.Module, optimizer: Optimizer, steps: int) -> None:
    """``steps`` full-batch steps of cross-entropy on the fixed data."""
    for _ in range(steps):
        optimizer.zero_grad()
        mg.nn.cross_entropy(model(mg.Tensor(X_FIXED)), Y_FIXED).backward()
        optimizer.step()


@pytest.mark.parametrize("name", RESUMABLE)
def test_resume_from_checkpoint_is_bit_identical(name: str, tmp_path: Path) -> None:
    """100 steps in one go equal 50 steps, mg.save, a fresh model and optimizer, mg.load, 50 steps."""
    make = RESUMABLE[name]
    mg.manual_seed(0)
    straight = mg.nn.MLP([4, 16, 3], activation="tanh")
    train(straight, make(straight.parameters()), 100)

    mg.manual_seed(0)
    first = mg.nn.MLP([4, 16, 3], activation="tanh")
    optimizer = make(first.parameters())
    train(first, optimizer, 50)
    mg.save({"model": first.state_dict(), "optim": optimizer.state_dict()}, tmp_path / "run.npz")

    mg.manual_seed(123)  # a different initialisation: everything must come from the file
    resumed = mg.nn.MLP([4, 16, 3], activation="tanh")
    optimizer = make(resumed.parameters())
    checkpoint = mg.load(tmp_path / "run.npz")
    resumed.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optim"])
    assert optimizer.step_count == 50
    train(resumed, optimizer, 50)

    for (key, p), q in zip(straight.named_parameters(), resumed.parameters()):
        assert p.dtype == q.dtype == np.float32
        assert np.all(np.isfinite(p.data)) and np.array_equal(p.data, q.data), key  # (NaNs would match too)
    assert not np.array_equal(straight.parameters()[0].data, first.parameters()[0].data)  # it trained on


def test_resume_keeps_momentum_of_a_zero_dim_parameter():
    def run(split: bool) -> float:
        w = mg.nn.Parameter(np.float32(1.0))
        opt = mg.optim.Momentum([w], lr=0.1, beta=0.9)
        for step in range(6):
            if split and step == 1:
                state = opt.state_dict()
                opt = mg.optim.Momentum([w], lr=0.1, beta=0.9)
                opt.load_state_dict(state)
            w.grad = np.array(2 * w.data, dtype=np.float32)  # d(w²)/dw
            opt.step()
        return float(w.data)

    assert run(split=True) == run(split=False)


# ---------------------------------------------------------------------------
# The example file
# ---------------------------------------------------------------------------


def test_example_imports_without_side_effects(capsys: pytest.CaptureFixture[str]) -> None:
    """Importing examples/custom_optimizer.py prints nothing and leaves the global generator alone."""
    state = mg.get_generator().bit_generator.state
    module = load_example()
    assert capsys.readouterr() == ("", "")
    assert mg.get_generator().bit_generator.state == state
    assert issubclass(module.AdaBelief, Optimizer) and callable(module.main)
    assert not hasattr(mg.optim, "AdaBelief")  # the example shows an optimizer the package does not ship


def test_example_adabelief_trains_an_mlp() -> None:
    """AdaBelief from the example lowers an MLP's full-batch loss on the fixed data by more than half."""
    mg.manual_seed(0)
    model = mg.nn.MLP([4, 16, 3], activation="tanh")
    with mg.no_grad():
        start = mg.nn.cross_entropy(model(mg.Tensor(X_FIXED)), Y_FIXED).item()
    train(model, AdaBelief(model.parameters(), lr=0.01), 200)
    with mg.no_grad():
        end = mg.nn.cross_entropy(model(mg.Tensor(X_FIXED)), Y_FIXED).item()
    assert end < 0.5 * start


if __name__ == "__main__":
    for key, (steps, lr) in ravine_measurement().items():
        print(f"{key:9s} best lr {lr:.6g}: f < 1e-8 after {steps} steps")


def test_sgd_velocity_takes_the_parameters_dtype() -> None:
    """A float64 .grad set by hand on a float32 parameter: v is float32, like every other optimizer's buffers."""
    w = mg.nn.Parameter(np.ones(3, dtype=np.float32))
    opt = SGD([w], lr=0.1, momentum=0.9)
    w.grad = np.full(3, 0.5)  # float64
    opt.step()
    assert opt.state[0]["v"].dtype == np.float32 and w.data.dtype == np.float32
    np.testing.assert_allclose(w.data, 1 - 0.1 * 0.5)
    restored = SGD([w], lr=0.1, momentum=0.9)
    restored.load_state_dict(opt.state_dict())  # it refused its own state when v was float64


# ---------------------------------------------------------------------------
# A state missing a buffer, or saved for other parameters (review, helper 32)
# ---------------------------------------------------------------------------


def stepped(make: Factory) -> Optimizer:
    """``make`` on two_params after two steps with made-up gradients."""
    optimizer = make(two_params())
    for k in range(2):
        for p in optimizer.params:
            p.grad = np.full(p.shape, 0.5 - k)
        optimizer.step()
    return optimizer


@pytest.mark.parametrize("name", sorted(ALL_CONFIGS))
def test_a_state_without_one_of_its_buffers_is_refused(name: str) -> None:
    """Adam's state without 's' loaded, and the next step made 's' again from zero: other weights, silently."""
    source = stepped(ALL_CONFIGS[name])
    state = source.state_dict()
    required = type(source).required_names
    assert set(required) <= set(state["state"]["1"])
    assert required or type(source) is SGD  # (SGD's v exists only with momentum: a missing one starts as v = g)
    for buffer in required:
        target = stepped(ALL_CONFIGS[name])
        before = target.state_dict()
        broken = {**state, "state": {**state["state"], "1": {k: v for k, v in state["state"]["1"].items()
                                                            if k != buffer}}}
        with pytest.raises(ValueError, match=rf"state 1 has no buffer '{buffer}', which {type(source).__name__} "
                                             "keeps for every parameter it has stepped"):
            target.load_state_dict(broken)
        after = target.state_dict()
        for i in before["state"]:
            for k in before["state"][i]:
                assert np.array_equal(after["state"][i][k], before["state"][i][k])
    stepped(ALL_CONFIGS[name]).load_state_dict(state)  # the whole state loads


def test_a_state_saved_after_a_setting_changed_loads() -> None:
    """SGD stepped without momentum, then given momentum, saved a state its own load refused ("no buffer 'v'").

    Which buffers exist can depend on settings changed since the last step (a schedule cycles RMSprop's
    momentum): only those kept at every update are required. Loading runs no code of the rule.
    """
    sgd = stepped(lambda ps: SGD(ps, lr=0.1))
    sgd.momentum = 0.9
    state = sgd.state_dict()
    assert state["state"]["0"].keys() == {"step"}
    resumed = SGD(two_params(), lr=0.1, momentum=0.9)
    resumed.load_state_dict(state)
    for a, b in ((sgd, resumed),):
        for p, q in zip(a.params, b.params):
            p.grad = np.ones(p.shape)
            q.data[...] = p.data
            q.grad = np.ones(q.shape)
        a.step()
        b.step()
        for p, q in zip(a.params, b.params):
            np.testing.assert_array_equal(p.data, q.data)
    rms = stepped(lambda ps: RMSprop(ps, lr=0.01))
    rms.momentum, rms.centered = 0.5, True
    RMSprop(two_params(), lr=0.01, momentum=0.5, centered=True).load_state_dict(rms.state_dict())


def test_a_state_saved_for_other_parameters_is_refused() -> None:
    """Adam over 4 parameters loaded into Adam over 6 whose first 4 have those shapes; 2 were left without state."""
    source = stepped(lambda ps: Adam(ps, lr=0.05))
    state = source.state_dict()
    assert state["param_count"] == 2
    target = Adam([*two_params(), mg.Tensor(np.zeros(4), requires_grad=True)], lr=0.05)
    with pytest.raises(ValueError, match="the state was saved for 2 parameters, this optimizer has 3; load the "
                                         "state of an optimizer over the same parameters"):
        target.load_state_dict(state)
    assert target.state == [{}, {}, {}]
    legacy = {k: v for k, v in state.items() if k != "param_count"}  # saved before the count was kept
    resumed = Adam(two_params(), lr=0.05)
    resumed.load_state_dict(legacy)
    assert resumed.state[0]["step"] == 2


def test_a_parameter_stepped_more_often_than_the_optimizer_is_refused() -> None:
    state = stepped(lambda ps: SGD(ps, lr=0.1, momentum=0.9)).state_dict()
    state["state"]["0"]["step"] = np.array(7)
    with pytest.raises(ValueError, match="0.step is 7, more than the optimizer's step_count 2"):
        SGD(two_params(), lr=0.1, momentum=0.9).load_state_dict(state)


def test_a_wrong_top_level_says_only_what_is_wrong() -> None:
    state = SGD(two_params(), lr=0.1).state_dict()
    with pytest.raises(ValueError, match=r"^SGD.load_state_dict: the state has unknown entries \['extra'\]; load "
                                         r"what SGD.state_dict\(\) returned$"):
        SGD(two_params(), lr=0.1).load_state_dict({**state, "extra": 1})
    with pytest.raises(ValueError, match=r"^SGD.load_state_dict: the state has no 'step_count'; load what"):
        SGD(two_params(), lr=0.1).load_state_dict({k: v for k, v in state.items() if k != "step_count"})


@pytest.mark.parametrize("make", [lambda p, m: SGD(p, lr=0.1, momentum=m), lambda p, m: RMSprop(p, momentum=m)])
def test_a_momentum_of_1_or_more_is_refused(make: Callable[..., Optimizer]) -> None:
    """SGD and RMSprop took momentum 1 and 1.5 (PyTorch does too): v then never forgets a gradient, or grows."""
    for m in (1.0, 1.5):
        with pytest.raises(ValueError, match=rf"invalid momentum: expected a number in \[0, 1\), got {m}"):
            make(two_params(), m)
    optimizer = make(two_params(), 0.9)
    with pytest.raises(ValueError, match="invalid momentum"):
        optimizer.momentum = 1.0
    assert optimizer.momentum == 0.9


def test_a_buffer_the_class_does_not_declare_is_refused_when_the_state_is_saved() -> None:
    """A plug-in keeping state["v"] without buffer_names saved fine; only the load, at resume, refused it."""

    class HeavyBall(Optimizer):
        def __init__(self, params: list[mg.Tensor], lr: float = 0.1) -> None:
            super().__init__(params, lr=lr)

        def update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
            v = state["v"] = 0.9 * state.get("v", 0.0) + g
            w -= self.lr * v

    optimizer = HeavyBall(two_params())
    optimizer.state_dict()  # nothing kept yet
    for p in optimizer.params:
        p.grad = np.ones(p.shape)
    optimizer.step()
    with pytest.raises(ValueError, match=r"HeavyBall.state_dict: parameter 0's state holds \['v'\], which HeavyBall "
                                         "does not declare; name the arrays update\\(\\) keeps in buffer_names"):
        optimizer.state_dict()
    HeavyBall.buffer_names = ("v",)
    HeavyBall(two_params()).load_state_dict(optimizer.state_dict())


def test_a_state_knows_its_optimizer_class_and_adam_and_adamw_refuse_each_others() -> None:
    """Same hyperparameter names, other meanings: AdamW took Adam's state and ran decoupled decay at Adam's 0.1."""
    adam = mg.optim.Adam([mg.nn.Parameter(np.ones(3))], lr=0.01, weight_decay=0.1)
    adam.params[0].grad = np.ones(3)
    adam.step()
    state = adam.state_dict()
    assert state["class"] == "Adam"
    adamw = mg.optim.AdamW([mg.nn.Parameter(np.ones(3))], lr=0.01)
    with pytest.raises(ValueError, match=r"^AdamW\.load_state_dict: the state was saved by 'Adam', not by AdamW, "
                                         r".* load it into Adam, or, .* set state\['class'\] = 'AdamW'"):
        adamw.load_state_dict(state)
    assert adamw.weight_decay == 0.01 and adamw.step_count == 0  # unchanged
    with pytest.raises(ValueError, match=r"^Adam\.load_state_dict: the state was saved by 'AdamW'"):
        mg.optim.Adam([mg.nn.Parameter(np.ones(3))]).load_state_dict(adamw.state_dict())
    adamw.load_state_dict({**state, "class": "AdamW"})  # the way out the message names
    assert adamw.weight_decay == 0.1 and adamw.step_count == 1
    legacy = {k: v for k, v in state.items() if k != "class"}  # saved before the class was kept: loads as before
    mg.optim.Adam([mg.nn.Parameter(np.ones(3))]).load_state_dict(legacy)
    with pytest.raises(ValueError, match=r"the state's 'class' must be the name of its optimizer's class"):
        mg.optim.Adam([mg.nn.Parameter(np.ones(3))]).load_state_dict({**state, "class": np.ones(2)})


def test_the_class_survives_a_checkpoint(tmp_path) -> None:
    adam = mg.optim.Adam([mg.nn.Parameter(np.ones(3))])
    mg.save({"optim": adam.state_dict()}, tmp_path / "c.npz")
    assert mg.load(tmp_path / "c.npz")["optim"]["class"] == "Adam"
    with pytest.raises(ValueError, match="saved by 'Adam'"):
        mg.optim.AdamW([mg.nn.Parameter(np.ones(3))]).load_state_dict(mg.load(tmp_path / "c.npz")["optim"])
