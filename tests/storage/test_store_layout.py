"""The result store's layout and commit rules: one stored object per block and array, NaN fills, exact round
trips, status last, deterministic rewrites."""

import datetime
import json
import math
import os

import numpy as np
import pytest
import zarr
from synthetic_blocks import BLOCK_SIZE, CATALOG_HASH, CONFIG, IDS, SPECS, block_arguments, make_store

from storage.errors import StoreError
from storage.schema import BOOKKEEPING, TERMS, Status, result_specs
from storage.store import ResultStore


@pytest.fixture
def store(tmp_path):
    return make_store(str(tmp_path / "run.zarr"))


def test_every_array_is_chunked_by_block_so_two_writers_never_share_an_object(store):
    expected = {spec.name: spec for spec in [*BOOKKEEPING, *SPECS]}
    assert set(store.names) == set(expected)
    for name in store.names:
        array = zarr.open_array(os.path.join(store.url, name), mode="r")
        spec = expected[name]
        assert array.metadata.zarr_format == 3
        assert array.shape == (len(IDS), *spec.shape)
        assert array.chunks == (BLOCK_SIZE, *spec.shape), name
        assert array.metadata.dimension_names == ("dataset", *spec.dims), name


def test_writing_a_block_stores_one_object_per_array_and_nothing_else(store):
    k = 5
    store.write_block(k, **block_arguments(store, k))
    for name in store.names:
        if name == "id":
            continue
        chunk_dir = os.path.join(store.url, name, "c")
        objects = [os.path.relpath(os.path.join(d, f), chunk_dir) for d, _, fs in os.walk(chunk_dir) for f in fs]
        expected = [os.path.join(str(k), *["0"] * (store.array(name).ndim - 1))]
        # Zarr stores no object for a chunk that is all fill (here: error, all "").
        assert objects == ([] if name == "error" else expected), name


def test_root_attributes_record_the_run(store):
    attrs = zarr.open_group(store.url, mode="r").attrs.asdict()
    assert attrs["schema_version"] == 2
    assert len(attrs["store_id"]) == 32 and attrs["arrays"] == [*(s.name for s in BOOKKEEPING), *(s.name for s in SPECS)]
    assert attrs["config"] == json.loads(json.dumps(CONFIG))
    assert attrs["catalog_hash"] == CATALOG_HASH
    assert attrs["block_size"] == BLOCK_SIZE
    assert attrs["n_datasets"] == len(IDS)
    assert attrs["shape_buckets"] == [[12, 10]]
    assert isinstance(attrs["lensfleet_version"], str) and attrs["lensfleet_version"]
    created = datetime.datetime.fromisoformat(attrs["created"])
    assert created.tzinfo is not None and abs(datetime.datetime.now(datetime.UTC) - created).total_seconds() < 60


def test_a_new_store_holds_the_ids_and_reads_never_written_as_fill(store):
    assert store.read_array("id").tolist() == IDS
    assert (store.read_array("status") == Status.PENDING).all()
    assert (store.read_array("error") == "").all()
    assert (store.read_array("shape_bucket") == -1).all()
    for name in [*TERMS, "wall_time", "parameters", "model_image", "reconstruction", "mesh_centres"]:
        assert np.isnan(store.read_array(name)).all(), name
    assert store.pending_blocks() == list(range(store.n_blocks))
    assert store.status_counts() == {Status.PENDING: len(IDS), Status.DONE: 0, Status.FAILED: 0, Status.INVALID: 0}


def test_write_read_round_trip_is_exact_including_the_short_last_block(store):
    last = store.n_blocks - 1
    assert store.block_slice(last) == slice(last * BLOCK_SIZE, len(IDS))
    written = {k: block_arguments(store, k) for k in (0, 3, last)}
    for k, arguments in written.items():
        store.write_block(k, **arguments)

    reopened = ResultStore.open_existing(store.url)
    for k, arguments in written.items():
        block = reopened.block_slice(k)
        for name, values in arguments["results"].items():
            np.testing.assert_array_equal(reopened.array(name)[block], values, err_msg=name)
            assert reopened.array(name)[block].dtype == reopened.array(name).dtype
        np.testing.assert_array_equal(reopened.block_status(k), arguments["status"])
        np.testing.assert_array_equal(reopened.array("wall_time")[block], arguments["wall_time"])
        assert reopened.array("error")[block].tolist() == arguments["error"]
    assert reopened.pending_blocks() == [k for k in range(store.n_blocks) if k not in written]
    assert reopened.blocks_with(Status.INVALID) == [0, 3]


