"""PowerLaw mass, PyAutoArray's adaptive rectangular meshes and lens light equal PyAutoLens's on the second reference
set (../shared/reference2: A0, B0 and C0, every case and mass model), in fp64 and mixed precision; the figure of
merit's gradient in the PowerLaw parameters (slope included) matches finite differences; border relocation on
every mesh equals PyAutoLens's.

Each (case, precision) is compiled once: A0 and B0 are padded to one bucket and fitted together (evaluate_block,
lenses × mass models), C0 alone (evaluate, its mass models as one batch).
"""

from __future__ import annotations

from dataclasses import replace

import jax
import numpy as np
import pytest

from reference_cases import (
    REFERENCE2_JSON, load_reference_lens, reference2_array, reference2_model, reference2_records, reference2_vector,
)
from workers.inversion import mesh
from workers.inversion.batch import evaluate, evaluate_block, stack
from workers.inversion.fit import TERMS, fit
from workers.model.description import PowerLaw, parameter_names

CASES = {name: tuple(entry["cases"]) for name, entry in REFERENCE2_JSON["datasets"].items()}
PAIRS = [(name, case) for name, cases in CASES.items() for case in cases]
PIXELIZED = [(name, case) for name, case in PAIRS if REFERENCE2_JSON["cases"][case]["source"] != "mge"]
REPORTED_TERMS = TERMS + ("log_likelihood", "log_likelihood_with_regularization")
_LENSES: dict = {}
_FITS: dict = {}


def _lens(name):
    if name not in _LENSES:
        _LENSES[name] = load_reference_lens(name)
    return _LENSES[name]


def _vectors(name, case, model):
    return np.array([reference2_vector(_lens(name), model, r) for r in reference2_records(name, case).values()])


def _evaluate(case, vectors, mixed=False) -> dict:
    """{dataset: FitResult} of one case at vectors {dataset: (V, n)}, for every dataset of the case in one compiled
    call (same V for each): A0 and B0 padded to one bucket (evaluate_block), C0 alone (evaluate)."""
    model = reference2_model(case, mixed)
    names = list(vectors)
    if len(names) == 1:
        return {names[0]: evaluate(_lens(names[0]).imaging, vectors[names[0]], model, True)}
    block = evaluate_block(stack([_lens(n).imaging for n in names]), np.stack(list(vectors.values())), model, True)
    return {n: jax.tree.map(lambda leaf: leaf[i], block) for i, n in enumerate(names)}


def _fits(name, case, mixed=False) -> dict:
    """{term, "reconstruction", "model_image": (mass models, …) numpy} of one dataset and case, fitted once per
    session together with the case's other datasets."""
    key = (case, mixed)
    if key not in _FITS:
        model = reference2_model(case)
        names = [n for n, cases in CASES.items() if case in cases]
        results = _evaluate(case, {n: _vectors(n, case, model) for n in names}, mixed)
        _FITS[key] = {}
        for n, result in results.items():
            out = {t: np.asarray(getattr(result, t)) for t in TERMS}
            out["log_likelihood_with_regularization"] = -0.5 * (
                out["chi_squared"] + out["regularization_term"] + out["noise_normalization"]
            )
            out["reconstruction"] = np.asarray(result.reconstruction)
            out["model_image"] = np.asarray(result.model_image)[:, : _lens(n).imaging.bucket.pixels]
            _FITS[key][n] = out
    return _FITS[key][name]


def _largest_relative(values, expected):
    return np.abs(values - expected).max() / np.abs(expected).max()


@pytest.mark.parametrize("name, case", PAIRS)
def test_every_term_equals_pyautolens_fp64(name, case):
    result = _fits(name, case)
    for i, (mass_model, record) in enumerate(reference2_records(name, case).items()):
        for term in REPORTED_TERMS:
            assert abs(result[term][i] - record["jax_fp64"][term]) <= 1e-4, (mass_model, term)


@pytest.mark.parametrize("name, case", PAIRS)
def test_reconstruction_and_model_image_equal_pyautolens_fp64(name, case):
    result = _fits(name, case)
    for i, (mass_model, record) in enumerate(reference2_records(name, case).items()):
        for kind in ("reconstruction", "model_image"):
            expected = reference2_array(record, "jax_fp64", kind)
            assert _largest_relative(result[kind][i], expected) <= 1e-4, (mass_model, kind)
    if case.endswith("edge0"):  # every rectangular mesh's outer ring is held at exactly 0
        edge = mesh.edge_cells(tuple(REFERENCE2_JSON["mesh_shape"]))
        assert np.all(result["reconstruction"][:, -edge.size:][:, edge] == 0.0)


