"""The convergence lab: train MLPs with each optimizer and compare how fast they converge.

:func:`fit` is the training loop (zero_grad, forward, loss, backward, step)
plus a per-epoch evaluation; :func:`compare` runs it for every dataset,
optimizer and seed, and writes ``results.csv``, ``summary.csv`` and one plot
per dataset; :func:`format_table` prints the summary. ``python -m minigrad``
(:mod:`minigrad.cli`) is a thin command line over :func:`compare`.

Learning rates. Learning rates do not transfer between optimizers (the EWA
momentum's steady step equals SGD's, the classic form's is 1/(1-β) times
larger, Adam's is about lr per coordinate), so a fair comparison gives each
optimizer its own tuned rate. ``lrs="tune"`` tunes in the run: for every
dataset and optimizer, each rate of :data:`LR_GRID` trains on 80% of the
training split (standardised again on that 80%) for the same epochs and
seeds, and the rate with the lowest *validation* loss (on the other 20%)
averaged over the epochs and seeds wins (see :func:`tune_lr` for why); the
test split is never looked at. Without it, the built-in optimizers use
:data:`DEFAULT_LRS`, chosen by one tuning run over the default datasets. A
plug-in optimizer has no documented rate, so it is tuned in the run unless a
rate is given for it (its constructor's default rate, if any, is ignored:
it was not chosen for these problems).
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from minigrad import data as mgdata
from minigrad import nn, optim
from minigrad.engine import Tensor, manual_seed, no_grad

__all__ = [
    "LabError",
    "TASKS",
    "LR_GRID",
    "DEFAULT_LRS",
    "DEFAULTS",
    "OptimizerSpec",
    "Comparison",
    "fit",
    "evaluate",
    "accuracy",
    "r2_score",
    "loss_for",
    "resolve_optimizer",
    "tune_lr",
    "compare",
    "epochs_to_target",
    "format_table",
    "write_results",
    "plot_dataset",
]

TASKS = ("classification", "regression")

#: The one log grid every optimizer's rate is tuned on: 1e-3 to 10, in half decades.
LR_GRID: tuple[float, ...] = tuple(float(x) for x in np.logspace(-3, 1, 9))

#: The built-in optimizers' rates for the default run, each a point of
#: :data:`LR_GRID`. Chosen with ``python -m minigrad --lr tune`` (the default
#: datasets, epochs, batch size, hidden sizes and seeds): for each optimizer,
#: the rate whose :func:`tune_lr` score, averaged over the datasets, is
#: lowest (the run prints it and writes it to tuning.csv as dataset "(mean)").
#: Nesterov's (classic, β = 0.9) is SGD's times 1 - β, as the theory says.
DEFAULT_LRS: dict[str, float] = {
    "sgd": 10**-0.5,  # 0.316
    "momentum": 10**-0.5,  # 0.316
    "nesterov": 10**-1.5,  # 0.0316
    "adam": 10**-2,  # 0.01
}

#: The default run's settings (the command line's defaults).
DEFAULTS: dict[str, Any] = {
    "datasets": [name for name, task in mgdata.DATASETS.items() if task == "classification"],
    "optimizers": ["sgd", "momentum", "nesterov", "adam"],
    "epochs": 30,
    "batch_size": 32,
    "seeds": 3,
    "hidden": (32, 32),
    "target": 0.1,
    "out_dir": "minigrad-results",
}

#: The fraction of the training split held out to tune learning rates.
VALIDATION_SIZE = 0.2


class LabError(ValueError):
    """Bad input to the lab (an unknown name, a bad setting): the CLI prints it in one line."""


# ---------------------------------------------------------------------------
# Metrics and the training loop
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
    model: nn.Module, loss_fn: Callable[[Tensor, Any], Tensor], X: np.ndarray, y: np.ndarray, task: str
) -> tuple[float, float]:
    """Return ``(loss, metric)`` on the whole of ``X``, computed under no_grad.

    The metric is the accuracy for classification and R² for regression.
    """
    _check_task(task)
    with no_grad():
        out = model(Tensor(X))
        loss = float(loss_fn(out, y).item())
    metric = accuracy(out.data, y) if task == "classification" else r2_score(out.data, y)
    return loss, metric


def _tqdm() -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError("progress bars need tqdm: pip install 'minigrad[lab]'") from None
    return tqdm


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
    if X_test is not None and len(X_test) != len(y_test):
        raise ValueError(f"fit: X_test has {len(X_test)} samples but y_test has {len(y_test)}")
    shuffler = None if seed is None else np.random.default_rng(seed)

    def record(epoch: int, seconds: float) -> dict[str, float]:
        train_loss, _ = evaluate(model, loss_fn, X_train, y_train, task)
        test_metric = math.nan if X_test is None else evaluate(model, loss_fn, X_test, y_test, task)[1]
        row = {"epoch": epoch, "train_loss": train_loss, "test_metric": test_metric, "seconds": seconds}
        if log is not None:
            log(row)
        return row

    history = [record(0, 0.0)]
    epoch_range: Iterable[int] = range(1, epochs + 1)
    if progress:
        epoch_range = _tqdm()(epoch_range, desc="epochs", leave=False)
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


# ---------------------------------------------------------------------------
# Optimizers by name, built-in or plug-in
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer the lab can build: ``make(params, lr)`` and its documented rate, if any."""

    name: str
    make: Callable[[list[nn.Parameter], float], optim.Optimizer]
    default_lr: float | None = None
    spec: str = ""


