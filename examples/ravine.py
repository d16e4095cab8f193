"""Momentum in a ravine: the picture this project started from, drawn by ``minigrad paths``.

The loss f(x, y) = (x² + 100·y²) / 2 is a long, narrow valley (condition
number 100): steep across (y), nearly flat along (x). Plain gradient descent
must keep its learning rate below 2/100 or the y coordinate blows up, and at
0.019 it zigzags from wall to wall while crawling along the floor.

Momentum (``mg.optim.Momentum``, the EWA rule v = β·v + (1-β)·g;
w = w - α·v) averages the gradients: the y components flip sign every step and
cancel in the average, the x components agree and add up. So the step-by-step
zigzag is gone (what is left is a slow swing across the valley that dies out),
it can take a larger learning rate, and it runs down the valley's length about
2.7 times faster.

This is ``python -m minigrad paths --function ravine --optimizers sgd,momentum
--lr sgd=0.019,momentum=0.04 --steps 1000 --tol 1e-8`` (:mod:`minigrad.paths`),
with the map showing the first 60 steps, where the two differ most. Run
``python examples/ravine.py`` (``--quick``, ``--out DIR``); it saves
``ravine.png`` and prints the steps each method needs to reach f < 1e-8.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from minigrad import paths

RATES = {"sgd": 0.019, "momentum": 0.04}  # given, not tuned: sgd just below its stability limit 2/λmax = 0.02
TARGET = 1e-8
FIGURES = Path(__file__).resolve().parent / "figures"


def main(quick: bool = False, out_dir: str | Path = FIGURES) -> dict[str, dict]:
    """Run both methods, save ``ravine.png`` in ``out_dir`` and return their results.

    Returns ``{"sgd": {...}, "momentum": {...}}``, each with ``lr``, ``path``
    (the points, shape (1001, 2)), ``losses`` (f at each point),
    ``steps_to_target`` (f < 1e-8; None if never) and ``final_loss``. The
    run is deterministic; ``quick`` only lowers the figure's resolution.
    """
    result = paths.run("ravine", list(RATES), RATES, steps=1000, tol=TARGET)
    print(paths.format_table(result))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ravine.png").write_bytes(paths.plot_png(result, dpi=70 if quick else 120, map_steps=60))
    print(f"saved {out / 'ravine.png'}")
    reached = {row["optimizer"]: row["steps_median"] for row in result.summary}
    runs = {}
    for p in result.paths:  # one path per optimizer: the run has no noise
        steps = reached[p.optimizer]
        runs[p.optimizer] = {"lr": p.lr, "path": p.points, "losses": p.f, "final_loss": float(p.f[-1]),
                             "steps_to_target": int(steps) if math.isfinite(steps) else None}
    return runs


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller figure (the run is already fast)")
    parser.add_argument(
        "--out", help="folder for the PNG (default: examples/figures; with --quick, examples/figures/quick, "
        "which git ignores, so the committed figures stay)"
    )
    args = parser.parse_args()
    main(quick=args.quick, out_dir=args.out or (FIGURES / "quick" if args.quick else FIGURES))
