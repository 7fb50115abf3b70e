"""What the positive-only solve costs a search on a pixelized source with lens light, against the Cholesky solve.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/positive_only.py --survey DIR --results FILE

For the first --lenses lenses of a simulated survey with lens light (`lensfleet simulate N --mass power_law
--lens-light --pixel-scale 0.1` in --survey) and the pipeline's mass_total model (the survey's fit.toml: PowerLaw +
shear, 20-Gaussian MGE lens light; an N×N `bilinear_adapt_density` source, --mesh, regularization 1.0, edge cells
zeroed), V = --vectors parameter vectors (row 0 the truth, the others the truth jittered by --jitter in every
parameter, a third of them left at the truth) are evaluated in one vmapped call, once with the positive-only solve
and once with the Cholesky solve, alternating for --rounds rounds (medians). Reported: ms per evaluation and the
figure of merit at the truth. Run it on two checkouts (PYTHONPATH=checkout) to compare solver versions.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tomllib
from pathlib import Path

import jax
import numpy as np

import report
from storage.catalog import read_catalog
from storage.datasets import load_imaging
from workers.config import parse_config
from workers.datasets import masked_imaging
from workers.inversion.batch import evaluate
from workers.model.description import vector_from_params


def model_for(survey: Path, mesh: int, positive_only: bool):
    raw = tomllib.loads((survey / "fit.toml").read_text())
    raw["source"] = {"type": "rectangular", "mesh": "bilinear_adapt_density", "shape": [mesh, mesh],
                     "regularization": 1.0}
    raw.setdefault("settings", {})["use_positive_only_solver"] = positive_only
    return parse_config(raw, str(survey / "fit.toml"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--survey", required=True, help="a simulated survey's folder (with lens light)")
    parser.add_argument("--lenses", type=int, default=2)
    parser.add_argument("--mesh", type=int, default=20)
    parser.add_argument("--vectors", type=int, default=60)
    parser.add_argument("--jitter", type=float, default=0.02)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", default="-", help="a markdown file to append the results to (- : stdout)")
    args = parser.parse_args()
    survey = Path(args.survey)
    entries = read_catalog(str(survey / "catalog.ecsv")).entries[: args.lenses]
    rng = np.random.default_rng(1)
    load_before = report.load()
    rows = ["| lens | solve | ms per evaluation (vmap) | figure of merit at the truth |", "|---|---|---:|---:|"]
    for entry in entries:
        data = load_imaging(entry.path, entry.id, pixel_scale=entry.pixel_scale)
        solvers = {"positive-only": model_for(survey, args.mesh, True), "Cholesky": model_for(survey, args.mesh, False)}
        imagings = {name: masked_imaging(data, config.dataset, config.model) for name, config in solvers.items()}
        params = dict(entry.params)
        params.pop("source", None)  # the mesh has no source parameters
        truth = vector_from_params(solvers["Cholesky"].model, params)
        jitter = args.jitter * rng.standard_normal((args.vectors, truth.size))
        jitter[0] = 0.0
        jitter[rng.permutation(args.vectors)[: args.vectors // 3]] = 0.0
        vectors = truth[None] + jitter
        times = {name: [] for name in solvers}
        merit = {}
        for round_ in range(args.rounds + 1):  # round 0 compiles
            for name, config in solvers.items():
                started = time.perf_counter()
                result = evaluate(imagings[name], vectors, config.model, chunk=args.vectors)
                jax.block_until_ready(result.figure_of_merit)
                if round_:
                    times[name].append(time.perf_counter() - started)
                merit[name] = float(np.asarray(result.figure_of_merit)[0])
        for name in solvers:
            ms = 1000 * statistics.median(times[name]) / args.vectors
            rows.append(f"| {entry.id} | {name} | {ms:.1f} | {merit[name]:.6f} |")
            print(rows[-1], flush=True)
    text = "\n".join([report.heading(), "", report.command_line(),
                      f"Load average {load_before:.1f} before, {report.load():.1f} after.", "", *rows, ""])
    report.publish(text, args.results)


if __name__ == "__main__":
    main()
