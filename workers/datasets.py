"""From loaded FITS data to the engine's masked dataset: mask, validate, build grids.

The one place where a storage.ImagingData becomes a workers.inversion MaskedImaging.
"""

from __future__ import annotations

import numpy as np

from storage.datasets import ImagingData, validate_imaging
from storage.errors import DatasetError

from .config import DatasetOptions
from .model.grids import circular_mask
from .inversion.imaging import ImagingError, MaskedImaging, prepare_imaging
from .model.description import Model


def fit_mask(data: ImagingData, mask_radius: float, mask_centre: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The fit's mask (True = masked): the circle of `mask_radius` about `mask_centre`, plus the file's mask."""
    mask = circular_mask(data.image.shape, data.pixel_scale, mask_radius, mask_centre)
    return mask if data.mask is None else mask | data.mask


def mask_geometry(
    data: ImagingData, options: DatasetOptions, mask_radius: float | None = None,
    mask_centre: tuple[float, float] | None = None,
) -> tuple[float, tuple[float, float]]:
    """The circular mask's radius and centre (arcsec): the per-lens `mask_radius` / `mask_centre`, else the
    cutout's info.json values, else the config's radius and (0, 0)."""
    radius = next(r for r in (mask_radius, data.mask_radius, options.mask_radius) if r is not None)
    centre = next(c for c in (mask_centre, data.mask_centre, (0.0, 0.0)) if c is not None)
    return float(radius), (float(centre[0]), float(centre[1]))


def masked_imaging(
    data: ImagingData, options: DatasetOptions, model: Model, mask_radius: float | None = None,
    mask_centre: tuple[float, float] | None = None,
) -> MaskedImaging:
    """Validate `data` under the fit's mask (`mask_geometry`'s circle and the file's mask) and build its
    MaskedImaging. Raises storage.errors.DatasetError naming the dataset, the file and the problem."""
    radius, centre = mask_geometry(data, options, mask_radius, mask_centre)
    mask = fit_mask(data, radius, centre)
    validate_imaging(data, mask)
    shortfall = model.pixel_shortfall(int((~mask).sum()))
    if shortfall:
        raise DatasetError(data.dataset_id, data.path, shortfall)
    try:
        return prepare_imaging(
            data.image, data.noise_map, data.psf, data.pixel_scale, mask_radius=radius, mask=mask,
            over_sample_size_lp=options.over_sample_size_lp,
            over_sample_size_pixelization=options.over_sample_size_pixelization,
        )
    except ImagingError as e:
        raise DatasetError(data.dataset_id, data.path, str(e)) from None
