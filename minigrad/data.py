"""scikit-learn's toy datasets, split and standardised, and mini-batches.

``load_dataset(name)`` returns ``(X_train, X_test, y_train, y_test)``:

- ``X`` is float32 of shape (n, n_features), standardised with the *training*
  split's mean and standard deviation only, so nothing about the test set
  leaks into training. A feature that is constant on the training split
  (digits has a few always-blank pixels) is divided by 1 instead of 0.
- Classification labels ``y`` are int64 class indices of shape (n,), split
  stratified, so both splits keep the classes' proportions.
- The regression target (diabetes) is float32 of shape (n, 1), the shape of an
  MLP's single output, so ``mse_loss(model(X), y)`` needs no reshape. It is
  standardised with the training split's statistics too, so its MSE reads
  the same on any scale (predicting the training mean gives about 1).

The three synthetic sets (moons, circles, blobs) take ``n_samples`` and
``noise``; the five bundled ones (iris, wine, breast_cancer, digits,
diabetes) ship with scikit-learn, so nothing is downloaded.
scikit-learn is imported only inside the functions: numpy is the only hard
dependency of minigrad.

What scikit-learn computes (the raw data and the splits) is kept in a small
cache, ``~/.cache/minigrad/datasets`` (``$MINIGRAD_CACHE`` elsewhere, ``off``
for none), keyed by the arguments, the input data and the versions of
scikit-learn and numpy: a later process then gets the same arrays without
importing scikit-learn, which takes about 1.5 s, most of a short lab run's
start-up.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from minigrad._extras import pip_hint
from minigrad._files import atomic_write
from minigrad.engine import Tensor, get_generator

__all__ = ["DATASETS", "SYNTHETIC", "load_dataset", "load_raw", "split", "standardize", "batches"]

#: Every dataset name and its task.
DATASETS: dict[str, str] = {
    "moons": "classification",
    "circles": "classification",
    "blobs": "classification",
    "iris": "classification",
    "wine": "classification",
    "breast_cancer": "classification",
    "digits": "classification",
    "diabetes": "regression",
}

#: The generated sets, with their default ``n_samples`` and ``noise``.
#: For blobs, ``noise`` is each cluster's standard deviation; its 3 clusters sit at
#: the corners of a triangle with side 3, so they overlap a little at noise 1.
SYNTHETIC: dict[str, dict[str, float]] = {
    "moons": {"n_samples": 1000, "noise": 0.2},
    "circles": {"n_samples": 1000, "noise": 0.1},
    "blobs": {"n_samples": 1000, "noise": 1.0},
}

_BLOB_CENTERS = [(0.0, 0.0), (3.0, 0.0), (1.5, 1.5 * 3**0.5)]


def _check_name(name: str) -> str:
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return name


def _check_seed(seed: Any, where: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{where}: seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _cache_dir() -> str | None:
    """The folder of the dataset cache, or None when ``MINIGRAD_CACHE=off``."""
    where = os.environ.get("MINIGRAD_CACHE", "")
    if where.lower() in ("off", "0", "none"):
        return None
    if where:
        return where
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(home, "minigrad", "datasets")


def _cached(key: str, compute: Callable[[], tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """``compute()``'s arrays, from the cache when a file for ``key`` is there, else computed and stored.

    The file name is a hash of ``key`` and of scikit-learn's and numpy's
    versions. A file is written to a temporary name and moved into place, so
    another process never reads half of one; a missing or unreadable one is
    computed again, and a cache that cannot be written only costs time.
    """
    folder = _cache_dir()
    try:
        sklearn_version = importlib.metadata.version("scikit-learn")
    except importlib.metadata.PackageNotFoundError:
        folder = None  # compute() raises the ImportError that says what to install
    if folder is None:
        return compute()
    versions = f"scikit-learn {sklearn_version}|numpy {np.__version__}|minigrad {_CODE_ID}"
    digest = hashlib.sha256(f"{key}|{versions}".encode()).hexdigest()
    path = os.path.join(folder, digest[:32] + ".npz")
    try:
        with np.load(path, allow_pickle=False) as stored:
            return tuple(stored[f"arr_{i}"] for i in range(len(stored.files)))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass  # not cached yet (or damaged): compute it
    arrays = compute()
    try:
        os.makedirs(folder, exist_ok=True)
        atomic_write(path, lambda f: np.savez(f, *arrays), durable=False)  # members arr_0, arr_1, ...
    except OSError:
        pass  # a read-only or full disk: the cache is only a shortcut
    return arrays


def _code_text(code: Any) -> str:
    """A code object's bytecode and constants (nested functions included), stable across processes."""
    parts = [code.co_code.hex()]
    for c in code.co_consts:
        parts.append(_code_text(c) if hasattr(c, "co_code") else repr(c))
    return "|".join(parts)


