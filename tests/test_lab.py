"""The lab as a fair benchmark: fit, optimizers with arguments, one procedure per table, statistics, plots."""

import csv
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import data, lab, nn, optim
from minigrad import data as mgdata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Tiny settings: a run of these takes milliseconds.
TINY = {"epochs": 2, "batch_size": 32, "seeds": 2, "hidden": (8,), "eval_points": 10}
# (tune_seeds is left at its default, 2: given, it asks for tuning, which given rates refuse)


def numpy_mlp(model, X):
    """The forward pass of an MLP of Linear/ReLU layers, in plain numpy float64."""
    h = np.asarray(X, dtype=np.float64)
    for layer in model.layers:
        if isinstance(layer, nn.Linear):
            h = h @ layer.W.data.astype(np.float64) + layer.b.data.astype(np.float64)
        else:
            h = np.maximum(h, 0)
    return h


def numpy_cross_entropy(logits, y):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(y)), y].mean())


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def iris():
    return data.load_dataset("iris")


# ---------------------------------------------------------------------------
# fit, the plain loop the examples use
# ---------------------------------------------------------------------------


def test_fit_lowers_the_loss_and_reports_true_values(iris):
    X_train, X_test, y_train, y_test = iris
    mg.manual_seed(0)
    model = nn.MLP([4, 16, 3])
    logged = []
    history = lab.fit(
        model, nn.cross_entropy, optim.SGD(model.parameters(), lr=0.1), X_train, y_train, X_test, y_test,
        epochs=20, batch_size=16, log=logged.append,
    )
    assert [row["epoch"] for row in history] == list(range(21))
    assert logged == history
    assert abs(history[0]["train_loss"] - math.log(3)) < 0.5
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert history[-1]["train_loss"] == pytest.approx(numpy_cross_entropy(numpy_mlp(model, X_train), y_train), rel=1e-4)
    test_acc = np.mean(np.argmax(numpy_mlp(model, X_test), axis=1) == y_test)
    assert history[-1]["test_metric"] == pytest.approx(test_acc)


def test_fit_stops_when_the_loss_diverges(iris):
    X_train, _, y_train, _ = iris
    mg.manual_seed(0)
    model = nn.MLP([4, 16, 3])
    with np.errstate(all="ignore"):
        history = lab.fit(model, nn.cross_entropy, optim.SGD(model.parameters(), lr=1e8), X_train, y_train, epochs=50)
    assert len(history) < 51 and not math.isfinite(history[-1]["train_loss"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": -1}, "epochs must be an integer >= 0"),
        ({"epochs": 1, "batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"epochs": 1, "task": "ranking"}, "task must be one of"),
        ({"epochs": 1, "X_test": np.zeros((2, 4))}, "give both X_test and y_test"),
    ],
)
def test_fit_rejects_bad_arguments(iris, kwargs, message):
    X_train, _, y_train, _ = iris
    model = nn.MLP([4, 3])
    with pytest.raises(ValueError, match=message):
        lab.fit(model, nn.cross_entropy, optim.SGD(model.parameters(), lr=0.1), X_train, y_train, **kwargs)


def test_fit_refuses_an_optimizer_of_another_models_parameters(iris):
    """Training would change nothing, silently: the model's weights stay as they are."""
    X_train, _, y_train, _ = iris
    model, other = nn.MLP([4, 3]), nn.MLP([4, 3])
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"fit: the optimizer \(SGD of 2 parameters\) updates none of the model's 2 "
                                         r"parameters.*model.parameters\(\)"):
        lab.fit(model, nn.cross_entropy, optim.SGD(other.parameters(), lr=0.1), X_train, y_train, epochs=1)
    assert all(np.array_equal(p.data, b) for p, b in zip(model.parameters(), before))
    last = nn.MLP([4, 8, 3])  # an optimizer of some of them (the last layer only) is fine
    history = lab.fit(last, nn.cross_entropy, optim.SGD(last.layers[-1].parameters(), lr=0.1), X_train, y_train,
                      epochs=2)
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_a_misspelt_name_gets_the_closest_known_one():
    with pytest.raises(lab.LabError, match=r"unknown optimizer 'Adam' \(did you mean 'adam'\?\)"):
        lab.compare(["iris"], ["Adam"], "tune", out_dir=None, **TINY)
    with pytest.raises(lab.LabError, match=r"unknown dataset 'Digits' \(did you mean 'digits'\?\)"):
        lab.compare(["Digits"], ["adam"], "tune", out_dir=None, **TINY)
    with pytest.raises(lab.LabError, match=r"unknown optimizer 'xyz'; known"):  # nothing close: no guess
        lab.compare(["iris"], ["xyz"], "tune", out_dir=None, **TINY)


def test_metrics_by_hand():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]])
    assert lab.accuracy(logits, np.array([0, 1, 1, 1])) == 0.75
    # y = 1, 2, 3 (mean 2, Σ(y - ȳ)² = 2); pred = 1, 2, 4: Σ(y - pred)² = 1; R² = 1 - 1/2.
    assert lab.r2_score(np.array([[1.0], [2.0], [4.0]]), np.array([[1.0], [2.0], [3.0]])) == 0.5


def test_steps_and_epochs_to_target():
    assert lab.steps_to_target([0, 5, 10, 15], [1.0, 0.5, 0.09, 0.05], 0.1) == 10
    assert lab.steps_to_target([0, 5], [1.0, 0.5], 0.1) == math.inf
    history = [{"epoch": e, "train_loss": loss} for e, loss in enumerate([1.0, 0.5, 0.09])]
    assert lab.epochs_to_target(history, 0.1) == 2


def test_a_loss_equal_to_the_target_counts_as_reached():
    """Steps and epochs to target are the first point at or below the target (<=, not <)."""
    assert lab.steps_to_target([0, 5, 10], [1.0, 0.25, 0.125], 0.25) == 5
    history = [{"epoch": 0, "train_loss": 1.0}, {"epoch": 1, "train_loss": 0.5}, {"epoch": 2, "train_loss": 0.25}]
    assert lab.epochs_to_target(history, 0.5) == 1


# ---------------------------------------------------------------------------
# Optimizers: built-in, plug-in, keyword arguments parsed as literals only
# ---------------------------------------------------------------------------


def test_builtin_optimizers():
    params = [nn.Parameter(np.zeros(3))]
    cases = {
        "sgd": (optim.SGD, {"momentum": 0.0, "nesterov": False}),
        "momentum": (optim.Momentum, {"beta": 0.9, "bias_correction": False}),
        "nesterov": (optim.SGD, {"momentum": 0.9, "nesterov": True}),
        "adam": (optim.Adam, {"betas": (0.9, 0.999)}),
        "adamw": (optim.AdamW, {"betas": (0.9, 0.999), "weight_decay": 1e-2}),
        "rmsprop": (optim.RMSprop, {"alpha": 0.99, "momentum": 0.0, "centered": False}),
        "adagrad": (optim.Adagrad, {"lr_decay": 0.0}),
        "nadam": (optim.NAdam, {"betas": (0.9, 0.999), "momentum_decay": 4e-3}),
        "lion": (optim.Lion, {"betas": (0.9, 0.99)}),
    }
    assert set(cases) == set(lab.BUILTIN_OPTIMIZERS)
    assert set(lab.COLOURS) == set(cases) and len(set(lab.COLOURS.values())) == len(cases)
    for name, (cls, hyper) in cases.items():
        spec = lab.resolve_optimizer(name)
        assert spec.name == name and spec.builtin
        opt = spec.make(params, 0.25)
        assert type(opt) is cls and opt.lr == 0.25
        for key, value in hyper.items():
            assert getattr(opt, key) == value


