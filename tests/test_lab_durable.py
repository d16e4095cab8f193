"""The durable lab: kills, signals and resume, the lock, failing plug-ins, full disks, parallel and cluster runs."""

import csv
import errno
import json
import math
import os
import random
import shlex
import signal
import subprocess
import sys
import threading
import time
import zlib

import pytest
from test_lab import TINY

from minigrad import _extras, cli, lab, optim
from minigrad._extras import pip_hint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Enough trainings (24 tuning + 32 reported, a few ms each) that a kill lands in the middle of the run.
ARGS = ["--datasets", "iris,wine", "--optimizers", "sgd,adam", "--epochs", "4", "--seeds", "8", "--hidden", "8",
        "--lr-grid", "0.01:1:3", "--eval-points", "5"]
SMALL = ["--datasets", "iris", "--optimizers", "sgd,adam", "--epochs", "2", "--seeds", "2", "--hidden", "8",
         "--lr-grid", "0.1:1:2", "--eval-points", "5"]
#: SMALL with its rates given (a tuning grid with given rates is refused: nothing would use it).
GIVEN = [a for a in SMALL if a not in ("--lr-grid", "0.1:1:2")]


def start(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "minigrad", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=env)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def without_time(rows):
    return [{k: v for k, v in r.items() if k not in ("seconds", "seconds_mean")} for r in rows]


