"""Where does each source model put the maximum of the figure of merit, given the truth? The model bias of a
pipeline stage, separated from its search.

    .venv/bin/python benchmarks/mesh_bias.py --survey DIR --sources mge,bilinear_adapt_density:20,rtu_adapt_density:20

For every lens of a simulated PowerLaw survey (`lensfleet simulate N --mass power_law [--lens-light] ...` in
--survey) and every source model (`mge`, or `MESH:N` for an N×N rectangular mesh of that kind with Constant
regularization --regularization), the mass_total stage's model (PowerLaw + shear, the survey's fit.toml for the
dataset, lens light and settings; --border-relocator turns PyAutoLens's border relocation on) is evaluated at the
true parameters, then the figure of merit is maximised locally over the mass and shear (Nelder–Mead from the
truth, a simplex of 0.01 steps; the lens light and an MGE source's centre and ell_comps held at their true values:
the first Sersic's). Reported per lens and model: the
gain over the truth (how far below the model's own maximum the truth lies), and the maximum's Einstein radius,
slope and centre against the truth. A search with this model can at best find that maximum; a posterior whose σ
is smaller than the offset cannot hold the truth within 3σ, however well it is sampled.
"""

from __future__ import annotations

import argparse
import json
import time
import tomllib
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

import report
from storage.catalog import read_catalog
from storage.datasets import load_imaging
from workers.config import parse_config
from workers.datasets import masked_imaging
from workers.inversion.batch import evaluate
from workers.model.description import parameter_names, vector_from_params


def source_table(spec: str, regularization: float) -> dict:
    if spec == "mge":
        return {"type": "mge", "gaussians": 20, "sigma_min": 0.01}
    mesh, n = spec.split(":")
    return {"type": "rectangular", "mesh": mesh, "shape": [int(n), int(n)], "regularization": regularization}


def maximise(survey: Path, entry, data, spec: str, regularization: float, max_evaluations: int, border: bool) -> dict:
    """The figure of merit at the truth, then maximised from it over the mass and shear (module docstring)."""
    raw = tomllib.loads((survey / "fit.toml").read_text())
    raw["source"] = source_table(spec, regularization)
    raw.setdefault("settings", {})["use_border_relocator"] = border
    config = parse_config(raw, str(survey / "fit.toml"))
    model, names = config.model, parameter_names(config.model)
    imaging = masked_imaging(data, config.dataset, model)
    params = dict(entry.params)
    if spec != "mge":
        params.pop("source", None)
    truth = vector_from_params(model, params)
    free = np.array([i for i, n in enumerate(names) if n.startswith(("lens.mass.", "lens.shear."))])

    def negative(x: np.ndarray) -> float:
        vector = truth.copy()
        vector[free] = x
        value = float(np.asarray(evaluate(imaging, vector[None], model, chunk=1).figure_of_merit)[0])
        return -value if np.isfinite(value) else np.inf

    started = time.perf_counter()
    at_truth = -negative(truth[free])
    simplex = np.vstack([truth[free], truth[free] + 0.01 * np.eye(free.size)])
    result = minimize(negative, truth[free], method="Nelder-Mead",
                      options={"initial_simplex": simplex, "xatol": 1e-4, "fatol": 0.05, "maxfev": max_evaluations,
                               "adaptive": True})
    best = truth.copy()
    best[free] = result.x
    pick = {name: (float(truth[names.index(name)]), float(best[names.index(name)]))
            for name in ("lens.mass.einstein_radius", "lens.mass.slope", "lens.mass.centre.0", "lens.mass.centre.1")}
    return {"lens": entry.id, "source": spec + (" border" if border else ""), "gain": -result.fun - at_truth,
            "evaluations": int(result.nfev),
            "seconds": time.perf_counter() - started, **pick}


def table(rows: list[dict]) -> str:
    out = ["| lens | source | maximum − truth figure of merit | θE true → max | slope true → max | "
           "centre offset (″) | evaluations |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        (te, me), (ts, ms) = r["lens.mass.einstein_radius"], r["lens.mass.slope"]
        offset = np.hypot(r["lens.mass.centre.0"][1] - r["lens.mass.centre.0"][0],
                          r["lens.mass.centre.1"][1] - r["lens.mass.centre.1"][0])
        out.append(f"| {r['lens']} | {r['source']} | {r['gain']:+.1f} | {te:.3f} → {me:.3f} ({me - te:+.3f}) | "
                   f"{ts:.3f} → {ms:.3f} ({ms - ts:+.3f}) | {offset:.3f} | {r['evaluations']} |")
    by_source: dict[str, list[dict]] = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append(r)
    out.append("")
    for source, rs in by_source.items():
        slope = np.array([r["lens.mass.slope"][1] - r["lens.mass.slope"][0] for r in rs])
        theta = np.array([r["lens.mass.einstein_radius"][1] / r["lens.mass.einstein_radius"][0] - 1 for r in rs])
        out.append(f"- {source}: slope offset mean {slope.mean():+.3f}, largest |offset| {np.abs(slope).max():.3f}; "
                   f"θE offset largest {100 * np.abs(theta).max():.1f}% ({len(rs)} lenses).")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--survey", required=True, help="a simulated PowerLaw survey's folder")
    parser.add_argument("--sources", default="mge,bilinear_adapt_density:20,rtu_adapt_density:20")
    parser.add_argument("--lenses", type=int, default=0, help="the first N lenses (0: all)")
    parser.add_argument("--regularization", type=float, default=1.0)
    parser.add_argument("--max-evaluations", type=int, default=1500)
    parser.add_argument("--border-relocator", action="store_true", help="[settings] use_border_relocator = true")
    parser.add_argument("--results", default="-", help="a markdown file to append the results to (- : stdout)")
    args = parser.parse_args()
    # scipy's OpenBLAS, loaded above before jax_setup could cap it: its threads busy-wait beside other processes
    threadpool_limits(1, user_api="blas")
    survey = Path(args.survey)
    catalog = read_catalog(str(survey / "catalog.ecsv"))
    entries = catalog.entries[: args.lenses or None]
    load_before = report.load()
    rows = []
    for entry in entries:
        data = load_imaging(entry.path, entry.id, pixel_scale=entry.pixel_scale)
        for spec in args.sources.split(","):
            rows.append(maximise(survey, entry, data, spec, args.regularization, args.max_evaluations,
                                 args.border_relocator))
            print(json.dumps(rows[-1]), flush=True)
    text = "\n".join([report.heading(), "", report.command_line(),
                      f"Load average {load_before:.1f} before, {report.load():.1f} after.", "", table(rows), ""])
    report.publish(text, args.results)


if __name__ == "__main__":
    main()
