"""The convergence lab: a fair, durable comparison of optimizers on scikit-learn's toy datasets.

:func:`compare` trains an MLP for every dataset, optimizer and seed and
summarises how fast each optimizer reaches a target train loss;
``python -m minigrad`` (:mod:`minigrad.cli`) is a thin command line over it.
:func:`fit` is the plain training loop the examples use.

The protocol (modelled on optimizer benchmarks: DeepOBS; Schmidt et al. 2021,
"Descending through a Crowded Valley"; AlgoPerf's time-to-target and
performance profiles), scaled to minutes on a laptop:

- **One procedure per table.** Every optimizer in a run gets its learning
  rate the same way, and the table's heading says which: *defaults*
  (:data:`DEFAULT_LRS`, a rate per dataset and built-in optimizer, tuned once
  for the settings in :data:`DEFAULT_SETTINGS` and regenerated with
  ``python -m minigrad defaults``), *tuned in this run* (``--lr tune``), or
  *given* (``--lr name=rate`` for every optimizer). Defaults are used only
  when every optimizer is a built-in without keyword arguments, every dataset
  has a default, the epochs, batch size and hidden sizes are the default
  ones and the tuning grid and tuning seeds too (the defaults are what they
  pick); otherwise every optimizer is tuned in the run. So a plug-in that is a
  built-in under another name gets exactly the built-in's rows.
- **Tuning.** For each dataset and optimizer, every rate of the grid
  (``--lr-grid LOW:HIGH:N``, log-spaced and inclusive, default
  :data:`LR_GRID`: 1e-5 to 10 in half decades) trains on 80% of the training
  split (standardised again on that 80%) with the *tuning seeds*; its score is
  the validation loss on the other 20%, averaged over the evaluation points
  (the area under the validation curve) and then over the tuning seeds. The
  lowest score wins, ties to the smaller rate; a diverged or failed run
  scores inf, so it loses. The reported runs use the winner to three
  significant digits (10^-0.5 runs as 0.316), the rate the tables print and
  the precision of :data:`DEFAULT_LRS`. A rate at either end of the grid is
  marked and warned about. The test split is never used.
- **Disjoint seeds.** The reported runs use seeds 0..N-1 (``--seeds N``);
  tuning uses seeds :data:`TUNE_SEED_BASE` + 0..T-1 (``--tune-seeds T``).
  A seed fixes the initial weights (``mg.manual_seed(seed)`` before the MLP is
  built) and the batch order (``np.random.default_rng((seed, 1))``), so every
  optimizer and rate starts from the same weights and sees the same batches,
  and a training depends only on its key (dataset, optimizer, seed, rate),
  never on what ran before it or where.
- **Steps to target.** The train loss on the whole training split is
  evaluated (under no_grad, one batched forward) every k steps, k =
  ceil(total steps / ``eval_points``), and after the last step; the steps to
  target of a run is the first evaluated step whose loss is <= the dataset's
  target (:data:`TARGETS`, or ``--target`` for all). A run that never gets
  there is a miss: "never" in the table, inf in the profile. A dataset's
  default target is the train loss the slowest built-in has half way through
  the run at its default rate (:func:`choose_defaults`), so all of them reach
  it and the fast ones visibly earlier.
- **Uncertainty.** Per dataset and optimizer: the median steps to target
  over seeds with a percentile bootstrap 95% interval
  (:func:`bootstrap_median_ci`), the final train loss and the test metric as
  mean ± std (the population's, ddof 0) over the runs that did not diverge
  or fail. With 5 seeds or fewer the bootstrap interval of the median is the
  range of the seeds (a resample's median is their minimum more often than
  2.5% of the time), which holds the median of the seeds' distribution with
  probability 1 - 2^(1-n) only: 75% for 3 seeds; the table says so.
- **Verdict.** One line per optimizer against plain SGD (:func:`verdicts`):
  the median over (dataset, seed) problems of its steps over SGD's, with a
  bootstrap 95% interval over problems, and on how many datasets its median
  steps are fewer.
- **Performance profile.** ``profile.png`` (Dolan and Moré): for each
  optimizer, the fraction of problems whose steps are within a factor τ of
  the best optimizer's on that problem (:func:`performance_profile`).
- **Divergence.** A run whose mini-batch loss becomes NaN or infinite stops
  at that step with status ``diverged``. If a step turned the parameters
  into NaN from finite gradients, the optimizer itself is at fault and the
  status is ``error``, as when it raises or calls ``sys.exit``.

Durability: each training is appended to ``runs.jsonl`` as soon as it
finishes, as one whole line, flushed and fsynced (a line torn by a kill is
dropped when the run is resumed), and every other file (the CSVs,
plots, ``run.json``) is written to a temporary file and moved into place
with ``os.replace``. See :func:`compare` for ``resume``, the lock and the
signals; ``jobs``/``backend`` run the trainings in parallel through joblib
with bit-identical results.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import difflib
import functools
import gc
import hashlib
import importlib
import importlib.util
import inspect
import io
import json
import math
import os
import queue
import signal
import sys
import sysconfig
import threading
import time
import traceback
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from minigrad import data as mgdata
from minigrad import nn, optim
from minigrad._extras import pip_hint
from minigrad._files import atomic_write
from minigrad.engine import Tensor, manual_seed, no_grad

__all__ = [
    "LabError",
    "LabWriteError",
    "LabRunError",
    "Interrupted",
    "TASKS",
    "BUILTIN_OPTIMIZERS",
    "LR_GRID",
    "DEFAULT_LRS",
    "DEFAULT_SETTINGS",
    "TARGETS",
    "DEFAULTS",
    "TUNE_SEED_BASE",
    "OptimizerSpec",
    "Comparison",
    "fit",
    "evaluate",
    "accuracy",
    "r2_score",
    "loss_for",
    "log_grid",
    "parse_grid",
    "parse_optimizer",
    "resolve_optimizer",
    "train_run",
    "compare",
    "choose_defaults",
    "steps_to_target",
    "epochs_to_target",
    "bootstrap_median_ci",
    "performance_profile",
    "verdicts",
    "colour_for",
    "format_table",
]

TASKS = ("classification", "regression")


class LabError(ValueError):
    """Bad input to the lab (an unknown name, a bad setting, a busy folder): the CLI prints it and exits 2."""


class LabWriteError(OSError):
    """A file of the lab's could not be written (disk full, permission lost): the CLI prints it and exits 1."""


class LabRunError(RuntimeError):
    """A worker process or the cluster failed (not a training: those are recorded): the CLI exits 1."""


# ---------------------------------------------------------------------------
# The built-in optimizers, the grid, the documented defaults
# ---------------------------------------------------------------------------

#: name -> factory(params, lr=..., **kwargs). Adding a built-in is one line here.
BUILTIN_OPTIMIZERS: dict[str, Callable[..., optim.Optimizer]] = {
    "sgd": optim.SGD,
    "momentum": functools.partial(optim.Momentum, beta=0.9),
    "nesterov": functools.partial(optim.SGD, momentum=0.9, nesterov=True),
    "adam": optim.Adam,
    "adamw": optim.AdamW,
    "rmsprop": optim.RMSprop,
    "adagrad": optim.Adagrad,
    "nadam": optim.NAdam,
    "lion": optim.Lion,
}

#: How the learning rate changes over a run (``--schedule``), for every optimizer alike:
#: ``none``, ``cosine``, ``step:EVERY:GAMMA``, ``warmup:STEPS`` or ``onecycle``
#: (:func:`minigrad.optim.lr_scheduler.schedule_from_spec`, stepped after every optimizer step).
SCHEDULES = ("none", "cosine", "step:EVERY:GAMMA", "warmup:STEPS", "onecycle")


def log_grid(low: float, high: float, n: int) -> tuple[float, ...]:
    """``n`` log-spaced rates from ``low`` to ``high``, both included (``n = 1`` gives ``(low,)``)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise LabError(f"lr grid: the number of rates must be an integer >= 1, got {n!r}")
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
            raise LabError(f"lr grid: {name} must be a positive number, got {v!r}")
    if low > high or (low == high and n > 1) or (low < high and n == 1):
        raise LabError(f"lr grid: need LOW < HIGH and N >= 2 (or LOW = HIGH and N = 1), got {low:g}:{high:g}:{n}")
    if n == 1:
        return (float(low),)
    return tuple(float(x) for x in np.logspace(math.log10(low), math.log10(high), int(n)))


def _did_you_mean(name: Any, known: Iterable[str]) -> str:
    """" (did you mean 'adam'?)" for the known name closest to ``name`` (case aside), or ""."""
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=0.75)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


def _to_3_digits(lr: float) -> float:
    """``lr`` rounded to three significant digits: how tables print a rate, and the rate tuned runs report."""
    return float(f"{lr:.3g}")


def parse_grid(text: str) -> tuple[float, ...]:
    """Parse ``"LOW:HIGH:N"`` (e.g. ``1e-5:10:13``) into :func:`log_grid`'s rates."""
    parts = text.split(":")
    try:
        low, high, n = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3:
            raise ValueError
    except (ValueError, IndexError):
        raise LabError(f"--lr-grid: expected LOW:HIGH:N like 1e-5:10:13, got {text!r}") from None
    return log_grid(low, high, n)


#: The default tuning grid: 1e-5 to 10 in half decades (13 rates).
LR_GRID: tuple[float, ...] = log_grid(1e-5, 10.0, 13)
DEFAULT_GRID_TEXT = "1e-5:10:13"

#: The settings :data:`DEFAULT_LRS` and :data:`TARGETS` were tuned for; other settings tune in the run.
DEFAULT_SETTINGS: dict[str, Any] = {"epochs": 30, "batch_size": 32, "hidden": (32, 32)}

#: Tuning seeds are TUNE_SEED_BASE, TUNE_SEED_BASE + 1, ...; reported seeds are 0, 1, ... below it.
TUNE_SEED_BASE = 10_000

# DEFAULT_LRS and TARGETS are the output of `python -m minigrad defaults` (see choose_defaults).
#: The documented rate per dataset and built-in optimizer, for :data:`DEFAULT_SETTINGS`.
DEFAULT_LRS: dict[str, dict[str, float]] = {
    "moons": {
        "sgd": 1.0, "momentum": 1.0, "nesterov": 0.316, "adam": 0.0316, "adamw": 0.01,
        "rmsprop": 0.01, "adagrad": 0.1, "nadam": 0.0316, "lion": 0.01,
    },
    "circles": {
        "sgd": 0.316, "momentum": 1.0, "nesterov": 0.1, "adam": 0.01, "adamw": 0.01,
        "rmsprop": 0.00316, "adagrad": 0.1, "nadam": 0.0316, "lion": 0.01,
    },
    "blobs": {
        "sgd": 0.316, "momentum": 0.316, "nesterov": 0.1, "adam": 0.01, "adamw": 0.01,
        "rmsprop": 0.00316, "adagrad": 0.0316, "nadam": 0.01, "lion": 0.01,
    },
    "iris": {
        "sgd": 1.0, "momentum": 1.0, "nesterov": 0.1, "adam": 0.01, "adamw": 0.01,
        "rmsprop": 0.00316, "adagrad": 0.0316, "nadam": 0.01, "lion": 0.00316,
    },
    "wine": {
        "sgd": 0.316, "momentum": 0.316, "nesterov": 0.0316, "adam": 0.01, "adamw": 0.01,
        "rmsprop": 0.00316, "adagrad": 0.0316, "nadam": 0.01, "lion": 0.001,
    },
    "breast_cancer": {
        "sgd": 0.316, "momentum": 0.316, "nesterov": 0.0316, "adam": 0.00316, "adamw": 0.00316,
        "rmsprop": 0.001, "adagrad": 0.0316, "nadam": 0.00316, "lion": 0.001,
    },
    "digits": {
        "sgd": 0.316, "momentum": 0.316, "nesterov": 0.0316, "adam": 0.01, "adamw": 0.01,
        "rmsprop": 0.00316, "adagrad": 0.0316, "nadam": 0.01, "lion": 0.001,
    },
    "diabetes": {
        "sgd": 0.1, "momentum": 0.1, "nesterov": 0.01, "adam": 0.00316, "adamw": 0.00316,
        "rmsprop": 0.001, "adagrad": 0.01, "nadam": 0.00316, "lion": 0.00316,
    },
}

#: The default target train loss per dataset: the largest train loss of the built-ins at their default
#: rates at the middle of the run (median over the tuning seeds, on the tuning split), to 2 significant
#: digits, so the slowest gets there about half way and the faster ones visibly earlier (choose_defaults).
TARGETS: dict[str, float] = {
    "moons": 0.12,
    "circles": 0.058,
    "blobs": 0.28,
    "iris": 0.089,
    "wine": 0.013,
    "breast_cancer": 0.017,
    "digits": 0.0041,
    "diabetes": 0.4,
}

#: The command line's defaults.
DEFAULTS: dict[str, Any] = {
    "datasets": [name for name, task in mgdata.DATASETS.items() if task == "classification"],
    "optimizers": ["sgd", "momentum", "nesterov", "adam"],
    "epochs": DEFAULT_SETTINGS["epochs"],
    "batch_size": DEFAULT_SETTINGS["batch_size"],
    "hidden": DEFAULT_SETTINGS["hidden"],
    "seeds": 3,
    "tune_seeds": 2,
    "eval_points": 50,
    "out_dir": "minigrad-results",
}

#: The fraction of the training split held out to tune learning rates.
VALIDATION_SIZE = 0.2

#: The values of the status column: ok; diverged (the loss became non-finite); error (the optimizer failed).
STATUSES = ("ok", "diverged", "error")


# ---------------------------------------------------------------------------
# Metrics and the plain training loop
# ---------------------------------------------------------------------------


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """The fraction of rows whose largest logit is at the true class."""
    return float(np.mean(np.argmax(logits, axis=1) == np.asarray(y)))


