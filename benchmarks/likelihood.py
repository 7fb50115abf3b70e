"""Likelihood benchmark: ms per evaluation of the engine as a search calls it, side by side with PyAutoLens.

Cases: reference A0 (2,828 pixels) and B0 (6,092) with an MGE source (20 Gaussians, σ from 0.01″) or a 20×20
RectangularUniform source (Constant 1.0), over-sampling 2 (as in the reference cases); and the real HST lens
SLACS J0029-0055 (3″ circular mask at 0.05″, 11,277 pixels) with the README's real-data model: an MGE lens light of
2 sets × 20 Gaussians (one centre, each set its own ell_comps) and a 20-Gaussian MGE source, the lens light
over-sampled in radial bins (4×4 within 0.3″, 2×2 to 0.6″, 1 beyond); each with the Cholesky and the positive-only
solve (edge cells zeroed, PyAutoLens's default), in fp64 and mixed precision. Every case times one call (1 vector)
and a batch of V = 64 vectors of one lens (the truth plus jitter, row 0 the truth), the batch run the way
sizing.plan_batch plans it on this device (its measured eval chunk), the two interleaved (rounds of single calls
and one batch: medians), and reports the figure of merit at row 0.

With --pyautolens PYTHON, each case is also timed in PyAutoLens 2026.10.26.1 (benchmarks/pyautolens_likelihood.py
under that Python, on the same spec: dataset, mask, over-sampling, model, settings, vectors), the two
alternating case by case and round by round so that both see the same load; each side runs in a fresh
process (cold compile, its own peak memory). The table gives medians over rounds and the ratios.

    .venv/bin/python benchmarks/likelihood.py --pyautolens .venv-pyautolens/bin/python --rounds 2 --json out.json
    .venv/bin/python benchmarks/likelihood.py --only A0-mge           # cases whose name starts with this
    .venv/bin/python benchmarks/likelihood.py --case A0-mge-positive-fp64   # one lensfleet case, JSON out

Recorded results: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LENSFLEET_SHARED", ROOT.parent / "shared"))
REFERENCE = SHARED / "reference"
SLACS = SHARED / "real" / "slacs" / "J0029-0055"
BATCH = 64
# Jitter of the batch around the truth, per parameter kind (arcsec, dimensionless; θE relative).
JITTER = {"centre": 0.01, "ell_comps": 0.01, "einstein_radius": 0.01, "gamma_1": 0.005, "gamma_2": 0.005}
REFERENCE_CASE = {("mge", "cholesky"): "mge", ("mge", "positive"): "mge_pos",
                  ("rect", "cholesky"): "rect", ("rect", "positive"): "rect_pos_edge0"}


@dataclass(frozen=True)
class Case:
    dataset: str  # "A0", "B0" or "slacs"
    source: str  # "mge" or "rect"
    solver: str  # "cholesky" or "positive"
    mixed: bool

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.source}-{self.solver}-{'mixed' if self.mixed else 'fp64'}"


def cases() -> list[Case]:
    out = [Case(d, s, solver, mixed) for d in ("A0", "B0") for s in ("mge", "rect")
           for solver in ("cholesky", "positive") for mixed in (False, True)]
    return out + [Case("slacs", "mge", solver, mixed) for solver in ("cholesky", "positive") for mixed in (False, True)]


def _slacs_truth() -> dict:
    """A plausible lens for J0029-0055 from the SLACS catalogue row (bSIE, qSIE, PA), in PyAutoLens's
    convention (CONVENTIONS.md: θE = b·(1+q)/(2√q), φ = PA + 90°), lens light and source near the centre."""
    row = dict(zip(*[line.split(",") for line in (SLACS.parent / "reference.csv").read_text().splitlines()[:2]]))
    b, q, pa = float(row["bSIE"]), float(row["qSIE"]), float(row["PASIE"])
    f, phi = (1 - q) / (1 + q), math.radians(pa + 90.0)
    ell = [f * math.sin(2 * phi), f * math.cos(2 * phi)]
    mass = {"centre": [0.0, 0.0], "ell_comps": ell, "einstein_radius": b * (1 + q) / (2 * math.sqrt(q))}
    return {"mask_radius": 3.0, "mass": mass, "shear": {"gamma_1": 0.0, "gamma_2": 0.0},
            "lens_light": {"centre": [0.0, 0.0], "ell_comps": [0.05, 0.0]},
            "sources": [{"centre": [0.05, 0.05], "ell_comps": [0.1, 0.0]}]}


def spec_for(case: Case, batch: int = BATCH) -> dict:
    """Everything both sides need: data, mask, over-sampling, model, settings, parameter names and vectors."""
    if case.dataset == "slacs":
        # the real-data recipe's lens-light over-sampling; no pixelization, so its size is moot
        folder, truth, sub, sub_pix = SLACS, _slacs_truth(), {"sub_sizes": [4, 2, 1], "radii": [0.3, 0.6]}, 1
    else:
        folder = REFERENCE / "datasets" / case.dataset
        truth, sub, sub_pix = json.loads((folder / "truth.json").read_text()), 2, 2
    def pairs(prefix: str, profile: dict) -> dict:
        return {f"{prefix}.{key}.{i}": profile[key][i] for key in ("centre", "ell_comps") for i in (0, 1)}

    values = {**pairs("lens.mass", truth["mass"]), "lens.mass.einstein_radius": truth["mass"]["einstein_radius"],
              "lens.shear.gamma_1": truth["shear"]["gamma_1"], "lens.shear.gamma_2": truth["shear"]["gamma_2"]}
    lens_light = 20 if "lens_light" in truth else 0
    if lens_light:
        values.update(pairs("lens.light", truth["lens_light"]))
        values.update({"lens.light.ell_comps.2": -0.05, "lens.light.ell_comps.3": 0.02})  # the second set's
    if case.source == "mge":
        values.update(pairs("source", truth["sources"][0]))
    names = list(values)
    base = [values[n] for n in names]
    scale = [next(s for kind, s in JITTER.items() if kind in n) * (abs(v) if n.endswith("einstein_radius") else 1.0)
             for n, v in zip(names, base)]
    rng = _rng()
    vectors = [base] + [[v + s * rng.gauss(0.0, 1.0) for v, s in zip(base, scale)] for _ in range(batch - 1)]
    rect = case.source == "rect"
    return {
        "case": case.name, "dataset": case.dataset, "dataset_dir": str(folder), "mask_radius": truth["mask_radius"],
        "over_sample_size_lp": sub, "over_sample_size_pixelization": sub_pix,
        "source": case.source, "source_gaussians": 20, "sigma_min": 0.01, "lens_light_gaussians": lens_light,
        "lens_light_bases": 2,
        "mesh_shape": [20, 20], "regularization": 1.0, "mixed": case.mixed,
        "settings": {"use_positive_only_solver": case.solver == "positive", "use_border_relocator": False,
                     "use_edge_zeroed_pixels": True},
        "parameter_names": names, "vectors": vectors,
        "calls": 3 if rect else 10, "vmap_calls": 1 if rect else 3, "vmap_max_seconds": 30.0,
        "reference_case": None if case.dataset == "slacs" else REFERENCE_CASE[(case.source, case.solver)],
    }


def _rng():
    import random

    return random.Random(20262026)


# --- the lensfleet side ------------------------------------------------------------------------------------


def run_lensfleet(spec: dict) -> dict:
    """Time one case in this process (the engine imported here, so a case's compile and memory are its own)."""
    import jax
    import numpy as np

    from storage.datasets import load_imaging
    from workers.runtime import device_name, peak_memory_mb
    from workers.inversion.batch import evaluate
    from workers.inversion.imaging import prepare_imaging
    from workers.model.grids import RadialOverSampling
    from workers.model.description import MGEBasis, Model, RectangularSource, parameter_names
    from workers.model.settings import Settings

    try:
        from workers.inversion.sizing import plan_batch
    except ImportError:  # an engine from before sizing.py (--before): its batch is one vmap
        plan_batch = None

    data = load_imaging(spec["dataset_dir"], spec["dataset"])
    imaging = jax.device_put(prepare_imaging(
        data.image, data.noise_map, data.psf, data.pixel_scale, mask_radius=spec["mask_radius"],
        over_sample_size_lp=size_lp if isinstance(size_lp := spec["over_sample_size_lp"], int)
        else RadialOverSampling(tuple(size_lp["sub_sizes"]), tuple(size_lp["radii"])),
        over_sample_size_pixelization=spec["over_sample_size_pixelization"],
    ))
    source = (MGEBasis(spec["source_gaussians"], spec["sigma_min"]) if spec["source"] == "mge"
              else RectangularSource(tuple(spec["mesh_shape"]), spec["regularization"]))
    light = (MGEBasis(spec["lens_light_gaussians"], spec["sigma_min"], spec["lens_light_bases"])
             if spec["lens_light_gaussians"] else None)
    settings = Settings(use_mixed_precision=spec["mixed"], **spec["settings"])
    model = Model(source=source, lens_light=light, settings=settings)
    order = [spec["parameter_names"].index(n) for n in parameter_names(model)]
    vectors = np.asarray(spec["vectors"])[:, order]

    start = time.perf_counter()
    figure_of_merit = float(evaluate(imaging, vectors[:1], model).figure_of_merit[0])
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    plan = plan_batch(imaging, vectors, model, lenses=16, measure=True) if plan_batch else None
    plan_s = time.perf_counter() - start
    chunk = {"chunk": plan.eval_chunk} if plan else {}

    def single():
        return evaluate(imaging, vectors[:1], model).figure_of_merit

    def batch():
        return evaluate(imaging, vectors, model, **chunk).figure_of_merit

    # Interleaved, so that both see the same load: each round times `calls` single calls and one batch.
    jax.block_until_ready(batch())
    singles, batches = [], []
    for _ in range(spec["vmap_calls"] + 2):
        for _ in range(spec["calls"]):
            start = time.perf_counter()
            jax.block_until_ready(single())
            singles.append(time.perf_counter() - start)
        start = time.perf_counter()
        jax.block_until_ready(batch())
        batches.append((time.perf_counter() - start) / len(vectors))
    return {
        "pixels": int(imaging.bucket.pixels), "figure_of_merit": figure_of_merit, "compile_s": compile_s,
        "single_ms": 1e3 * statistics.median(singles), "single_calls": len(singles),
        "batch_ms_per_eval": 1e3 * statistics.median(batches), "batch_calls": len(batches), "plan_s": plan_s,
        "plan": plan.as_dict() if plan else {"eval_chunk": "vmap"}, "peak_memory_mb": peak_memory_mb(),
        "device": device_name(),
    }


# --- the parent: both sides, alternating -------------------------------------------------------------------


def _child(command: list[str], env: dict, timeout: float) -> dict:
    """Run one child; its last "@@RESULT " line (or its error)."""
    try:
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    results = [json.loads(line[9:]) for line in out.stdout.splitlines() if line.startswith("@@RESULT ")]
    record = results[-1] if results else {}
    if out.returncode != 0:
        record["error"] = f"exit {out.returncode}: " + out.stderr.strip()[-800:]
    return record


def _reference_figure_of_merit(spec: dict) -> float | None:
    if spec["reference_case"] is None:
        return None
    reference = json.loads((REFERENCE / "reference.json").read_text())
    record = reference["datasets"][spec["dataset"]]["cases"][spec["reference_case"]]["true"]
    return record["jax_mp" if spec["mixed"] else "numpy"]["figure_of_merit"]


def compare(selected: list[Case], pyautolens: str | None, before: str | None, rounds: int, timeout: float) -> dict:
    env_lf = dict(os.environ, PYTHONPATH=str(ROOT))
    env_before = dict(os.environ, PYTHONPATH=str(before), LENSFLEET_SHARED=str(SHARED))
    env_al = dict(os.environ, JAX_COMPILATION_CACHE_DIR="")  # cold compiles, like lensfleet's
    env_al["XLA_FLAGS"] = (env_al.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    env_al.pop("PYTHONPATH", None)
    run = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpus": os.cpu_count(),
           "load_at_start": os.getloadavg(), "rounds": rounds, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for case in selected:
                spec = spec_for(case)
                path = Path(tmp) / f"{case.name}.json"
                path.write_text(json.dumps(spec))
                entry = run["cases"].setdefault(case.name, {
                    "lensfleet": [], "pyautolens": [], "before": [],
                    "reference_figure_of_merit": _reference_figure_of_merit(spec)})
                if before:
                    load = os.getloadavg()[0]
                    old = _child([sys.executable, __file__, "--spec", str(path)], env_before, timeout)
                    entry["before"].append(dict(old, load=load))
                load = os.getloadavg()[0]
                lf = _child([sys.executable, __file__, "--spec", str(path)], env_lf, timeout)
                entry["lensfleet"].append(dict(lf, load=load))
                if pyautolens:
                    load = os.getloadavg()[0]
                    script = str(ROOT / "benchmarks" / "pyautolens_likelihood.py")
                    al = _child([pyautolens, script, "--spec", str(path)], env_al, timeout)
                    entry["pyautolens"].append(dict(al, load=load))
                sides = [("lensfleet", lf, "batch_ms_per_eval")]
                sides = ([("before", old, "batch_ms_per_eval")] if before else []) + sides
                sides += [("PyAutoLens", al, "vmap_ms_per_eval")] if pyautolens else []
                print(f"round {r + 1} {case.name}: " + ", ".join(
                    f"{label} {_fmt(rec.get('single_ms'))} / {_fmt(rec.get(key))} ms" for label, rec, key in sides)
                      + "".join(f"  ERROR {rec['error'][:300]}" for _, rec, _ in sides if "error" in rec),
                      file=sys.stderr, flush=True)
    run["load_at_end"] = os.getloadavg()
    return run


def _fmt(x, spec=".2f") -> str:
    return format(x, spec) if isinstance(x, (int, float)) else "—"


def _median(records: list[dict], key: str):
    values = [r[key] for r in records if isinstance(r.get(key), (int, float))]
    return statistics.median(values) if values else None


def markdown(run: dict) -> str:
    lines = [
        f"{run['date']}, {run['cpus']} CPUs, load average {run['load_at_start'][0]:.1f} at the start and "
        f"{run['load_at_end'][0]:.1f} at the end, medians of {run['rounds']} round(s)\n",
        "| case | pixels | before: 1 call / vmap(64) | lensfleet 1 call | lensfleet batch of 64 (chunk) "
        "| PyAutoLens 1 call | PyAutoLens vmap(64) | × (batch vs vmap) | × (1 call) | FoM lensfleet − PyAutoLens "
        "| FoM lensfleet − reference |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in run["cases"].items():
        lf, al = entry["lensfleet"], entry["pyautolens"]
        single, batch = _median(lf, "single_ms"), _median(lf, "batch_ms_per_eval")
        al_single, al_vmap = _median(al, "single_ms"), _median(al, "vmap_ms_per_eval")
        chunk = lf[-1].get("plan", {}).get("eval_chunk", "—") if lf else "—"
        fom, al_fom = _median(lf, "figure_of_merit"), _median(al, "figure_of_merit")
        ref = entry["reference_figure_of_merit"]
        ratio = lambda a, b: f"{a / b:.1f}" if a and b else "—"  # noqa: E731
        old = entry.get("before", [])
        lines.append(
            f"| {name} | {_fmt(_median(lf, 'pixels'), ',.0f')} "
            f"| {_fmt(_median(old, 'single_ms'))} / {_fmt(_median(old, 'batch_ms_per_eval'))} "
            f"| {_fmt(single)} | {_fmt(batch)} ({chunk}) "
            f"| {_fmt(al_single)} | {_fmt(al_vmap)} | {ratio(al_vmap, batch)} | {ratio(al_single, single)} "
            f"| {_fmt(fom - al_fom if fom is not None and al_fom is not None else None, '.1e')} "
            f"| {_fmt(fom - ref if fom is not None and ref is not None else None, '.1e')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", help=argparse.SUPPRESS)  # child: time one spec in this process
    parser.add_argument("--case", help="time one lensfleet case in this process and print JSON")
    parser.add_argument("--only", default="", help="the cases whose name starts with this")
    parser.add_argument("--pyautolens", help="a Python with autolens installed: time PyAutoLens beside each case")
    parser.add_argument("--before", help="a checkout of the engine to compare with (its batch: one vmap), e.g. the "
                        "commit before this benchmark's engine changes")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds over the cases")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per child process, seconds")
    parser.add_argument("--json", help="write every record here")
    parser.add_argument("--table", help="print the markdown table of a --json file written earlier, and stop")
    args = parser.parse_args()
    if args.table:
        print(markdown(json.loads(Path(args.table).read_text())))
        return
    if args.spec:
        print("@@RESULT " + json.dumps(run_lensfleet(json.loads(Path(args.spec).read_text()))), flush=True)
        return
    if args.case:
        case = next(c for c in cases() if c.name == args.case)
        print(json.dumps(run_lensfleet(spec_for(case))))
        return
    selected = [c for c in cases() if c.name.startswith(args.only)]
    run = compare(selected, args.pyautolens, args.before, args.rounds, args.timeout)
    if args.json:
        Path(args.json).write_text(json.dumps(run, indent=1))
    print(markdown(run))


if __name__ == "__main__":
    main()
