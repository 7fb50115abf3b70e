"""Planning a run: datasets grouped by shape bucket from FITS headers alone, the order frozen (bucket, then catalog
row), blocks of B consecutive datasets (= store chunks), and what cannot be planned marked INVALID with its reason
or left without a bucket for the worker's validation — never a reason to stop."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from scheduler.plan import make_plan
from small_survey import FIT_TOML, block_buckets
from storage.catalog import CatalogEntry, read_catalog, write_catalog
from storage.datasets import load_imaging, write_imaging
from workers.contract import BucketSpec
from workers.config import parse_config
from workers.model.buckets import common_bucket
from workers.model.description import parameter_names

PARAMS = {
    "lens": {"mass": {"centre": [0.0, 0.0], "ell_comps": [0.05, 0.0], "einstein_radius": 1.0},
             "shear": {"gamma_1": 0.0, "gamma_2": 0.01}},
    "source": {"centre": [0.1, 0.0], "ell_comps": [0.0, 0.1]},
}


@pytest.fixture
def config():
    return parse_config(tomllib.loads(FIT_TOML), "fit.toml")


def dataset(folder, shape=(40, 40), psf_shape=(5, 5), pixel_scale=0.1):
    rng = np.random.default_rng(len(str(folder)))
    psf = np.ones(psf_shape) / np.prod(psf_shape)
    write_imaging(str(folder), rng.normal(size=shape), np.full(shape, 0.1), psf, pixel_scale)
    return str(folder)


def catalog(tmp_path, rows):
    """rows: (id, path, extra CatalogEntry fields); parameters PARAMS unless params=None is given."""
    entries = [CatalogEntry(id=i, path=p, **{"params": PARAMS, **extra}) for i, p, extra in rows]
    write_catalog(str(tmp_path / "catalog.ecsv"), entries)
    return read_catalog(str(tmp_path / "catalog.ecsv"))


def test_order_is_by_shape_bucket_then_catalog_row_and_block_k_is_store_chunk_k(tmp_path, config):
    shapes = [(40, 40), (30, 30), (40, 40), (30, 30), (44, 40)]
    cat = catalog(tmp_path, [(f"r{i}", dataset(tmp_path / f"r{i}", s), {}) for i, s in enumerate(shapes)])
    plan = make_plan(cat, config, block_size=2)

    # the 30×30 images are cut by the 1.6″ mask: fewer blurring pixels (rounded up to 256), so the first bucket
    assert plan.ids == ["r1", "r3", "r0", "r2", "r4"]
    assert [cat.ids.index(i) for i in plan.ids] == [1, 3, 0, 2, 4]  # catalog rows, in store order
    assert [d.bucket for d in plan.datasets] == [0, 0, 1, 1, 1]
    assert plan.buckets[0].bucket.blurring < plan.buckets[1].bucket.blurring
    assert [d.image_shape for d in plan.datasets] == [(30, 30), (30, 30), (40, 40), (40, 40), (44, 40)]
    assert plan.n_blocks == 3
    assert [plan.block(k) for k in range(3)] == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert plan.max_image_shape == (44, 40)
    assert plan.parameter_names == parameter_names(config.model)
    assert plan.datasets[0].vectors == (tuple(float(v) for v in [0, 0, 0.05, 0, 1.0, 0, 0.01, 0.1, 0, 0, 0.1]),)
    assert plan.invalid == {}


def test_a_block_straddles_two_buckets_where_one_ends(tmp_path, config):
    shapes = [(30, 30), (40, 40), (40, 40)]
    cat = catalog(tmp_path, [(f"r{i}", dataset(tmp_path / f"r{i}", s), {}) for i, s in enumerate(shapes)])
    plan = make_plan(cat, config, block_size=2)
    assert block_buckets(plan, 0) == [0, 1]
    assert block_buckets(plan, 1) == [1]


def test_planned_bucket_is_the_engines_bucket_of_the_loaded_dataset_rounded(tmp_path, config):
    from workers.datasets import masked_imaging

    rows = [("a", dataset(tmp_path / "a", (40, 40), (5, 5)), {}),
            ("b", dataset(tmp_path / "b", (31, 36), (7, 3), 0.12), {}),
            ("c", dataset(tmp_path / "c", (40, 40)), {"mask_radius": 1.1})]
    plan = make_plan(catalog(tmp_path, rows), config, block_size=4)
    for spec in plan.datasets:
        data = load_imaging(spec.path, spec.id)
        imaging = masked_imaging(data, config.dataset, config.model, mask_radius=spec.mask_radius)
        planned = plan.buckets[spec.bucket].bucket
        assert planned == common_bucket([imaging.bucket])
        assert planned.covers(imaging.bucket)


def test_a_rows_mask_radius_overrides_the_configs(tmp_path, config):
    rows = [("big", dataset(tmp_path / "big"), {}), ("small", dataset(tmp_path / "small"), {"mask_radius": 0.8})]
    plan = make_plan(catalog(tmp_path, rows), config, block_size=4)
    by_id = {d.id: d for d in plan.datasets}
    assert by_id["big"].mask_radius == config.dataset.mask_radius == 1.6
    assert by_id["small"].mask_radius == 0.8
    assert by_id["big"].bucket != by_id["small"].bucket
    assert plan.buckets[by_id["small"].bucket].mask_radius == 0.8  # the warm-up example of its bucket


def test_unplannable_datasets_are_planned_anyway_last_with_their_reason(tmp_path, config):
    garbage = tmp_path / "garbage"
    dataset(garbage)
    (garbage / "psf.fits").write_bytes(b"not a FITS file" * 300)
    rows = [
        ("missing", str(tmp_path / "nowhere"), {}),
        ("fine", dataset(tmp_path / "fine"), {}),
        ("garbage", str(garbage), {}),
        ("no-params", dataset(tmp_path / "no-params"), {"params": None}),
        ("even-psf", dataset(tmp_path / "even-psf", psf_shape=(4, 5)), {}),
        ("huge-psf", dataset(tmp_path / "huge-psf", shape=(12, 12), psf_shape=(13, 13)), {}),
        ("fine-too", dataset(tmp_path / "fine-too"), {}),
    ]
    plan = make_plan(catalog(tmp_path, rows), config, block_size=3)
    assert plan.ids == ["fine", "fine-too", "missing", "garbage", "no-params", "even-psf", "huge-psf"]
    assert [d.bucket for d in plan.datasets] == [0, 0, -1, -1, -1, -1, -1]
    invalid = plan.invalid
    assert sorted(invalid) == ["garbage", "missing", "no-params"]
    assert invalid["missing"].startswith("dataset missing: ") and "no such file or folder" in invalid["missing"]
    assert "psf.fits: truncated or unreadable FITS file" in invalid["garbage"]
    assert "no parameters in the catalog row; evaluate mode needs lens.mass.centre.0" in invalid["no-params"]
    # shapes the engine cannot fit get no bucket but no planning error: the worker's validation names the problem
    even = plan.datasets[plan.ids.index("even-psf")]
    assert (even.error, even.image_shape) == ("", (40, 40))


def test_buckets_round_trip_through_the_store_attribute_and_a_resumed_order(tmp_path, config):
    shapes = [(40, 40), (30, 30), (40, 40)]
    cat = catalog(tmp_path, [(f"r{i}", dataset(tmp_path / f"r{i}", s), {}) for i, s in enumerate(shapes)])
    plan = make_plan(cat, config, block_size=2)
    assert [BucketSpec.from_dict(d) for d in plan.bucket_attrs()] == list(plan.buckets)

    # a store written with the buckets the other way round: the plan adopts the store's indices and order
    stored = list(reversed(plan.bucket_attrs()))
    resumed = plan.with_stored_buckets(stored).in_store_order(["r0", "r2", "r1"])
    assert resumed.ids == ["r0", "r2", "r1"]
    assert resumed.bucket_attrs() == stored
    for d in resumed.datasets:
        assert resumed.buckets[d.bucket] == plan.buckets[plan.datasets[plan.ids.index(d.id)].bucket]
    with pytest.raises(ValueError):
        plan.in_store_order(["r0", "r1", "someone-else"])


def test_search_mode_plans_rows_without_parameters(tmp_path):
    config = parse_config(tomllib.loads(FIT_TOML + "\n[search]\nn_live = 50\n"), "fit.toml")
    cat = catalog(tmp_path, [("a", dataset(tmp_path / "a"), {"params": None}),
                             ("b", dataset(tmp_path / "b"), {})])
    plan = make_plan(cat, config, block_size=2)
    assert plan.invalid == {} and [d.vectors for d in plan.datasets] == [(), ()]
