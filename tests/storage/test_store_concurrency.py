"""Many workers commit different blocks of one store at the same time: nothing is lost, every value is exact."""

import multiprocessing

import numpy as np
from synthetic_blocks import block_arguments, make_store, write_blocks

from storage.schema import Status
from storage.store import ResultStore

N_PROCESSES = 8


def test_eight_processes_writing_different_blocks_lose_nothing(tmp_path):
    url = str(tmp_path / "run.zarr")
    store = make_store(url)
    assignments = [list(range(p, store.n_blocks, N_PROCESSES)) for p in range(N_PROCESSES)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(N_PROCESSES)
    workers = [context.Process(target=write_blocks, args=(url, blocks, barrier)) for blocks in assignments]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * N_PROCESSES

    store = ResultStore.open_existing(url)
    assert store.pending_blocks() == []
    for k in range(store.n_blocks):
        expected = block_arguments(store, k)
        block = store.block_slice(k)
        for name, values in expected["results"].items():
            np.testing.assert_array_equal(store.array(name)[block], values, err_msg=f"block {k} {name}")
        np.testing.assert_array_equal(store.block_status(k), expected["status"])
        np.testing.assert_array_equal(store.array("wall_time")[block], expected["wall_time"])
        assert store.array("error")[block].tolist() == expected["error"]
    counts = store.status_counts()
    assert counts[Status.INVALID] == len(range(0, store.n_blocks, 3))
    assert counts[Status.DONE] + counts[Status.INVALID] == store.n_datasets
