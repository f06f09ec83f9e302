"""
Derivatives of the JAX non-negative solve (`reconstruction_positive_only_from` with `xp=jnp`), the PyAutoArray
series' active-set rule, checked against central finite differences of the eager (NumPy, fnnls) solve.

Each problem is a least-squares fit of a design matrix B(theta) to data y(theta): Q = B^T B and q = B^T y, as
the curvature matrix and data vector of an inversion are built. The scalar differentiated is a fixed smooth
function of the solution, so its gradient with respect to theta goes through dx/dQ and dx/dq.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autoarray.inversion.inversion import inversion_util
from autoarray.inversion.inversion.nnls_active_set import _free_set, solve_nnls_active_set


def problem(kind, seed=0, m=30, n=6):
    """
    (B0, B1, y0, y1, u0, u1): the design matrix B(theta) = B0 + theta_0 B1 with its third column scaled by
    (1 + theta_2), and the data y(theta) = y0 + theta_1 y1 + B(theta) (u0 + theta_1 u1).
    """
    rng = np.random.default_rng(seed)
    B0 = rng.standard_normal((m, n))
    B1 = 0.3 * rng.standard_normal((m, n))
    y1 = rng.standard_normal(m)
    u0 = u1 = np.zeros(n)
    if kind == "well_conditioned":
        x_true = np.linspace(1.0, 2.0, n)  # every entry well inside x > 0
    elif kind == "constrained":
        x_true = np.array([1.0, -1.0, 2.0, -0.5, 1.5, 1.0])  # the negative ones clamp at zero
    elif kind == "degenerate":
        # Two nearly collinear columns (cond(Q) ~ 1e10), as strongly overlapping Gaussians of an MGE give.
        # Data off the span of B would be amplified ~1e5 times along their difference and clamp one of them,
        # so the data stay (to 1e-9) in the span and both columns stay free: cond(Q_FF) ~ 1e10 too. Then
        # x(theta) = u0 + theta_1 u1 exactly, so the gradient is known: (0, (w + x) . u1, 0).
        B0[:, 1] = B0[:, 0] + 1e-5 * rng.standard_normal(m)
        B1[:, 1] = B1[:, 0]
        u0 = np.linspace(1.0, 2.0, n)
        u1 = rng.uniform(0.5, 1.0, n)
        return B0, B1, 1e-9 * rng.standard_normal(m), np.zeros(m), u0, u1
    y0 = B0 @ x_true + 0.05 * rng.standard_normal(m)
    return B0, B1, y0, y1, u0, u1


THETA = np.array([0.1, 0.2, 0.3])


def normal_equations(theta, B0, B1, y0, y1, u0, u1, xp):
    B = B0 + theta[0] * B1
    B = B.at[:, 2].multiply(1.0 + theta[2]) if xp is jnp else _scale_column(B, theta[2])
    y = y0 + theta[1] * y1 + B @ (u0 + theta[1] * u1)
    return B.T @ B, B.T @ y


def _scale_column(B, t):
    B = B.copy()
    B[:, 2] *= 1.0 + t
    return B


WEIGHTS = np.array([1.0, -2.0, 0.5, 3.0, -1.0, 0.7])


def scalar_of_solution(x, xp):
    return xp.sum(WEIGHTS * x) + 0.5 * xp.sum(x**2)


def scalar_jax(theta, data):
    Q, q = normal_equations(theta, *data, xp=jnp)
    x = inversion_util.reconstruction_positive_only_from(
        data_vector=q, curvature_reg_matrix=Q, xp=jnp
    )
    return scalar_of_solution(x, jnp)


def scalar_eager(theta, data):
    Q, q = normal_equations(theta, *data, xp=np)
    x = inversion_util.reconstruction_positive_only_from(
        data_vector=q, curvature_reg_matrix=Q, xp=np
    )
    return scalar_of_solution(x, np)


def central_differences(function, theta, step):
    gradient = np.zeros_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = step
        gradient[i] = (function(theta + e) - function(theta - e)) / (2.0 * step)
    return gradient


def free_set(theta, data):
    Q, q = normal_equations(jnp.asarray(theta), *data, xp=jnp)
    return np.asarray(_free_set(Q, q, solve_nnls_active_set(Q, q)))


def eager_free_set(theta, data):
    Q, q = normal_equations(theta, *data, xp=np)
    return inversion_util.reconstruction_positive_only_from(
        data_vector=q, curvature_reg_matrix=Q, xp=np
    ) > 0


@pytest.mark.parametrize("kind, clamped", [("well_conditioned", 0), ("constrained", 2)])
def test_gradient_equals_central_differences_of_the_eager_solve(kind, clamped):
    data = tuple(jnp.asarray(a) for a in problem(kind))
    eager_data = problem(kind)
    step = 1e-5

    # The free set is the eager solver's, and it does not change within the step.
    free = free_set(THETA, data)
    assert (~free).sum() == clamped
    for i in range(THETA.size):
        for sign in (-1, 1):
            e = np.zeros(3)
            e[i] = sign * step
            np.testing.assert_array_equal(eager_free_set(THETA + e, eager_data), free)

    # The forward solve is jaxnnls's, unchanged: it agrees with the eager solve.
    np.testing.assert_allclose(
        jax.jit(scalar_jax)(jnp.asarray(THETA), data), scalar_eager(THETA, eager_data), rtol=1e-10
    )

    gradient = jax.jit(jax.grad(scalar_jax))(jnp.asarray(THETA), data)
    expected = central_differences(lambda t: scalar_eager(t, eager_data), THETA, step)
    np.testing.assert_allclose(gradient, expected, rtol=1e-4)

    # Forward mode gives the same derivative (the rule is a custom JVP, transposed for reverse mode).
    forward = jax.jacfwd(scalar_jax)(jnp.asarray(THETA), data)
    np.testing.assert_allclose(forward, gradient, rtol=1e-10)


def test_gradient_of_a_degenerate_ill_conditioned_problem_is_finite_and_correct():
    eager_data = problem("degenerate")
    data = tuple(jnp.asarray(a) for a in eager_data)
    Q, q = normal_equations(THETA, *eager_data, xp=np)
    assert np.linalg.cond(Q) > 1e9
    assert np.all(free_set(THETA, data))  # so cond(Q_FF) = cond(Q)

    gradient = np.asarray(jax.jit(jax.grad(scalar_jax))(jnp.asarray(THETA), data))
    assert np.all(np.isfinite(gradient))

    # The exact gradient: x = u0 + theta_1 u1 does not depend on theta_0 or theta_2. The solve of Q_FF
    # (cond ~1e10) loses ~10 of float64's 16 digits, so the zero components come out ~1e-6 |gradient|: an
    # absolute tolerance of 1e-4 |gradient| on them, 1e-4 relative on the non-zero one.
    _, _, _, _, u0, u1 = eager_data
    x = u0 + THETA[1] * u1
    expected = np.array([0.0, (WEIGHTS + x) @ u1, 0.0])
    scale = abs(expected[1])
    np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-4 * scale)

    # Central differences of the eager solve, with the same tolerances. The eager solution itself is only
    # good to ~6e-5 here (eps cond(Q), amplified), so a small step would difference noise: ~1e-5 / h. But the
    # scalar is exactly quadratic in theta (x is affine in it), so central differences have no truncation
    # error and a large step, 0.1 (x stays > 0 within it), is exact up to that ~1e-4 noise.
    differences = central_differences(lambda t: scalar_eager(t, eager_data), THETA, 0.1)
    np.testing.assert_allclose(gradient, differences, rtol=1e-4, atol=1e-4 * scale)


def test_gradient_with_respect_to_the_matrix_and_vector_is_the_implicit_one():
    """dL/dq = v (zero off the free set F) and dL/dQ = -sym(v x^T), with Q_FF v_F = dL/dx_F."""
    Q, q = normal_equations(THETA, *problem("constrained"), xp=np)
    x = inversion_util.reconstruction_positive_only_from(data_vector=q, curvature_reg_matrix=Q, xp=np)
    free = x > 0
    g = WEIGHTS + x

    v = np.zeros_like(x)
    v[free] = np.linalg.solve(Q[np.ix_(free, free)], g[free])
    expected_dQ = -0.5 * (np.outer(v, x) + np.outer(x, v))

    dQ, dq = jax.grad(
        lambda Q, q: scalar_of_solution(solve_nnls_active_set(Q, q), jnp), argnums=(0, 1)
    )(jnp.asarray(Q), jnp.asarray(q))
    np.testing.assert_allclose(dq, v, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(dQ, expected_dQ, rtol=1e-8, atol=1e-12)


def test_hessian_forward_over_reverse_equals_reverse_over_reverse_and_differences():
    eager_data = problem("constrained")
    data = tuple(jnp.asarray(a) for a in eager_data)
    theta = jnp.asarray(THETA)

    hessian = np.asarray(jax.hessian(scalar_jax)(theta, data))  # jacfwd(jacrev)
    reverse = np.asarray(jax.jacrev(jax.grad(scalar_jax))(theta, data))
    np.testing.assert_allclose(hessian, reverse, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(hessian, hessian.T, rtol=1e-8, atol=1e-10)

    gradient = jax.grad(scalar_jax)
    step = 1e-5
    columns = []
    for i in range(3):
        e = np.zeros(3)
        e[i] = step
        columns.append(
            (np.asarray(gradient(theta + e, data)) - np.asarray(gradient(theta - e, data))) / (2 * step)
        )
    np.testing.assert_allclose(hessian, np.array(columns).T, rtol=1e-5, atol=1e-8)


def test_the_forward_solve_is_jaxnnls_unchanged():
    import jaxnnls

    for kind in ("well_conditioned", "constrained", "degenerate"):
        Q, q = normal_equations(THETA, *problem(kind), xp=np)
        np.testing.assert_array_equal(
            jax.jit(solve_nnls_active_set)(Q, q), jax.jit(jaxnnls.solve_nnls_primal)(Q, q)
        )
