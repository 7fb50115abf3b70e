"""Time PyAutoLens's own JAX likelihood the way a PyAutoLens JAX search calls it, for one case spec.

Runs under a Python that has ``autolens`` installed (``.venv-pyautolens/bin/python``, made by
``make .venv-pyautolens/.installed``), *not* the lensfleet venv: it imports autolens / autofit and nothing from
lensfleet. benchmarks/likelihood.py writes the spec (the same dataset, mask, over-sampling, model, settings and
parameter vectors its lensfleet side uses) and runs this script beside it, alternating the two, so that both are
timed under the same load:

    .venv-pyautolens/bin/python benchmarks/pyautolens_likelihood.py --spec case.json     # one case, JSON lines out

Call path replicated (PyAutoLens / PyAutoFit 2026.10.26.1):

- ``al.Imaging.from_fits`` -> ``apply_mask(Mask2D.circular)`` -> ``apply_over_sampling(lp, pixelization)``;
- ``al.AnalysisImaging(dataset, settings=al.Settings(...), use_jax=True)``;
- the model is an ``af.Collection(galaxies=af.Collection(lens=..., source=...))``: Isothermal + ExternalShear,
  an optional linear MGE lens light and an MGE source from ``al.model_util.mge_model_from`` (the workspace
  helper: all Gaussians of a basis share one centre and ell_comps), or a pixelized source
  ``af.Model(al.Pixelization, mesh=RectangularUniform, regularization=Constant)``;
- ``autofit.non_linear.fitness.Fitness(model, analysis, fom_is_log_likelihood=True,
  resample_figure_of_merit=<Nautilus's invalid_value>, batched=True, batch_size=V)`` -- the kwargs
  ``NonLinearSearch.make_fitness`` and ``Nautilus.fitness_overrides`` build for a JAX analysis;
- ``fitness.objective("scalar")`` == ``jax.jit(fitness.call)`` (one parameter vector) and
  ``fitness.objective("batched")`` == ``jax.jit(jax.vmap(fitness.call))`` (what Nautilus calls).

Spec keys: dataset_dir, mask_radius, over_sample_size_lp (a size, or {sub_sizes, radii}: radial bins about the
centre), over_sample_size_pixelization, source ("mge" or "rect"), source_gaussians, sigma_min,
lens_light_gaussians (per set; 0: none), lens_light_bases (sets), mesh_shape, regularization, settings
(PyAutoLens Settings kwargs), mixed (bool), parameter_names (lensfleet's names), vectors (V lists; row 0 is
the single-call vector), calls, vmap_calls, vmap_max_seconds.

The child imports autolens before jax: autonerves turns on JAX_ENABLE_X64 (and adds
--xla_disable_hlo_passes=constant_folding to XLA_FLAGS) at import, which JAX only reads when it is itself
imported -- import jax first and the "fp64" likelihood silently runs in float32. The parent
(benchmarks/likelihood.py) sets --xla_cpu_multi_thread_eigen=false, as lensfleet's engine does: with XLA's
default multi-threaded Eigen the 64-lane vmap of the positive-only MGE likelihood deadlocked on a 2-core
machine, and it is the like-for-like setting.

Timing: compile = wall time of the first call; ms/call = median of >= `calls` block_until_ready'd single
calls after 2 warm-up calls; vmap = median over batch calls after the compiling one, divided by V (at least
one batch; more until vmap_calls or vmap_max_seconds). Output: "@@RESULT {json}" lines, the last complete.
"""

import argparse
import json
import os
import statistics
import time


def _emit(record):
    print("@@RESULT " + json.dumps(record), flush=True)


