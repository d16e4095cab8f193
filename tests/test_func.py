"""mg.func (grad, value_and_grad, jacobian, hessian, hvp, vjp) and mg.curvature, against closed forms.

Every expected value is written out by hand (a quadratic form's Hessian is its
symmetric part; d³ tanh = -2(1 - t²)(1 - 3t²)) or computed with numpy
(eigenvalues by np.linalg.eigvalsh, Hessian-vector products by central
differences of the gradient).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import minigrad as mg

F = mg.func
C = mg.curvature
rng = np.random.default_rng(1234)


def arr(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


# ---------------------------------------------------------------------------
# grad, value_and_grad, vjp
# ---------------------------------------------------------------------------


def test_grad_of_a_cubic_and_argnums() -> None:
    x, y = arr(4), arr(4)
    np.testing.assert_allclose(F.grad(lambda x: (x**3).sum())(x).numpy(), 3 * x**2, rtol=1e-12)
    f = lambda x, y: (x * x * y).sum()  # noqa: E731  ∂f/∂x = 2xy, ∂f/∂y = x²
    np.testing.assert_allclose(F.grad(f, argnums=1)(x, y).numpy(), x**2, rtol=1e-12)
    np.testing.assert_allclose(F.grad(f, argnums=-2)(x, y).numpy(), 2 * x * y, rtol=1e-12)
    gx, gy = F.grad(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx.numpy(), 2 * x * y, rtol=1e-12)
    np.testing.assert_allclose(gy.numpy(), x**2, rtol=1e-12)
    value, (gy2, gx2) = F.value_and_grad(f, argnums=(1, 0))(x, y)
    assert value.item() == pytest.approx(float(np.sum(x * x * y)), rel=1e-12)
    np.testing.assert_allclose(gy2.numpy(), x**2, rtol=1e-12)
    np.testing.assert_allclose(gx2.numpy(), 2 * x * y, rtol=1e-12)


def test_argnums_naming_one_argument_twice_by_a_negative_position_is_refused():
    """Guards `int(a) % n_args` (made `int(a)`): argnums (1, -1) of a two-argument call was not seen as the
    same argument twice and gave its gradient twice."""
    f = lambda x, y: (x * y).sum()  # noqa: E731
    with pytest.raises(ValueError, match="more than once"):
        F.grad(f, argnums=(1, -1))(np.ones(2), np.ones(2))
    gx, gy = F.grad(f, argnums=(0, -1))(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    np.testing.assert_array_equal(gx.data, [3.0, 4.0])
    np.testing.assert_array_equal(gy.data, [1.0, 2.0])


def test_a_one_item_argnums_tuple_gives_a_one_item_tuple():
    """Guards `_pick(isinstance(argnums, tuple), ...)` (made `len(grads) > 1`: argnums=(0,) gave a Tensor)."""
    got = F.grad(lambda x: (x**3).sum(), argnums=(0,))(np.array([1.0, 2.0]))
    assert isinstance(got, tuple) and len(got) == 1
    np.testing.assert_array_equal(got[0].data, [3.0, 12.0])
    value, grads = F.value_and_grad(lambda x: (x**3).sum(), argnums=(0,))(np.array([2.0]))
    assert value.item() == 8.0 and isinstance(grads, tuple) and grads[0].data.tolist() == [12.0]


def test_grad_accepts_tensors_and_keyword_arguments_and_gives_zeros_for_unused_inputs() -> None:
    x = arr(3)
    g = F.grad(lambda x, scale=1.0: scale * (x * x).sum())(mg.Tensor(x), scale=3.0)
    np.testing.assert_allclose(g.numpy(), 6 * x, rtol=1e-12)
    unused = F.grad(lambda x, y: (x * x).sum(), argnums=1)(mg.Tensor(x), arr(2, 2))
    np.testing.assert_array_equal(unused.numpy(), np.zeros((2, 2)))
    assert not g.requires_grad and not unused.requires_grad  # nothing outside: plain constants


def test_nested_grad_gives_the_third_derivative_of_tanh() -> None:
    x = np.array([-1.3, -0.2, 0.0, 0.4, 2.0])
    d1 = F.grad(lambda x: x.tanh().sum())
    d2 = F.grad(lambda x: d1(x).sum())
    d3 = F.grad(lambda x: d2(x).sum())
    t = np.tanh(x)
    np.testing.assert_allclose(d1(x).numpy(), 1 - t**2, rtol=1e-12)
    np.testing.assert_allclose(d2(x).numpy(), -2 * t * (1 - t**2), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(d3(x).numpy(), -2 * (1 - t**2) * (1 - 3 * t**2), rtol=1e-12)


def test_a_gradient_that_depends_on_an_outside_parameter_carries_a_graph() -> None:
    x = arr(3)
    w = mg.Tensor(np.array(1.5), requires_grad=True)
    g = F.grad(lambda x: (w * x**2).sum())(x)  # 2·w·x
    assert g.requires_grad
    g.sum().backward()  # d/dw Σ 2·w·x = 2·Σx
    assert w.grad == pytest.approx(2 * x.sum(), rel=1e-12)
    with mg.no_grad():  # still differentiated, but no graph comes out
        h = F.grad(lambda x: (w * x**2).sum())(x)
    assert not h.requires_grad
    np.testing.assert_allclose(h.numpy(), 3 * x, rtol=1e-12)


def test_value_and_grad_of_fresh_inputs_returns_a_constant_value():
    """Guards `_result(out, keep)` (made `out`: the value came back with the graph of the fresh leaves)."""
    value, g = F.value_and_grad(lambda x: (x * x).sum())(np.array([1.0, 3.0]))
    assert value.item() == 10.0 and not value.requires_grad and value.is_leaf
    np.testing.assert_array_equal(g.data, [2.0, 6.0])


def test_f_returning_a_parameter_itself_keeps_its_graph():
    """Guards `_depends_on_outside`'s test of an output that is itself such a leaf (dropped: f returning the
    Parameter w gave a detached value, so its graph to w was lost)."""
    w = mg.nn.Parameter(np.array(2.5))
    value, g = F.value_and_grad(lambda x: w)(np.zeros(3))
    np.testing.assert_array_equal(g.data, np.zeros(3))  # f does not use x
    assert value.requires_grad
    value.backward()
    assert w.grad == 1.0


def test_vjp_returns_the_output_and_a_reusable_pullback() -> None:
    x, y = arr(3), arr(3)
    out, pullback = F.vjp(lambda x, y: x * y + x.sin(), x, y)
    np.testing.assert_allclose(out.numpy(), x * y + np.sin(x), rtol=1e-12)
    for u in (np.ones(3), arr(3)):  # called twice: the graph is kept
        ux, uy = pullback(u)
        np.testing.assert_allclose(ux.numpy(), u * (y + np.cos(x)), rtol=1e-12)
        np.testing.assert_allclose(uy.numpy(), u * x, rtol=1e-12)
    with pytest.raises(ValueError, match=r"cotangent has shape \(2,\).*\(3,\)"):
        pullback(np.ones(2))


def test_vjp_inside_no_grad_returns_constants():
    """Guards vjp's `keep = is_grad_enabled() and ...` (dropped: inside no_grad, vjp of a function of a
    Parameter returned a value and a pullback with graphs)."""
    w = mg.nn.Parameter(np.array([2.0, -1.0]))
    with mg.no_grad():
        out, pullback = F.vjp(lambda x: w * x * x, np.array([3.0, 4.0]))
        (gx,) = pullback(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(out.data, [18.0, -16.0])
    np.testing.assert_array_equal(gx.data, [12.0, -8.0])  # 2·w·x
    assert not out.requires_grad and not gx.requires_grad


def test_bad_inputs_and_outputs_are_refused_with_the_shapes() -> None:
    x = arr(3)
    with pytest.raises(TypeError, match=r"mg.func.grad: f must return a scalar Tensor.*\(3,\)"):
        F.grad(lambda x: x * 2)(x)
    with pytest.raises(TypeError, match=r"mg.func.hessian: f must return a scalar Tensor.*\(3,\)"):
        F.hessian(lambda x: x * 2)(x)
    with pytest.raises(TypeError, match="must return a Tensor, got float"):
        F.grad(lambda x: 1.0)(x)
    with pytest.raises(TypeError, match="dtype int64"):
        F.grad(lambda x: x.sum())(np.arange(3))
    with pytest.raises(ValueError, match="argnums 2 is out of range"):
        F.grad(lambda x, y: x.sum(), argnums=2)(x, x)
    with pytest.raises(ValueError, match="more than once"):
        F.grad(lambda x, y: x.sum(), argnums=(0, 0))(x, x)
    with pytest.raises(TypeError, match="argnums must be an int"):
        F.grad(lambda x: x.sum(), argnums=1.0)(x)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"v\[0\] has shape \(2,\), but x\[0\] has shape \(3,\)"):
        F.hvp(lambda x: (x * x).sum(), x, np.ones(2))


# ---------------------------------------------------------------------------
# jacobian, hessian, hvp
# ---------------------------------------------------------------------------


def test_jacobian_of_a_vector_function_matches_the_hand_jacobian() -> None:
    x = arr(3)
    f = lambda x: mg.stack([x[0] * x[1], x[2].sin(), x[0] ** 2])  # noqa: E731
    J = F.jacobian(f)(x).numpy()
    expected = np.array([
        [x[1], x[0], 0.0],
        [0.0, 0.0, np.cos(x[2])],
        [2 * x[0], 0.0, 0.0],
    ])
    np.testing.assert_allclose(J, expected, rtol=1e-12)


def test_jacobian_shapes_and_argnums_for_a_matrix_vector_product() -> None:
    W, x = arr(2, 3), arr(3)
    JW, Jx = F.jacobian(lambda W, x: W @ x, argnums=(0, 1))(W, x)
    np.testing.assert_allclose(Jx.numpy(), W, rtol=1e-12)  # d(Wx)/dx = W
    assert JW.shape == (2, 2, 3)  # d(Wx)_i / dW_jk = δ_ij·x_k
    np.testing.assert_allclose(JW.numpy(), np.einsum("ij,k->ijk", np.eye(2), x), rtol=1e-12)


def test_hessian_of_a_quadratic_form_is_its_symmetric_part() -> None:
    A, b, x = arr(4, 4), arr(4), arr(4)
    f = lambda x: 0.5 * (x * (mg.Tensor(A) @ x)).sum() + (mg.Tensor(b) * x).sum()  # noqa: E731
    np.testing.assert_allclose(F.hessian(f)(x).numpy(), (A + A.T) / 2, rtol=1e-12)
    np.testing.assert_allclose(F.grad(f)(x).numpy(), (A + A.T) / 2 @ x + b, rtol=1e-12)


def test_hessian_of_the_squared_dot_product_in_closed_form() -> None:
    x, y = arr(3), arr(3)
    s = x @ y
    (Hxx, Hxy), (Hyx, Hyy) = F.hessian(lambda x, y: (x * y).sum() ** 2, argnums=(0, 1))(x, y)
    # f = s², s = x·y: ∂²f/∂x_i∂x_j = 2·y_i·y_j, ∂²f/∂x_i∂y_j = 2·y_i·x_j + 2s·δ_ij
    np.testing.assert_allclose(Hxx.numpy(), 2 * np.outer(y, y), rtol=1e-12)
    np.testing.assert_allclose(Hyy.numpy(), 2 * np.outer(x, x), rtol=1e-12)
    np.testing.assert_allclose(Hxy.numpy(), 2 * np.outer(y, x) + 2 * s * np.eye(3), rtol=1e-12)
    np.testing.assert_allclose(Hyx.numpy(), Hxy.numpy().T, rtol=1e-12)
    H = F.hessian(lambda x: (x * mg.Tensor(y)).sum() ** 2)(x)  # one argument: a single matrix
    np.testing.assert_allclose(H.numpy(), 2 * np.outer(y, y), rtol=1e-12)


def test_hessian_of_softmax_cross_entropy_in_closed_form() -> None:
    z, label = arr(4), 2
    # L = logsumexp(z) - z_label: ∇L = p - e_label, H = diag(p) - p·pᵀ, p = softmax(z)
    H = F.hessian(lambda z: mg.nn.cross_entropy(z.reshape(1, 4), np.array([label])))(z).numpy()
    p = np.exp(z - z.max())
    p /= p.sum()
    np.testing.assert_allclose(H, np.diag(p) - np.outer(p, p), rtol=1e-10, atol=1e-14)


def test_hessian_of_a_matrix_argument_has_shape_x_plus_x() -> None:
    W = arr(2, 3)
    H = F.hessian(lambda W: (W**3).sum())(W).numpy()  # ∂²/∂W_ij∂W_kl = 6·W_ij·δ_ik·δ_jl
    assert H.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(H.reshape(6, 6), np.diag(6 * W.ravel()), rtol=1e-12)


def test_hvp_equals_hessian_times_v() -> None:
    x, v = arr(5), arr(5)
    f = lambda x: (x.tanh() ** 2).sum() + (x * x).sum() ** 2 + (x[0] * x[3]).exp()  # noqa: E731
    H = F.hessian(f)(x).numpy()
    np.testing.assert_allclose(F.hvp(f, x, v).numpy(), H @ v, rtol=1e-10)
    # Two arguments: H·v for the stacked vector, split back.
    g = lambda x, y: (x * y).sum() ** 2 + (x**3).sum()  # noqa: E731
    y, vx, vy = arr(5), arr(5), arr(5)
    (Hxx, Hxy), (Hyx, Hyy) = F.hessian(g, argnums=(0, 1))(x, y)
    hx, hy = F.hvp(g, (x, y), (vx, vy))
    np.testing.assert_allclose(hx.numpy(), Hxx.numpy() @ vx + Hxy.numpy() @ vy, rtol=1e-10)
    np.testing.assert_allclose(hy.numpy(), Hyx.numpy() @ vx + Hyy.numpy() @ vy, rtol=1e-10)


def test_transforms_compose_jacobian_of_grad_is_the_hessian() -> None:
    x, v = arr(4), arr(4)
    f = lambda x: (x.sin() * x).sum() * (x * x).sum()  # noqa: E731
    H = F.hessian(f)(x).numpy()
    np.testing.assert_allclose(F.jacobian(F.grad(f))(x).numpy(), H, rtol=1e-10)
    np.testing.assert_allclose(F.grad(lambda x: (F.grad(f)(x) * mg.Tensor(v)).sum())(x).numpy(), H @ v, rtol=1e-10)
    np.testing.assert_allclose(H, H.T, rtol=1e-12)  # and it is symmetric, as a Hessian must be


def test_hvp_of_a_function_linear_in_x_is_zero() -> None:
    x, v = arr(3), arr(3)
    np.testing.assert_array_equal(F.hvp(lambda x: (2 * x).sum(), x, v).numpy(), np.zeros(3))


def test_hvp_with_a_tangent_that_requires_grad_is_differentiable_in_the_tangent():
    """Guards hvp's `or any(t.requires_grad for t in tangents)` and its keeping such a tangent (each dropped:
    H·v came back a constant, so d(sum H·v)/dv was lost). f = Σx³: H·v = 6x⊙v, d Σ(H·v)/dv = 6x."""
    x0 = np.array([1.0, -2.0, 0.5])
    v = mg.Tensor(np.array([0.3, 0.1, -1.0]), requires_grad=True)
    hv = F.hvp(lambda x: (x**3).sum(), x0, v)
    np.testing.assert_allclose(hv.data, 6 * x0 * v.data, rtol=1e-14)
    assert hv.requires_grad
    hv.sum().backward()
    np.testing.assert_allclose(v.grad, 6 * x0, rtol=1e-14)


# ---------------------------------------------------------------------------
# mg.curvature
# ---------------------------------------------------------------------------


def known_matrix(eigenvalues: list[float], seed: int = 0) -> np.ndarray:
    """Q·diag(λ)·Qᵀ for a random orthogonal Q: a symmetric matrix with exactly these eigenvalues."""
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigenvalues),) * 2))
    return Q @ np.diag(eigenvalues) @ Q.T


def quadratic_loss(A: np.ndarray) -> tuple[mg.Tensor, list[mg.Tensor]]:
    """L = ½ wᵀAw + 3·Σw, with w split over two parameters (so the flattening is exercised); H = A."""
    w = rng.standard_normal(len(A))
    a = mg.Tensor(w[:2].reshape(1, 2), requires_grad=True)
    b = mg.Tensor(w[2:], requires_grad=True)
    flat = mg.concatenate([a.reshape(2), b])
    return 0.5 * (flat * (mg.Tensor(A) @ flat)).sum() + 3 * flat.sum(), [a, b]


def test_hessian_operator_multiplies_by_the_hessian() -> None:
    A = known_matrix([0.5, 1, 2, 3, 5, 10])
    loss, params = quadratic_loss(A)
    matvec, n = mg.curvature.hessian_operator(loss, params)
    assert n == 6
    v = arr(6)
    np.testing.assert_allclose(matvec(v), A @ v, rtol=1e-12)
    np.testing.assert_allclose(matvec(v), A @ v, rtol=1e-12)  # the graph is kept for the next product
    loss.backward()  # and the loss's own graph too
    with pytest.raises(ValueError, match=r"v has shape \(5,\).*\(6,\)"):
        matvec(np.ones(5))


@pytest.mark.parametrize("method", ["power", "lanczos"])
def test_the_top_and_bottom_eigenvalues_of_a_known_quadratic_form(method: str) -> None:
    eigenvalues = [0.5, 1, 2, 3, 5, 10]
    loss, params = quadratic_loss(known_matrix(eigenvalues))
    spectrum = mg.curvature.extreme_eigenvalues(loss, params, method=method, tol=1e-8)
    assert spectrum.converged
    assert spectrum.top == pytest.approx(10, rel=1e-7)
    assert spectrum.bottom == pytest.approx(0.5, rel=1e-6)
    assert spectrum.condition_number == pytest.approx(20, rel=1e-6)
    assert mg.curvature.top_eigenvalue(loss, params, method=method, tol=1e-8) == pytest.approx(10, rel=1e-7)


@pytest.mark.parametrize("method", ["power", "lanczos"])
def test_an_indefinite_hessian_has_both_ends_found_and_no_finite_condition_number(method: str) -> None:
    loss, params = quadratic_loss(known_matrix([-7, -1, 0.5, 2, 3, 4], seed=3))
    spectrum = mg.curvature.extreme_eigenvalues(loss, params, method=method, tol=1e-8, max_iter=5000)
    assert spectrum.top == pytest.approx(4, rel=1e-6)
    assert spectrum.bottom == pytest.approx(-7, rel=1e-6)
    assert spectrum.condition_number == math.inf


def test_power_iteration_on_a_matrix_and_its_residual_criterion() -> None:
    A = known_matrix([1, 2, 4, 8, 9])
    top = mg.curvature.power_iteration(lambda v: A @ v, 5, tol=1e-9, max_iter=10_000)
    assert top.converged and top.value == pytest.approx(9, rel=1e-9)
    np.testing.assert_allclose(np.linalg.norm(A @ top.vector - top.value * top.vector), top.residual, rtol=1e-6)
    bottom = mg.curvature.power_iteration(lambda v: A @ v, 5, shift=top.value, tol=1e-9)  # on A - 9·I
    assert bottom.value == pytest.approx(1, rel=1e-8)
    stuck = mg.curvature.power_iteration(lambda v: A @ v, 5, tol=1e-9, max_iter=3)
    assert not stuck.converged and stuck.products == 3


def _rotated(eigenvalues, seed=0):
    """A symmetric matrix with these eigenvalues, in a random orthonormal basis."""
    rng = np.random.default_rng(seed)
    n = len(eigenvalues)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * np.asarray(eigenvalues, dtype=float)) @ Q.T
    return (A + A.T) / 2


def test_power_iteration_converges_to_an_eigenvalue_of_zero():
    """Guards the convergence test's floor ε^(2/3)·scale (dropped, or scale = |θ| instead of max(|θ|, |shift|)):
    the shifted power iteration that finds the 0 of a singular matrix never converged (θ ~ 1e-17)."""
    A = _rotated([0.0, 1.0, 2.0, 3.0, 4.0, 8.0])
    bottom = C.power_iteration(lambda v: A @ v, 6, shift=8.0, tol=1e-6, max_iter=5000)
    assert bottom.converged and bottom.products < 5000
    assert abs(bottom.value) < 1e-12
    assert np.linalg.norm(A @ bottom.vector) < 1e-6


def test_the_products_reported_are_the_products_made():
    """Guards power_iteration's count when it converges (made k - 1: one product fewer than it made)."""
    A = _rotated([1.0, 2.0, 4.0, 8.0, 9.0])
    made = []

    def matvec(v):
        made.append(1)
        return A @ v

    top = C.power_iteration(matvec, 5, tol=1e-6, max_iter=10_000)
    assert top.converged and top.value == pytest.approx(9.0, rel=1e-6) and top.products == len(made) > 1
    made.clear()
    bottom, top = C.lanczos(matvec, 5, max_iter=3)
    assert bottom.products == top.products == len(made) == 3


