"""``minigrad paths``: the test functions' gradients, paths against the update rules iterated in numpy, the
tuning's grid, plug-ins, noise, the files, and the command line's options (a spy stands in for ``paths.run``,
to see them as it receives them) and refusals.

Every expected value is computed here: gradients from their closed forms, paths by iterating each
optimizer's equations in numpy with those gradients.
"""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from test_cli import read_csv, spy_on

from minigrad import cli, lab, paths
from minigrad.engine import Tensor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Closed forms of each function and its gradient, written out by hand.
def closed_form(name: str, x: float, y: float) -> tuple[float, np.ndarray]:
    if name == "ravine":
        return (x**2 + 100 * y**2) / 2, np.array([x, 100 * y])
    if name == "rosenbrock":
        return (1 - x) ** 2 + 100 * (y - x**2) ** 2, np.array([-2 * (1 - x) - 400 * x * (y - x**2),
                                                               200 * (y - x**2)])
    if name == "beale":
        a, b, c = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
        return a**2 + b**2 + c**2, np.array([2 * a * (y - 1) + 2 * b * (y**2 - 1) + 2 * c * (y**3 - 1),
                                             2 * a * x + 4 * b * x * y + 6 * c * x * y**2])
    if name == "himmelblau":
        a, b = x**2 + y - 11, x + y**2 - 7
        return a**2 + b**2, np.array([4 * x * a + 2 * b, 2 * a + 4 * y * b])
    if name == "saddle":
        return x**2 - y**2, np.array([2 * x, -2 * y])
    if name == "rastrigin":
        f = 20 + x**2 - 10 * np.cos(2 * np.pi * x) + y**2 - 10 * np.cos(2 * np.pi * y)
        return f, np.array([2 * x + 20 * np.pi * np.sin(2 * np.pi * x), 2 * y + 20 * np.pi * np.sin(2 * np.pi * y)])
    raise KeyError(name)


def gradient(name: str, w: np.ndarray) -> np.ndarray:
    return closed_form(name, float(w[0]), float(w[1]))[1]


@pytest.mark.parametrize("name", list(paths.FUNCTIONS))
def test_each_function_and_its_backward_gradient_match_the_closed_form(name):
    s = paths.FUNCTIONS[name]
    rng = np.random.default_rng(0)
    x_low, x_high, y_low, y_high = s.window
    points = np.column_stack([rng.uniform(x_low, x_high, 20), rng.uniform(y_low, y_high, 20)])
    for point in [*points, np.array(s.start)]:
        w = Tensor(point.copy(), requires_grad=True)
        f = s.f(w)
        f.backward()
        expected_f, expected_g = closed_form(name, *point)
        assert float(f.data) == pytest.approx(expected_f, rel=1e-12, abs=1e-11)
        np.testing.assert_allclose(w.grad, expected_g, rtol=1e-10, atol=1e-10)
    # The grid evaluation the contours use is the same function.
    xs, ys = points[:, 0].reshape(4, 5), points[:, 1].reshape(4, 5)
    expected = np.array([closed_form(name, a, b)[0] for a, b in points]).reshape(4, 5)
    np.testing.assert_allclose(s.values(xs, ys), expected, rtol=1e-12, atol=1e-11)
    # The documented minima are stationary points at f*, inside the window, and the start is inside it too.
    for m in s.minima:
        f_m, g_m = closed_form(name, *m)
        assert f_m == pytest.approx(s.f_min, abs=1e-9)
        np.testing.assert_allclose(g_m, 0, atol=1e-4)  # the minima are given to 6 decimals
        assert s.contains(m)
    assert s.contains(s.start)
    assert s.formula and "f(x, y)" not in s.formula


def test_saddle_has_no_minimum_and_an_escape_level():
    s = paths.FUNCTIONS["saddle"]
    assert s.minima == () and s.f_min == -math.inf and s.target(1e-6) == -1.0
    assert paths.FUNCTIONS["rosenbrock"].target(1e-6) == pytest.approx(1e-6)


def iterate(rule, start, lr, steps):
    """The points of ``w_{t+1} = rule(w_t, state)`` from ``start``, with the closed-form gradients."""
    w, state = np.array(start, dtype=np.float64), {}
    out = [w.copy()]
    for t in range(steps):
        w = rule(w, state, t)
        out.append(w.copy())
    return np.array(out)


