"""The lab: fit, metrics, optimizers by name or path, tuning, compare's outputs."""

import csv
import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import data, lab, nn, optim


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


@pytest.fixture(scope="module")
def iris():
    return data.load_dataset("iris")


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
    assert all(set(row) == {"epoch", "train_loss", "test_metric", "seconds"} for row in history)
    assert history[0]["seconds"] == 0 and all(a["seconds"] <= b["seconds"] for a, b in zip(history, history[1:]))
    # Three classes: the untrained loss is near ln 3; training must cut it well down.
    assert abs(history[0]["train_loss"] - math.log(3)) < 0.5
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    # The reported numbers are the final model's, recomputed here in numpy.
    assert history[-1]["train_loss"] == pytest.approx(numpy_cross_entropy(numpy_mlp(model, X_train), y_train), rel=1e-4)
    test_acc = np.mean(np.argmax(numpy_mlp(model, X_test), axis=1) == y_test)
    assert history[-1]["test_metric"] == pytest.approx(test_acc)
    assert history[-1]["test_metric"] > 0.8


def test_fit_is_the_plain_loop_and_manual_seed_makes_it_repeatable(iris):
    X_train, _, y_train, _ = iris

    def by_fit():
        mg.manual_seed(1)
        model = nn.MLP([4, 8, 3])
        history = lab.fit(model, nn.cross_entropy, optim.Adam(model.parameters(), lr=0.01),
                          X_train, y_train, epochs=3, batch_size=32)
        return model, history

    mg.manual_seed(1)
    model = nn.MLP([4, 8, 3])
    opt = optim.Adam(model.parameters(), lr=0.01)
    for _ in range(3):
        for X, y in data.batches(X_train, y_train, 32):
            opt.zero_grad()
            nn.cross_entropy(model(mg.Tensor(X)), y).backward()
            opt.step()
    a, history_a = by_fit()
    b, history_b = by_fit()
    for p, q, r in zip(model.parameters(), a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
        np.testing.assert_array_equal(q.data, r.data)
    assert [h["train_loss"] for h in history_a] == [h["train_loss"] for h in history_b]
    assert math.isnan(history_a[-1]["test_metric"])  # no test set


def test_fit_seed_fixes_the_batch_order(iris):
    X_train, _, y_train, _ = iris
    runs = []
    for init in (2, 3):
        mg.manual_seed(0)
        model = nn.MLP([4, 8, 3])
        mg.manual_seed(init)  # moves the global generator: must not matter with seed=
        lab.fit(model, nn.cross_entropy, optim.SGD(model.parameters(), lr=0.1), X_train, y_train,
                epochs=2, seed=11)
        runs.append(model.parameters()[0].data.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_fit_regression_reports_r2():
    X_train, X_test, y_train, y_test = data.load_dataset("diabetes")
    mg.manual_seed(0)
    model = nn.MLP([10, 16, 1])
    history = lab.fit(model, nn.mse_loss, optim.Adam(model.parameters(), lr=0.01), X_train, y_train,
                      X_test, y_test, epochs=10, task="regression")
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    pred = numpy_mlp(model, X_test)
    r2 = 1 - np.sum((y_test - pred) ** 2) / np.sum((y_test - y_test.mean()) ** 2)
    assert history[-1]["test_metric"] == pytest.approx(r2, rel=1e-4, abs=1e-5)
    assert history[-1]["train_loss"] == pytest.approx(np.mean((numpy_mlp(model, X_train) - y_train) ** 2), rel=1e-4)
    assert 0.2 < history[-1]["test_metric"] < 1


def test_fit_stops_when_the_loss_diverges(iris):
    X_train, _, y_train, _ = iris
    mg.manual_seed(0)
    model = nn.MLP([4, 16, 3])
    with np.errstate(all="ignore"):
        history = lab.fit(model, nn.cross_entropy, optim.SGD(model.parameters(), lr=1e8), X_train, y_train, epochs=50)
    assert len(history) < 51
    assert not math.isfinite(history[-1]["train_loss"])
    assert all(math.isfinite(h["train_loss"]) for h in history[:-1])


def test_fit_with_zero_epochs_only_evaluates(iris):
    X_train, _, y_train, _ = iris
    model = nn.MLP([4, 3])
    before = model.parameters()[0].data.copy()
    history = lab.fit(model, nn.cross_entropy, optim.SGD(model.parameters(), lr=1.0), X_train, y_train, epochs=0)
    assert len(history) == 1
    np.testing.assert_array_equal(model.parameters()[0].data, before)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": -1}, "epochs must be an integer >= 0"),
        ({"epochs": 2.5}, "epochs must be an integer >= 0"),
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


def test_metrics_by_hand():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]])
    assert lab.accuracy(logits, np.array([0, 1, 1, 1])) == 0.75
    # y = 1, 2, 3 (mean 2, Σ(y - ȳ)² = 2); pred = 1, 2, 4: Σ(y - pred)² = 1; R² = 1 - 1/2.
    assert lab.r2_score(np.array([[1.0], [2.0], [4.0]]), np.array([[1.0], [2.0], [3.0]])) == 0.5