def _our_name(path, per_basis):
    """lensfleet's parameter name of a PyAutoLens prior path, e.g. ('galaxies', 'lens', 'mass', 'centre',
    'centre_0') -> 'lens.mass.centre.0'; an MGE basis's shared priors -> 'lens.light.…' / 'source.…', set k's
    ell_comps (profiles k·per_basis … (k+1)·per_basis − 1) -> 'ell_comps.2k', 'ell_comps.2k+1'."""
    galaxy, leaf = path[1], path[-1]
    for vector in ("centre", "ell_comps"):
        if leaf.startswith(vector + "_"):
            index = int(leaf[len(vector) + 1:])
            if vector == "ell_comps" and "profile_list" in path:
                index += 2 * (int(path[path.index("profile_list") + 1]) // per_basis)
            leaf = f"{vector}.{index}"
    if galaxy == "source":
        return f"source.{leaf}"
    component = "light" if "bulge" in path else path[2]
    return f"lens.{component}.{leaf}"


def _build(spec):
    import numpy as np
    import autofit as af
    import autolens as al
    from astropy.io import fits
    from autofit.non_linear.fitness import Fitness

    folder = spec["dataset_dir"]
    pixel_scale = float(fits.getheader(os.path.join(folder, "psf.fits"))["PIXSCALE"])
    dataset = al.Imaging.from_fits(
        data_path=os.path.join(folder, "image.fits"),
        noise_map_path=os.path.join(folder, "noise_map.fits"),
        psf_path=os.path.join(folder, "psf.fits"),
        pixel_scales=pixel_scale,
    )
    mask = al.Mask2D.circular(shape_native=dataset.shape_native, pixel_scales=pixel_scale,
                              radius=spec["mask_radius"], centre=(0.0, 0.0))
    dataset = dataset.apply_mask(mask=mask)
    size_lp = spec["over_sample_size_lp"]
    if isinstance(size_lp, dict):  # radial bins about (0, 0), as the workspace over-samples a lens light
        size_lp = al.util.over_sample.over_sample_size_via_radial_bins_from(
            grid=dataset.grid, sub_size_list=size_lp["sub_sizes"], radial_list=size_lp["radii"],
            centre_list=[(0.0, 0.0)])
    dataset = dataset.apply_over_sampling(
        over_sample_size_lp=size_lp,
        over_sample_size_pixelization=spec["over_sample_size_pixelization"],
    )
    settings = al.Settings(use_mixed_precision=spec["mixed"], **spec["settings"])

    lens = af.Model(al.Galaxy, redshift=0.5, mass=af.Model(al.mp.Isothermal), shear=af.Model(al.mp.ExternalShear))
    if spec["lens_light_gaussians"]:
        lens.bulge = al.model_util.mge_model_from(
            mask_radius=spec["mask_radius"], total_gaussians=spec["lens_light_gaussians"],
            gaussian_per_basis=spec["lens_light_bases"], sigma_min=spec["sigma_min"]
        )
    if spec["source"] == "mge":
        bulge = al.model_util.mge_model_from(
            mask_radius=spec["mask_radius"], total_gaussians=spec["source_gaussians"], sigma_min=spec["sigma_min"]
        )
        source = af.Model(al.Galaxy, redshift=1.0, bulge=bulge)
    else:
        mesh = af.Model(al.mesh.RectangularUniform, shape=tuple(spec["mesh_shape"]))
        regularization = af.Model(al.reg.Constant)
        regularization.coefficient = spec["regularization"]
        source = af.Model(al.Galaxy, redshift=1.0,
                          pixelization=af.Model(al.Pixelization, mesh=mesh, regularization=regularization))
    model = af.Collection(galaxies=af.Collection(lens=lens, source=source))
    analysis = al.AnalysisImaging(dataset=dataset, settings=settings, use_jax=True)
    vectors = np.asarray(spec["vectors"], dtype=float)
    fitness = Fitness(model=model, analysis=analysis, fom_is_log_likelihood=True,
                      resample_figure_of_merit=af.Nautilus.invalid_value, batched=True, batch_size=len(vectors))
    # The spec's vectors are in lensfleet's order: put them in the model's prior order.
    names = [_our_name(path, spec["lens_light_gaussians"] if path[1] == "lens" else spec["source_gaussians"])
             for path in model.unique_prior_paths]
    missing = sorted(set(names) - set(spec["parameter_names"]))
    if missing:
        raise RuntimeError(f"no value for PyAutoLens parameters {missing}")
    order = [spec["parameter_names"].index(name) for name in names]
    return fitness, vectors[:, order], int(mask.pixels_in_mask)


def _time_calls(fn, arg, min_calls, min_seconds, max_seconds):
    import jax

    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        jax.block_until_ready(fn(arg))
        times.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        if len(times) >= min_calls and elapsed >= min_seconds:
            break
        if max_seconds is not None and elapsed >= max_seconds:
            break
    return times


def run(spec):
    # autolens must be imported before jax (see the module docstring).
    import autolens
    import jax
    import numpy as np

    record = dict(autolens_version=autolens.__version__, jax_version=jax.__version__,
                  x64=bool(jax.config.jax_enable_x64), xla_flags=os.environ.get("XLA_FLAGS", ""))
    fitness, vectors, pixels = _build(spec)
    record["pixels"] = pixels

    scalar = fitness.objective("scalar")
    t0 = time.perf_counter()
    record["figure_of_merit"] = float(jax.block_until_ready(scalar(vectors[0])))
    record["compile_s"] = time.perf_counter() - t0
    _emit(dict(record, stage="compiled"))
    for _ in range(2):
        jax.block_until_ready(scalar(vectors[0]))
    times = _time_calls(scalar, vectors[0], min_calls=spec["calls"], min_seconds=1.0, max_seconds=None)
    record["single_ms"] = 1e3 * statistics.median(times)
    record["single_calls"] = len(times)
    _emit(dict(record, stage="single"))

    batched = fitness.objective("batched")
    t0 = time.perf_counter()
    out = np.asarray(jax.block_until_ready(batched(vectors)))
    record["vmap_compile_s"] = time.perf_counter() - t0
    record["vmap_figure_of_merit_0"] = float(out[0])
    _emit(dict(record, stage="vmap_compiled"))
    times = _time_calls(batched, vectors, min_calls=spec["vmap_calls"], min_seconds=0.0,
                        max_seconds=spec["vmap_max_seconds"])
    record["vmap_ms_per_eval"] = 1e3 * statistics.median(times) / len(vectors)
    record["vmap_calls"] = len(times)
    _emit(dict(record, stage="done"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", required=True, help="the case spec (JSON file written by benchmarks/likelihood.py)")
    args = parser.parse_args()
    with open(args.spec) as f:
        run(json.load(f))


if __name__ == "__main__":
    main()
