"""The result store: one Zarr v3 group per run, committed block by block.

Layout (`url` is a local folder or an s3:// / gs:// URL):

    zarr.json                    root group; its attributes are the run metadata (see schema.py)
    lease.json                   the driver's lease (lease.py); not a Zarr object
    NAME/zarr.json               one array per ArraySpec: shape (N, *trailing), chunks (B, *trailing),
    NAME/c/K[/0...]              dimension_names ("dataset", *dims): block K of an array is one stored object
    STAGE/NAME/...               a later pipeline stage's arrays (schema.stage_specs), chunked the same way

Protocol
- Only the driver creates the store, its arrays and its attributes (`create`; the `created` attribute is written
  last, so a store whose creation was interrupted is refused), and checks a resumed one (`open`). The driver
  holds the lease (lease.py) before it opens, restarts or creates the store. Its other writes are named methods
  (`write_planned`, `write_shape_buckets`, `record_driver_run`): nobody outside storage writes attributes or
  arrays but through them and `write_block`.
- A worker commits block k with `write_block`: every data chunk of the block with its attempts, error,
  wall_time and checksums (storage.integrity), then its status chunk LAST. A block whose status was never
  written reads PENDING, however much of its data landed, and is redone; redoing rewrites every chunk of the
  block (arrays left out are rewritten with their fill), so the result never depends on what a dead writer left.
  Writes are whole chunks: rewriting a block with the same inputs writes the same bytes, and writers of
  different blocks never touch the same object.
- Fencing: a writer passes its driver's lease token as `fence`; `write_block` refuses (StoreError) when the
  store's lease (lease.json) is no longer held with that token — its driver's lease expired and another driver
  took the store, or it was released — checked before the data and again before the status. A write that slips
  between the last check and the status (a window of one status write) is caught by `verify_blocks` on resume
  when it came from another incarnation of the store (checksums include `store_id`).
- Integrity: `verify_blocks()` re-reads committed blocks and returns {block: reason} for those that are not
  what was committed (an unreadable chunk, a flipped byte, a deleted chunk, an empty status chunk, a stale
  writer's block); `reset_blocks` makes such blocks PENDING (their status chunk deleted), so the store no longer
  claims them and a resume refits them. Reading status never raises on a damaged status chunk: `status()` reads
  it as PENDING (`read_blocks` says which chunks could not be read).
- Inputs: `changed_inputs(fingerprints)` lists committed blocks whose lenses' files changed since they were
  planned (their `input_fingerprint` differs from this run's), for the driver to reset and refit.
- Resume: `pending_blocks()` lists the blocks holding any PENDING dataset, i.e. never committed. FAILED datasets
  were committed (by a worker, or by the driver with `write_block` after it gave up on the block); retrying them
  is the driver's choice (`blocks_with(Status.FAILED)`).
"""

import asyncio
import json
import os
import posixpath
import socket
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import zarr
from zarr.codecs import ZstdCodec
from zarr.core.sync import sync

from storage.errors import StoreError
from storage.integrity import CHECKSUM, check_block, row_digests
from storage.lease import LEASE_FILE, read_lease
from storage.locations import filesystem
from storage.schema import BOOKKEEPING, DATASET_DIM, SCHEMA_VERSION, ArraySpec, Status, block_slice, n_blocks
from storage.zarr_io import basename, bounded, delete_contents, open_arrays, zarr_store

COMMIT_ARRAYS = ("attempts", "error", "wall_time", "status")  # written by write_block's own arguments, status last
RUN_ATTRIBUTES = (
    "schema_version",
    "lensfleet_version",
    "config",
    "catalog_hash",
    "block_size",
    "n_datasets",
    "store_id",
    "arrays",
    "created",
)
COMPRESSOR = ZstdCodec(level=0, checksum=True)  # Zstd's frame checksum: a damaged chunk fails to decode
COMMITTED = (Status.DONE, Status.FAILED, Status.INVALID)


