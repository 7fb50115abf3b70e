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


def fit_mask(data: ImagingData, mask_radius: float) -> np.ndarray:
    """The fit's mask (True = masked): the circle of `mask_radius` about the origin, plus the file's mask."""
    mask = circular_mask(data.image.shape, data.pixel_scale, mask_radius)
    return mask if data.mask is None else mask | data.mask


def masked_imaging(
    data: ImagingData, options: DatasetOptions, model: Model, mask_radius: float | None = None
) -> MaskedImaging:
    """Validate `data` under the fit's mask and build its MaskedImaging. A per-lens `mask_radius` overrides
    the config's. Raises storage.errors.DatasetError naming the dataset, the file and the problem."""
    radius = options.mask_radius if mask_radius is None else mask_radius
    mask = fit_mask(data, radius)
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
