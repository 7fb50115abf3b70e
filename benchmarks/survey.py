"""Survey throughput of `lensfleet run`: lenses per hour and likelihood evaluations per second for a simulated
survey, with one actor vs two and block size 1 vs 16.

    .venv/bin/python benchmarks/survey.py              # 256 lenses, configs 1x1, 1x16, 2x1, 2x16, 3 runs of each
    .venv/bin/python benchmarks/survey.py --lenses 64 --configs 1x16 --repeats 1 --results -   # quick look

The survey is `lensfleet simulate N --seed 0` (three imagings: 60×60 at 0.1″, 80×80 at 0.075″, 100×100 at
0.05″, 20-Gaussian MGE source, evaluate mode: one evaluation per lens at its true parameters). Each
configuration AxB is one `lensfleet run --actors A --block-size B --restart` on a fresh local Ray cluster (a
subprocess; the command is recorded verbatim), with CPUs split evenly among the actors (--cpus-per-actor) and
an empty JAX compilation cache of its own, so every configuration pays its compiles as a new survey would.

Numbers, from the store and the command (status chunk modification times are the block commit times):
- wall: the whole command (planning, Ray start, actor start-up and compiles, fitting, reconcile, shutdown);
- lenses/hour (wall) = N / wall;
- steady: first block commit -> last block commit, i.e. the fitting phase with every actor warm;
- lenses/hour (steady) = (N − lenses of the first committed block) / steady;
- evaluations/s (steady): likelihood evaluations (finite entries of evaluation_figure_of_merit) per steady second,
  counted the same way as lenses;
- actor s/lens: Σ wall_time / N (the block's seconds shared among its lenses, summed over actors).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scheduler.status import commit_times  # noqa: E402
from storage.schema import Status  # noqa: E402
from storage.store import ResultStore  # noqa: E402

LENSFLEET = str(Path(sys.executable).parent / "lensfleet")


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    from importlib.metadata import version

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in ("jax", "ray", "zarr")},
        "platform": platform.platform(),
    }


def simulate(n: int, folder: Path) -> Path:
    catalog = folder / "catalog.ecsv"
    marker = folder / f".simulated-{n}"
    if not marker.exists():
        subprocess.run([LENSFLEET, "simulate", str(n), "--out", str(folder), "--seed", "0"], check=True)
        marker.write_text("")
    return catalog


def run_config(catalog: Path, actors: int, block: int, out: Path) -> dict:
    store = out / f"store-{actors}x{block}.zarr"
    cache = out / f"jax-cache-{actors}x{block}"
    shutil.rmtree(cache, ignore_errors=True)
    cpus = max(1, (os.cpu_count() or 1) // actors)
    command = [LENSFLEET, "run", str(catalog), "--config", str(catalog.parent / "fit.toml"), "--store", str(store),
               "--actors", str(actors), "--cpus-per-actor", str(cpus), "--block-size", str(block), "--restart",
               "--compile-cache", str(cache)]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    compiles = [(int(m[1]), float(m[2]), int(m[3])) for m in
                re.finditer(r"(\d+) compiles in ([\d.]+) s \((\d+) from the cache\)", done.stdout + done.stderr)]

    s = ResultStore.open_existing(str(store))
    status = s.read_array("status")
    n = s.n_datasets
    evaluations = np.isfinite(s.read_array("evaluation_figure_of_merit")).reshape(n, -1).sum(axis=1)
    times = commit_times(s)
    blocks = np.arange(n) // s.block_size
    first_block = min(times, key=times.get)
    steady = max(times.values()) - times[first_block]
    later = blocks != first_block
    return {
        "config": f"{actors}x{block}",
        "actors": actors,
        "cpus_per_actor": cpus,
        "block_size": block,
        "command": shlex.join(["lensfleet", *command[1:]]),
        "lenses": n,
        "done": int((status == Status.DONE).sum()),
        "wall_s": wall,
        "lenses_per_hour_wall": 3600 * n / wall,
        "steady_s": steady,
        "lenses_per_hour_steady": 3600 * int(later.sum()) / steady if steady > 0 else float("nan"),
        "evaluations_per_s_steady": int(evaluations[later].sum()) / steady if steady > 0 else float("nan"),
        "actor_s_per_lens": float(np.nansum(s.read_array("wall_time"))) / n,
        "compiles": compiles,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def markdown(results: list[dict], info: dict, n: int, argv: list[str]) -> str:
    lines = [
        f"# Survey throughput: `lensfleet run` on a {n}-lens simulated survey",
        "",
        f"Recorded {datetime.now(UTC).isoformat(timespec='minutes')} with "
        f"`{shlex.join(['.venv/bin/python', 'benchmarks/survey.py', *argv])}`.",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory_gib']} GiB, no GPU; Python {info['python']}, "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + f"; {info['platform']}.",
        "",
        "Survey: `lensfleet simulate N --seed 0` (60×60 at 0.1″, 80×80 at 0.075″, 100×100 at 0.05″; MGE source with",
        "20 Gaussians, over-sampling 2, positive-only solver); evaluate mode, one likelihood evaluation per lens at",
        "its true parameters, so evaluations/s equals lenses/s here.",
        "",
        "Median over the repeats (min–max in brackets); every run is listed below.",
        "",
        "| actors × block | CPUs/actor | lenses/h (wall) | lenses/h (steady) | evaluations/s (steady) | actor s/lens "
        "| compile s per actor |",
        "|---|---|---|---|---|---|---|",
    ]
    for config in dict.fromkeys(r["config"] for r in results):
        runs = [r for r in results if r["config"] == config]

        def stat(key: str, fmt: str) -> str:
            values = [r[key] for r in runs]
            median = format(float(np.median(values)), fmt)
            return median if len(values) == 1 else f"{median} ({format(min(values), fmt)}–{format(max(values), fmt)})"

        compile_s = [t for r in runs for _, t, _ in r["compiles"]]
        compiled = f"{np.median(compile_s):.1f} ({min(compile_s):.1f}–{max(compile_s):.1f})" if compile_s else "–"
        lines.append(
            f"| {runs[0]['actors']} × {runs[0]['block_size']} | {runs[0]['cpus_per_actor']} | "
            f"{stat('lenses_per_hour_wall', '.0f')} | {stat('lenses_per_hour_steady', '.0f')} | "
            f"{stat('evaluations_per_s_steady', '.1f')} | {stat('actor_s_per_lens', '.3f')} | {compiled} |"
        )
    lines += [
        "",
        "Every run:",
        "",
        "| actors × block | wall s | lenses/h (wall) | steady s | lenses/h (steady) | evaluations/s (steady) "
        "| actor s/lens | compiles (s, cache hits) | load avg before→after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        comp = "; ".join(f"{c} in {t:.1f} s, {h} hits" for c, t, h in r["compiles"]) or "–"
        lines.append(
            f"| {r['actors']} × {r['block_size']} | {r['wall_s']:.1f} | "
            f"{r['lenses_per_hour_wall']:.0f} | {r['steady_s']:.1f} | {r['lenses_per_hour_steady']:.0f} | "
            f"{r['evaluations_per_s_steady']:.1f} | {r['actor_s_per_lens']:.3f} | {comp} | "
            f"{r['load_before']:.1f}→{r['load_after']:.1f} |"
        )
    lines += [
        "",
        "Reading the numbers",
        "- *wall* is the whole command: planning, starting a local Ray cluster, starting the actors, compiling every",
        "  shape bucket at the block size (each actor compiles; every configuration starts from an empty compilation",
        "  cache, which its actors share), fitting, and shutting down. On this machine the fixed part dominates a 256-lens run.",
        "- *steady* is first block commit → last block commit, with every actor warm: the rate a long survey runs at.",
        "- *actor s/lens* is actor time per lens; with block size 16 it includes the padding of a bucket's last block",
        "  and of blocks that straddle two buckets (each part is padded to 16 lenses), which block size 1 never pays.",
        "- The load average is the machine's (1-minute), before and after each run: this machine is shared, and a",
        "  load above its 2 CPUs means other work competed with the run; compare configurations within one table.",
        "",
        "Commands (each on a fresh local Ray cluster started by `lensfleet run`):",
        "",
    ]
    lines += [f"    {command}" for command in dict.fromkeys(r["command"] for r in results)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lenses", type=int, default=256)
    parser.add_argument("--configs", default="1x1,1x16,2x1,2x16", help="ACTORSxBLOCK, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each configuration (interleaved)")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "lensfleet-survey-bench"),
                        help="folder for the survey, the stores and the compile cache (reused between runs)")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "RESULTS_survey.md"),
                        help="markdown file to write ('-' prints only)")
    args = parser.parse_args(argv)
    work = Path(args.work).resolve()
    survey = work / f"survey-{args.lenses}"
    survey.mkdir(parents=True, exist_ok=True)
    catalog = simulate(args.lenses, survey)
    info = machine()
    results = []
    for config in [c for _ in range(args.repeats) for c in args.configs.split(",")]:
        actors, block = (int(x) for x in config.lower().split("x"))
        r = run_config(catalog, actors, block, work)
        print(f"{r['config']}: wall {r['wall_s']:.1f} s ({r['lenses_per_hour_wall']:.0f} lenses/h), steady "
              f"{r['steady_s']:.1f} s ({r['lenses_per_hour_steady']:.0f} lenses/h, "
              f"{r['evaluations_per_s_steady']:.1f} evaluations/s), compiles {r['compiles']}", flush=True)
        results.append(r)
    text = markdown(results, info, args.lenses, argv)
    print(text)
    if args.results != "-":
        Path(args.results).write_text(text)


if __name__ == "__main__":
    main()
