"""The driver of `lensfleet run`: plan, create or resume the store, run an actor pool over the blocks, reconcile.

The driver never imports JAX and never touches an array of results: it moves block indices and small summaries.

    result = run(RunOptions(catalog="catalog.ecsv", config="fit.toml", store="results.zarr"))

Order of a run
 1. Read the config and the catalog (a bad one stops here: exit 2 from the CLI, nothing started).
 2. Take the store's driver lease and keep it with a heartbeat (scheduler.lifecycle).
 3. Resume the store or create it, with the plan in its order (scheduler.run_store, scheduler.plan).
 4. Start Ray (scheduler.lifecycle) and the actor pool (scheduler.pool); run the blocks the store says are not
    committed (plus FAILED ones with `retry_failed`), tracked by a BlockBook (scheduler.blocks), counted and
    shown by a Tally (scheduler.tally).
 5. Finish with a reconcile pass against the store, print a summary and release the lease.

The loop (`_Loop`): at most `in_flight_per_actor` blocks per ready actor; `ray.wait` returns blocks and warm-up
calls as they finish, so fast actors get more blocks. A block call returns a commit (DONE), a dead actor
(RayActorError, or any Ray system error: the actor is replaced and its blocks re-queued) or an error raised by the
call (re-queued); each counts as an attempt, and after `max_attempts` the driver commits the block FAILED itself.
With no slot left the run stops. Reconcile: when the queue is empty and nothing is in flight, the store's
statuses are read back and every block still PENDING there is queued again (the store is the truth).

Exit codes (RunResult.exit_code): 0 every dataset committed (DONE, INVALID, or FAILED after max attempts);
1 datasets left uncommitted (no actor could start, the lease was lost); 128 + signal when stopped by a signal.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import NamedTuple

from scheduler.blocks import BlockBook
from scheduler.lifecycle import Heartbeat, RayContext, StopSignals, ray_job_ended
from scheduler.plan import Plan
from scheduler.pool import ActorPool, PoolError, Slot, cluster_pool, fit_actor_starter, kill_actor
from scheduler.run_store import blocks_to_run, commit_failed, open_store, repair, run_spec
from scheduler.tally import Tally
from storage.catalog import read_catalog
from storage.errors import Fault, classify
from storage.lease import DEFAULT_TTL, DriverLease
from storage.store import ResultStore
from workers.config import load_config
from workers.contract import RunSpec


@dataclass
class RunOptions:
    """What `lensfleet run` was asked to do (the CLI's defaults are these). `None` means "choose": see
    scheduler/pool.py. `scale_up_timeout` > 0 (with `actors`) asks an autoscaling cluster for the pool's resources
    first and waits that long.

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


class RunError(Exception):
    """The run cannot start as asked (for example more GPUs per actor than the cluster has)."""


def run(options: RunOptions) -> RunResult:
    """Run (or resume) a survey; see the module docstring. Raises ConfigError, CatalogError or StoreError for
    input the run cannot start with."""
    started = time.time()
    if options.scale_up_timeout > 0 and not options.actors:
        raise RunError("--scale-up-timeout needs --actors N: the number of actors to ask the autoscaler for")
    config = load_config(options.config)
    catalog = read_catalog(options.catalog, options.storage_options)
    lease = DriverLease.acquire(
        options.store, ttl=options.lease_ttl, storage_options=options.storage_options, max_wait=2 * options.lease_ttl,
        on_wait=lambda line: print(line, file=sys.stderr, flush=True), labels=_job_labels(),
        holder_gone=ray_job_ended,
    )
    heartbeat = Heartbeat(lease, options.lease_ttl / 3)
    heartbeat.start()
    stop = StopSignals()
    stop.install()
    try:
        store, plan, driver_run = open_store(options.store, config, catalog, options.block_size, options.restart,
                                             options.storage_options)
        for line in repair(store, plan, lease.token) if driver_run > 1 else []:
            print(f"lensfleet: {line}", flush=True)
        todo = blocks_to_run(store, options.retry_failed)
        print(f"lensfleet: {plan.summary()}", flush=True)
        print(
            f"lensfleet: store {options.store} (driver run {driver_run}): {len(todo)} of {plan.n_blocks} blocks "
            "to run", flush=True,
        )
        if not todo:
            message = "nothing to do: every block is committed"
            return _finish(store, RunResult(0, {}, seconds=time.time() - started, message=message))
        if stop.signal is not None:
            return _stopped(store, stop, len(todo), "before any block ran")
        spec = run_spec(store, plan, config, driver_run, options.compile_cache, lease.token)
        with RayContext(options.address, stop):
            if stop.signal is not None:
                return _stopped(store, stop, len(todo), "while Ray started")
            result = _Loop(options, spec, plan, store, todo, heartbeat, stop).run()
        result.seconds = time.time() - started
        return _finish(store, result)
    finally:
        stop.restore()
        heartbeat.stop()
        lease.release()


def _stopped(store: ResultStore, stop: StopSignals, blocks_to_do: int, when: str) -> RunResult:
    """The result of a run stopped by a signal before any block was submitted: exit 128 + signal, how to resume."""
    message = f"stopped by {stop.name} {when}. Run the same command again to resume"
    return _finish(store, RunResult(128 + stop.signal, {}, 0, blocks_to_do, message=message))


def _finish(store: ResultStore, result: RunResult) -> RunResult:
    """The store's counts into the result, and a summary printed."""
    result.counts = {s.name.lower(): n for s, n in store.status_counts().items()}
    c = result.counts
    lines = [
        f"lensfleet: {store.n_datasets} datasets: {c['done']} done, {c['failed']} failed, {c['invalid']} invalid, "
        f"{c['pending']} pending; {result.blocks_committed} of {result.blocks_to_do} blocks committed by this run "
        f"in {result.seconds:.1f} s",
    ]
    if result.message:
        lines.append(f"lensfleet: {result.message}")
    lines.append(f"lensfleet: results in {store.url} (lensfleet status {store.url})")
    print("\n".join(lines), flush=True)
    return result


class _Flight(NamedTuple):
    """A block call in flight: the block, the slot whose actor runs it, when it was submitted."""

    k: int
    slot: Slot
    submitted: float


class _Loop:
    """The ray.wait loop over one run's blocks (see the module docstring); made inside the Ray context, it sizes
    the pool and starts its actors."""

    def __init__(self, options: RunOptions, spec: RunSpec, plan: Plan, store: ResultStore, todo: list[int],
                 heartbeat: Heartbeat, stop: StopSignals):
        import ray

        self.ray = ray
        self.options = options
        self.spec = spec
        self.plan = plan
        self.store = store
        self.book = BlockBook(list(todo), options.max_attempts)
        self.heartbeat = heartbeat
        self.stop = stop
        self.in_flight: dict[object, _Flight] = {}  # by the block call's ObjectRef
        self.committed = 0
        self.retried = 0
        self.halted: str | None = None  # an environment fault: submit no more, let in-flight blocks come back
        self.tally = Tally(store, todo, options.progress_interval,
                           sum(stage.search is not None for stage in spec.config.pipeline))
        self.polls: dict[object, Slot] = {}  # progress calls out, by ref
        self.polled = 0.0  # when they were last sent
        try:
            actors, cpus, gpus = cluster_pool(options.actors, options.gpus_per_actor, options.cpus_per_actor,
                                              options.scale_up_timeout)
        except PoolError as e:
            raise RunError(str(e)) from None
        print(
            f"lensfleet: {actors} actors × ({cpus:g} CPU, {gpus:g} GPU), block size {spec.block_size}, up to "
            f"{options.in_flight_per_actor} blocks in flight per actor", flush=True,
        )
        start = fit_actor_starter(ray.put(spec), cpus, gpus, options.actor_faults)
        self.pool = ActorPool(actors, start, kill_actor, options.max_attempts, options.in_flight_per_actor)

    # -- blocks --------------------------------------------------------------------------------------------------

    def _submit(self) -> None:
        while self.book.pending() and self.halted is None:
            slot = self.pool.pick(self.book.pending())
            if slot is None:
                break
            k, attempt = self.book.start()
            ref = slot.handle.fit_block.options(name=f"fit_block[{k}]").remote(k, attempt)
            slot.in_flight.add(ref)
            self.in_flight[ref] = _Flight(k, slot, time.time())
        self.tally.gauges(len(self.in_flight))

    def _replace(self, slot: Slot, reason: str) -> None:
        """The slot's actor is lost: replace it; its blocks in flight come back without a commit."""
        for ref in self.pool.replace(slot, reason):
            self._block_lost(ref, f"actor {slot.name} died: {reason}")

    def _block_lost(self, ref, error: str) -> None:
        flight = self.in_flight.pop(ref)
        flight.slot.in_flight.discard(ref)
        if self.book.retry(flight.k, error):
            self.retried += 1
            self.tally.block_retried()
            return
        k = flight.k
        error = f"block {k} failed {self.book.attempts[k]} times; last error: {self.book.errors[k]}"
        try:
            counts = commit_failed(self.store, self.plan, k, self.book.attempts[k], error, self.spec.driver_run,
                                   self.spec.fence)
        except Exception as e:  # e.g. a full disk: the block stays PENDING, for a resume
            if classify(e) is not Fault.ENVIRONMENT:
                raise
            self.halted = f"block {k} could not be committed FAILED ({_first_line(e)})"
            return
        print(f"lensfleet: {error}", file=sys.stderr, flush=True)
        self.tally.gave_up(**counts)

    def _collect(self, ref) -> None:
        """A block call returned: a commit, a dead actor or an error."""
        from ray.exceptions import RayActorError, RayError, RayTaskError

        flight = self.in_flight[ref]
        try:
            summary = self.ray.get(ref)
        except RayActorError as e:
            self._replace(flight.slot, _first_line(e))
            return
        except RayTaskError as e:
            cause = e.cause if getattr(e, "cause", None) else e
            if classify(cause) is Fault.ENVIRONMENT:  # not the block's fault: it stays PENDING, no attempt spent
                del self.in_flight[ref]
                flight.slot.in_flight.discard(ref)
                self.halted = f"block {flight.k}: {_first_line(cause)}"
                return
            self._block_lost(ref, _first_line(cause))
            return
        except RayError as e:  # a system failure (worker crashed, node died, object lost): the actor is lost
            self._replace(flight.slot, f"{type(e).__name__}: {_first_line(e)}")
            return
        del self.in_flight[ref]
        self.pool.committed(flight.slot, ref)
        self.book.done(flight.k)
        self.committed += 1
        self.tally.block_committed(summary, time.time() - flight.submitted)

    def _collect_ready(self, slot: Slot) -> None:
        from ray.exceptions import RayError

        try:
            report = self.ray.get(slot.ready_ref)
        except RayError as e:
            self._replace(slot, f"failed to start: {_first_line(e)}")
            return
        self.pool.ready(slot, report)

    def _poll_progress(self) -> None:
        """Every progress interval, ask each busy actor how its block's searches are doing (FitActor.progress, in
        its own concurrency group: answered while the block runs); hand the answers that are back to the tally."""
        from ray.exceptions import RayError

        from workers.actor import PROGRESS_GROUP

        if self.tally.searches is None:
            return
        if self.polls:
            back, _ = self.ray.wait(list(self.polls), num_returns=len(self.polls), timeout=0)
            in_flight = {f.k for f in self.in_flight.values()}
            for ref in back:
                del self.polls[ref]
                try:
                    self.tally.searching(self.ray.get(ref), in_flight)
                except RayError:  # the actor is gone: its block call says so
                    pass
        if time.monotonic() - self.polled < self.options.progress_interval:
            return
        self.polled = time.monotonic()
        asked = set(map(id, self.polls.values()))
        for slot in self.pool.live():
            if slot.ready and slot.in_flight and id(slot) not in asked:
                call = slot.handle.progress.options(concurrency_group=PROGRESS_GROUP, name=f"{slot.name}.progress")
                self.polls[call.remote()] = slot

    # -- the loop ------------------------------------------------------------------------------------------------

    def run(self) -> RunResult:
        ray = self.ray
        options = self.options
        to_do = len(self.book.state)
        message = ""
        deadline = None
        reconciled = 0
        try:
            while True:
                if self.heartbeat.lost is not None:
                    message = f"stopped: {self.heartbeat.lost}"
                    break
                if self.halted is not None and not self.in_flight:
                    message = (f"stopped: {self.halted}; the environment, not the data, is at fault (a full disk, "
                               "a read-only or unreachable store): fix it and run the same command again")
                    break
                if self.stop.signal is not None and deadline is None:
                    deadline = time.time() + options.grace_period
                if deadline is None:
                    self._submit()
                if not self.pool.live():
                    message = "stopped: no actor could start (see the errors above)"
                    break
                if not self.in_flight and (deadline is not None or not self.book.pending()):
                    if deadline is not None:
                        break
                    again = self.book.requeue(self.store.pending_blocks())  # reconcile: the store is the truth
                    if not again:
                        break
                    reconciled += len(again)
                    print(f"lensfleet: reconcile: blocks {again} are not committed in the store; running them again",
                          flush=True)
                    continue
                if deadline is not None and time.time() > deadline:
                    message = f"grace period of {options.grace_period:g} s over"
                    break
                starting = self.pool.starting()
                waiting = list(self.in_flight) + list(starting)
                if not waiting:
                    time.sleep(0.5)
                    continue
                done, _ = ray.wait(waiting, num_returns=1, timeout=0.5)
                if done:
                    rest = [r for r in waiting if r not in done]
                    more, _ = ray.wait(rest, num_returns=len(rest), timeout=0) if rest else ([], [])
                    done = done + more
                for ref in done:
                    if ref in starting:
                        self._collect_ready(starting[ref])
                    elif ref in self.in_flight:
                        self._collect(ref)
                self._poll_progress()
                self.tally.show(len(self.in_flight))
        finally:
            self.tally.close(len(self.in_flight))
            self.pool.close()
        pending = self.store.pending_blocks()
        if self.stop.signal is not None:
            message = (
                f"stopped by {self.stop.name}: {len(pending)} blocks not committed ({len(self.in_flight)} were still "
                f"running{'; ' + message if message else ''}). Run the same command again to resume"
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
            code, {}, self.committed, to_do, self.retried, self.pool.lost, message=message.strip("; "),
            actor_reports=self.pool.reports(),
        )


def _first_line(e: BaseException) -> str:
    """One line for an error: its first, or where it carries a traceback (an actor that raised in its creation
    task) the exception line that ends it, which says what went wrong."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    if not lines:
        return type(e).__name__
    if any(line.startswith("File ") for line in lines) and re.match(r"[\w.]+(Error|Exception)\b", lines[-1]):
        return lines[-1]
    return lines[0]


def _job_labels() -> dict[str, str]:
    """The Ray job this driver runs in (inside `ray job submit`), recorded in the store's lease."""
    try:
        return {"ray_job": str(json.loads(os.environ["RAY_JOB_CONFIG_JSON_ENV_VAR"])["metadata"]["job_submission_id"])}
    except (KeyError, TypeError, ValueError):
        return {}
