"""Simulated surveys: N strong lenses with known truth, written the way a real survey arrives.

    simulate_survey(n, out, seed[, mass, lens_light, pixel_scale, two_clump])
                                  ->  out/catalog.ecsv        id, path, pixel_scale, mask_radius, true parameters
                                      out/fit.toml            the survey's fit config (MGE source, 20 Gaussians)
                                      out/lenses/ID/          image.fits, noise_map.fits, psf.fits (PyAutoLens layout)
                                      out/lenses/ID/truth.json   every number the lens was simulated with

Each lens draws from its own generator `default_rng([seed, i])`, so lens i is the same in a survey of any size
(a survey of N is a prefix of a survey of N + M with the same seed) and the survey is deterministic given the
seed. Distributions (uniform unless said):

    imaging        one of IMAGINGS: 60×60 at 0.1″, 80×80 at 0.075″, 100×100 at 0.05″, each with its own mask
                   radius and PSF cutout size (7, 9, 11 pixels: one per instrument, as surveys deliver them, so a
                   survey falls in three shape buckets and compiles three programs)
    PSF            Gaussian, σ ∈ [0.05, 0.12]″ per lens
    lens mass      Isothermal: centre ∈ [−0.05, 0.05]″², θE ∈ [0.8, 1.8]″, axis ratio q ∈ [0.6, 0.95], angle φ ∈ [0, 180)°
    shear          |γ| ∈ [0, 0.08], angle ∈ [0, 180)°
    sources        1 or 2 Sersics; the first at |β| ≤ 0.25″ with q ∈ [0.6, 0.95], Re ∈ [0.1, 0.3]″, n ∈ [1, 3],
                   intensity ∈ [0.3, 1.0]; a second one within 0.4″ of the first, fainter (0.1–0.3) and smaller
    noise          simulate_imaging's Poisson model at exposure 300 s over sky 0.1 (seed drawn per lens)

Three options change the lens (the draws above stay as they are: lens i keeps its imaging, mass, shear, sources
and noise, and the extra parameters come from a generator of their own, `default_rng([seed, i, 1])`):

    mass = "power_law"   PowerLaw with slope γ ∈ [1.8, 2.2] (fit.toml: [lens.mass] type = "power_law")
    lens_light           a Sersic at the mass centre: q ∈ [0.6, 0.95], angle within 20° of the mass's,
                         intensity ∈ [0.5, 1.5], Re ∈ [0.6, 1.2]″, n ∈ [2.5, 4.5] (fit.toml: a 20-Gaussian linear
                         MGE lens light, light-profile over-sampling 8 / 4 / 2 within 0.3″ / 0.6″ / beyond)
    two_clump            every lens has the second Sersic (a lens drawn with one source gets a second, drawn as
                         above from `default_rng([seed, i, 2])`): two-clump sources, where searches meet local modes

The catalog's parameter columns are the true lens mass (every parameter its profile declares) and shear, the
lens light's centre and ell_comps (`lens.light.*`, with lens_light), and the *first* Sersic's centre and
ell_comps as `source.centre.*` / `source.ell_comps.*` — the nonlinear parameters an MGE fit needs.
Ellipticities follow CONVENTIONS.md: ell_comps = (f·sin 2φ, f·cos 2φ), f = (1 − q)/(1 + q).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from storage.catalog import CatalogEntry, write_catalog
from storage.datasets import write_imaging

from .inversion import jax_setup  # noqa: F401  (x64 before any array)
import jax.numpy as jnp

from .inversion.parameters import MassParameters
from .inversion.simulate import SersicProfile, simulate_imaging
from .model.description import MASS_PROFILES


@dataclass(frozen=True)
class Imaging:
    """One kind of survey imaging: image shape, pixel scale (″), the mask radius (″) its lenses are fitted in and
    the (odd) size of its PSF cutouts in pixels."""

    shape: tuple[int, int]
    pixel_scale: float
    mask_radius: float
    psf_size: int


IMAGINGS = (
    Imaging((60, 60), 0.1, 2.8, 7),
    Imaging((80, 80), 0.075, 2.8, 9),
    Imaging((100, 100), 0.05, 2.4, 11),
)
EXPOSURE_TIME = 300.0
BACKGROUND_SKY_LEVEL = 0.1
SIMULATION_OVER_SAMPLE_SIZE = 8
SURVEY_MASSES = ("isothermal", "power_law")  # the mass profiles simulate_survey can draw
SLOPE_RANGE = (1.8, 2.2)

FIT_TOML = """\
# Fit configuration of a simulated lensfleet survey (keys: workers/config.py).
# Each lens's mask radius comes from the catalog's mask_radius column; this one is the default.
[dataset]
mask_radius = 2.8
over_sample_size_lp = {over_sample_size_lp}
over_sample_size_pixelization = 2

[lens.mass]
type = "{mass}"

[lens.shear]
{lens_light}
[source]
type = "mge"
gaussians = 20
sigma_min = 0.01

