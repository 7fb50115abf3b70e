"""The adapt-image rectangular meshes (PyAutoArray's RectangularBilinearAdaptImage and RectangularRTUAdaptImage)
equal PyAutoLens's on reference A0 and B0 with PyAutoLens's own adapt image (tests/data/adapt_image.json, made by
benchmarks/pyautolens_adapt_image.py), and the adapt image a pipeline stage takes from the stage before is
PyAutoGalaxy's (the source's subtracted signal-to-noise map, floored)."""

from __future__ import annotations

import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from reference_cases import assert_equals_pyautolens, load_reference_lens
from workers.inversion.adapt import ADAPT_MINIMUM_PERCENT, adapt_image
from workers.inversion.fit import TERMS, fit, lens_light_image
from workers.inversion.imaging import with_adapt_image
from workers.model.description import Isothermal, MGEBasis, Model, RectangularSource, vector_from_params
from workers.model.settings import Settings

DATA = json.loads((Path(__file__).resolve().parents[2] / "data" / "adapt_image.json").read_text())
CASES = [(name, case, mass) for name, entry in DATA["datasets"].items() for case, records in entry["cases"].items()
         for mass, record in records.items() if isinstance(record, dict) and "mass_params" in record]
MESHES = {"RectangularBilinearAdaptImage": "bilinear_adapt_image", "RectangularRTUAdaptImage": "rtu_adapt_image"}
_LENSES: dict = {}


def _lens(name):
    if name not in _LENSES:
        _LENSES[name] = load_reference_lens(name)
    return _LENSES[name]


def _model(name: str, case: str, mixed: bool = False) -> Model:
    spec = DATA["datasets"][name]["cases"][case]["mesh"]
    source = RectangularSource(tuple(DATA["mesh_shape"]), DATA["regularization_coefficient"], MESHES[spec["class"]],
                               spec["weight_power"], spec["weight_floor"])
    return Model(source=source, shear=True, mass=Isothermal(),
                 settings=Settings(use_mixed_precision=mixed, use_positive_only_solver=True,
                                   use_edge_zeroed_pixels=True, use_border_relocator=False))


def _fit(name: str, case: str, mass: str, mixed: bool = False):
    record = DATA["datasets"][name]["cases"][case][mass]
    model = _model(name, case, mixed)
    m = dict(zip(("c0", "c1", "e0", "e1", "r", "slope", "g1", "g2"), record["mass_params"]))
    vector = vector_from_params(model, {"lens": {
        "mass": {"centre": [m["c0"], m["c1"]], "ell_comps": [m["e0"], m["e1"]], "einstein_radius": m["r"]},
        "shear": {"gamma_1": m["g1"], "gamma_2": m["g2"]}}})
    imaging = _lens(name).imaging
    image = np.asarray(DATA["datasets"][name]["adapt_image"])
    assert image.shape == (int(np.asarray(imaging.valid).sum()),)
    return fit(with_adapt_image(imaging, np.pad(image, (0, imaging.bucket.pixels - len(image)))), jnp.asarray(vector),
               model, with_arrays=True)


@pytest.mark.parametrize("name, case, mass", CASES)
def test_every_term_equals_pyautolens(name, case, mass):
    record = DATA["datasets"][name]["cases"][case][mass]
    assert_equals_pyautolens(_fit(name, case, mass), record, TERMS)


@pytest.mark.parametrize("name, case, mass", [c for c in CASES if c[2] == "true"])
def test_mixed_precision_stays_within_1e_3_of_pyautolens_fp64(name, case, mass):
    record = DATA["datasets"][name]["cases"][case][mass]
    assert abs(float(_fit(name, case, mass, mixed=True).figure_of_merit) - record["figure_of_merit"]) < 1e-3


def test_the_adapt_image_weights_the_mesh():
    # the same fit with a flat adapt image is a different mesh: the image is used, not ignored
    name, case, mass = CASES[0]
    record = DATA["datasets"][name]["cases"][case][mass]
    model = _model(name, case)
    imaging = _lens(name).imaging
    vector = jnp.asarray([*record["mass_params"][:5], *record["mass_params"][6:]])
    image = np.asarray(DATA["datasets"][name]["adapt_image"])
    given = fit(with_adapt_image(imaging, np.pad(image, (0, imaging.bucket.pixels - len(image)))), vector, model)
    flat = fit(with_adapt_image(imaging, np.ones(imaging.bucket.pixels)), vector, model)
    assert abs(float(given.figure_of_merit) - float(flat.figure_of_merit)) > 1.0


def test_a_stage_takes_the_source_signal_to_noise_of_the_fit_before():
    # C0 has a lens light: the adapt image is (data − the lens light's model image)/σ at the earlier fit, floored at
    # 1% of its maximum (PyAutoGalaxy's adapt_minimum_percent), 0 on padding
    lens = _lens("C0")
    light = MGEBasis(20, 0.01)
    model = Model(source=MGEBasis(20, 0.01), lens_light=light, mass=Isothermal(), shear=True)
    truth = lens.truth
    vector = vector_from_params(model, {
        "lens": {"mass": {"centre": truth["mass"]["centre"], "ell_comps": truth["mass"]["ell_comps"],
                          "einstein_radius": truth["mass"]["einstein_radius"]},
                 "shear": {"gamma_1": 0.0, "gamma_2": 0.0},
                 "light": {"centre": truth["lens_light"]["centre"], "ell_comps": truth["lens_light"]["ell_comps"]}},
        "source": {"centre": truth["sources"][0]["centre"], "ell_comps": truth["sources"][0]["ell_comps"]}})
    imaging = lens.imaging
    image = adapt_image(imaging, vector, model)
    result = fit(imaging, jnp.asarray(vector), model, with_arrays=True)
    subtracted = (np.asarray(imaging.data) - np.asarray(lens_light_image(imaging, jnp.asarray(vector), model,
                                                                         result.reconstruction)))
    snr = subtracted / np.asarray(imaging.noise_map)
    valid = np.asarray(imaging.valid) > 0
    np.testing.assert_allclose(image[valid], np.maximum(snr[valid], ADAPT_MINIMUM_PERCENT * snr[valid].max()))
    assert (image[~valid] == 0).all()
    # the lens light is what it removes: at the centre the data's own signal-to-noise is far above the source's
    centre = np.argmin(np.hypot(*np.asarray(imaging.pixel_centres).T))
    assert (np.asarray(imaging.data) / np.asarray(imaging.noise_map))[centre] > 5 * image[centre]


def test_mesh_weights_are_pyautoarrays_and_never_nan():
    from workers.inversion.adaptive_mesh import mesh_weights

    valid = jnp.array([1.0, 1.0, 1.0, 0.0])  # the last entry padding
    image = jnp.array([1.0, 2.0, 3.0, 9.0])
    np.testing.assert_allclose(mesh_weights(image, valid, 1.0, 0.0), [1 / 6, 2 / 6, 3 / 6, 0.0])
    np.testing.assert_allclose(mesh_weights(image, valid, 2.0, 5.0), [5 / 19, 5 / 19, 9 / 19, 0.0])  # floored
    # an image of zeros (a stage's imaging before its adapt image is set) raised to a high power underflows:
    # equal weights, the density mesh, rather than 0/0
    np.testing.assert_allclose(mesh_weights(jnp.zeros(4), valid, 30.0, 0.0), [1 / 3, 1 / 3, 1 / 3, 0.0])
