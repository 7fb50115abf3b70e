"""`lensfleet show STORE ID -o fit.png`: the picture of one lens's fit, drawn from the result store.

Where each panel comes from
- model image, normalised residuals: the store (`model_image`, `normalized_residuals`, cropped to `image_shape`;
  NaN outside the mask).
- data: the store holds no data, so the lens's FITS files are read again from the catalog the run was made from —
  the path in the store's `catalog` attribute (written by `lensfleet run`), or `catalog=` (`--catalog`) when the
  store has none or the survey has moved. The data are shown on the pixels the fit used (the finite pixels of
  the stored model image).
- lens light (when the model has it): its blurred model image, the stored reconstruction's lens-light amplitudes
  times the lens-light columns at the best evaluated vector (the engine), and the data minus it.
- source: from the stored reconstruction of the best evaluated parameter vector (highest
  `evaluation_figure_of_merit`): a pixelized source is drawn cell by cell on its stored `mesh_centres`; an MGE
  source is evaluated on a grid over the source-plane region its image pixels trace to (workers.evaluate's
  `source_picture`), which needs the engine (JAX) and the dataset's masked grids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from storage.catalog import read_catalog
from storage.datasets import load_imaging
from storage.errors import StoreError
from storage.reader import open_results

from .config import FitConfig, parse_config
from .datasets import masked_imaging
from .evaluate import LensFit, lens_light_picture, source_picture
from .inversion.fit import TERMS, FitResult
from .model.description import parameter_names
from .pipeline import Stage
from .plot import SourcePicture, plot_fit


@dataclass(frozen=True)
class StoredFit:
    """The panels of one lens's picture (native 2-D, NaN outside the mask; `lens_light` the blurred lens-light model,
    None without lens light), its pixel scale (″) and the numbers in its title: figure_of_merit, chi_squared,
    pixels (used), reduced_chi_squared."""

    data: np.ndarray
    model_image: np.ndarray
    normalized_residuals: np.ndarray
    source: SourcePicture
    pixel_scale: float
    scalars: dict
    lens_light: np.ndarray | None = None

    @property
    def title(self) -> str:
        s = self.scalars
        return (f"{s['id']}   figure_of_merit {s['figure_of_merit']:.2f}   "
                f"χ²/N {s['reduced_chi_squared']:.3f} (N = {s['pixels']})")


def show_lens(store_url: str, dataset_id: str, out: str, catalog: str | None = None,
              storage_options: dict | None = None, corner: str | None = None, stage: str | None = None) -> StoredFit:
    """Draw the fit of `dataset_id` to `out` (PNG/PDF by extension), and with `corner` a corner plot of its lens
    parameters' posterior there (search mode), for pipeline stage `stage` (None: the last)."""
    fit = stored_fit(store_url, dataset_id, catalog, storage_options, stage)
    plot_fit(fit.data, fit.model_image, fit.normalized_residuals, fit.source, fit.pixel_scale, fit.title, out,
             fit.lens_light)
    if corner:
        show_corner(store_url, dataset_id, corner, storage_options, stage)
    return fit


def pick_stage(config: FitConfig, stage: str | None, store_url: str) -> Stage:
    """The pipeline stage named `stage` (None: the last one)."""
    stages = {s.name: s for s in config.pipeline}
    if stage is None:
        return config.pipeline[-1]
    if stage not in stages:
        raise StoreError(f"store {store_url} has no stage {stage!r} (stages: {', '.join(stages)})")
    return stages[stage]


LENS_PARAMETER_PREFIX = "lens."


def show_corner(store_url: str, dataset_id: str, out: str, storage_options: dict | None = None,
                stage: str | None = None) -> None:
    """A corner plot of the stored posterior of `dataset_id`'s lens parameters (mass, shear, lens light), with
    the max-likelihood point marked, for pipeline stage `stage` (None: the last searched one). Needs a
    search-mode store."""
    from .plot import plot_corner

    results = open_results(store_url, storage_options)
    config = parse_config(results.attrs["config"], f"{store_url} (stored config)")
    searched = [s for s in config.pipeline if s.search is not None]
    chosen = pick_stage(config, stage, store_url) if stage else (searched[-1] if searched else config.pipeline[0])
    p = f"{chosen.group}/" if chosen.group else ""
    if chosen.search is None or p + "samples" not in results.store.names:
        raise StoreError(f"store {store_url} holds no posterior samples for stage {chosen.name} (it was not "
                         "searched)")
    row = results.lens(dataset_id)
    if row["status"] != "DONE":
        raise StoreError(f"lens {dataset_id} in {store_url} is {row['status']}; there is no posterior to show")
    names = list(chosen.parameter_names)
    keep = [i for i, n in enumerate(names) if n.startswith(LENS_PARAMETER_PREFIX)]
    n = int(row[p + "sample_count"])
    samples = np.asarray(row[p + "samples"])[:n][:, keep]
    weights = np.asarray(row[p + "sample_weight"])[:n]
    best = np.asarray(row[p + "parameter_max_likelihood"])[keep]
    title = (f"{dataset_id}   {chosen.name}   ln Z = {float(row[p + 'search_log_evidence']):.2f} ± "
             f"{float(row[p + 'search_log_evidence_error']):.2f}   ({n} samples; red: max likelihood)")
    plot_corner(samples, weights, [names[i] for i in keep], out, title=title, markers=best)


