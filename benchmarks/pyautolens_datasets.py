"""A reference dataset as PyAutoLens loads it for the reference scripts (pyautolens_two_set_mge.py,
pyautolens_adapt_image.py): image, noise map and PSF from a folder with truth.json (pixel_scale, mask_radius),
a circular mask of the dataset's radius about (0, 0), over-sampling as given; the MGE bases of reference2's models.
Runs under PyAutoLens's Python."""

import json
import os

REFERENCE2 = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference2")


def masked_dataset(folder: str, over_sample_size_lp: int, over_sample_size_pixelization: int):
    """(al.Imaging masked and over-sampled, truth dict) of the dataset in `folder`."""
    import autolens as al

    truth = json.load(open(os.path.join(folder, "truth.json")))
    dataset = al.Imaging.from_fits(
        data_path=os.path.join(folder, "image.fits"), noise_map_path=os.path.join(folder, "noise_map.fits"),
        psf_path=os.path.join(folder, "psf.fits"), pixel_scales=truth["pixel_scale"],
    )
    mask = al.Mask2D.circular(shape_native=dataset.shape_native, pixel_scales=truth["pixel_scale"],
                              radius=truth["mask_radius"])
    dataset = dataset.apply_mask(mask=mask).apply_over_sampling(
        over_sample_size_lp=over_sample_size_lp, over_sample_size_pixelization=over_sample_size_pixelization,
    )
    return dataset, truth


def mge_basis(centre, ell_comps_sets, gaussians: int, sigma_min: float, sigma_max: float):
    """al.lp_basis.Basis of `gaussians` linear Gaussians about `centre` per ell_comps in `ell_comps_sets`, σ
    log-spaced from sigma_min to sigma_max (reference2's MGE)."""
    import autolens as al
    import numpy as np

    sigmas = 10 ** np.linspace(np.log10(sigma_min), np.log10(sigma_max), gaussians)
    return al.lp_basis.Basis(profile_list=[
        al.lp_linear.Gaussian(centre=tuple(centre), ell_comps=tuple(ell), sigma=float(s))
        for ell in ell_comps_sets for s in sigmas
    ])
