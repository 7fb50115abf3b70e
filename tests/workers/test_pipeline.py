"""Pipeline stages take their priors from the stage before (workers/pipeline.py): explicit priors first, then
fixed parameters at the previous maximum likelihood, then PyAutoFit's prior passing for carried parameters, then
survey defaults for new ones; an unsearched stage is evaluated at the previous maximum likelihood."""

from __future__ import annotations

import numpy as np
import pytest

from workers.config import parse_config
from workers.pipeline import StagePosterior
from workers.priors import (
    FixedPrior, LogUniformPrior, TruncatedGaussianPrior, UniformPrior, default_prior, passed_prior,
)

RAW = {
    "lens": {"mass": {"type": "isothermal"}, "shear": {}, "light": {"type": "mge", "gaussians": 4}},
    "search": {},
    "stages": [
        {"name": "source_pix", "source": {"type": "rectangular", "shape": [6, 6]}, "fixed": ["lens.light"]},
        {"name": "mass_total", "lens": {"mass": {"type": "power_law"}}, "fixed": ["lens.light"],
         "priors": {"lens.shear.gamma_1": {"type": "uniform", "lower": -0.1, "upper": 0.1}}},
        {"name": "evaluated", "search": False},
    ],
}


def posterior(names, scale: float = 1.0) -> StagePosterior:
    median = np.linspace(0.1, 0.9, len(names)) * scale
    return StagePosterior(tuple(names), median, np.full(len(names), 0.01), median + 0.001)


def test_passed_priors_follow_pyautofit():
    # absolute widths are a floor under the posterior's sigma; relative ones scale with |median|
    assert passed_prior("lens.mass.centre.0", 0.02, 0.01) == TruncatedGaussianPrior(0.02, 0.05, -np.inf, np.inf)
    assert passed_prior("lens.mass.centre.0", 0.02, 0.3) == TruncatedGaussianPrior(0.02, 0.3, -np.inf, np.inf)
    assert passed_prior("lens.mass.einstein_radius", 1.2, 0.01) == TruncatedGaussianPrior(1.2, 0.3, 0.0, np.inf)
    assert passed_prior("lens.mass.ell_comps.1", 0.1, 0.01) == TruncatedGaussianPrior(0.1, 0.2, -1.0, 1.0)
    assert passed_prior("lens.mass.slope", 2.1, 0.01) == TruncatedGaussianPrior(2.1, 0.2, 1.0, 3.0)
    assert passed_prior("lens.shear.gamma_2", 0.01, 0.001) == TruncatedGaussianPrior(0.01, 0.05, -np.inf, np.inf)
    assert passed_prior("source.regularization.coefficient", 2.0, 0.1) == TruncatedGaussianPrior(2.0, 1.0, 0.0,
                                                                                                   np.inf)


def test_each_stage_takes_its_priors_from_the_stage_before():
    config = parse_config(RAW)
    first, pix, total, evaluated = config.pipeline
    assert first.prior_transform(None).priors == tuple(default_prior(n) for n in first.parameter_names)

    before = posterior(first.parameter_names)
    transform = pix.prior_transform(before)
    for name, prior in zip(pix.parameter_names, transform.priors):
        median, sigma, best = before.value(name)
        if name.startswith("lens.light."):
            assert prior == FixedPrior(best), name
        else:
            assert prior == passed_prior(name, median, sigma), name
    assert transform.n_dim == len(pix.parameter_names) - 4  # the lens light's centre and ell_comps are fixed

    transform = total.prior_transform(posterior(pix.parameter_names))
    priors = dict(zip(total.parameter_names, transform.priors))
    assert priors["lens.mass.slope"] == UniformPrior(1.5, 3.0)  # new: the survey default
    assert priors["lens.shear.gamma_1"] == UniformPrior(-0.1, 0.1)  # the stage's own prior wins
    assert isinstance(priors["lens.mass.einstein_radius"], TruncatedGaussianPrior)

    found = posterior(total.parameter_names)
    assert evaluated.search is None and all(isinstance(p, FixedPrior)
                                            for p in evaluated.prior_transform(found).priors)
    np.testing.assert_array_equal(evaluated.start(found), found.max_likelihood)


def test_a_searched_regularization_coefficient_is_passed_on_then_held():
    """SLaM's order: searched from reg.Constant's prior in source_pix, passed on (width 50% of the median) to the
    next search, held at that search's maximum likelihood where a stage fixes it."""
    mesh = {"type": "rectangular", "shape": [6, 6], "regularization": "free"}
    raw = {**RAW, "stages": [
        {"name": "source_pix", "source": mesh, "fixed": ["lens.light"]},
        {"name": "light_lp", "fixed": ["lens.mass", "lens.shear"]},
        {"name": "mass_total", "lens": {"mass": {"type": "power_law"}},
         "fixed": ["lens.light", "source.regularization"]},
    ]}
    first, pix, light, total = parse_config(raw).pipeline
    name = "source.regularization.coefficient"
    priors = dict(zip(pix.parameter_names, pix.prior_transform(posterior(first.parameter_names)).priors))
    assert priors[name] == LogUniformPrior(1e-6, 1e6)
    found = posterior(pix.parameter_names, scale=4.0)
    median, sigma, _ = found.value(name)
    priors = dict(zip(light.parameter_names, light.prior_transform(found).priors))
    passed = TruncatedGaussianPrior(median, 0.5 * median, 0.0, np.inf)
    assert priors[name] == passed_prior(name, median, sigma) == passed
    found = posterior(light.parameter_names, scale=4.0)
    priors = dict(zip(total.parameter_names, total.prior_transform(found).priors))
    assert priors[name] == FixedPrior(found.value(name)[2])


def test_fixed_parameters_take_no_cube_dimension():
    config = parse_config(RAW)
    transform = config.pipeline[1].prior_transform(posterior(config.pipeline[0].parameter_names))
    vectors = transform(np.random.default_rng(0).uniform(size=(5, transform.n_dim)))
    assert vectors.shape == (5, len(transform.names))
    light = [i for i, n in enumerate(transform.names) if n.startswith("lens.light.")]
    assert (vectors[:, light] == vectors[0, light]).all()
    np.testing.assert_array_equal(transform.median()[light], vectors[0, light])


def test_a_stage_cannot_fix_what_the_stage_before_did_not_have():
    from workers.config import ConfigError

    raw = {**RAW, "stages": [{"name": "pl", "lens": {"mass": {"type": "power_law"}}, "fixed": ["lens.mass.slope"]}]}
    with pytest.raises(ConfigError, match="'lens.mass.slope' is not a parameter of both this stage and the one"):
        parse_config(raw)
