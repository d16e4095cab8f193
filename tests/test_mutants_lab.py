"""Tests that kill the mutants of lab.py, checkpoint.py and paths.py that the rest of the suite let live.

Each test says what it guards; the expected values are worked out by hand or with numpy, not read back
from the code under test.
"""

import io
import json
import math
import os
import signal
import zipfile

import numpy as np
import pytest

from minigrad import checkpoint, lab, nn, optim, paths
from minigrad import data as mgdata

#: Tiny settings: a run of these takes milliseconds.
TINY = {"epochs": 2, "batch_size": 32, "seeds": 2, "hidden": (8,), "eval_points": 10}


# ---------------------------------------------------------------------------
# lab: statistics
# ---------------------------------------------------------------------------


def test_a_loss_equal_to_the_target_counts_as_reached():
    """Steps and epochs to target are the first point at or below the target (<=, not <)."""
    assert lab.steps_to_target([0, 5, 10], [1.0, 0.25, 0.125], 0.25) == 5
    history = [{"epoch": 0, "train_loss": 1.0}, {"epoch": 1, "train_loss": 0.5}, {"epoch": 2, "train_loss": 0.25}]
    assert lab.epochs_to_target(history, 0.5) == 1


def test_the_bootstrap_interval_is_the_order_statistics_of_the_seeded_resample_medians():
    """The interval of B resample medians drawn from default_rng(seed): the (αB + 1)-th smallest and the
    (1-α)B-th (1-based), α = 2.5%; with B = 40 the second smallest and the 39th, dropping one at each end."""
    values = np.arange(1.0, 11.0) ** 2  # 1, 4, ..., 100: median (25 + 36) / 2
    for seed in (0, 3):
        rng = np.random.default_rng(seed)
        medians = np.sort(np.median(values[rng.integers(0, 10, size=(40, 10))], axis=1))
        assert medians[0] < medians[1] and medians[38] < medians[39]  # (so that an off-by-one shows)
        assert lab.bootstrap_median_ci(values, n_resamples=40, seed=seed) == (30.5, medians[1], medians[38])


def test_two_runs_at_step_0_compare_as_a_ratio_of_1():
    """0 steps against 0 steps is a tie (ratio 1), not an infinitely slower run."""
    assert lab._ratio(0.0, 0.0) == 1.0
    sgd = {("a", 0): 0.0, ("a", 1): 10.0}
    other = {("a", 0): 0.0, ("a", 1): 5.0}
    (line,) = lab.verdicts({"sgd": sgd, "other": other})
    # ratios 1 and 0.5: median 0.75
    assert line.startswith("other reaches the target in 0.75x sgd's steps (median over 2 problems")


