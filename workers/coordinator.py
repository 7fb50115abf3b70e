"""The coordinator of a block's searches: the thread that serves the likelihood requests of the block's sampler
processes (workers/samplers.py) with calls of the compiled block function (on a CPU their pieces run on
batch.py's thread pool; nothing else of the block touches JAX).

    progress = SearchProgress()                      # live counts, readable from another thread
    evaluate = BlockEvaluator(stacked, model, L, V, filler, eval_chunk, progress, compute)
    outcomes = serve(samplers, evaluate)             # slot → SamplerOutcome (or a failed sampler's error text)

A round starts once every still-running sampler has a request pending, or sooner: on a CPU (eval_chunk > 0,
where a call costs what it computes) at once with whatever is there, on a GPU after waiting one block call's
time for the rest (a call costs the whole block there). So a sampler busy building a bound (seconds of network
training) holds up neither the device nor the other lenses. Each lens's samples are the same either way (a
slot's values never depend on the other slots': workers/search.py).

Accounting (BlockEvaluator): block calls (`seconds`, each lens's share in `lens_seconds` by its share of each
round's requested points), and the coordinator's `times`: gathering (waiting for more requests while some are in
hand), starved (waiting with none: every sampler busy with its own work) and pipe (receiving and sending).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from multiprocessing import connection
from typing import Callable

import numpy as np

from .samplers import SamplerOutcome

__all__ = ["BlockEvaluator", "SearchProgress", "serve"]


@dataclass
class SearchProgress:
    """The live state of searches for a progress display: updated by the coordinator after every round and as
    samplers finish, read (`snapshot`) from another thread; the search_block calls of one block (its bucket
    groups and stages) may share one. `stopped`: finished without meeting the stopping criteria (n_like_max);
    evaluations: likelihood values handed to the samplers, `finished_evaluations` those of finished searches."""

    searches: int = 0
    converged: int = 0
    stopped: int = 0
    failed: int = 0
    evaluations: int = 0
    finished_evaluations: int = 0
    likelihood_s: float = 0.0

    def snapshot(self) -> dict:
        """The counts now, with `running` (started and not finished)."""
        counts = {k: getattr(self, k) for k in ("searches", "converged", "stopped", "failed", "evaluations",
                                                 "finished_evaluations")}
        return {**counts, "running": self.searches - self.converged - self.stopped - self.failed,
                "likelihood_s": self.likelihood_s}


class BlockEvaluator:
    """Pads requests into (L, V) rounds, calls the compiled block function `compute(imagings, vectors (L, V, n),
    model, eval_chunk, active (L,))` → (L, V) figures of merit, and accounts for the time (module docstring)."""

    def __init__(self, imagings, model, n_lenses: int, n_vectors: int, filler: np.ndarray, eval_chunk: int,
                 progress: SearchProgress, compute: Callable):
        """`filler` (n_lenses, n): the vector an idle slot holds (its lens's prior median)."""
        self.imagings, self.model, self.eval_chunk, self.progress = imagings, model, eval_chunk, progress
        self.compute = compute
        self.on_round: Callable[[int], None] | None = None
        self.template = np.repeat(filler[:, None, :], n_vectors, axis=1)
        self.reset()

    def reset(self) -> None:
        n_lenses = len(self.template)
        self.calls = self.evaluated = self.rounds = 0
        self.seconds = self.last_call_s = 0.0
        self.handed = [0] * n_lenses
        self.lens_seconds = [0.0] * n_lenses
        self.times = dict.fromkeys(("gathering", "starved", "pipe"), 0.0)

    def window(self) -> float:
        """How long a round waits for more requests after the first: 0 on a CPU (eval_chunk > 0, where a call
        costs what it computes), one block call's time on a GPU (where a call costs the whole block)."""
        return 0.0 if self.eval_chunk > 0 else self.last_call_s

    def finished(self, slot: int, outcome: SamplerOutcome | str) -> None:
        """A sampler finished (its outcome, or the error text of a failed one)."""
        self.progress.finished_evaluations += self.handed[slot]
        if not isinstance(outcome, SamplerOutcome):
            self.progress.failed += 1
        elif outcome.converged:
            self.progress.converged += 1
        else:
            self.progress.stopped += 1

    def __call__(self, requests: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        start = time.perf_counter()
        n_vectors = self.template.shape[1]
        rounds = max(-(-len(points) // n_vectors) for points in requests.values())
        out = {s: np.empty(len(points)) for s, points in requests.items()}
        for r in range(rounds):
            t0 = time.perf_counter()
            vectors = self.template.copy()
            active = np.zeros(len(vectors), bool)
            spans = {}
            for s, points in requests.items():
                chunk = points[r * n_vectors : (r + 1) * n_vectors]
                if len(chunk):
                    vectors[s, : len(chunk)] = chunk
                    vectors[s, len(chunk) :] = chunk[0]
                    active[s] = True
                    spans[s] = len(chunk)
            values = self.compute(self.imagings, vectors, self.model, self.eval_chunk, active)
            self.calls += 1
            self.evaluated += int(active.sum() if self.eval_chunk > 0 else len(active)) * n_vectors
            for s, n in spans.items():
                out[s][r * n_vectors : r * n_vectors + n] = values[s, :n]
            self.last_call_s = time.perf_counter() - t0
            for s, n in spans.items():
                self.lens_seconds[s] += self.last_call_s * n / sum(spans.values())
        handed = 0
        for s, points in requests.items():
            self.handed[s] += len(points)
            handed += len(points)
        elapsed = time.perf_counter() - start
        self.seconds += elapsed
        self.rounds += 1
        self.progress.evaluations += handed
        self.progress.likelihood_s += elapsed
        if self.on_round is not None:
            self.on_round(self.rounds)
        return out


def serve(samplers: dict[int, tuple], evaluate: BlockEvaluator) -> dict:
    """Until every sampler process in `samplers` (slot → (process, pipe)) has finished: gather likelihood
    requests, evaluate them together, send each its values. A round starts once every running sampler has a
    request, or `evaluate.window()` seconds after the first request came (module docstring). Returns slot →
    SamplerOutcome, or the error text of a sampler that failed or died."""
    outcomes: dict[int, SamplerOutcome | str] = {}
    slot_of = {id(conn): slot for slot, (_, conn) in samplers.items()}
    running = set(samplers)
    pending: dict[int, np.ndarray] = {}
    clock = time.perf_counter
    deadline = None
    try:
        while running:
            listen = [samplers[s][1] for s in running if s not in pending]
            if listen:
                timeout = None if not pending else max(0.0, deadline - clock())
                t0 = clock()
                ready = connection.wait(listen, timeout)
                evaluate.times["gathering" if pending else "starved"] += clock() - t0
                for conn in ready:
                    slot = slot_of[id(conn)]
                    t0 = clock()
                    try:
                        kind, payload = conn.recv()
                    except (EOFError, ConnectionResetError):
                        process = samplers[slot][0]
                        process.join(timeout=5)
                        kind, payload = "error", f"the sampler process died (exit code {process.exitcode})"
                    evaluate.times["pipe"] += clock() - t0
                    if kind == "request":
                        pending[slot] = payload
                    else:
                        outcomes[slot] = payload
                        running.discard(slot)
                        evaluate.finished(slot, payload)
                if pending and deadline is None:
                    deadline = clock() + evaluate.window()
                if pending and any(s not in pending for s in running) and clock() < deadline:
                    continue
            if pending:
                values = evaluate(pending)
                t0 = clock()
                for slot, v in values.items():
                    samplers[slot][1].send(v)
                evaluate.times["pipe"] += clock() - t0
                pending, deadline = {}, None
    finally:  # on an error, samplers still waiting for values are stopped; finished ones exit by themselves
        for slot, (process, conn) in samplers.items():
            if slot not in outcomes and process.is_alive():
                process.terminate()
            process.join(timeout=10)
            conn.close()
    return outcomes
