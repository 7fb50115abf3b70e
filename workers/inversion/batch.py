"""Batched, compiled evaluation: many parameter vectors of one lens, and blocks of lenses × vectors.

Two batch axes: parameter vectors of one lens (what a sampler asks for) and datasets (a block). Datasets of a
block are padded to one Bucket (imaging.pad_to_bucket) and stacked; the compiled function is keyed by
(model, bucket, batch shape, chunk). Padding has zero weight, so batched numbers equal unbatched ones.

`chunk` is how many evaluations are vectorised together: 0 vmaps the whole batch at once (right for a GPU,
memory permitting); c > 0 runs the batch c evaluations at a time inside the compiled call (lax.map), so the
working set of one chunk stays in the CPU's caches and a lane never waits for a slower one outside its
chunk. sizing.eval_chunk picks it per device; the numbers do not depend on it.
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


def _chunked(function, items, chunk: int):
    """function mapped over the leading axis of the pytree `items`, `chunk` at a time (0: all at once)."""
    size = jax.tree.leaves(items)[0].shape[0]
    if chunk <= 0 or chunk >= size:
        return jax.vmap(function)(items)
    return jax.lax.map(function, items, batch_size=chunk)


@partial(jax.jit, static_argnames=("model", "with_arrays", "convolution", "chunk"))
def evaluate(
    imaging: MaskedImaging,
    vectors: jax.Array,
    model: Model,
    with_arrays: bool = False,
    convolution: str = "auto",
    chunk: int = 0,
) -> FitResult:
    """Fit one lens at V parameter vectors (V, n): every FitResult field gains a leading V axis. `convolution`
    is fit's PSF convolution route ("auto", "fft", "direct"); `chunk` see the module docstring."""
    per_vector = partial(fit, imaging, model=model, with_arrays=with_arrays, convolution=convolution)
    return _chunked(per_vector, vectors, chunk)


@partial(jax.jit, static_argnames=("model", "with_arrays", "convolution", "chunk"))
def evaluate_block(
    imagings: MaskedImaging,
    vectors: jax.Array,
    model: Model,
    with_arrays: bool = False,
    convolution: str = "auto",
    chunk: int = 0,
) -> FitResult:
    """Fit L stacked lenses (see stack) at V vectors each, vectors (L, V, n): fields gain leading (L, V).
    With chunk > 0 the lenses run one after another, each lens's vectors `chunk` at a time."""
    per_vector = partial(fit, model=model, with_arrays=with_arrays, convolution=convolution)
    if chunk <= 0:
        return jax.vmap(jax.vmap(per_vector, in_axes=(None, 0)), in_axes=(0, 0))(imagings, vectors)
    per_lens = lambda args: _chunked(partial(per_vector, args[0]), args[1], chunk)  # noqa: E731
    return jax.lax.map(per_lens, (imagings, vectors))


def stack(imagings: list[MaskedImaging], bucket: Bucket | None = None) -> MaskedImaging:
    """Pad lenses to one bucket (common_bucket of theirs unless given) and stack them along a leading axis."""
    bucket = bucket or common_bucket([im.bucket for im in imagings])
    padded = [pad_to_bucket(im, bucket) for im in imagings]
    return jax.tree.map(lambda *leaves: np.stack(leaves), *padded)
