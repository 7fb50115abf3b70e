"""`lensfleet simulate`: a deterministic synthetic survey whose catalog and truth files say what each lens is,
and whose lenses the engine fits to the noise level at their true parameters."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from astropy.io import fits

from scheduler.cli import main
from storage.catalog import read_catalog
from storage.datasets import load_imaging
from workers.config import load_config
from workers.survey import IMAGINGS, draw_lens, simulate_survey


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    out = tmp_path_factory.mktemp("survey")
    assert main(["simulate", "4", "--out", str(out), "--seed", "7"]) == 0
    return out


def test_the_command_writes_catalog_config_datasets_and_truths(survey, capsys):
    catalog = read_catalog(str(survey / "catalog.ecsv"))
    assert catalog.ids == [f"lens-{i:05d}" for i in range(4)]
    load_config(survey / "fit.toml")  # the survey's config is a valid fit.toml
    for entry in catalog.entries:
        for name in ("image", "noise_map", "psf"):
            assert (survey / "lenses" / entry.id / f"{name}.fits").is_file()
        truth = json.loads((survey / "lenses" / entry.id / "truth.json").read_text())
        first = truth["sources"][0]
        assert entry.params == {
            "lens": {"mass": {k: truth["mass"][k] for k in ("centre", "ell_comps", "einstein_radius")},
                     "shear": {"gamma_1": truth["shear"]["gamma_1"], "gamma_2": truth["shear"]["gamma_2"]}},
            "source": {"centre": first["centre"], "ell_comps": first["ell_comps"]},
        }
        assert (entry.pixel_scale, entry.mask_radius) == (truth["pixel_scale"], truth["mask_radius"])
        data = load_imaging(entry.path, entry.id)  # the pixel scale is in the FITS header too
        assert data.pixel_scale == entry.pixel_scale and data.image.shape == tuple(truth["shape_native"])
        assert data.psf.shape == tuple(truth["psf_shape"]) and abs(data.psf.sum() - 1) < 1e-12


def test_prints_where_everything_is(tmp_path, capsys):
    assert main(["simulate", "1", "--out", str(tmp_path / "s")]) == 0
    printed = capsys.readouterr().out
    for where in ("catalog.ecsv", "fit.toml", "lenses"):
        assert str(tmp_path / "s") in printed and where in printed
    with pytest.raises(SystemExit) as exited:  # argparse refuses it, exit status 2
        main(["simulate", "0", "--out", str(tmp_path / "t")])
    assert exited.value.code == 2


def test_a_survey_is_a_pure_function_of_its_seed_and_a_prefix_of_a_larger_one(survey, tmp_path):
    simulate_survey(5, tmp_path, seed=7)
    for i in range(4):
        again, first = tmp_path / "lenses" / f"lens-{i:05d}", survey / "lenses" / f"lens-{i:05d}"
        assert (again / "truth.json").read_text() == (first / "truth.json").read_text()
        for f in ("image.fits", "noise_map.fits", "psf.fits"):
            assert np.array_equal(fits.getdata(again / f), fits.getdata(first / f))
    assert draw_lens(8, 0) != draw_lens(7, 0)


def test_lenses_vary_across_the_stated_ranges():
    truths = [draw_lens(0, i) for i in range(60)]
    assert {(t.shape_native, t.pixel_scale, t.psf_shape) for t in truths} == {
        (k.shape, k.pixel_scale, (k.psf_size, k.psf_size)) for k in IMAGINGS}
    assert all(k.psf_size % 2 == 1 for k in IMAGINGS) and len({k.psf_size for k in IMAGINGS}) == 3
    assert np.ptp([t.psf_sigma for t in truths]) > 0.04
    assert {len(t.sources) for t in truths} == {1, 2}
    radii = [t.mass["einstein_radius"] for t in truths]
    assert 0.8 <= min(radii) < 1.0 and 1.6 < max(radii) <= 1.8
    assert np.ptp([t.shear["gamma_1"] for t in truths]) > 0.05
    for t in truths:  # the lensed images stay inside the mask, the mask inside the image
        assert t.mass["einstein_radius"] + 0.6 < t.mask_radius < min(t.shape_native) * t.pixel_scale / 2


@pytest.mark.parametrize("kind", ["survey", "power_law_survey"])  # SIE + shear; PowerLaw + shear + lens light
def test_a_single_source_lens_is_fitted_to_the_noise_at_its_true_parameters(kind, request):
    from workers.evaluate import fit_lens

    survey = request.getfixturevalue(kind)
    config = load_config(survey / "fit.toml")
    catalog = read_catalog(str(survey / "catalog.ecsv"))
    entry = next(e for e in catalog.entries
                 if len(json.loads((survey / "lenses" / e.id / "truth.json").read_text())["sources"]) == 1)
    config = dataclasses.replace(config, dataset=dataclasses.replace(config.dataset, mask_radius=entry.mask_radius))
    fit = fit_lens(load_imaging(entry.path, entry.id), config, entry.params)
    reduced_chi_squared = float(fit.result.chi_squared) / fit.imaging.bucket.pixels
    assert 0.9 < reduced_chi_squared < 1.1


@pytest.fixture(scope="module")
def power_law_survey(tmp_path_factory):
    out = tmp_path_factory.mktemp("power_law_survey")
    assert main(["simulate", "3", "--out", str(out), "--seed", "3", "--mass", "power_law", "--lens-light"]) == 0
    return out


def test_a_power_law_survey_with_lens_light_keeps_the_default_draws_and_says_what_it_adds(power_law_survey, tmp_path):
    config = load_config(power_law_survey / "fit.toml")
    assert config.model.mass.name == "power_law" and config.model.lens_light is not None
    default = simulate_survey(1, tmp_path, seed=3)
    for entry in read_catalog(str(power_law_survey / "catalog.ecsv")).entries:
        truth = json.loads((power_law_survey / "lenses" / entry.id / "truth.json").read_text())
        assert truth["mass"]["type"] == "PowerLaw" and 1.8 <= truth["mass"]["slope"] <= 2.2
        light = truth["lens_light"]
        assert light["type"] == "Sersic" and light["centre"] == truth["mass"]["centre"]
        assert entry.params["lens"]["mass"]["slope"] == truth["mass"]["slope"]
        assert entry.params["lens"]["light"] == {"centre": light["centre"], "ell_comps": light["ell_comps"]}
    # lens 0 is the default survey's lens 0 plus a slope and a lens light
    first = json.loads((power_law_survey / "lenses" / "lens-00000" / "truth.json").read_text())
    plain = json.loads((default.folder / "lenses" / "lens-00000" / "truth.json").read_text())
    assert "lens_light" not in plain and plain["mass"]["type"] == "Isothermal"
    assert {k: v for k, v in first["mass"].items() if k not in ("type", "slope")} == {
        k: v for k, v in plain["mass"].items() if k != "type"}
    assert {k: v for k, v in first.items() if k not in ("mass", "lens_light")} == {
        k: v for k, v in plain.items() if k != "mass"}


def test_a_two_clump_survey_gives_every_lens_two_sources_and_keeps_every_other_draw():
    for i in range(8):
        plain, two = draw_lens(4, i), draw_lens(4, i, two_clump=True)
        assert len(two.sources) == 2 and two.sources[0] == plain.sources[0]
        if len(plain.sources) == 2:
            assert two == plain  # a lens drawn with two clumps is unchanged
        assert {k: v for k, v in dataclasses.asdict(two).items() if k != "sources"} == {
            k: v for k, v in dataclasses.asdict(plain).items() if k != "sources"}
        second = two.sources[1]
        offset = np.hypot(*np.subtract(second["centre"], two.sources[0]["centre"]))
        assert 0.1 <= offset <= 0.4 and 0.1 <= second["intensity"] <= 0.3
    assert any(len(draw_lens(4, i).sources) == 1 for i in range(8))  # the option changed some lenses


def test_light_just_outside_the_image_blurs_into_it():
    # A compact light 0.2″ past the right edge of a 20×20 image (PSF σ 0.1″): its own profile is negligible inside
    # the image, its blurred light is not, as in PyAutoLens's simulator (it pads the image by the PSF, then trims).
    from workers.inversion.parameters import MassParameters
    from workers.inversion.simulate import SersicProfile, simulate_imaging
    import jax.numpy as jnp

    mass = MassParameters("isothermal", {"centre": jnp.zeros(2), "ell_comps": jnp.zeros(2),
                                         "einstein_radius": jnp.asarray(0.1)}, jnp.zeros(2))
    outside = SersicProfile((0.0, 1.15), (0.0, 0.0), 50.0, 0.02, 0.5)
    sim = simulate_imaging((20, 20), 0.1, mass, [], lens_light=outside, psf_size=11, exposure_time=1e6, seed=0)
    edge = sim.image[8:12, -1] / sim.noise_map[8:12, -1]
    assert (edge > 10).all(), edge
    assert np.abs(sim.image[:, 0] / sim.noise_map[:, 0]).max() < 5
