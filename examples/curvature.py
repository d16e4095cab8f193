"""Curvature, measured: why momentum wins in a ravine, and what caps gradient descent's learning rate.

Part 1, the ravine f(x, y) = (x² + 100·y²)/2. ``mg.func.hessian`` gives its
exact Hessian, diag(1, 100): λmin = 1, λmax = 100, condition number
κ = λmax/λmin = 100 (``mg.curvature`` finds the same two eigenvalues from
Hessian-vector products alone). On a quadratic the theory is complete:

- gradient descent w ← w - α·∇f is best at α = 2/(λmax + λmin) and then
  shrinks the error by (κ - 1)/(κ + 1) = 0.98 per step: about κ/2 steps per
  factor e, so thousands of steps for many digits;
- the heavy ball (Polyak 1964), w ← w - α·∇f + β·(w - w_prev), is best at
  α* = 4/(√λmax + √λmin)² and β* = ((√κ - 1)/(√κ + 1))², and then shrinks
  it by (√κ - 1)/(√κ + 1) = 0.82 per step: about √κ/2 steps per factor e.

The heavy ball is exactly PyTorch's classic momentum ``SGD(lr=α, momentum=β)``
(v = β·v + g, w = w - α·v: then w - w_prev = -α·v_prev, so the new step is
-α·g + β·(w - w_prev)). minigrad's EWA form ``Momentum(lr, beta)`` averages
instead, v = β·v + (1-β)·g; its v is (1-β) times the classic v at every step,
so ``Momentum(lr=α/(1-β), beta=β)`` takes exactly the steps of
``SGD(lr=α, momentum=β)``. The theory's heavy ball in the EWA form is
Momentum(lr = α*/(1-β*) = 0.1, beta = β* = 0.669); both forms are run, and
land on the same points.

Each is compared with the best rate from a log grid (the 31 rates
10^-4 ... 10, six per decade, that tests/test_optim.py tunes on; momentum
also tunes β on the log grid 1 - β = 10^(-k/4), k = 1..8). "Best" means the
fewest steps to f < 1e-8 from (-10, 1); each grid run stops when it gets
there, when it diverges, or when it has taken as many steps as the best run
so far (it cannot win then).

What the run shows (numbers printed by the script): the heavy ball at α*, β*
needs 81 steps to f < 1e-8, gradient descent at its best rate 576, about the
√κ against κ that the theory promises. Two details are worth knowing. The
grid's best momentum (lr 0.1, β 0.684) arrives sooner, in 60 steps: the
theory minimises the asymptotic rate ρ over every start, and at α*, β* both
modes of the ravine are critically damped (a double root ρ = √β* = 0.818 of
z² - (1 + β - αλ)·z + β), so the error falls like (a + b·k)·ρ^k and
overshoots at first (f climbs from 100 to about 700); with β = 0.684 the
roots are complex, ρ = √β = 0.827 is a little slower in the limit, but there
is no factor k. For gradient descent, on the other hand, theory beats the
grid (576 against 756 steps): its stable window ends at 2/λmax = 0.02, just
above the optimum 2/(λmax + λmin) = 0.0198, and the grid's nearest stable
rate is 0.0147.

Part 2, an MLP (2-16-16-2, tanh, float64) trained on two moons by full-batch
gradient descent. On the quadratic above, gradient descent is stable only for
α < 2/λmax; for a network, λmax (the top eigenvalue of the loss's Hessian,
the "sharpness") changes as it trains. It is measured every few steps by
Lanczos on Hessian-vector products (``mg.curvature.top_eigenvalue``), for
three learning rates. With a small rate (0.1) λmax grows steadily while the
loss falls. With larger ones λmax goes past 2/lr (at lr 2 it starts there),
the loss spikes, and λmax then stays at about 2/lr, or a little above, while
the loss goes on down (the "edge of stability", Cohen et al. 2021).

Run ``python examples/curvature.py`` (``--quick``, ``--out DIR``); it prints
the numbers and saves ``curvature.png``.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402

FIGURES = Path(__file__).resolve().parent / "figures"
CURVATURE = np.array([1.0, 100.0])  # f = (1·x² + 100·y²)/2
START = np.array([-10.0, 1.0])
TARGET = 1e-8
LR_GRID = np.logspace(-4, 1, 31)  # six per decade, as tests/test_optim.py tunes the ravine
BETA_GRID = 1 - 10 ** (-np.arange(1, 9) / 4)  # 1 - β = 10^(-k/4): 0.44, 0.68, 0.82, 0.9, ..., 0.99
STEP_CAP = 5000
SIZES = [2, 16, 16, 2]
MOONS_LRS = (0.1, 0.5, 2.0)

MakeOptimizer = Callable[[list[mg.Tensor]], mg.optim.Optimizer]


def ravine(w: mg.Tensor) -> mg.Tensor:
    """f(w) = (x² + 100·y²) / 2 for w = (x, y)."""
    return 0.5 * (w * w * CURVATURE).sum()


def descend(make: MakeOptimizer, cap: int = STEP_CAP) -> np.ndarray:
    """The losses f(w_0), f(w_1), ... of an optimizer on the ravine from START.

    It stops at the first loss below TARGET, once the loss exceeds 1e6·f(w_0)
    (diverging), or after ``cap`` steps. Each step is ``loss.backward()`` and
    ``optimizer.step()`` on a float64 Tensor.
    """
    w = mg.Tensor(START.copy(), requires_grad=True)
    optimizer = make([w])
    losses = []
    for _ in range(cap + 1):
        optimizer.zero_grad()
        loss = ravine(w)
        losses.append(loss.item())
        if not TARGET <= losses[-1] <= 1e6 * losses[0] or len(losses) > cap:
            break
        loss.backward()
        optimizer.step()
    return np.array(losses)


def steps_to_target(losses: np.ndarray) -> int | None:
    """The first step with f < TARGET (None if the run never got there)."""
    hits = np.flatnonzero(losses < TARGET)
    return int(hits[0]) if hits.size else None


def tune(make: Callable[[float, float], MakeOptimizer], betas: np.ndarray) -> dict:
    """The (lr, beta) of LR_GRID × ``betas`` with the fewest steps to f < TARGET.

    Rates are tried from the largest down; each run is capped at one step
    fewer than the best so far, so the answer is the full search's without
    running the slow rates to the end. Returns lr, beta, steps and runs.
    """
    best: dict = {"lr": math.nan, "beta": math.nan, "steps": STEP_CAP + 1, "runs": 0}
    for beta in betas:
        for lr in LR_GRID[::-1]:
            best["runs"] += 1
            steps = steps_to_target(descend(make(float(lr), float(beta)), cap=best["steps"] - 1))
            if steps is not None:
                best.update(lr=float(lr), beta=float(beta), steps=steps)
    return best


def ravine_part() -> dict:
    """The Hessian, κ, the theory's rates, and the runs at the theory's and at tuned values."""
    H = mg.func.hessian(ravine)(START).numpy()
    lam_min, lam_max = np.linalg.eigvalsh(H)
    w = mg.Tensor(START.copy(), requires_grad=True)
    spectrum = mg.curvature.extreme_eigenvalues(ravine(w), [w], method="power")  # from H·v only
    kappa = lam_max / lam_min
    alpha = 4 / (math.sqrt(lam_max) + math.sqrt(lam_min)) ** 2  # α* = 4/(√λmax + √λmin)²
    beta = ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2  # β* = ((√κ - 1)/(√κ + 1))²
    gd_lr = 2 / (lam_max + lam_min)
    print(f"ravine: Hessian {H.tolist()}, eigenvalues {lam_min:g} and {lam_max:g}, κ = {kappa:g}")
    print(f"  from H·v alone (power iteration, then on H - λmax·I): λmax = {spectrum.top:.6g}, "
          f"λmin = {spectrum.bottom:.6g}, κ = {spectrum.condition_number:.6g} ({spectrum.products} products)")
    print(f"  heavy ball: α* = 4/(√λmax + √λmin)² = {alpha:.6g}, β* = ((√κ - 1)/(√κ + 1))² = {beta:.6g}; "
          f"gradient descent: α = 2/(λmax + λmin) = {gd_lr:.6g}")

    tuned_sgd = tune(lambda lr, _: (lambda p: mg.optim.SGD(p, lr=lr)), np.array([0.0]))
    tuned_mom = tune(lambda lr, b: (lambda p: mg.optim.Momentum(p, lr=lr, beta=b)), BETA_GRID)
    runs = {
        "heavy_ball_classic": (f"SGD(lr=α*, momentum=β*) = ({alpha:.4g}, {beta:.3g})", alpha, beta,
                               lambda p: mg.optim.SGD(p, lr=alpha, momentum=beta)),
        "heavy_ball_ewa": (f"Momentum(lr=α*/(1-β*), beta=β*) = ({alpha / (1 - beta):.4g}, {beta:.3g})",
                           alpha / (1 - beta), beta, lambda p: mg.optim.Momentum(p, lr=alpha / (1 - beta), beta=beta)),
        "momentum_tuned": (f"Momentum tuned: lr {tuned_mom['lr']:.3g}, beta {tuned_mom['beta']:.3g}",
                           tuned_mom["lr"], tuned_mom["beta"],
                           lambda p: mg.optim.Momentum(p, lr=tuned_mom["lr"], beta=tuned_mom["beta"])),
        "gd_theory": (f"SGD(lr=2/(λmax+λmin)) = {gd_lr:.4g}", gd_lr, 0.0, lambda p: mg.optim.SGD(p, lr=gd_lr)),
        "gd_tuned": (f"SGD tuned: lr {tuned_sgd['lr']:.3g}", tuned_sgd["lr"], 0.0,
                     lambda p: mg.optim.SGD(p, lr=tuned_sgd["lr"])),
    }
    results = {}
    for key, (label, lr, b, make) in runs.items():
        losses = descend(make)
        results[key] = {"label": label, "lr": lr, "beta": b, "losses": losses, "steps": steps_to_target(losses)}
        print(f"  {label:58s} f < {TARGET:g} after {results[key]['steps']} steps")
    print(f"  (tuned over {tuned_sgd['runs']} SGD and {tuned_mom['runs']} Momentum runs on the log grids)")
    return {
        "hessian": H, "eigenvalues": (float(lam_min), float(lam_max)), "kappa": float(kappa),
        "spectrum": spectrum, "alpha": alpha, "beta": beta, "gd_lr": gd_lr, "runs": results,
        "tuned": {"sgd": tuned_sgd, "momentum": tuned_mom},
    }


def moons_data(quick: bool) -> tuple[mg.Tensor, np.ndarray]:
    """Two moons' training split as a float64 Tensor and its labels (300 points in quick mode, else 750)."""
    X, _, y, _ = mg.data.load_dataset("moons", n_samples=400 if quick else 1000)
    return mg.Tensor(X.astype(np.float64)), y


