"""Planning never lets one row cost another row, or the run (issue 11, points 1, 2, 9 and 10).

Real FITS files on disk, a real closed port for the unreachable URL, the planner's real thread pool.
"""

from __future__ import annotations

import gzip
import os
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from astropy.io import fits

from mixed_catalog import BROKEN, PARAMS, write_good, write_mixed_catalog
from scheduler.plan import make_plan
from small_survey import FIT_TOML, free_port
from storage.catalog import CatalogEntry, read_catalog, write_catalog
from storage.datasets import load_imaging
from storage.errors import DatasetError, DatasetUnavailable, Fault, classify
from workers.config import parse_config

ROUNDS = 20


@pytest.fixture
def config():
    return parse_config(tomllib.loads(FIT_TOML), "fit.toml")


@pytest.mark.parametrize("broken", [("T-psf", "T-image", "M-file"), tuple(BROKEN)], ids=["truncated", "all"])
def test_broken_lenses_never_make_a_good_one_invalid_planned_and_loaded_20_times_on_threads(tmp_path, config, broken):
    catalog_path, good = write_mixed_catalog(tmp_path, broken=broken)
    catalog = read_catalog(catalog_path)
    by_id = {e.id: e for e in catalog.entries}
    for _ in range(ROUNDS):
        plan = make_plan(catalog, config, block_size=4, threads=16)
        assert sorted(plan.invalid) == sorted(broken)
        for dataset_id, reason in plan.invalid.items():
            file, phrase = BROKEN[dataset_id]
            shown = os.path.join(by_id[dataset_id].path, file) if file else by_id[dataset_id].path
            assert reason.startswith(f"dataset {dataset_id}: {shown}: {phrase}"), reason
        for spec in plan.datasets:
            if spec.id in good:
                assert (spec.error, spec.bucket >= 0, spec.image_shape) == ("", True, good[spec.id]), spec

    serial = {i: load_imaging(by_id[i].path, i) for i in good}
    with ThreadPoolExecutor(16) as pool:
        for _ in range(ROUNDS):
            outcomes = dict(zip(by_id, pool.map(lambda e: _load(e.path, e.id), catalog.entries)))
            for dataset_id, outcome in outcomes.items():
                if dataset_id in broken:
                    assert isinstance(outcome, DatasetError) and outcome.dataset_id == dataset_id, outcome
                    assert BROKEN[dataset_id][1] in outcome.reason and by_id[dataset_id].path in outcome.path
                else:
                    for name in ("image", "noise_map", "psf"):
                        np.testing.assert_array_equal(getattr(outcome, name), getattr(serial[dataset_id], name))


def _load(path, dataset_id):
    try:
        return load_imaging(path, dataset_id)
    except DatasetError as e:
        return e


def announcing_gzip(path, shape=(20000, 20000)):
    """A tiny gzip whose FITS header announces a huge float64 image (and holds none of its data)."""
    header = fits.Header([("SIMPLE", True), ("BITPIX", -64), ("NAXIS", 2), ("NAXIS1", shape[1]),
                          ("NAXIS2", shape[0]), ("PIXSCALE", 0.1)])
    path.write_bytes(gzip.compress(header.tostring().encode()))


def test_no_row_aborts_planning_an_unreachable_url_a_corrupted_gzip_a_gzip_announcing_20000_squared(tmp_path, config):
    unreachable = f"http://127.0.0.1:{free_port()}/lenses/U0.fits"  # nothing listens there
    write_good(tmp_path / "good", 1)
    corrupted = tmp_path / "corrupted"
    write_good(corrupted, 3)
    packed = bytearray(gzip.compress((corrupted / "image.fits").read_bytes()))
    packed[12:20] = b"\xff" * 8  # right after the gzip header: the deflate stream is broken at its start
    (corrupted / "image.fits").write_bytes(bytes(packed))
    huge = tmp_path / "huge"
    write_good(huge, 5)
    announcing_gzip(huge / "image.fits")
    rows = [("U0", unreachable), ("good", str(tmp_path / "good")), ("corrupted", str(corrupted)), ("huge", str(huge))]
    write_catalog(str(tmp_path / "catalog.ecsv"), [CatalogEntry(i, p, params=PARAMS) for i, p in rows])

    started = time.monotonic()
    plan = make_plan(read_catalog(str(tmp_path / "catalog.ecsv")), config, block_size=2)
    assert time.monotonic() - started < 30
    by_id = {d.id: d for d in plan.datasets}
    assert by_id["good"].error == "" and by_id["good"].bucket == 0
    assert "image.fits: truncated or unreadable FITS file (corrupted gzip data (error: " in by_id["corrupted"].error
    assert "image.fits: truncated or unreadable FITS file (truncated: HDU 0 ends at byte 32000" in by_id["huge"].error
    assert by_id["huge"].error.endswith("the file holds 2880 bytes)")
    # a transient failure is not the lens's fault: no verdict at planning, its block reads it again
    assert (by_id["U0"].error, by_id["U0"].bucket, by_id["U0"].image_shape, by_id["U0"].fingerprint) == (
        "", -1, (0, 0), "")
    [(unread_id, reason)] = plan.unread
    assert unread_id == "U0" and "could not be read (ClientConnectorError" in reason
    assert plan.max_image_shape == (config.dataset.max_image_side,) * 2  # U0 may be that large
    with pytest.raises(DatasetUnavailable) as caught:
        load_imaging(unreachable, "U0")
    assert classify(caught.value) is Fault.TRANSIENT