def test_lanczos_reports_the_true_residuals_of_its_ritz_pairs():
    """Guards `residuals = beta * np.abs(S[-1])` (made S[0]: the residuals reported were not ‖H·y - θ·y‖)."""
    A = _rotated(np.linspace(1.0, 10.0, 60))
    for pair in C.lanczos(lambda v: A @ v, 60, max_iter=8):
        assert not pair.converged and pair.products == 8
        true = np.linalg.norm(A @ pair.vector - pair.value * pair.vector)
        assert pair.residual == pytest.approx(true, rel=1e-6)


def test_lanczos_for_the_top_waits_for_the_top_to_converge():
    """Guards `wanted` of which="top" (swapped with "bottom": it stopped once the isolated bottom converged, the
    clustered top still 5% off and unconverged)."""
    A = _rotated(np.concatenate([[-10.0], np.linspace(0.0, 1.0, 59)]))
    bottom, top = C.lanczos(lambda v: A @ v, 60, which="top", tol=1e-8, max_iter=60)
    assert top.converged and top.value == pytest.approx(1.0, rel=1e-8)
    bottom, top = C.lanczos(lambda v: A @ v, 60, which="bottom", tol=1e-8, max_iter=60)
    assert bottom.converged and bottom.value == pytest.approx(-10.0, rel=1e-8) and bottom.products < 20


