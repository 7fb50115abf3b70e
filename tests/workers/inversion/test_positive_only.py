"""The positive-only solve is the exact NNLS solution (scipy's Lawson-Hanson on the same problem, an independent
implementation), certifies it, and falls back to jaxnnls's interior point only where it cannot certify."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jaxnnls
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize

from workers.inversion.positive_only import METHODS, NNLS_TARGET_KAPPA, solve_positive_only


def _mge_like(seed: int, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A dense, ill-conditioned system like an MGE inversion's: overlapping Gaussian columns on a grid,
    A = BᵀB + 1e-3·I, D = Bᵀd for data d with noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(-3, 3, 400)
    sigmas = np.logspace(-2, 0.5, n)
    basis = np.exp(-((t[:, None] - 0.2) ** 2) / (2 * sigmas[None, :] ** 2))
    data = 2.0 * np.exp(-((t - 0.2) ** 2) / 0.3) + 0.05 * rng.standard_normal(t.size)
    return basis.T @ basis + 1e-3 * np.eye(n), basis.T @ data


def _mesh_like(seed: int, side: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A mesh inversion's system: random sparse-ish mapping, A = MᵀM + Laplacian + 1e-8·I, D = Mᵀd."""
    rng = np.random.default_rng(seed)
    n = side * side
    mapping = np.maximum(rng.standard_normal((300, n)), 0.0) * (rng.random((300, n)) < 0.1)
    grid = np.arange(n).reshape(side, side)
    laplacian = np.zeros((n, n))
    for a, b in [(grid[:, :-1], grid[:, 1:]), (grid[:-1, :], grid[1:, :])]:
        for i, j in zip(a.ravel(), b.ravel()):
            laplacian[[i, j], [i, j]] += 1.0
            laplacian[i, j] -= 1.0
            laplacian[j, i] -= 1.0
    data = mapping @ np.maximum(rng.standard_normal(n), 0.0) + 0.3 * rng.standard_normal(300)
    return mapping.T @ mapping + laplacian + 1e-8 * np.eye(n), mapping.T @ data


def _scipy_nnls(matrix: np.ndarray, vector: np.ndarray, fixed_zero: np.ndarray) -> np.ndarray:
    """argmin_{x ≥ 0} ½xᵀAx − Dᵀx with x[fixed_zero] = 0, as the least squares ‖Lᵀx − L⁻¹D‖, A = LLᵀ."""
    free = ~fixed_zero
    factor = np.linalg.cholesky(matrix[np.ix_(free, free)])
    x = np.zeros(vector.size)
    x[free] = scipy.optimize.nnls(factor.T, scipy.linalg.solve_triangular(factor, vector[free], lower=True),
                                  maxiter=50 * vector.size)[0]
    return x


_solve = jax.jit(solve_positive_only, static_argnames=("method", "budget"))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("system, seed", [(_mge_like, s) for s in range(3)] + [(_mesh_like, s) for s in range(3)])
def test_the_solution_is_the_exact_nnls_solution(method, system, seed):
    matrix, vector = system(seed)
    fixed_zero = np.zeros(vector.size, bool)
    if system is _mesh_like:
        fixed_zero[:8] = True  # like edge zeroing
    x = np.asarray(_solve(matrix, vector, fixed_zero, method=method, budget=10 * vector.size))
    expected = _scipy_nnls(matrix, vector, fixed_zero)
    assert np.all(x >= 0.0) and np.all(x[fixed_zero] == 0.0)
    assert np.abs(x - expected).max() <= 1e-8 * np.abs(expected).max()
    assert 0 < (expected > 0).sum() < vector.size - fixed_zero.sum()  # the constraints bite


def test_it_agrees_with_jaxnnls_to_the_interior_points_accuracy():
    matrix, vector = _mge_like(7)
    x = np.asarray(_solve(matrix, vector, np.zeros(vector.size, bool), method="lawson_hanson"))
    scale = 1.0 / np.sqrt(np.diag(matrix))
    interior = scale * np.asarray(
        jaxnnls.solve_nnls_primal(matrix * scale[:, None] * scale, vector * scale, NNLS_TARGET_KAPPA))
    assert np.abs(x - interior).max() <= 1e-6 * np.abs(x).max()
    assert np.any(x == 0.0) and np.all(interior > 0.0)  # exact zeros where the interior point stays inside


def test_a_lane_that_cannot_certify_gets_the_interior_point_and_the_others_keep_their_exact_answer():
    hard_matrix, hard_vector = _mge_like(1)  # block pivoting needs over a dozen passes here
    easy_vector = hard_matrix @ np.full(hard_vector.size, 0.5)  # the unconstrained solution is positive
    matrices = np.stack([hard_matrix, hard_matrix])
    vectors = np.stack([hard_vector, easy_vector])
    fixed_zero = np.zeros(hard_vector.size, bool)
    batched = jax.jit(jax.vmap(lambda m, v: solve_positive_only(m, v, fixed_zero, "block_pivoting", budget=1)))
    x = np.asarray(batched(matrices, vectors))
    scale = 1.0 / np.sqrt(np.diag(hard_matrix))
    interior = np.asarray(jaxnnls.solve_nnls_primal(hard_matrix * scale[:, None] * scale, hard_vector * scale,
                                                    NNLS_TARGET_KAPPA)) * scale
    exact = _scipy_nnls(hard_matrix, hard_vector, fixed_zero)
    # the interior point's own answer (to round-off between its batched and unbatched runs): strictly inside,
    # where the exact solution has zeros
    assert np.abs(x[0] - interior).max() <= 1e-10 * np.abs(interior).max()
    assert np.all(x[0] > 0.0) and np.any(exact == 0.0)
    assert np.abs(x[1] - 0.5).max() <= 1e-9  # certified at once: the exact solve, untouched by the fallback


def test_the_gradient_is_the_derivative_on_the_active_set():
    matrix, vector = _mge_like(3)
    fixed_zero = np.zeros(vector.size, bool)
    weights = np.random.default_rng(0).standard_normal(vector.size)

    def objective(scale):
        return jnp.sum(weights * solve_positive_only(matrix, vector * scale, fixed_zero, "lawson_hanson"))

    gradient = float(jax.jit(jax.grad(objective))(1.0))
    step = 1e-6
    finite_difference = (float(objective(1.0 + step)) - float(objective(1.0 - step))) / (2 * step)
    assert np.isfinite(gradient) and gradient == pytest.approx(finite_difference, rel=1e-6)


def test_an_unknown_method_is_refused():
    matrix, vector = _mge_like(0)
    with pytest.raises(ValueError, match="method"):
        solve_positive_only(matrix, vector, np.zeros(vector.size, bool), "interior")