def test_sgd_and_momentum_paths_equal_their_rules_iterated_in_numpy():
    s = paths.FUNCTIONS["rosenbrock"]
    steps, lr = 40, 1e-3
    sgd = paths.descend(s, lab.resolve_optimizer("sgd"), lr, steps=steps)
    expected = iterate(lambda w, st, t: w - lr * gradient("rosenbrock", w), s.start, lr, steps)
    np.testing.assert_allclose(sgd.points, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sgd.f, [closed_form("rosenbrock", *p)[0] for p in expected], rtol=1e-12)
    assert sgd.status == "ok" and len(sgd.f) == steps + 1

    for text, beta in (("momentum", 0.9), ("momentum(beta=0.5)", 0.5)):
        def ewa(w, state, t, beta=beta):
            v = beta * state.get("v", np.zeros(2)) + (1 - beta) * gradient("rosenbrock", w)  # v = β·v + (1-β)·g
            state["v"] = v
            return w - 5e-3 * v  # w = w - α·v
        path = paths.descend(s, lab.resolve_optimizer(text), 5e-3, steps=steps)
        np.testing.assert_allclose(path.points, iterate(ewa, s.start, 5e-3, steps), rtol=1e-12, atol=1e-14)
        assert path.optimizer == text


def test_run_with_given_rates_reports_steps_to_target_from_the_closed_form():
    # Gradient descent on the ravine: w_k = (1 - lr·h)^k · w_0 coordinate by coordinate, h = (1, 100).
    h, w0, lr, tol = np.array([1.0, 100.0]), np.array([-10.0, 1.0]), 0.015, 1e-3
    result = paths.run("ravine", ["sgd"], {"sgd": lr}, steps=400, tol=tol)
    k = np.arange(401)[:, None]
    f = 0.5 * (h * ((1 - lr * h) ** k * w0) ** 2).sum(axis=1)
    (row,) = result.summary
    assert row["steps_median"] == np.flatnonzero(f < tol)[0]
    assert row["final_f"] == pytest.approx(f[-1], rel=1e-10)
    assert (row["final_x"], row["final_y"]) == pytest.approx(tuple((1 - lr * h) ** 400 * w0), rel=1e-9)
    table = paths.format_table(result)
    assert "given on the command line" in table and f"{int(row['steps_median'])}" in table


