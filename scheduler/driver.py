"""The driver of `lensfleet run`: plan, create or resume the store, run an actor pool over the blocks, reconcile.

The driver never imports JAX and never touches an array of results: it moves block indices and small summaries.

    result = run(RunOptions(catalog="catalog.ecsv", config="fit.toml", store="results.zarr"))

Order of a run
 1. Read the config and the catalog (a bad one stops here: exit 2 from the CLI, nothing started).
 2. Take the store's driver lease (storage.lease; a second driver is refused) and keep it with a heartbeat
    thread (every ttl/3); a driver that loses its lease stops.
 3. Open the store to resume it (it refuses another config or catalog, saying what differs; `restart` deletes
    it), then plan (scheduler.plan) with the store's block size when resuming. A new store is created with
    every array at its final size (result_specs from the plan, plus `driver_run`) and the attributes
    `mode`, `shape_buckets`, `parameter_names` and `runs` (one record per driver run).
 4. Start Ray (local by default, `address` / RAY_ADDRESS to join a cluster; inside `ray job submit` the job's
    cluster) and the actor pool; run the blocks the store says are not committed (plus FAILED ones with
    `retry_failed`).
 5. Finish with a reconcile pass against the store, print a summary and release the lease.

Progress: scheduler.progress (a live bar on a terminal, a `lensfleet progress ...` line every few seconds in a
log, counts over the whole store). Metrics: workers.telemetry.RunMetrics (datasets committed by status, blocks in
flight and retried, datasets pending, block latency from submit to commit); the actors record theirs
(evaluations, compiles, device memory) with ActorMetrics.

Blocks: an explicit state machine (`BlockBook`), one state per block of this run:

    PENDING ──submit──► RUNNING ──summary──► DONE (committed by the actor, status last)
       ▲                   │
       └──── re-queue ─────┤  the actor died (RayActorError, a lost node, any Ray system error) or the call
                           │  raised; each counts as an attempt
                           └──► FAILED  after `max_attempts`: the driver commits the block itself,
                                        FAILED with the last error (INVALID where planning refused a dataset)

In flight: at most `in_flight_per_actor` blocks (default 2: one running, one queued so the actor never idles)
per *ready* actor; a block goes to the ready actor with the fewest in flight, and `ray.wait` returns them as
they finish, so fast actors get more blocks. Actors not ready yet (starting, compiling, or waiting for a node)
get nothing, so a replacement that cannot be placed holds no block hostage.

Actors: `lensfleet-fit-<i>` (replacements `lensfleet-fit-<i>-r<n>`), one per GPU when the cluster has GPUs,
else one per 2 CPUs (scheduler/pool.py, which also asks an autoscaling cluster for them with
--scale-up-timeout); each reserves its CPUs (and GPU share), and XLA uses that many threads.
An actor that dies takes its in-flight blocks with it: they are re-queued and the actor is replaced. A slot
whose actor fails to start `max_attempts` times in a row is retired; with no slot left the run stops.

Reconcile: when the queue is empty and nothing is in flight, the store's statuses are read back and every block
still PENDING there is queued again (Ray's retries are an optimisation; the store is the truth).

Stopping: SIGTERM (what `ray job stop` sends) or SIGINT stops submitting; blocks in flight get `grace_period`
seconds to commit; then the lease is released and the run ends with exit code 128 + signal, saying how to
resume (run the same command again; only uncommitted blocks run). A second SIGINT stops at once.

Exit codes (RunResult.exit_code): 0 every dataset committed (DONE, INVALID, or FAILED after max attempts);
1 datasets left uncommitted (no actor could start, the lease was lost); 128 + signal when stopped by a signal.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

import numpy as np

from workers.telemetry import RunMetrics, run_name
from scheduler.plan import Plan, make_plan
from scheduler.pool import PoolError, actor_bundle, cluster_pool, scale_up
from scheduler.progress import Progress
from storage.catalog import read_catalog
from storage.errors import StoreError
from storage.lease import DEFAULT_TTL, DriverLease
from storage.locations import is_url
from storage.schema import ArraySpec, StageShape, Status, result_specs
from storage.store import ResultStore
from workers.actor import FitActor
from workers.contract import RunSpec
from workers.config import FitConfig, load_config
from workers.model.description import parameter_names

ACTOR_PREFIX = "lensfleet-fit"
DRIVER_RUN = ArraySpec("driver_run", dtype="int32", fill=0)  # which driver run (1, 2, ...) committed a dataset
MODE = "evaluate"  # the store attribute `mode`: "evaluate", or "search" when fit.toml has a [search] section


@dataclass
class RunOptions:
    """What `lensfleet run` was asked to do. `None` means "choose": see scheduler/pool.py. `scale_up_timeout`
    > 0 (with `actors`) asks an autoscaling cluster for the pool's resources first and waits that long.

    `actor_faults` is a fault-injection hook for tests (FitActor's `faults`), not a command-line option.
    """

    catalog: str
    config: str
    store: str
    address: str | None = None
    block_size: int = 16
    actors: int | None = None
    gpus_per_actor: float | None = None
    cpus_per_actor: float | None = None
    max_attempts: int = 3
    restart: bool = False
    retry_failed: bool = False
    compile_cache: str | None = None
    grace_period: float = 30.0
    lease_ttl: float = DEFAULT_TTL
    in_flight_per_actor: int = 2
    progress_interval: float = 5.0
    storage_options: dict | None = None
    actor_faults: dict | None = None
    scale_up_timeout: float = 0.0


@dataclass
class RunResult:
    """How a run ended: exit code, the store's status counts at the end, blocks this run committed (of those it
    had to do), blocks sent again, actors lost, and why it ended the way it did."""

    exit_code: int
    counts: dict[str, int]
    blocks_committed: int = 0
    blocks_to_do: int = 0
    blocks_retried: int = 0
    actors_lost: int = 0
    seconds: float = 0.0
    message: str = ""
    actor_reports: list[dict] = field(default_factory=list)


class BlockState(Enum):
    PENDING = "pending"  # queued: waiting for an actor
    RUNNING = "running"  # submitted to an actor, not returned
    DONE = "done"  # the actor committed it
    FAILED = "failed"  # given up after max_attempts; the driver committed it FAILED


class BlockBook:
    """The state of every block this run must commit, its attempts and last error, and the queue of PENDING
    blocks (first in, first out; a re-queued block goes to the back)."""

    def __init__(self, blocks: list[int], max_attempts: int):
        self.max_attempts = max_attempts
        self.state = {k: BlockState.PENDING for k in blocks}
        self.attempts = {k: 0 for k in blocks}
        self.errors: dict[int, str] = {}
        self.queue = deque(blocks)

    def has_pending(self) -> bool:
        return bool(self.queue)

    def start(self) -> tuple[int, int]:
        """Take the next PENDING block: (k, its attempt number, from 1)."""
        k = self.queue.popleft()
        self.state[k] = BlockState.RUNNING
        self.attempts[k] += 1
        return k, self.attempts[k]

    def done(self, k: int) -> None:
        self.state[k] = BlockState.DONE

    def retry(self, k: int, error: str) -> bool:
        """A RUNNING block came back without a commit: re-queue it (True), or mark it FAILED after
        max_attempts (False: the caller commits it FAILED)."""
        self.errors[k] = error
        if self.attempts[k] >= self.max_attempts:
            self.state[k] = BlockState.FAILED
            return False
        self.state[k] = BlockState.PENDING
        self.queue.append(k)
        return True

    def requeue(self, blocks: list[int]) -> list[int]:
        """Reconcile: blocks the store still holds PENDING go back in the queue (those with attempts left)."""
        again = []
        for k in blocks:
            if self.state.get(k) in (BlockState.DONE, BlockState.FAILED, None):
                self.state.setdefault(k, BlockState.PENDING)
                self.attempts.setdefault(k, 0)
                if self.attempts[k] < self.max_attempts:
                    self.state[k] = BlockState.PENDING
                    self.queue.append(k)
                    again.append(k)
        return again

    def count(self, state: BlockState) -> int:
        return sum(s == state for s in self.state.values())


@dataclass
class _Slot:
    """One place in the actor pool: its current actor, whether it finished warming up, its blocks in flight."""

    index: int
    name: str
    handle: object
    ready_ref: object
    generation: int = 0
    ready: bool = False
    failures: int = 0  # consecutive actors of this slot that died before becoming ready
    retired: bool = False
    in_flight: set = field(default_factory=set)
    report: dict | None = None


class _Heartbeat(threading.Thread):
    """Renews the driver lease every `interval` seconds; remembers the error if the lease was lost."""

    def __init__(self, lease: DriverLease, interval: float):
        super().__init__(name="lensfleet-lease-heartbeat", daemon=True)
        self.lease = lease
        self.interval = interval
        self.lost: StoreError | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                self.lease.heartbeat()
            except StoreError as e:
                self.lost = e
                return
            except OSError as e:  # a transient file-system error: try again next beat
                print(f"lensfleet: lease heartbeat failed ({e}); retrying", file=sys.stderr)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


class _Stop:
    """SIGTERM / SIGINT handling: the first signal asks the run to stop; a second SIGINT interrupts at once."""

    def __init__(self):
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        """Handle SIGTERM and SIGINT here. Called again after ray.init, which sets a SIGTERM handler of its own
        (sys.exit); `restore` puts back what was there before the latest install."""
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach only the main thread; a driver run from another thread is stopped by Ray
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.signal(sig, self._handle)
            if previous != self._handle:
                self._previous[sig] = previous

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum
        print(
            f"\nlensfleet: {signal.Signals(signum).name} received: no new blocks; waiting for blocks in flight "
            "to commit", file=sys.stderr, flush=True,
        )


def run(options: RunOptions) -> RunResult:
    """Run (or resume) a survey; see the module docstring. Raises ConfigError, CatalogError or StoreError for
    input the run cannot start with."""
    started = time.time()
    if options.scale_up_timeout > 0 and not options.actors:
        raise RunError("--scale-up-timeout needs --actors N: the number of actors to ask the autoscaler for")
    config = load_config(options.config)
    catalog = read_catalog(options.catalog, options.storage_options)
    lease = DriverLease.acquire(options.store, ttl=options.lease_ttl, storage_options=options.storage_options)
    heartbeat = _Heartbeat(lease, options.lease_ttl / 3)
    heartbeat.start()
    stop = _Stop()
    stop.install()
    try:
        store, plan, driver_run = _open_or_create(options, config, catalog)
        todo = store.pending_blocks()
        if options.retry_failed:
            todo = sorted(set(todo) | set(store.blocks_with(Status.FAILED)))
        print(f"lensfleet: {plan.summary()}", flush=True)
        print(
            f"lensfleet: store {options.store} (driver run {driver_run}): {len(todo)} of {plan.n_blocks} blocks "
            "to run", flush=True,
        )
        if not todo:
            message = "nothing to do: every block is committed"
            return _finish(store, RunResult(0, {}, seconds=time.time() - started, message=message))
        if stop.signal is not None:
            name = signal.Signals(stop.signal).name
            message = f"stopped by {name} before any block ran. Run the same command again to resume"
            return _finish(store, RunResult(128 + stop.signal, {}, 0, len(todo), message=message))
        spec = RunSpec(
            store=_absolute(options.store),
            config=config,
            datasets=plan.datasets,
            buckets=plan.buckets,
            block_size=plan.block_size,
            driver_run=driver_run,
            compile_cache=_absolute(options.compile_cache) if options.compile_cache else None,
            storage_options=options.storage_options,
        )
        with _RayContext(options.address):
            stop.install()
            runner = _Runner(options, spec, plan, store, todo, heartbeat, stop)
            result = runner.run()
        result.seconds = time.time() - started
        return _finish(store, result)
    finally:
        stop.restore()
        heartbeat.stop()
        lease.release()


class RunError(Exception):
    """The run cannot start as asked (for example more GPUs per actor than the cluster has)."""


def _absolute(location: str) -> str:
    """Local paths made absolute (actors may run in another working directory); URLs as given."""
    return location if is_url(location) else os.path.abspath(location)


def store_config(config: FitConfig) -> dict:
    """The config recorded in (and checked against) the store: fit.toml's content."""
    return config.to_dict()


