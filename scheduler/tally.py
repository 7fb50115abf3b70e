"""What a run has committed so far, shown while it runs: store-wide counts of DONE / FAILED / INVALID datasets
kept up to date as blocks commit, the progress display (scheduler.progress: a live bar on a terminal, a
`lensfleet progress ...` line every few seconds in a log) and the run's Ray metrics (workers.telemetry.RunMetrics:
datasets committed by status, blocks in flight and retried, datasets pending, block latency from submit to
commit; the actors record theirs, evaluations, searches running and converged, compiles and device memory, with
ActorMetrics).

In search mode a block takes minutes, so the driver also polls each busy actor's FitActor.progress (every
progress interval) and hands the answers to `searching`; LiveSearches turns them into the progress display's
SearchCounts:

    evaluations  this run's likelihood evaluations: committed blocks' plus in-flight blocks' so far
    eval_rate    Δevaluations / Δt over the last RATE_WINDOW_S seconds of polls
    eta          (datasets not committed × searched stages × evaluations per finished search
                  − evaluations of the in-flight blocks) / eval_rate
"""

from __future__ import annotations

import time
from collections.abc import Callable

from scheduler.progress import Progress, SearchCounts
from storage.schema import Status
from storage.store import ResultStore


RATE_WINDOW_S = 60.0


class LiveSearches:
    """The searches of a run's in-flight blocks, from the actors' progress answers (module docstring).
    `searched_stages`: searched pipeline stages per dataset."""

    def __init__(self, searched_stages: int, clock: Callable[[], float] = time.monotonic):
        self.searched_stages = searched_stages
        self.clock = clock
        self.live: dict[int, dict] = {}  # block -> its latest progress answer
        self.committed_evaluations = 0
        # committed blocks' finished searches, their evaluations, the converged and the stopped ones
        self.finished = {"searches": 0, "evaluations": 0, "converged": 0, "stopped": 0}
        self.history: list[tuple[float, int]] = []  # (time, evaluations) of recent polls

    def polled(self, state: dict, in_flight: set[int]) -> None:
        """An actor's progress answer; kept while its block is in flight."""
        if state.get("block") in in_flight:
            self.live[state["block"]] = state

    def committed(self, block: int, evaluations: int, state: dict) -> None:
        """A block committed with `evaluations` likelihood evaluations and its searches' final `state`."""
        self.live.pop(block, None)
        self.committed_evaluations += evaluations
        if state:
            self.finished["searches"] += state["searches"] - state["running"]
            self.finished["evaluations"] += state["finished_evaluations"]
            self.finished["converged"] += state["converged"]
            self.finished["stopped"] += state["stopped"]

    def counts(self, remaining_datasets: int) -> SearchCounts | None:
        """The SearchCounts now (None before any answer), with `remaining_datasets` not yet committed."""
        if not self.live and not self.history:
            return None
        live = list(self.live.values())
        in_flight_evaluations = sum(s["evaluations"] for s in live)
        evaluations = self.committed_evaluations + in_flight_evaluations
        now = self.clock()
        self.history = [(t, n) for t, n in self.history if now - t <= RATE_WINDOW_S] + [(now, evaluations)]
        (t0, n0), (t1, n1) = self.history[0], self.history[-1]
        rate = (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
        finished = self.finished["searches"] + sum(s["searches"] - s["running"] for s in live)
        finished_evaluations = self.finished["evaluations"] + sum(s["finished_evaluations"] for s in live)
        eta = None
        if finished and rate > 0:
            per_search = finished_evaluations / finished
            to_do = remaining_datasets * self.searched_stages * per_search - in_flight_evaluations
            eta = max(to_do, 0.0) / rate
        return SearchCounts(sum(s["running"] for s in live),
                            self.finished["converged"] + sum(s["converged"] for s in live),
                            self.finished["stopped"] + sum(s["stopped"] for s in live), evaluations, rate, eta)


class Tally:
    """The counts of one run over `store`, which will commit `blocks` (see the module docstring);
    `searched_stages` > 0 in search mode."""

    def __init__(self, store: ResultStore, blocks: list[int], progress_interval: float, searched_stages: int = 0):
        from workers.telemetry import RunMetrics, run_name  # Ray's metrics: imported once a run starts

        self.n_datasets = store.n_datasets
        self.counts = _committed_outside(store, blocks)  # store-wide, kept up to date as blocks commit
        self.metrics = RunMetrics(run_name(store.url))
        self.progress = Progress(total=store.n_datasets, already_done=sum(self.counts.values()),
                                 interval_s=progress_interval)
        self.searches = LiveSearches(searched_stages) if searched_stages else None

    def block_committed(self, summary: dict, seconds: float) -> None:
        """An actor committed a block: its summary's counts, and `seconds` from submit to commit."""
        for key in self.counts:
            self.counts[key] += summary[key]
        self.metrics.block_committed(summary["done"], summary["failed"], summary["invalid"], seconds)
        if self.searches is not None:
            self.searches.committed(summary["block"], summary["likelihood_evaluations"], summary.get("searches", {}))

    def searching(self, state: dict, in_flight: set[int]) -> None:
        """An actor's progress answer (FitActor.progress); `in_flight`: the blocks in flight now."""
        if self.searches is not None:
            self.searches.polled(state, in_flight)

    def gave_up(self, failed: int, invalid: int) -> None:
        """The driver committed a block FAILED (its datasets refused at planning INVALID)."""
        self.counts["failed"] += failed
        self.counts["invalid"] += invalid
        self.metrics.datasets_committed(failed=failed, invalid=invalid)

    def block_retried(self) -> None:
        self.metrics.block_retried()

    def gauges(self, in_flight: int) -> None:
        """Blocks in flight and datasets pending, now."""
        self.metrics.in_flight(in_flight)
        self.metrics.pending(self.n_datasets - sum(self.counts.values()))

    def show(self, in_flight: int) -> None:
        """The gauges and the progress display, now."""
        self.gauges(in_flight)
        self.progress.update(**self.counts, in_flight=in_flight, searches=self._search_counts())

    def close(self, in_flight: int) -> None:
        """The run is over: the last progress, and its gauges are no longer refreshed."""
        self.progress.update(**self.counts, in_flight=in_flight, searches=self._search_counts())
        self.progress.close()
        self.metrics.close()


    def _search_counts(self) -> SearchCounts | None:
        if self.searches is None:
            return None
        return self.searches.counts(self.n_datasets - sum(self.counts.values()))


def _committed_outside(store: ResultStore, blocks: list[int]) -> dict[str, int]:
    """Datasets committed DONE / FAILED / INVALID in the store outside `blocks` (the blocks this run will commit)."""
    status = store.status()
    for k in blocks:
        status[store.block_slice(k)] = Status.PENDING
    return {name: int((status == s).sum()) for name, s in
            (("done", Status.DONE), ("failed", Status.FAILED), ("invalid", Status.INVALID))}