def test_epochs_to_target():
    history = [{"epoch": e, "train_loss": loss} for e, loss in enumerate([1.0, 0.5, 0.09, 0.2, 0.05])]
    assert lab.epochs_to_target(history, 0.1) == 2
    assert lab.epochs_to_target(history, 1.0) == 0
    assert lab.epochs_to_target(history, 0.01) == math.inf


def test_builtin_optimizers():
    params = [nn.Parameter(np.zeros(3))]
    cases = {
        "sgd": (optim.SGD, {"momentum": 0.0, "nesterov": False}),
        "momentum": (optim.Momentum, {"beta": 0.9, "bias_correction": False}),
        "nesterov": (optim.SGD, {"momentum": 0.9, "nesterov": True}),
        "adam": (optim.Adam, {"betas": (0.9, 0.999)}),
    }
    for name, (cls, hyper) in cases.items():
        spec = lab.resolve_optimizer(name)
        assert spec.name == name and spec.default_lr == lab.DEFAULT_LRS[name]
        opt = spec.make(params, 0.25)
        assert type(opt) is cls and opt.lr == 0.25
        for key, value in hyper.items():
            assert getattr(opt, key) == value


def test_plugin_by_path_and_by_module(tmp_path, plugin_source, monkeypatch):
    path = tmp_path / "signsgd.py"
    path.write_text(plugin_source)
    spec = lab.resolve_optimizer(f"{path}:SignSGD")
    assert spec.name == "SignSGD" and spec.default_lr is None
    w = nn.Parameter(np.array([1.0, -2.0, 3.0]))
    w.grad = np.array([0.5, -4.0, 0.0])
    spec.make([w], 0.1).step()
    np.testing.assert_allclose(w.data, [0.9, -1.9, 3.0])  # w - 0.1·sign(g)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert lab.resolve_optimizer("signsgd:SignSGD").name == "SignSGD"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("rmsprop", "unknown optimizer 'rmsprop'"),
        ("{dir}/nope.py:X", "no such file"),
        ("{file}:Missing", "has no class 'Missing'"),
        ("{file}:np", "is not a subclass of minigrad.optim.Optimizer"),
        ("{broken}:X", "importing .* failed: ZeroDivisionError"),
        ("no_such_module_xyz:X", "cannot import module 'no_such_module_xyz'"),
        ("{nolr}:NoLR", r"NoLR\(params, lr=0.001\) failed: TypeError"),
    ],
)
def test_bad_optimizers(tmp_path, plugin_source, spec, message):
    (tmp_path / "ok.py").write_text(plugin_source)
    (tmp_path / "broken.py").write_text("1 / 0\n")
    (tmp_path / "nolr.py").write_text(plugin_source.replace("SignSGD", "NoLR").replace("lr=0.01", "step=0.01"))
    spec = spec.format(dir=tmp_path, file=tmp_path / "ok.py", broken=tmp_path / "broken.py", nolr=tmp_path / "nolr.py")
    with pytest.raises(lab.LabError, match=message):
        lab.resolve_optimizer(spec)