def test_keyword_arguments_reach_the_optimizer(tmp_path):
    params = [nn.Parameter(np.zeros(3))]
    spec = lab.resolve_optimizer("momentum(beta=0.95)")
    assert spec.name == "momentum(beta=0.95)" and not spec.builtin
    assert spec.make(params, 0.1).beta == 0.95
    adam = lab.resolve_optimizer("adam(betas=(0.9, 0.99), eps=1e-6)")
    opt = adam.make(params, 0.1)
    assert opt.betas == (0.9, 0.99) and opt.eps == 1e-6
    assert adam.name == "adam(betas=(0.9, 0.99), eps=1e-06)"
    assert lab.resolve_optimizer("minigrad.optim:SGD(momentum=0.5)").make(params, 0.1).momentum == 0.5
    path = tmp_path / "scaled.py"
    path.write_text(
        "import numpy as np\nfrom minigrad.optim import Optimizer\n\n\nclass Scaled(Optimizer):\n"
        "    def __init__(self, params, lr, scale=1.0, names=()):\n"
        "        super().__init__(params, lr=lr, scale=scale, names=names)\n\n"
        "    def update(self, w, g, state):\n        w -= self.lr * self.scale * g\n"
    )
    spec = lab.resolve_optimizer(f"{path}:Scaled(scale=3.0, names=['a', 'b'])")
    assert spec.name == "Scaled(scale=3.0, names=['a', 'b'])"
    w = nn.Parameter(np.array([1.0]))
    w.grad = np.array([2.0])
    opt = spec.make([w], 0.1)
    opt.step()
    assert opt.names == ["a", "b"]
    np.testing.assert_allclose(w.data, [1.0 - 0.1 * 3.0 * 2.0])


@pytest.mark.parametrize(
    "spec, message",
    [
        ("momentum(0.95)", "expected name"),
        ("momentum(beta=__import__('os').getcwd())", "the value of beta is not a literal"),
        ("momentum(beta=0.9 + x)", "the value of beta is not a literal"),
        ("momentum(**{'beta': 0.9})", r"\*\* is not allowed"),
        ("momentum(beta=0.9", "expected name"),
        ("momentum(beta=0.9); import os", "expected name"),
        ("sgd(lr=0.1)", "lr is set by the lab"),
        ("momentum(gamma=0.1)", "unexpected keyword argument 'gamma'"),
        ("momentum(beta=2.0)", "invalid beta"),
        ("rmsprops", "unknown optimizer 'rmsprops'"),
    ],
)
def test_bad_keyword_arguments(spec, message):
    with pytest.raises(lab.LabError, match=message):
        lab.resolve_optimizer(spec)


def test_plugin_by_path_and_by_module(tmp_path, plugin_source, monkeypatch):
    path = tmp_path / "signsgd.py"
    path.write_text(plugin_source)
    spec = lab.resolve_optimizer(f"{path}:SignSGD")
    assert spec.name == "SignSGD" and not spec.builtin and spec.source == f"{path.resolve()}:SignSGD"
    w = nn.Parameter(np.array([1.0, -2.0, 3.0]))
    w.grad = np.array([0.5, -4.0, 0.0])
    spec.make([w], 0.1).step()
    np.testing.assert_allclose(w.data, [0.9, -1.9, 3.0])  # w - 0.1·sign(g)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert lab.resolve_optimizer("signsgd:SignSGD").name == "SignSGD"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("{dir}/nope.py:X", "no such file"),
        ("{file}:Missing", "has no class 'Missing'$"),
        ("{file}:signsgd", r"has no class 'signsgd' \(did you mean 'SignSGD'\?\)"),
        ("{file}:np", "is not a subclass of minigrad.optim.Optimizer"),
        ("{broken}:X", "importing .* failed: ZeroDivisionError"),
        ("no_such_module_xyz:X", "cannot import module 'no_such_module_xyz'"),
        ("{nolr}:NoLR", r"building it as NoLR\(lr=0.001\) \(a trial rate; the lab sets the rate itself\) "
                        r"failed: TypeError"),
    ],
)
def test_bad_plugins(tmp_path, plugin_source, spec, message):
    (tmp_path / "ok.py").write_text(plugin_source)
    (tmp_path / "broken.py").write_text("1 / 0\n")
    (tmp_path / "nolr.py").write_text(plugin_source.replace("SignSGD", "NoLR").replace("lr=0.01", "step=0.01"))
    spec = spec.format(dir=tmp_path, file=tmp_path / "ok.py", broken=tmp_path / "broken.py", nolr=tmp_path / "nolr.py")
    with pytest.raises(lab.LabError, match=message):
        lab.resolve_optimizer(spec)


# ---------------------------------------------------------------------------
# The protocol: one procedure, disjoint seeds, the grid's edges, divergence
# ---------------------------------------------------------------------------


def test_a_builtin_under_another_name_gets_exactly_the_builtins_rows(tmp_path):
    plugin = tmp_path / "renamed.py"
    plugin.write_text("from minigrad.optim import Adam\n\n\nclass Renamed(Adam):\n    pass\n")
    names = ["sgd", "adam", "minigrad.optim:Adam", f"{plugin}:Renamed"]
    result = lab.compare(["iris", "wine"], names, lr_grid=(1e-3, 1e-2, 1e-1, 1.0), out_dir=None, **TINY)
    assert result.procedure == "tuned"
    assert [s.name for s in map(lab.resolve_optimizer, names)] == ["sgd", "adam", "Adam", "Renamed"]

    def rows(name):
        return [{k: v for k, v in r.items() if k not in ("optimizer", "seconds")} for r in result.rows
                if r["optimizer"] == name]

    def summary(name):
        return [{k: v for k, v in s.items() if k not in ("optimizer", "seconds_mean")} for s in result.summary
                if s["optimizer"] == name]

    assert rows("adam") and rows("adam") == rows("Adam") == rows("Renamed")
    assert summary("adam") == summary("Adam") == summary("Renamed")
    scores = {name: [(r["dataset"], r["lr"], r["tune_seed"], r["score"]) for r in result.tuning
                     if r["optimizer"] == name] for name in ("adam", "Adam", "Renamed")}
    assert scores["adam"] == scores["Adam"] == scores["Renamed"]
    assert rows("sgd") != rows("adam")


def test_the_defaults_apply_only_to_builtins_at_the_default_settings(tmp_path, plugin_source):
    st = lab.DEFAULT_SETTINGS
    result = lab.compare(["iris"], ["sgd", "adam"], seeds=1, epochs=st["epochs"], batch_size=st["batch_size"],
                         hidden=st["hidden"], out_dir=None)
    assert result.procedure == "default"
    assert result.rates == {("iris", "sgd"): lab.DEFAULT_LRS["iris"]["sgd"],
                            ("iris", "adam"): lab.DEFAULT_LRS["iris"]["adam"]}
    assert {r["lr"] for r in result.rows if r["optimizer"] == "adam"} == {lab.DEFAULT_LRS["iris"]["adam"]}
    assert "documented per-dataset defaults" in lab.format_table(result)
    changed = lab.compare(["iris"], ["sgd"], lr_grid=(0.1, 1.0), out_dir=None, **TINY)
    assert changed.procedure == "tuned" and "changes epochs, hidden" in changed.procedure_reason
    with_args = lab.compare(["iris"], ["sgd", "momentum(beta=0.5)"], lr_grid=(0.1, 1.0), out_dir=None, **TINY)
    assert with_args.procedure == "tuned"
    assert "tuned in this run for every optimizer" in lab.format_table(with_args)


