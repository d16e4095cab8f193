"""Momentum in a ravine: the first seed note's picture, computed with minigrad.

The loss f(x, y) = (x² + 100·y²) / 2 is a long, narrow valley (condition
number 100): steep across (y), nearly flat along (x). Plain gradient descent
must keep its learning rate below 2/100 or the y coordinate blows up, and at
0.019 it zigzags from wall to wall while crawling along the floor.

Momentum (``mg.optim.Momentum``, the notes' rule v = β·v + (1-β)·g;
w = w - α·v) averages the gradients: the y components flip sign every step and
cancel in the average, the x components agree and add up. So the step-by-step
zigzag is gone (what is left is a slow swing across the valley that dies out),
it can take a larger learning rate, and it runs down the valley's length about
2.7 times faster. Both paths below are driven by minigrad Tensors,
``backward()`` and ``optimizer.step()``.

Run ``python examples/ravine.py`` (``--quick``, ``--out DIR``); it saves
``ravine.png`` and prints the steps each method needs to reach f < 1e-8.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402

CURVATURE = np.array([1.0, 100.0])  # f = (1·x² + 100·y²) / 2: the Hessian's diagonal
START = (-10.0, 1.0)
TARGET = 1e-8
FIGURES = Path(__file__).resolve().parent / "figures"


def ravine(w: mg.Tensor) -> mg.Tensor:
    """f(w) = (x² + 100·y²) / 2 for w = (x, y)."""
    return 0.5 * (w * w * CURVATURE).sum()


def descend(make_optimizer, steps: int, start: tuple[float, float] = START) -> tuple[np.ndarray, np.ndarray]:
    """Minimise the ravine from ``start`` for ``steps`` steps.

    ``make_optimizer(params)`` builds the optimizer. Returns the path, shape
    (steps + 1, 2), and the loss at each point of it, shape (steps + 1,).
    """
    w = mg.Tensor(np.array(start, dtype=np.float64), requires_grad=True)
    optimizer = make_optimizer([w])
    path, losses = [w.data.copy()], []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = ravine(w)
        loss.backward()  # w.grad = (x, 100·y)
        optimizer.step()
        losses.append(loss.item())
        path.append(w.data.copy())
    losses.append(ravine(w).item())
    return np.array(path), np.array(losses)


def steps_to(losses: np.ndarray, target: float = TARGET) -> int | None:
    """The first step at which the loss is below ``target`` (None if never)."""
    hits = np.flatnonzero(losses < target)
    return int(hits[0]) if hits.size else None


def main(quick: bool = False, out_dir: str | Path = FIGURES) -> dict[str, dict]:
    """Run both methods, save ``ravine.png`` in ``out_dir`` and return their results.

    Returns ``{"gd": {...}, "momentum": {...}}``, each with ``lr``,
    ``steps_to_target`` (f < 1e-8; None if never) and ``final_loss``. The run
    is deterministic and takes well under a second either way; ``quick`` only
    lowers the figure's resolution.
    """
    mg.manual_seed(0)  # nothing here is random; seeded by habit
    steps = 1000
    runs = {
        "gd": ("gradient descent, lr 0.019", 0.019, lambda p: mg.optim.SGD(p, lr=0.019)),
        "momentum": ("momentum, lr 0.04, β 0.9", 0.04, lambda p: mg.optim.Momentum(p, lr=0.04, beta=0.9)),
    }
    results: dict[str, dict] = {}
    for key, (label, lr, make) in runs.items():
        path, losses = descend(make, steps)
        results[key] = {
            "label": label,
            "lr": lr,
            "path": path,
            "losses": losses,
            "steps_to_target": steps_to(losses),
            "final_loss": float(losses[-1]),
        }
        reached = results[key]["steps_to_target"]
        print(f"{label:28s} f < {TARGET:g} after {reached if reached is not None else 'never'} steps"
              f" (f = {losses[-1]:.2e} at step {steps})")

    fig, (ax_path, ax_loss) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [1.6, 1]})
    xs, ys = np.meshgrid(np.linspace(-11, 2, 300), np.linspace(-1.3, 1.3, 300))
    f = 0.5 * (CURVATURE[0] * xs**2 + CURVATURE[1] * ys**2)
    ax_path.contour(xs, ys, f, levels=np.geomspace(0.05, 150, 14), cmap="Greys", linewidths=0.8)
    shown = 60  # the first steps, where the two behaviours differ most
    for key, color in (("gd", "tab:orange"), ("momentum", "tab:blue")):
        p = results[key]["path"][: shown + 1]
        ax_path.plot(p[:, 0], p[:, 1], "o-", color=color, ms=2.5, lw=1.2, label=f"{results[key]['label']}")
    ax_path.plot(0, 0, "r*", ms=14, label="minimum")
    ax_path.set(title=f"f = (x² + 100·y²)/2: the first {shown} steps from {START}", xlabel="x", ylabel="y")
    ax_path.legend(loc="lower right", fontsize=8)

    for key, color in (("gd", "tab:orange"), ("momentum", "tab:blue")):
        r = results[key]
        ax_loss.semilogy(r["losses"], color=color, label=f"{r['label']}: {r['steps_to_target']} steps")
    ax_loss.axhline(TARGET, color="grey", ls="--", lw=0.8)
    ax_loss.set(title=f"loss per step (dashed: f = {TARGET:g})", xlabel="step", ylabel="f", ylim=(1e-12, 1e3))
    ax_loss.legend(fontsize=8)
    fig.tight_layout()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "ravine.png", dpi=70 if quick else 120)
    plt.close(fig)
    print(f"saved {out / 'ravine.png'}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller figure (the run is already fast)")
    parser.add_argument("--out", default=str(FIGURES), help="folder for the PNG (default: examples/figures)")
    args = parser.parse_args()
    main(quick=args.quick, out_dir=args.out)
