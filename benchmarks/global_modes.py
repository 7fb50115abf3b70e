"""Global modes: does a default search reach the global mode on every lens of a survey with two-clump sources?

    .venv/bin/python benchmarks/global_modes.py --lenses 16 --search nautilus --results benchmarks/RESULTS_search.md
    .venv/bin/python benchmarks/global_modes.py --lenses 16 --search gradient --results benchmarks/RESULTS_search.md

The survey is `lensfleet simulate N --two-clump --pixel-scale 0.1 --seed S` (60×60 at 0.1″, 2.8″ mask, one shape
bucket; every source two Sersic clumps), fitted with the survey's own fit.toml (Isothermal + ExternalShear +
20-Gaussian MGE source, positive-only, survey-default priors) plus `[search] type = "<search>"`, every other
search setting its default. Two `lensfleet run`s on a fresh local Ray cluster each (subprocesses; commands
recorded): evaluate mode at the catalog's true parameters (each lens's figure of merit at its truth, the MGE
source at the first clump's centre and ell_comps), then search mode. A lens's search reached the global mode when
its best figure of merit (the store's `figure_of_merit`, the maximum-likelihood fit) is at least its truth's.
Reported per lens: best − truth, θE median ± σ against the truth, the search's evaluations and flags
(`search_multimodal` for the gradient search, `search_converged`), and the run's wall time per lens.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import report
from storage.store import ResultStore

BIN = Path(sys.executable).parent


def run(command: list[str]) -> float:
    started = time.time()
    subprocess.run(command, check=True)
    return time.time() - started


def read(truth_store: str, search_store: str, survey: Path) -> list[dict]:
    """Per lens: truth's and best figure of merit, θE truth and posterior, evaluations, flags."""
    truth, found = ResultStore.open_existing(truth_store), ResultStore.open_existing(search_store)
    names = list(found.attrs["parameter_names"])
    k = names.index("lens.mass.einstein_radius")
    by_id = {d: i for i, d in enumerate(truth.read_array("id").tolist())}
    truth_merit = truth.read_array("figure_of_merit")
    arrays = {n: found.read_array(n) for n in ("figure_of_merit", "parameter_median", "parameter_sigma",
                                               "search_likelihood_evaluations", "search_converged")}
    multimodal = found.read_array("search_multimodal") if "search_multimodal" in found.names else None
    out = []
    for i, dataset in enumerate(found.read_array("id").tolist()):
        lens = json.loads((survey / "lenses" / dataset / "truth.json").read_text())
        out.append({
            "id": dataset, "truth_merit": float(truth_merit[by_id[dataset]]),
            "best_merit": float(arrays["figure_of_merit"][i]),
            "theta_e": lens["mass"]["einstein_radius"],
            "fit_theta_e": (float(arrays["parameter_median"][i, k]), float(arrays["parameter_sigma"][i, k])),
            "evaluations": int(arrays["search_likelihood_evaluations"][i]),
            "converged": bool(arrays["search_converged"][i]),
            "multimodal": None if multimodal is None else int(multimodal[i]),
        })
    return out


def table(lenses: list[dict], wall: float) -> str:
    rows = ["| lens | best − truth figure of merit | θE true | θE fit | evaluations | converged | multimodal flag |",
            "|---|---:|---:|---:|---:|---|---|"]
    for lens in lenses:
        t, (m, s) = lens["theta_e"], lens["fit_theta_e"]
        rows.append(f"| {lens['id']} | {lens['best_merit'] - lens['truth_merit']:+.1f} | {t:.3f} | {m:.3f} ± {s:.3f} | "
                    f"{lens['evaluations']} | {'yes' if lens['converged'] else 'no'} | "
                    f"{'—' if lens['multimodal'] is None else lens['multimodal']} |")
    n = len(lenses)
    found = sum(lens["best_merit"] >= lens["truth_merit"] for lens in lenses)
    rows += ["", f"Best figure of merit at least the truth's (the global mode): **{found} of {n}** lenses.",
             f"Search run: {wall:.0f} s, {wall / n:.0f} s per lens (the whole `lensfleet run`)."]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lenses", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--search", choices=("nautilus", "gradient"), default="nautilus")
    parser.add_argument("--block-size", type=int, default=4)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--out", default="/tmp/lensfleet-bench-global-modes")
    parser.add_argument("--results", default="-", help="a markdown file to append the results to (- : stdout)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted search run in --out (its survey, truth store and checkpoints); "
                             "the wall time is then this run's only")
    args = parser.parse_args()
    out = Path(args.out)
    survey = out / "survey"
    config = out / f"fit_{args.search}.toml"
    if not args.resume:
        subprocess.run([str(BIN / "lensfleet"), "simulate", str(args.lenses), "--out", str(survey), "--seed",
                        str(args.seed), "--two-clump", "--pixel-scale", "0.1"], check=True)
        config.write_text((survey / "fit.toml").read_text() + f'\n[search]\ntype = "{args.search}"\n')
    common = ["--block-size", str(args.block_size), "--actors", str(args.actors), "--cpus-per-actor", "1",
              *([] if args.resume else ["--restart"])]
    catalog = str(survey / "catalog.ecsv")
    truth_store, search_store = str(out / "truth.zarr"), str(out / f"{args.search}.zarr")
    evaluate = [str(BIN / "lensfleet"), "run", catalog, "--config", str(survey / "fit.toml"), "--store",
                truth_store, *common]
    search = [str(BIN / "lensfleet"), "run", catalog, "--config", str(config), "--store", search_store, *common]
    if not args.resume:
        run(evaluate)
    load_before = report.load()
    wall = run(search)
    lenses = read(truth_store, search_store, survey)
    text = "\n".join([
        report.heading(f"global modes on two-clump sources ({args.search})"),
        "",
        report.command_line(),
        f"Search run: `{shlex.join(search)}` (config: the survey's fit.toml + `[search] type = \"{args.search}\"`); "
        f"load average {load_before:.1f} before, {report.load():.1f} after.",
        "",
        table(lenses, wall),
        "",
    ])
    report.publish(text, args.results)


if __name__ == "__main__":
    main()
