"""A small simulated survey for the scheduler tests: a catalog (ECSV), dataset folders and fit.toml.

Lenses come in a few image sizes at 0.1″ (so they fall in different shape buckets), with a small MGE model and
over-sampling 1, so a compile takes seconds. Each lens's catalog row carries its true parameters (evaluate mode).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIT_TOML = """
[dataset]
mask_radius = 1.6
over_sample_size_lp = 1
over_sample_size_pixelization = 1

[lens.mass]
type = "isothermal"

[lens.shear]

[source]
type = "mge"
gaussians = 10
sigma_min = 0.02
"""

PIXEL_SCALE = 0.1


def lens_params(rng: np.random.Generator) -> dict:
    """True parameters of one lens (params.json form)."""
    return {
        "lens": {
            "mass": {
                "centre": rng.uniform(-0.05, 0.05, 2).round(4).tolist(),
                "ell_comps": rng.uniform(-0.15, 0.15, 2).round(4).tolist(),
                "einstein_radius": round(float(rng.uniform(0.8, 1.2)), 4),
            },
            "shear": {"gamma_1": round(float(rng.uniform(-0.03, 0.03)), 4),
                      "gamma_2": round(float(rng.uniform(-0.03, 0.03)), 4)},
        },
        "source": {"centre": rng.uniform(-0.1, 0.1, 2).round(4).tolist(),
                   "ell_comps": rng.uniform(-0.2, 0.2, 2).round(4).tolist()},
    }


def simulate_lens(folder: Path, shape: tuple[int, int], params: dict, seed: int) -> None:
    """Write one simulated dataset folder (image.fits, noise_map.fits, psf.fits with PIXSCALE)."""
    import jax.numpy as jnp

    from storage.datasets import write_imaging
    from workers.inversion.parameters import MassParameters
    from workers.inversion.simulate import SersicProfile, simulate_imaging

    mass, shear, source = params["lens"]["mass"], params["lens"]["shear"], params["source"]
    sim = simulate_imaging(
        shape, PIXEL_SCALE,
        MassParameters(jnp.asarray(mass["centre"]), jnp.asarray(mass["ell_comps"]),
                       jnp.float64(mass["einstein_radius"]), jnp.asarray([shear["gamma_1"], shear["gamma_2"]])),
        [SersicProfile(tuple(source["centre"]), tuple(source["ell_comps"]), 0.6, 0.2, 1.5)],
        psf_size=5, psf_sigma=0.1, over_sample_size=2, seed=seed,
    )
    write_imaging(str(folder), sim.image, sim.noise_map, sim.psf, sim.pixel_scale)


def make_survey(
    root: Path, shapes: list[tuple[int, int]], seed: int = 0, mask_radii: dict[int, float] | None = None
) -> Path:
    """Simulate one lens per entry of `shapes` under root/lenses and write root/catalog.ecsv and root/fit.toml.

    `mask_radii` maps a row index to a per-lens mask_radius column value. Returns the catalog path.
    """
    from storage.catalog import CatalogEntry, write_catalog

    rng = np.random.default_rng(seed)
    entries = []
    for i, shape in enumerate(shapes):
        params = lens_params(rng)
        folder = root / "lenses" / f"L{i:03d}"
        simulate_lens(folder, shape, params, seed=seed * 1000 + i)
        radius = (mask_radii or {}).get(i)
        entries.append(CatalogEntry(id=f"L{i:03d}", path=str(folder), mask_radius=radius, params=params))
    catalog = root / "catalog.ecsv"
    write_catalog(str(catalog), entries)
    (root / "fit.toml").write_text(FIT_TOML)
    return catalog


def store_arrays(url: str, exclude: tuple[str, ...] = ("wall_time", "attempts", "driver_run")) -> dict:
    """Every array of a result store as numpy, but the bookkeeping that differs between equal runs."""
    from storage.store import ResultStore

    store = ResultStore.open_existing(url)
    return {name: store.read_array(name) for name in store.names if name not in exclude}


def assert_same_store(a: str, b: str) -> None:
    """Two stores hold the same results, array by array (NaN = NaN), but wall_time, attempts and driver_run."""
    left, right = store_arrays(a), store_arrays(b)
    assert sorted(left) == sorted(right)
    for name in left:
        x, y = left[name], right[name]
        assert x.shape == y.shape, name
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert x.tolist() == y.tolist(), name
