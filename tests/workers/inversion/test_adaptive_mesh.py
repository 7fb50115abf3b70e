"""The adaptive rectangular meshes' pieces: the interpolated kernel CDF against the exact sum PyAutoArray takes, the
padded-array interpolation against jnp.interp, the shape of the mapping (guard cells, weights), the registry.
Their whole-fit agreement with PyAutoLens (padded to a bucket too) is test_reference2.py's."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reference_cases import load_reference_lens, reference2_model, reference2_records, reference2_vector
from workers.inversion import adaptive_mesh
from workers.inversion.mass import ray_trace
from workers.inversion.mesh import MESH_MAPPINGS
from workers.inversion.parameters import unpack
from workers.model.description import MESHES, RectangularSource


@functools.cache
def _traced():
    """A0's traced sub-pixels and centres at reference2's true lens."""
    lens = load_reference_lens("A0")
    model = reference2_model("rtu_pos_edge0")
    vector = reference2_vector(lens, model, reference2_records("A0", "rtu_pos_edge0")["true"])
    mass = unpack(model, jnp.asarray(vector)).mass
    imaging = lens.imaging
    return ray_trace(imaging.pix_points, mass), ray_trace(imaging.pixel_centres, mass), imaging


def test_interpolated_kernel_cdf_equals_the_exact_sum():
    points, centres, imaging = _traced()
    mu, sigma, count = adaptive_mesh._scaling(centres, imaging.valid)
    scaled, u = (centres - mu) / sigma, (points[::3] - mu) / sigma
    low, high = scaled.min(axis=0), scaled.max(axis=0)
    h = adaptive_mesh.KERNEL_BANDWIDTH * (high - low) / 20
    weights = imaging.valid / count
    interpolated, ends = jax.jit(adaptive_mesh.chebyshev_kernel_cdf, static_argnums=6)(
        u, scaled, weights, low, high - low, h, 20)
    exact = jax.jit(adaptive_mesh.kernel_cdf)(jnp.clip(u, low, high), scaled, weights, h)
    assert np.abs(np.asarray(interpolated - exact)).max() <= 1e-13
    exact_ends = adaptive_mesh.kernel_cdf(jnp.stack([low, high]), scaled, weights, h)
    np.testing.assert_allclose(ends, exact_ends, rtol=1e-14, atol=0)


def test_interpolation_over_a_padded_prefix_equals_jnp_interp():
    rng = np.random.default_rng(0)
    xp = np.sort(np.round(rng.normal(size=40), 1))  # ties included
    fp = np.arange(1, 41) / 41.0
    x = np.concatenate([rng.normal(size=200) * 1.5, xp, [xp[0] - 1, xp[-1] + 1]])
    padded_xp = np.concatenate([xp, np.full(24, xp[-1])])
    padded_fp = np.concatenate([fp, np.arange(41, 65) / 41.0])
    ours = adaptive_mesh._interp(jnp.asarray(x), jnp.asarray(padded_xp), jnp.asarray(padded_fp), jnp.int32(40),
                                 0.0, 1.0)
    np.testing.assert_allclose(ours, jnp.interp(x, xp, fp, left=0.0, right=1.0), rtol=1e-15, atol=0)  # to round-off


@pytest.mark.parametrize("mesh", ["bilinear_adapt_density", "rtu_adapt_density"])
def test_adaptive_mapping_uses_pyautoarrays_guard_cells_and_weights_summing_to_one(mesh):
    points, centres, imaging = _traced()
    cells, weights, cell_centres = jax.jit(MESH_MAPPINGS[mesh], static_argnums=4)(
        points, imaging.pix_weight, centres, imaging.valid, (20, 20))
    cells, weights = np.asarray(cells), np.asarray(weights)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
    reached = np.zeros(400)
    np.add.at(reached, cells.ravel(), np.abs(weights).ravel())
    reached = reached.reshape(20, 20) > 0
    # PyAutoArray's guard cells: rows 0-1 and the first and last columns; the bottom row carries flux
    assert not reached[:2].any() and not reached[:, 0].any() and not reached[:, -1].any()
    assert reached[2:, 1:-1].all()
    # cell centres ascend along x across a row and descend along y down a column, inside the traced centres' box
    grid = np.asarray(cell_centres).reshape(20, 20, 2)
    assert np.all(np.diff(grid[:, 0, 0]) <= 0) and np.all(np.diff(grid[0, :, 1]) >= 0)
    low, high = np.asarray(centres).min(axis=0), np.asarray(centres).max(axis=0)
    assert np.all(grid >= low - 1e-12) and np.all(grid <= high + 1e-12)


def test_every_mesh_is_in_the_registry_and_adaptive_ones_are_square():
    assert set(MESH_MAPPINGS) == set(MESHES)
    RectangularSource((16, 24))
    for mesh in MESHES[1:]:
        with pytest.raises(ValueError, match="square"):
            RectangularSource((16, 24), mesh=mesh)
    with pytest.raises(ValueError, match="one of uniform"):
        RectangularSource((20, 20), mesh="delaunay")
