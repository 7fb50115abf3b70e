"""MGE inversions equal PyAutoLens's on the reference lenses (cases mge and mge_pos, four mass models each)."""

from __future__ import annotations

import numpy as np
import pytest

from reference_cases import MASS_MODELS, case_model, reference_array
from workers.inversion.batch import evaluate
from workers.inversion.fit import TERMS

REPORTED_TERMS = TERMS + ("log_likelihood",)


def _fits(reference_lens, case, mixed=False):
    vectors = reference_lens.vectors(case, with_source=True)
    return evaluate(reference_lens.imaging, vectors, case_model(case, mixed), with_arrays=True)


@pytest.mark.parametrize("case", ["mge", "mge_pos"])
def test_every_term_equals_pyautolens_fp64(reference_lens, case):
    result = _fits(reference_lens, case)
    for i, mass_model in enumerate(MASS_MODELS):
        expected = reference_lens.case(case)[mass_model]["numpy"]
        for term in REPORTED_TERMS:
            assert abs(float(getattr(result, term)[i]) - expected[term]) <= 1e-4, (mass_model, term)


@pytest.mark.parametrize("case", ["mge", "mge_pos"])
def test_model_image_and_reconstruction_equal_pyautolens(reference_lens, case):
    result = _fits(reference_lens, case)
    for i, mass_model in enumerate(MASS_MODELS):
        record = reference_lens.case(case)[mass_model]
        model_image = reference_array(record, "model_image_file")
        assert np.abs(np.asarray(result.model_image[i]) - model_image).max() <= 1e-6 * np.abs(model_image).max()
        reconstruction = reference_array(record, "reconstruction_file")
        assert np.abs(np.asarray(result.reconstruction[i]) - reconstruction).max() <= 1e-4 * np.abs(reconstruction).max()


@pytest.mark.parametrize("case, tolerance", [("mge", 0.1), ("mge_pos", 2e-3)])
def test_mixed_precision_stays_close_to_fp64(reference_lens, case, tolerance):
    fp64 = _fits(reference_lens, case)
    mixed = _fits(reference_lens, case, mixed=True)
    deviation = np.abs(np.asarray(mixed.figure_of_merit) - np.asarray(fp64.figure_of_merit))
    assert deviation.max() <= tolerance
    assert deviation.max() > 0  # the policy really lowered precision somewhere
