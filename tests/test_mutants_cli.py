"""Tests that kill the mutants of cli.py, paths.py and graph.py that the rest of the suite let live.

Most are about a value that reaches the wrong place without an error: a command-line option parsed and then
dropped (or given its default), a default that differs from the library's, a table column, a CSV column, a
DOT attribute. Where a test replaces ``lab.compare``, ``lab.choose_defaults`` or ``paths.run`` it is with a
spy that records the call and stops it (a LabError: exit 2), so the options are checked as the library
receives them, at no training cost. Every expected value is written out here or worked out with numpy.
"""

import csv
import inspect
import math
import re

import numpy as np
import pytest

import minigrad as mg
from minigrad import cli, lab, paths
from minigrad import data as mgdata


def spy_on(monkeypatch, module, name):
    """Replace ``module.name`` by a function that records its (args, kwargs) and raises LabError."""
    calls = []

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        raise lab.LabError("spied")

    monkeypatch.setattr(module, name, spy)
    return calls


# ---------------------------------------------------------------------------
# compare and defaults: every option reaches the library, the defaults are the library's
# ---------------------------------------------------------------------------


def test_every_compare_option_reaches_lab_compare_as_given(monkeypatch, capsys):
    """--batch-size, --eval-points, --hidden, --schedule and --clip-grad-norm were parsed, then dropped (the
    library's default ran instead, silently); every option has a distinct value here, so a swap shows too."""
    calls = spy_on(monkeypatch, lab, "compare")
    argv = ["compare", "--datasets", "iris,wine", "--optimizers", "sgd,adam", "--lr", "sgd=0.1,adam=0.01",
            "--epochs", "4", "--batch-size", "7", "--seeds", "2", "--tune-seeds", "3", "--hidden", "16,8",
            "--target", "0.25", "--lr-grid", "0.01:1:3", "--eval-points", "9", "--schedule", "cosine",
            "--clip-grad-norm", "0.5", "--out", "somewhere", "--resume", "--jobs", "5", "--backend", "dask",
            "--scheduler", "tcp://10.0.0.5:8786", "--no-plots"]
    assert cli.main(argv) == 2 and "spied" in capsys.readouterr().err
    ((args, kwargs),) = calls
    assert args == (["iris", "wine"], ["sgd", "adam"], {"sgd": 0.1, "adam": 0.01})
    assert kwargs["lr_grid"] == pytest.approx((0.01, 0.1, 1.0), rel=1e-12)
    del kwargs["lr_grid"], kwargs["progress"]
    assert kwargs == {"epochs": 4, "batch_size": 7, "seeds": 2, "tune_seeds": 3, "hidden": (16, 8), "target": 0.25,
                      "eval_points": 9, "out_dir": "somewhere", "resume": True, "overwrite": False, "jobs": 5,
                      "backend": "dask", "scheduler": "tcp://10.0.0.5:8786", "plots": False, "schedule": "cosine",
                      "clip_grad_norm": 0.5}


def test_compare_without_options_runs_lab_compare_with_its_own_defaults(monkeypatch):
    """A changed CLI default (--epochs 31, --seeds 4, --out elsewhere) ran another experiment than lab.compare()
    and the README's; off DEFAULT_SETTINGS (30 epochs, batch 32, hidden 32,32) the documented rates stop applying
    and every run is silently tuned instead."""
    defaults = {k: p.default for k, p in inspect.signature(lab.compare).parameters.items()}
    calls = spy_on(monkeypatch, lab, "compare")
    assert cli.main([]) == 2
    ((args, kwargs),) = calls
    assert args == (defaults["datasets"], defaults["optimizers"], None)
    del kwargs["progress"]
    assert kwargs == {k: v for k, v in defaults.items() if k not in ("datasets", "optimizers", "lrs", "progress")}
    assert (kwargs["epochs"], kwargs["batch_size"], kwargs["hidden"]) == (30, 32, (32, 32))
    assert (kwargs["seeds"], kwargs["eval_points"], kwargs["out_dir"]) == (3, 50, "minigrad-results")


