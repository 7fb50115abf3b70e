"""The object-store path, against a real S3-compatible server (moto's standalone server) on 127.0.0.1."""

import uuid

import numpy as np
import pytest
from synthetic_blocks import BLOCK_SIZE, CATALOG_HASH, CONFIG, IDS, SPECS, block_arguments

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

from storage.catalog import CatalogEntry, read_catalog, write_catalog  # noqa: E402
from storage.datasets import (  # noqa: E402
    dataset_fingerprint,
    load_imaging,
    validate_imaging,
    write_imaging,
    write_imaging_mef,
)
from storage.errors import StoreError  # noqa: E402
from storage.lease import DriverLease  # noqa: E402
from storage.locations import filesystem  # noqa: E402
from storage.reader import open_results  # noqa: E402
from storage.schema import Status  # noqa: E402
from storage.store import ResultStore  # noqa: E402


@pytest.fixture(scope="module")
def endpoint():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(endpoint):
    """A fresh bucket; returns (its s3:// URL, the storage_options that reach the server)."""
    options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": endpoint}}
    bucket = f"lensfleet-{uuid.uuid4().hex[:8]}"
    fs, _ = filesystem(f"s3://{bucket}", options)
    fs.mkdir(bucket)
    return f"s3://{bucket}", options


def test_a_store_on_s3_is_created_written_resumed_and_read(s3):
    bucket, options = s3
    url = f"{bucket}/runs/survey.zarr"
    with DriverLease.acquire(url, storage_options=options, settle=0.05):
        with pytest.raises(StoreError, match="is held by driver"):
            DriverLease.acquire(url, storage_options=options, settle=0.05)
        assert ResultStore.open(url, CONFIG, CATALOG_HASH, storage_options=options) is None
        store = make_store_on(url, options)
        arguments = block_arguments(store, 1)
        ResultStore.open_existing(url, writable=True, storage_options=options).write_block(1, **arguments)

        resumed = ResultStore.open(url, CONFIG, CATALOG_HASH, storage_options=options)
        assert 1 not in resumed.pending_blocks() and len(resumed.pending_blocks()) == resumed.n_blocks - 1
        block = resumed.block_slice(1)
        for name, values in arguments["results"].items():
            np.testing.assert_array_equal(resumed.array(name)[block], values, err_msg=name)
        table = open_results(url, storage_options=options).table()
        assert list(table["status"][block]) == [Status(s).name for s in arguments["status"]]

        with pytest.raises(StoreError, match="catalog hash"):
            ResultStore.open(url, CONFIG, "another catalog", storage_options=options)
        assert ResultStore.open(url, CONFIG, CATALOG_HASH, restart=True, storage_options=options) is None
        fs, root = filesystem(url, options)
        fs.invalidate_cache()
        assert [p.rsplit("/", 1)[1] for p in fs.ls(root)] == ["lease.json"]
    fs.invalidate_cache()
    assert not fs.exists(f"{root}/lease.json")


def make_store_on(url, options):
    return ResultStore.create(url, IDS, BLOCK_SIZE, SPECS, CONFIG, CATALOG_HASH, storage_options=options)


def test_a_catalog_and_its_datasets_on_s3(s3, arrays):
    bucket, options = s3
    write_imaging(
        f"{bucket}/survey/lenses/A0", arrays["image"], arrays["noise_map"], arrays["psf"], 0.1, storage_options=options
    )
    write_imaging_mef(
        f"{bucket}/survey/lenses/B0.fits",
        arrays["image"],
        arrays["noise_map"],
        arrays["psf"],
        0.05,
        storage_options=options,
    )
    fs, _ = filesystem(bucket, options)
    local_catalog = f"/tmp/catalog-{uuid.uuid4().hex}.ecsv"
    write_catalog(local_catalog, [CatalogEntry("A0", "lenses/A0"), CatalogEntry("B0", "lenses/B0.fits", 0.05)])
    fs.put_file(local_catalog, f"{bucket}/survey/catalog.ecsv")

    catalog = read_catalog(f"{bucket}/survey/catalog.ecsv", storage_options=options)
    assert [e.path for e in catalog.entries] == [f"{bucket}/survey/lenses/A0", f"{bucket}/survey/lenses/B0.fits"]
    for entry in catalog.entries:
        data = load_imaging(entry.path, entry.id, entry.pixel_scale, storage_options=options)
        validate_imaging(data)
        np.testing.assert_array_equal(data.image, arrays["image"])
        assert data.image.dtype.byteorder in "=|"


def test_on_s3_writes_are_fenced_damage_is_found_and_reset_and_fingerprints_use_etags(s3, arrays):
    bucket, options = s3
    url = f"{bucket}/runs/fenced.zarr"
    with DriverLease.acquire(url, storage_options=options, settle=0.05) as lease:
        store = make_store_on(url, options)
        store.write_block(0, **block_arguments(store, 0), fence=lease.token)
        store.write_block(1, **block_arguments(store, 1), fence=lease.token)
        with pytest.raises(StoreError, match="this writer's driver lease is no longer the store's"):
            store.write_block(2, **block_arguments(store, 2), fence="a-stale-token")
        fs, root = filesystem(url, options)
        fs.rm(f"{root}/figure_of_merit/c/1")  # a deleted object reads as NaN ...
        fs.invalidate_cache()
        found = ResultStore.open_existing(url, storage_options=options).verify_blocks()
        assert list(found) == [1] and "differ from their checksum" in found[1]  # ... but does not verify
        store.reset_blocks(found, fence=lease.token)
        assert store.pending_blocks() == list(range(1, store.n_blocks))

    write_imaging(f"{bucket}/lenses/A0", arrays["image"], arrays["noise_map"], arrays["psf"], 0.1,
                  storage_options=options)
    first = dataset_fingerprint(f"{bucket}/lenses/A0", "A0", options)
    assert dataset_fingerprint(f"{bucket}/lenses/A0", "A0", options) == first
    write_imaging(f"{bucket}/lenses/A0", arrays["image"] + 1, arrays["noise_map"], arrays["psf"], 0.1,
                  storage_options=options)
    filesystem(bucket, options)[0].invalidate_cache()
    assert dataset_fingerprint(f"{bucket}/lenses/A0", "A0", options) != first  # a new ETag