@pytest.mark.parametrize("name, case", PIXELIZED)
def test_mixed_precision_within_1e_3_of_fp64_and_of_pyautolens_mixed(name, case):
    fp64, mixed = _fits(name, case), _fits(name, case, mixed=True)
    deviation = np.abs(mixed["figure_of_merit"] - fp64["figure_of_merit"])
    assert deviation.max() <= 1e-3
    assert deviation.max() > 0  # the policy really lowered precision somewhere
    for i, (mass_model, record) in enumerate(reference2_records(name, case).items()):
        for term in REPORTED_TERMS:
            assert abs(mixed[term][i] - record["jax_mp"][term]) <= 1e-3, (mass_model, term)
        for kind in ("reconstruction", "model_image"):
            expected = reference2_array(record, "jax_mp", kind)
            assert _largest_relative(mixed[kind][i], expected) <= 1e-3, (mass_model, kind)


# PyAutoLens 2026.10.26.1 (numpy backend) on A0 at bilinear_pos_edge0's true lens, as that case but with
# use_border_relocator=True: al.FitImaging(dataset, tracer, settings=al.Settings(use_border_relocator=True,
# use_positive_only_solver=True, use_edge_zeroed_pixels=True)), source al.Pixelization(mesh=al.mesh.<mesh>(shape=
# (20, 20)), regularization=al.reg.Constant(1.0)); (figure_of_merit, chi_squared). Relocation moves the bilinear
# figure of merit by 0.72.
RELOCATED_A0 = {
    "uniform": (4215.191226470192, 5665.730346127873),
    "bilinear_adapt_density": (5397.333918485682, 3303.324607602514),
    "rtu_adapt_density": (5415.436258613956, 3252.087306679292),
}


@pytest.mark.parametrize("mesh_name", RELOCATED_A0)
def test_border_relocation_on_every_mesh_equals_pyautolens(mesh_name):
    base = reference2_model("bilinear_pos_edge0")
    model = replace(base, source=replace(base.source, mesh=mesh_name),
                    settings=replace(base.settings, use_border_relocator=True))
    record = reference2_records("A0", "bilinear_pos_edge0")["true"]
    result = evaluate(_lens("A0").imaging, reference2_vector(_lens("A0"), model, record)[None], model)
    figure_of_merit, chi_squared = RELOCATED_A0[mesh_name]
    assert abs(float(result.figure_of_merit[0]) - figure_of_merit) <= 1e-4
    assert abs(float(result.chi_squared[0]) - chi_squared) <= 1e-4


# --- Gradients in the PowerLaw parameters -------------------------------------------------------------------


@pytest.mark.parametrize("case, step", [("pl_mge", 1e-6), ("pl_rect_pos_edge0", 1e-7)])
def test_gradient_in_the_power_law_parameters_matches_finite_differences(case, step):
    model = reference2_model(case)
    assert model.mass == PowerLaw()
    vectors = {n: _vectors(n, case, model) for n in ("A0", "B0")}
    vector = vectors["A0"][0]
    names = parameter_names(model)
    mass = [i for i, n in enumerate(names) if n.startswith("lens.mass.")]
    assert names[mass[-1]] == "lens.mass.slope"
    imaging = _lens("A0").imaging
    figure_of_merit = lambda v: fit(imaging, v, model).figure_of_merit  # noqa: E731
    gradient = np.asarray(jax.jit(jax.grad(figure_of_merit))(vector))[mass]
    assert np.all(np.isfinite(gradient)) and np.all(gradient != 0.0)
    # Central differences, evaluated by the case's compiled block call (A0's slots; B0's are its reference vectors).
    # A pixelized source is piecewise smooth in the lens (sub-pixels cross cell boundaries): a small step keeps the
    # kinks out of the difference, and fp64 round-off (~1e-10 of ~1e4) stays far below it.
    shifts = step * np.eye(vector.size)[mass]
    points = np.concatenate([vector + shifts, vector - shifts])
    per_call = len(vectors["A0"])
    points = np.concatenate([points, np.repeat(vector[None], -len(points) % per_call, axis=0)])
    values = np.concatenate([
        np.asarray(_evaluate(case, {"A0": chunk, "B0": vectors["B0"]})["A0"].figure_of_merit)
        for chunk in points.reshape(-1, per_call, vector.size)
    ])
    finite_differences = (values[: len(mass)] - values[len(mass) : 2 * len(mass)]) / (2 * step)
    assert np.all(np.abs(finite_differences - gradient) <= 1e-4 * np.abs(gradient)), (finite_differences, gradient)
