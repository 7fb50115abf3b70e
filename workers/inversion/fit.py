"""One model evaluation: ray-trace, build the blurred mapping matrix, solve, and the figure of merit.

Linear objects are laid out as [lens-light Gaussians | source Gaussians or mesh cells]. Unregularized
objects (MGE) get no_regularization_add_to_curvature_diag_value on F's diagonal; a mesh gets its
regularization matrix H (regularization.py). Then A = F + H, s solves A s = D, the model is m = M̃s, and
    χ² = Σ((d − m)/σ)² = dᵀWd − 2sᵀD + sᵀFs,  N = Σ ln(2πσ²),  G = sᵀHs (mesh block),
    log_likelihood = −½(χ² + N),
    log_evidence = −½(χ² + G + ln det A_mesh − ln det H + N),
with ln det over the mesh block only: A_mesh = A restricted to the mesh cells (edge cells included, the MGE
block and its floor excluded). Both log-det terms and G are 0 without a mesh. figure_of_merit = log_evidence
whenever there is an inversion, which is always here.

Pixelized source (a rectangular mesh of mesh.MESH_MAPPINGS + Constant): the pixelization sub-grid (pix_points)
and the used-pixel centres are traced, both optionally relocated onto the border ellipse of the traced border
centres (use_border_relocator, border.py, as PyAutoArray relocates a grid and its over-sampled grid), the mesh
is laid over them (the uniform mesh over the sub-pixels' bounding box; the adaptive meshes follow the centres'
density, an *_adapt_image mesh the centres weighted by the dataset's adapt image) and its sparse mapping matrix
is blurred (convolution.convolve_mapping_matrix; every PSF convolution takes the route "fft" or "direct" that
convolution.convolution_route picks, unless `convolution` names one).
Mapping-matrix columns have no blurring region. Blurred columns are kept as rows, M̃ᵀ (n, P).
Solves (_solve): Cholesky, one factorization of A with the mesh block ordered first, whose leading block is
the factor of A_mesh (ln det); or positive-only (positive_only.py: Lawson & Hanson for MGE-only systems,
block principal pivoting with a mesh). Edge cells are fixed at 0 only in the positive-only solve with
use_edge_zeroed_pixels (PyAutoArray scopes edge zeroing to that solver; the Cholesky solve always solves the
full system).

Degenerate input. Host side, check_model_fits raises before anything is compiled: a mesh below 3×3 (ValueError)
or fewer used pixels than mesh cells (ImagingError). Inside a compiled fit nothing can raise, so a traced grid
that is non-finite or collapses onto a point or a line (mesh.MIN_EXTENT) gives figure_of_merit = log_evidence
= log_likelihood = DEGENERATE_FIGURE_OF_MERIT, a very negative finite number a search simply rejects (its
gradient is 0); the fit then runs on the untraced grid so every other number stays finite, but they mean
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp
import numpy as np

from .adaptive_mesh import mesh_weights
from .border import fit_ellipse, relocate
from .convolution import convolve_columns, convolve_mapping_matrix
from .imaging import ImagingError, MaskedImaging
from .light import mge_images, mge_sigmas
from .linear_algebra import (
    cholesky, data_vector_and_curvature, log_det, log_det_from_factor, solve_cholesky, solve_with_factor,
)
from .positions import penalised, source_plane_separation
from .positive_only import solve_positive_only
from .mass import ray_trace
from .mesh import edge_cells, mapping_entries, overlay, validate_shape
from workers.model.description import MGEBasis, Model, RectangularSource
from .parameters import BasisParameters, MassParameters, unpack
from .precision import ConvolutionPrecision, precision_for
from .regularization import (
    adapt_edge_weights, adapt_pixel_signals, adapt_regularization_matrix, adapt_regularization_term, constant_log_det,
    constant_regularization_matrix, constant_regularization_term,
)

DEGENERATE_FIGURE_OF_MERIT = -1e100  # finite, and its square and sums of many stay finite too


TERMS = (
    "figure_of_merit",
    "log_evidence",
    "log_likelihood",
    "chi_squared",
    "noise_normalization",
    "regularization_term",
    "log_det_curvature_reg_matrix_term",
    "log_det_regularization_matrix_term",
)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class FitResult:
    """Every figure-of-merit term (PyAutoLens's names), and on request the reconstruction (n_linear,) and the
    model image (P,) on the used pixels (0 on padding). mesh_centres: (K, 2) cell centres of a pixelized
    source, else None."""

    figure_of_merit: jax.Array
    log_evidence: jax.Array
    log_likelihood: jax.Array
    chi_squared: jax.Array
    noise_normalization: jax.Array
    regularization_term: jax.Array
    log_det_curvature_reg_matrix_term: jax.Array
    log_det_regularization_matrix_term: jax.Array
    reconstruction: jax.Array | None = None
    model_image: jax.Array | None = None
    mesh_centres: jax.Array | None = None


def _mge_columns(
    imaging: MaskedImaging,
    points: jax.Array,
    blurring_points: jax.Array,
    basis: MGEBasis,
    params: BasisParameters,
    precision: ConvolutionPrecision,
    route: str,
) -> jax.Array:
    """Blurred columns, as rows (N, P), of a linear Gaussian basis evaluated at (possibly traced) sub-pixels:
    the Gaussians of set 0, then set 1, ..."""
    sigmas = mge_sigmas(basis.gaussians, basis.sigma_min, imaging.mask_radius)
    sub = mge_images(points, params.centre, params.ell_comps, sigmas) * imaging.lp_weight[:, None]
    columns = jax.ops.segment_sum(sub, imaging.lp_pixel, imaging.bucket.pixels, indices_are_sorted=True)
    blurring = mge_images(blurring_points, params.centre, params.ell_comps, sigmas)
    return convolve_columns(imaging, columns.T, blurring.T, precision, route).astype(jnp.float64)


def lens_light_image(imaging: MaskedImaging, vector: jax.Array, model: Model, reconstruction: jax.Array) -> jax.Array:
    """The lens light's blurred model image on the used pixels (P,): its blurred columns at `vector` times its
    solved amplitudes, the reconstruction's first `model.lens_light.components` entries."""
    params = unpack(model, vector)
    precision = precision_for(model.settings.use_mixed_precision)
    columns = _mge_columns(imaging, imaging.lp_points, imaging.blurring_points, model.lens_light, params.lens_light,
                           precision.linear_light, "auto")
    return jnp.asarray(reconstruction[: model.lens_light.components], jnp.float64) @ columns


def check_model_fits(imaging: MaskedImaging, model: Model) -> None:
    """Host-side check, before compiling, that `model` can be fitted to `imaging` (one dataset or a stack):
    ValueError for a mesh below 3×3, ImagingError for a mask with fewer used pixels than mesh cells."""
    if not model.pixelized:
        return
    validate_shape(model.source.shape)
    valid = np.asarray(imaging.valid)
    used = int(valid.reshape(-1, valid.shape[-1]).sum(axis=-1).min())
    if used < model.source.pixels:
        ny, nx = model.source.shape
        raise ImagingError(
            f"the mask leaves {used} used pixels, fewer than the {ny}×{nx} = {model.source.pixels} source "
            "pixels of the mesh: use a bigger mask or a smaller mesh"
        )


def _in_order(value: jax.Array, done: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(value, done), with `value` made to depend on `done` (NaN if `done` is not finite). It keeps two Cholesky
    factorizations from running at once: under vmap on the CPU, jaxlib's batched LAPACK kernels split the batch
    over XLA's intra-op thread pool, and two of them running concurrently deadlocked a 2-thread pool.
    (lax.optimization_barrier does not survive XLA's CPU pipeline as an ordering, so a data dependency it is.)"""
    return jnp.where(jnp.all(jnp.isfinite(done)), value, jnp.nan), done


def _mapper_columns(
    imaging: MaskedImaging,
    mass: MassParameters,
    source: RectangularSource,
    use_border_relocator: bool,
    precision: ConvolutionPrecision,
    route: str,
) -> tuple[jax.Array, jax.Array, jax.Array, tuple[jax.Array, jax.Array]]:
    """(blurred mapping matrix, transposed (K, P), cell centres (K, 2), degenerate (), the mapping (cells,
    interpolation weights) (Q, 4) each) of a rectangular mesh over the traced pixelization sub-grid. For a
    degenerate traced grid (mesh.overlay) the untraced grids are used instead."""
    traced = ray_trace(imaging.pix_points, mass)
    centres = ray_trace(imaging.pixel_centres, mass)
    if use_border_relocator:
        ellipse = fit_ellipse(centres, imaging.border)
        traced, centres = relocate(traced, *ellipse), relocate(centres, *ellipse)
    degenerate = overlay(traced, imaging.pix_weight, source.shape).degenerate
    traced = jnp.where(degenerate, imaging.pix_points, traced)
    centres = jnp.where(degenerate, imaging.pixel_centres, centres)
    adapt_weights = (mesh_weights(imaging.adapt_image, imaging.valid, source.weight_power, source.weight_floor)
                     if source.adapts_to_image else None)
    cells, weights, cell_centres = mapping_entries(
        source.mesh, traced, imaging.pix_weight, centres, imaging.valid, source.shape, adapt_weights
    )
    blurred = convolve_mapping_matrix(imaging, cells, weights * imaging.pix_weight[:, None], source.pixels,
                                      precision, route)
    return blurred.astype(jnp.float64), cell_centres, degenerate, (cells, weights)


def _regularization(imaging: MaskedImaging, source: RectangularSource, searched: dict[str, jax.Array] | None,
                    mapping: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, Callable, jax.Array | None]:
    """(H (K, K), s ↦ G = sᵀHs, ln det H or None: to be factorised) of the mesh's regularization
    (regularization.py): Constant with the fixed or searched coefficient, or Adapt with its searched parameters."""
    if source.regularization != "adapt":
        c = source.regularization if searched is None else searched["coefficient"]
        return (constant_regularization_matrix(source.shape, c),
                lambda s: constant_regularization_term(source.shape, c, s), constant_log_det(source.shape, c))
    cells, weights = mapping
    signals = adapt_pixel_signals(cells, weights, imaging.pix_weight > 0, imaging.pix_pixel, imaging.adapt_image,
                                  source.pixels, searched["signal_scale"])
    edge_weights = adapt_edge_weights(source.shape, signals, searched["inner_coefficient"],
                                      searched["outer_coefficient"])
    return (adapt_regularization_matrix(source.shape, edge_weights),
            lambda s: adapt_regularization_term(source.shape, edge_weights, s), None)


def _solve(
    curvature_reg: jax.Array, data_vector: jax.Array, model: Model, n_light: int
) -> tuple[jax.Array, jax.Array]:
    """(reconstruction s, ln det of the mesh block of A, 0 without a mesh) for A = F + H (+ floor)."""
    settings = model.settings
    n = data_vector.shape[0]
    zero = jnp.zeros((), jnp.float64)
    if not model.pixelized:
        if settings.use_positive_only_solver:
            return solve_positive_only(curvature_reg, data_vector, jnp.zeros(n, bool), "lawson_hanson"), zero
        return solve_cholesky(curvature_reg, data_vector), zero
    mesh = slice(n_light, n)
    if settings.use_positive_only_solver:
        fixed_zero = np.zeros(n, dtype=bool)
        if settings.use_edge_zeroed_pixels:
            fixed_zero[mesh] = edge_cells(model.source.shape)
        # Block pivoting crawls on lens-light amplitudes beside a mesh (measured: 6 of 16 systems past 30
        # passes; RESULTS_pipeline.md): those systems start with the interior point's crossover (budget 1).
        budget = 1 if n_light else None
        reconstruction = solve_positive_only(
            curvature_reg, data_vector, jnp.asarray(fixed_zero), "block_pivoting", budget
        )
        mesh_block, reconstruction = _in_order(curvature_reg[mesh, mesh], reconstruction)
        return reconstruction, log_det(mesh_block)
    # One Cholesky with the mesh block leading: its leading block factors A_mesh (ln det), all of it solves.
    order = np.concatenate([np.arange(n_light, n), np.arange(n_light)])
    factor = cholesky(curvature_reg[order][:, order])
    reconstruction = jnp.zeros(n, jnp.float64).at[order].set(solve_with_factor(factor, data_vector[order]))
    return reconstruction, log_det_from_factor(factor, n - n_light)


def fit(
    imaging: MaskedImaging,
    vector: jax.Array,
    model: Model,
    with_arrays: bool = False,
    *,
    convolution: str = "auto",
) -> FitResult:
    """Evaluate the model at a flat parameter vector (parameters.parameter_names order). `convolution` picks
    the PSF convolution route ("auto": convolution.convolution_route, a static choice from the shapes and
    the backend; or "fft", "direct")."""
    params = unpack(model, vector)
    precision = precision_for(model.settings.use_mixed_precision)
    settings = model.settings

    blocks = []
    if model.lens_light is not None:
        blocks.append(
            _mge_columns(
                imaging, imaging.lp_points, imaging.blurring_points, model.lens_light, params.lens_light,
                precision.linear_light, convolution,
            )
        )
    n_light = model.lens_light.components if model.lens_light is not None else 0
    cell_centres, degenerate = None, None
    if model.pixelized:
        source_columns, cell_centres, degenerate, mapping = _mapper_columns(
            imaging, params.mass, model.source, settings.use_border_relocator, precision.mapping_matrix, convolution
        )
        blocks.append(source_columns)
    else:
        blocks.append(
            _mge_columns(
                imaging,
                ray_trace(imaging.lp_points, params.mass),
                ray_trace(imaging.blurring_points, params.mass),
                model.source,
                params.source,
                precision.linear_light,
                convolution,
            )
        )
    blurred = jnp.concatenate(blocks, axis=0) if len(blocks) > 1 else blocks[0]  # (n, P)

    data_vector, curvature = data_vector_and_curvature(blurred, imaging.data, imaging.weight)
    n = curvature.shape[0]
    floor = settings.no_regularization_add_to_curvature_diag_value
    zero = jnp.zeros((), jnp.float64)
    regularization_term = log_det_regularization = zero
    if model.pixelized:
        regularization_matrix, regularization_of, log_det_regularization = _regularization(
            imaging, model.source, params.regularization, mapping)
        curvature_reg = curvature.at[n_light:, n_light:].add(regularization_matrix)
        if n_light:
            curvature_reg = curvature_reg.at[jnp.arange(n_light), jnp.arange(n_light)].add(floor)
    else:
        curvature_reg = curvature + floor * jnp.eye(n)
    reconstruction, log_det_curvature = _solve(curvature_reg, data_vector, model, n_light)
    if model.pixelized:
        regularization_term = regularization_of(reconstruction[n_light:])
        if log_det_regularization is None:  # factorised after the solve's Cholesky, not beside it (_in_order)
            log_det_regularization = log_det(_in_order(regularization_matrix, log_det_curvature)[0])

    # χ² = Σ w(d − M̃s)² = dᵀWd − 2sᵀD + sᵀFs, from the curvature F (without H or the floor): no pass over M̃.
    data_term = jnp.sum(imaging.weight * imaging.data**2)  # dᵀWd: the χ² of a model image of zeros
    chi_squared = data_term - 2.0 * reconstruction @ data_vector + reconstruction @ curvature @ reconstruction
    noise_normalization = jnp.sum(imaging.valid * jnp.log(2.0 * jnp.pi * imaging.noise_map**2))
    log_likelihood = -0.5 * (chi_squared + noise_normalization)
    log_evidence = -0.5 * (
        chi_squared + regularization_term + log_det_curvature - log_det_regularization + noise_normalization
    )
    # The positions likelihood (positions.py): a model tracing the multiple images apart is penalised.
    separation = source_plane_separation(imaging.positions, imaging.positions_valid, params.mass)
    base = -0.5 * (data_term + noise_normalization)
    log_likelihood = penalised(log_likelihood, separation, imaging.positions_threshold, base)
    log_evidence = penalised(log_evidence, separation, imaging.positions_threshold, base)
    if degenerate is not None:
        log_likelihood = jnp.where(degenerate, DEGENERATE_FIGURE_OF_MERIT, log_likelihood)
        log_evidence = jnp.where(degenerate, DEGENERATE_FIGURE_OF_MERIT, log_evidence)
    return FitResult(
        figure_of_merit=log_evidence,
        log_evidence=log_evidence,
        log_likelihood=log_likelihood,
        chi_squared=chi_squared,
        noise_normalization=noise_normalization,
        regularization_term=regularization_term,
        log_det_curvature_reg_matrix_term=log_det_curvature,
        log_det_regularization_matrix_term=log_det_regularization,
        reconstruction=reconstruction if with_arrays else None,
        model_image=(reconstruction @ blurred) * imaging.valid if with_arrays else None,
        mesh_centres=cell_centres if with_arrays else None,
    )
