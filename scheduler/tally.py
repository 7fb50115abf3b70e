"""What a run has committed so far, shown while it runs: store-wide counts of DONE / FAILED / INVALID datasets
kept up to date as blocks commit, the progress display (scheduler.progress: a live bar on a terminal, a
`lensfleet progress ...` line every few seconds in a log) and the run's Ray metrics (workers.telemetry.RunMetrics:
datasets committed by status, blocks in flight and retried, datasets pending, block latency from submit to
commit; the actors record theirs, evaluations, compiles and device memory, with ActorMetrics).
"""

from __future__ import annotations

from scheduler.progress import Progress
from storage.schema import Status
from storage.store import ResultStore


class Tally:
    """The counts of one run over `store`, which will commit `blocks` (see the module docstring)."""

    def __init__(self, store: ResultStore, blocks: list[int], progress_interval: float):
        from workers.telemetry import RunMetrics, run_name  # Ray's metrics: imported once a run starts

        self.n_datasets = store.n_datasets
        self.counts = _committed_outside(store, blocks)  # store-wide, kept up to date as blocks commit
        self.metrics = RunMetrics(run_name(store.url))
        self.progress = Progress(total=store.n_datasets, already_done=sum(self.counts.values()),
                                 interval_s=progress_interval)

    def block_committed(self, summary: dict, seconds: float) -> None:
        """An actor committed a block: its summary's counts, and `seconds` from submit to commit."""
        for key in self.counts:
            self.counts[key] += summary[key]
        self.metrics.block_committed(summary["done"], summary["failed"], summary["invalid"], seconds)

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
        self.progress.update(**self.counts, in_flight=in_flight)

    def close(self, in_flight: int) -> None:
        """The run is over: the last progress, and its gauges are no longer refreshed."""
        self.progress.update(**self.counts, in_flight=in_flight)
        self.progress.close()
        self.metrics.close()


def _committed_outside(store: ResultStore, blocks: list[int]) -> dict[str, int]:
    """Datasets committed DONE / FAILED / INVALID in the store outside `blocks` (the blocks this run will commit)."""
    status = store.status()
    for k in blocks:
        status[store.block_slice(k)] = Status.PENDING
    return {name: int((status == s).sum()) for name, s in
            (("done", Status.DONE), ("failed", Status.FAILED), ("invalid", Status.INVALID))}
