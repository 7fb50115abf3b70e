"""Write and read throughput of the result store on local disk.

    .venv/bin/python benchmarks/store.py                     # 10,000 lenses, blocks of 16, 100x100 images
    .venv/bin/python benchmarks/store.py --n 2000 --writers 2

A store for N lenses is created with realistic arrays (8 terms, 1 evaluated 7-parameter vector, a 400-parameter
pixelized reconstruction with mesh centres, 100x100 model image and residuals that are NaN outside a 3" circular
mask at 0.1"/pixel), then:
- write: every block committed with write_block, by `--writers` processes (each its own blocks);
- read blocks: every array's chunk of every block, block by block (what a consumer of blocks does);
- read table: open_results(...).table(), every per-lens scalar of every lens;
- read images: the whole model_image array at once.
MB/s counts uncompressed array bytes; "stored" is the bytes on disk after Zarr's zstd compression.
"""

import argparse
import multiprocessing
import os
import platform
import tempfile
import time

import numpy as np

from storage.reader import open_results
from storage.schema import Status, result_specs
from storage.store import ResultStore

N_TEMPLATES = 8  # distinct synthetic blocks, reused so the benchmark measures the store, not the RNG


def block_arguments(store: ResultStore, k: int, pixel_scale: float = 0.1, mask_radius: float = 3.0) -> dict:
    rng = np.random.default_rng(k % N_TEMPLATES)
    block = store.block_slice(k)
    n = block.stop - block.start
    ny, nx = store.array("model_image").shape[1:]
    y, x = (np.mgrid[:ny, :nx] - np.array([(ny - 1) / 2, (nx - 1) / 2])[:, None, None]) * pixel_scale
    outside = y**2 + x**2 >= mask_radius**2
    results = {}
    for name in store.data_names:
        a = store.array(name)
        shape = (n, *a.shape[1:])
        results[name] = rng.normal(size=shape) if a.dtype.kind == "f" else rng.integers(0, 100, shape).astype(a.dtype)
    for name in ("model_image", "normalized_residuals"):
        results[name][:, outside] = np.nan
    side = int(np.sqrt(store.array("reconstruction").shape[1]))
    centres = np.stack(np.meshgrid(np.linspace(-1, 1, side), np.linspace(-1, 1, side), indexing="ij"), -1)
    results["mesh_centres"] = np.broadcast_to(centres.reshape(-1, 2), shape=(n, side * side, 2)).copy()
    return {
        "results": results,
        "status": np.full(n, Status.DONE, np.int8),
        "attempts": np.ones(n, np.int32),
        "error": [""] * n,
        "wall_time": rng.uniform(1, 2, n),
    }


def write_blocks(url: str, blocks: list[int]) -> None:
    store = ResultStore.open_existing(url, writable=True)
    templates = {}
    for k in blocks:
        block = store.block_slice(k)
        key = (k % N_TEMPLATES, block.stop - block.start)
        if key not in templates:
            templates[key] = block_arguments(store, k)
        store.write_block(k, **templates[key])


def block_bytes(store: ResultStore) -> int:
    """Uncompressed bytes of one full block across every array but id (strings counted as empty)."""
    return sum(
        store.block_size * int(np.prod(store.array(n).shape[1:])) * store.array(n).dtype.itemsize
        for n in store.names
        if store.array(n).dtype.kind != "T"
    )


def stored_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="lenses")
    parser.add_argument("--block-size", type=int, default=16)
    parser.add_argument("--image", type=int, default=100, help="image side, pixels")
    parser.add_argument("--source", type=int, default=400, help="reconstruction size (a square mesh)")
    parser.add_argument("--writers", type=int, default=1, help="processes writing blocks at once")
    parser.add_argument("--dir", default=None, help="where to put the store (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        url = os.path.join(folder, "bench.zarr")
        specs = result_specs((args.image, args.image), 7, 1, args.source, pixelized=True)
        ids = [f"lens-{i:06d}" for i in range(args.n)]
        start = time.perf_counter()
        store = ResultStore.create(url, ids, args.block_size, specs, {"benchmark": True}, "0" * 64)
        create_s = time.perf_counter() - start
        n_blocks, mb_per_block = store.n_blocks, block_bytes(store) / 1e6
        total_mb = mb_per_block * args.n / args.block_size

        start = time.perf_counter()
        assignments = [list(range(w, n_blocks, args.writers)) for w in range(args.writers)]
        if args.writers == 1:
            write_blocks(url, assignments[0])
        else:
            context = multiprocessing.get_context("spawn")
            workers = [context.Process(target=write_blocks, args=(url, blocks)) for blocks in assignments]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
                assert worker.exitcode == 0
        write_s = time.perf_counter() - start

        store = ResultStore.open_existing(url)
        assert store.pending_blocks() == []
        start = time.perf_counter()
        for k in range(n_blocks):
            block = store.block_slice(k)
            for name in store.names:
                store.array(name)[block]
        read_blocks_s = time.perf_counter() - start

        start = time.perf_counter()
        table = open_results(url).table()
        table_s = time.perf_counter() - start
        assert len(table) == args.n

        start = time.perf_counter()
        images = store.read_array("model_image")
        images_s = time.perf_counter() - start
        images_mb = images.nbytes / 1e6

        on_disk = stored_bytes(url) / 1e6

    print(
        f"store benchmark: {args.n} lenses, blocks of {args.block_size} ({n_blocks} blocks), "
        f"{args.image}x{args.image} images, {args.source}-parameter reconstruction, {args.writers} writer(s)"
    )
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(
        f"create (arrays + ids): {create_s:.2f} s; {mb_per_block:.2f} MB per block uncompressed, "
        f"{total_mb:.0f} MB in all, {on_disk:.0f} MB stored"
    )
    print(f"{'phase':<14}{'seconds':>10}{'blocks/s':>12}{'lenses/s':>12}{'MB/s':>10}")
    rows = [
        ("write", write_s, n_blocks, total_mb),
        ("read blocks", read_blocks_s, n_blocks, total_mb),
        ("read table", table_s, None, None),
        ("read images", images_s, None, images_mb),
    ]
    for phase, seconds, blocks, mb in rows:
        blocks_s = f"{blocks / seconds:.1f}" if blocks else "-"
        mb_s = f"{mb / seconds:.0f}" if mb else "-"
        print(f"{phase:<14}{seconds:>10.2f}{blocks_s:>12}{args.n / seconds:>12.0f}{mb_s:>10}")


if __name__ == "__main__":
    main()
