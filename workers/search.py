"""Nonlinear searches: a Nautilus search per lens over the model's nonlinear parameters, the lenses of a block
run side by side with their likelihood requests merged into one compiled call over (lenses × vectors).

The likelihood a search samples is the inversion's figure of merit (its log evidence, as in PyAutoLens), at
parameter vectors laid out as model.parameter_names; priors map the unit cube to parameters (priors.py). A
non-finite figure of merit counts as fit.DEGENERATE_FIGURE_OF_MERIT (rejected, never a crash).

Batching across lenses. Nautilus's run() is synchronous and asks its vectorised likelihood for n_batch points
at a time. Each lens's sampler runs in a process of its own (workers/samplers.py: the samplers' own work,
fitting bounds, then proceeds in parallel on the CPU cores); its likelihood call sends the points to the
coordinator (the calling thread, which alone touches JAX) and waits. The coordinator evaluates the requests
it holds in one call of the compiled block function on vectors of fixed shape (L lenses, V = n_batch vectors)
once every still-running sampler has a request pending, or sooner (workers/coordinator.py): on a CPU at once, with whatever
requests are there, on a GPU after waiting one block call's time for the rest, so that a sampler busy building
a bound (seconds of network training) holds up neither the device nor the other lenses. A request fills its
lens's slot from position 0 (a request longer than V is split over several rounds; a short one is padded by
repeating its first point), and slots without a request hold the prior median. The values go back, the
samplers go on. The eval chunk and the lenses per call are fit.toml's eval_chunk or what sizing.plan_batch
plans for the device (block_plan: by device and memory, never by a timing, so a rerun gives the same bits). Compiled once per (model, bucket, lenses per call, V) with eval_chunk 0,
once per (model, bucket, eval_chunk) otherwise. With eval_chunk 0 (a GPU) the whole block is one vmap (or a
few, as its memory allows) and idle slots (finished lenses) are computed on the prior median for nothing,
which a GPU does not notice; with eval_chunk > 0 (a CPU) the lenses are evaluated one after another,
eval_chunk vectors per compiled call (batch.evaluate_block), and idle slots are skipped, so a CPU only pays
for requested points.

Determinism. Each lens's sampler is seeded from (seed, dataset id) (lens_seed), and a point's likelihood
comes out of the same compiled program at the same (slot, position) whether the other slots hold other
lenses' points or the prior median (XLA computes every slot with the same code, and nothing mixes slots): so
running the block's searches one after another (concurrent=False, each lens alone in its slot of the same
(L, V) call) gives bit-for-bit the samples of running them side by side, and a lens's posterior does not
depend on its block mates (tests/workers/test_search.py checks both, bit for bit). Sampler processes hold OpenBLAS at one thread
so that their own linear algebra (neural-network training) is reproducible too.

Each lens's result is a posterior.LensSearch (or a SearchError): its posterior, evidence and summaries.

Checkpoints. With a checkpoint directory, each lens's sampler keeps a Nautilus HDF5 checkpoint there (named by
the dataset id and a fingerprint of the model, priors, search options and data), written atomically (a
temporary copy, then os.replace): a search killed mid-way resumes from its last batch, and a file that cannot
be read is discarded and the search starts afresh. The checkpoint is internal state, never a result.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .inversion import jax_setup  # noqa: F401
import jax

from .config import SearchOptions
from .inversion.batch import evaluate_block, stack
from .model.buckets import Bucket
from .inversion.fit import DEGENERATE_FIGURE_OF_MERIT, check_model_fits
from .inversion.imaging import MaskedImaging
from .inversion.sizing import plan_batch
from .model.description import Model
from .posterior import LensSearch, weighted_quantiles
from .priors import PriorTransform, prior_to_dict
from .coordinator import BlockEvaluator, SearchProgress, serve
from .samplers import SamplerJob, SamplerOutcome, lens_seed, partial_path, start_sampler

__all__ = ["BlockSearch", "SearchError", "lens_seed", "search_block"]


class SearchError(RuntimeError):
    """A lens's search failed (its sampler raised); the other lenses of the block are unaffected."""