def test_an_unconverged_estimate_warns() -> None:
    loss, params = quadratic_loss(known_matrix([1, 1.1, 1.2, 1.3, 1.4, 1.5]))
    with pytest.warns(RuntimeWarning, match="did not converge in 2 Hessian-vector products"):
        spectrum = mg.curvature.extreme_eigenvalues(loss, params, max_iter=2)
    assert not spectrum.converged


def test_the_ravine_has_condition_number_100() -> None:
    H = F.hessian(lambda w: 0.5 * (w * w * np.array([1.0, 100.0])).sum())(np.array([-10.0, 1.0])).numpy()
    np.testing.assert_array_equal(H, np.diag([1.0, 100.0]))
    for method in ("power", "lanczos"):
        w = mg.Tensor(np.array([-10.0, 1.0]), requires_grad=True)
        kappa = mg.curvature.condition_number(0.5 * (w * w * np.array([1.0, 100.0])).sum(), [w], method=method)
        assert kappa == pytest.approx(100, rel=1e-9)


def test_hessian_operator_of_an_mlp_matches_differences_of_its_gradient() -> None:
    mg.manual_seed(0)
    model = mg.nn.MLP([2, 5, 3], activation="tanh", dtype=np.float64)
    X, y = rng.standard_normal((20, 2)), rng.integers(0, 3, 20)
    params = model.parameters()

    def flat_grad() -> np.ndarray:
        for p in params:
            p.zero_grad()
        mg.nn.cross_entropy(model(mg.Tensor(X)), y).backward()
        return np.concatenate([p.grad.ravel() for p in params])

    loss = mg.nn.cross_entropy(model(mg.Tensor(X)), y)
    matvec, n = mg.curvature.hessian_operator(loss, params)
    v = rng.standard_normal(n)
    hv = matvec(v)  # before the parameters move (the graph holds their arrays)
    eps, pieces = 1e-5, np.split(v, np.cumsum([p.size for p in params])[:-1])
    for p, piece in zip(params, pieces):
        p.data += eps * piece.reshape(p.shape)
    plus = flat_grad()
    for p, piece in zip(params, pieces):
        p.data -= 2 * eps * piece.reshape(p.shape)
    minus = flat_grad()
    np.testing.assert_allclose(hv, (plus - minus) / (2 * eps), rtol=1e-6, atol=1e-9)