def test_catalog_values_out_of_range_make_that_row_invalid_not_failed(tmp_path, config):
    rows = [("neg-radius", {"mask_radius": -1.0}), ("zero-radius", {"mask_radius": 0.0}),
            ("inf-radius", {"mask_radius": float("inf")}), ("neg-scale", {"pixel_scale": -0.1}), ("fine", {})]
    for seed, (dataset_id, _) in enumerate(rows):
        write_good(tmp_path / dataset_id, seed)
    entries = [CatalogEntry(i, str(tmp_path / i), params=PARAMS, **extra) for i, extra in rows]
    write_catalog(str(tmp_path / "catalog.ecsv"), entries)
    plan = make_plan(read_catalog(str(tmp_path / "catalog.ecsv")), config, block_size=2)
    catalog = str(tmp_path / "catalog.ecsv")
    assert plan.invalid == {
        "neg-radius": f"dataset neg-radius: {catalog}: catalog mask_radius -1.0 must be a finite number > 0 arcsec",
        "zero-radius": f"dataset zero-radius: {catalog}: catalog mask_radius 0.0 must be a finite number > 0 arcsec",
        "inf-radius": f"dataset inf-radius: {catalog}: catalog mask_radius inf must be a finite number > 0 arcsec",
        "neg-scale": f"dataset neg-scale: {catalog}: catalog pixel_scale -0.1 must be a finite number > 0 arcsec",
    }
    assert plan.datasets[0].id == "fine" and plan.datasets[0].bucket == 0


def test_an_image_over_max_image_side_is_invalid_and_does_not_pad_every_block(tmp_path):
    config = parse_config(tomllib.loads(FIT_TOML.replace("[dataset]", "[dataset]\nmax_image_side = 64")), "fit.toml")
    write_good(tmp_path / "small", 1)  # 40×40
    a = np.ones((80, 80))
    from storage.datasets import write_imaging
    write_imaging(str(tmp_path / "large"), a, a * 0.1, np.pad(np.ones((1, 1)), 2), 0.1)
    write_catalog(str(tmp_path / "catalog.ecsv"), [CatalogEntry("small", str(tmp_path / "small"), params=PARAMS),
                                                   CatalogEntry("large", str(tmp_path / "large"), params=PARAMS)])
    plan = make_plan(read_catalog(str(tmp_path / "catalog.ecsv")), config, block_size=2)
    assert plan.invalid == {"large": (
        f"dataset large: {tmp_path / 'large'}: image shape (80, 80) exceeds [dataset] max_image_side = 64 pixels "
        "(every block's image arrays are padded to the run's largest image); raise it in fit.toml to fit this lens")}
    assert plan.max_image_shape == (40, 40)


def test_fingerprints_change_with_a_lens_file_and_only_for_that_lens(tmp_path, config):
    for seed, dataset_id in enumerate(("a", "b")):
        write_good(tmp_path / dataset_id, seed)
    write_catalog(str(tmp_path / "catalog.ecsv"),
                  [CatalogEntry(i, str(tmp_path / i), params=PARAMS) for i in ("a", "b", "missing")])
    catalog = read_catalog(str(tmp_path / "catalog.ecsv"))
    before = {d.id: d.fingerprint for d in make_plan(catalog, config, block_size=2).datasets}
    assert {d.id: d.fingerprint for d in make_plan(catalog, config, block_size=2).datasets} == before
    assert len(set(before.values())) == 3 and all(len(f) == 24 for f in before.values())

    noise = tmp_path / "b" / "noise_map.fits"
    time.sleep(0.01)
    noise.write_bytes(noise.read_bytes())  # same bytes, a new version of the file: its inputs may differ
    write_good(tmp_path / "missing", 9)  # the missing lens appears
    after = {d.id: d.fingerprint for d in make_plan(catalog, config, block_size=2).datasets}
    assert after["a"] == before["a"] and after["b"] != before["b"] and after["missing"] != before["missing"]
