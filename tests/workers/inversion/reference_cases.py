"""Reference datasets and PyAutoLens's numbers for them (../shared/reference)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storage.datasets import load_imaging
from workers.inversion.imaging import MaskedImaging, prepare_imaging
from workers.model.description import MGEBasis, Model, RectangularSource
from workers.model.settings import Settings

REFERENCE = Path(__file__).resolve().parents[4] / "shared" / "reference"
REFERENCE_JSON = json.loads((REFERENCE / "reference.json").read_text())
DATASETS = ("A0", "B0")
MASS_MODELS = ("true", "einstein_radius_plus2pc", "einstein_radius_minus2pc", "ell_comps_shift_0p02")


@dataclass(frozen=True)
class ReferenceLens:
    """A reference dataset, masked and over-sampled as PyAutoLens fitted it (2×2 for both grids)."""

    name: str
    truth: dict
    imaging: MaskedImaging

    def case(self, case: str) -> dict:
        """reference.json records of one case, keyed by mass model."""
        return REFERENCE_JSON["datasets"][self.name]["cases"][case]

    def source_vector(self) -> list[float]:
        source = self.truth["sources"][0]
        return list(source["centre"]) + list(source["ell_comps"])

    def vectors(self, case: str, with_source: bool) -> np.ndarray:
        """(4, n) parameter vectors of the four mass models, in MASS_MODELS order."""
        extra = self.source_vector() if with_source else []
        return np.array([self.case(case)[m]["mass_params"] + extra for m in MASS_MODELS])


def reference_array(record: dict, key: str) -> np.ndarray:
    return np.load(REFERENCE / record[key])


def case_model(case: str, use_mixed_precision: bool = False) -> Model:
    """The lens model and settings PyAutoLens used for a reference case."""
    settings = dict(REFERENCE_JSON["settings"]["cases"][case]["settings"])
    if case.startswith("mge"):
        source = MGEBasis(gaussians=20, sigma_min=0.01)
    else:
        source = RectangularSource(shape=(20, 20), regularization=1.0)
    return Model(source=source, shear=True, settings=Settings(use_mixed_precision=use_mixed_precision, **settings))


def load_reference_lens(name: str) -> ReferenceLens:
    folder = REFERENCE / "datasets" / name
    truth = json.loads((folder / "truth.json").read_text())
    data = load_imaging(str(folder), dataset_id=name)
    imaging = prepare_imaging(
        data.image, data.noise_map, data.psf, data.pixel_scale, mask_radius=truth["mask_radius"],
        over_sample_size_lp=2, over_sample_size_pixelization=2,
    )
    return ReferenceLens(name=name, truth=truth, imaging=imaging)
