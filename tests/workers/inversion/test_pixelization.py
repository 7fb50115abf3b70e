"""Pixelized sources (RectangularUniform 20×20 + Constant 1.0) equal PyAutoLens's on the reference lenses, and
the engine around them behaves: mixed precision, gradients, both convolution routes, padding, degenerate input.

Each (dataset, case, precision) is compiled and run once (vmap over the four mass models) and reused.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import jax
import numpy as np
import pytest

from reference_cases import MASS_MODELS, case_model, load_reference_lens, reference_array
from workers.inversion import border, mesh, regularization
from workers.inversion.batch import common_bucket, evaluate
from workers.inversion.convolution import convolution_route, convolve_columns, convolve_mapping_matrix
from workers.inversion.fit import DEGENERATE_FIGURE_OF_MERIT, TERMS, check_model_fits, fit
from workers.inversion.imaging import ImagingError, pad_to_bucket
from workers.model.description import MGEBasis, Model, RectangularSource
from workers.inversion.parameters import MassParameters
from workers.inversion.mass import ray_trace
from workers.inversion.precision import FP64
from workers.model.settings import Settings

RECT_CASES = ("rect", "rect_pos", "rect_pos_edge0")
REPORTED_TERMS = TERMS + ("log_likelihood",)
_FITS: dict = {}


def _fits(lens, case, mixed=False):
    """The four mass models of a case, fitted once per session (vmap), as numpy arrays."""
    key = (lens.name, case, mixed)
    if key not in _FITS:
        result = evaluate(lens.imaging, lens.vectors(case, with_source=False), case_model(case, mixed), True)
        _FITS[key] = jax.tree.map(np.asarray, result)
    return _FITS[key]


def _rect_model(**settings) -> Model:
    return Model(source=RectangularSource(shape=(20, 20), regularization=1.0), settings=Settings(**settings))


def _relative(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.abs(a - b).max() / np.abs(b).max()


_jit_fit = jax.jit(fit, static_argnames=("model", "with_arrays", "convolution"))


@functools.cache
def _lens(name):
    return load_reference_lens(name)


# --- Agreement with PyAutoLens ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", RECT_CASES)
def test_every_term_equals_pyautolens_fp64(reference_lens, case):
    result = _fits(reference_lens, case)
    for i, mass_model in enumerate(MASS_MODELS):
        expected = reference_lens.case(case)[mass_model]["numpy"]
        for term in REPORTED_TERMS:
            assert abs(float(getattr(result, term)[i]) - expected[term]) <= 1e-4, (mass_model, term)


@pytest.mark.parametrize("case", RECT_CASES)
def test_reconstruction_model_image_and_mesh_equal_pyautolens(reference_lens, case):
    result = _fits(reference_lens, case)
    for i, mass_model in enumerate(MASS_MODELS):
        record = reference_lens.case(case)[mass_model]
        reconstruction = reference_array(record, "reconstruction_file")
        assert np.abs(result.reconstruction[i] - reconstruction).max() <= 1e-4 * np.abs(reconstruction).max()
        model_image = reference_array(record, "model_image_file")
        assert np.abs(result.model_image[i] - model_image).max() <= 1e-6 * np.abs(model_image).max()
        assert np.abs(result.mesh_centres[i] - reference_array(record, "mesh_grid_file")).max() <= 1e-10


def test_edge_cells_are_exactly_zero_only_with_edge_zeroing(reference_lens):
    edge = mesh.edge_cells((20, 20))
    assert edge.sum() == 2 * 20 + 2 * 20 - 4
    assert np.all(_fits(reference_lens, "rect_pos_edge0").reconstruction[:, edge] == 0.0)
    assert np.any(_fits(reference_lens, "rect_pos").reconstruction[:, edge] != 0.0)
    assert np.all(_fits(reference_lens, "rect_pos").reconstruction >= 0.0)


@pytest.mark.parametrize("case", RECT_CASES)
def test_mixed_precision_within_1e_3_of_fp64(reference_lens, case):
    fp64 = _fits(reference_lens, case)
    mixed = _fits(reference_lens, case, mixed=True)
    deviation = np.abs(mixed.figure_of_merit - fp64.figure_of_merit)
    assert deviation.max() <= 1e-3
    assert deviation.max() > 0  # the policy really lowered precision somewhere


# --- Gradients ----------------------------------------------------------------------------------------------


def test_gradient_of_the_figure_of_merit_matches_finite_differences():
    lens = _lens("A0")
    model = case_model("rect")  # Cholesky solve
    vector = lens.vectors("rect", with_source=False)[3]
    figure_of_merit = lambda v: fit(lens.imaging, v, model).figure_of_merit  # noqa: E731
    gradient = np.asarray(jax.jit(jax.grad(figure_of_merit))(vector))
    assert np.all(np.isfinite(gradient))
    # Sub-pixels crossing cell boundaries make the figure of merit piecewise smooth: a small step keeps the
    # kinks out of the difference, and fp64 round-off (~1e-10 of ~1e3) stays far below it.
    step = 1e-7
    shifts = step * np.eye(vector.size)
    points = np.concatenate([vector + shifts, vector - shifts, [vector, vector]])  # 16: four batches of four
    values = np.concatenate([evaluate(lens.imaging, batch, model, True).figure_of_merit for batch in points.reshape(4, 4, -1)])
    finite_differences = (values[: vector.size] - values[vector.size : 2 * vector.size]) / (2 * step)
    assert np.all(np.abs(finite_differences - gradient) <= 1e-4 * np.abs(gradient))


@pytest.mark.parametrize("case", ["rect", "rect_pos_edge0"])
def test_a_free_regularization_coefficient_fits_as_the_fixed_one_with_its_gradient(case):
    """`regularization = "free"`: the coefficient read from the vector gives the fixed coefficient's fit, term by
    term, and the figure of merit's derivative in it matches a central difference."""
    lens = _lens("A0")
    fixed = case_model(case)
    free = replace(fixed, source=replace(fixed.source, regularization="free"))
    vector = lens.vectors(case, with_source=False)[3]
    fits = {}
    for c in (0.3, 3.0):
        want = _jit_fit(lens.imaging, vector, replace(fixed, source=replace(fixed.source, regularization=c)), True)
        got = fits[c] = _jit_fit(lens.imaging, np.append(vector, c), free, True)
        for term in TERMS:
            value = float(getattr(want, term))
            assert abs(float(getattr(got, term)) - value) <= 1e-9 * abs(value), term
        assert _relative(got.reconstruction, want.reconstruction) <= 1e-10
    assert abs(float(fits[0.3].regularization_term) - float(fits[3.0].regularization_term)) > 1.0
    merit = jax.jit(lambda c: fit(lens.imaging, jax.numpy.append(vector, c), free).figure_of_merit)
    step = 1e-5
    difference = (float(merit(1.3 + step)) - float(merit(1.3 - step))) / (2 * step)
    gradient = float(jax.grad(merit)(1.3))
    assert np.isfinite(gradient) and abs(gradient - difference) <= 1e-5 * abs(gradient)


