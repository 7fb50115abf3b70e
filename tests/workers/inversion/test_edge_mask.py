"""A mask within the PSF's half-width of the image edge equals PyAutoLens: the blurring region reaches past the
image (PyAutoArray's allow_padding), so lens and source light just outside the frame blurs into the mask.

C0 cut to its central 64×64 (mask 3.0" ends 2 pixels from each edge, 11×11 PSF), reference2's `ll_sie_mge` at
C0's truth: the blurring-pixel count equals PyAutoLens's, every term within 1e-4 and the reconstruction within
1e-4 of its largest value. PyAutoLens's numbers: benchmarks/pyautolens_edge_mask.py → tests/data/edge_mask_C0.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from reference_cases import REFERENCE2, assert_equals_pyautolens, reference2_model
from storage.datasets import load_imaging
from workers.inversion.fit import fit
from workers.inversion.imaging import prepare_imaging
from workers.model.description import vector_from_params

RECORD = json.loads((Path(__file__).parents[2] / "data" / "edge_mask_C0.json").read_text())
TERMS = ("figure_of_merit", "log_likelihood", "chi_squared", "noise_normalization")


def test_a_mask_at_the_image_edge_blurs_in_light_from_outside_the_image_as_pyautolens_does():
    folder = REFERENCE2 / "datasets" / "C0"
    truth = json.loads((folder / "truth.json").read_text())
    data = load_imaging(str(folder), dataset_id="C0")
    cut = slice(RECORD["crop"], -RECORD["crop"])
    imaging = prepare_imaging(data.image[cut, cut], data.noise_map[cut, cut], data.psf, data.pixel_scale,
                              mask_radius=truth["mask_radius"], over_sample_size_lp=2, over_sample_size_pixelization=2)
    assert imaging.bucket.blurring == RECORD["blurring_pixels"]

    model = reference2_model("ll_sie_mge")
    light, source = truth["lens_light"], truth["sources"][0]
    params = {
        "lens": {"mass": {k: truth["mass"][k] for k in ("centre", "ell_comps", "einstein_radius")},
                 "shear": truth["shear"], "light": {"centre": light["centre"], "ell_comps": light["ell_comps"]}},
        "source": {"centre": source["centre"], "ell_comps": source["ell_comps"]},
    }
    result = fit(imaging, vector_from_params(model, params), model, with_arrays=True)
    assert_equals_pyautolens(result, RECORD, TERMS)