# --- the compiled block likelihood -------------------------------------------------------------------------


def block_plan(imagings: MaskedImaging, vectors: np.ndarray, model: Model, eval_chunk: int | None) -> tuple[int, int]:
    """(eval_chunk, lenses_per_call) of the block call on L stacked lenses at vectors (L, V, n): fit.toml's
    eval_chunk if it gives one (every lens in one call), else the plan sizing.plan_batch makes for this
    device, model, bucket and (L, V) (on a CPU one evaluation per call; on a GPU the whole block at once, or as
    many lenses per call as fit its memory). Measured once per process and (model, bucket, L, V)."""
    if eval_chunk is not None:
        return eval_chunk, 0
    lens = jax.tree.map(lambda a: a[0], imagings)
    plan = plan_batch(lens, vectors[0], model, lenses=vectors.shape[0])
    return plan.eval_chunk, plan.lenses_per_call


def block_figure_of_merit(
    imagings: MaskedImaging, vectors: np.ndarray, model: Model, eval_chunk: int = 0, active: np.ndarray | None = None,
    lenses_per_call: int = 0,
) -> np.ndarray:
    """Figures of merit (L, V) of L stacked lenses (batch.stack) at vectors (L, V, n), as float64 numpy with
    non-finite values replaced by DEGENERATE_FIGURE_OF_MERIT.

    eval_chunk 0: one vmap over the whole block, or over `lenses_per_call` lenses at a time (> 0: calls that fit
    the device's memory), every slot computed: right for a GPU.
    eval_chunk > 0: the lenses one after another, `eval_chunk` vectors of a lens vectorised at a time, and
    lenses whose `active` flag is off (default: all on) skipped: right for a CPU, where an idle slot would cost
    as much as a busy one. Either way a slot's values do not depend on the other slots'."""
    values = evaluate_block(imagings, vectors, model, chunk=eval_chunk, active=active,
                            lenses_per_call=lenses_per_call).figure_of_merit
    values = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(values), values, DEGENERATE_FIGURE_OF_MERIT)


# --- the block's searches --------------------------------------------------------------------------------


@dataclass
class BlockSearch:
    """The searches of one block: a LensSearch or a SearchError per lens (block order), and accounting.
    likelihood_evaluations: likelihood values handed to each lens's sampler; evaluated: slots × vectors computed (the
    difference is padding and idle slots); block_calls: calls of the compiled block function; wall_s: per
    lens when run one by one, else the block's wall time for every lens; likelihood_s: time in block calls;
    lens_likelihood_s: each lens's share of it (by its share of each round's requested points); sampler_seconds:
    each lens's sampler process times (samplers.SAMPLER_TIMES; {} for a failed one); coordinator_s: the
    coordinator's time outside block calls (coordinator.BlockEvaluator.times) and its process's CPU seconds over the
    searches (`cpu`: the likelihood's XLA threads and the coordinator itself); exploration_evaluations: each lens's
    evaluations in Nautilus's exploration phase (0 for a failed one); compile_s: the first block call's time."""

    results: list[LensSearch | SearchError]
    likelihood_evaluations: list[int]
    evaluated: int
    block_calls: int
    wall_s: list[float]
    likelihood_s: float
    compile_s: float
    checkpoints: list[Path | None] = field(default_factory=list)
    lens_likelihood_s: list[float] = field(default_factory=list)
    sampler_seconds: list[dict] = field(default_factory=list)
    coordinator_s: dict = field(default_factory=dict)
    exploration_evaluations: list[int] = field(default_factory=list)

    def remove_checkpoints(self) -> None:
        """Delete the lenses' checkpoint files, and any partial write of them (once their results are safely
        stored)."""
        for path in self.checkpoints:
            if path is not None:
                path.unlink(missing_ok=True)
                partial_path(path).unlink(missing_ok=True)


# --- checkpoints ------------------------------------------------------------------------------------------


