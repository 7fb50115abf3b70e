"""Batched, compiled evaluation: many parameter vectors of one lens, and blocks of lenses × vectors.

Two batch axes: parameter vectors of one lens (what a sampler asks for) and datasets (a block). Datasets of a
block are padded to one Bucket (imaging.pad_to_bucket) and stacked; the compiled function is keyed by
(model, bucket, batch shape). Padding has zero weight, so batched numbers equal unbatched ones.
"""

from __future__ import annotations

from functools import partial
from . import jax_setup  # noqa: F401
import jax
import numpy as np

from .fit import FitResult, fit
from workers.model.buckets import Bucket, common_bucket
from .imaging import MaskedImaging, pad_to_bucket
from workers.model.description import Model


@partial(jax.jit, static_argnames=("model", "with_arrays", "convolution"))
def evaluate(
    imaging: MaskedImaging, vectors: jax.Array, model: Model, with_arrays: bool = False, convolution: str = "auto"
) -> FitResult:
    """Fit one lens at V parameter vectors (V, n): every FitResult field gains a leading V axis. `convolution`
    is fit's mapping-matrix route ("auto", "fft", "sparse")."""
    per_vector = partial(fit, model=model, with_arrays=with_arrays, convolution=convolution)
    return jax.vmap(per_vector, in_axes=(None, 0))(imaging, vectors)


@partial(jax.jit, static_argnames=("model", "with_arrays", "convolution"))
def evaluate_block(
    imagings: MaskedImaging, vectors: jax.Array, model: Model, with_arrays: bool = False, convolution: str = "auto"
) -> FitResult:
    """Fit L stacked lenses (see stack) at V vectors each, vectors (L, V, n): fields gain leading (L, V)."""
    per_vector = partial(fit, model=model, with_arrays=with_arrays, convolution=convolution)
    per_lens = jax.vmap(per_vector, in_axes=(None, 0))
    return jax.vmap(per_lens, in_axes=(0, 0))(imagings, vectors)


def stack(imagings: list[MaskedImaging], bucket: Bucket | None = None) -> MaskedImaging:
    """Pad lenses to one bucket (common_bucket of theirs unless given) and stack them along a leading axis."""
    bucket = bucket or common_bucket([im.bucket for im in imagings])
    padded = [pad_to_bucket(im, bucket) for im in imagings]
    return jax.tree.map(lambda *leaves: np.stack(leaves), *padded)