[settings]
use_positive_only_solver = true
"""
LENS_LIGHT_TOML = """
[lens.light]
type = "mge"
gaussians = 20
sigma_min = 0.01
"""
LENS_LIGHT_OVER_SAMPLING = "{ sub_sizes = [8, 4, 2], radii = [0.3, 0.6] }"  # the Sersic's cusp at the centre


def fit_toml(mass: str = "isothermal", lens_light: bool = False) -> str:
    """The survey's fit.toml: the lens mass profile it was simulated with, and an MGE lens light if it has one."""
    return FIT_TOML.format(
        mass=mass, lens_light=LENS_LIGHT_TOML if lens_light else "",
        over_sample_size_lp=LENS_LIGHT_OVER_SAMPLING if lens_light else 2,
    )


@dataclass(frozen=True)
class LensTruth:
    """Everything one simulated lens was made from (arcsec for positions and sizes, degrees for angles)."""

    id: str
    shape_native: tuple[int, int]
    pixel_scale: float
    mask_radius: float
    psf_shape: tuple[int, int]
    psf_sigma: float
    mass: dict
    shear: dict
    sources: list[dict]
    noise_seed: int
    exposure_time: float = EXPOSURE_TIME
    background_sky_level: float = BACKGROUND_SKY_LEVEL
    simulation_over_sample_size: int = SIMULATION_OVER_SAMPLE_SIZE
    lens_light: dict | None = None

    @property
    def mass_profile(self) -> str:
        """The MASS_PROFILES name of the mass (truth.json says PyAutoLens's class name)."""
        return next(name for name, profile in MASS_PROFILES.items() if profile.__name__ == self.mass["type"])

    def params(self) -> dict:
        """The true parameters in params.json form (what an MGE fit with shear evaluates)."""
        first = self.sources[0]
        lens = {
            "mass": {k: self.mass[k] for k, _ in MASS_PROFILES[self.mass_profile].parameters},
            "shear": {k: self.shear[k] for k in ("gamma_1", "gamma_2")},
        }
        if self.lens_light is not None:
            lens["light"] = {k: self.lens_light[k] for k in ("centre", "ell_comps")}
        return {"lens": lens, "source": {"centre": first["centre"], "ell_comps": first["ell_comps"]}}

    def to_json(self) -> str:
        """truth.json (without lens_light when there is none)."""
        return json.dumps({k: v for k, v in asdict(self).items() if k != "lens_light" or v is not None}, indent=1)


@dataclass(frozen=True)
class Survey:
    """Where a simulated survey was written."""

    folder: Path
    catalog: Path
    config: Path
    lenses: tuple[LensTruth, ...]


def ell_comps(q: float, angle_deg: float) -> list[float]:
    """(e0, e1) = (f sin 2φ, f cos 2φ), f = (1 − q)/(1 + q)."""
    f = (1.0 - q) / (1.0 + q)
    phi = np.deg2rad(angle_deg)
    return [float(f * np.sin(2 * phi)), float(f * np.cos(2 * phi))]


def draw_lens(seed: int, index: int, mass: str = "isothermal", lens_light: bool = False,
              pixel_scale: float | None = None, two_clump: bool = False) -> LensTruth:
    """The truth of lens `index` of the survey with `seed` (pure function of its arguments; see the module
    docstring for `mass`, one of SURVEY_MASSES, `lens_light` and `two_clump`)."""
    if mass not in SURVEY_MASSES:
        raise ValueError(f"a simulated survey's mass is one of {', '.join(SURVEY_MASSES)}, got {mass!r}")
    rng = np.random.default_rng([seed, index])
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    imaging = IMAGINGS[int(rng.integers(len(IMAGINGS)))]
    if pixel_scale is not None:  # every lens imaged alike; its other draws stay as they are
        imaging = imaging_at(pixel_scale)
    psf_size = imaging.psf_size
    psf_sigma = u(0.05, 0.12)
    q, angle = u(0.6, 0.95), u(0.0, 180.0)
    truth_mass = {
        "type": MASS_PROFILES[mass].__name__,
        "centre": [u(-0.05, 0.05), u(-0.05, 0.05)],
        "ell_comps": ell_comps(q, angle),
        "einstein_radius": u(0.8, 1.8),
        "axis_ratio": q,
        "angle_deg": angle,
    }
    gamma, shear_angle = u(0.0, 0.08), np.deg2rad(u(0.0, 180.0))
    shear = {"type": "ExternalShear", "gamma_1": float(gamma * np.cos(2 * shear_angle)),
             "gamma_2": float(gamma * np.sin(2 * shear_angle))}
    r, theta = 0.25 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
    centre = [float(r * np.sin(theta)), float(r * np.cos(theta))]
    sources = [_sersic(centre, u(0.6, 0.95), u(0.0, 180.0), u(0.3, 1.0), u(0.1, 0.3), u(1.0, 3.0))]
    extra = np.random.default_rng([seed, index, 1])

    def second_clump(g: np.random.Generator) -> dict:
        r, theta = float(g.uniform(0.1, 0.4)), g.uniform(0, 2 * np.pi)
        second = [centre[0] + float(r * np.sin(theta)), centre[1] + float(r * np.cos(theta))]
        return _sersic(second, *(float(g.uniform(lo, hi)) for lo, hi in ((0.5, 0.95), (0.0, 180.0), (0.1, 0.3),
                                                                           (0.05, 0.15), (0.8, 2.0))))

    if rng.uniform() < 0.5:
        sources.append(second_clump(rng))
    elif two_clump:
        sources.append(second_clump(np.random.default_rng([seed, index, 2])))
    if mass == "power_law":
        truth_mass["slope"] = float(extra.uniform(*SLOPE_RANGE))
    light = None
    if lens_light:
        light = _sersic(truth_mass["centre"], float(extra.uniform(0.6, 0.95)), angle + float(extra.uniform(-20, 20)),
                        float(extra.uniform(0.5, 1.5)), float(extra.uniform(0.6, 1.2)), float(extra.uniform(2.5, 4.5)))
    return LensTruth(
        id=f"lens-{index:05d}",
        shape_native=imaging.shape,
        pixel_scale=imaging.pixel_scale,
        mask_radius=imaging.mask_radius,
        psf_shape=(psf_size, psf_size),
        psf_sigma=psf_sigma,
        mass=truth_mass,
        shear=shear,
        sources=sources,
        noise_seed=int(rng.integers(2**31)),
        lens_light=light,
    )


