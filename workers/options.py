"""The option types of fit.toml's tables and their ranges (plain Python): ConfigError, LIMITS (the bounds on values
that size memory or time), DatasetOptions ([dataset]) and SearchOptions ([search]). workers/config.py reads
them from fit.toml."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .model.grids import OverSampling


class ConfigError(ValueError):
    """A problem in fit.toml, naming the file and the key."""


# Upper bounds of the values that size memory (per lens; a block holds B lenses): key -> largest value.
LIMITS = {
    "max_image_side": 4096,  # pixels: a block's image arrays are B × side² × 8 bytes each
    "sub_size": 32,  # over-sampling sub-grid side
    "gaussians": 500,  # linear Gaussians of an MGE set: columns of the mapping matrix
    "bases": 10,  # sets of an MGE (each its own ell_comps): gaussians × bases columns
    "mesh_cells": 4096,  # rectangular mesh ny × nx: the curvature matrix is cells² × 8 bytes per lens (134 MB)
    "n_live": 100_000,
    "n_batch": 10_000,  # vectors per lens of the compiled block call
    "n_eff": 10_000_000,
    "n_networks": 64,
    "network_layer": 10_000,
    "network_layers": 10,
    "network_epochs": 1_000_000,
    "max_samples": 100_000,  # posterior samples stored per lens: B × max_samples × parameters × 8 bytes a block
    "eval_chunk": 10_000,
    "starts": 4096,  # gradient search: optimisation starts per lens, each a lane of the block's compiled call
    "screen": 100_000,  # gradient search: prior draws per lens evaluated to choose the starts (B × draws)
    "steps": 100_000,
    "posterior_samples": 100_000,  # gradient search: importance-sampling draws per lens (B × draws evaluations)
}

SEARCH_TYPES = ("nautilus", "gradient")
# the keys only one type of search reads
NAUTILUS_KEYS = ("n_live", "n_batch", "n_eff", "f_live", "n_like_max", "n_networks", "network_layers",
                 "network_epochs", "discard_exploration", "checkpoint")
GRADIENT_KEYS = ("screen", "lensing_screen", "starts", "steps", "optimizer", "learning_rate", "posterior_samples",
                 "mode_tolerance")
OPTIMIZERS = ("lbfgs", "adam")


@dataclass(frozen=True)
class DatasetOptions:
    """How each dataset is masked and over-sampled, and the largest image a run takes: `max_image_side` pixels
    on a side (a larger image is INVALID at planning), as every block's image arrays are padded to the run's
    largest image."""

    mask_radius: float = 3.0
    over_sample_size_lp: OverSampling = 4
    over_sample_size_pixelization: OverSampling = 4
    max_image_side: int = 512


@dataclass(frozen=True)
class SearchOptions:
    """fit.toml's [search]: a search per lens, the lenses of a block side by side.

    type: "nautilus" (workers/search.py: a Nautilus sampler per lens) or "gradient" (workers/gradient_search.py:
        multi-start optimisation, then an importance-sampled Laplace posterior, every lens of a block in one
        compiled call). Each type reads its own keys below and the shared ones (seed, max_samples, eval_chunk).

    Nautilus:
    n_live: live points (Nautilus's n_live). 200.
    n_batch: points per likelihood request of one sampler (Nautilus's n_batch); also V, the vectors per lens of
        the compiled block call (lenses × n_batch). 100.
    n_eff: stop once the effective sample size of the posterior reaches this. 500.
    f_live: the exploration phase ends once the live set holds less than this fraction of the evidence. 0.01.
    n_like_max: stop after this many likelihood evaluations of a lens, converged or not (absent: no limit).
    n_networks: neural networks per Nautilus bound (fewer is faster, coarser). 1 (with network_epochs 200: half
        the samplers' CPU of Nautilus's 4 × 10000 for 7% more likelihood calls on A0: benchmarks/RESULTS_search.md).
    network_layers: hidden-layer sizes of each network (smaller is faster, coarser). [100, 50, 20], Nautilus's.
    network_epochs: at most this many training epochs per network (Nautilus stops earlier once 10 epochs bring
        no improvement). 200 (Nautilus's 10000 trains ~1.5× longer for 2% fewer likelihood calls on A0). A coarser
        network only costs likelihood calls, never correctness (the posterior comes from importance weights).
    discard_exploration: drop the exploration-phase points from the posterior (unbiased but fewer). false.
    checkpoint: keep a Nautilus checkpoint (HDF5) per lens while it runs, so a killed worker resumes its
        searches instead of restarting them. true. (A gradient search has nothing to resume: a block re-run
        repeats it exactly.)

    Gradient:
    screen: prior draws per lens whose log posterior is evaluated (one compiled call) to choose the starts: the
        `starts` highest. 0: the starts are prior draws themselves. 512 (≈ 15% of a search's evaluations).
    lensing_screen: with a lens light in the model, a second screen of `screen` draws with the lens-light
        coordinates held at the first screen's best (gradient_search), for real lenses whose galaxy outshines
        the arcs. False.
    starts: optimisation starts per lens. 8.
    steps: optimiser iterations per start. 100.
    optimizer: "lbfgs" (optax L-BFGS with a zoom line search) or "adam" (cosine-decayed learning_rate). "lbfgs".
    learning_rate: Adam's initial step, in logit-of-unit-cube units. 0.05.
    posterior_samples: importance-sampling draws of the posterior per lens. 1000.
    mode_tolerance: a start within this much log posterior of the best one, at another mode, flags the lens
        multi-modal (search_multimodal). 5.0.

    Shared:
    seed: the run's seed; each lens's search is seeded from (seed, dataset id), so a lens's posterior does not
        depend on which lenses share its block. 0.
    max_samples: posterior samples kept per lens in the store: all weighted points if there are fewer,
        otherwise a deterministic systematic resample to at most this many distinct points (weights =
        multiplicity / max_samples). 2000.
    eval_chunk: evaluations vectorised together per compiled call (0: the whole lenses × n_batch block at
        once, right for a GPU; c > 0 runs the lenses one after another, c vectors per call, and skips idle
        ones: right for a CPU, where 1 is fastest, and where c > 1 batches LAPACK calls that can deadlock
        jaxlib 0.10's CPU thread pool: sizing.py). Absent: chosen for the device (search.block_plan:
        sizing.plan_batch).
    """

    type: str = "nautilus"
    n_live: int = 200
    n_batch: int = 100
    n_eff: float = 500.0
    f_live: float = 0.01
    n_like_max: int | None = None
    n_networks: int = 1
    network_layers: tuple[int, ...] = (100, 50, 20)
    network_epochs: int = 200
    discard_exploration: bool = False
    seed: int = 0
    max_samples: int = 2000
    checkpoint: bool = True
    eval_chunk: int | None = None
    screen: int = 512
    lensing_screen: bool = False
    starts: int = 8
    steps: int = 100
    optimizer: str = "lbfgs"
    learning_rate: float = 0.05
    posterior_samples: int = 1000
    mode_tolerance: float = 5.0

    def to_dict(self) -> dict[str, Any]:
        """fit.toml's [search] table: its type's keys and the shared ones (n_like_max left out when unlimited)."""
        other = GRADIENT_KEYS if self.type == "nautilus" else NAUTILUS_KEYS
        out = {k: v for k, v in asdict(self).items() if v is not None and k not in other}
        if self.type == "nautilus":
            out["network_layers"] = list(self.network_layers)
        return out
