"""The block pipeline runs without Ray (workers/block.py): a BlockFitter over a store set up as the driver sets it
up fits and commits every block of the shared survey, and each lens's figure of merit equals its single-lens
evaluate; the actor adds only process setup and the Ray interface on top of it."""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest

from scheduler.run_store import open_store, run_spec
from small_survey import SURVEY_BLOCK_SIZE, shared_survey
from storage.catalog import read_catalog
from storage.datasets import load_imaging
from storage.lease import DriverLease
from storage.schema import TERMS, Status
from workers.config import load_config


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.getbasetemp()


def test_a_block_fitter_commits_every_block_without_ray(base, tmp_path):
    from workers.block import BlockFitter
    from workers.evaluate import fit_lens

    catalog = read_catalog(str(shared_survey(base)))
    config = load_config(catalog.path.replace("catalog.ecsv", "fit.toml"))
    url = str(tmp_path / "no-ray.zarr")
    lease = DriverLease.acquire(url, ttl=60)
    try:
        store, plan, driver_run = open_store(url, config, catalog, SURVEY_BLOCK_SIZE, False, None)
        fitter = BlockFitter(run_spec(store, plan, config, driver_run, str(tmp_path / "cache"), lease.token), store)
        fitter.warm_up()
        summaries = [fitter.fit(k) for k in range(store.n_blocks)]
    finally:
        lease.release()
    assert "ray" not in sys.modules or not __import__("ray").is_initialized()
    assert sum(s["done"] for s in summaries) == store.n_datasets
    assert (store.status() == Status.DONE).all() and store.verify_blocks() == {}
    ids = store.read_array("id").tolist()
    for entry in catalog.entries:
        radius = entry.mask_radius or config.dataset.mask_radius
        lens_config = replace(config, dataset=replace(config.dataset, mask_radius=radius))
        fit = fit_lens(load_imaging(entry.path, entry.id), lens_config, entry.params)
        for term in TERMS:
            stored = store.read_array(term)[ids.index(entry.id)]
            assert stored == pytest.approx(float(getattr(fit.result, term)), rel=1e-9, abs=1e-9), (entry.id, term)
    assert np.isfinite(store.read_array("figure_of_merit")).all()
