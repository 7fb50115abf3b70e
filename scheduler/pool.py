"""The actor pool of a run: how many FitActors, with what resources, on the Ray cluster the driver joined (asking
an autoscaling cluster for the nodes first), and the slots that hold them.

Sizing (`choose_pool`, from the cluster's resources now): GPUs in the cluster: one actor per GPU (1 CPU each),
or 1/g actors per GPU for a fractional `gpus_per_actor` g. No GPUs: one actor per CPUS_PER_CPU_ACTOR CPUs
(capped at the largest node's CPUs). `actors`, `gpus_per_actor`, `cpus_per_actor` override each choice; asking
for more GPUs per actor than the cluster has, or more CPUs than its largest node, is a PoolError. Each actor
reserves its CPUs (and GPU share), and XLA uses that many threads.

Scaling up (`scale_up`, `lensfleet run --actors N --scale-up-timeout S`): a cluster whose GPU workers scale from
zero has no GPU when the run starts. The driver asks the autoscaler for N actors' resources
(`ray.autoscaler.sdk.request_resources`, one bundle per actor), waits until the cluster has them in total, then
withdraws the request (the actors then hold the nodes; once they are gone the nodes may scale down). Ray's
autoscaler also starts nodes for actors it cannot place, but only after they are created, and the pool is sized
before that: hence the explicit request. After S seconds without the resources it is a PoolError.

Slots (`ActorPool`): slot i holds actor `lensfleet-fit-<i>` (replacements `lensfleet-fit-<i>-r<n>`). An actor is
ready once its warm-up call returns; only ready actors get blocks, at most `in_flight_per_actor` each (one running,
one queued so the actor never idles), the next block to the one with the fewest, so a replacement that cannot be
placed holds no block hostage; a block queues behind another only while a pending block is left for every live
actor (`pick`), so the last blocks of a run go to actors as they free up. An actor that dies takes its in-flight
blocks with it (the driver re-queues them) and is replaced; a slot whose actors die before they are ready
`max_failures` times in a row is retired. The pool starts and kills actors through the functions it is given
(`fit_actor_starter`, `kill_actor` on Ray), so its book-keeping is plain Python.

JAX-free: the driver imports it.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

ACTOR_PREFIX = "lensfleet-fit"
CPUS_PER_CPU_ACTOR = 2  # a CPU actor reserves 2 CPUs: XLA's threads stay busy, and the driver keeps a core
SCALE_UP_POLL_S = 5.0


class PoolError(Exception):
    """The cluster cannot hold the pool asked for."""


def choose_pool(
    total_cpus: float,
    total_gpus: float,
    node_cpus: float,
    actors: int | None = None,
    gpus_per_actor: float | None = None,
    cpus_per_actor: float | None = None,
) -> tuple[int, float, float]:
    """(actors, CPUs per actor, GPUs per actor) for a cluster with these resources (module docstring)."""
    gpus = gpus_per_actor if gpus_per_actor is not None else (1.0 if total_gpus >= 1 else 0.0)
    if gpus > total_gpus:
        raise PoolError(f"{gpus:g} GPUs per actor asked for, but the cluster has {total_gpus:g} GPUs")
    if cpus_per_actor is not None and cpus_per_actor > node_cpus:
        raise PoolError(f"{cpus_per_actor:g} CPUs per actor asked for, but the largest node has {node_cpus:g} CPUs")
    if gpus > 0:
        cpus = cpus_per_actor if cpus_per_actor is not None else 1.0
        return actors or max(1, int(math.floor(total_gpus / gpus + 1e-9))), cpus, gpus
    cpus = cpus_per_actor if cpus_per_actor is not None else float(min(CPUS_PER_CPU_ACTOR, max(1, node_cpus)))
    return actors or max(1, int(total_cpus // cpus)), cpus, gpus


def cluster_pool(
    actors: int | None, gpus_per_actor: float | None, cpus_per_actor: float | None, scale_up_timeout: float = 0.0,
) -> tuple[int, float, float]:
    """choose_pool for the cluster Ray is connected to now; with `scale_up_timeout` > 0, once the autoscaler has
    added the resources of `actors` actors (scale_up)."""
    import ray

    if scale_up_timeout > 0:
        scale_up([actor_bundle(gpus_per_actor, cpus_per_actor)] * actors, scale_up_timeout)
    resources = ray.cluster_resources()
    total_cpus = float(resources.get("CPU", 1))
    nodes = [float(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")]
    return choose_pool(total_cpus, float(resources.get("GPU", 0)), max(nodes or [total_cpus]), actors,
                       gpus_per_actor, cpus_per_actor)


def actor_bundle(gpus_per_actor: float | None, cpus_per_actor: float | None) -> dict[str, float]:
    """The resources one actor reserves when the pool is scaled for it (defaults as in choose_pool)."""
    gpus = gpus_per_actor or 0.0
    cpus = cpus_per_actor if cpus_per_actor is not None else (1.0 if gpus else float(CPUS_PER_CPU_ACTOR))
    return {"CPU": cpus, "GPU": gpus} if gpus else {"CPU": cpus}


def scale_up(
    bundles: list[dict[str, float]],
    timeout: float,
    poll: float = SCALE_UP_POLL_S,
    say: Callable[[str], None] = print,
) -> None:
    """Ask the autoscaler for `bundles` and wait until the cluster has their sum (module docstring)."""
    import ray
    from ray.autoscaler.sdk import request_resources

    need: dict[str, float] = {}
    for bundle in bundles:
        for name, amount in bundle.items():
            need[name] = need.get(name, 0.0) + amount
    wanted = ", ".join(f"{v:g} {k}" for k, v in sorted(need.items()))
    request_resources(bundles=bundles)
    try:
        deadline = time.monotonic() + timeout
        while True:
            have = ray.cluster_resources()
            if all(float(have.get(k, 0)) >= v - 1e-9 for k, v in need.items()):
                return
            now = ", ".join(f"{float(have.get(k, 0)):g} {k}" for k in sorted(need))
            if time.monotonic() >= deadline:
                raise PoolError(f"the cluster did not scale up to {wanted} in {timeout:g} s (it has {now}); "
                                "check the autoscaler's node types and limits (`ray status`)")
            say(f"lensfleet: asked the autoscaler for {wanted}; the cluster has {now}")
            time.sleep(poll)
    finally:
        request_resources(bundles=[])


def actor_name(index: int, generation: int) -> str:
    """The actor of slot `index`: `lensfleet-fit-<i>`, its replacements `lensfleet-fit-<i>-r<generation>`."""
    return f"{ACTOR_PREFIX}-{index}" if generation == 0 else f"{ACTOR_PREFIX}-{index}-r{generation}"


@dataclass
class Slot:
    """One place in the pool: its current actor (`handle`, and `ready_ref`, the warm-up call that returns the
    actor's start-up report), whether that returned, its blocks in flight (their object refs)."""

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


Starter = Callable[[int, str], tuple[object, object]]  # (slot index, actor name) -> (handle, ready_ref)


class ActorPool:
    """The slots of a run's pool (module docstring): `size` actors started with `start`, killed with `kill`."""

    def __init__(self, size: int, start: Starter, kill: Callable[[object], None], max_failures: int,
                 in_flight_per_actor: int):
        self._start = start
        self._kill = kill
        self.max_failures = max_failures
        self.in_flight_per_actor = in_flight_per_actor
        self.lost = 0  # actors lost (replaced)
        self.slots = [self._started(i, 0, 0) for i in range(size)]

    def _started(self, index: int, generation: int, failures: int) -> Slot:
        name = actor_name(index, generation)
        handle, ready_ref = self._start(index, name)
        return Slot(index, name, handle, ready_ref, generation, failures=failures)

    def live(self) -> list[Slot]:
        """Slots not retired."""
        return [s for s in self.slots if not s.retired]

    def starting(self) -> dict[object, Slot]:
        """Live slots whose actor is not ready yet, by the ref of its warm-up call."""
        return {s.ready_ref: s for s in self.live() if not s.ready}

    def pick(self, pending: int) -> Slot | None:
        """The slot for the next of `pending` blocks: the ready slot with the fewest blocks in flight, among those
        with room for one more; None if none. A block queues behind another (a slot already busy) only while at
        least one pending block is left for every live slot: a run's last blocks, or a small catalog's, wait for
        an actor that is free or still starting instead of queueing behind a long block while it idles."""
        room = [s for s in self.live() if s.ready and len(s.in_flight) < self.in_flight_per_actor]
        if not room:
            return None
        slot = min(room, key=lambda s: len(s.in_flight))
        return slot if not slot.in_flight or pending >= len(self.live()) else None

    def ready(self, slot: Slot, report: dict) -> None:
        """The slot's actor finished warming up; `report` is its start-up report."""
        slot.ready, slot.report = True, report
        r = report
        print(
            f"lensfleet: actor {slot.name} ready on {r['node']} ({r['device']}, CPUs {r['runtime'].get('cpus')}): "
            f"{r['compiles']} compiles in {r['compile_seconds']:.1f} s ({r['cache_hits']} from the cache), "
            f"started in {r['start_seconds']:.1f} s", flush=True,
        )

    def committed(self, slot: Slot, ref) -> None:
        """A block of the slot's actor came back committed."""
        slot.in_flight.discard(ref)
        slot.failures = 0

    def replace(self, slot: Slot, reason: str) -> list:
        """The slot's actor died (or is unusable): kill it for good and start another in its place, or retire
        the slot after `max_failures` actors in a row died before they were ready. Returns the refs of the
        blocks it had in flight (lost with it)."""
        self._kill(slot.handle)
        failures = slot.failures + (0 if slot.ready else 1)
        self.lost += 1
        print(f"lensfleet: actor {slot.name} lost ({reason}); starting a replacement", file=sys.stderr, flush=True)
        if failures >= self.max_failures:
            self.slots[slot.index] = Slot(slot.index, slot.name, None, None, slot.generation, failures=failures,
                                          retired=True)
            print(f"lensfleet: slot {slot.index} retired: {failures} actors died before they were ready",
                  file=sys.stderr, flush=True)
        else:
            self.slots[slot.index] = self._started(slot.index, slot.generation + 1, failures)
        return list(slot.in_flight)

    def reports(self) -> list[dict]:
        """The start-up reports of the slots' current actors that got ready."""
        return [s.report for s in self.slots if s.report]

    def close(self) -> None:
        """Kill every actor of the pool."""
        for slot in self.slots:
            if slot.handle is not None:
                self._kill(slot.handle)


def fit_actor_starter(spec_ref, cpus: float, gpus: float, faults: dict | None = None) -> Starter:
    """Start FitActors on the Ray cluster: named, each reserving `cpus` and `gpus`, never restarted by Ray (the
    pool replaces them); `spec_ref` is the run's RunSpec in the object store, `faults` FitActor's test hook."""
    import ray

    from workers.actor import PROGRESS_GROUP, FitActor

    remote = ray.remote(concurrency_groups={PROGRESS_GROUP: 1})(FitActor)

    def start(index: int, name: str) -> tuple[object, object]:
        handle = remote.options(name=name, num_cpus=cpus, num_gpus=gpus, max_restarts=0, max_task_retries=0).remote(
            spec_ref, cpus, gpus, index, name, faults,
        )
        return handle, handle.ready.options(name=f"{name}.ready").remote()

    return start


def kill_actor(handle) -> None:
    """Kill a Ray actor for good; one already gone is fine."""
    import ray

    try:
        ray.kill(handle, no_restart=True)
    except Exception:  # already gone
        pass
