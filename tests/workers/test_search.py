"""Nonlinear searches (workers/search.py): priors map the unit cube as specified; a block's searches run side by
side give the samples of running them one by one; a killed search resumes from its checkpoint; on simulated
lenses the posteriors cover the truth and the max-likelihood fit is at least as good as the truth's."""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import workers.search as search
from workers.config import ConfigError, SearchOptions, parse_config
from workers.inversion.batch import evaluate
from workers.inversion.imaging import prepare_imaging
from workers.model.description import MGEBasis, Model, RectangularSource
from workers.inversion.parameters import MassParameters
from workers.inversion.simulate import SersicProfile, simulate_imaging
from workers.priors import (
    GaussianPrior,
    LogUniformPrior,
    TruncatedGaussianPrior,
    UniformPrior,
    default_prior,
    prior_transform,
)
from workers.posterior import LensSearch, weighted_quantiles
from workers.search import lens_seed, search_block

MODEL = Model(source=MGEBasis(gaussians=10, sigma_min=0.01), shear=True)

# Test priors, narrower than the survey defaults so that CI-sized searches are short; the simulated truths are
# drawn from them, so a calibrated posterior covers the truth as often as its interval says.
TEST_PRIORS = {
    "lens.mass.centre": GaussianPrior(0.0, 0.05),
    "lens.mass.ell_comps": TruncatedGaussianPrior(0.0, 0.1, -1.0, 1.0),
    "lens.mass.einstein_radius": UniformPrior(0.8, 1.4),
    "lens.shear.gamma_1": UniformPrior(-0.05, 0.05),
    "lens.shear.gamma_2": UniformPrior(-0.05, 0.05),
    "source.centre": GaussianPrior(0.0, 0.1),
    "source.ell_comps": TruncatedGaussianPrior(0.0, 0.15, -1.0, 1.0),
}


def _test_prior():
    names = prior_transform(MODEL).names
    return prior_transform(MODEL, {n: TEST_PRIORS.get(n, TEST_PRIORS.get(n.rpartition(".")[0])) for n in names})


def _simulated_lenses(n: int, seed: int, intensity: float = 0.1):
    """n 40×40 lenses at 0.1″ (mask 1.6″), truths drawn from the test priors; simulated and fitted on the same
    pixel-centre grid (over-sampling 1) so the only model mismatch is the MGE source against a Sersic."""
    prior = _test_prior()
    rng = np.random.default_rng(seed)
    imagings, truths = [], []
    for i in range(n):
        truth = prior(rng.uniform(size=prior.n_dim))
        mass = MassParameters("isothermal", {"centre": jnp.asarray(truth[0:2]), "ell_comps": jnp.asarray(truth[2:4]),
                                             "einstein_radius": jnp.float64(truth[4])}, jnp.asarray(truth[5:7]))
        source = SersicProfile(tuple(truth[7:9]), tuple(truth[9:11]), intensity, 0.2, 1.5)
        sim = simulate_imaging((40, 40), 0.1, mass, [source], over_sample_size=1, seed=1000 * seed + i)
        imagings.append(prepare_imaging(sim.image, sim.noise_map, sim.psf, 0.1, mask_radius=1.6,
                                        over_sample_size_lp=1, over_sample_size_pixelization=1))
        truths.append(truth)
    return imagings, truths, prior


TINY = SearchOptions(n_live=60, n_batch=50, n_eff=100, f_live=0.2, n_like_max=600, n_networks=1,
                     network_layers=(16,), network_epochs=30, seed=3, eval_chunk=10)


# --- priors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prior, reference",
    [
        (UniformPrior(-0.3, 0.5), stats.uniform(-0.3, 0.8)),
        (LogUniformPrior(1e-6, 1e6), stats.loguniform(1e-6, 1e6)),
        (GaussianPrior(0.2, 0.1), stats.norm(0.2, 0.1)),
        (TruncatedGaussianPrior(0.0, 0.3, -1.0, 1.0), stats.truncnorm(-1 / 0.3, 1 / 0.3, loc=0.0, scale=0.3)),
        (TruncatedGaussianPrior(1.0, 0.5, 0.0, 1.2), stats.truncnorm(-2.0, 0.4, loc=1.0, scale=0.5)),
    ],
)
def test_prior_transform_maps_unit_quantiles_to_the_distribution_quantiles(prior, reference):
    u = np.array([0.001, 0.16, 0.5, 0.84, 0.999])
    np.testing.assert_allclose(prior.ppf(u), reference.ppf(u), rtol=1e-10, atol=1e-12)
    draws = prior.ppf(np.random.default_rng(0).uniform(size=200_000))
    lo, hi = prior.support()
    assert draws.min() >= lo and draws.max() <= hi
    assert abs(draws.mean() - reference.mean()) < 5 * reference.std() / np.sqrt(draws.size)


