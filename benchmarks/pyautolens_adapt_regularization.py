"""PyAutoLens's own figure-of-merit terms and intermediate arrays for adaptive-brightness regularization,
``al.reg.Adapt(inner_coefficient, outer_coefficient, signal_scale)``, on the two *adapt-image* rectangular meshes
(``al.mesh.RectangularBilinearAdaptImage`` and ``al.mesh.RectangularRTUAdaptImage``, 20 x 20), on datasets A0 and
B0 of ../shared/reference.

Runs under PyAutoLens's own Python (``.venv-pyautolens/bin/python``, PyAutoLens 2026.10.26.1) and imports nothing
from lensfleet; it writes tests/data/adapt_regularization.json:

    cd /work/main && nice -n 10 .venv-pyautolens/bin/python benchmarks/pyautolens_adapt_regularization.py \\
        --out tests/data/adapt_regularization.json

Setup = benchmarks/pyautolens_adapt_image.py's (tests/data/adapt_image.json) with only the regularization changed:
circular mask of the dataset's radius about (0, 0), over-sampling 2 for light profiles and for the pixelization,
lens = Isothermal + ExternalShear (no lens light; reference2.json's ``rtu_pos_edge0`` mass records ``true`` and
``einstein_radius_plus2pc``), source = ``al.Pixelization(mesh=MESH(shape=(20, 20)), regularization=al.reg.Adapt(...))``
with the mesh's default weight_power 1 / weight_floor 0,
``al.Settings(use_positive_only_solver=True, use_edge_zeroed_pixels=True, use_border_relocator=False)`` (the
``*_cholesky`` case sets use_positive_only_solver=False, which also switches edge zeroing off: PyAutoArray consults
use_edge_zeroed_pixels only under the positive-only solver). Adapt image = the dataset's S/N map on the mask
(data / noise_map, slim order), values below 1% of its maximum raised to it, handed to the fit as
``al.AdaptImages(galaxy_image_dict={source_galaxy: al.Array2D(values=..., mask=dataset.mask)})``; the mapper uses
it both for the mesh (the adapt-image CDF) and, unchanged, as ``adapt_data`` for ``pixel_signals_from``.

What PyAutoArray computes for ``Adapt`` (2026.10.26.1, autoarray/...; recorded under ``formulas`` in the JSON):
pixel signals (mapper_util.adaptive_pixel_signals_from) -> regularization weights
(adapt.adapt_regularization_weights_from, power 2) -> regularization matrix (adapt.weighted_regularization_matrix_from,
4-neighbour list, weights squared again) -> log det of the full 400 x 400 matrix (edge cells included; SuperLU on
numpy, dense Cholesky on JAX). The script re-derives each step from the mapper's own tables and checks it against
PyAutoArray's arrays (``*_check`` entries). Because the matrix is a weighted graph Laplacian plus 1e-8 on the
diagonal, its smallest eigenvalue is 1e-8 (the constant vector) against entries up to ~1e7 for outer_coefficient 50,
so its log det is ill-conditioned in fp64; the record holds PyAutoArray's value together with a dense fp64 Cholesky,
a 60-digit LDL^T of the same fp64 matrix and a 60-digit LDL^T of the matrix built exactly from the fp64 weights.

Backends: ``numpy`` (fp64) always; ``jax_fp64`` (``jax.jit`` of the same fit built with ``xp=jnp``, jax x64 on, the
mass vector and (inner, outer, signal_scale) traced; one compile per dataset x mesh x solver) unless --no-jax.

JSON layout::

    autolens_version, jax_version, jax_fp64_recorded, adapt_minimum_percent (0.01), mesh_shape [20, 20],
    over_sample_size (2), settings {...} (the positive-only cases'), term_names [...], mass_param_order [...],
    pixel_signals_backend ("numba" | "numpy"), formulas {pixel_signals, regularization_weights,
                                                         regularization_matrix, log_det_regularization_matrix_term,
                                                         regularization_term},
    cases_definition {CASE: {mesh, inner_coefficient, outer_coefficient, signal_scale, use_positive_only_solver}},
    datasets -> A0 | B0 -> {
        pixel_scale, mask_radius, n_masked_pixels, adapt_image [floored S/N, slim order], adapt_image_floor,
        n_floored_pixels,
        mapper_tables -> MESH CLASS -> MASS_MODEL -> {
            n_sub_pixels, entries_per_sub_pixel (4), n_entries, n_zero_weight_entries,
            pixel_counts [400: mapping entries per mesh cell, zero-weight entries included],
            pixel_signal_sums [400: sum over entries of adapt_image[slim(sub)] * interpolation weight],
            sample_rows {slim_index, pix_indexes, pix_weights} (the first 8 sub-pixels; the full tables,
            n_sub_pixels x 4 indexes and weights, are not stored: ~45k / ~97k entries)},
        constant_check -> MASS_MODEL -> {constant figure_of_merit + 7 terms (Constant(1.0), bilinear adapt-image
            mesh, positive-only), adapt_image_json_figure_of_merit, abs_diff, ok,
            adapt_1_1_1_matrix_minus_2x_constant_plus_1e-8_identity_max_abs,
            log_det_adapt_1_1_1_minus_constant, minus_399_ln2, minus_400_ln2, ...},
        cases -> CASE -> MASS_MODEL (true | einstein_radius_plus2pc) -> {
            mass_params [8],
            figure_of_merit, log_evidence, log_likelihood, chi_squared, noise_normalization, regularization_term,
            log_det_curvature_reg_matrix_term, log_det_regularization_matrix_term,
            reconstruction [400, mesh row-major from the top-left cell; edge cells exactly 0 under edge zeroing],
            pixel_signals [400] (mapper.pixel_signals_from(signal_scale)),
            regularization_weights [400] (regularization.regularization_weights_from(linear_obj=mapper), i.e.
                                          (inner*s + outer*(1-s))**2, squared again inside the matrix),
            regularization_matrix_diagonal [400],
            log_det_regularization_matrix {pyautoarray (= the term: SuperLU on numpy), dense_cholesky_fp64,
                                           decimal60_of_fp64_matrix, decimal60_from_weights},
            pixel_signals_check, regularization_weights_check, regularization_matrix_check (max abs diffs of the
            re-derivation), regularization_term_check (s^T H s recomputed),
            jax_fp64: {8 terms + reconstruction} | absent, jax_minus_numpy_figure_of_merit,
            jax_minus_numpy_max_abs_reconstruction}}}

CASE: bilinear_adapt_1_1_1 (inner 1, outer 1, signal_scale 1), bilinear_adapt_a (0.05, 50, 0.01),
bilinear_adapt_b (0.3, 3, 0.5), bilinear_adapt_b_cholesky (b, use_positive_only_solver=False),
rtu_adapt_a (0.05, 50, 0.01), rtu_adapt_c (2, 0.1, 0.9).
"""

