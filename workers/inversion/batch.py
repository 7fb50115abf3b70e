"""Batched, compiled evaluation: many parameter vectors of one lens, and blocks of lenses × vectors.

Two batch axes: parameter vectors of one lens (what a sampler asks for) and datasets (a block). Datasets of a
block are padded to one Bucket (imaging.pad_to_bucket) and stacked; the compiled function is keyed by
(model, bucket, batch shape). Padding has zero weight, so batched numbers equal unbatched ones.

`chunk` is how many evaluations are vectorised together. 0: the whole batch in one vmapped call, which is
what a GPU wants (memory permitting; sizing.plan_batch). c > 0: the batch is cut into pieces of c
evaluations (the last one padded), each a call of the same compiled vmap over c; lenses whose `active` flag
is off are not evaluated at all. Measured on a 2-core CPU (benchmarks/RESULTS.md): XLA runs one evaluation's
operations one after another on one thread there, so vmapping buys no parallelism, batched gathers and
scatters cost more per lane, and a loop inside one program (lax.map) compiles to slower code than the same
evaluation alone (the ray tracing twice as slow); c = 1 is fastest. The parallelism is in the pieces: with
c = 1 on a CPU they run on a pool of as many threads as the process has CPUs (one pool per process, shared
by every block in flight), each piece a call of its own, so a batch keeps every core busy (one thread
dispatching without waiting runs the calls one after another). Pieces of one evaluation hand LAPACK one
matrix each, which is what makes concurrent calls safe on jaxlib 0.10 (sizing). Each piece's numbers are
the same whichever thread runs it. sizing.plan_batch chooses the chunk by device (and `lensfleet bench`
times the candidates).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache, partial

from . import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp
import numpy as np

from .fit import DEGENERATE_FIGURE_OF_MERIT, FitResult, fit
from workers.model.buckets import Bucket, common_bucket
from .imaging import MaskedImaging, pad_to_bucket
from workers.model.description import Model

_STATIC = ("model", "with_arrays", "convolution")
_ARRAYS = ("reconstruction", "model_image", "mesh_centres")


@partial(jax.jit, static_argnames=_STATIC)
def _vmapped(imaging: MaskedImaging, vectors: jax.Array, model: Model, with_arrays: bool, convolution: str):
    """fit at each of the V vectors: a vmap, or for V = 1 (a CPU's pieces) the plain fit given a leading axis;
    XLA's CPU backend compiled a vmap of one to slower code (the SLACS real-data fit 1.3–1.6× slower)."""
    per_vector = partial(fit, imaging, model=model, with_arrays=with_arrays, convolution=convolution)
    if vectors.shape[0] == 1:
        return jax.tree.map(lambda a: a[None], per_vector(vectors[0]))
    return jax.vmap(per_vector)(vectors)


@partial(jax.jit, static_argnames=_STATIC)
def _vmapped_block(imagings: MaskedImaging, vectors: jax.Array, model: Model, with_arrays: bool, convolution: str):
    per_vector = partial(fit, model=model, with_arrays=with_arrays, convolution=convolution)
    return jax.vmap(jax.vmap(per_vector, in_axes=(None, 0)), in_axes=(0, 0))(imagings, vectors)


@cache
def cpu_pool() -> ThreadPoolExecutor | None:
    """The process's thread pool for single evaluations (and the gradient search's per-lens calls), made on
    first use: as many threads as the CPUs this process may run on (the actor's, once runtime.pin_cpus has run:
    XLA sizes its own pool the same way); None on an accelerator or with one CPU (calls one after another)."""
    cpus = len(os.sched_getaffinity(0))
    return ThreadPoolExecutor(cpus, "lensfleet-eval") if jax.devices()[0].platform == "cpu" and cpus > 1 else None


def _run(pieces: list[tuple[MaskedImaging, np.ndarray]], model: Model, with_arrays: bool, convolution: str,
         chunk: int) -> list[FitResult]:
    """_vmapped on each (imaging, vectors) piece, in order: on the pool when pieces are single evaluations on a
    CPU (module docstring; the first on this thread, so that a new shape compiles once), else dispatched one
    after another without waiting."""
    call = lambda piece: _vmapped(*piece, model, with_arrays, convolution)  # noqa: E731
    pool = cpu_pool() if chunk == 1 and len(pieces) > 1 else None
    if pool is None:
        return [call(piece) for piece in pieces]
    first = jax.block_until_ready(call(pieces[0]))
    return [first, *pool.map(lambda piece: jax.block_until_ready(call(piece)), pieces[1:])]


def _cut(vectors: np.ndarray, chunk: int) -> list[np.ndarray]:
    """vectors (V, n) in pieces of `chunk` rows, the last padded with copies of the last row."""
    size = len(vectors)
    padded = np.concatenate([vectors, np.repeat(vectors[-1:], -size % chunk, axis=0)])
    return [padded[i : i + chunk] for i in range(0, size, chunk)]


def evaluate(
    imaging: MaskedImaging,
    vectors: jax.Array,
    model: Model,
    with_arrays: bool = False,
    convolution: str = "auto",
    chunk: int = 0,
) -> FitResult:
    """Fit one lens at V parameter vectors (V, n): every FitResult field gains a leading V axis. `convolution`
    is fit's PSF convolution route ("auto", "fft", "direct"); `chunk` see the module docstring (with
    chunk > 0 this is a host-side loop: call it outside jit)."""
    size = vectors.shape[0]
    if chunk <= 0 or chunk >= size:
        return _vmapped(imaging, vectors, model, with_arrays, convolution)
    # cut on the host: a device slice per piece would cost more than it
    pieces = _run([(imaging, v) for v in _cut(np.asarray(vectors), chunk)], model, with_arrays, convolution, chunk)
    return jax.tree.map(lambda *parts: jnp.concatenate(parts)[:size], *pieces)


def evaluate_block(
    imagings: MaskedImaging,
    vectors: jax.Array,
    model: Model,
    with_arrays: bool = False,
    convolution: str = "auto",
    chunk: int = 0,
    active: np.ndarray | None = None,
    lenses_per_call: int = 0,
) -> FitResult:
    """Fit L stacked lenses (see stack) at V vectors each, vectors (L, V, n): fields gain leading (L, V).
    chunk 0: every lens and vector at once, or `lenses_per_call` lenses per call (> 0 and < L: the block cut
    into calls of that many lenses, the last padded; sizing.BatchPlan.lenses_per_call, so that a call fits the
    device's memory). chunk > 0: the lenses one after another, each lens's vectors `chunk` at a time, and a
    lens whose `active` flag (L,) is off skipped: its terms are DEGENERATE_FIGURE_OF_MERIT, its arrays 0."""
    n_lenses = vectors.shape[0]
    if chunk <= 0 and 0 < lenses_per_call < n_lenses:
        index = np.minimum(np.arange(-(-n_lenses // lenses_per_call) * lenses_per_call), n_lenses - 1)
        calls = [index[i : i + lenses_per_call] for i in range(0, n_lenses, lenses_per_call)]
        pieces = [_vmapped_block(jax.tree.map(lambda a: a[rows], imagings), vectors[rows], model, with_arrays,
                                 convolution) for rows in calls]
        return jax.tree.map(lambda *parts: jnp.concatenate(parts)[:n_lenses], *pieces)
    if chunk <= 0:
        return _vmapped_block(imagings, vectors, model, with_arrays, convolution)
    active = np.ones(n_lenses, bool) if active is None else np.asarray(active, bool)
    lens = lambda i: jax.device_put(jax.tree.map(lambda a: a[i], imagings))  # noqa: E731
    size = vectors.shape[1]
    cuts = {i: _cut(np.asarray(vectors[i]), chunk) for i in np.flatnonzero(active)}
    pieces = [(lens(i), v) for i, vs in cuts.items() for v in vs]  # every lens's pieces in one go: all cores busy
    results = iter(_run(pieces, model, with_arrays, convolution, chunk))
    fits = {i: jax.tree.map(lambda *parts: jnp.concatenate(parts)[:size], *[next(results) for _ in vs])
            for i, vs in cuts.items()}
    if len(fits) < n_lenses:  # the skipped lenses' results: one evaluation's shapes, filled
        shapes = next(iter(fits.values()), None) or jax.eval_shape(
            partial(_vmapped, model=model, with_arrays=with_arrays, convolution=convolution), lens(0), vectors[0])
        skipped = FitResult(**{
            name: None if shape is None else jnp.full(
                shape.shape, 0.0 if name in _ARRAYS else DEGENERATE_FIGURE_OF_MERIT, shape.dtype)
            for name, shape in vars(shapes).items()
        })
        fits = {i: fits.get(i, skipped) for i in range(n_lenses)}
    return jax.tree.map(lambda *lenses: jnp.stack(lenses), *[fits[i] for i in range(n_lenses)])


def stack(imagings: list[MaskedImaging], bucket: Bucket | None = None) -> MaskedImaging:
    """Pad lenses to one bucket (common_bucket of theirs unless given) and stack them along a leading axis."""
    bucket = bucket or common_bucket([im.bucket for im in imagings])
    padded = [pad_to_bucket(im, bucket) for im in imagings]
    return jax.tree.map(lambda *leaves: np.stack(leaves), *padded)