def test_rewriting_a_block_with_the_same_inputs_writes_the_same_bytes(store):
    def stored_bytes():
        return {
            os.path.relpath(os.path.join(d, f), store.url): open(os.path.join(d, f), "rb").read()
            for d, _, files in os.walk(store.url)
            for f in files
        }

    arguments = block_arguments(store, 2)
    store.write_block(2, **arguments)
    first = stored_bytes()
    store.write_block(2, **arguments)
    assert stored_bytes() == first


def test_arrays_left_out_of_a_commit_are_reset_to_their_fill(store):
    arguments = block_arguments(store, 1)
    store.write_block(1, **arguments)
    without_images = {n: v for n, v in arguments["results"].items() if n not in ("model_image", "shape_bucket")}
    store.write_block(1, **{**arguments, "results": without_images})
    block = store.block_slice(1)
    assert np.isnan(store.array("model_image")[block]).all()
    assert (store.array("shape_bucket")[block] == -1).all()
    np.testing.assert_array_equal(store.array("figure_of_merit")[block], arguments["results"]["figure_of_merit"])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a["results"].update(samples=np.zeros(4)), "cannot write ['samples']"),
        (lambda a: a["results"].update(status=np.zeros(4)), "cannot write ['status']"),
        (lambda a: a["results"].update(model_image=np.zeros((4, 10, 12))), "model_image: shape (4, 10, 12)"),
        (lambda a: a["results"].update(reconstruction_size=np.full(4, 2.5)), "Cannot cast"),
        (lambda a: a.update(status=np.zeros(4, np.int8)), "status must be DONE, FAILED or INVALID"),
        (lambda a: a.update(error=["x"] * 3), "error: shape (3,)"),
    ],
)
def test_a_bad_commit_is_refused_before_anything_is_written(store, change, message):
    arguments = block_arguments(store, 1)
    change(arguments)
    with pytest.raises((ValueError, TypeError)) as error:
        store.write_block(1, **arguments)
    assert message in str(error.value)
    for name in store.data_names:
        assert not os.path.exists(os.path.join(store.url, name, "c")), name
    assert store.pending_blocks() == list(range(store.n_blocks))


def test_the_driver_marks_a_block_it_gave_up_on_failed(store):
    store.write_block(4, **block_arguments(store, 4, seed=1))  # a partial attempt's leftovers...
    store.mark_block(4, Status.FAILED, "worker died 3 times (node lost)", attempts=3)
    block = store.block_slice(4)
    assert (store.block_status(4) == Status.FAILED).all()
    assert (store.array("attempts")[block] == 3).all()
    assert (store.array("error")[block] == "worker died 3 times (node lost)").all()
    assert np.isnan(store.array("figure_of_merit")[block]).all()  # ...are gone
    assert 4 not in store.pending_blocks() and store.blocks_with(Status.FAILED) == [4]


def test_the_drivers_own_writes_land_in_the_store_and_read_back_after_reopening(store):
    """The planned shape buckets and image shapes, the `shape_buckets` attribute and one `runs` record per run."""
    n = len(IDS)
    buckets = np.arange(n, dtype=np.int32) % 3 - 1
    shapes = np.stack([np.arange(n), np.arange(n) + 1], axis=1)
    store.write_planned(buckets, shapes)
    store.write_shape_buckets([{"canvas": [12, 10]}, {"canvas": [14, 12]}])
    assert [store.record_driver_run(), store.record_driver_run()] == [1, 2]
    with pytest.raises(ValueError, match=r"image_shape: shape \(2, 2\), expected \(95, 2\)"):
        store.write_planned(buckets, shapes[:2])

    reopened = ResultStore.open(store.url, CONFIG, CATALOG_HASH)
    np.testing.assert_array_equal(reopened.read_array("shape_bucket"), buckets)
    np.testing.assert_array_equal(reopened.read_array("image_shape"), shapes)
    assert reopened.attrs["shape_buckets"] == [{"canvas": [12, 10]}, {"canvas": [14, 12]}]
    runs = reopened.attrs["runs"]
    assert [(r["run"], r["resumed"], r["pid"]) for r in runs] == [(1, False, os.getpid()), (2, True, os.getpid())]
    assert all(datetime.datetime.fromisoformat(r["started_utc"]).tzinfo is not None for r in runs)
    assert reopened.record_driver_run() == 3
    assert reopened.pending_blocks() == list(range(store.n_blocks))  # nothing committed


