"""One live driver per store: a second one is refused, a crashed one's lease is taken over after it expires."""

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

# A driver that takes the lease with a 1 s ttl and then dies without releasing it.
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


def test_a_crashed_drivers_lease_is_taken_over_after_it_expires(tmp_path):
    url = str(tmp_path / "run.zarr")
    ttl = 1.0
    driver = subprocess.Popen([sys.executable, "-c", CRASHING_DRIVER, url, str(ttl)], stdout=subprocess.PIPE, text=True)
    assert driver.stdout.readline().strip() == "holding"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    dead = json.loads((tmp_path / "run.zarr" / LEASE_FILE).read_text())

    with pytest.raises(StoreError, match=f"held by driver {socket.gethostname()}:{driver.pid}"):
        DriverLease.acquire(url)  # not expired yet: the driver may only be slow
    time.sleep(max(0.0, dead["heartbeat"] + ttl - time.time()) + 0.1)
    lease = DriverLease.acquire(url)
    assert json.loads((tmp_path / "run.zarr" / LEASE_FILE).read_text())["token"] == lease.token
    assert sorted(os.listdir(url)) == [LEASE_FILE]  # nothing left aside


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