import argparse
import json
import math
import os
import time
from decimal import Decimal, localcontext

from pyautolens_datasets import masked_dataset

ADAPT_MINIMUM_PERCENT = 0.01
MASS_MODELS = ("true", "einstein_radius_plus2pc")
TERMS = ("figure_of_merit", "log_evidence", "log_likelihood", "chi_squared", "noise_normalization",
         "regularization_term", "log_det_curvature_reg_matrix_term", "log_det_regularization_matrix_term")
INVERSION_TERMS = ("regularization_term", "log_det_curvature_reg_matrix_term", "log_det_regularization_matrix_term")
BILINEAR, RTU = "RectangularBilinearAdaptImage", "RectangularRTUAdaptImage"
# CASE -> (mesh class name, inner_coefficient, outer_coefficient, signal_scale, use_positive_only_solver)
CASES = {
    "bilinear_adapt_1_1_1": (BILINEAR, 1.0, 1.0, 1.0, True),
    "bilinear_adapt_a": (BILINEAR, 0.05, 50.0, 0.01, True),
    "bilinear_adapt_b": (BILINEAR, 0.3, 3.0, 0.5, True),
    "bilinear_adapt_b_cholesky": (BILINEAR, 0.3, 3.0, 0.5, False),
    "rtu_adapt_a": (RTU, 0.05, 50.0, 0.01, True),
    "rtu_adapt_c": (RTU, 2.0, 0.1, 0.9, True),
}
FLOOR = 1e-8  # the diagonal floor both constant.py and adapt.py add
DECIMAL_DIGITS = 60

