"""The gradient search (workers/gradient_search.py): its prior transform is the priors', its gradients are exact
(the positive-only solve's too), its options are checked, a block through BlockFitter writes a complete store, a
lens's result does not depend on its block mates, and its posteriors agree with PyAutoLens's on reference A0 and
cover the truth on simulated lenses."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

sys.path.insert(0, str(Path(__file__).resolve().parent / "inversion"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scheduler"))

from reference_cases import case_model, load_reference_lens  # noqa: E402
from shared_data import REFERENCE  # noqa: E402
from test_search import MODEL, _simulated_lenses  # noqa: E402

from workers.config import ConfigError, SearchOptions, parse_config  # noqa: E402
from workers.coordinator import SearchProgress  # noqa: E402
from workers.gradient_search import (  # noqa: E402
    _gradients, aligned, cube_arrays, exchangeable_sets, gradient_search_block, physical,
)
from workers.inversion.batch import evaluate, stack  # noqa: E402
from workers.inversion.fit import fit  # noqa: E402
from workers.model.description import MGEBasis, RectangularSource, parameter_names  # noqa: E402
from workers.model.settings import Settings  # noqa: E402
from workers.posterior import LensSearch  # noqa: E402
from workers.priors import (  # noqa: E402
    FixedPrior, GaussianPrior, LogUniformPrior, PriorTransform, TruncatedGaussianPrior, UniformPrior, prior_transform,
)

SMALL = SearchOptions(type="gradient", starts=4, steps=100, posterior_samples=400, seed=2, eval_chunk=8)


def test_the_logit_space_transform_is_the_prior_transform():
    prior = PriorTransform(("a", "b", "c", "d", "e", "f"), (
        UniformPrior(-0.3, 0.5), GaussianPrior(0.2, 0.1), FixedPrior(1.5),
        TruncatedGaussianPrior(0.0, 0.3, -1.0, 1.0), TruncatedGaussianPrior(1.0, 0.5, 0.0, 1.2),
        LogUniformPrior(1e-6, 1e6)))
    u = np.random.default_rng(0).uniform(0.001, 0.999, size=(50, prior.n_dim))
    ours = jax.vmap(lambda z: physical(z, cube_arrays(prior), prior.free))(jnp.asarray(special.logit(u)))
    np.testing.assert_allclose(np.asarray(ours), prior(u), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("positive_only", [False, True], ids=["cholesky", "positive-only"])
def test_figure_of_merit_gradients_match_finite_differences(positive_only):
    """The gradient the search follows is the figure of merit's: the positive-only solve (one masked solve on
    its certified active set) included."""
    imagings, truths, _ = _simulated_lenses(1, seed=3)
    model = replace(MODEL, settings=Settings(use_positive_only_solver=positive_only))
    x = jnp.asarray(truths[0] + 0.01)
    f = jax.jit(lambda v: fit(imagings[0], v, model).figure_of_merit)
    gradient = np.asarray(jax.grad(f)(x))
    h = 1e-5
    central = np.array([(f(x.at[i].add(h)) - f(x.at[i].add(-h))) / (2 * h) for i in range(x.size)])
    assert np.abs(gradient).max() > 10  # away from the optimum: a real test of the slope
    np.testing.assert_allclose(gradient, central, rtol=2e-3, atol=2e-3 * np.abs(gradient).max())


@pytest.mark.parametrize("raw, message", [
    ({"search": {"type": "hmc"}}, "search.type: must be one of 'nautilus', 'gradient'"),
    ({"search": {"type": "gradient", "n_live": 100}}, "search.n_live: is not an option of a gradient search"),
    ({"search": {"starts": 4}}, "search.starts: is not an option of a nautilus search"),
    ({"search": {"type": "gradient", "starts": 0}}, "search.starts: must be an integer >= 1"),
    ({"search": {"type": "gradient", "screen": 4}}, "search.screen: must be 0 or at least starts (8), got 4"),
    ({"search": {"type": "gradient", "steps": 10**6}}, "search.steps: must be an integer >= 1 and <= 100000"),
    ({"search": {"type": "gradient", "optimizer": "sgd"}}, "search.optimizer: must be one of 'lbfgs', 'adam'"),
    ({"search": {"type": "gradient", "learning_rate": 0}}, "search.learning_rate: must be > 0"),
    ({"search": {"type": "gradient", "posterior_samples": 5}}, "search.posterior_samples: must be an integer >= 10"),
    ({"search": {"type": "gradient", "mode_tolerance": -1.0}}, "search.mode_tolerance: must be > 0"),
    ({"source": {"type": "rectangular", "mesh": "bilinear_adapt_density", "shape": [10, 10]},
      "search": {"type": "gradient"}}, "search.type: a gradient search cannot follow the gradient of a "
                                      "'bilinear_adapt_density' mesh"),
    ({"search": {"n_live": 50}, "stages": [{"name": "pix", "source": {"type": "rectangular", "mesh":
      "bilinear_adapt_density", "shape": [10, 10]}, "search": {"type": "gradient"}}]},
     "stages[0].search.type: a gradient search cannot follow"),
    ({"search": {"n_live": 50}, "stages": [{"name": "pix", "source": {"type": "rectangular", "mesh":
      "bilinear_adapt_image", "shape": [10, 10]}, "search": {"type": "gradient"}}]},
     "stages[0].search.type: a gradient search cannot follow the gradient of a 'bilinear_adapt_image' mesh"),
])
def test_gradient_search_option_mistakes_name_the_key(raw, message):
    with pytest.raises(ConfigError) as error:
        parse_config(raw, "fit.toml")
    assert f"fit.toml: {message}" in str(error.value)


def test_gradient_options_parse_round_trip_and_a_stage_may_switch_type():
    raw = {"lens": {"shear": {}}, "search": {"type": "gradient", "screen": 0, "lensing_screen": True, "starts": 16,
                                             "steps": 50, "optimizer": "adam", "learning_rate": 0.1, "posterior_samples": 500,
                                             "mode_tolerance": 3.0, "seed": 4},
           "stages": [{"name": "again", "search": {"type": "nautilus", "n_live": 50}}]}
    config = parse_config(raw, "fit.toml")
    assert config.search == SearchOptions(type="gradient", screen=0, lensing_screen=True, starts=16, steps=50,
                                          optimizer="adam", learning_rate=0.1, posterior_samples=500, mode_tolerance=3.0, seed=4)
    assert "n_live" not in config.search.to_dict() and parse_config(config.to_dict()).search == config.search
    assert config.stages[0].search == SearchOptions(n_live=50, seed=4)  # the shared keys carried over


def test_starts_at_mirror_images_of_exchangeable_mge_sets_are_one_mode():
    """Two lens-light sets with one prior: a start whose sets' ell_comps are swapped is the best start's mode."""
    two_sets = replace(MODEL, lens_light=MGEBasis(10, 0.01, bases=2))
    prior = prior_transform(two_sets)
    [sets] = exchangeable_sets(prior)
    free = [prior.names[i] for i in prior.free]
    assert [free[i] for i in sets.ravel()] == [f"lens.light.ell_comps.{i}" for i in range(4)]
    rng = np.random.default_rng(0)
    best = rng.normal(size=len(free))
    mirror = best.copy()
    mirror[sets[0]], mirror[sets[1]] = best[sets[1]], best[sets[0]]
    elsewhere = best + 3.0
    z = np.stack([best, mirror, elsewhere])
    np.testing.assert_array_equal(aligned(z, best, [sets])[:2], [best, best])
    assert np.abs(aligned(z, best, [sets])[2] - best).min() > 1.0
    # a prior of its own on one set's ell_comps: the sets are no longer exchangeable
    own = prior_transform(two_sets, {"lens.light.ell_comps.2": UniformPrior(-0.5, 0.5)})
    assert exchangeable_sets(own) == [] and exchangeable_sets(prior_transform(MODEL)) == []


def test_the_lensing_screen_holds_the_lens_light_at_the_first_screen_s_best():
    imagings, _, prior = _simulated_lenses(1, seed=5)
    with_light = replace(MODEL, lens_light=MGEBasis(4, 0.05))
    light_prior = prior_transform(with_light)
    options = replace(SMALL, screen=64, steps=5, posterior_samples=20)
    runs = {flag: gradient_search_block(imagings, ["a"], with_light, [light_prior],
                                        replace(options, lensing_screen=flag), with_fit=False) for flag in (False, True)}
    assert (runs[False].block_calls, runs[True].block_calls) == (6, 7)  # one screen more
    assert all(isinstance(r.results[0], LensSearch) for r in runs.values())
    # a model without a lens light has nothing to hold: one screen either way
    plain = gradient_search_block(imagings, ["a"], MODEL, [prior], replace(options, lensing_screen=True),
                                  with_fit=False)
    assert plain.block_calls == 6


def test_a_lens_result_does_not_depend_on_its_block_mates():
    imagings, _, prior = _simulated_lenses(3, seed=5)
    progress = SearchProgress()
    ab = gradient_search_block(imagings[:2], ["a", "b"], MODEL, [prior] * 2, SMALL, with_fit=False,
                               progress=progress)
    # the live progress counted every evaluation, each lens's share as its result has it, and both finished
    seen = progress.snapshot()
    assert seen["evaluations"] == seen["finished_evaluations"] == sum(ab.likelihood_evaluations) > 2 * SMALL.screen
    assert (seen["searches"], seen["running"], seen["converged"] + seen["stopped"]) == (2, 0, 2)
    assert seen["likelihood_s"] > 0
    ac = gradient_search_block([imagings[0], imagings[2]], ["a", "c"], MODEL, [prior] * 2, SMALL, with_fit=False)
    again = gradient_search_block(imagings[:2], ["a", "b"], MODEL, [prior] * 2, SMALL, with_fit=False)
    for x, y in ((ab.results[0], ac.results[0]), (ab.results[0], again.results[0]), (ab.results[1], again.results[1])):
        for name in ("samples", "log_weight", "log_likelihood", "parameter_max_likelihood"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=name)
        assert x.log_evidence == y.log_evidence
        np.testing.assert_equal(x.diagnostics, y.diagnostics)  # NaN-aware: a diagnostic may be NaN
    assert not np.array_equal(ab.results[1].samples, ac.results[1].samples)


def _covers_the_truth(n: int, seed: int) -> tuple[int, int, list]:
    """Lenses (of n simulated ones) whose every lens-mass and shear parameter lies within 3σ of its median, lenses
    whose importance weights are reliable (PSIS k̂ < 0.7, more than 50 effective samples) or whose starts disagree
    (flagged multimodal, for a pipeline to hand to Nautilus), and the pulls of the lenses not covered."""
    imagings, truths, prior = _simulated_lenses(n, seed=seed)
    block = gradient_search_block(imagings, [f"sim-{i}" for i in range(n)], MODEL, [prior] * n, SMALL)
    lens_parameters = [i for i, name in enumerate(prior.names) if name.startswith("lens.")]
    covered, reliable, failures = 0, 0, []
    for imaging, truth, result in zip(imagings, truths, block.results):
        assert isinstance(result, LensSearch) and result.converged
        truth_merit = float(evaluate(imaging, truth[None], MODEL).figure_of_merit[0])
        assert result.max_log_likelihood >= truth_merit - 1.0
        np.testing.assert_allclose(result.fit.figure_of_merit, result.max_log_likelihood, rtol=1e-9)
        pull = np.abs(result.parameter_median - truth) / result.parameter_sigma
        if (pull[lens_parameters] <= 3).all():
            covered += 1
        else:
            failures.append(pull[lens_parameters].round(1))
        reliable += int(result.effective_samples > 50 and result.diagnostics["pareto_k"] < 0.7
                        or result.diagnostics["multimodal"] == 1)
    return covered, reliable, failures


def test_posteriors_cover_the_truth_on_four_simulated_lenses():
    # Measured: 4 covered; k̂ 0.38, 0.93, 0.42, 0.67 with 123, 36, 85, 79 effective samples, the second lens's
    # starts disagreeing (3 of 4 at the best), so flagged multimodal.
    covered, reliable, failures = _covers_the_truth(4, seed=7)
    assert covered == 4 and reliable == 4, failures


@pytest.mark.slow
def test_posteriors_cover_the_truth_on_sixteen_simulated_lenses():
    covered, reliable, failures = _covers_the_truth(16, seed=8)
    assert covered >= 15, (covered, reliable, failures)  # measured: 16 covered; 14 with k̂ < 0.7 and N_eff > 50


@pytest.mark.slow
def test_the_posterior_on_reference_a0_agrees_with_pyautolens():
    """search_A0.json: PyAutoLens's Nautilus on A0 with uniform priors of half-width `box` about the truth.
    Medians within 0.5σ of PyAutoLens's, σ within 30%, log evidence within 0.5."""
    reference = json.loads((REFERENCE / "search_A0.json").read_text())
    lens, model = load_reference_lens("A0"), case_model("mge")
    names = parameter_names(model)
    t = lens.truth
    truth = [*t["mass"]["centre"], *t["mass"]["ell_comps"], t["mass"]["einstein_radius"], t["shear"]["gamma_1"],
             t["shear"]["gamma_2"], *t["sources"][0]["centre"], *t["sources"][0]["ell_comps"]]
    half = [next(w for path, w in reference["box"].items() if n.startswith(path)) for n in names]
    prior = prior_transform(model, {n: UniformPrior(x - w, x + w) for n, x, w in zip(names, truth, half)})
    options = SearchOptions(type="gradient", starts=4, steps=200, posterior_samples=1000)
    [result] = gradient_search_block([lens.imaging], ["A0"], model, [prior], options, with_fit=False).results
    median = np.array([reference["parameters"][n]["median"] for n in names])
    sigma = np.array([reference["parameters"][n]["sigma"] for n in names])
    assert result.converged and result.diagnostics["multimodal"] == 0
    assert (np.abs(result.parameter_median - median) <= 0.5 * sigma).all(), (result.parameter_median - median) / sigma
    np.testing.assert_allclose(result.parameter_sigma, sigma, rtol=0.3)
    assert abs(result.log_evidence - reference["log_evidence"]) < 0.5
    assert result.max_log_likelihood >= reference["max_log_likelihood"]