def _sersic(centre, q, angle, intensity, effective_radius, sersic_index) -> dict:
    return {"type": "Sersic", "centre": centre, "ell_comps": ell_comps(q, angle), "intensity": intensity,
            "effective_radius": effective_radius, "sersic_index": sersic_index, "axis_ratio": q, "angle_deg": angle}


def _sersic_profile(s: dict) -> SersicProfile:
    return SersicProfile(tuple(s["centre"]), tuple(s["ell_comps"]), s["intensity"], s["effective_radius"],
                         s["sersic_index"])


def simulate_lens(truth: LensTruth):
    """The SimulatedImaging of one lens."""
    profile = truth.mass_profile
    mass = MassParameters(
        profile, {k: jnp.asarray(truth.mass[k], jnp.float64) for k, _ in MASS_PROFILES[profile].parameters},
        jnp.asarray([truth.shear["gamma_1"], truth.shear["gamma_2"]]),
    )
    return simulate_imaging(
        truth.shape_native, truth.pixel_scale, mass, [_sersic_profile(s) for s in truth.sources],
        lens_light=_sersic_profile(truth.lens_light) if truth.lens_light is not None else None,
        psf_size=truth.psf_shape[0], psf_sigma=truth.psf_sigma, exposure_time=truth.exposure_time,
        background_sky_level=truth.background_sky_level, over_sample_size=truth.simulation_over_sample_size,
        seed=truth.noise_seed,
    )


def imaging_at(pixel_scale: float) -> Imaging:
    """The survey imaging with this pixel scale; ValueError naming the ones there are."""
    for imaging in IMAGINGS:
        if abs(imaging.pixel_scale - pixel_scale) < 1e-9:
            return imaging
    raise ValueError(f"no survey imaging at {pixel_scale}″ (there are {', '.join(str(i.pixel_scale) for i in IMAGINGS)})")


def simulate_survey(
    n: int, out: str | Path, seed: int = 0, mass: str = "isothermal", lens_light: bool = False,
    pixel_scale: float | None = None, two_clump: bool = False,
) -> Survey:
    """Simulate `n` lenses and write them, their catalog, truths and fit.toml under `out` (see module docstring);
    with `pixel_scale`, every lens in the survey imaging of that pixel scale (one shape bucket)."""
    if n < 1:
        raise ValueError(f"a survey needs at least one lens, got {n}")
    out = Path(out).resolve()
    (out / "lenses").mkdir(parents=True, exist_ok=True)
    truths, entries = [], []
    for i in range(n):
        truth = draw_lens(seed, i, mass, lens_light, pixel_scale, two_clump)
        folder = out / "lenses" / truth.id
        sim = simulate_lens(truth)
        write_imaging(str(folder), sim.image, sim.noise_map, sim.psf, sim.pixel_scale)
        (folder / "truth.json").write_text(truth.to_json())
        truths.append(truth)
        entries.append(CatalogEntry(id=truth.id, path=str(folder), pixel_scale=truth.pixel_scale,
                                    mask_radius=truth.mask_radius, params=truth.params()))
    catalog = out / "catalog.ecsv"
    write_catalog(str(catalog), entries)
    config = out / "fit.toml"
    config.write_text(fit_toml(mass, lens_light))
    return Survey(folder=out, catalog=catalog, config=config, lenses=tuple(truths))
