"""Optimizer paths on classic 2-D test functions: ``python -m minigrad paths``.

Each function of :data:`FUNCTIONS` is written with minigrad ops, so an
optimizer's step reads the gradient that ``backward()`` computed, exactly as
in training. :func:`run` starts every optimizer at the same point, lets it
take ``steps`` steps and records its path; :func:`plot_png` draws the paths
over the function's filled contours (log scale) next to the loss per step,
:func:`animate_gif` animates them, and :func:`format_table` prints how fast
each got there.

The protocol, the lab's (:mod:`minigrad.lab`) scaled down to two coordinates:

- **Optimizers** are named as for ``compare``: built-ins, keyword arguments
  (``momentum(beta=0.95)``) and plug-ins (``path/file.py:Class(k=v)``), all
  through :func:`minigrad.lab.resolve_optimizer`.
- **Rates.** ``lrs="tune"`` gives every optimizer its rate by one procedure:
  each rate of the lab's log grid (:data:`minigrad.lab.LR_GRID` unless
  another grid is given) runs from the start for the same number of steps,
  and the *score* of a rate is the number of steps to the target, f - f* <
  ``tol`` (median over the tuning runs; a miss counts as infinitely many),
  ties (two misses, say) broken by the lower final f (mean over the tuning
  runs), then by the smaller rate. A rate with a diverged run (f or the
  point not finite) or a failed one loses to every rate without. Only the
  grid's rates are ever tried. ``lrs={name: rate}`` gives every optimizer
  its rate instead. The legend shows each rate.
- **Noise.** With ``noise=σ`` > 0 every gradient gets N(0, σ²) added to
  each coordinate before the step (a stochastic version of the function),
  from ``np.random.default_rng((NOISE_STREAM, seed))``: the path depends on
  (function, optimizer, rate, seed) only, and every optimizer and rate sees
  the same noise at the same seed and step, as the lab gives every
  optimizer the same batches. The reported runs use seeds 0..N-1; tuning
  uses :data:`TUNE_SEEDS` seeds from :data:`minigrad.lab.TUNE_SEED_BASE`,
  disjoint from them. Without noise a path does not depend on its seed, so
  there is one run per optimizer (and one tuning run per rate).
- **Steps to target** is the first step from which f stays below the
  target (f* + ``tol``; for the saddle, which has no minimum, f < -1: it
  has escaped) to the end of the run, so that a noisy path's lucky dip or
  a momentum path that crosses the target and swings out again does not
  count as there. On the saddle a path stops when it leaves the window.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from minigrad import cli, lab, nn
from minigrad._extras import pip_hint
from minigrad.engine import Tensor, no_grad

__all__ = [
    "Surface",
    "Path",
    "PathsResult",
    "FUNCTIONS",
    "DEFAULT_STEPS",
    "TOLERANCE",
    "TUNE_SEEDS",
    "NOISY_SEEDS",
    "CSV_COLUMNS",
    "NOISE_STREAM",
    "GIF_FRAMES",
    "ravine",
    "rosenbrock",
    "beale",
    "himmelblau",
    "saddle",
    "rastrigin",
    "descend",
    "steps_to",
    "tune",
    "run",
    "plot_png",
    "animate_gif",
    "format_table",
    "add_arguments",
    "main",
]

#: Steps per path when not given.
DEFAULT_STEPS = 1000
#: f - f* below this counts as reached (the target of the table and of tuning).
TOLERANCE = 1e-6
#: Tuning runs per rate when there is noise (seeds TUNE_SEED_BASE, TUNE_SEED_BASE + 1, ...).
TUNE_SEEDS = 3
#: Reported seeds when there is noise and no ``seeds`` is given.
NOISY_SEEDS = 5
#: The first key of every noise generator, so the noise never shares a stream with other seeded draws.
NOISE_STREAM = 2
#: The most frames a GIF has (one per step when the path is shorter).
GIF_FRAMES = 120


# ---------------------------------------------------------------------------
# The functions, written with minigrad ops. Each takes w with w[0] = x, w[1] = y
# (a point of shape (2,), or a grid of shape (2, ...) under no_grad for the contours).
# ---------------------------------------------------------------------------


def ravine(w: Tensor) -> Tensor:
    """f(x, y) = (x² + 100·y²) / 2, the ravine this project started from: steep across, nearly flat along.

    The condition number is 100: gradient descent must keep lr < 2/100, and then zigzags across.
    Minimum: f(0, 0) = 0. Default start (-10, 1); window x in [-11, 3], y in [-1.5, 1.5].
    """
    x, y = w[0], w[1]
    return 0.5 * (x**2 + 100 * y**2)


def rosenbrock(w: Tensor) -> Tensor:
    """f(x, y) = (1 - x)² + 100·(y - x²)², Rosenbrock's banana: a curved valley with a flat floor.

    Minimum: f(1, 1) = 0. Default start (-1.2, 1), Rosenbrock's own; window x in [-2, 2], y in [-1, 3].
    """
    x, y = w[0], w[1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def beale(w: Tensor) -> Tensor:
    """f(x, y) = (1.5 - x + x·y)² + (2.25 - x + x·y²)² + (2.625 - x + x·y³)², Beale's function.

    Flat plateaus and steep ridges along the axes. Minimum: f(3, 0.5) = 0. Default start (1, 1.5);
    window x in [-4.5, 4.5], y in [-4.5, 4.5].
    """
    x, y = w[0], w[1]
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def himmelblau(w: Tensor) -> Tensor:
    """f(x, y) = (x² + y - 11)² + (x + y² - 7)², Himmelblau's function: four minima of equal depth.

    Minima, all f = 0: (3, 2), (-2.805118, 3.131313), (-3.779310, -3.283186), (3.584428, -1.848126);
    a maximum at (-0.270845, -0.923039). Default start (-0.5, 0.5); window x, y in [-5, 5].
    """
    x, y = w[0], w[1]
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def saddle(w: Tensor) -> Tensor:
    """f(x, y) = x² - y², a saddle at (0, 0): a minimum along x, a maximum along y, and no minimum at all.

    From (1, 0.001), next to the ridge y = 0, the gradient pulls x in and pushes y out only by 2·y, so
    gradient descent leaves slowly, while methods that use the gradient's sign (adam) or build up
    speed (momentum) leave sooner. The target is f < -1 (escaped); a path stops outside the window
    x, y in [-2, 2]. Default start (1, 0.001). With no minimum a larger step always escapes sooner,
    so tuning picks the grid's large rates here; give rates (``--lr sgd=0.1,adam=0.1``) to compare
    the methods at one step size.
    """
    x, y = w[0], w[1]
    return x**2 - y**2


def rastrigin(w: Tensor) -> Tensor:
    """f(x, y) = 20 + x² - 10·cos(2πx) + y² - 10·cos(2πy), Rastrigin's function: a local minimum near
    every integer point.

    Global minimum: f(0, 0) = 0. Default start (-2.8, 3.3), amid the local minima; window x, y in
    [-5.12, 5.12].
    """
    return 20 + (w**2 - 10 * (2 * math.pi * w).cos()).sum(axis=0)  # the sum over the coordinates x and y


@dataclass(frozen=True)
class Surface:
    """A 2-D test function with its minima, default start and plotting window.

    ``f_min`` is the lowest value (-inf for the saddle); ``escape_level``,
    set only for a function without a minimum, is the f that counts as
    having escaped, and makes a path stop when it leaves the window.
    """

    name: str
    f: Callable[[Tensor], Tensor]
    minima: tuple[tuple[float, float], ...]
    f_min: float
    start: tuple[float, float]
    window: tuple[float, float, float, float]  # x_low, x_high, y_low, y_high
    escape_level: float | None = None

    @property
    def formula(self) -> str:
        """The formula, from the first line of the function's docstring."""
        doc = (self.f.__doc__ or "").strip()
        return doc.removeprefix("f(x, y) = ").split(", ")[0]

    def target(self, tol: float) -> float:
        """The f below which a path counts as there: f* + tol, or the escape level."""
        return self.escape_level if self.escape_level is not None else self.f_min + tol

    def contains(self, point: Sequence[float] | np.ndarray) -> bool:
        """Whether ``point`` (x, y) lies in the window, edges included."""
        x_low, x_high, y_low, y_high = self.window
        return bool(x_low <= point[0] <= x_high and y_low <= point[1] <= y_high)

    def values(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """f on arrays of x and y of one shape (float64, no graph): the same ops as the paths."""
        with no_grad():
            return self.f(Tensor(np.stack([x, y]).astype(np.float64))).data


#: name -> the function with its minima, start and window. Adding a function is one entry here.
FUNCTIONS: dict[str, Surface] = {
    "ravine": Surface("ravine", ravine, ((0.0, 0.0),), 0.0, (-10.0, 1.0), (-11.0, 3.0, -1.5, 1.5)),
    "rosenbrock": Surface("rosenbrock", rosenbrock, ((1.0, 1.0),), 0.0, (-1.2, 1.0), (-2.0, 2.0, -1.0, 3.0)),
    "beale": Surface("beale", beale, ((3.0, 0.5),), 0.0, (1.0, 1.5), (-4.5, 4.5, -4.5, 4.5)),
    "himmelblau": Surface(
        "himmelblau", himmelblau,
        ((3.0, 2.0), (-2.805118, 3.131313), (-3.779310, -3.283186), (3.584428, -1.848126)),
        0.0, (-0.5, 0.5), (-5.0, 5.0, -5.0, 5.0),
    ),
    "saddle": Surface("saddle", saddle, (), -math.inf, (1.0, 0.001), (-2.0, 2.0, -2.0, 2.0), escape_level=-1.0),
    "rastrigin": Surface("rastrigin", rastrigin, ((0.0, 0.0),), 0.0, (-2.8, 3.3), (-5.12, 5.12, -5.12, 5.12)),
}


# ---------------------------------------------------------------------------
# One path, and the tuning of a rate
# ---------------------------------------------------------------------------


@dataclass
class Path:
    """One optimizer's path: ``points[t]`` is the point after t steps, ``f[t]`` the function there.

    ``status`` is "ok", "diverged" (f or the point stopped being finite;
    the path ends there) or "error" (the optimizer raised; ``message``
    says what).
    """

    function: str
    optimizer: str
    seed: int
    lr: float
    points: np.ndarray
    f: np.ndarray
    status: str = "ok"
    message: str = ""


def descend(
    surface: Surface,
    optimizer: lab.OptimizerSpec,
    lr: float,
    *,
    steps: int,
    start: Sequence[float] | None = None,
    noise: float = 0.0,
    seed: int = 0,
) -> Path:
    """Take ``steps`` steps of ``optimizer`` at rate ``lr`` on ``surface`` from ``start``; return the path.

    Each step: f at the point, ``backward()`` for its gradient, plus
    N(0, noise²) per coordinate when ``noise`` > 0 (from
    ``np.random.default_rng((NOISE_STREAM, seed))``), then ``step()``. The
    point is a float64 :class:`minigrad.nn.Parameter` of shape (2,).
    """
    w = nn.Parameter(np.array(surface.start if start is None else start, dtype=np.float64))
    noise_rng = np.random.default_rng((NOISE_STREAM, seed)) if noise > 0 else None
    points, values = [w.data.copy()], []
    status, message = "ok", ""
    started = False  # (an error before the first step is the optimizer's constructor's)
    with np.errstate(all="ignore"):  # a diverging path is recorded as "diverged", not warned about
        try:
            opt = optimizer.make([w], lr)
            started = True
            for _ in range(steps):
                opt.zero_grad()
                loss = surface.f(w)
                values.append(float(loss.data))
                if not (math.isfinite(values[-1]) and np.isfinite(w.data).all()):
                    status, message = "diverged", f"f is not finite at step {len(values) - 1}"
                    break
                if surface.escape_level is not None and not surface.contains(w.data):
                    break  # escaped: left the window of a function without a minimum
                loss.backward()
                if noise_rng is not None and w.grad is not None:
                    w.grad = w.grad + noise * noise_rng.standard_normal(2)
                opt.step()
                points.append(w.data.copy())
            else:
                with no_grad():
                    values.append(float(surface.f(w).data))
                if not (math.isfinite(values[-1]) and np.isfinite(w.data).all()):
                    status, message = "diverged", f"f is not finite at step {len(values) - 1}"
        except (Exception, SystemExit) as e:  # the optimizer's code (a plug-in) failed: report it
            done = len(points) - 1  # (the points: the start, then one per step done)
            status, message = "error", f"{type(e).__name__}: {e} ({lab._failed_in(started, done)})"
            n = min(len(points), len(values))  # keep the points whose f is known
            points, values = points[:n], values[:n]
    return Path(surface.name, optimizer.name, seed, float(lr), np.array(points).reshape(-1, 2),
                np.array(values, dtype=np.float64), status, message)


def steps_to(f: Sequence[float] | np.ndarray, target: float) -> float:
    """The first step t from which f stays below ``target`` to the end of the run; inf if there is none (a miss).

    (Not the first step below it: a noisy path can dip below the target once and wander back, and a
    momentum path can cross it and swing out again; neither has got there.)
    """
    not_below = np.flatnonzero(~(np.asarray(f) < target))
    if not_below.size == 0:
        return 0.0
    t = int(not_below[-1]) + 1
    return float(t) if t < len(f) else math.inf


def _score(paths: Sequence[Path], target: float) -> tuple[float, float]:
    """(median steps to target, mean final f); (inf, inf) if any run diverged or failed."""
    if any(p.status != "ok" for p in paths):
        return math.inf, math.inf
    return float(np.median([steps_to(p.f, target) for p in paths])), float(np.mean([p.f[-1] for p in paths]))


def tune(
    surface: Surface,
    optimizer: lab.OptimizerSpec,
    grid: Sequence[float] = lab.LR_GRID,
    *,
    steps: int,
    start: Sequence[float] | None = None,
    noise: float = 0.0,
    tol: float = TOLERANCE,
) -> tuple[float, list[dict[str, Any]]]:
    """Pick ``optimizer``'s rate from ``grid`` by the module's score; return it and one row per rate.

    Every rate of the grid runs (once without noise, else on :data:`TUNE_SEEDS`
    seeds from ``lab.TUNE_SEED_BASE``); nothing off the grid is tried. The
    lowest (steps to target, final f, rate) wins. The rows hold ``lr``,
    ``steps`` and ``final_f`` (the score), ``status`` and ``message`` (of
    the first run that was not ok, else ""). The rate is nan when every
    rate diverged or failed.
    """
    seeds = [lab.TUNE_SEED_BASE + i for i in range(TUNE_SEEDS if noise > 0 else 1)]
    target = surface.target(tol)
    rows: list[dict[str, Any]] = []
    for lr in grid:
        runs = [descend(surface, optimizer, lr, steps=steps, start=start, noise=noise, seed=s) for s in seeds]
        reach, final = _score(runs, target)
        bad = [p for p in runs if p.status != "ok"]
        rows.append({"lr": float(lr), "steps": reach, "final_f": final, "status": bad[0].status if bad else "ok",
                     "message": f"seed {bad[0].seed}: {bad[0].message}" if bad else ""})
    good = [r for r in rows if r["status"] == "ok"]
    if not good:
        return math.nan, rows
    best = min(good, key=lambda r: (r["steps"], r["final_f"], r["lr"]))
    return float(best["lr"]), rows


# ---------------------------------------------------------------------------
# A whole run: every optimizer, tuned or given, on one function
# ---------------------------------------------------------------------------


@dataclass
class PathsResult:
    """What :func:`run` did: the settings, each optimizer's rate, the paths, the summary and the files."""

    surface: Surface
    settings: dict[str, Any]
    procedure: str  # "tuned" or "given"
    rates: dict[str, float] = field(default_factory=dict)
    tuning: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Pictures that could not be written (a LabWriteError's message each); the CSV was, and the table stands.
    write_errors: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """One line per run whose optimizer raised, tuning runs included (the CLI then exits 1)."""
        lines = [f"{name} failed in tuning at lr {r['lr']:.3g}, {r['message']}"
                 for name, rows in self.tuning.items() for r in rows if r["status"] == "error"]
        return lines + [f"{p.optimizer} failed at lr {p.lr:.3g}, seed {p.seed}: {p.message}"
                        for p in self.paths if p.status == "error"]


#: The columns of ``paths_<function>.csv``: one row per path and step (step 0 is the start).
CSV_COLUMNS = ["function", "optimizer", "seed", "step", "x", "y", "f", "lr"]


def _check_number(name: str, value: Any, low: float, *, strict: bool) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    ok = ok and math.isfinite(value) and (value > low if strict else value >= low)
    if not ok:
        raise lab.LabError(f"paths: {name} must be a finite number {'>' if strict else '>='} {low:g}, got {value!r}")
    return float(value)


def _check_start(surface: Surface, start: Sequence[float] | None) -> tuple[float, float]:
    if start is None:
        return surface.start
    try:
        x, y = (float(v) for v in start)
    except (TypeError, ValueError):
        raise lab.LabError(f"paths: start must be two numbers x, y, got {start!r}") from None
    x_low, x_high, y_low, y_high = surface.window
    if not surface.contains((x, y)):
        raise lab.LabError(f"paths: the start ({x:g}, {y:g}) is outside {surface.name}'s window x in "
                           f"[{x_low:g}, {x_high:g}], y in [{y_low:g}, {y_high:g}]; give a start inside it")
    return x, y


def run(
    function: str = "rosenbrock",
    optimizers: Sequence[str | lab.OptimizerSpec] = tuple(lab.DEFAULTS["optimizers"]),
    lrs: str | Mapping[str, float] = "tune",
    *,
    steps: int = DEFAULT_STEPS,
    start: Sequence[float] | None = None,
    noise: float = 0.0,
    seeds: int | None = None,
    lr_grid: Sequence[float] | None = None,
    tol: float = TOLERANCE,
    out_dir: str | os.PathLike | None = None,
    gif: bool = False,
    progress: Callable[[str], Any] | None = None,
) -> PathsResult:
    """Run every optimizer on ``function`` from ``start`` (default: the function's) and summarise.

    ``lrs`` is ``"tune"`` (see the module docstring) or ``{name: rate}`` for
    every optimizer. ``seeds`` (default 1, or 5 with noise) reported runs
    per optimizer use seeds 0..N-1; without noise there is one. With
    ``out_dir``, writes ``paths_<function>.csv`` and ``.png`` (and ``.gif``
    with ``gif``) there atomically. Raises :class:`minigrad.lab.LabError`
    for bad input, before any run.
    """
    if function not in FUNCTIONS:
        raise lab.LabError(f"unknown function {function!r}; known functions: {', '.join(FUNCTIONS)}")
    surface = FUNCTIONS[function]
    begin = _check_start(surface, start)
    steps = lab._check_int("paths: steps", steps, 1)
    noise = _check_number("noise", noise, 0.0, strict=False)
    tol = _check_number("tol", tol, 0.0, strict=True)
    if seeds is None:
        seeds = NOISY_SEEDS if noise > 0 else 1
    seeds = lab._check_int("paths: seeds", seeds, 1)
    if seeds > lab.TUNE_SEED_BASE:
        raise lab.LabError(f"paths: seeds must be at most {lab.TUNE_SEED_BASE} (tuning seeds start there), "
                           f"got {seeds}")
    grid_given = lr_grid is not None  # (given at its default too: then it is refused with given rates as well)
    grid = lab._checked_grid(lab.LR_GRID if lr_grid is None else lr_grid, "paths: lr_grid")
    if isinstance(optimizers, str):
        raise lab.LabError(f"paths: optimizers must be a list of names, got the string {optimizers!r}")
    specs = [o if isinstance(o, lab.OptimizerSpec) else lab.resolve_optimizer(o) for o in optimizers]
    if not specs:
        raise lab.LabError("no optimizers given")
    names = [s.name for s in specs]
    lab._check_plugin_names(specs)
    if len(set(names)) != len(names):
        raise lab.LabError(f"an optimizer is listed twice (plug-ins are named by class): {', '.join(names)}")
    given = _given_rates(specs, lrs)
    if given and grid_given:
        raise lab.LabError("paths: every optimizer has its rate, and a tuning grid is given too, which only tuning "
                           "uses: drop --lr-grid, or tune with --lr tune")
    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        if os.path.exists(out_dir) and not os.path.isdir(out_dir):
            raise lab.LabError(f"output directory {out_dir!r} exists and is not a directory")
        _check_matplotlib()
    warnings = []
    if noise == 0 and seeds > 1:
        warnings.append(f"without noise a path does not depend on its seed: one run per optimizer, not {seeds}")
    run_seeds = list(range(seeds)) if noise > 0 else [0]
    settings = {"function": function, "optimizers": names, "start": begin, "steps": steps, "noise": noise,
                "seeds": len(run_seeds), "grid": grid, "tol": tol, "target": surface.target(tol)}
    result = PathsResult(surface, settings, "given" if given else "tuned", warnings=warnings)
    say = progress or (lambda line: None)
    for spec in specs:
        if given:
            result.rates[spec.name] = given[spec.name]
        else:
            lr, rows = tune(surface, spec, grid, steps=steps, start=begin, noise=noise, tol=tol)
            result.rates[spec.name], result.tuning[spec.name] = lr, rows
            say(f"tuned {spec.name} on {function}: lr {lr:.3g}" if math.isfinite(lr)
                else f"tuned {spec.name} on {function}: every rate diverged or failed")
        lr = result.rates[spec.name]
        if math.isfinite(lr):
            result.paths += [descend(surface, spec, lr, steps=steps, start=begin, noise=noise, seed=s)
                             for s in run_seeds]
    _summarise(result)
    if out_dir is not None:
        result.files = _write_outputs(result, out_dir, gif, say)
    return result


def _check_matplotlib() -> None:
    """Find a missing matplotlib before any run (an ImportError the CLI prints in one line, exit 1)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(f"the pictures need matplotlib: {pip_hint('matplotlib')}") from None


def _given_rates(specs: Sequence[lab.OptimizerSpec], lrs: str | Mapping[str, float]) -> dict[str, float]:
    """{} for "tune", else a rate per optimizer's name (a spec may be named by its source too)."""
    if isinstance(lrs, str):
        if lrs != "tune":
            raise lab.LabError(f"paths: lrs must be 'tune' or a mapping of optimizer to rate, got {lrs!r}")
        return {}
    names = [s.name for s in specs]
    by_key = {s.name: s.name for s in specs} | {s.source: s.name for s in specs}
    given: dict[str, float] = {}
    for key, lr in lrs.items():
        if key not in by_key:
            raise lab.LabError(f"a learning rate is given for {key!r}, which is not among the optimizers {names}")
        given[by_key[key]] = _check_number(f"the learning rate for {key!r}", lr, 0.0, strict=True)
    missing = [n for n in names if n not in given]
    if missing:
        raise lab.LabError(f"rates are given for {', '.join(given)} but not for {', '.join(missing)}: one picture "
                           "uses one procedure, so give a rate for every optimizer, or use --lr tune")
    return given


def _summarise(result: PathsResult) -> None:
    """Per optimizer: its rate, the median steps to target, and the median run's final point and f."""
    target = result.settings["target"]
    grid = result.settings["grid"]
    for name in result.settings["optimizers"]:
        lr = result.rates[name]
        mine = [p for p in result.paths if p.optimizer == name]
        edge = result.procedure == "tuned" and len(grid) > 1 and lr in (grid[0], grid[-1])
        if edge:
            result.warnings.append(lab._edge_warning(name, result.surface.name, lr, grid))
        row: dict[str, Any] = {"optimizer": name, "lr": lr, "runs": len(mine), "at_grid_edge": edge,
                               "diverged": sum(p.status == "diverged" for p in mine),
                               "errors": sum(p.status == "error" for p in mine)}
        ok = [p for p in mine if p.status == "ok"]
        reach = [steps_to(p.f, target) if p.status == "ok" else math.inf for p in mine]
        row["steps_median"] = float(np.median(reach)) if reach else math.inf
        if ok:
            by_final = sorted(ok, key=lambda p: p.f[-1])
            middle = by_final[(len(by_final) - 1) // 2]  # the median run (the lower middle one of an even count)
            row["final_x"], row["final_y"] = (float(v) for v in middle.points[-1])
            row["final_f"] = float(middle.f[-1])
        result.summary.append(row)


# ---------------------------------------------------------------------------
# Output: CSV, PNG, GIF (each written atomically) and the printed table
# ---------------------------------------------------------------------------


def _csv_rows(result: PathsResult) -> list[dict[str, Any]]:
    rows = []
    for p in result.paths:
        for t, ((x, y), f) in enumerate(zip(p.points, p.f)):
            rows.append({"function": p.function, "optimizer": p.optimizer, "seed": p.seed, "step": t,
                         "x": float(x), "y": float(y), "f": float(f), "lr": p.lr})
    return rows


def _write_outputs(result: PathsResult, out_dir: str, gif: bool,
                   say: Callable[[str], Any] = lambda line: None) -> list[str]:
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise lab.LabError(f"cannot use output directory {out_dir!r}: {e.strerror or e}") from None
    stem = os.path.join(out_dir, f"paths_{result.surface.name}")
    written = []
    for path, payload in ((stem + ".csv", lambda: lab._csv_bytes(CSV_COLUMNS, _csv_rows(result))),
                          (stem + ".png", lambda: plot_png(result)),
                          (stem + ".gif", lambda: animate_gif(result))):
        if path.endswith(".gif") and not gif:
            if os.path.exists(path):  # an earlier run's animation would sit beside this run's picture and CSV
                try:
                    os.unlink(path)
                except OSError as e:
                    raise lab.LabWriteError(f"cannot remove the earlier run's {path}: {e.strerror or e}") from None
            continue
        if path.endswith(".gif"):
            say(f"drawing {os.path.basename(path)} (at most {GIF_FRAMES} frames; this takes a while)")
        try:
            lab._atomic_write(path, payload())
        except lab.LabWriteError as e:
            if path.endswith(".csv"):  # the data: nothing else is worth writing without it
                raise
            result.write_errors.append(str(e))  # a picture: said after the table, the other files written
            continue
        written.append(path)
    return written


def _label(result: PathsResult, name: str) -> str:
    how = "tuned" if result.procedure == "tuned" else "given"
    return f"{name}, lr {result.rates[name]:.3g} ({how})"


def _draw(result: PathsResult, dpi: int, map_steps: int | None) -> tuple[Any, list[tuple[Path, Any, Any]], Any]:
    """The figure: contours, start, minima, an (empty) line per path on the map and on the loss panel.

    Returns ``(fig, [(path, map_line, loss_line), ...], title)``; the caller sets the lines' data.
    """
    from matplotlib.colors import LogNorm

    plt = lab._pyplot()
    s = result.surface
    x_low, x_high, y_low, y_high = s.window
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=dpi, gridspec_kw={"width_ratios": [1.25, 1]})
    ax_loss.set_autoscale_on(False)  # the lines start empty: _fit_loss_axis sets the limits from the paths
    xs, ys = np.meshgrid(np.linspace(x_low, x_high, 240), np.linspace(y_low, y_high, 240))
    height = s.values(xs, ys)
    height = height - min(s.f_min, float(height.min())) if math.isfinite(s.f_min) else height - float(height.min())
    low, high = max(float(np.percentile(height, 0.2)), float(height.max()) * 1e-7), float(height.max())
    levels = np.geomspace(low, high, 16)
    ax.contourf(xs, ys, np.clip(height, low, high), levels=levels, norm=LogNorm(), cmap="Greys", alpha=0.55)
    ax.contour(xs, ys, np.clip(height, low, high), levels=levels, norm=LogNorm(), colors="grey", linewidths=0.4)
    if s.minima:
        mx, my = zip(*s.minima)
        ax.plot(mx, my, "*", color="white", markeredgecolor="black", markersize=14, zorder=5,
                label="minimum" if len(s.minima) == 1 else "minima")
    start = result.settings["start"]
    ax.plot(*start, "o", color="black", markersize=7, zorder=5, label=f"start ({start[0]:g}, {start[1]:g})")
    steps = result.settings["steps"]
    every = max(1, (steps if map_steps is None else map_steps) // 20)
    lines = []
    names = result.settings["optimizers"]
    for i, name in enumerate(names):
        colour, marker = lab.colour_for(name), lab._MARKERS[i % len(lab._MARKERS)]
        mine = [p for p in result.paths if p.optimizer == name]
        for j, p in enumerate(mine):
            style = {"color": colour, "linewidth": 1.3 if len(mine) == 1 else 0.8,
                     "alpha": 1.0 if len(mine) == 1 else 0.6, "marker": marker, "markersize": 3.5,
                     "markevery": every, "label": _label(result, name) if j == 0 else None}
            map_line, = ax.plot([], [], zorder=4, **style)
            loss_line, = ax_loss.plot([], [], **(style | {"markevery": max(1, steps // 10)}))
            lines.append((p, map_line, loss_line))
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(y_low, y_high)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"{s.name}: f = {s.formula}", fontsize=9)
    target = result.settings["target"]
    if math.isfinite(s.f_min):
        ax_loss.set_yscale("log")
        ax_loss.set_ylabel("f - f* (log scale)")
        ax_loss.axhline(target - s.f_min, color="grey", linestyle=":", linewidth=1)
        ax_loss.set_title(f"f - f* per step (dotted: the target {target - s.f_min:g})", fontsize=9)
    else:
        ax_loss.set_yscale("symlog", linthresh=1e-2)
        ax_loss.set_ylabel("f (symmetric log scale)")
        ax_loss.axhline(target, color="grey", linestyle=":", linewidth=1)
        ax_loss.set_title(f"f per step (dotted: f = {target:g}, escaped)", fontsize=9)
    ax_loss.set_xlabel("step")
    ax_loss.grid(True, alpha=0.3)
    noise = result.settings["noise"]
    how = ("rates tuned on the function, one log grid for all" if result.procedure == "tuned"
           else "rates given")
    runs = f"noise σ = {noise:g}, {result.settings['seeds']} seeds each" if noise > 0 else "no noise"
    title = fig.suptitle(f"{s.name}: {steps} steps, {how}; {runs}", fontsize=10)
    handles, labels = ax.get_legend_handles_labels()  # one legend, under both panels, where it hides no path
    columns = min(len(labels), 4)
    fig.legend(handles, labels, loc="lower center", ncol=columns, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.045 * math.ceil(len(labels) / columns) + 0.01, 1, 1))
    return fig, lines, title


def _set_lines(result: PathsResult, lines: list[tuple[Path, Any, Any]], upto: int) -> None:
    floor = 1e-300  # a path at f* exactly: shown at the floor of the log axis
    s = result.surface
    for p, map_line, loss_line in lines:
        points, f = p.points[: upto + 1], p.f[: upto + 1]
        map_line.set_data(points[:, 0], points[:, 1])
        shown = np.maximum(f - s.f_min, floor) if math.isfinite(s.f_min) else f
        loss_line.set_data(np.arange(len(shown)), shown)


def _fit_loss_axis(result: PathsResult, lines: list[tuple[Path, Any, Any]]) -> None:
    """Limit the loss panel to the values the paths take (f - f* floored at 1e-16 on the log axis)."""
    from matplotlib.ticker import LogLocator, NullLocator

    s = result.surface
    ax = lines[0][2].axes if lines else None
    if ax is None:
        return
    values = np.concatenate([p.f[np.isfinite(p.f)] for p, _, _ in lines] + [np.array([result.settings["target"]])])
    ax.set_xlim(0, max(result.settings["steps"], 1))
    if math.isfinite(s.f_min):
        gaps = values - s.f_min
        ax.set_ylim(max(float(gaps[gaps > 0].min(initial=1.0)), 1e-16) / 2, float(gaps.max()) * 2)
        ax.yaxis.set_major_locator(LogLocator(numticks=8))  # a tick every few decades, not one per decade
        ax.yaxis.set_minor_locator(NullLocator())  # (hundreds of minor ticks made every GIF frame slow)
    else:
        ax.set_ylim(float(values.min()) * 1.2 - 0.1, float(values.max()) + 0.5)


def plot_png(result: PathsResult, *, dpi: int = 110, map_steps: int | None = None) -> bytes:
    """``paths_<function>.png``: each path over the function's contours, and f per step on a log axis.

    Markers every steps/20 steps (``map_steps``/20 if given: set it when the
    picture is about the first ``map_steps`` steps, which the map then shows;
    the loss panel shows all steps).
    """
    fig, lines, _ = _draw(result, dpi, map_steps)
    _set_lines(result, lines, result.settings["steps"])
    if map_steps is not None:
        for p, map_line, _ in lines:
            points = p.points[: map_steps + 1]
            map_line.set_data(points[:, 0], points[:, 1])
        fig.axes[0].set_title(fig.axes[0].get_title() + f"; the first {map_steps} steps", fontsize=9)
    _fit_loss_axis(result, lines)
    return lab._png(fig)


def animate_gif(result: PathsResult, *, frames: int = GIF_FRAMES, dpi: int = 60, fps: int = 15) -> bytes:
    """``paths_<function>.gif``: the paths drawn step by step, min(steps + 1, ``frames``) frames.

    Frame i shows the first round(i·steps/(n-1)) steps, so the last frame is
    the PNG's picture; made with matplotlib's Pillow writer.
    """
    from matplotlib.animation import PillowWriter

    plt = lab._pyplot()
    steps = result.settings["steps"]
    n = min(steps + 1, frames)
    shown = [round(i * steps / (n - 1)) for i in range(n)] if n > 1 else [0]
    fig, lines, title = _draw(result, dpi, None)
    _fit_loss_axis(result, lines)
    heading = title.get_text()
    writer = PillowWriter(fps=fps)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "paths.gif")
        with writer.saving(fig, path, dpi):
            for step in shown:  # one full draw per frame; the step in the title makes every frame differ
                _set_lines(result, lines, step)
                title.set_text(f"{heading}  (step {step})")
                writer.grab_frame()
        plt.close(fig)
        with open(path, "rb") as f:
            return f.read()


def format_table(result: PathsResult) -> str:
    """The printed summary: per optimizer its rate, steps to target (median over seeds), final point and f."""
    st, s = result.settings, result.surface
    grid = st["grid"]
    if math.isfinite(s.f_min):
        goal = f"f - f* < {st['tol']:g}"
    else:
        goal = f"f < {st['target']:g} (escaped; no minimum)"
    noise = f"gradient noise σ = {st['noise']:g}, {st['seeds']} seeds" if st["noise"] > 0 else "no noise"
    lines = [f"minigrad paths: {s.name}, f = {s.formula}, from ({st['start'][0]:g}, {st['start'][1]:g}), "
             f"{st['steps']} steps, {noise}"]
    if result.procedure == "tuned":
        seeds = f"{TUNE_SEEDS} tuning seeds, disjoint from the reported ones" if st["noise"] > 0 else "one run each"
        lines.append(f"Learning rates: tuned on the function for every optimizer (grid {grid[0]:g} to {grid[-1]:g}, "
                     f"{len(grid)} rates, {seeds}): fewest steps to {goal} for good, ties broken by the lower final f; "
                     "a rate that diverges loses.")
    else:
        lines.append("Learning rates: given on the command line.")
    lines.append("")
    header = ["optimizer", "lr", f"steps to {goal}" + (" (median)" if st["seeds"] > 1 else ""), "final x",
              "final y", "final f"]
    table = [header]
    for row in result.summary:
        if not math.isfinite(row["lr"]):
            table.append([row["optimizer"], "-", "every rate diverged or failed in tuning", "-", "-", "-"])
            continue
        lr = f"{row['lr']:.3g}" + ("!" if row["at_grid_edge"] else "")
        reach = lab._steps(row["steps_median"])
        if "final_f" not in row:
            what = "error" if row["errors"] else "diverged"
            table.append([row["optimizer"], lr, reach, what, "-", "-"])
            continue
        final = [f"{row['final_x']:.6g}", f"{row['final_y']:.6g}", f"{row['final_f']:.3g}"]
        bad = [f"{row[k]} {k}" for k in ("diverged", "errors") if row[k]]
        if bad:
            final[-1] += f" ({', '.join(bad)})"
        table.append([row["optimizer"], lr, reach, *final])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, r in enumerate(table):
        lines.append("  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(f"steps to {goal}: the first step from which it holds to the end of the run (never: it does not)")
    lines.append("final x, y, f: the run with the median final f" if st["seeds"] > 1
                 else "final x, y, f: after the last step")
    if any(row["at_grid_edge"] for row in result.summary):
        lines.append("! the rate is at an end of the grid.")
    if result.errors:
        lines.append(f"{len(result.errors)} run(s) failed; the first: {result.errors[0]}")
    lines += result.warnings
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The command line: `python -m minigrad paths ...` (registered in minigrad.cli)
# ---------------------------------------------------------------------------


def _start(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers X,Y like 1.5,-0.5, got {text!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return x, y


def _noise(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``paths`` subcommand's options to ``parser``."""
    parser.add_argument("--function", default="rosenbrock", help=f"one of {', '.join(FUNCTIONS)} "
                        "(default: %(default)s)")
    parser.add_argument(
        "--optimizers", default=",".join(lab.DEFAULTS["optimizers"]),
        help=f"comma list of {', '.join(lab.BUILTIN_OPTIMIZERS)}, path/to/file.py:ClassName or "
        "package.module:ClassName, each optionally with literal keyword arguments, e.g. 'momentum(beta=0.95)' "
        "(default: %(default)s)",
    )
    parser.add_argument("--lr", default="tune", help="'tune' (every optimizer from one log grid, by steps to the "
                        "target) or a rate for every optimizer like sgd=0.001,adam=0.1 (default: %(default)s)")
    parser.add_argument("--lr-grid", type=cli._grid, default=None, metavar="LOW:HIGH:N",
                        help=f"the tuning grid, N log-spaced rates from LOW to HIGH inclusive "
                        f"(default: {lab.DEFAULT_GRID_TEXT})")
    parser.add_argument("--steps", type=cli._int(1), default=DEFAULT_STEPS,
                        help="steps per path (default: %(default)s)")
    parser.add_argument("--start", type=_start, default=None, metavar="X,Y",
                        help="the start, inside the function's window; write --start=-1,2 when X is negative "
                        "(default: the function's own)")
    parser.add_argument("--noise", type=_noise, default=0.0, metavar="SIGMA",
                        help="add N(0, SIGMA²) to each gradient coordinate (default: 0, none)")
    parser.add_argument("--seeds", type=cli._int(1), default=None,
                        help=f"runs per optimizer with noise, seeds 0..N-1 (default: {NOISY_SEEDS} with noise; "
                        "1 without, where the seed changes nothing)")
    parser.add_argument("--tol", type=cli._positive_float, default=TOLERANCE,
                        help="f - f* below this counts as reached (default: %(default)g)")
    parser.add_argument("--out", default="minigrad-paths", help="output directory (default: %(default)s)")
    parser.add_argument("--gif", action="store_true", help="also write an animation, paths_NAME.gif")


def main(args: argparse.Namespace) -> int:
    """Run ``minigrad paths`` with parsed ``args``; print the table; return the exit status (1 if a run failed)."""
    result = run(
        args.function, cli.split_list(args.optimizers, "optimizers"), cli.parse_lrs(args.lr),
        steps=args.steps, start=args.start, noise=args.noise, seeds=args.seeds, lr_grid=args.lr_grid,
        tol=args.tol, out_dir=args.out, gif=args.gif, progress=lambda line: print(line, file=sys.stderr),
    )
    print(format_table(result))
    print(f"Wrote {len(result.files)} files to {os.path.abspath(args.out)}")
    for message in result.write_errors:  # each picture that could not be written (the CSV was)
        print(f"minigrad: error: {message}", file=sys.stderr)
    return 1 if result.errors or result.write_errors else 0