def test_a_problem_no_optimizer_reached_is_within_no_factor_of_the_best():
    """Both miss problem 2 (best inf): neither counts as within τ there, at any τ."""
    profile = lab.performance_profile({"A": [10.0, math.inf], "B": [20.0, math.inf]}, [1.0, 2.0, 100.0])
    np.testing.assert_array_equal(profile["A"], [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(profile["B"], [0.0, 0.5, 0.5])


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


# ---------------------------------------------------------------------------
# lab: tuning, the grid, seeds
# ---------------------------------------------------------------------------


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


def test_reported_rates_are_the_grids_to_three_digits_as_the_defaults_are():
    """10^-0.5 runs as 0.316; every documented default rate is a grid rate to three significant digits."""
    assert lab._to_3_digits(10**-0.5) == 0.316
    assert lab._to_3_digits(10**-2.5) == 0.00316
    shown = {lab._to_3_digits(g) for g in lab.LR_GRID}
    assert {lr for rates in lab.DEFAULT_LRS.values() for lr in rates.values()} <= shown


def test_reported_seeds_stop_below_the_tuning_seeds():
    """seeds = TUNE_SEED_BASE is the most allowed: one more would report the first tuning seed."""
    args = (["iris"], ["sgd"], None, 2, 32)
    lab._check_settings(*args, lab.TUNE_SEED_BASE, 2, (8,), None, 10)
    with pytest.raises(lab.LabError, match="seeds must be at most 10000"):
        lab._check_settings(*args, lab.TUNE_SEED_BASE + 1, 2, (8,), None, 10)


# ---------------------------------------------------------------------------
# lab: divergence and failures
# ---------------------------------------------------------------------------


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


def test_an_optimizer_that_fails_in_its_first_step_is_not_said_to_never_move_a_weight(tmp_path):
    """A run that took no step has not shown an update that rebinds w: no "never changed a weight" warning."""
    (tmp_path / "raises.py").write_text(
        "from minigrad.optim import Optimizer\n\n\nclass Raises(Optimizer):\n"
        "    def update(self, w, g, state):\n        raise RuntimeError('broken')\n")
    result = lab.compare(["iris"], ["sgd", f"{tmp_path / 'raises.py'}:Raises"], {"sgd": 0.1, "Raises": 0.1},
                         out_dir=None, **TINY)
    assert len(result.errors) == 2
    assert not [w for w in result.warnings if "never changed a weight" in w]


# ---------------------------------------------------------------------------
# lab: the journal, resume, the code digest
# ---------------------------------------------------------------------------


def test_a_torn_last_line_is_cut_off_so_the_next_record_starts_a_line_of_its_own(tmp_path):
    """Durability: after a kill tore the last line, the record appended next must not be glued to it."""
    path = tmp_path / "runs.jsonl"
    first = {"kind": "report", "dataset": "iris", "optimizer": "sgd", "seed": 0, "lr": 0.1, "status": "ok"}
    second = dict(first, seed=1)
    whole = (json.dumps(first) + "\n").encode()
    path.write_bytes(whole + (json.dumps(second) + "\n").encode()[:30])
    journal = lab._Journal(str(path))
    assert list(journal.records) == [("report", "iris", "sgd", 0, 0.1)] and journal.damaged == []
    assert path.read_bytes() == whole
    journal.append(second)
    journal.close()
    assert [json.loads(line) for line in path.read_bytes().splitlines()] == [first, second]
    again = lab._Journal(str(path))
    again.close()
    assert len(again.records) == 2 and again.damaged == []


def test_the_code_digest_changes_when_a_helper_file_is_renamed(tmp_path, plugin_source):
    """A plug-in's folder is its code by file name too: a helper renamed is other code, its runs run again."""
    (tmp_path / "plug.py").write_text(plugin_source)
    (tmp_path / "helper_a.py").write_text("SCALE = 1\n")
    source = f"{tmp_path / 'plug.py'}:SignSGD"
    before = lab._code_digest(source)
    os.rename(tmp_path / "helper_a.py", tmp_path / "helper_b.py")
    assert lab._code_digest(source) != before
    os.rename(tmp_path / "helper_b.py", tmp_path / "helper_a.py")
    assert lab._code_digest(source) == before


def test_a_resume_stopped_while_tuning_shows_no_reported_run_of_before_and_keeps_the_journal(tmp_path):
    """Stopped while tuning, a resume does not know the rates yet: results.csv shows none of the old reported
    runs (they may be at another rate), while runs.jsonl keeps every finished training."""
    out = tmp_path / "out"
    kwargs = dict(lr_grid=(0.1, 1.0), out_dir=out, plots=False, **TINY)
    lab.compare(["iris"], ["sgd"], "tune", **kwargs)
    lines = (out / "runs.jsonl").read_bytes().splitlines(keepends=True)
    kinds = [json.loads(line)["kind"] for line in lines]
    assert kinds.count("tune") == 4 and kinds.count("report") == 2
    dropped = kinds.index("tune")
    (out / "runs.jsonl").write_bytes(b"".join(lines[:dropped] + lines[dropped + 1:]))  # one tuning run to redo

    def say(line):
        if line.startswith("["):  # the tuning run is done: a Ctrl-C now
            os.kill(os.getpid(), signal.SIGINT)

    result = lab.compare(["iris"], ["sgd"], "tune", resume=True, progress=say, **kwargs)
    assert result.interrupted == signal.SIGINT
    assert result.records == []
    assert (out / "results.csv").read_text().splitlines()[1:] == []
    kinds = [json.loads(line)["kind"] for line in (out / "runs.jsonl").read_bytes().splitlines()]
    assert kinds.count("tune") == 4 and kinds.count("report") == 2


# ---------------------------------------------------------------------------
# checkpoint: what load refuses
# ---------------------------------------------------------------------------


def _npz(path, manifest, members):
    """A zip of .npy members with the given manifest (a dict, stored as JSON text) and raw member bytes."""
    with zipfile.ZipFile(path, "w") as zf:
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.array(json.dumps(manifest)))
        zf.writestr("__minigrad__.npy", buffer.getvalue())
        for name, payload in members.items():
            zf.writestr(name + ".npy", payload)


def _npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array)
    return buffer.getvalue()


def test_load_refuses_a_dtype_save_never_writes_and_save_refuses_complex(tmp_path):
    """Only bool, integer, float and text entries exist: a complex member is a foreign file."""
    manifest = {"format": "minigrad-checkpoint", "version": 1, "tree": {"z": "z"}}
    _npz(tmp_path / "c.npz", manifest, {"z": _npy(np.array([1 + 2j]))})
    with pytest.raises(ValueError, match=r"entry 'z' has dtype complex128, which save never writes"):
        checkpoint.load(tmp_path / "c.npz")
    with pytest.raises(TypeError, match=r"entry 'z' is not numeric \(dtype complex128\)"):
        checkpoint.save({"z": np.array([1 + 2j])}, tmp_path / "d.npz")
    assert not (tmp_path / "d.npz").exists()


def test_load_refuses_a_manifest_without_a_version(tmp_path):
    """A manifest that names no format version is not one of versions 1 and 2."""
    _npz(tmp_path / "v.npz", {"format": "minigrad-checkpoint", "tree": {"w": "w"}}, {"w": _npy(np.zeros(2))})
    with pytest.raises(ValueError, match="format version None"):
        checkpoint.load(tmp_path / "v.npz")


