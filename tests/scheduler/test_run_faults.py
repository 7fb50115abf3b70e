"""Faults lose nothing: an actor killed mid-block, a block that keeps raising, a driver killed with SIGKILL and a
driver stopped with SIGTERM all end in a store equal to a clean run's, array by array (but wall_time, attempts and
driver_run), and a resumed run redoes only what was not committed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from scheduler.driver import run
from small_survey import (
    SURVEY_BLOCK_SIZE, assert_same_store, clean_store, compile_cache, run_options, shared_survey, store_arrays,
)
from storage.errors import StoreError
from storage.schema import Status
from storage.store import ResultStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp()


@pytest.fixture(scope="module")
def clean(base, cluster) -> str:
    return str(clean_store(base))


def committed_blocks(url: str) -> list[int]:
    """Blocks whose every dataset is committed ([] while the store is still being created)."""
    try:
        store = ResultStore.open_existing(url)
    except StoreError:
        return []
    status = store.read_array("status")
    return [k for k in range(store.n_blocks) if (status[store.block_slice(k)] != Status.PENDING).all()]


def test_an_actor_killed_mid_block_is_replaced_and_its_block_redone(base, clean, tmp_path):
    marker = tmp_path / "actor-died"
    store = tmp_path / "killed-actor.zarr"
    options = run_options(shared_survey(base), store, base, actor_faults={"exit_in_block": 1, "marker": str(marker)})

    result = run(options)

    assert marker.read_text().startswith("lensfleet-fit-0 died in block 1")
    assert result.exit_code == 0 and result.actors_lost == 1
    assert result.blocks_retried >= 1  # block 1, and the block queued behind it on the same actor
    attempts = ResultStore.open_existing(str(store)).read_array("attempts")
    assert (attempts[3:6] == 2).all() and (attempts[:3] == 1).all()
    assert_same_store(str(store), clean)  # the dead worker's scribbles in block 1 were all rewritten


def test_a_block_that_keeps_raising_is_failed_after_max_attempts_and_the_rest_completes(base, clean, tmp_path):
    store = tmp_path / "raising.zarr"
    options = run_options(shared_survey(base), store, base, max_attempts=2, actor_faults={"raise_in_block": 2})

    result = run(options)

    assert result.exit_code == 0 and result.blocks_retried == 1 and result.actors_lost == 0
    assert result.counts == {"pending": 0, "done": 6, "failed": 2, "invalid": 0}
    got = store_arrays(str(store), exclude=())
    assert got["status"][6:].tolist() == [Status.FAILED] * 2
    for error in got["error"][6:].tolist():
        assert error.startswith("block 2 failed 2 times; last error: ") and "injected fault in block 2" in error
    assert got["attempts"].tolist() == [1] * 6 + [2] * 2
    expected = store_arrays(clean)
    for name, array in expected.items():  # the blocks that did not raise hold the clean run's results
        if name not in ("status", "error") and array.dtype.kind == "f":
            np.testing.assert_array_equal(got[name][:6], array[:6], err_msg=name)
    assert np.isnan(got["figure_of_merit"][6:]).all()


def driver_process(options: dict, log: Path, env: dict | None = None) -> subprocess.Popen:
    """A driver in its own process, joining this module's cluster (as `lensfleet run --address` would), or with
    options' address None and no RAY_ADDRESS in `env`, starting a local one."""
    code = (
        "import json, sys\n"
        "from scheduler.driver import RunOptions, run\n"
        "sys.exit(run(RunOptions(**json.loads(sys.argv[1]))).exit_code)\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(options)], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
    )


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the driver exited ({process.returncode}) before {what}")
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def subprocess_options(base: Path, store: Path, address: str, **changes) -> dict:
    options = run_options(shared_survey(base), store, base, address=address, lease_ttl=2.0, **changes)
    return {k: v for k, v in vars(options).items()}