BUILTIN_OPTIMIZERS: dict[str, Callable[[list[nn.Parameter], float], optim.Optimizer]] = {
    "sgd": lambda params, lr: optim.SGD(params, lr=lr),
    "momentum": lambda params, lr: optim.Momentum(params, lr=lr, beta=0.9),
    "nesterov": lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
    "adam": lambda params, lr: optim.Adam(params, lr=lr),
}


def _load_plugin_class(spec: str) -> type:
    """Import ``path/to/file.py:ClassName`` or ``package.module:ClassName``."""
    where, _, class_name = spec.rpartition(":")
    if not where or not class_name.isidentifier():
        raise LabError(f"optimizer {spec!r}: expected path/to/file.py:ClassName or package.module:ClassName")
    if where.endswith(".py") or os.sep in where or "/" in where:
        if not os.path.isfile(where):
            raise LabError(f"optimizer {spec!r}: no such file {where!r}")
        module_name = f"minigrad_plugin_{abs(hash(os.path.abspath(where)))}"
        module = sys.modules.get(module_name)
        if module is None:
            file_spec = importlib.util.spec_from_file_location(module_name, where)
            if file_spec is None or file_spec.loader is None:
                raise LabError(f"optimizer {spec!r}: cannot import {where!r} as Python")
            module = importlib.util.module_from_spec(file_spec)
            sys.modules[module_name] = module
            try:
                file_spec.loader.exec_module(module)
            except Exception as e:  # the user's file: report its error in one line
                del sys.modules[module_name]
                raise LabError(f"optimizer {spec!r}: importing {where!r} failed: {type(e).__name__}: {e}") from None
    else:
        try:
            module = importlib.import_module(where)
        except Exception as e:  # the user's module
            raise LabError(f"optimizer {spec!r}: cannot import module {where!r}: {type(e).__name__}: {e}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise LabError(f"optimizer {spec!r}: {where!r} has no class {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, optim.Optimizer)):
        raise LabError(f"optimizer {spec!r}: {class_name} is not a subclass of minigrad.optim.Optimizer")
    if cls.update is optim.Optimizer.update:
        raise LabError(f"optimizer {spec!r}: {class_name} does not define update(w, g, state)")
    return cls


