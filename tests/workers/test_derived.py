"""Derived quantities: axis ratio and angle invert the ell_comps convention, the shear's magnitude and angle
invert (γ1, γ2), and the intermediate-axis Einstein radius is the radius inside which the mean convergence of
PyAutoLens's profile is 1 (checked by integrating the convergence on a fine grid)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from workers.derived import derived_names, derived_values

SIE = ("lens.mass.centre.0", "lens.mass.centre.1", "lens.mass.ell_comps.0", "lens.mass.ell_comps.1",
       "lens.mass.einstein_radius", "lens.shear.gamma_1", "lens.shear.gamma_2")
POWER_LAW = (*SIE[:5], "lens.mass.slope", *SIE[5:])


def ell_comps(q: float, angle: float) -> tuple[float, float]:
    f = (1 - q) / (1 + q)
    return f * np.sin(np.radians(2 * angle)), f * np.cos(np.radians(2 * angle))


def mean_convergence_inside(b: float, q: float, kappa) -> float:
    """Mean of kappa(x', y') over the ellipse √(q x'² + y'²/q) < b (area π b²). kappa is constant on the ellipses
    x'² + y'²/q² = η² (PyAutoLens's profiles), whose area is π q η², so the integral is over η along the major axis:
    ∫ κ(η, 0) 2π q η dη from 0 to b/√q."""
    integral, _ = quad(lambda eta: kappa(eta, 0.0) * 2 * np.pi * q * eta, 0.0, b / np.sqrt(q), limit=200)
    return integral / (np.pi * b**2)


def test_names_follow_the_model():
    assert derived_names(SIE) == ("lens.mass.axis_ratio", "lens.mass.angle", "lens.mass.einstein_radius_intermediate",
                                  "lens.shear.magnitude", "lens.shear.angle")
    assert derived_names(SIE[:5]) == derived_names(SIE)[:3]


@pytest.mark.parametrize("q, angle", [(0.7, 30.0), (0.5, 120.0), (0.9, -20.0)])
def test_axis_ratio_angle_and_shear_invert_their_components(q, angle):
    e0, e1 = ell_comps(q, angle)
    magnitude, shear_angle = 0.05, 160.0
    g1, g2 = magnitude * np.cos(np.radians(2 * shear_angle)), magnitude * np.sin(np.radians(2 * shear_angle))
    values = derived_values(SIE, np.array([0.0, 0.0, e0, e1, 1.2, g1, g2]))
    np.testing.assert_allclose(values[[0, 1, 3, 4]], [q, angle, magnitude, shear_angle], atol=1e-12)


@pytest.mark.parametrize("q, slope", [(0.7, 2.0), (0.5, 2.0), (0.6, 1.8), (0.8, 2.3)])
def test_intermediate_einstein_radius_encloses_unit_mean_convergence(q, slope):
    theta_e = 1.3
    e0, e1 = ell_comps(q, 0.0)
    vector = np.array([0.0, 0.0, e0, e1, theta_e, slope, 0.0, 0.0])
    b = derived_values(POWER_LAW, vector)[2]

    def kappa(x, y):  # PyAutoGalaxy's PowerLaw (the Isothermal at slope 2): (3−γ)/(1+q)·(θE/η)^(γ−1)
        eta = np.sqrt(x**2 + y**2 / q**2)
        return (3 - slope) / (1 + q) * (theta_e / eta) ** (slope - 1)

    assert mean_convergence_inside(b, q, kappa) == pytest.approx(1.0, rel=1e-9)
    if slope == 2.0:
        assert b == pytest.approx(theta_e * 2 * np.sqrt(q) / (1 + q), rel=1e-12)
        isothermal = derived_values(SIE, np.delete(vector, 5))[2]
        assert isothermal == pytest.approx(b, rel=1e-12)