def test_a_tuning_grid_or_tuning_seeds_of_its_own_make_a_run_tune():
    """--lr-grid and --tune-seeds were ignored, silently, where the documented defaults applied."""
    st = lab.DEFAULT_SETTINGS
    at_defaults = {"seeds": 1, "epochs": st["epochs"], "batch_size": st["batch_size"], "hidden": st["hidden"],
                   "out_dir": None, "lr_grid": (0.01, 0.1)}
    result = lab.compare(["moons"], ["sgd"], **at_defaults)
    assert result.procedure == "tuned" and result.procedure_reason == "this run gives a tuning grid of its own"
    assert result.rates[("moons", "sgd")] in (0.01, 0.1)
    with pytest.raises(lab.LabError, match="gives every optimizer its rate and also a tuning grid and tuning seeds"):
        lab.compare(["iris"], ["sgd"], {"sgd": 0.1}, lr_grid=(0.1, 1.0), **TINY | {"tune_seeds": 1},
                    out_dir=None)


def test_given_rates_must_cover_every_optimizer():
    with pytest.raises(lab.LabError, match="give a rate for every optimizer"):
        lab.compare(["iris"], ["sgd", "adam"], {"sgd": 0.1}, out_dir=None, **TINY)


def test_tuning_and_reporting_seeds_never_overlap(tmp_path):
    result = lab.compare(["iris"], ["sgd"], "tune", lr_grid=(0.1, 1.0), out_dir=tmp_path,
                         **(TINY | {"seeds": 3, "tune_seeds": 3}))
    tuned = {int(r["tune_seed"]) for r in read_csv(tmp_path / "tuning.csv")}
    reported = {int(r["seed"]) for r in read_csv(tmp_path / "results.csv")}
    assert reported == {0, 1, 2} and len(tuned) == 3 and not tuned & reported
    assert min(tuned) >= lab.TUNE_SEED_BASE > max(reported)
    # The tuned rate is the lowest mean score, recomputed here from tuning.csv.
    scores = {}
    for r in read_csv(tmp_path / "tuning.csv"):
        scores.setdefault(float(r["lr"]), []).append(float(r["score"]))
    best = min(scores, key=lambda lr: np.mean(scores[lr]))
    assert result.rates["iris", "sgd"] == best


def test_reported_seeds_stop_below_the_tuning_seeds():
    """seeds = TUNE_SEED_BASE is the most allowed: one more would report the first tuning seed."""
    args = (["iris"], ["sgd"], None, 2, 32)
    lab._check_settings(*args, lab.TUNE_SEED_BASE, 2, (8,), None, 10)
    with pytest.raises(lab.LabError, match="seeds must be at most 10000"):
        lab._check_settings(*args, lab.TUNE_SEED_BASE + 1, 2, (8,), None, 10)


def test_tuning_uses_the_seeds_from_the_base_and_a_rate_at_the_lowest_edge_is_warned():
    """Tuning seeds are exactly TUNE_SEED_BASE + 0..T-1; 0.1 wins at the grid's low end and is warned about,
    with a grid two decades lower: (0.1, 1e6) has one step of 7 decades, too coarse to repeat, so two rates
    a decade from 0.001 up to 1e6, 19 rates, which keep 0.1 and 1e6."""
    result = lab.compare(["iris"], ["sgd"], "tune", lr_grid=(0.1, 1e6), out_dir=None, **TINY)
    assert {r["tune_seed"] for r in result.tuning} == {10_000, 10_001}
    assert result.rates["iris", "sgd"] == 0.1
    assert ("warning: sgd's best rate on iris, 0.1, is the lowest rate of the grid; the best may lie below it: "
            "widen the grid, e.g. --lr-grid 0.001:1000000:19") in result.warnings


def test_a_tuning_run_trains_on_the_80_percent_and_scores_the_mean_validation_loss():
    """Fairness: a tuning run never sees the test split; its score is the area under the validation curve."""
    record = lab._run_task(lab._Task("tune", "iris", "sgd", "sgd", 0.1, 10_000, 2, 32, (8,), 5))
    # iris: 112 training rows, 89 of them fit (80%): ceil(89 / 32) = 3 steps an epoch, 6 in 2 (112 rows: 8)
    assert record["step"] == [6]
    X, X_val, y, y_val = lab._validation_split("iris")
    assert (len(X), len(X_val)) == (89, 23)
    run = lab.train_run(X, y, X_val, y_val, task="classification", make_optimizer=lambda p: optim.SGD(p, lr=0.1),
                        seed=10_000, hidden=(8,), epochs=2, batch_size=32, eval_points=5, train_curve=False)
    assert len(run["eval_loss"]) == 4  # steps 0, 2, 4, 6
    assert record["score"] == np.mean(run["eval_loss"]) != run["eval_loss"][-1]