GRADIENT_TOML = """
[priors]
"lens.mass.centre" = { type = "gaussian", mean = 0.0, sigma = 0.05 }
"lens.mass.einstein_radius" = { type = "uniform", lower = 0.7, upper = 1.3 }
"lens.shear.gamma_1" = { type = "uniform", lower = -0.05, upper = 0.05 }
"lens.shear.gamma_2" = { type = "uniform", lower = -0.05, upper = 0.05 }

[search]
type = "gradient"
starts = 4
steps = 150
posterior_samples = 400
max_samples = 150
seed = 4
"""


def test_a_gradient_block_through_block_fitter_writes_a_complete_store(tmp_path):
    from scheduler.run_store import open_store, run_spec
    from small_survey import FIT_TOML, make_survey
    from storage.catalog import read_catalog
    from storage.lease import DriverLease
    from storage.schema import Status
    from workers.block import BlockFitter
    from workers.config import load_config

    catalog_path = make_survey(tmp_path, [(30, 30)] * 2, seed=9)
    (tmp_path / "fit.toml").write_text(FIT_TOML + GRADIENT_TOML)
    catalog, config = read_catalog(str(catalog_path)), load_config(tmp_path / "fit.toml")
    url = str(tmp_path / "gradient.zarr")
    lease = DriverLease.acquire(url, ttl=60)
    try:
        store, plan, driver_run = open_store(url, config, catalog, 2, False, None)
        summary = BlockFitter(run_spec(store, plan, config, driver_run, str(tmp_path / "cache"), lease.token),
                              store).fit(0)
    finally:
        lease.release()
    assert summary["done"] == 2 and (store.status() == Status.DONE).all() and store.verify_blocks() == {}
    read = store.read_array
    assert (read("sample_count") > 50).all() and np.allclose(np.nansum(read("sample_weight"), axis=1), 1.0)
    assert (read("search_multimodal") >= 0).all() and (read("search_starts_at_best") >= 1).all()
    assert (read("search_pareto_k") < 0.7).all() and (read("search_converged") == 1).all()
    assert (read("search_likelihood_evaluations") > 400).all()
    assert (read("search_likelihood_seconds") > 0).all() and (read("search_sampler_seconds") > 0).all()
    # the stored fit is the max-likelihood point's, evaluated as evaluate mode does
    np.testing.assert_array_equal(read("parameters")[:, 0], read("parameter_max_likelihood"))
    np.testing.assert_allclose(read("figure_of_merit"), read("evaluation_figure_of_merit")[:, 0])
    for name in ("parameter_median", "parameter_sigma", "log_evidence", "search_log_evidence", "model_image"):
        assert np.isfinite(read(name)).any(axis=tuple(range(1, read(name).ndim))).all(), name


