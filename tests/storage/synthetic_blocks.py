"""Deterministic block results for store tests: what block k holds is a pure function of k (and a seed).

Importable by child processes (multiprocessing spawn, subprocess) because pytest puts this folder on sys.path.
"""

import numpy as np

from storage.schema import Status, result_specs
from storage.store import ResultStore

BLOCK_SIZE = 4
N_DATASETS = 8 * 3 * BLOCK_SIZE - 1  # 24 blocks, the last one short
IDS = [f"lens-{i:03d}" for i in range(N_DATASETS)]
SPECS = result_specs((12, 10), n_parameters=7, n_evaluations=3, max_reconstruction_size=25, pixelized=True)
CONFIG = {"mode": "evaluate", "source": {"kind": "rectangular", "shape": [5, 5]}, "block_size": BLOCK_SIZE}
CATALOG_HASH = "c0ffee" * 10


def make_store(url: str) -> ResultStore:
    return ResultStore.create(url, IDS, BLOCK_SIZE, SPECS, CONFIG, CATALOG_HASH, attrs={"shape_buckets": [[12, 10]]})


def block_arguments(store: ResultStore, k: int, seed: int = 0) -> dict:
    """write_block's keyword arguments for block k: random results, one INVALID dataset in every third block."""
    rng = np.random.default_rng([seed, k])
    block = store.block_slice(k)
    n = block.stop - block.start
    results = {}
    for name in store.data_names:
        a = store.array(name)
        shape = (n, *a.shape[1:])
        if a.dtype.kind == "f":
            values = rng.normal(size=shape)
            if name in ("model_image", "normalized_residuals"):
                values[:, :2, :] = np.nan  # outside the mask
            results[name] = values
        else:
            results[name] = rng.integers(0, 100, size=shape).astype(a.dtype)
    status = np.full(n, Status.DONE, np.int8)
    error = [""] * n
    if k % 3 == 0:
        status[0] = Status.INVALID
        error[0] = f"dataset {store.read_array('id')[block.start]}: psf.fits: PSF sums to zero"
    return {
        "results": results,
        "status": status,
        "attempts": np.ones(n, np.int32),
        "error": error,
        "wall_time": rng.uniform(1, 2, size=n),
    }


def write_blocks(url: str, blocks: list[int], barrier=None) -> None:
    """A worker: open the store and commit `blocks` (after all workers reach `barrier`, if given)."""
    store = ResultStore.open_existing(url, writable=True)
    if barrier is not None:
        barrier.wait()
    for k in blocks:
        store.write_block(k, **block_arguments(store, k))
