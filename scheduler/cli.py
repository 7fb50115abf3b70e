"""The `lensfleet` command line. The driver process never imports JAX: commands that run the engine in this
process (evaluate, bench, simulate, show) import it inside the command."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from scheduler.driver import RunError, RunOptions, run
from scheduler.pool import CPUS_PER_CPU_ACTOR
from scheduler.status import WORST_DEFAULT, damaged, format_summary, summarize
from storage.errors import CatalogError, DatasetError, DatasetUnavailable, StoreError
from storage.lease import MIN_TTL
from workers.config import ConfigError, load_config
from workers.model.description import MASS_PROFILES, ParameterError

USER_ERRORS = (ConfigError, DatasetError, DatasetUnavailable, CatalogError, StoreError, ParameterError)
MAX_BLOCK_SIZE = 4096


def _at_least(low: int, high: int | None = None):
    """An argparse type: an integer in [low, high]; anything else is a usage error (exit status 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" + (f" and <= {high}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {value}")
        return value

    return parse


def _number(low: float, open_low: bool = False):
    """An argparse type: a finite number >= low (> low with `open_low`)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or (open_low and value == low):
            raise argparse.ArgumentTypeError(f"must be a finite number {'>' if open_low else '>='} {low:g}, got {text}")
        return value

    return parse


def _read_params(path: str) -> dict:
    try:
        params = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ParameterError(f"{path}: params file not found") from None
    except json.JSONDecodeError as e:
        raise ParameterError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(params, dict):
        raise ParameterError(f"{path}: must hold a JSON object")
    return params


def _load_dataset(args: argparse.Namespace):
    from storage.datasets import load_imaging

    return load_imaging(args.dataset, dataset_id=Path(args.dataset).name or args.dataset,
                        pixel_scale=args.pixel_scale, band=args.band)


def cmd_evaluate(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    params = _read_params(args.params)
    data = _load_dataset(args)
    from workers.datasets import fit_mask, mask_geometry
    from workers.evaluate import fit_lens, plot_lens_fit, result_record

    fit = fit_lens(data, config, params)
    record = result_record(fit)
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=1))
    if args.plot:
        mask = fit_mask(data, *mask_geometry(data, config.dataset))
        plot_lens_fit(fit, config.model, data, mask, data.dataset_id, args.plot)
    summary = {k: v for k, v in record.items() if not isinstance(v, list)}
    print(json.dumps(summary, indent=1))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    params = _read_params(args.params)
    data = _load_dataset(args)
    from workers.evaluate import benchmark

    result = benchmark(data, config, params, batch=args.batch, lenses=args.lenses)
    if args.json:
        print(json.dumps(result))
    else:
        plan = result["plan"]
        print(f"device            {result['device']}")
        print(f"single call       {result['single_ms']:.3f} ms")
        print(f"batch of {result['batch']:<8} {result['batched_ms_per_eval']:.3f} ms per evaluation "
              f"(eval chunk {plan['eval_chunk']}, 0 = all at once)")
        print(f"compile           {result['compile_s']:.2f} s")
        print(f"peak memory       {result['peak_memory_mb']:.0f} MB")
        print(f"block plan        {plan['lenses']} lenses × {plan['vectors_per_lens']} vectors: "
              f"{plan['lenses_per_call']} lenses per device call, eval chunk {plan['eval_chunk']}, "
              f"{plan['lane_memory_mb']:.1f} MB per evaluation, {plan['free_memory_mb']:.0f} MB usable")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from scheduler.demo import DemoError, run_demo

    try:
        run_demo(Path(args.out), long=args.long)
    except DemoError as e:
        print(f"lensfleet: demo failed: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from workers.survey import simulate_survey

    try:
        survey = simulate_survey(args.n, args.out, seed=args.seed, mass=args.mass, lens_light=args.lens_light,
                                 pixel_scale=args.pixel_scale, two_clump=args.two_clump)
    except ValueError as e:
        print(f"lensfleet: error: simulate: {e}", file=sys.stderr)
        return 2
    shapes = sorted({(t.shape_native, t.pixel_scale) for t in survey.lenses})
    print(f"simulated {len(survey.lenses)} lenses (seed {args.seed}) in {survey.folder}")
    print(f"  imaging: {', '.join(f'{ny}x{nx} at {p}″' for (ny, nx), p in shapes)}")
    print(f"  catalog: {survey.catalog}  (true parameters as columns)")
    print(f"  config:  {survey.config}")
    print(f"  lenses:  {survey.folder / 'lenses'}/ID/{{image,noise_map,psf}}.fits + truth.json")
    return 0


def run_options(args: argparse.Namespace) -> RunOptions:
    """The RunOptions of a parsed `lensfleet run` (the parser's defaults are RunOptions')."""
    return RunOptions(**{f.name: getattr(args, f.name) for f in fields(RunOptions)})


def cmd_run(args: argparse.Namespace) -> int:
    try:
        return run(run_options(args)).exit_code
    except RunError as e:
        print(f"lensfleet: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once; uncommitted blocks rerun on resume
        print("lensfleet: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def cmd_status(args: argparse.Namespace) -> int:
    summary = summarize(args.store, worst=args.worst, verify=args.verify)
    print(json.dumps(summary, indent=1) if args.json else format_summary(summary))
    return 1 if damaged(summary) else 0


def cmd_show(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("JAX_PLATFORMS", "cpu")  # a picture needs no accelerator (and must not grab one)
    from workers.show import show_lens

    show_lens(args.store, args.id, args.out, catalog=args.catalog, corner=args.corner, stage=args.stage)
    print(f"lensfleet: {args.id}: {args.out}" + (f", corner plot {args.corner}" if args.corner else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lensfleet", description="Survey-scale strong-lens modelling.")
    sub = parser.add_subparsers(dest="command", required=True)

    def single_lens(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument("dataset", help="folder with image.fits, noise_map.fits, psf.fits, a multi-extension FITS, or "
                                       "a Euclid MER cutout (its FITS file or folder)")
        p.add_argument("--config", required=True, help="fit.toml")
        p.add_argument("--params", required=True, help="params.json (PyAutoLens names)")
        p.add_argument("--pixel-scale", type=_number(0, open_low=True), default=None,
                       help="arcsec per pixel (default: header)")
        p.add_argument("--band", default=None, help="a Euclid cutout's band (VIS, DES_G, ..., NIR_H; default VIS)")
        return p

    p = single_lens("evaluate", "fit one dataset at given parameters")
    p.add_argument("--out", help="write result.json here")
    p.add_argument("--plot", help="write the fit picture here (PNG)")
    p.set_defaults(func=cmd_evaluate)

    p = single_lens("bench", "time the likelihood of one dataset")
    p.add_argument("--batch", type=_at_least(1), default=64, help="parameter vectors per lens (what a search asks for)")
    p.add_argument("--lenses", type=_at_least(1), default=16,
                   help="lenses per block, for the block plan (run's --block-size)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="simulate a small survey, fit it on a local Ray cluster, summarise it, draw a lens")
    p.add_argument("--out", default="demo_output", help="output folder")
    p.add_argument("--long", action="store_true",
                   help="the longer demo: 8 lenses of three imagings, searched with wider settings (~20 min on 2 CPUs)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("simulate", help="simulate a survey of N lenses: FITS datasets, catalog.ecsv, fit.toml, truths")
    p.add_argument("n", type=_at_least(1), help="number of lenses")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed (the survey is a pure function of it)")
    p.add_argument("--mass", choices=tuple(MASS_PROFILES), default="isothermal",
                   help="lens mass profile (power_law: slope drawn in [1.8, 2.2])")
    p.add_argument("--lens-light", action="store_true", help="give every lens a Sersic lens light")
    p.add_argument("--pixel-scale", type=float, default=None, metavar="P",
                   help="image every lens like the survey's P″ imaging (0.1, 0.075 or 0.05; default: a mix)")
    p.add_argument("--two-clump", action="store_true", help="give every lens a source of two Sersic clumps")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("run", help="fit a survey catalog on a Ray cluster into a result store (resumable)")
    p.set_defaults(**{f.name: f.default for f in fields(RunOptions) if f.default is not MISSING})  # their defaults
    p.add_argument("catalog", help="survey catalog (.ecsv, .fits, .csv): id, path, optional parameters")
    p.add_argument("--config", required=True, help="fit.toml")
    p.add_argument("--store", required=True, help="result store (a folder or an s3:// / gs:// URL)")
    p.add_argument("--address",
                   help="Ray cluster to join (default: RAY_ADDRESS, e.g. inside `ray job submit`, else a new local "
                        "cluster; 'auto' joins the machine's `ray start` cluster)")
    p.add_argument("--block-size", type=_at_least(1, MAX_BLOCK_SIZE),
                   help="datasets per block: the store's chunk and the lenses per compiled call (default "
                        "%(default)s; a resumed store keeps its own)")
    p.add_argument("--actors", type=_at_least(1),
                   help=f"actors in the pool (default: one per GPU, else one per {CPUS_PER_CPU_ACTOR} CPUs)")
    p.add_argument("--gpus-per-actor", type=_number(0),
                   help="GPUs per actor: 1, or a fraction to pack actors on a GPU (default: 1 if the cluster has "
                        "GPUs, else 0)")
    p.add_argument("--cpus-per-actor", type=_number(0, open_low=True),
                   help=f"CPUs per actor, and its XLA threads (default: {CPUS_PER_CPU_ACTOR} for CPU actors, 1 for "
                        "GPU actors)")
    p.add_argument("--max-attempts", type=_at_least(1),
                   help="tries per block before its datasets are marked failed (default %(default)s)")
    p.add_argument("--restart", action="store_true", help="delete the store's results and start over")
    p.add_argument("--retry-failed", action="store_true", help="run blocks holding FAILED datasets again")
    p.add_argument("--compile-cache",
                   help="JAX persistent compilation cache folder on each node (default: LENSFLEET_COMPILE_CACHE, "
                        "else ~/.cache/lensfleet/jax)")
    p.add_argument("--grace-period", type=_number(0),
                   help="seconds in-flight blocks get to commit after SIGTERM/SIGINT (default %(default)g)")
    p.add_argument("--lease-ttl", type=_number(MIN_TTL),
                   help=f"seconds without a heartbeat after which the store's driver lease expires (default "
                        f"%(default)g); at least {MIN_TTL:g}")
    p.add_argument("--scale-up-timeout", type=_number(0),
                   help="with --actors N on an autoscaling cluster: ask the autoscaler for N actors' CPUs/GPUs and "
                        "wait up to this many seconds for them before starting (default %(default)g: use the "
                        "cluster as it is)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="a store's done / failed / invalid / pending counts, throughput, worst fits, "
                                      "errors by reason")
    p.add_argument("store", help="result store (a folder or an s3:// / gs:// URL)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--worst", type=_at_least(0), default=WORST_DEFAULT,
                   help="how many worst fits (highest chi-squared per pixel) to list; 0 skips reading residuals")
    p.add_argument("--verify", action="store_true",
                   help="re-read every committed block and check it against its checksums (exit status 1 if a "
                        "block is corrupt; a resume refits it)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("show", help="draw one lens's data / model / residuals / source from a store")
    p.add_argument("store", help="result store")
    p.add_argument("id", help="the lens's id")
    p.add_argument("-o", "--out", default="fit.png", help="picture file (.png, .pdf; default fit.png)")
    p.add_argument("--catalog", default=None,
                   help="catalog to read the lens's data from (default: the catalog recorded in the store)")
    p.add_argument("--stage", default=None, metavar="NAME",
                   help="the pipeline stage to draw (default: the last; its corner plot: the last searched one)")
    p.add_argument("--corner", default=None, metavar="FILE",
                   help="also draw a corner plot of the lens parameters' posterior to FILE (search-mode stores)")
    p.set_defaults(func=cmd_show)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as e:
        print(f"lensfleet: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
