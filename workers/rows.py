"""Store rows: a block's results as the store names them (storage/schema.py), one function per result type.

A block's rows start at the store's fills (`empty_block`: every data array of the store, NaN floats, PENDING
status), so a result type writes only what it has. Images are native 2-D (NaN outside the mask and beyond the
true image shape) padded to the store's largest image; reconstructions are padded to the store's largest
source, with their true length in `reconstruction_size`. Arrays of a later pipeline stage carry its group
prefix (`source_pix/figure_of_merit`).
"""

from __future__ import annotations

import numpy as np

from storage.datasets import ImagingData
from storage.schema import TERMS
from workers.contract import DatasetSpec
from workers.model.grids import native


def empty_block(store, rows: tuple[DatasetSpec, ...], driver_run: int) -> dict[str, np.ndarray]:
    """Every data array of `store` for the datasets `rows`, at its fill, with each dataset's planned shape
    bucket and image shape and this driver run's number."""
    n = len(rows)
    out = {}
    for name in store.data_names:
        a = store.array(name)
        out[name] = np.full((n, *a.shape[1:]), a.fill_value, a.dtype)
    out["image_shape"][:] = np.array([r.image_shape for r in rows], np.int32).reshape(n, 2)
    out["shape_bucket"][:] = [r.bucket for r in rows]
    out["input_fingerprint"][:] = [r.fingerprint for r in rows]
    if "driver_run" in out:
        out["driver_run"][:] = driver_run
    return out


def fit_row(out: dict, i: int, result, j: int, data: ImagingData, mask: np.ndarray, vectors: np.ndarray,
            prefix: str = "") -> str:
    """Row i of `out` from lens j of an evaluated group (a FitResult of arrays (lenses, vectors, ...)) at
    `vectors` (V, n): the terms, reconstruction and images of its best vector, every vector's figure of merit and
    log-likelihood. Returns the reason the dataset FAILED ("" if its figure of merit is finite)."""
    p = prefix
    merit = np.asarray(result.figure_of_merit[j], np.float64)
    best = int(np.nanargmax(merit)) if np.isfinite(merit).any() else 0
    for term in TERMS:
        out[p + term][i] = getattr(result, term)[j, best]
    out[p + "parameters"][i] = vectors
    out[p + "evaluation_figure_of_merit"][i] = merit
    out[p + "evaluation_log_likelihood"][i] = result.log_likelihood[j]
    reconstruction = np.asarray(result.reconstruction[j, best])
    out[p + "reconstruction"][i, : reconstruction.size] = reconstruction
    out[p + "reconstruction_size"][i] = reconstruction.size
    if p + "mesh_centres" in out and result.mesh_centres is not None:
        centres = np.asarray(result.mesh_centres[j, best])
        out[p + "mesh_centres"][i, reconstruction.size - len(centres) : reconstruction.size] = centres
    used = int((~mask).sum())
    model_slim = np.asarray(result.model_image[j, best])[:used]
    residuals = (data.image[~mask] - model_slim) / data.noise_map[~mask]
    ny, nx = mask.shape
    out[p + "model_image"][i, :ny, :nx] = native(model_slim, mask)
    out[p + "normalized_residuals"][i, :ny, :nx] = native(residuals, mask)
    if np.isfinite(merit[best]):
        return ""
    terms = ", ".join(f"{t}={float(getattr(result, t)[j, best]):.6g}" for t in TERMS[1:5])
    return f"dataset {data.dataset_id}: non-finite figure of merit ({merit[best]}); {terms}"


LATER_SEARCH_ARRAYS = ("search_likelihood_seconds", "search_sampler_seconds")  # absent from older stores


def search_row(out: dict, i: int, row: dict) -> None:
    """Row i of `out` from a search's store values (LensSearch.to_row); a store created before the
    LATER_SEARCH_ARRAYS is written without them."""
    for name, value in row.items():
        if name in out or name.rpartition("/")[2] not in LATER_SEARCH_ARRAYS:
            out[name][i] = value
