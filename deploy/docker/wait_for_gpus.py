"""Wait until a Ray cluster has GPUs, asking its autoscaler for them: run before `lensfleet run` on a cluster
whose GPU worker group scales from zero.

    python /opt/lensfleet/wait_for_gpus.py 4 --timeout 1200 && lensfleet run ... --gpus-per-actor 1

`lensfleet run` sizes its actor pool from the GPUs the cluster has when it starts (and stops with an error if
--gpus-per-actor asks for more than there are), so a run submitted to a cluster with no GPU node yet must wait.
This asks the autoscaler for the GPUs (`ray.autoscaler.sdk.request_resources`), waits until the cluster
reports at least that many, then withdraws the request (so that the GPU nodes scale down once the run's
actors are gone) and exits 0; after --timeout seconds it withdraws the request and exits 1. Joins the cluster
like `lensfleet run` does: RAY_ADDRESS (set inside `ray job submit`), else --address.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable


def wait_for(gpus: float, cluster_gpus: Callable[[], float], timeout: float, poll: float = 5.0,
             clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> bool:
    """True once cluster_gpus() >= gpus, False after `timeout` seconds."""
    deadline = clock() + timeout
    while True:
        have = cluster_gpus()
        if have >= gpus:
            return True
        if clock() >= deadline:
            return False
        print(f"lensfleet: waiting for GPUs: {have:g} of {gpus:g}", file=sys.stderr, flush=True)
        sleep(poll)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gpus", type=float, help="GPUs the cluster must have")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds to wait (default 1200)")
    parser.add_argument("--address", default=None, help="Ray cluster (default: RAY_ADDRESS, else 'auto')")
    args = parser.parse_args(argv)

    import os

    import ray
    from ray.autoscaler.sdk import request_resources

    ray.init(address=args.address or os.environ.get("RAY_ADDRESS") or "auto", log_to_driver=False)
    bundles = [{"GPU": 1}] * int(args.gpus) + ([{"GPU": args.gpus % 1}] if args.gpus % 1 else [])
    request_resources(bundles=bundles)
    try:
        ok = wait_for(args.gpus, lambda: float(ray.cluster_resources().get("GPU", 0)), args.timeout)
    finally:
        request_resources(bundles=[])
    if not ok:
        print(f"lensfleet: the cluster did not reach {args.gpus:g} GPUs in {args.timeout:g} s", file=sys.stderr)
        return 1
    print(f"lensfleet: the cluster has {ray.cluster_resources().get('GPU', 0):g} GPUs", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