def _open_or_create(options: RunOptions, config: FitConfig, catalog) -> tuple[ResultStore, Plan, int]:
    """Resume the store or create it; the plan in the store's order; this run's number (1, 2, ...)."""
    store = ResultStore.open(
        options.store, store_config(config), catalog.hash, restart=options.restart,
        storage_options=options.storage_options,
    )
    block_size = store.block_size if store is not None else options.block_size
    if store is not None and block_size != options.block_size:
        print(
            f"lensfleet: resuming with the store's block size {block_size} (asked for {options.block_size})",
            file=sys.stderr,
        )
    plan = make_plan(catalog, config, block_size, options.storage_options)
    if store is None:
        store = _create_store(options, config, catalog, plan)
    else:
        plan = plan.in_store_order(store.read_array("id").tolist())
        plan = plan.with_stored_buckets(store.attrs.get("shape_buckets", []))
        if [b.to_dict() for b in plan.buckets] != store.attrs.get("shape_buckets"):
            store.group.attrs["shape_buckets"] = plan.bucket_attrs()
    runs = list(store.group.attrs.get("runs", []))
    runs.append({
        "run": len(runs) + 1,
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "resumed": bool(runs),
    })
    store.group.attrs["runs"] = runs
    return store, plan, len(runs)


def _create_store(options: RunOptions, config: FitConfig, catalog, plan: Plan) -> ResultStore:
    model = config.model
    search = config.search
    stages = tuple(
        StageShape(st.group, len(st.parameter_names), st.model.n_linear, st.model.pixelized,
                   st.search.max_samples if st.search else None) for st in config.stages
    )
    specs = [
        *result_specs(plan.max_image_shape, len(plan.parameter_names), plan.n_evaluations, model.n_linear,
                      model.pixelized, max_samples=search.max_samples if search else None, stages=stages),
        DRIVER_RUN,
    ]
    attrs = {
        "mode": MODE if search is None else "search",
        "catalog": _absolute(catalog.path),
        "shape_buckets": plan.bucket_attrs(),
        "parameter_names": list(plan.parameter_names),
        "runs": [],
    }
    if config.stages:  # every pipeline stage: its store group ("" for the root) and parameter names
        attrs["stages"] = [{"name": st.name, "group": st.group, "parameter_names": list(st.parameter_names),
                            "searched": st.search is not None} for st in config.pipeline]
    store = ResultStore.create(
        options.store, plan.ids, plan.block_size, specs, store_config(config), catalog.hash, attrs,
        options.storage_options,
    )
    # the planned shape bucket and image shape of every dataset, readable before its block commits (no actor
    # runs yet; each actor writes the same values again when it commits its block)
    store.array("shape_bucket")[:] = np.array([d.bucket for d in plan.datasets], np.int32)
    store.array("image_shape")[:] = np.array([d.image_shape for d in plan.datasets], np.int32).reshape(-1, 2)
    return store


