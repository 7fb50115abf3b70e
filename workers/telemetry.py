"""Custom Ray metrics of a lensfleet run (ray.util.metrics; exported by each node's metrics agent to Prometheus,
shown in the Ray dashboard's Grafana). JAX-free: the actor measures device memory itself and passes a number.

Every metric carries the tag `run` (the store's name, `run_name(store_url)`); actor metrics also carry `actor`
(the actor's name). Prometheus sees each name with Ray's `ray_` prefix; counters get `_total`, histograms get
`_bucket`, `_sum` and `_count`:

    defined as                           Prometheus name                              kind       recorded by
    lensfleet_datasets_done              ray_lensfleet_datasets_done_total            counter    driver
    lensfleet_datasets_failed            ray_lensfleet_datasets_failed_total          counter    driver
    lensfleet_datasets_invalid           ray_lensfleet_datasets_invalid_total         counter    driver
    lensfleet_blocks_retried             ray_lensfleet_blocks_retried_total           counter    driver
    lensfleet_blocks_in_flight           ray_lensfleet_blocks_in_flight               gauge      driver
    lensfleet_datasets_pending           ray_lensfleet_datasets_pending               gauge      driver
    lensfleet_block_seconds              ray_lensfleet_block_seconds_{bucket,sum,count} histogram driver
    lensfleet_likelihood_evaluations     ray_lensfleet_likelihood_evaluations_total   counter    actor
    lensfleet_evaluations_per_second     ray_lensfleet_evaluations_per_second         gauge      actor
    lensfleet_searches_running           ray_lensfleet_searches_running               gauge      actor
    lensfleet_searches_converged         ray_lensfleet_searches_converged_total       counter    actor
    lensfleet_compiles                   ray_lensfleet_compiles_total                 counter    actor
    lensfleet_compile_seconds            ray_lensfleet_compile_seconds_total          counter    actor
    lensfleet_device_memory_bytes        ray_lensfleet_device_memory_bytes            gauge      actor

- datasets_done / failed / invalid: datasets committed by this run with that status (a resumed run counts only
  what it commits itself; `lensfleet status` reads totals from the store). Throughput = rate(..._done_total).
- blocks_retried: blocks sent again after their actor died or their call failed.
- blocks_in_flight: blocks submitted to actors and not yet returned; datasets_pending: datasets not yet committed
  in the store (falls to 0 at the end of a clean run).
- block_seconds: wall-clock seconds from submitting a block to its commit, buckets BLOCK_SECONDS_BUCKETS (Ray
  2.60 aggregates observations at their bucket's midpoint, so `_sum` is approximate; use the buckets, e.g.
  histogram_quantile(0.9, sum by (le) (rate(ray_lensfleet_block_seconds_bucket[5m])))).
- likelihood_evaluations: figure-of-merit evaluations (datasets × parameter vectors) the actor computed, counted
  as they happen (at each progress poll of the driver, every few seconds, inside a block) and at the block's end;
  evaluations_per_second: the rate since the previous poll (at a block's end: over the whole block).
- searches_running: the searches of the actor's block running now (0 between blocks); searches_converged: searches
  that met their stopping criteria, counted as they finish.
- compiles / compile_seconds: XLA compilations the actor paid for (warm-up and new shape buckets) and their time;
  a persistent compilation cache hit still counts as a (short) compile.
- device_memory_bytes: memory in use by the actor — `bytes_in_use` of the JAX device on an accelerator, the
  process's resident set size on the CPU (tag `memory` says which: "device" or "rss").

Metrics are recorded in the process that calls them (driver or actor) after `ray.init` / inside an actor; the
values reach Prometheus at the next export (every few seconds). Ray drops a gauge series that is not set again
within a few export intervals, so each process keeps the last value of each of its gauges and sets it again every
GAUGE_REFRESH_S seconds from a daemon thread: a gauge lives as long as the process that set it, or until
`RunMetrics.close()` or `ray.shutdown()`.
"""

from __future__ import annotations

import os
import posixpath
import threading
import time
from collections.abc import Sequence

from ray.util.metrics import Counter, Gauge, Histogram

PREFIX = "lensfleet_"
BLOCK_SECONDS_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
RUN_TAGS = ("run",)
ACTOR_TAGS = ("run", "actor")

