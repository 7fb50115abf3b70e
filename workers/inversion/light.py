"""Light profiles (fp64), in the profile frame of geometry.py.

Gaussian (peak-normalised): I = I0·exp(−(q²x'² + y'²)/(2σ²)); a *linear* Gaussian has I0 ≡ 1, so its
solved amplitude is its intensity.
Sersic: I = I0·exp(−k[(R/Re)^(1/n) − 1]), eccentric radius R = √(q·x'² + y'²/q),
k(n) = 2n − 1/3 + 4/(405n) + 46/(25515n²) + 131/(1148175n³) − 2194697/(30690717750n⁴).
MGE basis: N Gaussians sharing centre and ell_comps, σ_k = 10^linspace(log10 σ_min, log10 R_mask, N); an MGE of
K sets is K such bases sharing the centre, each with its own ell_comps.
"""

from __future__ import annotations

from . import jax_setup  # noqa: F401
import jax.numpy as jnp

from .geometry import axis_ratio_and_angle, to_profile_frame


def mge_sigmas(gaussians: int, sigma_min: float, mask_radius: jnp.ndarray) -> jnp.ndarray:
    """σ of the basis Gaussians (arcsec), log-spaced from sigma_min to the mask radius."""
    return 10.0 ** jnp.linspace(jnp.log10(sigma_min), jnp.log10(mask_radius), gaussians)


def gaussian_basis(
    points: jnp.ndarray, centre: jnp.ndarray, ell_comps: jnp.ndarray, sigmas: jnp.ndarray
) -> jnp.ndarray:
    """Unit-intensity Gaussians at points (Q, 2), one column per σ (N,): shape (Q, N). Points-major on purpose:
    XLA's CPU backend vectorises the exp only when it writes its output in order; an (N, Q) basis later summed
    per pixel over the rows Q was computed transposed, one scalar exp at a time (measured 8.5× slower on the
    SLACS lens light's 40 Gaussians, benchmarks/RESULTS.md)."""
    q, phi = axis_ratio_and_angle(ell_comps)
    y, x = to_profile_frame(points, centre, phi)
    r2 = q**2 * x**2 + y**2
    return jnp.exp(-r2[:, None] / (2.0 * sigmas[None, :] ** 2))


def mge_images(
    points: jnp.ndarray, centre: jnp.ndarray, ell_comps: jnp.ndarray, sigmas: jnp.ndarray
) -> jnp.ndarray:
    """The unit Gaussians of an MGE of K sets, ell_comps (K, 2), at points (Q, 2): shape (Q, K·N), set 0 first."""
    return jnp.concatenate([gaussian_basis(points, centre, ell, sigmas) for ell in ell_comps], axis=1)


def sersic_constant(n: jnp.ndarray) -> jnp.ndarray:
    """k(n) such that Re encloses half the light."""
    return (
        2.0 * n
        - 1.0 / 3.0
        + 4.0 / (405.0 * n)
        + 46.0 / (25515.0 * n**2)
        + 131.0 / (1148175.0 * n**3)
        - 2194697.0 / (30690717750.0 * n**4)
    )


def sersic(
    points: jnp.ndarray,
    centre: jnp.ndarray,
    ell_comps: jnp.ndarray,
    intensity: jnp.ndarray,
    effective_radius: jnp.ndarray,
    sersic_index: jnp.ndarray,
) -> jnp.ndarray:
    """Sersic surface brightness at points (…, 2)."""
    q, phi = axis_ratio_and_angle(ell_comps)
    y, x = to_profile_frame(points, centre, phi)
    radius = jnp.sqrt(q * x**2 + y**2 / q)
    k = sersic_constant(sersic_index)
    return intensity * jnp.exp(-k * ((radius / effective_radius) ** (1.0 / sersic_index) - 1.0))
