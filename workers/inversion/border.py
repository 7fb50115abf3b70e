"""Border relocation (PyAutoArray's `BorderRelocator`, use_border_relocator): traced points that land outside
the source-plane image of the mask's border are moved onto it.

Border pixels (numpy, once per dataset): the used pixels that see the edge of the image along a row or a
column without crossing another used pixel — the top-most and bottom-most used pixel of every column and the
left-most and right-most of every row (PyAutoArray's `border_slim`).

The border is the ellipse fitted to the traced *centres* b_m of the M border pixels by principal axes:

    o = mean_m b_m,  X_m = (b_x − o_x, b_y − o_y),  C = Σ_m X_m X_mᵀ/(M − 1),
    φ = atan2(v_y, v_x) of C's major eigenvector v (φ = 0 when C is isotropic to √eps relative),
    x' = cos φ·X_x + sin φ·X_y,  y' = −sin φ·X_x + cos φ·X_y,
    a = max_m |x'_m| + 1e-12,  b = max_m |y'_m| + 1e-12.

A point with ρ = (x'/a)² + (y'/b)² > 1 moves to o + (x', y')/√ρ (rotated back); the others stay.
"""

from __future__ import annotations

from . import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp
import numpy as np

EPS = 1e-12


def border_pixels(mask: np.ndarray) -> np.ndarray:
    """(P,) bool over the used pixels of `mask` (True = masked) in slim order: True on border pixels."""
    mask = np.asarray(mask, dtype=bool)
    used = ~mask
    ny, nx = mask.shape
    above = np.cumsum(used, axis=0) - used  # used pixels strictly above, per column
    below = np.cumsum(used[::-1], axis=0)[::-1] - used
    left = np.cumsum(used, axis=1) - used
    right = np.cumsum(used[:, ::-1], axis=1)[:, ::-1] - used
    border = used & ((above == 0) | (below == 0) | (left == 0) | (right == 0))
    return border[used]


def fit_ellipse(
    points: jax.Array, border: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(origin (2,), a, b, φ) of the ellipse through the points (P, 2) flagged by `border` (P,) (1 or 0)."""
    w = border.astype(points.dtype)
    count = jnp.sum(w)
    safe = jnp.where(w[:, None] > 0, points, 0.0)
    origin = jnp.sum(safe * w[:, None], axis=0) / count
    dy = jnp.where(w > 0, points[:, 0] - origin[0], 0.0)
    dx = jnp.where(w > 0, points[:, 1] - origin[1], 0.0)
    xy = jnp.stack([dx, dy], axis=1)
    cov = (xy * w[:, None]).T @ xy / jnp.maximum(count - 1.0, 1.0)
    evals, evecs = jnp.linalg.eigh(cov)
    phi = jnp.arctan2(evecs[1, -1], evecs[0, -1])
    scale = jnp.maximum(jnp.max(jnp.abs(evals)), EPS)
    isotropic = (evals[-1] - evals[0]) / scale <= jnp.sqrt(jnp.finfo(cov.dtype).eps)
    phi = jnp.where(isotropic, 0.0, phi)
    c, s = jnp.cos(phi), jnp.sin(phi)
    xp = c * dx + s * dy
    yp = -s * dx + c * dy
    a = jnp.max(jnp.where(w > 0, jnp.abs(xp), 0.0)) + EPS
    b = jnp.max(jnp.where(w > 0, jnp.abs(yp), 0.0)) + EPS
    return origin, a, b, phi


def relocate(points: jax.Array, origin: jax.Array, a: jax.Array, b: jax.Array, phi: jax.Array) -> jax.Array:
    """Points (Q, 2) with those outside the ellipse moved onto it."""
    dy = points[:, 0] - origin[0]
    dx = points[:, 1] - origin[1]
    c, s = jnp.cos(phi), jnp.sin(phi)
    xp = c * dx + s * dy
    yp = -s * dx + c * dy
    rho = (xp / a) ** 2 + (yp / b) ** 2
    scale = 1.0 / jnp.sqrt(jnp.maximum(rho, 1.0 + EPS))
    xp2, yp2 = xp * scale, yp * scale
    moved = jnp.stack([origin[0] + s * xp2 + c * yp2, origin[1] + c * xp2 - s * yp2], axis=1)
    return jnp.where((rho > 1.0)[:, None], moved, points)
