"""The actor pool of a run: how many FitActors, with what resources, on the Ray cluster the driver joined; and,
on an autoscaling cluster, asking for the nodes first.

Sizing (`choose_pool`, from the cluster's resources now): GPUs in the cluster: one actor per GPU (1 CPU each),
or 1/g actors per GPU for a fractional `gpus_per_actor` g. No GPUs: one actor per CPUS_PER_CPU_ACTOR CPUs
(capped at the largest node's CPUs). `actors`, `gpus_per_actor`, `cpus_per_actor` override each choice; asking
for more GPUs per actor than the cluster has, or more CPUs than its largest node, is a PoolError.

Scaling up (`scale_up`, `lensfleet run --actors N --scale-up-timeout S`): a cluster whose GPU workers scale from
zero has no GPU when the run starts. The driver asks the autoscaler for N actors' resources
(`ray.autoscaler.sdk.request_resources`, one bundle per actor), waits until the cluster has them in total, then
withdraws the request (the actors then hold the nodes; once they are gone the nodes may scale down). Ray's
autoscaler also starts nodes for actors it cannot place, but only after they are created, and the pool is sized
before that: hence the explicit request. After S seconds without the resources it is a PoolError.

JAX-free: the driver imports it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

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
    actors: int | None, gpus_per_actor: float | None, cpus_per_actor: float | None
) -> tuple[int, float, float]:
    """choose_pool for the cluster Ray is connected to now."""
    import ray

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