def make_model() -> mg.nn.MLP:
    """The MLP of part 2, from seed 0: 2-16-16-2 with tanh, in float64 (so the eigenvalues are exact to 1e-6)."""
    mg.manual_seed(0)
    return mg.nn.MLP(SIZES, activation="tanh", dtype=np.float64)


def sharpness_part(quick: bool) -> dict[float, dict]:
    """Full-batch gradient descent on moons at each of MOONS_LRS, with λmax of the loss's Hessian every few steps."""
    X, y = moons_data(quick)
    steps, every = (200, 20) if quick else (1000, 10)
    results: dict[float, dict] = {}
    for lr in MOONS_LRS:
        model = make_model()
        optimizer = mg.optim.SGD(model.parameters(), lr=lr)
        record: dict = {"step": [], "top": [], "loss_step": [], "loss": []}
        for step in range(steps + 1):
            optimizer.zero_grad()
            loss = mg.nn.cross_entropy(model(X), y)
            record["loss_step"].append(step)
            record["loss"].append(loss.item())
            if step % every == 0:
                record["step"].append(step)
                record["top"].append(mg.curvature.top_eigenvalue(loss, model.parameters(), tol=1e-6))
            loss.backward()
            optimizer.step()
        results[lr] = {key: np.array(v) for key, v in record.items()}
        tops = results[lr]["top"]
        print(f"moons, gradient descent at lr {lr:g} (2/lr = {2 / lr:g}): λmax {tops[0]:.3g} at step 0, "
              f"max {tops.max():.3g}, {tops[-1]:.3g} at step {steps}; loss {record['loss'][0]:.3f} -> "
              f"{record['loss'][-1]:.3f}")
    return results