def r2_score(pred: np.ndarray, y: np.ndarray) -> float:
    """R² = 1 - Σ(y - pred)² / Σ(y - mean y)²  (1 is perfect, 0 is predicting the mean)."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    total = np.sum((y - y.mean()) ** 2)
    return float(1 - np.sum((y - pred) ** 2) / total) if total > 0 else math.nan


def loss_for(task: str) -> Callable[[Tensor, Any], Tensor]:
    """The loss the lab trains with: cross-entropy for classification, MSE for regression."""
    _check_task(task)
    return nn.cross_entropy if task == "classification" else nn.mse_loss


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise LabError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def evaluate(
    model: nn.Module, loss_fn: Callable[[Tensor, Any], Tensor], X: np.ndarray, y: np.ndarray, task: str,
    *, metric: bool = True,
) -> tuple[float, float]:
    """Return ``(loss, metric)`` on the whole of ``X``: one batched forward under no_grad, no graph.

    The metric is the accuracy for classification and R² for regression;
    ``metric=False`` skips it (nan in its place) where only the loss is
    wanted, as for the train loss: the accuracy's argmax over every row is
    10-30% of a small model's evaluation.
    """
    _check_task(task)
    with no_grad():
        out = model(Tensor(X))
        loss = float(loss_fn(out, y).data)
    if not metric:
        return loss, math.nan
    return loss, accuracy(out.data, y) if task == "classification" else r2_score(out.data, y)


def fit(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Any], Tensor],
    optimizer: optim.Optimizer,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    *,
    epochs: int,
    batch_size: int = 32,
    task: str = "classification",
    seed: int | None = None,
    progress: bool = False,
    log: Callable[[dict[str, float]], Any] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` for ``epochs`` passes over shuffled mini-batches; return the history.

    The history has one row per epoch, epoch 0 being the model before
    training: ``{"epoch", "train_loss", "test_metric", "seconds"}``, where
    ``train_loss`` is ``loss_fn`` on the whole training set after the epoch
    (under no_grad), ``test_metric`` the test accuracy (classification) or R²
    (regression), nan without a test set, and ``seconds`` the training time
    so far (evaluation excluded). ``log(row)`` is called after every epoch.

    Batches are shuffled by ``np.random.default_rng(seed)`` or, when ``seed``
    is None, by minigrad's generator, so after ``mg.manual_seed(s)`` the
    same call is bit-identical. If the train loss stops being finite (the
    rate is too large), training stops and the history ends at that epoch.
    ``progress=True`` shows a tqdm bar over the epochs.
    """
    epochs = _check_int("fit: epochs", epochs, 0)
    batch_size = _check_int("fit: batch_size", batch_size, 1)
    _check_task(task)
    if (X_test is None) != (y_test is None):
        raise ValueError("fit: give both X_test and y_test, or neither")
    if len(X_train) != len(y_train) or len(X_train) == 0:
        raise ValueError(f"fit: X_train has {len(X_train)} samples and y_train {len(y_train)}; need the same, >= 1")
    if X_test is not None and y_test is not None and len(X_test) != len(y_test):
        raise ValueError(f"fit: X_test has {len(X_test)} samples but y_test has {len(y_test)}")
    owned = {id(p) for p in model.parameters()}
    if not any(id(p) in owned for p in optimizer.params):
        raise ValueError(
            f"fit: the optimizer ({type(optimizer).__name__} of {len(optimizer.params)} parameters) updates none of "
            f"the model's {len(owned)} parameters, so training would change nothing; build it on "
            "model.parameters()"
        )
    shuffler = None if seed is None else np.random.default_rng(seed)

    def record(epoch: int, seconds: float) -> dict[str, float]:
        train_loss, _ = evaluate(model, loss_fn, X_train, y_train, task, metric=False)
        test_metric = math.nan
        if X_test is not None and y_test is not None:
            test_metric = evaluate(model, loss_fn, X_test, y_test, task)[1]
        row = {"epoch": epoch, "train_loss": train_loss, "test_metric": test_metric, "seconds": seconds}
        if log is not None:
            log(row)
        return row

    history = [record(0, 0.0)]
    epoch_range: Iterable[int] = range(1, epochs + 1)
    if progress:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]

        epoch_range = tqdm(epoch_range, desc="epochs", leave=False)
    seconds = 0.0
    for epoch in epoch_range:
        start = time.perf_counter()
        batch_seed = None if shuffler is None else int(shuffler.integers(2**63))
        for X, y in mgdata.batches(X_train, y_train, batch_size, seed=batch_seed):
            optimizer.zero_grad()
            loss = loss_fn(model(Tensor(X)), y)
            loss.backward()
            optimizer.step()
        seconds += time.perf_counter() - start
        history.append(record(epoch, seconds))
        if not math.isfinite(history[-1]["train_loss"]):
            break
    return history


def epochs_to_target(history: Sequence[Mapping[str, float]], target: float) -> float:
    """The first epoch of a :func:`fit` history whose train loss is <= ``target``; inf if none is."""
    for row in history:
        if row["train_loss"] <= target:
            return float(row["epoch"])
    return math.inf