def journal_lines(out):
    path = out / "runs.jsonl"
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of ARGS: its results.csv, summary.csv and tuning.csv, timing columns aside."""
    out = tmp_path_factory.mktemp("reference") / "out"
    assert cli.main([*ARGS, "--no-plots", "--out", str(out)]) == 0
    return {name: without_time(read_csv(out / name)) for name in ("results.csv", "summary.csv", "tuning.csv")}


def assert_same_as(reference, out):
    for name, rows in reference.items():
        assert without_time(read_csv(out / name)) == rows, name


def test_kill_9_at_random_moments_leaves_only_complete_rows_and_resume_finishes(tmp_path, reference):
    out = tmp_path / "out"
    rng = random.Random(0)
    saved = 0
    for i in range(3):
        process = start(*ARGS, "--no-plots", "--out", str(out), *(["--resume"] if i else []))
        deadline = time.monotonic() + 20
        while len(journal_lines(out)) <= saved and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)  # until this process has saved a training of its own
        time.sleep(rng.uniform(0.0, 0.02))  # then a kill at a random moment
        process.kill()
        assert process.wait() == -signal.SIGKILL, process.stderr.read()  # killed mid-run, not finished
        lines = journal_lines(out)
        assert saved < len(lines) < 56
        saved = len(lines)
        for line in lines[:-1]:
            json.loads(line)  # every line but a torn last one is whole
        if (out / "results.csv").exists():
            rows = read_csv(out / "results.csv")
            assert all(None not in r and None not in r.values() for r in rows)
    assert cli.main([*ARGS, "--no-plots", "--out", str(out), "--resume"]) == 0
    assert_same_as(reference, out)
    keys = [json.loads(line)["kind"] + str(json.loads(line)["seed"]) + str(json.loads(line)["lr"]) +
            json.loads(line)["dataset"] + json.loads(line)["optimizer"] for line in journal_lines(out)]
    assert len(keys) == len(set(keys)) == 24 + 32  # every training once: resume ran only what was missing


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_stops_after_the_current_run_and_resume_equals_an_uninterrupted_run(tmp_path, reference, signum,
                                                                                      status, capsys):
    out = tmp_path / "out"
    process = start(*ARGS, "--no-plots", "--out", str(out))
    deadline = time.monotonic() + 20
    while len(journal_lines(out)) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signum)
    _, err = process.communicate(timeout=30)
    assert process.returncode == status, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"minigrad: stopped by {signal.Signals(signum).name}: ") and "Traceback" not in err
    saved = len(journal_lines(out))
    assert f"{saved} of 56 runs are saved" in last
    command = shlex.split(last.split("resume with: ")[1])
    assert command[0] in ("python", sys.executable) and command[1:3] == ["-m", "minigrad"]
    assert command[-1] == "--resume"
    assert len(read_csv(out / "results.csv")) >= 0  # written from what finished, complete rows only
    assert cli.main(command[3:]) == 0
    assert_same_as(reference, out)


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_as_the_workers_start_stops_the_run_and_says_how_to_resume(tmp_path, signum, status):
    """Sent before the handlers were in place, SIGTERM killed the run outright and orphaned its workers (h63)."""
    out = tmp_path / "out"
    argv = [*GIVEN, "--lr", "sgd=0.5,adam=0.01", "--no-plots", "--jobs", "2", "--out", str(out)]
    script = (
        "import os, sys\n"
        "from minigrad import cli, lab\n"
        "real = lab._start_workers\n"
        f"lab._start_workers = lambda jobs: (real(jobs), os.kill(os.getpid(), {int(signum)}))\n"
        f"sys.exit(cli.main({argv!r}))\n"
    )
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env,
                             timeout=60)  # (orphaned workers held the pipe open: a hang)
    assert process.returncode == status, process.stderr
    last = process.stderr.strip().splitlines()[-1]
    assert last.startswith(f"minigrad: stopped by {signal.Signals(signum).name}: ") and "resume with: " in last
    assert cli.main([*GIVEN, "--lr", "sgd=0.5,adam=0.01", "--no-plots", "--out", str(out), "--resume"]) == 0
    assert len(read_csv(out / "summary.csv")) == 2


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_second_signal_stops_at_once(tmp_path, signum, status):
    """The first signal is said at once; a second stops the training in progress (20 more were ignored)."""
    plugin = tmp_path / "slow.py"
    plugin.write_text("import time\nfrom minigrad.optim import SGD\n\n\nclass Slow(SGD):\n"
                      "    def update(self, w, g, state):\n        time.sleep(0.5)\n"
                      "        super().update(w, g, state)\n")
    out = tmp_path / "out"
    process = start(*GIVEN, "--optimizers", f"sgd,{plugin}:Slow", "--lr", "sgd=0.1,Slow=0.1", "--no-plots",
                    "--out", str(out))
    deadline = time.monotonic() + 20
    while len(journal_lines(out)) < 2 and time.monotonic() < deadline:  # sgd's two runs are done
        time.sleep(0.01)
    time.sleep(1.0)  # Slow's first training (16 s) is surely running: the first signal must find it in progress
    process.send_signal(signum)
    time.sleep(0.3)
    process.send_signal(signum)
    began = time.monotonic()
    _, err = process.communicate(timeout=30)
    assert time.monotonic() - began < 3  # Slow's first training alone takes 8 steps x 4 parameters x 0.5 s
    assert process.returncode == status, err  # (a second SIGTERM exited 130)
    lines = err.strip().splitlines()
    name = signal.Signals(signum).name
    assert f"{name}: stopping after the trainings in progress (send it again to stop now" in err
    assert lines[-1].startswith(f"minigrad: interrupted by {name}; every finished training is saved: resume with ")
    assert " -m minigrad " in lines[-1]
    assert lines[-1].endswith(" --resume") and "Traceback" not in err
    assert len(journal_lines(out)) == 2 and all(line.endswith(b"\n") for line in journal_lines(out))


def test_a_second_run_on_the_same_out_is_refused_and_a_stale_lock_is_taken_over(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    holder = lab._Lock(str(out))  # as another process would hold it (flock conflicts across open files)
    try:
        assert cli.main([*SMALL, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"minigrad: error: output directory {str(out)!r} is in use by another minigrad run "
                       f"(pid {os.getpid()}); wait for it to finish or choose another --out")
    finally:
        holder.release()
    (out / ".lock").write_text("999999")  # left by a killed run: nobody holds it
    assert cli.main([*SMALL, "--no-plots", "--out", str(out)]) == 0
    assert "taking over the lock left by pid 999999" in capsys.readouterr().err
    # A run that finished cleanly leaves no pid behind: the next one reports no killed run.
    assert (out / ".lock").read_text() == ""
    assert cli.main([*SMALL, "--no-plots", "--out", str(out), "--overwrite"]) == 0
    assert "taking over the lock" not in capsys.readouterr().err


def test_overwrite_and_resume_remove_the_labs_temporary_files_and_no_one_elses(tmp_path):
    """Every hidden .tmp file was taken for the lab's: --overwrite and --resume deleted a user's .draft.tmp (h63)."""
    out = tmp_path / "out"
    out.mkdir()
    theirs = [".draft.tmp", ".notes.txt.0123456789ab.tmp", ".results.csv.tmp"]  # (the last: no tag, so not ours)
    ours = [".summary.csv.0a1b2c3d-4242-0123456789ab.tmp", ".iris.png.0123456789ab.tmp", ".run.json.ffffffffffff.tmp"]
    for name in theirs + ours:
        (out / name).write_text("x")
    assert sorted(lab._lab_files(os.listdir(out))) == sorted(ours)
    assert cli.main([*GIVEN, "--lr", "sgd=0.5,adam=0.01", "--no-plots", "--out", str(out), "--overwrite"]) == 0
    assert all((out / name).read_text() == "x" for name in theirs)
    assert not any((out / name).exists() for name in ours)
    for name in ours:
        (out / name).write_text("x")  # left by a killed run
    assert cli.main([*GIVEN, "--lr", "sgd=0.5,adam=0.01", "--no-plots", "--out", str(out), "--resume"]) == 0
    assert all((out / name).read_text() == "x" for name in theirs)
    assert not any((out / name).exists() for name in ours)


def test_a_non_empty_out_is_refused_without_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert cli.main([*SMALL, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "already holds 1 other file(s) (notes.txt) and no run: choose an empty or new folder with --out DIR" in err
    assert "--overwrite" in err
    assert sorted(os.listdir(out)) == [".lock", "notes.txt"]
    assert cli.main([*SMALL, "--datasets", "wine", "--out", str(out), "--overwrite"]) == 0
    assert (out / "wine.png").exists()
    assert cli.main([*SMALL, "--out", str(out)]) == 2
    assert ("already holds a run: write this one elsewhere with --out DIR, add --resume to continue that run "
            "(same settings), or --overwrite to replace it") in capsys.readouterr().err
    assert cli.main([*SMALL, "--out", str(out), "--overwrite"]) == 0
    assert (out / "iris.png").exists() and not (out / "wine.png").exists()  # the old run's plot is gone
    assert (out / "notes.txt").read_text() == "mine"  # files that are not the lab's stay
    assert cli.main([*SMALL, "--epochs", "3", "--out", str(out), "--resume"]) == 2
    assert "the settings differ from the stored run" in capsys.readouterr().err
    assert cli.main([*SMALL, "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "holds no run to resume" in capsys.readouterr().err


FAILING = '''
import sys
from minigrad.optim import SGD


class Boom(SGD):
    def update(self, w, g, state):
        if self.step_count == 3:
            raise ValueError("boom at step 3")
        super().update(w, g, state)


class Quits(SGD):
    def update(self, w, g, state):
        sys.exit("bye")
'''


def test_a_failing_plugin_loses_no_other_run_and_exits_1_with_one_line(tmp_path, capsys):
    plugin = tmp_path / "failing.py"
    plugin.write_text(FAILING)
    out = tmp_path / "out"
    optimizers = f"sgd,{plugin}:Boom,{plugin}:Quits"
    process = start(*GIVEN, "--optimizers", optimizers, "--lr", "sgd=0.1,Boom=0.1,Quits=0.1", "--no-plots",
                    "--out", str(out))
    stdout, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "Traceback" not in err
    final = [line for line in err.splitlines() if line.startswith("minigrad:")]
    assert len(final) == 1 and final[0].startswith(
        "minigrad: 4 run(s) failed with status error (the others are saved); first: Boom on iris, "
        "seed 0, lr 0.1: ValueError: boom at step 3 (in step 3); once fixed, ")
    assert " -m minigrad " in final[0]
    assert final[0].endswith(" --resume trains the failed ones again")
    rows = read_csv(out / "results.csv")
    assert {(r["optimizer"], r["status"]) for r in rows} == {("sgd", "ok"), ("Boom", "error"), ("Quits", "error")}
    assert {r["seed"] for r in rows if r["optimizer"] == "sgd"} == {"0", "1"}
    assert "sgd" in stdout  # the table still shows the runs that worked
    assert cli.main([*GIVEN, "--optimizers", optimizers, "--lr", "sgd=0.1,Boom=0.1,Quits=0.1", "--debug",
                     "--no-plots", "--out", str(tmp_path / "debug")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "boom at step 3" in err


def test_a_full_disk_leaves_the_old_files_intact(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert cli.main([*SMALL, "--out", str(out)]) == 0
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    real_write = os.write

    def full_disk(fd, payload):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(out)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, payload)

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to tell which file a descriptor writes")
    monkeypatch.setattr(os, "write", full_disk)
    assert cli.main([*SMALL, "--out", str(out), "--resume"]) == 1
    monkeypatch.undo()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"minigrad: error: cannot write {out / 'results.csv'}: No space left on device"
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before  # no temporary file either


def test_a_picture_that_cannot_be_written_keeps_the_table_and_the_other_files(tmp_path, capsys):
    """A profile.png turned into a folder made the run end without its printed table."""
    out = tmp_path / "out"
    assert cli.main([*SMALL, "--out", str(out)]) == 0
    (out / "profile.png").unlink()
    (out / "profile.png").mkdir()  # os.replace cannot put a file over a folder
    capsys.readouterr()
    assert cli.main([*SMALL, "--out", str(out), "--resume"]) == 1
    captured = capsys.readouterr()
    assert "Verdict against sgd" in captured.out  # the table is printed
    assert captured.err.strip().splitlines()[-1].startswith(f"minigrad: error: cannot write {out / 'profile.png'}: ")
    assert {"results.csv", "summary.csv", "tuning.csv", "iris.png", "lr_sensitivity.png"} <= set(os.listdir(out))


def test_a_missing_matplotlib_is_found_before_any_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    out = tmp_path / "out"
    assert cli.main([*SMALL, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"minigrad: error: plots need matplotlib: {pip_hint('matplotlib')}, or run with --no-plots"
    assert not out.exists()
    assert cli.main([*SMALL, "--out", str(out), "--no-plots"]) == 0
    assert not [n for n in os.listdir(out) if n.endswith(".png")]


def test_resume_trains_again_the_failed_runs_and_an_edited_plugins_runs(tmp_path, capsys):
    """A resume re-reported the old errors of a plug-in fixed since, and mixed an edited plug-in's old and new runs."""
    plugin = tmp_path / "plug.py"
    plugin.write_text("from minigrad.optim import SGD\n\n\nclass Plug(SGD):\n    def update(self, w, g, state):\n"
                      "        raise ValueError('not yet')\n")
    out = tmp_path / "out"
    args = [*GIVEN, "--optimizers", f"sgd,{plugin}:Plug", "--lr", "sgd=0.1,Plug=0.1", "--no-plots", "--out", str(out)]
    assert cli.main(args) == 1
    sgd_rows = [r for r in read_csv(out / "results.csv") if r["optimizer"] == "sgd"]
    plugin.write_text(plugin.read_text().replace("raise ValueError('not yet')", "super().update(w, g, state)"))
    capsys.readouterr()
    assert cli.main([*args, "--resume"]) == 0
    assert "training again 2 runs that failed before" in capsys.readouterr().err
    rows = read_csv(out / "results.csv")
    assert {r["status"] for r in rows} == {"ok"}
    assert [r for r in rows if r["optimizer"] == "sgd"] == sgd_rows  # the others were kept, not trained again
    # Plug now is SGD: its rows are sgd's, seed for seed (the same training, under another name).
    plug_rows = [dict(r, optimizer="sgd") for r in rows if r["optimizer"] == "Plug"]
    assert without_time(plug_rows) == without_time(sgd_rows)
    # An edit after runs finished: those runs are another optimizer's, so a resume trains them again.
    plugin.write_text(plugin.read_text().replace("super().update(w, g, state)", "w -= 0.5 * self.lr * g"))
    assert cli.main([*args, "--resume"]) == 0
    assert "the code of Plug changed since 2 runs of it finished: training those again" in capsys.readouterr().err
    again = read_csv(out / "results.csv")
    assert [r for r in again if r["optimizer"] == "sgd"] == sgd_rows
    assert [r["train_loss"] for r in again if r["optimizer"] == "Plug"] != [r["train_loss"] for r in plug_rows]
    assert cli.main([*args, "--resume"]) == 0  # nothing changed: nothing trained
    assert "training again" not in capsys.readouterr().err


