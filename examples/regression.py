"""Regression: an MLP with one output trained on mean squared error.

Classification ends in cross-entropy over class logits; regression ends in a
single number per sample and ``mg.nn.mse_loss(pred, y) = mean((pred - y)²)``,
whose gradient 2·(pred - y)/N is what backward sends into the last layer.
Nothing else changes: the same MLP, optimizer and ``mg.lab.fit`` loop, with
``task="regression"`` so that fit reports the test R² instead of accuracy.

The data is scikit-learn's diabetes set: 10 measurements of 442 patients and
their disease progression a year later (features and target standardised on
the training split). R² = 1 - Σ(y - pred)² / Σ(y - ȳ)² is 1 for a perfect fit
and 0 for always predicting the mean. The target is noisy and mostly linear
in the features, so the MLP (10-8-1) lands about where a least-squares line
does (printed for comparison): R² ≈ 0.35 on this split.

Run ``python examples/regression.py`` (``--quick``, ``--out DIR``); it prints a
line per epoch and saves ``regression.png``.
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


def least_squares_r2(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray) -> float:
    """Test R² of the least-squares line y ≈ X w + c (numpy's lstsq), the baseline."""
    A = np.column_stack([X_train, np.ones(len(X_train))])
    w, *_ = np.linalg.lstsq(A, y_train, rcond=None)
    return mg.lab.r2_score(np.column_stack([X_test, np.ones(len(X_test))]) @ w, y_test)


def main(quick: bool = False, out_dir: str | Path = FIGURES) -> dict[str, object]:
    """Train the regressor, save ``regression.png`` in ``out_dir``, return the outcome.

    Returns ``{"r2": final test R², "linear_r2": the least-squares line's,
    "history": fit's rows, "pred": test predictions, "y_test": targets}``.
    ``quick`` trains 20 epochs instead of 60.
    """
    mg.manual_seed(0)
    epochs = 20 if quick else 60
    X_train, X_test, y_train, y_test = load_dataset("diabetes")  # y has shape (n, 1)
    model = mg.nn.MLP([X_train.shape[1], 8, 1])
    optimizer = mg.optim.Momentum(model.parameters(), lr=0.01, beta=0.9, weight_decay=1e-2)
    history = mg.lab.fit(
        model, mg.nn.mse_loss, optimizer, X_train, y_train, X_test, y_test,
        epochs=epochs, batch_size=32, task="regression",
        log=lambda row: print(f"epoch {row['epoch']:2d}  train MSE {row['train_loss']:.4f}  "
                              f"test R² {row['test_metric']:+.3f}"),
    )
    with mg.no_grad():
        pred = model(mg.Tensor(X_test)).data
    r2 = history[-1]["test_metric"]
    linear_r2 = least_squares_r2(X_train, y_train, X_test, y_test)
    print(f"test R²: MLP {r2:.3f}, least-squares line {linear_r2:.3f} ({len(y_test)} test patients)")

    fig, (ax_fit, ax_loss, ax_r2) = plt.subplots(1, 3, figsize=(14, 4.2), gridspec_kw={"width_ratios": [1.2, 1, 1]})
    ax_fit.scatter(y_test[:, 0], pred[:, 0], s=14, alpha=0.7)
    lim = [min(y_test.min(), pred.min()) - 0.2, max(y_test.max(), pred.max()) + 0.2]
    ax_fit.plot(lim, lim, "k--", lw=0.8, label="pred = true")
    ax_fit.set(xlim=lim, ylim=lim, aspect="equal", xlabel="true progression (standardised)",
               ylabel="predicted", title=f"test set: R² = {r2:.3f}")
    ax_fit.legend(loc="upper left")
    epoch = [row["epoch"] for row in history]
    ax_loss.plot(epoch, [row["train_loss"] for row in history], "o-", ms=2)
    ax_loss.set(title="train MSE (mse_loss)", xlabel="epoch", ylabel="MSE (1 = predicting the mean)")
    ax_r2.plot(epoch, [row["test_metric"] for row in history], "o-", ms=2, color="tab:green", label="MLP 10-8-1")
    ax_r2.axhline(linear_r2, color="grey", ls="--", lw=0.8, label=f"least-squares line ({linear_r2:.3f})")
    ax_r2.set(title="test R²", xlabel="epoch", ylabel="R²", ylim=(-0.2, 0.6))
    ax_r2.legend(loc="lower right")
    fig.suptitle("MLP regressor on diabetes, Momentum(lr 0.01, β 0.9, weight decay 0.01), batch 32")
    fig.tight_layout()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "regression.png", dpi=70 if quick else 110)
    plt.close(fig)
    print(f"saved {out / 'regression.png'}")
    return {"r2": r2, "linear_r2": linear_r2, "history": history, "pred": pred, "y_test": y_test}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 epochs and a smaller figure")
    parser.add_argument(
        "--out", help="folder for the PNG (default: examples/figures; with --quick, examples/figures/quick, "
        "which git ignores, so the committed figures stay)"
    )
    args = parser.parse_args()
    main(quick=args.quick, out_dir=args.out or (FIGURES / "quick" if args.quick else FIGURES))
