"""Isothermal and shear deflections: the near-round series and the round limit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from workers.inversion.mass import isothermal_deflections, shear_deflections

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
