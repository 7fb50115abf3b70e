"""One model evaluation: ray-trace, build the blurred mapping matrix, solve, and the figure of merit.

Linear objects are laid out as [lens-light Gaussians | source Gaussians or mesh cells]. Unregularized
objects (MGE) get no_regularization_add_to_curvature_diag_value on F's diagonal; a mesh gets its
regularization matrix H. Then A = F + H, s solves A s = D, the model is m = M̃s, and
    χ² = Σ((d − m)/σ)²,  N = Σ ln(2πσ²),  G = sᵀHs (mesh block),
    log_likelihood = −½(χ² + N),
    log_evidence = −½(χ² + G + ln det A_mesh − ln det H + N),
with ln det over the mesh block only (both log-det terms and G are 0 without a mesh). figure_of_merit =
log_evidence whenever there is an inversion, which is always here.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp

from .convolution import convolve_columns
from .imaging import MaskedImaging
from .light import gaussian_basis, mge_sigmas
from .linear_algebra import data_vector_and_curvature, hold_at_zero, log_det, solve_cholesky, solve_positive_only
from .mass import ray_trace
from .model import MGEBasis, Model
from .parameters import BasisParameters, unpack
from .precision import ConvolutionPrecision, precision_for


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
) -> jax.Array:
    """Blurred columns (P, N) of a linear Gaussian basis evaluated at (possibly traced) sub-pixels."""
    sigmas = mge_sigmas(basis.gaussians, basis.sigma_min, imaging.mask_radius)
    sub = gaussian_basis(points, params.centre, params.ell_comps, sigmas) * imaging.lp_weight[:, None]
    columns = jax.ops.segment_sum(sub, imaging.lp_pixel, imaging.bucket.pixels, indices_are_sorted=True)
    blurring = gaussian_basis(blurring_points, params.centre, params.ell_comps, sigmas)
    return convolve_columns(imaging, columns, blurring, precision).astype(jnp.float64)


def fit(imaging: MaskedImaging, vector: jax.Array, model: Model, with_arrays: bool = False) -> FitResult:
    """Evaluate the model at a flat parameter vector (parameters.parameter_names order)."""
    params = unpack(model, vector)
    precision = precision_for(model.settings.use_mixed_precision)
    settings = model.settings

    blocks = []
    if model.lens_light is not None:
        blocks.append(
            _mge_columns(
                imaging, imaging.lp_points, imaging.blurring_points, model.lens_light, params.lens_light,
                precision.linear_light,
            )
        )
    if model.pixelized:
        raise NotImplementedError("pixelized sources arrive with the pixelization module")
    blocks.append(
        _mge_columns(
            imaging,
            ray_trace(imaging.lp_points, params.mass),
            ray_trace(imaging.blurring_points, params.mass),
            model.source,
            params.source,
            precision.linear_light,
        )
    )
    blurred = jnp.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]

    data_vector, curvature = data_vector_and_curvature(blurred, imaging.data, imaging.weight)
    n = curvature.shape[0]
    floor = settings.no_regularization_add_to_curvature_diag_value
    curvature_reg = curvature + floor * jnp.eye(n)
    fixed_zero = jnp.zeros(n, dtype=bool)
    matrix, vector_d = hold_at_zero(curvature_reg, data_vector, fixed_zero)
    if settings.use_positive_only_solver:
        reconstruction = solve_positive_only(matrix, vector_d)
    else:
        reconstruction = solve_cholesky(matrix, vector_d)

    model_image = blurred @ reconstruction
    residual = (imaging.data - model_image) * imaging.valid
    chi_squared = jnp.sum(residual**2 * imaging.weight)
    noise_normalization = jnp.sum(imaging.valid * jnp.log(2.0 * jnp.pi * imaging.noise_map**2))
    zero = jnp.zeros((), jnp.float64)
    regularization_term, log_det_curvature, log_det_regularization = zero, zero, zero
    log_likelihood = -0.5 * (chi_squared + noise_normalization)
    log_evidence = -0.5 * (
        chi_squared + regularization_term + log_det_curvature - log_det_regularization + noise_normalization
    )
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
        model_image=model_image * imaging.valid if with_arrays else None,
    )
