"""Search mode of `lensfleet run`: a [search] section fits every lens (posterior, evidence, summaries and the
max-likelihood fit in the store), a later [[stages]] entry adds the pixelized-source stage in its own store group
(an adapt-image mesh, following the first stage's source signal-to-noise),
and an actor killed in the middle of a search leaves a store that completes, on resume from the searches'
checkpoints, equal to a clean run's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scheduler.driver import run
from small_survey import FIT_TOML, assert_same_store, compile_cache, make_survey, run_options, searched_store
from storage.schema import Status
from storage.store import ResultStore

pytestmark = pytest.mark.slow

SEARCH_TOML = FIT_TOML + """
[priors]
"lens.mass.centre" = { type = "gaussian", mean = 0.0, sigma = 0.05 }
"lens.mass.einstein_radius" = { type = "uniform", lower = 0.7, upper = 1.3 }
"lens.shear.gamma_1" = { type = "uniform", lower = -0.05, upper = 0.05 }
"lens.shear.gamma_2" = { type = "uniform", lower = -0.05, upper = 0.05 }

[search]
n_live = 60
n_batch = 50
n_eff = 100
f_live = 0.2
n_like_max = 500
n_networks = 1
network_layers = [16]
network_epochs = 30
seed = 4
max_samples = 300

