"""Time PyAutoLens's own JAX likelihood the way a PyAutoLens JAX search calls it.

Runs under a Python that has ``autolens`` installed (e.g. ``/tmp/al312/bin/python``), *not* the
lensfleet venv: it imports autolens / autofit and nothing from lensfleet.

Call path replicated (PyAutoLens / PyAutoFit 2026.10.26.1):

- ``al.Imaging.from_fits`` -> ``apply_mask(Mask2D.circular)`` -> ``apply_over_sampling(2, 2)``;
- ``al.AnalysisImaging(dataset, settings=al.Settings(...), use_jax=True)``;
- the model is an ``af.Collection(galaxies=af.Collection(lens=..., source=...))`` of ``af.Model``
  objects; the MGE source comes from ``al.model_util.mge_model_from`` (the workspace helper, here with
  ``total_gaussians=20, sigma_min=0.01``), the pixelized source from ``af.Model(al.Pixelization, ...)``;
- ``autofit.non_linear.fitness.Fitness(model, analysis, fom_is_log_likelihood=True, resample_figure_of_merit=<Nautilus's
  invalid_value>, batched=True, batch_size=64)`` -- the kwargs ``NonLinearSearch.make_fitness`` and
  ``Nautilus.fitness_overrides`` build for a JAX analysis;
- ``fitness.objective("scalar")``  == ``jax.jit(fitness.call)`` (one parameter vector),
  ``fitness.objective("batched")`` == ``jax.jit(jax.vmap(fitness.call))`` (what Nautilus calls through
  ``call_wrap`` with ``vectorized=True``). ``fitness.call`` is ``model.instance_from_vector(xp=jnp)`` ->
  ``analysis.log_likelihood_function`` -> ``FitImaging(...).figure_of_merit`` plus the NaN/inf guards.

The reported figure of merit at the truth is checked against reference.json (mass model "true"; jax_fp64
for fp64, jax_mp for mixed). The "rect" case leaves use_edge_zeroed_pixels at PyAutoLens's default (True),
i.e. the reference's rect_pos_edge0 case.

Each (dataset, case, precision) runs in its own child process (fresh JAX, no persistent compilation cache
unless --use-compile-cache), so the compile time is a cold first call and a hang cannot stall the rest.
The child imports autolens before jax: autonerves turns on JAX_ENABLE_X64 (and adds
--xla_disable_hlo_passes=constant_folding to XLA_FLAGS) at import, which JAX only reads when it is itself
imported -- import jax first and the "fp64" likelihood silently runs in float32.

XLA threading: with XLA's default multi-threaded Eigen runtime the 64-lane vmap of the positive-only MGE
likelihood deadlocked on a 2-core machine (all threads in futex waits, no CPU). A child that uses <5 % of a
core for --hang-seconds is declared hung, killed and (unless --no-retry-hung) rerun with
--xla_cpu_multi_thread_eigen=false. --single-thread-eigen sets that flag for every configuration, which is
what lensfleet's engine does, so it is the like-for-like setting.

Timing: compile = wall time of the first call (trace + lower + compile + one run); ms/call = median of
>= --calls block_until_ready'd single calls after 2 warm-up calls; vmap = median over batch calls after the
compiling one, divided by the batch size (at least one batch; more until --vmap-calls or
--vmap-max-seconds). The batch is the truth plus Gaussian jitter (0.01" centres, 0.01 ell_comps, 1 % theta_E,
0.005 shear), with row 0 = truth, whose lane is checked against the single call.

Example (like-for-like with lensfleet's XLA flags):
    /tmp/al312/bin/python benchmarks/pyautolens_likelihood.py --single-thread-eigen \
        --json /tmp/pyautolens_likelihood.json
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REFERENCE_DIR_DEFAULT = "/work/shared/reference"

# case name -> (source kind, Settings kwargs, reference.json case)
CASES = {
    "mge": ("mge", dict(use_positive_only_solver=False), "mge"),
    "mge_pos": ("mge", dict(use_positive_only_solver=True), "mge_pos"),
    # use_edge_zeroed_pixels left at its default (None -> config, True) as asked; that is the
    # reference's rect_pos_edge0 case.
    "rect": (
        "rect",
        dict(use_positive_only_solver=True, use_border_relocator=False),
        "rect_pos_edge0",
    ),
    "rect_cholesky": (
        "rect",
        dict(use_positive_only_solver=False, use_border_relocator=False),
        "rect",
    ),
}
PRECISIONS = ("fp64", "mixed")


# ----------------------------------------------------------------------------------------------------
# child: one (dataset, case, precision)
# ----------------------------------------------------------------------------------------------------


def _emit(record):
    print("@@RESULT " + json.dumps(record), flush=True)


def _build(dataset_dir, case, precision):
    import numpy as np
    import autofit as af
    import autolens as al
    from astropy.io import fits
    from autofit.non_linear.fitness import Fitness

    truth = json.load(open(os.path.join(dataset_dir, "truth.json")))
    pixel_scale = float(fits.getheader(os.path.join(dataset_dir, "psf.fits"))["PIXSCALE"])
    mask_radius = float(truth["mask_radius"])

    dataset = al.Imaging.from_fits(
        data_path=os.path.join(dataset_dir, "image.fits"),
        noise_map_path=os.path.join(dataset_dir, "noise_map.fits"),
        psf_path=os.path.join(dataset_dir, "psf.fits"),
        pixel_scales=pixel_scale,
    )
    mask = al.Mask2D.circular(
        shape_native=dataset.shape_native,
        pixel_scales=pixel_scale,
        radius=mask_radius,
        centre=tuple(truth.get("mask_centre", (0.0, 0.0))),
    )
    dataset = dataset.apply_mask(mask=mask)
    dataset = dataset.apply_over_sampling(
        over_sample_size_lp=2, over_sample_size_pixelization=2
    )

    source_kind, settings_kwargs, _ = CASES[case]
    settings = al.Settings(
        use_mixed_precision=(precision == "mixed"), **settings_kwargs
    )

    mass = af.Model(al.mp.Isothermal)
    shear = af.Model(al.mp.ExternalShear)
    lens = af.Model(al.Galaxy, redshift=0.5, mass=mass, shear=shear)

    src = truth["sources"][0]
    if source_kind == "mge":
        bulge = al.model_util.mge_model_from(
            mask_radius=mask_radius,
            total_gaussians=20,
            sigma_min=0.01,
            centre=tuple(src["centre"]),
        )
        source = af.Model(al.Galaxy, redshift=1.0, bulge=bulge)
    else:
        mesh = af.Model(al.mesh.RectangularUniform, shape=(20, 20))
        regularization = af.Model(al.reg.Constant)
        regularization.coefficient = 1.0
        pixelization = af.Model(
            al.Pixelization, mesh=mesh, regularization=regularization
        )
        source = af.Model(al.Galaxy, redshift=1.0, pixelization=pixelization)

    model = af.Collection(galaxies=af.Collection(lens=lens, source=source))

    analysis = al.AnalysisImaging(dataset=dataset, settings=settings, use_jax=True)

    # Same Fitness kwargs as NonLinearSearch.make_fitness + Nautilus.fitness_overrides for a JAX
    # analysis (paths / quick-update plumbing aside, which is off by default).
    fitness = Fitness(
        model=model,
        analysis=analysis,
        fom_is_log_likelihood=True,
        resample_figure_of_merit=af.Nautilus.invalid_value,
        batched=True,
        batch_size=64,
    )

    # Truth vector, in the model's prior order (one path per unique prior).
    m, sh = truth["mass"], truth["shear"]
    values = {
        ("lens", "mass", "centre", "centre_0"): m["centre"][0],
        ("lens", "mass", "centre", "centre_1"): m["centre"][1],
        ("lens", "mass", "ell_comps", "ell_comps_0"): m["ell_comps"][0],
        ("lens", "mass", "ell_comps", "ell_comps_1"): m["ell_comps"][1],
        ("lens", "mass", "einstein_radius"): m["einstein_radius"],
        ("lens", "shear", "gamma_1"): sh["gamma_1"],
        ("lens", "shear", "gamma_2"): sh["gamma_2"],
        ("source", "centre", "centre_0"): src["centre"][0],
        ("source", "centre", "centre_1"): src["centre"][1],
        ("source", "ell_comps", "ell_comps_0"): src["ell_comps"][0],
        ("source", "ell_comps", "ell_comps_1"): src["ell_comps"][1],
    }
    # perturbation scale per parameter for the vmap batch
    scales = {
        "centre_0": 0.01,
        "centre_1": 0.01,
        "ell_comps_0": 0.01,
        "ell_comps_1": 0.01,
        "einstein_radius": 0.01 * m["einstein_radius"],
        "gamma_1": 0.005,
        "gamma_2": 0.005,
    }
    names, truth_vec, scale_vec = [], [], []
    for path in model.unique_prior_paths:
        galaxy = path[1]
        key = (galaxy,) + tuple(p for p in path[2:] if p not in ("bulge", "profile_list") and not p.isdigit())
        if key not in values:
            raise RuntimeError(f"no truth value for free parameter {path}")
        names.append(".".join(key))
        truth_vec.append(values[key])
        scale_vec.append(scales[key[-1]])

    return dict(
        np=np,
        fitness=fitness,
        model=model,
        settings=settings,
        names=names,
        truth=np.asarray(truth_vec, dtype=float),
        scale=np.asarray(scale_vec, dtype=float),
        n_pixels=int(mask.pixels_in_mask),
    )


def _time_calls(fn, arg, min_calls, min_seconds, max_seconds):
    import jax

    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        jax.block_until_ready(fn(arg))
        times.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        if len(times) >= min_calls and elapsed >= min_seconds:
            break
        if max_seconds is not None and elapsed >= max_seconds:
            break
    return times


def child(args):
    # autolens must be imported before jax: autonerves (imported by autofit) sets JAX_ENABLE_X64=True and
    # appends --xla_disable_hlo_passes=constant_folding to XLA_FLAGS, both of which JAX only reads at import.
    import autolens
    import jax

    record = dict(
        dataset=args.dataset,
        case=args.case,
        reference_case=CASES[args.case][2],
        precision=args.precision,
        xla_flags=os.environ.get("XLA_FLAGS", ""),
        jax_version=jax.__version__,
        x64=bool(jax.config.jax_enable_x64),
    )
    record["autolens_version"] = autolens.__version__

    built = _build(
        os.path.join(args.reference_dir, "datasets", args.dataset), args.case, args.precision
    )
    np = built["np"]
    fitness = built["fitness"]
    settings = built["settings"]
    record.update(
        n_pixels=built["n_pixels"],
        free_parameters=built["names"],
        settings=dict(
            use_mixed_precision=settings.use_mixed_precision,
            use_positive_only_solver=settings.use_positive_only_solver,
            use_edge_zeroed_pixels=settings.use_edge_zeroed_pixels,
            use_border_relocator=settings.use_border_relocator,
            no_regularization_add_to_curvature_diag_value=settings.no_regularization_add_to_curvature_diag_value,
        ),
    )

    reference = json.load(open(os.path.join(args.reference_dir, "reference.json")))
    ref = reference["datasets"][args.dataset]["cases"][CASES[args.case][2]]["true"]
    record["reference_jax_fp64"] = ref["jax_fp64"]["figure_of_merit"]
    record["reference_jax_mp"] = ref["jax_mp"]["figure_of_merit"]
    record["reference_mass_params"] = ref["mass_params"]

    truth = built["truth"]

    # ---- single jitted call: jax.jit(fitness.call) --------------------------------------------------
    scalar = fitness.objective("scalar")
    t0 = time.perf_counter()
    fom = float(jax.block_until_ready(scalar(truth)))
    record["compile_s"] = time.perf_counter() - t0
    record["fom_truth"] = fom
    ref_value = record["reference_jax_mp" if args.precision == "mixed" else "reference_jax_fp64"]
    record["fom_reference_same_precision"] = ref_value
    record["fom_diff_vs_reference_same_precision"] = fom - ref_value
    record["fom_diff_vs_reference_jax_fp64"] = fom - record["reference_jax_fp64"]
    # same code and precision as the reference run, so agreement should be at round-off level
    record["fom_matches_reference"] = bool(
        abs(fom - ref_value) <= (1e-2 if args.precision == "mixed" else 1e-5)
    )
    _emit(dict(record, stage="compiled"))

    for _ in range(2):
        jax.block_until_ready(scalar(truth))
    # at least --calls calls (and at least 1 s), however long that takes
    times = _time_calls(scalar, truth, min_calls=args.calls, min_seconds=1.0, max_seconds=None)
    record["compile_only_s_est"] = record["compile_s"] - statistics.median(times)
    record["single_ms_median"] = 1e3 * statistics.median(times)
    record["single_ms_min"] = 1e3 * min(times)
    record["single_calls"] = len(times)
    _emit(dict(record, stage="single"))

    if args.batch <= 0:
        return

    # ---- jax.jit(jax.vmap(fitness.call)) over a batch near the truth ------------------------------
    rng = np.random.default_rng(20262026)
    batch = truth[None, :] + rng.normal(size=(args.batch, truth.size)) * built["scale"][None, :]
    batch[0] = truth
    batched = fitness.objective("batched")
    record["vmap_batch"] = args.batch
    try:
        t0 = time.perf_counter()
        out = np.asarray(jax.block_until_ready(batched(batch)))
        record["vmap_compile_s"] = time.perf_counter() - t0
        record["vmap_fom_truth_lane"] = float(out[0])
        record["vmap_fom_truth_lane_diff_vs_single"] = float(out[0]) - fom
        record["vmap_fom_min"] = float(np.min(out))
        record["vmap_fom_max"] = float(np.max(out))
        record["vmap_n_nonfinite_or_resampled"] = int(np.sum(~np.isfinite(out) | (out <= -1e90)))
        _emit(dict(record, stage="vmap_compiled"))
        # the first (compiling) call was the warm-up; then --vmap-calls batches, or fewer (at least one)
        # once --vmap-max-seconds have been spent timing
        times = _time_calls(
            batched, batch, min_calls=args.vmap_calls, min_seconds=0.0, max_seconds=args.vmap_max_seconds
        )
        record["vmap_compile_only_s_est"] = record["vmap_compile_s"] - statistics.median(times)
        record["vmap_ms_per_batch_median"] = 1e3 * statistics.median(times)
        record["vmap_ms_per_eval_median"] = 1e3 * statistics.median(times) / args.batch
        record["vmap_ms_per_eval_min"] = 1e3 * min(times) / args.batch
        record["vmap_calls"] = len(times)
    except Exception as e:  # vmap of PyAutoLens's likelihood failed: record it
        record["vmap_error"] = f"{type(e).__name__}: {e}"[:2000]
    _emit(dict(record, stage="done"))


# ----------------------------------------------------------------------------------------------------
# parent
# ----------------------------------------------------------------------------------------------------


def _cpu_seconds(pid):
    """User + system CPU seconds of a process (all its threads), from /proc; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _run_child(script, args, dataset, case, precision, single_thread_eigen):
    """Run one configuration in a child process, watching it for a deadlock.

    A deadlocked XLA CPU run sits in futex waits and burns no CPU, whereas a slow one (e.g. a 64-lane
    vmap of the rectangular source, ~1 min per batch here) keeps at least a share of a core even on a
    loaded machine. So the child is declared hung when it used less than 5 % of one core over the last
    --hang-seconds, and killed.
    """
    cmd = [
        sys.executable,
        script,
        "--child",
        "--dataset", dataset,
        "--case", case,
        "--precision", precision,
        "--reference-dir", args.reference_dir,
        "--batch", str(args.batch),
        "--calls", str(args.calls),
        "--vmap-calls", str(args.vmap_calls),
        "--vmap-max-seconds", str(args.vmap_max_seconds),
    ]
    env = dict(os.environ)
    if not args.use_compile_cache:
        # autonerves points JAX_COMPILATION_CACHE_DIR at ~/.cache/pyauto_jax unless it is set; an empty
        # value disables the persistent cache, so "compile" is a cold compile every run.
        env["JAX_COMPILATION_CACHE_DIR"] = ""
    if single_thread_eigen:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    record = dict(dataset=dataset, case=case, precision=precision, load_average_at_start=os.getloadavg())
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        samples = []  # (wall, cpu)
        hung = timed_out = False
        while proc.poll() is None:
            time.sleep(2.0)
            now = time.perf_counter()
            cpu = _cpu_seconds(proc.pid)
            if cpu is not None:
                samples.append((now, cpu))
            window = [x for x in samples if now - x[0] <= args.hang_seconds]
            if (
                samples
                and now - samples[0][0] >= args.hang_seconds
                and len(window) >= 2
                and (window[-1][1] - window[0][1]) < 0.05 * (window[-1][0] - window[0][0])
                and window[-1][0] - window[0][0] >= 0.8 * args.hang_seconds
            ):
                hung = True
            if now - t0 > args.timeout:
                timed_out = True
            if hung or timed_out:
                proc.kill()
                proc.wait()
                break
        rc = proc.returncode
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    stage = None
    for line in stdout.splitlines():
        if line.startswith("@@RESULT "):
            record.update(json.loads(line[len("@@RESULT "):]))
            stage = record.get("stage")
    after = {None: "before the first compile finished", "compiled": "during the single-call timing",
             "single": "in the first (compiling) vmap call", "vmap_compiled": "during the vmap timing"}
    if hung:
        record["error"] = (
            f"hung {after.get(stage, 'after ' + str(stage))}: child used <5% of a core for "
            f"{args.hang_seconds:.0f} s (deadlock), killed"
        )
        record["hung"] = True
    elif timed_out:
        record["error"] = f"timed out after {args.timeout:.0f} s {after.get(stage, '')}"
    elif rc != 0:
        record["error"] = f"child exited {rc}: " + stderr.strip()[-1500:]
    record["single_thread_eigen"] = single_thread_eigen
    record["child_wall_s"] = time.perf_counter() - t0
    return record


