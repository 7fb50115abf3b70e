"""`lensfleet show`: one lens's picture drawn from a result store equals the picture of the same fit made in
memory — data from the catalog's FITS, model and residuals from the store, the source from the stored
reconstruction (MGE evaluated on a grid; a pixelized source on its stored mesh)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from scheduler.cli import main
from storage.catalog import read_catalog
from storage.datasets import load_imaging
from storage.schema import TERMS, Status, result_specs
from storage.store import ResultStore
from workers.config import load_config, parse_config
from workers.datasets import fit_mask
from workers.evaluate import fit_lens, source_picture
from workers.model.description import parameter_names
from workers.model.grids import native
from workers.show import stored_fit
from workers.survey import simulate_survey

SEED = 11  # lens 0 of this survey is 60×60 at 0.1″ with one Sersic source: quick to fit


@pytest.fixture(scope="module")
def lens(tmp_path_factory):
    survey = simulate_survey(1, tmp_path_factory.mktemp("survey"), seed=SEED)
    entry = read_catalog(str(survey.catalog)).entries[0]
    return survey, entry, load_imaging(entry.path, entry.id)


def store_of(url: str, survey, entry, data, config, with_catalog: bool):
    """A store holding `entry` fitted at its true parameters (as an actor commits it) and one INVALID lens."""
    config = dataclasses.replace(config, dataset=dataclasses.replace(config.dataset, mask_radius=entry.mask_radius))
    fit = fit_lens(data, config, entry.params)
    model = config.model
    r = fit.result
    mask = fit_mask(data, entry.mask_radius)
    used = int((~mask).sum())
    size = model.n_linear
    row = {t: np.array([float(getattr(r, t)), np.nan]) for t in TERMS}
    row["parameters"] = np.stack([fit.vector[None], np.full_like(fit.vector[None], np.nan)])
    row["evaluation_figure_of_merit"] = np.array([[float(r.figure_of_merit)], [np.nan]])
    row["evaluation_log_likelihood"] = np.array([[float(r.log_likelihood)], [np.nan]])
    row["reconstruction"] = np.stack([np.asarray(r.reconstruction), np.full(size, np.nan)])
    row["reconstruction_size"] = np.array([size, 0])
    model_slim = np.asarray(r.model_image)[:used]
    model_image = native(model_slim, mask)
    residuals = native((data.image[~mask] - model_slim) / data.noise_map[~mask], mask)
    row["model_image"] = np.stack([model_image, np.full(mask.shape, np.nan)])
    row["normalized_residuals"] = np.stack([residuals, np.full(mask.shape, np.nan)])
    row["image_shape"] = np.array([mask.shape, (0, 0)])
    if model.pixelized:
        row["mesh_centres"] = np.stack([np.asarray(r.mesh_centres), np.full((size, 2), np.nan)])
    attrs = {"parameter_names": list(parameter_names(model))} | ({"catalog": str(survey.catalog)} if with_catalog else {})
    store = ResultStore.create(url, [entry.id, "broken"], 2, result_specs(mask.shape, len(fit.vector), 1, size,
                               model.pixelized), config.to_dict(), "hash", attrs=attrs)
    store.write_block(0, row, np.array([Status.DONE, Status.INVALID]), np.ones(2, np.int32),
                      ["", "dataset broken: psf.fits: PSF sums to zero"], np.ones(2))
    return fit, model_image, residuals, config


def test_an_mge_fit_is_drawn_from_the_store(lens, tmp_path, capsys):
    survey, entry, data = lens
    url = str(tmp_path / "mge.zarr")
    fit, model_image, residuals, config = store_of(url, survey, entry, data, load_config(survey.config), True)
    shown = stored_fit(url, entry.id)
    mask = fit_mask(data, entry.mask_radius)
    np.testing.assert_array_equal(shown.data, native(data.image[~mask], mask))
    np.testing.assert_array_equal(shown.model_image, model_image)
    np.testing.assert_array_equal(shown.normalized_residuals, residuals)
    expected = source_picture(fit, config.model)
    np.testing.assert_allclose(shown.source.image, expected.image, rtol=1e-12, atol=1e-12 * np.abs(expected.image).max())
    assert shown.source.extent == pytest.approx(expected.extent) and not shown.source.mesh
    assert shown.scalars["reduced_chi_squared"] == pytest.approx(float(fit.result.chi_squared) / (~mask).sum())

    png = tmp_path / "fit.png"
    assert main(["show", url, entry.id, "-o", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 20_000
    assert str(png) in capsys.readouterr().out
    assert main(["show", url, "broken", "-o", str(tmp_path / "b.png")]) == 2  # INVALID: nothing to show
    assert "is INVALID: dataset broken: psf.fits: PSF sums to zero" in capsys.readouterr().err
    assert main(["show", url, "nobody", "-o", str(tmp_path / "n.png")]) == 2


def test_a_pixelized_fit_is_drawn_on_its_stored_mesh_and_the_catalog_can_be_given(lens, tmp_path, capsys):
    survey, entry, data = lens
    raw = load_config(survey.config).to_dict() | {"source": {"type": "rectangular", "shape": [8, 8],
                                                             "regularization": 1.0}}
    url = str(tmp_path / "rect.zarr")
    fit, _, _, config = store_of(url, survey, entry, data, parse_config(raw), with_catalog=False)
    png = tmp_path / "rect.png"
    assert main(["show", url, entry.id, "-o", str(png)]) == 2  # the store does not say where its data are
    assert "--catalog" in capsys.readouterr().err
    assert main(["show", url, entry.id, "-o", str(png), "--catalog", str(survey.catalog)]) == 0
    assert png.stat().st_size > 20_000
    shown = stored_fit(url, entry.id, catalog=str(survey.catalog))
    expected = source_picture(fit, config.model)
    assert shown.source.mesh and shown.source.image.shape == (8, 8)
    np.testing.assert_array_equal(shown.source.image, expected.image)
    assert shown.source.extent == pytest.approx(expected.extent)


def test_a_lens_light_fit_shows_the_lens_light_model_and_the_data_minus_it(tmp_path, capsys):
    survey = simulate_survey(1, tmp_path / "survey", seed=SEED, lens_light=True)
    entry = read_catalog(str(survey.catalog)).entries[0]
    data = load_imaging(entry.path, entry.id)
    url = str(tmp_path / "light.zarr")
    config = load_config(survey.config)
    assert config.model.lens_light is not None and config.model.settings.use_positive_only_solver
    fit, model_image, _, config = store_of(url, survey, entry, data, config, True)
    shown = stored_fit(url, entry.id)
    inside = np.isfinite(model_image)
    assert np.array_equal(np.isfinite(shown.lens_light), inside)
    # model = lens light + source, every amplitude >= 0 (positive-only): what is left after the lens light is the
    # lensed source, >= 0 everywhere and most of the light at the Einstein ring, while the centre is lens light
    source_part = model_image - shown.lens_light
    assert source_part[inside].min() > -1e-8 * np.nanmax(model_image) and source_part[inside].sum() > 0
    ny, nx = model_image.shape
    centre = (ny // 2, nx // 2)
    assert shown.lens_light[centre] > 0.9 * model_image[centre]
    png = tmp_path / "light.png"
    assert main(["show", url, entry.id, "-o", str(png)]) == 0 and png.stat().st_size > 20_000
