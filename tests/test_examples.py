"""The example scripts run (quick mode), save their figure and show what they claim.

Each example is imported from its file and its ``main(quick=True, out_dir=tmp)``
is called; the values it returns are checked against the equations, recomputed
here with numpy, or against bounds on the outcome (accuracy, R²).
"""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import minigrad as mg
import minigrad.lab  # noqa: F401  (mg.lab)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` by path (examples is not a package)."""
    path = EXAMPLES / f"{name}.py"
    if not path.exists():
        pytest.skip(f"{path} does not exist")
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_png(path: Path) -> None:
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5_000  # a real plot, not an empty canvas


def first_below(losses: np.ndarray, target: float) -> int:
    return int(np.flatnonzero(losses < target)[0])


def test_ravine_gd_zigzags_and_momentum_needs_fewer_steps(tmp_path: Path) -> None:
    ravine = load_example("ravine")
    result = ravine.main(quick=True, out_dir=tmp_path)
    assert_png(tmp_path / "ravine.png")
    h = np.array([1.0, 100.0])  # f = (x² + 100·y²)/2, gradient h·w
    x0 = np.array([-10.0, 1.0])
    gd, mom = result["sgd"], result["momentum"]

    # Plain GD: w_k = (1 - lr·h)^k · w_0, coordinate by coordinate.
    k = np.arange(len(gd["path"]))[:, None]
    expected = (1 - gd["lr"] * h) ** k * x0
    np.testing.assert_allclose(gd["path"], expected, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(gd["losses"], 0.5 * (h * expected**2).sum(axis=1), rtol=1e-9, atol=1e-300)
    assert gd["steps_to_target"] == first_below(0.5 * (h * expected**2).sum(axis=1), 1e-8)
    # It zigzags: y changes sign at every one of the first steps (1 - 100·lr < 0).
    y = gd["path"][:20, 1]
    assert np.all(y[:-1] * y[1:] < 0)

    # Momentum: v = β·v + (1-β)·g, w = w - lr·v, v_0 = 0, recomputed here.
    w, v, beta = x0.copy(), np.zeros(2), 0.9
    path = [w.copy()]
    for _ in range(len(mom["path"]) - 1):
        v = beta * v + (1 - beta) * h * w
        w = w - mom["lr"] * v
        path.append(w.copy())
    np.testing.assert_allclose(mom["path"], np.array(path), rtol=1e-9, atol=1e-12)
    # No step-by-step zigzag: far fewer sign changes of y than GD.
    y = mom["path"][:20, 1]
    assert np.sum(y[:-1] * y[1:] < 0) <= 5

    # The claim, measured: momentum reaches f < 1e-8 in far fewer steps.
    assert mom["steps_to_target"] is not None and gd["steps_to_target"] is not None
    assert mom["steps_to_target"] * 2 < gd["steps_to_target"]


def test_ewa_matches_the_recurrence_bias_correction_and_momentum(tmp_path: Path) -> None:
    ewa = load_example("ewa")
    result = ewa.main(quick=True, out_dir=tmp_path)
    assert_png(tmp_path / "ewa.png")
    theta = result["theta"]
    t = np.arange(1, len(theta) + 1)
    assert set(result["ewa"]) == {0.5, 0.9, 0.98}
    for beta, v in result["ewa"].items():
        # Closed form of v_t = β·v_{t-1} + (1-β)·θ_t with v_0 = 0: (1-β)·Σ_s β^(t-s)·θ_s.
        weights = np.where(t[:, None] >= t[None, :], beta ** (t[:, None] - t[None, :]), 0.0)
        expected = (1 - beta) * weights @ theta
        np.testing.assert_allclose(v, expected, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(result["corrected"][beta], expected / (1 - beta**t), rtol=1e-10)
        # Momentum's velocity, fed θ as the gradient, is the same average.
        np.testing.assert_allclose(result["momentum"][beta], expected, rtol=1e-10, atol=1e-10)
        # The bias: v_1 = (1-β)·θ_1, while the corrected value is θ_1 itself.
        assert v[0] == pytest.approx((1 - beta) * theta[0])
        assert result["corrected"][beta][0] == pytest.approx(theta[0])


def test_moons_both_optimizers_learn_the_boundary(tmp_path: Path) -> None:
    moons = load_example("moons")
    result = moons.main(quick=True, out_dir=tmp_path)
    assert_png(tmp_path / "moons.png")
    assert set(result) == {"SGD", "Momentum"}
    for name, r in result.items():
        for history in r["histories"]:
            loss = [row["train_loss"] for row in history]
            assert [row["epoch"] for row in history] == list(range(11))
            assert min(loss) < 0.5 * loss[0], name  # both learn...
            if name == "Momentum":  # ...but at lr 2 only momentum is sure to end low (SGD may end on a spike)
                assert loss[-1] < 0.5 * loss[0]
        assert r["accuracy"] > 0.85, name
        # The returned accuracy is the model's: recompute it on the test split.
        _, X_test, _, y_test = mg.data.load_dataset("moons")
        assert np.mean(moons.predict(r["model"], X_test) == y_test) == pytest.approx(r["accuracy"])


def test_digits_explicit_loop_learns(tmp_path: Path) -> None:
    digits = load_example("digits")
    history = digits.main(quick=True, out_dir=tmp_path)
    assert_png(tmp_path / "digits.png")
    assert history["epoch"] == list(range(6))
    assert history["train_loss"][0] > 2.0  # about ln 10 before training
    assert history["train_loss"][-1] < 0.2
    assert history["test_accuracy"][-1] > 0.95  # the full run reaches 97%; 5 epochs already get close


def test_regression_fits_better_than_the_mean(tmp_path: Path) -> None:
    regression = load_example("regression")
    result = regression.main(quick=True, out_dir=tmp_path)
    assert_png(tmp_path / "regression.png")
    pred, y = result["pred"].ravel().astype(np.float64), result["y_test"].ravel().astype(np.float64)
    r2 = 1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)
    assert result["r2"] == pytest.approx(r2, abs=1e-5)
    assert result["r2"] > 0.2
    history = result["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_custom_optimizer_example_runs_and_trains_through_the_lab(tmp_path: Path) -> None:
    custom = load_example("custom_optimizer")  # skipped if that example is not there
    curves = custom.main(quick=True, out_dir=tmp_path)
    assert_png(tmp_path / "custom_optimizer.png")
    assert set(curves) == {"AdaBelief", "Adam"} and all(len(c) == 4 for c in curves.values())  # epochs 0..3
    assert curves["AdaBelief"][0] == curves["Adam"][0]  # the same seeded model before any step
    assert curves["AdaBelief"][-1] < 0.6 * curves["AdaBelief"][0]
    spec = mg.lab.resolve_optimizer(f"{EXAMPLES / 'custom_optimizer.py'}:AdaBelief")
    X_train, X_test, y_train, y_test = mg.data.load_dataset("moons", n_samples=200)
    mg.manual_seed(0)
    model = mg.nn.MLP([2, 16, 2])
    history = mg.lab.fit(
        model, mg.nn.cross_entropy, spec.make(model.parameters(), 0.01), X_train, y_train, X_test, y_test,
        epochs=5,
    )
    assert history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]


def test_example_command_line(tmp_path: Path) -> None:
    """``python examples/ewa.py --quick --out DIR`` writes its PNG there."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "ewa.py"), "--quick", "--out", str(tmp_path / "figs")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert_png(tmp_path / "figs" / "ewa.png")
    assert "saved" in done.stdout


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.stem)
def test_every_example_takes_quick_and_out(path: Path) -> None:
    """``main(quick, out_dir)`` and the flags ``--quick`` and ``--out``, so a test run writes nothing in the tree."""
    source = path.read_text()
    assert '"--quick"' in source and '"--out"' in source, f"{path.name} lacks --quick or --out"
    params = inspect.signature(load_example(path.stem).main).parameters
    assert "quick" in params and "out_dir" in params, f"{path.name}: main() must take quick and out_dir"


def ravine_steps_numpy(lrs: np.ndarray, betas: np.ndarray, cap: int) -> np.ndarray:
    """Steps to f < 1e-8 of Momentum(lr, beta) on the ravine from (-10, 1), for arrays of settings at once.

    The EWA rule v = β·v + (1-β)·g, w = w - lr·v (β = 0: plain gradient descent), recomputed with
    numpy; a run that passes 1e6·f(w_0) counts as diverged, as in the example. cap + 1 means "never".
    """
    h = np.array([1.0, 100.0])
    w = np.tile([-10.0, 1.0], (len(lrs), 1))
    v = np.zeros_like(w)
    f0 = 0.5 * np.sum(h * w[0] ** 2)
    steps = np.full(len(lrs), cap + 1)
    alive = np.ones(len(lrs), dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(cap + 1):
            f = 0.5 * np.sum(h * w**2, axis=1)
            hit = alive & (f < 1e-8)
            steps[hit] = k
            alive &= ~hit & (f <= 1e6 * f0)
            if not alive.any():
                break
            v = betas[:, None] * v + (1 - betas[:, None]) * h * w
            w = w - lrs[:, None] * v
    return steps


def test_curvature_example_theory_tuning_and_sharpness(tmp_path: Path) -> None:
    curvature = load_example("curvature")
    result = curvature.main(quick=True, out_dir=tmp_path)
    assert_png(tmp_path / "curvature.png")
    r = result["ravine"]
    np.testing.assert_array_equal(r["hessian"], np.diag([1.0, 100.0]))
    assert r["kappa"] == 100
    assert r["alpha"] == pytest.approx(4 / 121, rel=1e-14)  # 4/(√100 + √1)²
    assert r["beta"] == pytest.approx(81 / 121, rel=1e-14)  # ((10 - 1)/(10 + 1))²
    assert r["spectrum"].top == pytest.approx(100, rel=1e-9) and r["spectrum"].bottom == pytest.approx(1, rel=1e-9)

    # The heavy ball w' = w - α·h·w + β·(w - w_prev), w_prev = w_0 at the start, with numpy.
    h, alpha, beta = np.array([1.0, 100.0]), 4 / 121, 81 / 121
    w_prev = w = np.array([-10.0, 1.0])
    expected = []
    for _ in range(len(r["runs"]["heavy_ball_classic"]["losses"])):
        expected.append(0.5 * np.sum(h * w**2))
        w, w_prev = w - alpha * h * w + beta * (w - w_prev), w
    np.testing.assert_allclose(r["runs"]["heavy_ball_classic"]["losses"], expected, rtol=1e-9)
    # The EWA form at lr = α/(1-β) takes the very same steps.
    np.testing.assert_allclose(r["runs"]["heavy_ball_ewa"]["losses"], expected, rtol=1e-9)
    assert r["runs"]["heavy_ball_ewa"]["lr"] == pytest.approx(0.1, rel=1e-12)
    assert r["runs"]["heavy_ball_classic"]["steps"] == first_below(np.array(expected), 1e-8)
    # Gradient descent at 2/(λmax + λmin): w_k = (1 - lr·h)^k·w_0.
    gd = r["runs"]["gd_theory"]
    k = np.arange(len(gd["losses"]))[:, None]
    np.testing.assert_allclose(gd["losses"], 0.5 * np.sum(h * ((1 - 2 / 101 * h) ** k * [-10.0, 1.0]) ** 2, axis=1),
                               rtol=1e-9)

    # The tuned settings are the grid's best, recomputed here (ties go to the first in the example's order).
    grid = curvature.LR_GRID[::-1]
    sgd_steps = ravine_steps_numpy(grid, np.zeros(len(grid)), curvature.STEP_CAP)
    assert r["tuned"]["sgd"]["steps"] == sgd_steps.min() == r["runs"]["gd_tuned"]["steps"]
    assert r["tuned"]["sgd"]["lr"] == grid[np.argmin(sgd_steps)]
    lrs, betas = np.tile(grid, len(curvature.BETA_GRID)), np.repeat(curvature.BETA_GRID, len(grid))
    mom_steps = ravine_steps_numpy(lrs, betas, curvature.STEP_CAP)
    best = int(np.argmin(mom_steps))
    assert r["tuned"]["momentum"]["steps"] == mom_steps[best] == r["runs"]["momentum_tuned"]["steps"]
    assert (r["tuned"]["momentum"]["lr"], r["tuned"]["momentum"]["beta"]) == (lrs[best], betas[best])
    # The claim: the heavy ball needs several times fewer steps than the best gradient descent.
    assert 5 * r["runs"]["heavy_ball_classic"]["steps"] < r["runs"]["gd_theory"]["steps"]

    # Part 2: λmax at step 0 is the top eigenvalue of the dense Hessian, built here by central
    # differences of minigrad's gradient, column by column.
    X, y = curvature.moons_data(quick=True)
    model = curvature.make_model()
    params = model.parameters()

    def flat_grad() -> np.ndarray:
        for p in params:
            p.zero_grad()
        mg.nn.cross_entropy(model(X), y).backward()
        return np.concatenate([p.grad.ravel() for p in params])

    n, eps = sum(p.size for p in params), 1e-5
    H = np.zeros((n, n))
    for p, start in zip(params, np.cumsum([0] + [p.size for p in params])):
        flat = p.data.reshape(-1)  # a view: moving it moves the parameter
        for i in range(p.size):
            flat[i] += eps
            plus = flat_grad()
            flat[i] -= 2 * eps
            minus = flat_grad()
            flat[i] += eps
            H[:, start + i] = (plus - minus) / (2 * eps)
    moons = result["moons"]
    assert moons[0.1]["top"][0] == pytest.approx(np.linalg.eigvalsh((H + H.T) / 2)[-1], rel=1e-5)
    # Small rate: far below the threshold, the loss falls at every step. Large rate (2/lr = 1): the
    # sharpness overshoots 2/lr, the loss jumps up on the way, and λmax comes back to about 2/lr.
    assert np.all(moons[0.1]["top"] < 2 / 0.1) and np.all(np.diff(moons[0.1]["loss"]) < 0)
    top, loss = moons[2.0]["top"], moons[2.0]["loss"]
    assert top.max() > 2 * (2 / 2.0) and np.any(np.diff(loss) > 0)
    assert 0.9 * (2 / 2.0) < top[-1] < 1.5 * (2 / 2.0)