METRIC_NAMES = (
    "lensfleet_datasets_done",
    "lensfleet_datasets_failed",
    "lensfleet_datasets_invalid",
    "lensfleet_blocks_retried",
    "lensfleet_blocks_in_flight",
    "lensfleet_datasets_pending",
    "lensfleet_block_seconds",
    "lensfleet_likelihood_evaluations",
    "lensfleet_evaluations_per_second",
    "lensfleet_searches_running",
    "lensfleet_searches_converged",
    "lensfleet_compiles",
    "lensfleet_compile_seconds",
    "lensfleet_device_memory_bytes",
)

GAUGE_REFRESH_S = 5.0

_metrics: dict[str, Counter | Gauge | Histogram] = {}  # one object per metric name and process


def _counter(name: str, description: str, tags: Sequence[str]) -> Counter:
    if name not in _metrics:
        _metrics[name] = Counter(name, description, tag_keys=tuple(tags))
    return _metrics[name]


def _gauge(name: str, description: str, tags: Sequence[str]) -> Gauge:
    if name not in _metrics:
        _metrics[name] = Gauge(name, description, tag_keys=tuple(tags))
    return _metrics[name]


def _histogram(name: str, description: str, boundaries: Sequence[float], tags: Sequence[str]) -> Histogram:
    if name not in _metrics:
        _metrics[name] = Histogram(name, description, boundaries=list(boundaries), tag_keys=tuple(tags))
    return _metrics[name]


class _GaugeKeeper:
    """The last value of every (gauge, tags) this process set, set again every GAUGE_REFRESH_S seconds."""

    def __init__(self):
        self._values: dict[tuple[str, tuple], tuple[Gauge, dict, float]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def set(self, gauge: Gauge, value: float, tags: dict) -> None:
        gauge.set(value, tags=tags)
        with self._lock:
            self._values[(gauge.info["name"], tuple(sorted(tags.items())))] = (gauge, tags, value)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._refresh, name="lensfleet-gauges", daemon=True)
                self._thread.start()

    def forget(self, tags: dict) -> None:
        """Stop refreshing the gauges set with exactly these tags (they age out of Prometheus)."""
        key = tuple(sorted(tags.items()))
        with self._lock:
            for name_tags in [k for k in self._values if k[1] == key]:
                del self._values[name_tags]

    def _refresh(self) -> None:
        import ray

        while True:
            time.sleep(GAUGE_REFRESH_S)
            with self._lock:
                if not ray.is_initialized():  # ray.shutdown(): these values belonged to that cluster
                    self._values.clear()
                values = list(self._values.values())
            for gauge, tags, value in values:
                gauge.set(value, tags=tags)


_gauges = _GaugeKeeper()


def run_name(store_url: str) -> str:
    """The `run` tag of a store: its last path component ("results.zarr" for s3://bucket/survey/results.zarr)."""
    return posixpath.basename(str(store_url).rstrip("/")) or str(store_url)


class RunMetrics:
    """The driver's metrics for one run. `RunMetrics(run)` then, as blocks come back, `block_committed(...)`."""

    def __init__(self, run: str):
        self.tags = {"run": run}
        self._done = _counter("lensfleet_datasets_done", "Datasets committed DONE by this run", RUN_TAGS)
        self._failed = _counter("lensfleet_datasets_failed", "Datasets committed FAILED by this run", RUN_TAGS)
        self._invalid = _counter("lensfleet_datasets_invalid", "Datasets committed INVALID (bad input)", RUN_TAGS)
        self._retried = _counter("lensfleet_blocks_retried", "Blocks sent again after a lost actor or call", RUN_TAGS)
        self._in_flight = _gauge("lensfleet_blocks_in_flight", "Blocks submitted and not yet returned", RUN_TAGS)
        self._pending = _gauge("lensfleet_datasets_pending", "Datasets not yet committed in the store", RUN_TAGS)
        self._latency = _histogram(
            "lensfleet_block_seconds", "Seconds from submitting a block to its commit", BLOCK_SECONDS_BUCKETS,
            RUN_TAGS,
        )

    def block_committed(self, done: int, failed: int, invalid: int, seconds: float) -> None:
        """A block came back committed: its dataset counts by status and its latency (seconds)."""
        for counter, n in ((self._done, done), (self._failed, failed), (self._invalid, invalid)):
            if n > 0:
                counter.inc(n, tags=self.tags)
        self._latency.observe(float(seconds), tags=self.tags)

    def datasets_committed(self, done: int = 0, failed: int = 0, invalid: int = 0) -> None:
        """Datasets committed outside a block call (e.g. the driver marking a block FAILED after K attempts)."""
        for counter, n in ((self._done, done), (self._failed, failed), (self._invalid, invalid)):
            if n > 0:
                counter.inc(n, tags=self.tags)

    def block_retried(self, n: int = 1) -> None:
        """`n` blocks were sent again."""
        if n > 0:
            self._retried.inc(n, tags=self.tags)

    def in_flight(self, n: int) -> None:
        """Blocks in flight now."""
        _gauges.set(self._in_flight, int(n), self.tags)

    def pending(self, n: int) -> None:
        """Datasets not yet committed, now."""
        _gauges.set(self._pending, int(n), self.tags)

    def close(self) -> None:
        """The run is over: its gauges are no longer refreshed (counters and histograms stay)."""
        _gauges.forget(self.tags)


