"""The multiple images of a source position, and PyAutoLens's positions likelihood (its `PositionsLH`).

Images: the image-plane points θ with β(θ) = β_s for one lens model and a source-plane position β_s (what
PyAutoLens's `image_plane_multiple_image_positions` finds with its point solver, found here another way). On a
grid of spacing h over a box (the mask's), the points whose |β(θ) − β_s| is the smallest
of their 3×3 neighbourhood are refined by Newton's method on β(θ) = β_s (the Jacobian by autodiff); kept are
those that converge (|β − β_s| < IMAGE_TOLERANCE), lie further than h from one another and further than
`central_radius` from the mass centre (the central image, rarely seen: PyAutoLens drops it too).

Penalty: with the images traced to the source plane under a model, d = their largest pairwise separation.
Where d > threshold the figure of merit is replaced by base − PENALTY_FACTOR·(d − threshold), base = −½(χ²(0) +
noise normalisation), the fit of a model image of zeros: every such model ranks below every model that traces the
images together, and less so the closer it comes. The threshold (PyAutoLens's `positions_likelihood_from(factor,
minimum_threshold)`): factor × d under the previous stage's maximum-likelihood mass, at least minimum_threshold.
"""

from __future__ import annotations

from . import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp
import numpy as np

from workers.model.description import MAX_IMAGES, Model

from .mass import ray_trace
from .parameters import MassParameters, unpack

IMAGE_TOLERANCE = 1e-6  # arcsec, in the source plane
PENALTY_FACTOR = 1e8  # PyAutoLens's log_likelihood_penalty_factor
_NEWTON_STEPS = 30
_START_PAD = 16  # starts are padded to a multiple of this, so one compiled refinement serves most lenses


def image_positions(
    mass: MassParameters, source: np.ndarray, lower: np.ndarray, upper: np.ndarray, spacing: float,
    central_radius: float,
) -> np.ndarray:
    """The images (n, 2) of source-plane position `source` (y, x) under `mass` in the box lower–upper (y, x)
    (module docstring)."""
    source = jnp.asarray(source, jnp.float64)
    axes = [np.arange(lo, hi + spacing / 2, spacing) for lo, hi in zip(lower, upper)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)  # (ny, nx, 2), (y, x)
    distance = np.asarray(jnp.linalg.norm(ray_trace(jnp.asarray(grid), mass) - source, axis=-1))
    padded = np.pad(distance, 1, constant_values=np.inf)
    neighbourhood = np.stack([padded[1 + dy: padded.shape[0] - 1 + dy, 1 + dx: padded.shape[1] - 1 + dx]
                              for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    starts = grid[distance <= neighbourhood.min(axis=0)]
    padded_starts = np.concatenate([starts, np.repeat(starts[:1], -len(starts) % _START_PAD, axis=0)])
    refined, residual = (np.asarray(a)[: len(starts)] for a in _refine(jnp.asarray(padded_starts), mass, source))
    centre = np.asarray(mass.values["centre"])
    images: list[np.ndarray] = []
    for theta, error in zip(refined, residual):
        if not (error < IMAGE_TOLERANCE and np.all(theta >= lower) and np.all(theta <= upper)):
            continue
        if np.linalg.norm(theta - centre) <= central_radius:
            continue
        if all(np.linalg.norm(theta - other) > spacing for other in images):
            images.append(theta)
    return np.array(images, dtype=np.float64).reshape(-1, 2)


@jax.jit
def _refine(starts: jax.Array, mass: MassParameters, source: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Newton's method on β(θ) = source from each start (S, 2): the points and their |β − source|."""

    def newton(theta):
        def step(theta, _):
            jacobian = jax.jacfwd(lambda t: ray_trace(t, mass))(theta)
            return theta - jnp.linalg.solve(jacobian, ray_trace(theta, mass) - source), None
        theta, _ = jax.lax.scan(step, theta, None, length=_NEWTON_STEPS)
        return theta, jnp.linalg.norm(ray_trace(theta, mass) - source)

    return jax.vmap(newton)(starts)


def source_plane_separation(positions: jax.Array, valid: jax.Array, mass: MassParameters) -> jax.Array:
    """The largest pairwise distance of the `valid` rows of `positions` (P, 2) traced to the source plane."""
    traced = ray_trace(positions, mass)
    squared = jnp.sum((traced[:, None, :] - traced[None, :, :]) ** 2, axis=-1)
    largest = jnp.max(jnp.where(valid[:, None] & valid[None, :], squared, 0.0))
    return jnp.sqrt(jnp.maximum(largest, 1e-30))  # finite gradients where it is 0 (one image, or none)


def positions_threshold(
    positions: np.ndarray, mass: MassParameters, factor: float, minimum_threshold: float
) -> float:
    """factor × the images' source-plane separation under `mass`, at least `minimum_threshold`."""
    valid = jnp.ones(len(positions), bool)
    separation = float(source_plane_separation(jnp.asarray(positions), valid, mass))
    return max(factor * separation, minimum_threshold)


def penalised(
    figure_of_merit: jax.Array, separation: jax.Array, threshold: jax.Array, base: jax.Array
) -> jax.Array:
    """The figure of merit, or base − PENALTY_FACTOR·(separation − threshold) where separation > threshold."""
    return jnp.where(separation > threshold, base - PENALTY_FACTOR * (separation - threshold), figure_of_merit)


def dataset_positions(
    imaging, model: Model, vector: np.ndarray, previous_model: Model, previous_vector: np.ndarray,
    factor: float, minimum_threshold: float,
) -> tuple[np.ndarray, float]:
    """(images, threshold) of one dataset's positions likelihood: the images (at most MAX_IMAGES) of the source
    centre of `vector` (a light-profile source's model) under its mass, found over the mask's bounding box on a
    grid of half its pixel spacing (the central image, within two grid steps of the mass centre, dropped), and
    the threshold from their separation under `previous_vector`'s mass (the stage before's maximum likelihood);
    NaN where fewer than two images are found (no positions likelihood)."""
    valid = np.asarray(imaging.valid) > 0
    centres = np.asarray(imaging.pixel_centres)[valid]
    spacing = 0.5 * float(np.min(np.diff(np.unique(centres[:, 1]))))
    params = unpack(model, jnp.asarray(vector))
    images = image_positions(params.mass, np.asarray(params.source.centre), centres.min(axis=0),
                             centres.max(axis=0), spacing, central_radius=2 * spacing)
    far = np.argsort(-np.linalg.norm(images - np.asarray(params.mass.values["centre"]), axis=-1))
    images = images[np.sort(far[:MAX_IMAGES])]  # more than a quad: the ones furthest from the mass centre
    if len(images) < 2:
        return images, float("nan")
    previous = unpack(previous_model, jnp.asarray(previous_vector)).mass
    return images, positions_threshold(images, previous, factor, minimum_threshold)