def test_the_validation_split_is_standardised_on_its_80_percent():
    """Tuning sees the 80% scaled by its own statistics (mean 0, std 1 per column), the 20% by the same."""
    X_fit, X_val, _, _ = lab._validation_split("iris")
    np.testing.assert_allclose(X_fit.astype(np.float64).mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(X_fit.astype(np.float64).std(axis=0), 1.0, rtol=1e-5)
    assert np.abs(X_val.astype(np.float64).mean(axis=0)).max() > 1e-3  # (the 20%'s own statistics are not used)
    _, _, y_fit, _ = lab._validation_split("diabetes")
    assert abs(y_fit.astype(np.float64).mean()) < 1e-6 and y_fit.astype(np.float64).std() == pytest.approx(1.0)


def test_the_reported_runs_use_the_tuned_rate_as_the_table_prints_it(tmp_path):
    """Grid points such as 10^-0.5 are reported and run as 0.316, the value DEFAULT_LRS would hold."""
    grid = lab.log_grid(0.01, 1.0, 5)
    assert grid[1] == pytest.approx(10**-1.5) and grid[1] != 0.0316
    result = lab.compare(["iris"], ["sgd"], "tune", lr_grid=grid, out_dir=tmp_path, **TINY)
    scores = {}
    for r in read_csv(tmp_path / "tuning.csv"):
        scores.setdefault(float(r["lr"]), []).append(float(r["score"]))
    best = min(scores, key=lambda lr: np.mean(scores[lr]))
    assert result.rates["iris", "sgd"] == float(f"{best:.3g}")
    assert {float(r["lr"]) for r in read_csv(tmp_path / "results.csv")} == {float(f"{best:.3g}")}
    assert f"{float(f'{best:.3g}'):g}" in lab.format_table(result)


def test_reported_rates_are_the_grids_to_three_digits_as_the_defaults_are():
    """10^-0.5 runs as 0.316; every documented default rate is a grid rate to three significant digits."""
    assert lab._to_3_digits(10**-0.5) == 0.316
    assert lab._to_3_digits(10**-2.5) == 0.00316
    shown = {lab._to_3_digits(g) for g in lab.LR_GRID}
    assert {lr for rates in lab.DEFAULT_LRS.values() for lr in rates.values()} <= shown


def test_a_rate_at_the_grids_edge_is_flagged():
    result = lab.compare(["iris"], ["sgd"], "tune", lr_grid=lab.log_grid(1e-6, 1e-5, 2), out_dir=None, **TINY)
    assert result.rates["iris", "sgd"] == pytest.approx(1e-5)
    assert result.summary[0]["lr_at_grid_edge"]
    table = lab.format_table(result)
    assert "1e-05!" in table and "! the rate is at an end of the grid" in table
    assert any("highest rate of the grid" in w and "--lr-grid 1e-06:0.001:4" in w for w in result.warnings)
    assert "--lr-grid 1e-06:0.001:4" in table


@pytest.mark.parametrize("grid", [(1e-3, 1.0, 3), (0.1, 1e6, 2), (1e-3, 1.0, 2), (1e-3, 1.0, 4), (1e-5, 10.0, 13),
                                  (1e-4, 1.0, 9), (0.01, 0.5, 7)])
@pytest.mark.parametrize("low_end", [True, False])
def test_the_wider_grid_an_edge_warning_suggests_keeps_every_rate_and_adds_two_decades_or_more(grid, low_end):
    """1e-3:1:2 with the winner 0.001 suggested 1e-05:1:3, a grid without 0.001 (two decades are not a whole
    number of its steps): tuning again on the suggestion could not pick the winner again (h53). These grids'
    rates all lie on the wider grid, in its whole steps or at two rates a decade."""
    rates = lab.log_grid(*grid)
    warning = lab._edge_warning("sgd", "iris", rates[0] if low_end else rates[-1], rates)
    low, high, n = warning.rsplit("--lr-grid ", 1)[1].split(":")
    wider = lab.log_grid(float(low), float(high), int(n))
    for rate in rates:  # every old rate, to the 10 digits the suggestion prints
        assert min(abs(w - rate) for w in wider) <= 1e-9 * rate, (rate, wider)
    reach = rates[0] / wider[0] if low_end else wider[-1] / rates[-1]
    assert reach >= 10**2 * (1 - 1e-9) and (wider[-1] >= rates[-1] * (1 - 1e-9) if low_end
                                               else wider[0] <= rates[0] * (1 + 1e-9))
    assert len(wider) <= 50


@pytest.mark.parametrize("grid", [(1.0, 1.0001, 50), (1e-5, 1e5, 2), (0.1, 0.2, 40)])
def test_a_narrow_or_coarse_grid_gets_a_wider_grid_of_two_rates_a_decade_from_the_winner(grid):
    """1:1.0001:50 suggested 2,256,697 rates (its steps repeated over two decades), 1e-5:1e5:2 a grid up to 1e15."""
    rates = lab.log_grid(*grid)
    for low_end, winner in ((True, rates[0]), (False, rates[-1])):
        low, high, n = lab._wider_grid(rates, low_end).split(":")
        wider = lab.log_grid(float(low), float(high), int(n))
        assert np.allclose(np.diff(np.log10(wider)), 0.5) and len(wider) <= 25
        assert min(abs(w - winner) for w in wider) <= 1e-9 * winner
        assert wider[0] <= rates[0] * (1 + 1e-9) and wider[-1] >= rates[-1] * (1 - 1e-9)


def test_no_wider_grid_is_suggested_where_it_would_leave_the_floats():
    """Rates at the ends of the floats printed nan:1e+200:3 or 1e+300:inf:3, which --lr-grid refuses (h57)."""
    assert lab._wider_grid(lab.log_grid(1e-322, 1e-321, 2), low_end=True) is None  # (1e-324 is 0)
    assert lab._wider_grid(lab.log_grid(1e306, 1e307, 2), low_end=False) is None  # (1e309 is inf)
    warning = lab._edge_warning("sgd", "iris", 1e307, lab.log_grid(1e306, 1e307, 2))
    assert warning.endswith("the best may lie above it: widen the grid")


def test_a_diverging_rate_is_recorded_and_loses_the_tuning(tmp_path):
    result = lab.compare(["iris"], ["sgd"], "tune", lr_grid=(0.1, 1e6), out_dir=tmp_path, **TINY)
    tuning = read_csv(tmp_path / "tuning.csv")
    assert {r["status"] for r in tuning if float(r["lr"]) == 1e6} == {"diverged"}
    assert all(float(r["score"]) == math.inf for r in tuning if float(r["lr"]) == 1e6)
    assert {r["status"] for r in tuning if float(r["lr"]) == 0.1} == {"ok"}
    assert result.rates["iris", "sgd"] == 0.1
    every = lab.compare(["iris"], ["sgd", "adam"], "tune", lr_grid=(1e6, 1e7), out_dir=None, **TINY)
    sgd_line = next(line for line in lab.format_table(every).splitlines() if " sgd " in line)
    assert "no rate worked in tuning (all diverged or failed)" in sgd_line
    assert not [r for r in every.records if r["optimizer"] == "sgd"]  # nothing to report at no rate


def test_the_tuned_rate_is_the_lowest_mean_over_the_tuning_seeds_ties_to_the_smaller_rate():
    """_best_rate: the mean score over tuning seeds (not the worst seed), a tie to the smaller rate."""
    seeds = [lab.TUNE_SEED_BASE, lab.TUNE_SEED_BASE + 1]

    def records(scores):
        return {("tune", "iris", "sgd", s, lr): {"score": v}
                for lr, pair in scores.items() for s, v in zip(seeds, pair)}

    # 0.1: mean 0.5 (worst 0.75); 1.0: mean 0.625 (worst 0.625)
    best, scores = lab._best_rate(records({0.1: (0.25, 0.75), 1.0: (0.625, 0.625)}), "iris", "sgd", (0.1, 1.0),
                                  seeds)
    assert best == 0.1 and scores == [(0.1, 0.5), (1.0, 0.625)]
    best, _ = lab._best_rate(records({0.01: (0.5, 0.5), 0.1: (0.25, 0.75)}), "iris", "sgd", (0.01, 0.1), seeds)
    assert best == 0.01


def test_a_diverged_run_shows_diverged_never_an_accuracy(tmp_path):
    result = lab.compare(["iris"], ["sgd", "adam"], {"sgd": 1e6, "adam": 0.01}, out_dir=tmp_path, **TINY)
    rows = read_csv(tmp_path / "results.csv")
    assert {r["status"] for r in rows if r["optimizer"] == "sgd"} == {"diverged"}
    assert {r["status"] for r in rows if r["optimizer"] == "adam"} == {"ok"}
    sgd = next(s for s in result.summary if s["optimizer"] == "sgd")
    assert sgd["diverged_runs"] == 2 and math.isnan(sgd["test_metric_mean"])
    assert sgd["steps_to_target_median"] == math.inf
    line = next(line for line in lab.format_table(result).splitlines() if " sgd " in line)
    assert "diverged" in line and "acc" not in line and "never" in line


def test_the_final_loss_is_averaged_over_the_runs_that_did_not_diverge():
    """final_loss_mean/std and the test metric are over ok runs; a diverged run is counted, not averaged."""
    def report(seed, status, losses, metric):
        return {"dataset": "iris", "optimizer": "sgd", "seed": seed, "status": status, "lr": 0.1,
                "step": [0, 10], "train_loss": losses, "eval_metric": metric, "seconds": [0.0, 1.0],
                "kind": "report"}

    result = lab.Comparison(settings={"targets": {"iris": 0.5}, "seeds": 2, "grid": [0.1], "datasets": ["iris"]},
                            procedure="given")
    result.records = [report(0, "ok", [1.0, 0.375], [0.5, 0.75]), report(1, "diverged", [1.0, math.nan],
                                                                         [0.5, math.nan])]
    result.rates = {("iris", "sgd"): 0.1}
    lab._summarise(result, [lab.resolve_optimizer("sgd")], ["iris"])
    (row,) = result.summary
    assert (row["final_loss_mean"], row["final_loss_std"], row["test_metric_mean"]) == (0.375, 0.0, 0.75)
    assert row["diverged_runs"] == 1 and row["runs"] == 2
    assert row["steps_to_target_median"] == math.inf  # median of 10 and a miss


def test_targets_are_per_dataset_and_steps_are_counted_from_the_rows(tmp_path):
    result = lab.compare(["iris", "wine"], ["sgd", "adam"], {"sgd": 0.5, "adam": 0.05}, out_dir=tmp_path,
                         **(TINY | {"epochs": 6}))
    assert result.settings["targets"] == {"iris": lab.TARGETS["iris"], "wine": lab.TARGETS["wine"]}
    assert lab.TARGETS["iris"] != lab.TARGETS["wine"]
    rows = read_csv(tmp_path / "results.csv")
    assert list(rows[0])[:9] == ["dataset", "optimizer", "seed", "step", "epoch", "train_loss", "test_metric",
                                 "seconds", "status"]
    summary = read_csv(tmp_path / "summary.csv")
    assert list(summary[0])[:12] == [
        "dataset", "optimizer", "lr", "target", "steps_to_target_median", "steps_to_target_ci_low",
        "steps_to_target_ci_high", "final_loss_mean", "final_loss_std", "test_metric_mean", "test_metric_std",
        "diverged_runs"]
    for s in summary:
        target = lab.TARGETS[s["dataset"]]
        assert float(s["target"]) == target
        steps, finals = [], []
        for seed in ("0", "1"):
            key = (s["dataset"], s["optimizer"], seed)
            mine = [r for r in rows if (r["dataset"], r["optimizer"], r["seed"]) == key]
            reached = [int(r["step"]) for r in mine if float(r["train_loss"]) <= target]
            steps.append(reached[0] if reached else math.inf)
            finals.append(float(mine[-1]["train_loss"]))
        assert float(s["steps_to_target_median"]) == np.median(steps)
        assert float(s["final_loss_mean"]) == pytest.approx(np.mean(finals))
        assert float(s["final_loss_std"]) == pytest.approx(np.std(finals))
    # The steps: iris has 112 training rows, 4 batches of 32 per epoch; 6 epochs = 24 steps, all of them evaluated
    # at eval_points 10 every ceil(24 / 10) = 3 steps.
    iris_steps = [int(r["step"]) for r in rows if (r["dataset"], r["optimizer"], r["seed"]) == ("iris", "sgd", "0")]
    assert iris_steps == list(range(0, 25, 3))
    overridden = lab.compare(["iris", "wine"], ["sgd"], {"sgd": 0.5}, target=0.3, out_dir=None, **TINY)
    assert overridden.settings["targets"] == {"iris": 0.3, "wine": 0.3}


def test_every_optimizer_starts_from_the_same_weights():
    result = lab.compare(["iris"], ["sgd", "momentum", "nesterov", "adam"], {n: 0.1 for n in
                         ["sgd", "momentum", "nesterov", "adam"]}, out_dir=None, **TINY)
    for seed in (0, 1):
        initial = {r["train_loss"] for r in result.rows if r["seed"] == seed and r["step"] == 0}
        assert len(initial) == 1


# ---------------------------------------------------------------------------
# Statistics: bootstrap, profile, verdict
# ---------------------------------------------------------------------------


def test_bootstrap_interval_contains_the_median_and_narrows_with_more_seeds():
    rng = np.random.default_rng(5)
    population = rng.lognormal(mean=5.0, sigma=0.5, size=10_000)
    widths = []
    for n in (5, 20, 80):
        values = population[:n]
        median, low, high = lab.bootstrap_median_ci(values)
        assert median == np.median(values)
        assert low <= median <= high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    assert lab.bootstrap_median_ci([7.0, 7.0, 7.0]) == (7.0, 7.0, 7.0)
    # Misses sort last: the median of 1, inf, inf is inf; the interval's low end can still be 1.
    median, low, high = lab.bootstrap_median_ci([1.0, math.inf, math.inf])
    assert median == math.inf and low == 1.0 and high == math.inf


def test_the_bootstrap_interval_is_the_order_statistics_of_the_seeded_resample_medians():
    """The interval of B resample medians drawn from default_rng(seed): the (αB + 1)-th smallest and the
    (1-α)B-th (1-based), α = 2.5%; with B = 40 the second smallest and the 39th, dropping one at each end."""
    values = np.arange(1.0, 11.0) ** 2  # 1, 4, ..., 100: median (25 + 36) / 2
    for seed in (0, 3):
        rng = np.random.default_rng(seed)
        medians = np.sort(np.median(values[rng.integers(0, 10, size=(40, 10))], axis=1))
        assert medians[0] < medians[1] and medians[38] < medians[39]  # (so that an off-by-one shows)
        assert lab.bootstrap_median_ci(values, n_resamples=40, seed=seed) == (30.5, medians[1], medians[38])


def test_performance_profile_by_hand_monotone_and_one_for_the_best():
    # Problems 1-3. Best per problem: 1, 2, 4. Ratios: A 1, 1, inf; B 2, 1, 1; C 1, 1.5, 1 (C is best or near).
    steps = {"A": [1, 2, math.inf], "B": [2, 2, 4], "C": [1, 3, 4]}
    taus = [1.0, 1.5, 2.0, 10.0]
    profile = lab.performance_profile(steps, taus)
    np.testing.assert_allclose(profile["A"], [2 / 3, 2 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(profile["B"], [2 / 3, 2 / 3, 1, 1])
    np.testing.assert_allclose(profile["C"], [2 / 3, 1, 1, 1])
    rng = np.random.default_rng(0)
    best = rng.integers(10, 100, size=30).astype(float)
    random_steps = {"best": best, "slower": best * rng.uniform(1, 20, 30), "other": best + rng.integers(0, 50, 30)}
    taus = np.logspace(0, 1, 50)
    profile = lab.performance_profile(random_steps, taus)
    assert all(np.all(np.diff(p) >= 0) for p in profile.values())
    np.testing.assert_array_equal(profile["best"], np.ones(50))


def test_a_problem_no_optimizer_reached_is_within_no_factor_of_the_best():
    """Both miss problem 2 (best inf): neither counts as within τ there, at any τ."""
    profile = lab.performance_profile({"A": [10.0, math.inf], "B": [20.0, math.inf]}, [1.0, 2.0, 100.0])
    np.testing.assert_array_equal(profile["A"], [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(profile["B"], [0.0, 0.5, 0.5])


def test_verdict_against_sgd_by_hand():
    sgd = {("a", 0): 100.0, ("a", 1): 120.0, ("b", 0): 50.0, ("b", 1): 60.0}
    half = {k: v / 2 for k, v in sgd.items()}
    slower = {("a", 0): 200.0, ("a", 1): 240.0, ("b", 0): 25.0, ("b", 1): math.inf}
    lines = lab.verdicts({"sgd": sgd, "fast": half, "mixed": slower})
    assert lines[0].startswith("fast reaches the target in 0.50x sgd's steps (median over 4 problems, "
                               "95% CI 0.50-0.50), faster on 2 of 2 datasets")
    # mixed: ratios 2, 2, 0.5, inf -> median (2 + 2) / 2 = 2; faster on b only (median 25 and inf vs 55 -> inf).
    assert lines[1].startswith("mixed reaches the target in 2.00x sgd's steps")
    assert "faster on 0 of 2 datasets; misses 1 of 4 problems (sgd: 0)" in lines[1]
    assert lab.verdicts({"adam": half}) == ["(no verdict: sgd is not in this run)"]
    same_on_a = {("a", 0): 100.0, ("a", 1): 120.0, ("b", 0): 25.0, ("b", 1): 30.0}  # a's median ties sgd's
    (line,) = lab.verdicts({"sgd": sgd, "tie": same_on_a})
    assert "faster on 1 of 2 datasets (tied on 1); misses 0 of 4 problems" in line


def test_verdict_says_how_misses_and_failures_count():
    """x/inf printed as "95% CI 0.00-0.81" unexplained; two misses were "tied"; failed runs counted as misses."""
    sgd = {("a", 0): math.inf, ("a", 1): 100.0, ("b", 0): math.inf, ("b", 1): math.inf}
    other = {("a", 0): 50.0, ("a", 1): 80.0, ("b", 0): math.inf, ("b", 1): math.inf}
    (line,) = lab.verdicts({"sgd": sgd, "other": other})
    assert "a problem only other reached counts as 0" in line  # (a, 0): 50 / inf
    assert "faster on 1 of 2 datasets (both miss on 1); misses 2 of 4 problems (sgd: 3)" in line
    assert "tied" not in line
    broken = {k: math.inf for k in sgd}
    (line,) = lab.verdicts({"sgd": other, "broken": broken}, failed={"broken": list(broken)})
    assert line == ("broken: no problem to compare with sgd on (a run failed, status error, on every one: 4 of its, "
                    "0 of sgd's)")
    (line,) = lab.verdicts({"sgd": sgd, "other": other}, failed={"sgd": [("a", 0)]})
    assert line.endswith("; sgd's run failed on 1 problems, left out")  # (they were dropped without a word)
    assert "counts as 0" not in line  # (a, 0) was the only problem other alone reached
    zero = {k: 0.0 for k in sgd}
    (line,) = lab.verdicts({"sgd": {k: 5.0 for k in sgd}, "zero": zero})
    assert "counts as 0" not in line  # reached at step 0, sgd at step 5: a ratio 0, but not a miss of sgd's
    some = {("a", 0): math.inf, ("a", 1): math.inf, ("a", 2): 30.0}  # medians inf, but one seed reached
    (line,) = lab.verdicts({"sgd": {("a", 0): math.inf, ("a", 1): 20.0, ("a", 2): math.inf}, "some": some})
    assert "both miss" not in line
    half_failed = {("a", 0): 40.0, ("a", 1): math.inf, ("b", 0): math.inf, ("b", 1): math.inf}
    (line,) = lab.verdicts({"sgd": other, "flaky": half_failed}, failed={"flaky": [("a", 1)]})
    assert line.endswith("its run failed (status error) on 1 problems, left out")
    assert "misses 2 of 3 problems" in line  # (a, 1) is neither compared nor a miss


def test_two_runs_at_step_0_compare_as_a_ratio_of_1():
    """0 steps against 0 steps is a tie (ratio 1), not an infinitely slower run."""
    assert lab._ratio(0.0, 0.0) == 1.0
    sgd = {("a", 0): 0.0, ("a", 1): 10.0}
    other = {("a", 0): 0.0, ("a", 1): 5.0}
    (line,) = lab.verdicts({"sgd": sgd, "other": other})
    # ratios 1 and 0.5: median 0.75
    assert line.startswith("other reaches the target in 0.75x sgd's steps (median over 2 problems")


def test_a_plugin_with_a_builtins_name_is_refused(tmp_path, plugin_source):
    """A plug-in class named sgd took the table's "sgd" and became the verdict's baseline."""
    path = tmp_path / "named.py"
    path.write_text(plugin_source.replace("class SignSGD", "class sgd"))
    with pytest.raises(lab.LabError, match=r"named.py:sgd is named 'sgd', as a built-in is .* rename the class"):
        lab.compare(["iris"], ["momentum", f"{path}:sgd"], {"momentum": 0.1, "sgd": 0.1}, out_dir=None, **TINY)


def test_a_short_run_is_told_that_the_targets_are_for_30_epochs():
    result = lab.compare(["iris"], ["sgd", "adam"], {"sgd": 0.1, "adam": 0.01}, out_dir=None, **TINY)
    assert result.warnings == ["note: the targets are TARGETS, chosen for 30 epochs, batch 32, hidden 32,32; with 2 "
                               "epochs, batch 32, hidden 8 a target may be out of every optimizer's reach (then all "
                               "miss it), or too easy: set one with --target"]
    batch = lab.compare(["iris"], ["sgd"], {"sgd": 0.1}, out_dir=None, **TINY | {"epochs": 30, "hidden": (32, 32),
                                                                                  "batch_size": 64, "seeds": 1})
    assert batch.warnings and "with 30 epochs, batch 64, hidden 32,32" in batch.warnings[0]  # not epochs alone
    assert result.warnings[0] in lab.format_table(result)
    given = lab.compare(["iris"], ["sgd", "adam"], {"sgd": 0.1, "adam": 0.01}, target=0.5, out_dir=None, **TINY)
    assert given.warnings == []


# ---------------------------------------------------------------------------
# Plots and colours
# ---------------------------------------------------------------------------


def test_compare_writes_every_file(tmp_path):
    lab.compare(["iris", "wine"], ["sgd", "adam"], "tune", lr_grid=(0.01, 0.1), out_dir=tmp_path, **TINY)
    for name in ("iris.png", "wine.png", "profile.png", "lr_sensitivity.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tuning = read_csv(tmp_path / "tuning.csv")
    assert list(tuning[0])[:6] == ["dataset", "optimizer", "lr", "tune_seed", "score", "status"]
    assert len(tuning) == 2 * 2 * 2 * 2  # datasets x optimizers x rates x tuning seeds


def test_colours_are_stable_across_runs_and_processes():
    assert lab.colour_for("sgd") == lab.COLOURS["sgd"] and lab.colour_for("adam") == lab.COLOURS["adam"]
    names = ["Lion(betas=(0.9, 0.99))", "MyOpt", "momentum(beta=0.95)"]
    here = [lab.colour_for(n) for n in names]
    assert not set(here) & set(lab.COLOURS.values())
    code = f"from minigrad import lab; print([lab.colour_for(n) for n in {names!r}])"
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=ROOT)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        assert out.stdout.strip() == repr(here)


# ---------------------------------------------------------------------------
# Training records: status error for a failing plug-in, evaluation numbers
# ---------------------------------------------------------------------------


def test_train_run_records_the_true_losses_and_a_failing_optimizer(iris):
    X_train, X_test, y_train, y_test = iris
    run = lab.train_run(X_train, y_train, X_test, y_test, task="classification",
                        make_optimizer=lambda p: optim.SGD(p, lr=0.1), seed=3, hidden=(8,), epochs=2, batch_size=32,
                        eval_points=100)
    assert run["status"] == "ok" and run["step"] == list(range(9)) and run["every"] == 1
    # Rebuild the run by hand: the same initial weights and batches give the same final loss.
    mg.manual_seed(3)
    model = nn.MLP([4, 8, 3])
    opt = optim.SGD(model.parameters(), lr=0.1)
    order_rng = np.random.default_rng((3, 1))
    for _ in range(2):
        order = order_rng.permutation(len(X_train))
        for start in range(0, len(X_train), 32):
            index = order[start:start + 32]
            opt.zero_grad()
            nn.cross_entropy(model(mg.Tensor(X_train[index])), y_train[index]).backward()
            opt.step()
    assert run["train_loss"][-1] == pytest.approx(numpy_cross_entropy(numpy_mlp(model, X_train), y_train), rel=1e-5)
    assert run["eval_metric"][-1] == np.mean(np.argmax(numpy_mlp(model, X_test), axis=1) == y_test)

    class Raises(optim.SGD):
        def update(self, w, g, state):
            if self.step_count == 3:
                raise RuntimeError("boom")
            super().update(w, g, state)

    class NaNs(optim.SGD):
        def update(self, w, g, state):
            w[...] = np.nan

    class Exits(optim.SGD):
        def update(self, w, g, state):
            sys.exit(3)

    for cls, status, message in ((Raises, "error", "RuntimeError: boom (in step 3)"),
                                 (NaNs, "error", "NaN from finite gradients at step 1"),
                                 (Exits, "error", "SystemExit: 3")):
        run = lab.train_run(X_train, y_train, X_test, y_test, task="classification",
                            make_optimizer=lambda p, cls=cls: cls(p, lr=0.1), seed=0, hidden=(8,), epochs=2,
                            batch_size=32, eval_points=100)
        assert run["status"] == status and message in run["message"]
    run = lab.train_run(X_train, y_train, X_test, y_test, task="classification",
                        make_optimizer=lambda p: optim.SGD(p, lr=1e9), seed=0, hidden=(8,), epochs=5,
                        batch_size=32, eval_points=100)
    assert run["status"] == "diverged"


class _Blow(optim.SGD):
    """SGD, whose third step sets every weight to 1e30: the next loss (MSE) is inf, not NaN."""

    def update(self, w, g, state):
        super().update(w, g, state)
        if state["step"] == 3:
            w[...] = 1e30


def test_an_infinite_loss_stops_the_run_at_that_step():
    """An infinite (not NaN) mini-batch loss is divergence too, found at the step it appears."""
    X, X_test, y, y_test = mgdata.load_dataset("diabetes")
    run = lab.train_run(X, y, X_test, y_test, task="regression", make_optimizer=lambda p: _Blow(p, lr=0.01), seed=0,
                        hidden=(8,), epochs=2, batch_size=32, eval_points=100)
    assert (run["status"], run["message"]) == ("diverged", "the loss became non-finite at step 3")
    assert run["step"] == [0, 1, 2, 3] and run["train_loss"][-1] == math.inf


def test_nan_weights_from_nan_gradients_are_divergence_not_the_optimizers_fault():
    """Only NaN weights made from finite gradients blame the optimizer (status error)."""
    p = nn.Parameter(np.array([np.nan, 1.0], dtype=np.float32))
    p.grad = np.array([np.inf, 0.0], dtype=np.float32)
    assert lab._why_not_finite([p], 3) == ("diverged", "the loss became non-finite at step 3")
    p.grad = np.array([1.0, 0.0], dtype=np.float32)
    assert lab._why_not_finite([p], 3) == ("error", "the optimizer made parameters NaN from finite gradients at step 3")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"datasets": ["iris", "mnist"]}, "unknown dataset 'mnist'"),
        ({"datasets": ["iris", "iris"]}, "listed twice"),
        ({"optimizers": ["sgd", "sgd"]}, "listed twice"),
        ({"optimizers": ["lions"]}, "unknown optimizer 'lions'"),
        ({"lrs": {"adam": 0.1}}, "not among the optimizers"),
        ({"lrs": {"sgd": -0.1}}, "must be a positive number"),
        ({"lrs": "auto"}, "lrs must be 'tune'"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"seeds": 0}, "seeds must be an integer >= 1"),
        ({"tune_seeds": 0}, "tune seeds must be an integer >= 1"),
        ({"hidden": (8, 0)}, "hidden sizes must be positive"),
        ({"target": 0}, "target must be a positive number"),
        ({"jobs": 0}, "jobs must be an integer >= 1"),
        ({"backend": "dask"}, "needs a scheduler address"),
    ],
)
def test_compare_rejects_bad_input_before_training(kwargs, message):
    args = {"datasets": ["iris"], "optimizers": ["sgd"], "epochs": 1, "out_dir": None} | kwargs
    with pytest.raises(lab.LabError, match=message):
        lab.compare(**args)


