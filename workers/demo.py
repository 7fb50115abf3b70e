"""`make demo` (single-lens stage): simulate a lens, fit it at its true parameters, print and draw the fit."""

from __future__ import annotations

import json
from pathlib import Path

import jax.numpy as jnp

from storage.datasets import load_imaging, write_imaging

from .config import parse_config
from .datasets import fit_mask
from .evaluate import fit_lens, plot_lens_fit, result_record
from .inversion.parameters import MassParameters
from .inversion.simulate import SersicProfile, simulate_imaging

DEMO_CONFIG = {
    "dataset": {"mask_radius": 3.0, "over_sample_size_lp": 2, "over_sample_size_pixelization": 2},
    "lens": {"mass": {"type": "isothermal"}, "shear": {}},
    "source": {"type": "mge", "gaussians": 20, "sigma_min": 0.01},
    "settings": {"use_positive_only_solver": True},
}
DEMO_PARAMS = {
    "lens": {
        "mass": {"centre": [0.01, 0.04], "ell_comps": [0.02, 0.13], "einstein_radius": 1.6},
        "shear": {"gamma_1": 0.004, "gamma_2": 0.033},
    },
    "source": {"centre": [0.14, 0.08], "ell_comps": [0.17, -0.02]},
}


def run_demo(out: Path) -> None:
    """Write the simulated dataset, fit.toml-equivalent config, params, result.json and fit.png under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    mass = DEMO_PARAMS["lens"]["mass"]
    shear = DEMO_PARAMS["lens"]["shear"]
    source = DEMO_PARAMS["source"]
    sim = simulate_imaging(
        (100, 100), 0.1,
        MassParameters(jnp.asarray(mass["centre"]), jnp.asarray(mass["ell_comps"]), jnp.float64(mass["einstein_radius"]),
                       jnp.asarray([shear["gamma_1"], shear["gamma_2"]])),
        [SersicProfile(tuple(source["centre"]), tuple(source["ell_comps"]), 0.5, 0.165, 2.0)],
        seed=1,
    )
    write_imaging(out / "lens", sim.image, sim.noise_map, sim.psf, sim.pixel_scale)
    (out / "params.json").write_text(json.dumps(DEMO_PARAMS, indent=1))
    config = parse_config(DEMO_CONFIG, "demo config")
    data = load_imaging(str(out / "lens"), dataset_id="demo-lens")
    fit = fit_lens(data, config, DEMO_PARAMS)
    record = result_record(fit)
    (out / "result.json").write_text(json.dumps(record, indent=1))
    plot_lens_fit(fit, config.model, data, fit_mask(data, config.dataset.mask_radius), "demo lens", str(out / "fit.png"))
    n = fit.imaging.bucket.pixels
    print(f"simulated lens: {out / 'lens'}  ({n} used pixels)")
    for name in ("figure_of_merit", "log_likelihood", "chi_squared", "noise_normalization"):
        print(f"  {name:<22} {record[name]:.4f}")
    print(f"  reduced chi-squared    {record['chi_squared'] / n:.3f}")
    print(f"result: {out / 'result.json'}   picture: {out / 'fit.png'}")
