"""The three-stage pipeline on a simulated PowerLaw survey with lens light: does it recover the slope and the
Einstein radius, and what does each stage cost?

    .venv/bin/python benchmarks/pipeline.py --lenses 8 --results benchmarks/RESULTS_pipeline.md

The survey is `lensfleet simulate N --mass power_law --lens-light --pixel-scale 0.1 --seed S` (60×60 at 0.1″,
PowerLaw slope in [1.8, 2.2], a Sersic lens light, 1–2 Sersic sources). The fit is the README's pipeline on the
survey's own fit.toml (its dataset, over-sampling, 20-Gaussian MGE lens light and source, positive-only solve):

    source_lp   Isothermal + shear + MGE lens light + MGE source, survey-default priors
    source_pix  rectangular source (--mesh-kind, --mesh × --mesh), mass and shear searched again with
                priors passed from source_lp, lens light fixed, the positions likelihood (factor 3, 0.2″)
    light_lp    (--light-lp) the lens light searched again with the pixelized source, mass and shear held
    mass_total  PowerLaw (slope free) + shear with the pixelized source, priors passed, lens light fixed,
                the positions likelihood
    (--adapt-image: light_lp and mass_total with the mesh's *_adapt_image kind, which follows the stage before's
    source signal-to-noise, as SLaM's stages after source_pix do; --regularization free: the Constant
    coefficient searched in source_pix and light_lp, as SLaM's source_pix searches do, and held at the stage
    before's maximum likelihood in mass_total; --regularization adapt: the same, with reg.Adapt (adaptive
    brightness) in light_lp and mass_total, which needs --adapt-image)

each stage a Nautilus search with the settings below (--n-live etc.), one `lensfleet run` on a fresh local Ray
cluster (a subprocess; its command is recorded). Reported per lens: the truth, mass_total's posterior median ± σ
of θE and slope and the pull (median − truth)/σ, source_lp's θE, each stage's likelihood evaluations; per stage,
the evaluations summed over lenses; and the run's wall time per lens.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import report
from workers.model.description import MESHES

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGES = """
[[stages]]
name = "source_pix"
source = {{ type = "rectangular", mesh = "{mesh_kind}", shape = [{mesh}, {mesh}], regularization = {reg} }}
fixed = ["lens.light"]
positions = {{ factor = 3.0, minimum_threshold = 0.2 }}{search}
{light_lp}
[[stages]]
name = "mass_total"
lens = {{ mass = {{ type = "power_law" }} }}{later_source}
fixed = ["lens.light"{fixed_reg}]
positions = {{ factor = 3.0, minimum_threshold = 0.2 }}{search}
"""


def search_table(args) -> str:
    return "\n".join([
        "[search]", f"n_live = {args.n_live}", f"n_batch = {args.n_batch}", f"n_eff = {args.n_eff}",
        f"f_live = {args.f_live}", f"n_networks = {args.n_networks}", f"network_epochs = {args.network_epochs}",
        f"seed = {args.seed}", "max_samples = 2000",
        *([f"n_like_max = {args.n_like_max}"] if args.n_like_max else []), "",
    ])


def fit_toml(survey_toml: str, args) -> str:
    """The survey's fit.toml with an Isothermal first stage, the search and the two later stages."""
    first = survey_toml.replace('[lens.mass]\ntype = "power_law"', '[lens.mass]\ntype = "isothermal"')
    assert first != survey_toml, "the survey's fit.toml has no PowerLaw [lens.mass]"
    later = f"\nsearch = {{ n_like_max = {args.pix_n_like_max} }}" if args.pix_n_like_max else ""
    searched = args.regularization != "constant"
    reg = '"free"' if searched else "1.0"
    later_source = ""
    if args.adapt_image:
        kind = args.mesh_kind.replace("_adapt_density", "_adapt_image")
        later_reg = '"adapt"' if args.regularization == "adapt" else reg
        later_source = (f'\nsource = {{ type = "rectangular", mesh = "{kind}", shape = [{args.mesh}, {args.mesh}], '
                        f'regularization = {later_reg} }}')
    elif args.regularization == "adapt":
        raise SystemExit("--regularization adapt needs --adapt-image (reg.Adapt follows the adapt image)")
    light_lp = (f'\n[[stages]]\nname = "light_lp"{later_source}\nfixed = ["lens.mass", "lens.shear"]{later}\n'
                if args.light_lp else "")
    stages = STAGES.format(mesh=args.mesh, mesh_kind=args.mesh_kind, search=later, light_lp=light_lp,
                           later_source=later_source, reg=reg,
                           fixed_reg=', "source.regularization"' if searched else "")
    return 'stage = "source_lp"\n' + first + "\n" + search_table(args) + stages