@pytest.mark.parametrize("text, grid", [("1e-5:10:13", lab.LR_GRID), ("0.1:10:3", (0.1, 1.0, 10.0)),
                                        ("0.5:0.5:1", (0.5,))])
def test_parse_grid(text, grid):
    np.testing.assert_allclose(lab.parse_grid(text), grid)


def test_default_grid_spans_1e5_to_10():
    assert lab.LR_GRID[0] == pytest.approx(1e-5) and lab.LR_GRID[-1] == pytest.approx(10)
    np.testing.assert_allclose(np.diff(np.log10(lab.LR_GRID)), 0.5)


@pytest.mark.parametrize("text", ["1:0.1:3", "0:1:3", "1e-5:10", "a:b:c", "0.1:1:1", "0.1:1:0"])
def test_bad_grids(text):
    with pytest.raises(lab.LabError, match="lr grid|--lr-grid"):
        lab.parse_grid(text)


def _by_hand(X, y, seed, make_optimizer, hidden, epochs, batch_size, each_step):
    """The lab's training loop rebuilt by hand; ``each_step(opt, params, t)`` runs between backward and step."""
    mg.manual_seed(seed)
    model = nn.MLP([X.shape[1], *hidden, int(y.max()) + 1])
    opt = make_optimizer(model.parameters())
    order_rng = np.random.default_rng((seed, 1))
    t = 0
    for _ in range(epochs):
        order = order_rng.permutation(len(X))
        for start in range(0, len(X), batch_size):
            index = order[start:start + batch_size]
            opt.zero_grad()
            nn.cross_entropy(model(mg.Tensor(X[index])), y[index]).backward()
            each_step(opt, model.parameters(), t)
            opt.step()
            t += 1
    return model


