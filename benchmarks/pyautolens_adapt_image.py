"""PyAutoLens's own figure-of-merit terms for the two *adapt-image* rectangular meshes
(``al.mesh.RectangularBilinearAdaptImage`` and ``al.mesh.RectangularRTUAdaptImage``), which ../shared/reference2
lacks, on its datasets A0 and B0.

Runs under PyAutoLens's own Python (``.venv-pyautolens/bin/python``, PyAutoLens 2026.10.26.1) and imports nothing
from lensfleet; it writes tests/data/adapt_image.json:

    cd /work/main && .venv-pyautolens/bin/python benchmarks/pyautolens_adapt_image.py --out tests/data/adapt_image.json

Setup = reference2's ``rtu_pos_edge0`` / ``bilinear_pos_edge0`` with only the mesh class changed: circular mask of
the dataset's radius about (0, 0), over-sampling 2 for light profiles and for the pixelization, lens = Isothermal +
ExternalShear (no lens light), source = ``al.Pixelization(mesh=MESH, regularization=al.reg.Constant(1.0))``,
``al.Settings(use_positive_only_solver=True, use_edge_zeroed_pixels=True, use_border_relocator=False)``. The mass
parameters are reference2.json's ``rtu_pos_edge0`` records ``true`` and ``einstein_radius_plus2pc``.

Adapt image: the dataset's signal-to-noise map on the mask, data / noise_map (PyAutoGalaxy's
``subtracted_signal_to_noise_map`` of the source when the lens has no light), floored as
``galaxy_name_image_dict_via_result_from`` does (values below ``adapt_minimum_percent`` × its maximum are set to
that value; adapt_minimum_percent = 0.01, autogalaxy/config/general.yaml). It is handed to the fit as
``al.AdaptImages(galaxy_image_dict={source_galaxy: al.Array2D(values=..., mask=dataset.mask)})`` and
``al.FitImaging(dataset, tracer, adapt_images=..., settings=...)``; the source galaxy's pixelization receives it as
``adapt_data`` and ``RectangularRTUAdaptImage.mesh_weight_map_from`` turns it into the per-masked-pixel weights
(clip at 1e-12, ** weight_power, floor at weight_floor, normalise to sum 1) of the per-axis CDF.

Backends: ``numpy`` (fp64) always; ``jax_fp64`` (``jax.jit`` of the same fit built with ``xp=jnp``, jax x64 on)
when it runs. Each record holds the numpy terms at top level and the jax terms (if any) under ``jax_fp64``.

JSON layout::

    autolens_version, adapt_minimum_percent (0.01), mesh_shape [20, 20], regularization_coefficient (1.0),
    over_sample_size (2), settings {...}, term_names [...], mass_param_order [...], jax_version,
    jax_fp64_recorded,
    datasets -> A0 | B0 -> {
        pixel_scale, mask_radius, n_masked_pixels,
        adapt_image: [floored S/N over the masked pixels, PyAutoLens's slim order = row-major unmasked pixels],
        adapt_image_max_before_floor, adapt_image_floor, n_floored_pixels,
        density_check: {rtu_pos_edge0 | bilinear_pos_edge0: {figure_of_merit (numpy, this setup),
                        jax_fp64_figure_of_merit (if run), reference2_jax_fp64_figure_of_merit, abs_diff, ok}},
        sensitivity_check: {...}   (adapt image changed -> figure of merit changes; uniform adapt image on the
                                    RTU mesh reproduces the density mesh),
        cases -> CASE -> {
            mesh: {class, shape, weight_power, weight_floor},
            n_weight_floored_pixels (masked pixels whose adapt**weight_power falls below weight_floor),
            MASS_MODEL (true | einstein_radius_plus2pc) -> {
                mass_params [centre y, centre x, ell_comps 0, ell_comps 1, einstein_radius, slope (ignored),
                             gamma_1, gamma_2],
                figure_of_merit, log_evidence, log_likelihood, chi_squared, noise_normalization,
                regularization_term, log_det_curvature_reg_matrix_term, log_det_regularization_matrix_term,
                reconstruction: [400 values, mesh row-major from the top-left cell],
                jax_fp64: {same terms + reconstruction} | absent, jax_minus_numpy_figure_of_merit}}}

CASE: bilinear_image_pos_edge0, rtu_image_pos_edge0 (weight_power 1, weight_floor 0),
bilinear_image_p2_f0p05_pos_edge0, rtu_image_p2_f0p05_pos_edge0 (weight_power 2, weight_floor 0.05).
"""