def test_curvature_refuses_bad_arguments() -> None:
    w = mg.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match=r"one-element Tensor, got \(2,\)"):
        mg.curvature.hessian_operator(w * 2, [w])
    with pytest.raises(TypeError, match=r"params\[0\] is not a Tensor that requires grad"):
        mg.curvature.hessian_operator((w * w).sum(), [mg.Tensor(np.ones(2))])
    with pytest.raises(ValueError, match="method must be 'lanczos' or 'power'"):
        mg.curvature.extreme_eigenvalues((w * w).sum(), [w], method="qr")


def test_a_constant_over_the_inputs_memory_stays_a_constant_in_second_derivatives():
    """x.detach() and a constant made in f from the point's own array are constants: d²/dx² of x·sg(x) is 0."""
    x = mg.Tensor(np.array([3.0]), requires_grad=True)
    (g,) = mg.autograd.grad((x * x.detach()).sum(), x, create_graph=True)
    assert g.data.tolist() == [3.0] and not g.requires_grad  # sg(x), a constant (it used to be x itself)
    assert mg.func.hessian(lambda t: (t * t.detach()).sum())(np.array([3.0])).data.tolist() == [[0.0]]
    x0 = np.array([3.0])
    f = lambda w: (w * mg.Tensor(x0) * w).sum()  # noqa: E731  (x0·w², Hessian 2·x0 = 6)
    assert mg.func.hessian(f)(x0).data.tolist() == [[6.0]]  # it gave 9: the constant was taken for w
    assert mg.func.hessian(f)(mg.Tensor(x0)).data.tolist() == [[6.0]]


