"""PSF convolution of image columns by FFT: linear (zero padding, no wrap-around), "same" crop.

For columns c_k on the used pixels (and optionally the blurring pixels), each column is scattered onto the
canvas, convolved with the normalised kernel K,
    (K ∗ c)[i, j] = Σ_ab K[a, b] · c[i − a + ky//2, j − b + kx//2],
computed as irfft2(rfft2(c)·rfft2(K)) on an FFT shape ≥ canvas + kernel − 1, cropped at (ky//2, kx//2) and
read back on the used pixels. Flux from blurring pixels blurs into the mask; nothing wraps around.
"""

from __future__ import annotations

import math

from . import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp

from .imaging import MaskedImaging
from .precision import ConvolutionPrecision


def convolve_columns(
    imaging: MaskedImaging,
    columns: jax.Array,
    blurring_columns: jax.Array | None,
    precision: ConvolutionPrecision,
) -> jax.Array:
    """Blurred columns (P, N) from columns on the used pixels (P, N) and blurring pixels (B, N) or None.
    The result has the dtype of the kernel multiply (precision.multiply's real part)."""
    b = imaging.bucket
    cy, cx = b.canvas
    n = columns.shape[1]
    # Columns lead so that the FFT runs over the two trailing axes (no transposes, also under vmap).
    canvas = jnp.zeros((n, cy * cx), precision.columns)
    canvas = canvas.at[:, imaging.pixel_index].add(columns.T.astype(precision.columns))
    if blurring_columns is not None:
        blurred_in = (blurring_columns * imaging.blurring_valid[:, None]).T
        canvas = canvas.at[:, imaging.blurring_index].add(blurred_in.astype(precision.columns))
    spectrum = jnp.fft.rfft2(canvas.reshape(n, cy, cx), s=b.fft).astype(precision.forward_fft)
    kernel = imaging.psf_fft.astype(precision.multiply)
    full = jnp.fft.irfft2(spectrum.astype(precision.multiply) * kernel, s=b.fft)
    hy, hx = b.psf[0] // 2, b.psf[1] // 2
    same = full[:, hy : hy + cy, hx : hx + cx].reshape(n, cy * cx)
    return same[:, imaging.pixel_index].T


# --- Blurred mapping matrices (pixelized sources) -----------------------------------------------------------
#
# A mapping matrix is given in its sparse form (mesh.mapping_entries): each pixelization sub-pixel q belongs to
# used pixel p(q) and carries four (cell, weight) entries. Its columns live on the used pixels only (no blurring
# region). Two exact routes give the same blurred matrix M̃ (P, K):
#
# - "fft": scatter the entries onto the canvas (Cy·Cx, K), then the FFT convolution above, column by column.
#   Work ~ K · Fy·Fx·log(Fy·Fx) for the FFT shape (Fy, Fx).
# - "sparse": M̃[t(p(q), τ), cell] += K_τ · weight for every sub-pixel q, entry and PSF tap τ, where t(p, τ) is
#   the used pixel that tap τ carries pixel p's flux into (blur_targets; flux landing outside the used pixels
#   is dropped, exactly as the "same" crop and read-back drop it). Work ~ Q · 4 · ky·kx scatter-adds,
#   independent of K.
#
# Precision: with the mixed policy the entries are rounded to precision.columns (float32) first on both routes,
# and everything from the kernel multiply on (the FFT route's inverse FFT, the sparse route's accumulation) is
# in precision.multiply's real dtype (float64), so both routes give the same matrix to round-off.

MAPPING_ROUTES = ("fft", "sparse")

# Relative cost of one sparse scatter-add against one unit K·F·log2(F) of FFT work, per backend.
# CPU: calibrated on 2 cores (XLA single-threaded) for batched evaluation (vmap 16), where a batched scatter
# costs ~3× an unbatched one: reference A0 (11×11 PSF, 80×80 FFT, 5.5M scatter-adds) is cheaper by "sparse"
# (152 vs 196 ms/eval; single call 66 vs 162 ms), reference B0 (21×21 PSF, 128×128 FFT, 43M scatter-adds) by
# "fft" (506 vs 816 ms/eval; a single call prefers "sparse", 289 vs 375 ms). The work ratios of the two are 5.9
# and 2.1, so any constant between them picks the measured winner. GPU/TPU: an estimate, not a measurement
# (scatter-adds are contended atomics there, while batched FFTs run near memory bandwidth).
_SCATTER_COST = {"cpu": 3.0, "gpu": 20.0, "tpu": 20.0}