def _finish(store: ResultStore, result: RunResult) -> RunResult:
    counts = store.status_counts()
    result.counts = {s.name.lower(): n for s, n in counts.items()}
    print(_summary(store, result), flush=True)
    return result


def _summary(store: ResultStore, result: RunResult) -> str:
    c = result.counts
    lines = [
        f"lensfleet: {store.n_datasets} datasets: {c['done']} done, {c['failed']} failed, {c['invalid']} invalid, "
        f"{c['pending']} pending; {result.blocks_committed} of {result.blocks_to_do} blocks committed by this run "
        f"in {result.seconds:.1f} s",
    ]
    if result.message:
        lines.append(f"lensfleet: {result.message}")
    lines.append(f"lensfleet: results in {store.url} (lensfleet status {store.url})")
    return "\n".join(lines)


class _RayContext:
    """ray.init unless Ray is already initialised in this process (then the caller's cluster is used as is);
    ray.shutdown on exit only if we started it. Address: the given one, else RAY_ADDRESS (set inside `ray job
    submit`), else a new local cluster ("local": an existing `ray start` cluster is joined only when asked,
    with --address auto)."""

    def __init__(self, address: str | None):
        self.address = address
        self.owned = False

    def __enter__(self):
        import ray

        if not ray.is_initialized():
            address = self.address or os.environ.get("RAY_ADDRESS") or "local"
            ray.init(address=address, log_to_driver=True)
            self.owned = True
        return self

    def __exit__(self, *exc) -> None:
        import ray

        if self.owned:
            ray.shutdown()


