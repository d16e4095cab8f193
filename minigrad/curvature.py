"""``mg.curvature``: the extreme eigenvalues of a loss's Hessian, from Hessian-vector products alone.

The Hessian H of a loss with respect to a model's parameters has as many rows
as the model has parameters, so it is never formed here. What is cheap is the
product H·v: with g = ∇loss computed with ``create_graph=True``, H·v is the
gradient of the number g·v, one more backward pass (:func:`hessian_operator`).
Two classic methods need nothing else:

- **Power iteration** (:func:`power_iteration`): v ← A·v/‖A·v‖ converges to
  the eigenvector of the eigenvalue of largest magnitude, by a factor
  |λ₂/λ₁| per step. Run on H it gives the dominant eigenvalue λ₁ (the top
  one when H is positive semi-definite). Run on the shifted H - λ₁·I, whose
  eigenvalues are λᵢ - λ₁, it gives the other end of the spectrum (for
  λ₁ = λmax this is power iteration on λmax·I - H, whose top eigenvalue is
  λmax - λmin).
- **Lanczos** (:func:`lanczos`): k products build an orthonormal basis Q of
  the Krylov space {v, Hv, ..., H^(k-1)v} in which H is a small tridiagonal
  matrix T = QᵀHQ; T's extreme eigenvalues (the Ritz values) approach both
  ends of H's spectrum at once, far faster than power iteration. Each new
  basis vector is re-orthogonalised against all earlier ones, which is
  affordable for models of thousands of parameters and keeps T honest.

The convergence criterion is the same for both, ARPACK's: an estimate θ
with unit vector y stops when its residual ‖H·y - θ·y‖ ≤ tol·max(|θ|,
ε^(2/3)·scale), ``scale`` the largest |eigenvalue| seen and ε the float64
epsilon. For a symmetric H the residual bounds the distance from θ to an
eigenvalue of H, so each estimate is accurate relative to its own size (the
small end of an ill-conditioned spectrum too, which κ needs), down to about
1e-11·scale for an eigenvalue near 0. (Lanczos knows the residual without
another product: it is β_k·|last entry of T's eigenvector|.) Both start
from a Gaussian vector drawn from ``seed``; they report how many products
they used and whether they converged, and the model-level functions warn if
they did not.

The condition number κ = λmax/λmin measures how badly gradient descent
zigzags: it needs about κ steps per digit of accuracy on a quadratic, the
heavy ball about √κ. It is finite only where H is positive definite, and it
is reported finite only where the bottom estimate is shown positive: larger
than its residual, the bound on its error, and than 2·ε·λmax, about the
rounding of the products in the parameters' precision (a singular H's
bottom estimate is rounding noise around 0, whose ratio would be a
meaningless large number). Beyond that κ is inf, with a warning that
gives the bound it is at least when the estimate was positive.
"""


from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from minigrad import autograd
from minigrad.engine import Tensor, enable_grad

__all__ = [
    "Eigenpair",
    "Spectrum",
    "hessian_operator",
    "power_iteration",
    "lanczos",
    "extreme_eigenvalues",
    "top_eigenvalue",
    "condition_number",
]

Matvec = Callable[[np.ndarray], np.ndarray]
#: ε^(2/3) of float64, ARPACK's floor on the scale of an eigenvalue near 0 (its convergence test).
_EPS = float(np.finfo(np.float64).eps)
_EPS23 = _EPS ** (2 / 3)


@dataclass
class Eigenpair:
    """An eigenvalue estimate θ, its unit vector y, the residual ‖H·y - θ·y‖ and how it was reached."""

    value: float
    vector: np.ndarray
    residual: float
    products: int  # Hessian-vector products used
    converged: bool


@dataclass
class Spectrum:
    """The top and bottom Hessian eigenvalues, κ = top/bottom (inf unless bottom is shown > 0) and the cost."""

    top: float
    bottom: float
    condition_number: float
    products: int
    converged: bool
    method: str


def hessian_operator(loss: Tensor, params: Iterable[Tensor]) -> tuple[Matvec, int]:
    """``(matvec, n)``: matvec(v) = H·v for the Hessian of ``loss`` with respect to ``params``, flattened.

    The parameters are laid end to end into one vector of length n (in the
    order given, each flattened in C order); v and H·v are float64 arrays of
    that length. The gradient g is computed once, with ``create_graph=True``;
    each call is one backward pass through it, d(g·v)/dparams, with the graph
    kept for the next call. ``loss``'s own graph is kept too, so
    ``loss.backward()`` still works afterwards; but a backward without
    ``retain_graph=True`` releases the graph the products run through, and
    matvec then raises (as PyTorch's would).
    """
    return _operator("hessian_operator", loss, params)