def test_the_model_prior_applies_each_parameter_prior_in_parameter_order():
    prior = prior_transform(MODEL, {"lens.mass.einstein_radius": UniformPrior(0.5, 3.0)})
    assert prior.names[4] == "lens.mass.einstein_radius"
    cube = np.random.default_rng(1).uniform(size=(7, prior.n_dim))
    vectors = prior(cube)
    for i, name in enumerate(prior.names):
        expected = (UniformPrior(0.5, 3.0) if i == 4 else default_prior(name)).ppf(cube[:, i])
        np.testing.assert_array_equal(vectors[:, i], expected)
    assert prior.contains(vectors).all()
    np.testing.assert_allclose(prior.median()[4], 1.75)


def test_survey_defaults_follow_pyautolens():
    assert default_prior("lens.mass.centre.0") == GaussianPrior(0.0, 0.1)
    assert default_prior("lens.mass.ell_comps.1") == TruncatedGaussianPrior(0.0, 0.3, -1.0, 1.0)
    assert default_prior("lens.mass.einstein_radius") == UniformPrior(0.0, 4.0)
    assert default_prior("lens.shear.gamma_2") == UniformPrior(-0.3, 0.3)
    assert default_prior("source.centre.1") == GaussianPrior(0.0, 0.3)
    assert default_prior("source.ell_comps.0") == TruncatedGaussianPrior(0.0, 0.3, -1.0, 1.0)
    assert default_prior("lens.mass.slope") == UniformPrior(1.5, 3.0)
    with pytest.raises(KeyError, match="lens.mass.core_radius"):
        default_prior("lens.mass.core_radius")


SEARCH_TOML = """
[lens.shear]

[priors]
"lens.mass.einstein_radius" = { type = "uniform", lower = 0.5, upper = 3.0 }
"source.centre" = { type = "gaussian", mean = 0.0, sigma = 0.5 }
lens.shear.gamma_1 = { type = "truncated_gaussian", mean = 0.0, sigma = 0.05, lower = -0.2, upper = 0.2 }

[search]
type = "nautilus"
n_live = 150
n_batch = 64
n_eff = 300
f_live = 0.05
n_like_max = 20000
n_networks = 2
network_layers = [32, 16]
network_epochs = 200
discard_exploration = true
seed = 11
max_samples = 500
checkpoint = false
eval_chunk = 8
"""


