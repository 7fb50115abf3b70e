"""Regularization of a rectangular mesh on its 4-neighbour graph: PyAutoArray's `reg.Constant` and `reg.Adapt`.

Constant:

With L = Degree − Adjacency the graph Laplacian of the ny × nx grid (each cell joined to the cells above,
below, left and right of it) and c the coefficient,

    H = c²·L + 1e-8·I           (note c², and the 1e-8 that keeps H positive definite),
    G = sᵀHs = c²·Σ_{edges (k,l)} (s_k − s_l)² + 1e-8·Σ_k s_k²,
    ln det H = Σ_{a<ny, b<nx} ln(c²·(λ_a(ny) + λ_b(nx)) + 1e-8),   λ_a(n) = 2 − 2 cos(πa/n),

the last because L is the Kronecker sum of two path-graph Laplacians, whose eigenvalues are λ_a(n). The closed
form equals the Cholesky value PyAutoArray computes (to its ~1e-8 round-off) and costs nothing; it does not
depend on the data or the lens, only on the mesh shape and c.

Adapt (adaptive brightness; PyAutoArray's adapt.py and mapper_util.adaptive_pixel_signals_from): each cell k gets
a signal from the adapt image a (adapt.py) over the mapping entries (q, e) of the real pixelization sub-pixels,
the bilinear weights w_qe on cells c_qe, each entry counting once (zero weights included):

    S_k = Σ_{c_qe = k} a[pixel(q)]·w_qe / n_k,   n_k = #{(q, e): c_qe = k}   (S_k = 0 where n_k = 0),
    s_k = (S_k / max S)^signal_scale   (0 where S_k ≤ 0),
    r_k = (inner·s_k + outer·(1 − s_k))²,
    H = Σ_{edges (k,l)} (r_k² + r_l²)·(e_k − e_l)(e_k − e_l)ᵀ + 1e-8·I,   G = sᵀHs,   ln det H by Cholesky.

PyAutoArray scatters each edge from both of its cells, hence r_k² + r_l²: with inner = outer = c,
H = 2c⁴·L + 1e-8·I.
"""

from __future__ import annotations

from . import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp
import numpy as np

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


def _edges(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(a, b): the cells of every 4-neighbour edge of the mesh, right then down neighbours."""
    ny, nx = validate_shape(shape)
    k = np.arange(ny * nx).reshape(ny, nx)
    return (np.concatenate([k[:, :-1].ravel(), k[:-1, :].ravel()]),
            np.concatenate([k[:, 1:].ravel(), k[1:, :].ravel()]))


def adapt_pixel_signals(cells: jax.Array, weights: jax.Array, real: jax.Array, sub_pixel: jax.Array,
                        adapt_image: jax.Array, n_cells: int, signal_scale) -> jax.Array:
    """s (K,) of the module docstring from the mapping entries (cells, weights (Q, 4); `real` (Q,) marks the
    real sub-pixels, `sub_pixel` (Q,) their used pixel) and the adapt image (P,)."""
    entry = jnp.broadcast_to(real[:, None], cells.shape)
    values = jnp.where(entry, adapt_image[sub_pixel][:, None] * weights, 0.0)
    sums = jax.ops.segment_sum(values.ravel(), cells.ravel(), n_cells)
    counts = jax.ops.segment_sum(entry.ravel().astype(jnp.float64), cells.ravel(), n_cells)
    signals = sums / jnp.where(counts > 0, counts, 1.0)
    peak = jnp.max(signals)
    signals = signals / jnp.where(peak > 0, peak, 1.0)
    zero = signals <= 0.0
    return jnp.where(zero, 0.0, jnp.where(zero, 1.0, signals) ** signal_scale)


def adapt_edge_weights(shape: tuple[int, int], signals: jax.Array, inner, outer) -> jax.Array:
    """(E,) r_k² + r_l² per edge of `_edges` (module docstring)."""
    a, b = _edges(shape)
    r2 = ((inner * signals + outer * (1.0 - signals)) ** 2) ** 2
    return r2[a] + r2[b]


def adapt_regularization_matrix(shape: tuple[int, int], edge_weights: jax.Array) -> jax.Array:
    """H (K, K) from the per-edge weights (adapt_edge_weights)."""
    a, b = _edges(shape)
    k = shape[0] * shape[1]
    h = DIAGONAL * jnp.eye(k) + jnp.zeros((k, k)).at[a, a].add(edge_weights).at[b, b].add(edge_weights)
    return h.at[a, b].add(-edge_weights).at[b, a].add(-edge_weights)


def adapt_regularization_term(shape: tuple[int, int], edge_weights: jax.Array, s: jax.Array) -> jax.Array:
    """G = sᵀHs = Σ_edges weight·(s_k − s_l)² + 1e-8·Σ s²."""
    a, b = _edges(shape)
    return jnp.sum(edge_weights * (s[a] - s[b]) ** 2) + DIAGONAL * jnp.sum(s**2)