@pytest.mark.parametrize("form", ["import helper", "from helper import SCALE"])
def test_resume_sees_an_edited_helper_module_beside_the_plugin(tmp_path, capsys, form):
    """A plug-in's code in a helper module of its folder: editing it was not seen, the old runs were reused.

    With ``from helper import SCALE`` the plug-in itself must run again in this process, not only the helper.
    """
    folder = tmp_path / "plug"
    folder.mkdir()
    helper = "plug_helper_scale" if form == "import helper" else "plug_helper_scale_from"
    (folder / f"{helper}.py").write_text("SCALE = 1.0\n")
    take, scale = (f"import {helper}", f"{helper}.SCALE") if form == "import helper" else (
        f"from {helper} import SCALE", "SCALE")
    (folder / "scaled.py").write_text(
        f"{take}\nfrom minigrad.optim import SGD\n\n\nclass Scaled(SGD):\n"
        f"    def __init__(self, params, lr=0.1):\n        super().__init__(params, lr=lr * {scale})\n")
    # (The folder is not on sys.path: the lab puts it there while it imports the plug-in, as Python does for a
    # script; a plug-in that imported a helper beside it failed with ModuleNotFoundError.)
    out = tmp_path / "out"
    args = [*GIVEN, "--optimizers", f"sgd,{folder / 'scaled.py'}:Scaled", "--lr", "sgd=0.1,Scaled=0.1",
            "--no-plots", "--out", str(out)]
    assert cli.main(args) == 0
    before = [r["train_loss"] for r in read_csv(out / "results.csv") if r["optimizer"] == "Scaled"]
    (folder / f"{helper}.py").write_text("SCALE = 10.0\n")
    capsys.readouterr()
    assert cli.main([*args, "--resume"]) == 0
    assert "the code of Scaled changed since 2 runs of it finished" in capsys.readouterr().err
    after = [r["train_loss"] for r in read_csv(out / "results.csv") if r["optimizer"] == "Scaled"]
    assert after != before  # trained again, with the helper as it is now (imported afresh in this process too)


def test_a_torn_journal_line_is_dropped_on_resume(tmp_path):
    out = tmp_path / "out"
    assert cli.main([*SMALL, "--no-plots", "--out", str(out)]) == 0
    whole = (out / "runs.jsonl").read_bytes()
    results = read_csv(out / "results.csv")
    lines = whole.splitlines(keepends=True)
    (out / "runs.jsonl").write_bytes(b"".join(lines[:-1]) + lines[-1][:40])  # the last run torn mid-line
    assert cli.main([*SMALL, "--no-plots", "--out", str(out), "--resume"]) == 0
    assert without_time(read_csv(out / "results.csv")) == without_time(results)
    assert len((out / "runs.jsonl").read_bytes().splitlines()) == len(lines)


def test_a_torn_last_line_is_cut_off_so_the_next_record_starts_a_line_of_its_own(tmp_path):
    """Durability: after a kill tore the last line, the record appended next must not be glued to it."""
    path = tmp_path / "runs.jsonl"
    first = {"kind": "report", "dataset": "iris", "optimizer": "sgd", "seed": 0, "lr": 0.1, "status": "ok",
             "message": "", **{k: [1.0] for k in lab._CURVES["report"]}}
    second = dict(first, seed=1)
    whole = (json.dumps(first) + "\n").encode()
    path.write_bytes(whole + (json.dumps(second) + "\n").encode()[:30])
    journal = lab._Journal(str(path))
    assert list(journal.records) == [("report", "iris", "sgd", 0, 0.1)] and journal.damaged == []
    assert path.read_bytes() == whole
    journal.append(second)
    journal.close()
    written = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert "crc32" not in written[0] and isinstance(written[1].pop("crc32"), int)  # (the first: as an old run wrote it)
    assert written == [first, second]
    again = lab._Journal(str(path))
    again.close()
    assert len(again.records) == 2 and again.damaged == []


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
    size = len(path.read_bytes())
    assert path.read_bytes().endswith(b"}\n") and size > len(json.dumps(record)) + len(', "crc32": 1')
    assert synced == [(journal.fd, size)]