def test_two_tensors_over_one_array_refuse_a_second_derivative_instead_of_guessing():
    x = mg.Tensor(np.array([3.0]), requires_grad=True)
    c = mg.Tensor(x.data)  # the same array object, not a view: which is saved cannot be told
    with pytest.raises(RuntimeError, match=r"backward of mul: inputs 0 and 1 are different tensors over one array"
                                           r".*x.detach\(\)"):
        mg.autograd.grad((x * c * x).sum(), x, create_graph=True)
    (g,) = mg.autograd.grad((x * c * x).sum(), x)  # first order: right, as before
    assert g.data.tolist() == [18.0]


def test_autograd_grad_of_an_intermediate_walks_only_above_it():
    """As PyTorch: below h no hook runs, no retained grad is set and the graph is not released."""
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    m = x * 3
    m.retain_grad()
    calls = []
    m.register_hook(lambda g: calls.append(g))
    h = m.exp()
    out = (h * h).sum()
    (dh,) = mg.autograd.grad(out, h)
    np.testing.assert_allclose(dh.data, 2 * np.exp([3.0, 6.0]))
    assert m.grad is None and calls == []
    h.sum().backward()  # the graph below h is still there
    np.testing.assert_allclose(x.grad, 3 * np.exp([3.0, 6.0]))
    assert len(calls) == 1
    y = x * 2
    z = y.exp()
    z.sum().backward()  # releases the graph below z
    (dz,) = mg.autograd.grad((z * z).sum(), z)  # needs nothing below z: fine (it raised "released")
    np.testing.assert_allclose(dz.data, 2 * np.exp([2.0, 4.0]))


def test_inner_capture_on_the_chain():
    x = mg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 2
    y = (h.exp()).sum()
    gh, gx = mg.autograd.grad([y], [h, x])
    gh = np.asarray(getattr(gh, "data", gh))
    gx = np.asarray(getattr(gx, "data", gx))
    assert np.allclose(gh, np.exp(h.data)) and np.allclose(gx, 2 * np.exp(h.data))
    assert x.grad is None


def test_autograd_grad_of_an_intermediate_returns_its_gradient_after_its_hooks():
    """Guards the order in run_backward: capture after the node's hooks (moved before them, grad() returned
    the gradient the hook replaced, while the gradient below used the hook's)."""
    x = mg.Tensor(np.array([1.0, -2.0]), requires_grad=True)
    h = x * 2.0
    h.register_hook(lambda g: g * 3.0)
    gh, gx = mg.autograd.grad((h * h).sum(), [h, x])
    np.testing.assert_array_equal(gh.data, 3.0 * 2.0 * h.data)  # 3 · d(h²)/dh
    np.testing.assert_array_equal(gx.data, 2.0 * 3.0 * 2.0 * h.data)


def test_autograd_grad_walks_only_above_its_inputs_no_hook_runs_and_no_graph_is_released_elsewhere():
    """Guards the skip of nodes with no input below them (dropped: the hook on c ran and c's graph was
    released, so a later backward through c raised) and of leaves not asked about (dropped: their hooks ran)."""
    x1 = mg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x2 = mg.Tensor(np.array([3.0, 5.0]), requires_grad=True)
    x3 = mg.Tensor(np.array([-1.0, 4.0]), requires_grad=True)
    calls = []
    c = x3 * 3.0
    c.register_hook(lambda g: calls.append("c"))
    x2.register_hook(lambda g: calls.append("x2"))
    (g1,) = mg.autograd.grad((x1 * x2 + c).sum(), x1)
    np.testing.assert_array_equal(g1.data, [3.0, 5.0])
    assert calls == []
    c.sum().backward()  # c's own graph is intact
    np.testing.assert_array_equal(x3.grad, [3.0, 3.0])
    assert x1.grad is None and x2.grad is None


def test_multiple_roots_autograd_grad_and_create_graph():
    x = mg.Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    y1 = (x * x).sum()
    y2 = (x * 3).sum()
    (gx,) = mg.autograd.grad([y1, y2], [x])
    assert np.array_equal(np.asarray(gx.data if isinstance(gx, mg.Tensor) else gx), 2 * x.data + 3)
    (g,) = mg.autograd.grad([(x**3).sum()], [x], create_graph=True)
    (gg,) = mg.autograd.grad([g.sum()], [x])
    assert np.allclose(np.asarray(gg.data if isinstance(gg, mg.Tensor) else gg), 6 * x.data)


def test_an_identity_forward_and_a_tensor_of_a_tensor_differentiate_twice():
    """A forward that returns its input (gradient scaling) and mg.Tensor(x) inside f: PyTorch's values."""

    class ScaleGrad(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 0.5

    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    (g,) = mg.autograd.grad((x * ScaleGrad.apply(x)).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.data, [1.5, 3.0])
    (h,) = mg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.data, [1.0, 1.0])  # torch: [1, 1] (it raised, and before that gave [1.5, 1.5])
    f = lambda w: (w * mg.Tensor(w) * w).sum()  # noqa: E731  (a constant c = w's values: c·w², Hessian 2c)
    np.testing.assert_allclose(mg.func.hessian(f)(np.array([3.0])).data, [[6.0]])


def test_the_refusal_names_two_different_tensors_however_many_share_the_array():
    class Three(mg.Function):
        @staticmethod
        def forward(ctx, a, b, c):
            ctx.save_for_backward(a, b, c)
            return a * b * c

        @staticmethod
        def backward(ctx, g):
            a, b, c = ctx.saved_tensors
            return g * b * c, g * a * c, g * a * b

    x = mg.Tensor([2.0], requires_grad=True)
    c = mg.Tensor(np.zeros(1))
    c.data = x.data  # the very same array object
    for args, named in [((x, c, x), "inputs 0 and 1"), ((x, x, c), "inputs 0 and 2")]:
        with pytest.raises(RuntimeError, match=named + " are different tensors over one array"):
            mg.autograd.grad(Three.apply(*args).sum(), x, create_graph=True)