# ---------------------------------------------------------------------------
# Optimizers by name, with keyword arguments, built-in or plug-in
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer the lab can build: ``make(params, lr)``, its table name and how to find it again.

    ``name`` is what tables and CSVs show (``momentum(beta=0.95)``,
    ``AdamW(weight_decay=0.01)``); ``source`` is the text that
    :func:`resolve_optimizer` turns back into this spec (a plug-in file's
    path made absolute), which is how a worker process rebuilds it;
    ``builtin`` says whether it is a built-in with no keyword arguments, the
    only kind that has documented default rates.
    """

    name: str
    make: Callable[[list[nn.Parameter], float], optim.Optimizer]
    source: str
    builtin: bool = False
    kwargs: tuple[tuple[str, Any], ...] = ()


def parse_optimizer(text: str) -> tuple[str, dict[str, Any]]:
    """Split ``"momentum(beta=0.95)"`` into ``("momentum", {"beta": 0.95})``; literals only, nothing is run.

    The arguments are read with :mod:`ast`: only keyword arguments whose
    values are Python literals (numbers, strings, booleans, None, tuples,
    lists, dicts) are accepted. Raises :class:`LabError` otherwise.
    """
    if not isinstance(text, str) or not text.strip():
        raise LabError(f"optimizer name must be a non-empty string, got {text!r}")
    text = text.strip()
    colon = text.rfind(":", 0, text.find("(") if "(" in text else len(text))
    open_at = text.find("(", colon + 1)
    if open_at < 0:
        if ")" in text:
            raise LabError(f"optimizer {text!r}: unbalanced parentheses")
        return text, {}
    head, args = text[:open_at].strip(), text[open_at:]
    usage = "expected name(key=value, ...) with literal values, like momentum(beta=0.95) or adam(betas=(0.9, 0.99))"
    try:
        call = ast.parse("f" + args, mode="eval").body
    except SyntaxError:
        raise LabError(f"optimizer {text!r}: {usage}") from None
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or call.args:
        raise LabError(f"optimizer {text!r}: {usage}")
    kwargs: dict[str, Any] = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise LabError(f"optimizer {text!r}: ** is not allowed; {usage}")
        try:
            kwargs[keyword.arg] = ast.literal_eval(keyword.value)
        except (ValueError, SyntaxError, TypeError):
            raise LabError(f"optimizer {text!r}: the value of {keyword.arg} is not a literal; {usage}") from None
    for reserved in ("lr", "params"):
        if reserved in kwargs:
            raise LabError(f"optimizer {text!r}: {reserved} is set by the lab (use --lr for rates)")
    return head, kwargs


_IMPORTED: dict[str, str] = {}  # a plug-in module's name: the digest of its file when this process imported it


def _load_plugin_class(spec: str) -> type:
    """Import ``path/to/file.py:ClassName`` or ``package.module:ClassName``."""
    where, _, class_name = spec.rpartition(":")
    if not where or not class_name.isidentifier():
        raise LabError(f"optimizer {spec!r}: expected path/to/file.py:ClassName or package.module:ClassName")
    if where.endswith(".py") or os.sep in where or "/" in where:
        if not os.path.isfile(where):
            raise LabError(f"optimizer {spec!r}: no such file {where!r}")
        code = _code_digest(spec)
        _reload_helpers(spec, code)  # (helper code beside it, edited since this process imported it)
        # Named by path and by its folder's code: edited since (it or a helper), it is run again, so that a name
        # it took from a helper (from helper import SCALE) is the helper's new one.
        digest = hashlib.sha1(os.path.abspath(where).encode() + b"\0" + code.encode()).hexdigest()[:12]
        module_name = f"minigrad_plugin_{digest}"
        module = sys.modules.get(module_name)
        if module is None:
            file_spec = importlib.util.spec_from_file_location(module_name, where)
            if file_spec is None or file_spec.loader is None:
                raise LabError(f"optimizer {spec!r}: cannot import {where!r} as Python")
            module = importlib.util.module_from_spec(file_spec)
            sys.modules[module_name] = module
            try:
                with _on_path(os.path.dirname(os.path.abspath(where))):  # its helpers: from helper import SCALE
                    file_spec.loader.exec_module(module)
            except (Exception, SystemExit) as e:  # the user's file: report its error in one line
                del sys.modules[module_name]
                raise LabError(f"optimizer {spec!r}: importing {where!r} failed: {type(e).__name__}: {e}") from None
    else:
        try:
            module = importlib.import_module(where)
            digest = _code_digest(spec)
            if _IMPORTED.setdefault(where, digest) != digest:  # its file was edited since: import it again
                module = importlib.reload(module)
                _IMPORTED[where] = digest
        except (Exception, SystemExit) as e:  # the user's module
            raise LabError(f"optimizer {spec!r}: cannot import module {where!r}: {type(e).__name__}: {e}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        classes = [n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, optim.Optimizer)]
        raise LabError(f"optimizer {spec!r}: {where!r} has no class {class_name!r}{_did_you_mean(class_name, classes)}")
    if not (isinstance(cls, type) and issubclass(cls, optim.Optimizer)):
        raise LabError(f"optimizer {spec!r}: {class_name} is not a subclass of minigrad.optim.Optimizer")
    if cls.update is optim.Optimizer.update:
        raise LabError(f"optimizer {spec!r}: {class_name} does not define update(w, g, state)")
    return cls


def _keywords(factory: Callable[..., Any]) -> list[str] | None:
    """The keyword arguments ``factory`` takes by name, or None if it takes any (``**kwargs``) or cannot be told."""
    target: Any = factory.func if isinstance(factory, functools.partial) else factory
    if isinstance(target, type):  # a class's own __init__: the optimizers' metaclass wraps the call itself
        target = next((vars(c)["__init__"] for c in target.__mro__ if "__init__" in vars(c)), target)
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"]


def _call_text(name: str, kwargs: Mapping[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})" if kwargs else name


def resolve_optimizer(spec: str) -> OptimizerSpec:
    """Turn ``name``, ``name(key=value, ...)`` or a plug-in spec into an :class:`OptimizerSpec`.

    Built-ins (:data:`BUILTIN_OPTIMIZERS`): sgd is ``SGD(lr)``, momentum
    ``Momentum(lr, beta=0.9)`` (the EWA form), nesterov ``SGD(lr,
    momentum=0.9, nesterov=True)``, adam ``Adam(lr)``. A plug-in,
    ``path/to/file.py:ClassName`` or ``package.module:ClassName``, must
    subclass :class:`minigrad.optim.Optimizer` and accept ``Cls(params,
    lr=lr, **kwargs)``; it is named by its class name. Keyword arguments in
    parentheses (literals only, see :func:`parse_optimizer`) go to the
    constructor. The optimizer is built once on a dummy parameter, so a bad
    argument fails here. Raises :class:`LabError` with the reason.
    """
    head, kwargs = parse_optimizer(spec)
    if head in BUILTIN_OPTIMIZERS:
        factory: Callable[..., optim.Optimizer] = BUILTIN_OPTIMIZERS[head]
        name, source, builtin = _call_text(head, kwargs), _call_text(head, kwargs), not kwargs
    elif ":" in head:
        where, _, class_name = head.rpartition(":")
        if where.endswith(".py") or "/" in where or os.sep in where:
            head = f"{os.path.abspath(where)}:{class_name}"
        factory = _load_plugin_class(head)
        name, source, builtin = _call_text(class_name, kwargs), _call_text(head, kwargs), False
    else:
        raise LabError(
            f"unknown optimizer {head!r}{_did_you_mean(head, BUILTIN_OPTIMIZERS)}; known: "
            f"{', '.join(BUILTIN_OPTIMIZERS)}, or path/to/file.py:ClassName or package.module:ClassName, each "
            "optionally with (key=value, ...)"
        )
    try:  # build it once, so a constructor that cannot take these arguments fails now
        factory([nn.Parameter(np.zeros(2, dtype=np.float32))], lr=1e-3, **kwargs)
    except (Exception, SystemExit) as e:  # the user's class or arguments
        trial = _call_text(name.split("(")[0], {"lr": 0.001, **kwargs})
        takes = _keywords(factory)
        unknown = [k for k in kwargs if takes is not None and k not in takes]
        hint = ""
        if unknown and takes is not None:
            hint = (f"; it takes {', '.join(k for k in takes if k not in ('params', 'lr')) or 'no keyword but lr'}"
                    f"{_did_you_mean(unknown[0], dict.fromkeys(takes))}")
        raise LabError(f"optimizer {spec.strip()!r}: building it as {trial} (a trial rate; the lab sets the rate "
                       f"itself) failed: {type(e).__name__}: {e}{hint}") from None

    def make(params: list[nn.Parameter], lr: float) -> optim.Optimizer:
        return factory(params, lr=lr, **kwargs)

    return OptimizerSpec(name, make, source, builtin, tuple(kwargs.items()))


def _plugin_file(source: str) -> str | None:
    """The file a plug-in spec's class comes from (None for a built-in, whose code is minigrad's)."""
    head = source.split("(")[0]
    if ":" not in head:
        return None
    where = head.rpartition(":")[0]
    path: str | None = where
    if not (where.endswith(".py") or "/" in where or os.sep in where):
        try:
            found = importlib.util.find_spec(where)
        except (ImportError, ValueError):
            found = None
        path = found.origin if found is not None else None
    return path if path and os.path.isfile(path) else None


def _code_files(folder: str) -> list[str]:
    """The Python files a plug-in in ``folder`` may import: those beside it, and those of the packages beside it.

    A package is a sub-folder with an ``__init__.py`` (as :func:`_on_path` finds them); all of its ``.py``
    files count, its sub-packages' too. Other sub-folders (data, a virtual environment) are not code the
    plug-in imports by a name of its folder, and are not read. Paths are relative to ``folder``, sorted.
    """
    found = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith(".py") and os.path.isfile(path):
            found.append(name)
        elif os.path.isfile(os.path.join(path, "__init__.py")):
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
                found += sorted(os.path.relpath(os.path.join(root, f), folder) for f in files if f.endswith(".py"))
    return found


def _code_digest(source: str) -> str:
    """The SHA-256 of a plug-in's code: its file and the Python code beside it, which it may import.

    (The files of :func:`_code_files`: modules and packages in the plug-in's folder count, code elsewhere
    does not. "" for a built-in.)
    """
    path = _plugin_file(source)
    if path is None:
        return ""
    digest = hashlib.sha256()
    for name, content in _file_digests(os.path.dirname(os.path.abspath(path))).items():
        digest.update(name.encode() + b"\0" + content)
    return digest.hexdigest()


def _file_digests(folder: str) -> dict[str, bytes]:
    """The SHA-256 of each file of :func:`_code_files` (a file that vanished or cannot be read: of nothing)."""
    out = {}
    for name in _code_files(folder):
        try:
            with open(os.path.join(folder, name), "rb") as f:
                content = f.read()
        except OSError:  # (its name still counts)
            content = b""
        out[name] = hashlib.sha256(content).digest()
    return out


def _reload_helpers(source: str, digest: str) -> None:
    """Forget the modules of a plug-in's folder once its code changed since this process imported them.

    ``digest`` is the folder's :func:`_code_digest` now. Every module beside the plug-in and in the packages
    beside it is taken out of ``sys.modules`` (an unchanged one too: it may hold a name it took from a changed
    one, ``from base import SCALE``), so that the plug-in, run again, imports them afresh in its own order.
    Never an installed module (minigrad itself, when the folder holds its package) nor the running script.
    Whoever holds the old module objects keeps them as they were.
    """
    path = _plugin_file(source)
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if _FOLDERS.setdefault(folder, digest) == digest:
        return
    _FOLDERS[folder] = digest
    inside, packages = os.path.join(folder, ""), _packages(folder)
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not file or name == "__main__" or name.startswith("minigrad_plugin_"):
            continue
        file = os.path.abspath(file)
        if not file.startswith(inside) or file.startswith(_installed_roots()):
            continue
        relative = file[len(inside):]
        if os.sep not in relative or relative.split(os.sep)[0] in packages:
            del sys.modules[name]


def _packages(folder: str) -> set[str]:
    """The packages beside a plug-in: sub-folders of ``folder`` with an ``__init__.py``."""
    return {n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n, "__init__.py"))}


@contextlib.contextmanager
def _on_path(folder: str) -> Iterator[None]:
    """``folder`` first on ``sys.path`` for the block, as Python puts a script's folder: a plug-in's helpers.

    A module already imported from elsewhere under the name of a module here (another plug-in's
    ``helper.py``, a ``common/`` package, a ``helper.py`` of the working folder) is set aside for the
    block, so that this plug-in imports its own, and put back after it. Installed modules (the standard
    library's ``copy``, numpy, minigrad) stay as they are, as for a script.
    """
    names = {n[:-3] for n in os.listdir(folder) if n.endswith(".py")} | _packages(folder)
    aside = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name.split(".")[0] not in names or not file:  # (a built-in module has no file)
            continue
        file = os.path.abspath(file)
        if not file.startswith((*_installed_roots(), os.path.join(folder, ""))):  # (its own, a package too)
            aside[name] = sys.modules.pop(name)
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
        sys.modules.update(aside)


@functools.lru_cache(maxsize=1)
def _installed_roots() -> tuple[str, ...]:
    """Where installed modules live: the standard library, site-packages, and minigrad's own package."""
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.add(os.path.dirname(os.path.abspath(__file__)))  # minigrad's own package (an editable install too)
    return tuple(os.path.join(os.path.abspath(r), "") for r in roots)


_FOLDERS: dict[str, str] = {}  # a plug-in's folder: the digest of its code when this process last imported it


def _plugin_code(specs: Sequence[OptimizerSpec]) -> dict[str, str]:
    """Each plug-in's :func:`_code_digest`, by name: a resumed run trains an edited plug-in's runs again."""
    return {s.name: digest for s in specs if (digest := _code_digest(s.source))}


@functools.lru_cache(maxsize=64)
def _resolve_code(source: str, digest: str) -> tuple[OptimizerSpec, str]:
    """A worker resolves each optimizer once per version of its code (``digest``: the task's ``code``).

    Returns the spec and the digest of the code it loaded, which the record keeps: the folder may have been
    edited since the run was planned.
    """
    loaded = _code_digest(source)
    return resolve_optimizer(source), loaded


# ---------------------------------------------------------------------------
# One training run: the unit of work, keyed and self-seeded
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _report_split(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return mgdata.load_dataset(dataset)


@functools.lru_cache(maxsize=32)
def _validation_split(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """80/20 split of the *training* split, standardised on the 80%: the test split is never used."""
    X, y = mgdata.load_raw(dataset)
    task = mgdata.DATASETS[dataset]
    X_train, _, y_train, _ = mgdata.split(X, y, seed=0, stratify=task == "classification")
    X_fit, X_val, y_fit, y_val = mgdata.split(
        X_train, y_train, test_size=VALIDATION_SIZE, seed=1, stratify=task == "classification"
    )
    X_fit, X_val, _, _ = mgdata.standardize(X_fit, X_val)
    if task == "regression":
        y_fit, y_val, _, _ = mgdata.standardize(y_fit, y_val)
    return X_fit, X_val, y_fit, y_val


# Tensors record into one global graph switch and layers draw from one global generator, so two
# trainings must not interleave in one process (dask workers with several threads): one at a time.
_TRAINING = threading.Lock()


def train_run(
    X: np.ndarray,
    y: np.ndarray,
    X_eval: np.ndarray,
    y_eval: np.ndarray,
    *,
    task: str,
    make_optimizer: Callable[[list[nn.Parameter]], optim.Optimizer],
    seed: int,
    hidden: Sequence[int],
    epochs: int,
    batch_size: int,
    eval_points: int,
    train_curve: bool = True,
    schedule: str = "none",
    clip_grad_norm: float | None = None,
) -> dict[str, Any]:
    """Train a fresh MLP from ``seed``; return its curve, status and timing as a dict of lists.

    Initial weights come from ``mg.manual_seed(seed)``, the batch order from
    ``np.random.default_rng((seed, 1))``. Every k = ceil(total steps /
    eval_points) steps and after the last, the model is evaluated (no graph,
    one batched forward): ``train_loss`` on ``(X, y)`` (when ``train_curve``
    is False, only at the last point, nan before), and ``eval_loss`` and ``eval_metric`` on
    ``(X_eval, y_eval)``. ``seconds`` is training time so far (evaluation
    excluded). A non-finite mini-batch loss, or training loss after the last
    step, stops the run with status "diverged" ("error" if the last step
    made parameters NaN from finite gradients); an exception from the optimizer gives "error" and its message.
    ``schedule`` (see :data:`SCHEDULES`) changes the rate after every step
    (``step_lr`` records the rate the last step used); ``clip_grad_norm``
    clips the gradients' joint norm before every step.
    """
    loss_fn = loss_for(task)
    n = len(X)
    steps_per_epoch = math.ceil(n / batch_size)
    total = steps_per_epoch * epochs
    every = max(1, math.ceil(total / eval_points))
    curve: dict[str, list[float]] = {k: [] for k in ("step", "epoch", "train_loss", "eval_loss", "eval_metric",
                                                    "seconds", "step_lr")}
    status, message = "ok", ""

    with _TRAINING:
        manual_seed(seed)
        n_outputs = int(y.max()) + 1 if task == "classification" else y.shape[1]
        model = nn.MLP([X.shape[1], *hidden, n_outputs])
        params = model.parameters()
        initial = [p.data.copy() for p in params]  # to tell an update that never changed a weight (w = w - ...)
        order_rng = np.random.default_rng((seed, 1))

        def record(step: int, seconds: float, last: bool = False) -> None:
            train_loss = evaluate(model, loss_fn, X, y, task, metric=False)[0] if train_curve or last \
                else math.nan
            eval_loss, metric = evaluate(model, loss_fn, X_eval, y_eval, task)
            if not math.isfinite(eval_loss):  # a model that diverged: its argmax over NaNs is no accuracy
                metric = math.nan
            for key, value in (("step", step), ("epoch", round(step / steps_per_epoch, 4)),
                               ("train_loss", train_loss), ("eval_loss", eval_loss), ("eval_metric", metric),
                               ("seconds", seconds), ("step_lr", used_lr)):
                curve[key].append(value)

        seconds, step = 0.0, 0
        started = False  # (an error before the first step is the optimizer's constructor's, or the schedule's)
        used_lr = math.nan
        with np.errstate(all="ignore"):  # a diverging run is recorded as "diverged", not warned about
            try:
                optimizer = make_optimizer(params)
                rates = optim.lr_scheduler.schedule_from_spec(schedule, optimizer, total)
                used_lr = float(getattr(optimizer, "lr", math.nan))
                record(0, 0.0)
                started = True
                for _ in range(epochs):
                    order = order_rng.permutation(n)
                    for start in range(0, n, batch_size):
                        t0 = time.perf_counter()
                        index = order[start : start + batch_size]
                        loss = loss_fn(model(Tensor(X[index])), y[index])
                        if not math.isfinite(float(loss.data)):
                            seconds += time.perf_counter() - t0
                            status, message = _why_not_finite(params, step)
                            break
                        optimizer.zero_grad()
                        loss.backward()
                        if clip_grad_norm is not None:
                            nn.utils.clip_grad_norm_(params, clip_grad_norm)
                        used_lr = float(getattr(optimizer, "lr", math.nan))
                        optimizer.step()
                        if rates is not None:
                            rates.step()
                        step += 1
                        seconds += time.perf_counter() - t0
                        if step % every == 0 or step == total:
                            record(step, seconds, last=step == total)
                    if status != "ok":
                        break
                if status == "ok" and not math.isfinite(curve["train_loss"][-1]):
                    # The last step's damage: no next mini-batch loss shows it, the loss after the last step does.
                    status, message = _why_not_finite(params, step)
            except (Exception, SystemExit) as e:  # the optimizer's code (a plug-in) failed: record it, go on
                status = "error"
                message = f"{type(e).__name__}: {e} ({_failed_in(started, step)})"
                curve["traceback"] = [traceback.format_exc()]  # type: ignore[list-item]
            if status != "ok" and (not curve["step"] or curve["step"][-1] != step):
                record(step, seconds, last=True)
        still = step > 0 and all(np.array_equal(p.data, w) for p, w in zip(params, initial))
    return {"status": status, "message": message, "every": every, "weights_moved": not still, **curve}


def _failed_in(started: bool, done: int) -> str:
    """Where an error came: "in step N" (counted from 1, as step_count and state["step"] are), or before any."""
    return f"in step {done + 1}" if started else "before the first step"


def _why_not_finite(params: Sequence[nn.Parameter], step: int) -> tuple[str, str]:
    """Diverged, unless the last step turned parameters into NaN from finite gradients (the optimizer's bug)."""
    nan_params = any(np.isnan(p.data).any() for p in params)
    finite_grads = all(p.grad is None or np.isfinite(p.grad).all() for p in params)
    if step > 0 and nan_params and finite_grads:
        return "error", f"the optimizer made parameters NaN from finite gradients at step {step}"
    return "diverged", f"the loss became non-finite at step {step}"


@dataclass(frozen=True)
class _Task:
    """One training to do: everything a worker needs, as plain values (picklable, no closures)."""

    kind: str  # "tune", "report" or "curve" (a tuning-split run that keeps its train curve: choose_defaults)
    dataset: str
    optimizer: str  # the spec's table name
    source: str  # resolve_optimizer's input
    lr: float
    seed: int
    epochs: int
    batch_size: int
    hidden: tuple[int, ...]
    eval_points: int
    schedule: str = "none"
    clip_grad_norm: float | None = None
    code: str = ""  # a plug-in's _code_digest when the run was planned ("" for a built-in): resolved once per version

    @property
    def key(self) -> tuple[str, str, str, int, float]:
        """The training's identity: results depend on this and on nothing else."""
        return (self.kind, self.dataset, self.optimizer, self.seed, self.lr)


_PINNED: Any = None  # a worker's BLAS pin, kept for the worker's life


def _run_task(task: _Task, pin: bool = False, own_worker: bool = False) -> dict[str, Any]:
    """Run one training (in this process or a joblib worker); return its record for the journal.

    ``pin``: a worker's first task pins BLAS to one thread for the worker's life; ``own_worker``: the
    worker is a process of this run's (loky), not a cluster's.
    """
    global _PINNED
    if pin and _PINNED is None:  # the first task in a worker process
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        _PINNED = threadpool_limits(limits=1)  # one BLAS thread: tiny matrices run slower on more
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
        if own_worker:
            # The run waits for its workers to exit, and an exit collects garbage over every object the process
            # holds (0.1 s after the imports): frozen, the objects held now are left out of every collection.
            gc.freeze()
    spec, loaded = _resolve_code(task.source, task.code)
    if task.kind == "report":
        X, X_eval, y, y_eval = _report_split(task.dataset)
    else:
        X, X_eval, y, y_eval = _validation_split(task.dataset)
    run = train_run(
        X, y, X_eval, y_eval, task=mgdata.DATASETS[task.dataset],
        make_optimizer=lambda params: spec.make(params, task.lr), seed=task.seed, hidden=task.hidden,
        epochs=task.epochs, batch_size=task.batch_size, eval_points=task.eval_points,
        train_curve=task.kind != "tune", schedule=task.schedule, clip_grad_norm=task.clip_grad_norm,
    )
    if task.kind == "tune":  # keep the score and the end point only: the curve is not reported
        ok = run["status"] == "ok"
        finite = ok and all(map(math.isfinite, run["eval_loss"]))
        run["score"] = float(np.mean(run["eval_loss"])) if finite else math.inf
        run["final_train_loss"] = run["train_loss"][-1]
        for key in ("train_loss", "eval_metric", "epoch", "step_lr"):
            run.pop(key)
        run["eval_loss"] = run["eval_loss"][-1:]
        run["step"] = run["step"][-1:]
        run["seconds"] = run["seconds"][-1:]
    record = {"kind": task.kind, "dataset": task.dataset, "optimizer": task.optimizer, "seed": task.seed,
              "lr": task.lr, **run}
    if loaded:  # a plug-in: the code this training ran, which a resume compares with the code then
        record["code"] = loaded
    return record


# ---------------------------------------------------------------------------
# Statistics: steps to target, bootstrap intervals, verdicts, performance profiles
# ---------------------------------------------------------------------------


def steps_to_target(steps: Sequence[float], losses: Sequence[float], target: float) -> float:
    """The first evaluated step whose train loss is <= ``target``; inf if none is (a miss)."""
    for s, loss in zip(steps, losses):
        if loss <= target:
            return float(s)
    return math.inf


def _order_statistic_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile interval of sorted samples, by order statistics (safe with inf)."""
    samples = np.sort(samples)
    b = len(samples)
    alpha = (1 - confidence) / 2
    return float(samples[int(math.floor(alpha * b))]), float(samples[min(b - 1, int(math.ceil((1 - alpha) * b)) - 1)])


def bootstrap_median_ci(
    values: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """``(median, low, high)``: the median of ``values`` and its percentile bootstrap interval.

    ``n_resamples`` resamples of ``values`` with replacement (from
    ``np.random.default_rng(seed)``, so the interval is repeatable); the
    interval is their medians' ``(1-confidence)/2`` and ``(1+confidence)/2``
    quantiles. inf (a miss) is allowed and sorts last.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0 or np.isnan(x).any():
        raise ValueError(f"bootstrap_median_ci: need a non-empty 1-d sequence without nan, got {values!r}")
    rng = np.random.default_rng(seed)
    resamples = np.sort(x[rng.integers(0, len(x), size=(n_resamples, len(x)))], axis=1)
    medians = _sorted_median(resamples)
    low, high = _order_statistic_interval(medians, confidence)
    return float(_sorted_median(np.sort(x)[None, :])[0]), low, high


def _sorted_median(rows: np.ndarray) -> np.ndarray:
    """The median of each sorted row; the mean of the middle two as ``(a + b) / 2``, inf if either is."""
    n = rows.shape[1]
    if n % 2:
        return rows[:, n // 2]
    a, b = rows[:, n // 2 - 1], rows[:, n // 2]
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(b), np.inf, (a + b) / 2)


def performance_profile(
    steps: Mapping[str, Sequence[float] | np.ndarray], taus: Sequence[float] | np.ndarray
) -> dict[str, np.ndarray]:
    """Dolan and Moré's profile: for each optimizer, the fraction of problems with ratio <= τ, per τ.

    ``steps[name][p]`` is the optimizer's steps to target on problem p (inf
    for a miss). On each problem the ratio is steps / the fewest steps any
    optimizer took there (1 for the best; inf for a miss or when no
    optimizer reached the target; a 0 best counts as 1 for those at 0).
    """
    names = list(steps)
    table = np.array([np.asarray(steps[n], dtype=np.float64) for n in names])  # optimizers x problems
    if table.ndim != 2 or table.shape[1] == 0:
        raise ValueError("performance_profile: every optimizer needs the same, non-zero number of problems")
    ratio = _profile_ratios(table)
    tau = np.asarray(taus, dtype=np.float64)
    return {n: (ratio[i][None, :] <= tau[:, None]).mean(axis=1) for i, n in enumerate(names)}


def _profile_ratios(table: np.ndarray) -> np.ndarray:
    """Each optimizer's steps over the best on each problem (optimizers x problems), as the profile reads them."""
    best = table.min(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(table == best, 1.0, table / best)
    ratio[:, ~np.isfinite(best)] = np.inf
    return ratio


def _ratio(a: float, b: float) -> float:
    """a / b for steps to target: 1 when equal (also both 0), inf/0 at misses; nan when both missed."""
    if math.isinf(a) and math.isinf(b):
        return math.nan
    if a == b:
        return 1.0
    if b == 0 or math.isinf(a):
        return math.inf
    return a / b


def verdicts(
    problems: Mapping[str, Mapping[tuple[str, int], float]], baseline: str = "sgd", *, seed: int = 0,
    failed: Mapping[str, Iterable[tuple[str, int]]] | None = None,
) -> list[str]:
    """One line per optimizer comparing its steps to target with ``baseline``'s, over all problems.

    ``problems[optimizer][(dataset, seed)]`` is a run's steps to target. The
    ratio per problem is steps / baseline's steps (problems both missed are
    left out; one only the optimizer reached counts as 0, one only the
    baseline reached as inf); the line gives the median ratio, a bootstrap
    95% interval over problems, and on how many datasets the optimizer's
    median steps are below the baseline's (and, if any, on how many they are
    equal, and on how many both miss). ``failed[optimizer]`` lists the
    problems whose run failed (status error): those are left out of the
    comparison and counted apart, not as misses.
    """
    if baseline not in problems:
        return [f"(no verdict: {baseline} is not in this run)"]
    failed_sets = {n: set(v) for n, v in (failed or {}).items()}
    base = problems[baseline]
    base_failed = failed_sets.get(baseline, set())
    lines = []
    for name, mine in problems.items():
        if name == baseline:
            continue
        mine_failed = failed_sets.get(name, set())
        common = set(mine) & set(base)
        keys = sorted(common - mine_failed - base_failed)
        fails, base_fails = len(mine_failed & common), len(base_failed & common)
        failure = "".join([f"; its run failed (status error) on {fails} problems, left out" if fails else "",
                           f"; {baseline}'s run failed on {base_fails} problems, left out" if base_fails else ""])
        if not keys:
            lines.append(f"{name}: no problem to compare with {baseline} on (a run failed, status error, on every "
                         f"one: {fails} of its, {base_fails} of {baseline}'s)")
            continue
        ratios = np.array([_ratio(mine[k], base[k]) for k in keys])
        ratios = ratios[~np.isnan(ratios)]
        datasets = sorted({d for d, _ in keys})
        faster = tied = both_miss = 0
        for d in datasets:
            m = np.median([mine[k] for k in keys if k[0] == d])
            b = np.median([base[k] for k in keys if k[0] == d])
            faster += bool(m < b)
            both_miss += all(math.isinf(mine[k]) and math.isinf(base[k]) for k in keys if k[0] == d)
            tied += bool(m == b and not math.isinf(m))
        if len(ratios) == 0:
            lines.append(f"{name}: neither it nor {baseline} reaches the target on any problem{failure}")
            continue
        median, low, high = bootstrap_median_ci(ratios, seed=seed)
        missed = sum(math.isinf(mine[k]) for k in keys)
        base_missed = sum(math.isinf(base[k]) for k in keys)
        only = []
        if any(math.isinf(base[k]) and not math.isinf(mine[k]) for k in keys):
            only.append(f"a problem only {name} reached counts as 0")
        if any(math.isinf(mine[k]) and not math.isinf(base[k]) for k in keys):
            only.append(f"one only {baseline} reached as inf")
        notes = [f"tied on {tied}" if tied else "", f"both miss on {both_miss}" if both_miss else ""]
        shown = ", ".join(n for n in notes if n)
        lines.append(
            f"{name} reaches the target in {_times(median)} {baseline}'s steps (median over {len(ratios)} problems, "
            f"95% CI {_times(low, x=False)}-{_times(high, x=False)}{'; ' + ', '.join(only) if only else ''}), "
            f"faster on {faster} of {len(datasets)} datasets{f' ({shown})' if shown else ''}; misses {missed} of "
            f"{len(keys)} problems ({baseline}: {base_missed}){failure}"
        )
    return lines


def _times(r: float, x: bool = True) -> str:
    text = "inf" if math.isinf(r) else f"{r:.2f}"
    return f"{text}x" if x else text


# ---------------------------------------------------------------------------
# Files: atomic writes, the journal, the lock
# ---------------------------------------------------------------------------

RESULT_COLUMNS = ["dataset", "optimizer", "seed", "step", "epoch", "train_loss", "test_metric", "seconds", "status",
                  "lr", "metric", "step_lr"]
SUMMARY_COLUMNS = [
    "dataset", "optimizer", "lr", "target", "steps_to_target_median", "steps_to_target_ci_low",
    "steps_to_target_ci_high", "final_loss_mean", "final_loss_std", "test_metric_mean", "test_metric_std",
    "diverged_runs", "error_runs", "runs", "metric", "lr_source", "lr_at_grid_edge", "seconds_mean",
]
TUNING_COLUMNS = ["dataset", "optimizer", "lr", "tune_seed", "score", "status", "final_train_loss", "message"]
JOURNAL = "runs.jsonl"
RUN_FILE = "run.json"
LOCK_FILE = ".lock"
FIXED_FILES = (RUN_FILE, JOURNAL, "results.csv", "summary.csv", "tuning.csv", "profile.png", "lr_sensitivity.png")


def _lab_files(names: Iterable[str]) -> list[str]:
    """Every name the lab may have written into an output folder (temporaries of its files too)."""
    return [n for n in names if _lab_name(n) or _lab_temporary(n)]


def _lab_name(name: str) -> bool:
    return name in FIXED_FILES or (name.endswith(".png") and name[: -len(".png")] in mgdata.DATASETS)


def _lab_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary file that atomic_write made for one of the lab's files (``.summary.csv.*.tmp``).

    Another program's hidden ``.tmp`` file in the folder is not one, and is left alone.
    """
    if not (name.startswith(".") and name.endswith(".tmp")):
        return False
    return _lab_name(name[1 : -len(".tmp")].rpartition(".")[0])  # (.{file}.{tag}.tmp; the tag has no dot)


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view):]


def _atomic_write(path: str, payload: bytes) -> None:
    """Write ``payload`` to ``path`` via a temporary file, fsync and ``os.replace``: never a partial file.

    Raises :class:`LabWriteError` naming ``path``; the old file, if any, is then untouched.
    """
    try:
        atomic_write(path, lambda f: _write_all(f.fileno(), payload))
    except OSError as e:
        raise LabWriteError(f"cannot write {path}: {e.strerror or e}") from None


def _csv_bytes(columns: list[str], rows: Iterable[Mapping[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


class _Journal:
    """``runs.jsonl``: one JSON line per finished training, appended whole and fsynced."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.records: dict[tuple, dict[str, Any]] = {}
        self.damaged: list[int] = []  # numbers of whole lines that hold no record: skipped, left as they are
        try:
            if os.path.exists(path):
                with open(path, "rb") as f:
                    raw = f.read()
                whole = 0
                for number, line in enumerate(raw.splitlines(keepends=True), 1):
                    if not line.endswith(b"\n"):
                        break  # the last line, torn by a kill: dropped, and cut off below
                    whole += len(line)
                    record = _parsed_record(line)
                    if record is None:  # damaged another way: the lines after it are still good
                        self.damaged.append(number)
                        continue
                    self.records[_record_key(record)] = record
                if whole < len(raw):
                    os.truncate(path, whole)
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            raise LabWriteError(f"cannot write {path}: {e.strerror or e}") from None

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as a whole line, with the CRC-32 of its text as its last field, and fsync it."""
        text = json.dumps({k: v for k, v in record.items() if k != "traceback"})
        line = f'{text[:-1]}, "crc32": {zlib.crc32(text.encode())}}}\n'  # {..., "crc32": N}: still one JSON object
        try:
            _write_all(self.fd, line.encode())
            os.fsync(self.fd)
        except OSError as e:
            raise LabWriteError(f"cannot write {self.path}: {e.strerror or e}") from None
        self.records[_record_key(record)] = record

    def close(self) -> None:
        """Close the file."""
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _parsed_record(line: bytes) -> dict[str, Any] | None:
    """The journal record on ``line``, or None if the line holds none.

    A line is damaged (by hand, or by the disk) if it is not JSON, if its
    CRC-32 does not match its text (one changed bit in a number, a key or a
    status), or if a field a record must have is missing or of the wrong
    kind (lines written before records carried a CRC are checked this way
    only).
    """
    try:
        record = json.loads(line)
        if not isinstance(record, dict):
            return None
        crc = record.pop("crc32", None)  # (json.dumps gives the text back as written: the keys keep their order)
        if crc is not None and crc != zlib.crc32(json.dumps(record).encode()):
            return None
        if not _well_formed(record):
            return None
        _record_key(record)
    except (ValueError, TypeError, KeyError):
        return None
    return record


#: The curves each kind of record holds, one value per evaluated step (step_lr: not in records of old runs).
_CURVES = {"report": ("step", "epoch", "train_loss", "eval_loss", "eval_metric", "seconds"),
           "tune": ("step", "eval_loss", "seconds")}


def _well_formed(record: Mapping[str, Any]) -> bool:
    """Whether a journal record has every field the lab reads, each of its kind."""
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    kind = record.get("kind")
    if kind not in _CURVES or record.get("status") not in STATUSES or not number(record.get("lr")):
        return False
    if not all(isinstance(record.get(k), str) for k in ("dataset", "optimizer", "message")):
        return False
    seed = record.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        return False
    curves = [record.get(k) for k in _CURVES[kind]] + ([record["step_lr"]] if "step_lr" in record else [])
    if not all(isinstance(c, list) and all(number(v) for v in c) for c in curves):
        return False
    if len({len(c) for c in curves if isinstance(c, list)}) != 1:  # one value per evaluated step in every curve
        return False
    if kind == "tune" and not (number(record.get("score")) and number(record.get("final_train_loss"))):
        return False
    return "weights_moved" not in record or isinstance(record["weights_moved"], bool)


def _record_key(record: Mapping[str, Any]) -> tuple:
    return (record["kind"], record["dataset"], record["optimizer"], int(record["seed"]), float(record["lr"]))


class _Lock:
    """An exclusive ``fcntl.flock`` on ``out/.lock`` for the run's life; the kernel drops it if we die."""

    def __init__(self, out_dir: str) -> None:
        import fcntl

        path = os.path.join(out_dir, LOCK_FILE)
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise LabError(f"cannot use output directory {out_dir!r}: cannot open its lock file {path!r} "
                           f"({e.strerror or e}); make the folder and the file writable, or choose another --out"
                           ) from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self.fd, 100, 0).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            raise LabError(f"output directory {out_dir!r} is in use by another minigrad run (pid {holder}); "
                           "wait for it to finish or choose another --out") from None
        previous = os.pread(self.fd, 100, 0).decode(errors="replace").strip()
        self.stale = previous if previous and previous != str(os.getpid()) else ""  # a killed run's lock
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would let two runs lock different files).

        The pid is erased first, while the lock is still held, so the next run
        does not take a clean finish for a killed run.
        """
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
        with contextlib.suppress(OSError):
            os.close(self.fd)


# ---------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------


@dataclass
class Comparison:
    """Everything :func:`compare` measured: settings, run records, the summary, the verdict."""

    settings: dict[str, Any]
    procedure: str = "default"
    procedure_reason: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    tuning: list[dict[str, Any]] = field(default_factory=list)
    rates: dict[tuple[str, str], float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    verdict: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    #: Pictures that could not be written (each a LabWriteError's message); the CSVs were, and the table stands.
    write_errors: list[str] = field(default_factory=list)
    interrupted: int = 0
    done_runs: int = 0
    total_runs: int = 0

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The long results: one row per evaluated step of every reported run."""
        return _result_rows(self.records)


def _check_settings(
    datasets: Sequence[str], optimizers: Sequence[str | OptimizerSpec], lrs: Any, epochs: int, batch_size: int,
    seeds: int, tune_seeds: int, hidden: Sequence[int], target: float | None, eval_points: int,
) -> tuple[list[str], list[OptimizerSpec], dict[str, float]]:
    datasets = list(datasets)
    if not datasets:
        raise LabError("no datasets given")
    for name in datasets:
        if name not in mgdata.DATASETS:
            raise LabError(f"unknown dataset {name!r}{_did_you_mean(name, mgdata.DATASETS)}; known datasets: "
                           f"{', '.join(mgdata.DATASETS)}")
    if len(set(datasets)) != len(datasets):
        raise LabError(f"a dataset is listed twice: {', '.join(datasets)}")
    specs = [o if isinstance(o, OptimizerSpec) else resolve_optimizer(o) for o in optimizers]
    if not specs:
        raise LabError("no optimizers given")
    names = [s.name for s in specs]
    _check_plugin_names(specs)
    if len(set(names)) != len(names):
        raise LabError(f"an optimizer is listed twice (plug-ins are named by class): {', '.join(names)}")
    for what, value, low in (("epochs", epochs, 1), ("batch size", batch_size, 1), ("seeds", seeds, 1),
                             ("tune seeds", tune_seeds, 1), ("eval points", eval_points, 1)):
        _check_int(what, value, low)
    if seeds > TUNE_SEED_BASE:
        raise LabError(f"seeds must be at most {TUNE_SEED_BASE} (tuning seeds start there), got {seeds}")
    for h in hidden:
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1:
            raise LabError(f"hidden sizes must be positive integers, got {list(hidden)}")
    if target is not None and (isinstance(target, bool) or not isinstance(target, (int, float))
                               or not 0 < target < math.inf):
        raise LabError(f"target must be a positive number, got {target!r}")
    given: dict[str, float] = {}
    if isinstance(lrs, str):
        if lrs != "tune":
            raise LabError(f"lrs must be 'tune', a mapping of optimizer to rate, or None; got {lrs!r}")
    elif lrs is not None:
        by_key = {s.name: s.name for s in specs} | {s.source: s.name for s in specs}
        for key, lr in lrs.items():
            if key not in by_key:
                raise LabError(f"a learning rate is given for {key!r}, which is not among the optimizers {names}")
            if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
                raise LabError(f"the learning rate for {key!r} must be a positive number, got {lr!r}")
            given[by_key[key]] = float(lr)
        missing = [n for n in names if n not in given]
        if missing:
            raise LabError(f"rates are given for {', '.join(given)} but not for {', '.join(missing)}: one table uses "
                           "one procedure, so give a rate for every optimizer, or use --lr tune")
    return datasets, specs, given


def _check_plugin_names(specs: Sequence[OptimizerSpec]) -> None:
    """Refuse a plug-in named as a built-in is: tables and rates name plug-ins by class (and sgd is the baseline)."""
    for s in specs:
        if ":" in s.source.split("(")[0] and s.name.split("(")[0] in BUILTIN_OPTIMIZERS:
            raise LabError(f"the plug-in {s.source.split('(')[0]} is named {s.name.split('(')[0]!r}, as a built-in "
                           "is (tables name plug-ins by class, and sgd is the verdict's baseline): rename the class")


def _checked_grid(rates: Sequence[float], what: str) -> tuple[float, ...]:
    """A tuning grid as increasing floats; refused if empty, not finite and positive, or with a rate twice."""
    try:
        grid = tuple(sorted(float(x) for x in rates))
    except (TypeError, ValueError):
        raise LabError(f"{what} must be non-empty positive rates, got {rates!r}") from None
    if not grid or any(not 0 < x < math.inf for x in grid):
        raise LabError(f"{what} must be non-empty positive rates, got {rates!r}")
    twice = sorted({x for x, y in zip(grid, grid[1:]) if x == y})
    if twice:
        raise LabError(f"{what} holds {', '.join(f'{x:g}' for x in twice)} more than once; give each rate once")
    return grid


def _procedure(specs: Sequence[OptimizerSpec], datasets: Sequence[str], lrs: Any, epochs: int, batch_size: int,
               hidden: tuple[int, ...], schedule: str = "none", clip: float | None = None,
               own: Sequence[str] = ()) -> tuple[str, str]:
    """"given", "tuned" or "default", and why it is not "default" when the caller did not ask.

    ``own`` names the tuning settings the caller gave (``"a tuning grid"``, ``"tuning seeds"``), even if
    they equal the defaults: given, they ask for tuning.
    """
    if isinstance(lrs, Mapping):
        if own:  # (they would be ignored: nothing is tuned)
            raise LabError(f"this run gives every optimizer its rate and also {' and '.join(own)}, which only "
                           "tuning uses: drop --lr-grid/--tune-seeds, or tune with --lr tune")
        return "given", ""
    if lrs == "tune":
        return "tuned", ""
    settings = {"epochs": epochs, "batch_size": batch_size, "hidden": hidden}
    changed = [k for k, v in DEFAULT_SETTINGS.items() if settings[k] != v]
    if changed:
        defaults = _settings_text(DEFAULT_SETTINGS)
        return "tuned", f"the defaults are for {defaults} and this run changes {', '.join(changed)}"
    if schedule != "none" or clip is not None:
        what = " and ".join(x for x in (f"schedule {schedule}" if schedule != "none" else "",
                                         f"clipping at norm {clip:g}" if clip is not None else "") if x)
        return "tuned", f"the defaults are for a constant rate without clipping and this run uses {what}"
    for s in specs:
        if not s.builtin:
            return "tuned", f"{s.name} has no documented default rate"
    for d in datasets:
        missing = [s.name for s in specs if s.name not in DEFAULT_LRS.get(d, {})]
        if missing:
            return "tuned", f"{', '.join(missing)} has no documented default rate on {d}"
    if own:  # (the defaults are the rates this tuning picks with the default grid and seeds)
        return "tuned", f"this run gives {' and '.join(own)} of its own"
    return "default", ""


def _settings_text(s: Mapping[str, Any]) -> str:
    return f"{s['epochs']} epochs, batch {s['batch_size']}, hidden {','.join(map(str, s['hidden'])) or 'none'}"


def _prepare_out_dir(out_dir: str, resume: bool, overwrite: bool, run_info: dict[str, Any]) -> _Lock:
    """Make and lock ``out_dir``; refuse a folder that holds something unless resuming or overwriting."""
    if resume and overwrite:
        raise LabError("--resume and --overwrite contradict each other: choose one")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise LabError(f"output directory {out_dir!r} exists and is not a directory")
    if resume and not os.path.isdir(out_dir):  # (refused before the folder is made: nothing is left behind)
        raise LabError(f"--resume: {out_dir!r} does not exist, so it holds no run to resume; run without --resume "
                       "to start one there, or give the folder of the run with --out")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise LabError(f"cannot use output directory {out_dir!r}: {e.strerror or e}") from None
    if not os.access(out_dir, os.W_OK):
        raise LabError(f"output directory {out_dir!r} is not writable")
    lock = _Lock(out_dir)
    try:
        present = [n for n in os.listdir(out_dir) if n != LOCK_FILE]
        run_path = os.path.join(out_dir, RUN_FILE)
        if resume:
            if not os.path.exists(run_path):
                raise LabError(f"--resume: {out_dir!r} holds no run to resume (no {RUN_FILE}); run without --resume "
                               "to start one there")
            try:
                with open(run_path) as f:
                    stored = json.load(f)
            except (OSError, ValueError) as e:
                raise LabError(f"--resume: cannot read {run_path}: {e}") from None
            if not isinstance(stored, dict):
                raise LabError(f"--resume: {run_path} holds a JSON {type(stored).__name__}, not a run's settings; "
                               "start the run again with --overwrite")
            differ = [k for k in run_info if stored.get(k) != run_info[k]]
            if differ:
                shown = "; ".join(f"{k}: stored {stored.get(k)!r}, now {run_info[k]!r}" for k in differ)
                raise LabError(f"--resume: the settings differ from the stored run in {out_dir!r} ({shown}); "
                               "repeat the original command with --resume, write this run elsewhere with "
                               "--out DIR, or replace the stored one with --overwrite")
            for name in present:  # temporary files of a killed run: never moved into place, so never needed
                if _lab_temporary(name):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(out_dir, name))
        elif present and not overwrite:
            if RUN_FILE in present:
                raise LabError(f"output directory {out_dir!r} already holds a run: write this one elsewhere with "
                               "--out DIR, add --resume to continue that run (same settings), or --overwrite to "
                               "replace it")
            shown = ", ".join(sorted(present)[:3]) + (", ..." if len(present) > 3 else "")
            raise LabError(f"output directory {out_dir!r} already holds {len(present)} other file(s) ({shown}) and "
                           "no run: choose an empty or new folder with --out DIR, or add --overwrite to write the "
                           "run beside them (only the lab's own files are ever replaced)")
        elif overwrite:
            for name in _lab_files(present):
                try:
                    os.unlink(os.path.join(out_dir, name))
                except OSError as e:
                    raise LabWriteError(f"cannot remove {os.path.join(out_dir, name)}: {e.strerror or e}") from None
        if not resume:
            _atomic_write(run_path, (json.dumps(run_info, indent=1) + "\n").encode())
    except BaseException:
        lock.release()
        raise
    return lock


class Interrupted(KeyboardInterrupt):
    """A second SIGINT, SIGTERM or SIGHUP stopped a lab run at once; ``signum`` is that signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Signals:
    """SIGINT, SIGTERM, SIGHUP: remember the first, so the loop stops after the current run; a second stops now.

    The first is said at once (``say``), so that a long training in progress does not look like a hang; a
    second raises KeyboardInterrupt there and then (the finished trainings are in the journal already).
    """

    NAMES = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self, say: Callable[[str], Any] = lambda line: None) -> None:
        self.received = 0
        self.previous: dict[int, Any] = {}
        self.say = say

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for name in self.NAMES:
                number = getattr(signal, name, None)
                if number is not None:
                    self.previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: Any) -> None:
        if self.received:
            raise Interrupted(number)  # the second: stop now, losing only the trainings in progress
        self.received = number
        self.say(f"{signal.Signals(number).name}: stopping after the trainings in progress (send it again to stop "
                 "now; every finished training is kept either way)")

    def __exit__(self, *exc: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)


def _execute(
    tasks: list[_Task], jobs: int, backend: str, scheduler: str | None, done: Callable[[dict[str, Any]], None],
    stop: Callable[[], bool], started: Callable[[], None] = lambda: None,
) -> None:
    """Run ``tasks``, calling ``done(record)`` as each finishes, until all are done or ``stop()``.

    ``started()`` is called once the workers (if any) have their first tasks.
    """
    if not tasks:
        _workers_ready()  # (the warm-up calls are waited for: left unread, joblib warns "tasks ... not used")
        return
    if backend == "loky" and jobs == 1:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        with threadpool_limits(limits=1):  # pinned for this run only
            for task in tasks:
                if stop():
                    return
                done(_run_task(task))
        return
    from joblib import Parallel, delayed, parallel_config  # type: ignore[import-untyped]

    _workers_ready()
    client = None
    if backend == "dask":
        client = _connect(scheduler)
    try:
        config = parallel_config(backend="dask", client=client) if client else parallel_config(backend="loky")
        with config:
            results = Parallel(n_jobs=-1 if client else jobs, return_as="generator_unordered", batch_size=1)(
                delayed(_run_task)(task, True, client is None) for task in tasks
            )
            started()
            try:
                for record in results:
                    done(record)
                    if stop():
                        break
            except LabWriteError:
                raise
            except Exception as e:  # a worker died (a plug-in's os._exit, a killed process), a lost cluster
                first_line = (str(e).strip().splitlines() or [""])[0]
                raise LabRunError(
                    f"a worker failed ({type(e).__name__}: {first_line}); the finished trainings are saved: "
                    "rerun the same command with --resume (--jobs 1 runs them in this process)"
                ) from e
            with warnings.catch_warnings():  # joblib warns that it cancels the trainings in flight: resume reruns them
                warnings.simplefilter("ignore", UserWarning)
                results.close()  # type: ignore[attr-defined]
    finally:
        if client is not None:
            client.close()


def _connect(scheduler: str | None, timeout: float = 10.0) -> Any:
    """A dask.distributed Client of ``scheduler``; an address that does not answer is one LabRunError."""
    from distributed import Client

    try:
        return Client(scheduler, set_as_default=False, timeout=timeout)
    except (OSError, ValueError, TypeError) as e:  # (a timeout is an OSError; a malformed address a ValueError)
        first_line = (str(e).strip().splitlines() or [""])[0]
        raise LabRunError(f"cannot reach the dask scheduler at {scheduler!r} ({type(e).__name__}: {first_line}); "
                          "check the address (tcp://host:8786) and that the scheduler is running") from None


_WARMING: list[Any] = []  # the warm-up calls of _start_workers not yet waited for


def _start_workers(jobs: int) -> None:
    """Start the loky workers now, so that they start and import minigrad while this process gets ready.

    Worker start-up (two processes importing numpy and minigrad) then overlaps the parent's own work before
    the first training; the trainings reuse the same workers (joblib keeps one executor per worker count).
    """
    from joblib import Parallel, delayed, parallel_config

    with parallel_config(backend="loky"):
        _WARMING.append(Parallel(n_jobs=jobs, return_as="generator_unordered", batch_size=1)(
            delayed(_ready)() for _ in range(jobs)
        ))


def _ready() -> None:
    """A worker's first task: nothing (unpickling it has imported minigrad.lab)."""


def _workers_ready() -> None:
    """Wait for the warm-up calls of :func:`_start_workers` to finish."""
    while _WARMING:
        for _ in _WARMING.pop():
            pass


def _available(module: str) -> bool:
    """Whether ``module`` can be imported, found without importing it (scikit-learn takes 1.5 s to import)."""
    if module in sys.modules:
        return sys.modules[module] is not None  # None: imports of it are blocked
    return importlib.util.find_spec(module) is not None


def _check_optional(plots: bool) -> None:
    """Find missing optional packages before any training (an ImportError the CLI prints in one line)."""
    needed = [("sklearn", "scikit-learn", "the datasets need scikit-learn"),
              ("threadpoolctl", "threadpoolctl", "BLAS pinning needs threadpoolctl")]
    if plots:
        needed.append(("matplotlib", "matplotlib", "plots need matplotlib"))
    for module, package, why in needed:
        if not _available(module):
            hint = ", or run with --no-plots" if module == "matplotlib" else ""
            raise ImportError(f"{why}: {pip_hint(package)}{hint}")


def compare(
    datasets: Sequence[str] = DEFAULTS["datasets"],
    optimizers: Sequence[str | OptimizerSpec] = DEFAULTS["optimizers"],
    lrs: str | Mapping[str, float] | None = None,
    *,
    epochs: int = DEFAULTS["epochs"],
    batch_size: int = DEFAULTS["batch_size"],
    seeds: int = DEFAULTS["seeds"],
    tune_seeds: int | None = None,
    hidden: Sequence[int] = DEFAULTS["hidden"],
    target: float | None = None,
    lr_grid: Sequence[float] | None = None,
    eval_points: int = DEFAULTS["eval_points"],
    out_dir: str | os.PathLike | None = DEFAULTS["out_dir"],
    resume: bool = False,
    overwrite: bool = False,
    jobs: int = 1,
    backend: str = "loky",
    scheduler: str | None = None,
    plots: bool = True,
    progress: Callable[[str], Any] | None = None,
    schedule: str = "none",
    clip_grad_norm: float | None = None,
) -> Comparison:
    """Train an MLP per dataset x optimizer x seed (after tuning, if the procedure says so) and summarise.

    ``lrs``: None uses :data:`DEFAULT_LRS` when they apply (see the module
    docstring) and tunes every optimizer otherwise; ``"tune"`` always tunes;
    a mapping ``{name: rate}`` gives every optimizer its rate. ``target``
    None uses :data:`TARGETS` per dataset. ``lr_grid`` is the tuning grid
    (None: :data:`LR_GRID`) and ``tune_seeds`` the number of tuning seeds
    (None: 2); either one given, even at its default, makes the run tune
    where the default rates would apply, and is refused with given rates.

    With ``out_dir`` (locked for the call; another process is refused), a
    folder that already holds files is refused unless ``resume`` (the stored
    ``run.json`` must match; only missing trainings run; the result equals an
    uninterrupted run's) or ``overwrite`` (the lab's old files are removed
    first). Each finished training goes to ``runs.jsonl`` at once, and
    results.csv is rewritten from them at most every 5 s; at the end
    results.csv, summary.csv, tuning.csv (if tuned), ``<dataset>.png``,
    ``profile.png`` and ``lr_sensitivity.png`` are written atomically
    (``plots=False`` skips the PNGs). SIGINT, SIGTERM and SIGHUP stop after
    the current training (with ``jobs`` > 1, the trainings in flight are
    cancelled; resume runs them): results.csv and tuning.csv are written
    from what finished and ``interrupted`` holds the signal number.

    ``jobs`` > 1 runs trainings in joblib worker processes (loky);
    ``backend="dask"`` with ``scheduler`` (an address) sends them to a
    dask.distributed cluster, longest trainings first. Results, and the
    PNGs, are bit-identical either way; with workers, a thread of this
    process draws each plot while they train, as soon as its runs are done
    (it is written at the end with the rest). A training that fails (status "error") does not stop the others; it is in
    ``errors``. ``progress(line)`` gets a line per finished dataset and
    optimizer. ``schedule`` (:data:`SCHEDULES`) and ``clip_grad_norm`` apply
    alike to every optimizer and training, tuning included; either one makes
    the rates tuned in the run (the defaults are for a constant rate).
    Raises :class:`LabError` for bad input before training,
    :class:`LabWriteError` when a file cannot be written.
    """
    own = [what for what, value in (("a tuning grid", lr_grid), ("tuning seeds", tune_seeds)) if value is not None]
    tune_seeds = DEFAULTS["tune_seeds"] if tune_seeds is None else tune_seeds
    lr_grid = LR_GRID if lr_grid is None else lr_grid
    datasets, specs, given = _check_settings(
        datasets, optimizers, lrs, epochs, batch_size, seeds, tune_seeds, hidden, target, eval_points
    )
    hidden = tuple(int(h) for h in hidden)
    grid = _checked_grid(lr_grid, "lr_grid")
    _check_int("jobs", jobs, 1)
    if backend not in ("loky", "dask"):
        raise LabError(f"backend must be 'loky' or 'dask', got {backend!r}")
    if scheduler and backend != "dask":
        raise LabError(f"a scheduler address ({scheduler}) is for the dask backend: add --backend dask, or drop it")
    if backend == "dask" and not scheduler:
        raise LabError("the dask backend needs a scheduler address (--scheduler tcp://host:8786)")
    if backend == "dask" and importlib.util.find_spec("distributed") is None:
        raise ImportError(f"the dask backend needs dask.distributed: {pip_hint('dask[distributed]')}")
    schedule = _check_schedule(schedule)
    if clip_grad_norm is not None:
        if isinstance(clip_grad_norm, bool) or not isinstance(clip_grad_norm, (int, float)) \
                or not 0 < clip_grad_norm < math.inf:
            raise LabError(f"clip_grad_norm must be a positive number, got {clip_grad_norm!r}")
        clip_grad_norm = float(clip_grad_norm)
    procedure, reason = _procedure(specs, datasets, lrs, epochs, batch_size, hidden, schedule, clip_grad_norm, own)
    targets = {d: float(target) if target is not None else TARGETS[d] for d in datasets}
    from minigrad import __version__

    settings: dict[str, Any] = {
        "datasets": datasets, "optimizers": [s.name for s in specs], "sources": [s.source for s in specs],
        "epochs": epochs, "batch_size": batch_size, "hidden": list(hidden), "seeds": seeds,
        "tune_seeds": tune_seeds, "grid": list(grid), "procedure": procedure, "given": given,
        "targets": targets, "eval_points": eval_points, "version": __version__,
        "schedule": schedule, "clip_grad_norm": clip_grad_norm,
    }
    code = _plugin_code(specs)
    _check_optional(plots and out_dir is not None)
    result = Comparison(dict(settings, out_dir=None if out_dir is None else os.fspath(out_dir)), procedure, reason)
    mine = {"epochs": epochs, "batch_size": batch_size, "hidden": hidden}
    if target is None and any(mine[k] != DEFAULT_SETTINGS[k] for k in mine):
        result.warnings.append(
            f"note: the targets are TARGETS, chosen for {_settings_text(DEFAULT_SETTINGS)}; with "
            f"{_settings_text(mine)} a target may be out of every optimizer's reach (then all miss it), or too "
            "easy: set one with --target"
        )
    say = progress or (lambda line: None)

    lock = journal = drawing = None
    if backend == "dask":  # reached before anything is written, so that a wrong address leaves no run behind
        _connect(scheduler).close()
    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        if not out_dir:
            raise LabError("output directory must be a non-empty path")
    try:
        # From before run.json is written and the workers start: SIGTERM or SIGHUP then stops the run as SIGINT
        # does (the default action killed the process, with no resume command, and orphaned the loky workers).
        with _Signals(say) as signals:
            if out_dir is not None:
                lock = _prepare_out_dir(out_dir, resume, overwrite, settings)
                if lock.stale:
                    say(f"taking over the lock left by pid {lock.stale}, which is no longer running")
            if jobs > 1 and backend == "loky":
                _start_workers(jobs)
            journal = _Journal(os.path.join(out_dir, JOURNAL)) if out_dir is not None else None
            if journal is not None and journal.damaged:
                lines = ", ".join(map(str, journal.damaged))
                hold = "holds" if len(journal.damaged) == 1 else "hold"
                note = (f"warning: {journal.path}: {_count(len(journal.damaged), 'line')} ({lines}) {hold} no record "
                        "(damaged by hand or by the disk): skipped and left in the file; a training it held runs again")
                say(note)
                result.warnings.append(note)
            records: dict[tuple, dict[str, Any]] = dict(journal.records) if journal else {}
            failed = [k for k, r in records.items() if r["status"] == "error"]
            if failed:  # a resumed run trains again what failed before (its cause may be fixed): it is not finished
                say(f"training again {_count(len(failed), 'run')} that failed before")
                for k in failed:
                    del records[k]
            # A plug-in edited since some of its runs: those are another optimizer's, so they are trained again.
            stale = [k for k, r in records.items() if r["optimizer"] in code and r.get("code") != code[r["optimizer"]]]
            if stale:
                names = sorted({records[k]["optimizer"] for k in stale})
                say(f"the code of {', '.join(names)} changed since {_count(len(stale), 'run')} of it finished: "
                    "training those again with the code as it is now")
                for k in stale:
                    del records[k]
            if plots and out_dir is not None:
                drawing = _Plots(background=jobs > 1 or backend == "dask")  # see _Plots: where the drawing happens
            _sweep(result, specs, datasets, grid, given, records, journal, jobs, backend, scheduler, signals, say,
                   drawing, code)
        result.interrupted = signals.received
        changed = sorted({r["optimizer"] for r in records.values() if r["optimizer"] in code
                          and r.get("code") != code[r["optimizer"]]})
        if changed:  # edited while this run trained: its runs are not all of one version of the code
            result.warnings.append(
                f"warning: the code of {', '.join(changed)} changed while this run trained, so its runs mix two "
                "versions; run the same command with --resume to train the older ones again")
        still = sorted({r["optimizer"] for r in records.values() if r.get("weights_moved") is False})
        for name in still:  # an update that rebinds w (w = w - lr * g) changes nothing, yet the lab would rank it
            runs = [r for r in records.values() if r["optimizer"] == name and "weights_moved" in r]
            which = "any of its" if all(r["weights_moved"] is False for r in runs) else "some of its"
            result.warnings.append(
                f"warning: {name} never changed a weight in {which} runs: an update must change w in place "
                "(w -= lr * g, or w[...] = ...); w = w - lr * g only gives the name w a new array")
        result.records = [r for r in records.values() if r["kind"] == "report"]
        tune_records = [r for r in records.values() if r["kind"] == "tune"]
        result.tuning = _tuning_rows(tune_records)
        result.errors = [r for r in records.values() if r["status"] == "error"]
        if not result.interrupted:
            _summarise(result, specs, datasets)
        if out_dir is not None:
            result.files = _write_outputs(result, out_dir, None if result.interrupted else drawing)
    finally:
        _WARMING.clear()  # (a run with nothing left to train never waited for them)
        if drawing is not None:
            drawing.close()
        if journal is not None:
            journal.close()
        if lock is not None:
            lock.release()
    return result


def _check_schedule(schedule: Any) -> str:
    """Refuse a schedule spec that :func:`~minigrad.optim.lr_scheduler.schedule_from_spec` would refuse."""
    if not isinstance(schedule, str):
        raise LabError(f"schedule must be a string like {', '.join(SCHEDULES)}, got {schedule!r}")
    probe = optim.SGD([nn.Parameter(np.zeros(1, dtype=np.float32))], lr=0.1)
    try:
        optim.lr_scheduler.schedule_from_spec(schedule, probe, 100)
    except (TypeError, ValueError) as e:
        raise LabError(f"--schedule: {e}") from None
    return schedule.strip()


def _tasks(kind: str, datasets: Sequence[str], specs: Sequence[OptimizerSpec], seeds: Iterable[int],
           rates: Callable[[str, OptimizerSpec], Sequence[float]], st: Mapping[str, Any]) -> list[_Task]:
    code = {s.name: _code_digest(s.source) for s in specs}  # (read once here, not in every training)
    return [
        _Task(kind, d, s.name, s.source, lr, seed, st["epochs"], st["batch_size"], tuple(st["hidden"]),
              st["eval_points"], st["schedule"], st["clip_grad_norm"], code[s.name])
        for d in datasets for s in specs for lr in rates(d, s) for seed in seeds
    ]


def _sweep(
    result: Comparison, specs: Sequence[OptimizerSpec], datasets: Sequence[str], grid: tuple[float, ...],
    given: Mapping[str, float], records: dict[tuple, dict[str, Any]], journal: _Journal | None, jobs: int,
    backend: str, scheduler: str | None, signals: _Signals, say: Callable[[str], Any], drawing: _Plots | None,
    code: Mapping[str, str],
) -> None:
    """Tune (if the procedure says so), then run the reported seeds; every finished training is journalled.

    A plug-in's record holds the SHA-256 of its source file (``code``), which a resume checks.

    ``drawing`` gets each plot as soon as its data is final: the learning-rate sensitivity after the
    tuning, a dataset's curves when its last reported run is done.
    """
    st = result.settings
    tune_seeds = [TUNE_SEED_BASE + i for i in range(st["tune_seeds"])]
    report_seeds = list(range(st["seeds"]))
    tune = _tasks("tune", datasets, specs, tune_seeds, lambda d, s: grid, st) if result.procedure == "tuned" else []
    result.total_runs = len(tune) + len(datasets) * len(specs) * len(report_seeds)
    result.done_runs = sum(1 for t in tune if t.key in records)

    last_results = [time.monotonic()]

    def runner(tasks: list[_Task], describe: Callable[[str, str], str],
               finished: Callable[[dict[str, Any]], None] = lambda record: None) -> None:
        waiting = [t for t in tasks if t.key not in records]
        if jobs > 1 or backend == "dask":
            waiting = _longest_first(waiting)
        left: dict[tuple[str, str], int] = {}
        for t in waiting:
            left[t.dataset, t.optimizer] = left.get((t.dataset, t.optimizer), 0) + 1

        def done(record: dict[str, Any]) -> None:
            if journal is not None:
                journal.append(record)
            records[_record_key(record)] = record
            result.done_runs += 1
            group = (record["dataset"], record["optimizer"])
            left[group] -= 1
            if record["status"] == "error":
                say(f"error: {record['optimizer']} on {record['dataset']}, seed {record['seed']}, "
                    f"lr {record['lr']:g}: {record['message']}")
            if left[group] == 0:
                say(f"[{result.done_runs}/{result.total_runs}] {describe(*group)}")
            finished(record)
            if journal is not None and record["kind"] == "report" and time.monotonic() > last_results[0] + 5:
                # results.csv from the runs so far, every 5 s at most: a kill leaves a recent, complete file
                reports = [r for r in records.values() if r["kind"] == "report"]
                path = os.path.join(os.path.dirname(journal.path), "results.csv")
                _atomic_write(path, _csv_bytes(RESULT_COLUMNS, _result_rows(reports)))
                last_results[0] = time.monotonic()

        _execute(waiting, jobs, backend, scheduler, done, lambda: bool(signals.received),
                 started=drawing.start if drawing is not None else lambda: None)

    if tune:
        def tuned_line(dataset: str, optimizer: str) -> str:
            best, _ = _best_rate(records, dataset, optimizer, grid, tune_seeds)
            return f"tuned {optimizer} on {dataset}: " + ("no rate worked" if best is None else f"lr {best:.3g}")

        runner(tune, tuned_line)
        if signals.received:
            # Which rates the reported runs use is not known yet: runs reported before (a resume) may be at
            # another rate than this tuning picks, so none is shown (the journal keeps them all).
            for k in [k for k, r in records.items() if r["kind"] == "report"]:
                del records[k]
            return
    for d in datasets:
        for s in specs:
            if result.procedure == "given":
                result.rates[d, s.name] = given[s.name]
            elif result.procedure == "default":
                result.rates[d, s.name] = DEFAULT_LRS[d][s.name]
            else:
                best, _ = _best_rate(records, d, s.name, grid, tune_seeds)
                # The reported runs use the winner to three significant digits, as the tables print it and as
                # DEFAULT_LRS stores the defaults: a tuned run that picks a documented rate gets its very rows.
                result.rates[d, s.name] = math.nan if best is None else _to_3_digits(best)
                if best is not None and len(grid) > 1 and best in (grid[0], grid[-1]):
                    result.warnings.append(_edge_warning(s.name, d, best, grid))
    report = [t for t in _tasks("report", datasets, specs, report_seeds, lambda d, s: [result.rates[d, s.name]], st)
              if not math.isnan(t.lr)]
    # Reported runs journalled at another rate than these (a resume whose tuning changed its choice, after a
    # failed tuning run was trained again, or new default rates): another comparison's; left out.
    planned = {t.key for t in report}
    other = [k for k, r in records.items() if r["kind"] == "report" and k not in planned]
    if other:
        groups = sorted({(records[k]["optimizer"], records[k]["dataset"]) for k in other})
        say(f"leaving out {_count(len(other), 'reported run')} journalled at a rate this run does not use "
            f"({', '.join(f'{o} on {d}' for o, d in groups)}): their seeds run at the rate it uses")
        for k in other:
            del records[k]
    result.total_runs = len(tune) + len(report)
    result.done_runs = sum(1 for t in tune + report if t.key in records)

    def report_line(dataset: str, optimizer: str) -> str:
        return f"{optimizer} on {dataset}: {_count(len(report_seeds), 'seed')} done"

    if drawing is None:
        runner(report, report_line)
        return
    settings = dict(st)
    if tune:
        tuning = _tuning_rows(r for r in records.values() if r["kind"] == "tune")
        drawing.submit("lr_sensitivity.png", functools.partial(_plot_sensitivity, settings, tuning))
    unfinished = {d: sum(t.dataset == d and t.key not in records for t in report) for d in datasets}

    def draw(dataset: str) -> None:
        runs = [r for r in records.values() if r["kind"] == "report" and r["dataset"] == dataset]
        rates = {s.name: result.rates[dataset, s.name] for s in specs}
        drawing.submit(f"{dataset}.png", functools.partial(_plot_dataset, dataset, runs, settings, rates))

    def dataset_done(record: dict[str, Any]) -> None:
        unfinished[record["dataset"]] -= 1
        if unfinished[record["dataset"]] == 0:
            draw(record["dataset"])

    for d in datasets:
        if unfinished[d] == 0:  # finished before a resume, or no rate worked
            draw(d)
    runner(report, report_line, dataset_done)


def _longest_first(tasks: list[_Task]) -> list[_Task]:
    """The tasks by decreasing number of optimizer steps, which a training's time follows (ties keep their order).

    Workers take tasks in this order, so the last ones are short and no worker
    waits long at the end for another to finish a long training (the longest
    processing time rule).
    """
    def steps(task: _Task) -> int:
        X = (_report_split if task.kind == "report" else _validation_split)(task.dataset)[0]
        return task.epochs * math.ceil(len(X) / task.batch_size)

    return sorted(tasks, key=steps, reverse=True)


def _best_rate(records: Mapping[tuple, dict[str, Any]], dataset: str, optimizer: str, grid: Sequence[float],
               tune_seeds: Sequence[int]) -> tuple[float | None, list[tuple[float, float]]]:
    """The tuned rate (lowest mean score, ties to the smaller rate; None if all diverged) and every score."""
    scores = []
    for lr in grid:
        runs = [records.get(("tune", dataset, optimizer, seed, lr)) for seed in tune_seeds]
        if any(r is None for r in runs):
            continue
        scores.append((lr, float(np.mean([r["score"] for r in runs]))))  # type: ignore[index]
    finite = [s for s in scores if math.isfinite(s[1])]
    if not finite:
        return None, scores
    return min(finite, key=lambda s: (s[1], s[0]))[0], scores


def _edge_warning(name: str, dataset: str, best: float, grid: Sequence[float]) -> str:
    low_end = best == grid[0]
    side = "below" if low_end else "above"
    text = (f"warning: {name}'s best rate on {dataset}, {best:.3g}, is the {'lowest' if low_end else 'highest'} "
            f"rate of the grid; the best may lie {side} it: widen the grid")
    wider = _wider_grid(grid, low_end)
    return text if wider is None else text + f", e.g. --lr-grid {wider}"


def _wider_grid(grid: Sequence[float], low_end: bool) -> str | None:
    """LOW:HIGH:N for a grid two decades or more wider on one side that keeps the winning end rate (None if absurd).

    In whole steps of the grid, so that it keeps every rate of this one (a width that is not a whole number of
    steps gave a grid without the winner: 1e-3:1:3 became 1e-05:1:4); where those steps are over a decade or
    would take over 50 rates (a narrow grid's tiny steps), in half-decade steps from the winner instead.
    """
    step = math.log10(grid[-1] / grid[0]) / (len(grid) - 1)  # decades between neighbouring rates
    more = math.ceil(2 / step - 1e-9)  # (1e-9: a step that divides 2 exactly, up to rounding, is not one more)
    if step <= 1 and len(grid) + more <= 50:
        factor = 10 ** (more * step)
        low, high = (grid[0] / factor, grid[-1]) if low_end else (grid[0], grid[-1] * factor)
        n = len(grid) + more
    else:  # 2 rates a decade, as the default grid has: 4 steps past the winner, and enough to reach the other end
        span = math.ceil(2 * math.log10(grid[-1] / grid[0]) - 1e-9)
        low, high = (grid[0] / 100, grid[0] * 10 ** (span / 2)) if low_end else \
            (grid[-1] / 10 ** (span / 2), grid[-1] * 100)
        n = span + 5
    if not (0 < low < high < math.inf):  # (rates near the ends of the floats)
        return None
    return f"{low:.10g}:{high:.10g}:{n}"  # (10 digits: each rate comes back to far better than the 3 reported)


def _tuning_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = [{"dataset": r["dataset"], "optimizer": r["optimizer"], "lr": r["lr"], "tune_seed": r["seed"],
             "score": r["score"], "status": r["status"], "final_train_loss": r["final_train_loss"],
             "message": r["message"]} for r in records]
    return sorted(rows, key=lambda r: (r["dataset"], r["optimizer"], r["lr"], r["tune_seed"]))


def _result_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in sorted(records, key=lambda r: (r["dataset"], r["optimizer"], r["seed"])):
        metric = "accuracy" if mgdata.DATASETS[r["dataset"]] == "classification" else "r2"
        for i, step in enumerate(r["step"]):
            rows.append({"dataset": r["dataset"], "optimizer": r["optimizer"], "seed": r["seed"], "step": step,
                         "epoch": r["epoch"][i], "train_loss": r["train_loss"][i], "test_metric": r["eval_metric"][i],
                         "seconds": r["seconds"][i], "status": r["status"], "lr": r["lr"], "metric": metric,
                         "step_lr": r["step_lr"][i] if "step_lr" in r else r["lr"]})
    return rows


def _summarise(result: Comparison, specs: Sequence[OptimizerSpec], datasets: Sequence[str]) -> None:
    """The summary rows (one per dataset and optimizer), the verdict lines and the per-problem steps."""
    st = result.settings
    by_key = {(r["dataset"], r["optimizer"], r["seed"]): r for r in result.records}
    problems: dict[str, dict[tuple[str, int], float]] = {s.name: {} for s in specs}
    # Where tuning found no rate and some trial failed (status error, e.g. a plug-in that raises), the
    # optimizer has no run to count: its problems are failures, left out as a failed run is, not misses. (Where
    # every trial diverged, it misses the target at every rate tried: its problems count as misses.)
    tried: dict[tuple[str, str], set[str]] = {}
    for row in result.tuning:
        tried.setdefault((row["dataset"], row["optimizer"]), set()).add(row["status"])
    untried = {pair for pair, statuses in tried.items() if "error" in statuses}  # (read only where no rate won)
    unrun: set[tuple[str, str]] = set()  # (dataset, optimizer) with no reported run, as failures
    for d in datasets:
        target = st["targets"][d]
        for s in specs:
            runs = [by_key[d, s.name, seed] for seed in range(st["seeds"]) if (d, s.name, seed) in by_key]
            lr = result.rates.get((d, s.name), math.nan)
            # A run that diverged after it reached the target counts the step it reached it at (the definition:
            # the first evaluated step at or below it); a failed run (status error) is left out below.
            steps = [steps_to_target(r["step"], r["train_loss"], target) if r["status"] != "error" else math.inf
                     for r in runs]
            for r, n in zip(runs, steps):
                problems[s.name][d, r["seed"]] = n
            if not runs:
                if (d, s.name) in untried:
                    unrun.add((d, s.name))
                    steps = []
                else:
                    steps = [math.inf] * st["seeds"]
                for seed in range(st["seeds"]):
                    problems[s.name][d, seed] = math.inf
            # A failed run (status error) is no miss: the summary is over the others (nan if none is left).
            counted = [n for r, n in zip(runs, steps) if r["status"] != "error"] if runs else steps
            median, low, high = bootstrap_median_ci(counted) if counted else (math.nan, math.nan, math.nan)
            ok = [r for r in runs if r["status"] == "ok"]
            final = np.array([r["train_loss"][-1] for r in ok])
            metric = np.array([r["eval_metric"][-1] for r in ok])
            grid = st["grid"]
            result.summary.append({
                "dataset": d, "optimizer": s.name, "lr": lr, "target": target,
                "steps_to_target_median": median, "steps_to_target_ci_low": low, "steps_to_target_ci_high": high,
                "final_loss_mean": float(final.mean()) if len(ok) else math.nan,
                "final_loss_std": float(final.std()) if len(ok) else math.nan,
                "test_metric_mean": float(metric.mean()) if len(ok) else math.nan,
                "test_metric_std": float(metric.std()) if len(ok) else math.nan,
                "diverged_runs": sum(r["status"] == "diverged" for r in runs),
                "error_runs": sum(r["status"] == "error" for r in runs),
                "runs": len(runs),
                "metric": "accuracy" if mgdata.DATASETS[d] == "classification" else "r2",
                "lr_source": result.procedure,
                "lr_at_grid_edge": result.procedure == "tuned" and len(grid) > 1
                and lr in (_to_3_digits(grid[0]), _to_3_digits(grid[-1])),
                "seconds_mean": float(np.mean([r["seconds"][-1] for r in runs])) if runs else math.nan,
            })
    failed = {s.name: [(r["dataset"], r["seed"]) for r in result.records
                       if r["optimizer"] == s.name and r["status"] == "error"]
              + [(d, seed) for d in datasets if (d, s.name) in unrun for seed in range(st["seeds"])]
              for s in specs}
    result.verdict = verdicts(problems, failed=failed) if len(specs) > 1 else []
    result.settings["problems"] = problems
    result.settings["failed_problems"] = failed


# ---------------------------------------------------------------------------
# Plots: stable colours, legends that hide nothing, coinciding curves kept visible
# ---------------------------------------------------------------------------

#: Each built-in's colour in every plot of every run; other names get a stable colour from _EXTRA_COLOURS.
COLOURS: dict[str, str] = {
    "sgd": "#1f77b4", "momentum": "#ff7f0e", "nesterov": "#2ca02c", "adam": "#d62728", "adamw": "#9467bd",
    "rmsprop": "#8c564b", "adagrad": "#e377c2", "nadam": "#7f7f7f", "lion": "#bcbd22",
}
_EXTRA_COLOURS = ("#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d",
                  "#31a354", "#6b6ecf", "#b5cf6b", "#e7ba52", "#d6616b", "#ce6dbd")  # none of them a built-in's
_STYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*")


def colour_for(name: str) -> str:
    """An optimizer's colour: fixed for the built-ins, else picked by a hash of the name (stable across runs)."""
    if name in COLOURS:
        return COLOURS[name]
    digest = int(hashlib.sha1(name.encode()).hexdigest(), 16)
    return _EXTRA_COLOURS[digest % len(_EXTRA_COLOURS)]


def _style(index: int) -> dict[str, Any]:
    """Line style and marker by position in the run, so curves that coincide stay distinguishable."""
    return {"linestyle": _STYLES[index % len(_STYLES)], "marker": _MARKERS[index % len(_MARKERS)],
            "markevery": 0.1, "markersize": 4, "linewidth": 1.6}


def _figure(width: float, height: float) -> Any:
    """A matplotlib Figure made without pyplot, so nothing global holds it and any one thread may draw it."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _figure_png(fig: Any) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")  # no bbox_inches="tight": it draws the figure twice
    return buffer.getvalue()


def _png(fig: Any) -> bytes:
    """A pyplot figure as PNG bytes; the figure is closed (pyplot keeps every figure until then)."""
    import matplotlib.pyplot as plt

    png = _figure_png(fig)
    plt.close(fig)
    return png


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_dataset(dataset: str, runs: Sequence[Mapping[str, Any]], settings: Mapping[str, Any],
                  rates: Mapping[str, float]) -> bytes:
    """``<dataset>.png``: each optimizer's train loss per step, mean over its ``runs`` (the dataset's) and band."""
    fig = _figure(7.5, 4.2)
    ax = fig.subplots()
    for i, name in enumerate(settings["optimizers"]):
        mine = sorted((r for r in runs if r["optimizer"] == name), key=lambda r: r["seed"])
        if not mine:
            continue
        steps = max((r["step"] for r in mine), key=len)
        loss = np.full((len(mine), len(steps)), np.nan)  # a diverged run stops early: nan after it
        for j, r in enumerate(mine):
            loss[j, : len(r["train_loss"])] = r["train_loss"]
        loss[~np.isfinite(loss)] = np.nan
        with warnings.catch_warnings():  # a step where every seed had diverged is all nan
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, low, high = np.nanmean(loss, 0), np.nanmin(loss, 0), np.nanmax(loss, 0)
        lr = rates.get(name, math.nan)
        # A long name (a plug-in with arguments) takes two lines, so the legend stays inside the figure.
        label = f"{name}\n(lr {lr:g})" if len(name) > 14 else f"{name} (lr {lr:g})"
        ax.plot(steps, mean, color=colour_for(name), label=label, **_style(i))
        ax.fill_between(steps, low, high, color=colour_for(name), alpha=0.15, linewidth=0)
    ax.axhline(settings["targets"][dataset], color="gray", linestyle=":", linewidth=1, label="target")
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("train loss (log scale)")
    n = settings["seeds"]
    # Speed device: y=1.0 is where matplotlib would put the title anyway; given, it spares the draw a pass over the
    # tick labels to place it (byte-identical PNGs, about 5 ms a plot).
    ax.set_title(f"{dataset}: train loss, mean of {n} seed{'s' if n > 1 else ''} (band: min to max)", fontsize=10,
                 y=1.0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # outside the axes: hides no curve
    ax.grid(True, which="both", alpha=0.3)
    fig.subplots_adjust(left=0.09, right=0.68, bottom=0.12, top=0.9)
    return _figure_png(fig)


def _profile_problems(
    problems: Mapping[str, Mapping[tuple[str, int], float]], failed: Mapping[str, Iterable[tuple[str, int]]]
) -> tuple[list[tuple[str, int]], dict[str, list[float]], float]:
    """The problems the profile shows (none with a failed run), each optimizer's steps on them, and τ's end."""
    left_out = {k for runs in failed.values() for k in runs}
    keys = sorted(set(next(iter(problems.values()))) - left_out)
    table = {n: [problems[n][k] for k in keys] for n in problems}
    tau_max = 10.0
    if keys:  # τ up to the largest finite ratio, as the profile reads them (a 0 best: inf for the others)
        ratios = _profile_ratios(np.array(list(table.values()), dtype=np.float64))
        finite = ratios[np.isfinite(ratios)]
        tau_max = max(10.0, float(finite.max()) * 1.05) if finite.size else 10.0
    return keys, table, tau_max


def _plot_profile(problems: Mapping[str, Mapping[tuple[str, int], float]],
                  failed: Mapping[str, Iterable[tuple[str, int]]]) -> bytes:
    """``profile.png``: the performance profile of every optimizer over the problems (dataset x seed).

    A problem on which some optimizer's run failed (status error) is left out for all, as the table and the
    verdict leave failed runs out (a failure is no miss). τ runs from 1 to the largest finite ratio (at
    least 10), so the right end of a curve is the fraction of problems the optimizer reached the target on.
    """
    keys, table, tau_max = _profile_problems(problems, failed)
    taus = np.logspace(0, math.log10(tau_max), 200)
    profile = performance_profile(table, taus) if keys else {}
    fig = _figure(7.5, 4.2)
    ax = fig.subplots()
    for i, (name, rho) in enumerate(profile.items()):
        ax.step(taus, rho, where="post", color=colour_for(name), label=name, **(_style(i) | {"markevery": 0.15}))
    ax.set_xscale("log")
    ax.set_xlim(1, tau_max)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("τ: steps to target within this factor of the best optimizer's")
    ax.set_ylabel("fraction of problems")
    # y given: see _plot_dataset.
    dropped = len(next(iter(problems.values()))) - len(keys)
    out = f"; {dropped} with a failed run left out" if dropped else ""
    ax.set_title(f"performance profile over {len(keys)} problems (dataset x seed{out})", fontsize=10, y=1.0)
    if profile:  # (every problem had a failed run: an empty profile, its title says why)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.subplots_adjust(left=0.09, right=0.72, bottom=0.12, top=0.9)
    return _figure_png(fig)


def _plot_sensitivity(settings: Mapping[str, Any], tuning: Sequence[Mapping[str, Any]]) -> bytes:
    """``lr_sensitivity.png``: per dataset, each optimizer's tuning score per rate (``tuning``: tuning.csv's rows)."""
    datasets = settings["datasets"]
    cols = min(4, len(datasets))
    rows = math.ceil(len(datasets) / cols)
    fig = _figure(3.6 * cols + 1.6, 2.8 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, d in zip(axes.flat, datasets):
        curves = {}
        for name in settings["optimizers"]:
            mine = [r for r in tuning if r["dataset"] == d and r["optimizer"] == name]
            lrs = sorted({r["lr"] for r in mine})
            score = [float(np.mean([r["score"] for r in mine if r["lr"] == lr])) for lr in lrs]
            curves[name] = [(lr, s) for lr, s in zip(lrs, score) if math.isfinite(s)]
        best = min((s for c in curves.values() for _, s in c), default=1.0)
        cap = 20 * best  # scores of nearly diverging rates reach 1e30: draw them at the top
        for i, (name, finite) in enumerate(curves.items()):
            if finite:
                x, y = zip(*finite)
                ax.plot(x, np.minimum(y, cap), color=colour_for(name), label=name,
                        **(_style(i) | {"markevery": 1}))
        ax.set_ylim(best / 1.5, cap * 1.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(_null_formatter())  # (over a short log range, minor labels pile up)
        ax.set_title(d, fontsize=9)
        ax.set_xlabel("lr", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(datasets):]:
        ax.axis("off")
    axes[0][0].set_ylabel("tuning score (mean val loss)", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle("learning-rate sensitivity: tuning score per rate (diverged rates left out; "
                 "scores above 20x the best drawn at 20x)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 1.6 / (3.6 * cols + 1.6), 0.95))
    fig.legend(handles, labels, loc="center right", fontsize=8)  # (in the right margin, below the title)
    return _figure_png(fig)


def _null_formatter() -> Any:
    from matplotlib.ticker import NullFormatter

    return NullFormatter()


class _Plots:
    """The run's PNGs, each drawn once what it shows is final; ``finish()`` returns them by file name.

    While worker processes train (``background``: ``jobs`` > 1, a cluster),
    a thread of this process draws each plot as soon as it is submitted, so
    the plots overlap the training instead of following it. The thread starts
    (``start()``) once the workers have been started, and imports matplotlib
    while they start up, which leaves a core idle part of the time; before
    that, its imports would delay the parent's.
    When this process trains, the plots are drawn in ``finish()``, after the
    training: a thread would only take turns with the training for the
    interpreter lock, and the turns would count as training time. The drawing
    functions get their data as arguments, never the dict of records, which
    the main thread keeps adding to.
    """

    def __init__(self, background: bool) -> None:
        self.background = background
        self.png: dict[str, bytes] = {}
        self.later: list[tuple[str, Callable[[], bytes]]] = []
        self.error: BaseException | None = None
        self.stopped = False
        self.queue: queue.SimpleQueue[tuple[str, Callable[[], bytes]] | None] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (in the background mode), if it is not running yet."""
        if self.background and self.thread is None and not self.stopped:
            self.thread = threading.Thread(target=self._draw_queued, name="minigrad-plots", daemon=True)
            self.thread.start()

    def submit(self, name: str, draw: Callable[[], bytes]) -> None:
        """Draw ``name`` with ``draw()``: in the thread, or in ``finish()``."""
        if not self.background:
            self.later.append((name, draw))
            return
        self.start()
        self.queue.put((name, draw))

    def _draw_queued(self) -> None:
        try:
            import matplotlib.figure  # noqa: F401  # before any plot is due: see the class's docstring
        except BaseException as e:  # re-raised by finish(), in the caller's thread
            self.error = e
        while (item := self.queue.get()) is not None:
            if self.error is None and not self.stopped:
                try:
                    self._draw(*item)
                except BaseException as e:
                    self.error = e

    def _draw(self, name: str, draw: Callable[[], bytes]) -> None:
        # Speed device: a plot makes some 10^4 short-lived containers (artists, transforms, paths), which set
        # off about 18 garbage collections, each walking the young objects still alive. Paused while the plot
        # is drawn, the collector runs once after it, freeing the figure's cycles in one go: about half the
        # collector's time (0.05-0.08 s of the default run's 0.9 s of plots).
        enabled = gc.isenabled()
        gc.disable()
        try:
            self.png[name] = draw()
        finally:
            if enabled:
                gc.enable()

    def _join(self) -> None:
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None

    def finish(self) -> dict[str, bytes]:
        """Every submitted plot, drawn; raises what a drawing raised."""
        self._join()
        if self.error is not None:
            raise self.error
        for name, draw in self.later:
            self._draw(name, draw)
        self.later.clear()
        return self.png

    def close(self) -> None:
        """Stop: the plot being drawn is finished, the queued ones are dropped."""
        self.stopped = True
        self._join()