def test_priors_and_search_sections_parse_and_round_trip(tmp_path):
    import tomllib

    config = parse_config(tomllib.loads(SEARCH_TOML), "fit.toml")
    assert config.priors == {
        "lens.mass.einstein_radius": UniformPrior(0.5, 3.0),
        "source.centre.0": GaussianPrior(0.0, 0.5),
        "source.centre.1": GaussianPrior(0.0, 0.5),
        "lens.shear.gamma_1": TruncatedGaussianPrior(0.0, 0.05, -0.2, 0.2),
    }
    assert config.search == SearchOptions(
        n_live=150, n_batch=64, n_eff=300, f_live=0.05, n_like_max=20000, n_networks=2, network_layers=(32, 16),
        network_epochs=200, discard_exploration=True, seed=11, max_samples=500, checkpoint=False, eval_chunk=8,
    )
    assert parse_config(config.to_dict()) == config.__class__(**{**config.__dict__, "origin": "<config>"})
    assert parse_config({}).search is None and parse_config({"search": {}}).search == SearchOptions()

    pipeline = parse_config({"lens": {"shear": {}}, "search": {}, "stages": [
        {"name": "source_pix", "source": {"type": "rectangular", "shape": [16, 12]}, "search": False}]})
    [stage] = pipeline.stages
    assert stage.model.source == RectangularSource((16, 12), 1.0) and stage.model.shear and stage.search is None
    assert stage.group == "source_pix" and stage.model.mass == pipeline.model.mass
    assert parse_config(pipeline.to_dict()).stages == pipeline.stages


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"priors": {"lens.mass.slope": {"type": "uniform", "lower": 0, "upper": 1}}},
         "fit.toml: priors.lens.mass.slope: not a parameter of this model"),
        ({"priors": {"lens.mass.einstein_radius": {"type": "uniform", "lower": 3, "upper": 1}}},
         "fit.toml: priors.lens.mass.einstein_radius: lower must be < upper"),
        ({"priors": {"lens.mass.einstein_radius": {"type": "gaussian", "mean": 1}}},
         "fit.toml: priors.lens.mass.einstein_radius: a gaussian prior needs mean, sigma; 'sigma' is missing"),
        ({"priors": {"lens.mass.einstein_radius": {"type": "gaussian", "mean": 1, "sigma": -1}}},
         "fit.toml: priors.lens.mass.einstein_radius: sigma must be > 0"),
        ({"priors": {"lens.mass.einstein_radius": {"type": "lognormal", "mean": 1, "sigma": 1}}},
         "fit.toml: priors.lens.mass.einstein_radius: type must be one of"),
        ({"priors": {"lens.mass.einstein_radius": {"type": "uniform", "lower": 0, "upper": 1, "mean": 0}}},
         "fit.toml: priors.lens.mass.einstein_radius: unknown key 'mean' for a uniform prior"),
        ({"priors": {"lens.mass.einstein_radius": 1.5}}, "fit.toml: priors.lens.mass.einstein_radius: must be a table"),
        ({"search": {"n_lve": 100}}, "fit.toml: search.n_lve: unknown key"),
        ({"search": {"type": "dynesty"}}, "fit.toml: search.type: must be one of 'nautilus', 'gradient'"),
        ({"search": {"n_live": 0}}, "fit.toml: search.n_live: must be an integer >= 2"),
        ({"search": {"n_eff": "many"}}, "fit.toml: search.n_eff: must be a number"),
        ({"search": {"f_live": 1.5}}, "fit.toml: search.f_live: must be < 1"),
        ({"search": {"seed": -1}}, "fit.toml: search.seed: must be an integer >= 0"),
        ({"search": {"checkpoint": "yes"}}, "fit.toml: search.checkpoint: must be true or false"),
        ({"search": {"network_layers": []}}, "fit.toml: search.network_layers: must be a list of positive integers"),
        ({"stages": [{"name": "pix"}]}, "fit.toml: stages[0]: stage 'pix' starts from the stage before it, which "
         "has no search"),
        ({"search": {}, "stages": [{"name": "pix", "source": {"type": "voronoi"}}]},
         "fit.toml: stages[0].source.type: must be \"mge\" or \"rectangular\""),
        ({"search": {}, "stages": [{"name": "pix", "source": {"type": "rectangular", "shape": [2, 2]}}]},
         "fit.toml: stages[0].source.shape: a rectangular mesh needs at least 3×3 cells"),
        ({"search": {}, "stages": [{"name": "source_lp"}]},
         "fit.toml: stages[0].name: 'source_lp' is the name of an earlier stage"),
        ({"search": {}, "stages": [{"name": "Bad-Name"}]}, "fit.toml: stages[0].name: needs a name of a-z"),
        ({"search": {}, "stages": [{"name": "pix", "fixed": ["lens.light"]}]},
         "fit.toml: stages[0].fixed: 'lens.light' is not a parameter of both this stage and the one before"),
        ({"search": {}, "stages": [{"name": "pl", "lens": {"mass": {"type": "isothermal"}}, "search": False,
                                    "priors": {"lens.mass.einstein_radius": {"type": "uniform", "lower": 0,
                                                                             "upper": 2}}}]},
         "fit.toml: stages[0].search: a stage without a search is evaluated at the previous stage's"),
    ],
)
def test_prior_and_search_mistakes_name_the_file_and_key(raw, message):
    with pytest.raises(ConfigError) as error:
        parse_config(raw, "fit.toml")
    assert message in str(error.value)


# --- results bookkeeping -----------------------------------------------------------------------------------


def test_weighted_quantiles_match_repeated_samples():
    rng = np.random.default_rng(2)
    values = rng.normal(size=(50_000, 2))
    weights = np.exp(-0.5 * values[:, 0] ** 2)  # reweights column 0 to N(0, 1/2)
    q16, q50, q84 = weighted_quantiles(values, weights, (0.16, 0.5, 0.84))
    assert abs(q50[0]) < 0.02 and abs(0.5 * (q84[0] - q16[0]) - np.sqrt(0.5)) < 0.02
    assert abs(0.5 * (q84[1] - q16[1]) - 1.0) < 0.03


