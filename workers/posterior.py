"""One lens's search result: its weighted posterior, evidence and summaries, and how it becomes a store row.

Per lens (LensSearch), in parameter_names order, arcsec for centres and θE:
- samples, log_weight, log_likelihood: Nautilus's weighted posterior points (all of them);
- log_evidence: Nautilus's log Z; log_evidence_error: 1/√N_eff, the relative standard error of an importance-
  sampling estimate of Z with Kish effective sample size N_eff (Nautilus's own n_eff, `effective_samples`), i.e.
  the statistical error of ln Z. Nautilus gives no error of its own; this one leaves out any bias of the
  exploration phase;
- likelihood_evaluations: the likelihood calls the sampler made (checkpointed calls included);
- likelihood_seconds: the lens's share of the block's likelihood calls (by its share of their points);
  sampler_seconds: its sampler process's own work (bounds, network training, drawing points, checkpoints); for a
  gradient search, its share of the compiled calls by its evaluations and of the host's work evenly;
- parameter_median, parameter_sigma: weighted quantiles, sigma = (q84 − q16)/2;
- parameter_max_likelihood, max_log_likelihood: the evaluated point with the largest figure of merit, and `fit`,
  its FitResult with the reconstruction and the model image (on the lens's own used pixels), when asked for;
- diagnostics: a gradient search's own (workers/gradient_search.py): multimodal (1: its starts disagree),
  starts_at_best, pareto_k (PSIS k̂ of its importance weights); None for Nautilus, whose rows leave those store
  arrays at their fills.
For a store with a fixed sample axis, stored_samples(max_samples) keeps every point when there are at most
max_samples, and otherwise a deterministic systematic resample (positions (k + ½)/max_samples on the weight
CDF) merged into distinct points weighted by multiplicity / max_samples. `to_row` names everything as the store
does (storage.schema.search_specs): the search's own numbers carry the prefix `search_`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .derived import derived_names, derived_values

def weighted_quantiles(values: np.ndarray, weights: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """Quantiles (len(quantiles), d) of weighted samples values (n, d): the weighted CDF at each sorted value
    is the weight below it plus half its own, interpolated linearly."""
    values = np.asarray(values, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    out = np.empty((len(quantiles), values.shape[1]))
    for j in range(values.shape[1]):
        order = np.argsort(values[:, j], kind="stable")
        v, w = values[order, j], weights[order]
        cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
        out[:, j] = np.interp(quantiles, cdf, v)
    return out


@dataclass(frozen=True)
class StoredSamples:
    """A posterior on a fixed sample axis of length max_samples: samples (max_samples, d), sample_weight
    (summing to 1), sample_log_likelihood; entries from sample_count on are padding (NaN, weight 0)."""

    samples: np.ndarray
    sample_weight: np.ndarray
    sample_log_likelihood: np.ndarray
    sample_count: int


SEARCH_NUMBERS = ("log_evidence", "log_evidence_error", "likelihood_evaluations", "effective_samples",
                  "likelihood_seconds", "sampler_seconds")
SEARCH_DIAGNOSTICS = ("multimodal", "starts_at_best", "pareto_k")
PARAMETER_SUMMARIES = ("parameter_median", "parameter_sigma", "parameter_max_likelihood")


@dataclass(frozen=True)
class LensSearch:
    """One lens's search: its weighted posterior, evidence, summaries and max-likelihood fit (module
    docstring)."""

    dataset_id: str
    parameter_names: tuple[str, ...]
    samples: np.ndarray
    log_weight: np.ndarray
    log_likelihood: np.ndarray
    log_evidence: float
    log_evidence_error: float
    effective_samples: float
    likelihood_evaluations: int
    converged: bool
    parameter_max_likelihood: np.ndarray
    max_log_likelihood: float
    parameter_median: np.ndarray
    parameter_sigma: np.ndarray
    likelihood_seconds: float = float("nan")
    sampler_seconds: float = float("nan")
    fit: object | None = None  # workers.inversion.fit.FitResult
    diagnostics: dict[str, float] | None = None  # a gradient search's (SEARCH_DIAGNOSTICS), None for Nautilus

    @property
    def weight(self) -> np.ndarray:
        return np.exp(self.log_weight)

    def to_row(self, max_samples: int) -> dict[str, np.ndarray | float | int]:
        """This search as the store names it (storage.schema.search_specs): the posterior on max_samples
        (stored_samples), the search's own numbers prefixed `search_`, the parameter summaries, and the derived
        quantities (workers/derived.py) of the stored samples, summarised over the whole posterior."""
        stored = self.stored_samples(max_samples)
        row = {
            **asdict(stored),
            **{f"search_{name}": getattr(self, name) for name in SEARCH_NUMBERS},
            "search_converged": int(self.converged),
            **{name: getattr(self, name) for name in PARAMETER_SUMMARIES},
            **{f"search_{name}": (self.diagnostics or {})[name] for name in SEARCH_DIAGNOSTICS if self.diagnostics},
        }
        if derived_names(self.parameter_names):
            values = derived_values(self.parameter_names, self.samples)
            q16, q50, q84 = weighted_quantiles(values, self.weight, (0.16, 0.5, 0.84))
            samples = np.full((max_samples, values.shape[1]), np.nan)
            samples[: stored.sample_count] = derived_values(self.parameter_names,
                                                            stored.samples[: stored.sample_count])
            row.update(derived_samples=samples, derived_median=q50, derived_sigma=0.5 * (q84 - q16),
                       derived_max_likelihood=derived_values(self.parameter_names, self.parameter_max_likelihood))
        return row

    def stored_samples(self, max_samples: int) -> StoredSamples:
        """The posterior on a sample axis of length max_samples (module docstring: resampling rule)."""
        weight = self.weight / self.weight.sum()
        n, d = self.samples.shape
        if n <= max_samples:
            keep, kept_weight = np.arange(n), weight
        else:
            cdf = np.cumsum(weight)
            positions = (np.arange(max_samples) + 0.5) / max_samples * cdf[-1]
            picks = np.minimum(np.searchsorted(cdf, positions, side="right"), n - 1)
            keep, counts = np.unique(picks, return_counts=True)
            kept_weight = counts / max_samples
        count = len(keep)
        samples = np.full((max_samples, d), np.nan)
        samples[:count] = self.samples[keep]
        sample_weight = np.zeros(max_samples)
        sample_weight[:count] = kept_weight
        log_likelihood = np.full(max_samples, np.nan)
        log_likelihood[:count] = self.log_likelihood[keep]
        return StoredSamples(samples, sample_weight, log_likelihood, count)
