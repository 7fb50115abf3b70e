"""Real lenses: the README's real-data recipe on the four SLACS lenses and the Euclid Q1 cutout of ../shared/real,
searched with lensfleet's default Nautilus settings. Does the Einstein radius come out as SLACS's, and what does
a real lens cost?

    .venv/bin/python benchmarks/real.py --results benchmarks/RESULTS_real.md

One `lensfleet run` (a fresh local Ray cluster, a subprocess; its command is recorded) over a catalog of the five
cutouts with the fit.toml block of the README's "Real cutouts" section, verbatim (`--search gradient`: with
`type = "gradient"` and `lensing_screen = true` instead, as the README says). Reported per lens: the
intermediate-axis Einstein radius (posterior median ± σ) against SLACS's bSIE (Bolton et al. 2008) and
TinyLensGpu's θE (reference.csv), the axis ratio against qSIE, the reduced χ² of the maximum-likelihood fit
(χ² / used pixels), the likelihood evaluations, and the search's wall split (likelihood and sampler seconds); and
the run's wall time per lens. `lensfleet show` draws the Euclid lens to --out/euclid.png. `--resume` continues
an interrupted benchmark (the searches' checkpoints are on this machine).
"""

from __future__ import annotations

import argparse
import csv
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import report
from storage.schema import Status
from storage.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REAL = ROOT.parent / "shared" / "real"
EUCLID = "euclid_q1/102018665_NEG570040238507752998"
EUCLID_ID = "EUCL-102018665"


def recipe(search: str) -> str:
    """The fit.toml block of the README's "Real cutouts: a survey recipe" section, with search `search`."""
    section = (ROOT / "README.md").read_text().split("## Real cutouts", 1)[1].split("\n## ", 1)[0]
    text = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    gradient = 'type = "gradient"\nlensing_screen = true  # the README: a real lens galaxy outshines its arcs'
    chosen = text.replace('type = "nautilus"', gradient if search == "gradient" else 'type = "nautilus"')
    assert 'type = "nautilus"' in text and (search == "nautilus") == (chosen == text), "the recipe's [search]"
    return chosen


def references() -> dict[str, dict]:
    with open(REAL / "slacs" / "reference.csv") as f:
        return {row["name"]: row for row in csv.DictReader(f)}


def write_catalog(path: Path, lenses: list[str], euclid: bool) -> None:
    rows = [f"{name},{REAL / 'slacs' / name}," for name in lenses]
    if euclid:
        rows.append(f"{EUCLID_ID},{REAL / EUCLID},VIS")
    path.write_text("id,path,band\n" + "\n".join(rows) + "\n")


def read(store_url: str) -> list[dict]:
    """Per lens of the store: status, derived θE and q (median, σ), reduced χ², the search's numbers."""
    store = ResultStore.open_existing(store_url)
    names = list(store.attrs["derived_names"])
    ids = store.read_array("id").tolist()
    status = store.read_array("status")
    median, sigma = store.read_array("derived_median"), store.read_array("derived_sigma")
    images = store.read_array("model_image")
    out = []
    for i, dataset in enumerate(ids):
        used = int(np.isfinite(images[i]).sum())
        value = {name: (float(median[i, k]), float(sigma[i, k])) for k, name in enumerate(names)}
        out.append({
            "id": dataset, "status": int(status[i]),
            "theta_e": value["lens.mass.einstein_radius_intermediate"], "q": value["lens.mass.axis_ratio"],
            "reduced_chi_squared": float(store.read_array("chi_squared")[i]) / used if used else float("nan"),
            "evaluations": int(store.read_array("search_likelihood_evaluations")[i]),
            "converged": bool(store.read_array("search_converged")[i]),
            "likelihood_s": float(store.read_array("search_likelihood_seconds")[i]),
            "sampler_s": float(store.read_array("search_sampler_seconds")[i]),
        })
    return out


def table(lenses: list[dict], wall: float) -> str:
    ref = references()
    rows = ["| lens | θE (intermediate axis) | SLACS bSIE | ratio | TinyLensGpu θE | q | SLACS qSIE | χ²/N | "
            "evaluations | likelihood s | sampler s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    within = slacs = 0
    for lens in lenses:
        r = ref.get(lens["id"])
        (t, dt), (q, dq) = lens["theta_e"], lens["q"]
        ratio = t / float(r["bSIE"]) if r else float("nan")
        if r:
            slacs += 1
            within += abs(ratio - 1) <= 0.05
        b = r["bSIE"] if r else "—"
        shown_ratio = f"{ratio:.3f}" if r else "—"
        tiny = f"{float(r['tinylens_thetaE']):.3f}" if r else "—"
        q_slacs = r["qSIE"] if r else "—"
        evaluations = f"{lens['evaluations']}{'' if lens['converged'] else ' (not converged)'}"
        rows.append(
            f"| {lens['id']} | {t:.3f} ± {dt:.3f} | {b} | {shown_ratio} | {tiny} | {q:.3f} ± {dq:.3f} | {q_slacs} | "
            f"{lens['reduced_chi_squared']:.3f} | {evaluations} | {lens['likelihood_s']:.0f} | {lens['sampler_s']:.0f} |")
    n = len(lenses)
    rows += ["", f"θE within 5% of SLACS's bSIE: **{within} of {slacs}** SLACS lenses.",
             f"Wall time: {wall:.0f} s for the run, {wall / max(n, 1):.0f} s per lens done (the whole `lensfleet run`: "
             "Ray and actor start-up, compiles, searches, commits)."]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lenses", default=",".join(sorted(references())),
                        help="SLACS lenses, comma-separated (default: all four)")
    parser.add_argument("--no-euclid", action="store_true", help="leave the Euclid Q1 cutout out")
    parser.add_argument("--search", choices=("nautilus", "gradient"), default="nautilus")
    parser.add_argument("--block-size", type=int, default=1)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--cpus-per-actor", type=float, default=1.0, help="one lens per core on a CPU machine")
    parser.add_argument("--out", default="/tmp/lensfleet-bench-real")
    parser.add_argument("--results", default="-", help="a markdown file to append the results to (- : stdout)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted benchmark in --out")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    catalog, config, store = out / "real.csv", out / "real.toml", out / "real.zarr"
    if not args.resume:
        write_catalog(catalog, args.lenses.split(","), not args.no_euclid)
        config.write_text(recipe(args.search))
    command = [str(BIN / "lensfleet"), "run", str(catalog), "--config", str(config), "--store", str(store),
               "--block-size", str(args.block_size), "--actors", str(args.actors), "--cpus-per-actor",
               str(args.cpus_per_actor),
               *([] if args.resume else ["--restart"])]
    load_before = report.load()
    started = time.time()
    returncode = subprocess.run(command).returncode  # a stopped run (SIGTERM: 143) still reports its done lenses
    wall = time.time() - started
    lenses = [lens for lens in read(str(store)) if lens["status"] == Status.DONE]
    if EUCLID_ID in {lens["id"] for lens in lenses}:
        subprocess.run([str(BIN / "lensfleet"), "show", str(store), EUCLID_ID, "-o", str(out / "euclid.png")],
                       check=True)
    text = "\n".join([
        report.heading(),
        "",
        report.command_line(),
        f"Run: `{shlex.join(command)}` (exit status {returncode}; {len(lenses)} lenses done); load average "
        f"{load_before:.1f} before, {report.load():.1f} after.",
        "",
        table(lenses, wall),
        "",
    ])
    report.publish(text, args.results)


if __name__ == "__main__":
    main()
