"""A masked imaging dataset as the engine sees it, padded to a shape bucket.

Built once per dataset in numpy (`prepare_imaging`), then passed to compiled functions as an argument.
Everything lives on the "canvas": the smallest box holding the used and blurring pixels, into which
columns are scattered for the PSF convolution.

Padding rule (zero weight, changes no number): padded used pixels have data 0, noise 1, weight 1/σ² = 0,
valid 0, border 0 and repeat the first pixel centre; padded sub-pixels have sub-weight 0 and repeat the first
real point (so every value stays finite); padded blurring pixels have blurring_valid 0. A bigger canvas or PSF
box only adds zeros to a linear convolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from . import jax_setup  # noqa: F401
import jax
import numpy as np

from .border import border_pixels
from workers.model.buckets import Bucket
from workers.model.description import MAX_IMAGES
from workers.model.grids import (
    OverSampling,
    RadialOverSampling,
    blurring_mask,
    canvas_box,
    circular_mask,
    grown,
    pixel_centres,
    radial_bin_sub_sizes,
    sub_grid,
)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class MaskedImaging:
    """One lens's data on its used pixels (P), sub-grids (Q), blurring pixels (B) and canvas.

    data, noise_map: (P,) image and 1σ noise (image units); weight: (P,) 1/σ², 0 on padding; valid: (P,)
    1 for real pixels. pixel_index: (P,) flat canvas index of each used pixel.
    lp_points / pix_points: (Q, 2) sub-pixel positions (arcsec) of the light-profile / pixelization grids;
    lp_pixel / pix_pixel: (Q,) their used pixel; lp_weight / pix_weight: (Q,) 1/s² (0 on padding).
    blurring_points: (B, 2) blurring-pixel centres; blurring_index: (B,) canvas index; blurring_valid: (B,).
    pixel_centres: (P, 2) used-pixel centres (arcsec); border: (P,) 1 on the mask's border pixels
    (border.border_pixels, used by border relocation), 0 elsewhere and on padding.
    psf: (ky, kx) the PSF divided by its sum, centred; psf_fft: (Fy, Fx//2 + 1) complex128, the rfft2 on the
    circular FFT shape (Bucket.fft) of the PSF with its centre moved to pixel (0, 0) (kernel_fft).
    mask_radius: () arcsec, the largest σ of MGE bases.
    positions: (MAX_IMAGES, 2) multiple-image positions of the positions likelihood (positions.py), the rows
    positions_valid (MAX_IMAGES,) marks; positions_threshold: () arcsec (none: no valid row, threshold ∞).
    Static: bucket.
    """

    data: jax.Array
    noise_map: jax.Array
    weight: jax.Array
    valid: jax.Array
    pixel_index: jax.Array
    lp_points: jax.Array
    lp_pixel: jax.Array
    lp_weight: jax.Array
    pix_points: jax.Array
    pix_pixel: jax.Array
    pix_weight: jax.Array
    blurring_points: jax.Array
    blurring_index: jax.Array
    blurring_valid: jax.Array
    pixel_centres: jax.Array
    border: jax.Array
    psf: jax.Array
    psf_fft: jax.Array
    mask_radius: jax.Array
    positions: jax.Array
    positions_valid: jax.Array
    positions_threshold: jax.Array
    adapt_image: jax.Array
    bucket: Bucket = field(metadata={"static": True})


class ImagingError(ValueError):
    """The data cannot be modelled as given (e.g. an even-sized PSF or an empty mask)."""


def kernel_fft(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """rfft2 on `shape` of the odd-sized `kernel` placed with its centre at (0, 0) (wrapped around), so that
    a circular convolution with it is the "same"-mode convolution without a crop offset."""
    ky, kx = kernel.shape
    placed = np.zeros(shape)
    placed[:ky, :kx] = kernel
    return np.fft.rfft2(np.roll(placed, (-(ky // 2), -(kx // 2)), axis=(0, 1)))


def _sub_sizes(over_sampling: OverSampling, centres: np.ndarray) -> np.ndarray:
    if isinstance(over_sampling, RadialOverSampling):
        return radial_bin_sub_sizes(
            centres, list(over_sampling.sub_sizes), list(over_sampling.radii), list(over_sampling.centres)
        )
    if int(over_sampling) < 1:
        raise ImagingError(f"over-sample size must be >= 1, got {over_sampling}")
    return np.full(len(centres), int(over_sampling))


def prepare_imaging(
    image: np.ndarray,
    noise_map: np.ndarray,
    psf: np.ndarray,
    pixel_scale: float,
    mask_radius: float | None = None,
    mask: np.ndarray | None = None,
    over_sample_size_lp: OverSampling = 4,
    over_sample_size_pixelization: OverSampling = 4,
) -> MaskedImaging:
    """Mask a dataset and build its grids, unpadded (its own bucket). Give `mask_radius` (a circle about the
    origin), `mask` (True = masked), or both (then the MGE σ range still ends at mask_radius). With a mask
    alone the MGE range ends at the largest used-pixel radius."""
    image = np.asarray(image, dtype=np.float64)
    noise_map = np.asarray(noise_map, dtype=np.float64)
    psf = np.asarray(psf, dtype=np.float64)
    if psf.ndim != 2 or psf.shape[0] % 2 == 0 or psf.shape[1] % 2 == 0:
        raise ImagingError(f"PSF must be 2-D and odd-sized, got shape {psf.shape}")
    if psf.shape[0] > image.shape[0] or psf.shape[1] > image.shape[1]:
        raise ImagingError(f"PSF {psf.shape} is larger than the image {image.shape}")
    if not np.isfinite(psf).all() or psf.sum() == 0:
        raise ImagingError("PSF must be finite with a non-zero sum")
    if mask is None:
        if mask_radius is None:
            raise ImagingError("give a mask_radius or a mask")
        mask = circular_mask(image.shape, pixel_scale, mask_radius)
    mask = np.asarray(mask, dtype=bool)
    used = ~mask
    if not used.any():
        raise ImagingError("the mask leaves no pixel to fit")
    centres_native = pixel_centres(image.shape, pixel_scale)
    if mask_radius is None:
        mask_radius = float(np.sqrt((centres_native[used] ** 2).sum(-1)).max())

    used_on_frame, blur = ~grown(mask, psf.shape), blurring_mask(mask, psf.shape)
    (y0, x0), canvas = canvas_box(used_on_frame, blur)

    def canvas_index(m: np.ndarray) -> np.ndarray:
        """Flat canvas index of the True pixels of `m`, a mask on the grown frame."""
        iy, ix = np.nonzero(m)
        return ((iy - y0) * canvas[1] + (ix - x0)).astype(np.int32)

    centres = centres_native[used]
    lp = sub_grid(centres, _sub_sizes(over_sample_size_lp, centres), pixel_scale)
    pix = sub_grid(centres, _sub_sizes(over_sample_size_pixelization, centres), pixel_scale)
    kernel = psf / psf.sum()
    bucket = Bucket(
        canvas=canvas,
        psf=(int(psf.shape[0]), int(psf.shape[1])),
        pixels=int(used.sum()),
        lp_sub=len(lp.points),
        pix_sub=len(pix.points),
        blurring=int(blur.sum()),
    )
    noise = noise_map[used]
    return MaskedImaging(
        data=image[used],
        noise_map=noise,
        weight=1.0 / noise**2,
        valid=np.ones(bucket.pixels),
        pixel_index=canvas_index(used_on_frame),
        lp_points=lp.points,
        lp_pixel=lp.pixel.astype(np.int32),
        lp_weight=lp.weight,
        pix_points=pix.points,
        pix_pixel=pix.pixel.astype(np.int32),
        pix_weight=pix.weight,
        blurring_points=pixel_centres(blur.shape, pixel_scale)[blur],
        blurring_index=canvas_index(blur),
        blurring_valid=np.ones(bucket.blurring),
        pixel_centres=centres,
        border=border_pixels(mask).astype(np.float64),
        psf=kernel,
        psf_fft=kernel_fft(kernel, bucket.fft),
        mask_radius=np.float64(mask_radius),
        positions=np.zeros((MAX_IMAGES, 2)),
        positions_valid=np.zeros(MAX_IMAGES, bool),
        positions_threshold=np.float64(np.inf),
        adapt_image=np.zeros(bucket.pixels),
        bucket=bucket,
    )


def with_positions(imaging: MaskedImaging, images: np.ndarray, threshold: float) -> MaskedImaging:
    """The dataset with a positions likelihood: `images` (n ≤ MAX_IMAGES, 2) and the threshold (arcsec)."""
    if len(images) > MAX_IMAGES:
        raise ImagingError(f"{len(images)} multiple images; the positions likelihood takes at most {MAX_IMAGES}")
    positions = np.zeros((MAX_IMAGES, 2))
    positions[: len(images)] = images
    return replace(imaging, positions=positions, positions_valid=np.arange(MAX_IMAGES) < len(images),
                   positions_threshold=np.float64(threshold))


def with_adapt_image(imaging: MaskedImaging, image: np.ndarray) -> MaskedImaging:
    """The dataset with the adapt image (P,) an *_adapt_image mesh follows, 0 on padding."""
    return replace(imaging, adapt_image=np.where(np.asarray(imaging.valid) > 0, np.asarray(image, np.float64), 0.0))


def _pad(a: np.ndarray, n: int, value) -> np.ndarray:
    """Pad axis 0 of `a` to length n with `value` ("first" repeats the first row)."""
    extra = n - a.shape[0]
    if extra == 0:
        return a
    fill = np.repeat(a[:1], extra, axis=0) if value == "first" else np.full((extra, *a.shape[1:]), value, a.dtype)
    return np.concatenate([a, fill])


def pad_to_bucket(imaging: MaskedImaging, bucket: Bucket) -> MaskedImaging:
    """The same dataset in a bigger bucket, padded with zero-weight entries (see the module docstring)."""
    old = imaging.bucket
    if not bucket.covers(old):
        raise ImagingError(f"bucket {bucket} does not cover the dataset's {old}")

    def reindex(index: np.ndarray) -> np.ndarray:
        iy, ix = np.divmod(np.asarray(index), old.canvas[1])
        return (iy * bucket.canvas[1] + ix).astype(np.int32)

    dy, dx = (bucket.psf[0] - old.psf[0]) // 2, (bucket.psf[1] - old.psf[1]) // 2
    kernel = np.zeros(bucket.psf)
    kernel[dy : dy + old.psf[0], dx : dx + old.psf[1]] = np.asarray(imaging.psf)
    last = bucket.pixels - 1
    return replace(
        imaging,
        data=_pad(np.asarray(imaging.data), bucket.pixels, 0.0),
        noise_map=_pad(np.asarray(imaging.noise_map), bucket.pixels, 1.0),
        weight=_pad(np.asarray(imaging.weight), bucket.pixels, 0.0),
        valid=_pad(np.asarray(imaging.valid), bucket.pixels, 0.0),
        pixel_index=_pad(reindex(imaging.pixel_index), bucket.pixels, 0),
        lp_points=_pad(np.asarray(imaging.lp_points), bucket.lp_sub, "first"),
        lp_pixel=_pad(np.asarray(imaging.lp_pixel), bucket.lp_sub, last),
        lp_weight=_pad(np.asarray(imaging.lp_weight), bucket.lp_sub, 0.0),
        pix_points=_pad(np.asarray(imaging.pix_points), bucket.pix_sub, "first"),
        pix_pixel=_pad(np.asarray(imaging.pix_pixel), bucket.pix_sub, last),
        pix_weight=_pad(np.asarray(imaging.pix_weight), bucket.pix_sub, 0.0),
        blurring_points=_pad(np.asarray(imaging.blurring_points), bucket.blurring, "first"),
        blurring_index=_pad(reindex(imaging.blurring_index), bucket.blurring, 0),
        blurring_valid=_pad(np.asarray(imaging.blurring_valid), bucket.blurring, 0.0),
        pixel_centres=_pad(np.asarray(imaging.pixel_centres), bucket.pixels, "first"),
        border=_pad(np.asarray(imaging.border), bucket.pixels, 0.0),
        adapt_image=_pad(np.asarray(imaging.adapt_image), bucket.pixels, 0.0),
        psf=kernel,
        psf_fft=kernel_fft(kernel, bucket.fft),
        bucket=bucket,
    )