def read(store_url: str, survey: Path) -> dict:
    from storage.store import ResultStore

    store = ResultStore.open_existing(store_url)
    stages = store.attrs["stages"]
    ids = store.read_array("id").tolist()
    out = {"stages": [], "lenses": []}
    for s in stages:
        p = f"{s['group']}/" if s["group"] else ""
        out["stages"].append({
            "name": s["name"],
            "evaluations": store.read_array(p + "search_likelihood_evaluations").tolist(),
            "converged": store.read_array(p + "search_converged").tolist(),
            "names": s["parameter_names"],
            "median": store.read_array(p + "parameter_median"),
            "sigma": store.read_array(p + "parameter_sigma"),
            "status": store.read_array(p + "stage_status").tolist(),
        })
    for i, dataset in enumerate(ids):
        truth = json.loads((survey / "lenses" / dataset / "truth.json").read_text())["mass"]
        lens = {"id": dataset, "theta_e": truth["einstein_radius"], "slope": truth["slope"]}
        first, last = out["stages"][0], out["stages"][-1]
        k = first["names"].index("lens.mass.einstein_radius")
        lens["source_lp_theta_e"] = (float(first["median"][i, k]), float(first["sigma"][i, k]))
        for name, key in (("lens.mass.einstein_radius", "theta_e"), ("lens.mass.slope", "slope")):
            j = last["names"].index(name)
            median, sigma = float(last["median"][i, j]), float(last["sigma"][i, j])
            lens[f"fit_{key}"] = (median, sigma, (median - lens[key]) / sigma)
        out["lenses"].append(lens)
    return out


