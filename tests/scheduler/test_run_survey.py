"""`lensfleet run` on a local Ray cluster: a simulated survey's stored results equal the engine's single-lens fits;
broken lenses are INVALID with their reasons while the rest complete; bad catalogs, second drivers and changed
configs are refused before any work."""

from __future__ import annotations

import shutil
import socket
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import ray
from astropy.io import fits

from scheduler.cli import main
from scheduler.driver import run
from small_survey import SURVEY_BLOCK_SIZE, SURVEY_SHAPES, block_buckets, clean_store, run_options, shared_survey
from storage.catalog import CatalogEntry, read_catalog, write_catalog
from storage.datasets import load_imaging, write_imaging
from storage.errors import CatalogError, StoreError
from storage.lease import DriverLease
from storage.schema import TERMS, Status
from storage.store import ResultStore


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp()


@pytest.fixture(scope="module")
def cluster():
    """A local cluster whose metrics agent exports every second on a known port; yields the endpoint."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _metrics_export_port=port,
             _system_config={"metrics_report_interval_ms": 1000})
    yield f"http://127.0.0.1:{port}/metrics"
    ray.shutdown()


def run_metrics(endpoint: str, run: str) -> dict[str, float]:
    """The run's lensfleet samples at the Prometheus endpoint, summed over everything but the sample name."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(endpoint, timeout=5).read().decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("run") == run and "le" not in sample.labels:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


@pytest.fixture(scope="module")
def clean(base, cluster) -> ResultStore:
    return ResultStore.open_existing(str(clean_store(base)))


def test_every_lens_in_the_store_equals_its_single_lens_fit(base, clean):
    from workers.config import load_config
    from workers.datasets import fit_mask
    from workers.evaluate import fit_lens
    from workers.model.description import vector_from_params

    catalog = read_catalog(str(shared_survey(base)))
    config = load_config(catalog.path.replace("catalog.ecsv", "fit.toml"))
    ids = clean.read_array("id").tolist()
    assert sorted(ids) == sorted(catalog.ids)
    arrays = {name: clean.read_array(name) for name in clean.names}
    assert (arrays["status"] == Status.DONE).all() and set(arrays["error"].tolist()) == {""}
    for entry in catalog.entries:
        i = ids.index(entry.id)
        radius = entry.mask_radius or config.dataset.mask_radius
        lens_config = replace(config, dataset=replace(config.dataset, mask_radius=radius))
        data = load_imaging(entry.path, entry.id)
        fit = fit_lens(data, lens_config, entry.params)
        for term in TERMS:
            assert arrays[term][i] == pytest.approx(float(getattr(fit.result, term)), rel=1e-9, abs=1e-9), term
        np.testing.assert_array_equal(arrays["parameters"][i, 0], vector_from_params(config.model, entry.params))
        assert arrays["evaluation_figure_of_merit"][i, 0] == arrays["figure_of_merit"][i]
        assert arrays["evaluation_log_likelihood"][i, 0] == arrays["log_likelihood"][i]
        n = int(arrays["reconstruction_size"][i])
        assert n == config.model.n_linear
        scale = np.abs(fit.result.reconstruction).max()
        np.testing.assert_allclose(arrays["reconstruction"][i, :n], fit.result.reconstruction, rtol=1e-7,
                                   atol=1e-9 * scale)
        assert np.isnan(arrays["reconstruction"][i, n:]).all()

        mask = fit_mask(data, radius)
        used = int((~mask).sum())
        ny, nx = data.image.shape
        assert tuple(arrays["image_shape"][i]) == (ny, nx)
        model_image = arrays["model_image"][i]
        expected = np.asarray(fit.result.model_image)[:used]
        atol = 1e-9 * np.abs(expected).max()
        np.testing.assert_allclose(model_image[:ny, :nx][~mask], expected, rtol=1e-9, atol=atol)
        assert np.isnan(model_image[:ny, :nx][mask]).all()
        assert np.isnan(model_image[ny:, :]).all() and np.isnan(model_image[:, nx:]).all()
        residuals = (data.image[~mask] - expected) / data.noise_map[~mask]
        np.testing.assert_allclose(arrays["normalized_residuals"][i][:ny, :nx][~mask], residuals, rtol=1e-6,
                                   atol=1e-8)


