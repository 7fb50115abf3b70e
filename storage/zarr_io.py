"""Zarr plumbing of the result store (storage.store): opening a location, its arrays, bounded concurrent I/O,
deleting a store. Nothing here knows the schema."""

import asyncio
import posixpath
from collections.abc import Iterable, Sequence

import zarr
from zarr.abc.store import Store
from zarr.core.sync import sync
from zarr.storage import FsspecStore, LocalStore

from storage.lease import LEASE_FILE
from storage.locations import is_url

READ_CONCURRENCY = 16  # chunk reads (or blocks) in flight at once


async def bounded(coroutines: Iterable, limit: int = READ_CONCURRENCY) -> list:
    """Await coroutines, at most `limit` at a time; their results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(coroutine):
        async with semaphore:
            return await coroutine

    return await asyncio.gather(*(one(c) for c in coroutines))


def open_arrays(group: zarr.Group, names: Sequence[str] | None) -> dict[str, zarr.Array]:
    """The store's arrays by name: those of the `arrays` attribute, opened concurrently; a store without it
    (schema 1) by listing the group (zarr then warns that lease.json is no Zarr object, which it is not)."""
    if names is None:
        return {name: a for name, a in group.members(max_depth=None) if isinstance(a, zarr.Array)}

    async def open_all():
        return await asyncio.gather(*(group._async_group.getitem(name) for name in names))

    return {name: zarr.Array(a) for name, a in zip(names, sync(open_all()))}


def zarr_store(url: str, storage_options: dict | None, read_only: bool) -> Store:
    if url.startswith("file://"):
        url = url.removeprefix("file://")
    if is_url(url):
        return FsspecStore.from_url(url, storage_options=storage_options, read_only=read_only)
    return LocalStore(url, read_only=read_only)


def delete_contents(fs, root: str) -> None:
    """Delete a store but its lease; the root zarr.json goes last, so an interrupted delete can be redone."""
    for path in fs.ls(root, detail=False):
        if basename(path) not in (LEASE_FILE, "zarr.json"):
            fs.rm(path, recursive=True)
    fs.rm(posixpath.join(root, "zarr.json"))


def basename(path: str) -> str:
    return posixpath.basename(path.rstrip("/"))