# --- Convolution routes and padding -------------------------------------------------------------------------


@jax.jit
def _mapping_entries(imaging, vector):
    mass = MassParameters("isothermal", {"centre": vector[:2], "ell_comps": vector[2:4], "einstein_radius": vector[4]},
                          vector[5:7])
    traced = ray_trace(imaging.pix_points, mass)
    cells, weights, _ = mesh.mapping_entries("uniform", traced, imaging.pix_weight, None, None, (20, 20))
    return cells, weights * imaging.pix_weight[:, None]


def test_fft_and_direct_routes_give_the_same_blurred_mapping_matrix(reference_lens):
    imaging = reference_lens.imaging
    cells, weights = _mapping_entries(imaging, reference_lens.vectors("rect", False)[0])
    blur = jax.jit(convolve_mapping_matrix, static_argnames=("n_cells", "precision", "route"))
    fft = blur(imaging, cells, weights, n_cells=400, precision=FP64.mapping_matrix, route="fft")
    direct = blur(imaging, cells, weights, n_cells=400, precision=FP64.mapping_matrix, route="direct")
    assert fft.shape == (400, imaging.bucket.pixels)
    assert _relative(direct, fft) <= 1e-10
    # and both equal the definition: M̃ᵀ = blur of the dense mapping matrix by the column convolution
    dense = mesh.mapping_matrix(cells, weights, imaging.pix_pixel, imaging.bucket.pixels, 400)
    assert _relative(convolve_columns(imaging, dense.T, None, FP64.linear_light, "fft"), fft) <= 1e-10


