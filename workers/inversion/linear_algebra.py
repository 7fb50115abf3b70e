"""The linear inversion's algebra (fp64): data vector, curvature matrix, solves and log-determinants.

With M̃ the blurred mapping matrix (P used pixels × n linear parameters), d the data and σ the noise:
    D = M̃ᵀ(d/σ²),   F = M̃ᵀ diag(1/σ²) M̃,   A = F + H (+ a diagonal floor on unregularized parameters).
Solve A s = D by Cholesky, or positive-only: minimise ½sᵀAs − Dᵀs subject to s ≥ 0 with jaxnnls on the
Jacobi-scaled system (Ã = J A J, D̃ = J D, J = diag(A)^(−1/2), s = J s̃), as PyAutoLens does. Parameters
flagged `fixed_zero` are held at 0: their rows and columns become the identity and their D entry 0.
ln det A = 2 Σ ln diag(chol A).
"""

from __future__ import annotations

from . import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp
import jaxnnls

NNLS_TARGET_KAPPA = 1e-11  # PyAutoLens's relaxation for finite gradients through the NNLS solve


def data_vector_and_curvature(
    blurred: jax.Array, data: jax.Array, weight: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """(D, F) from blurred columns (P, n), data (P,) and weights 1/σ² (P,) (0 on padded pixels)."""
    weighted = blurred * weight[:, None]
    return weighted.T @ data, weighted.T @ blurred


def hold_at_zero(matrix: jax.Array, vector: jax.Array, fixed_zero: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The system with `fixed_zero` parameters pinned at 0 (identity rows/columns, zero right-hand side)."""
    pinned = fixed_zero[:, None] | fixed_zero[None, :]
    eye = jnp.eye(matrix.shape[0], dtype=matrix.dtype)
    return jnp.where(pinned, eye, matrix), jnp.where(fixed_zero, 0.0, vector)


def solve_cholesky(matrix: jax.Array, vector: jax.Array) -> jax.Array:
    """s with A s = D for symmetric positive-definite A."""
    factor = jax.scipy.linalg.cho_factor(matrix, lower=True)
    return jax.scipy.linalg.cho_solve(factor, vector)


def solve_positive_only(matrix: jax.Array, vector: jax.Array) -> jax.Array:
    """argmin_{s ≥ 0} ½sᵀAs − Dᵀs, by jaxnnls on the Jacobi-scaled system."""
    scale = 1.0 / jnp.sqrt(jnp.diag(matrix))
    scaled = matrix * scale[:, None] * scale[None, :]
    return jaxnnls.solve_nnls_primal(scaled, vector * scale, NNLS_TARGET_KAPPA) * scale


def log_det(matrix: jax.Array) -> jax.Array:
    """ln det A of a symmetric positive-definite matrix, by Cholesky."""
    return 2.0 * jnp.sum(jnp.log(jnp.diag(jnp.linalg.cholesky(matrix))))
