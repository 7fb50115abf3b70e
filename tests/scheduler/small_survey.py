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


SIMULATED_SHAPE = (44, 44)  # every lens is simulated at this size (one compile) and cropped about its centre


def simulate_lens(folder: Path, shape: tuple[int, int], params: dict, seed: int) -> None:
    """Write one simulated dataset folder (image.fits, noise_map.fits, psf.fits with PIXSCALE) of `shape`:
    simulated at SIMULATED_SHAPE and cropped symmetrically, which keeps the pixel grid centred on the lens."""
    import jax.numpy as jnp

    from storage.datasets import write_imaging
    from workers.inversion.parameters import MassParameters
    from workers.inversion.simulate import SersicProfile, simulate_imaging

    mass, shear, source = params["lens"]["mass"], params["lens"]["shear"], params["source"]
    sim = simulate_imaging(
        SIMULATED_SHAPE, PIXEL_SCALE,
        MassParameters("isothermal", {k: jnp.asarray(mass[k], jnp.float64) for k in ("centre", "ell_comps",
                                                                                      "einstein_radius")},
                       jnp.asarray([shear["gamma_1"], shear["gamma_2"]])),
        [SersicProfile(tuple(source["centre"]), tuple(source["ell_comps"]), 0.6, 0.2, 1.5)],
        psf_size=5, psf_sigma=0.1, over_sample_size=2, seed=seed,
    )
    dy, dx = ((n - m) // 2 for n, m in zip(SIMULATED_SHAPE, shape))
    if any((n - m) % 2 for n, m in zip(SIMULATED_SHAPE, shape)):
        raise ValueError(f"crop {SIMULATED_SHAPE} to {shape}: both sides must lose as many pixels")
    crop = (slice(dy, dy + shape[0]), slice(dx, dx + shape[1]))
    write_imaging(str(folder), sim.image[crop], sim.noise_map[crop], sim.psf, sim.pixel_scale)


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


BOOKKEEPING = ("wall_time", "attempts", "driver_run", "checksum", "search_likelihood_seconds", "search_sampler_seconds")


def store_arrays(url: str, exclude: tuple[str, ...] = BOOKKEEPING) -> dict:
    """Every array of a result store as numpy, but the bookkeeping that differs between equal runs, in any stage's
    group (checksums cover wall_time, attempts, driver_run and the store's own store_id; the search seconds are
    timings)."""
    from storage.store import ResultStore

    store = ResultStore.open_existing(url)
    return {name: store.read_array(name) for name in store.names if name.rpartition("/")[2] not in exclude}


def assert_same_store(a: str, b: str) -> None:
    """Two stores hold the same results, array by array (NaN = NaN), but the BOOKKEEPING arrays, and
    each holds what was committed (every committed block matches its checksums)."""
    from storage.store import ResultStore

    assert ResultStore.open_existing(a).verify_blocks() == {} and ResultStore.open_existing(b).verify_blocks() == {}
    left, right = store_arrays(a), store_arrays(b)
    assert sorted(left) == sorted(right)
    for name in left:
        x, y = left[name], right[name]
        assert x.shape == y.shape, name
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert x.tolist() == y.tolist(), name


# The survey of the run tests, made once per test session and shared by the modules that use it: 8 lenses in two
# shape buckets (30×30 images, cut by the mask, and 40-44 px images, one with its own mask radius).
SURVEY_SHAPES = [(30, 30), (40, 40), (30, 30), (40, 40), (44, 44), (30, 30), (40, 40), (30, 30)]
SURVEY_MASK_RADII = {6: 1.65}
SURVEY_BLOCK_SIZE = 3  # 3 blocks; block 1 holds the last 30×30 lens and the first two of the other bucket


def shared_survey(base: Path) -> Path:
    """The session's survey catalog under `base` (pytest's session temp folder), simulated on first use."""
    root = base / "survey"
    done = root / ".complete"
    if not done.exists():
        make_survey(root, SURVEY_SHAPES, seed=5, mask_radii=SURVEY_MASK_RADII)
        done.touch()
    return root / "catalog.ecsv"


def compile_cache(base: Path) -> str:
    """The session's JAX persistent compilation cache folder, shared by every actor of the tests."""
    return str(base / "jax-cache")


def run_options(catalog: Path, store: Path, base: Path, **changes):
    """RunOptions for the shared survey: block size 3, the session's compile cache, progress every second."""
    from scheduler.driver import RunOptions

    values = dict(
        catalog=str(catalog), config=str(catalog.parent / "fit.toml"), store=str(store),
        block_size=SURVEY_BLOCK_SIZE, compile_cache=compile_cache(base), progress_interval=1.0, lease_ttl=6.0,
    )
    return RunOptions(**{**values, **changes})


def clean_store(base: Path) -> Path:
    """A clean run of the shared survey (Ray must be initialised), made once per session."""
    from scheduler.driver import run

    store = base / "clean.zarr"
    done = base / "clean.complete"
    if not done.exists():
        result = run(run_options(shared_survey(base), store, base, restart=True))
        assert result.exit_code == 0, result
        assert result.counts == {"pending": 0, "done": len(SURVEY_SHAPES), "failed": 0, "invalid": 0}
        done.touch()
    return store


def searched_store(base: Path, block_size: int) -> str:
    """A clean search-mode run of the survey in `base` (catalog.ecsv, fit.toml; Ray must be initialised) into
    clean.zarr, each block attempt's search rounds counted in clean-rounds/ (faults' `search_rounds`)."""
    from scheduler.driver import run

    store, rounds = base / "clean.zarr", base / "clean-rounds"
    rounds.mkdir()
    result = run(run_options(base / "catalog.ecsv", store, base, block_size=block_size,
                             actor_faults={"search_rounds": str(rounds)}))
    assert result.exit_code == 0, result
    return str(store)


def block_buckets(plan, k: int) -> list[int]:
    """The distinct shape buckets of a plan's block k, in order (-1: datasets without one)."""
    return list(dict.fromkeys(d.bucket for d in plan.datasets[plan.block(k)]))


def free_port() -> int:
    """A TCP port free on this machine now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def own_port_options() -> list[str]:
    """`ray start` options giving a test's head free ports for the agents and the client server, whose fixed
    defaults (52365, ...) another cluster on this machine may hold."""
    names = ("dashboard-agent-listen", "dashboard-agent-grpc", "runtime-env-agent", "ray-client-server")
    return [f"--{name}-port={free_port()}" for name in names]


def stop_head(head, log, temp_dir: str) -> None:
    """Stop a test's own `ray start --head --block` cluster (started in a new session): SIGTERM drains the node
    and stops what it started; then anything of its process group still alive is killed (never `ray stop`, which
    would stop every cluster on the machine)."""
    import os
    import shutil
    import signal
    import subprocess

    head.send_signal(signal.SIGTERM)
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(head.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    log.close()
    shutil.rmtree(temp_dir, ignore_errors=True)