def _digest(*arrays: np.ndarray) -> str:
    """A hash of arrays' dtypes, shapes and bytes (the inputs of a cached split)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def load_raw(
    name: str, *, n_samples: int | None = None, noise: float | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Return the whole dataset ``(X, y)``, unsplit and unscaled, as float64 and int64.

    ``n_samples`` and ``noise`` apply to moons, circles and blobs only (their
    defaults are in :data:`SYNTHETIC`; ``seed`` draws the points); passing
    either for a bundled dataset raises ValueError. The regression target is
    float64 of shape (n, 1).
    """
    _check_name(name)
    seed = _check_seed(seed, "load_dataset")
    if name not in SYNTHETIC:
        given = [k for k, v in (("n_samples", n_samples), ("noise", noise)) if v is not None]
        if given:
            raise ValueError(
                f"load_dataset: {' and '.join(given)} only apply to the synthetic datasets "
                f"({', '.join(SYNTHETIC)}); {name!r} is a fixed dataset"
            )
    else:
        if n_samples is None:
            n_samples = int(SYNTHETIC[name]["n_samples"])
        if noise is None:
            noise = SYNTHETIC[name]["noise"]
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 20:
            raise ValueError(f"load_dataset: n_samples must be an integer >= 20, got {n_samples!r}")
        if isinstance(noise, bool) or not isinstance(noise, (int, float, np.number)) or not 0 <= noise < np.inf:
            raise ValueError(f"load_dataset: noise must be a finite number >= 0, got {noise!r}")

    n_samples, noise = int(n_samples or 0), float(noise or 0.0)  # checked above when synthetic
    X, y = _cached(f"load_raw {name} {n_samples} {noise!r} {seed}", lambda: _load_raw(name, n_samples, noise, seed))
    return X, y


def _sklearn(module: str) -> Any:
    """Import ``sklearn.<module>``, the lab's optional dependency, or raise an ImportError that says what to install."""
    try:
        return importlib.import_module(f"sklearn.{module}")
    except ImportError as e:
        raise ImportError(
            f"minigrad.data needs scikit-learn for its datasets ({e}); install it: {pip_hint('scikit-learn')}"
        ) from e


