"""A reference dataset as PyAutoLens loads it for the reference scripts (pyautolens_two_set_mge.py,
pyautolens_adapt_image.py): image, noise map and PSF from a folder with truth.json (pixel_scale, mask_radius),
a circular mask of the dataset's radius about (0, 0), over-sampling as given. Runs under PyAutoLens's Python."""

import json
import os


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