def test_a_schedule_sets_each_steps_rate_by_its_closed_form_and_clipping_reaches_every_step(iris):
    """--schedule cosine: step t (0-based) of T uses lr·(1 + cos(πt/T))/2; --clip-grad-norm clips before it."""
    X_train, X_test, y_train, y_test = iris
    run = lab.train_run(X_train, y_train, X_test, y_test, task="classification",
                        make_optimizer=lambda p: optim.Adam(p, lr=0.05), seed=1, hidden=(8,), epochs=3,
                        batch_size=32, eval_points=1000, schedule="cosine", clip_grad_norm=0.5)
    total = 3 * math.ceil(len(X_train) / 32)
    assert run["status"] == "ok" and run["step"][-1] == total
    for step, used in zip(run["step"][1:], run["step_lr"][1:]):
        t = step - 1  # the rate the step numbered `step` used
        assert used == pytest.approx(0.05 * (1 + math.cos(math.pi * t / total)) / 2, rel=1e-12, abs=1e-15)

    norms = []

    def clip_and_cosine(opt, params, t):
        opt.lr = 0.05 * (1 + math.cos(math.pi * t / total)) / 2
        g = np.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p in params))
        norms.append(g)
        if g > 0.5:
            for p in params:
                p.grad = p.grad * (0.5 / (g + 1e-6))

    model = _by_hand(X_train, y_train, 1, lambda p: optim.Adam(p, lr=0.05), (8,), 3, 32, clip_and_cosine)
    assert max(norms) > 0.5  # the clipping did something
    assert run["train_loss"][-1] == pytest.approx(numpy_cross_entropy(numpy_mlp(model, X_train), y_train), rel=1e-4)