FORMULAS = {
    "pixel_signals": (
        "autoarray/inversion/mappers/abstract.py:474-520 Mapper.pixel_signals_from -> "
        "mapper_util.py:6-131 adaptive_pixel_signals_from (numpy: numba kernel mapper_numba_util.py:108-171 or "
        "_pixel_signal_sums_numpy mapper_util.py:214-267, bit-identical; jax: _pixel_signal_sums_jax 161-211). "
        "For every sub-pixel q (over-sampled grid, slim(q) its image pixel) and every k < pix_size[q] (= 4 for both "
        "adapt-image meshes, interpolator/rectangular.py:705; the 4 bilinear corners tl, tr, bl, br, 595-628, "
        "always 4 distinct cells): sum[p] += adapt_data[slim(q)] * w[q,k] and count[p] += 1 where p = "
        "pix_indexes[q,k]. Zero-weight entries ARE counted (exclude_zero_weight_mappings = False for the "
        "rectangular interpolators, interpolator/abstract.py:9; only Delaunay sets True). The interpolation weight "
        "enters the sum only; the over-sampling sub_fraction does not enter at all. adapt_data is the adapt image "
        "as given (not the mesh weight map). Then s = sum / max(count, 1) (count 0 -> divide by 1), s /= max(s) "
        "(if max > 0), and s**signal_scale with s <= 0 mapped to exactly 0 (mapper_util.py:109-131)."),
    "regularization_weights": (
        "autoarray/inversion/regularization/adapt.py:320-347 Adapt.regularization_weights_from -> "
        "adapt_regularization_weights_from (adapt.py:12-59) with power = 2.0: "
        "weights = (inner_coefficient * s + outer_coefficient * (1 - s)) ** 2."),
    "regularization_matrix": (
        "adapt.py:349-370 Adapt.regularization_matrix_from -> weighted_regularization_matrix_from (adapt.py:62-140) "
        "with neighbors = mapper.mesh_geometry.neighbors = rectangular_neighbors_from (mesh_geometry/rectangular.py:"
        "9-68, used at 519-529): the 4-neighbour list (up/down/left/right, -1 padded, no diagonals). With "
        "v = weights**2 (adapt.py:96) and, for every ordered pair (i, j in neighbors[i]), H[i,i] += v[j], "
        "H[j,j] += v[j], H[i,j] -= v[j], H[j,i] -= v[j], plus 1e-8 on every diagonal entry. As each unordered "
        "edge {i,j} appears in both rows: H = 1e-8 I + sum_{edges {i,j}} (v_i + v_j)(e_i - e_j)(e_i - e_j)^T, "
        "i.e. H_ii = 1e-8 + sum_{j in N(i)} (v_i + v_j), H_ij = -(v_i + v_j) for 4-neighbours, v = "
        "(inner*s + outer*(1-s))**4. Constant(c) (constant.py:12-69) is 1e-8 I + c**2 * sum_edges (e_i - e_j)"
        "(e_i - e_j)^T, so Adapt(1, 1, any) = 2 * Constant(1) - 1e-8 I."),
    "log_det_regularization_matrix_term": (
        "inversion/inversion/abstract.py:1198-1258: log det of regularization_matrix_reduced (abstract.py:353-376), "
        "which is the FULL 400 x 400 regularization matrix H (every linear object is regularized, so no subset; "
        "edge zeroing, zeroed_ids_to_keep, is NOT applied to it; edge cells are IN). Via _log_det_symmetric_from "
        "(abstract.py:1037-1081, log_det_method 'cholesky'): numpy -> inversion_util.log_det_sparse_spd_from "
        "(inversion_util.py:878-, SuperLU, permc_spec MMD_AT_PLUS_A, diag_pivot_thresh 0, sum log diag U; taken "
        "because 400 >= SPARSE_LOG_DET_MIN_PIXELS = 256 and nnz/row <= 32, inversion_util.py:771,782); jax -> "
        "2 * sum(log(diag(cholesky(H)))) (dense). Same matrix and method for Constant."),
    "regularization_term": (
        "inversion/inversion/abstract.py:973-1035: s^T H s with s the full 400-vector reconstruction (exact zeros "
        "on the edge ring under edge zeroing) and H the full matrix."),
    "log_evidence": ("-0.5 * (chi_squared + regularization_term + log_det_curvature_reg_matrix_term - "
                     "log_det_regularization_matrix_term + noise_normalization) (autoarray/fit/fit_util.py:400)"),
}


