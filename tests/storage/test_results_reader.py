"""The notebook API: a table of per-lens scalars, lazy arrays, one lens's row, and xarray without help."""

import numpy as np
import pytest
import zarr
from synthetic_blocks import IDS, block_arguments, make_store

from storage.reader import open_results
from storage.schema import TERMS, Status


@pytest.fixture
def store(tmp_path):
    store = make_store(str(tmp_path / "run.zarr"))
    for k in (0, 1):
        store.write_block(k, **block_arguments(store, k))
    store.mark_block(2, Status.FAILED, "worker lost 3 times", attempts=3)
    return store


def test_table_has_one_row_per_lens_with_status_names_and_every_term(store):
    table = open_results(store.url).table()
    assert table.colnames[:6] == ["id", "status", "attempts", "error", "wall_time", "shape_bucket"]
    assert table.colnames[6 : 6 + len(TERMS)] == list(TERMS)
    assert "reconstruction_size" in table.colnames and "model_image" not in table.colnames
    assert list(table["id"]) == IDS
    first = block_arguments(store, 0)
    assert list(table["status"][:4]) == [Status(s).name for s in first["status"]] == ["INVALID", "DONE", "DONE", "DONE"]
    assert table["error"][0].endswith("PSF sums to zero") and table["error"][8] == "worker lost 3 times"
    assert set(table["status"][12:]) == {"PENDING"}
    np.testing.assert_array_equal(table["figure_of_merit"][:4], first["results"]["figure_of_merit"])
    assert np.isnan(table["figure_of_merit"][8:]).all()


def test_arrays_are_lazy_zarr_arrays_and_a_lens_row_has_everything(store):
    results = open_results(store.url)
    model_images = results.array("model_image")
    assert isinstance(model_images, zarr.Array) and model_images.shape == (len(IDS), 12, 10)
    lens = results.lens(IDS[5])
    expected = block_arguments(store, 1)["results"]
    np.testing.assert_array_equal(lens["model_image"], expected["model_image"][1])
    assert lens["status"] == "DONE" and lens["id"] == IDS[5]
    assert lens["reconstruction_size"] == expected["reconstruction_size"][1]
    assert results.attrs["catalog_hash"] == store.attrs["catalog_hash"]
    with pytest.raises(KeyError, match="no lens 'nope'"):
        results.lens("nope")


def test_xarray_opens_the_store_with_named_dimensions(store):
    xr = pytest.importorskip("xarray")
    ds = xr.open_zarr(store.url, consolidated=False)
    assert ds["model_image"].dims == ("dataset", "y", "x")
    assert ds["parameters"].dims == ("dataset", "evaluation", "parameter")
    assert ds.sizes["dataset"] == len(IDS)
    np.testing.assert_array_equal(ds["figure_of_merit"].values, store.read_array("figure_of_merit"))
