"""The fit actor: a thin Ray shell over the block pipeline (workers/block.py).

This module imports neither JAX nor the engine at module level: the driver imports it to start actors
(`ray.remote(FitActor)`) and never imports JAX (DESIGN.md §2). The constructor configures the process first
(workers/runtime.py), then imports the engine.

Life of an actor
    __init__     configure the runtime, enable the persistent compilation cache, open the store (writable, no
                 checks: the driver checked it), and warm up: one compiled call per shape bucket at the run's
                 block size, so no block pays a compile.
    ready()      the start-up report: compiles, compile seconds, persistent-cache hits, device.
    fit_block(k, attempt)
                 BlockFitter.fit: read, fit and commit block k; counts, likelihood evaluations and seconds back.
    progress()   BlockFitter.progress: the block being fitted and its searches so far. Called by the driver in
                 the concurrency group "progress" (PROGRESS_GROUP) while fit_block runs in the default one.
Telemetry (workers/telemetry.py): likelihood evaluations and their rate (live, at each progress call), searches
running and converged, compiles, device memory, per actor.
"""

from __future__ import annotations

import os
import threading
import time

from workers.contract import RunSpec
from workers.runtime import (
    CompileLog, check_gpu, configure_runtime, default_compile_cache, device_memory_stats, device_name,
    enable_compile_cache, node_ip,
)

PROGRESS_GROUP = "progress"  # Ray concurrency group of FitActor.progress (ray.remote(concurrency_groups=...))


class FitActor:
    """Fits blocks of a run and commits them to its store (module docstring). Start it with
    `ray.remote(FitActor).options(num_cpus=..., num_gpus=...).remote(spec, num_cpus, num_gpus, slot, name)`.
    `faults` is the test hook of workers/faults.py (off by default)."""

    def __init__(
        self, spec: RunSpec, num_cpus: float | None = None, num_gpus: float = 0, slot: int = 0, name: str = "",
        faults: dict | None = None,
    ):
        started = time.perf_counter()
        self.name = name or f"fit-actor-{slot}"
        self.runtime = configure_runtime(num_cpus, num_gpus, slot)

        import jax

        from storage.store import ResultStore
        from workers.block import BlockFitter
        from workers.faults import BlockHooks, Faults

        self._compile_log = CompileLog()
        self.compile_cache = spec.compile_cache or default_compile_cache()
        enable_compile_cache(self.compile_cache)
        store = ResultStore.open_existing(spec.store, writable=True, storage_options=spec.storage_options)
        if store.block_size != spec.block_size or store.n_datasets != len(spec.datasets):
            raise ValueError(
                f"store {spec.store} has block size {store.block_size} and {store.n_datasets} datasets; "
                f"the run has {spec.block_size} and {len(spec.datasets)}"
            )
        self._metrics = _actor_metrics(spec.store, self.name)
        self._metrics_lock = threading.Lock()  # a progress poll and a block's end record the same counts
        check_gpu(self.name, num_gpus, jax.devices()[0].platform, os.environ)
        self._hooks = Faults(faults, self.name) if faults else BlockHooks()
        self.fitter = BlockFitter(spec, store)
        warm_start = time.perf_counter()
        self.fitter.warm_up()
        compiles, seconds, hits = self._compile_log.snapshot()
        self.report = {
            "actor": self.name, "pid": os.getpid(), "node": node_ip(), "device": device_name(),
            "buckets": len(spec.buckets), "compiles": compiles, "compile_seconds": round(seconds, 3),
            "cache_hits": hits, "compile_cache": self.compile_cache,
            "warm_up_seconds": round(time.perf_counter() - warm_start, 3),
            "start_seconds": round(time.perf_counter() - started, 3), "runtime": self.runtime,
        }
        if self._metrics is not None:
            self._metrics.compiled(seconds, compiles)
            self._metrics.device_memory(_bytes_in_use())

    def ready(self) -> dict:
        """The start-up report (returns once warm-up is over)."""
        return self.report

    def fit_block(self, k: int, attempt: int = 1) -> dict:
        """Fit and commit block k (workers.block.BlockFitter.fit); its summary, with this actor's name and the
        compiles it cost."""
        before = self._compile_log.snapshot()
        if self._metrics is not None:
            self._metrics.block_started()
        summary = self.fitter.fit(k, attempt, self._hooks)
        after = self._compile_log.snapshot()
        summary.update(actor=self.name, compiles=after[0] - before[0])
        if self._metrics is not None:
            with self._metrics_lock:
                self._metrics.likelihood_evaluations(summary["likelihood_evaluations"], summary["seconds"],
                                                     self.fitter.live.converged)
            if summary["compiles"]:
                self._metrics.compiled(after[1] - before[1], summary["compiles"])
            self._metrics.device_memory(_bytes_in_use())
        return summary

    def progress(self) -> dict:
        """The block being fitted and its searches so far (workers.block.BlockFitter.progress), with this actor's
        name; records them in the actor's metrics."""
        with self._metrics_lock:
            state = self.fitter.progress()
            if self._metrics is not None and state["block"] is not None:
                self._metrics.searching(state["running"], state["converged"], state["evaluations"])
        return {**state, "actor": self.name}


def _bytes_in_use() -> int | None:
    stats = device_memory_stats()
    return None if stats is None else stats.get("bytes_in_use")


def _actor_metrics(store: str, name: str):
    """The actor's Ray metrics, or None outside Ray."""
    import ray

    if not ray.is_initialized():
        return None
    from workers.telemetry import ActorMetrics, run_name

    return ActorMetrics(run_name(store), name)