def _posterior(n, seed=0):
    rng = np.random.default_rng(seed)
    samples = rng.normal(size=(n, 3))
    log_weight = -0.5 * samples[:, 0] ** 2
    log_weight -= np.log(np.exp(log_weight).sum())
    return LensSearch("x", ("a", "b", "c"), samples, log_weight, -samples[:, 1] ** 2, 0.0, 0.1, 10.0, n, True,
                      samples[0], 0.0, np.zeros(3), np.ones(3))


def test_stored_samples_keep_everything_below_the_maximum_and_resample_above_it():
    small = _posterior(300).stored_samples(500)
    assert small.sample_count == 300 and small.samples.shape == (500, 3)
    assert np.isnan(small.samples[300:]).all() and (small.sample_weight[300:] == 0).all()
    np.testing.assert_allclose(small.sample_weight.sum(), 1.0)

    big = _posterior(20_000)
    stored = big.stored_samples(1000)
    assert stored.sample_count <= 1000
    np.testing.assert_allclose(stored.sample_weight.sum(), 1.0)
    kept = stored.samples[: stored.sample_count]
    # every kept point is one of the posterior's, with its own log-likelihood
    index = {tuple(p): i for i, p in enumerate(big.samples)}
    rows = [index[tuple(p)] for p in kept]
    np.testing.assert_array_equal(stored.sample_log_likelihood[: stored.sample_count], big.log_likelihood[rows])
    # and the resample has the posterior's moments (column 0 is N(0, 1/2) under the weights)
    w = stored.sample_weight[: stored.sample_count]
    assert abs(np.sum(w * kept[:, 0])) < 0.05 and abs(np.sum(w * kept[:, 0] ** 2) - 0.5) < 0.05
    np.testing.assert_array_equal(stored.samples, big.stored_samples(1000).samples)  # deterministic


def test_lens_seeds_depend_on_the_run_seed_and_the_dataset_id_only():
    assert lens_seed(0, "a") == lens_seed(0, "a")
    assert len({lens_seed(0, "a"), lens_seed(1, "a"), lens_seed(0, "b")}) == 3


# --- searches ----------------------------------------------------------------------------------------------


