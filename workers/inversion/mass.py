"""Mass profiles and ray tracing (fp64).

Isothermal (SIE), in its profile frame (geometry.py), with b = θE/(1+q), s = √(1−q²),
ψ = √(q²x'² + y'² + 1e-16):
    α_x' = (2bq/s)·arctan(s·x'/ψ),   α_y' = (2bq/s)·arctanh(s·y'/ψ).
Near q = 1 (s² < 1e-4) the series to O(s²),
    α_x' = (2bq·x'/ψ)(1 − s²x'²/3ψ²),   α_y' = (2bq·y'/ψ)(1 + s²y'²/3ψ²),
keeps the round limit α = θE·r̂ finite and differentiable.

PowerLaw (EPL, Tessore & Metcalf 2015), slope γ, t = γ − 1, as PyAutoGalaxy evaluates it under JAX: with
b = 2qθE/(1+q), f = (1−q)/(1+q), R = √(q²x'² + y'² + 1e-16) and z = (qx' + iy')/|qx' + iy'| (1 at the centre),
    α_x' + iα_y' = (2b/(1+q))·((1+q)/2)^(t−1)·(b/R)^(t−1)·Ω,
    Ω = Σ_{n<N} ω_n,  ω_0 = z,  ω_n = −f·(2n − (2−t))/(2n + (2−t))·z²·ω_{n−1},
with N = POWER_LAW_TERMS = 20 terms, PyAutoGalaxy's JAX path (its numpy path sums until f^N/(1−f) < 1e-10;
the two differ by ~f^20/(1−f): 1e-18 at q = 0.8, 2e-6 at q = 0.33). γ = 2 is the Isothermal.
ExternalShear (γ1, γ2) about the origin: α_x = γ1·x + γ2·y, α_y = γ2·x − γ1·y.
Ray tracing with one lens plane: β = θ − Σ α(θ).
"""

from __future__ import annotations

from collections.abc import Callable

from . import jax_setup  # noqa: F401  (x64 before any array is made)
import jax.numpy as jnp

from .geometry import axis_ratio_and_angle, from_profile_frame, to_profile_frame
from .parameters import MassParameters

_ROUND_LIMIT = 1e-4
POWER_LAW_TERMS = 20


def isothermal_deflections(
    points: jnp.ndarray, centre: jnp.ndarray, ell_comps: jnp.ndarray, einstein_radius: jnp.ndarray
) -> jnp.ndarray:
    """Deflection angles (…, 2) of an Isothermal at points (…, 2), arcsec."""
    q, phi = axis_ratio_and_angle(ell_comps)
    y, x = to_profile_frame(points, centre, phi)
    b = einstein_radius / (1.0 + q)
    s2 = 1.0 - q**2
    psi = jnp.sqrt(q**2 * x**2 + y**2 + 1e-16)
    round_ = s2 < _ROUND_LIMIT
    s = jnp.sqrt(jnp.where(round_, 1.0, s2))
    exact_x = (2.0 * b * q / s) * jnp.arctan(s * x / psi)
    exact_y = (2.0 * b * q / s) * jnp.arctanh(s * y / psi)
    series_x = (2.0 * b * q * x / psi) * (1.0 - s2 * x**2 / (3.0 * psi**2))
    series_y = (2.0 * b * q * y / psi) * (1.0 + s2 * y**2 / (3.0 * psi**2))
    a_x = jnp.where(round_, series_x, exact_x)
    a_y = jnp.where(round_, series_y, exact_y)
    return from_profile_frame(a_y, a_x, phi)


def power_law_deflections(
    points: jnp.ndarray,
    centre: jnp.ndarray,
    ell_comps: jnp.ndarray,
    einstein_radius: jnp.ndarray,
    slope: jnp.ndarray,
) -> jnp.ndarray:
    """Deflection angles (…, 2) of a PowerLaw at points (…, 2), arcsec."""
    q, phi = axis_ratio_and_angle(ell_comps)
    y, x = to_profile_frame(points, centre, phi)
    t = slope - 1.0
    f = (1.0 - q) / (1.0 + q)
    b = 2.0 * q * einstein_radius / (1.0 + q)
    qx = q * x
    radius = jnp.sqrt(qx**2 + y**2 + 1e-16)
    on_centre = (qx == 0.0) & (y == 0.0)
    modulus = jnp.hypot(jnp.where(on_centre, 1.0, qx), y)  # never hypot(0, 0): finite gradients at the centre
    z = jnp.where(on_centre, 1.0 + 0j, (qx + 1j * y) / modulus)
    step = -f * z**2
    term, omega = z, z
    for n in range(1, POWER_LAW_TERMS):
        term = term * step * ((2.0 * n - (2.0 - t)) / (2.0 * n + (2.0 - t)))
        omega = omega + term
    prefactor = 2.0 * b / (1.0 + q) * ((1.0 + q) / 2.0) ** (t - 1.0) * (b / radius) ** (t - 1.0)
    alpha = prefactor * omega
    return from_profile_frame(alpha.imag, alpha.real, phi)


# A mass profile's deflections by its MASS_PROFILES name, called with its declared parameters by name.
DEFLECTIONS: dict[str, Callable[..., jnp.ndarray]] = {
    "isothermal": isothermal_deflections,
    "power_law": power_law_deflections,
}


def shear_deflections(points: jnp.ndarray, shear: jnp.ndarray) -> jnp.ndarray:
    """Deflection angles (…, 2) of an ExternalShear (γ1, γ2) centred on the origin."""
    y, x = points[..., 0], points[..., 1]
    g1, g2 = shear[0], shear[1]
    return jnp.stack([g2 * x - g1 * y, g1 * x + g2 * y], axis=-1)


def ray_trace(points: jnp.ndarray, mass: MassParameters) -> jnp.ndarray:
    """Source-plane positions β = θ − α(θ) of image-plane points (…, 2)."""
    alpha = DEFLECTIONS[mass.profile](points, **mass.values)
    if mass.shear is not None:
        alpha = alpha + shear_deflections(points, mass.shear)
    return points - alpha

