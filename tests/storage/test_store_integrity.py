"""The store never lies (issue 11, point 5): a flipped byte, a chunk rewritten with other values, a deleted chunk,
an empty status chunk are found by `verify_blocks`, never served as DONE results; reading status never crashes;
`reset_blocks` makes exactly those blocks PENDING and redoing them gives the clean run's store. Real Zarr stores on
disk, damaged the way disks and people damage them."""

from __future__ import annotations

import os

import numpy as np
import pytest
from synthetic_blocks import block_arguments, make_store

from storage.schema import Status
from storage.store import ResultStore


def committed(url: str) -> ResultStore:
    store = make_store(url)
    for k in range(store.n_blocks):
        store.write_block(k, **block_arguments(store, k))
    return store


def chunk_file(store: ResultStore, name: str, k: int) -> str:
    return os.path.join(store.url, name, "c", str(k), *["0"] * (store.array(name).ndim - 1))


def flip_a_byte(path: str) -> None:
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x10
    open(path, "wb").write(bytes(data))


@pytest.fixture
def clean(tmp_path):
    return committed(str(tmp_path / "clean.zarr"))


def test_a_committed_store_verifies(clean):
    assert clean.verify_blocks() == {}
    assert (clean.read_array("checksum") != 0).all()


def test_verify_finds_each_damage_and_a_reset_refits_exactly_those_blocks(tmp_path, clean):
    store = committed(str(tmp_path / "damaged.zarr"))
    flip_a_byte(chunk_file(store, "model_image", 1))
    flip_a_byte(chunk_file(store, "figure_of_merit", 2))
    os.remove(chunk_file(store, "reconstruction", 3))
    open(chunk_file(store, "status", 4), "wb").close()  # 0 bytes
    block = store.block_slice(5)  # other values, validly encoded: only the checksum can tell
    store.array("chi_squared")[block] = store.array("chi_squared")[block] + 1e-9

    # never served: the Zstd frame checksum refuses a flipped byte, whoever reads it
    for name, k in (("model_image", 1), ("figure_of_merit", 2)):
        with pytest.raises(RuntimeError, match="Zstd"):
            store.array(name)[store.block_slice(k)]
    # reading status never crashes: the damaged status chunk reads PENDING, so its block is not committed
    reopened = ResultStore.open_existing(store.url, writable=True)
    assert (reopened.block_status(4) == Status.PENDING).all()
    assert reopened.pending_blocks() == [4]
    assert sum(reopened.status_counts().values()) == reopened.n_datasets

    found = reopened.verify_blocks()
    assert sorted(found) == [1, 2, 3, 4, 5]
    assert found[1].startswith("model_image: unreadable chunk (RuntimeError: Zstd")
    assert found[2].startswith("figure_of_merit: unreadable chunk (RuntimeError: Zstd")
    ids = reopened.read_array("id").tolist()
    for k in (3, 5):
        rows = ids[reopened.block_slice(k)]
        assert found[k] == (f"{len(rows)} of {len(rows)} datasets differ from their checksum ({', '.join(rows)}): "
                            "a chunk was changed, deleted or written by another writer"), found[k]
    assert found[4].startswith("status: unreadable chunk (RuntimeError: Zstd")
    assert reopened.verify_blocks([0, 6, 7]) == {}

    reopened.reset_blocks(found)
    assert reopened.pending_blocks() == [1, 2, 3, 4, 5]  # exactly the damaged blocks: a resume refits them
    assert reopened.verify_blocks() == {}
    for k in reopened.pending_blocks():
        reopened.write_block(k, **block_arguments(reopened, k))
    assert reopened.verify_blocks() == {} and reopened.pending_blocks() == []
    for name in clean.names:
        if name != "checksum":  # each store's checksums include its own store_id
            np.testing.assert_array_equal(reopened.read_array(name), clean.read_array(name), err_msg=name)


def test_a_block_another_store_wrote_does_not_verify(tmp_path, clean):
    """A stale writer of a store that was deleted and created again: same layout, another store_id."""
    other = committed(str(tmp_path / "recreated.zarr"))
    for name in other.names:  # block 2's objects of the old incarnation (the same values) land in the new one
        source = chunk_file(clean, name, 2)
        if os.path.exists(source):
            with open(source, "rb") as f, open(chunk_file(other, name, 2), "wb") as g:
                g.write(f.read())
    found = other.verify_blocks()
    assert list(found) == [2] and "differ from their checksum" in found[2]


def test_reset_blocks_checks_every_block_before_deleting_any(clean):
    with pytest.raises(IndexError):
        clean.reset_blocks([0, clean.n_blocks])
    assert clean.pending_blocks() == []
