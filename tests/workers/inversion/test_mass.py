"""Mass profiles: Isothermal (near-round series, round limit), PowerLaw (PyAutoGalaxy's values, its isothermal
and spherical limits, gradients), shear, and the registry ray tracing dispatches by."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import inspect

import pytest

from workers.inversion.mass import DEFLECTIONS, isothermal_deflections, power_law_deflections, shear_deflections
from workers.model.description import MASS_PROFILES

POINTS = jnp.array([[0.3, 1.2], [-1.0, 0.4], [0.8, -0.9]])


def test_round_isothermal_deflects_by_the_einstein_radius_radially():
    alpha = isothermal_deflections(POINTS, jnp.zeros(2), jnp.zeros(2), jnp.float64(1.5))
    r = np.linalg.norm(np.asarray(POINTS), axis=1)
    np.testing.assert_allclose(alpha, 1.5 * np.asarray(POINTS) / r[:, None], rtol=1e-12)


def test_series_and_exact_forms_meet_at_the_switch():
    # 1 − q² = 1e-4 is the switch; just either side the two forms must agree to the series' order.
    def deflect(f):
        return isothermal_deflections(POINTS, jnp.array([0.05, -0.02]), jnp.array([0.0, f]), jnp.float64(1.2))
    f_switch = (1 - np.sqrt(1 - 1e-4)) / (1 + np.sqrt(1 - 1e-4))
    below, above = deflect(f_switch * 0.999), deflect(f_switch * 1.001)
    np.testing.assert_allclose(below, above, atol=1e-8)


def test_gradient_is_finite_at_exactly_round():
    def total(ell):
        return jnp.sum(isothermal_deflections(POINTS, jnp.zeros(2), ell, jnp.float64(1.0)))
    grad = jax.grad(total)(jnp.zeros(2))
    assert np.all(np.isfinite(grad))


def test_shear_field():
    alpha = shear_deflections(jnp.array([[1.0, 2.0]]), jnp.array([0.1, 0.05]))
    # α_x = γ1·x + γ2·y = 0.1·2 + 0.05·1; α_y = γ2·x − γ1·y = 0.05·2 − 0.1·1
    np.testing.assert_allclose(alpha, [[0.0, 0.25]], atol=1e-15)


# PyAutoGalaxy 2026.10.26.1: al.mp.PowerLaw(centre=(0.05, -0.02), ell_comps, einstein_radius, slope)
# .deflections_yx_2d_from(grid=al.Grid2DIrregular(POWER_LAW_POINTS), xp=jnp), (y, x) per point.
POWER_LAW_POINTS = jnp.array([[0.3, 1.2], [-1.0, 0.4], [0.8, -0.9], [0.05, 0.02]])
PYAUTOGALAXY_POWER_LAW = [
    (((0.2, -0.3), 1.2, 1.7), [[0.00544538943905076, 1.3834080586920723], [-0.9422087254676796, 0.7462728547339997],
                               [0.7031146677371841, -1.179412958269374], [-0.0623247656993877, 0.504661524231804]]),
    (((0.03, 0.09), 1.6, 2.3), [[0.3356018698858551, 1.601487671846932], [-1.628702310189752, 0.6151365939257208],
                                [1.1701289958466248, -1.2470584470125645], [-0.07803624096775208, 4.594236803601163]]),
]


@pytest.mark.parametrize("profile, expected", PYAUTOGALAXY_POWER_LAW)
def test_power_law_equals_pyautogalaxy(profile, expected):
    ell_comps, einstein_radius, slope = profile
    alpha = power_law_deflections(POWER_LAW_POINTS, jnp.array([0.05, -0.02]), jnp.array(ell_comps),
                                  jnp.float64(einstein_radius), jnp.float64(slope))
    np.testing.assert_allclose(alpha, expected, rtol=1e-13, atol=1e-14)


def test_power_law_of_slope_2_is_the_isothermal():
    args = (POINTS, jnp.array([0.05, -0.02]), jnp.array([0.1, -0.15]), jnp.float64(1.3))
    np.testing.assert_allclose(power_law_deflections(*args, jnp.float64(2.0)), isothermal_deflections(*args),
                               rtol=1e-12, atol=1e-13)


def test_round_power_law_deflects_radially_by_its_spherical_law():
    # α(r) = θE^(γ−1)·r^(2−γ) for q = 1
    alpha = power_law_deflections(POINTS, jnp.zeros(2), jnp.zeros(2), jnp.float64(1.4), jnp.float64(2.4))
    r = np.linalg.norm(np.asarray(POINTS), axis=1)
    np.testing.assert_allclose(alpha, (1.4**1.4 * r**-0.4)[:, None] * np.asarray(POINTS) / r[:, None], rtol=1e-12)


def test_power_law_gradients_are_finite_at_its_centre_and_when_round():
    def total(theta, points):
        return jnp.sum(power_law_deflections(points, theta[:2], theta[2:4], theta[4], theta[5]))
    centre = jnp.array([[0.05, -0.02], [0.5, 0.5]])
    for theta in (jnp.array([0.05, -0.02, 0.1, 0.2, 1.2, 2.1]), jnp.array([0.05, -0.02, 0.0, 0.0, 1.2, 1.9])):
        grad = jax.grad(total)(theta, centre)
        assert np.all(np.isfinite(grad)) and grad[5] != 0.0


def test_every_mass_profile_has_deflections_taking_its_declared_parameters():
    assert set(DEFLECTIONS) == set(MASS_PROFILES)
    for name, profile in MASS_PROFILES.items():
        signature = list(inspect.signature(DEFLECTIONS[name]).parameters)
        assert signature == ["points"] + [parameter for parameter, _ in profile.parameters], name
