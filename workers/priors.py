"""Priors on the nonlinear lens-model parameters, PyAutoLens-style, one per flattened parameter name.

Pure numpy/scipy (no JAX): fit.toml's parser and the driver use it. A search samples the unit cube; the prior
transform maps u ∈ (0, 1) to a parameter by the inverse CDF (Φ is the standard normal CDF):

    uniform(lower, upper)                        x = lower + u·(upper − lower)
    log_uniform(lower, upper)                    x = lower·(upper/lower)^u   (0 < lower)
    gaussian(mean, sigma)                        x = mean + sigma·Φ⁻¹(u)
    truncated_gaussian(mean, sigma, lower, upper)
                                                 x = mean + sigma·Φ⁻¹(Φ(a) + u·(Φ(b) − Φ(a))),
                                                 a = (lower − mean)/sigma, b = (upper − mean)/sigma
                                                 (scipy.stats.truncnorm.ppf, accurate in the far tails)

Survey defaults (`default_prior`), PyAutoLens's defaults (autogalaxy/config/priors) except where noted:

    parameter                          prior                                   PyAutoLens
    lens.mass.centre.0, .1             gaussian(0, 0.1)                        same
    lens.mass.ell_comps.0, .1          truncated_gaussian(0, 0.3, -1, 1)       same
    lens.mass.einstein_radius          uniform(0, 4)                           uniform(0, 8): we fit galaxy-scale
                                                                               lenses (θE of survey lenses ≲ 3″)
    lens.mass.slope                    uniform(1.5, 3)                         same (PowerLaw)
    lens.shear.gamma_1, gamma_2        uniform(-0.3, 0.3)                      same
    lens.light.centre.0, .1            gaussian(0, 0.3)                        same (Gaussian/MGE light)
    lens.light.ell_comps.0, .1         truncated_gaussian(0, 0.3, -1, 1)       same
    source.centre.0, .1                gaussian(0, 0.3)                        same
    source.ell_comps.0, .1             truncated_gaussian(0, 0.3, -1, 1)       same
    source.regularization.coefficient  log_uniform(1e-6, 1e6)                  same (reg.Constant)
    source.regularization.inner_coefficient, .outer_coefficient
                                       log_uniform(1e-6, 1e6)                  same (reg.Adapt)
    source.regularization.signal_scale uniform(0, 1)                           same (reg.Adapt)

Units: arcsec for centres and θE; ell_comps, slope and shear are dimensionless. fit.toml's `[priors]` table replaces
any of them, e.g. `"lens.mass.einstein_radius" = { type = "uniform", lower = 0.5, upper = 3.0 }`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Union

import numpy as np
from scipy import special, stats

from .model.description import Model, parameter_names

# The unit cube is open: keep u away from 0 and 1 so Gaussian tails stay finite.
_U_EPS = 1e-12


@dataclass(frozen=True)
class UniformPrior:
    """Flat on [lower, upper]."""

    lower: float
    upper: float

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return self.lower + np.asarray(u) * (self.upper - self.lower)

    def support(self) -> tuple[float, float]:
        return self.lower, self.upper


@dataclass(frozen=True)
class LogUniformPrior:
    """Flat in ln x on [lower, upper], 0 < lower."""

    lower: float
    upper: float

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return self.lower * (self.upper / self.lower) ** np.asarray(u)

    def support(self) -> tuple[float, float]:
        return self.lower, self.upper


@dataclass(frozen=True)
class GaussianPrior:
    """Normal with mean and standard deviation sigma."""

    mean: float
    sigma: float

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return self.mean + self.sigma * special.ndtri(np.clip(u, _U_EPS, 1.0 - _U_EPS))

    def support(self) -> tuple[float, float]:
        return -np.inf, np.inf


@dataclass(frozen=True)
class TruncatedGaussianPrior:
    """Normal (mean, sigma) restricted to [lower, upper] and renormalised."""

    mean: float
    sigma: float
    lower: float
    upper: float

    def ppf(self, u: np.ndarray) -> np.ndarray:
        a, b = (self.lower - self.mean) / self.sigma, (self.upper - self.mean) / self.sigma
        x = stats.truncnorm.ppf(np.clip(u, 0.0, 1.0), a, b, loc=self.mean, scale=self.sigma)
        return np.clip(x, self.lower, self.upper)

    def support(self) -> tuple[float, float]:
        return self.lower, self.upper


@dataclass(frozen=True)
class FixedPrior:
    """The parameter is held at `value`: it takes no dimension of the unit cube."""

    value: float

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return np.full(np.shape(u), self.value)

    def support(self) -> tuple[float, float]:
        return self.value, self.value


Prior = Union[UniformPrior, LogUniformPrior, GaussianPrior, TruncatedGaussianPrior, FixedPrior]

PRIOR_TYPES: dict[str, type] = {
    "uniform": UniformPrior,
    "log_uniform": LogUniformPrior,
    "gaussian": GaussianPrior,
    "truncated_gaussian": TruncatedGaussianPrior,
    "fixed": FixedPrior,
}

_DEFAULTS: dict[str, Prior] = {
    "lens.mass.centre": GaussianPrior(0.0, 0.1),
    "lens.mass.ell_comps": TruncatedGaussianPrior(0.0, 0.3, -1.0, 1.0),
    "lens.mass.einstein_radius": UniformPrior(0.0, 4.0),
    "lens.mass.slope": UniformPrior(1.5, 3.0),
    "lens.shear.gamma_1": UniformPrior(-0.3, 0.3),
    "lens.shear.gamma_2": UniformPrior(-0.3, 0.3),
    "lens.light.centre": GaussianPrior(0.0, 0.3),
    "lens.light.ell_comps": TruncatedGaussianPrior(0.0, 0.3, -1.0, 1.0),
    "source.centre": GaussianPrior(0.0, 0.3),
    "source.ell_comps": TruncatedGaussianPrior(0.0, 0.3, -1.0, 1.0),
    "source.regularization.coefficient": LogUniformPrior(1e-6, 1e6),
    "source.regularization.inner_coefficient": LogUniformPrior(1e-6, 1e6),
    "source.regularization.outer_coefficient": LogUniformPrior(1e-6, 1e6),
    "source.regularization.signal_scale": UniformPrior(0.0, 1.0),
}


# PyAutoFit's prior passing (width_modifier and limits of autogalaxy/config/priors): a parameter carried into a
# later stage gets TruncatedGaussian(median, sigma, *limits); sigma is at least the width modifier, absolute
# (a value) or relative (value × |median|).
_PASSING: dict[str, tuple[str, float, float, float]] = {  # (kind, value, lower limit, upper limit)
    "lens.mass.centre": ("absolute", 0.05, -np.inf, np.inf),
    "lens.mass.ell_comps": ("absolute", 0.2, -1.0, 1.0),
    "lens.mass.einstein_radius": ("relative", 0.25, 0.0, np.inf),
    "lens.mass.slope": ("absolute", 0.2, 1.0, 3.0),
    "lens.shear.gamma_1": ("absolute", 0.05, -np.inf, np.inf),
    "lens.shear.gamma_2": ("absolute", 0.05, -np.inf, np.inf),
    "lens.light.centre": ("absolute", 0.05, -np.inf, np.inf),
    "lens.light.ell_comps": ("absolute", 0.2, -1.0, 1.0),
    "source.centre": ("absolute", 0.05, -np.inf, np.inf),
    "source.ell_comps": ("absolute", 0.2, -1.0, 1.0),
    "source.regularization.coefficient": ("relative", 0.5, 0.0, np.inf),
    "source.regularization.inner_coefficient": ("relative", 0.5, 0.0, np.inf),
    "source.regularization.outer_coefficient": ("relative", 0.5, 0.0, np.inf),
    "source.regularization.signal_scale": ("relative", 0.2, 0.0, np.inf),
}


def _table_entry(table: Mapping[str, Any], name: str) -> Any:
    """The entry of a flattened name, or of its vector ("lens.mass.centre" for "lens.mass.centre.0")."""
    if name in table:
        return table[name]
    path, _, index = name.rpartition(".")
    if index.isdigit() and path in table:
        return table[path]
    raise KeyError(f"no entry for parameter {name!r}")


def passed_prior(name: str, median: float, sigma: float) -> TruncatedGaussianPrior:
    """The prior a later stage gives a parameter carried over from the stage before (PyAutoFit's prior
    passing): a Gaussian at the previous posterior median with sigma = max(posterior sigma, width modifier),
    truncated to the parameter's physical limits."""
    kind, value, lower, upper = _table_entry(_PASSING, name)
    width = value if kind == "absolute" else value * abs(median)
    mean = float(np.clip(median, lower, upper))
    return TruncatedGaussianPrior(mean, float(max(sigma, width)), lower, upper)


