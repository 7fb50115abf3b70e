"""Masks, pixel grids, over-sampling and the blurring region (numpy, built once per dataset).

Coordinates are (y, x) in arcsec, y up. For an Ny×Nx image with pixel scale p, pixel (i, j) has centre
    y = ((Ny−1)/2 − i)·p,   x = (j − (Nx−1)/2)·p.
A mask is a boolean array with True = masked (PyAutoLens's convention); the used pixels are ~mask, in
row-major ("slim") order.

Over-sampling with sub-size s splits a pixel into s×s sub-pixels at offsets
    dy_a = p/2 − p/(2s) − a·p/s,  dx_b = −p/2 + p/(2s) + b·p/s   (a outer, b inner),
and a pixel's value is the plain mean of its sub-pixel values. Sub-sizes may differ per pixel
(radial-bin adaptive over-sampling).

Blurring pixels: masked pixels inside the PSF-sized box centred on at least one used pixel, past the image
edge too (PyAutoArray's allow_padding): they live on the image's frame grown by (ky//2, kx//2) on every side,
whose centres are pixel_centres of the grown shape (the growth is symmetric, so the image's own pixels keep
theirs). They are evaluated at their centres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def pixel_centres(shape: tuple[int, int], pixel_scale: float) -> np.ndarray:
    """Centres (y, x) in arcsec of every pixel of an image, shape (Ny, Nx, 2)."""
    ny, nx = shape
    y = ((ny - 1) / 2.0 - np.arange(ny)) * pixel_scale
    x = (np.arange(nx) - (nx - 1) / 2.0) * pixel_scale
    yy, xx = np.meshgrid(y, x, indexing="ij")
    return np.stack([yy, xx], axis=-1)


def circular_mask(
    shape: tuple[int, int], pixel_scale: float, radius: float, centre: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Circular mask (True = masked): a pixel is used iff (y−yc)² + (x−xc)² < R² (strict)."""
    c = pixel_centres(shape, pixel_scale)
    r2 = (c[..., 0] - centre[0]) ** 2 + (c[..., 1] - centre[1]) ** 2
    return ~(r2 < radius**2)


def sub_pixel_offsets(sub_size: int, pixel_scale: float) -> np.ndarray:
    """Offsets (y, x) of the s×s sub-pixels of a pixel, in PyAutoLens's order, shape (s², 2)."""
    step = pixel_scale / sub_size
    half = pixel_scale / 2.0
    dy = half - step / 2.0 - np.arange(sub_size) * step
    dx = -half + step / 2.0 + np.arange(sub_size) * step
    yy, xx = np.meshgrid(dy, dx, indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=-1)


def radial_bin_sub_sizes(
    centres: np.ndarray,
    sub_size_list: list[int],
    radial_list: list[float],
    centre_list: list[tuple[float, float]] | None = None,
) -> np.ndarray:
    """Adaptive sub-sizes: pixel at distance r from a centre gets sub_size_list[first i with r <= radial_list[i]]
    (the last entry beyond the last radius); the largest over all centres. `centres` has shape (P, 2)."""
    sizes = np.asarray(sub_size_list, dtype=int)
    radii = np.asarray(radial_list, dtype=float)
    result = np.zeros(len(centres), dtype=int)
    for cy, cx in centre_list or [(0.0, 0.0)]:
        r = np.hypot(centres[:, 0] - cy, centres[:, 1] - cx)
        idx = np.clip(np.searchsorted(radii, r, side="left"), 0, len(sizes) - 1)
        result = np.maximum(result, sizes[idx])
    return result


@dataclass(frozen=True)
class RadialOverSampling:
    """Adaptive over-sampling: sub_sizes[i] for pixels within radii[i] of a centre (last size beyond)."""

    sub_sizes: tuple[int, ...]
    radii: tuple[float, ...]
    centres: tuple[tuple[float, float], ...] = ((0.0, 0.0),)


OverSampling = int | RadialOverSampling


@dataclass(frozen=True)
class SubGrid:
    """Over-sampled grid of the used pixels.

    points: (Q, 2) sub-pixel coordinates (arcsec); pixel: (Q,) index of the used pixel each belongs to
    (sorted ascending); weight: (Q,) 1/s² of its pixel, so a pixel value is Σ weight·f over its sub-pixels.
    """

    points: np.ndarray
    pixel: np.ndarray
    weight: np.ndarray


def sub_grid(centres: np.ndarray, sub_sizes: np.ndarray, pixel_scale: float) -> SubGrid:
    """The over-sampled grid for used-pixel centres (P, 2) with per-pixel sub-sizes (P,)."""
    sub_sizes = np.asarray(sub_sizes, dtype=int)
    points, pixel, weight = [], [], []
    for s in np.unique(sub_sizes):
        idx = np.flatnonzero(sub_sizes == s)
        off = sub_pixel_offsets(int(s), pixel_scale)
        points.append((centres[idx, None, :] + off[None, :, :]).reshape(-1, 2))
        pixel.append(np.repeat(idx, s * s))
        weight.append(np.full(idx.size * s * s, 1.0 / (s * s)))
    points_a, pixel_a, weight_a = np.concatenate(points), np.concatenate(pixel), np.concatenate(weight)
    order = np.argsort(pixel_a, kind="stable")
    return SubGrid(points=points_a[order], pixel=pixel_a[order], weight=weight_a[order])


def grown(mask: np.ndarray, psf_shape: tuple[int, int]) -> np.ndarray:
    """The mask on the frame grown by (ky//2, kx//2) masked pixels on every side."""
    hy, hx = psf_shape[0] // 2, psf_shape[1] // 2
    return np.pad(mask, ((hy, hy), (hx, hx)), constant_values=True)


def blurring_mask(mask: np.ndarray, psf_shape: tuple[int, int]) -> np.ndarray:
    """On the grown frame (`grown`): True where a masked pixel lies inside the PSF-sized box centred on at least
    one used pixel."""
    ky, kx = psf_shape
    frame = grown(mask, psf_shape)
    used = ~frame
    ny, nx = frame.shape
    near = np.zeros((ny + ky - 1, nx + kx - 1), dtype=bool)
    for dy in range(ky):
        for dx in range(kx):
            near[dy : dy + ny, dx : dx + nx] |= used
    return near[ky // 2 : ky // 2 + ny, kx // 2 : kx // 2 + nx] & frame


def canvas_box(used: np.ndarray, blurring: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """The canvas, the smallest box holding the `used` and `blurring` pixels (both on the grown frame): its top-left
    corner (y0, x0) on that frame and its shape (Cy, Cx)."""
    box = used | blurring
    rows, cols = np.flatnonzero(box.any(1)), np.flatnonzero(box.any(0))
    return (int(rows[0]), int(cols[0])), (int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1))


def native(slim: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A 2-D image from values on the used pixels (~mask, row-major), NaN where masked."""
    out = np.full(mask.shape, np.nan)
    out[~mask] = slim
    return out
