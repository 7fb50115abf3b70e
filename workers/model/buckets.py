"""Shape buckets: the static shapes a compiled likelihood is keyed by (numpy only, no JAX).

Datasets are padded up to a bucket (imaging.pad_to_bucket) so that lenses of similar size share one compiled
program. `bucket_for_shapes` predicts a dataset's exact bucket from its shapes and the fit's mask and
over-sampling, without reading pixels, so a driver can group a catalog by bucket from FITS headers alone.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from .grids import (
    OverSampling, RadialOverSampling, blurring_mask, canvas_box, circular_mask, grown, pixel_centres,
    radial_bin_sub_sizes,
)


@dataclass(frozen=True)
class Bucket:
    """Static shapes a compiled function is keyed by: canvas (Cy, Cx), PSF box (ky, kx), FFT shape, and the
    padded counts of used pixels, light-profile sub-pixels, pixelization sub-pixels and blurring pixels."""

    canvas: tuple[int, int]
    psf: tuple[int, int]
    pixels: int
    lp_sub: int
    pix_sub: int
    blurring: int

    @property
    def fft(self) -> tuple[int, int]:
        """The circular FFT shape of the PSF convolution: the smallest 2^a·3^b·5^c >= canvas + psf − 1 per
        axis, the linear convolution's size. Columns are nonzero only on the canvas and read back only on it, so
        any period >= canvas + psf//2 would wrap nothing onto it; the full size is kept because with it the
        mixed-precision (fp32) FFTs stay within 1e-3 of PyAutoLens's mixed precision on every reference2 case
        (with canvas + psf//2 B0 and C0 reached 1.05e-3 and 1.18e-3 in χ²)."""
        return tuple(_fast_len(c + k - 1) for c, k in zip(self.canvas, self.psf))

    def covers(self, other: "Bucket") -> bool:
        """True if data of bucket `other` fits in this one."""
        return all(a >= b for a, b in zip(_flat(self), _flat(other)))


def _flat(b: Bucket) -> tuple[int, ...]:
    return (*b.canvas, *b.psf, b.pixels, b.lp_sub, b.pix_sub, b.blurring)


def _fast_len(n: int) -> int:
    """Smallest 2^a·3^b·5^c >= n."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


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



def _sub_pixel_count(over_sampling: OverSampling, centres: np.ndarray) -> int:
    if isinstance(over_sampling, RadialOverSampling):
        sizes = radial_bin_sub_sizes(centres, list(over_sampling.sub_sizes), list(over_sampling.radii),
                                     list(over_sampling.centres))
        return int((sizes**2).sum())
    return len(centres) * int(over_sampling) ** 2


def bucket_for_shapes(
    image_shape: tuple[int, int],
    psf_shape: tuple[int, int],
    pixel_scale: float,
    mask_radius: float,
    over_sample_size_lp: OverSampling,
    over_sample_size_pixelization: OverSampling,
    mask_centre: tuple[float, float] = (0.0, 0.0),
    file_mask: np.ndarray | None = None,
) -> Bucket:
    """The exact (unrounded) bucket of a dataset fitted with the circular mask of `mask_radius` about
    `mask_centre` combined with its files' mask (True = masked), from shapes and that mask alone."""
    mask = circular_mask(image_shape, pixel_scale, mask_radius, mask_centre)
    if file_mask is not None:
        mask = mask | file_mask
    blur = blurring_mask(mask, psf_shape)
    centres = pixel_centres(image_shape, pixel_scale)[~mask]
    return Bucket(
        canvas=canvas_box(~grown(mask, psf_shape), blur)[1],
        psf=(int(psf_shape[0]), int(psf_shape[1])),
        pixels=len(centres),
        lp_sub=_sub_pixel_count(over_sample_size_lp, centres),
        pix_sub=_sub_pixel_count(over_sample_size_pixelization, centres),
        blurring=int(blur.sum()),
    )