def _operator(name: str, loss: Tensor, params: Iterable[Tensor]) -> tuple[Matvec, int]:
    """:func:`hessian_operator`, its errors naming ``name``: the public function the user called."""
    if isinstance(params, Tensor):  # (a Tensor iterates into views of its rows, which the loss never used)
        raise TypeError(f"{name}: params is a single Tensor; pass a list of them, [w], or "
                        "model.parameters()")
    params = list(params)
    if not isinstance(loss, Tensor) or loss.size != 1:
        shape = loss.shape if isinstance(loss, Tensor) else type(loss).__name__
        raise TypeError(f"{name}: loss must be a one-element Tensor, got {shape}")
    if not params:
        raise ValueError(f"{name}: params is empty; pass model.parameters()")
    for i, p in enumerate(params):
        if not isinstance(p, Tensor) or not p.requires_grad:
            raise TypeError(f"{name}: params[{i}] is not a Tensor that requires grad")
        first = next(j for j, q in enumerate(params) if q is p)
        if first != i:  # (its block would count twice: the operator would be another matrix's)
            raise ValueError(f"{name}: params[{first}] and params[{i}] are the same tensor; give each parameter once")
    if not loss.requires_grad:
        raise RuntimeError(f"{name}: loss does not depend on params (it does not require grad)")
    with enable_grad(), _named(name):
        grads = autograd.grad(loss, params, create_graph=True, retain_graph=True, allow_unused=True)
    if all(g is None for g in grads):
        raise RuntimeError(f"{name}: the loss does not depend on any of params (no gradient reaches "
                           "them); pass the parameters the loss was computed from")
    sizes = [p.size for p in params]
    ends = np.cumsum(sizes)
    n = int(ends[-1])
    live = [(i, g) for i, g in enumerate(grads) if g is not None and g.requires_grad]  # others have no curvature

    def matvec(v: np.ndarray) -> np.ndarray:
        """H·v, one backward pass through the gradient's graph."""
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (n,):
            raise ValueError(f"{name}: v has shape {v.shape}, the parameters make a vector of ({n},)")
        if not live:
            return np.zeros(n)
        pieces = np.split(v, ends[:-1])
        seeds = [pieces[i].reshape(params[i].shape) for i, _ in live]
        with _named(name):
            hv = autograd.grad(
                [g for _, g in live], params, grad_outputs=seeds, retain_graph=True, allow_unused=True
            )
        return np.concatenate([
            np.zeros(size) if h is None else h.data.astype(np.float64).ravel() for h, size in zip(hv, sizes)
        ])

    return matvec, n


@contextlib.contextmanager
def _named(name: str) -> Iterator[None]:
    """Let an autograd.grad refusal inside name the public function the user called, not ``grad``."""
    try:
        yield
    except RuntimeError as e:
        if not str(e).startswith("grad: "):
            raise
        raise RuntimeError(f"{name}: {str(e)[len('grad: '):]}") from None


def _converged(residual: float, theta: float, scale: float, tol: float) -> bool:
    """The one convergence test of both methods (ARPACK's): ‖H·y - θ·y‖ ≤ tol·max(|θ|, ε^(2/3)·scale)."""
    return residual <= tol * max(abs(theta), _EPS23 * scale)