def _lapack_batches(program: str) -> list[tuple[str, int]]:
    """(target, matrices per call) of every LAPACK custom call in a compiled program's HLO text: the product of
    its first operand's dimensions before the matrix's two."""
    calls = re.findall(r'custom_call_target="(lapack_\w+)", operand_layout_constraints=\{[fc]\d+\[([\d,]*)\]', program)
    return [(target, int(np.prod([int(n) for n in dims.split(",")[:-2]]))) for target, dims in calls]


def test_chunked_gradients_hand_lapack_one_matrix_at_a_time():
    """On a CPU (chunked) the gradient program's Cholesky and triangular solves take one matrix per call: jaxlib
    0.10 splits a batch of them over XLA's CPU thread pool and blocks a pool thread until the parts are done, so
    two such calls side by side deadlock a 2-thread pool, as a mesh model's Laplace step did here (its gradient's
    solves run side by side). Unchunked (an accelerator's vmap) they are batched."""
    imagings, _, _ = _simulated_lenses(1, seed=3)
    model = replace(MODEL, source=RectangularSource((8, 8), 1.0))
    prior = prior_transform(model)
    stacked, cubes = stack(imagings), jax.tree.map(lambda a: np.asarray(a)[None], cube_arrays(prior))
    points = np.zeros((1, 5, len(prior.free)))
    batches = {chunked: _lapack_batches(_gradients.lower(stacked, points, cubes, model, prior.free, chunked)
                                        .compile().as_text()) for chunked in (True, False)}
    assert batches[True] and all(n == 1 for _, n in batches[True]), batches[True]
    assert any(n == 5 for _, n in batches[False]), batches[False]
