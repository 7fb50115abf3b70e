"""PyAutoLens's own figure of merit for a mask that comes within the PSF's half-width of the image edge, where its
blurring region reaches past the image (PyAutoArray pads the mask with masked pixels, ``allow_padding=True``).

The dataset is reference2's C0 (100×100 at 0.1", mask 3.0", 11×11 PSF) cut to its central 64×64: the mask then ends
2 pixels from every edge, so 3 rings of blurring pixels lie outside the image. The model is reference2's
`ll_sie_mge` (Isothermal + ExternalShear, an MGE lens light and an MGE source of 20 Gaussians each, over-sampling 2,
positive-only solve, fp64 numpy path) at C0's truth.

Runs under PyAutoLens's Python and imports nothing from lensfleet; it writes tests/data/edge_mask_C0.json, which
tests/workers/inversion/test_edge_mask.py checks lensfleet against:

    .venv-pyautolens/bin/python benchmarks/pyautolens_edge_mask.py --out tests/data/edge_mask_C0.json
"""

import argparse
import json
import os
import shutil
import tempfile

from pyautolens_datasets import REFERENCE2, masked_dataset, mge_basis

CROP = 18  # pixels cut from each side of C0's 100×100 frame


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference2", default=REFERENCE2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import autolens as al
    import numpy as np
    from astropy.io import fits

    meta = json.load(open(os.path.join(args.reference2, "reference2.json")))
    source_folder = os.path.join(args.reference2, "datasets", "C0")
    with tempfile.TemporaryDirectory() as folder:
        for name in ("image", "noise_map"):
            array = fits.getdata(os.path.join(source_folder, f"{name}.fits")).astype(np.float64)
            fits.writeto(os.path.join(folder, f"{name}.fits"), array[CROP:-CROP, CROP:-CROP])
        for name in ("psf.fits", "truth.json"):
            shutil.copy(os.path.join(source_folder, name), folder)
        dataset, truth = masked_dataset(folder, meta["over_sample_size_lp"], meta["over_sample_size_pixelization"])
    gaussians, sigma_min = meta["mge"]["total_gaussians"], meta["mge"]["sigma_min"]

    def basis(centre, sets):
        return mge_basis(centre, sets, gaussians, sigma_min, truth["mask_radius"])

    mass, shear, light = truth["mass"], truth["shear"], truth["lens_light"]
    source = truth["sources"][0]
    lens = al.Galaxy(
        redshift=0.5, bulge=basis(light["centre"], [light["ell_comps"]]),
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
        "dataset": "C0", "crop": CROP, "gaussians": gaussians, "sigma_min": sigma_min,
        "blurring_pixels": int(dataset.grids.blurring.shape[0]),
        **terms, "reconstruction": [float(v) for v in np.asarray(fit.inversion.reconstruction)],
    }
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1)
    print(json.dumps({**terms, "blurring_pixels": record["blurring_pixels"]}))


if __name__ == "__main__":
    main()