def test_validation_split_comes_from_the_training_split():
    X_fit, X_val, y_fit, y_val = lab._validation_split("wine")
    X_train, X_test, _, _ = data.load_dataset("wine")
    assert len(X_fit) + len(X_val) == len(X_train)
    assert len(X_val) == math.ceil(lab.VALIDATION_SIZE * len(X_train))
    np.testing.assert_allclose(X_fit.mean(axis=0), 0, atol=1e-5)
    # The 80/20 split of the raw training split, scaled with the 80%'s statistics only.
    raw_train, raw_test, y_train, _ = data.split(*data.load_raw("wine"), seed=0)
    raw_fit, raw_val, _, _ = data.split(raw_train, y_train, test_size=lab.VALIDATION_SIZE, seed=1)
    mean, std = raw_fit.mean(axis=0), raw_fit.std(axis=0)
    np.testing.assert_allclose(X_fit, (raw_fit - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(X_val, (raw_val - mean) / std, rtol=1e-5, atol=1e-5)
    test_rows = {tuple(r) for r in raw_test}
    assert not any(tuple(r) in test_rows for r in np.concatenate([raw_fit, raw_val]))


def test_tune_lr_picks_the_lowest_validation_loss():
    spec = lab.resolve_optimizer("sgd")
    grid = (1e-4, 0.1, 1e6)  # far too small, reasonable, divergent
    best, scores = lab.tune_lr("iris", spec, epochs=3, batch_size=16, hidden=(8,), seeds=1, grid=grid)
    assert [lr for lr, _ in scores] == list(grid)
    assert scores[2][1] == math.inf
    assert best == min(scores, key=lambda s: s[1])[0] == 0.1


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_compare_writes_results_summary_and_plots(tmp_path):
    result = lab.compare(["iris", "wine"], ["sgd", "adam"], {"sgd": 0.2}, epochs=3, batch_size=32, seeds=2,
                         hidden=(8,), target=0.5, out_dir=tmp_path)
    rows = read_csv(tmp_path / "results.csv")
    assert list(rows[0]) == ["dataset", "optimizer", "lr", "seed", "epoch", "train_loss", "test_metric", "metric",
                             "seconds"]
    assert len(rows) == 2 * 2 * 2 * 4  # datasets x optimizers x seeds x (epochs + 1)
    summary = read_csv(tmp_path / "summary.csv")
    assert [(s["dataset"], s["optimizer"]) for s in summary] == [
        ("iris", "sgd"), ("iris", "adam"), ("wine", "sgd"), ("wine", "adam")]
    assert result.lr_sources == {"sgd": "given", "adam": "default"}
    for s in summary:
        final = [float(r["train_loss"]) for r in rows
                 if (r["dataset"], r["optimizer"], r["epoch"]) == (s["dataset"], s["optimizer"], "3")]
        assert float(s["lr"]) == (0.2 if s["optimizer"] == "sgd" else lab.DEFAULT_LRS["adam"])
        assert float(s["final_train_loss_mean"]) == pytest.approx(np.mean(final))
        assert float(s["final_train_loss_std"]) == pytest.approx(np.std(final))
        reached = [min([int(r["epoch"]) for r in rows if (r["dataset"], r["optimizer"], r["seed"]) ==
                        (s["dataset"], s["optimizer"], seed) and float(r["train_loss"]) <= 0.5], default=math.inf)
                   for seed in ("0", "1")]
        expected = np.median(reached)
        assert s["epochs_to_target"] == ("never" if math.isinf(expected) else str(float(expected)))
    for name in ("iris", "wine"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "tuning.csv").exists()
    table = lab.format_table(result)
    assert "given on the command line for sgd" in table
    assert "documented defaults" in table and "for adam" in table


def test_every_optimizer_starts_from_the_same_weights(tmp_path):
    result = lab.compare(["iris"], ["sgd", "momentum", "nesterov", "adam"], epochs=1, seeds=2, hidden=(8,),
                         out_dir=None)
    for seed in (0, 1):
        initial = {r["train_loss"] for r in result.rows if r["seed"] == seed and r["epoch"] == 0}
        assert len(initial) == 1
    assert result.files == []


def test_compare_tunes_a_plugin_without_a_rate(tmp_path, plugin_source):
    path = tmp_path / "signsgd.py"
    path.write_text(plugin_source)
    result = lab.compare(["iris"], ["sgd", f"{path}:SignSGD"], epochs=1, seeds=1, hidden=(4,), out_dir=tmp_path)
    assert result.lr_sources == {"sgd": "default", "SignSGD": "tuned"}
    tuning = read_csv(tmp_path / "tuning.csv")
    scores = {float(r["lr"]): float(r["mean_val_loss"]) for r in tuning if r["dataset"] == "iris"}
    chosen = [float(r["lr"]) for r in tuning if r["dataset"] == "iris" and r["chosen"] == "True"]
    assert sorted(scores) == list(lab.LR_GRID) and chosen == [min(scores, key=scores.get)]
    assert result.summary[1]["lr"] == chosen[0]
    table = lab.format_table(result)
    assert "tuned in this run" in table and "SignSGD" in table


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"datasets": ["iris", "mnist"]}, "unknown dataset 'mnist'"),
        ({"datasets": ["iris", "iris"]}, "listed twice"),
        ({"optimizers": ["sgd", "sgd"]}, "listed twice"),
        ({"optimizers": ["lion"]}, "unknown optimizer 'lion'"),
        ({"lrs": {"adam": 0.1}}, "not among the optimizers"),
        ({"lrs": {"sgd": -0.1}}, "must be a positive number"),
        ({"lrs": "auto"}, "lrs must be 'tune'"),
        ({"epochs": -1}, "epochs must be an integer >= 0"),
        ({"seeds": 0}, "seeds must be an integer >= 1"),
        ({"hidden": (8, 0)}, "hidden sizes must be positive"),
        ({"target": 0}, "target must be a positive number"),
    ],
)
def test_compare_rejects_bad_input_before_training(kwargs, message):
    args = {"datasets": ["iris"], "optimizers": ["sgd"], "epochs": 1, "out_dir": None} | kwargs
    with pytest.raises(lab.LabError, match=message):
        lab.compare(**args)


def test_compare_reports_a_diverged_run(tmp_path):
    result = lab.compare(["iris"], ["sgd", "adam"], {"sgd": 1e6}, epochs=3, seeds=2, hidden=(8,), out_dir=tmp_path)
    sgd, adam = result.summary
    assert sgd["diverged"] and math.isnan(sgd["final_train_loss_mean"]) and sgd["epochs_to_target"] == "never"
    assert not adam["diverged"]
    assert "diverged" in lab.format_table(result)
    assert (tmp_path / "iris.png").exists()