def search_fingerprint(model: Model, prior: PriorTransform, options: SearchOptions) -> str:
    """What a checkpoint must agree on to be resumed: the model, the priors and the sampler settings (not
    max_samples, checkpoint or eval_chunk, which do not change a sampler's state)."""
    sampler_options = replace(options, max_samples=0, checkpoint=False, eval_chunk=0)
    text = repr((model, [(n, prior_to_dict(p)) for n, p in zip(prior.names, prior.priors)], sampler_options))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checkpoint_path(directory: Path, dataset_id: str, imaging: MaskedImaging, fingerprint: str) -> Path:
    """directory/<dataset id, filesystem-safe>-<hash of fingerprint, id and data>.h5"""
    h = hashlib.sha256(f"{fingerprint}:{dataset_id}".encode())
    h.update(np.ascontiguousarray(np.asarray(imaging.data)).tobytes())
    h.update(np.ascontiguousarray(np.asarray(imaging.noise_map)).tobytes())
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", dataset_id)[:80]
    return Path(directory) / f"{safe}-{h.hexdigest()[:16]}.h5"


# --- the block search --------------------------------------------------------------------------------------


def _lens_result(dataset_id: str, outcome: SamplerOutcome, prior: PriorTransform, likelihood_s: float) -> LensSearch:
    q16, q50, q84 = weighted_quantiles(outcome.samples, np.exp(outcome.log_weight), (0.16, 0.5, 0.84))
    n_eff = outcome.effective_samples
    return LensSearch(
        dataset_id=dataset_id,
        parameter_names=prior.names,
        samples=outcome.samples,
        log_weight=outcome.log_weight,
        log_likelihood=outcome.log_likelihood,
        log_evidence=outcome.log_evidence,
        log_evidence_error=float(1.0 / np.sqrt(n_eff)) if n_eff > 0 else float("inf"),
        effective_samples=n_eff,
        likelihood_evaluations=outcome.likelihood_evaluations,
        converged=outcome.converged,
        parameter_max_likelihood=outcome.parameter_max_likelihood,
        max_log_likelihood=outcome.max_log_likelihood,
        parameter_median=q50,
        parameter_sigma=0.5 * (q84 - q16),
        likelihood_seconds=likelihood_s,
        sampler_seconds=outcome.seconds["total"] - outcome.seconds["waiting"],
    )


