"""The fit actor: where the engine meets storage inside a Ray worker. It fits blocks of a survey and commits them.

This module imports neither JAX nor Ray: the driver imports it to start actors (`ray.remote(FitActor)`) and
never imports JAX (DESIGN.md §2). The engine is imported in the constructor, after `configure_runtime` has set
what JAX reads once, at start-up.

What the driver hands an actor (small, JAX-free, picklable): a `RunSpec` — the store, the fit config, one
`DatasetSpec` per dataset in store order and one `BucketSpec` per shape bucket — and the resources it reserved.

Life of an actor
    __init__     configure the runtime (below), import the engine, enable the persistent compilation cache,
                 open the store (writable, no checks: the driver checked it), and warm up: one compiled call per
                 shape bucket at the run's block size, so no block pays a compile.
    ready()      the start-up report: compiles, compile seconds, persistent-cache hits, device.
    fit_block(k, attempt)
                 read block k's datasets; a dataset that fails to load or validate is INVALID with its reason
                 and the rest go on. Valid datasets are grouped by shape bucket (a block is a store chunk of B
                 consecutive datasets in plan order, so at a bucket boundary it holds two buckets); each group is
                 padded to B lenses with copies of its first lens (their results are discarded), stacked to its
                 bucket and evaluated in one call. A non-finite figure of merit is FAILED with the terms in its
                 reason. The block is committed with `ResultStore.write_block` (data first, status last) and a
                 small summary dict comes back; arrays never travel to the driver.

Runtime configuration (`configure_runtime`, before JAX starts)
- CPU-only actor (num_gpus == 0): JAX_PLATFORMS=cpu, so JAX does not look for (or grab) an accelerator.
- Fractional GPU (0 < num_gpus < 1): XLA_PYTHON_CLIENT_MEM_FRACTION = 0.9 × num_gpus, so the actors packed on one
  GPU fit beside each other. A whole GPU keeps JAX's default preallocation.
- An actor given a GPU whose JAX computes on the CPU refuses to start (`check_gpu`): JAX would fall back to the
  CPU silently, 100× slower, on a node paid for its GPU.
- XLA CPU threads = the CPUs the actor reserved: XLA sizes its CPU thread pools from the CPUs the process may
  run on (sched_getaffinity), and there is no JAX option for an intra-op thread count. So an actor that reserved
  fewer CPUs than the node has pins itself (os.sched_setaffinity) to that many CPUs, chosen by its slot number
  so that the actors of one pool on one node take different CPUs; `--xla_cpu_multi_thread_eigen=false` (set by
  workers.inversion.jax_setup, kept here) keeps Eigen from starting a pool of its own. An actor that reserved
  every CPU of its node is not pinned.

Search mode (fit.toml has [search]; workers/search.py): each bucket group of a block is searched side by side,
one sampler process per lens, their likelihood requests merged into one compiled call of B lenses × n_batch
vectors (the same program for every block of a bucket; slots of absent lenses stay idle), with Nautilus
checkpoints under `checkpoint_root()` so that a block redone after its actor died resumes its searches; they
are deleted once the block is committed. Each lens's max-likelihood vector is then evaluated exactly as evaluate
mode evaluates a catalog vector (the same compiled call, so the same terms, reconstruction and images), its
posterior and summaries are written to the search arrays, and every later pipeline stage (config.stages: a
pixelized source at the max-likelihood lens model) is evaluated the same way into its store group. A lens
whose search fails is FAILED with the sampler's error; the others go on.

Per-dataset results written (store schema, storage/schema.py): the 8 terms of the best parameter vector, the
evaluated vectors with their figure of merit and log-likelihood, the reconstruction padded to the store's
largest source size (its true length in reconstruction_size), for pixelized sources the mesh cell centres in the
rows of the reconstruction's mesh entries (after any lens-light Gaussians), and the model image and normalised
residuals as native 2-D images (NaN outside the mask and beyond the true image shape), padded to the store's
largest image. wall_time is the block's wall-clock seconds shared equally among its datasets.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from storage.errors import DatasetError
from storage.schema import TERMS, Status
from workers.contract import BucketSpec, RunSpec
from workers.model.buckets import Bucket, common_bucket

GPU_MEMORY_SHARE = 0.9  # of an actor's GPU fraction, given to XLA's allocator



def default_compile_cache() -> str:
    """The persistent compilation cache folder of this node: LENSFLEET_COMPILE_CACHE, else
    ~/.cache/lensfleet/jax. Compiled programs are keyed by JAX/XLA version, backend and program, so one folder
    serves every run and bucket; a restarted actor loads its programs instead of compiling them."""
    return os.environ.get("LENSFLEET_COMPILE_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "lensfleet", "jax"
    )


def configure_runtime(num_cpus: float | None, num_gpus: float, slot: int = 0) -> dict:
    """Set what JAX and XLA read at start-up for an actor with these resources (see the module docstring).

    Returns what was set, for the start-up report. Call before JAX is imported in this process.
    """
    settings: dict = {}
    if num_gpus <= 0:
        os.environ["JAX_PLATFORMS"] = "cpu"
        settings["JAX_PLATFORMS"] = "cpu"
    elif num_gpus < 1:
        fraction = f"{GPU_MEMORY_SHARE * num_gpus:.3f}"
        os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] = fraction
        settings["XLA_PYTHON_CLIENT_MEM_FRACTION"] = fraction
    flag = "--xla_cpu_multi_thread_eigen"
    if flag not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}=false".strip()
    settings["XLA_FLAGS"] = os.environ["XLA_FLAGS"]
    settings["cpus"] = sorted(_pin_cpus(num_cpus, slot))
    return settings


def _pin_cpus(num_cpus: float | None, slot: int) -> set[int]:
    """Restrict this process to ceil(num_cpus) of the CPUs it may use, the slot-th such group; all if fewer
    (or if num_cpus is None: an actor class used outside Ray leaves its process alone)."""
    if not hasattr(os, "sched_getaffinity"):
        return set()
    allowed = sorted(os.sched_getaffinity(0))
    if num_cpus is None:
        return set(allowed)
    want = max(1, int(np.ceil(num_cpus)))
    if want >= len(allowed):
        return set(allowed)
    start = (slot * want) % len(allowed)
    chosen = {allowed[(start + i) % len(allowed)] for i in range(want)}
    os.sched_setaffinity(0, chosen)
    return chosen


class _CompileLog:
    """Counts XLA compilations and persistent-cache hits of this process (jax.monitoring listeners)."""

    def __init__(self):
        import jax.monitoring

        self.compiles = 0
        self.seconds = 0.0
        self.cache_hits = 0
        self._event = "/jax/core/compile/backend_compile_duration"  # jax._src.dispatch.BACKEND_COMPILE_EVENT

        def on_duration(event: str, duration: float, **_):
            if event == self._event:
                self.compiles += 1
                self.seconds += duration

        def on_event(event: str, **_):
            if event == "/jax/compilation_cache/cache_hits":
                self.cache_hits += 1

        jax.monitoring.register_event_duration_secs_listener(on_duration)
        jax.monitoring.register_event_listener(on_event)

    def snapshot(self) -> tuple[int, float, int]:
        return self.compiles, self.seconds, self.cache_hits


class FitActor:
    """Fits blocks of a run and commits them to its store (see the module docstring). Start it with
    `ray.remote(FitActor).options(num_cpus=..., num_gpus=...).remote(spec, num_cpus, num_gpus, slot, name)`.

    `faults` is a fault-injection hook for tests (a constructor argument only; off by default):
        {"delay": s}                  sleep s seconds in every fit_block before committing (a slow block);
        {"exit_in_block": k, "marker": path}
                                      the first fit_block(k) that finds no file at `marker` creates it,
                                      scribbles over block k's model_image chunk and kills the worker process
                                      (os._exit) before committing: a worker dying mid-block, once;
        {"raise_in_block": k}         every fit_block(k) raises RuntimeError after evaluating;
        {"announce": folder}          every fit_block(k) starts by writing the file `k.attempt.NODE_ID` there;
        {"exit_in_search": k, "after_rounds": n, "marker": path}
                                      search mode: the first fit_block(k) that finds no file at `marker`
                                      creates it and kills the worker process after n rounds of likelihood
                                      requests, mid-search (its samplers' checkpoints stay behind);
        {"search_rounds": folder}     search mode: every fit_block(k) writes the file `k.attempt` there, holding
                                      the rounds of likelihood requests its searches took (a resumed search
                                      takes fewer).
    """

    def __init__(
        self, spec: RunSpec, num_cpus: float | None = None, num_gpus: float = 0, slot: int = 0, name: str = "",
        faults: dict | None = None,
    ):
        started = time.perf_counter()
        self.spec = spec
        self.name = name or f"fit-actor-{slot}"
        self.runtime = configure_runtime(num_cpus, num_gpus, slot)
        self._faults = dict(faults or {})

        import jax

        from workers.inversion import jax_setup  # noqa: F401  (x64 on)

        self._compile_log = _CompileLog()
        self.compile_cache = spec.compile_cache or default_compile_cache()
        os.makedirs(self.compile_cache, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", self.compile_cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

        from storage.store import ResultStore

        self.store = ResultStore.open_existing(spec.store, writable=True, storage_options=spec.storage_options)
        if self.store.block_size != spec.block_size or self.store.n_datasets != len(spec.datasets):
            raise ValueError(
                f"store {spec.store} has block size {self.store.block_size} and {self.store.n_datasets} datasets; "
                f"the run has {spec.block_size} and {len(spec.datasets)}"
            )
        self._metrics = _actor_metrics(spec.store, self.name)
        self.device = _device_name()
        check_gpu(self.name, num_gpus, jax.devices()[0].platform, os.environ)
        self._prior = None
        if spec.config.search is not None:
            from workers.priors import prior_transform

            self._prior = prior_transform(spec.config.model, spec.config.priors)
        warm_start = time.perf_counter()
        for bucket in spec.buckets:
            self._warm_up(bucket)
        compiles, seconds, hits = self._compile_log.snapshot()
        self.report = {
            "actor": self.name,
            "pid": os.getpid(),
            "node": _node_ip(),
            "device": self.device,
            "buckets": len(spec.buckets),
            "compiles": compiles,
            "compile_seconds": round(seconds, 3),
            "cache_hits": hits,
            "compile_cache": self.compile_cache,
            "warm_up_seconds": round(time.perf_counter() - warm_start, 3),
            "start_seconds": round(time.perf_counter() - started, 3),
            "runtime": self.runtime,
        }
        if self._metrics is not None:
            self._metrics.compiled(seconds, compiles)
            self._metrics.device_memory(_device_bytes_in_use())

    def ready(self) -> dict:
        """The start-up report (returns once warm-up is over)."""
        return self.report

    # -- one block ----------------------------------------------------------------------------------------------

    def fit_block(self, k: int, attempt: int = 1) -> dict:
        """Fit and commit block k (see the module docstring); returns counts, seconds and evaluations."""
        from storage.datasets import load_imaging
        from workers.datasets import fit_mask, masked_imaging

        started = time.perf_counter()
        if "announce" in self._faults:
            with open(os.path.join(self._faults["announce"], f"{k}.{attempt}.{_node_id()}"), "w"):
                pass
        compiles_before = self._compile_log.snapshot()
        spec, config = self.spec, self.spec.config
        rows = spec.datasets[spec.block(k)]
        n = len(rows)
        out = self._empty_results(rows)
        status = np.full(n, int(Status.DONE), np.int8)
        errors = [""] * n
        groups: dict[object, list[tuple[int, object, object, np.ndarray]]] = {}
        for i, row in enumerate(rows):
            if row.error:
                status[i], errors[i] = Status.INVALID, row.error
                continue
            try:
                data = load_imaging(row.path, row.id, row.pixel_scale, spec.storage_options)
                imaging = masked_imaging(data, config.dataset, config.model, mask_radius=row.mask_radius)
            except DatasetError as e:
                status[i], errors[i] = Status.INVALID, str(e)
                continue
            out["image_shape"][i] = data.image.shape
            mask = fit_mask(data, row.mask_radius)
            key = row.bucket if row.bucket >= 0 else ("own", i)
            groups.setdefault(key, []).append((i, data, imaging, mask))

        evaluations = 0
        searches = []
        for key, members in groups.items():
            planned = spec.buckets[key].bucket if isinstance(key, int) else None
            if config.search is None:
                evaluations += self._fit_group(rows, members, planned, out, status, errors)
            else:
                n_evaluations, search = self._search_group(k, rows, members, planned, out, status, errors)
                evaluations += n_evaluations
                searches.append(search)

        if "search_rounds" in self._faults:
            with open(os.path.join(self._faults["search_rounds"], f"{k}.{attempt}"), "w") as f:
                f.write(str(sum(search.block_calls for search in searches)))
        if self._faults:
            self._inject_faults(k)

        seconds = time.perf_counter() - started
        attempts = np.full(n, attempt, np.int32)
        self.store.write_block(k, out, status, attempts, errors, np.full(n, seconds / n))
        for search in searches:  # committed: the samplers' checkpoints are no longer needed
            search.remove_checkpoints()
        compiles = self._compile_log.snapshot()
        new_compiles = compiles[0] - compiles_before[0]
        if self._metrics is not None:
            self._metrics.evaluations(evaluations, seconds)
            if new_compiles:
                self._metrics.compiled(compiles[1] - compiles_before[1], new_compiles)
            self._metrics.device_memory(_device_bytes_in_use())
        return {
            "block": k,
            "attempt": attempt,
            "actor": self.name,
            "datasets": n,
            "done": int((status == Status.DONE).sum()),
            "failed": int((status == Status.FAILED).sum()),
            "invalid": int((status == Status.INVALID).sum()),
            "evaluations": evaluations,
            "compiles": new_compiles,
            "seconds": seconds,
        }

    @staticmethod
    def _group_bucket(imagings, planned: Bucket | None) -> Bucket:
        """The bucket a group is stacked to: the planned one when it covers every dataset, else a common one."""
        actual = [im.bucket for im in imagings]
        bucket = planned if planned is not None and all(planned.covers(b) for b in actual) else None
        if bucket is None:  # a file mask moved pixels into the blurring region, or the shapes were not planned
            bucket = common_bucket([*([planned] if planned else []), *actual])
        return bucket

    def _fit_group(self, rows, members, planned: Bucket | None, out, status, errors, vectors=None, model=None,
                   prefix: str = "") -> int:
        """Evaluate the valid datasets of one bucket of a block in one call, padded to B lenses; fill `out`.
        Search mode passes the vectors (each (1, n)), a later stage's model and its store group `prefix`."""
        import jax

        from workers.inversion.batch import evaluate_block, stack

        spec = self.spec
        model = model or spec.config.model
        imagings = [m[2] for m in members]
        bucket = self._group_bucket(imagings, planned)
        if vectors is None:
            vectors = [np.asarray(rows[i].vectors, np.float64) for i, *_ in members]
        pad = max(spec.block_size, len(members)) - len(members)
        stacked = stack(imagings + [imagings[0]] * pad, bucket)
        batch = np.stack(vectors + [vectors[0]] * pad)
        result = jax.device_get(evaluate_block(stacked, batch, model, with_arrays=True))
        for j, (i, data, imaging, mask) in enumerate(members):
            self._fill(i, j, result, data, imaging, mask, vectors[j], out, status, errors, prefix)
        return len(members) * batch.shape[1]

    def _search_group(self, k, rows, members, planned: Bucket | None, out, status, errors):
        """Search mode for one bucket group of block k (see the module docstring); returns (likelihood
        evaluations, the BlockSearch, whose checkpoints go once the block is committed)."""
        from workers.model.description import parameter_names
        from workers.search import LensSearch, search_block

        spec, config = self.spec, self.spec.config
        options = config.search
        imagings = [m[2] for m in members]
        search = search_block(
            imagings, [rows[i].id for i, *_ in members], config.model, self._prior, options,
            checkpoint_dir=checkpoint_root(spec.store) / f"block-{k}" if options.checkpoint else None,
            bucket=self._group_bucket(imagings, planned), with_fit=False, slots=spec.block_size,
            on_round=self._search_fault(k),
        )
        found = []
        for member, result in zip(members, search.results):
            i = member[0]
            if not isinstance(result, LensSearch):
                status[i], errors[i] = Status.FAILED, str(result)
                continue
            stored = result.stored_samples(options.max_samples)
            out["samples"][i] = stored.samples
            out["sample_weight"][i] = stored.sample_weight
            out["sample_log_likelihood"][i] = stored.sample_log_likelihood
            out["sample_count"][i] = stored.sample_count
            out["search_log_evidence"][i] = result.log_evidence
            out["search_log_evidence_error"][i] = result.log_evidence_error
            out["search_likelihood_evaluations"][i] = result.n_like
            out["search_effective_samples"][i] = result.n_eff
            out["search_converged"][i] = int(result.converged)
            out["parameter_median"][i] = result.parameter_median
            out["parameter_sigma"][i] = result.parameter_sigma
            out["parameter_max_likelihood"][i] = result.max_likelihood
            found.append((member, result.max_likelihood[None, :]))
        evaluations = sum(search.evaluations)
        if not found:
            return evaluations, search
        members_found, best = [m for m, _ in found], [v for _, v in found]
        evaluations += self._fit_group(rows, members_found, planned, out, status, errors, vectors=best)
        names = parameter_names(config.model)
        for stage, model in config.stages:
            index = [names.index(n) for n in parameter_names(model)]
            fits = [(m, v[:, index]) for m, v in zip(members_found, best)
                    if not model.pixelized or m[2].bucket.pixels >= model.source.pixels]
            for m, _ in found:
                if model.pixelized and m[2].bucket.pixels < model.source.pixels:
                    status[m[0]] = Status.FAILED
                    errors[m[0]] = (f"dataset {rows[m[0]].id}: stage {stage}: the mask leaves {m[2].bucket.pixels} "
                                    f"used pixels, fewer than the {model.source.pixels} source pixels")
            if fits:
                evaluations += self._fit_group(rows, [m for m, _ in fits], planned, out, status, errors,
                                               vectors=[v for _, v in fits], model=model, prefix=f"{stage}/")
        return evaluations, search

    def _search_fault(self, k: int):
        """The exit_in_search fault hook for block k (None when not asked for)."""
        faults = self._faults
        if faults.get("exit_in_search") != k or os.path.exists(faults["marker"]):
            return None

        def after_round(n: int) -> None:
            if n >= int(faults.get("after_rounds", 1)):
                with open(faults["marker"], "w") as f:
                    f.write(f"{self.name} died in the search of block {k} after {n} rounds\n")
                os._exit(1)

        return after_round

    def _fill(self, i, j, result, data, imaging, mask, vectors, out, status, errors, prefix: str = "") -> None:
        """Dataset i of the block from lens j of an evaluated group (into the arrays of store group `prefix`)."""
        p = prefix
        merit = np.asarray(result.figure_of_merit[j], np.float64)
        best = int(np.nanargmax(merit)) if np.isfinite(merit).any() else 0
        for term in TERMS:
            out[p + term][i] = getattr(result, term)[j, best]
        out[p + "parameters"][i] = vectors
        out[p + "evaluation_figure_of_merit"][i] = merit
        out[p + "evaluation_log_likelihood"][i] = result.log_likelihood[j]
        reconstruction = np.asarray(result.reconstruction[j, best])
        out[p + "reconstruction"][i, : reconstruction.size] = reconstruction
        out[p + "reconstruction_size"][i] = reconstruction.size
        if p + "mesh_centres" in out and result.mesh_centres is not None:
            centres = np.asarray(result.mesh_centres[j, best])
            out[p + "mesh_centres"][i, reconstruction.size - len(centres) : reconstruction.size] = centres
        used = int((~mask).sum())
        model_slim = np.asarray(result.model_image[j, best])[:used]
        residuals = (data.image[~mask] - model_slim) / data.noise_map[~mask]
        ny, nx = mask.shape
        out[p + "model_image"][i, :ny, :nx] = _native(model_slim, mask)
        out[p + "normalized_residuals"][i, :ny, :nx] = _native(residuals, mask)
        if not np.isfinite(merit[best]):
            status[i] = Status.FAILED
            terms = ", ".join(f"{t}={float(getattr(result, t)[j, best]):.6g}" for t in TERMS[1:5])
            errors[i] = f"dataset {data.dataset_id}: non-finite figure of merit ({merit[best]}); {terms}"

    def _empty_results(self, rows) -> dict[str, np.ndarray]:
        """Block-sized result arrays at their fills, with each dataset's planned shape bucket and image shape."""
        spec = self.spec
        n, v = len(rows), spec.n_evaluations
        n_parameters = self.store.array("parameters").shape[-1]
        out = {term: np.full(n, np.nan) for term in TERMS}
        out["parameters"] = np.full((n, v, n_parameters), np.nan)
        out["evaluation_figure_of_merit"] = np.full((n, v), np.nan)
        out["evaluation_log_likelihood"] = np.full((n, v), np.nan)
        out["reconstruction"] = np.full((n, spec.max_source_size), np.nan)
        out["reconstruction_size"] = np.zeros(n, np.int32)
        if spec.config.model.pixelized:
            out["mesh_centres"] = np.full((n, spec.max_source_size, 2), np.nan)
        out["model_image"] = np.full((n, *spec.max_image_shape), np.nan)
        out["normalized_residuals"] = np.full((n, *spec.max_image_shape), np.nan)
        out["image_shape"] = np.array([r.image_shape for r in rows], np.int32).reshape(n, 2)
        out["shape_bucket"] = np.array([r.bucket for r in rows], np.int32)
        if "driver_run" in self.store.data_names:
            out["driver_run"] = np.full(n, spec.driver_run, np.int32)
        for name in self.store.data_names:  # search arrays and later stages' groups, at their fills
            if name not in out and (spec.config.search is not None or "/" in name):
                a = self.store.array(name)
                out[name] = np.full((n, *a.shape[1:]), a.fill_value, a.dtype)
        return out

    # -- start-up -----------------------------------------------------------------------------------------------

    def _warm_up(self, spec: BucketSpec) -> None:
        """Compile the block call of one bucket (B lenses, V vectors) on a synthetic dataset of its shapes."""
        import jax

        from workers.inversion.batch import evaluate_block, stack
        from workers.model.grids import circular_mask
        from workers.inversion.imaging import prepare_imaging
        from workers.model.description import parameter_names

        options, model = self.spec.config.dataset, self.spec.config.model
        image = np.zeros(spec.image_shape)
        psf = np.zeros(spec.psf_shape)
        psf[spec.psf_shape[0] // 2, spec.psf_shape[1] // 2] = 1.0
        imaging = prepare_imaging(
            image, np.ones(spec.image_shape), psf, spec.pixel_scale, mask_radius=spec.mask_radius,
            mask=circular_mask(spec.image_shape, spec.pixel_scale, spec.mask_radius),
            over_sample_size_lp=options.over_sample_size_lp,
            over_sample_size_pixelization=options.over_sample_size_pixelization,
        )
        vector = np.array([1.0 if name == "lens.mass.einstein_radius" else 0.0 for name in parameter_names(model)])
        b = self.spec.block_size
        vectors = np.broadcast_to(vector, (b, self.spec.n_evaluations, vector.size)).copy()
        stacked = stack([imaging] * b, spec.bucket)
        jax.block_until_ready(evaluate_block(stacked, vectors, model, with_arrays=True))
        search = self.spec.config.search
        if search is not None:  # the search's block call, and each later stage's evaluation
            from workers.search import auto_eval_chunk, block_figure_of_merit

            chunk = auto_eval_chunk() if search.eval_chunk is None else search.eval_chunk
            block_figure_of_merit(stacked, np.broadcast_to(vector, (b, search.n_batch, vector.size)).copy(), model,
                                  chunk)
            for _, stage_model in self.spec.config.stages:
                if stage_model.pixelized and imaging.bucket.pixels < stage_model.source.pixels:
                    continue
                names = parameter_names(stage_model)
                stage_vector = np.array([1.0 if n == "lens.mass.einstein_radius" else 0.0 for n in names])
                jax.block_until_ready(evaluate_block(
                    stacked, np.broadcast_to(stage_vector, (b, 1, stage_vector.size)).copy(), stage_model,
                    with_arrays=True,
                ))

    def _inject_faults(self, k: int) -> None:
        """The test hook (see the class docstring)."""
        faults = self._faults
        time.sleep(float(faults.get("delay", 0)))
        if faults.get("raise_in_block") == k:
            raise RuntimeError(f"injected fault in block {k}")
        if faults.get("exit_in_block") == k and not os.path.exists(faults["marker"]):
            with open(faults["marker"], "w") as f:
                f.write(f"{self.name} died in block {k}\n")
            block = self.spec.block(k)
            scribble = self.store.array("model_image")
            scribble[block] = np.full((block.stop - block.start, *scribble.shape[1:]), 12345.0)
            os._exit(1)


def checkpoint_root(store: str) -> Path:
    """Where this node keeps the search checkpoints of a store's blocks: LENSFLEET_CHECKPOINTS, else
    ~/.cache/lensfleet/checkpoints, then a folder per store (a hash of its URL). Local to the node: a block
    redone on the same node resumes its searches, elsewhere it starts them afresh."""
    base = os.environ.get("LENSFLEET_CHECKPOINTS") or os.path.join(
        os.path.expanduser("~"), ".cache", "lensfleet", "checkpoints"
    )
    return Path(base) / hashlib.sha256(store.encode()).hexdigest()[:16]


def _native(slim: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.full(mask.shape, np.nan)
    out[~mask] = slim
    return out


def check_gpu(actor: str, num_gpus: float, platform: str, env: Mapping[str, str]) -> None:
    """An actor given a GPU must compute on one: raise (the actor fails to start, loudly) when JAX's device is
    the CPU, e.g. a CPU-only jaxlib or a CUDA driver JAX cannot use, where JAX would silently fall back.
    LENSFLEET_GPU_CHECK=off (in the nodes' environment) allows it, as for the container check."""
    if num_gpus > 0 and platform == "cpu" and env.get("LENSFLEET_GPU_CHECK", "auto").strip().lower() != "off":
        raise RuntimeError(
            f"actor {actor} was given {num_gpus:g} GPU (CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', '')!r}) "
            "but JAX computes on the CPU: install JAX with CUDA (jax[cuda12]) on the GPU nodes, or set "
            "LENSFLEET_GPU_CHECK=off there to allow it"
        )


def _device_name() -> str:
    import jax

    device = jax.devices()[0]
    return device.platform if device.platform == "cpu" else f"{device.platform}: {device.device_kind}"


def _device_bytes_in_use() -> int | None:
    """bytes_in_use of the actor's JAX device on an accelerator; None on the CPU."""
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        return None
    stats = device.memory_stats() or {}
    return stats.get("bytes_in_use")


def _node_ip() -> str:
    try:
        import ray

        return ray.util.get_node_ip_address()
    except Exception:  # outside Ray (unit tests call the actor class directly)
        return "local"


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _actor_metrics(store: str, name: str):
    """The actor's Ray metrics (workers.telemetry.ActorMetrics: JAX-free), or None outside Ray."""
    import ray

    if not ray.is_initialized():
        return None
    from workers.telemetry import ActorMetrics, run_name

    return ActorMetrics(run_name(store), name)