@pytest.mark.parametrize("route", ["fft", "direct"])
def test_column_convolution_is_the_linear_same_mode_convolution(route):
    # Every used and blurring pixel carries a value, the canvas edges included, so anything wrapped around
    # by the circular FFT, shifted or cropped wrongly would show; the reference is a plain numpy loop.
    bucket = common_bucket([_lens("A0").imaging.bucket, _lens("B0").imaging.bucket])
    imaging = pad_to_bucket(_lens("B0").imaging, bucket)
    b = imaging.bucket
    rng = np.random.default_rng(5)
    columns, blurring = rng.standard_normal((3, b.pixels)), rng.standard_normal((3, b.blurring))
    convolve = jax.jit(convolve_columns, static_argnums=(3, 4))
    blurred = np.asarray(convolve(imaging, columns, blurring, FP64.linear_light, route))
    canvas = np.zeros((3, b.canvas[0] * b.canvas[1]))
    real, real_blur = np.asarray(imaging.valid) > 0, np.asarray(imaging.blurring_valid) > 0
    canvas[:, np.asarray(imaging.pixel_index)[real]] = columns[:, real]
    canvas[:, np.asarray(imaging.blurring_index)[real_blur]] = blurring[:, real_blur]
    canvas = canvas.reshape(3, *b.canvas)
    kernel, (hy, hx), (cy, cx) = np.asarray(imaging.psf), (b.psf[0] // 2, b.psf[1] // 2), b.canvas
    padded = np.pad(canvas, ((0, 0), (hy, hy), (hx, hx)))
    expected = np.zeros_like(canvas)
    for a in range(b.psf[0]):
        for c in range(b.psf[1]):
            expected += kernel[a, c] * padded[:, 2 * hy - a : 2 * hy - a + cy, 2 * hx - c : 2 * hx - c + cx]
    expected = expected.reshape(3, -1)[:, np.asarray(imaging.pixel_index)] * np.asarray(imaging.valid)
    assert np.abs(blurred - expected).max() <= 1e-12 * np.abs(expected).max()
    assert np.all(blurred[:, ~real] == 0.0)


def test_route_choice_is_static_and_named():
    bucket = _lens("A0").imaging.bucket
    assert convolution_route(bucket, 400, "cpu") in ("fft", "direct")
    assert convolution_route(bucket, 400, "cpu") == convolution_route(bucket, 400, "cpu")
    cells, weights = np.zeros((bucket.pix_sub, 4), np.int32), np.zeros((bucket.pix_sub, 4))
    with pytest.raises(ValueError, match="route"):
        convolve_mapping_matrix(_lens("A0").imaging, cells, weights, 400, FP64.mapping_matrix, route="sparse")


@pytest.mark.parametrize("case, route", [("rect", "fft"), ("rect_pos_edge0", "direct")])
def test_padding_to_a_bigger_bucket_changes_no_number_on_either_route(case, route):
    lens = _lens("A0")
    bucket = common_bucket([lens.imaging.bucket, _lens("B0").imaging.bucket])
    padded = pad_to_bucket(lens.imaging, bucket)
    assert padded.bucket.psf > lens.imaging.bucket.psf and padded.bucket.pixels > lens.imaging.bucket.pixels
    model = case_model(case)
    vector = lens.vectors(case, with_source=False)[1]
    expected = _fits(lens, case)
    n = lens.imaging.bucket.pixels
    result = _jit_fit(padded, vector, model, True, convolution=route)
    for term in TERMS:
        value, reference = float(getattr(result, term)), getattr(expected, term)[1]
        assert abs(value - reference) <= 1e-9 * abs(reference) + 1e-9, term
    assert np.all(np.asarray(result.model_image)[n:] == 0.0)
    assert _relative(np.asarray(result.model_image)[:n], expected.model_image[1]) <= 1e-9
    assert np.abs(np.asarray(result.mesh_centres) - expected.mesh_centres[1]).max() <= 1e-12


# --- Lens light and a pixelized source together -------------------------------------------------------------


def test_lens_light_block_gets_the_floor_and_stays_out_of_the_log_dets():
    lens = _lens("A0")
    vector = lens.vectors("rect", with_source=False)[0]
    source_only = _fits(lens, "rect")
    model = Model(
        source=RectangularSource((20, 20), 1.0),
        lens_light=MGEBasis(gaussians=10, sigma_min=0.01),
        settings=Settings(use_positive_only_solver=False, use_border_relocator=False),
    )
    with_light = _jit_fit(lens.imaging, np.concatenate([vector, vector[:4]]), model, True)
    # the mesh block of F + H does not involve the lens light, so neither log-det term moves
    for term in ("log_det_curvature_reg_matrix_term", "log_det_regularization_matrix_term"):
        assert abs(float(getattr(with_light, term)) - getattr(source_only, term)[0]) <= 1e-8
    assert float(with_light.chi_squared) < source_only.chi_squared[0]  # more freedom fits better
    assert with_light.reconstruction.shape == (410,)
    assert np.isfinite(float(with_light.figure_of_merit))


# --- Regularization and border ------------------------------------------------------------------------------


def test_constant_regularization_matrix_closed_form_log_det_and_term():
    h = np.asarray(jax.jit(regularization.constant_regularization_matrix, static_argnums=0)((4, 5), 2.0))
    assert h[0, 0] == pytest.approx(4.0 * 2 + 1e-8) and h[6, 6] == pytest.approx(4.0 * 4 + 1e-8)
    assert h[0, 1] == -4.0 and h[0, 5] == -4.0 and h[0, 6] == 0.0 and np.array_equal(h, h.T)
    h20 = np.asarray(jax.jit(regularization.constant_regularization_matrix, static_argnums=0)((20, 20), 1.0))
    cholesky_log_det = 2.0 * np.log(np.diag(np.linalg.cholesky(h20))).sum()
    closed_form = jax.jit(regularization.constant_log_det, static_argnums=0)((20, 20), 1.0)
    assert float(closed_form) == pytest.approx(cholesky_log_det, abs=1e-6)
    s = np.random.default_rng(0).standard_normal(20)
    term = jax.jit(regularization.constant_regularization_term, static_argnums=0)((4, 5), 2.0, s)
    assert float(term) == pytest.approx(s @ h @ s, rel=1e-12)


def test_border_pixels_are_the_extreme_used_pixels_of_rows_and_columns():
    mask = np.ones((7, 7), dtype=bool)
    mask[1:6, 1:6] = False
    mask[3, 3] = True  # a hole: its neighbours are not border pixels
    flags = border.border_pixels(mask)
    used = np.argwhere(~mask)
    on_rim = (used[:, 0] == 1) | (used[:, 0] == 5) | (used[:, 1] == 1) | (used[:, 1] == 5)
    assert np.array_equal(flags, on_rim)


def test_relocation_moves_outside_points_onto_the_border_ellipse_and_keeps_inside_points():
    angle = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    ring = np.stack([1.0 * np.sin(angle), 2.0 * np.cos(angle)], axis=1)  # half-axes 2 along x, 1 along y
    origin, a, b, phi = jax.jit(border.fit_ellipse)(ring, np.ones(64))
    assert float(a) == pytest.approx(2.0) and float(b) == pytest.approx(1.0)
    points = np.array([[0.5, 0.5], [3.0, 0.0], [0.0, -5.0]])
    moved = np.asarray(jax.jit(border.relocate)(points, origin, a, b, phi))
    assert np.array_equal(moved[0], [0.5, 0.5])
    assert moved[1] == pytest.approx([1.0, 0.0], abs=1e-9) and moved[2] == pytest.approx([0.0, -2.0], abs=1e-9)


def test_border_relocator_changes_the_fit_and_keeps_it_finite():
    lens = _lens("A0")
    vector = lens.vectors("rect", with_source=False)[0]
    plain = _fits(lens, "rect")
    relocated = _jit_fit(lens.imaging, vector, _rect_model(use_positive_only_solver=False, use_border_relocator=True), True)
    assert np.isfinite(float(relocated.figure_of_merit))
    assert float(relocated.figure_of_merit) != plain.figure_of_merit[0]
    # the mesh now covers the relocated points only, so it shrinks
    extent = np.ptp(np.asarray(relocated.mesh_centres), axis=0)
    assert np.all(extent <= np.ptp(plain.mesh_centres[0], axis=0) + 1e-12)


# --- Degenerate input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 20), (20, 2), (1, 1)])
def test_a_mesh_smaller_than_3x3_is_refused(shape):
    # refused where the model is described, before any data or compile is touched
    with pytest.raises(ValueError, match="at least 3×3"):
        RectangularSource(shape=shape)


def test_a_mask_with_fewer_used_pixels_than_source_pixels_is_refused():
    from workers.inversion.imaging import prepare_imaging

    full = _lens("A0").imaging
    check_model_fits(full, _rect_model())  # 2,828 pixels for 400 cells: fine
    small = prepare_imaging(np.ones((20, 20)), np.ones((20, 20)), np.ones((3, 3)), 0.1, mask_radius=0.5)
    assert small.bucket.pixels < 400
    with pytest.raises(ImagingError, match="fewer than the 20×20 = 400 source pixels"):
        check_model_fits(small, _rect_model())
    check_model_fits(small, Model(source=RectangularSource(shape=(5, 5))))


def _small_imaging():
    from workers.inversion.imaging import prepare_imaging

    y, x = np.mgrid[-1:2, -1:2]
    image = np.random.default_rng(3).normal(1.0, 0.1, (30, 30))
    return prepare_imaging(image, np.full((30, 30), 0.1), np.exp(-(x**2 + y**2)), 0.1, mask_radius=1.2)


def test_a_collapsed_or_non_finite_traced_grid_gives_a_finite_sentinel_not_nan():
    small = _small_imaging()
    model = Model(source=RectangularSource(shape=(5, 5)), settings=Settings(use_positive_only_solver=False))
    no_lens = np.zeros(7)
    # Every sub-pixel at one point: with no deflection the traced grid has zero extent.
    collapsed = replace(small, pix_points=np.tile([[0.3, -0.2]], (small.bucket.pix_sub, 1)))
    cases = [(collapsed, no_lens), (small, np.full(7, np.nan)), (small, np.array([0, 0, 0, 0, np.inf, 0, 0]))]
    for imaging, vector in cases:
        result = _jit_fit(imaging, vector, model, True)
        assert float(result.figure_of_merit) == DEGENERATE_FIGURE_OF_MERIT
        assert float(result.log_evidence) == float(result.log_likelihood) == DEGENERATE_FIGURE_OF_MERIT
        assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree.leaves(result))
    gradient = jax.jit(jax.grad(lambda v: fit(collapsed, v, model).figure_of_merit))(no_lens)
    assert np.all(np.asarray(gradient) == 0.0)
    # a healthy grid is not flagged
    healthy = float(_jit_fit(small, np.array([0, 0, 0.05, 0, 0.5, 0, 0]), model, True).figure_of_merit)
    assert np.isfinite(healthy) and healthy != DEGENERATE_FIGURE_OF_MERIT