import argparse
import json
import os
import time

from pyautolens_datasets import masked_dataset

ADAPT_MINIMUM_PERCENT = 0.01
MASS_MODELS = ("true", "einstein_radius_plus2pc")
TERMS = ("figure_of_merit", "log_evidence", "log_likelihood", "chi_squared", "noise_normalization",
         "regularization_term", "log_det_curvature_reg_matrix_term", "log_det_regularization_matrix_term")
INVERSION_TERMS = ("regularization_term", "log_det_curvature_reg_matrix_term", "log_det_regularization_matrix_term")
# CASE -> (mesh class name, weight_power, weight_floor)
CASES = {
    "bilinear_image_pos_edge0": ("RectangularBilinearAdaptImage", 1.0, 0.0),
    "rtu_image_pos_edge0": ("RectangularRTUAdaptImage", 1.0, 0.0),
    "bilinear_image_p2_f0p05_pos_edge0": ("RectangularBilinearAdaptImage", 2.0, 0.05),
    "rtu_image_p2_f0p05_pos_edge0": ("RectangularRTUAdaptImage", 2.0, 0.05),
}
DENSITY_CASES = {"rtu_pos_edge0": "RectangularRTUAdaptDensity",
                 "bilinear_pos_edge0": "RectangularBilinearAdaptDensity"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference2", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                                                              "reference2"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--no-jax", action="store_true", help="numpy backend only")
    parser.add_argument("--datasets", default="A0,B0")
    args = parser.parse_args()

    # autolens before jax: autonerves sets JAX_ENABLE_X64 at import (see benchmarks/pyautolens_likelihood.py).
    import autolens as al
    import numpy as np

    jax = jnp = None
    if not args.no_jax:
        try:
            import jax
            import jax.numpy as jnp
            jax.config.update("jax_enable_x64", True)
        except Exception as error:  # pragma: no cover
            print(f"jax unavailable: {error!r}")
            jax = jnp = None

    meta = json.load(open(os.path.join(args.reference2, "reference2.json")))
    datasets_dir = os.path.join(args.reference2, "..", "reference", "datasets")
    shape = tuple(meta["mesh_shape"])
    coefficient = meta["regularization_coefficient"]
    settings_kwargs = dict(use_positive_only_solver=True, use_edge_zeroed_pixels=True, use_border_relocator=False)

    def settings():
        return al.Settings(**settings_kwargs)

    def mesh_from(name, weight_power=None, weight_floor=None):
        cls = getattr(al.mesh, name)
        if weight_power is None:
            return cls(shape=shape)
        return cls(shape=shape, weight_power=weight_power, weight_floor=weight_floor)

    def galaxies_from(p, mesh):
        lens = al.Galaxy(
            redshift=0.5,
            mass=al.mp.Isothermal(centre=(p[0], p[1]), ell_comps=(p[2], p[3]), einstein_radius=p[4]),
            shear=al.mp.ExternalShear(gamma_1=p[6], gamma_2=p[7]),
        )
        source = al.Galaxy(redshift=1.0, pixelization=al.Pixelization(
            mesh=mesh, regularization=al.reg.Constant(coefficient=coefficient)))
        return lens, source

    def fit_from(dataset, p, mesh, adapt, xp):
        lens, source = galaxies_from(p, mesh)
        adapt_images = None if adapt is None else al.AdaptImages(galaxy_image_dict={source: adapt})
        kwargs = {} if xp is np else {"xp": xp}
        return al.FitImaging(dataset=dataset, tracer=al.Tracer(galaxies=[lens, source]),
                             adapt_images=adapt_images, settings=settings(), **kwargs)

    def term(fit, name):
        """The fit's own term; the regularization / log-det terms live on its inversion."""
        return getattr(fit.inversion, name) if name in INVERSION_TERMS else getattr(fit, name)

    def terms_numpy(dataset, p, mesh, adapt):
        fit = fit_from(dataset, [float(v) for v in p], mesh, adapt, np)
        out = {name: float(term(fit, name)) for name in TERMS}
        out["reconstruction"] = [float(v) for v in np.asarray(fit.inversion.reconstruction)]
        return out

    jitted = {}

    def terms_jax(dataset_name, dataset, p, mesh_key, adapt):
        """jax.jit of the fit with the mass vector as the traced argument (one compile per dataset × mesh)."""
        key = (dataset_name, mesh_key, None if adapt is None else id(adapt))
        if key not in jitted:
            def f(vector):
                fit = fit_from(dataset, [vector[i] for i in range(8)], mesh_from(*mesh_key), adapt, jnp)
                out = {name: term(fit, name) for name in TERMS}
                out["reconstruction"] = fit.inversion.reconstruction
                return out
            jitted[key] = jax.jit(f)
        out = jitted[key](jnp.asarray(p, dtype=jnp.float64))
        return {name: (float(v) if name != "reconstruction" else [float(x) for x in np.asarray(v)])
                for name, v in out.items()}

    use_jax = jax is not None
    record = {
        "autolens_version": al.__version__,
        "jax_version": jax.__version__ if jax is not None else None,
        "adapt_minimum_percent": ADAPT_MINIMUM_PERCENT,
        "mesh_shape": list(shape),
        "regularization_coefficient": coefficient,
        "over_sample_size": meta["over_sample_size_lp"],
        "settings": settings_kwargs,
        "term_names": list(TERMS),
        "mass_param_order": meta["mass_param_order"],
        "datasets": {},
    }

    for name in args.datasets.split(","):
        folder = os.path.join(datasets_dir, name)
        dataset, truth = masked_dataset(folder, meta["over_sample_size_lp"], meta["over_sample_size_pixelization"])

        # Adapt image: S/N on the mask (slim order), floored at ADAPT_MINIMUM_PERCENT × max.
        sn = np.asarray(dataset.data.array) / np.asarray(dataset.noise_map.array)
        floor = ADAPT_MINIMUM_PERCENT * np.max(sn)
        floored = np.where(sn < floor, floor, sn)
        adapt = al.Array2D(values=floored, mask=dataset.mask)
        # Check it is the slim order of the masked array: the S/N computed from the native arrays, row-major.
        unmasked = ~np.asarray(dataset.mask)
        native_sn = (np.asarray(dataset.data.native.array)[unmasked]
                     / np.asarray(dataset.noise_map.native.array)[unmasked])
        assert np.array_equal(native_sn, sn), "slim order is not row-major"
        print(f"{name}: {sn.size} masked pixels, S/N max {np.max(sn):.4f}, floor {floor:.4f}, "
              f"{int(np.sum(sn < floor))} floored", flush=True)

        ref_cases = meta["datasets"][name]["cases"]
        entry = {
            "pixel_scale": truth["pixel_scale"], "mask_radius": truth["mask_radius"],
            "n_masked_pixels": int(sn.size),
            "adapt_image": [float(v) for v in floored],
            "adapt_image_max_before_floor": float(np.max(sn)),
            "adapt_image_floor": float(floor), "n_floored_pixels": int(np.sum(sn < floor)),
            "density_check": {}, "sensitivity_check": {}, "cases": {},
        }

        # 1. This setup reproduces reference2's adapt-density records.
        p_true = ref_cases["rtu_pos_edge0"]["true"]["mass_params"]
        density_fom = {}
        for case, cls_name in DENSITY_CASES.items():
            t0 = time.time()
            fom = terms_numpy(dataset, p_true, mesh_from(cls_name), None)["figure_of_merit"]
            ref = ref_cases[case]["true"]["jax_fp64"]["figure_of_merit"]
            check = {"figure_of_merit": fom, "reference2_jax_fp64_figure_of_merit": ref,
                     "abs_diff": abs(fom - ref), "ok": abs(fom - ref) < 1e-6}
            if use_jax:
                try:
                    jfom = terms_jax(name, dataset, p_true, (cls_name,), None)["figure_of_merit"]
                    check.update(jax_fp64_figure_of_merit=jfom, jax_abs_diff=abs(jfom - ref))
                except Exception as error:
                    print(f"jax failed on {case}: {error!r}; numpy only from here", flush=True)
                    use_jax = False
            density_fom[case] = fom
            entry["density_check"][case] = check
            print(f"{name} {case} true: numpy {fom!r} reference2 jax_fp64 {ref!r} |diff| {abs(fom - ref):.3e} "
                  f"{'OK' if check['ok'] else 'MISMATCH'}"
                  + (f"; jax {check['jax_fp64_figure_of_merit']!r}" if 'jax_fp64_figure_of_merit' in check else "")
                  + f" ({time.time() - t0:.1f}s)", flush=True)

        # 2. The adapt-image cases.
        for case, (cls_name, power, wfloor) in CASES.items():
            mesh_key = (cls_name, power, wfloor)
            weights = np.clip(floored, 1e-12, None) ** power
            case_entry = {"mesh": {"class": cls_name, "shape": list(shape), "weight_power": power,
                                   "weight_floor": wfloor},
                          "n_weight_floored_pixels": int(np.sum(weights < wfloor))}
            for model in MASS_MODELS:
                p = ref_cases["rtu_pos_edge0"][model]["mass_params"]
                t0 = time.time()
                rec = {"mass_params": p}
                rec.update(terms_numpy(dataset, p, mesh_from(*mesh_key), adapt))
                t_np = time.time() - t0
                msg = f"{name} {case} {model}: numpy {rec['figure_of_merit']!r} ({t_np:.1f}s)"
                if use_jax:
                    try:
                        t0 = time.time()
                        rec["jax_fp64"] = terms_jax(name, dataset, p, mesh_key, adapt)
                        rec["jax_minus_numpy_figure_of_merit"] = (rec["jax_fp64"]["figure_of_merit"]
                                                                  - rec["figure_of_merit"])
                        rec["jax_minus_numpy_max_abs_reconstruction"] = float(np.max(np.abs(
                            np.array(rec["jax_fp64"]["reconstruction"]) - np.array(rec["reconstruction"]))))
                        msg += (f"; jax {rec['jax_fp64']['figure_of_merit']!r} "
                                f"(diff {rec['jax_minus_numpy_figure_of_merit']:.3e}, {time.time() - t0:.1f}s)")
                    except Exception as error:
                        print(f"jax failed on {case}: {error!r}; numpy only from here", flush=True)
                        use_jax = False
                print(msg, flush=True)
                case_entry[model] = rec
            entry["cases"][case] = case_entry

        # 3. The adapt image is really used: its figure of merit differs from the density mesh's, changes when
        #    the adapt image changes (its square root), and a uniform adapt image on the RTU mesh (weights 1/N,
        #    as the density mesh's) gives back the density figure of merit.
        sqrt_adapt = al.Array2D(values=np.sqrt(floored), mask=dataset.mask)
        ones_adapt = al.Array2D(values=np.ones_like(floored), mask=dataset.mask)
        for case, density_case in (("rtu_image_pos_edge0", "rtu_pos_edge0"),
                                   ("bilinear_image_pos_edge0", "bilinear_pos_edge0")):
            cls_name = CASES[case][0]
            fom = entry["cases"][case]["true"]["figure_of_merit"]
            fom_sqrt = terms_numpy(dataset, p_true, mesh_from(cls_name, 1.0, 0.0), sqrt_adapt)["figure_of_merit"]
            fom_ones = terms_numpy(dataset, p_true, mesh_from(cls_name, 1.0, 0.0), ones_adapt)["figure_of_merit"]
            check = {"figure_of_merit": fom, "density_figure_of_merit": density_fom[density_case],
                     "sqrt_adapt_image_figure_of_merit": fom_sqrt, "uniform_adapt_image_figure_of_merit": fom_ones,
                     "differs_from_density": abs(fom - density_fom[density_case]) > 1e-6,
                     "changes_with_adapt_image": abs(fom - fom_sqrt) > 1e-6}
            entry["sensitivity_check"][case] = check
            print(f"{name} {case} true: adapt {fom!r}, density {density_fom[density_case]!r}, "
                  f"sqrt(adapt) {fom_sqrt!r}, uniform adapt {fom_ones!r}", flush=True)

        record["datasets"][name] = entry

    record["jax_fp64_recorded"] = use_jax
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
