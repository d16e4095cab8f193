"""Two moons: the same MLP trained by SGD and by momentum at the same, large learning rate.

An MLP (2-16-16-2, ReLU) learns the curved boundary between two interleaved
half circles (1000 noisy points). For each seed, both runs start from the same
weights and see the same mini-batches; only the optimizer differs, both at
lr = 2.0.

Plain SGD steps along each mini-batch's gradient, and at that rate one bad
batch can throw it up the valley's wall: its training loss keeps jumping back
up, by a different amount for every seed. ``mg.optim.Momentum`` steps along an
exponentially weighted average of the last ~10 gradients (β = 0.9), in which
the batch-to-batch noise cancels: the averaging damps the oscillations,
as the loss curves show. (At small rates the two curves
nearly coincide: this form of momentum takes SGD-sized steps on average.)

Training goes through ``mg.lab.fit``, printing a line per epoch for seed 0.
Run ``python examples/moons.py`` (``--quick``, ``--out DIR``); it saves
``moons.png``: each seed-0 model's decision regions with the data, and the
loss curves over 5 seeds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.lab  # noqa: E402, F401  (makes mg.lab available)
from minigrad.data import load_dataset  # noqa: E402

FIGURES = Path(__file__).resolve().parent / "figures"
LR = 2.0
OPTIMIZERS = {
    "SGD": lambda params: mg.optim.SGD(params, lr=LR),
    "Momentum": lambda params: mg.optim.Momentum(params, lr=LR, beta=0.9),
}


def predict(model: mg.nn.Module, X: np.ndarray) -> np.ndarray:
    """The predicted class (0 or 1) of every row of ``X``."""
    with mg.no_grad():
        return model(mg.Tensor(X.astype(np.float32))).data.argmax(axis=1)


def main(quick: bool = False, out_dir: str | Path = FIGURES) -> dict[str, dict]:
    """Train with both optimizers for several seeds, save ``moons.png`` in ``out_dir``.

    Returns ``{name: {"histories": fit's rows per seed, "accuracy": seed 0's
    final test accuracy, "model": seed 0's trained MLP}}`` for "SGD" and
    "Momentum". ``quick`` runs 2 seeds of 10 epochs instead of 5 of 30.
    """
    epochs, seeds = (10, 2) if quick else (30, 5)
    X_train, X_test, y_train, y_test = load_dataset("moons")  # 750 train, 250 test, standardised
    results: dict[str, dict] = {name: {"histories": []} for name in OPTIMIZERS}
    for seed in range(seeds):
        for name, make in OPTIMIZERS.items():
            mg.manual_seed(seed)  # the same initial weights and batch order for both optimizers
            model = mg.nn.MLP([2, 16, 16, 2])

            def log(row: dict[str, float], name: str = name) -> None:
                print(f"{name:8s} epoch {row['epoch']:2d}  train loss {row['train_loss']:.4f}  "
                      f"test accuracy {row['test_metric']:.1%}")

            history = mg.lab.fit(
                model, mg.nn.cross_entropy, make(model.parameters()), X_train, y_train, X_test, y_test,
                epochs=epochs, batch_size=32, log=log if seed == 0 else None,
            )
            results[name]["histories"].append(history)
            if seed == 0:
                results[name].update(model=model, accuracy=history[-1]["test_metric"])
    late = epochs // 3
    for name, r in results.items():
        worst = [max(row["train_loss"] for row in h[late:]) for h in r["histories"]]
        print(f"{name:8s} seed 0 test accuracy {r['accuracy']:.1%}; worst train loss after epoch {late}, "
              f"per seed: {', '.join(f'{w:.3f}' for w in worst)}")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    lo, hi = X_train.min(axis=0) - 0.5, X_train.max(axis=0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    for ax, (name, r) in zip(axes[:2], results.items()):
        regions = predict(r["model"], grid).reshape(gx.shape)
        ax.contourf(gx, gy, regions, levels=[-0.5, 0.5, 1.5], colors=["#f4c9a8", "#a8c8f4"], alpha=0.8)
        ax.scatter(*X_train.T, c=np.where(y_train == 1, "tab:blue", "tab:orange"), s=8, edgecolors="none")
        ax.set(title=f"{name} (lr {LR:g}), seed 0: test accuracy {r['accuracy']:.1%}",
               xlabel="x₁ (standardised)", ylabel="x₂ (standardised)")
    ax = axes[2]
    for name, color in (("SGD", "tab:orange"), ("Momentum", "tab:blue")):
        loss = np.array([[row["train_loss"] for row in h] for h in results[name]["histories"]])
        ax.fill_between(np.arange(epochs + 1), loss.min(axis=0), loss.max(axis=0), color=color, alpha=0.2, lw=0)
        ax.semilogy(np.median(loss, axis=0), "o-", ms=3, color=color,
                    label=f"{name}, lr {LR:g}" + (", β 0.9" if name == "Momentum" else ""))
    ax.set(title=f"train loss: median of {seeds} seeds, band min to max", xlabel="epoch",
           ylabel="cross-entropy (log scale)")
    ax.legend()
    fig.suptitle("MLP 2-16-16-2 on two moons, batch 32; per seed, the same initial weights and batches for both")
    fig.tight_layout()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "moons.png", dpi=70 if quick else 110)
    plt.close(fig)
    print(f"saved {out / 'moons.png'}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds of 10 epochs, a smaller figure")
    parser.add_argument(
        "--out", help="folder for the PNG (default: examples/figures; with --quick, examples/figures/quick, "
        "which git ignores, so the committed figures stay)"
    )
    args = parser.parse_args()
    main(quick=args.quick, out_dir=args.out or (FIGURES / "quick" if args.quick else FIGURES))