def test_grad_of_one_output_takes_its_gradient_in_a_list_too() -> None:
    """grad(y, [x], grad_outputs=[g]) read the list as an array of shape (1,) and refused it (PyTorch takes it)."""
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    g = np.array([1.0, 10.0])
    (a,) = mg.autograd.grad(y, [x], grad_outputs=[g], retain_graph=True)
    (b,) = mg.autograd.grad(y, [x], grad_outputs=g)
    np.testing.assert_array_equal(a.data, [2.0, 40.0])
    np.testing.assert_array_equal(a.data, b.data)



def test_grad_of_one_output_reads_a_one_item_list_as_its_gradients() -> None:
    """[None] and [3.0] for one scalar output were read as arrays of shape (1,) and refused; PyTorch takes both."""
    x = mg.Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    y = (x * x).sum()
    (a,) = mg.autograd.grad(y, x, grad_outputs=[None], retain_graph=True)
    np.testing.assert_array_equal(a.data, [2.0, 4.0])
    (b,) = mg.autograd.grad(y, x, grad_outputs=[3.0], retain_graph=True)
    np.testing.assert_array_equal(b.data, [6.0, 12.0])
    (c,) = mg.autograd.grad(y, x, grad_outputs=(mg.Tensor(0.5, dtype=np.float64),), retain_graph=True)
    np.testing.assert_array_equal(c.data, [1.0, 2.0])
    z = x * 1.0
    (d,) = mg.autograd.grad(z, x, grad_outputs=[3.0, 4.0], retain_graph=True)  # longer: the gradient as an array
    np.testing.assert_array_equal(d.data, [3.0, 4.0])


def test_grad_says_how_a_one_item_list_is_read_when_its_shape_is_refused() -> None:
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    z = x[:1] * 1.0
    with pytest.raises(ValueError, match=r"grad_outputs\[0\] has shape \(\), output 0 has shape \(1,\).*"
                       r"one-item list is read as the list of the outputs' gradients.*np.array"):
        mg.autograd.grad(z, x, grad_outputs=[3.0], retain_graph=True)
    (ok,) = mg.autograd.grad(z, x, grad_outputs=np.array([3.0]))
    np.testing.assert_array_equal(ok.data, [3.0, 0.0])
    w = x * 1.0
    with pytest.raises(ValueError, match=r"has shape \(3,\), output 0 has shape \(2,\); give each output a "
                       r"gradient of its own shape$"):
        mg.autograd.grad(w, x, grad_outputs=[[3.0, 4.0, 5.0]])


def test_curvature_refuses_a_single_tensor_and_parameters_the_loss_never_used() -> None:
    """top_eigenvalue(loss, w) gave 0.0 (and condition_number inf): w iterated into row views the loss never used."""
    from minigrad import curvature

    w = mg.Tensor(np.array([1.0, 1.0]), requires_grad=True, dtype=np.float64)
    loss = 0.5 * (10 * w[0] * w[0] + w[1] * w[1])
    with pytest.raises(TypeError, match=r"params is a single Tensor; pass a list of them, \[w\]"):
        curvature.top_eigenvalue(loss, w)
    assert curvature.top_eigenvalue(loss, [w]) == pytest.approx(10.0, rel=1e-9)
    other = mg.Tensor(np.zeros(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="the loss does not depend on any of params"):
        curvature.hessian_operator(loss, [other])
    matvec, n = curvature.hessian_operator((w * 3.0).sum(), [w])  # linear: a true Hessian of 0
    np.testing.assert_array_equal(matvec(np.ones(n)), np.zeros(2))


@pytest.mark.parametrize("name", ["top_eigenvalue", "extreme_eigenvalues", "condition_number", "hessian_operator"])
def test_curvature_errors_name_the_function_called(name: str) -> None:
    """Every refusal said 'hessian_operator:', a function the user of top_eigenvalue never called."""
    w = mg.Tensor(np.ones(3), requires_grad=True)
    function = getattr(mg.curvature, name)
    with pytest.raises(TypeError, match=rf"^{name}: params is a single Tensor"):
        function((w * w).sum(), w)
    with pytest.raises(RuntimeError, match=rf"^{name}: the loss does not depend on any of params"):
        function((w * w).sum(), [mg.Tensor(np.ones(2), requires_grad=True)])


RELEASED = r"^grad: the graph below a tensor the outputs depend on was released by an earlier backward"


def test_a_gradient_through_a_released_graph_raises_instead_of_leaving_that_branch_out() -> None:
    """The released node's inputs are gone: it was skipped as if no input lay below it (helper 41's R1)."""
    x = mg.Tensor(np.array([0.5, -1.2, 2.0]), requires_grad=True)
    p = x.exp()
    y = (p + x.sin()).sum()
    mg.autograd.grad((p * 2).sum(), x)  # releases p's node
    with pytest.raises(RuntimeError, match=RELEASED):
        mg.autograd.grad(y, x)  # gave cos(x) alone, for exp(x) + cos(x)
    with pytest.raises(RuntimeError, match=RELEASED):
        mg.autograd.grad(y, [x], allow_unused=True)
    p = x.exp()
    y = (p + x.sin()).sum()
    mg.autograd.grad((p * 2).sum(), x, retain_graph=True)
    (g,) = mg.autograd.grad(y, x)
    np.testing.assert_allclose(g.data, np.exp(x.data) + np.cos(x.data))


def test_a_second_derivative_through_a_released_first_graph_raises() -> None:
    """create_graph=True, retain_graph=False: the second pass skipped the released first-order nodes (R2, R4)."""
    x0 = np.array([0.5, -1.2, 2.0])
    x = mg.Tensor(x0, requires_grad=True)
    (g,) = mg.autograd.grad((x.exp() * x.sin()).sum(), x, create_graph=True, retain_graph=False)
    with pytest.raises(RuntimeError, match=RELEASED):
        mg.autograd.grad(g.sum(), x)  # gave [-0.79, 0.28, -6.72] for 2·e^x·cos x
    x = mg.Tensor(x0, requires_grad=True)
    y = x.exp().sum()
    mg.autograd.grad(y, x)
    with pytest.raises(RuntimeError, match=RELEASED):  # said "input 0 was not used to compute the outputs"
        mg.autograd.grad(y, x)
    x = mg.Tensor(x0, requires_grad=True)
    (g,) = mg.autograd.grad((x.exp() * x.sin()).sum(), x, create_graph=True)
    (h,) = mg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.data, 2 * np.exp(x0) * np.cos(x0))


