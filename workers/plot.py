"""The picture astronomers expect of a fit: data, model, normalised residuals and the source reconstruction."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


@dataclass(frozen=True)
class SourcePicture:
    """The source plane: `image` (ny, nx) covering `extent` = (x_min, x_max, y_min, y_max) arcsec; `mesh`
    marks a pixelized reconstruction (drawn cell by cell) rather than an MGE evaluated on a grid."""

    image: np.ndarray
    extent: tuple[float, float, float, float]
    mesh: bool


def native(slim: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A 2-D image from values on the used pixels (row-major), NaN where masked."""
    out = np.full(mask.shape, np.nan)
    out[~mask] = slim
    return out


def plot_fit(
    data: np.ndarray,
    model_image: np.ndarray,
    normalized_residuals: np.ndarray,
    source: SourcePicture,
    pixel_scale: float,
    title: str,
    path: str,
) -> None:
    """Write a 2×2 figure (PNG/PDF by extension) with colour bars; images are native 2-D, NaN outside the mask."""
    ny, nx = data.shape
    half_y, half_x = ny * pixel_scale / 2, nx * pixel_scale / 2
    image_extent = (-half_x, half_x, -half_y, half_y)
    fig, axes = plt.subplots(2, 2, figsize=(10, 9), constrained_layout=True)
    vmax = np.nanmax(np.abs(data))
    panels = [
        (axes[0, 0], data, "data", "viridis", (np.nanmin(data), vmax), image_extent),
        (axes[0, 1], model_image, "model image", "viridis", (np.nanmin(data), vmax), image_extent),
        (axes[1, 0], normalized_residuals, "normalised residuals (data − model)/σ", "RdBu_r", (-4, 4), image_extent),
    ]
    for ax, img, label, cmap, (lo, hi), extent in panels:
        shown = ax.imshow(img, origin="upper", extent=extent, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(label)
        ax.set_xlabel("x (arcsec)")
        ax.set_ylabel("y (arcsec)")
        fig.colorbar(shown, ax=ax, shrink=0.85)
    ax = axes[1, 1]
    shown = ax.imshow(
        source.image, origin="upper", extent=source.extent, cmap="magma",
        interpolation="nearest" if source.mesh else "bilinear",
    )
    ax.set_title("source reconstruction" + (" (mesh cells)" if source.mesh else " (MGE)"))
    ax.set_xlabel("x (arcsec)")
    ax.set_ylabel("y (arcsec)")
    fig.colorbar(shown, ax=ax, shrink=0.85)
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
