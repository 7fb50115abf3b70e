import numpy as np
import pytest


def gaussian_psf(size: int = 5, sigma: float = 1.0) -> np.ndarray:
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    psf = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return psf / psf.sum()


@pytest.fixture
def arrays():
    """A small lens image: image, noise_map, psf (float64), and a mask (True = masked) of the outer ring."""
    rng = np.random.default_rng(4)
    image = rng.normal(1.0, 0.1, size=(12, 10))
    noise_map = np.full((12, 10), 0.1) + rng.uniform(0, 0.01, size=(12, 10))
    mask = np.ones((12, 10), bool)
    mask[2:-2, 2:-2] = False
    return {"image": image, "noise_map": noise_map, "psf": gaussian_psf(), "mask": mask}
