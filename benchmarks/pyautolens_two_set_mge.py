"""PyAutoLens's own figure of merit for an MGE lens light of two sets (``mge_model_from(gaussian_per_basis=2)``:
one centre, each set of 20 Gaussians its own ell_comps), which ../shared/reference2 lacks, on its lens C0.

Runs under PyAutoLens's Python (``make .venv-pyautolens/.installed``) and imports nothing from lensfleet; it writes
tests/data/two_set_mge_C0.json, which tests/workers/inversion/test_two_set_mge.py checks lensfleet against:

    .venv-pyautolens/bin/python benchmarks/pyautolens_two_set_mge.py --out tests/data/two_set_mge_C0.json

The model is reference2's `ll_sie_mge` (Isothermal + ExternalShear, MGE source of 20 Gaussians, sigma_min as
reference2's, over-sampling 2, positive-only solve, fp64 numpy path) with the lens light split into two sets; its
parameters are C0's truth (mass ell_comps and θE as the Isothermal reads them) and, per set, the ell_comps below.
"""

import argparse
import json
import os

from pyautolens_datasets import REFERENCE2, masked_dataset, mge_basis

SETS = [[0.03, 0.10], [-0.10, 0.12]]  # ell_comps of set 0 (near C0's Sersic lens light) and set 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference2", default=REFERENCE2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import autolens as al
    import numpy as np

    meta = json.load(open(os.path.join(args.reference2, "reference2.json")))
    folder = os.path.join(args.reference2, "datasets", "C0")
    dataset, truth = masked_dataset(folder, meta["over_sample_size_lp"], meta["over_sample_size_pixelization"])
    gaussians, sigma_min = meta["mge"]["total_gaussians"], meta["mge"]["sigma_min"]

    def basis(centre, sets):
        return mge_basis(centre, sets, gaussians, sigma_min, truth["mask_radius"])

    mass, shear, light = truth["mass"], truth["shear"], truth["lens_light"]
    source = truth["sources"][0]
    lens = al.Galaxy(
        redshift=0.5, bulge=basis(light["centre"], SETS),
        mass=al.mp.Isothermal(centre=tuple(mass["centre"]), ell_comps=tuple(mass["ell_comps"]),
                              einstein_radius=mass["einstein_radius"]),
        shear=al.mp.ExternalShear(gamma_1=shear["gamma_1"], gamma_2=shear["gamma_2"]),
    )
    galaxy = al.Galaxy(redshift=1.0, bulge=basis(source["centre"], [source["ell_comps"]]))
    fit = al.FitImaging(dataset=dataset, tracer=al.Tracer(galaxies=[lens, galaxy]),
                        settings=al.Settings(use_positive_only_solver=True))
    terms = {name: float(getattr(fit, name)) for name in
             ("figure_of_merit", "log_likelihood", "chi_squared", "noise_normalization")}
    record = {
        "autolens_version": al.__version__,
        "dataset": "C0", "gaussians": gaussians, "sigma_min": sigma_min, "sets": SETS,
        "lens_light_centre": light["centre"], "source_centre": source["centre"], "source_ell_comps": source["ell_comps"],
        "mass": {k: mass[k] for k in ("centre", "ell_comps", "einstein_radius")}, "shear": shear,
        "terms": terms, "reconstruction": [float(v) for v in np.asarray(fit.inversion.reconstruction)],
    }
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1)
    print(json.dumps(terms))


if __name__ == "__main__":
    main()