def _start(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(n)
    return v / np.linalg.norm(v)


def power_iteration(
    matvec: Matvec, n: int, *, shift: float = 0.0, tol: float = 1e-6, max_iter: int = 1000, seed: int = 0
) -> Eigenpair:
    """The eigenvalue of largest |λ - shift| of the symmetric operator ``matvec``, by power iteration.

    Iterates v ← (H - shift·I)·v / ‖·‖ from a Gaussian start and returns the
    Rayleigh quotient θ = vᵀHv (an eigenvalue of H itself, not of the shifted
    operator). It stops when ‖H·v - θ·v‖ ≤ tol·max(|θ|, ε^(2/3)·scale),
    scale = max(|θ|, |shift|), or after ``max_iter`` products (then
    ``converged`` is False).
    """
    if max_iter < 1:
        raise ValueError(f"power_iteration: max_iter must be at least 1, got {max_iter}")
    v = _start(n, seed)
    theta, residual = 0.0, math.inf
    for k in range(1, max_iter + 1):
        hv = matvec(v)
        theta = float(v @ hv)  # the Rayleigh quotient vᵀHv (v has unit length)
        residual = float(np.linalg.norm(hv - theta * v))
        if _converged(residual, theta, max(abs(theta), abs(shift)), tol):
            return Eigenpair(theta, v, residual, k, True)
        av = hv - shift * v  # (H - shift·I)·v
        v = av / np.linalg.norm(av)
    return Eigenpair(theta, v, residual, max_iter, False)


def lanczos(
    matvec: Matvec, n: int, *, which: str = "both", tol: float = 1e-6, max_iter: int = 100, seed: int = 0
) -> tuple[Eigenpair, Eigenpair]:
    """``(bottom, top)``: both extreme eigenpairs of the symmetric operator ``matvec``, by Lanczos.

    Step j: w = H·q_j - β_(j-1)·q_(j-1), α_j = q_jᵀw, w -= α_j·q_j, then w is
    re-orthogonalised against every earlier q; β_j = ‖w‖, q_(j+1) = w/β_j. The
    tridiagonal T (α on the diagonal, β beside it) has Ritz values θ with
    residuals β_j·|s_last| (s: T's eigenvector). Stops when the extreme
    Ritz pairs named by ``which`` ("both", "top" or "bottom") have residual
    ≤ tol·max(|θ|, ε^(2/3)·max|θ|) each, when β_j is down to rounding
    noise, 64·ε·max|θ| (the Krylov space is invariant: the Ritz values are
    exact), or after
    min(max_iter, n) products. Both pairs are
    returned either way, each with its own ``converged``.
    """
    if max_iter < 1:
        raise ValueError(f"lanczos: max_iter must be at least 1, got {max_iter}")
    if which not in ("both", "top", "bottom"):
        raise ValueError(f"lanczos: which must be 'both', 'top' or 'bottom', got {which!r}")
    wanted = {"both": (0, -1), "top": (-1,), "bottom": (0,)}[which]
    steps = min(max_iter, n)
    Q = np.zeros((steps + 1, n))
    Q[0] = _start(n, seed)
    alphas: list[float] = []
    betas: list[float] = []
    for j in range(steps):
        w = matvec(Q[j])
        if j > 0:
            w -= betas[-1] * Q[j - 1]
        alphas.append(float(Q[j] @ w))
        w -= alphas[-1] * Q[j]
        w -= Q[: j + 1].T @ (Q[: j + 1] @ w)  # full re-orthogonalisation (twice is enough)
        w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
        beta = float(np.linalg.norm(w))
        T = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        thetas, S = np.linalg.eigh(T)
        scale = float(np.max(np.abs(thetas)))
        residuals = beta * np.abs(S[-1])  # ‖H·y - θ·y‖ for each Ritz pair y = Q·s
        # An invariant subspace (w is rounding noise: the Ritz values are exact), or all of R^n. A small β that is
        # not noise is no such thing: a cluster of eigenvalues narrower than 1e-12·scale at the bottom needs more
        # steps (taken for exact, its estimate was reported converged 1e-4 off).
        exact = beta <= 64 * _EPS * max(scale, 1e-300) or j + 1 == n
        converged = [exact or _converged(float(residuals[col]), float(thetas[col]), scale, tol) for col in (0, -1)]
        if all(converged[col] for col in wanted) or j == steps - 1:
            basis = Q[: j + 1].T
            pairs = []
            for col in (0, -1):
                y = basis @ S[:, col]
                pairs.append(Eigenpair(float(thetas[col]), y / np.linalg.norm(y), float(residuals[col]), j + 1,
                                       converged[col]))
            return pairs[0], pairs[1]
        Q[j + 1] = w / beta
        betas.append(beta)
    raise AssertionError("unreachable: the loop returns at its last step")


def _check_method(name: str, method: str) -> None:
    if method not in ("lanczos", "power"):
        raise ValueError(f"{name}: method must be 'lanczos' or 'power', got {method!r}")


def _warn_unconverged(name: str, spectrum_products: int, residual: float) -> None:
    warnings.warn(
        f"{name}: the eigenvalue estimate did not converge in {spectrum_products} Hessian-vector products "
        f"(residual {residual:.3g}); raise max_iter or tol",
        RuntimeWarning,
        stacklevel=3,
    )


def extreme_eigenvalues(
    loss: Tensor,
    params: Iterable[Tensor],
    *,
    method: str = "lanczos",
    tol: float = 1e-6,
    max_iter: int = 1000,
    seed: int = 0,
) -> Spectrum:
    """The top and bottom eigenvalues of the Hessian of ``loss`` w.r.t. ``params``, and κ = top/bottom.

    ``method="lanczos"`` (the default) gets both ends from one Krylov space
    (at most ``max_iter`` products, and never more than the number of
    parameters); ``method="power"`` runs power iteration for the dominant
    eigenvalue λ₁, then on H - λ₁·I for the other end (``max_iter`` each).
    κ is ``inf`` unless the bottom estimate exceeds its residual and
    2·ε·λmax (it is shown positive, see the module's text). Warns
    (RuntimeWarning) if the estimate did not converge to ``tol``.
    """
    return _spectrum("extreme_eigenvalues", loss, params, method, tol, max_iter, seed)


def _spectrum(
    name: str, loss: Tensor, params: Iterable[Tensor], method: str, tol: float, max_iter: int, seed: int
) -> Spectrum:
    """:func:`extreme_eigenvalues`, its errors and warnings naming ``name``: the public function called."""
    _check_method(name, method)
    params = list(params) if not isinstance(params, Tensor) else params
    matvec, n = _operator(name, loss, params)
    if method == "lanczos":
        bottom, top = lanczos(matvec, n, tol=tol, max_iter=max_iter, seed=seed)
        products = top.products
    else:
        first = power_iteration(matvec, n, tol=tol, max_iter=max_iter, seed=seed)
        second = power_iteration(matvec, n, shift=first.value, tol=tol, max_iter=max_iter, seed=seed + 1)
        bottom, top = sorted((first, second), key=lambda e: e.value)
        products = first.products + second.products
    converged = bottom.converged and top.converged
    if not converged:
        _warn_unconverged(name, products, max(bottom.residual, top.residual))
    # κ is finite only where the bottom eigenvalue is shown positive: above its residual (the bound on its error)
    # and above the rounding of the products themselves, 2·ε·λmax in the parameters' precision (the bottom
    # estimates of singular Hessians, float32 and float64, came out within 0.2 to 0.8·ε·λmax of 0).
    eps = max(float(np.finfo(p.dtype).eps) for p in params)
    floor = 2 * eps * abs(top.value)
    kappa = top.value / bottom.value if bottom.value > max(bottom.residual, floor) else math.inf
    if math.isinf(kappa) and bottom.residual < bottom.value <= floor:
        warnings.warn(
            f"{name}: the bottom eigenvalue estimate, {bottom.value:.3g}, is within the rounding of the "
            f"Hessian-vector products ({floor:.3g} = 2·ε·λmax in {'float32' if eps > 1e-10 else 'float64'}), "
            f"so it cannot be told from 0 and κ is given as inf (it is at least "
            f"{top.value / (bottom.value + floor):.3g}); compute in float64 for a finer bound",
            RuntimeWarning,
            stacklevel=3,
        )
    return Spectrum(top.value, bottom.value, kappa, products, converged, method)


def top_eigenvalue(
    loss: Tensor,
    params: Iterable[Tensor],
    *,
    method: str = "lanczos",
    tol: float = 1e-6,
    max_iter: int = 1000,
    seed: int = 0,
) -> float:
    """λmax, the largest eigenvalue of the Hessian of ``loss`` w.r.t. ``params`` (gradient descent needs lr < 2/λmax).

    ``method="power"`` is plain power iteration on H: it finds the
    eigenvalue of largest magnitude, which is λmax when H is positive
    semi-definite (for a Hessian with a larger negative eigenvalue use
    :func:`extreme_eigenvalues`). ``"lanczos"`` finds λmax in every case.
    """
    name = "top_eigenvalue"
    _check_method(name, method)
    matvec, n = _operator(name, loss, params)
    if method == "lanczos":
        top = lanczos(matvec, n, which="top", tol=tol, max_iter=max_iter, seed=seed)[1]
    else:
        top = power_iteration(matvec, n, tol=tol, max_iter=max_iter, seed=seed)
    if not top.converged:
        _warn_unconverged(name, top.products, top.residual)
    return top.value


def condition_number(
    loss: Tensor,
    params: Iterable[Tensor],
    *,
    method: str = "lanczos",
    tol: float = 1e-6,
    max_iter: int = 1000,
    seed: int = 0,
) -> float:
    """κ = λmax/λmin of the Hessian of ``loss`` w.r.t. ``params`` (inf unless H is shown positive definite).

    The options are those of :func:`extreme_eigenvalues`.
    """
    spectrum = _spectrum("condition_number", loss, params, method, tol, max_iter, seed)
    return spectrum.condition_number