def signalled_after_a_commit(options: dict, store: Path, log: Path, sig: int,
                             timeout: float = 10) -> tuple[subprocess.Popen, float]:
    """Run a driver until its first block commits, send it `sig` and wait up to `timeout` s for it to end (then
    kill it); returns the ended process and when the signal was sent."""
    driver = driver_process(options, log)
    try:
        wait_for(lambda: (store / "zarr.json").exists() and committed_blocks(str(store)), 120,
                 "a first block to commit", driver)
        sent = time.time()
        driver.send_signal(sig)
        driver.wait(timeout)
    finally:
        if driver.poll() is None:
            driver.kill()
    return driver, sent


def test_a_driver_killed_with_sigkill_resumes_redoing_only_uncommitted_blocks(base, clean, cluster, tmp_path):
    store = tmp_path / "sigkill.zarr"
    log = tmp_path / "driver.log"
    options = subprocess_options(base, store, cluster, actor_faults={"delay": 1.0})
    driver, _ = signalled_after_a_commit(options, store, log, signal.SIGKILL)
    assert driver.returncode == -signal.SIGKILL
    # Ray stops the dead driver's actor; wait until its lease (ttl 2 s) has expired and nothing commits any more
    time.sleep(2.5)
    before = ResultStore.open_existing(str(store))
    first_run = committed_blocks(str(store))
    assert 1 <= len(first_run) < before.n_blocks, first_run
    wall_time = before.read_array("wall_time")

    rerun = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "run", str(shared_survey(base)), "--config",
         str(shared_survey(base).parent / "fit.toml"), "--store", str(store), "--address", cluster,
         "--block-size", str(SURVEY_BLOCK_SIZE), "--compile-cache", compile_cache(base), "--lease-ttl", "2"],
        capture_output=True, text=True, timeout=240,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"{3 - len(first_run)} of 3 blocks to run" in rerun.stdout
    after = ResultStore.open_existing(str(store))
    driver_run = after.read_array("driver_run")
    for k in range(after.n_blocks):
        rows = after.block_slice(k)
        if k in first_run:  # committed before the kill: not run again
            assert (driver_run[rows] == 1).all()
            np.testing.assert_array_equal(after.read_array("wall_time")[rows], wall_time[rows])
        else:
            assert (driver_run[rows] == 2).all()
    assert [r["resumed"] for r in after.attrs["runs"]] == [False, True]
    assert_same_store(str(store), clean)


def test_the_same_command_right_after_a_sigkill_takes_over_the_dead_drivers_lease_and_completes(
    base, clean, cluster, tmp_path
):
    """What a user, or KubeRay's RayJob retry, does: SIGKILL the driver, submit the same command at once. The new
    driver takes the lease of the provably dead one (same host, process gone) without waiting for its ttl of 60 s;
    the dead driver's actor can no longer commit (its writes are fenced by the old lease token)."""
    store = tmp_path / "sigkill-now.zarr"
    log = tmp_path / "driver.log"
    options = {**subprocess_options(base, store, cluster, actor_faults={"delay": 1.0}), "lease_ttl": 60.0}
    driver, _ = signalled_after_a_commit(options, store, log, signal.SIGKILL)
    rerun = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "run", str(shared_survey(base)), "--config",
         str(shared_survey(base).parent / "fit.toml"), "--store", str(store), "--address", cluster,
         "--block-size", str(SURVEY_BLOCK_SIZE), "--compile-cache", compile_cache(base), "--lease-ttl", "60"],
        capture_output=True, text=True, timeout=240,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "is held by driver" not in rerun.stderr  # it took the lease over at once, no wait for the ttl
    assert_same_store(str(store), clean)