def test_defaults_tunes_every_dataset_and_passes_jobs(monkeypatch):
    """`defaults` tuned only the classification sets (DEFAULT_LRS lost diabetes when pasted), or ran --jobs 3
    on one process."""
    calls = spy_on(monkeypatch, lab, "choose_defaults")
    assert cli.main(["defaults"]) == 2
    assert cli.main(["defaults", "--datasets", "iris,wine", "--jobs", "3"]) == 2
    (all_args, all_kwargs), (args, kwargs) = calls
    assert all_args == (list(mgdata.DATASETS),) and list(mgdata.DATASETS) == list(lab.DEFAULT_LRS)
    assert "diabetes" in all_args[0] and all_kwargs["jobs"] == 1
    assert args == (["iris", "wine"],) and kwargs["jobs"] == 3


@pytest.mark.parametrize("given", [["--function", "ravine"], ["--steps", "5"], ["--start=1,2"], ["--noise", "0.1"],
                                   ["--tol", "0.1"], ["--gif"]])
def test_every_paths_option_given_to_compare_gets_the_hint(capsys, given):
    """--noise (and each other paths-only option) given to compare lost its hint to the paths command."""
    assert cli.main(["--datasets", "iris", *given]) == 2
    name = given[0].split("=")[0]
    assert f"({name} is an option of the paths command: python -m minigrad paths ...)" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# paths on the command line
# ---------------------------------------------------------------------------


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


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


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


def test_a_rate_at_the_grids_end_is_marked_in_the_table():
    """The "!" after a rate at the grid's end (explained under the table) was dropped."""
    result = paths.run("saddle", ["adam"], "tune", steps=30, lr_grid=(0.1, 1.0, 10.0))
    table = paths.format_table(result)
    assert next(line for line in table.splitlines() if line.startswith("adam")).split()[1] == "10!"
    assert "! the rate is at an end of the grid." in table.splitlines()


# ---------------------------------------------------------------------------
# paths: the functions' documented starts, windows and minima
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# graph: DOT attributes and the text view
# ---------------------------------------------------------------------------

_LINE = re.compile(r'^\s*(n\d+) \[label="((?:[^"\\]|\\.)*)", (.*)\];$')


def styled(source):
    """title -> (label lines, attributes) of every node statement of a DOT source."""
    found = {}
    for line in source.splitlines():
        if m := _LINE.match(line):
            label = m.group(2).split("\\n")
            found[label[0]] = (label, m.group(3))
    return found


def test_dot_styles_layout_and_constant_values():
    """Leaves drawn grey like constants, rankdir=TB (the loss at the bottom, arrows pointing down), and a
    constant's value shown to 2 digits instead of 4."""
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    source = mg.draw_graph((x.exp() * 0.123456).sum(), params={"x": x})
    assert source.splitlines()[:2] == ["digraph minigrad {", "  rankdir=BT;"]
    nodes = styled(source)
    assert nodes["x"][1] == 'shape=ellipse, style=filled, fillcolor="#d9f0d3"'
    assert nodes["constant"] == (["constant", "() float32", "value 0.1235"],
                                 'shape=ellipse, style=filled, fillcolor="#eeeeee", fontcolor="#555555"')
    for op in ("exp", "mul", "sum"):
        assert nodes[op][1] == 'shape=box, style="rounded,filled", fillcolor="#dbe8f7"'


def test_an_intermediate_with_retain_grad_shows_its_gradient_norm():
    """An op node whose .grad was kept by retain_grad() lost its "grad norm" line: y = sum(a·b), dy/dh = (1, 1),
    of norm √2; dy/da = b = (3, 4), of norm 5."""
    a = mg.Tensor([1.0, 2.0], requires_grad=True)
    b = mg.Tensor([3.0, 4.0], requires_grad=True)
    h = a * b
    h.retain_grad()
    y = h.sum()
    y.backward(retain_graph=True)
    names = {"a": a, "b": b}
    assert y.graph(params=names).splitlines()[1:3] == ["  [1] mul: (2,) float32, grad norm 1.414",
                                                       "    [2] a: (2,) float32, grad norm 5"]
    assert styled(mg.draw_graph(y, params=names))["mul"][0] == ["mul", "(2,) float32", "grad norm 1.414"]


def test_the_text_view_lists_an_ops_inputs_in_order():
    """The text view listed a - b as b, then a: the second input first."""
    a = mg.Tensor([1.0, 2.0], requires_grad=True)
    b = mg.Tensor([3.0, 4.0], requires_grad=True)
    assert (a - b).graph(params={"a": a, "b": b}).splitlines() == [
        "[0] sub: (2,) float32", "  [1] a: (2,) float32", "  [2] b: (2,) float32"]
    assert math.isclose(float((a - b).data.sum()), -4.0)
