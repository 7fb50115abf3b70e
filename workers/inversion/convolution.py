"""PSF convolution of image columns by FFT: linear (zero padding, no wrap-around), "same" crop.

For columns c_k on the used pixels (and optionally the blurring pixels), each column is scattered onto the
canvas, convolved with the normalised kernel K,
    (K ∗ c)[i, j] = Σ_ab K[a, b] · c[i − a + ky//2, j − b + kx//2],
computed as irfft2(rfft2(c)·rfft2(K)) on an FFT shape ≥ canvas + kernel − 1, cropped at (ky//2, kx//2) and
read back on the used pixels. Flux from blurring pixels blurs into the mask; nothing wraps around.
"""

from __future__ import annotations

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
    canvas = jnp.zeros((cy * cx, n), precision.columns)
    canvas = canvas.at[imaging.pixel_index].add(columns.astype(precision.columns))
    if blurring_columns is not None:
        blurred_in = blurring_columns * imaging.blurring_valid[:, None]
        canvas = canvas.at[imaging.blurring_index].add(blurred_in.astype(precision.columns))
    canvas = canvas.reshape(cy, cx, n)
    spectrum = jnp.fft.rfft2(canvas, s=b.fft, axes=(0, 1)).astype(precision.forward_fft)
    kernel = imaging.psf_fft.astype(precision.multiply)[:, :, None]
    full = jnp.fft.irfft2(spectrum.astype(precision.multiply) * kernel, s=b.fft, axes=(0, 1))
    hy, hx = b.psf[0] // 2, b.psf[1] // 2
    same = full[hy : hy + cy, hx : hx + cx].reshape(cy * cx, n)
    return same[imaging.pixel_index]