def _assert_same_search(a: LensSearch, b: LensSearch):
    for field in ("samples", "log_weight", "log_likelihood", "parameter_max_likelihood"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert (a.log_evidence, a.likelihood_evaluations) == (b.log_evidence, b.likelihood_evaluations)


@pytest.mark.parametrize("eval_chunk", [0, 10], ids=["one-vmap", "lens-by-lens"])
def test_batched_searches_give_the_samples_of_one_by_one_searches(eval_chunk):
    imagings, _, prior = _simulated_lenses(3, seed=5)
    options = replace(TINY, eval_chunk=eval_chunk)
    side_by_side = search_block(imagings[:2], ["lens-a", "lens-b"], MODEL, [prior] * 2, options, with_fit=False)
    one_by_one = search_block(imagings[:2], ["lens-a", "lens-b"], MODEL, [prior] * 2, options, concurrent=False,
                              with_fit=False)
    for a, b in zip(side_by_side.results, one_by_one.results):
        assert isinstance(a, LensSearch) and a.likelihood_evaluations >= TINY.n_like_max
        _assert_same_search(a, b)
    assert side_by_side.likelihood_evaluations == one_by_one.likelihood_evaluations
    if not eval_chunk:
        # one vmap (a GPU): a round waits one call's time for the other sampler, so requests are merged
        assert side_by_side.block_calls < one_by_one.block_calls
    else:
        # lens by lens (a CPU): a call costs only what it computes, so a request is evaluated without waiting
        assert side_by_side.coordinator_s["gathering"] == 0.0
        # idle slots are skipped lens by lens: only requested points are computed
        assert one_by_one.evaluated == sum(one_by_one.likelihood_evaluations)

        # a lens's search does not depend on the lenses sharing its block (same slot, same seed)
        other = search_block([imagings[0], imagings[2]], ["lens-a", "lens-c"], MODEL, [prior] * 2, options,
                             with_fit=False)
        _assert_same_search(other.results[0], side_by_side.results[0])
        assert not np.array_equal(other.results[1].samples[:100], side_by_side.results[1].samples[:100])


def test_the_block_plan_is_fit_tomls_eval_chunk_or_the_devices_plan_and_changes_no_value():
    imagings, truths, _ = _simulated_lenses(3, seed=7)
    stacked = search.stack(imagings)
    vectors = np.stack([t + 1e-3 * np.random.default_rng(i).standard_normal((4, t.size)) for i, t in enumerate(truths)])
    assert search.block_plan(stacked, vectors, MODEL, 10) == (10, 0)
    chunk, lenses_per_call = search.block_plan(stacked, vectors, MODEL, None)
    lens = jax.tree.map(lambda a: a[0], stacked)
    plan = search.plan_batch(lens, vectors[0], MODEL, lenses=3)  # the same plan, cached
    assert (chunk, lenses_per_call) == (plan.eval_chunk, plan.lenses_per_call)
    one_vmap = search.block_figure_of_merit(stacked, vectors, MODEL)
    planned = search.block_figure_of_merit(stacked, vectors, MODEL, chunk, lenses_per_call=lenses_per_call)
    assert np.allclose(planned, one_vmap, rtol=1e-10, atol=0.0)
    cut = search.block_figure_of_merit(stacked, vectors, MODEL, 0, lenses_per_call=2)  # calls of 2 lenses
    assert np.allclose(cut, one_vmap, rtol=1e-10, atol=0.0)


def test_a_killed_search_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    imagings, _, prior = _simulated_lenses(2, seed=6)
    ids = ["lens-a", "lens-b"]
    clean = search_block(imagings, ids, MODEL, [prior] * len(imagings), TINY, with_fit=False)

    real = search.block_figure_of_merit
    calls = {"n": 0}

    def dies_after_five_rounds(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 6:  # the first call compiles; then five rounds of likelihood requests
            raise KeyboardInterrupt("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(search, "block_figure_of_merit", dies_after_five_rounds)
    with pytest.raises(KeyboardInterrupt):
        search_block(imagings, ids, MODEL, [prior] * len(imagings), TINY, checkpoint_dir=tmp_path, with_fit=False)
    monkeypatch.setattr(search, "block_figure_of_merit", real)
    # each lens's whole checkpoint is there; a sampler killed while writing one may leave its partial write,
    # which is never read (the samplers go on between rounds now, so one may be writing at the kill)
    files = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".partial.h5"))
    assert len(files) == 2 and all(f.endswith(".h5") for f in files) and files[0].startswith("lens-a")

    resumed = search_block(imagings, ids, MODEL, [prior] * len(imagings), TINY, checkpoint_dir=tmp_path, with_fit=False)
    assert sum(resumed.likelihood_evaluations) < sum(clean.likelihood_evaluations)  # it went on from the checkpoints
    for a, b in zip(clean.results, resumed.results):
        _assert_same_search(a, b)
    resumed.remove_checkpoints()
    assert not list(tmp_path.iterdir())


def test_an_unreadable_checkpoint_is_discarded(tmp_path):
    imagings, _, prior = _simulated_lenses(1, seed=6)
    fingerprint = search.search_fingerprint(MODEL, prior, TINY)
    path = search.checkpoint_path(tmp_path, "lens-a", imagings[0], fingerprint)
    path.write_bytes(b"half a checkpoint")
    result = search_block(imagings, ["lens-a"], MODEL, [prior] * len(imagings), TINY, checkpoint_dir=tmp_path, with_fit=False)
    assert isinstance(result.results[0], LensSearch) and result.results[0].likelihood_evaluations >= TINY.n_like_max


@pytest.mark.slow
def test_posteriors_cover_the_truth_on_eight_simulated_lenses():
    imagings, truths, prior = _simulated_lenses(8, seed=7)
    options = SearchOptions(n_live=60, n_batch=50, n_eff=200, f_live=0.1, n_networks=1, network_layers=(32, 16),
                            network_epochs=50, seed=1, eval_chunk=10)
    block = search_block(imagings, [f"sim-{i}" for i in range(8)], MODEL, [prior] * len(imagings), options)
    inside = []
    for imaging, truth, result in zip(imagings, truths, block.results):
        assert isinstance(result, LensSearch) and result.converged
        lower = result.parameter_median - 3 * result.parameter_sigma
        upper = result.parameter_median + 3 * result.parameter_sigma
        inside += list((lower <= truth) & (truth <= upper))
        truth_figure_of_merit = float(evaluate(imaging, truth[None], MODEL).figure_of_merit[0])
        assert result.max_log_likelihood >= truth_figure_of_merit - 1.0
        # the final with-arrays fit is the max-likelihood point's
        np.testing.assert_allclose(result.fit.figure_of_merit, result.max_log_likelihood, rtol=1e-9)
        assert result.fit.model_image.shape == (imaging.bucket.pixels,)
        assert np.isfinite(result.log_evidence) and 0 < result.log_evidence_error < 0.2
    assert np.mean(inside) >= 0.9, np.mean(inside)
