"""Rectangular meshes over traced points: the RectangularUniform mesh (geometry, bilinear weights), the registry
MESH_MAPPINGS of every rectangular mesh by its RectangularSource.mesh name (the adaptive ones live in
adaptive_mesh.py), the sparse mapping matrix and the edge cells.

A mesh of ny × nx cells is laid over the real traced sub-pixels β_q (sub-weight > 0; padding never counts),
exactly as PyAutoArray's `overlay_grid_from` and `InterpolatorRectangularUniform` do:

    y_min = min β_y − 1e-8,  y_max = max β_y + 1e-8  (x likewise),
    Δy = (y_max − y_min)/ny,  Δx = (x_max − x_min)/nx,  origin = ((y_max + y_min)/2, (x_max + x_min)/2),
    y_c[i] = ((ny−1)/2 − i)·Δy + origin_y   (row 0 at the top),
    x_c[j] = (j − (nx−1)/2)·Δx + origin_x,   cell k = i·nx + j.

Bilinear weights between cell centres, with the signed spacings s_y = y_c[1] − y_c[0] (< 0), s_x = x_c[1] − x_c[0]:

    f_y = (β_y − y_c[0])/s_y,  f_x = (β_x − x_c[0])/s_x,
    i = clip(⌊f_y⌋, 0, ny−2),  j = clip(⌊f_x⌋, 0, nx−2),  t_y = f_y − i,  t_x = f_x − j,
    w = ((1−t_x)(1−t_y), t_x(1−t_y), (1−t_x)t_y, t_x·t_y)  on cells (i, j), (i, j+1), (i+1, j), (i+1, j+1).

Points in the outer half-cell extrapolate (weights slightly outside [0, 1], still summing to 1).
Every mesh maps a sub-pixel to four cells with weights summing to 1 (MESH_MAPPINGS). Mapping matrix
M[p, k] = Σ_{q ∈ p} (1/s²)·w_q(k) over the sub-pixels q of used pixel p; it is kept in this sparse form —
(cell, weight) entries (Q, 4) per sub-pixel, the weight already times 1/s² (mapping_entries) — and
convolution.py turns it into the blurred matrix M̃ directly.
(mapping_entries returns the interpolation weights alone; fit.py multiplies them by 1/s².)
Edge cells: the outer ring of the mesh, 2ny + 2nx − 4 cells (PyAutoArray's `zeroed_pixels`, the same for every
rectangular mesh).

Degenerate traced grids: if the real traced points are not all finite, or their extent along y or x is below
MIN_EXTENT (the grid has collapsed onto a point or a line), `overlay` flags the geometry as degenerate and
fit.py reports fit.DEGENERATE_FIGURE_OF_MERIT instead of a number (or a NaN).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp
import numpy as np

from .adaptive_mesh import kernel_mapping, rank_mapping

MIN_SHAPE = 3  # PyAutoArray refuses rectangular meshes below 3×3
BUFFER = 1e-8  # arcsec added on each side of the traced points' bounding box
MIN_EXTENT = 1e-6  # arcsec: a traced extent below this along y or x makes the mesh degenerate


def validate_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """The mesh shape as (ny, nx); ValueError unless it is two integers, both >= 3."""
    try:
        ny, nx = (int(n) for n in shape)
        exact = (ny, nx) == tuple(shape)
    except (TypeError, ValueError):
        exact = False
    if not exact:
        raise ValueError(f"a rectangular mesh shape is two integers (ny, nx), got {shape!r}")
    if ny < MIN_SHAPE or nx < MIN_SHAPE:
        raise ValueError(
            f"a rectangular mesh must be at least {MIN_SHAPE}×{MIN_SHAPE} cells, got shape ({ny}, {nx})"
        )
    return ny, nx


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class MeshGeometry:
    """Where a RectangularUniform mesh lies: origin (2,) its (y, x) centre and pixel_scales (2,) its cell size
    (Δy, Δx) > 0, arcsec; degenerate () True if the traced points were non-finite or collapsed.
    Static: shape (ny, nx)."""

    origin: jax.Array
    pixel_scales: jax.Array
    degenerate: jax.Array
    shape: tuple[int, int] = field(metadata={"static": True})

    @property
    def pixels(self) -> int:
        return self.shape[0] * self.shape[1]


def overlay(points: jax.Array, sub_weight: jax.Array, shape: tuple[int, int]) -> MeshGeometry:
    """The mesh of `shape` over the real points (Q, 2) (those with sub_weight > 0)."""
    ny, nx = validate_shape(shape)
    real = (sub_weight > 0)[:, None]
    finite = jnp.all(jnp.where(real, jnp.isfinite(points), True))
    low = jnp.min(jnp.where(real, points, jnp.inf), axis=0)
    high = jnp.max(jnp.where(real, points, -jnp.inf), axis=0)
    extent = high - low
    degenerate = ~finite | jnp.any(~(extent >= MIN_EXTENT))
    low, high = low - BUFFER, high + BUFFER
    pixel_scales = (high - low) / jnp.array([ny, nx], dtype=points.dtype)
    origin = (high + low) / 2.0
    return MeshGeometry(origin=origin, pixel_scales=pixel_scales, degenerate=degenerate, shape=(ny, nx))


def centres_yx(geometry: MeshGeometry) -> tuple[jax.Array, jax.Array]:
    """Cell-centre coordinates per row (ny,) and per column (nx,)."""
    ny, nx = geometry.shape
    y = ((ny - 1) / 2.0 - jnp.arange(ny)) * geometry.pixel_scales[0] + geometry.origin[0]
    x = (jnp.arange(nx) - (nx - 1) / 2.0) * geometry.pixel_scales[1] + geometry.origin[1]
    return y, x


def mesh_centres(geometry: MeshGeometry) -> jax.Array:
    """Centres (K, 2) of all cells, (y, x), in cell order k = i·nx + j."""
    y, x = centres_yx(geometry)
    yy, xx = jnp.meshgrid(y, x, indexing="ij")
    return jnp.stack([yy.ravel(), xx.ravel()], axis=-1)


def bilinear_weights(points: jax.Array, geometry: MeshGeometry) -> tuple[jax.Array, jax.Array]:
    """(cells (Q, 4) int32, weights (Q, 4)): each point's four surrounding cells and bilinear weights."""
    ny, nx = geometry.shape
    y, x = centres_yx(geometry)
    fy = (points[:, 0] - y[0]) / (y[1] - y[0])
    fx = (points[:, 1] - x[0]) / (x[1] - x[0])
    iy = jnp.clip(jnp.floor(fy), 0, ny - 2)
    ix = jnp.clip(jnp.floor(fx), 0, nx - 2)
    ty, tx = fy - iy, fx - ix
    weights = jnp.stack([(1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty], axis=1)
    k = iy.astype(jnp.int32) * nx + ix.astype(jnp.int32)
    cells = jnp.stack([k, k + 1, k + nx, k + nx + 1], axis=1)
    return cells, weights


def uniform_mapping(
    points: jax.Array, sub_weight: jax.Array, centres: jax.Array, valid: jax.Array, shape: tuple[int, int]
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """RectangularUniform: (cells (Q, 4), bilinear weights (Q, 4), cell centres (K, 2)) of the traced sub-pixels
    `points` (Q, 2) on the mesh over the real ones (sub_weight > 0). The traced centres are not needed."""
    geometry = overlay(points, sub_weight, shape)
    cells, weights = bilinear_weights(points, geometry)
    return cells, weights, mesh_centres(geometry)


# Each mesh by its RectangularSource.mesh name, as
#   (traced sub-pixels (Q, 2), sub_weight (Q,), traced used-pixel centres (P, 2), valid (P,), shape)
#   -> (cells (Q, 4) int32, weights (Q, 4) summing to 1, cell centres (K, 2));
# the *_adapt_image meshes also take the mesh weight map (P,) (adaptive_mesh.mesh_weights).
MESH_MAPPINGS: dict[str, Callable[..., tuple[jax.Array, jax.Array, jax.Array]]] = {
    "uniform": uniform_mapping,
    "bilinear_adapt_density": rank_mapping,
    "rtu_adapt_density": kernel_mapping,
    "bilinear_adapt_image": rank_mapping,
    "rtu_adapt_image": kernel_mapping,
}


def mapping_entries(
    mesh: str, points: jax.Array, sub_weight: jax.Array, centres: jax.Array, valid: jax.Array, shape: tuple[int, int],
    mesh_weights: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The sparse mapping of mesh `mesh` (MESH_MAPPINGS; `mesh_weights` for an *_adapt_image mesh): (cells (Q, 4),
    interpolation weights (Q, 4), cell centres (K, 2)). The mapping matrix is M[p, k] = Σ over the sub-pixels q of
    p and their entries e with cells[q, e] = k of (1/s²)·weights[q, e] (sub_weight, 0 on padded sub-pixels)."""
    extra = () if mesh_weights is None else (mesh_weights,)
    return MESH_MAPPINGS[mesh](points, sub_weight, centres, valid, shape, *extra)


def mapping_matrix(
    cells: jax.Array, weights: jax.Array, sub_pixel: jax.Array, n_pixels: int, n_cells: int, dtype=jnp.float64
) -> jax.Array:
    """The dense (unblurred) mapping matrix (n_pixels, n_cells) from mapping_entries and each sub-pixel's
    used pixel (Q,)."""
    m = jnp.zeros((n_pixels, n_cells), dtype)
    return m.at[sub_pixel[:, None], cells].add(weights.astype(dtype))


def edge_cells(shape: tuple[int, int]) -> np.ndarray:
    """(K,) bool: True on the outer ring of the mesh (2ny + 2nx − 4 cells)."""
    ny, nx = validate_shape(shape)
    ring = np.zeros((ny, nx), dtype=bool)
    ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = True
    return ring.ravel()
