"""Batched, compiled evaluation: many parameter vectors of one lens, and blocks of lenses × vectors.

Two batch axes: parameter vectors of one lens (what a sampler asks for) and datasets (a block). Datasets of a
block are padded to one Bucket (imaging.pad_to_bucket) and stacked; the compiled function is keyed by
(model, bucket, batch shape). Padding has zero weight, so batched numbers equal unbatched ones.
"""

from __future__ import annotations

from functools import partial
import math

from . import jax_setup  # noqa: F401
import jax
import numpy as np

from .fit import FitResult, fit
from .imaging import Bucket, MaskedImaging, pad_to_bucket
from .model import Model


@partial(jax.jit, static_argnames=("model", "with_arrays"))
def evaluate(imaging: MaskedImaging, vectors: jax.Array, model: Model, with_arrays: bool = False) -> FitResult:
    """Fit one lens at V parameter vectors (V, n): every FitResult field gains a leading V axis."""
    return jax.vmap(fit, in_axes=(None, 0, None, None))(imaging, vectors, model, with_arrays)


@partial(jax.jit, static_argnames=("model", "with_arrays"))
def evaluate_block(
    imagings: MaskedImaging, vectors: jax.Array, model: Model, with_arrays: bool = False
) -> FitResult:
    """Fit L stacked lenses (see stack) at V vectors each, vectors (L, V, n): fields gain leading (L, V)."""
    per_lens = jax.vmap(fit, in_axes=(None, 0, None, None))
    return jax.vmap(per_lens, in_axes=(0, 0, None, None))(imagings, vectors, model, with_arrays)


def _round_up(n: int, step: int) -> int:
    return int(math.ceil(n / step) * step)


def common_bucket(buckets: list[Bucket]) -> Bucket:
    """A bucket covering all `buckets`, with sizes rounded up to a coarse grid so that similar datasets
    share one compiled program: canvas to multiples of 16, PSF to 10k+1, pixel counts to multiples of 256."""
    def top(field: str) -> int:
        return max(getattr(b, field) for b in buckets)

    canvas = tuple(_round_up(max(b.canvas[i] for b in buckets), 16) for i in range(2))
    psf = tuple(_round_up(max(b.psf[i] for b in buckets) - 1, 10) + 1 for i in range(2))
    return Bucket(
        canvas=canvas,
        psf=psf,
        pixels=_round_up(top("pixels"), 256),
        lp_sub=_round_up(top("lp_sub"), 256),
        pix_sub=_round_up(top("pix_sub"), 256),
        blurring=_round_up(top("blurring"), 256),
    )


def stack(imagings: list[MaskedImaging], bucket: Bucket | None = None) -> MaskedImaging:
    """Pad lenses to one bucket (common_bucket of theirs unless given) and stack them along a leading axis."""
    bucket = bucket or common_bucket([im.bucket for im in imagings])
    padded = [pad_to_bucket(im, bucket) for im in imagings]
    return jax.tree.map(lambda *leaves: np.stack(leaves), *padded)