def test_curvature_after_a_backward_that_released_part_of_the_loss_raises() -> None:
    """top_eigenvalue gave 0.02, the regulariser's alone, for 9.44 (R3)."""
    X = np.random.default_rng(0).standard_normal((8, 3))
    w = mg.Tensor(np.ones(3), requires_grad=True)
    out = mg.Tensor(X) @ w
    (out * out).mean().backward()
    with pytest.raises(RuntimeError, match=r"^top_eigenvalue: the graph below a tensor the outputs depend on was "
                                           r"released"):
        mg.curvature.top_eigenvalue((out * out).mean() * 3 + (w * w).sum() * 0.01, [w])


def test_a_released_node_below_every_input_asked_about_is_not_needed() -> None:
    """As PyTorch: a walk that stops above the released part of the graph still runs."""
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    m = x * 3
    h = m.exp()
    h.sum().backward()  # releases h's node and m's
    k = h * 1.0  # a live node over the released ones
    (dk,) = mg.autograd.grad((k * k).sum(), k)
    np.testing.assert_allclose(dk.data, 2 * np.exp([3.0, 6.0]))
    (dh,) = mg.autograd.grad((k * k).sum(), h)  # h is released itself, and nothing is asked below it
    np.testing.assert_allclose(dh.data, 2 * np.exp([3.0, 6.0]))
    with pytest.raises(RuntimeError, match=RELEASED):
        mg.autograd.grad((k * k).sum(), [h, x])  # x may lie below h: not guessed


@pytest.mark.parametrize("order", ["x w x", "x x w"])
def test_an_input_given_twice_to_autograd_grad_gets_its_gradient_twice(order: str) -> None:
    """It was refused; PyTorch gives each occurrence the (whole) gradient. In the order x, x, w it guards
    `distinct = list(dict.fromkeys(ins))` (dropped: the inputs were zipped with the two gradients found, so x got
    w's and w none, a KeyError)."""
    x = mg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w = mg.Tensor(np.array([3.0, -1.0]), requires_grad=True)
    tensors = {"x": x, "w": w}
    grads = mg.autograd.grad((x * x * w).sum(), [tensors[name] for name in order.split()])
    expected = {"x": [6.0, -4.0], "w": [1.0, 4.0]}
    for name, g in zip(order.split(), grads):
        np.testing.assert_array_equal(g.data, expected[name])


def test_an_input_that_does_not_require_grad_is_refused_even_with_allow_unused():
    """Guards autograd.grad's refusal of an input that does not require grad (dropped: with allow_unused=True
    it came back None, as if the outputs did not depend on it)."""
    x = mg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = mg.Tensor(np.array([3.0, 4.0]))
    with pytest.raises(RuntimeError, match=r"input 1 \(shape \(2,\)\) does not require grad"):
        mg.autograd.grad((x * c).sum(), [x, c], allow_unused=True)


def test_the_gradient_autograd_grad_returns_is_not_the_callers_grad_outputs_array():
    """Guards the copy in `Tensor(np.array(g, dtype=t.dtype))` (dropped: through an add, the gradient returned
    was the caller's grad_outputs array itself, so changing that array later changed the gradient)."""
    x = mg.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    seed = np.array([1.0, 2.0, 3.0])
    (gx,) = mg.autograd.grad(x + 1.0, x, grad_outputs=seed)
    seed[:] = 0.0
    np.testing.assert_array_equal(gx.data, [1.0, 2.0, 3.0])


def test_a_tensor_a_backward_returns_comes_back_from_grad_as_a_constant():
    """Guards `g if create_graph else Tensor(g.data)` (made `g`): without create_graph the Tensor a user's
    backward returned came back itself, requiring grad, instead of a constant."""
    made = []

    class Twice(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, g):
            made.append(mg.Tensor(2 * np.asarray(g), requires_grad=True))
            return made[-1]

    x = mg.Tensor(np.array([1.0, 4.0]), requires_grad=True)
    (gx,) = mg.autograd.grad(Twice.apply(x).sum(), x)
    np.testing.assert_array_equal(gx.data, [2.0, 2.0])
    assert gx is not made[0] and not gx.requires_grad and gx.is_leaf


def test_one_tensor_as_two_arguments_of_a_transform_gives_each_its_partial_derivative() -> None:
    """JAX: grad(f, argnums=(0, 1))(x, x) is (∂f/∂a, ∂f/∂b) at a = b = x, with x requiring grad too."""
    f = lambda a, b: (a * a * b).sum()  # noqa: E731
    x0 = np.array([1.0, 2.0])
    x = mg.Tensor(x0, requires_grad=True)
    da, db = F.grad(f, argnums=(0, 1))(x, x)
    np.testing.assert_array_equal(da.data, 2 * x0 * x0)
    np.testing.assert_array_equal(db.data, x0 * x0)
    plain = F.grad(f, argnums=(0, 1))(x0, x0)
    np.testing.assert_array_equal(plain[0].data, da.data)
    (d2,) = mg.autograd.grad(da.sum(), x)  # the graph runs through to x: d/dx Σ 2x² = 4x
    np.testing.assert_array_equal(d2.data, 4 * x0)


def test_curvature_refuses_a_parameter_given_twice() -> None:
    w = mg.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match=r"^top_eigenvalue: params\[0\] and params\[1\] are the same tensor"):
        mg.curvature.top_eigenvalue((w * w).sum(), [w, w])


