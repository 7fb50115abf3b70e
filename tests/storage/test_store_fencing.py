"""A stale writer is fenced (issue 11, point 6): a worker of a driver whose lease is gone cannot commit into the
store, not even into a store the new driver has just recreated with another config; and a write that comes
from another incarnation of the store without a fence does not verify. Real driver processes hold the lease."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from synthetic_blocks import BLOCK_SIZE, CATALOG_HASH, CONFIG, IDS, block_arguments, make_store

from storage.errors import Fault, StoreError, classify
from storage.lease import LEASE_FILE, DriverLease
from storage.schema import Status
from storage.store import ResultStore

HOLDER = """
import sys, time
from storage.lease import DriverLease
DriverLease.acquire(sys.argv[1], ttl=600)
print("holding", flush=True)
time.sleep(600)
"""


def test_a_worker_of_a_dead_driver_cannot_commit_into_the_store_its_successor_recreated(tmp_path):
    url = str(tmp_path / "run.zarr")
    first = subprocess.Popen([sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, text=True)
    assert first.stdout.readline().strip() == "holding"
    make_store(url)
    token = json.loads(open(os.path.join(url, LEASE_FILE)).read())["token"]
    worker = ResultStore.open_existing(url, writable=True)  # the first driver's worker, alive and well
    worker.write_block(0, **block_arguments(worker, 0), fence=token)  # fenced with its driver's token: committed

    os.kill(first.pid, signal.SIGKILL)  # the first driver dies; its worker goes on
    first.wait(timeout=30)
    with DriverLease.acquire(url) as successor:  # taken over at once: the holder is provably gone
        assert ResultStore.open(url, CONFIG, CATALOG_HASH, restart=True) is None
        recreated = ResultStore.create(url, IDS, BLOCK_SIZE, [], {"other": "config"}, "another-catalog")
        with pytest.raises(StoreError, match="this writer's driver lease is no longer the store's") as caught:
            worker.write_block(1, **block_arguments(worker, 1), fence=token)
        assert classify(caught.value) is Fault.ENVIRONMENT  # a fenced writer commits nothing, and stops
        assert recreated.pending_blocks() == list(range(recreated.n_blocks))
        assert not os.path.exists(os.path.join(url, "checksum", "c", "1"))  # nothing of block 1 was written

        recreated.mark_block(2, Status.FAILED, "given up", 3, fence=successor.token)  # the successor's writes go on
        assert recreated.verify_blocks() == {}
    with pytest.raises(StoreError, match=r"held by nobody"):  # released: no writer of that run commits any more
        recreated.mark_block(3, Status.FAILED, "late", 3, fence=successor.token)


def test_an_unfenced_write_from_another_incarnation_of_the_store_does_not_verify(tmp_path):
    url = str(tmp_path / "run.zarr")
    stale = make_store(url)  # a worker opened this incarnation of the store ...
    assert ResultStore.open(url, CONFIG, CATALOG_HASH, restart=True) is None
    recreated = make_store(url)  # ... which was deleted and created again, same layout, same ids
    stale.write_block(4, **block_arguments(stale, 4))  # no fence: the write lands
    fresh = ResultStore.open_existing(url)
    assert (fresh.block_status(4) != Status.PENDING).all()  # it reads as committed ...
    found = fresh.verify_blocks()
    assert list(found) == [4] and "differ from their checksum" in found[4]  # ... but does not verify
    recreated.reset_blocks(found)
    assert recreated.pending_blocks() == list(range(recreated.n_blocks))
