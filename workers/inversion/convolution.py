"""PSF convolution of image columns: linear (zero padding, no wrap-around), "same" crop, read back on the used pixels.

Columns are rows here, (n, P): column k holds image values c_k on the used pixels (and the blurring pixels for
linear light). Each is placed on the canvas (the box of the used and blurring pixels, Cy × Cx) at the top-left
of the (Fy, Fx) = Bucket.fft grid (zeros elsewhere: no separate padding pass) and convolved with the
normalised kernel K,
    (K ∗ c)[i, j] = Σ_ab K[a, b] · c[i − a + ky//2, j − b + kx//2],
by one of two exact routes:
- "fft": irfft2(rfft2(c)·K̂) with period (Fy, Fx) ≥ canvas + psf − 1 and K̂ the kernel centred on pixel
  (0, 0) (imaging.kernel_fft): nothing wraps onto the canvas, no crop offset.
  Work ~ n · Fy·Fx·log2(Fy·Fx).
- "direct": the sum over the ky·kx taps of shifted copies of the zero-padded grid. Work ~ n · Fy·Fx·ky·kx.
Flux from blurring pixels blurs into the mask; flux landing outside the used pixels is dropped by the read-back.

A mapping matrix (pixelized source) arrives in its sparse form (mesh.mapping_entries: per pixelization
sub-pixel four (cell, weight) entries); its columns live on the used pixels only (no blurring region) and are
scattered onto the canvas, then convolved the same way.

Precision (precision.py): the canvas is in precision.columns, the forward FFT in precision.forward_fft, the
kernel multiply (the direct route's accumulation) and everything after it in precision.multiply (its real
dtype for the direct route).
"""

from __future__ import annotations

import math

from . import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp

from .imaging import MaskedImaging
from .precision import ConvolutionPrecision

ROUTES = ("fft", "direct")

# Relative cost of one direct-route multiply-add against one unit n·F·log2(F) of FFT work, per backend.
# CPU: measured on reference A0's MGE columns (20 columns, 11×11 PSF, 75×75 grid): 6.9 ms direct against
# 1.4 ms FFT, 0.5 FFT units per multiply-add, so the direct route wins only for PSFs up to about 5×5.
# GPU/TPU: an estimate (both routes are bandwidth-bound there; the FFT reads less).
_DIRECT_COST = {"cpu": 0.5, "gpu": 1.0, "tpu": 1.0}


def convolution_route(bucket, n_columns: int, backend: str | None = None) -> str:
    """The cheaper exact route ("fft" or "direct") for convolving `n_columns` columns on data of `bucket`, on
    `backend` (jax.default_backend() if None). A static choice: it depends only on shapes."""
    backend = backend or jax.default_backend()
    fy, fx = bucket.fft
    fft_work = n_columns * fy * fx * max(math.log2(fy * fx), 1.0)
    direct_work = _DIRECT_COST.get(backend, _DIRECT_COST["gpu"]) * n_columns * fy * fx * bucket.psf[0] * bucket.psf[1]
    return "direct" if direct_work < fft_work else "fft"


