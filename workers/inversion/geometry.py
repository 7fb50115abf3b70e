"""Elliptical geometry shared by mass and light profiles.

ell_comps (e0, e1) = (f·sin 2φ, f·cos 2φ), f = (1−q)/(1+q), φ counter-clockwise from +x.
Inverse: φ = ½·atan2(e0, e1), f = min(√(e0²+e1²), 0.999), q = (1−f)/(1+f).
Profile frame about (yc, xc): Y = y−yc, X = x−xc, x' = X cos φ + Y sin φ, y' = Y cos φ − X sin φ.
A vector (a_y', a_x') found in that frame rotates back by
    a_y = a_y' cos φ + a_x' sin φ,  a_x = a_x' cos φ − a_y' sin φ.
"""

from __future__ import annotations

import jax.numpy as jnp


def axis_ratio_and_angle(ell_comps: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(q, φ in radians) from ell_comps. The 180° wrap PyAutoLens applies to φ below −45° does not change
    any profile value or deflection (it flips both frame axes), so it is omitted."""
    e0, e1 = ell_comps[0], ell_comps[1]
    r2 = e0**2 + e1**2
    # Exactly round (e0 = e1 = 0): sqrt and atan2 have no derivative there; safe inputs keep gradients finite.
    elliptical = r2 > 0.0
    f = jnp.where(elliptical, jnp.sqrt(jnp.where(elliptical, r2, 1.0)), 0.0)
    f = jnp.minimum(f, 0.999)
    q = (1.0 - f) / (1.0 + f)
    phi = jnp.where(elliptical, 0.5 * jnp.arctan2(e0, jnp.where(elliptical, e1, 1.0)), 0.0)
    return q, phi


def to_profile_frame(
    points: jnp.ndarray, centre: jnp.ndarray, phi: jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(y', x') of points (…, 2) in the frame of a profile at `centre` rotated by φ."""
    y = points[..., 0] - centre[0]
    x = points[..., 1] - centre[1]
    c, s = jnp.cos(phi), jnp.sin(phi)
    return y * c - x * s, x * c + y * s


def from_profile_frame(a_y: jnp.ndarray, a_x: jnp.ndarray, phi: jnp.ndarray) -> jnp.ndarray:
    """Rotate a vector field found in the profile frame back to (y, x); returns (…, 2)."""
    c, s = jnp.cos(phi), jnp.sin(phi)
    return jnp.stack([a_y * c + a_x * s, a_x * c - a_y * s], axis=-1)
