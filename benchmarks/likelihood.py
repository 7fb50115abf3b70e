"""Likelihood benchmark: ms per evaluation of the engine on the reference lenses, as a search calls it.

For each case: one call (1 vector), vmap over V vectors of one lens, and a block of L lenses × V vectors
(batch.evaluate_block; the block holds L copies of the lens, perturbed vectors); fp64 and mixed precision; for
pixelized sources the FFT and the sparse mapping-matrix convolution. Every case runs in its own process, so its
peak memory (resident set on the CPU, peak device bytes on a GPU) and compile time are its own.

    .venv/bin/python benchmarks/likelihood.py                 # all cases, a markdown table
    .venv/bin/python benchmarks/likelihood.py --only mge      # cases whose name starts with "mge"
    .venv/bin/python benchmarks/likelihood.py --case NAME --json   # one case (what the table runs)

Recorded results: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "datasets"


@dataclass(frozen=True)
class Case:
    name: str
    dataset: str
    source: str  # "mge" or "rect"
    mixed: bool
    route: str  # mapping-matrix route for rect: "fft" or "sparse"; "auto" for mge
    batch: int
    block: tuple[int, int]  # (lenses, vectors per lens)


def cases() -> list[Case]:
    out = []
    for dataset in ("A0", "B0"):
        for mixed in (False, True):
            tag = "mp" if mixed else "fp64"
            out.append(Case(f"mge-{dataset}-{tag}", dataset, "mge", mixed, "auto", 64, (16, 16)))
    for mixed in (False, True):
        for route in ("fft", "sparse"):
            tag = "mp" if mixed else "fp64"
            out.append(Case(f"rect-B0-{tag}-{route}", "B0", "rect", mixed, route, 16, (8, 8)))
    return out


def run_case(case: Case, repeats: int) -> dict:
    """Time one case in this process."""
    import jax
    import numpy as np

    from storage.datasets import load_imaging
    from workers.runtime import device_name, peak_memory_mb
    from workers.inversion.batch import evaluate, evaluate_block, stack
    from workers.inversion.imaging import prepare_imaging
    from workers.model.description import MGEBasis, Model, RectangularSource
    from workers.model.settings import Settings

    folder = REFERENCE / case.dataset
    truth = json.loads((folder / "truth.json").read_text())
    data = load_imaging(str(folder), case.dataset)
    imaging = jax.device_put(prepare_imaging(
        data.image, data.noise_map, data.psf, data.pixel_scale, mask_radius=truth["mask_radius"],
        over_sample_size_lp=2, over_sample_size_pixelization=2,
    ))
    mass = truth["mass"]
    vector = mass["centre"] + mass["ell_comps"] + [mass["einstein_radius"], truth["shear"]["gamma_1"],
                                                   truth["shear"]["gamma_2"]]
    if case.source == "mge":
        source = truth["sources"][0]
        vector += source["centre"] + source["ell_comps"]
        model = Model(MGEBasis(20, 0.01), settings=Settings(use_positive_only_solver=True,
                                                            use_mixed_precision=case.mixed))
    else:
        model = Model(RectangularSource((20, 20), 1.0), settings=Settings(use_positive_only_solver=True,
                                                                          use_mixed_precision=case.mixed))
    rng = np.random.default_rng(0)
    lenses, per_lens = case.block
    vectors = np.asarray(vector) + 1e-3 * rng.standard_normal((max(case.batch, lenses * per_lens), len(vector)))
    block = jax.device_put(stack([imaging] * lenses))
    block_vectors = vectors[: lenses * per_lens].reshape(lenses, per_lens, -1)

    def single():
        return evaluate(imaging, vectors[:1], model, convolution=case.route).figure_of_merit

    def batched():
        return evaluate(imaging, vectors[: case.batch], model, convolution=case.route).figure_of_merit

    def blocked():
        return evaluate_block(block, block_vectors, model, convolution=case.route).figure_of_merit

    timings = {}
    for key, call, n in (("single", single, 1), ("batched", batched, case.batch), ("block", blocked, lenses * per_lens)):
        start = time.perf_counter()
        jax.block_until_ready(call())
        timings[f"{key}_compile_s"] = time.perf_counter() - start
        samples = []
        for _ in range(repeats if key == "single" else max(3, repeats // 4)):
            start = time.perf_counter()
            jax.block_until_ready(call())
            samples.append(time.perf_counter() - start)
        timings[f"{key}_ms_per_eval"] = 1e3 * float(np.median(samples)) / n
    return {
        "case": case.name,
        "pixels": int(imaging.bucket.pixels),
        "batch": case.batch,
        "block": list(case.block),
        **timings,
        "peak_memory_mb": peak_memory_mb(),
        "device": device_name(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", help="run one case in this process")
    parser.add_argument("--only", default="", help="run the cases whose name starts with this")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if args.case:
        case = next(c for c in cases() if c.name == args.case)
        print(json.dumps(run_case(case, args.repeats)))
        return
    rows = []
    for case in cases():
        if not case.name.startswith(args.only):
            continue
        out = subprocess.run([sys.executable, __file__, "--case", case.name, "--repeats", str(args.repeats)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"done {case.name}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"device: {rows[0]['device']}\n")
    print("| case | pixels | single ms | vmap(V) ms/eval | block L×V ms/eval | compile s (single / vmap / block) | peak MB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['pixels']} | {r['single_ms_per_eval']:.2f} | {r['batched_ms_per_eval']:.2f} (V={r['batch']}) "
              f"| {r['block_ms_per_eval']:.2f} ({r['block'][0]}×{r['block'][1]}) "
              f"| {r['single_compile_s']:.1f} / {r['batched_compile_s']:.1f} / {r['block_compile_s']:.1f} "
              f"| {r['peak_memory_mb']:.0f} |")


if __name__ == "__main__":
    main()