def _write_outputs(result: Comparison, out_dir: str, plots: _Plots | None) -> list[str]:
    """Write every output file atomically (the PNGs if ``plots``, drawn there); return their paths."""
    written = []

    def put(name: str, payload: bytes) -> None:
        path = os.path.join(out_dir, name)
        _atomic_write(path, payload)
        written.append(path)

    pictures = [f"{d}.png" for d in result.settings["datasets"]] + ["profile.png", "lr_sensitivity.png"]
    put("results.csv", _csv_bytes(RESULT_COLUMNS, result.rows))
    if result.interrupted:  # a summary and pictures of the run before a resume would not match results.csv
        for name in ["summary.csv", *pictures]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(out_dir, name))
    if result.tuning:
        put("tuning.csv", _csv_bytes(TUNING_COLUMNS, result.tuning))
    if result.summary:
        put("summary.csv", _csv_bytes(SUMMARY_COLUMNS, result.summary))
    if plots is not None and result.summary:
        plots.submit("profile.png", functools.partial(_plot_profile, result.settings["problems"],
                                                      result.settings["failed_problems"]))
        png = plots.finish()
        for name in pictures:
            if name in png:
                try:
                    put(name, png[name])
                except LabWriteError as e:  # a picture lost is said, but keeps neither the others nor the table
                    result.write_errors.append(str(e))
    return written


