"""A writer killed (SIGKILL) after a block's data but before its status: the block reads as not done, and
redoing it gives a store equal to a clean run, array by array."""

import os
import signal
import subprocess
import sys

import numpy as np
from synthetic_blocks import block_arguments, make_store

from storage.schema import Status
from storage.store import ResultStore

KILLED_BLOCK = 2

# The first two phases of write_block (data, then attempts/error/wall_time) with different values than the
# clean run (seed 7: a previous attempt), then the writer stops before the status chunk and is killed there.
DYING_WRITER = f"""
import sys, time
from synthetic_blocks import block_arguments
from storage.store import ResultStore
store = ResultStore.open_existing(sys.argv[1], writable=True)
chunks = store._prepare({KILLED_BLOCK}, **block_arguments(store, {KILLED_BLOCK}, seed=7))
chunks.pop("status")
store._write({KILLED_BLOCK}, chunks)
print("data written, status not yet", flush=True)
time.sleep(600)
"""


def test_a_writer_killed_before_its_status_leaves_the_block_pending_and_a_redo_equals_a_clean_run(tmp_path):
    clean = make_store(str(tmp_path / "clean.zarr"))
    for k in range(clean.n_blocks):
        clean.write_block(k, **block_arguments(clean, k))

    crashed_url = str(tmp_path / "crashed.zarr")
    crashed = make_store(crashed_url)
    for k in range(clean.n_blocks):
        if k != KILLED_BLOCK:
            crashed.write_block(k, **block_arguments(crashed, k))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
    writer = subprocess.Popen(
        [sys.executable, "-c", DYING_WRITER, crashed_url], stdout=subprocess.PIPE, text=True, env=env
    )
    assert writer.stdout.readline().strip() == "data written, status not yet"
    os.kill(writer.pid, signal.SIGKILL)
    assert writer.wait(timeout=30) == -signal.SIGKILL

    resumed = ResultStore.open(crashed_url, clean.attrs["config"], clean.attrs["catalog_hash"])
    assert os.path.exists(os.path.join(crashed_url, "model_image", "c", str(KILLED_BLOCK), "0", "0"))  # data landed
    assert (resumed.block_status(KILLED_BLOCK) == Status.PENDING).all()
    assert resumed.pending_blocks() == [KILLED_BLOCK]

    for k in resumed.pending_blocks():
        redo = block_arguments(resumed, k)
        resumed.write_block(k, **{**redo, "attempts": redo["attempts"] + 1, "wall_time": redo["wall_time"] * 3})

    assert resumed.pending_blocks() == []
    assert resumed.verify_blocks() == {} and clean.verify_blocks() == {}
    assert resumed.names == clean.names
    for name in clean.names:  # checksums cover wall_time and attempts, and each store's own store_id
        if name not in ("wall_time", "attempts", "checksum"):
            np.testing.assert_array_equal(resumed.read_array(name), clean.read_array(name), err_msg=name)
