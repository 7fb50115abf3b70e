"""The sampler side of a search: one Nautilus sampler per lens, each in a process of its own (no JAX here).

A sampler spends most of its time outside the likelihood (fitting bounds: ellipsoids and small neural networks,
plain numpy and scikit-learn under the GIL), so the samplers of a block run in separate processes, where that
work proceeds in parallel on the node's CPU cores while the coordinator (workers/search.py) owns the device.
A sampler process talks to the coordinator over a pipe:

    sampler → coordinator   ("request", points (n, d))     the vectorised likelihood call of Nautilus's run()
    coordinator → sampler   log-likelihoods (n,)
    sampler → coordinator   ("done", SamplerOutcome) | ("error", traceback text)

Processes come from a fork server that has preloaded this module (numpy, scipy, scikit-learn, nautilus), so
starting one costs milliseconds and never copies the coordinator's JAX state. As with any multiprocessing
start method but fork, a script that searches must guard its entry point (`if __name__ == "__main__":`); the
lensfleet CLI, Ray's workers and pytest do. Each process holds OpenBLAS at one
thread, which keeps the networks' training reproducible.

Seeds: lens_seed(seed, dataset id). Checkpoints: a Nautilus HDF5 file per lens, replaced whole on every write
(_LensSampler), resumed when readable and discarded when not.

Where a sampler's time goes (SamplerOutcome.seconds, wall-clock seconds in its process):
    bounds        building bounds: ellipsoids and neural networks trained on the live points (add_bound)
    sampling      drawing new points from the bounds (rejection against the networks; sample_shell)
    checkpoint    writing the checkpoint file
    waiting       blocked in the likelihood call: the coordinator gathering requests, the block call, the pipe
    total         the whole run (the rest of it is Nautilus's book-keeping)
    cpu           the process's CPU seconds over the run (what its own work cost the machine, however loaded)
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import time
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Callable

import numpy as np
from nautilus import Sampler
from threadpoolctl import threadpool_limits

from .config import SearchOptions
from .priors import PriorTransform


def lens_seed(seed: int, dataset_id: str) -> int:
    """A lens's sampler seed, from the run's seed and the dataset id alone (64 bits of SHA-256)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{dataset_id}".encode()).digest()[:8], "little")


@dataclass(frozen=True)
class SamplerJob:
    """What a sampler process needs: the prior, the options, its seed and its checkpoint file (or None)."""

    prior: PriorTransform
    options: SearchOptions
    seed: int
    checkpoint: Path | None


@dataclass(frozen=True)
class SamplerOutcome:
    """A finished sampler: Nautilus's weighted posterior (samples (n, d) in parameter space, normalised
    log_weight, log_likelihood), log evidence, effective sample size, likelihood calls (checkpointed calls
    included), whether its stopping criteria were met, and the best evaluated point."""

    samples: np.ndarray
    log_weight: np.ndarray
    log_likelihood: np.ndarray
    log_evidence: float
    effective_samples: float
    likelihood_evaluations: int
    converged: bool
    parameter_max_likelihood: np.ndarray
    max_log_likelihood: float
    seconds: dict[str, float] = field(default_factory=dict)
    exploration_evaluations: int = 0  # of this run (not a checkpoint's): those before the exploration phase ended


SAMPLER_TIMES = ("bounds", "sampling", "checkpoint", "waiting", "total", "cpu")


def partial_path(filepath) -> Path:
    """Where a checkpoint is written before it replaces `filepath` (a sampler killed mid-write leaves it behind;
    it is never read, and the next write overwrites it)."""
    filepath = Path(filepath)
    return filepath.with_name(filepath.stem + ".partial.h5")


