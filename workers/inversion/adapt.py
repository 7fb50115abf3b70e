"""The adapt image an *_adapt_image mesh follows (PyAutoGalaxy's default, `galaxy_name_image_dict_via_result_from`):
the source's subtracted signal-to-noise map at a previous fit, s = (d − lens-light model image)/σ on the used
pixels (d/σ without a lens light), each value below ADAPT_MINIMUM_PERCENT × max s raised to it."""

from __future__ import annotations

from . import jax_setup  # noqa: F401
import jax.numpy as jnp
import numpy as np

from .fit import fit, lens_light_image
from .imaging import MaskedImaging
from workers.model.description import Model

ADAPT_MINIMUM_PERCENT = 0.01  # PyAutoGalaxy's general.yaml adapt.adapt_minimum_percent


def adapt_image(imaging: MaskedImaging, vector: np.ndarray, model: Model) -> np.ndarray:
    """(P,) the source's floored subtracted signal-to-noise map at `vector` of `model` (module docstring), 0 on
    padding."""
    source = np.asarray(imaging.data)
    if model.lens_light is not None:
        result = fit(imaging, jnp.asarray(vector), model, with_arrays=True)
        source = source - np.asarray(lens_light_image(imaging, jnp.asarray(vector), model, result.reconstruction))
    valid = np.asarray(imaging.valid) > 0
    snr = source / np.asarray(imaging.noise_map)
    floor = ADAPT_MINIMUM_PERCENT * snr[valid].max()
    return np.where(valid, np.maximum(snr, floor), 0.0)