def default_prior(name: str) -> Prior:
    """The survey default for a flattened parameter name (see the module docstring's table)."""
    return _table_entry(_DEFAULTS, name)


def prior_to_dict(prior: Prior) -> dict[str, Any]:
    """fit.toml's inline-table form, e.g. {"type": "uniform", "lower": 0.0, "upper": 4.0}."""
    kind = next(k for k, cls in PRIOR_TYPES.items() if isinstance(prior, cls))
    return {"type": kind, **asdict(prior)}


def prior_from_dict(table: Any) -> Prior:
    """A prior from its fit.toml inline table; ValueError says what is wrong (the caller names the key)."""
    if not isinstance(table, dict):
        raise ValueError(f"must be a table like {{ type = \"uniform\", lower = 0.0, upper = 1.0 }}, got {table!r}")
    kind = table.get("type")
    if kind not in PRIOR_TYPES:
        raise ValueError(f"type must be one of {', '.join(repr(k) for k in PRIOR_TYPES)}, got {kind!r}")
    cls = PRIOR_TYPES[kind]
    fields = tuple(cls.__dataclass_fields__)
    unknown = sorted(set(table) - {"type", *fields})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} for a {kind} prior (known: {', '.join(fields)})")
    values = {}
    for key in fields:
        if key not in table:
            raise ValueError(f"a {kind} prior needs {', '.join(fields)}; {key!r} is missing")
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ValueError(f"{key} must be a finite number, got {value!r}")
        values[key] = float(value)
    if "sigma" in values and values["sigma"] <= 0:
        raise ValueError(f"sigma must be > 0, got {values['sigma']!r}")
    if "lower" in values and not values["lower"] < values["upper"]:
        raise ValueError(f"lower must be < upper, got lower = {values['lower']!r}, upper = {values['upper']!r}")
    if cls is LogUniformPrior and not values["lower"] > 0:
        raise ValueError(f"a log_uniform prior's lower must be > 0, got {values['lower']!r}")
    return cls(**values)


