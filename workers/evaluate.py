"""Single-lens commands: evaluate a model on one dataset, and time its likelihood the way a search calls it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from storage.datasets import ImagingData

from .config import FitConfig
from .datasets import masked_imaging
from .inversion.batch import evaluate
from .inversion.fit import TERMS, FitResult, lens_light_image
from .inversion.imaging import MaskedImaging
from .inversion.light import mge_images, mge_sigmas
from .inversion.mass import ray_trace
from .inversion.sizing import plan_batch
from .model.description import Model, vector_from_params
from .inversion.parameters import unpack
from .model.grids import native
from .plot import SourcePicture, plot_fit
from .runtime import device_name, peak_memory_mb
import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class LensFit:
    """One evaluated lens: its masked dataset, the parameter vector and the fit (arrays included)."""

    imaging: MaskedImaging
    vector: np.ndarray
    result: FitResult


def fit_lens(data: ImagingData, config: FitConfig, params: dict) -> LensFit:
    """Validate and fit one loaded dataset with params.json-style `params`."""
    imaging = masked_imaging(data, config.dataset, config.model)
    vector = vector_from_params(config.model, params)
    batched = evaluate(imaging, vector[None, :], config.model, with_arrays=True)
    return LensFit(imaging, vector, jax.tree.map(lambda a: np.asarray(a[0]), batched))


def result_record(fit: LensFit) -> dict:
    """result.json: every term (PyAutoLens's names), the reconstruction and the slim model image."""
    r = fit.result
    record = {name: float(getattr(r, name)) for name in TERMS}
    record["reconstruction"] = np.asarray(r.reconstruction).tolist()
    record["model_image"] = np.asarray(r.model_image)[: fit.imaging.bucket.pixels].tolist()
    return record


def benchmark(
    data: ImagingData, config: FitConfig, params: dict, batch: int = 64, repeats: int = 20, lenses: int = 16
) -> dict:
    """ms per evaluation single-call and over `batch` vectors as sizing.plan_batch plans them (its eval chunk
    for this device; every candidate chunk is timed too), compile seconds, peak memory, device, and the plan for a block of `lenses`
    lenses × `batch` vectors (sizing.BatchPlan.as_dict: eval chunk, lenses per device call, memory)."""
    imaging = jax.device_put(masked_imaging(data, config.dataset, config.model))  # on the device once
    vector = vector_from_params(config.model, params)
    rng = np.random.default_rng(0)
    vectors = vector + 1e-3 * rng.standard_normal((batch, vector.size))
    model = config.model

    start = time.perf_counter()
    jax.block_until_ready(evaluate(imaging, vectors[:1], model))
    compile_s = time.perf_counter() - start
    plan = plan_batch(imaging, vectors, model, lenses=lenses, measure=True)

    def median_ms(vs: np.ndarray, chunk: int) -> float:
        jax.block_until_ready(evaluate(imaging, vs, model, chunk=chunk).figure_of_merit)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            jax.block_until_ready(evaluate(imaging, vs, model, chunk=chunk).figure_of_merit)
            times.append(time.perf_counter() - t)
        return 1e3 * float(np.median(times))

    single = median_ms(vectors[:1], 0)
    batched = median_ms(vectors, plan.eval_chunk) / batch
    return {
        "single_ms": single,
        "batched_ms_per_eval": batched,
        "batch": batch,
        "compile_s": compile_s,
        "peak_memory_mb": peak_memory_mb(),
        "device": device_name(),
        "plan": {"lenses": lenses, **plan.as_dict()},
    }


def source_picture(fit: LensFit, model: Model, pixels: int = 200) -> SourcePicture:
    """The source plane of a fit: the MGE evaluated on a grid around the traced pixels, or the mesh."""
    r = fit.result
    if model.pixelized:
        ny, nx = model.source.shape
        image = np.asarray(r.reconstruction)[-ny * nx:].reshape(ny, nx)
        return SourcePicture(image, None, np.asarray(r.mesh_centres).reshape(ny, nx, 2))
    params = unpack(model, fit.vector)
    traced = np.asarray(ray_trace(jnp.asarray(fit.imaging.lp_points), params.mass))
    (y0, x0), (y1, x1) = traced.min(0), traced.max(0)
    ys, xs = np.linspace(y1, y0, pixels), np.linspace(x0, x1, pixels)
    grid = np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)
    sigmas = mge_sigmas(model.source.gaussians, model.source.sigma_min, fit.imaging.mask_radius)
    basis = mge_images(jnp.asarray(grid), params.source.centre, params.source.ell_comps, sigmas)
    amplitudes = np.asarray(r.reconstruction)[-model.source.components:]
    image = (np.asarray(basis) @ amplitudes).reshape(pixels, pixels)
    return SourcePicture(image, (x0, x1, y0, y1))


def lens_light_picture(fit: LensFit, model: Model, mask: np.ndarray) -> np.ndarray | None:
    """The fit's blurred lens-light model image, native 2-D (NaN outside the mask); None without lens light."""
    if model.lens_light is None:
        return None
    image = lens_light_image(fit.imaging, jnp.asarray(fit.vector), model, jnp.asarray(fit.result.reconstruction))
    return native(np.asarray(image)[: fit.imaging.bucket.pixels], mask)


def plot_lens_fit(fit: LensFit, model: Model, data: ImagingData, mask: np.ndarray, title: str, path: str) -> None:
    """Draw data / model / normalised residuals / source of a single-lens fit, and with lens light its model
    and the lens-light-subtracted data."""
    n = fit.imaging.bucket.pixels
    model_slim = np.asarray(fit.result.model_image)[:n]
    residuals = (data.image[~mask] - model_slim) / data.noise_map[~mask]
    plot_fit(
        native(data.image[~mask], mask), native(model_slim, mask), native(residuals, mask),
        source_picture(fit, model), data.pixel_scale, title, path, lens_light_picture(fit, model, mask),
    )