def test_store_layout_and_bookkeeping_of_a_clean_run(base, clean):
    from scheduler.plan import make_plan
    from workers.config import load_config
    from workers.model.description import parameter_names

    catalog = read_catalog(str(shared_survey(base)))
    config = load_config(catalog.path.replace("catalog.ecsv", "fit.toml"))
    plan = make_plan(catalog, config, SURVEY_BLOCK_SIZE)
    attrs = clean.attrs
    assert clean.read_array("id").tolist() == plan.ids  # the store's order is the plan's: bucket, then row
    assert attrs["block_size"] == SURVEY_BLOCK_SIZE and clean.n_blocks == 3
    assert attrs["mode"] == "evaluate"
    assert attrs["parameter_names"] == list(parameter_names(config.model))
    assert attrs["shape_buckets"] == plan.bucket_attrs() and len(attrs["shape_buckets"]) == 2
    assert attrs["config"] == config.to_dict() and attrs["catalog_hash"] == catalog.hash
    assert [r["run"] for r in attrs["runs"]] == [1]
    assert clean.read_array("shape_bucket").tolist() == [d.bucket for d in plan.datasets] == [0] * 4 + [1] * 4
    assert block_buckets(plan, 1) == [0, 1]  # a block across two buckets was evaluated in two padded calls
    for name in clean.names:
        array = clean.array(name)
        assert array.chunks[0] == SURVEY_BLOCK_SIZE
        assert array.metadata.dimension_names[0] == "dataset"
    assert clean.array("model_image").shape == (len(SURVEY_SHAPES), 44, 44)
    assert (clean.read_array("attempts") == 1).all()
    assert (clean.read_array("driver_run") == 1).all()
    assert (clean.read_array("wall_time") > 0).all()
    # the PSF's sum as stored, before normalising (sums to 1 only to rounding)
    raw_sums = [fits.getdata(f"{d.path}/psf.fits").astype(np.float64).sum() for d in plan.datasets]
    np.testing.assert_array_equal(clean.read_array("psf_raw_sum"), raw_sums)


def test_running_a_finished_store_again_does_nothing(base, clean, tmp_path):
    store = tmp_path / "finished.zarr"
    shutil.copytree(clean.url, store)
    before = ResultStore.open_existing(str(store)).read_array("wall_time")
    result = run(run_options(shared_survey(base), store, base))
    assert result.exit_code == 0 and result.blocks_to_do == 0
    assert "nothing to do" in result.message
    after = ResultStore.open_existing(str(store))
    np.testing.assert_array_equal(after.read_array("wall_time"), before)
    assert [r["resumed"] for r in after.attrs["runs"]] == [False, True]


def break_lens(source: Path, target: Path, how: str) -> None:
    """A copy of a 40×40 lens made unusable one way (the storage tests make each failure the same way)."""
    shutil.copytree(source, target)
    image = fits.getdata(target / "image.fits").astype(float)
    noise = fits.getdata(target / "noise_map.fits").astype(float)
    psf = fits.getdata(target / "psf.fits").astype(float)
    if how == "missing file":
        (target / "psf.fits").unlink()
        return
    if how == "truncated file":
        data = (target / "noise_map.fits").read_bytes()
        (target / "noise_map.fits").write_bytes(data[: len(data) - 3000])
        return
    if how == "NaN in a used pixel":
        image[20, 20] = np.nan
    elif how == "noise <= 0":
        noise[19, 21] = 0.0
    elif how == "even PSF":
        psf = np.ones((4, 4)) / 16
    elif how == "zero-sum PSF":
        psf = np.outer([1.0, 1.0, -4.0, 1.0, 1.0], np.ones(5))  # 5×5 like the others: the same shape bucket
    elif how == "PSF larger than the image":
        psf = np.ones((41, 41))
    elif how == "shape mismatch":
        noise = noise[:, :39]
    shutil.rmtree(target)
    write_imaging(str(target), image, noise, psf, 0.1)


BROKEN = {
    "missing file": "psf.fits: file not found",
    "truncated file": "noise_map.fits: truncated or unreadable FITS file",
    "NaN in a used pixel": "image.fits: image has 1 NaN/inf pixels among the used pixels, first at (y, x) = (20, 20)",
    "noise <= 0": "noise_map.fits: noise_map has 1 <= 0 pixels among the used pixels, first at (y, x) = (19, 21)",
    "even PSF": "psf.fits: PSF shape (4, 4) has an even side",
    "zero-sum PSF": "psf.fits: PSF sums to zero",
    "PSF larger than the image": "psf.fits: PSF shape (41, 41) is larger than the image shape (40, 40)",
    "shape mismatch": "noise_map.fits: noise_map shape (40, 39) differs from image shape (40, 40)",
    "no parameters": "no parameters in the catalog row",
}