class _LensSampler(Sampler):
    """A Nautilus sampler that times its own work (`seconds`, module docstring) and whose checkpoint file is only
    ever replaced whole (written to a temporary copy, then os.replace), so a kill mid-write leaves the previous
    checkpoint intact."""

    def __init__(self, *args, **kwargs):
        self.seconds = dict.fromkeys(SAMPLER_TIMES, 0.0)
        super().__init__(*args, **kwargs)

    @contextmanager
    def _timed(self, key: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[key] += time.perf_counter() - start

    def add_bound(self, verbose=False):
        with self._timed("bounds"):
            return super().add_bound(verbose)

    def sample_shell(self, index, shell_t=None):
        with self._timed("sampling"):
            return super().sample_shell(index, shell_t)

    def write(self, filepath, overwrite=False):
        with self._timed("checkpoint"):
            partial = partial_path(filepath)
            super().write(partial, overwrite=True)
            os.replace(partial, filepath)

    def write_shell_update(self, filepath, shell):
        with self._timed("checkpoint"):
            partial = partial_path(filepath)
            shutil.copyfile(filepath, partial)
            super().write_shell_update(partial, shell)
            os.replace(partial, filepath)


def make_sampler(job: SamplerJob, likelihood: Callable[[np.ndarray], np.ndarray]) -> Sampler:
    """The Nautilus sampler of a job, resumed from its checkpoint when there is a readable one."""
    options = job.options
    kwargs = dict(
        n_dim=job.prior.n_dim, n_live=options.n_live, n_batch=options.n_batch, n_networks=options.n_networks,
        vectorized=True, pass_dict=False, seed=job.seed,
        neural_network_kwargs={"hidden_layer_sizes": tuple(options.network_layers), "max_iter": options.network_epochs},
    )
    if job.checkpoint is None:
        return _LensSampler(job.prior, likelihood, **kwargs)
    job.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _LensSampler(job.prior, likelihood, filepath=job.checkpoint, resume=True, **kwargs)
    except Exception:  # unreadable, or written by an incompatible version: start afresh
        job.checkpoint.unlink(missing_ok=True)
        return _LensSampler(job.prior, likelihood, filepath=job.checkpoint, resume=False, **kwargs)


def run_job(job: SamplerJob, likelihood: Callable[[np.ndarray], np.ndarray]) -> SamplerOutcome:
    """Run one lens's sampler to its stopping criteria with `likelihood` (parameter vectors (n, d) → (n,))."""
    options = job.options
    start, cpu = time.perf_counter(), time.process_time()
    waiting, exploring = [0.0], [0]

    def timed_likelihood(points: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        if not sampler.explored:
            exploring[0] += len(points)
        try:
            return likelihood(points)
        finally:
            waiting[0] += time.perf_counter() - t0

    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's ConvergenceWarning when network_epochs cuts training short
        sampler = make_sampler(job, timed_likelihood)
        converged = sampler.run(
            f_live=options.f_live, n_eff=options.n_eff,
            n_like_max=np.inf if options.n_like_max is None else options.n_like_max,
            discard_exploration=options.discard_exploration,
        )
        samples, log_weight, log_likelihood = sampler.posterior()
    all_log_l = np.concatenate(sampler.log_l)
    best = int(np.argmax(all_log_l))
    return SamplerOutcome(
        samples=np.asarray(samples, dtype=np.float64),
        log_weight=np.asarray(log_weight, dtype=np.float64),
        log_likelihood=np.asarray(log_likelihood, dtype=np.float64),
        log_evidence=float(sampler.log_z),
        effective_samples=float(sampler.n_eff),
        likelihood_evaluations=int(sampler.n_like),
        converged=bool(converged),
        parameter_max_likelihood=job.prior(np.concatenate(sampler.points)[best]),
        max_log_likelihood=float(all_log_l[best]),
        seconds={**sampler.seconds, "waiting": waiting[0], "total": time.perf_counter() - start,
                 "cpu": time.process_time() - cpu},
        exploration_evaluations=exploring[0],
    )


def sampler_main(conn: Connection, job: SamplerJob) -> None:
    """A sampler process: run the job, asking the coordinator for every likelihood batch over `conn`."""

    def likelihood(points: np.ndarray) -> np.ndarray:
        conn.send(("request", np.asarray(points, dtype=np.float64)))
        return conn.recv()

    try:
        outcome = run_job(job, likelihood)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return  # the coordinator is gone: nothing to report to
    except BaseException:  # noqa: BLE001 - reported to the coordinator, which marks the lens failed
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("done", outcome))


def start_sampler(job: SamplerJob, name: str) -> tuple[multiprocessing.Process, Connection]:
    """Start a sampler process for `job` (from the fork server); returns it and the coordinator's pipe end."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", __name__])
    here, there = context.Pipe(duplex=True)
    process = context.Process(target=sampler_main, args=(there, job), name=name, daemon=True)
    process.start()
    there.close()
    return process, here