@dataclass(frozen=True)
class PriorTransform:
    """The model's priors in parameter_names order: maps unit-cube points (n, n_dim) to parameter vectors
    (n, len(names)). Fixed parameters (FixedPrior) take no cube dimension: n_dim counts the free ones."""

    names: tuple[str, ...]
    priors: tuple[Prior, ...]

    @property
    def free(self) -> tuple[int, ...]:
        """Indices (in names) of the parameters the search samples."""
        return tuple(i for i, prior in enumerate(self.priors) if not isinstance(prior, FixedPrior))

    @property
    def n_dim(self) -> int:
        return len(self.free)

    def __call__(self, unit: np.ndarray) -> np.ndarray:
        unit = np.asarray(unit, dtype=np.float64)
        out = np.empty((*unit.shape[:-1], len(self.names)))
        cube = iter(range(unit.shape[-1]))
        for i, prior in enumerate(self.priors):
            out[..., i] = prior.ppf(unit[..., 0] if isinstance(prior, FixedPrior) else unit[..., next(cube)])
        return out

    def median(self) -> np.ndarray:
        """The prior medians: a valid parameter vector (used to fill idle slots of a block call)."""
        return self(np.full(self.n_dim, 0.5))

    def contains(self, vectors: np.ndarray) -> np.ndarray:
        """True where every parameter lies in its prior's support."""
        vectors = np.asarray(vectors)
        inside = np.ones(vectors.shape[:-1], dtype=bool)
        for i, prior in enumerate(self.priors):
            lo, hi = prior.support()
            inside &= (vectors[..., i] >= lo) & (vectors[..., i] <= hi)
        return inside


def prior_transform(model: Model, overrides: Mapping[str, Prior] | None = None) -> PriorTransform:
    """Survey defaults for every parameter of `model`, replaced by `overrides` (name → prior). A name that is
    not a parameter of the model is a KeyError naming it."""
    names = parameter_names(model)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise KeyError(f"{unknown[0]!r} is not a parameter of this model (parameters: {', '.join(names)})")
    return PriorTransform(names, tuple(overrides.get(name, default_prior(name)) for name in names))