def resolve_optimizer(spec: str) -> OptimizerSpec:
    """Turn a name (sgd, momentum, nesterov, adam) or a plug-in spec into an :class:`OptimizerSpec`.

    Built-ins: sgd is ``SGD(lr)``, momentum ``Momentum(lr, beta=0.9)`` (the
    seed notes' EWA form), nesterov ``SGD(lr, momentum=0.9, nesterov=True)``,
    adam ``Adam(lr)``; their rates default to :data:`DEFAULT_LRS`. A plug-in,
    ``path/to/file.py:ClassName`` or ``package.module:ClassName``, must
    subclass :class:`minigrad.optim.Optimizer` and accept
    ``Cls(params, lr=lr)``; it is named by its class name and has no default
    rate. Raises :class:`LabError` with the reason when it cannot be used.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise LabError(f"optimizer name must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if spec in BUILTIN_OPTIMIZERS:
        return OptimizerSpec(spec, BUILTIN_OPTIMIZERS[spec], DEFAULT_LRS[spec], spec)
    if ":" not in spec:
        raise LabError(
            f"unknown optimizer {spec!r}; known: {', '.join(BUILTIN_OPTIMIZERS)}, "
            "or path/to/file.py:ClassName or package.module:ClassName"
        )
    cls = _load_plugin_class(spec)
    try:  # try it once, so a constructor that cannot take (params, lr=...) fails now
        cls([nn.Parameter(np.zeros(2, dtype=np.float32))], lr=1e-3)
    except Exception as e:  # the user's class
        raise LabError(
            f"optimizer {spec!r}: {cls.__name__}(params, lr=0.001) failed: {type(e).__name__}: {e}"
        ) from None
    def make(params: list[Tensor], lr: float) -> optim.Optimizer:
        try:
            return cls(params, lr=lr)
        except Exception as e:  # the user's class refused this rate (say, one of the tuning grid)
            raise LabError(f"optimizer {spec!r}: {cls.__name__}(params, lr={lr:g}) failed: {e}") from None

    return OptimizerSpec(cls.__name__, make, None, spec)


# ---------------------------------------------------------------------------
# One run, tuning, the comparison
# ---------------------------------------------------------------------------


def _run(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray | None,
    y_test: np.ndarray | None,
    *,
    task: str,
    opt: OptimizerSpec,
    lr: float,
    seed: int,
    hidden: Sequence[int],
    epochs: int,
    batch_size: int,
    on_epoch: Callable[[nn.Module, dict[str, float]], Any] | None = None,
) -> list[dict[str, float]]:
    """Seed, build the MLP, train it; the same seed gives every optimizer the same start and batches.

    ``on_epoch(model, row)`` is called after every epoch (epoch 0 included).
    """
    manual_seed(seed)
    n_outputs = int(y_train.max()) + 1 if task == "classification" else y_train.shape[1]
    model = nn.MLP([X_train.shape[1], *hidden, n_outputs])
    optimizer = opt.make(model.parameters(), lr)
    return fit(
        model, loss_for(task), optimizer, X_train, y_train, X_test, y_test,
        epochs=epochs, batch_size=batch_size, task=task,
        log=None if on_epoch is None else (lambda row: on_epoch(model, row)),
    )


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


def tune_lr(
    dataset: str,
    opt: OptimizerSpec,
    *,
    epochs: int,
    batch_size: int,
    hidden: Sequence[int],
    seeds: int,
    grid: Sequence[float] = LR_GRID,
    on_run: Callable[[], Any] | None = None,
) -> tuple[float, list[tuple[float, float]]]:
    """Pick ``opt``'s rate on ``dataset`` from ``grid`` by its mean validation loss over the epochs.

    Each rate trains on 80% of the training split for ``epochs`` with seeds
    0..seeds-1 (the test split is never used). Its score is the validation
    loss (on the other 20%) averaged over epochs 0..epochs, the area under
    the validation curve, then over the seeds; inf if any loss became
    non-finite. The area rewards a rate that gets low fast and stays low: a
    slow rate, a rate that blows up now and then, and one that overfits late
    all score worse. (The final validation loss alone punishes the fast
    optimizers for overfitting the small datasets late in the run: it gives
    Adam the grid's smallest rate on wine; the lowest validation loss alone
    rewards lucky early dips of unstable rates.) Returns ``(best rate,
    [(rate, score), ...])``; ties go to the smaller rate. ``on_run()`` is
    called after each training run (for a progress bar).
    """
    task = mgdata.DATASETS[dataset]
    loss_fn = loss_for(task)
    X_fit, X_val, y_fit, y_val = _validation_split(dataset)
    scores = []
    for lr in grid:
        run_scores = []
        for seed in range(seeds):
            val_losses: list[float] = []

            def watch(model: nn.Module, row: dict[str, float], val_losses: list[float] = val_losses) -> None:
                val_losses.append(evaluate(model, loss_fn, X_val, y_val, task)[0])

            with np.errstate(all="ignore"):  # the large rates are expected to diverge
                history = _run(
                    X_fit, y_fit, None, None, task=task, opt=opt, lr=lr, seed=seed,
                    hidden=hidden, epochs=epochs, batch_size=batch_size, on_epoch=watch,
                )
            finite = math.isfinite(history[-1]["train_loss"]) and all(map(math.isfinite, val_losses))
            run_scores.append(float(np.mean(val_losses)) if finite else math.inf)
            if on_run is not None:
                on_run()
        scores.append((float(lr), float(np.mean(run_scores))))
    best = min(scores, key=lambda s: s[1])
    return best[0], scores


def epochs_to_target(history: Sequence[Mapping[str, float]], target: float) -> float:
    """The first epoch whose train loss is <= ``target``; inf if none is."""
    for row in history:
        if row["train_loss"] <= target:
            return float(row["epoch"])
    return math.inf


@dataclass
class Comparison:
    """Everything :func:`compare` measured: the long results, the summary, the rates used."""

    settings: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    lr_sources: dict[str, str] = field(default_factory=dict)
    tuning: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _check_settings(
    datasets: Sequence[str],
    optimizers: Sequence[str | OptimizerSpec],
    lrs: str | Mapping[str, float] | None,
    epochs: int,
    batch_size: int,
    seeds: int,
    hidden: Sequence[int],
    target: float,
) -> tuple[list[str], list[OptimizerSpec], dict[str, float]]:
    datasets = list(datasets)
    if not datasets:
        raise LabError("no datasets given")
    for name in datasets:
        if name not in mgdata.DATASETS:
            raise LabError(f"unknown dataset {name!r}; known datasets: {', '.join(mgdata.DATASETS)}")
    if len(set(datasets)) != len(datasets):
        raise LabError(f"a dataset is listed twice: {', '.join(datasets)}")
    specs = [o if isinstance(o, OptimizerSpec) else resolve_optimizer(o) for o in optimizers]
    if not specs:
        raise LabError("no optimizers given")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise LabError(f"an optimizer is listed twice (plug-ins are named by class): {', '.join(names)}")
    for what, value, low in (("epochs", epochs, 0), ("batch size", batch_size, 1), ("seeds", seeds, 1)):
        _check_int(what, value, low)
    for h in hidden:
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1:
            raise LabError(f"hidden sizes must be positive integers, got {list(hidden)}")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target < math.inf:
        raise LabError(f"target must be a positive number, got {target!r}")
    given: dict[str, float] = {}
    if isinstance(lrs, str):
        if lrs != "tune":
            raise LabError(f"lrs must be 'tune', a mapping of optimizer to rate, or None; got {lrs!r}")
    elif lrs is not None:
        by_key = {s.name: s.name for s in specs} | {s.spec: s.name for s in specs}
        for key, lr in lrs.items():
            if key not in by_key:
                raise LabError(f"a learning rate is given for {key!r}, which is not among the optimizers {names}")
            if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
                raise LabError(f"the learning rate for {key!r} must be a positive number, got {lr!r}")
            given[by_key[key]] = float(lr)
    return datasets, specs, given


def compare(
    datasets: Sequence[str] = DEFAULTS["datasets"],
    optimizers: Sequence[str | OptimizerSpec] = DEFAULTS["optimizers"],
    lrs: str | Mapping[str, float] | None = None,
    *,
    epochs: int = DEFAULTS["epochs"],
    batch_size: int = DEFAULTS["batch_size"],
    seeds: int = DEFAULTS["seeds"],
    hidden: Sequence[int] = DEFAULTS["hidden"],
    target: float = DEFAULTS["target"],
    out_dir: str | os.PathLike | None = DEFAULTS["out_dir"],
    progress: bool = False,
) -> Comparison:
    """Train an MLP per dataset x optimizer x seed and summarise how fast each converges.

    Every run with seed s calls ``mg.manual_seed(s)`` then builds
    ``MLP([n_features, *hidden, n_outputs])``, so all optimizers start from
    the same weights and see the same batches. Datasets come from
    :func:`minigrad.data.load_dataset` with its default split (seed 0); the
    seeds vary the initial weights and the batch order.

    ``lrs``: None uses :data:`DEFAULT_LRS` for the built-ins and tunes each
    plug-in in the run; ``"tune"`` tunes every optimizer on every dataset
    (see :func:`tune_lr`); a mapping ``{name: rate}`` sets some rates, the
    others as with None. With ``out_dir``, writes results.csv, summary.csv,
    tuning.csv (when anything was tuned) and ``<dataset>.png`` there.
    Raises :class:`LabError` for bad input before training anything.
    """
    datasets, specs, given = _check_settings(datasets, optimizers, lrs, epochs, batch_size, seeds, hidden, target)
    hidden = tuple(int(h) for h in hidden)
    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        if not out_dir:
            raise LabError("output directory must be a non-empty path")
        if os.path.exists(out_dir) and not os.path.isdir(out_dir):
            raise LabError(f"output directory {out_dir!r} exists and is not a directory")
        try:  # make it now, so a bad --out fails before any training
            os.makedirs(out_dir, exist_ok=True)
        except OSError as e:
            raise LabError(f"cannot use output directory {out_dir!r}: {e.strerror or e}") from None
        if not os.access(out_dir, os.W_OK):
            raise LabError(f"output directory {out_dir!r} is not writable")
    settings = {
        "datasets": datasets, "optimizers": [s.name for s in specs], "epochs": epochs, "batch_size": batch_size,
        "seeds": seeds, "hidden": hidden, "target": float(target), "out_dir": out_dir,
    }
    result = Comparison(settings)
    to_tune = []
    for s in specs:
        if s.name in given:
            result.lr_sources[s.name] = "given"
        elif lrs == "tune" or s.default_lr is None:
            result.lr_sources[s.name] = "tuned"
            to_tune.append(s)
        else:
            result.lr_sources[s.name] = "default"

    n_runs = len(datasets) * (len(specs) + len(to_tune) * len(LR_GRID)) * seeds
    bar = _tqdm()(total=n_runs, desc="runs", unit="run") if progress else None
    step = bar.update if bar is not None else None
    try:
        lr_table: dict[tuple[str, str], float] = {}
        for dataset in datasets:
            for s in to_tune:
                if bar is not None:
                    bar.set_postfix_str(f"tuning {s.name} on {dataset}")
                best, scores = tune_lr(
                    dataset, s, epochs=epochs, batch_size=batch_size, hidden=hidden, seeds=seeds, on_run=step
                )
                lr_table[dataset, s.name] = best
                result.tuning += [
                    {"dataset": dataset, "optimizer": s.name, "lr": lr, "mean_val_loss": score, "chosen": lr == best}
                    for lr, score in scores
                ]
        for s in to_tune:  # the rate that is best on average over the datasets (how DEFAULT_LRS were chosen)
            mine = [r for r in result.tuning if r["optimizer"] == s.name]
            mean = [(lr, float(np.mean([r["mean_val_loss"] for r in mine if r["lr"] == lr]))) for lr in LR_GRID]
            best = min(mean, key=lambda m: m[1])[0]
            result.tuning += [
                {"dataset": "(mean)", "optimizer": s.name, "lr": lr, "mean_val_loss": v, "chosen": lr == best}
                for lr, v in mean
            ]

        for dataset in datasets:
            task = mgdata.DATASETS[dataset]
            X_train, X_test, y_train, y_test = mgdata.load_dataset(dataset)
            for s in specs:
                lr = given.get(s.name, lr_table.get((dataset, s.name), s.default_lr))
                if bar is not None:
                    bar.set_postfix_str(f"{s.name} on {dataset}")
                histories = []
                for seed in range(seeds):
                    with np.errstate(all="ignore"):  # a diverging run is reported as "diverged", not warned about
                        history = _run(
                            X_train, y_train, X_test, y_test, task=task, opt=s, lr=lr, seed=seed,
                            hidden=hidden, epochs=epochs, batch_size=batch_size,
                        )
                    histories.append(history)
                    metric = "accuracy" if task == "classification" else "r2"
                    result.rows += [
                        {"dataset": dataset, "optimizer": s.name, "lr": lr, "seed": seed, "metric": metric, **row}
                        for row in history
                    ]
                    if step is not None:
                        step()
                result.summary.append(_summarise(dataset, s.name, lr, result.lr_sources[s.name], histories, target))
    finally:
        if bar is not None:
            bar.close()
    if out_dir is not None:
        result.files = write_results(result, out_dir)
    return result


def _summarise(
    dataset: str, optimizer: str, lr: float, source: str, histories: list[list[dict[str, float]]], target: float
) -> dict[str, Any]:
    final = np.array([h[-1]["train_loss"] for h in histories])
    diverged = any(not math.isfinite(x) for x in final)
    to_target = float(np.median([epochs_to_target(h, target) for h in histories]))
    with np.errstate(all="ignore"):
        return {
            "dataset": dataset,
            "optimizer": optimizer,
            "lr": lr,
            "lr_source": source,
            "metric": "accuracy" if mgdata.DATASETS[dataset] == "classification" else "r2",
            "final_train_loss_mean": math.nan if diverged else float(final.mean()),
            "final_train_loss_std": math.nan if diverged else float(final.std()),
            "test_metric_mean": float(np.mean([h[-1]["test_metric"] for h in histories])),
            "test_metric_std": float(np.std([h[-1]["test_metric"] for h in histories])),
            "epochs_to_target": "never" if math.isinf(to_target) else to_target,
            "seconds_mean": float(np.mean([h[-1]["seconds"] for h in histories])),
            "seeds": len(histories),
            "diverged": diverged,
        }


# ---------------------------------------------------------------------------
# Output: CSV files, plots, the printed table
# ---------------------------------------------------------------------------

RESULT_COLUMNS = ["dataset", "optimizer", "lr", "seed", "epoch", "train_loss", "test_metric", "metric", "seconds"]
SUMMARY_COLUMNS = [
    "dataset", "optimizer", "lr", "lr_source", "final_train_loss_mean", "final_train_loss_std",
    "metric", "test_metric_mean", "test_metric_std", "epochs_to_target", "seconds_mean", "seeds", "diverged",
]
TUNING_COLUMNS = ["dataset", "optimizer", "lr", "mean_val_loss", "chosen"]


def _write_csv(path: str, columns: list[str], rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def write_results(result: Comparison, out_dir: str | os.PathLike) -> list[str]:
    """Write results.csv, summary.csv, tuning.csv (if anything was tuned) and one PNG per dataset.

    Returns the paths written.
    """
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    files = []
    for name, columns, rows in (
        ("results.csv", RESULT_COLUMNS, result.rows),
        ("summary.csv", SUMMARY_COLUMNS, result.summary),
        ("tuning.csv", TUNING_COLUMNS, result.tuning),
    ):
        if rows or name != "tuning.csv":
            path = os.path.join(out_dir, name)
            _write_csv(path, columns, rows)
            files.append(path)
    for dataset in result.settings["datasets"]:
        path = os.path.join(out_dir, f"{dataset}.png")
        plot_dataset(result, dataset, path)
        files.append(path)
    return files


def plot_dataset(result: Comparison, dataset: str, path: str | os.PathLike) -> None:
    """Save the train-loss curves of every optimizer on ``dataset``: mean over seeds, min-max band, log y."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    for s in (r for r in result.summary if r["dataset"] == dataset):
        curves: dict[int, list[float]] = {}
        for row in result.rows:
            if row["dataset"] == dataset and row["optimizer"] == s["optimizer"]:
                curves.setdefault(row["seed"], []).append(row["train_loss"])
        length = max(len(c) for c in curves.values())
        loss = np.full((len(curves), length), np.nan)  # a diverged run stops early: nan after it
        for i, c in enumerate(curves.values()):
            loss[i, : len(c)] = c
        loss[~np.isfinite(loss)] = np.nan
        epochs = np.arange(length)
        with warnings.catch_warnings():  # an epoch where every seed had diverged is all nan
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, low, high = np.nanmean(loss, 0), np.nanmin(loss, 0), np.nanmax(loss, 0)
        label = f"{s['optimizer']} (lr={s['lr']:.3g}{', tuned' if s['lr_source'] == 'tuned' else ''})"
        (line,) = ax.plot(epochs, mean, label=label)
        ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.axhline(result.settings["target"], color="gray", linestyle=":", linewidth=1, label="target")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss (log scale)")
    n = result.settings["seeds"]
    ax.set_title(f"{dataset}: train loss, mean of {n} seed{'s' if n > 1 else ''} (band: min to max)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _lr_heading(result: Comparison) -> str:
    groups: dict[str, list[str]] = {}
    for name, source in result.lr_sources.items():
        groups.setdefault(source, []).append(name)
    text = {
        "default": "the documented defaults (chosen by a `minigrad compare --lr tune` run; see DEFAULT_LRS)",
        "tuned": f"tuned in this run per dataset on a validation split "
        f"({VALIDATION_SIZE:.0%} of the training set; grid {LR_GRID[0]:g} to {LR_GRID[-1]:g})",
        "given": "given on the command line",
    }
    return "Learning rates: " + "; ".join(f"{text[source]} for {', '.join(names)}" for source, names in groups.items())


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _number(x: float, decimals: int) -> str:
    """Fixed decimals for ordinary values, scientific notation for huge ones (a near-divergent run)."""
    return f"{x:.{decimals}f}" if abs(x) < 1e4 else f"{x:.2e}"


def format_table(result: Comparison) -> str:
    """The printed summary: per dataset and optimizer, loss mean ± std, test metric, epochs to target, time."""
    st = result.settings
    target = st["target"]
    lines = [
        f"minigrad compare: {_count(len(st['datasets']), 'dataset')} x {_count(len(st['optimizers']), 'optimizer')}"
        f" x {_count(st['seeds'], 'seed')}, {_count(st['epochs'], 'epoch')}, batch {st['batch_size']}, "
        f"hidden {','.join(map(str, st['hidden'])) or 'none'}, target train loss {target:g}",
        _lr_heading(result) + ".",
        "",
    ]
    header = ["dataset", "optimizer", "lr", "final train loss", "test metric", f"epochs to {target:g}", "time"]
    table = [header]
    for s in result.summary:
        if s["diverged"]:
            loss = "diverged"
        else:
            loss = f"{_number(s['final_train_loss_mean'], 4)} ± {_number(s['final_train_loss_std'], 4)}"
        metric = f"{'acc' if s['metric'] == 'accuracy' else 'R²'} {_number(s['test_metric_mean'], 3)}"
        reach = s["epochs_to_target"] if isinstance(s["epochs_to_target"], str) else f"{s['epochs_to_target']:g}"
        lr = f"{s['lr']:.3g}" + ("*" if s["lr_source"] == "tuned" else "")
        table.append([s["dataset"], s["optimizer"], lr, loss, metric, reach, f"{s['seconds_mean']:.2f}s"])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    previous = None
    for i, row in enumerate(table):
        if i > 1 and row[0] != previous:
            lines.append("")
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])] + [c.rjust(w) for c, w in zip(row[2:], widths[2:])]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
        previous = row[0]
    notes = [
        "final train loss: mean ± std over seeds after the last epoch; test metric: mean over seeds;",
        f"epochs to {target:g}: median over seeds of the first epoch with train loss <= {target:g};"
        " time: training seconds per run.",
    ]
    if "tuned" in result.lr_sources.values():
        notes.append("* tuned in this run.")
    return "\n".join(lines + [""] + notes)
