"""How much to evaluate at once on a device: the eval chunk and the lenses per device call.

Both come from the device and the compiled program, never from a timing: chunks round differently (values differ
by ~1e-12 between chunk sizes), and a search rerun after a kill must give the same bits as an unkilled run, so
the plan cannot depend on the machine's load at the moment it was measured.
- memory: one evaluation of the model on the bucket needs `lane_bytes` of device memory and a call `fixed_bytes`
  more, a straight line fitted to the compiled programs' own memory analysis
  (`compiled.memory_analysis()`: temporaries + arguments + outputs) at two batch sizes. A call of L lenses × c
  lanes at once then needs fixed_bytes + L·c·lane_bytes, which must stay within memory_fraction of the
  device's free memory (memory_stats on an accelerator, MemAvailable on a CPU).
- the eval chunk (batch.evaluate's `chunk`), by device: 1 on a CPU (XLA runs one evaluation's operations one
  after another, so vectorising buys nothing and batched gathers cost more per lane: measured, `lensfleet
  bench`; and jaxlib 0.10's batched LAPACK kernels, Cholesky and triangular solves over a batch, split the
  batch over XLA's CPU thread pool and block a pool thread until the parts finish: two such calls at once on a
  2-thread pool deadlock, measured here, so a CPU never batches them), and on an accelerator all of the batch
  at once if it fits, else the largest power of two that does.
  `measure=True` (bench) also times every candidate c = 1, 2, 4, 8, 16 that fits on (up to TIMING_VECTORS of)
  the caller's vectors, the candidates taking turns so that a changing load falls on all alike: the evidence
  for the rule on a new device, reported, never used.
With the chunk, the lenses per call: all of them when chunk > 0 (they run one after another); with chunk 0
as many as fit at once, so a GPU call is as full as memory allows and never over-full.

The plan is cached per (device, model, bucket, batch): an actor pays for the measurement once per bucket.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import partial

from . import jax_setup  # noqa: F401
import jax
import numpy as np

from .batch import _vmapped, evaluate
from .imaging import MaskedImaging
from workers.model.description import Model

MEMORY_FRACTION = 0.8  # of the device's free memory a plan may use
_TIMING_ROUNDS = 3  # timed calls per candidate chunk (after one warm-up), taking turns; the fastest counts
TIMING_VECTORS = 16  # candidates are timed on at most this many of the caller's vectors
_PLANS: dict = {}


@dataclass(frozen=True)
class BatchPlan:
    """eval_chunk: batch.evaluate / evaluate_block `chunk` (0: every lane of a call at once).
    lenses_per_call: lenses per evaluate_block call (a block of more lenses is split into calls of this many).
    vectors_per_lens: V the plan was made for. lane_bytes, fixed_bytes: device memory per evaluation and per
    call; free_bytes: the memory the plan may use. ms_per_evaluation: the measured time of each candidate
    chunk (ms per evaluation), when measured. device: where it was planned."""

    eval_chunk: int
    lenses_per_call: int
    vectors_per_lens: int
    lane_bytes: int
    fixed_bytes: int
    free_bytes: int
    ms_per_evaluation: dict[int, float] = field(default_factory=dict)
    device: str = ""

    def as_dict(self) -> dict:
        """JSON-ready: the plan as `lensfleet bench --json` reports it."""
        return {
            "eval_chunk": self.eval_chunk,
            "lenses_per_call": self.lenses_per_call,
            "vectors_per_lens": self.vectors_per_lens,
            "lane_memory_mb": self.lane_bytes / 2**20,
            "call_memory_mb": self.fixed_bytes / 2**20,
            "free_memory_mb": self.free_bytes / 2**20,
            "ms_per_evaluation_by_chunk": {str(k): v for k, v in self.ms_per_evaluation.items()},
        }


def free_memory_bytes(device: jax.Device | None = None) -> int:
    """Device memory not in use: bytes_limit − bytes_in_use on an accelerator, MemAvailable on a CPU."""
    device = device or jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def _call_bytes(imaging: MaskedImaging, vectors: np.ndarray, model: Model, with_arrays: bool, convolution: str) -> int:
    """Device memory of one compiled call of `len(vectors)` lanes: temporaries + arguments + outputs."""
    compiled = _vmapped.lower(imaging, vectors, model, with_arrays, convolution).compile()
    analysis = compiled.memory_analysis()
    return int(analysis.temp_size_in_bytes + analysis.argument_size_in_bytes + analysis.output_size_in_bytes)


def lane_memory(
    imaging: MaskedImaging, vector: np.ndarray, model: Model, with_arrays: bool = False, convolution: str = "auto"
) -> tuple[int, int]:
    """(fixed_bytes, lane_bytes): a call of c lanes needs fixed_bytes + c·lane_bytes (memory analysis at
    c = 1 and 2)."""
    one, two = (_call_bytes(imaging, np.tile(vector, (c, 1)), model, with_arrays, convolution) for c in (1, 2))
    lane = max(two - one, 1)
    return max(one - lane, 0), lane


def _measure(imaging, sample, model, with_arrays, convolution, candidates) -> dict[int, float]:
    """ms per evaluation of batch.evaluate(..., chunk) on `sample` for each candidate chunk: the fastest of
    _TIMING_ROUNDS calls, the candidates taking turns (round-robin) so that a shared machine's changing load
    falls on all of them alike; a candidate over twice the fastest after a round is dropped."""
    runs = {c: partial(evaluate, imaging, sample, model, with_arrays, convolution, c) for c in candidates}
    for run in runs.values():
        jax.block_until_ready(run())  # compile and warm up
    best = {c: float("inf") for c in candidates}
    for _ in range(_TIMING_ROUNDS):
        for chunk, run in runs.items():
            start = time.perf_counter()
            jax.block_until_ready(run())
            best[chunk] = min(best[chunk], time.perf_counter() - start)
        fastest = min(best.values())
        runs = {c: r for c, r in runs.items() if best[c] <= 2.0 * fastest}
    return {c: 1e3 * t / len(sample) for c, t in best.items()}


def plan_batch(
    imaging: MaskedImaging,
    vectors: np.ndarray,
    model: Model,
    lenses: int = 1,
    with_arrays: bool = False,
    convolution: str = "auto",
    memory_fraction: float = MEMORY_FRACTION,
    measure: bool = False,
) -> BatchPlan:
    """The plan for evaluating `lenses` lenses of imaging's bucket at V = len(vectors) vectors each (vectors
    (V, n), e.g. what a sampler asks for, or V copies of a catalog vector), on the default device. `imaging`
    is one lens of the bucket (unstacked; pad_to_bucket it to a block's bucket). Compiles the program at two
    batch sizes for its memory (and with `measure` times the candidate chunks); once per (device, model,
    bucket, batch)."""
    device = jax.devices()[0]
    vectors = np.asarray(vectors, np.float64)
    size = len(vectors)
    key = (device.platform, device.device_kind, model, imaging.bucket, size, lenses, with_arrays, convolution,
           memory_fraction, measure)
    if key in _PLANS:
        return _PLANS[key]
    fixed, lane = lane_memory(imaging, vectors[0], model, with_arrays, convolution)
    free = int(memory_fraction * free_memory_bytes(device))
    fitting = max((free - fixed) // lane, 1)
    timings = {}
    if measure:
        sample = vectors[: min(size, TIMING_VECTORS)]
        candidates = [c for c in (1, 2, 4, 8, 16) if c <= len(sample) and c <= fitting] or [1]
        timings = _measure(imaging, sample, model, with_arrays, convolution, candidates)
    if device.platform == "cpu":
        chunk = 1
    else:
        chunk = 0 if size <= fitting else 2 ** int(np.log2(fitting))
    lanes = size if chunk == 0 else chunk
    lenses_per_call = lenses if chunk > 0 else max(1, min(lenses, fitting // lanes))
    kind = device.platform if device.platform == "cpu" else f"{device.platform}: {device.device_kind}"
    plan = BatchPlan(chunk, lenses_per_call, size, lane, fixed, free, timings, kind)
    _PLANS[key] = plan
    return plan