class ResultStore:
    """A run's result store. Make one with `create`, `open` (driver) or `open_existing` (workers, readers)."""

    def __init__(self, url: str, group: zarr.Group, storage_options: dict | None):
        self.url = url
        self.storage_options = storage_options
        self.group = group
        self.attrs: dict = group.attrs.asdict()
        if "created" not in self.attrs:
            raise StoreError(f"store {url} is incomplete (its creation was interrupted); start over with restart")
        self.block_size: int = int(self.attrs["block_size"])
        self.n_datasets: int = int(self.attrs["n_datasets"])
        self.n_blocks: int = n_blocks(self.n_datasets, self.block_size)
        self.store_id: str | None = self.attrs.get("store_id")
        self._arrays: dict[str, zarr.Array] = open_arrays(group, self.attrs.get("arrays"))
        self.names: tuple[str, ...] = tuple(sorted(self._arrays))
        self.data_names: tuple[str, ...] = tuple(
            n for n in self.names if n not in ("id", CHECKSUM, *COMMIT_ARRAYS)
        )

    @classmethod
    def create(
        cls,
        url: str,
        ids: Sequence[str],
        block_size: int,
        specs: Sequence[ArraySpec],
        config: Mapping,
        catalog_hash: str,
        attrs: Mapping | None = None,
        storage_options: dict | None = None,
    ) -> "ResultStore":
        """Create the store with every array at its final shape and write the ids. Driver only."""
        ids = [str(i) for i in ids]
        if not ids or len(set(ids)) != len(ids) or "" in ids:
            raise ValueError("ids must be non-empty, unique and not blank")
        if block_size < 1:
            raise ValueError(f"block_size {block_size} must be >= 1")
        all_specs = [*BOOKKEEPING, *specs]
        names = [spec.name for spec in all_specs]
        if len(set(names)) != len(names):
            raise ValueError(f"array names repeat: {sorted(n for n in set(names) if names.count(n) > 1)}")
        clash = set(attrs or {}) & set(RUN_ATTRIBUTES)
        if clash:
            raise ValueError(f"attrs may not override run attributes {sorted(clash)}")
        fs, root = filesystem(url, storage_options)
        fs.invalidate_cache()
        if fs.exists(posixpath.join(root, "zarr.json")):
            raise StoreError(f"store {url} already exists; resume it, or start over with restart")
        if fs.exists(root) and any(basename(p) != LEASE_FILE for p in fs.ls(root, detail=False)):
            raise StoreError(f"{url} exists and is not empty; refusing to create a store over it")

        run_attrs = {
            "schema_version": SCHEMA_VERSION,
            "lensfleet_version": _lensfleet_version(),
            "config": _json(config),
            "catalog_hash": catalog_hash,
            "block_size": int(block_size),
            "n_datasets": len(ids),
            "store_id": uuid.uuid4().hex,
            "arrays": names,
            **_json(attrs or {}),
        }
        group = zarr.create_group(
            zarr_store(url, storage_options, read_only=False), zarr_format=3, attributes=run_attrs
        )
        for spec in all_specs:
            group.create_array(
                spec.name,
                shape=(len(ids), *spec.shape),
                chunks=(block_size, *spec.shape),
                dtype=str if spec.dtype == "str" else spec.dtype,
                fill_value=spec.fill,
                compressors=COMPRESSOR,
                dimension_names=(DATASET_DIM, *spec.dims),
            )
        group["id"][:] = np.asarray(ids, dtype=str)
        group.attrs["created"] = datetime.now(UTC).isoformat(timespec="seconds")  # last: the store is complete
        return cls(url, group, storage_options)

    @classmethod
    def open(
        cls,
        url: str,
        config: Mapping,
        catalog_hash: str,
        restart: bool = False,
        storage_options: dict | None = None,
    ) -> "ResultStore | None":
        """Open a store to resume it; None when there is none (or `restart` deleted it): then `create` one.

        Raises StoreError saying what differs when the store was made with another schema, config or catalog.
        `restart` deletes the store (all of it but the lease), without checks.
        """
        fs, root = filesystem(url, storage_options)
        fs.invalidate_cache()
        if not fs.exists(posixpath.join(root, "zarr.json")):
            return None
        group = zarr.open_group(zarr_store(url, storage_options, read_only=False), mode="r+", zarr_format=3)
        stored = group.attrs.asdict()
        if "schema_version" not in stored:
            raise StoreError(f"{url} is a Zarr group but not a lensfleet store; refusing to touch it")
        if restart:
            delete_contents(fs, root)
            return None
        store = cls(url, group, storage_options)
        differences = []
        if stored["schema_version"] != SCHEMA_VERSION:
            differences.append(f"schema version {stored['schema_version']} (store) != {SCHEMA_VERSION} (this code)")
        if stored["catalog_hash"] != catalog_hash:
            differences.append(
                f"catalog hash {stored['catalog_hash'][:12]}… (store) != {catalog_hash[:12]}… (this run)"
            )
        differences += [f"config {d}" for d in config_differences(stored["config"], _json(config))]
        if differences:
            raise StoreError(
                f"store {url} belongs to another run: {'; '.join(differences)}. "
                "Resume with the same catalog and config, or start over with restart"
            )
        return store

    @classmethod
    def open_existing(cls, url: str, writable: bool = False, storage_options: dict | None = None) -> "ResultStore":
        """Open a store without checks: read-only for readers, writable for workers committing blocks."""
        try:
            group = zarr.open_group(
                zarr_store(url, storage_options, read_only=not writable),
                mode="r+" if writable else "r",
                zarr_format=3,
            )
        except FileNotFoundError:
            raise StoreError(f"no result store at {url}") from None
        if "schema_version" not in group.attrs:
            raise StoreError(f"{url} is a Zarr group but not a lensfleet store")
        return cls(url, group, storage_options)

    def array(self, name: str) -> zarr.Array:
        """The Zarr array `name` (lazy)."""
        if name not in self._arrays:
            raise KeyError(f"no array {name!r} in store {self.url}; arrays are {list(self.names)}")
        return self._arrays[name]

    def read_array(self, name: str) -> np.ndarray:
        """All of array `name`, as numpy (text as numpy's StringDType)."""
        return self.array(name)[...]

    def block_slice(self, k: int) -> slice:
        """The datasets of block k (the last block may be short)."""
        return block_slice(k, self.block_size, self.n_datasets)

    def read_blocks(self, name: str) -> tuple[np.ndarray, dict[int, str]]:
        """All of array `name`, read block by block: a chunk that cannot be read (damaged) reads as the fill
        value, and {block: error} says which did."""
        a = self.array(name)
        parts = self._read_chunks(name, range(self.n_blocks))
        failed = {k: f"{type(e).__name__}: {e}" for k, e in enumerate(parts) if isinstance(e, BaseException)}
        for k in failed:
            parts[k] = np.full((self._block_length(k), *a.shape[1:]), a.fill_value, a.dtype)
        return np.concatenate(parts), failed

    def status(self) -> np.ndarray:
        """Every dataset's status code; a damaged status chunk reads PENDING (its block is not committed)."""
        return self.read_blocks("status")[0]

    def block_status(self, k: int) -> np.ndarray:
        """The status codes (see `Status`) of block k's datasets (PENDING where the chunk is damaged)."""
        (chunk,) = self._read_chunks("status", [k])
        return np.zeros(self._block_length(k), np.int8) if isinstance(chunk, BaseException) else chunk

    def blocks_with(self, *statuses: Status) -> list[int]:
        """Blocks holding at least one dataset with one of `statuses`."""
        hit = np.isin(self.status(), [int(s) for s in statuses])
        return sorted({int(k) for k in np.flatnonzero(hit) // self.block_size})

    def pending_blocks(self) -> list[int]:
        """Blocks never committed (any dataset PENDING, or the status chunk damaged): what a resume must do."""
        return self.blocks_with(Status.PENDING)

    def status_counts(self) -> dict[Status, int]:
        """How many datasets are in each status."""
        counts = np.bincount(self.status().astype(np.int64), minlength=len(Status))
        return {status: int(counts[status]) for status in Status}

    def verify_blocks(self, blocks: Iterable[int] | None = None) -> dict[int, str]:
        """{block: why} for the committed blocks (of `blocks`, default all) whose stored data are not what was
        committed (storage.integrity.check_block); every array's chunk of each block is read and checked."""
        if self.store_id is None:
            raise StoreError(f"store {self.url} has schema {self.attrs.get('schema_version')}: no checksums to verify")
        blocks = list(range(self.n_blocks) if blocks is None else blocks)

        async def one(k: int) -> str | None:
            read = dict(zip(self.names, await asyncio.gather(*(self._read_chunk(n, k) for n in self.names))))
            return check_block(self.store_id, read, self._block_length(k))

        reasons = sync(bounded(map(one, blocks)))
        return {k: reason for k, reason in zip(blocks, reasons) if reason is not None}

    def reset_blocks(self, blocks: Iterable[int], fence: str | None = None) -> None:
        """Make blocks PENDING again (their status chunk deleted, and every pipeline stage's stage_status chunk,
        so that no stage of theirs is taken as finished; data stays until they are redone) so that the store
        stops claiming them: corrupt blocks, or blocks whose inputs changed. Driver only."""
        blocks = list(blocks)
        for k in blocks:
            self.block_slice(k)  # IndexError when out of range, before anything is deleted
        self._check_fence(fence, "reset blocks")
        statuses = [self.array(n) for n in self.names if n.rpartition("/")[2] == "stage_status"]
        statuses.append(self.array("status"))  # last: a reset interrupted midway leaves the block claimed, redone

        async def delete(a, k: int) -> None:
            await a.store_path.store.delete(f"{a.path}/{a.metadata.encode_chunk_key((k,))}")

        for a in statuses:
            sync(bounded(delete(a, k) for k in blocks))

    def changed_inputs(self, fingerprints: Sequence[str]) -> dict[int, list[str]]:
        """{block: ids} of committed datasets whose recorded `input_fingerprint` differs from `fingerprints` (in
        store order; "" = unknown, on either side, never differs)."""
        if len(fingerprints) != self.n_datasets:
            raise ValueError(f"{len(fingerprints)} fingerprints for {self.n_datasets} datasets")
        stored = np.asarray(self.read_blocks("input_fingerprint")[0].tolist(), dtype=object)
        given = np.asarray(list(fingerprints), dtype=object)
        changed = (self.status() != Status.PENDING) & (stored != "") & (given != "") & (stored != given)
        ids = self.read_array("id").tolist()
        out: dict[int, list[str]] = {}
        for i in np.flatnonzero(changed):
            out.setdefault(int(i) // self.block_size, []).append(str(ids[i]))
        return out

    def write_block(
        self,
        k: int,
        results: Mapping[str, np.ndarray],
        status: np.ndarray,
        attempts: np.ndarray,
        error: Sequence[str],
        wall_time: np.ndarray,
        fence: str | None = None,
    ) -> None:
        """Commit block k: every data array's chunk with attempts, error, wall_time and the datasets' checksums,
        then status last.

        `results` maps data-array names (`data_names`: results, image_shape, shape_bucket, input_fingerprint) to
        arrays of shape (block length, *trailing); arrays left out are written with their fill. `status` holds
        DONE, FAILED or INVALID for each dataset. Everything is checked before the first write. `fence`: the
        writer's driver lease token; StoreError (nothing more written) once it is no longer the store's.
        """
        if self.store_id is None:
            raise StoreError(f"store {self.url} has schema {self.attrs.get('schema_version')}; this code writes "
                             f"schema {SCHEMA_VERSION}: start over with restart")
        chunks = self._prepare(k, results, status, attempts, error, wall_time)
        chunks[CHECKSUM] = row_digests(self.store_id, {**chunks, "id": self.array("id")[self.block_slice(k)]},
                                       self._block_length(k))
        status_chunk = chunks.pop("status")
        self._check_fence(fence, f"commit block {k}")
        self._write(k, chunks)
        self._check_fence(fence, f"commit block {k}")
        self._write(k, {"status": status_chunk})

    def read_block(self, k: int) -> dict[str, np.ndarray]:
        """Block k's chunk of every data array (their fills where never written)."""
        block = self.block_slice(k)

        async def read_all():
            return await asyncio.gather(*(self.array(name).async_array.getitem(block) for name in self.data_names))

        return dict(zip(self.data_names, sync(read_all())))

    def write_stage(self, k: int, results: Mapping[str, np.ndarray], stage_status: str,
                    fence: str | None = None) -> None:
        """Commit one pipeline stage of block k, fenced like write_block: the chunks of the data arrays in
        `results`, then the chunk of `stage_status` (one of them) last. The datasets' `status` is left alone:
        `write_block` commits it (and the block's checksums) once every stage is done."""
        n = self._block_length(k)
        unknown = set(results) - set(self.data_names)
        if unknown or stage_status not in results:
            raise ValueError(f"block {k}: cannot write stage {sorted(unknown) or stage_status!r}")
        chunks = {name: _cast(name, value, self.array(name).dtype, (n, *self.array(name).shape[1:]))
                  for name, value in results.items()}
        last = chunks.pop(stage_status)
        self._check_fence(fence, f"commit a stage of block {k}")
        self._write(k, chunks)
        self._check_fence(fence, f"commit a stage of block {k}")
        self._write(k, {stage_status: last})

    def write_planned(self, shape_bucket: np.ndarray, image_shape: np.ndarray) -> None:
        """Write every dataset's planned shape bucket (N,) and image shape (N, 2) before any block commits, so
        they read before their block is committed (committing a block writes them again). Driver only."""
        n = self.n_datasets
        self.array("shape_bucket")[:] = _cast("shape_bucket", shape_bucket, np.dtype(np.int32), (n,))
        self.array("image_shape")[:] = _cast("image_shape", image_shape, np.dtype(np.int32), (n, 2))

    def write_shape_buckets(self, buckets: Sequence[Mapping]) -> None:
        """Set the root attribute `shape_buckets` (what the `shape_bucket` array indexes). Driver only."""
        self._set_attr("shape_buckets", list(buckets))

    def record_driver_run(self) -> int:
        """Append this driver run to the root attribute `runs` (its number from 1, start time, host, pid, whether
        it resumed the store) and return its number. Driver only."""
        runs = list(self.attrs.get("runs", []))
        runs.append({
            "run": len(runs) + 1,
            "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "resumed": bool(runs),
        })
        self._set_attr("runs", runs)
        return len(runs)

    def _set_attr(self, name: str, value) -> None:
        """Write root attribute `name` where it differs from what the store holds."""
        value = _json({name: value})[name]
        if self.attrs.get(name) != value:
            self.group.attrs[name] = value
            self.attrs[name] = value

    def mark_block(self, k: int, status: Status, error: str, attempts: int, fence: str | None = None) -> None:
        """Commit a block that produced no results (the driver gave up on it): fills, then one status for all."""
        n = self._block_length(k)
        self.write_block(k, {}, np.full(n, status), np.full(n, attempts), [error] * n, np.full(n, np.nan), fence)

    def _check_fence(self, fence: str | None, what: str) -> None:
        """StoreError unless the store's lease is held with token `fence` (no check without one)."""
        if fence is None:
            return
        holder = read_lease(self.url, self.storage_options)
        if holder is None or holder.get("token") != fence:
            now = "nobody" if holder is None else f"driver {holder.get('host')}:{holder.get('pid')}"
            raise StoreError(f"store {self.url}: refusing to {what}: this writer's driver lease is no longer the "
                             f"store's (it is held by {now}); the block stays for the store's current driver")

    def _read_chunks(self, name: str, blocks: Iterable[int]) -> list[np.ndarray | BaseException]:
        """Array `name`'s chunk of each block, or the exception reading it."""
        return sync(bounded(self._read_chunk(name, k) for k in blocks))

    async def _read_chunk(self, name: str, k: int) -> np.ndarray | BaseException:
        array, block = self.array(name).async_array, self.block_slice(k)
        try:
            return await array.getitem(block)
        except Exception as e:  # a damaged chunk: Zstd errors, impossible lengths, MemoryError of a bad header
            return e

    def _block_length(self, k: int) -> int:
        block = self.block_slice(k)
        return block.stop - block.start

    def _prepare(self, k, results, status, attempts, error, wall_time) -> dict[str, np.ndarray]:
        """Every chunk of block k, checked and cast to its array's dtype."""
        n = self._block_length(k)
        unknown = set(results) - set(self.data_names)
        if unknown:
            raise ValueError(f"block {k}: cannot write {sorted(unknown)}; data arrays are {list(self.data_names)}")
        chunks = {}
        for name in self.data_names:
            a = self.array(name)
            shape = (n, *a.shape[1:])
            if name in results:
                chunks[name] = _cast(name, results[name], a.dtype, shape)
            else:
                chunks[name] = np.full(shape, a.fill_value, dtype=a.dtype)
        chunks["attempts"] = _cast("attempts", attempts, np.dtype(np.int32), (n,))
        chunks["error"] = _cast("error", np.asarray(list(error), dtype=str), np.dtype(str), (n,))
        chunks["wall_time"] = _cast("wall_time", wall_time, np.dtype(np.float64), (n,))
        chunks["status"] = _cast("status", status, np.dtype(np.int8), (n,))
        if not np.isin(chunks["status"], [int(s) for s in COMMITTED]).all():
            raise ValueError(f"block {k}: status must be DONE, FAILED or INVALID, got {chunks['status'].tolist()}")
        return chunks

    def _write(self, k: int, chunks: Mapping[str, np.ndarray]) -> None:
        """Write block k's chunk of each named array, concurrently."""
        block = self.block_slice(k)

        async def write_all():
            await asyncio.gather(*(self.array(name).async_array.setitem(block, c) for name, c in chunks.items()))

        sync(write_all())


def config_differences(stored: Mapping, given: Mapping, prefix: str = "") -> list[str]:
    """Human-readable differences between two nested configs, as `key.path: stored (store) != given (this run)`."""
    differences = []
    for key in sorted(set(stored) | set(given)):
        name = f"{prefix}{key}"
        if key not in given:
            differences.append(f"{name}: only in the store ({stored[key]!r})")
        elif key not in stored:
            differences.append(f"{name}: only in this run ({given[key]!r})")
        elif isinstance(stored[key], Mapping) and isinstance(given[key], Mapping):
            differences += config_differences(stored[key], given[key], f"{name}.")
        elif stored[key] != given[key]:
            differences.append(f"{name}: {stored[key]!r} (store) != {given[key]!r} (this run)")
    return differences


def _cast(name: str, value, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value)
    if array.shape != shape:
        raise ValueError(f"{name}: shape {array.shape}, expected {shape}")
    if dtype.kind in "TUO":
        return array.astype(object).astype(str)
    return array.astype(dtype, casting="same_kind")


def _json(value: Mapping) -> dict:
    """`value` as JSON would store it (tuples become lists), so stored and given configs compare equal."""
    return json.loads(json.dumps(value))


def _lensfleet_version() -> str:
    try:
        return version("lensfleet")
    except PackageNotFoundError:
        return "unknown"