def test_jobs_1_and_jobs_2_give_identical_results():
    settings = {"epochs": 3, "seeds": 2, "tune_seeds": 2, "hidden": (8,), "eval_points": 10, "lr_grid": (0.01, 0.1),
                "out_dir": None}
    one = lab.compare(["iris", "wine"], ["sgd", "momentum", "adam"], "tune", jobs=1, **settings)
    two = lab.compare(["iris", "wine"], ["sgd", "momentum", "adam"], "tune", jobs=2, **settings)
    assert without_time(one.rows) == without_time(two.rows) and one.rows
    assert one.rates == two.rates
    assert without_time(one.summary) == without_time(two.summary)


def test_jobs_2_writes_the_files_of_jobs_1_byte_for_byte(tmp_path):
    # With workers, a thread of this process draws each plot while the others train; the PNGs must not change.
    settings = {"epochs": 3, "seeds": 2, "tune_seeds": 1, "hidden": (8,), "eval_points": 10, "lr_grid": (0.01, 0.1)}
    one = lab.compare(["iris", "wine"], ["sgd", "adam"], "tune", jobs=1, out_dir=tmp_path / "one", **settings)
    two = lab.compare(["iris", "wine"], ["sgd", "adam"], "tune", jobs=2, out_dir=tmp_path / "two", **settings)
    names = sorted(os.path.basename(f) for f in one.files)
    assert names == sorted(os.path.basename(f) for f in two.files)
    assert {"iris.png", "wine.png", "profile.png", "lr_sensitivity.png"} <= set(names)
    for name in names:
        if name.endswith(".png"):
            assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
        else:
            assert without_time(read_csv(tmp_path / "one" / name)) == without_time(read_csv(tmp_path / "two" / name))


def test_an_interrupted_jobs_2_run_writes_no_plot_and_stops_drawing(tmp_path):
    def progress(line):
        if "seeds done" in line:  # the reported runs have begun: the sensitivity plot is being drawn
            os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "out"
    result = lab.compare(["iris", "wine"], ["sgd", "adam"], "tune", epochs=2, seeds=3, tune_seeds=1, hidden=(8,),
                         eval_points=5, lr_grid=(0.01, 0.1), jobs=2, out_dir=out, progress=progress)
    assert result.interrupted == signal.SIGINT
    assert not [n for n in os.listdir(out) if n.endswith(".png")]
    assert (out / "results.csv").exists()
    assert "minigrad-plots" not in [t.name for t in threading.enumerate()]


def test_a_dask_localcluster_gives_the_local_results():
    distributed = pytest.importorskip("distributed")
    settings = {"epochs": 2, "seeds": 2, "tune_seeds": 1, "hidden": (8,), "eval_points": 5, "lr_grid": (0.01, 0.1),
                "out_dir": None}
    local = lab.compare(["iris"], ["sgd", "adam"], "tune", **settings)
    # Two workers as threads of this process (quick to start; the lab trains one at a time per process, since
    # minigrad's graph switch and generator are global), reached over loopback TCP like a remote scheduler.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                  protocol="tcp", host="127.0.0.1") as cluster:
        try:
            remote = lab.compare(["iris"], ["sgd", "adam"], "tune", backend="dask",
                                 scheduler=cluster.scheduler_address, **settings)
        finally:
            if lab._PINNED is not None:  # a worker thread pinned BLAS for this whole process: undo it
                lab._PINNED.restore_original_limits()
                lab._PINNED = None
    assert without_time(remote.rows) == without_time(local.rows) and local.rows
    assert remote.rates == local.rates