def plot(ravine_result: dict, moons: dict[float, dict], path: Path, quick: bool) -> None:
    """Three panels: the ravine's loss curves, λmax against the step with 2/lr, the moons loss."""
    fig, (ax_r, ax_s, ax_l) = plt.subplots(1, 3, figsize=(17, 4.8))
    styles = {
        "heavy_ball_classic": ("tab:blue", "-"), "heavy_ball_ewa": ("black", ":"),
        "momentum_tuned": ("tab:cyan", "--"), "gd_theory": ("tab:orange", "-"), "gd_tuned": ("tab:red", "--"),
    }
    for key, (color, ls) in styles.items():
        r = ravine_result["runs"][key]
        ax_r.semilogy(r["losses"], color=color, ls=ls, lw=1.4, label=f"{r['label']}: {r['steps']} steps")
    ax_r.axhline(TARGET, color="grey", lw=0.8, ls="--")
    ax_r.set(title=f"ravine (x² + 100·y²)/2, κ = {ravine_result['kappa']:g}: steps to f < {TARGET:g}",
             xlabel="step", ylabel="f", ylim=(1e-10, 1e4))
    ax_r.legend(fontsize=7)

    colors = dict(zip(MOONS_LRS, ("tab:green", "tab:purple", "tab:brown")))
    for lr, r in moons.items():
        ax_s.semilogy(r["step"], r["top"], "o-", ms=3, color=colors[lr], label=f"λmax at lr {lr:g}")
        ax_s.axhline(2 / lr, color=colors[lr], ls="--", lw=1, label=f"2/lr = {2 / lr:g}")
        ax_l.semilogy(r["loss_step"], r["loss"], color=colors[lr], label=f"lr {lr:g}")
    ax_s.set(title="moons MLP, full-batch GD: top Hessian eigenvalue", xlabel="step", ylabel="λmax (sharpness)")
    ax_s.legend(fontsize=7, ncol=2)
    ax_l.set(title="moons MLP: training loss", xlabel="step", ylabel="cross-entropy")
    ax_l.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=70 if quick else 110)
    plt.close(fig)


def main(quick: bool = False, out_dir: str | Path = FIGURES) -> dict:
    """Run both parts, save ``curvature.png`` in ``out_dir``, return ``{"ravine": ..., "moons": ...}``.

    ``quick`` trains the moons MLP for 200 steps on 300 points, measuring
    λmax every 20 steps, instead of 1000 steps on 750 points, every 10 (the
    ravine part is the same either way).
    """
    mg.manual_seed(0)
    start = time.perf_counter()
    ravine_result = ravine_part()
    moons = sharpness_part(quick)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot(ravine_result, moons, out / "curvature.png", quick)
    print(f"saved {out / 'curvature.png'} ({time.perf_counter() - start:.1f} s)")
    return {"ravine": ravine_result, "moons": moons}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a shorter moons run (a few seconds)")
    parser.add_argument(
        "--out", help="folder for the PNG (default: examples/figures; with --quick, examples/figures/quick, "
        "which git ignores, so the committed figures stay)"
    )
    args = parser.parse_args()
    main(quick=args.quick, out_dir=args.out or (FIGURES / "quick" if args.quick else FIGURES))
