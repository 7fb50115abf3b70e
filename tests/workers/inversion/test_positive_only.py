"""The positive-only solve is the exact NNLS solution (scipy's Lawson-Hanson on the same problem, an independent
implementation), certifies it, and where its search cannot certify, crosses over from jaxnnls's interior point
to the exact answer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jaxnnls
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize

from workers.inversion import positive_only
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


def _hard_and_easy_lanes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two lanes: one block pivoting cannot certify in 1 pass, one whose unconstrained solution is positive."""
    hard_matrix, hard_vector = _mge_like(1)
    easy_vector = hard_matrix @ np.full(hard_vector.size, 0.5)
    return np.stack([hard_matrix, hard_matrix]), np.stack([hard_vector, easy_vector]), np.zeros(hard_vector.size, bool)


def test_a_lane_the_search_cannot_certify_gets_the_exact_answer_through_the_interior_points_crossover():
    matrices, vectors, fixed_zero = _hard_and_easy_lanes()
    batched = jax.jit(jax.vmap(lambda m, v: solve_positive_only(m, v, fixed_zero, "block_pivoting", budget=1)))
    x = np.asarray(batched(matrices, vectors))
    exact = _scipy_nnls(matrices[0], vectors[0], fixed_zero)
    assert np.any(exact == 0.0) and np.all(x[0][exact == 0.0] == 0.0)  # exact zeros, not the interior's residue
    assert np.abs(x[0] - exact).max() <= 1e-8 * np.abs(exact).max()
    assert np.abs(x[1] - 0.5).max() <= 1e-9  # certified at once: the exact solve, untouched by the fallback


def test_a_lane_the_crossover_cannot_certify_either_answers_the_interior_point(monkeypatch):
    # An interior point stopped far from the solution (x = 0) points the crossover at the wrong active set,
    # which one pass cannot repair: that lane answers the interior point's x, the certified lane keeps its own.
    monkeypatch.setattr(positive_only, "_interior_point", lambda q_matrix, q_vector: jnp.zeros_like(q_vector))
    matrices, vectors, fixed_zero = _hard_and_easy_lanes()
    batched = jax.jit(jax.vmap(lambda m, v: solve_positive_only(m, v, fixed_zero, "block_pivoting", budget=1)))
    x = np.asarray(batched(matrices, vectors))
    assert np.all(x[0] == 0.0)
    assert np.abs(x[1] - 0.5).max() <= 1e-9


@pytest.mark.parametrize("method, budget", [("lawson_hanson", None), ("block_pivoting", 1)])  # 1: the crossover
def test_the_gradient_is_the_derivative_on_the_active_set(method, budget):
    matrix, vector = _mge_like(3)
    fixed_zero = np.zeros(vector.size, bool)
    weights = np.random.default_rng(0).standard_normal(vector.size)

    def objective(scale):
        return jnp.sum(weights * solve_positive_only(matrix, vector * scale, fixed_zero, method, budget))

    gradient = float(jax.jit(jax.grad(objective))(1.0))
    step = 1e-6
    finite_difference = (float(objective(1.0 + step)) - float(objective(1.0 - step))) / (2 * step)
    assert np.isfinite(gradient) and gradient == pytest.approx(finite_difference, rel=1e-6)


def test_an_unknown_method_is_refused():
    matrix, vector = _mge_like(0)
    with pytest.raises(ValueError, match="method"):
        solve_positive_only(matrix, vector, np.zeros(vector.size, bool), "interior")