def test_a_schedule_or_clipping_makes_the_rates_tuned_and_the_heading_names_them(tmp_path):
    result = lab.compare(["iris"], ["sgd"], epochs=2, batch_size=32, seeds=1, tune_seeds=1, hidden=(32, 32),
                         lr_grid=(0.01, 0.1), eval_points=5, out_dir=None, schedule="step:2:0.5",
                         clip_grad_norm=1.0)
    assert result.procedure == "tuned"
    heading = lab.format_table(result)
    assert "Schedule step:2:0.5" in heading and "gradients clipped to norm 1 " in heading
    with pytest.raises(lab.LabError, match="--schedule"):
        lab.compare(["iris"], ["sgd"], out_dir=None, schedule="sometimes")
    with pytest.raises(lab.LabError, match="clip_grad_norm"):
        lab.compare(["iris"], ["sgd"], out_dir=None, clip_grad_norm=-1.0)


def test_a_tuning_setting_given_at_its_default_still_counts_as_given(tmp_path, capsys):
    """--lr-grid 1e-5:10:13 (the default grid, written out) with given rates was taken silently and ignored.

    The option's default was the grid itself, so a grid given at its default could not be told from none;
    the same for --tune-seeds 2. Given, either one is refused with given rates and makes a run tune.
    """
    from minigrad import cli

    low, high, n = lab.DEFAULT_GRID_TEXT.split(":")
    assert lab.log_grid(float(low), float(high), int(n)) == lab.LR_GRID
    for option in (["--lr-grid", lab.DEFAULT_GRID_TEXT], ["--tune-seeds", str(lab.DEFAULTS["tune_seeds"])]):
        argv = ["compare", "--datasets", "iris", "--optimizers", "sgd", "--lr", "sgd=0.1", "--seeds", "1",
                "--epochs", "2", "--hidden", "8", "--no-plots", "--out", str(tmp_path / "out"), *option]
        assert cli.main(argv) == 2
        assert "gives every optimizer its rate and also" in capsys.readouterr().err
        assert not (tmp_path / "out").exists()
    st = lab.DEFAULT_SETTINGS
    at_defaults = {"seeds": 1, "epochs": st["epochs"], "batch_size": st["batch_size"], "hidden": st["hidden"],
                   "out_dir": None}
    assert lab.compare(["moons"], ["sgd"], **at_defaults).procedure == "default"
    with pytest.raises(lab.LabError, match="gives every optimizer its rate and also tuning seeds"):
        lab.compare(["moons"], ["sgd"], {"sgd": 0.1}, tune_seeds=lab.DEFAULTS["tune_seeds"], **at_defaults)
    reason = lab._procedure([lab.resolve_optimizer("sgd")], ["moons"], None, st["epochs"], st["batch_size"],
                            tuple(st["hidden"]), own=["a tuning grid"])
    assert reason == ("tuned", "this run gives a tuning grid of its own")