def mapping_route(bucket, n_cells: int, backend: str | None = None) -> str:
    """The cheaper exact route ("fft" or "sparse") for blurring a mapping matrix of `n_cells` columns on data
    of `bucket`, on `backend` (jax.default_backend() if None). A static choice: it depends only on shapes."""
    backend = backend or jax.default_backend()
    fy, fx = bucket.fft
    fft_work = n_cells * fy * fx * max(math.log2(fy * fx), 1.0)
    sparse_work = _SCATTER_COST.get(backend, _SCATTER_COST["gpu"]) * bucket.pix_sub * 4 * bucket.psf[0] * bucket.psf[1]
    return "sparse" if sparse_work < fft_work else "fft"


def blur_targets(imaging: MaskedImaging) -> jax.Array:
    """(T, P) int32 for the T = ky·kx PSF taps (row-major over the kernel box): the used pixel into which tap
    (a, b) carries pixel p's flux — pixel (i + a − ky//2, j + b − kx//2) of the canvas — or P where that is not
    a used pixel (or p is padding). Computed from pixel_index, so nothing per-dataset is stored."""
    b = imaging.bucket
    cy, cx = b.canvas
    ky, kx = b.psf
    p = b.pixels
    real = imaging.valid > 0
    slot = jnp.where(real, imaging.pixel_index, cy * cx)
    owner = jnp.full(cy * cx, p, jnp.int32).at[slot].set(jnp.arange(p, dtype=jnp.int32), mode="drop")
    iy, ix = imaging.pixel_index // cx, imaging.pixel_index % cx
    ty = iy[None, None, :] + (jnp.arange(ky) - ky // 2)[:, None, None]
    tx = ix[None, None, :] + (jnp.arange(kx) - kx // 2)[None, :, None]
    inside = (ty >= 0) & (ty < cy) & (tx >= 0) & (tx < cx) & real[None, None, :]
    target = owner[jnp.clip(ty, 0, cy - 1) * cx + jnp.clip(tx, 0, cx - 1)]
    return jnp.where(inside, target, p).reshape(ky * kx, p)


def _convolve_mapping_fft(
    imaging: MaskedImaging, cells: jax.Array, weights: jax.Array, n_cells: int, precision: ConvolutionPrecision
) -> jax.Array:
    b = imaging.bucket
    cy, cx = b.canvas
    rows = imaging.pixel_index[imaging.pix_pixel]
    # Columns lead so that the FFT runs over the two trailing axes (no transposes, also under vmap).
    canvas = jnp.zeros((n_cells, cy * cx), precision.columns)
    canvas = canvas.at[cells, rows[:, None]].add(weights.astype(precision.columns)).reshape(n_cells, cy, cx)
    spectrum = jnp.fft.rfft2(canvas, s=b.fft).astype(precision.forward_fft)
    kernel = imaging.psf_fft.astype(precision.multiply)
    full = jnp.fft.irfft2(spectrum.astype(precision.multiply) * kernel, s=b.fft)
    hy, hx = b.psf[0] // 2, b.psf[1] // 2
    same = full[:, hy : hy + cy, hx : hx + cx].reshape(n_cells, cy * cx)
    return (same[:, imaging.pixel_index] * imaging.valid).T


def _convolve_mapping_sparse(
    imaging: MaskedImaging, cells: jax.Array, weights: jax.Array, n_cells: int, precision: ConvolutionPrecision
) -> jax.Array:
    b = imaging.bucket
    out = jnp.zeros((), precision.multiply).real.dtype
    targets = blur_targets(imaging)
    kernel = jnp.asarray(imaging.psf).reshape(-1).astype(out)
    values = weights.astype(precision.columns).astype(out)

    def tap(t, blurred):  # blurred is M̃ᵀ (K, P): measured faster to scatter into than M̃ on the CPU
        rows = targets[t][imaging.pix_pixel]
        return blurred.at[cells, rows[:, None]].add(kernel[t] * values, mode="drop")

    return jax.lax.fori_loop(0, targets.shape[0], tap, jnp.zeros((n_cells, b.pixels), out)).T


def convolve_mapping_matrix(
    imaging: MaskedImaging,
    cells: jax.Array,
    weights: jax.Array,
    n_cells: int,
    precision: ConvolutionPrecision,
    route: str = "auto",
) -> jax.Array:
    """Blurred mapping matrix M̃ (P, n_cells) on the used pixels (0 on padded rows) from the sparse mapping
    entries cells, weights (Q, 4) of the pixelization sub-pixels, by `route` ("fft", "sparse", or "auto":
    mapping_route)."""
    if route == "auto":
        route = mapping_route(imaging.bucket, n_cells)
    if route == "fft":
        return _convolve_mapping_fft(imaging, cells, weights, n_cells, precision)
    if route == "sparse":
        return _convolve_mapping_sparse(imaging, cells, weights, n_cells, precision)
    raise ValueError(f"unknown mapping-matrix convolution route {route!r}; expected 'auto' or one of {MAPPING_ROUTES}")
