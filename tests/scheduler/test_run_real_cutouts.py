"""A survey run over real cutouts (a SLACS folder with mask.fits, the Euclid Q1 cutout in two bands, one with
an off-centre mask) fits each lens exactly as its single-lens fit with the same mask does, and records the PSF's
raw sum."""

from __future__ import annotations

import numpy as np
import pytest
import ray

from scheduler.driver import RunOptions, run
from shared_data import EUCLID, REAL, SLACS
from storage.catalog import CatalogEntry, read_catalog, write_catalog
from storage.datasets import load_imaging
from storage.schema import TERMS, Status
from storage.store import ResultStore

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="the real cutouts are not on this machine")

FIT_TOML = """
[dataset]
mask_radius = 2.5
over_sample_size_lp = 1
over_sample_size_pixelization = 1

[lens.mass]
type = "isothermal"

[source]
type = "mge"
gaussians = 10
sigma_min = 0.02
"""
PARAMS = {"lens": {"mass": {"centre": [0.0, 0.0], "ell_comps": [0.05, 0.0], "einstein_radius": 1.0}},
          "source": {"centre": [0.05, 0.0], "ell_comps": [0.0, 0.1]}}


def test_a_run_over_real_cutouts_equals_the_single_lens_fits(tmp_path):
    import jax

    from workers.config import load_config
    from workers.datasets import masked_imaging
    from workers.inversion.batch import evaluate
    from workers.model.description import vector_from_params

    entries = [CatalogEntry(id="J0029", path=str(SLACS / "J0029-0055"), params=PARAMS),
               CatalogEntry(id="q1-vis", path=str(EUCLID), params=PARAMS),
               CatalogEntry(id="q1-h", path=str(EUCLID), params=PARAMS, band="NIR_H", mask_centre=(0.2, -0.3),
                            mask_radius=2.0)]
    write_catalog(str(tmp_path / "catalog.ecsv"), entries)
    (tmp_path / "fit.toml").write_text(FIT_TOML)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = run(RunOptions(catalog=str(tmp_path / "catalog.ecsv"), config=str(tmp_path / "fit.toml"),
                                store=str(tmp_path / "run.zarr"), block_size=4, actors=1,
                                compile_cache=str(tmp_path / "jax-cache"), progress_interval=60.0))
    finally:
        ray.shutdown()
    assert result.exit_code == 0 and result.counts == {"pending": 0, "done": 3, "failed": 0, "invalid": 0}, result

    store = ResultStore.open_existing(str(tmp_path / "run.zarr"))
    assert store.verify_blocks() == {}
    assert len(store.attrs["shape_buckets"]) == 3
    ids = store.read_array("id").tolist()
    config = load_config(tmp_path / "fit.toml")
    vector = vector_from_params(config.model, PARAMS)
    for entry in read_catalog(str(tmp_path / "catalog.ecsv")).entries:
        i = ids.index(entry.id)
        assert store.read_array("status")[i] == Status.DONE, store.read_array("error")[i]
        data = load_imaging(entry.path, entry.id, band=entry.band)
        assert store.read_array("psf_raw_sum")[i] == data.psf_raw_sum
        imaging = masked_imaging(data, config.dataset, config.model, entry.mask_radius, entry.mask_centre)
        expected = jax.device_get(evaluate(imaging, vector[None, :], config.model))
        for term in TERMS:
            value = float(np.asarray(getattr(expected, term)).ravel()[0])
            assert store.read_array(term)[i] == pytest.approx(value, rel=1e-9, abs=1e-9), (entry.id, term)