# ---------------------------------------------------------------------------
# The documented defaults, regenerated
# ---------------------------------------------------------------------------


def choose_defaults(
    datasets: Sequence[str] = tuple(mgdata.DATASETS), *, jobs: int = 1, progress: Callable[[str], Any] | None = None
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Tune the built-ins for :data:`DEFAULT_SETTINGS` and return new ``(DEFAULT_LRS, TARGETS)``.

    This is ``python -m minigrad defaults``: the tuning of ``--lr tune``
    (grid :data:`LR_GRID`, the default tuning seeds) for every built-in on
    every dataset, rates rounded to 3 significant digits. The target of a
    dataset is the largest, over the default run's optimizers
    (``DEFAULTS["optimizers"]``) at those rates, of the train loss at the
    middle of the run (median over the tuning seeds, on the tuning split), to
    2 significant digits: the slowest of them gets there about half way, so
    each reaches it and the faster ones visibly earlier. No reported seed is
    used.
    """
    specs = [resolve_optimizer(n) for n in BUILTIN_OPTIMIZERS]
    st = DEFAULT_SETTINGS
    result = compare(datasets, specs, "tune", epochs=st["epochs"], batch_size=st["batch_size"], hidden=st["hidden"],
                     seeds=1, target=1.0, out_dir=None, jobs=jobs, progress=progress, plots=False)
    rates = {d: {s.name: _to_3_digits(result.rates[d, s.name]) for s in specs} for d in datasets}
    # The halfway losses: the default run's optimizers at the rounded rates, on the tuning split, as
    # trainings of their own, so they run in parallel with jobs > 1 like the tuning.
    settings = {**st, "eval_points": DEFAULTS["eval_points"], "schedule": "none", "clip_grad_norm": None}
    reported = [s for s in specs if s.name in DEFAULTS["optimizers"]]
    seeds = [TUNE_SEED_BASE + i for i in range(DEFAULTS["tune_seeds"])]
    curves = _tasks("curve", datasets, reported, seeds, lambda d, s: [rates[d][s.name]], settings)
    runs: dict[tuple[str, str, int], dict[str, Any]] = {}

    def done(record: dict[str, Any]) -> None:
        runs[record["dataset"], record["optimizer"], record["seed"]] = record

    _execute(_longest_first(curves) if jobs > 1 else curves, jobs, "loky", None, done, lambda: False)
    targets: dict[str, float] = {}
    for d in datasets:
        halfway = []
        for s in reported:
            losses = []
            for seed in seeds:
                run = runs[d, s.name, seed]
                middle = int(np.argmin(np.abs(np.array(run["step"]) - run["step"][-1] / 2)))
                losses.append(run["train_loss"][middle])
            halfway.append(float(np.median(losses)))
        targets[d] = float(f"{max(halfway):.2g}")
    return rates, targets


# ---------------------------------------------------------------------------
# The printed table
# ---------------------------------------------------------------------------


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _number(x: float, decimals: int) -> str:
    """Fixed decimals for ordinary values, scientific notation for huge or tiny ones."""
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 10**-decimals):
        return f"{x:.2e}"
    return f"{x:.{decimals}f}"


def _steps(x: float) -> str:
    return "never" if math.isinf(x) else "-" if math.isnan(x) else f"{x:g}"


def _heading(result: Comparison) -> str:
    st = result.settings
    grid = st["grid"]
    if result.procedure == "default":
        how = (f"the documented per-dataset defaults (DEFAULT_LRS, tuned for {_settings_text(DEFAULT_SETTINGS)}; "
               "regenerate with `python -m minigrad defaults`)")
    elif result.procedure == "given":
        how = "given on the command line"
    else:
        how = (f"tuned in this run for every optimizer, per dataset, on a validation split "
               f"({VALIDATION_SIZE:.0%} of the training set; grid {grid[0]:g} to {grid[-1]:g}, {len(grid)} rates; "
               f"{_count(st['tune_seeds'], 'tuning seed')}, disjoint from the reported ones)")
        if result.procedure_reason:
            how += f", because {result.procedure_reason}"
    extra = []
    if st.get("schedule", "none") != "none":
        extra.append(f"schedule {st['schedule']} (the same for every optimizer, stepped after every step)")
    if st.get("clip_grad_norm") is not None:
        extra.append(f"gradients clipped to norm {st['clip_grad_norm']:g} before every step")
    if not extra:
        return f"Learning rates: {how}."
    also = "; ".join(extra)
    return f"Learning rates: {how}. {also[0].upper()}{also[1:]}."


def format_table(result: Comparison) -> str:
    """The printed summary: per dataset and optimizer, steps to target with its interval, loss, metric; verdicts."""
    st = result.settings
    targets = st["targets"]
    same = len(set(targets.values())) == 1
    lines = [
        f"minigrad compare: {_count(len(st['datasets']), 'dataset')} x {_count(len(st['optimizers']), 'optimizer')}"
        f" x {_count(st['seeds'], 'seed')}, {_count(st['epochs'], 'epoch')}, batch {st['batch_size']}, "
        f"hidden {','.join(map(str, st['hidden'])) or 'none'}, target train loss "
        + (f"{next(iter(targets.values())):g}" if same else "per dataset"),
        _heading(result),
        "",
    ]
    header = ["dataset", "target", "optimizer", "lr", "steps to target [95% CI]", "final train loss",
              "test metric"]
    table = [header]
    for s in result.summary:
        runs, bad = s["runs"], s["diverged_runs"] + s["error_runs"]
        if math.isnan(s["lr"]):
            failed = "no rate worked in tuning (all diverged or failed)"
            table.append([s["dataset"], f"{s['target']:g}", s["optimizer"], "-", failed, "-", "-"])
            continue
        lr = f"{s['lr']:g}" + ("!" if s["lr_at_grid_edge"] else "")
        reach = f"{_steps(s['steps_to_target_median'])} [{_steps(s['steps_to_target_ci_low'])}-" \
                f"{_steps(s['steps_to_target_ci_high'])}]" if not math.isnan(s["steps_to_target_median"]) else "-"
        if bad == runs:
            loss = "error" if s["error_runs"] else "diverged"
            metric = "-"
        else:
            loss = f"{_number(s['final_loss_mean'], 4)} ± {_number(s['final_loss_std'], 4)}"
            metric = f"{'acc' if s['metric'] == 'accuracy' else 'R²'} {_number(s['test_metric_mean'], 3)} ± " \
                     f"{_number(s['test_metric_std'], 3)}"
            if s["diverged_runs"]:
                loss += f" ({s['diverged_runs']} diverged)"
            if s["error_runs"]:
                loss += f" ({s['error_runs']} error)"
        table.append([s["dataset"], f"{s['target']:g}", s["optimizer"], lr, reach, loss, metric])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    previous = None
    for i, row in enumerate(table):
        if i > 1 and row[0] != previous:
            lines.append("")
        left = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2])]
        lines.append("  ".join(left + [c.rjust(w) for c, w in zip(row[3:], widths[3:])]).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
        previous = row[0]
    seeds = st["seeds"]
    # (A row over fewer seeds, some failed, holds the median with a smaller probability still: "at most".)
    few = (f" (with {seeds} seeds or fewer it is their range, which holds the median of the seeds' distribution "
           f"with probability {1 - 2 ** (1 - seeds):.0%} at most)" if 1 < seeds <= 5 else "")
    notes = [
        "",
        "steps to target: median over seeds of the first evaluated step with train loss <= the target "
        f"(never: missed; failed runs left out), bootstrap 95% interval{few};",
        "final train loss and test metric: mean ± std (population, ddof 0) over the seeds that did not diverge "
        "or fail.",
    ]
    if any(s["lr_at_grid_edge"] for s in result.summary):
        notes.append("! the rate is at an end of the grid.")
    if result.verdict:
        notes += ["", "Verdict against sgd (problem = dataset x seed; ratio of steps to target):"]
        notes += [f"  {line}" for line in result.verdict]
    notes += result.warnings
    return "\n".join(lines + notes)