class _Runner:
    """The ray.wait loop over one run's blocks (see the module docstring)."""

    def __init__(self, options, spec: RunSpec, plan: Plan, store: ResultStore, todo, heartbeat, stop):
        import ray

        self.ray = ray
        self.options = options
        self.spec = spec
        self.plan = plan
        self.store = store
        self.book = BlockBook(list(todo), options.max_attempts)
        self.heartbeat = heartbeat
        self.stop = stop
        self.in_flight: dict = {}  # ObjectRef -> (k, slot index, attempt, submitted at)
        self.slots: list[_Slot] = []
        self.committed = 0
        self.retried = 0
        self.actors_lost = 0
        self.metrics = _run_metrics(options.store)
        self.remote_actor = ray.remote(FitActor)
        self.totals = _committed_outside(store, todo)  # store-wide counts, kept up to date as blocks commit
        self.progress = Progress(
            total=store.n_datasets, already_done=sum(self.totals.values()), interval_s=options.progress_interval,
        )

    # -- the pool ------------------------------------------------------------------------------------------------

    def _start_actor(self, index: int, generation: int) -> _Slot:
        name = f"{ACTOR_PREFIX}-{index}" if generation == 0 else f"{ACTOR_PREFIX}-{index}-r{generation}"
        handle = self.remote_actor.options(
            name=name, num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0, max_task_retries=0,
        ).remote(self.spec_ref, self.cpus, self.gpus, index, name, self.options.actor_faults)
        ready_ref = handle.ready.options(name=f"{name}.ready").remote()
        return _Slot(index, name, handle, ready_ref, generation)

    def _replace(self, slot: _Slot, reason: str) -> None:
        """The slot's actor died (or is unusable): kill it for good and start another in its place."""
        try:
            self.ray.kill(slot.handle, no_restart=True)
        except Exception:  # already gone
            pass
        failures = slot.failures + (0 if slot.ready else 1)
        self.actors_lost += 1
        print(f"lensfleet: actor {slot.name} lost ({reason}); starting a replacement", file=sys.stderr, flush=True)
        for ref in list(slot.in_flight):
            self._block_lost(ref, f"actor {slot.name} died: {reason}")
        new = self._start_actor(slot.index, slot.generation + 1)
        new.failures = failures
        if failures >= self.options.max_attempts:
            new.retired = True
            self.ray.kill(new.handle, no_restart=True)
            print(f"lensfleet: slot {slot.index} retired: {failures} actors died before they were ready",
                  file=sys.stderr, flush=True)
        self.slots[slot.index] = new

    # -- blocks --------------------------------------------------------------------------------------------------

    def _submit(self) -> None:
        while self.book.has_pending():
            ready = [s for s in self.slots if s.ready and not s.retired
                     and len(s.in_flight) < self.options.in_flight_per_actor]
            if not ready:
                return
            slot = min(ready, key=lambda s: len(s.in_flight))
            k, attempt = self.book.start()
            ref = slot.handle.fit_block.options(name=f"fit_block[{k}]").remote(k, attempt)
            slot.in_flight.add(ref)
            self.in_flight[ref] = (k, slot.index, attempt, time.time())
        self._gauges()

    def _block_lost(self, ref, error: str) -> None:
        k, index, attempt, _ = self.in_flight.pop(ref)
        self.slots[index].in_flight.discard(ref)
        if self.book.retry(k, error):
            self.retried += 1
            if self.metrics:
                self.metrics.block_retried()
        else:
            self._give_up(k)

    def _give_up(self, k: int) -> None:
        """Commit block k FAILED after max_attempts (datasets planning refused stay INVALID with their reason)."""
        rows = self.plan.datasets[self.plan.block(k)]
        error = f"block {k} failed {self.book.attempts[k]} times; last error: {self.book.errors[k]}"
        status = np.array([Status.INVALID if d.error else Status.FAILED for d in rows], np.int8)
        errors = [d.error or error for d in rows]
        results = {
            "shape_bucket": np.array([d.bucket for d in rows], np.int32),
            "image_shape": np.array([d.image_shape for d in rows], np.int32),
            "driver_run": np.full(len(rows), self.spec.driver_run, np.int32),
        }
        n = len(rows)
        self.store.write_block(k, results, status, np.full(n, self.book.attempts[k]), errors, np.full(n, np.nan))
        print(f"lensfleet: {error}", file=sys.stderr, flush=True)
        self.totals["failed"] += int((status == Status.FAILED).sum())
        self.totals["invalid"] += int((status == Status.INVALID).sum())
        if self.metrics:
            self.metrics.datasets_committed(failed=int((status == Status.FAILED).sum()),
                                            invalid=int((status == Status.INVALID).sum()))

    def _collect(self, ref) -> None:
        """A block call returned: a commit, a dead actor or an error."""
        from ray.exceptions import RayActorError, RayError, RayTaskError

        k, index, attempt, submitted = self.in_flight[ref]
        slot = self.slots[index]
        try:
            summary = self.ray.get(ref)
        except RayActorError as e:
            self._replace(slot, _first_line(e))
            return
        except RayTaskError as e:
            self._block_lost(ref, _first_line(e.cause if getattr(e, "cause", None) else e))
            return
        except RayError as e:  # a system failure (worker crashed, node died, object lost): the actor is lost
            self._replace(slot, f"{type(e).__name__}: {_first_line(e)}")
            return
        del self.in_flight[ref]
        slot.in_flight.discard(ref)
        slot.failures = 0
        self.book.done(k)
        self.committed += 1
        for key in self.totals:
            self.totals[key] += summary[key]
        if self.metrics:
            self.metrics.block_committed(summary["done"], summary["failed"], summary["invalid"],
                                         time.time() - submitted)

    def _collect_ready(self, slot: _Slot) -> None:
        from ray.exceptions import RayError

        try:
            slot.report = self.ray.get(slot.ready_ref)
        except RayError as e:
            self._replace(slot, f"failed to start: {_first_line(e)}")
            return
        slot.ready = True
        r = slot.report
        print(
            f"lensfleet: actor {slot.name} ready on {r['node']} ({r['device']}, CPUs {r['runtime'].get('cpus')}): "
            f"{r['compiles']} compiles in {r['compile_seconds']:.1f} s ({r['cache_hits']} from the cache), "
            f"started in {r['start_seconds']:.1f} s", flush=True,
        )

    def _gauges(self) -> None:
        if self.metrics:
            self.metrics.in_flight(len(self.in_flight))
            self.metrics.pending(self.store.n_datasets - sum(self.totals.values()))

    # -- the loop ------------------------------------------------------------------------------------------------

    def run(self) -> RunResult:
        ray = self.ray
        options = self.options
        try:
            if options.scale_up_timeout > 0:
                bundle = actor_bundle(options.gpus_per_actor, options.cpus_per_actor)
                scale_up([bundle] * options.actors, options.scale_up_timeout)
            self.actors, self.cpus, self.gpus = cluster_pool(options.actors, options.gpus_per_actor,
                                                             options.cpus_per_actor)
        except PoolError as e:
            raise RunError(str(e)) from None
        self.spec_ref = ray.put(self.spec)
        print(
            f"lensfleet: {self.actors} actors × ({self.cpus:g} CPU, {self.gpus:g} GPU), block size "
            f"{self.spec.block_size}, up to {self.options.in_flight_per_actor} blocks in flight per actor",
            flush=True,
        )
        self.slots = [self._start_actor(i, 0) for i in range(self.actors)]
        to_do = len(self.book.state)
        message = ""
        deadline = None
        reconciled = 0
        try:
            while True:
                if self.heartbeat.lost is not None:
                    message = f"stopped: {self.heartbeat.lost}"
                    break
                if self.stop.signal is not None and deadline is None:
                    deadline = time.time() + self.options.grace_period
                if deadline is None:
                    self._submit()
                live = [s for s in self.slots if not s.retired]
                if not live:
                    message = "stopped: no actor could start (see the errors above)"
                    break
                if not self.in_flight and (deadline is not None or not self.book.has_pending()):
                    if deadline is not None:
                        break
                    pending = self.store.pending_blocks()  # reconcile: the store is the truth
                    again = self.book.requeue(pending)
                    if not again:
                        break
                    reconciled += len(again)
                    print(f"lensfleet: reconcile: blocks {again} are not committed in the store; running them again",
                          flush=True)
                    continue
                if deadline is not None and time.time() > deadline:
                    message = f"grace period of {self.options.grace_period:g} s over"
                    break
                waiting = list(self.in_flight) + [s.ready_ref for s in live if not s.ready]
                if not waiting:
                    time.sleep(0.5)
                    continue
                done, _ = ray.wait(waiting, num_returns=1, timeout=0.5)
                if done:
                    rest = [r for r in waiting if r not in done]
                    more, _ = ray.wait(rest, num_returns=len(rest), timeout=0) if rest else ([], [])
                    done = done + more
                by_ready = {s.ready_ref: s for s in live if not s.ready}
                for ref in done:
                    if ref in by_ready:
                        self._collect_ready(by_ready[ref])
                    elif ref in self.in_flight:
                        self._collect(ref)
                self._gauges()
                self.progress.update(**self.totals, in_flight=len(self.in_flight))
        finally:
            self.progress.update(**self.totals, in_flight=len(self.in_flight))
            self.progress.close()
            for slot in self.slots:
                try:
                    ray.kill(slot.handle, no_restart=True)
                except Exception:
                    pass
        reports = [s.report for s in self.slots if s.report]
        pending = self.store.pending_blocks()
        if self.stop.signal is not None:
            name = signal.Signals(self.stop.signal).name
            message = (
                f"stopped by {name}: {len(pending)} blocks not committed ({len(self.in_flight)} were still running"
                f"{'; ' + message if message else ''}). Run the same command again to resume"
            )
            code = 128 + self.stop.signal
        elif pending:
            message = f"{message}; {len(pending)} blocks not committed. Run the same command again to resume"
            code = 1
        else:
            code = 0
            if reconciled:
                message = f"reconcile ran {reconciled} blocks again"
        return RunResult(
            code, {}, self.committed, to_do, self.retried, self.actors_lost, message=message.strip("; "),
            actor_reports=reports,
        )


def _committed_outside(store: ResultStore, blocks) -> dict[str, int]:
    """Datasets committed DONE / FAILED / INVALID in the store outside `blocks` (the blocks this run will commit)."""
    status = store.read_array("status").copy()
    for k in blocks:
        status[store.block_slice(k)] = Status.PENDING
    return {name: int((status == s).sum()) for name, s in
            (("done", Status.DONE), ("failed", Status.FAILED), ("invalid", Status.INVALID))}


def _run_metrics(store: str) -> RunMetrics:
    return RunMetrics(run_name(store))


def _first_line(e: BaseException) -> str:
    """One line for an error: its first, or where it carries a traceback (an actor that raised in its creation
    task) the exception line that ends it, which says what went wrong."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    if not lines:
        return type(e).__name__
    if any(line.startswith("File ") for line in lines) and re.match(r"[\w.]+(Error|Exception)\b", lines[-1]):
        return lines[-1]
    return lines[0]
