"""An MGE lens light of two sets (one centre, each set of Gaussians its own ell_comps: PyAutoLens's
`mge_model_from(gaussian_per_basis=2)`, the Euclid pipeline's lens light) equals PyAutoLens on C0: every term
within 1e-4 and the reconstruction within 1e-4 of its largest value. The PyAutoLens numbers are its own fit,
made by benchmarks/pyautolens_two_set_mge.py into tests/data/two_set_mge_C0.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from reference_cases import load_reference_lens
from workers.inversion.fit import fit
from workers.model.description import Isothermal, MGEBasis, Model, parameter_names, vector_from_params
from workers.model.settings import Settings

RECORD = json.loads((Path(__file__).parents[2] / "data" / "two_set_mge_C0.json").read_text())


def _model() -> Model:
    mge = MGEBasis(gaussians=RECORD["gaussians"], sigma_min=RECORD["sigma_min"])
    return Model(source=mge, shear=True, lens_light=MGEBasis(mge.gaussians, mge.sigma_min, bases=2),
                 settings=Settings(use_positive_only_solver=True), mass=Isothermal())


def test_two_sets_name_four_lens_light_ell_comps():
    names = parameter_names(_model())
    assert [n for n in names if n.startswith("lens.light.ell_comps")] == [
        f"lens.light.ell_comps.{i}" for i in range(4)]
    assert _model().n_linear == 3 * RECORD["gaussians"]


def test_two_set_lens_light_equals_pyautolens_on_C0():
    lens = load_reference_lens("C0")
    model = _model()
    params = {
        "lens": {"mass": RECORD["mass"], "shear": RECORD["shear"],
                 "light": {"centre": RECORD["lens_light_centre"], "ell_comps": sum(RECORD["sets"], [])}},
        "source": {"centre": RECORD["source_centre"], "ell_comps": RECORD["source_ell_comps"]},
    }
    result = fit(lens.imaging, vector_from_params(model, params), model, with_arrays=True)
    for term, expected in RECORD["terms"].items():
        assert abs(float(getattr(result, term)) - expected) < 1e-4, term
    reconstruction = np.asarray(RECORD["reconstruction"])
    ours = np.asarray(result.reconstruction)[: reconstruction.size]
    np.testing.assert_allclose(ours, reconstruction, rtol=0, atol=1e-4 * np.abs(reconstruction).max())
