"""A broken lens never costs a good one (issue 11, point 1), end to end: the catalog of 24 good and 5 broken lenses
(tests/scheduler/mixed_catalog.py: truncated image, truncated PSF, garbage PSF, a gzip corrupted near its start, a
truncated multi-extension file), run 20 times: every time, every good lens is DONE with the figures a single-lens
evaluate gives, and every broken one INVALID with its own file and reason."""

from __future__ import annotations

import os
import shutil

import pytest

from mixed_catalog import BROKEN, write_mixed_catalog
from scheduler.driver import RunOptions, run
from small_survey import FIT_TOML
from storage.catalog import read_catalog
from storage.datasets import load_imaging
from storage.schema import TERMS, Status
from storage.store import ResultStore

pytestmark = pytest.mark.slow
ROUNDS = 20


def test_twenty_runs_of_a_mixed_catalog_fit_every_good_lens_and_refuse_every_broken_one(tmp_path, cluster):
    from workers.config import load_config
    from workers.evaluate import fit_lens

    catalog_path, good = write_mixed_catalog(tmp_path / "survey")
    (tmp_path / "survey" / "fit.toml").write_text(FIT_TOML)
    catalog = read_catalog(catalog_path)
    config = load_config(tmp_path / "survey" / "fit.toml")
    by_id = {e.id: e for e in catalog.entries}
    expected = {i: fit_lens(load_imaging(by_id[i].path, i), config, by_id[i].params).result for i in good}

    for round_ in range(ROUNDS):
        store = tmp_path / f"run-{round_}.zarr"
        result = run(RunOptions(catalog=catalog_path, config=str(tmp_path / "survey" / "fit.toml"), store=str(store),
                                block_size=4, actors=1, compile_cache=str(tmp_path / "jax-cache"),
                                progress_interval=60.0))
        assert result.exit_code == 0 and result.counts == {
            "pending": 0, "done": len(good), "failed": 0, "invalid": len(BROKEN)}, (round_, result)
        stored = ResultStore.open_existing(str(store))
        assert stored.verify_blocks() == {}
        ids = stored.read_array("id").tolist()
        status, errors = stored.read_array("status"), stored.read_array("error").tolist()
        terms = {term: stored.read_array(term) for term in TERMS}
        for i, dataset_id in enumerate(ids):
            if dataset_id in BROKEN:
                file, phrase = BROKEN[dataset_id]
                shown = os.path.join(by_id[dataset_id].path, file) if file else by_id[dataset_id].path
                assert status[i] == Status.INVALID, (round_, dataset_id)
                assert errors[i].startswith(f"dataset {dataset_id}: {shown}: {phrase}"), (round_, errors[i])
                continue
            assert (status[i], errors[i]) == (Status.DONE, ""), (round_, dataset_id, errors[i])
            for term in TERMS:
                value = float(getattr(expected[dataset_id], term))
                assert terms[term][i] == pytest.approx(value, rel=1e-9, abs=1e-9), (round_, dataset_id, term)
        shutil.rmtree(store)  # keep the disk small over 20 rounds
