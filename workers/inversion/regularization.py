"""Constant regularization of a rectangular mesh (PyAutoArray's `reg.Constant` on its 4-neighbour graph).

With L = Degree − Adjacency the graph Laplacian of the ny × nx grid (each cell joined to the cells above,
below, left and right of it) and c the coefficient,

    H = c²·L + 1e-8·I           (note c², and the 1e-8 that keeps H positive definite),
    G = sᵀHs = c²·Σ_{edges (k,l)} (s_k − s_l)² + 1e-8·Σ_k s_k²,
    ln det H = Σ_{a<ny, b<nx} ln(c²·(λ_a(ny) + λ_b(nx)) + 1e-8),   λ_a(n) = 2 − 2 cos(πa/n),

the last because L is the Kronecker sum of two path-graph Laplacians, whose eigenvalues are λ_a(n). The closed
form equals the Cholesky value PyAutoArray computes (to its ~1e-8 round-off) and costs nothing; it does not
depend on the data or the lens, only on the mesh shape and c.
"""

from __future__ import annotations

from . import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp

from .mesh import validate_shape

DIAGONAL = 1e-8


def constant_regularization_matrix(shape: tuple[int, int], coefficient) -> jax.Array:
    """H (K, K) for a mesh of `shape`. Built from index arithmetic inside the compiled program (no K×K
    constant is baked in)."""
    ny, nx = validate_shape(shape)
    k = jnp.arange(ny * nx)
    row, col = k // nx, k % nx
    dr = jnp.abs(row[:, None] - row[None, :])
    dc = jnp.abs(col[:, None] - col[None, :])
    adjacency = ((dr + dc) == 1).astype(jnp.float64)
    degree = adjacency.sum(axis=1)
    c2 = jnp.asarray(coefficient, jnp.float64) ** 2
    return c2 * (jnp.diag(degree) - adjacency) + DIAGONAL * jnp.eye(ny * nx)


def constant_regularization_term(shape: tuple[int, int], coefficient, s: jax.Array) -> jax.Array:
    """G = sᵀHs for cell values s (K,), as a sum over the mesh's 4-neighbour edges."""
    ny, nx = validate_shape(shape)
    grid = s.reshape(ny, nx)
    edges = jnp.sum((grid[1:, :] - grid[:-1, :]) ** 2) + jnp.sum((grid[:, 1:] - grid[:, :-1]) ** 2)
    return jnp.asarray(coefficient, jnp.float64) ** 2 * edges + DIAGONAL * jnp.sum(s**2)


def constant_log_det(shape: tuple[int, int], coefficient) -> jax.Array:
    """ln det H, from the eigenvalues of the grid Laplacian (see the module docstring)."""
    ny, nx = validate_shape(shape)
    lam_y = 2.0 - 2.0 * jnp.cos(jnp.pi * jnp.arange(ny) / ny)
    lam_x = 2.0 - 2.0 * jnp.cos(jnp.pi * jnp.arange(nx) / nx)
    c2 = jnp.asarray(coefficient, jnp.float64) ** 2
    return jnp.sum(jnp.log(c2 * (lam_y[:, None] + lam_x[None, :]) + DIAGONAL))