def stored_fit(store_url: str, dataset_id: str, catalog: str | None = None,
               storage_options: dict | None = None, stage: str | None = None) -> StoredFit:
    """The panels of `dataset_id`'s picture from the store (and its data from the catalog's FITS), for pipeline
    stage `stage` (None: the last)."""
    results = open_results(store_url, storage_options)
    try:
        row = results.lens(dataset_id)
    except KeyError as e:
        raise StoreError(str(e.args[0])) from None
    if row["status"] != "DONE":
        reason = f": {row['error']}" if row.get("error") else ""
        raise StoreError(f"lens {dataset_id} in {store_url} is {row['status']}{reason}; there is no fit to show")
    catalog = catalog or results.attrs.get("catalog")
    if not catalog:
        raise StoreError(f"store {store_url} does not record its catalog; give it with --catalog")
    entries = {e.id: e for e in read_catalog(catalog, storage_options).entries}
    if dataset_id not in entries:
        raise StoreError(f"lens {dataset_id} is not in the catalog {catalog}")
    entry = entries[dataset_id]

    config = parse_config(results.attrs["config"], f"{store_url} (stored config)")
    names = results.attrs.get("parameter_names")
    if names is not None and tuple(names) != parameter_names(config.model):
        raise StoreError(f"store {store_url}: parameter_names {names} do not match its config's model")
    chosen = pick_stage(config, stage, store_url)
    model, p = chosen.model, f"{chosen.group}/" if chosen.group else ""
    row = {**row, **{name[len(p):]: value for name, value in row.items() if p and name.startswith(p)}}

    ny, nx = (int(n) for n in row["image_shape"])
    model_image = np.asarray(row["model_image"])[:ny, :nx]
    residuals = np.asarray(row["normalized_residuals"])[:ny, :nx]
    data = load_imaging(entry.path, dataset_id, entry.pixel_scale, storage_options, entry.band)
    if data.image.shape != (ny, nx):
        raise StoreError(f"lens {dataset_id}: the image at {entry.path} is {data.image.shape}, the store fitted "
                         f"{(ny, nx)}; is this the run's catalog?")
    mask = ~np.isfinite(model_image)
    shown_data = np.where(mask, np.nan, data.image)

    merit = np.asarray(row["evaluation_figure_of_merit"], np.float64)
    best = int(np.nanargmax(merit)) if np.isfinite(merit).any() else 0
    vector = np.asarray(row["parameters"], np.float64)[best]
    size = int(row["reconstruction_size"])
    reconstruction = np.asarray(row["reconstruction"])[:size]
    mesh = None
    if model.pixelized:
        cells = model.source.pixels
        mesh = np.asarray(row["mesh_centres"])[size - cells : size]
    imaging = masked_imaging(data, config.dataset, model, entry.mask_radius, entry.mask_centre)
    stored = FitResult(**{t: np.float64(row[t]) for t in TERMS}, reconstruction=reconstruction, mesh_centres=mesh)
    lens_fit = LensFit(imaging, vector, stored)
    source = source_picture(lens_fit, model)

    used = int((~mask).sum())
    scalars = {"id": dataset_id if not p else f"{dataset_id} ({chosen.name})", "figure_of_merit": float(row["figure_of_merit"]),
               "chi_squared": float(row["chi_squared"]), "pixels": used,
               "reduced_chi_squared": float(row["chi_squared"]) / used if used else float("nan")}
    return StoredFit(shown_data, model_image, residuals, source, data.pixel_scale, scalars,
                     lens_light_picture(lens_fit, model, mask))
