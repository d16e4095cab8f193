"""The exponentially weighted average (EWA) that momentum is built on.

For noisy readings θ_1, θ_2, ... (here a year of daily temperatures, the
classic example) the EWA is

    v_0 = 0,    v_t = β·v_{t-1} + (1-β)·θ_t,

an average over roughly the last 1/(1-β) readings: β = 0.5 follows the noise,
β = 0.9 averages about 10 days, β = 0.98 about 50 and lags behind. Because v
starts at 0, the first values are too small; dividing by (1 - β^t) removes
that bias (the weights (1-β)·β^(t-s) then sum to 1).

This is exactly the velocity of ``mg.optim.Momentum``: feed θ_t to it as the
gradient and its state ``v`` traces the same curve (checked below).

Run ``python examples/ewa.py`` (``--quick``, ``--out DIR``); it saves ``ewa.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402

BETAS = (0.5, 0.9, 0.98)
FIGURES = Path(__file__).resolve().parent / "figures"


def temperatures(days: int = 365, seed: int = 0) -> np.ndarray:
    """Noisy daily temperatures (°C): a seasonal curve plus Gaussian noise."""
    rng = mg.manual_seed(seed)
    t = np.arange(1, days + 1)
    return 12.0 - 8.0 * np.cos(2 * np.pi * t / 365) + rng.normal(0.0, 3.0, days)


def ewa(theta: np.ndarray, beta: float, bias_correction: bool = False) -> np.ndarray:
    """v_t = β·v_{t-1} + (1-β)·θ_t from v_0 = 0, for t = 1..len(theta).

    With ``bias_correction`` it returns v_t / (1 - β^t) instead.
    """
    v, out = 0.0, np.empty(len(theta))
    for t, x in enumerate(theta, start=1):
        v = beta * v + (1 - beta) * x
        out[t - 1] = v / (1 - beta**t) if bias_correction else v
    return out


def momentum_velocity(theta: np.ndarray, beta: float) -> np.ndarray:
    """The same average, read from ``mg.optim.Momentum``'s velocity.

    Each θ_t is handed to the optimizer as the gradient of a dummy parameter;
    after ``step()`` its state ``v`` is v_t. (lr = 0: the parameter stays put.)
    """
    w = mg.Tensor(np.zeros(1, dtype=np.float64), requires_grad=True)
    optimizer = mg.optim.Momentum([w], lr=0.0, beta=beta)
    out = np.empty(len(theta))
    for t, x in enumerate(theta):
        w.grad = np.array([x])
        optimizer.step()
        out[t] = optimizer.state[0]["v"][0]
    return out


def main(quick: bool = False, out_dir: str | Path = FIGURES) -> dict[str, object]:
    """Average a year of temperatures, save ``ewa.png`` in ``out_dir``, return the curves.

    Returns ``{"theta": data, "ewa": {β: v}, "corrected": {β: v/(1-β^t)},
    "momentum": {β: Momentum's velocity}}``. ``quick`` averages 120 days
    instead of 365 and saves a smaller figure.
    """
    days = 120 if quick else 365
    theta = temperatures(days)
    curves = {beta: ewa(theta, beta) for beta in BETAS}
    corrected = {beta: ewa(theta, beta, bias_correction=True) for beta in BETAS}
    from_momentum = {beta: momentum_velocity(theta, beta) for beta in BETAS}
    for beta in BETAS:
        gap = np.max(np.abs(from_momentum[beta] - curves[beta]))
        print(f"β = {beta:<4}: window ≈ {1 / (1 - beta):4.0f} days, v_1 = {curves[beta][0]:6.2f} "
              f"(corrected {corrected[beta][0]:6.2f}, θ_1 = {theta[0]:.2f}); "
              f"max |Momentum's v - EWA| = {gap:.1e}")

    t = np.arange(1, days + 1)
    colors = {0.5: "tab:olive", 0.9: "tab:red", 0.98: "tab:green"}
    fig, (ax_all, ax_bias) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [1.5, 1]})
    ax_all.plot(t, theta, ".", color="tab:blue", ms=3, alpha=0.6, label=r"$\theta_t$: daily temperature")
    for beta in BETAS:
        ax_all.plot(t, corrected[beta], color=colors[beta], lw=1.6,
                    label=f"β = {beta} (≈ {1 / (1 - beta):.0f} days), bias-corrected")
    ax_all.set(title=r"$v_t = \beta\, v_{t-1} + (1-\beta)\,\theta_t$: larger $\beta$, smoother but later",
               xlabel="day t", ylabel="°C")
    ax_all.legend(fontsize=8, loc="upper left")

    early = min(days, 60)
    ax_bias.plot(t[:early], theta[:early], ".", color="tab:blue", ms=4, alpha=0.6, label=r"$\theta_t$")
    for beta in (0.9, 0.98):
        ax_bias.plot(t[:early], curves[beta][:early], "--", color=colors[beta], lw=1.6,
                     label=f"β = {beta}, $v_t$ (starts at 0)")
        ax_bias.plot(t[:early], corrected[beta][:early], color=colors[beta], lw=1.6,
                     label=f"β = {beta}, $v_t / (1 - β^t)$")
    ax_bias.set(title=f"the first {early} days: bias correction", xlabel="day t", ylabel="°C")
    ax_bias.legend(fontsize=8, loc="lower right")
    fig.tight_layout()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "ewa.png", dpi=70 if quick else 120)
    plt.close(fig)
    print(f"saved {out / 'ewa.png'}")
    return {"theta": theta, "ewa": curves, "corrected": corrected, "momentum": from_momentum}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="120 days and a smaller figure")
    parser.add_argument(
        "--out", help="folder for the PNG (default: examples/figures; with --quick, examples/figures/quick, "
        "which git ignores, so the committed figures stay)"
    )
    args = parser.parse_args()
    main(quick=args.quick, out_dir=args.out or (FIGURES / "quick" if args.quick else FIGURES))