[[stages]]
name = "source_pix"
source = { type = "rectangular", mesh = "rtu_adapt_image", shape = [8, 8], regularization = 1.0 }
search = false
"""
SHAPES = [(30, 30)] * 4
BLOCK_SIZE = 2


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("search-run")
    make_survey(root, SHAPES, seed=9)
    (root / "fit.toml").write_text(SEARCH_TOML)
    return root


@pytest.fixture(scope="module")
def clean(base, cluster) -> str:
    return searched_store(base, BLOCK_SIZE)


def test_search_mode_writes_posteriors_summaries_and_both_stages(clean):
    store = ResultStore.open_existing(clean)
    names = store.attrs["parameter_names"]
    assert store.attrs["mode"] == "search"
    derived = store.attrs["derived_names"]
    assert derived == ["lens.mass.axis_ratio", "lens.mass.angle", "lens.mass.einstein_radius_intermediate",
                       "lens.shear.magnitude", "lens.shear.angle"]
    assert store.attrs["stages"] == [
        {"name": "source_lp", "group": "", "parameter_names": names, "derived_names": derived, "searched": True},
        {"name": "source_pix", "group": "source_pix", "parameter_names": names[:7], "derived_names": derived,
         "searched": False},
    ]
    assert (store.read_array("stage_status") == Status.DONE).all()
    assert (store.read_array("source_pix/stage_status") == Status.DONE).all()
    assert (store.read_array("status") == Status.DONE).all()

    count = store.read_array("sample_count")
    weights = store.read_array("sample_weight")
    samples = store.read_array("samples")
    assert samples.shape == (4, 300, len(names)) and (count > 0).all() and (count <= 300).all()
    for i, n in enumerate(count):
        np.testing.assert_allclose(weights[i, :n].sum(), 1.0)
        assert np.isfinite(samples[i, :n]).all() and np.isnan(samples[i, n:]).all()
    assert (store.read_array("search_likelihood_evaluations") >= 500).all()
    assert np.isfinite(store.read_array("search_log_evidence")).all()
    assert (store.read_array("parameter_sigma") > 0).all()
    # derived quantities of the posterior: the intermediate-axis Einstein radius of the best sample
    from workers.derived import derived_values

    np.testing.assert_allclose(store.read_array("derived_max_likelihood"),
                               derived_values(tuple(names), store.read_array("parameter_max_likelihood")))
    assert (store.read_array("derived_sigma") >= 0).all()

    # the terms, parameters and images are the max-likelihood fit's
    best = store.read_array("parameter_max_likelihood")
    np.testing.assert_array_equal(store.read_array("parameters")[:, 0], best)
    np.testing.assert_array_equal(store.read_array("evaluation_figure_of_merit")[:, 0],
                                  store.read_array("figure_of_merit"))
    # the pixelized stage starts from the search's max-likelihood lens model, in its own group
    np.testing.assert_array_equal(store.read_array("source_pix/parameters")[:, 0], best[:, :7])
    assert (store.read_array("source_pix/reconstruction_size") == 64).all()
    assert np.isfinite(store.read_array("source_pix/figure_of_merit")).all()
    assert np.isfinite(store.read_array("source_pix/mesh_centres")[:, :64]).all()


def test_the_pixelized_stage_follows_the_adapt_image_of_the_first(base, clean):
    import jax.numpy as jnp

    from storage.catalog import read_catalog
    from storage.datasets import load_imaging
    from workers.config import load_config
    from workers.datasets import masked_imaging
    from workers.inversion.adapt import adapt_image
    from workers.inversion.fit import fit
    from workers.inversion.imaging import with_adapt_image

    config = load_config(base / "fit.toml")
    first, pix = config.pipeline
    store = ResultStore.open_existing(clean)
    for i, entry in enumerate(read_catalog(str(base / "catalog.ecsv")).entries):
        imaging = masked_imaging(load_imaging(entry.path, entry.id), config.dataset, pix.model)
        image = adapt_image(imaging, store.read_array("parameter_max_likelihood")[i], first.model)
        vector = jnp.asarray(store.read_array("source_pix/parameters")[i, 0])
        expected = float(fit(with_adapt_image(imaging, image), vector, pix.model).figure_of_merit)
        np.testing.assert_allclose(store.read_array("source_pix/figure_of_merit")[i], expected, rtol=1e-9, atol=0)
        # the image matters: with none (every weight equal) the mesh is the density mesh, another figure of merit
        assert abs(float(fit(imaging, vector, pix.model).figure_of_merit) - expected) > 1e-3


def test_status_reports_the_searches_and_show_draws_a_corner_plot(clean, tmp_path):
    from scheduler.status import format_summary, summarize
    from workers.show import show_corner

    summary = summarize(clean, worst=0)
    assert summary["search"]["searched"] == 4
    assert summary["search"]["likelihood_evaluations"]["min"] >= 500
    assert "searches met their stopping criteria" in format_summary(summary)
    # where each lens's search time went: its share of the likelihood calls and its sampler's own work
    assert summary["search"]["likelihood_seconds"]["min"] > 0 and summary["search"]["sampler_seconds"]["min"] > 0
    assert "time per lens: likelihood" in format_summary(summary)
    show_corner(clean, "L001", str(tmp_path / "corner.png"))
    assert (tmp_path / "corner.png").stat().st_size > 10_000


def test_an_actor_killed_mid_search_resumes_its_block_and_the_store_equals_a_clean_run(base, clean, tmp_path):
    marker = tmp_path / "actor-died"
    store = tmp_path / "killed.zarr"
    rounds = tmp_path / "rounds"
    rounds.mkdir()
    faults = {"exit_in_search": 1, "after_rounds": 4, "marker": str(marker), "search_rounds": str(rounds)}
    options = run_options(base / "catalog.ecsv", store, base, block_size=BLOCK_SIZE,
                          compile_cache=compile_cache(base), actor_faults=faults)
    result = run(options)

    assert marker.read_text().startswith("lensfleet-fit-0 died in the source_lp search of block 1 after 4 rounds")
    assert result.exit_code == 0 and result.actors_lost == 1
    attempts = ResultStore.open_existing(str(store)).read_array("attempts")
    assert (attempts[2:] == 2).all()
    # the second attempt resumed the searches from their checkpoints: fewer rounds than a whole search
    clean_rounds = int((base / "clean-rounds" / "1.1").read_text())
    assert int((rounds / "1.2").read_text()) <= clean_rounds - 3
    assert_same_store(str(store), clean)  # the resumed searches gave the clean run's samples, bit for bit


def test_the_progress_line_shows_searches_running_before_the_first_block_commits(base, cluster, tmp_path, capfd):
    result = run(run_options(base / "catalog.ecsv", tmp_path / "progress.zarr", base, block_size=BLOCK_SIZE,
                             compile_cache=compile_cache(base)))
    assert result.exit_code == 0, result
    lines = [line for line in capfd.readouterr().out.splitlines() if line.startswith("lensfleet progress done=")]
    fields = [dict(kv.split("=", 1) for kv in line.split()[2:]) for line in lines]
    first_commit = next(i for i, f in enumerate(fields) if not f["done"].startswith("0/"))
    live = [f for f in fields[:first_commit] if float(f.get("eval_rate", "0/s").removesuffix("/s")) > 0]
    assert live, lines[:first_commit]  # evaluations per second inside the first block, before it commits
    # every line accounts for the block's searches: running, or finished (converged or stopped at n_like_max)
    assert all(int(f["searching"]) + int(f["converged"]) + int(f["stopped"]) >= 1 and int(f["evaluations"]) > 0
               for f in live)
    last = fields[-1]
    assert last["done"] == "4/4" and last["converged"] == "0"  # n_like_max stops every search before it converges
    assert last["stopped"] == "4" and last["searching"] == "0"
    assert int(last["evaluations"]) >= 4 * 500
