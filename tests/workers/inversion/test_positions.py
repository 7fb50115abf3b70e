"""The multiple images of a source position (an isothermal sphere's are known exactly; an SIE + shear's must all
trace back to the source) and the positions penalty."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from workers.inversion.mass import ray_trace
from workers.inversion.parameters import MassParameters
from reference_cases import case_model, load_reference_lens
from workers.inversion.positions import (
    PENALTY_FACTOR,
    dataset_positions,
    image_positions,
    penalised,
    positions_threshold,
    source_plane_separation,
)


def _isothermal(ell_comps=(0.0, 0.0), shear=None, einstein_radius=1.0) -> MassParameters:
    values = {"centre": jnp.zeros(2), "ell_comps": jnp.asarray(ell_comps),
              "einstein_radius": jnp.asarray(einstein_radius)}
    return MassParameters("isothermal", values, None if shear is None else jnp.asarray(shear))


def test_an_isothermal_sphere_images_a_source_at_beta_plus_and_minus_its_einstein_radius():
    images = image_positions(_isothermal(), np.array([0.0, 0.2]), lower=(-2.0, -2.0), upper=(2.0, 2.0), spacing=0.05, central_radius=0.1)
    order = np.argsort(images[:, 1])
    np.testing.assert_allclose(images[order], [[0.0, -0.8], [0.0, 1.2]], atol=1e-8)


def test_an_sie_with_shear_has_four_images_of_a_central_source_and_two_of_an_outer_one():
    mass = _isothermal(ell_comps=(0.1, -0.15), shear=(0.03, 0.02))
    for source, count in (((0.02, 0.03), 4), ((0.3, 0.5), 2)):
        images = image_positions(mass, np.array(source), lower=(-2.5, -2.5), upper=(2.5, 2.5), spacing=0.04, central_radius=0.1)
        assert len(images) == count, (source, images)
        np.testing.assert_allclose(np.asarray(ray_trace(jnp.asarray(images), mass)),
                                   np.broadcast_to(source, images.shape), atol=1e-6)
        valid = jnp.ones(len(images), bool)
        assert float(source_plane_separation(jnp.asarray(images), valid, mass)) < 1e-6


def test_the_threshold_and_the_penalty():
    mass = _isothermal()
    images = np.array([[0.0, -0.8], [0.0, 1.2], [5.0, 5.0]])
    valid = jnp.array([True, True, False])  # a padding row does not count
    assert float(source_plane_separation(jnp.asarray(images), valid, mass)) < 1e-12
    wrong = _isothermal(einstein_radius=0.5)  # traces the two images 1.0 apart in the source plane
    separation = float(source_plane_separation(jnp.asarray(images), valid, wrong))
    np.testing.assert_allclose(separation, 1.0, atol=1e-12)
    assert positions_threshold(images[:2], mass, factor=3.0, minimum_threshold=0.2) == 0.2
    assert positions_threshold(images[:2], wrong, factor=3.0, minimum_threshold=0.2) == 3.0 * separation
    assert float(penalised(jnp.asarray(10.0), jnp.asarray(0.1), jnp.asarray(0.2), jnp.asarray(-500.0))) == 10.0
    expected = -500.0 - PENALTY_FACTOR * (separation - 0.2)
    value = penalised(jnp.asarray(10.0), jnp.asarray(separation), jnp.asarray(0.2), jnp.asarray(-500.0))
    assert float(value) == expected


def test_a_dataset_whose_source_has_fewer_than_two_images_gets_no_threshold_and_no_error():
    lens, model = load_reference_lens("A0"), case_model("mge")
    vector = lens.vectors("mge", with_source=True)[0]
    images, threshold = dataset_positions(lens.imaging, model, vector, model, vector, 3.0, 0.2)
    assert len(images) >= 2 and threshold >= 0.2
    outside = vector.copy()
    outside[-4:-2] = 8.0  # the source centre far beyond the caustics: its one image lies outside the mask's box
    images, threshold = dataset_positions(lens.imaging, model, outside, model, vector, 3.0, 0.2)
    assert images.shape == (0, 2) and np.isnan(threshold)
