"""The command line: ``minigrad [compare|defaults|paths] [options]`` (also ``python -m minigrad``).

``compare`` (the default subcommand) runs :func:`minigrad.lab.compare`: it
trains an MLP per dataset, optimizer and seed, prints a table with a verdict
against SGD, and writes CSVs and plots to ``--out``. ``defaults`` re-tunes
the built-in optimizers and prints the tables ``DEFAULT_LRS`` and
``TARGETS`` of :mod:`minigrad.lab`. ``paths`` draws optimizers' paths on 2-D
test functions (:mod:`minigrad.paths`, which defines its options).

Exit status: 0 done; 2 bad input (one line on stderr: an unknown name, a
busy or non-empty ``--out``, settings that differ from the run being
resumed); 1 a failed training (status ``error``; the others are kept), a
file that cannot be written, a worker process that died, or a missing
optional package; 128 + the
signal's number after SIGINT (130), SIGHUP (129) or SIGTERM (143), with the
command that resumes the run.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shlex
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from minigrad import _extras, lab
from minigrad import data as mgdata

__all__ = ["main", "run", "build_parser", "parse_lrs", "parse_ints", "split_list"]


class UsageError(Exception):
    """Bad command-line input; main() prints it as one line and returns 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing its usage and exiting, and takes options whole.

    (No prefixes such as ``--overwr``: the resume command a stopped run prints is its own command with
    ``--overwrite`` taken out and ``--resume`` added, which a prefix would defeat.)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        if message.startswith("unrecognized arguments:") and self.prog.split()[-1] != "paths":
            paths_only = [a for a in message.split(":", 1)[1].split() if a.split("=")[0] in _PATHS_OPTIONS]
            if paths_only:
                message += f" ({paths_only[0].split('=')[0]} is an option of the paths command: python -m minigrad " \
                           "paths ...)"
        elif message.startswith("argument --start: expected one argument"):
            message += " (a negative X needs the = form: --start=-1,2)"
        raise UsageError(message)


#: The options that only ``python -m minigrad paths`` has, for the hint when they are given to compare.
_PATHS_OPTIONS = ("--function", "--steps", "--start", "--noise", "--tol", "--gif")


def split_list(text: str, what: str) -> list[str]:
    """Split ``"sgd,adam(betas=(0.9, 0.99))"`` at the commas outside parentheses and brackets."""
    items, depth, current = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise UsageError(f"--{what}: unbalanced parentheses in {text!r}")
        if ch == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += ch
    if depth != 0:
        raise UsageError(f"--{what}: unbalanced parentheses in {text!r}")
    items.append(current.strip())
    if not text.strip() or any(not n for n in items):
        raise UsageError(f"--{what}: expected a comma-separated list of names, got {text!r}")
    return items


def parse_ints(text: str, what: str) -> tuple[int, ...]:
    """Parse ``"64,64"`` into (64, 64); an empty string or "none" means no hidden layer."""
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--{what}: expected comma-separated positive integers like 64,64, got {text!r}") from None
    if any(v < 1 for v in values):
        raise UsageError(f"--{what}: sizes must be positive, got {text!r}")
    return values


def parse_lrs(text: str) -> str | dict[str, float]:
    """Parse ``--lr``: ``"tune"`` or a rate for every optimizer, ``"sgd=0.1,momentum(beta=0.5)=0.3"``."""
    if text.strip() == "tune":
        return "tune"
    rates: dict[str, float] = {}
    for item in split_list(text, "lr"):
        name, sep, value = item.rpartition("=")
        try:
            lr = float(value)
        except ValueError:
            lr = math.nan
        if not sep or not name.strip() or not (0 < lr < math.inf):
            raise UsageError(
                f"--lr: expected 'tune' or name=rate pairs like sgd=0.1,adam=0.01 with positive rates, got {text!r}"
            )
        name = name.strip()
        if name in rates:
            raise UsageError(f"--lr: {name!r} is given twice")
        rates[name] = lr
    return rates