def test_an_unreachable_scheduler_is_one_line_and_leaves_no_run(tmp_path, monkeypatch, capsys):
    """A wrong address waited 30 s, printed a 62-line traceback and left run.json, refusing the next try."""
    pytest.importorskip("distributed")
    import functools

    monkeypatch.setattr(lab, "_connect", functools.partial(lab._connect, timeout=0.5))
    out = tmp_path / "out"
    assert cli.main([*SMALL, "--backend", "dask", "--scheduler", "tcp://127.0.0.1:1", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("minigrad: error: cannot reach the dask scheduler at 'tcp://127.0.0.1:1' (OSError: ")
    assert err.endswith("check the address (tcp://host:8786) and that the scheduler is running")
    assert "\n" not in err and not out.exists()
    assert cli.main([*SMALL, "--scheduler", "tcp://127.0.0.1:1", "--out", str(out)]) == 2  # (it was ignored)
    assert "a scheduler address (tcp://127.0.0.1:1) is for the dask backend: add --backend dask" in \
        capsys.readouterr().err


def test_a_worker_that_dies_is_one_line_and_status_1(tmp_path, capsys):
    plugin = tmp_path / "dies.py"
    plugin.write_text("import os\nfrom minigrad.optim import SGD\n\n\nclass Dies(SGD):\n"
                      "    def update(self, w, g, state):\n        os._exit(7)\n")
    out = tmp_path / "out"
    argv = [*GIVEN, "--optimizers", f"sgd,{plugin}:Dies", "--lr", "sgd=0.1,Dies=0.1", "--jobs", "2", "--no-plots"]
    assert cli.main([*argv, "--out", str(out)]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("minigrad:")]
    assert len(err) == 1 and err[0].startswith("minigrad: error: a worker failed (TerminatedWorkerError: ")
    assert err[0].endswith("rerun the same command with --resume (--jobs 1 runs them in this process)")
    assert (out / "run.json").exists()  # the run can be resumed


def test_every_picture_that_cannot_be_written_is_said(tmp_path, capsys):
    """Two pictures lost printed one error and "(and 1 more)": the other's path and cause were not said."""
    out = tmp_path / "out"
    assert cli.main([*SMALL, "--out", str(out)]) == 0
    for name in ("profile.png", "lr_sensitivity.png"):
        (out / name).unlink()
        (out / name).mkdir()
    capsys.readouterr()
    assert cli.main([*SMALL, "--out", str(out), "--resume"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("minigrad: error:")]
    assert [line.split(": ")[2] for line in err] == [f"cannot write {out / 'profile.png'}",
                                                    f"cannot write {out / 'lr_sensitivity.png'}"]


# ---------------------------------------------------------------------------
# Review of the lab (helper 31): results of two rates, damaged journals, the last step, the code that ran
# ---------------------------------------------------------------------------

ENV_FAIL = '''
import os
from minigrad.optim import Optimizer


class EnvFail(Optimizer):
    """Fails above the rate in the environment variable MAXLR: a cause outside the plug-in's files."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)

    def update(self, w, g, state):
        if self.lr > float(os.environ.get("MAXLR", "inf")):
            raise RuntimeError("lr too big here")
        w -= self.lr * g
'''


def test_a_resume_that_tunes_another_rate_reports_only_that_rate(tmp_path, monkeypatch):
    """A failed tuning run trained again picked another rate: results.csv held every seed at both rates."""
    (tmp_path / "envfail.py").write_text(ENV_FAIL)
    out = tmp_path / "out"
    args = ["--datasets", "iris", "--optimizers", f"sgd,{tmp_path / 'envfail.py'}:EnvFail", "--lr", "tune",
            "--lr-grid", "0.1:1:2", "--tune-seeds", "1", "--epochs", "3", "--seeds", "2", "--hidden", "8",
            "--eval-points", "4", "--no-plots", "--out", str(out)]
    monkeypatch.setenv("MAXLR", "0.5")  # the rate 1 fails: 0.1 is chosen
    assert cli.main(args) == 1
    first = {(r["seed"], r["lr"]) for r in read_csv(out / "results.csv") if r["optimizer"] == "EnvFail"}
    assert first == {("0", "0.1"), ("1", "0.1")}
    monkeypatch.delenv("MAXLR")  # fixed: the resume trains the failed tuning run again, and 1 wins
    assert cli.main([*args, "--resume"]) == 0
    rows = [r for r in read_csv(out / "results.csv") if r["optimizer"] == "EnvFail"]
    assert {(r["seed"], r["lr"]) for r in rows} == {("0", "1.0"), ("1", "1.0")}
    summary = [r for r in read_csv(out / "summary.csv") if r["optimizer"] == "EnvFail"]
    assert [r["lr"] for r in summary] == ["1.0"]


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


def test_a_damaged_line_in_the_journal_loses_only_itself(tmp_path, capsys):
    """One bad line in the middle of runs.jsonl made the resume drop, silently, every good line after it."""
    out = tmp_path / "out"
    assert cli.main([*GIVEN, "--lr", "sgd=0.5,adam=0.01", "--no-plots", "--out", str(out)]) == 0
    before = read_csv(out / "results.csv")
    lines = journal_lines(out)
    assert len(lines) == 4
    lines[1] = b'{"kind": "rep\n'  # torn in the middle: a bad sector, or an edit by hand
    lines[2] = b"null\n"  # JSON, but no record
    (out / "runs.jsonl").write_bytes(b"".join(lines))
    capsys.readouterr()
    assert cli.main([*GIVEN, "--lr", "sgd=0.5,adam=0.01", "--no-plots", "--out", str(out), "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {out / 'runs.jsonl'}: 2 lines (2, 3) hold no record" in err
    assert "skipped and left in the file" in err
    after = journal_lines(out)
    assert after[:4] == lines and len(after) == 6  # nothing cut; the two trainings are journalled again
    assert without_time(read_csv(out / "results.csv")) == without_time(before)


def test_a_changed_bit_in_a_journal_record_is_a_damaged_line_and_its_training_runs_again(tmp_path, capsys):
    """A flipped bit in a key was a KeyError traceback on every resume; in a status or a number, a wrong summary."""
    out = tmp_path / "out"
    assert cli.main([*GIVEN, "--lr", "sgd=0.5,adam=0.01", "--no-plots", "--out", str(out)]) == 0
    before = read_csv(out / "results.csv")
    lines = journal_lines(out)
    assert all(json.loads(line)["crc32"] == zlib.crc32(line[: line.rindex(b', "crc32"')] + b"}") for line in lines)
    flips = [(0, b'"step"', 4), (1, b'"ok"', 2), (2, b'"train_loss": [', 15)]  # a key, a status, a loss's digit
    for number, text, offset in flips:
        i = lines[number].index(text) + offset
        lines[number] = lines[number][:i] + bytes([lines[number][i] ^ 1]) + lines[number][i + 1:]
    (out / "runs.jsonl").write_bytes(b"".join(lines))
    capsys.readouterr()
    assert cli.main([*GIVEN, "--lr", "sgd=0.5,adam=0.01", "--no-plots", "--out", str(out), "--resume"]) == 0
    assert f"warning: {out / 'runs.jsonl'}: 3 lines (1, 2, 3) hold no record" in capsys.readouterr().err
    assert without_time(read_csv(out / "results.csv")) == without_time(before)


def test_a_journal_line_without_a_crc_is_checked_field_by_field():
    """Lines of runs written before records carried a CRC: read if every field the lab reads is of its kind."""
    good = {"kind": "tune", "dataset": "iris", "optimizer": "sgd", "seed": 10000, "lr": 0.1, "status": "ok",
            "message": "", "step": [5], "eval_loss": [0.5], "seconds": [0.01], "score": 0.6, "final_train_loss": 0.4}
    assert lab._parsed_record(json.dumps(good).encode()) == good
    for bad in [{"status": "nk"}, {"seed": True}, {"seed": 1.5}, {"lr": "0.1"}, {"kind": "repor"}, {"score": None},
                {"step": [5, 6]}, {"eval_loss": ["0.5"]}, {"message": None}, {"weights_moved": 1}]:
        assert lab._parsed_record(json.dumps({**good, **bad}).encode()) is None, bad
    missing = dict(good)
    del missing["final_train_loss"]
    assert lab._parsed_record(json.dumps(missing).encode()) is None
    with_crc = json.dumps(good)
    line = f'{with_crc[:-1]}, "crc32": {zlib.crc32(with_crc.encode()) ^ 1}}}'.encode()  # a CRC one bit off
    assert lab._parsed_record(line) is None


def test_a_run_json_that_is_not_a_mapping_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main([*GIVEN, "--lr", "sgd=0.5,adam=0.01", "--no-plots", "--out", str(out)]) == 0
    (out / "run.json").write_text("[]\n")
    capsys.readouterr()
    assert cli.main([*GIVEN, "--lr", "sgd=0.5,adam=0.01", "--no-plots", "--out", str(out), "--resume"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"minigrad: error: --resume: {out / 'run.json'} holds a JSON list, not a run's settings; start the run "
        "again with --overwrite")


def test_a_run_that_diverges_on_its_last_step_is_not_ok(tmp_path):
    """sgd at 1e30 for one step (one batch of all of iris) was "ok", with a nan loss, and tied the baseline."""
    result = lab.compare(["iris"], ["sgd", "adam"], {"sgd": 1e30, "adam": 0.01}, epochs=1, batch_size=1000, seeds=2,
                         hidden=(8,), eval_points=4, out_dir=None, target=0.5)
    status = {(r["optimizer"], r["seed"]): r["status"] for r in result.records}
    assert status == {("sgd", 0): "diverged", ("sgd", 1): "diverged", ("adam", 0): "ok", ("adam", 1): "ok"}
    X, X_eval, y, y_eval = lab._report_split("iris")
    run = lab.train_run(X, y, X_eval, y_eval, task="classification", seed=0, hidden=(8,), epochs=1, batch_size=1000,
                        eval_points=4, make_optimizer=lambda p: optim.SGD(p, lr=1e30))
    assert run["status"] == "diverged" and run["message"] == "the loss became non-finite at step 1"
    assert run["step"][-1] == 1 and not math.isfinite(run["train_loss"][-1])


def test_a_record_keeps_the_digest_of_the_code_that_ran(tmp_path):
    """The journal labelled a run with the plug-in's digest when compare started, not with the code it ran."""
    plugin = tmp_path / "envfail.py"
    plugin.write_text(ENV_FAIL)
    spec = lab.resolve_optimizer(f"{plugin}:EnvFail")
    planned = lab._code_digest(spec.source)
    plugin.write_text(ENV_FAIL + "\nSCALE = 2\n")  # edited after the run was planned, before it trained
    task = lab._Task("report", "iris", spec.name, spec.source, 0.1, 0, 1, 32, (8,), 2, code=planned)
    record = lab._run_task(task)
    assert record["status"] == "ok"
    assert record["code"] == lab._code_digest(spec.source) != planned


def test_an_interrupted_run_removes_the_summary_and_pictures_of_the_run_before(tmp_path):
    """results.csv was rewritten from the runs of this resume; summary.csv and the PNGs of the last one stayed."""
    for name in ("summary.csv", "iris.png", "profile.png", "lr_sensitivity.png", "notes.txt"):
        (tmp_path / name).write_text("old")
    result = lab.Comparison({"datasets": ["iris"]}, "given", "")
    result.interrupted = signal.SIGINT
    lab._write_outputs(result, str(tmp_path), None)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "results.csv"]


def scale_of_plugin(folder, module="helper"):
    """Write ``folder/opt.py``, an SGD scaled by ``from <module> import SCALE``; load it; return the SCALE it got."""
    import numpy as np

    from minigrad import nn

    (folder / "opt.py").write_text(
        f"from {module} import SCALE\nfrom minigrad.optim import SGD\n\n\n"
        "class Opt(SGD):\n    def update(self, w, g, state):\n        w -= self.lr * SCALE * g\n")
    optimizer = lab.resolve_optimizer(f"{folder / 'opt.py'}:Opt").make([nn.Parameter(np.zeros(2))], 0.1)
    return sys.modules[type(optimizer).__module__].SCALE


def test_plugins_in_two_folders_each_import_their_own_helper(tmp_path):
    """pa/helper.py and pb/helper.py: the second plug-in got the first's helper (sys.modules['helper']), silently."""
    scales = []
    for folder, scale in (("pa", "1.0"), ("pb", "0.0")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "helper.py").write_text(f"SCALE = {scale}\n")
        scales.append(scale_of_plugin(tmp_path / folder))
    assert scales == [1.0, 0.0]
    sys.modules.pop("helper", None)


def test_a_plugin_folder_does_not_shadow_modules_already_imported_and_packages_are_its_own(tmp_path):
    """A scratch copy.py beside a plug-in replaced the standard library's copy; helper packages were shared."""
    import copy

    (tmp_path / "pc").mkdir()
    (tmp_path / "pc" / "copy.py").write_text("raise RuntimeError('the scratch copy.py ran')\n")
    (tmp_path / "pc" / "opt.py").write_text(
        "import copy\nfrom minigrad.optim import SGD\n\n\nclass Opt(SGD):\n"
        "    def update(self, w, g, state):\n        w -= copy.deepcopy(self.lr) * g\n")
    lab.resolve_optimizer(f"{tmp_path / 'pc' / 'opt.py'}:Opt")
    assert sys.modules["copy"] is copy
    scales = []
    for folder, scale in (("qa", "1.0"), ("qb", "0.0")):
        (tmp_path / folder / "common").mkdir(parents=True)
        (tmp_path / folder / "common" / "__init__.py").write_text(f"SCALE = {scale}\n")
        scales.append(scale_of_plugin(tmp_path / folder, "common"))
    assert scales == [1.0, 0.0]
    sys.modules.pop("common", None)


def test_the_resume_command_runs_from_any_folder_with_the_interpreter_that_ran(tmp_path, monkeypatch):
    """It said python (the system one, without minigrad, when the venv was not active) and kept relative paths."""
    monkeypatch.chdir(tmp_path)
    argv = ["--optimizers", "sgd,plug/my.py:Mine(scale=2),adam(betas=(0.9, 0.99))", "--out", "results", "--overwrite"]
    command = shlex.split(cli._resume_command(argv))
    assert command[1:3] == ["-m", "minigrad"] and command[-1] == "--resume" and "--overwrite" not in command
    assert command[command.index("--optimizers") + 1] == (
        f"sgd,{tmp_path / 'plug' / 'my.py'}:Mine(scale=2),adam(betas=(0.9, 0.99))")
    assert command[command.index("--out") + 1] == str(tmp_path / "results")
    assert shlex.split(cli._resume_command(["--out=results"]))[3] == f"--out={tmp_path / 'results'}"
    monkeypatch.setattr(_extras.shutil, "which", lambda name: "/somewhere/else/python")
    assert shlex.split(cli._resume_command([]))[0] == sys.executable
    monkeypatch.setattr(_extras.shutil, "which", lambda name: sys.executable)
    assert shlex.split(cli._resume_command([]))[0] == "python"


def test_a_plugin_imports_its_own_helper_over_one_imported_from_the_working_folder(tmp_path, monkeypatch):
    """A helper.py imported before from the working folder was kept: the plug-in got SCALE 100, not its own 1."""
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "helper.py").write_text("SCALE = 100.0\n")
    monkeypatch.syspath_prepend(str(tmp_path / "cwd"))
    import helper  # noqa: F401  (imported first, from elsewhere)

    (tmp_path / "plug").mkdir()
    (tmp_path / "plug" / "helper.py").write_text("SCALE = 1.0\n")
    assert scale_of_plugin(tmp_path / "plug") == 1.0
    assert sys.modules["helper"].SCALE == 100.0  # put back as it was
    sys.modules.pop("helper", None)


def test_two_plugins_of_one_folder_share_its_helper_package(tmp_path):
    """A package beside two plug-ins was imported again for the second (its registry split in two)."""
    import numpy as np

    from minigrad import nn

    (tmp_path / "plug" / "common").mkdir(parents=True)
    (tmp_path / "plug" / "common" / "__init__.py").write_text("REGISTRY = []\n")
    for name in ("a", "b"):
        (tmp_path / "plug" / f"{name}.py").write_text(
            f"import common\nfrom minigrad.optim import SGD\n\ncommon.REGISTRY.append({name!r})\n\n\n"
            "class Opt(SGD):\n    pass\n")
    modules = [sys.modules[type(lab.resolve_optimizer(f"{tmp_path / 'plug' / n}.py:Opt").make(
        [nn.Parameter(np.zeros(2))], 0.1)).__module__] for n in ("a", "b")]
    assert modules[0].common is modules[1].common and modules[0].common.REGISTRY == ["a", "b"]
    sys.modules.pop("common", None)


def test_the_resume_command_names_the_default_folder_absolutely(tmp_path, monkeypatch):
    """Without --out the command resumed the minigrad-results of whatever folder it was run from."""
    monkeypatch.chdir(tmp_path)
    command = shlex.split(cli._resume_command(["--epochs", "1"]))
    assert command[3:] == ["--epochs", "1", "--out", str(tmp_path / "minigrad-results"), "--resume"]
    odd = shlex.split(cli._resume_command(["--optimizers", "a:b/opt.py:Opt", "--out", "r"]))
    assert odd[4] == f"{tmp_path / 'a:b' / 'opt.py'}:Opt"  # (split at the last colon, as the lab reads it)


def test_resume_sees_an_edited_module_of_a_helper_package_beside_the_plugin(tmp_path, capsys):
    """Only the .py files beside a plug-in were hashed: an edit in plug/scales/core.py was not seen on resume."""
    folder = tmp_path / "plug"
    (folder / "pkg_scales" / "inner").mkdir(parents=True)
    (folder / "pkg_scales" / "__init__.py").write_text("from .inner.core import SCALE\n")
    (folder / "pkg_scales" / "inner" / "__init__.py").write_text("")
    (folder / "pkg_scales" / "inner" / "core.py").write_text("SCALE = 1.0\n")
    (folder / "scaled.py").write_text(
        "from pkg_scales import SCALE\nfrom minigrad.optim import SGD\n\n\nclass Scaled(SGD):\n"
        "    def __init__(self, params, lr=0.1):\n        super().__init__(params, lr=lr * SCALE)\n")
    out = tmp_path / "out"
    args = [*GIVEN, "--optimizers", f"sgd,{folder / 'scaled.py'}:Scaled", "--lr", "sgd=0.1,Scaled=0.1",
            "--no-plots", "--out", str(out)]
    assert cli.main(args) == 0
    before = [r["train_loss"] for r in read_csv(out / "results.csv") if r["optimizer"] == "Scaled"]
    (folder / "pkg_scales" / "inner" / "core.py").write_text("SCALE = 10.0\n")
    capsys.readouterr()
    assert cli.main([*args, "--resume"]) == 0
    assert "the code of Scaled changed since 2 runs of it finished" in capsys.readouterr().err
    after = [r["train_loss"] for r in read_csv(out / "results.csv") if r["optimizer"] == "Scaled"]
    assert after != before  # trained again, with the package's module as it is now (imported afresh here too)
    assert sys.modules["pkg_scales"].SCALE == 10.0
    for name in ("pkg_scales", "pkg_scales.inner", "pkg_scales.inner.core"):
        sys.modules.pop(name, None)


def test_the_code_digest_reads_packages_beside_a_plugin_but_not_other_folders(tmp_path):
    (tmp_path / "opt.py").write_text("from minigrad.optim import SGD\n\n\nclass Opt(SGD):\n    pass\n")
    (tmp_path / "common" / "sub").mkdir(parents=True)
    (tmp_path / "common" / "__init__.py").write_text("")
    (tmp_path / "common" / "sub" / "deep.py").write_text("X = 1\n")  # (a namespace folder inside a package)
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "site.py").write_text("X = 1\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "make.py").write_text("X = 1\n")
    assert lab._code_files(str(tmp_path)) == [
        os.path.join("common", "__init__.py"), os.path.join("common", "sub", "deep.py"), "opt.py"]
    spec = f"{tmp_path / 'opt.py'}:Opt"
    first = lab._code_digest(spec)
    (tmp_path / "data" / "make.py").write_text("X = 2\n")
    (tmp_path / ".venv" / "lib" / "site.py").write_text("X = 2\n")
    assert lab._code_digest(spec) == first
    (tmp_path / "common" / "sub" / "deep.py").write_text("X = 2\n")
    assert lab._code_digest(spec) != first


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


def test_an_optimizer_whose_every_tuning_trial_failed_is_left_out_not_counted_as_missing(tmp_path, capsys):
    """Its problems counted as misses: the verdict said 'reaches the target in infx sgd's steps ... misses 4 of 4'
    and summary.csv said inf, for an optimizer that never ran (helper 42)."""
    (tmp_path / "boom.py").write_text(
        "from minigrad.optim import SGD\n\n\nclass Boom(SGD):\n    def update(self, w, g, state):\n"
        "        raise RuntimeError('boom')\n")
    out = tmp_path / "out"
    args = [*SMALL, "--optimizers", f"sgd,{tmp_path / 'boom.py'}:Boom", "--no-plots", "--out", str(out)]
    assert cli.main(args) == 1
    printed = capsys.readouterr().out
    assert "Boom: no problem to compare with sgd on" in printed and "infx" not in printed
    (row,) = [r for r in read_csv(out / "summary.csv") if r["optimizer"] == "Boom"]
    assert row["lr"] == row["steps_to_target_median"] == row["steps_to_target_ci_low"] == "nan"


def test_resume_of_a_folder_that_does_not_exist_is_refused_and_makes_nothing(tmp_path, capsys):
    """The refusal left behind a new folder holding only .lock (helper 42)."""
    assert cli.main([*GIVEN, "--lr", "sgd=0.1,adam=0.01", "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "does not exist, so it holds no run to resume" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_an_edit_beside_a_plugin_imports_its_helpers_afresh_but_never_an_installed_module(tmp_path, monkeypatch):
    """Every module of the folder's packages was dropped: with a plug-in at a checkout's root, minigrad itself
    was imported again, and the plug-in's class was no longer a minigrad Optimizer (h44); and an unchanged
    helper that took a name from a changed one kept the old value (h47)."""
    folder = tmp_path / "plug"
    (folder / "installedpkg").mkdir(parents=True)
    (folder / "installedpkg" / "__init__.py").write_text("X = 1\n")
    (folder / "base_helper.py").write_text("B = 1\n")
    (folder / "mid_helper.py").write_text("from base_helper import B\n")
    (folder / "opt.py").write_text(
        "import installedpkg\nfrom mid_helper import B\nfrom minigrad.optim import SGD\n\n\n"
        "class Opt(SGD):\n    SCALE = B\n")
    roots = lab._installed_roots()
    monkeypatch.setattr(lab, "_installed_roots", lambda: (*roots, str(folder / "installedpkg") + os.sep))
    spec = f"{folder / 'opt.py'}:Opt"
    first = lab._load_plugin_class(spec)
    installed = sys.modules["installedpkg"]
    (folder / "base_helper.py").write_text("B = 2\n")
    (folder / "installedpkg" / "__init__.py").write_text("X = 2\n")
    second = lab._load_plugin_class(spec)
    assert first.SCALE == 1 and second.SCALE == 2 and issubclass(second, optim.Optimizer)
    assert sys.modules["installedpkg"] is installed
    for name in ("base_helper", "mid_helper", "installedpkg"):
        sys.modules.pop(name, None)


def test_a_run_that_diverged_after_reaching_the_target_counts_the_step_it_reached_it_at(tmp_path):
    """It counted as never, against the definition (the first evaluated step at or below the target; h46)."""
    (tmp_path / "late.py").write_text(
        "import numpy as np\nfrom minigrad.optim import SGD\n\n\nclass Late(SGD):\n"
        "    def update(self, w, g, state):\n        super().update(w, g, state)\n"
        "        if state['step'] > 6:\n            w *= 1e30\n")  # (weights that overflow: divergence)
    out = tmp_path / "out"
    args = ["--datasets", "iris", "--optimizers", f"sgd,{tmp_path / 'late.py'}:Late", "--epochs", "2", "--seeds", "1",
            "--hidden", "8", "--eval-points", "10", "--lr", "sgd=0.5,Late=0.5", "--target", "1.0", "--no-plots",
            "--out", str(out)]
    assert cli.main(args) == 0
    rows = {r["optimizer"]: r for r in read_csv(out / "summary.csv")}
    assert rows["Late"]["diverged_runs"] == "1"
    reached = [r for r in read_csv(out / "results.csv") if r["optimizer"] == "Late" and float(r["train_loss"]) <= 1.0]
    assert float(rows["Late"]["steps_to_target_median"]) == float(reached[0]["step"])  # not inf
    assert rows["Late"]["steps_to_target_median"] == rows["sgd"]["steps_to_target_median"]  # the same steps till then
    last = [r for r in read_csv(out / "results.csv") if r["optimizer"] == "Late"][-1]
    assert last["train_loss"] == last["test_metric"] == "nan"  # (a diverged model's argmax over NaNs is no accuracy)


def _report(seed, optimizer, status, losses):
    return {"dataset": "iris", "optimizer": optimizer, "seed": seed, "status": status, "lr": 0.1,
            "step": list(range(0, 10 * len(losses), 10)), "train_loss": losses, "eval_metric": [0.5] * len(losses),
            "seconds": [0.0] * len(losses), "kind": "report"}


def test_tuning_that_failed_on_one_tuning_seed_leaves_the_problems_out_and_failed_runs_leave_the_profile():
    """One tuning seed raised, one ran: no rate had a finite mean, and the problems counted as misses; the
    profile counted a failed run as a miss where the table and the verdict left it out (h46)."""
    specs = [lab.resolve_optimizer("sgd"), lab.resolve_optimizer("adam")]
    result = lab.Comparison(settings={"targets": {"iris": 0.5}, "seeds": 2, "grid": [0.1], "datasets": ["iris"]},
                            procedure="tuned")
    result.records = [_report(0, "sgd", "ok", [1.0, 0.4]), _report(1, "sgd", "ok", [1.0, 0.45])]
    result.rates = {("iris", "sgd"): 0.1}
    result.tuning = [{"dataset": "iris", "optimizer": "adam", "lr": 0.1, "tune_seed": s, "score": math.inf,
                      "status": status, "final_train_loss": math.nan, "message": ""}
                     for s, status in ((10000, "error"), (10001, "ok"))]
    lab._summarise(result, specs, ["iris"])
    adam = next(s for s in result.summary if s["optimizer"] == "adam")
    assert math.isnan(adam["steps_to_target_median"])
    assert result.verdict == ["adam: no problem to compare with sgd on (a run failed, status error, on every one: "
                              "2 of its, 0 of sgd's)"]
    assert sorted(result.settings["failed_problems"]["adam"]) == [("iris", 0), ("iris", 1)]


def test_a_failed_tuning_trial_at_a_rate_not_chosen_leaves_nothing_out():
    """One trial raised at the higher rate, the lower one won: every seed was thrown out of the verdict (h47)."""
    specs = [lab.resolve_optimizer("sgd"), lab.resolve_optimizer("adam")]
    result = lab.Comparison(settings={"targets": {"iris": 0.5}, "seeds": 2, "grid": [0.1, 1.0], "datasets": ["iris"]},
                            procedure="tuned")
    result.records = [_report(s, n, "ok", [1.0, 0.4]) for s in (0, 1) for n in ("sgd", "adam")]
    result.rates = {("iris", "sgd"): 0.1, ("iris", "adam"): 0.1}
    result.tuning = [{"dataset": "iris", "optimizer": "adam", "lr": lr, "tune_seed": 10000, "score": score,
                      "status": status, "final_train_loss": math.nan, "message": ""}
                     for lr, score, status in ((0.1, 0.5, "ok"), (1.0, math.inf, "error"))]
    lab._summarise(result, specs, ["iris"])
    assert result.settings["failed_problems"]["adam"] == []
    assert result.verdict[0].startswith("adam reaches the target in 1.00x sgd's steps (median over 2 problems")


def test_the_profile_of_problems_that_all_had_a_failed_run_is_empty_and_a_zero_best_stretches_no_axis():
    """It fell back to showing every problem, drawing an optimizer that never ran as missing all (h47)."""
    problems = {"sgd": {("iris", 0): 5.0, ("iris", 1): 0.0, ("wine", 0): 10.0},
                "adam": {("iris", 0): math.inf, ("iris", 1): 40.0, ("wine", 0): 300.0}}
    keys, table, tau_max = lab._profile_problems(problems, {"adam": [("iris", 0), ("iris", 1), ("wine", 0)]})
    assert keys == [] and tau_max == 10.0
    assert lab._plot_profile(problems, {"adam": [("iris", 0), ("iris", 1), ("wine", 0)]}).startswith(b"\x89PNG")
    keys, table, tau_max = lab._profile_problems(problems, {"sgd": [("iris", 0)]})
    assert keys == [("iris", 1), ("wine", 0)] and table["adam"] == [40.0, 300.0]
    assert tau_max == pytest.approx(30 * 1.05)  # wine's 300/10; iris 1's 40/0 is inf, not a long axis
