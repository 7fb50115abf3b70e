"""Checksums of committed results: what a store serves is what its writer committed, or it says so.

Two layers, both in schema 2:
- every chunk is Zstd-compressed with Zstd's frame checksum (xxhash64 of the content), so a flipped or lost byte
  inside a stored object makes any reader (a notebook, xarray) fail on it instead of serving wrong numbers;
- every dataset's `checksum` (uint64) is a digest of its row of every other array, written by
  ResultStore.write_block with the block's data and before its status:

      checksum(i) = blake2b-64( store_id ‖ for each array A ≠ checksum, in name order: A ‖ bytes(A[i]) )

  bytes(A[i]): numbers little-endian in A's dtype with every NaN written as the one quiet NaN (a NaN's payload
  need not survive a store that skips all-fill chunks); text as UTF-8, each value preceded by its length.
  It catches what a frame checksum cannot see: a deleted chunk (which reads as the fill value), a chunk from
  another writer or another store (`store_id` is drawn at creation, so a stale writer of a store that was
  deleted and created again does not match), and a status chunk that claims DONE for data that is not there.

`check_block` judges one block from what was read of it (each array's chunk, or the exception reading it):
None when it is not committed or intact, else the reason.
"""

import hashlib
from collections.abc import Mapping

import numpy as np

from storage.schema import Status

CHECKSUM = "checksum"
_CANONICAL_NAN = np.float64("nan")


def row_digests(store_id: str, chunks: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """The `checksum` of each of the n rows of `chunks` (array name -> (n, ...) values; `checksum` ignored)."""
    hashes = [hashlib.blake2b(store_id.encode(), digest_size=8) for _ in range(n)]
    for name in sorted(chunks):
        if name == CHECKSUM:
            continue
        label = name.encode() + b"\0"
        for h, row in zip(hashes, _row_bytes(np.asarray(chunks[name]), n)):
            h.update(label)
            h.update(row)
    return np.array([int.from_bytes(h.digest(), "little") for h in hashes], np.uint64)


def _row_bytes(values: np.ndarray, n: int) -> list[bytes]:
    """Each row's canonical bytes (see the module docstring)."""
    if values.dtype.kind in "TUSO":
        texts = [str(v).encode() for v in values.reshape(n, -1).ravel().tolist()]
        per_row = len(texts) // n if n else 0
        return [
            b"".join(len(t).to_bytes(8, "little") + t for t in texts[i * per_row:(i + 1) * per_row])
            for i in range(n)
        ]
    if values.dtype.kind == "f":
        values = np.where(np.isnan(values), _CANONICAL_NAN, values).astype(values.dtype)
    values = np.ascontiguousarray(values, values.dtype.newbyteorder("<")).reshape(n, -1)
    return [row.tobytes() for row in values]


def check_block(store_id: str, read: Mapping[str, np.ndarray | BaseException], n: int) -> str | None:
    """Why block data `read` (every array's chunk of one block of n datasets, or the exception reading it) is
    not what was committed; None when the block is intact or not committed (every status PENDING)."""
    unreadable = {name: e for name, e in read.items() if isinstance(e, BaseException)}
    if "status" in unreadable:
        return f"status: unreadable chunk ({_describe(unreadable['status'])})"
    status = read["status"]
    if (status == Status.PENDING).all():
        return None
    if unreadable:
        return "; ".join(f"{name}: unreadable chunk ({_describe(e)})" for name, e in sorted(unreadable.items()))
    if (status == Status.PENDING).any():
        return f"status: {int((status == Status.PENDING).sum())} of {n} datasets PENDING in a committed block"
    stored = read[CHECKSUM]
    wrong = np.flatnonzero(row_digests(store_id, read, n) != stored)
    if wrong.size == 0:
        return None
    ids = [str(read["id"][i]) for i in wrong]
    missing = "; no checksum written" if (stored[wrong] == 0).all() else ""
    return (f"{len(ids)} of {n} datasets differ from their checksum ({', '.join(ids[:5])}"
            f"{', ...' if len(ids) > 5 else ''}): a chunk was changed, deleted or written by another writer{missing}")


def _describe(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())[:200]