def decimal_log_det(matrix_entries, n, bandwidth):
    """log det of a symmetric banded positive-definite matrix by LDL^T in DECIMAL_DIGITS-digit decimal arithmetic.

    matrix_entries(i, j) -> Decimal for |i - j| <= bandwidth (j <= i). Returns a float."""
    with localcontext() as ctx:
        ctx.prec = DECIMAL_DIGITS
        L = [dict() for _ in range(n)]
        d = [None] * n
        log_det = Decimal(0)
        for i in range(n):
            lo = max(0, i - bandwidth)
            for j in range(lo, i):
                s = matrix_entries(i, j)
                for k in range(max(lo, j - bandwidth), j):
                    lik = L[i].get(k)
                    ljk = L[j].get(k)
                    if lik is not None and ljk is not None:
                        s -= lik * ljk * d[k]
                L[i][j] = s / d[j]
            s = matrix_entries(i, i)
            for k in range(lo, i):
                s -= L[i][k] * L[i][k] * d[k]
            if s <= 0:
                return float("nan")
            d[i] = s
            log_det += s.ln()
        return float(log_det)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--reference2", default=os.path.join(here, "..", "..", "shared", "reference2"))
    parser.add_argument("--adapt-image-json", default=os.path.join(here, "..", "tests", "data", "adapt_image.json"),
                        help="tests/data/adapt_image.json, for the Constant(1.0) check")
    parser.add_argument("--out", required=True)
    parser.add_argument("--no-jax", action="store_true", help="numpy backend only")
    parser.add_argument("--datasets", default="A0,B0")
    args = parser.parse_args()

    # autolens before jax: autonerves sets JAX_ENABLE_X64 at import (see benchmarks/pyautolens_likelihood.py).
    import autolens as al
    import numpy as np
    from autoarray.inversion.mappers import mapper_util

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
    adapt_image_json = json.load(open(args.adapt_image_json))
    datasets_dir = os.path.join(args.reference2, "..", "reference", "datasets")
    shape = tuple(meta["mesh_shape"])
    n_pix = shape[0] * shape[1]

    def settings_kwargs(positive_only):
        return dict(use_positive_only_solver=positive_only, use_edge_zeroed_pixels=True, use_border_relocator=False)

    def galaxies_from(p, mesh_name, regularization):
        lens = al.Galaxy(
            redshift=0.5,
            mass=al.mp.Isothermal(centre=(p[0], p[1]), ell_comps=(p[2], p[3]), einstein_radius=p[4]),
            shear=al.mp.ExternalShear(gamma_1=p[6], gamma_2=p[7]),
        )
        source = al.Galaxy(redshift=1.0, pixelization=al.Pixelization(
            mesh=getattr(al.mesh, mesh_name)(shape=shape), regularization=regularization))
        return lens, source

    def fit_from(dataset, p, mesh_name, regularization, positive_only, adapt, xp):
        lens, source = galaxies_from(p, mesh_name, regularization)
        kwargs = {} if xp is np else {"xp": xp}
        return al.FitImaging(dataset=dataset, tracer=al.Tracer(galaxies=[lens, source]),
                             adapt_images=al.AdaptImages(galaxy_image_dict={source: adapt}),
                             settings=al.Settings(**settings_kwargs(positive_only)), **kwargs)

    def term(fit, name):
        """The fit's own term; the regularization / log-det terms live on its inversion."""
        return getattr(fit.inversion, name) if name in INVERSION_TERMS else getattr(fit, name)

    def terms_of(fit):
        out = {name: float(term(fit, name)) for name in TERMS}
        out["reconstruction"] = [float(v) for v in np.asarray(fit.inversion.reconstruction)]
        return out

    jitted = {}

    def terms_jax(dataset_name, dataset, p, mesh_name, reg_params, positive_only, adapt):
        """jax.jit of the fit with the mass vector and (inner, outer, signal_scale) traced."""
        key = (dataset_name, mesh_name, positive_only)
        if key not in jitted:
            def f(vector):
                regularization = al.reg.Adapt(inner_coefficient=vector[8], outer_coefficient=vector[9],
                                              signal_scale=vector[10])
                fit = fit_from(dataset, [vector[i] for i in range(8)], mesh_name, regularization, positive_only,
                               adapt, jnp)
                out = {name: term(fit, name) for name in TERMS}
                out["reconstruction"] = fit.inversion.reconstruction
                return out
            jitted[key] = jax.jit(f)
        out = jitted[key](jnp.asarray(list(p) + list(reg_params), dtype=jnp.float64))
        return {name: (float(v) if name != "reconstruction" else [float(x) for x in np.asarray(v)])
                for name, v in out.items()}

    def edges_from(neighbors):
        """Unordered 4-neighbour edges (i < j) from the mapper's neighbour array."""
        return sorted({(min(i, int(j)), max(i, int(j))) for i in range(neighbors.shape[0])
                       for j in neighbors[i] if j >= 0})

    def tables_of(mapper):
        idx = np.asarray(mapper.pix_indexes_for_sub_slim_index)
        w = np.asarray(mapper.pix_weights_for_sub_slim_index)
        sizes = np.asarray(mapper.pix_sizes_for_sub_slim_index)
        slim = np.asarray(mapper.over_sampler.slim_for_sub_slim)
        return idx, w, sizes, slim

    def signal_sums_counts(mapper, adapt_values):
        """Re-derivation of adaptive_pixel_signals_from's sums and counts from the mapper's own tables."""
        idx, w, sizes, slim = tables_of(mapper)
        live = (np.arange(idx.shape[1])[None, :] < sizes[:, None]) & (idx >= 0)
        values = adapt_values[slim][:, None] * w
        sums = np.bincount(idx[live], weights=values[live], minlength=n_pix)[:n_pix]
        counts = np.bincount(idx[live], minlength=n_pix)[:n_pix].astype(float)
        return sums, counts

    def pixel_signals_rederived(sums, counts, signal_scale):
        s = sums / np.where(counts > 0, counts, 1.0)
        m = np.max(s)
        s = s / (m if m > 0 else 1.0)
        return np.where(s <= 0.0, 0.0, np.abs(s) ** signal_scale)

    def matrix_from_weights(v, edges):
        """H = 1e-8 I + sum_edges (v_i + v_j)(e_i - e_j)(e_i - e_j)^T in fp64 (v = weights**2)."""
        H = np.zeros((n_pix, n_pix))
        H[np.diag_indices(n_pix)] = FLOOR
        for i, j in edges:
            c = v[i] + v[j]
            H[i, i] += c
            H[j, j] += c
            H[i, j] -= c
            H[j, i] -= c
        return H

    def log_dets(H, v, edges):
        out = {"dense_cholesky_fp64": float(2.0 * np.sum(np.log(np.diag(np.linalg.cholesky(H)))))}
        bandwidth = shape[1]
        out["decimal60_of_fp64_matrix"] = decimal_log_det(lambda i, j: Decimal(float(H[i, j])), n_pix, bandwidth)
        # The same matrix built exactly from the fp64 weights (no fp64 rounding of 1e-8 + sum of the edge weights).
        with localcontext() as ctx:
            ctx.prec = DECIMAL_DIGITS
            vd = [Decimal(float(x)) for x in v]
            exact = {}
            for i in range(n_pix):
                exact[(i, i)] = Decimal(FLOOR)
            for i, j in edges:
                c = vd[i] + vd[j]
                exact[(i, i)] += c
                exact[(j, j)] += c
                exact[(j, i)] = -c
        out["decimal60_from_weights"] = decimal_log_det(lambda i, j: exact.get((i, j), Decimal(0)), n_pix, bandwidth)
        return out

    # Constant(1) is 1e-8 I + L (v = 0.5 per cell gives edge weight 1 in matrix_from_weights); Adapt(1, 1, s) is
    # 1e-8 I + 2 L. L's eigenvalues on the rows x cols grid with 4-neighbour edges are analytic.
    lam = np.add.outer(2.0 - 2.0 * np.cos(np.pi * np.arange(shape[0]) / shape[0]),
                       2.0 - 2.0 * np.cos(np.pi * np.arange(shape[1]) / shape[1])).ravel()
    laplacian_log_det_ratio = float(np.sum(np.log((FLOOR + 2.0 * lam) / (FLOOR + lam))))

    use_jax = jax is not None
    record = {
        "autolens_version": al.__version__,
        "jax_version": jax.__version__ if jax is not None else None,
        "adapt_minimum_percent": ADAPT_MINIMUM_PERCENT,
        "mesh_shape": list(shape),
        "over_sample_size": meta["over_sample_size_lp"],
        "settings": settings_kwargs(True),
        "term_names": list(TERMS),
        "mass_param_order": meta["mass_param_order"],
        "pixel_signals_backend": "numba" if mapper_util._use_numba() else "numpy",
        "formulas": FORMULAS,
        "cases_definition": {case: {"mesh": m, "inner_coefficient": a, "outer_coefficient": b, "signal_scale": s,
                                    "use_positive_only_solver": pos}
                             for case, (m, a, b, s, pos) in CASES.items()},
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
        expected = adapt_image_json["datasets"][name]["adapt_image"]
        assert np.array_equal(np.array(expected), floored), "adapt image differs from adapt_image.json's"
        print(f"{name}: {sn.size} masked pixels, S/N max {np.max(sn):.4f}, floor {floor:.4f}", flush=True)

        ref_cases = meta["datasets"][name]["cases"]
        entry = {
            "pixel_scale": truth["pixel_scale"], "mask_radius": truth["mask_radius"],
            "n_masked_pixels": int(sn.size),
            "adapt_image": [float(v) for v in floored],
            "adapt_image_floor": float(floor), "n_floored_pixels": int(np.sum(sn < floor)),
            "mapper_tables": {}, "constant_check": {}, "cases": {},
        }
        constant = {}

        # 1. Constant(1.0) on the bilinear adapt-image mesh = adapt_image.json's bilinear_image_pos_edge0.
        for model in MASS_MODELS:
            p = ref_cases["rtu_pos_edge0"][model]["mass_params"]
            t0 = time.time()
            fit = fit_from(dataset, [float(v) for v in p], BILINEAR, al.reg.Constant(coefficient=1.0), True, adapt,
                           np)
            rec = terms_of(fit)
            ref = adapt_image_json["datasets"][name]["cases"]["bilinear_image_pos_edge0"][model]["figure_of_merit"]
            check = {k: rec[k] for k in TERMS}
            check.update(adapt_image_json_figure_of_merit=ref, abs_diff=abs(rec["figure_of_merit"] - ref),
                         ok=abs(rec["figure_of_merit"] - ref) < 1e-8)
            H_c = np.array(fit.inversion.regularization_matrix)
            edges_c = edges_from(np.asarray(fit.inversion.linear_obj_list[0].neighbors))
            check["log_det_regularization_matrix"] = {"pyautoarray": rec["log_det_regularization_matrix_term"]}
            check["log_det_regularization_matrix"].update(log_dets(H_c, np.full(n_pix, 0.5), edges_c))
            check["log_det_regularization_matrix"]["analytic"] = float(np.sum(np.log(FLOOR + lam)))
            constant[model] = (check, H_c)
            entry["constant_check"][model] = check
            print(f"{name} constant(1.0) {model}: {rec['figure_of_merit']!r} adapt_image.json {ref!r} "
                  f"|diff| {check['abs_diff']:.3e} ({time.time() - t0:.1f}s)", flush=True)

        # 2. The Adapt cases.
        for case, (cls_name, inner, outer, signal_scale, positive_only) in CASES.items():
            case_entry = {}
            for model in MASS_MODELS:
                p = [float(v) for v in ref_cases["rtu_pos_edge0"][model]["mass_params"]]
                t0 = time.time()
                regularization = al.reg.Adapt(inner_coefficient=inner, outer_coefficient=outer,
                                              signal_scale=signal_scale)
                fit = fit_from(dataset, p, cls_name, regularization, positive_only, adapt, np)
                rec = {"mass_params": p}
                rec.update(terms_of(fit))
                t_np = time.time() - t0
                inversion = fit.inversion
                mapper = inversion.linear_obj_list[0]
                reg = mapper.regularization
                signals = np.asarray(mapper.pixel_signals_from(signal_scale=signal_scale))
                weights = np.asarray(reg.regularization_weights_from(linear_obj=mapper))
                H = np.asarray(inversion.regularization_matrix)
                rec["pixel_signals"] = [float(v) for v in signals]
                rec["regularization_weights"] = [float(v) for v in weights]
                rec["regularization_matrix_diagonal"] = [float(v) for v in np.diag(H)]

                # Re-derivations from the mapper's tables and the formulas above.
                sums, counts = signal_sums_counts(mapper, floored)
                tables = entry["mapper_tables"].setdefault(cls_name, {})
                if model not in tables:
                    idx, w, sizes, slim = tables_of(mapper)
                    tables[model] = {
                        "n_sub_pixels": int(idx.shape[0]), "entries_per_sub_pixel": int(np.max(sizes)),
                        "n_entries": int(np.sum(sizes)), "n_zero_weight_entries": int(np.sum(w == 0.0)),
                        "n_cells_without_entries": int(np.sum(counts == 0)),
                        "pixel_counts": [int(v) for v in counts],
                        "pixel_signal_sums": [float(v) for v in sums],
                        "sample_rows": {"slim_index": [int(v) for v in slim[:8]],
                                        "pix_indexes": idx[:8].tolist(), "pix_weights": w[:8].tolist()},
                    }
                s_re = pixel_signals_rederived(sums, counts, signal_scale)
                w_re = (inner * signals + outer * (1.0 - signals)) ** 2
                edges = edges_from(np.asarray(mapper.neighbors))
                H_re = matrix_from_weights(weights ** 2, edges)
                s = np.array(rec["reconstruction"])
                rec["pixel_signals_check"] = {"max_abs_diff_rederived": float(np.max(np.abs(s_re - signals))),
                                              "n_zero": int(np.sum(signals == 0.0))}
                rec["regularization_weights_check"] = {"max_abs_diff_rederived": float(np.max(np.abs(w_re - weights))),
                                                       "min": float(np.min(weights)), "max": float(np.max(weights))}
                rec["regularization_matrix_check"] = {
                    "n_edges_4_neighbour": len(edges),
                    "max_abs_diff_rederived": float(np.max(np.abs(H_re - H))),
                    "max_abs_entry": float(np.max(np.abs(H))),
                    "row_sums_minus_1e-8_max_abs": float(np.max(np.abs(H.sum(axis=1) - FLOOR))),
                }
                rec["regularization_term_check"] = {"s_H_s": float(s @ H @ s),
                                                    "abs_diff": float(abs(s @ H @ s - rec["regularization_term"]))}
                rec["log_det_regularization_matrix"] = {"pyautoarray": rec["log_det_regularization_matrix_term"]}
                rec["log_det_regularization_matrix"].update(log_dets(H, weights ** 2, edges))
                if positive_only:
                    zeroed = np.asarray(mapper.mesh.zeroed_pixels)
                    rec["edge_cells_zeroed"] = int(zeroed.size)
                    rec["max_abs_reconstruction_on_edge_cells"] = float(np.max(np.abs(s[zeroed])))

                if case == "bilinear_adapt_1_1_1":
                    cc, H_c = constant[model]
                    d = rec["log_det_regularization_matrix_term"] - cc["log_det_regularization_matrix_term"]
                    cc.update({
                        "adapt_1_1_1_matrix_minus_2x_constant_plus_1e-8_identity_max_abs":
                            float(np.max(np.abs(H - (2.0 * H_c - FLOOR * np.eye(n_pix))))),
                        "adapt_1_1_1_matrix_minus_2x_constant_max_abs": float(np.max(np.abs(H - 2.0 * H_c))),
                        "log_det_adapt_1_1_1_minus_constant": d,
                        "log_det_difference_minus_399_ln2": d - 399.0 * math.log(2.0),
                        "log_det_difference_minus_400_ln2": d - 400.0 * math.log(2.0),
                        # The same difference from the decimal60_from_weights values, and analytically from the
                        # eigenvalues of the 20 x 20 grid Laplacian, lambda_ab = (2 - 2 cos(pi a / 20)) +
                        # (2 - 2 cos(pi b / 20)): sum over (a, b) of ln((1e-8 + 2 lambda) / (1e-8 + lambda)), the
                        # (0, 0) term (lambda = 0, the constant vector, eigenvalue 1e-8 in both) being 0.
                        "log_det_difference_decimal60_from_weights":
                            rec["log_det_regularization_matrix"]["decimal60_from_weights"]
                            - cc["log_det_regularization_matrix"]["decimal60_from_weights"],
                        "log_det_difference_analytic": laplacian_log_det_ratio,
                        "adapt_1_1_1_regularization_term": rec["regularization_term"],
                        "adapt_1_1_1_s_2Hc_s": float(s @ (2.0 * H_c) @ s),
                        "adapt_1_1_1_figure_of_merit": rec["figure_of_merit"],
                    })

                msg = (f"{name} {case} {model}: numpy {rec['figure_of_merit']!r} "
                       f"logdetH {rec['log_det_regularization_matrix']} ({t_np:.1f}s)")
                if use_jax:
                    try:
                        t0 = time.time()
                        rec["jax_fp64"] = terms_jax(name, dataset, p, cls_name, (inner, outer, signal_scale),
                                                    positive_only, adapt)
                        rec["jax_minus_numpy_figure_of_merit"] = (rec["jax_fp64"]["figure_of_merit"]
                                                                  - rec["figure_of_merit"])
                        rec["jax_minus_numpy_max_abs_reconstruction"] = float(np.max(np.abs(
                            np.array(rec["jax_fp64"]["reconstruction"]) - s)))
                        msg += (f"; jax {rec['jax_fp64']['figure_of_merit']!r} "
                                f"(diff {rec['jax_minus_numpy_figure_of_merit']:.3e}, {time.time() - t0:.1f}s)")
                    except Exception as error:
                        print(f"jax failed on {case}: {error!r}; numpy only from here", flush=True)
                        use_jax = False
                print(msg, flush=True)
                case_entry[model] = rec
            entry["cases"][case] = case_entry

        for model in MASS_MODELS:
            cc = entry["constant_check"][model]
            print(f"{name} {model}: constant fom ok {cc['ok']}; H(1,1,1) - (2 H_c - 1e-8 I) max "
                  f"{cc['adapt_1_1_1_matrix_minus_2x_constant_plus_1e-8_identity_max_abs']:.3e}; logdet diff - 399 ln2 "
                  f"{cc['log_det_difference_minus_399_ln2']:.3e}, "
                  f"- 400 ln2 {cc['log_det_difference_minus_400_ln2']:.3e}; decimal60 diff - analytic "
                  f"{cc['log_det_difference_decimal60_from_weights'] - laplacian_log_det_ratio:.3e}"
                  f"; analytic - 399 ln2 {laplacian_log_det_ratio - 399.0 * math.log(2.0):.3e}",
                  flush=True)
        record["datasets"][name] = entry

    record["jax_fp64_recorded"] = use_jax
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