def test_load_refuses_a_member_longer_than_its_header_and_one_the_manifest_does_not_name(tmp_path):
    """Trailing data after an array, or a member outside the manifest, is a damaged or foreign file."""
    manifest = {"format": "minigrad-checkpoint", "version": 1, "tree": {"w": "w"}}
    _npz(tmp_path / "long.npz", manifest, {"w": _npy(np.zeros(2)) + b"\0" * 8})
    with pytest.raises(ValueError, match="entry 'w' is longer than its header says"):
        checkpoint.load(tmp_path / "long.npz")
    _npz(tmp_path / "extra.npz", manifest, {"w": _npy(np.zeros(2)), "extra": _npy(np.ones(1))})
    with pytest.raises(ValueError, match=r"members its manifest does not name: \['extra.npy'\]"):
        checkpoint.load(tmp_path / "extra.npz")
    _npz(tmp_path / "ok.npz", manifest, {"w": _npy(np.arange(2.0))})
    np.testing.assert_array_equal(checkpoint.load(tmp_path / "ok.npz")["w"], [0.0, 1.0])


# ---------------------------------------------------------------------------
# paths: steps to target and tuning
# ---------------------------------------------------------------------------


def _path(f, status="ok", seed=0):
    f = np.asarray(f, dtype=np.float64)
    return paths.Path("ravine", "sgd", seed, 0.1, np.zeros((len(f), 2)), f, status)


def test_steps_to_needs_f_strictly_below_the_target():
    """f < target, as documented: a path that sits at the target has not reached it."""
    assert paths.steps_to([1.0, 0.5, 0.5], 0.5) == math.inf
    assert paths.steps_to([1.0, 0.5, 0.25], 0.5) == 2


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


def test_the_summary_shows_the_lower_middle_run_of_an_even_count():
    """Two noisy seeds: the summary's final point and f are those of the run that ended lower."""
    result = paths.run("ravine", ["sgd"], {"sgd": 0.01}, steps=30, noise=1.0, seeds=2)
    low = min(result.paths, key=lambda p: p.f[-1])
    assert result.paths[0].f[-1] != result.paths[1].f[-1]
    (row,) = result.summary
    assert row["final_f"] == low.f[-1]
    assert (row["final_x"], row["final_y"]) == tuple(low.points[-1])


def test_a_tuned_rate_at_the_low_end_of_the_grid_is_marked_and_warned():
    """Ravine, sgd: 1.0 diverges (lr must stay below 2/100), so 0.001 wins at the grid's low end; with 1/3
    rate a decade (steps of 3 decades, too coarse to repeat), the wider grid is 1e-5..1 at two rates a decade."""
    result = paths.run("ravine", ["sgd"], "tune", steps=30, lr_grid=(0.001, 1.0))
    assert result.rates["sgd"] == 0.001 and result.summary[0]["at_grid_edge"]
    assert result.warnings == ["warning: sgd's best rate on ravine, 0.001, is the lowest rate of the grid; the best "
                               "may lie below it: widen the grid, e.g. --lr-grid 1e-05:1:11"]


# ---------------------------------------------------------------------------
# More of lab and checkpoint
# ---------------------------------------------------------------------------


def test_the_validation_split_is_standardised_on_its_80_percent():
    """Tuning sees the 80% scaled by its own statistics (mean 0, std 1 per column), the 20% by the same."""
    X_fit, X_val, _, _ = lab._validation_split("iris")
    np.testing.assert_allclose(X_fit.astype(np.float64).mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(X_fit.astype(np.float64).std(axis=0), 1.0, rtol=1e-5)
    assert np.abs(X_val.astype(np.float64).mean(axis=0)).max() > 1e-3  # (the 20%'s own statistics are not used)
    _, _, y_fit, _ = lab._validation_split("diabetes")
    assert abs(y_fit.astype(np.float64).mean()) < 1e-6 and y_fit.astype(np.float64).std() == pytest.approx(1.0)


def test_each_journal_record_is_fsynced_once_it_is_written(tmp_path, monkeypatch):
    """Durability: append writes the whole line, then fsyncs the journal before it returns."""
    path = tmp_path / "runs.jsonl"
    journal = lab._Journal(str(path))
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append((fd, os.path.getsize(path))), real_fsync(fd)))
    record = {"kind": "report", "dataset": "iris", "optimizer": "sgd", "seed": 0, "lr": 0.1, "status": "ok"}
    journal.append(record)
    journal.close()
    size = len(json.dumps(record)) + 1
    assert synced == [(journal.fd, size)] and path.stat().st_size == size


def test_load_refuses_a_negative_max_bytes():
    """max_bytes must be a non-negative integer: -1 is refused as such, before the file is opened."""
    with pytest.raises(ValueError, match=r"load: max_bytes must be a non-negative integer, got -1"):
        checkpoint.load("no-such-file.npz", max_bytes=-1)