def _load_raw(name: str, n_samples: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's data set ``name`` as float64 features and int64 labels (float64 (n, 1) targets)."""
    datasets = _sklearn("datasets")

    if name == "moons":
        X, y = datasets.make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    elif name == "circles":
        X, y = datasets.make_circles(n_samples=n_samples, noise=noise, factor=0.5, random_state=seed)
    elif name == "blobs":
        X, y = datasets.make_blobs(
            n_samples=n_samples, centers=_BLOB_CENTERS, cluster_std=noise, random_state=seed
        )
    else:
        loader = getattr(datasets, f"load_{name}")
        X, y = loader(return_X_y=True)
    X = np.asarray(X, dtype=np.float64)
    if DATASETS[name] == "regression":
        y = np.asarray(y, dtype=np.float64).reshape(-1, 1)
    else:
        y = np.asarray(y, dtype=np.int64)
    return X, y


def split(
    X: np.ndarray, y: np.ndarray, *, test_size: float = 0.25, seed: int = 0, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and split into ``(X_train, X_test, y_train, y_test)``.

    ``test_size`` is the fraction that goes to the test split. With
    ``stratify`` (for class labels), each class keeps its proportion in both
    splits.
    """
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float, np.floating)) or not 0 < test_size < 1:
        raise ValueError(f"load_dataset: test_size must be a fraction in (0, 1), got {test_size!r}")
    seed = _check_seed(seed, "split")

    def compute() -> tuple[np.ndarray, ...]:
        train_test_split = _sklearn("model_selection").train_test_split

        return tuple(train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y if stratify else None))

    X_train, X_test, y_train, y_test = _cached(
        f"split {_digest(np.asarray(X), np.asarray(y))} {test_size!r} {seed} {stratify}", compute
    )
    return X_train, X_test, y_train, y_test


def standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scale both arrays with the training array's statistics only.

    Returns ``(train_scaled, test_scaled, mean, std)`` where
    ``scaled = (x - mean) / std`` per column, ``mean`` and ``std`` (the
    population standard deviation, ddof=0) are computed in float64 on
    ``train``, and the ``std`` of a constant column is replaced by 1 (constant
    up to rounding, by scikit-learn's test: a column of 0.1s has a std of
    1e-15, not 0, which would scale its test values by 1e15). The scaled
    arrays are float32.
    """
    train = np.asarray(train, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    # Constant up to rounding: var <= n·eps·var + (n·mean·eps)², scikit-learn's bound for the sum's rounding.
    n, eps = len(train), np.finfo(np.float64).eps
    constant = std**2 <= n * eps * std**2 + (n * mean * eps) ** 2
    std = np.where(constant, 1.0, std)
    return (
        ((train - mean) / std).astype(np.float32),
        ((test - mean) / std).astype(np.float32),
        mean,
        std,
    )


def load_dataset(
    name: str,
    *,
    n_samples: int | None = None,
    noise: float | None = None,
    test_size: float = 0.25,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load a dataset, split it and standardise it with the training split's statistics.

    Returns ``(X_train, X_test, y_train, y_test)``: float32 features; int64
    class indices of shape (n,) for classification, or a float32 target of
    shape (n, 1) standardised like the features for regression (diabetes).
    ``name`` is one of :data:`DATASETS` (else ValueError listing them);
    ``n_samples`` and ``noise`` apply to moons, circles and blobs only;
    ``seed`` fixes both the generated points and the split.
    """
    X, y = load_raw(name, n_samples=n_samples, noise=noise, seed=seed)
    classification = DATASETS[name] == "classification"
    X_train, X_test, y_train, y_test = split(X, y, test_size=test_size, seed=seed, stratify=classification)
    X_train, X_test, _, _ = standardize(X_train, X_test)
    if not classification:
        y_train, y_test, _, _ = standardize(y_train, y_test)
    return X_train, X_test, y_train, y_test


def batches(
    X: Any, y: Any, batch_size: int, shuffle: bool = True, seed: int | None = None
) -> Iterator[tuple[Any, Any]]:
    """Yield ``(X_batch, y_batch)`` pairs that cover every sample exactly once.

    ``X`` and ``y`` are arrays, Tensors (batches of a Tensor are Tensors, slices of its graph) or sequences
    of rows (read as arrays).

    All batches have ``batch_size`` rows except the last, which holds the
    remainder. With ``shuffle``, the order is a random permutation drawn from
    ``np.random.default_rng(seed)``, or, when ``seed`` is None, from
    minigrad's generator (``mg.manual_seed`` makes it repeatable).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batches: batch_size must be a positive integer, got {batch_size!r}")
    # Any sequence too (a list, a range): they are indexed with arrays of rows below. Arrays and Tensors are
    # taken as they are, so a Tensor gives Tensor batches.
    try:
        X, y = (a if isinstance(a, (np.ndarray, Tensor)) else np.asarray(a) for a in (X, y))
    except ValueError:
        raise ValueError("batches: X or y is a ragged list (rows of different lengths); give every row the same "
                         "length, or pass numpy arrays") from None
    if len(X) != len(y):
        raise ValueError(f"batches: X has {len(X)} samples but y has {len(y)}")
    n = len(X)
    if shuffle:
        rng = get_generator() if seed is None else np.random.default_rng(_check_seed(seed, "batches"))
        order = rng.permutation(n)
    else:
        order = np.arange(n)
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        yield X[index], y[index]


# What the cache's files depend on besides their arguments: the code that computed them (and the blob
# centres it uses), so a change to this module never returns arrays computed by an older version.
_CODE_ID = hashlib.sha256(
    "|".join([_code_text(_load_raw.__code__), _code_text(split.__code__), repr(_BLOB_CENTERS)]).encode()
).hexdigest()[:16]