def _on_fft_grid(imaging: MaskedImaging, canvas_index: jax.Array) -> jax.Array:
    """Flat indices on the (Fy, Fx) FFT grid of flat canvas indices (the canvas sits at its top-left)."""
    cx, fx = imaging.bucket.canvas[1], imaging.bucket.fft[1]
    return (canvas_index // cx) * fx + canvas_index % cx


def _grid_source(imaging: MaskedImaging) -> jax.Array:
    """(Fy·Fx,) int32: for each FFT-grid pixel, its row in [used pixels | blurring pixels | one zero row]."""
    b = imaging.bucket
    size = b.fft[0] * b.fft[1]
    source = jnp.full(size, b.pixels + b.blurring, jnp.int32)
    used = jnp.where(imaging.valid > 0, _on_fft_grid(imaging, imaging.pixel_index), size)
    source = source.at[used].set(jnp.arange(b.pixels, dtype=jnp.int32), mode="drop")
    blurring = jnp.where(imaging.blurring_valid > 0, _on_fft_grid(imaging, imaging.blurring_index), size)
    return source.at[blurring].set(b.pixels + jnp.arange(b.blurring, dtype=jnp.int32), mode="drop")


def _convolve_grid(imaging: MaskedImaging, grid: jax.Array, precision: ConvolutionPrecision, route: str) -> jax.Array:
    """(n, Fy·Fx) blurred columns from columns (n, Fy, Fx) on the FFT grid (zero off the canvas), in
    precision.columns, by `route`; read it back at _on_fft_grid(pixel_index)."""
    b = imaging.bucket
    (fy, fx), (ky, kx) = b.fft, b.psf
    n = grid.shape[0]
    if route == "fft":
        spectrum = jnp.fft.rfft2(grid).astype(precision.forward_fft)
        kernel = imaging.psf_fft.astype(precision.multiply)
        return jnp.fft.irfft2(spectrum.astype(precision.multiply) * kernel, s=b.fft).reshape(n, fy * fx)
    if route == "direct":
        out = jnp.zeros((), precision.multiply).real.dtype
        hy, hx = ky // 2, kx // 2
        # The grid already has >= psf//2 zero rows and columns after the canvas; pad as many before it.
        padded = jnp.pad(grid.astype(out), ((0, 0), (hy, 0), (hx, 0)))
        kernel = imaging.psf.astype(out)
        blurred = sum(
            kernel[a, c] * padded[:, 2 * hy - a : 2 * hy - a + fy - hy, 2 * hx - c : 2 * hx - c + fx - hx]
            for a in range(ky)
            for c in range(kx)
        )
        return jnp.pad(blurred, ((0, 0), (0, hy), (0, hx))).reshape(n, fy * fx)
    raise ValueError(f"unknown convolution route {route!r}; expected 'auto' or one of {ROUTES}")


def _read_back(imaging: MaskedImaging, blurred: jax.Array) -> jax.Array:
    """(n, P) values of blurred grids (n, Fy·Fx) on the used pixels, 0 on padded ones: out[k, p] =
    blurred[k, index[p]], written as a gather batched over the rows k, which XLA's CPU backend compiles to a
    row-by-row copy (the plain blurred[:, index] gathered pixel-major and then transposed it for every
    consumer: 2-3× slower for a 400-cell mesh)."""
    n, size = blurred.shape[0], imaging.bucket.pixels
    index = jnp.broadcast_to(_on_fft_grid(imaging, imaging.pixel_index)[None, :, None], (n, size, 1))
    numbers = jax.lax.GatherDimensionNumbers(
        offset_dims=(), collapsed_slice_dims=(1,), start_index_map=(1,), operand_batching_dims=(0,),
        start_indices_batching_dims=(0,),
    )
    values = jax.lax.gather(blurred, index, numbers, slice_sizes=(1, 1),
                            mode=jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS)
    return values * imaging.valid.astype(blurred.dtype)


def convolve_columns(
    imaging: MaskedImaging,
    columns: jax.Array,
    blurring_columns: jax.Array | None,
    precision: ConvolutionPrecision,
    route: str = "auto",
) -> jax.Array:
    """Blurred columns (n, P) from columns on the used pixels (n, P) and on the blurring pixels (n, B) or None,
    by `route` ("fft", "direct", or "auto": convolution_route). Dtype: precision.multiply's real part."""
    b = imaging.bucket
    n = columns.shape[0]
    route = convolution_route(b, n) if route == "auto" else route
    parts = [columns.astype(precision.columns)]
    if blurring_columns is not None:
        parts.append((blurring_columns * imaging.blurring_valid).astype(precision.columns))
    else:
        parts.append(jnp.zeros((n, b.blurring), precision.columns))
    parts.append(jnp.zeros((n, 1), precision.columns))
    grid = jnp.concatenate(parts, axis=1)[:, _grid_source(imaging)].reshape(n, *b.fft)
    return _read_back(imaging, _convolve_grid(imaging, grid, precision, route))


def convolve_mapping_matrix(
    imaging: MaskedImaging,
    cells: jax.Array,
    weights: jax.Array,
    n_cells: int,
    precision: ConvolutionPrecision,
    route: str = "auto",
) -> jax.Array:
    """Blurred mapping matrix, transposed: M̃ᵀ (n_cells, P) on the used pixels (0 on padded ones), from the
    sparse mapping entries cells, weights (Q, 4) of the pixelization sub-pixels, by `route` ("fft", "direct",
    or "auto": convolution_route)."""
    b = imaging.bucket
    route = convolution_route(b, n_cells) if route == "auto" else route
    rows = _on_fft_grid(imaging, imaging.pixel_index[imaging.pix_pixel])
    grid = jnp.zeros((n_cells, b.fft[0] * b.fft[1]), precision.columns)
    grid = grid.at[cells, rows[:, None]].add(weights.astype(precision.columns)).reshape(n_cells, *b.fft)
    return _read_back(imaging, _convolve_grid(imaging, grid, precision, route))
