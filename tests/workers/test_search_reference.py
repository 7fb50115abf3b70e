"""Our Nautilus search on reference A0 gives PyAutoLens's posterior (../shared/reference/search_A0.json).

The setup of search_A0.json: Isothermal + ExternalShear + a 20-Gaussian linear MGE source (σ from 0.01″ to the
3″ mask radius), over-sampling 2 on both grids, use_positive_only_solver = false, uniform priors truth ± `box`,
Nautilus n_live 200, n_batch 100 and its other settings at Nautilus's (and PyAutoLens's) defaults. Agreement is
asked within sampling noise: every parameter's median within 0.3 of PyAutoLens's σ, every σ within 20%, and the
log evidence within 0.5. Two cases: PyAutoLens's exact sampler settings, and lensfleet's default [search]
options (what a survey runs, cheaper: benchmarks/RESULTS_search.md).
"""

from __future__ import annotations

import json
import sys

import pytest

from shared_data import REFERENCE
from storage.datasets import load_imaging
from workers.config import SearchOptions
from workers.inversion.imaging import prepare_imaging
from workers.model.description import MGEBasis, Model
from workers.model.settings import Settings
from workers.priors import UniformPrior, prior_transform
from workers.search import search_block

A0 = REFERENCE / "datasets" / "A0"
PYAUTOLENS = json.loads((REFERENCE / "search_A0.json").read_text())

MODEL = Model(source=MGEBasis(gaussians=20, sigma_min=0.01), shear=True,
              settings=Settings(use_positive_only_solver=False))

# PyAutoLens's af.Nautilus(n_live=200, n_batch=100): Nautilus's own defaults for the rest
PYAUTOLENS_OPTIONS = SearchOptions(n_live=200, n_batch=100, n_eff=500, f_live=0.01, n_networks=4,
                                   network_layers=(100, 50, 20), network_epochs=10000, discard_exploration=False)
LENSFLEET_DEFAULTS = SearchOptions()  # what a survey runs


def box_priors(truth: dict, box: dict) -> dict:
    """Uniform priors truth ± box by flattened parameter name (search_A0.json's `box` is keyed by vector name)."""
    mass, shear, source = truth["mass"], truth["shear"], truth["sources"][0]
    values = {
        "lens.mass.centre.0": mass["centre"][0], "lens.mass.centre.1": mass["centre"][1],
        "lens.mass.ell_comps.0": mass["ell_comps"][0], "lens.mass.ell_comps.1": mass["ell_comps"][1],
        "lens.mass.einstein_radius": mass["einstein_radius"],
        "lens.shear.gamma_1": shear["gamma_1"], "lens.shear.gamma_2": shear["gamma_2"],
        "source.centre.0": source["centre"][0], "source.centre.1": source["centre"][1],
        "source.ell_comps.0": source["ell_comps"][0], "source.ell_comps.1": source["ell_comps"][1],
    }
    width = {name: next(w for key, w in box.items() if name == key or name.startswith(key + ".")) for name in values}
    return {name: UniformPrior(v - width[name], v + width[name]) for name, v in values.items()}


def a0_search(options: SearchOptions):
    truth = json.loads((A0 / "truth.json").read_text())
    data = load_imaging(str(A0), dataset_id="A0")
    imaging = prepare_imaging(data.image, data.noise_map, data.psf, data.pixel_scale, mask_radius=truth["mask_radius"],
                              over_sample_size_lp=2, over_sample_size_pixelization=2)
    prior = prior_transform(MODEL, box_priors(truth, PYAUTOLENS["box"]))
    return search_block([imaging], ["A0"], MODEL, [prior], options, with_fit=False)


def agreement(block) -> tuple[str, dict, dict]:
    """A report of a block's A0 search against PyAutoLens's, and per parameter the median's offset in PyAutoLens's
    σ and the σ ratio."""
    result = block.results[0]
    ref = PYAUTOLENS["parameters"]
    lines = [f"A0 search: {result.likelihood_evaluations} evaluations, wall {block.wall_s[0]:.0f} s "
             f"(likelihood {block.likelihood_s:.0f} s); ln Z {result.log_evidence:.3f} "
             f"vs {PYAUTOLENS['log_evidence']:.3f}; max ln L {result.max_log_likelihood:.3f} "
             f"vs {PYAUTOLENS['max_log_likelihood']:.3f}",
             f"  exploration evaluations {block.exploration_evaluations[0]}; sampler seconds "
             + ", ".join(f"{k} {v:.1f}" for k, v in block.sampler_seconds[0].items())
             + "; coordinator seconds " + ", ".join(f"{k} {v:.1f}" for k, v in block.coordinator_s.items())]
    offsets, ratios = {}, {}
    for i, name in enumerate(result.parameter_names):
        offsets[name] = (result.parameter_median[i] - ref[name]["median"]) / ref[name]["sigma"]
        ratios[name] = result.parameter_sigma[i] / ref[name]["sigma"]
        lines.append(f"  {name:28s} median {result.parameter_median[i]:+.5f} ({offsets[name]:+.2f} σ) "
                     f"σ {result.parameter_sigma[i]:.5f} (× {ratios[name]:.3f})")
    return "\n".join(lines), offsets, ratios


@pytest.mark.slow
@pytest.mark.parametrize("options", [PYAUTOLENS_OPTIONS, LENSFLEET_DEFAULTS], ids=["pyautolens", "defaults"])
def test_a0_posterior_equals_pyautolens(options):
    block = a0_search(options)
    result = block.results[0]
    report, offsets, ratios = agreement(block)
    print(report, file=sys.stderr)
    assert result.converged
    assert {n: o for n, o in offsets.items() if abs(o) > 0.3} == {}
    assert {n: r for n, r in ratios.items() if abs(r - 1) > 0.2} == {}
    assert abs(result.log_evidence - PYAUTOLENS["log_evidence"]) < 0.5
    assert result.max_log_likelihood > PYAUTOLENS["max_log_likelihood"] - 1.0
