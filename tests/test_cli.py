"""The command line: a tiny real run, plug-ins by path, and one clear line for every bad input."""

import csv
import os
import subprocess
import sys

import pytest

from minigrad import cli, lab

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = ["--datasets", "iris", "--epochs", "2", "--seeds", "1", "--hidden", "8"]


def run_module(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "minigrad", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tiny_run_writes_results_and_a_plot(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["compare", *TINY, "--out", str(out)]) == 0
    rows = read_csv(out / "results.csv")
    for column in ("dataset", "optimizer", "seed", "epoch", "train_loss", "test_metric", "seconds", "lr"):
        assert column in rows[0]
    assert len(rows) == 4 * 3  # four optimizers x epochs 0, 1, 2
    assert {r["optimizer"] for r in rows} == {"sgd", "momentum", "nesterov", "adam"}
    assert {r["epoch"] for r in rows} == {"0", "1", "2"}
    assert {float(r["lr"]) for r in rows if r["optimizer"] == "adam"} == {lab.DEFAULT_LRS["adam"]}
    assert len(read_csv(out / "summary.csv")) == 4
    assert (out / "iris.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "documented defaults" in printed
    assert "final train loss" in printed and "epochs to 0.1" in printed


def test_compare_is_the_default_subcommand_and_lr_overrides(tmp_path, capsys):
    out = tmp_path / "out"
    argv = [*TINY, "--optimizers", "sgd,adam", "--lr", "sgd=0.05", "--target", "2", "--out", str(out)]
    assert cli.main(argv) == 0
    summary = read_csv(out / "summary.csv")
    assert [(s["optimizer"], float(s["lr"]), s["lr_source"]) for s in summary] == [
        ("sgd", 0.05, "given"), ("adam", lab.DEFAULT_LRS["adam"], "default")]
    # Target 2 is above ln 3, the untrained loss of a 3-class problem: reached at epoch 0.
    assert [s["epochs_to_target"] for s in summary] == ["0.0", "0.0"]
    assert "given on the command line for sgd" in capsys.readouterr().out


def test_plugin_optimizer_by_path(tmp_path, plugin_source, capsys):
    plugin = tmp_path / "signsgd.py"
    plugin.write_text(plugin_source)
    out = tmp_path / "out"
    argv = [*TINY, "--optimizers", f"sgd,{plugin}:SignSGD", "--lr", "SignSGD=0.02", "--out", str(out)]
    assert cli.main(argv) == 0
    rows = read_csv(out / "results.csv")
    assert {r["optimizer"] for r in rows} == {"sgd", "SignSGD"}
    assert {float(r["lr"]) for r in rows if r["optimizer"] == "SignSGD"} == {0.02}
    assert "SignSGD" in capsys.readouterr().out


def test_lr_tune_says_so(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main([*TINY, "--epochs", "1", "--optimizers", "adam", "--lr", "tune", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "tuned in this run" in printed and "Best rate per optimizer" in printed
    assert (out / "tuning.csv").exists()


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


def test_help_exits_zero(capsys):
    assert cli.main(["--help"]) == 0
    assert "compare" in capsys.readouterr().out
    assert cli.main(["compare", "--help"]) == 0
    assert "--batch-size" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--datasets", "iris,mnist"], "unknown dataset 'mnist'"),
        (["--datasets", "iris,,wine"], "--datasets: expected a comma-separated list"),
        (["--optimizers", "rmsprop"], "unknown optimizer 'rmsprop'"),
        (["--optimizers", "{plugin}:Lion"], "has no class 'Lion'"),
        (["--optimizers", "{missing}:Lion"], "no such file"),
        (["--lr", "fast"], "--lr: expected 'tune' or name=rate pairs"),
        (["--lr", "sgd=abc"], "--lr: expected 'tune' or name=rate pairs"),
        (["--lr", "sgd=-0.1"], "--lr: expected 'tune' or name=rate pairs"),
        (["--lr", "sgd=0.1,sgd=0.2"], "'sgd' is given twice"),
        (["--lr", "lion=0.1"], "not among the optimizers"),
        (["--epochs", "-1"], "argument --epochs: must be >= 0, got -1"),
        (["--epochs", "ten"], "argument --epochs: expected an integer"),
        (["--batch-size", "0"], "argument --batch-size: must be >= 1"),
        (["--seeds", "0"], "argument --seeds: must be >= 1"),
        (["--hidden", "64,x"], "--hidden: expected comma-separated positive integers"),
        (["--hidden", "64,0"], "--hidden: sizes must be positive"),
        (["--target", "-1"], "argument --target: must be a positive number"),
        (["--out", "{plugin}"], "exists and is not a directory"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["train"], "unrecognized arguments: train"),
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
    assert not (tmp_path / "out").exists()  # nothing ran
