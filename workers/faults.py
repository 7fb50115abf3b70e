"""Hooks the block pipeline calls at fixed points of a block (workers/block.py), and the fault injection that
tests build on them. Off by default: `BlockHooks()` does nothing.

`Faults(spec)` — the actor's `faults` argument, a test hook and never a command-line option:
    {"delay": s}                  sleep s seconds in every block before committing (a slow block);
    {"exit_in_block": k, "marker": path}
                                  the first attempt at block k that finds no file at `marker` creates it, scribbles
                                  over block k's model_image chunk and kills the worker process (os._exit) before
                                  committing: a worker dying mid-block, once;
    {"raise_in_block": k}         every attempt at block k raises RuntimeError after evaluating;
    {"announce": folder}          every attempt at block k starts by writing the file `k.attempt.NODE_ID` there;
    {"exit_in_search": k, "after_rounds": n, "marker": path, "stage": name}
                                  search mode: the first attempt at block k that finds no file at `marker` creates
                                  it and kills the worker process after n rounds of likelihood requests, mid-search
                                  (its samplers' checkpoints stay behind), in the search of pipeline stage `name`
                                  (default: the first searched);
    {"search_rounds": folder}     search mode: every attempt at block k writes the file `k.attempt` there, holding
                                  the rounds of likelihood requests its searches took (a resumed search takes fewer).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np


class BlockHooks:
    """Called by the block pipeline; every hook does nothing here."""

    def started(self, k: int, attempt: int) -> None:
        """Block k's attempt begins."""

    def search_round(self, k: int, stage: str) -> Callable[[int], None] | None:
        """A callback after each round n of likelihood requests of block k's search in pipeline stage `stage`,
        or None."""
        return None

    def searched(self, k: int, attempt: int, rounds: int) -> None:
        """Block k's searches are over after `rounds` rounds of likelihood requests."""

    def before_commit(self, k: int, store, block: slice) -> None:
        """Block k is evaluated and about to be committed to `store` (its datasets: `block`)."""


class Faults(BlockHooks):
    """The injected faults of the module docstring."""

    def __init__(self, spec: dict, actor: str):
        self.spec = dict(spec)
        self.actor = actor

    def started(self, k: int, attempt: int) -> None:
        if "announce" in self.spec:
            import ray

            node = ray.get_runtime_context().get_node_id()
            with open(os.path.join(self.spec["announce"], f"{k}.{attempt}.{node}"), "w"):
                pass

    def search_round(self, k: int, stage: str) -> Callable[[int], None] | None:
        spec = self.spec
        if spec.get("exit_in_search") != k or os.path.exists(spec["marker"]):
            return None
        if spec.get("stage", stage) != stage:
            return None

        def after_round(n: int) -> None:
            if n >= int(spec.get("after_rounds", 1)):
                self._die(f"{self.actor} died in the {stage} search of block {k} after {n} rounds")

        return after_round

    def searched(self, k: int, attempt: int, rounds: int) -> None:
        if "search_rounds" in self.spec:
            with open(os.path.join(self.spec["search_rounds"], f"{k}.{attempt}"), "w") as f:
                f.write(str(rounds))

    def before_commit(self, k: int, store, block: slice) -> None:
        spec = self.spec
        time.sleep(float(spec.get("delay", 0)))
        if spec.get("raise_in_block") == k:
            raise RuntimeError(f"injected fault in block {k}")
        if spec.get("exit_in_block") == k and not os.path.exists(spec["marker"]):
            scribble = store.array("model_image")
            scribble[block] = np.full((block.stop - block.start, *scribble.shape[1:]), 12345.0)
            self._die(f"{self.actor} died in block {k}")

    def _die(self, why: str) -> None:
        with open(self.spec["marker"], "w") as f:
            f.write(why + "\n")
        os._exit(1)
