"""The command line: ``minigrad [compare] [options]`` (also ``python -m minigrad``).

``compare`` (the default subcommand) trains an MLP on each dataset with each
optimizer and seed, prints a table and writes results.csv, summary.csv and a
plot per dataset to ``--out``. Bad input prints one line to stderr and exits
with status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence

from minigrad import data as mgdata
from minigrad import lab

__all__ = ["main", "build_parser", "parse_lrs", "parse_ints"]


class UsageError(Exception):
    """Bad command-line input; main() prints it as one line and returns 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing its usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _names(text: str, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not text.strip() or any(not n for n in names):
        raise UsageError(f"--{what}: expected a comma-separated list of names, got {text!r}")
    return names


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
    """Parse ``--lr``: ``"tune"`` or per-optimizer rates ``"sgd=0.1,momentum=0.5"``."""
    if text.strip() == "tune":
        return "tune"
    rates: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.strip().rpartition("=")
        try:
            lr = float(value)
        except ValueError:
            lr = math.nan
        if not sep or not name or not (0 < lr < math.inf):
            raise UsageError(
                f"--lr: expected 'tune' or name=rate pairs like sgd=0.1,adam=0.01 with positive rates, got {text!r}"
            )
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


def build_parser() -> argparse.ArgumentParser:
    """The parser for ``minigrad`` and its ``compare`` subcommand."""
    d = lab.DEFAULTS
    parser = _Parser(
        prog="minigrad",
        description="minigrad's convergence lab: compare optimizers on scikit-learn's toy datasets.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{compare}")
    c = sub.add_parser(
        "compare",
        help="train an MLP per dataset, optimizer and seed; print a table, write CSVs and plots (the default)",
        description="Train an MLP per dataset, optimizer and seed; print a table, write CSVs and plots.",
    )
    c.add_argument(
        "--datasets", default=",".join(d["datasets"]),
        help=f"comma list from {', '.join(mgdata.DATASETS)} (default: the classification sets)",
    )
    c.add_argument(
        "--optimizers", default=",".join(d["optimizers"]),
        help="comma list of sgd, momentum, nesterov, adam, path/to/file.py:ClassName, package.module:ClassName "
        "(default: %(default)s)",
    )
    c.add_argument(
        "--lr", default=None,
        help="'tune' (pick each rate on a validation split), or overrides like sgd=0.1,momentum=0.5 "
        f"(default: {', '.join(f'{k}={v:g}' for k, v in lab.DEFAULT_LRS.items())}; plug-ins are tuned)",
    )
    c.add_argument("--epochs", type=_int(0), default=d["epochs"], help="passes over the data (default: %(default)s)")
    c.add_argument("--batch-size", type=_int(1), default=d["batch_size"], help="(default: %(default)s)")
    c.add_argument("--seeds", type=_int(1), default=d["seeds"], help="how many seeds, 0..N-1 (default: %(default)s)")
    c.add_argument(
        "--hidden", default=",".join(map(str, d["hidden"])),
        help="hidden layer sizes, e.g. 64,64; 'none' for a linear model (default: %(default)s)",
    )
    c.add_argument(
        "--target", type=_positive_float, default=d["target"],
        help="the train loss that counts as converged (default: %(default)s)",
    )
    c.add_argument("--out", default=d["out_dir"], help="output directory (default: %(default)s)")
    return parser


def _compare(args: argparse.Namespace) -> int:
    result = lab.compare(
        _names(args.datasets, "datasets"),
        _names(args.optimizers, "optimizers"),
        None if args.lr is None else parse_lrs(args.lr),
        epochs=args.epochs,
        batch_size=args.batch_size,
        seeds=args.seeds,
        hidden=parse_ints(args.hidden, "hidden"),
        target=args.target,
        out_dir=args.out,
        progress=sys.stderr.isatty(),
    )
    print(lab.format_table(result))
    tuned = [r for r in result.tuning if r["dataset"] == "(mean)" and r["chosen"]]
    if tuned:
        best = ", ".join(f"{r['optimizer']}={r['lr']:.3g}" for r in tuned)
        print(f"Best rate per optimizer over these datasets (lowest mean tuning score): {best}")
    print(f"Wrote {len(result.files)} files to {os.path.abspath(args.out)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); return the exit status.

    With no subcommand, ``compare`` runs. Bad input prints
    ``minigrad: error: ...`` on one line to stderr and returns 2; a missing
    optional dependency returns 1.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("compare", "-h", "--help"):
        argv.insert(0, "compare")
    try:
        args = build_parser().parse_args(argv)
        return _compare(args)
    except (UsageError, lab.LabError) as e:
        print(f"minigrad: error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"minigrad: error: {e} (the lab needs: pip install 'minigrad[lab]')", file=sys.stderr)
        return 1
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        print("minigrad: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
