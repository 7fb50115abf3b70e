"""One live driver per store: a second one is refused; a crashed one's lease is taken over at once when it provably
no longer runs (issue 11, point 4), else after it expires, with a bounded wait. Real driver processes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from synthetic_blocks import CATALOG_HASH, CONFIG, make_store

from storage.errors import StoreError
from storage.lease import LEASE_FILE, DriverLease
from storage.store import ResultStore

# A driver that takes the lease with the given ttl, never heart-beats, and sleeps until it is killed.
CRASHING_DRIVER = """
import sys, time
from storage.lease import DriverLease
DriverLease.acquire(sys.argv[1], ttl=float(sys.argv[2]))
print("holding", flush=True)
time.sleep(600)
"""


def test_a_second_driver_is_refused_with_the_holder_and_what_to_do(tmp_path):
    url = str(tmp_path / "run.zarr")
    with DriverLease.acquire(url):
        with pytest.raises(StoreError) as error:
            DriverLease.acquire(url)
    message = str(error.value)
    assert f"store {url} is held by driver {socket.gethostname()}:{os.getpid()} since " in message
    assert "wait for the lease to expire at" in message and "or stop that driver" in message


def test_the_lease_records_its_owner_and_is_released_on_exit(tmp_path):
    url = str(tmp_path / "run.zarr")
    with DriverLease.acquire(url, ttl=30) as lease:
        record = json.loads((tmp_path / "run.zarr" / LEASE_FILE).read_text())
        assert record["token"] == lease.token and record["pid"] == os.getpid() and record["ttl"] == 30
        before = record["heartbeat"]
        lease.heartbeat()
        assert json.loads((tmp_path / "run.zarr" / LEASE_FILE).read_text())["heartbeat"] >= before
    assert not (tmp_path / "run.zarr" / LEASE_FILE).exists()
    DriverLease.acquire(url).release()


def start_driver(url: str, ttl: float) -> subprocess.Popen:
    """A real driver process holding the store's lease (CRASHING_DRIVER)."""
    driver = subprocess.Popen([sys.executable, "-c", CRASHING_DRIVER, url, str(ttl)], stdout=subprocess.PIPE, text=True)
    assert driver.stdout.readline().strip() == "holding"
    return driver


def edit_lease(url: str, **fields) -> dict:
    path = os.path.join(url, LEASE_FILE)
    with open(path) as f:
        record = json.load(f)
    record.update(fields)
    with open(path, "w") as f:
        json.dump(record, f)
    return record