def test_resuming_the_same_run_returns_the_store_and_a_missing_store_returns_none(tmp_path):
    url = str(tmp_path / "run.zarr")
    assert ResultStore.open(url, CONFIG, CATALOG_HASH) is None
    store = make_store(url)
    store.write_block(0, **block_arguments(store, 0))
    resumed = ResultStore.open(url, {**CONFIG}, CATALOG_HASH)
    assert resumed.pending_blocks() == list(range(1, store.n_blocks))


def test_a_store_from_another_catalog_is_refused_naming_both_hashes(store):
    with pytest.raises(StoreError) as error:
        ResultStore.open(store.url, CONFIG, "deadbeef" * 8)
    assert f"catalog hash {CATALOG_HASH[:12]}… (store) != {'deadbeef' * 8:.12}… (this run)" in str(error.value)
    assert "restart" in str(error.value)


def test_a_store_from_another_config_is_refused_naming_the_keys_that_differ(store):
    changed = {**CONFIG, "source": {"kind": "rectangular", "shape": [6, 6]}, "seed": 3}
    with pytest.raises(StoreError) as error:
        ResultStore.open(store.url, changed, CATALOG_HASH)
    message = str(error.value)
    assert "source.shape: [5, 5] (store) != [6, 6] (this run)" in message
    assert "seed: only in this run (3)" in message
    assert "catalog hash" not in message and "source.kind" not in message


def test_restart_deletes_the_store_but_not_the_lease_and_a_new_one_can_be_created(store):
    open(os.path.join(store.url, "lease.json"), "w").write("{}")
    store.write_block(0, **block_arguments(store, 0))
    assert ResultStore.open(store.url, {"other": "config"}, "other hash", restart=True) is None
    assert os.listdir(store.url) == ["lease.json"]
    fresh = make_store(store.url)
    assert fresh.pending_blocks() == list(range(fresh.n_blocks))


def test_create_refuses_an_existing_store_or_a_folder_with_other_files(store, tmp_path):
    with pytest.raises(StoreError, match="already exists"):
        make_store(store.url)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(StoreError, match="not empty"):
        make_store(str(tmp_path / "notes"))


def test_a_store_whose_creation_was_interrupted_is_refused_until_restart(tmp_path):
    url = str(tmp_path / "run.zarr")
    # What a driver killed inside create() leaves: run attributes, some arrays, no `created`.
    group = zarr.create_group(url, zarr_format=3, attributes={"schema_version": 1, "block_size": 4, "n_datasets": 9})
    group.create_array("id", shape=(9,), chunks=(4,), dtype=str, fill_value="", dimension_names=("dataset",))
    with pytest.raises(StoreError, match="is incomplete"):
        ResultStore.open(url, CONFIG, CATALOG_HASH)
    assert ResultStore.open(url, CONFIG, CATALOG_HASH, restart=True) is None
    make_store(url)


def test_a_zarr_group_that_is_not_a_lensfleet_store_is_never_deleted(tmp_path):
    url = str(tmp_path / "someone_elses.zarr")
    zarr.create_group(url, zarr_format=3).create_array("data", shape=(3,), dtype="f8")
    with pytest.raises(StoreError, match="not a lensfleet store"):
        ResultStore.open(url, CONFIG, CATALOG_HASH, restart=True)
    assert sorted(os.listdir(url)) == ["data", "zarr.json"]


def test_result_specs_use_pyautolens_term_names_and_shapes():
    specs = {s.name: s for s in result_specs((100, 120), 7, 50, 400, pixelized=False)}
    assert [s for s in TERMS if s in specs] == list(TERMS)
    assert specs["parameters"].shape == (50, 7) and specs["parameters"].dims == ("evaluation", "parameter")
    assert specs["model_image"].shape == (100, 120) and specs["normalized_residuals"].dims == ("y", "x")
    assert specs["reconstruction"].shape == (400,) and specs["reconstruction_size"].dtype == "int32"
    assert "mesh_centres" not in specs
    assert all(math.isnan(specs[t].fill) for t in TERMS)
