"""The picture astronomers expect of a fit: data, model, normalised residuals and the source reconstruction, and
with lens light its model and the lens-light-subtracted data (where the arcs show)."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


@dataclass(frozen=True)
class SourcePicture:
    """The source plane: `image` (ny, nx), either an MGE evaluated on a grid covering `extent` = (x_min, x_max,
    y_min, y_max) arcsec, or a pixelized reconstruction drawn cell by cell about its cell `centres` (ny, nx, 2),
    (y, x) arcsec — uniform and adaptive meshes alike (extent then None)."""

    image: np.ndarray
    extent: tuple[float, float, float, float] | None
    centres: np.ndarray | None = None

    @property
    def mesh(self) -> bool:
        return self.centres is not None


def plot_fit(
    data: np.ndarray,
    model_image: np.ndarray,
    normalized_residuals: np.ndarray,
    source: SourcePicture,
    pixel_scale: float,
    title: str,
    path: str,
    lens_light: np.ndarray | None = None,
) -> None:
    """Write a 2×2 figure (PNG/PDF by extension) with colour bars — 2×3 with the lens-light model and the data
    minus it when `lens_light` is given; images are native 2-D, NaN outside the mask."""
    ny, nx = data.shape
    half_y, half_x = ny * pixel_scale / 2, nx * pixel_scale / 2
    image_extent = (-half_x, half_x, -half_y, half_y)
    columns = 2 if lens_light is None else 3
    fig, axes = plt.subplots(2, columns, figsize=(5 * columns, 9), constrained_layout=True)
    vmax = np.nanmax(np.abs(data))
    panels = [
        (axes[0, 0], data, "data", "viridis", (np.nanmin(data), vmax), image_extent),
        (axes[0, 1], model_image, "model image", "viridis", (np.nanmin(data), vmax), image_extent),
        (axes[1, 0], normalized_residuals, "normalised residuals (data − model)/σ", "RdBu_r", (-4, 4), image_extent),
    ]
    if lens_light is not None:
        subtracted = data - lens_light
        panels += [
            (axes[0, 2], lens_light, "lens light model", "viridis", (np.nanmin(data), vmax), image_extent),
            (axes[1, 2], subtracted, "data − lens light", "viridis",
             (np.nanmin(subtracted), np.nanmax(subtracted)), image_extent),
        ]
    for ax, img, label, cmap, (lo, hi), extent in panels:
        shown = ax.imshow(img, origin="upper", extent=extent, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(label)
        ax.set_xlabel("x (arcsec)")
        ax.set_ylabel("y (arcsec)")
        fig.colorbar(shown, ax=ax, shrink=0.85)
    ax = axes[1, 1]
    if source.mesh:
        shown = ax.pcolormesh(source.centres[..., 1], source.centres[..., 0], source.image, shading="nearest",
                              cmap="magma")
        ax.set_aspect("equal")
    else:
        shown = ax.imshow(source.image, origin="upper", extent=source.extent, cmap="magma", interpolation="bilinear")
    ax.set_title("source reconstruction" + (" (mesh cells)" if source.mesh else " (MGE)"))
    ax.set_xlabel("x (arcsec)")
    ax.set_ylabel("y (arcsec)")
    fig.colorbar(shown, ax=ax, shrink=0.85)
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_corner(samples: np.ndarray, weights: np.ndarray, names: list[str], path: str, title: str = "",
                markers: np.ndarray | None = None, bins: int = 30) -> None:
    """A corner plot of weighted posterior samples (n, d): weighted histograms on the diagonal, weighted 2-D
    histograms below it; `markers` (d,) (e.g. the max-likelihood point) drawn as lines and points."""
    samples = np.asarray(samples, np.float64)
    weights = np.asarray(weights, np.float64)
    d = samples.shape[1]
    fig, axes = plt.subplots(d, d, figsize=(1.9 * d, 1.9 * d), squeeze=False)
    lo = np.array([_weighted_quantile(samples[:, j], weights, 0.001) for j in range(d)])
    hi = np.array([_weighted_quantile(samples[:, j], weights, 0.999) for j in range(d)])
    narrow = hi - lo <= 1e-6 * np.maximum(1.0, np.abs(lo))  # a collapsed posterior: show ±1e-3 around it
    pad = 1e-3 * np.maximum(1.0, np.abs(lo))
    lo, hi = np.where(narrow, lo - pad, lo), np.where(narrow, hi + pad, hi)
    for row in range(d):
        for col in range(d):
            ax = axes[row, col]
            if col > row:
                ax.set_visible(False)
                continue
            if col == row:
                ax.hist(samples[:, col], bins=bins, range=(lo[col], hi[col]), weights=weights, histtype="step",
                        color="k")
                ax.set_yticks([])
                if markers is not None:
                    ax.axvline(markers[col], color="C3", lw=1)
            else:
                ax.hist2d(samples[:, col], samples[:, row], bins=bins, weights=weights,
                          range=[[lo[col], hi[col]], [lo[row], hi[row]]], cmap="Greys")
                if markers is not None:
                    ax.plot(markers[col], markers[row], "o", color="C3", ms=3)
            ax.tick_params(labelsize=6)
            ax.ticklabel_format(useOffset=False)
            if row == d - 1:
                ax.set_xlabel(names[col], fontsize=7)
            else:
                ax.set_xticklabels([])
            if col == 0 and row > 0:
                ax.set_ylabel(names[row], fontsize=7)
            elif col > 0:
                ax.set_yticklabels([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cdf = np.cumsum(weights[order])
    return float(np.interp(q * cdf[-1], cdf, values[order]))