def table(result: dict, wall: float) -> str:
    stages = result["stages"]
    rows = ["| lens | θE true | source_lp θE | mass_total θE (pull) | slope true | mass_total slope (pull) | "
            + " | ".join(f"{s['name']} evals" for s in stages) + " |",
            "|---|---:|---:|---:|---:|---:|" + "---:|" * len(stages)]
    for i, lens in enumerate(result["lenses"]):
        lp = lens["source_lp_theta_e"]
        t, s = lens["fit_theta_e"], lens["fit_slope"]
        rows.append(
            f"| {lens['id']} | {lens['theta_e']:.3f} | {lp[0]:.3f} ± {lp[1]:.3f} | {t[0]:.3f} ± {t[1]:.3f} "
            f"({t[2]:+.1f}σ) | {lens['slope']:.3f} | {s[0]:.3f} ± {s[1]:.3f} ({s[2]:+.1f}σ) | "
            + " | ".join(f"{st['evaluations'][i]}{'' if st['converged'][i] else ' (not converged)'}"
                         for st in stages) + " |")
    n = len(result["lenses"])
    within = sum(abs(lens["fit_theta_e"][2]) <= 3 and abs(lens["fit_slope"][2]) <= 3 for lens in result["lenses"])
    per_stage = ", ".join(f"{s['name']} {np.mean(s['evaluations']):.0f}" for s in stages)
    rows += ["", f"θE and slope both within 3σ of the truth: **{within} of {n}** lenses.",
             f"Likelihood evaluations per lens (mean): {per_stage}.",
             f"Wall time: {wall:.0f} s for the run, {wall / n:.0f} s per lens (the whole `lensfleet run`: Ray and "
             "actor start-up, compiles, three searches per lens, commits)."]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lenses", type=int, default=8)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--block-size", type=int, default=4)
    parser.add_argument("--mesh", type=int, default=20)
    parser.add_argument("--mesh-kind", default="bilinear_adapt_density", choices=MESHES)
    parser.add_argument("--light-lp", action="store_true",
                        help="SLaM's light_lp stage between source_pix and mass_total (the lens light again, mass held)")
    parser.add_argument("--adapt-image", action="store_true",
                        help="light_lp and mass_total with the *_adapt_image kind of --mesh-kind (SLaM's adapt images)")
    parser.add_argument("--regularization", choices=("constant", "free", "adapt"), default="constant",
                        help="constant: 1.0 throughout; free: the Constant coefficient searched in source_pix and "
                             "light_lp, held at the stage before's maximum in mass_total; adapt: the same with "
                             "reg.Adapt after source_pix (needs --adapt-image)")
    parser.add_argument("--n-live", type=int, default=100)
    parser.add_argument("--n-batch", type=int, default=50)
    parser.add_argument("--n-eff", type=int, default=200)
    parser.add_argument("--f-live", type=float, default=0.05)
    parser.add_argument("--n-networks", type=int, default=1)
    parser.add_argument("--network-epochs", type=int, default=100)
    parser.add_argument("--n-like-max", type=int, default=0, help="cap per lens and stage (0: none)")
    parser.add_argument("--pix-n-like-max", type=int, default=0,
                        help="cap per lens in the two pixelized stages instead (0: --n-like-max)")
    parser.add_argument("--out", default="/tmp/lensfleet-bench-pipeline")
    parser.add_argument("--results", default="-", help="a markdown file to append the results to (- : stdout)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted benchmark in --out (its survey, config and store) instead of "
                             "starting afresh; the wall time is then this run's only")
    args = parser.parse_args()
    out = Path(args.out)
    survey = out / "survey"
    config = out / "fit_pipeline.toml"
    store = out / "results.zarr"
    if not args.resume:
        subprocess.run([str(BIN / "lensfleet"), "simulate", str(args.lenses), "--out", str(survey), "--seed",
                        str(args.seed), "--mass", "power_law", "--lens-light", "--pixel-scale", "0.1"], check=True)
        config.write_text(fit_toml((survey / "fit.toml").read_text(), args))
    command = [str(BIN / "lensfleet"), "run", str(survey / "catalog.ecsv"), "--config", str(config), "--store",
               str(store), "--block-size", str(args.block_size), *([] if args.resume else ["--restart"])]
    load_before = report.load()
    started = time.time()
    subprocess.run(command, check=True)
    wall = time.time() - started
    result = read(str(store), survey)
    text = "\n".join([
        report.heading(),
        "",
        report.command_line(),
        f"Run: `{shlex.join(command)}`; load average {load_before:.1f} before, {report.load():.1f} after.",
        f"Search (every stage): n_live {args.n_live}, n_batch {args.n_batch}, n_eff {args.n_eff}, f_live "
        f"{args.f_live}, {args.n_networks} network(s) of Nautilus's default layers, {args.network_epochs} epochs, "
        f"n_like_max {args.n_like_max or 'none'} (source_pix and mass_total: {args.pix_n_like_max or 'the same'}), "
        f"seed {args.seed}; source_pix mesh {args.mesh_kind} {args.mesh}×{args.mesh}; "
        f"{'with' if args.light_lp else 'without'} light_lp; "
        f"{'adapt-image meshes after source_pix; ' if args.adapt_image else ''}"
        f"regularization {args.regularization}; block size {args.block_size}.",
        "",
        table(result, wall),
        "",
    ])
    report.publish(text, args.results)


if __name__ == "__main__":
    main()
