"""The actor pool: its size from the cluster's resources, its slots' book-keeping (plain Python, no Ray), and
`lensfleet run --actors N --scale-up-timeout S` on an autoscaling cluster whose GPU workers scale from zero.

The autoscaling cluster is real Ray: `ray start --head --autoscaling-config=...` runs Ray's autoscaler (the
monitor), with Ray's fake multi-node provider standing in for a cloud (it starts worker nodes as local raylets,
with the resources their node type declares: here 1 CPU and 1 GPU, a GPU that JAX does not see, so the actor
computes on the CPU, allowed by LENSFLEET_GPU_CHECK=off in the nodes' environment). Token authentication is
on, as on a real cluster. The cluster is this test's own (its own port and --temp-dir), stopped by SIGTERM to
its `ray start --block` process and a kill of its process group, never by `ray stop`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from scheduler.pool import CPUS_PER_CPU_ACTOR, ActorPool, PoolError, actor_bundle, choose_pool
from small_survey import free_port, own_port_options, stop_head
from storage.schema import Status
from storage.store import ResultStore
from workers.survey import simulate_survey

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "cluster, asked, pool",
    [
        ((2, 0, 2), {}, (1, CPUS_PER_CPU_ACTOR, 0)),        # this machine: one CPU actor of 2 CPUs
        ((16, 0, 8), {}, (8, 2, 0)),                         # two 8-CPU nodes
        ((16, 4, 8), {}, (4, 1, 1)),                         # one actor per GPU
        ((16, 4, 8), {"gpus_per_actor": 0.5}, (8, 1, 0.5)),  # two actors packed per GPU
        ((16, 4, 8), {"gpus_per_actor": 0}, (8, 2, 0)),      # CPU actors on a GPU cluster
        ((16, 0, 8), {"actors": 3, "cpus_per_actor": 4}, (3, 4, 0)),
    ],
)
def test_pool_size_follows_the_cluster(cluster, asked, pool):
    assert choose_pool(*cluster, **asked) == pool


def test_a_pool_the_cluster_cannot_hold_is_refused_with_the_numbers():
    with pytest.raises(PoolError, match="1 GPUs per actor asked for, but the cluster has 0 GPUs"):
        choose_pool(8, 0, 8, gpus_per_actor=1)
    with pytest.raises(PoolError, match="16 CPUs per actor asked for, but the largest node has 8 CPUs"):
        choose_pool(16, 0, 8, cpus_per_actor=16)
    assert actor_bundle(1, None) == {"CPU": 1.0, "GPU": 1} and actor_bundle(None, None) == {"CPU": 2.0}


class Actors:
    """What the pool starts and kills, recorded: an actor is its name, its warm-up call "<name>.ready"."""

    def __init__(self):
        self.started: list[str] = []
        self.killed: list[str] = []

    def start(self, index: int, name: str) -> tuple[str, str]:
        self.started.append(name)
        return name, f"{name}.ready"

    def kill(self, handle: str) -> None:
        self.killed.append(handle)


REPORT = {"node": "10.0.0.1", "device": "cpu", "runtime": {"cpus": 2}, "compiles": 3, "compile_seconds": 1.5,
          "cache_hits": 0, "start_seconds": 4.0}


def test_only_ready_actors_get_blocks_the_least_busy_first_up_to_the_limit(capsys):
    actors = Actors()
    pool = ActorPool(3, actors.start, actors.kill, max_failures=3, in_flight_per_actor=2)
    assert actors.started == ["lensfleet-fit-0", "lensfleet-fit-1", "lensfleet-fit-2"]
    assert list(pool.starting()) == ["lensfleet-fit-0.ready", "lensfleet-fit-1.ready", "lensfleet-fit-2.ready"]
    assert pool.pick(10) is None  # nobody warmed up yet: no block is held by an actor that may never start
    zero, one, two = pool.slots
    pool.ready(one, REPORT)
    pool.ready(two, REPORT)
    assert "actor lensfleet-fit-1 ready on 10.0.0.1 (cpu, CPUs 2): 3 compiles in 1.5 s" in capsys.readouterr().out
    assert list(pool.starting()) == ["lensfleet-fit-0.ready"]
    picked = []
    while (slot := pool.pick(10 - len(picked))) is not None:
        slot.in_flight.add(f"block{len(picked)}")
        picked.append(slot.name)
    assert picked == ["lensfleet-fit-1", "lensfleet-fit-2", "lensfleet-fit-1", "lensfleet-fit-2"]
    pool.committed(two, "block1")
    assert pool.pick(6) is two and pool.reports() == [REPORT, REPORT]


def test_the_last_blocks_wait_for_a_free_or_starting_actor_rather_than_queue_behind_a_busy_one():
    actors = Actors()
    pool = ActorPool(2, actors.start, actors.kill, max_failures=3, in_flight_per_actor=2)
    zero, one = pool.slots
    pool.ready(one, REPORT)
    assert pool.pick(2) is one
    one.in_flight.add("block0")
    assert pool.pick(1) is None  # the last block waits for lensfleet-fit-0, still starting, not behind block0
    pool.ready(zero, REPORT)
    assert pool.pick(1) is zero
    zero.in_flight.add("block1")
    assert pool.pick(1) is None  # both busy, one block left: it goes to whichever frees first
    assert pool.pick(2) in (zero, one)  # enough left for both to queue one
    pool.committed(one, "block0")
    assert pool.pick(1) is one


def test_a_dead_actor_is_replaced_and_a_slot_whose_actors_never_start_is_retired(capsys):
    actors = Actors()
    pool = ActorPool(2, actors.start, actors.kill, max_failures=2, in_flight_per_actor=2)
    zero, one = pool.slots
    pool.ready(zero, REPORT)
    zero.in_flight |= {"block0", "block1"}
    assert sorted(pool.replace(zero, "node lost")) == ["block0", "block1"]  # its blocks are lost with it
    assert actors.killed == ["lensfleet-fit-0"] and actors.started[-1] == "lensfleet-fit-0-r1"
    replacement = pool.slots[0]
    assert (replacement.name, replacement.ready, replacement.failures) == ("lensfleet-fit-0-r1", False, 0)
    assert "actor lensfleet-fit-0 lost (node lost); starting a replacement" in capsys.readouterr().err

    pool.replace(one, "failed to start")  # died before it was ready: 1 of 2
    assert pool.slots[1].name == "lensfleet-fit-1-r1" and pool.slots[1].failures == 1
    pool.replace(pool.slots[1], "failed to start")  # 2 of 2: retired, nothing started in its place
    assert "slot 1 retired: 2 actors died before they were ready" in capsys.readouterr().err
    assert pool.slots[1].retired and actors.started[-1] == "lensfleet-fit-1-r1"
    assert pool.live() == [replacement] and pool.lost == 3

    pool.ready(replacement, REPORT)
    replacement.in_flight.add("block2")
    pool.replace(replacement, "worker crashed")  # a ready actor dying is no start-up failure
    assert pool.slots[0].failures == 0 and pool.slots[0].name == "lensfleet-fit-0-r2"
    pool.close()
    assert actors.killed == ["lensfleet-fit-0", "lensfleet-fit-1", "lensfleet-fit-1-r1", "lensfleet-fit-0-r1",
                             "lensfleet-fit-0-r2"]


def test_a_committed_block_clears_the_slots_start_up_failures():
    actors = Actors()
    pool = ActorPool(1, actors.start, actors.kill, max_failures=2, in_flight_per_actor=1)
    pool.replace(pool.slots[0], "failed to start")
    slot = pool.slots[0]
    pool.ready(slot, REPORT)
    slot.in_flight.add("block0")
    pool.committed(slot, "block0")
    assert slot.failures == 0 and not slot.in_flight
    pool.replace(slot, "worker crashed")
    pool.replace(pool.slots[0], "failed to start")  # one failure since the commit: not retired
    assert pool.live() == [pool.slots[0]] and pool.slots[0].name == "lensfleet-fit-0-r3"


@pytest.fixture(scope="module")
def autoscaling_cluster():
    """A head with 2 CPUs and no GPU, and an autoscaler that may add one worker of 1 CPU + 1 GPU; yields the
    address and the environment for joining it."""
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="lfas", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    config = {
        "cluster_name": "lensfleet-test",
        "max_workers": 1,
        "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                     "disable_launch_config_check": True, "gcs_address": f"127.0.0.1:{port}"},
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 2}, "node_config": {}, "max_workers": 0},
            "gpu_worker": {"resources": {"CPU": 1, "GPU": 1}, "node_config": {}, "min_workers": 0, "max_workers": 1},
        },
        "head_node_type": "ray.head.default",
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 5,
        "auth": {}, "docker": {}, "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
        "worker_setup_commands": [], "head_start_ray_commands": [], "worker_start_ray_commands": [],
        "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
        "rsync_exclude": [], "rsync_filter": [],
    }
    config_file = os.path.join(temp_dir, "autoscaling.json")
    Path(config_file).write_text(json.dumps(config))
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", RAY_FAKE_CLUSTER="1",
               AUTOSCALER_UPDATE_INTERVAL_S="1", RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token",
               RAY_AUTH_TOKEN=secrets.token_hex(32), LENSFLEET_GPU_CHECK="off")
    log = open(os.path.join(temp_dir, "ray-start.log"), "w")
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}", f"--autoscaling-config={config_file}",
         "--node-ip-address=127.0.0.1", "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={temp_dir}",
         "--disable-usage-stats", *own_port_options()],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while subprocess.run([str(BIN / "ray"), "status", f"--address={address}"], env=env,
                             capture_output=True).returncode != 0:
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start did not come up: {Path(log.name).read_text()[-2000:]}")
            time.sleep(1)
        yield address, dict(env, RAY_ADDRESS=address)
    finally:
        stop_head(head, log, temp_dir)


@pytest.mark.slow
def test_run_asks_the_autoscaler_for_its_gpus_and_fits_on_the_new_node(autoscaling_cluster, tmp_path):
    address, env = autoscaling_cluster
    survey = simulate_survey(2, tmp_path / "survey", seed=11)
    store = tmp_path / "results.zarr"
    run = [str(BIN / "lensfleet"), "run", str(survey.catalog), "--config", str(survey.config), "--store",
           str(store), "--actors", "1", "--gpus-per-actor", "1", "--scale-up-timeout", "240"]

    done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "asked the autoscaler for 1 CPU, 1 GPU; the cluster has 2 CPU, 0 GPU" in done.stdout, done.stdout
    assert "1 actors × (1 CPU, 1 GPU)" in done.stdout
    assert (ResultStore.open_existing(str(store)).read_array("status") == Status.DONE).all()
    status = subprocess.run([str(BIN / "ray"), "status", f"--address={address}"], env=env, capture_output=True,
                            text=True)
    assert "gpu_worker" in status.stdout, status.stdout

    # more than the autoscaler may start (max_workers 1): refused after the timeout, naming what it has
    other = str(tmp_path / "other.zarr")
    too_many = subprocess.run([*run[:6], other, "--actors", "2", "--gpus-per-actor", "1", "--scale-up-timeout", "3"],
                              env=env, capture_output=True, text=True, timeout=300)
    assert too_many.returncode == 2
    assert "the cluster did not scale up to 2 CPU, 2 GPU in 3 s (it has 3 CPU, 1 GPU)" in too_many.stderr, \
        too_many.stderr


@pytest.mark.slow
def test_an_actor_given_a_gpu_that_jax_cannot_use_refuses_to_start(tmp_path, capfd):
    """A local cluster that declares a GPU this machine does not have: the actor sees JAX on the CPU and stops
    loudly (every attempt), and the run stops with nothing fitted instead of fitting on the CPU."""
    import ray

    from scheduler.driver import RunOptions, run

    assert os.environ.get("LENSFLEET_GPU_CHECK", "auto") != "off"
    survey = simulate_survey(1, tmp_path / "survey", seed=11)
    store = tmp_path / "results.zarr"
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        result = run(RunOptions(catalog=str(survey.catalog), config=str(survey.config), store=str(store),
                                gpus_per_actor=1, max_attempts=2))
    finally:
        ray.shutdown()
    assert result.exit_code != 0 and "no actor could start" in result.message, result
    err = capfd.readouterr().err
    assert "actor lensfleet-fit-0 was given 1 GPU" in err and "but JAX computes on the CPU" in err, err[-3000:]
    assert (ResultStore.open_existing(str(store)).read_array("status") == Status.PENDING).all()
