"""Reference datasets and PyAutoLens's numbers for them: ../shared/reference (A0, B0: Isothermal, MGE and uniform
rectangular sources) and ../shared/reference2 (A0, B0 and C0: PowerLaw, adaptive meshes, lens light)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from shared_data import REFERENCE, REFERENCE2
from storage.datasets import load_imaging
from workers.inversion.imaging import MaskedImaging, prepare_imaging
from workers.model.description import Isothermal, MGEBasis, Model, PowerLaw, RectangularSource, vector_from_params
from workers.model.settings import Settings

REFERENCE_JSON = json.loads((REFERENCE / "reference.json").read_text())
REFERENCE2_JSON = json.loads((REFERENCE2 / "reference2.json").read_text())
DATASETS = ("A0", "B0")
MASS_MODELS = ("true", "einstein_radius_plus2pc", "einstein_radius_minus2pc", "ell_comps_shift_0p02")
# reference2's source kinds → our RectangularSource.mesh
REFERENCE2_MESHES = {"rect": "uniform", "bilinear": "bilinear_adapt_density", "rtu": "rtu_adapt_density"}


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
    folder = REFERENCE2 / "datasets" / name if name == "C0" else REFERENCE / "datasets" / name
    truth = json.loads((folder / "truth.json").read_text())
    data = load_imaging(str(folder), dataset_id=name)
    imaging = prepare_imaging(
        data.image, data.noise_map, data.psf, data.pixel_scale, mask_radius=truth["mask_radius"],
        over_sample_size_lp=2, over_sample_size_pixelization=2,
    )
    return ReferenceLens(name=name, truth=truth, imaging=imaging)


# --- reference2 ---------------------------------------------------------------------------------------------


def reference2_records(name: str, case: str) -> dict:
    """reference2.json records of one dataset and case, keyed by mass model (in the file's order)."""
    return REFERENCE2_JSON["datasets"][name]["cases"][case]


def reference2_array(record: dict, precision: str, kind: str) -> np.ndarray:
    """A record's `reconstruction` or `model_image` for precision "jax_fp64" or "jax_mp"."""
    return np.load(REFERENCE2 / record[f"{precision}_{kind}_file"])


def reference2_model(case: str, use_mixed_precision: bool = False) -> Model:
    """The lens model and settings PyAutoLens used for a reference2 case."""
    spec = REFERENCE2_JSON["cases"][case]
    mge = MGEBasis(gaussians=REFERENCE2_JSON["mge"]["total_gaussians"], sigma_min=REFERENCE2_JSON["mge"]["sigma_min"])
    if spec["source"] == "mge":
        source = mge
    else:
        shape = tuple(REFERENCE2_JSON["mesh_shape"])
        coefficient = REFERENCE2_JSON["regularization_coefficient"]
        source = RectangularSource(shape, coefficient, REFERENCE2_MESHES[spec["source"]])
    return Model(
        source=source,
        shear=True,
        lens_light=mge if spec["lens_light"] else None,
        settings=Settings(use_mixed_precision=use_mixed_precision, **spec["settings"]),
        mass={"PowerLaw": PowerLaw, "Isothermal": Isothermal}[spec["mass"]](),
    )


def reference2_vector(lens: ReferenceLens, model: Model, record: dict) -> np.ndarray:
    """A record's parameter vector for `model`: its mass_params (slope dropped for an Isothermal), the truth's
    lens-light centre and ell_comps, and the first source's for an MGE source."""
    order = REFERENCE2_JSON["mass_param_order"]
    m = dict(zip(order, record["mass_params"]))
    mass = {"centre": [m["centre_0"], m["centre_1"]], "ell_comps": [m["ell_comps_0"], m["ell_comps_1"]],
            "einstein_radius": m["einstein_radius"], "slope": m["slope"]}
    params = {"lens": {"mass": mass, "shear": {"gamma_1": m["gamma_1"], "gamma_2": m["gamma_2"]}}}
    if model.lens_light is not None:
        light = lens.truth["lens_light"]
        params["lens"]["light"] = {"centre": light["centre"], "ell_comps": light["ell_comps"]}
    if not model.pixelized:
        first = lens.truth["sources"][0]
        params["source"] = {"centre": first["centre"], "ell_comps": first["ell_comps"]}
    return vector_from_params(model, params)


def assert_equals_pyautolens(result, record: dict, terms) -> None:
    """The issues' tolerances: each of `terms` of a fit (FitResult) within 1e-4 absolute of PyAutoLens's record,
    the reconstruction within 1e-4 of the record's largest value."""
    for term in terms:
        value = float(getattr(result, term))
        assert abs(value - record[term]) < 1e-4, (term, value, record[term])
    expected = np.asarray(record["reconstruction"])
    assert np.abs(np.asarray(result.reconstruction) - expected).max() < 1e-4 * np.abs(expected).max()
