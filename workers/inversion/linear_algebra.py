"""The linear inversion's algebra (fp64): data vector, curvature matrix, Cholesky solves and log-determinants.

With M̃ the blurred mapping matrix (P used pixels × n linear parameters), d the data and σ the noise:
    D = M̃ᵀ(d/σ²),   F = M̃ᵀ diag(1/σ²) M̃,   A = F + H (+ a diagonal floor on unregularized parameters).
The engine keeps M̃ transposed, columns leading (n, P), so F contracts over the minor axis (one GEMM). Solve
A s = D by Cholesky A = LLᵀ, ln det A = 2 Σ ln diag L; the positive-only solve is positive_only.py.
Parameters flagged `fixed_zero` are held at 0: their rows and columns become the identity and their D entry 0.
"""

from __future__ import annotations

from . import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp


def data_vector_and_curvature(
    blurred_t: jax.Array, data: jax.Array, weight: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """(D, F) from blurred columns as rows (n, P), data (P,) and weights 1/σ² (P,) (0 on padded pixels), as
    D = A(√w·d) and F = AAᵀ with A = M̃ᵀ√W, one GEMM contracting the rows' minor axis."""
    scale = jnp.sqrt(weight)
    scaled = blurred_t * scale
    contract_rows = (((1,), (1,)), ((), ()))
    return scaled @ (scale * data), jax.lax.dot_general(scaled, scaled, contract_rows)


def hold_at_zero(matrix: jax.Array, vector: jax.Array, fixed_zero: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The system with `fixed_zero` parameters pinned at 0 (identity rows/columns, zero right-hand side)."""
    pinned = fixed_zero[:, None] | fixed_zero[None, :]
    eye = jnp.eye(matrix.shape[0], dtype=matrix.dtype)
    return jnp.where(pinned, eye, matrix), jnp.where(fixed_zero, 0.0, vector)


def cholesky(matrix: jax.Array) -> jax.Array:
    """Lower Cholesky factor L of a symmetric positive-definite matrix (A = LLᵀ), from its lower triangle
    (the matrices here are symmetric by construction: no symmetrizing pass over A)."""
    return jax.lax.linalg.cholesky(matrix, symmetrize_input=False)


def solve_with_factor(factor: jax.Array, vector: jax.Array) -> jax.Array:
    """s with LLᵀ s = D."""
    return jax.scipy.linalg.cho_solve((factor, True), vector)


def solve_cholesky(matrix: jax.Array, vector: jax.Array) -> jax.Array:
    """s with A s = D for symmetric positive-definite A."""
    return solve_with_factor(cholesky(matrix), vector)


def log_det_from_factor(factor: jax.Array, n: int | None = None) -> jax.Array:
    """ln det of the leading n×n block of A = LLᵀ (all of it if n is None): 2 Σ ln L_ii over that block,
    since the leading block of L is the Cholesky factor of the leading block of A."""
    return 2.0 * jnp.sum(jnp.log(jnp.diag(factor)[:n]))


def log_det(matrix: jax.Array) -> jax.Array:
    """ln det A of a symmetric positive-definite matrix, by Cholesky."""
    return log_det_from_factor(cholesky(matrix))