@pytest.mark.parametrize("reaped", [True, False], ids=["reaped", "zombie"])
def test_a_killed_drivers_lease_on_this_machine_is_taken_over_at_once(tmp_path, reaped):
    url = str(tmp_path / "run.zarr")
    driver = start_driver(url, ttl=600)  # its lease would stay live for 10 minutes
    os.kill(driver.pid, signal.SIGKILL)
    if reaped:
        driver.wait(timeout=30)
    else:  # killed, not yet reaped by its parent: a zombie is no live driver either
        while open(f"/proc/{driver.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.01)
    started = time.monotonic()
    lease = DriverLease.acquire(url)
    assert time.monotonic() - started < 2
    assert json.loads((tmp_path / "run.zarr" / LEASE_FILE).read_text())["token"] == lease.token
    assert sorted(os.listdir(url)) == [LEASE_FILE]  # nothing left aside
    driver.wait(timeout=30)


def test_a_live_holder_is_waited_for_with_progress_lines_then_refused(tmp_path):
    url = str(tmp_path / "run.zarr")
    driver = start_driver(url, ttl=600)
    try:
        lines = []
        started = time.monotonic()
        with pytest.raises(StoreError, match=f"held by driver {socket.gethostname()}:{driver.pid}"):
            DriverLease.acquire(url, max_wait=1.5, on_wait=lines.append)
        assert 1.5 <= time.monotonic() - started < 4
        assert lines and lines[0].startswith(f"lensfleet: store {url} is held by driver {socket.gethostname()}:"
                                             f"{driver.pid} (last heartbeat ")
        assert "waiting up to 1 s more" in lines[0] or "waiting up to 2 s more" in lines[0]
        with pytest.raises(StoreError):
            DriverLease.acquire(url)  # no wait asked: refused at once
    finally:
        driver.kill()
        driver.wait(timeout=30)


def test_a_dead_holder_on_another_machine_is_waited_for_until_its_lease_expires(tmp_path):
    url = str(tmp_path / "run.zarr")
    driver = start_driver(url, ttl=2.0)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    dead = edit_lease(url, host="another-node")  # this machine cannot see that node's processes
    with pytest.raises(StoreError, match=f"held by driver another-node:{driver.pid}"):
        DriverLease.acquire(url)  # not provably dead, not expired: it may only be slow
    lines = []
    lease = DriverLease.acquire(url, max_wait=30, on_wait=lines.append)
    assert time.time() >= dead["heartbeat"] + dead["ttl"]
    assert lines and "is held by driver another-node:" in lines[0]
    assert json.loads((tmp_path / "run.zarr" / LEASE_FILE).read_text())["token"] == lease.token


def test_a_pid_reused_by_a_newer_process_is_not_the_holder(tmp_path):
    url = str(tmp_path / "run.zarr")
    driver = start_driver(url, ttl=600)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    newer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        edit_lease(url, pid=newer.pid)  # as if the dead driver's pid now belonged to `newer`
        DriverLease.acquire(url).release()  # its start time is not the holder's: taken over at once
    finally:
        newer.kill()
        newer.wait(timeout=30)


def test_the_caller_can_say_a_holder_is_gone_from_its_labels(tmp_path):
    url = str(tmp_path / "run.zarr")
    holder = DriverLease.acquire(url, labels={"ray_job": "raysubmit_old"})
    seen = []

    def job_finished(record) -> bool:  # what a driver asks Ray: is the holder's job still running?
        seen.append(record["labels"])
        return record["labels"].get("ray_job") == "raysubmit_old"

    lease = DriverLease.acquire(url, holder_gone=job_finished)
    assert seen == [{"ray_job": "raysubmit_old"}]
    with pytest.raises(StoreError, match="lost its lease"):
        holder.heartbeat()
    lease.release()


@pytest.mark.parametrize("ttl", [0, -1, 0.5, float("nan"), float("inf")])
def test_a_ttl_that_would_expire_between_heartbeats_is_refused(tmp_path, ttl):
    with pytest.raises(ValueError, match="lease ttl must be a finite number of seconds >= 1"):
        DriverLease.acquire(str(tmp_path / "run.zarr"), ttl=ttl)


def test_a_driver_whose_lease_was_taken_over_learns_it_at_its_next_heartbeat(tmp_path):
    url = str(tmp_path / "run.zarr")
    frozen = DriverLease.acquire(url, ttl=1.0)
    time.sleep(1.1)
    successor = DriverLease.acquire(url)
    with pytest.raises(StoreError, match="lost its lease"):
        frozen.heartbeat()
    frozen.release()  # does not remove the successor's lease
    assert json.loads((tmp_path / "run.zarr" / LEASE_FILE).read_text())["token"] == successor.token


def test_an_unreadable_lease_expires_after_the_default_ttl_from_its_mtime(tmp_path):
    lease_file = tmp_path / "run.zarr" / LEASE_FILE
    lease_file.parent.mkdir()
    lease_file.write_text("")  # a driver died between creating and writing it
    with pytest.raises(StoreError, match=r"held by driver \?:\?"):
        DriverLease.acquire(str(lease_file.parent))
    old = time.time() - 61
    os.utime(lease_file, (old, old))
    DriverLease.acquire(str(lease_file.parent)).release()


def test_the_driver_sequence_lease_then_store_then_restart(tmp_path):
    url = str(tmp_path / "run.zarr")
    with DriverLease.acquire(url):
        store = ResultStore.open(url, CONFIG, CATALOG_HASH) or make_store(url)
        assert store.pending_blocks() == list(range(store.n_blocks))
        assert ResultStore.open(url, CONFIG, CATALOG_HASH, restart=True) is None
        assert os.listdir(url) == [LEASE_FILE]
        make_store(url)
