"""The modelling pipeline: an ordered chain of stages, each a lens model and a search whose priors come from the
stage before it, as PyAutoLens's SLaM pipelines chain their searches.

fit.toml: the top level ([lens], [source], [settings], [priors], [search]) is the first stage, named by the
optional top-level key `stage` (default "source_lp") and stored at the store's root. Each `[[stages]]` table is
one more stage, in order, saying what changes from the stage before it:

    [[stages]]
    name = "source_pix"                  # its store group (a-z, 0-9, _), unique
    source = { type = "rectangular", mesh = "bilinear_adapt_density", shape = [20, 20], regularization = "free" }
    fixed = ["lens.light"]               # held at the previous stage's maximum-likelihood values
    search = { n_live = 150 }            # changes to the previous stage's [search]; false: no search (below)
    # lens = { mass = { type = "power_law" } }   # a lens table replaces that component (mass, shear, light)
    # priors = { "lens.mass.slope" = { type = "uniform", lower = 1.5, upper = 2.5 } }
    # positions = { factor = 3.0, minimum_threshold = 0.2 }   # SLaM's positions likelihood (below)

Priors of a stage (`Stage.prior_transform`), per parameter, first match wins:
  1. the stage's own `priors` entry;
  2. `fixed` (a parameter name or a component path such as "lens.light"): FixedPrior at the previous stage's
     maximum-likelihood value (the parameter must exist there);
  3. a parameter the previous stage had: priors.passed_prior — TruncatedGaussian at the previous posterior
     median, sigma = max(posterior sigma, PyAutoFit's width modifier), within the parameter's limits;
  4. a new parameter (e.g. lens.mass.slope when the mass becomes a PowerLaw): its survey default.
A stage with `search = false` is not searched: it is evaluated once at the previous stage's maximum-likelihood
vector (every parameter must come from there; e.g. a pixelized source at the lens model found with an MGE one).

`positions` (PyAutoLens's positions likelihood, as SLaM's pixelized stages use it): the multiple images of the
source centre found by the last stage with a light-profile source, under its maximum-likelihood mass
(inversion.positions.image_positions), must trace together in this stage's source plane: a model that traces them
further apart than the threshold (factor × their separation under the previous stage's maximum-likelihood mass,
at least minimum_threshold, arcsec) gets the penalised figure of merit instead of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .model.description import Model, parameter_names
from .priors import FixedPrior, Prior, PriorTransform, default_prior, passed_prior

FIRST_STAGE = "source_lp"
STAGE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class StagePosterior:
    """What a stage found for one lens, in its parameter_names order: posterior median, sigma (half the 16–84%
    width) and the maximum-likelihood vector."""

    names: tuple[str, ...]
    median: np.ndarray
    sigma: np.ndarray
    max_likelihood: np.ndarray

    def value(self, name: str) -> tuple[float, float, float]:
        i = self.names.index(name)
        return float(self.median[i]), float(self.sigma[i]), float(self.max_likelihood[i])


@dataclass(frozen=True)
class Positions:
    """A stage's positions likelihood: threshold = max(factor × separation, minimum_threshold) (module docstring)."""

    factor: float = 3.0
    minimum_threshold: float = 0.2


@dataclass(frozen=True)
class Stage:
    """One stage: its name and store group ("" for the first stage, at the root), model, search options (None:
    evaluated at the previous stage's maximum likelihood, or at the catalog's vectors for a first stage),
    explicit priors, the parameters it holds fixed and its positions likelihood (module docstring)."""

    name: str
    model: Model
    search: object | None  # workers.config.SearchOptions
    priors: dict[str, Prior] = field(default_factory=dict, hash=False)
    fixed: tuple[str, ...] = ()
    group: str = ""
    positions: Positions | None = None

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return parameter_names(self.model)

    def is_fixed(self, name: str) -> bool:
        return any(name == f or name.startswith(f + ".") for f in self.fixed)

    def prior_transform(self, previous: StagePosterior | None) -> PriorTransform:
        """This stage's priors for one lens, given what the previous stage found for it (None for the first)."""
        priors = []
        for name in self.parameter_names:
            if name in self.priors:
                prior = self.priors[name]
            elif previous is not None and (self.is_fixed(name) or self.search is None):
                prior = FixedPrior(previous.value(name)[2])
            elif previous is not None and name in previous.names:
                median, sigma, _ = previous.value(name)
                prior = passed_prior(name, median, sigma)
            else:
                prior = default_prior(name)
            priors.append(prior)
        return PriorTransform(self.parameter_names, tuple(priors))

    def start(self, previous: StagePosterior) -> np.ndarray:
        """The vector an unsearched stage is evaluated at: the previous maximum likelihood, per parameter."""
        return np.array([previous.value(name)[2] for name in self.parameter_names])
