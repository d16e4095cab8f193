"""The command line: a tiny real run, plug-ins with arguments, and one clear line for every bad input.

Every option must reach the library as given, and the defaults must be the library's. Where a test replaces
``lab.compare`` or ``lab.choose_defaults`` it is with a spy (``spy_on``) that records the call and stops it (a
LabError: exit 2), so the options are checked as the library receives them, at no training cost.
"""

import csv
import inspect
import os
import subprocess
import sys

import pytest

from minigrad import cli, lab
from minigrad import data as mgdata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = ["--datasets", "iris", "--epochs", "2", "--seeds", "1", "--hidden", "8", "--lr-grid", "0.01:1:3",
        "--eval-points", "5"]


def run_module(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "minigrad", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def spy_on(monkeypatch, module, name):
    """Replace ``module.name`` by a function that records its (args, kwargs) and raises LabError."""
    calls = []

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        raise lab.LabError("spied")

    monkeypatch.setattr(module, name, spy)
    return calls


def test_tiny_run_writes_results_and_plots(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["compare", *TINY, "--out", str(out)]) == 0
    rows = read_csv(out / "results.csv")
    assert list(rows[0])[:9] == ["dataset", "optimizer", "seed", "step", "epoch", "train_loss", "test_metric",
                                 "seconds", "status"]
    assert {r["optimizer"] for r in rows} == {"sgd", "momentum", "nesterov", "adam"}
    assert len(read_csv(out / "summary.csv")) == 4
    assert len(read_csv(out / "tuning.csv")) == 4 * 3 * 2  # optimizers x rates x tuning seeds
    for name in ("iris.png", "profile.png", "lr_sensitivity.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    captured = capsys.readouterr()
    assert "tuned in this run for every optimizer" in captured.out and "Verdict against sgd" in captured.out
    assert "steps to target" in captured.out
    # A progress line per finished dataset and optimizer, also when stderr is not a terminal.
    assert "tuned adam on iris: lr" in captured.err and "adam on iris: 1 seed done" in captured.err


def test_compare_is_the_default_subcommand_and_rates_and_arguments(tmp_path, capsys):
    out = tmp_path / "out"
    tiny = [a for a in TINY if a not in ("--lr-grid", "0.01:1:3")]  # (a grid with given rates is refused)
    argv = [*tiny, "--optimizers", "sgd,momentum(beta=0.5)", "--lr", "sgd=0.05,momentum(beta=0.5)=0.2",
            "--target", "2", "--out", str(out)]
    assert cli.main(argv) == 0
    summary = read_csv(out / "summary.csv")
    assert [(s["optimizer"], float(s["lr"]), s["lr_source"]) for s in summary] == [
        ("sgd", 0.05, "given"), ("momentum(beta=0.5)", 0.2, "given")]
    # Target 2 is above ln 3, the untrained loss of a 3-class problem: reached at step 0.
    assert [float(s["steps_to_target_median"]) for s in summary] == [0.0, 0.0]
    assert "given on the command line" in capsys.readouterr().out


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


def test_plugin_optimizer_with_arguments_by_path(tmp_path, plugin_source, capsys):
    plugin = tmp_path / "signsgd.py"
    plugin.write_text(plugin_source)
    out = tmp_path / "out"
    argv = [*TINY, "--optimizers", f"sgd,{plugin}:SignSGD", "--lr", "tune", "--out", str(out)]
    assert cli.main(argv) == 0
    rows = read_csv(out / "results.csv")
    assert {r["optimizer"] for r in rows} == {"sgd", "SignSGD"}
    assert "SignSGD" in capsys.readouterr().out


def test_bad_input_in_a_subprocess_has_no_traceback(tmp_path):
    result = run_module("--datasets", "mnist", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("minigrad: error: unknown dataset 'mnist'")
    assert not (tmp_path / "out").exists()


def test_broken_plugin_in_a_subprocess_has_no_traceback(tmp_path):
    (tmp_path / "broken.py").write_text("import numpy\nraise RuntimeError('boom')\n")
    result = run_module("--optimizers", f"{tmp_path / 'broken.py'}:X", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "RuntimeError: boom" in lines[0]


def test_output_into_a_closed_pipe_ends_quietly_with_the_sigpipe_status():
    """`minigrad --help | head -1`: the reader is gone before the help is printed; no traceback, status 141."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen([sys.executable, "-m", "minigrad", "--help"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=ROOT, env=env)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # (long before the child's interpreter has started, let alone printed)
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141, err
    assert err == ""


def test_help_shows_the_subcommands_and_compares_options(capsys):
    assert cli.main(["--help"]) == 0
    printed = capsys.readouterr().out
    assert "compare" in printed and "defaults" in printed and "--lr-grid LOW:HIGH:N" in printed
    assert cli.main(["compare", "--help"]) == 0
    printed = capsys.readouterr().out
    for option in ("--lr-grid", "--tune-seeds", "--resume", "--overwrite", "--jobs", "--backend", "--scheduler"):
        assert option in printed


def test_split_list_keeps_arguments_together():
    assert cli.split_list("sgd, adam(betas=(0.9, 0.99)),x.py:Lion(b=[1,2])", "optimizers") == [
        "sgd", "adam(betas=(0.9, 0.99))", "x.py:Lion(b=[1,2])"]
    assert cli.parse_lrs("sgd=0.1,momentum(beta=0.5)=0.2") == {"sgd": 0.1, "momentum(beta=0.5)": 0.2}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--datasets", "iris,mnist"], "unknown dataset 'mnist'"),
        (["--datasets", "iris,,wine"], "--datasets: expected a comma-separated list"),
        (["--optimizers", "rmsprops"], "unknown optimizer 'rmsprops'"),
        (["--optimizers", "{plugin}:Lion"], "has no class 'Lion'"),
        (["--optimizers", "{missing}:Lion"], "no such file"),
        (["--optimizers", "momentum(beta=0.9"], "unbalanced parentheses"),
        (["--optimizers", "momentum(beta=open('x'))"], "the value of beta is not a literal"),
        (["--optimizers", "momentum(0.9)"], "expected name(key=value, ...)"),
        (["--optimizers", "momentum(gamma=1)"], "unexpected keyword argument 'gamma'"),
        (["--optimizers", "{plugin}:SignSGD(beta=1)"], "unexpected keyword argument 'beta'"),
        (["--lr", "fast"], "--lr: expected 'tune' or name=rate pairs"),
        (["--lr", "sgd=abc"], "--lr: expected 'tune' or name=rate pairs"),
        (["--lr", "sgd=-0.1"], "--lr: expected 'tune' or name=rate pairs"),
        (["--lr", "sgd=0.1,sgd=0.2"], "'sgd' is given twice"),
        (["--lr", "lion=0.1"], "not among the optimizers"),
        (["--lr", "sgd=0.1"], "give a rate for every optimizer"),
        (["--lr-grid", "10:1:3"], "argument --lr-grid"),
        (["--lr-grid", "1e-5:10"], "argument --lr-grid: expected LOW:HIGH:N"),
        (["--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
        (["--epochs", "ten"], "argument --epochs: expected an integer"),
        (["--batch-size", "0"], "argument --batch-size: must be >= 1"),
        (["--seeds", "0"], "argument --seeds: must be >= 1"),
        (["--tune-seeds", "0"], "argument --tune-seeds: must be >= 1"),
        (["--hidden", "64,x"], "--hidden: expected comma-separated positive integers"),
        (["--target", "-1"], "argument --target: must be a positive number"),
        (["--jobs", "0"], "argument --jobs: must be >= 1"),
        (["--backend", "dask"], "needs a scheduler address"),
        (["--backend", "spark"], "argument --backend: invalid choice"),
        (["--out", "{plugin}"], "exists and is not a directory"),
        (["--resume", "--overwrite"], "contradict each other"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["train"], "unrecognized arguments: train"),
        (["--function", "rosenbrock"], "unrecognized arguments: --function rosenbrock (--function is an option of "
                                       "the paths command: python -m minigrad paths ...)"),
        (["--backend", "dask", "--scheduler", "tcp://x:1", "--steps=9"], "(--steps is an option of the paths"),
    ],
)
def test_bad_input_prints_one_line_and_exits_2(tmp_path, plugin_source, capsys, argv, message):
    plugin = tmp_path / "signsgd.py"
    plugin.write_text(plugin_source)
    argv = [a.format(plugin=plugin, missing=tmp_path / "missing.py") for a in argv]
    assert cli.main([*TINY, "--out", str(tmp_path / "out"), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("minigrad: error: ") and message in lines[0]
    assert not (tmp_path / "out").exists() or "contradict" in message  # nothing ran


def test_cli_refuses_a_plugin_without_update_and_a_bad_out(tmp_path, capsys):
    assert cli.main(["--datasets", "iris", "--optimizers", "minigrad.optim:Optimizer", "--lr", "Optimizer=0.1",
                     "--epochs", "1", "--seeds", "1", "--out", str(tmp_path)]) == 2
    assert "does not define update" in capsys.readouterr().err
    assert cli.main(["--datasets", "iris", "--epochs", "1", "--seeds", "1", "--out", "/dev/null/x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("minigrad: error: cannot use output directory") and "\n" not in err
    (tmp_path / "locked" / ".lock").mkdir(parents=True)  # a lock file that cannot be opened (as root, chmod cannot)
    assert cli.main(["--datasets", "iris", "--epochs", "1", "--seeds", "1", "--out", str(tmp_path / "locked")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"minigrad: error: cannot use output directory {str(tmp_path / 'locked')!r}: cannot open its lock file "
        f"{str(tmp_path / 'locked' / '.lock')!r} (Is a directory); make the folder and the file writable, or choose "
        "another --out")


@pytest.mark.parametrize("given", [["--function", "ravine"], ["--steps", "5"], ["--start=1,2"], ["--noise", "0.1"],
                                   ["--tol", "0.1"], ["--gif"]])
def test_every_paths_option_given_to_compare_gets_the_hint(capsys, given):
    """--noise (and each other paths-only option) given to compare lost its hint to the paths command."""
    assert cli.main(["--datasets", "iris", *given]) == 2
    name = given[0].split("=")[0]
    assert f"({name} is an option of the paths command: python -m minigrad paths ...)" in capsys.readouterr().err


def test_defaults_prints_the_tables_to_paste(monkeypatch, capsys):
    monkeypatch.setitem(lab.DEFAULT_SETTINGS, "epochs", 2)  # tiny settings: the command's logic, not its cost
    monkeypatch.setitem(lab.DEFAULT_SETTINGS, "hidden", (4,))
    assert cli.main(["defaults", "--datasets", "iris"]) == 0
    namespace: dict = {}
    exec(capsys.readouterr().out, namespace)  # the printed text is Python: two dict literals
    rates, targets = namespace["DEFAULT_LRS"], namespace["TARGETS"]
    assert list(rates) == ["iris"] and list(rates["iris"]) == list(lab.BUILTIN_OPTIMIZERS)
    grid = {float(f"{lr:.3g}") for lr in lab.LR_GRID}
    assert set(rates["iris"].values()) <= grid
    # Two epochs of four batches: every built-in is still near the untrained loss ln 3 = 1.1 half way.
    assert list(targets) == ["iris"] and 0.3 < targets["iris"] < 1.5


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


def test_the_printed_defaults_are_laid_out_as_lab_py_and_pass_its_lint():
    """Pasted as printed, lines of 157-180 characters failed the project's own ruff check (E501)."""
    text = cli.format_defaults(lab.DEFAULT_LRS, lab.TARGETS)
    assert max(len(line) for line in text.splitlines()) <= 120
    namespace: dict = {}
    exec(text, namespace)  # noqa: S102  (the command's own output)
    assert namespace["DEFAULT_LRS"] == lab.DEFAULT_LRS and namespace["TARGETS"] == lab.TARGETS
    source = open(lab.__file__).read()
    assert text.split("\n\nTARGETS")[0] in source  # the same text as the file's own table
