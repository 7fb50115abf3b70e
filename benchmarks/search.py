"""Search benchmark: wall time and likelihood evaluations per lens of the MGE-stage search (Nautilus, or with
`--search gradient` the gradient search), with the lenses of a block searched side by side (one compiled call
over lenses × vectors) against one by one.

Lenses like reference A0: 100×100 at 0.1″, 11×11 Gaussian PSF (σ = 0.1″), Isothermal + ExternalShear about A0's
truth (perturbed per lens), one Sersic source like A0's, simulated on an 8×8 sub-grid with A0's noise model;
fitted in a 3″ mask with 20 MGE Gaussians (σ from 0.01″), over-sampling 2, positive-only solver, survey-default
priors (workers/priors.py).

    .venv/bin/python benchmarks/search.py                         # 4 lenses, both modes, a markdown report
    .venv/bin/python benchmarks/search.py --lenses 2 --n-live 100 --modes batched
    .venv/bin/python benchmarks/search.py --search gradient --lenses 4 --modes batched --starts 8

The gradient search (workers/gradient_search.py) runs each block twice when `--repeat` is given: the first call
compiles, the second is timed warm (compile_s is then the whole first call); otherwise its wall time includes
compiling. Per lens the report also gives how many of the 7 lens parameters lie within 3σ of the truth.

Modes
    batched      search_block over the L lenses, concurrent: every round, one (L, n_batch) call for all lenses.
    one-by-one   each lens alone in a block of one (its own (1, n_batch) call), one after another: what a
                 per-lens pipeline does.
Both use the same seeds, so each lens's search is the same in both modes up to floating-point differences
between the (L, V) and (1, V) programs; the report gives both modes' evaluations per lens.

Recorded results: benchmarks/RESULTS_search.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
A0_TRUTH = ROOT.parent / "shared" / "reference" / "datasets" / "A0" / "truth.json"


def simulate(n_lenses: int, seed: int):
    """n A0-like lenses (see the module docstring): MaskedImaging list and true vectors."""
    import jax.numpy as jnp

    from workers.inversion.imaging import prepare_imaging
    from workers.inversion.parameters import MassParameters
    from workers.inversion.simulate import SersicProfile, simulate_imaging

    truth = json.loads(A0_TRUTH.read_text()) if A0_TRUTH.exists() else None
    centre = np.array(truth["mass"]["centre"]) if truth else np.array([0.013, 0.041])
    ell = np.array(truth["mass"]["ell_comps"]) if truth else np.array([0.016, 0.131])
    theta_e = truth["mass"]["einstein_radius"] if truth else 1.593
    shear = np.array([truth["shear"]["gamma_1"], truth["shear"]["gamma_2"]]) if truth else np.array([0.004, 0.033])
    source = truth["sources"][0] if truth else {
        "centre": [0.141, 0.079], "ell_comps": [0.170, -0.022], "intensity": 0.507, "effective_radius": 0.165,
        "sersic_index": 2.02,
    }
    rng = np.random.default_rng(seed)
    imagings, truths = [], []
    for i in range(n_lenses):
        c = centre + rng.normal(0, 0.02, 2)
        e = ell + rng.normal(0, 0.03, 2)
        te = theta_e * (1 + rng.normal(0, 0.05))
        g = shear + rng.normal(0, 0.01, 2)
        sc = np.array(source["centre"]) + rng.normal(0, 0.03, 2)
        se = np.array(source["ell_comps"]) + rng.normal(0, 0.03, 2)
        mass = MassParameters("isothermal", {"centre": jnp.asarray(c), "ell_comps": jnp.asarray(e),
                                             "einstein_radius": jnp.float64(te)}, jnp.asarray(g))
        profile = SersicProfile(tuple(sc), tuple(se), source["intensity"], source["effective_radius"],
                                source["sersic_index"])
        sim = simulate_imaging((100, 100), 0.1, mass, [profile], psf_size=11, psf_sigma=0.1, seed=1000 + i)
        imagings.append(prepare_imaging(sim.image, sim.noise_map, sim.psf, 0.1, mask_radius=3.0,
                                        over_sample_size_lp=2, over_sample_size_pixelization=2))
        truths.append(np.concatenate([c, e, [te], g, sc, se]))
    return imagings, truths


def run(args) -> dict:
    import jax

    from workers.config import SearchOptions
    from workers.inversion.batch import evaluate
    from workers.model.description import MGEBasis, Model
    from workers.model.settings import Settings
    from workers.priors import prior_transform
    from workers.posterior import LensSearch
    from workers.gradient_search import gradient_search_block
    from workers.samplers import SAMPLER_TIMES
    from workers.search import search_block

    model = Model(source=MGEBasis(gaussians=20, sigma_min=0.01), shear=True,
                  settings=Settings(use_positive_only_solver=True))
    prior = prior_transform(model)
    if args.search == "gradient":
        options = SearchOptions(type="gradient", starts=args.starts, steps=args.steps,
                                posterior_samples=args.posterior_samples, seed=args.seed, eval_chunk=args.eval_chunk)
    else:
        options = SearchOptions(
            n_live=args.n_live, n_batch=args.n_batch, n_eff=args.n_eff, f_live=args.f_live,
            n_networks=args.n_networks, network_epochs=args.network_epochs, seed=args.seed,
            eval_chunk=args.eval_chunk, n_like_max=args.n_like_max,
        )
    imagings, truths = simulate(args.lenses, args.seed)
    ids = [f"a0-like-{i}" for i in range(args.lenses)]
    truth_fom = [float(evaluate(im, t[None], model).figure_of_merit[0]) for im, t in zip(imagings, truths)]
    report = {
        "search": args.search,
        "machine": {
            "nproc": os.cpu_count(), "cpu": _cpu_model(), "device": str(jax.devices()[0]),
            "python": platform.python_version(), "jax": jax.__version__, "load_before": os.getloadavg(),
        },
        "options": {k: v for k, v in options.__dict__.items()},
        "lenses": args.lenses,
        "modes": {},
    }

    def record(name: str, blocks: list, seconds: float) -> None:
        per_lens = []
        for block in blocks:
            for r, n in zip(block.results, block.likelihood_evaluations):
                ok = isinstance(r, LensSearch)
                per_lens.append({
                    "evaluations": n, "converged": ok and r.converged,
                    "log_evidence": r.log_evidence if ok else None,
                    "max_log_likelihood": r.max_log_likelihood if ok else None,
                    "lens_parameters_within_3_sigma": int(np.sum(
                        np.abs(r.parameter_median - truths[len(per_lens)])[:7] <= 3 * r.parameter_sigma[:7]))
                    if ok else None,
                    "multimodal": r.diagnostics.get("multimodal") if ok and r.diagnostics else None,
                })
        sampler = {k: float(sum(t.get(k, 0.0) for b in blocks for t in b.sampler_seconds)) for k in SAMPLER_TIMES}
        report["modes"][name] = {
            "wall_s": seconds,
            "wall_s_per_lens": seconds / args.lenses,
            "lenses_per_hour": 3600 * args.lenses / seconds,
            "likelihood_s": sum(b.likelihood_s for b in blocks),
            "sampler_s": sampler,  # summed over the lenses' sampler processes (they run side by side)
            "coordinator_s": {k: float(sum(b.coordinator_s.get(k, 0.0) for b in blocks))
                              for k in ("gathering", "starved", "pipe", "cpu")},
            "compile_s": sum(b.compile_s for b in blocks),
            "block_calls": sum(b.block_calls for b in blocks),
            "evaluated": sum(b.evaluated for b in blocks),
            "evaluations_per_lens": float(np.mean([p["evaluations"] for p in per_lens])),
            "exploration_evaluations_per_lens": float(np.mean(  # Nautilus only
                [n for b in blocks for n in b.exploration_evaluations] or [0])),
            "lenses": per_lens,
        }
        print(json.dumps({name: {k: v for k, v in report["modes"][name].items() if k != "lenses"}}), flush=True)

    def searched(ims, names):
        if args.search == "nautilus":
            return search_block(ims, names, model, [prior] * len(ims), options, with_fit=False)
        first = time.perf_counter()
        block = gradient_search_block(ims, names, model, [prior] * len(ims), options, with_fit=False)
        if args.repeat:  # the first call compiled: time a second, warm one
            compiled = time.perf_counter() - first
            block = gradient_search_block(ims, names, model, [prior] * len(ims), options, with_fit=False)
            block.compile_s = compiled
        return block

    for mode in args.modes.split(","):
        start = time.perf_counter()
        if mode == "batched":
            blocks = [searched(imagings, ids)]
        elif mode == "one-by-one":
            blocks = [searched([im], [i]) for im, i in zip(imagings, ids)]
        else:
            raise SystemExit(f"unknown mode {mode!r}")
        # wall time of the searches themselves: the compile of each block call is reported apart
        record(mode, blocks, time.perf_counter() - start - sum(b.compile_s for b in blocks))
    report["truth_figure_of_merit"] = truth_fom
    report["machine"]["load_after"] = os.getloadavg()
    return report


def markdown(report: dict, command: str) -> str:
    m = report["machine"]
    lines = [
        f"Command: `{command}`",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), device {m['device']}; Python {m['python']}, jax {m['jax']}; "
        f"load average {m['load_before'][0]:.1f} before, {m['load_after'][0]:.1f} after.",
        "",
        f"Search: {report['search']}.",
        "",
        "| mode | lenses | wall s / lens | lenses / hour | evaluations / lens | likelihood s (all) | outside s (all) | "
        "block calls | slots computed | compile s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in report["modes"].items():
        outside_s = r["wall_s"] - r["likelihood_s"]
        lines.append(
            f"| {name} | {report['lenses']} | {r['wall_s_per_lens']:.1f} | {r['lenses_per_hour']:.1f} | "
            f"{r['evaluations_per_lens']:.0f} | {r['likelihood_s']:.1f} | {outside_s:.1f} | {r['block_calls']} | "
            f"{r['evaluated']} | {r['compile_s']:.1f} |"
        )
    lines += ["", "Where the time went (seconds; samplers: summed over the lenses' processes, which run side by side "
              "with each other and with the coordinator):", "",
              "| mode | block calls | coordinator gathering | starved | pipe | coordinator CPU | sampler bounds | "
              "sampling | checkpoint | waiting | total | sampler CPU |", "|---|" + "---:|" * 11]
    for name, r in report["modes"].items():
        c, t = r["coordinator_s"], r["sampler_s"]
        lines.append(f"| {name} | {r['likelihood_s']:.1f} | {c['gathering']:.1f} | {c['starved']:.1f} | "
                     f"{c['pipe']:.2f} | {c['cpu']:.1f} | {t['bounds']:.1f} | {t['sampling']:.1f} | "
                     f"{t['checkpoint']:.1f} | {t['waiting']:.1f} | {t['total']:.1f} | {t['cpu']:.1f} |")
    lines += ["", "Per lens (evaluations, converged, max log-likelihood − truth's figure of merit, lens parameters within "
              "3σ of the truth of 7, m1 when the gradient search's starts disagree):", ""]
    for name, r in report["modes"].items():
        cells = [
            f"{p['evaluations']} {'✓' if p['converged'] else '✗'} {p['max_log_likelihood'] - t:+.1f} "
            f"{p['lens_parameters_within_3_sigma']}/7" + (" m1" if p["multimodal"] else "")
            if p["max_log_likelihood"] is not None else "failed"
            for p, t in zip(r["lenses"], report["truth_figure_of_merit"])
        ]
        lines.append(f"- {name}: " + "; ".join(cells))
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lenses", type=int, default=4)
    parser.add_argument("--modes", default="batched,one-by-one")
    parser.add_argument("--n-live", type=int, default=100)
    parser.add_argument("--n-batch", type=int, default=100)
    parser.add_argument("--n-eff", type=float, default=500)
    parser.add_argument("--f-live", type=float, default=0.01)
    parser.add_argument("--n-networks", type=int, default=4)
    parser.add_argument("--network-epochs", type=int, default=10000)
    parser.add_argument("--n-like-max", type=int, default=None)
    parser.add_argument("--eval-chunk", type=int, default=None,
                        help="SearchOptions.eval_chunk (default: chosen by the device, 1 on a CPU, 0 on a GPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--search", choices=("nautilus", "gradient"), default="nautilus")
    parser.add_argument("--starts", type=int, default=8, help="gradient search: starts per lens")
    parser.add_argument("--steps", type=int, default=100, help="gradient search: most optimiser steps per start")
    parser.add_argument("--posterior-samples", type=int, default=1000, help="gradient search: importance draws")
    parser.add_argument("--repeat", action="store_true", help="gradient search: time a second, warm call")
    parser.add_argument("--json", help="also write the full report here")
    args = parser.parse_args()
    import sys

    report = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    print(markdown(report, "python benchmarks/search.py " + " ".join(sys.argv[1:])))


if __name__ == "__main__":
    main()