class ActorMetrics:
    """An actor's metrics: `ActorMetrics(run, actor)`, then per block `block_started`, `searching` (each progress
    poll) and `likelihood_evaluations` (its end); `compiled`, `device_memory`."""

    def __init__(self, run: str, actor: str):
        self.tags = {"run": run, "actor": actor}
        self._evaluations = _counter(
            "lensfleet_likelihood_evaluations", "Figure-of-merit evaluations computed", ACTOR_TAGS
        )
        self._rate = _gauge("lensfleet_evaluations_per_second", "Evaluations per second over the last block",
                            ACTOR_TAGS)
        self._running = _gauge("lensfleet_searches_running", "Searches running in the actor's block", ACTOR_TAGS)
        self._converged = _counter("lensfleet_searches_converged", "Searches that met their stopping criteria",
                                   ACTOR_TAGS)
        self._counted = (0, 0, time.monotonic())  # the block's evaluations and converged searches counted, when
        self._compiles = _counter("lensfleet_compiles", "XLA compilations", ACTOR_TAGS)
        self._compile_seconds = _counter("lensfleet_compile_seconds", "Seconds spent compiling", ACTOR_TAGS)
        self._memory = _gauge("lensfleet_device_memory_bytes", "Memory in use by the actor (bytes)",
                              (*ACTOR_TAGS, "memory"))

    def block_started(self) -> None:
        """A block starts: nothing of it counted yet."""
        self._counted = (0, 0, time.monotonic())

    def searching(self, running: int, converged: int, evaluations: int) -> None:
        """The block's searches now (a progress poll): running, converged and evaluations so far; counts what is
        new since the last poll and sets the rate over that interval."""
        counted, counted_converged, since = self._counted
        now = time.monotonic()
        if evaluations > counted:
            self._evaluations.inc(evaluations - counted, tags=self.tags)
        if converged > counted_converged:
            self._converged.inc(converged - counted_converged, tags=self.tags)
        if now > since:
            _gauges.set(self._rate, max(evaluations - counted, 0) / (now - since), self.tags)
        _gauges.set(self._running, int(running), self.tags)
        self._counted = (max(evaluations, counted), max(converged, counted_converged), now)

    def likelihood_evaluations(self, n: int, seconds: float, converged: int = 0) -> None:
        """The block is over: `n` evaluations took `seconds`, `converged` searches converged; counts what the
        polls did not and sets the block's rate."""
        counted, counted_converged, _ = self._counted
        if n > counted:
            self._evaluations.inc(n - counted, tags=self.tags)
        if converged > counted_converged:
            self._converged.inc(converged - counted_converged, tags=self.tags)
        if seconds > 0:
            _gauges.set(self._rate, n / seconds, self.tags)
        _gauges.set(self._running, 0, self.tags)
        self._counted = (0, 0, time.monotonic())

    def compiled(self, seconds: float, count: int = 1) -> None:
        """`count` compilations took `seconds` in all."""
        if count > 0:
            self._compiles.inc(count, tags=self.tags)
        if seconds > 0:
            self._compile_seconds.inc(float(seconds), tags=self.tags)

    def device_memory(self, bytes_in_use: int | None) -> None:
        """Device memory in use (from jax's `device.memory_stats()["bytes_in_use"]`); None on the CPU, where
        the process's resident set size is recorded instead."""
        if bytes_in_use is None:
            _gauges.set(self._memory, process_rss_bytes(), {**self.tags, "memory": "rss"})
        else:
            _gauges.set(self._memory, int(bytes_in_use), {**self.tags, "memory": "device"})


def process_rss_bytes() -> int:
    """This process's resident set size in bytes (Linux /proc; psutil elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil

        return int(psutil.Process().memory_info().rss)
