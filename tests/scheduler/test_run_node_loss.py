"""A node lost mid-run loses nothing: on a two-node Ray cluster (ray.cluster_utils.Cluster), the worker node is
removed while its actor is inside a block; the block is re-queued to the surviving actor and the final store equals
a clean run's, array by array (but wall_time, attempts and driver_run)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from scheduler.driver import run
from small_survey import assert_same_store, clean_store, run_options, shared_survey
from storage.store import ResultStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp()


@pytest.fixture(scope="module")
def two_nodes():
    """A head node and a worker node with one CPU each: one actor on each."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    yield cluster, worker
    ray.shutdown()
    cluster.shutdown()


def test_a_worker_node_removed_mid_block_loses_nothing(base, two_nodes, tmp_path):
    cluster, worker = two_nodes
    clean = clean_store(base)  # on this cluster if no other module made it: two 1-CPU actors
    announced = tmp_path / "blocks-started"
    announced.mkdir()
    store = tmp_path / "node-lost.zarr"
    options = run_options(
        shared_survey(base), store, base, actors=2, cpus_per_actor=1, in_flight_per_actor=1,
        actor_faults={"delay": 2.0, "announce": str(announced)},
    )
    removed: list[str] = []

    def remove_the_worker_node_once_its_actor_is_in_a_block():
        deadline = time.time() + 180
        while time.time() < deadline:
            started = [p.name for p in announced.iterdir() if p.name.endswith(f".{worker.node_id}")]
            if started:
                cluster.remove_node(worker)
                removed.extend(started)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=remove_the_worker_node_once_its_actor_is_in_a_block, daemon=True)
    watcher.start()
    result = run(options)
    watcher.join(5)

    assert removed, "the worker node's actor never started a block"
    lost_block = int(removed[0].split(".")[0])
    assert result.exit_code == 0, result
    assert result.actors_lost >= 1 and result.blocks_retried >= 1
    assert result.counts == {"pending": 0, "done": 8, "failed": 0, "invalid": 0}
    after = ResultStore.open_existing(str(store))
    assert (after.read_array("attempts")[after.block_slice(lost_block)] == 2).all()
    assert_same_store(str(store), str(clean))
