"""Simulated imaging of strong lenses, for tests, demos and benchmarks.

Sersic sources lensed by an Isothermal (+ ExternalShear), optional Sersic lens light, evaluated on an s×s
over-sampled grid of every pixel (plain sub-pixel mean) on the image grown by the PSF's half-width on every side,
convolved with a normalised Gaussian PSF and cut back to the image, so light just outside the image blurs into it
(PyAutoLens's simulator pads and trims the same way), then Poisson noise at exposure time t over a flat sky b:
    counts ~ Poisson((image + b)·t),  data = counts/t − b,  noise_map = √((image + b)·t)/t.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import jax_setup  # noqa: F401
import jax.numpy as jnp
import numpy as np

from workers.model.grids import pixel_centres, sub_pixel_offsets
from .light import sersic
from .mass import ray_trace
from .parameters import MassParameters


@dataclass(frozen=True)
class SersicProfile:
    """A Sersic light profile: centre (y, x) and effective_radius in arcsec, intensity in image units."""

    centre: tuple[float, float]
    ell_comps: tuple[float, float]
    intensity: float
    effective_radius: float
    sersic_index: float

    def image(self, points: jnp.ndarray) -> jnp.ndarray:
        return sersic(
            points, jnp.asarray(self.centre), jnp.asarray(self.ell_comps), self.intensity,
            self.effective_radius, self.sersic_index,
        )


@dataclass(frozen=True)
class SimulatedImaging:
    """A simulated observation: image, noise map and PSF (float64), pixel scale in arcsec."""

    image: np.ndarray
    noise_map: np.ndarray
    psf: np.ndarray
    pixel_scale: float


def gaussian_psf(size: int, sigma: float, pixel_scale: float) -> np.ndarray:
    """An odd size×size Gaussian PSF of width σ (arcsec), normalised to unit sum."""
    c = pixel_centres((size, size), pixel_scale)
    psf = np.exp(-(c[..., 0] ** 2 + c[..., 1] ** 2) / (2.0 * sigma**2))
    return psf / psf.sum()


def convolve_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Linear convolution, cropped to the image ("same", kernel centred, zero padding)."""
    shape = tuple(i + k - 1 for i, k in zip(image.shape, kernel.shape))
    full = np.fft.irfft2(np.fft.rfft2(image, s=shape) * np.fft.rfft2(kernel, s=shape), s=shape)
    hy, hx = kernel.shape[0] // 2, kernel.shape[1] // 2
    return full[hy : hy + image.shape[0], hx : hx + image.shape[1]]


def simulate_imaging(
    shape: tuple[int, int],
    pixel_scale: float,
    mass: MassParameters,
    sources: list[SersicProfile],
    lens_light: SersicProfile | None = None,
    psf_size: int = 11,
    psf_sigma: float = 0.1,
    exposure_time: float = 300.0,
    background_sky_level: float = 0.1,
    over_sample_size: int = 8,
    seed: int = 0,
) -> SimulatedImaging:
    """Simulate one lens; see the module docstring for the noise model."""
    h = psf_size // 2
    grown = (shape[0] + 2 * h, shape[1] + 2 * h)
    centres = pixel_centres(grown, pixel_scale).reshape(-1, 1, 2)
    points = jnp.asarray((centres + sub_pixel_offsets(over_sample_size, pixel_scale)[None]).reshape(-1, 2))
    traced = ray_trace(points, mass)
    sub = sum(source.image(traced) for source in sources)
    if lens_light is not None:
        sub = sub + lens_light.image(points)
    image = np.asarray(sub).reshape(grown[0] * grown[1], -1).mean(axis=1).reshape(grown)
    psf = gaussian_psf(psf_size, psf_sigma, pixel_scale)
    blurred = convolve_same(image, psf)[h : h + shape[0], h : h + shape[1]]
    rng = np.random.default_rng(seed)
    expected = np.clip((blurred + background_sky_level) * exposure_time, 0.0, None)
    data = rng.poisson(expected) / exposure_time - background_sky_level
    noise_map = np.sqrt(np.maximum(expected, 1.0)) / exposure_time
    return SimulatedImaging(image=data, noise_map=noise_map, psf=psf, pixel_scale=pixel_scale)