def _int(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _grid(text: str) -> tuple[float, ...]:
    try:
        return lab.parse_grid(text)
    except lab.LabError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--lr-grid: ")) from None


def build_parser() -> argparse.ArgumentParser:
    """The parser for ``minigrad`` and its ``compare`` and ``defaults`` subcommands."""
    d = lab.DEFAULTS
    parser = _Parser(
        prog="minigrad",
        description="minigrad's convergence lab: compare optimizers on scikit-learn's toy datasets.",
        epilog="compare is the default subcommand; its options follow.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{compare,defaults,paths}")
    c = sub.add_parser(
        "compare",
        help="train an MLP per dataset, optimizer and seed; print a table and verdict, write CSVs and plots "
        "(the default)",
        description="Train an MLP per dataset, optimizer and seed; print a table and a verdict against SGD, "
        "write CSVs and plots. Every optimizer gets its rate by one procedure: the documented per-dataset "
        "defaults when they apply, else tuned in the run.",
    )
    c.add_argument(
        "--datasets", default=",".join(d["datasets"]),
        help=f"comma list from {', '.join(mgdata.DATASETS)} (default: the classification sets)",
    )
    c.add_argument(
        "--optimizers", default=",".join(d["optimizers"]),
        help=f"comma list of {', '.join(lab.BUILTIN_OPTIMIZERS)}, path/to/file.py:ClassName or "
        "package.module:ClassName, each optionally with literal keyword arguments, e.g. 'momentum(beta=0.95)' "
        "or 'adam(betas=(0.9,0.99))' (default: %(default)s)",
    )
    c.add_argument(
        "--lr", default=None,
        help="'tune' (tune every optimizer in this run), or a rate for every optimizer like "
        "sgd=0.1,adam=0.01 (default: the documented per-dataset defaults when they apply, else tune)",
    )
    c.add_argument("--lr-grid", type=_grid, default=None, metavar="LOW:HIGH:N",
                   help=f"the tuning grid, N log-spaced rates from LOW to HIGH inclusive "
                   f"(default: {lab.DEFAULT_GRID_TEXT})")
    c.add_argument("--epochs", type=_int(1), default=d["epochs"], help="passes over the data (default: %(default)s)")
    c.add_argument("--batch-size", type=_int(1), default=d["batch_size"], help="(default: %(default)s)")
    c.add_argument("--seeds", type=_int(1), default=d["seeds"],
                   help="how many reported seeds, 0..N-1 (default: %(default)s)")
    c.add_argument("--tune-seeds", type=_int(1), default=None,
                   help=f"how many tuning seeds, {lab.TUNE_SEED_BASE}.. (never reported; default: {d['tune_seeds']})")
    c.add_argument(
        "--hidden", default=",".join(map(str, d["hidden"])),
        help="hidden layer sizes, e.g. 64,64; 'none' for a linear model (default: %(default)s)",
    )
    c.add_argument(
        "--target", type=_positive_float, default=None,
        help="the train loss that counts as converged, for every dataset (default: per dataset, lab.TARGETS)",
    )
    c.add_argument("--eval-points", type=_int(1), default=d["eval_points"],
                   help="evaluate the train loss about this many times per run (default: %(default)s)")
    c.add_argument("--schedule", default="none",
                   help="the learning-rate schedule for every optimizer: none, cosine, step:EVERY:GAMMA, "
                   "warmup:STEPS or onecycle (default: %(default)s; anything else tunes the rates in the run)")
    c.add_argument("--clip-grad-norm", type=_positive_float, default=None, metavar="X",
                   help="clip the gradients' joint norm to X before every step (default: no clipping)")
    c.add_argument("--out", default=d["out_dir"], help="output directory (default: %(default)s)")
    c.add_argument("--resume", action="store_true", help="continue the run stored in --out (same settings)")
    c.add_argument("--overwrite", action="store_true", help="remove the lab's files in --out and start again")
    c.add_argument("--jobs", type=_int(1), default=1, help="trainings in parallel, joblib processes (default: 1)")
    c.add_argument("--backend", choices=("loky", "dask"), default="loky",
                   help="loky: local processes; dask: a dask.distributed cluster, needs --scheduler "
                   "(install dask[distributed], or the repository's cluster extra: pip install '.[cluster]')")
    c.add_argument("--scheduler", default=None, help="the dask scheduler's address, e.g. tcp://10.0.0.5:8786")
    c.add_argument("--no-plots", action="store_true", help="write no PNGs (and do not need matplotlib)")
    c.add_argument("--debug", action="store_true", help="show tracebacks of failed trainings and lab errors")
    s = sub.add_parser(
        "defaults",
        help="re-tune the built-ins for the default settings and print DEFAULT_LRS and TARGETS for lab.py",
        description="Tune every built-in optimizer on every dataset with the default settings (as --lr tune "
        "does) and print the tables DEFAULT_LRS and TARGETS, to paste into minigrad/lab.py.",
    )
    s.add_argument("--datasets", default=",".join(mgdata.DATASETS), help="comma list (default: all of them)")
    s.add_argument("--jobs", type=_int(1), default=1, help="trainings in parallel (default: 1)")
    from minigrad import paths  # here, not at the top: paths uses this module's parsers

    p = sub.add_parser(
        "paths",
        help="draw each optimizer's path on a 2-D test function (rosenbrock, ravine, ...), fairly tuned",
        description="Run each optimizer from one start on a 2-D test function; write paths_NAME.png (and .gif, "
        ".csv) and print steps to the target. Rates are tuned on the function from one log grid, or given.",
    )
    paths.add_arguments(p)
    parser.compare_parser = c  # type: ignore[attr-defined]  # main() prints its options under the top-level help
    return parser


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _resume_command(argv: Sequence[str]) -> str:
    """The command that resumes this run, runnable from any folder with the interpreter that ran it."""
    kept: list[str] = []
    value_of = None  # the option whose value comes next
    for a in argv:
        if a == "--overwrite":
            continue
        name, eq, inline = a.partition("=")
        if value_of is not None:
            kept.append(_absolute(value_of, a))
            value_of = None
        elif name in ("--out", "--optimizers") and eq:
            kept.append(f"{name}={_absolute(name, inline)}")
        else:
            kept.append(a)
            value_of = a if a in ("--out", "--optimizers") else None
    if not any(a == "--out" or a.startswith("--out=") for a in argv):  # the default folder, relative to here
        kept += ["--out", os.path.abspath(lab.DEFAULTS["out_dir"])]
    if "--resume" not in kept:
        kept.append("--resume")
    return f"{_extras.python()} -m minigrad " + shlex.join(kept)


def _absolute(option: str, value: str) -> str:
    """``--out``'s folder, or each plug-in file of ``--optimizers``, as an absolute path (the rest as it is)."""
    if option == "--out":
        return os.path.abspath(value)
    try:
        items = split_list(value, "optimizers")
    except UsageError:
        return value
    out = []
    for item in items:
        at = item.rfind(":", 0, item.find("(") if "(" in item else len(item))  # (as the lab reads a spec)
        where = item[:at] if at > 0 else ""
        out.append(os.path.abspath(where) + item[at:] if where.endswith(".py") else item)
    return ",".join(out)


def _compare(args: argparse.Namespace, argv: Sequence[str]) -> int:
    result = lab.compare(
        split_list(args.datasets, "datasets"),
        split_list(args.optimizers, "optimizers"),
        None if args.lr is None else parse_lrs(args.lr),
        epochs=args.epochs,
        batch_size=args.batch_size,
        seeds=args.seeds,
        tune_seeds=args.tune_seeds,
        hidden=parse_ints(args.hidden, "hidden"),
        target=args.target,
        lr_grid=args.lr_grid,
        eval_points=args.eval_points,
        out_dir=args.out,
        resume=args.resume,
        overwrite=args.overwrite,
        jobs=args.jobs,
        backend=args.backend,
        scheduler=args.scheduler,
        plots=not args.no_plots,
        progress=_say,
        schedule=args.schedule,
        clip_grad_norm=args.clip_grad_norm,
    )
    if args.debug:
        for record in result.errors:
            if "traceback" in record:
                _say(record["traceback"][0].rstrip())
    if result.interrupted:
        name = signal.Signals(result.interrupted).name
        _say(f"minigrad: stopped by {name}: {result.done_runs} of {result.total_runs} runs are saved in "
             f"{os.path.abspath(args.out)}; resume with: {_resume_command(argv)}")
        return 128 + result.interrupted
    print(lab.format_table(result))
    print(f"Wrote {len(result.files)} result files to {os.path.abspath(args.out)} (beside {lab.RUN_FILE} and "
          f"{lab.JOURNAL}, the run's settings and finished trainings, which --resume reads)")
    for message in result.write_errors:  # each picture that could not be written (the tables were)
        _say(f"minigrad: error: {message}")
    if result.errors:
        first = result.errors[0]
        _say(f"minigrad: {len(result.errors)} run(s) failed with status error (the others are saved); first: "
             f"{first['optimizer']} on {first['dataset']}, seed {first['seed']}, lr {first['lr']:g}: "
             f"{first['message']}; once fixed, {_resume_command(argv)} trains the failed ones again")
    return 1 if result.errors or result.write_errors else 0


def _defaults(args: argparse.Namespace) -> int:
    rates, targets = lab.choose_defaults(split_list(args.datasets, "datasets"), jobs=args.jobs, progress=_say)
    print(format_defaults(rates, targets))
    return 0


def format_defaults(rates: Mapping[str, Mapping[str, float]], targets: Mapping[str, float]) -> str:
    """``DEFAULT_LRS`` and ``TARGETS`` as Python to paste into ``minigrad/lab.py``, laid out as that file is.

    Each dataset's rates take lines of five (fewer where a line would pass 120 characters, the lint's limit).
    """
    lines = ["DEFAULT_LRS: dict[str, dict[str, float]] = {"]
    for d, by_name in rates.items():
        lines.append(f"    {json.dumps(d)}: {{")
        row, count = "       ", 0
        for n, lr in by_name.items():
            item = f" {json.dumps(n)}: {lr!r},"
            if count == 5 or len(row) + len(item) > 120:
                lines.append(row)
                row, count = "       ", 0
            row, count = row + item, count + 1
        lines += [row, "    },"]
    lines += ["}", "", "TARGETS: dict[str, float] = {"]
    lines += [f"    {json.dumps(d)}: {t!r}," for d, t in targets.items()]
    lines.append("}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); return the exit status.

    With no subcommand, ``compare`` runs. See the module docstring for the exit statuses.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("compare", "defaults", "paths", "-h", "--help"):
        argv.insert(0, "compare")
    debug = "--debug" in argv
    if argv[0] in ("-h", "--help"):  # the subcommands, then compare's options
        parser = build_parser()
        print(parser.format_help() + "\n" + parser.compare_parser.format_help())  # type: ignore[attr-defined]
        return 0
    parsed = None
    try:
        args = parsed = build_parser().parse_args(argv)
        if args.command == "defaults":
            return _defaults(args)
        if args.command == "paths":
            from minigrad import paths

            return paths.main(args)
        return _compare(args, argv[1:])
    except (UsageError, lab.LabError) as e:
        if debug:
            raise
        print(f"minigrad: error: {e}", file=sys.stderr)
        return 2
    except (lab.LabWriteError, lab.LabRunError) as e:
        if debug:
            raise
        print(f"minigrad: error: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        if debug:
            raise
        print(f"minigrad: error: {e}", file=sys.stderr)
        return 1
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", signal.SIGINT)  # (lab.Interrupted: a second signal; else Ctrl-C)
        hint = ""
        out = getattr(parsed, "out", None)
        if argv[0] == "compare" and out and os.path.exists(os.path.join(out, lab.RUN_FILE)):
            hint = f"; every finished training is saved: resume with {_resume_command(argv[1:])}"
        print(f"minigrad: interrupted by {signal.Signals(signum).name}{hint}", file=sys.stderr)
        return 128 + signum


def run() -> None:
    """The program ``minigrad`` (and ``python -m minigrad``): :func:`main` on ``sys.argv``, exit with its status."""
    try:
        status = main()
        sys.stdout.flush()  # (a closed pipe shows here, not in the interpreter's last flush, which would print it)
    except BrokenPipeError:
        # The reader of the output went away (`minigrad ... | head`): stop quietly, as other commands do, with
        # the status a shell gives a command SIGPIPE ended. Output still buffered goes nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 128 + getattr(signal, "SIGPIPE", 13)
    # The process ends here. Its exit collects garbage over every object it holds (0.1-0.2 s after matplotlib's
    # imports); frozen, they are left out of that collection and the memory goes back with the process.
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":
    run()