def test_sigterm_lets_blocks_in_flight_commit_releases_the_lease_and_the_next_run_resumes(
    base, clean, cluster, tmp_path
):
    store = tmp_path / "sigterm.zarr"
    log = tmp_path / "driver.log"
    options = subprocess_options(base, store, cluster, actor_faults={"delay": 1.0}, in_flight_per_actor=1)
    driver, stopped_at = signalled_after_a_commit(options, store, log, signal.SIGTERM, timeout=60)
    output = log.read_text()
    assert driver.returncode == 128 + signal.SIGTERM, output
    assert time.time() - stopped_at < 15  # the block in flight committed; no grace period was waited out
    assert "SIGTERM received: no new blocks" in output
    assert "stopped by SIGTERM" in output and "Run the same command again to resume" in output
    assert not (store / "lease.json").exists()
    committed = committed_blocks(str(store))
    assert 1 <= len(committed) < 3
    status = ResultStore.open_existing(str(store)).read_array("status")
    assert set(status.tolist()) <= {Status.PENDING, Status.DONE}  # nothing half-committed: blocks are all or none

    result = run(run_options(shared_survey(base), store, base))  # no lease to wait for: it was released
    assert result.exit_code == 0 and result.blocks_to_do == 3 - len(committed)
    assert_same_store(str(store), clean)
    assert os.path.exists(store / "zarr.json")


def children(pid: int) -> list[str]:
    """The command names of process `pid`'s children (from /proc)."""
    names = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, fields = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if int(fields.split()[1]) == pid:
            names.append(name.split("(", 1)[1])
    return names


def test_sigterm_while_ray_starts_ends_as_a_stopped_run_and_the_next_run_resumes(base, clean, cluster, tmp_path):
    """ray.init installs its own SIGTERM handler (sys.exit) while it starts a local cluster; a SIGTERM then must
    still end the run as a stopped run: exit 128 + SIGTERM, the resume line, the lease released, nothing lost."""
    store = tmp_path / "sigterm-start.zarr"
    log = tmp_path / "driver.log"
    options = {**subprocess_options(base, store, None), "lease_ttl": 60.0}
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a new local cluster: seconds to start
    driver = driver_process(options, log, env)
    try:
        wait_for(lambda: "gcs_server" in children(driver.pid), 120, "ray.init to start the cluster's processes",
                 driver)
        driver.send_signal(signal.SIGTERM)  # ray.init is under way: its own SIGTERM handler is the one installed
        driver.wait(60)
    finally:
        if driver.poll() is None:
            driver.kill()
    output = log.read_text()
    assert driver.returncode == 128 + signal.SIGTERM, output
    assert "SIGTERM received while Ray started" in output, output
    assert "stopped by SIGTERM while Ray started. Run the same command again to resume" in output
    assert not (store / "lease.json").exists()

    result = run(run_options(shared_survey(base), store, base))
    assert result.exit_code == 0 and result.blocks_to_do == 3
    assert_same_store(str(store), clean)


def test_status_verify_finds_damaged_blocks_and_a_resume_refits_exactly_those(base, clean, cluster, tmp_path):
    """A flipped byte in a committed model_image chunk and an empty status chunk (what an unsynced write can leave
    after a power loss): `lensfleet status --verify` names both blocks and exits 1; the same run command resets
    and refits exactly those blocks, and the store then equals a clean run's and verifies."""
    import shutil

    from scheduler.cli import main

    store = tmp_path / "damaged.zarr"
    shutil.copytree(clean, store)
    damaged = ResultStore.open_existing(str(store))

    def chunk(name: str, k: int) -> Path:
        return store / name / "c" / str(k) / Path(*["0"] * (damaged.array(name).ndim - 1))

    data = bytearray(chunk("model_image", 0).read_bytes())
    data[len(data) // 2] ^= 0x10
    chunk("model_image", 0).write_bytes(bytes(data))
    chunk("status", 2).write_bytes(b"")

    assert main(["status", str(store), "--verify"]) == 1
    result = run(run_options(shared_survey(base), store, base))
    assert result.exit_code == 0, result
    after = ResultStore.open_existing(str(store))
    driver_run = after.read_array("driver_run")
    for k, refitted in ((0, True), (1, False), (2, True)):
        assert (driver_run[after.block_slice(k)] == (2 if refitted else 1)).all(), k
    assert after.verify_blocks() == {}
    assert main(["status", str(store), "--verify"]) == 0
    assert_same_store(str(store), clean)