def test_broken_lenses_are_invalid_with_their_reasons_and_the_others_are_done(base, cluster, tmp_path):
    survey = read_catalog(str(shared_survey(base)))
    good = [e for e in survey.entries if e.id in ("L000", "L001", "L003", "L004")]
    source = Path(next(e.path for e in good if e.id == "L001"))
    entries = list(good)
    for n, how in enumerate(BROKEN):
        dataset_id = f"bad-{n}"
        if how == "no parameters":
            entries.insert(2, CatalogEntry(dataset_id, str(source), params=None))
            continue
        break_lens(source, tmp_path / dataset_id, how)
        entries.insert(n % len(entries), CatalogEntry(dataset_id, str(tmp_path / dataset_id), params=good[1].params))
    write_catalog(str(tmp_path / "catalog.ecsv"), entries)
    shutil.copy(shared_survey(base).parent / "fit.toml", tmp_path / "fit.toml")

    result = run(run_options(tmp_path / "catalog.ecsv", tmp_path / "broken.zarr", base))

    assert result.exit_code == 0
    assert result.counts == {"pending": 0, "done": 4, "failed": 0, "invalid": len(BROKEN)}
    store = ResultStore.open_existing(str(tmp_path / "broken.zarr"))
    ids, status, errors = store.read_array("id").tolist(), store.read_array("status"), store.read_array("error")
    for n, how in enumerate(BROKEN):
        i = ids.index(f"bad-{n}")
        assert status[i] == Status.INVALID, how
        assert errors[i].startswith(f"dataset bad-{n}: "), errors[i]
        assert BROKEN[how] in errors[i], (how, errors[i])
        assert np.isnan(store.array("figure_of_merit")[i])
    clean = ResultStore.open_existing(str(clean_store(base)))
    clean_ids = clean.read_array("id").tolist()
    for entry in good:  # the good lenses of blocks holding broken ones: the same numbers as in the clean run
        i, j = ids.index(entry.id), clean_ids.index(entry.id)
        assert status[i] == Status.DONE and errors[i] == ""
        for term in TERMS:
            assert store.array(term)[i] == pytest.approx(clean.array(term)[j], rel=1e-9)

    # the driver's and the actor's custom metrics reach the cluster's Prometheus endpoint with the run's counts
    expected = {
        "ray_lensfleet_datasets_done_total": 4,
        "ray_lensfleet_datasets_invalid_total": len(BROKEN),
        "ray_lensfleet_block_seconds_count": 5,
        "ray_lensfleet_likelihood_evaluations_total": 4,  # one parameter vector per valid lens
        "ray_lensfleet_blocks_in_flight": 0,
        "ray_lensfleet_datasets_pending": 0,
    }
    deadline = time.monotonic() + 30
    while True:
        got = run_metrics(cluster, "broken.zarr")
        if all(got.get(name) == value for name, value in expected.items()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {name: got.get(name) for name in expected} == expected
    assert got["ray_lensfleet_compiles_total"] >= 2  # one warm-up per shape bucket


def test_a_catalog_with_a_duplicate_id_is_refused_before_any_work(base, tmp_path, capsys):
    survey = read_catalog(str(shared_survey(base)))
    write_catalog(str(tmp_path / "catalog.ecsv"), [*survey.entries[:3], survey.entries[1]])
    shutil.copy(shared_survey(base).parent / "fit.toml", tmp_path / "fit.toml")
    options = run_options(tmp_path / "catalog.ecsv", tmp_path / "dup.zarr", base)
    with pytest.raises(CatalogError, match="duplicate id 'L001' in rows 2 and 4"):
        run(options)
    code = main(["run", options.catalog, "--config", options.config, "--store", options.store])
    assert code == 2
    assert "duplicate id 'L001'" in capsys.readouterr().err
    assert not (tmp_path / "dup.zarr").exists()


def test_a_second_driver_on_the_same_store_is_refused(base, tmp_path, capsys):
    from scheduler.lifecycle import Heartbeat

    options = run_options(shared_survey(base), tmp_path / "held.zarr", base)
    first = DriverLease.acquire(options.store, ttl=60)
    beat = Heartbeat(first, 1.0)  # a live holder renews its lease: the second driver waits 2 ttl, then gives up
    beat.start()
    try:
        with pytest.raises(StoreError, match=r"is held by driver .*:\d+ since"):
            run(options)
        code = main(["run", options.catalog, "--config", options.config, "--store", options.store, "--lease-ttl", "2"])
        assert code == 2 and "is held by driver" in capsys.readouterr().err
        assert not (tmp_path / "held.zarr" / "zarr.json").exists()  # nothing was created
    finally:
        beat.stop()
        first.release()


def test_resuming_with_another_config_is_refused_saying_what_differs(base, clean, tmp_path):
    toml = (shared_survey(base).parent / "fit.toml").read_text().replace("gaussians = 10", "gaussians = 12")
    (tmp_path / "fit.toml").write_text(toml)
    options = run_options(shared_survey(base), Path(clean.url), base, config=str(tmp_path / "fit.toml"))
    with pytest.raises(StoreError, match=r"config source.gaussians: 10 \(store\) != 12 \(this run\)"):
        run(options)
    assert not (Path(clean.url) / "lease.json").exists()  # the refused driver gave its lease back