def test_a_grid_is_taken_in_increasing_order_and_a_rate_given_twice_is_refused():
    """lr_grid=[0.1, 0.1] crashed in the edge warning (ZeroDivisionError); an unsorted grid named 1 its lowest rate."""
    with pytest.raises(lab.LabError, match=r"lr_grid holds 0.1 more than once; give each rate once"):
        lab.compare(["iris"], ["sgd"], "tune", lr_grid=[0.1, 0.1], out_dir=None, **TINY)
    with pytest.raises(lab.LabError, match=r"lr_grid must be non-empty positive rates, got \['a'\]"):
        lab.compare(["iris"], ["sgd"], "tune", lr_grid=["a"], out_dir=None, **TINY)
    result = lab.compare(["iris"], ["sgd"], "tune", lr_grid=[1.0, 1e-3], out_dir=None, **TINY | {"seeds": 1})
    assert result.settings["grid"] == [1e-3, 1.0]
    for warning in result.warnings:  # an edge warning names the end the rate is at, in the grid's order
        assert "1 is the lowest" not in warning and "0.001 is the highest" not in warning


def test_options_are_taken_whole_so_the_printed_resume_command_works(capsys):
    """--overwr was read as --overwrite, and the resume command printed after a stop kept it beside --resume."""
    from minigrad import cli

    assert cli.main(["--datasets", "iris", "--overwr"]) == 2
    assert "unrecognized arguments: --overwr" in capsys.readouterr().err
    assert cli.main(["paths", "--func", "ravine"]) == 2
    assert "unrecognized arguments: --func" in capsys.readouterr().err


class _Rebinds(optim.SGD):
    """SGD written wrongly: ``w = w - lr * g`` gives the name a new array and leaves the weight as it was."""

    def update(self, w, g, state):
        w = w - self.lr * g  # noqa: F841


class _RefusesToStart(optim.SGD):
    def __init__(self, params, lr):
        raise RuntimeError("no")


def test_an_update_that_changes_no_weight_is_warned_about(tmp_path):
    """A plug-in whose update rebinds w was ranked like any other ("never", and a widen-the-grid hint)."""
    X_train, X_test, y_train, y_test = data.load_dataset("iris")
    run = lab.train_run(X_train, y_train, X_test, y_test, task="classification", seed=0, hidden=(8,), epochs=1,
                        batch_size=32, eval_points=4, make_optimizer=lambda p: _Rebinds(p, lr=0.1))
    assert run["status"] == "ok" and run["weights_moved"] is False
    good = lab.train_run(X_train, y_train, X_test, y_test, task="classification", seed=0, hidden=(8,), epochs=1,
                         batch_size=32, eval_points=4, make_optimizer=lambda p: optim.SGD(p, lr=1e-5))
    assert good["weights_moved"] is True
    plugin = tmp_path / "rebinds.py"
    plugin.write_text("from minigrad.optim import SGD\n\n\nclass Rebinds(SGD):\n    def update(self, w, g, state):\n"
                      "        w = w - self.lr * g\n")
    result = lab.compare(["iris"], ["sgd", f"{plugin}:Rebinds"], {"sgd": 0.1, "Rebinds": 0.1}, out_dir=None, **TINY)
    assert [w for w in result.warnings if "never changed a weight" in w] == [
        "warning: Rebinds never changed a weight in any of its runs: an update must change w in place "
        "(w -= lr * g, or w[...] = ...); w = w - lr * g only gives the name w a new array"]
    assert not [w for w in lab.compare(["iris"], ["sgd"], {"sgd": 0.1}, out_dir=None, **TINY).warnings
                if "never changed" in w]


def test_an_optimizer_that_fails_in_its_first_step_is_not_said_to_never_move_a_weight(tmp_path):
    """A run that took no step has not shown an update that rebinds w: no "never changed a weight" warning."""
    (tmp_path / "raises.py").write_text(
        "from minigrad.optim import Optimizer\n\n\nclass Raises(Optimizer):\n"
        "    def update(self, w, g, state):\n        raise RuntimeError('broken')\n")
    result = lab.compare(["iris"], ["sgd", f"{tmp_path / 'raises.py'}:Raises"], {"sgd": 0.1, "Raises": 0.1},
                         out_dir=None, **TINY)
    assert len(result.errors) == 2
    assert not [w for w in result.warnings if "never changed a weight" in w]


def test_an_error_names_the_step_it_came_in_counted_from_1():
    """An error raised when state["step"] == 5 said "(at step 4)": the steps done, not the one that failed."""
    X_train, X_test, y_train, y_test = data.load_dataset("iris")

    class FailsAtFive(optim.SGD):
        def update(self, w, g, state):
            if state["step"] == 5:
                raise RuntimeError("five")
            super().update(w, g, state)

    run = lab.train_run(X_train, y_train, X_test, y_test, task="classification", seed=0, hidden=(8,), epochs=2,
                        batch_size=32, eval_points=4, make_optimizer=lambda p: FailsAtFive(p, lr=0.1))
    assert run["message"] == "RuntimeError: five (in step 5)"
    run = lab.train_run(X_train, y_train, X_test, y_test, task="classification", seed=0, hidden=(8,), epochs=1,
                        batch_size=32, eval_points=4, make_optimizer=lambda p: _RefusesToStart(p, lr=0.1))
    assert run["message"] == "RuntimeError: no (before the first step)"


def test_a_misspelt_schedule_or_keyword_gets_a_suggestion(capsys):
    """--schedule cosin and momentum(betta=0.95) were refused without the near name, unlike optimizer names."""
    from minigrad import cli

    with pytest.raises(lab.LabError, match=r"schedule 'cosin': expected one of .* \(did you mean 'cosine'\?\)$"):
        lab.compare(["iris"], ["sgd"], {"sgd": 0.1}, out_dir=None, schedule="cosin", **TINY)
    with pytest.raises(lab.LabError, match=r"unexpected keyword argument 'betta'; it takes beta, bias_correction, "
                                           r"weight_decay \(did you mean 'beta'\?\)$"):
        lab.resolve_optimizer("momentum(betta=0.95)")
    with pytest.raises(lab.LabError, match=r"it takes betas, eps, weight_decay \(did you mean 'betas'\?\)$"):
        lab.resolve_optimizer("adam(beta=0.9)")
    assert cli.main(["--optimizers", "sgd(momentum=2)", "--datasets", "iris"]) == 2
    err = capsys.readouterr().err
    assert "invalid momentum: expected a number in [0, 1), got 2" in err and "it takes" not in err