def run_one(script, args, dataset, case, precision):
    record = _run_child(script, args, dataset, case, precision, args.single_thread_eigen)
    if record.get("hung") and not args.single_thread_eigen and args.retry_hung:
        retry = _run_child(script, args, dataset, case, precision, True)
        retry["hung_with_multithread_eigen"] = record["error"]
        retry["multithread_eigen_attempt"] = {
            k: record.get(k)
            for k in ("compile_s", "single_ms_median", "single_ms_min", "single_calls", "fom_truth", "error")
        }
        return retry
    return record


def _fmt(x, spec):
    return format(x, spec) if isinstance(x, (int, float)) else "—"


def markdown(records, batch=64):
    lines = [
        "| dataset | case | precision | px | XLA CPU threads | compile s (1st call) | ms/call (median) "
        f"| vmap({batch}) 1st call s | ms/eval vmap({batch}) (median) | FoM at truth | reference FoM (same precision) | Δ | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        notes = []
        if r.get("hung_with_multithread_eigen"):
            notes.append("default XLA flags: " + r["hung_with_multithread_eigen"]
                         + "; rerun with --xla_cpu_multi_thread_eigen=false")
        if r.get("vmap_error") or r.get("error"):
            notes.append(r.get("vmap_error") or r.get("error"))
        if r.get("vmap_calls") is not None and r["vmap_calls"] < 3:
            notes.append(f"vmap median of {r['vmap_calls']} batch(es)")
        lines.append(
            "| {dataset} | {case} | {precision} | {px} | {eig} | {c} | {s} | {vc} | {v} | {f} | {rf} | {d} | {note} |".format(
                dataset=r["dataset"],
                case=r["case"] + (" (ref " + r["reference_case"] + ")" if r.get("reference_case", r["case"]) != r["case"] else ""),
                precision=r["precision"],
                px=r.get("n_pixels", "—"),
                eig="eigen single-thread" if r.get("single_thread_eigen") else "default",
                c=_fmt(r.get("compile_s"), ".1f"),
                s=_fmt(r.get("single_ms_median"), ".2f"),
                vc=_fmt(r.get("vmap_compile_s"), ".1f"),
                v=_fmt(r.get("vmap_ms_per_eval_median"), ".2f"),
                f=_fmt(r.get("fom_truth"), ".6f"),
                rf=_fmt(r.get("fom_reference_same_precision"), ".6f"),
                d=_fmt(r.get("fom_diff_vs_reference_same_precision"), ".2e"),
                note="; ".join(notes).replace("|", "/").replace("\n", " ")[:300],
            )
        )
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", help="write the records as JSON here")
    p.add_argument("--reference-dir", default=REFERENCE_DIR_DEFAULT)
    p.add_argument("--datasets", default="A0,B0")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--precisions", default=",".join(PRECISIONS))
    p.add_argument("--batch", type=int, default=64, help="vmap batch size (0 skips vmap)")
    p.add_argument("--calls", type=int, default=20, help="min single calls timed (median reported)")
    p.add_argument("--vmap-calls", type=int, default=5, help="vmap batch calls timed (after the compiling call)")
    p.add_argument("--vmap-max-seconds", type=float, default=20.0,
                   help="stop timing vmap batches after this many seconds (at least one is timed)")
    p.add_argument("--timeout", type=float, default=600.0, help="per child process, seconds")
    p.add_argument("--hang-seconds", type=float, default=30.0,
                   help="declare a child hung after this long at <5%% of a core")
    p.add_argument("--single-thread-eigen", action="store_true",
                   help="add --xla_cpu_multi_thread_eigen=false to XLA_FLAGS for every configuration")
    p.add_argument("--no-retry-hung", dest="retry_hung", action="store_false",
                   help="do not rerun a hung configuration with --xla_cpu_multi_thread_eigen=false")
    p.add_argument("--use-compile-cache", action="store_true",
                   help="keep PyAutoLens's persistent JAX compilation cache (default: disabled)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--dataset", help=argparse.SUPPRESS)
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--precision", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.child:
        child(args)
        return

    script = os.path.abspath(__file__)
    records = []
    t_start = time.perf_counter()
    for dataset in args.datasets.split(","):
        for case in args.cases.split(","):
            for precision in args.precisions.split(","):
                r = run_one(script, args, dataset, case, precision)
                records.append(r)
                print(
                    f"[{time.perf_counter() - t_start:7.1f} s] {dataset} {case} {precision}: "
                    f"compile {_fmt(r.get('compile_s'), '.1f')} s, "
                    f"{_fmt(r.get('single_ms_median'), '.2f')} ms/call, "
                    f"vmap {_fmt(r.get('vmap_ms_per_eval_median'), '.2f')} ms/eval, "
                    f"FoM {_fmt(r.get('fom_truth'), '.6f')} vs ref {_fmt(r.get('fom_reference_same_precision'), '.6f')} "
                    f"(jax_fp64 ref {_fmt(r.get('reference_jax_fp64'), '.6f')})"
                    + (f" match={r.get('fom_matches_reference')}")
                    + (f"  [default XLA flags: {r['hung_with_multithread_eigen']}; rerun with "
                       "--xla_cpu_multi_thread_eigen=false]" if r.get("hung_with_multithread_eigen") else "")
                    + (f"  ERROR: {r.get('error') or r.get('vmap_error')}" if (r.get('error') or r.get('vmap_error')) else ""),
                    flush=True,
                )

    print()
    print(markdown(records, args.batch))
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    summary = dict(
        command=" ".join([sys.executable] + sys.argv),
        total_wall_s=time.perf_counter() - t_start,
        cpu_count=os.cpu_count(),
        load_average_at_end=load,
        single_thread_eigen=args.single_thread_eigen,
        compile_cache=args.use_compile_cache,
        records=records,
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