def search_block(
    imagings: list[MaskedImaging],
    dataset_ids: list[str],
    model: Model,
    priors: Sequence[PriorTransform],
    options: SearchOptions,
    *,
    concurrent: bool = True,
    checkpoint_dir: str | Path | None = None,
    bucket: Bucket | None = None,
    with_fit: bool = True,
    slots: int | None = None,
    on_round: Callable[[int], None] | None = None,
    progress: SearchProgress | None = None,
) -> BlockSearch:
    """Search every lens of a block (module docstring), each with its own priors (`priors`, one per lens, in
    parameter_names order; a pipeline stage's priors depend on what the stage before found). `concurrent`: side by side with merged likelihood
    calls (True) or one after another, each lens alone in its slot of the same compiled call (False): the
    samples are identical. `checkpoint_dir`: keep resumable Nautilus checkpoints there (None: none).
    `bucket`: pad to this shape bucket (default: batch.stack's common bucket). `with_fit`: end with a
    with-arrays evaluation at each lens's max-likelihood point (LensSearch.fit). `slots`: compile the block
    call for this many lenses (≥ the lenses given; the extra slots stay idle), so that blocks of a run share
    one program. `on_round(n)`: called after the n-th round of likelihood requests (a test hook). `progress`: a
    SearchProgress to keep up to date (shared by the calls of one block)."""
    if not (len(imagings) == len(dataset_ids) == len(priors)) or not imagings:
        raise ValueError("give one dataset id and one prior transform per imaging, and at least one")
    n_lenses, n_vectors = len(imagings), options.n_batch
    n_slots = max(slots or n_lenses, n_lenses)
    stacked = stack(imagings + [imagings[0]] * (n_slots - n_lenses), bucket)
    check_model_fits(stacked, model)
    filler = np.stack([p.median() for p in priors] + [priors[0].median()] * (n_slots - n_lenses))
    template = np.repeat(filler[:, None, :], n_vectors, axis=1)
    progress = SearchProgress() if progress is None else progress
    eval_chunk, lenses_per_call = block_plan(stacked, template, model, options.eval_chunk)
    compute = partial(block_figure_of_merit, lenses_per_call=lenses_per_call)
    evaluator = BlockEvaluator(stacked, model, n_slots, n_vectors, filler, eval_chunk, progress, compute)

    start = time.perf_counter()  # compile outside the timed searches
    compute(stacked, evaluator.template, model, eval_chunk, np.arange(n_slots) == 0)
    compile_s = time.perf_counter() - start
    evaluator.on_round = on_round

    checkpoints: list[Path | None] = [None] * n_lenses
    if checkpoint_dir is not None and options.checkpoint:
        checkpoints = [checkpoint_path(Path(checkpoint_dir), i, im, search_fingerprint(model, p, options))
                       for i, im, p in zip(dataset_ids, imagings, priors)]

    jobs = [
        SamplerJob(priors[slot], options, lens_seed(options.seed, dataset_id), checkpoints[slot])
        for slot, dataset_id in enumerate(dataset_ids)
    ]

    def launch(slots: list[int]) -> dict:
        progress.searches += len(slots)
        samplers = {s: start_sampler(jobs[s], f"search-{dataset_ids[s]}") for s in slots}
        return serve(samplers, evaluator)

    outcomes: dict[int, SamplerOutcome | str] = {}
    wall = [0.0] * n_lenses
    cpu = time.process_time()
    if concurrent:
        t0 = time.perf_counter()
        outcomes = launch(list(range(n_lenses)))
        wall = [time.perf_counter() - t0] * n_lenses
    else:
        for slot in range(n_lenses):
            t0 = time.perf_counter()
            outcomes.update(launch([slot]))
            wall[slot] = time.perf_counter() - t0
    evaluator.times["cpu"] = time.process_time() - cpu

    results: list[LensSearch | SearchError] = []
    for slot, dataset_id in enumerate(dataset_ids):
        outcome = outcomes[slot]
        if isinstance(outcome, SamplerOutcome):
            results.append(_lens_result(dataset_id, outcome, priors[slot], evaluator.lens_seconds[slot]))
        else:
            results.append(SearchError(f"{dataset_id}: search failed:\n{outcome}"))

    if with_fit:
        results = _attach_fits(stacked, model, results, filler, imagings)
    finished = [outcomes[slot] for slot in range(n_lenses)]
    return BlockSearch(
        results, evaluator.handed[:n_lenses], evaluator.evaluated, evaluator.calls, wall, evaluator.seconds,
        compile_s, checkpoints, evaluator.lens_seconds[:n_lenses],
        [o.seconds if isinstance(o, SamplerOutcome) else {} for o in finished],
        dict(evaluator.times), [o.exploration_evaluations if isinstance(o, SamplerOutcome) else 0 for o in finished],
    )


def _attach_fits(stacked: MaskedImaging, model: Model, results: list, filler: np.ndarray,
                 imagings: list[MaskedImaging]) -> list:
    """Each lens's FitResult (reconstruction, model image on its own used pixels) at its max-likelihood point."""
    best = np.array(filler)
    for slot, r in enumerate(results):
        if isinstance(r, LensSearch):
            best[slot] = r.parameter_max_likelihood
    best = best[:, None]
    fits = evaluate_block(stacked, best, model, with_arrays=True)
    out = []
    for slot, r in enumerate(results):
        if isinstance(r, LensSearch):
            one = jax.tree.map(lambda a: np.asarray(a[slot, 0]), fits)
            n = imagings[slot].bucket.pixels
            r = replace(r, fit=replace(one, model_image=one.model_image[:n]))
        out.append(r)
    return out