def _quadratic(eigenvalues: np.ndarray, seed: int = 0) -> tuple[mg.Tensor, mg.Tensor]:
    """0.5·wᵀAw for a random symmetric A with the given spectrum, and w."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
    A = (Q * eigenvalues) @ Q.T
    w = mg.Tensor(rng.standard_normal(len(eigenvalues)), requires_grad=True)
    return 0.5 * (w @ (mg.Tensor((A + A.T) / 2) @ w)), w


def test_the_condition_number_of_an_ill_conditioned_hessian_is_accurate_to_tol() -> None:
    """The bottom estimate was accurate to tol·λmax only: κ = 1e6 read as 8.5e5, 'converged', no warning (h41)."""
    loss, w = _quadratic(np.logspace(-3, 3, 120))
    spectrum = mg.curvature.extreme_eigenvalues(loss, [w], tol=1e-6)
    assert spectrum.converged
    assert spectrum.bottom == pytest.approx(1e-3, rel=1e-5)
    assert spectrum.condition_number == pytest.approx(1e6, rel=1e-5)


@pytest.mark.parametrize("top, low, width", [(1e6, 1e-3, 5e-7), (100.0, 1e-9, 2e-10)])
def test_a_narrow_cluster_at_the_bottom_is_resolved_before_lanczos_stops(top: float, low: float, width: float) -> None:
    """A β below 1e-12·λmax was taken for an invariant subspace: bottom 1.0001e-3 for 1e-3, 'converged' (h70)."""
    loss, w = _quadratic(np.r_[top, low + width * np.linspace(0, 1, 49)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no warning either: it converges, to tol)
        spectrum = mg.curvature.extreme_eigenvalues(loss, [w], tol=1e-6)
    assert spectrum.converged
    assert spectrum.bottom == pytest.approx(low, rel=1e-5)
    assert spectrum.condition_number == pytest.approx(top / low, rel=1e-5)


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_a_singular_hessian_has_an_infinite_condition_number_not_one_of_rounding_noise(method: str) -> None:
    """The bottom estimate, 4e-15 of rounding noise around 0, gave κ = 2.5e16 (h41)."""
    loss, w = _quadratic(np.concatenate([np.zeros(5), np.logspace(0, 2, 25)]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (power iteration may not reach a relative tol near 0)
        spectrum = mg.curvature.extreme_eigenvalues(loss, [w], method=method, max_iter=3000)
    assert spectrum.top == pytest.approx(100.0, rel=1e-6) and abs(spectrum.bottom) < 1e-9
    assert spectrum.condition_number == math.inf


def test_one_tensor_as_two_arguments_gives_partials_inside_no_grad_and_when_only_one_is_differentiated() -> None:
    """Inside no_grad the copies were constants (zeros); with argnums=0 the total derivative came back (h44)."""
    f = lambda a, b: (a**2 * b**3).sum()  # noqa: E731
    x0 = np.array([1.0, 2.0])
    x = mg.Tensor(x0, requires_grad=True)
    with mg.no_grad():
        da, db = F.grad(f, argnums=(0, 1))(x, x)
    np.testing.assert_array_equal(da.data, 2 * x0**4)
    np.testing.assert_array_equal(db.data, 3 * x0**4)
    np.testing.assert_array_equal(F.grad(f, 0)(x, x).data, 2 * x0**4)  # ∂f/∂a, not d f(x, x)/dx = 5x⁴
    nested = F.grad(lambda y: F.grad(f, 0)(y, y).sum())(x0)  # d/dy Σ 2y⁴ = 8y³ (torch.func's too)
    np.testing.assert_array_equal(nested.data, 8 * x0**3)


def test_two_heads_on_one_trunk_need_retain_graph_and_then_give_pytorchs_gradients() -> None:
    """A released trunk hides whether the second head's parameters lie below it: refused, and with
    retain_graph=True on the first backward the gradients are those of a fresh graph (the limit h44 found)."""
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal((4, 3)), dtype=np.float32)
    trunk, h1, h2 = mg.nn.Linear(3, 5), mg.nn.Linear(5, 1), mg.nn.Linear(5, 2)

    def losses() -> tuple[mg.Tensor, mg.Tensor]:
        feat = trunk(x).tanh()
        return h1(feat).sum(), (h2(feat) ** 2).sum()

    l1, l2 = losses()
    l1.backward()
    with pytest.raises(RuntimeError, match=r"pass retain_graph=True to the earlier call"):
        mg.autograd.grad(l2, h2.parameters())
    l1, l2 = losses()
    l1.backward(retain_graph=True)
    got = mg.autograd.grad(l2, h2.parameters())
    want = mg.autograd.grad(losses()[1], h2.parameters())
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.data, w.data)


def test_a_well_resolved_condition_number_in_float32_is_finite() -> None:
    """κ = 1e6 in float32 was inf: a rounding floor of 10·ε·λmax, then √n·ε·λmax, was above an accurate bottom."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    A = (Q * np.logspace(-6, 0, 20)) @ Q.T
    w = mg.Tensor(rng.standard_normal(20), requires_grad=True, dtype=np.float32)
    loss = 0.5 * (w @ (mg.Tensor((A + A.T) / 2, dtype=np.float32) @ w))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        spectrum = mg.curvature.extreme_eigenvalues(loss, [w])
    assert spectrum.condition_number == pytest.approx(1e6, rel=0.02)


def test_the_rounding_floor_of_mixed_precision_parameters_is_the_float32_one():
    """Guards κ's floor: `max(eps)` over the parameters' dtypes (made min: float64's ε), the floor itself
    (dropped: κ finite whenever bottom > residual) and the warning: a bottom estimate of 4e-7, below
    2·ε32·λmax = 9.5e-7, of a loss of float32 and float64 parameters, gave a finite κ of 1e7 and no warning."""
    rng = np.random.default_rng(0)
    A = _rotated(np.concatenate([[4e-7], np.linspace(1.0, 4.0, 7)]), seed=0)
    w32 = mg.Tensor(rng.standard_normal(4), requires_grad=True, dtype=np.float32)
    w64 = mg.Tensor(rng.standard_normal(4), requires_grad=True, dtype=np.float64)
    w = mg.concatenate([w32, w64])
    loss = 0.5 * (w @ (mg.Tensor(A) @ w))
    with pytest.warns(RuntimeWarning, match="cannot be told from 0"):
        spectrum = C.extreme_eigenvalues(loss, [w32, w64])
    assert spectrum.top == pytest.approx(4.0, rel=1e-6)
    assert 0 < spectrum.bottom < 2 * float(np.finfo(np.float32).eps) * 4.0
    assert spectrum.condition_number == math.inf


def test_a_mixed_partial_of_one_tensor_given_twice_is_the_mixed_partial() -> None:
    """∂/∂b Σ ∂f/∂a with f = Σ a·b² at a = b = x is 2x; the outer copy made the inner grad flow into it (h47)."""
    f = lambda a, b: (a * b * b).sum()  # noqa: E731
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    mixed = F.grad(lambda a, b: F.grad(f, 0)(a, b).sum(), 1)(x, x)  # torch.func: [2, 4]
    np.testing.assert_array_equal(mixed.data, [2.0, 4.0])
    np.testing.assert_array_equal(F.jacobian(F.grad(f, 0), 1)(x, x).data, np.diag([2.0, 4.0]))