def test_tol_and_the_tables_columns_from_the_closed_form(tmp_path, capsys):
    """--tol 1e-3 reached the table's goal and its steps; the final x and y columns were swapped; "(median)"
    was written for a single run."""
    lr, h, w0 = 0.015, np.array([1.0, 100.0]), np.array([-10.0, 1.0])
    argv = ["paths", "--function", "ravine", "--optimizers", "sgd", "--lr", "sgd=0.015", "--steps", "400",
            "--tol", "1e-3", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    k = np.arange(401)[:, None]
    f = 0.5 * (h * ((1 - lr * h) ** k * w0) ** 2).sum(axis=1)  # gradient descent: w_k = (1 - lr·h)^k · w_0
    x, y = (1 - lr * h) ** 400 * w0
    header = next(line for line in out.splitlines() if line.startswith("optimizer"))
    assert header.endswith("final f") and "steps to f - f* < 0.001  " in header and "median" not in header
    row = next(line for line in out.splitlines() if line.startswith("sgd "))
    assert row.split() == ["sgd", "0.015", str(int(np.flatnonzero(f >= 1e-3)[-1] + 1)), f"{x:.6g}", f"{y:.6g}",
                           f"{f[-1]:.3g}"]


def test_the_saddle_path_stops_when_it_leaves_the_window():
    lr = 0.1
    result = paths.run("saddle", ["sgd"], {"sgd": lr}, steps=200)
    (p,) = result.paths
    # x_k = (1 - 2·lr)^k, y_k = (1 + 2·lr)^k · 0.001: |y| passes 2 after ceil(ln(2000) / ln 1.2) steps.
    leave = math.ceil(math.log(2000) / math.log(1 + 2 * lr))
    assert len(p.points) == leave + 1 and not result.surface.contains(p.points[-1])
    assert all(result.surface.contains(q) for q in p.points[:-1])
    k = np.arange(leave + 1)
    f = (1 - 2 * lr) ** (2 * k) - ((1 + 2 * lr) ** k * 1e-3) ** 2
    assert result.summary[0]["steps_median"] == np.flatnonzero(f < -1)[0]


def test_each_functions_start_window_and_minima_are_the_documented_ones():
    """Rosenbrock's start moved off his own (-1.2, 1), ravine's window grew to x >= -12, and himmelblau lost
    one of its four minima (the others still stationary, so the gradient check passed)."""
    documented = {  # (start, window, minima), from each function's docstring
        "ravine": ((-10.0, 1.0), (-11.0, 3.0, -1.5, 1.5), ((0.0, 0.0),)),
        "rosenbrock": ((-1.2, 1.0), (-2.0, 2.0, -1.0, 3.0), ((1.0, 1.0),)),
        "beale": ((1.0, 1.5), (-4.5, 4.5, -4.5, 4.5), ((3.0, 0.5),)),
        "himmelblau": ((-0.5, 0.5), (-5.0, 5.0, -5.0, 5.0),
                       ((3.0, 2.0), (-2.805118, 3.131313), (-3.779310, -3.283186), (3.584428, -1.848126))),
        "saddle": ((1.0, 0.001), (-2.0, 2.0, -2.0, 2.0), ()),
        "rastrigin": ((-2.8, 3.3), (-5.12, 5.12, -5.12, 5.12), ((0.0, 0.0),)),
    }
    assert {n: (s.start, s.window, s.minima) for n, s in paths.FUNCTIONS.items()} == documented
    with pytest.raises(lab.LabError, match="outside ravine's window"):
        paths.run("ravine", ["sgd"], {"sgd": 0.01}, steps=1, start=(-11.5, 0.0))


def test_the_window_includes_its_edges():
    """contains() was strict: a start on the window's edge, documented as inside, was refused."""
    s = paths.FUNCTIONS["ravine"]
    assert s.contains((-11.0, 1.5)) and s.contains((3.0, -1.5)) and not s.contains((3.0 + 1e-9, 0.0))
    result = paths.run("ravine", ["sgd"], {"sgd": 0.01}, steps=1, start=(3.0, -1.5))
    np.testing.assert_allclose(result.paths[0].points, [[3.0, -1.5], [3.0 - 0.03, -1.5 + 1.5]], rtol=1e-12)


class Spy:
    """Wraps an OptimizerSpec and records every rate an optimizer is built with."""

    def __init__(self, spec):
        self.rates = []
        self.spec = replace(spec, make=self.make)
        self._make = spec.make

    def make(self, params, lr):
        self.rates.append(lr)
        return self._make(params, lr)


def test_tuning_tries_exactly_the_grid_and_picks_by_the_documented_score():
    s = paths.FUNCTIONS["ravine"]
    grid = lab.log_grid(1e-3, 1e-1, 5)  # 0.001 .. 0.1; above 0.02 gradient descent diverges across the ravine
    spy = Spy(lab.resolve_optimizer("sgd"))
    steps, tol = 60, 0.05
    lr, rows = paths.tune(s, spy.spec, grid, steps=steps, tol=tol)
    assert sorted(spy.rates) == sorted(grid)  # every rate once (no noise: one run), nothing else
    assert [r["lr"] for r in rows] == list(grid)
    # The score, from the closed form: (steps to f < tol, final f, lr), lowest wins.
    h, w0 = np.array([1.0, 100.0]), np.array([-10.0, 1.0])
    k = np.arange(steps + 1)[:, None]
    scores = []
    for rate in grid:
        f = 0.5 * (h * ((1 - rate * h) ** k * w0) ** 2).sum(axis=1)
        hit = np.flatnonzero(f < tol)
        scores.append((float(hit[0]) if hit.size else math.inf, f[-1], rate))
    assert lr == min(scores)[2]
    assert lr in grid

    # With noise: every rate on TUNE_SEEDS runs, still nothing off the grid.
    spy = Spy(lab.resolve_optimizer("adam"))
    lr, _ = paths.tune(s, spy.spec, grid[:3], steps=10, noise=0.5)
    assert sorted(spy.rates) == sorted(list(grid[:3]) * paths.TUNE_SEEDS) and lr in grid[:3]


def test_a_rate_that_diverges_loses():
    s = paths.FUNCTIONS["rosenbrock"]
    lr, rows = paths.tune(s, lab.resolve_optimizer("sgd"), (1e-4, 1e-3, 1.0), steps=30)
    assert rows[2]["status"] == "diverged" and rows[2]["steps"] == math.inf
    assert lr == 1e-3  # 1e-4 and 1e-3 both miss in 30 steps; 1e-3 ends lower


def _path(f, status="ok", seed=0):
    f = np.asarray(f, dtype=np.float64)
    return paths.Path("ravine", "sgd", seed, 0.1, np.zeros((len(f), 2)), f, status)


def test_the_tuning_score_is_the_median_steps_and_any_diverged_run_loses():
    """(median over runs of the steps, mean final f); (inf, inf) as soon as one run diverged."""
    runs = [_path([1.0] * k + [0.25] * (12 - k)) for k in (1, 2, 10)]
    assert paths._score(runs, 0.5) == (2.0, 0.25)
    assert paths._score([runs[0], _path([1.0, math.nan], "diverged")], 0.5) == (math.inf, math.inf)


def test_tuning_with_every_rate_diverged_picks_no_rate():
    """Rosenbrock from (-1.2, 1) diverges at rates 10 and 100: no rate is chosen (nan), none of them."""
    lr, rows = paths.tune(paths.FUNCTIONS["rosenbrock"], lab.resolve_optimizer("sgd"), (10.0, 100.0), steps=20)
    assert [r["status"] for r in rows] == ["diverged", "diverged"]
    assert math.isnan(lr)


def test_tuning_ties_go_to_the_smaller_rate():
    """An optimizer that ignores its rate gives every rate the same path: the smallest rate wins."""
    sgd = lab.resolve_optimizer("sgd")
    fixed = lab.OptimizerSpec("fixed", lambda params, lr: sgd.make(params, 0.01), "fixed")
    lr, rows = paths.tune(paths.FUNCTIONS["ravine"], fixed, (0.001, 0.01, 0.1), steps=30)
    assert len({(r["steps"], r["final_f"]) for r in rows}) == 1
    assert lr == 0.001


def test_noisy_tuning_runs_on_the_tuning_seeds_not_the_reported_ones():
    """With noise, each rate's score comes from seeds TUNE_SEED_BASE + 0..2, disjoint from the reported 0..N-1."""
    surface, adam = paths.FUNCTIONS["ravine"], lab.resolve_optimizer("adam")
    _, (row,) = paths.tune(surface, adam, (0.1,), steps=40, noise=0.5)
    runs = [paths.descend(surface, adam, 0.1, steps=40, noise=0.5, seed=lab.TUNE_SEED_BASE + i) for i in range(3)]
    assert row["final_f"] == np.mean([p.f[-1] for p in runs])
    reported = [paths.descend(surface, adam, 0.1, steps=40, noise=0.5, seed=i) for i in range(3)]
    assert row["final_f"] != np.mean([p.f[-1] for p in reported])


def test_a_plugin_optimizer_draws_a_path(tmp_path, plugin_source, capsys):
    plugin = tmp_path / "signsgd.py"
    plugin.write_text(plugin_source)
    out = tmp_path / "out"
    argv = ["paths", "--function", "himmelblau", "--optimizers", f"sgd,{plugin}:SignSGD", "--lr",
            f"sgd=0.001,{plugin}:SignSGD=0.05", "--steps", "25", "--out", str(out)]
    assert cli.main(argv) == 0
    rows = list(csv.DictReader(open(out / "paths_himmelblau.csv", newline="")))
    mine = [r for r in rows if r["optimizer"] == "SignSGD"]
    expected = iterate(lambda w, st, t: w - 0.05 * np.sign(gradient("himmelblau", w)), (-0.5, 0.5), 0.05, 25)
    np.testing.assert_allclose([[float(r["x"]), float(r["y"])] for r in mine], expected, rtol=1e-12)
    assert [int(r["step"]) for r in mine] == list(range(26))
    assert {r["lr"] for r in mine} == {"0.05"} and {r["function"] for r in rows} == {"himmelblau"}
    assert (out / "paths_himmelblau.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "SignSGD" in capsys.readouterr().out


def test_a_plugin_that_raises_is_reported_and_the_command_exits_1(tmp_path, capsys):
    """It raises when state["step"] > 3, so in step 4, which the message names (it said "at step 3": the steps done)."""
    (tmp_path / "bad.py").write_text(
        "from minigrad.optim import Optimizer\n\n\nclass Bad(Optimizer):\n"
        "    def __init__(self, params, lr=0.1):\n        super().__init__(params, lr=lr)\n\n"
        "    def update(self, w, g, state):\n        if state['step'] > 3:\n"
        "            raise RuntimeError('boom')\n        w -= self.lr * g\n")
    out = tmp_path / "out"
    argv = ["paths", "--function", "ravine", "--optimizers", f"sgd,{tmp_path / 'bad.py'}:Bad", "--lr",
            "sgd=0.01,Bad=0.01", "--steps", "10", "--out", str(out)]
    assert cli.main(argv) == 1
    printed = capsys.readouterr().out
    assert "1 run(s) failed; the first: Bad failed at lr 0.01, seed 0: RuntimeError: boom (in step 4)" in printed
    rows = list(csv.DictReader(open(out / "paths_ravine.csv", newline="")))
    bad = [r for r in rows if r["optimizer"] == "Bad"]
    assert [int(r["step"]) for r in bad] == [0, 1, 2, 3]  # the points before the failed step
    assert len([r for r in rows if r["optimizer"] == "sgd"]) == 11
    # Tuned, every rate of Bad fails: it gets no rate, the others do, and the command still exits 1.
    argv = [*argv[:5], "--lr-grid", "0.01:0.1:2", *argv[7:]]
    assert cli.main(argv) == 1
    printed = capsys.readouterr().out
    assert "every rate diverged or failed in tuning" in printed and "Bad failed in tuning at lr 0.01" in printed


def test_noise_same_seed_same_path_other_seeds_other_paths():
    s, sgd = paths.FUNCTIONS["ravine"], lab.resolve_optimizer("sgd")
    a = paths.descend(s, sgd, 0.01, steps=30, noise=0.3, seed=1)
    b = paths.descend(s, sgd, 0.01, steps=30, noise=0.3, seed=1)
    c = paths.descend(s, sgd, 0.01, steps=30, noise=0.3, seed=2)
    np.testing.assert_array_equal(a.points, b.points)
    assert not np.allclose(a.points[1:], c.points[1:])
    # The noise is N(0, σ²) per coordinate from default_rng((NOISE_STREAM, seed)), added to the gradient.
    rng = np.random.default_rng((paths.NOISE_STREAM, 1))
    expected = iterate(lambda w, st, t: w - 0.01 * (gradient("ravine", w) + 0.3 * rng.standard_normal(2)),
                       s.start, 0.01, 30)
    np.testing.assert_allclose(a.points, expected, rtol=1e-12)
    # In a run: seeds 0..N-1, each its own path; the same run again gives the same paths.
    r1 = paths.run("ravine", ["sgd"], {"sgd": 0.01}, steps=20, noise=0.3, seeds=3)
    r2 = paths.run("ravine", ["sgd"], {"sgd": 0.01}, steps=20, noise=0.3, seeds=3)
    assert [p.seed for p in r1.paths] == [0, 1, 2]
    for p, q in zip(r1.paths, r2.paths):
        np.testing.assert_array_equal(p.points, q.points)
    assert len({p.points[-1].tobytes() for p in r1.paths}) == 3
    # Without noise the seed changes nothing, so there is one run, and the table says why.
    r3 = paths.run("ravine", ["sgd"], {"sgd": 0.01}, steps=5, seeds=3)
    assert len(r3.paths) == 1 and "does not depend on its seed" in paths.format_table(r3)


def test_the_summary_shows_the_lower_middle_run_of_an_even_count():
    """Two noisy seeds: the summary's final point and f are those of the run that ended lower."""
    result = paths.run("ravine", ["sgd"], {"sgd": 0.01}, steps=30, noise=1.0, seeds=2)
    low = min(result.paths, key=lambda p: p.f[-1])
    assert result.paths[0].f[-1] != result.paths[1].f[-1]
    (row,) = result.summary
    assert row["final_f"] == low.f[-1]
    assert (row["final_x"], row["final_y"]) == tuple(low.points[-1])


def test_png_gif_and_csv_are_written_and_the_gif_has_its_frames(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["paths", "--function", "ravine", "--optimizers", "sgd,momentum", "--lr", "sgd=0.015,momentum=0.1",
            "--steps", "12", "--gif", "--out", str(out)]
    assert cli.main(argv) == 0
    assert (out / "paths_ravine.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    gif = out / "paths_ravine.gif"
    assert gif.stat().st_size < 5_000_000
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == 13  # one per step, 0..12
    rows = list(csv.DictReader(open(out / "paths_ravine.csv", newline="")))
    assert list(rows[0]) == ["function", "optimizer", "seed", "step", "x", "y", "f", "lr"]
    assert len(rows) == 2 * 13
    for r in rows:
        assert float(r["f"]) == pytest.approx(closed_form("ravine", float(r["x"]), float(r["y"]))[0], rel=1e-12)
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]  # written atomically, nothing left over
    printed = capsys.readouterr().out
    assert "sgd" in printed and "momentum" in printed and "Wrote 3 files" in printed
    # A longer path gets at most `frames` frames.
    result = paths.run("ravine", ["sgd"], {"sgd": 0.015}, steps=40)
    (tmp_path / "short.gif").write_bytes(paths.animate_gif(result, frames=6))
    with Image.open(tmp_path / "short.gif") as image:
        assert image.n_frames == 6


def test_tuned_run_by_the_command_line_names_the_procedure(tmp_path, capsys):
    argv = ["paths", "--function", "beale", "--optimizers", "sgd,adam", "--lr-grid", "0.001:0.1:3", "--steps", "20",
            "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr()
    assert "tuned on the function for every optimizer (grid 0.001 to 0.1, 3 rates" in printed.out
    assert "tuned sgd on beale: lr" in printed.err


def test_every_paths_option_reaches_paths_run_and_the_defaults_are_documented(monkeypatch):
    """--tol, --noise and --seeds were parsed and dropped; --tol's default, 1e-6, and --out's, minigrad-paths,
    were changed; --noise 0 (the documented default, no noise) was refused."""
    calls = spy_on(monkeypatch, paths, "run")
    argv = ["paths", "--function", "beale", "--optimizers", "sgd,adam", "--lr-grid", "0.01:1:3", "--steps", "7",
            "--start=-1,2", "--noise", "0.25", "--seeds", "4", "--tol", "0.001", "--out", "there", "--gif"]
    assert cli.main(argv) == 2
    assert cli.main(["paths"]) == 2
    assert cli.main(["paths", "--noise", "0"]) == 2
    (args, kwargs), (dargs, dkwargs), (_, zero) = calls
    assert args == ("beale", ["sgd", "adam"], "tune")
    assert kwargs["lr_grid"] == pytest.approx((0.01, 0.1, 1.0), rel=1e-12)
    assert {k: kwargs[k] for k in ("steps", "start", "noise", "seeds", "tol", "out_dir", "gif")} == {
        "steps": 7, "start": (-1.0, 2.0), "noise": 0.25, "seeds": 4, "tol": 0.001, "out_dir": "there", "gif": True}
    assert dargs == ("rosenbrock", ["sgd", "momentum", "nesterov", "adam"], "tune")
    assert {k: dkwargs[k] for k in ("steps", "start", "noise", "seeds", "lr_grid", "tol", "out_dir", "gif")} == {
        "steps": 1000, "start": None, "noise": 0.0, "seeds": None, "lr_grid": None, "tol": 1e-6,
        "out_dir": "minigrad-paths", "gif": False}
    assert zero["noise"] == 0.0


def test_noisy_paths_from_the_command_line_have_their_seeds_and_noise(tmp_path, capsys):
    """--noise and --seeds on the command line: one path per seed 0..N-1, each w - lr·(∇f + σ·N(0, 1)) from
    default_rng((NOISE_STREAM, seed)); the CSV's seed column said 0 for every path; the table's heading gave σ."""
    argv = ["paths", "--function", "ravine", "--optimizers", "sgd", "--lr", "sgd=0.01", "--steps", "8",
            "--noise", "0.3", "--seeds", "2", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    rows = read_csv(tmp_path / "paths_ravine.csv")
    assert sorted({r["seed"] for r in rows}) == ["0", "1"] and len(rows) == 2 * 9
    for seed in (0, 1):
        rng, w = np.random.default_rng((2, seed)), np.array([-10.0, 1.0])
        expected = [w]
        for _ in range(8):
            w = w - 0.01 * (np.array([1.0, 100.0]) * w + 0.3 * rng.standard_normal(2))
            expected.append(w)
        mine = [r for r in rows if r["seed"] == str(seed)]
        np.testing.assert_allclose([[float(r["x"]), float(r["y"])] for r in mine], expected, rtol=1e-12)
    out = capsys.readouterr().out
    assert "8 steps, gradient noise σ = 0.3, 2 seeds" in out
    assert "steps to f - f* < 1e-06 (median)" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--function", "sphere"], "unknown function 'sphere'"),
        (["--start=5,5"], "is outside rosenbrock's window"),
        (["--start", "1"], "argument --start: expected two numbers"),
        (["--start", "-1,2"], "argument --start: expected one argument (a negative X needs the = form: --start=-1,2)"),
        (["--steps", "-3"], "argument --steps: must be >= 1, got -3"),
        (["--steps", "0"], "argument --steps: must be >= 1"),
        (["--noise", "-1"], "argument --noise: must be a number >= 0"),
        (["--seeds", "0"], "argument --seeds: must be >= 1"),
        (["--tol", "0"], "argument --tol: must be a positive number"),
        (["--optimizers", "rmsprops"], "unknown optimizer 'rmsprops'"),
        (["--optimizers", "momentum(gamma=1)"], "unexpected keyword argument 'gamma'"),
        (["--optimizers", "sgd,sgd"], "listed twice"),
        (["--lr", "fast"], "--lr: expected 'tune' or name=rate pairs"),
        (["--optimizers", "sgd,adam", "--lr", "sgd=0.1"], "give a rate for every optimizer"),
        (["--optimizers", "sgd", "--lr", "lion=0.1"], "not among the optimizers"),
        (["--lr-grid", "1:0.1:3"], "argument --lr-grid"),
        (["--optimizers", "sgd", "--lr", "sgd=0.1", "--lr-grid", "1e-3:1:4"], "a tuning grid is given too"),
        (["--out", "{file}"], "exists and is not a directory"),
    ],
)
def test_bad_input_prints_one_line_and_exits_2(tmp_path, capsys, argv, message):
    (tmp_path / "file").write_text("")
    argv = [a.format(file=tmp_path / "file") for a in argv]
    assert cli.main(["paths", "--steps", "5", "--out", str(tmp_path / "out"), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("minigrad: error: ") and message in lines[0]
    assert not (tmp_path / "out").exists()


def test_bad_input_in_a_subprocess_has_no_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "minigrad", "paths", "--function", "sphere", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"minigrad: error: unknown function 'sphere'; known functions: {', '.join(paths.FUNCTIONS)}"]


def test_help_lists_paths_and_its_options(capsys):
    assert cli.main(["--help"]) == 0
    assert "paths" in capsys.readouterr().out
    assert cli.main(["paths", "--help"]) == 0
    printed = capsys.readouterr().out
    for option in ("--function", "--optimizers", "--lr", "--steps", "--start", "--noise", "--seeds", "--out",
                   "--gif"):
        assert option in printed


def test_steps_to_target_counts_only_a_target_that_holds_to_the_end():
    """A noisy path that dipped below the target once was counted as there (sgd "206 steps" on a noise floor)."""
    assert paths.steps_to([5.0, 0.5, 2.0, 0.5, 0.1], 1.0) == 3  # the dip at step 1 swung out again
    assert paths.steps_to([5.0, 0.5, 0.4], 1.0) == 1
    assert paths.steps_to([0.5, 0.4], 1.0) == 0
    assert paths.steps_to([5.0, 0.5, 2.0], 1.0) == math.inf  # back above at the end: not there
    assert paths.steps_to([5.0, float("nan")], 1.0) == math.inf


def test_steps_to_needs_f_strictly_below_the_target():
    """f < target, as documented: a path that sits at the target has not reached it."""
    assert paths.steps_to([1.0, 0.5, 0.5], 0.5) == math.inf
    assert paths.steps_to([1.0, 0.5, 0.25], 0.5) == 2


def test_a_run_without_gif_removes_an_earlier_runs_gif(tmp_path):
    """A GIF of an earlier run (other noise, other steps) stayed beside the new PNG and CSV."""
    kwargs = {"steps": 20, "out_dir": str(tmp_path)}
    paths.run("ravine", ["sgd"], {"sgd": 0.01}, gif=True, **kwargs)
    gif = tmp_path / "paths_ravine.gif"
    assert gif.exists()
    result = paths.run("ravine", ["sgd"], {"sgd": 0.02}, gif=False, **kwargs)
    assert not gif.exists()
    assert sorted(os.path.basename(f) for f in result.files) == ["paths_ravine.csv", "paths_ravine.png"]


def test_a_rate_at_the_grids_end_is_told_how_to_widen_it_and_the_gif_says_it_is_drawn(tmp_path):
    """paths marked an edge rate with "!" but, unlike compare, gave no wider grid; the GIF took 17 s silently."""
    lines: list[str] = []
    result = paths.run("saddle", ["adam"], "tune", steps=30, lr_grid=(0.1, 1.0, 10.0), out_dir=str(tmp_path),
                       gif=True, progress=lines.append)
    assert result.rates["adam"] == 10.0  # on the saddle a larger rate escapes sooner
    assert result.warnings == ["warning: adam's best rate on saddle, 10, is the highest rate of the grid; the best "
                               "may lie above it: widen the grid, e.g. --lr-grid 0.1:1000:5"]
    assert "drawing paths_saddle.gif (at most 120 frames; this takes a while)" in lines


def test_a_tuned_rate_at_the_low_end_of_the_grid_is_marked_and_warned():
    """Ravine, sgd: 1.0 diverges (lr must stay below 2/100), so 0.001 wins at the grid's low end; with 1/3
    rate a decade (steps of 3 decades, too coarse to repeat), the wider grid is 1e-5..1 at two rates a decade."""
    result = paths.run("ravine", ["sgd"], "tune", steps=30, lr_grid=(0.001, 1.0))
    assert result.rates["sgd"] == 0.001 and result.summary[0]["at_grid_edge"]
    assert result.warnings == ["warning: sgd's best rate on ravine, 0.001, is the lowest rate of the grid; the best "
                               "may lie below it: widen the grid, e.g. --lr-grid 1e-05:1:11"]


def test_a_rate_at_the_grids_end_is_marked_in_the_table():
    """The "!" after a rate at the grid's end (explained under the table) was dropped."""
    result = paths.run("saddle", ["adam"], "tune", steps=30, lr_grid=(0.1, 1.0, 10.0))
    table = paths.format_table(result)
    assert next(line for line in table.splitlines() if line.startswith("adam")).split()[1] == "10!"
    assert "! the rate is at an end of the grid." in table.splitlines()


def test_a_plugin_named_as_a_builtin_is_refused(tmp_path, plugin_source):
    """paths labelled a plug-in class named sgd as "sgd", like the built-in; compare refused it already."""
    path = tmp_path / "named.py"
    path.write_text(plugin_source.replace("class SignSGD", "class sgd"))
    with pytest.raises(lab.LabError, match="is named 'sgd', as a built-in is"):
        paths.run("ravine", ["adam", f"{path}:sgd"], {"adam": 0.1, "sgd": 0.1}, steps=5)


def test_a_picture_that_cannot_be_written_keeps_the_table_and_the_csv(tmp_path, capsys):
    """paths_ravine.png made a folder: the run printed no table and never tried the GIF."""
    (tmp_path / "paths_ravine.png").mkdir()
    argv = ["paths", "--function", "ravine", "--optimizers", "sgd", "--lr", "sgd=0.01", "--steps", "10", "--gif",
            "--out", str(tmp_path)]
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    assert "steps to f - f* <" in captured.out
    last = captured.err.strip().splitlines()[-1]
    assert last.startswith(f"minigrad: error: cannot write {tmp_path / 'paths_ravine.png'}")
    assert (tmp_path / "paths_ravine.csv").exists() and (tmp_path / "paths_ravine.gif").exists()



def test_a_grid_given_at_its_default_is_refused_with_given_rates(capsys):
    """The default grid written out (--lr-grid 1e-5:10:13) with given rates was taken, and ignored, silently."""
    argv = ["paths", "--function", "beale", "--optimizers", "sgd", "--lr", "sgd=0.01", "--steps", "5",
            "--lr-grid", lab.DEFAULT_GRID_TEXT]
    assert cli.main(argv) == 2
    assert "a tuning grid is given too, which only tuning uses" in capsys.readouterr().err
    with pytest.raises(lab.LabError, match="a tuning grid is given too"):
        paths.run("beale", ["sgd"], {"sgd": 0.01}, steps=5, lr_grid=lab.LR_GRID)
    assert paths.run("beale", ["sgd"], {"sgd": 0.01}, steps=5).procedure == "given"


def test_every_picture_that_cannot_be_written_is_said(tmp_path, capsys):
    (tmp_path / "paths_ravine.png").mkdir()
    (tmp_path / "paths_ravine.gif").mkdir()
    argv = ["paths", "--function", "ravine", "--optimizers", "sgd", "--lr", "sgd=0.01", "--steps", "10", "--gif",
            "--out", str(tmp_path)]
    assert cli.main(argv) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("minigrad: error:")]
    assert [line.split(": ")[2] for line in err] == [f"cannot write {tmp_path / 'paths_ravine.png'}",
                                                    f"cannot write {tmp_path / 'paths_ravine.gif'}"]
    assert (tmp_path / "paths_ravine.csv").exists()
