"""fit.toml: every key documented in the README parses; every mistake names the file and the key."""

from __future__ import annotations

import pytest

from workers.config import ConfigError, load_config, parse_config
from workers.model.grids import RadialOverSampling
from workers.model.description import Isothermal, MGEBasis, PowerLaw, RectangularSource, parameter_names
from workers.pipeline import Positions
from workers.priors import LogUniformPrior, UniformPrior, default_prior, prior_transform

FULL = """
[dataset]
mask_radius = 2.5
over_sample_size_lp = { sub_sizes = [8, 4, 2], radii = [0.3, 0.6] }
over_sample_size_pixelization = 2

[lens.mass]
type = "isothermal"

[lens.shear]

[lens.light]
type = "mge"
gaussians = 10
sigma_min = 0.02

[source]
type = "rectangular"
shape = [24, 20]
regularization = 2.5

[settings]
use_mixed_precision = true
use_positive_only_solver = false
use_border_relocator = true
use_edge_zeroed_pixels = false
no_regularization_add_to_curvature_diag_value = 1e-4
"""


def test_every_key_parses(tmp_path):
    path = tmp_path / "fit.toml"
    path.write_text(FULL)
    config = load_config(path)
    assert config.dataset.mask_radius == 2.5
    assert config.dataset.over_sample_size_lp == RadialOverSampling((8, 4, 2), (0.3, 0.6))
    assert config.dataset.over_sample_size_pixelization == 2
    model = config.model
    assert model.shear and model.lens_light == MGEBasis(10, 0.02)
    assert model.source == RectangularSource((24, 20), 2.5)
    s = model.settings
    assert (s.use_mixed_precision, s.use_positive_only_solver, s.use_border_relocator, s.use_edge_zeroed_pixels) == (
        True, False, True, False)
    assert s.no_regularization_add_to_curvature_diag_value == 1e-4
    assert parse_config(config.to_dict()).model == model


@pytest.mark.parametrize("mesh", ["uniform", "bilinear_adapt_density", "rtu_adapt_density"])
def test_power_law_and_every_mesh_parse_and_round_trip(mesh):
    raw = {"lens": {"mass": {"type": "power_law"}, "shear": {}},
           "source": {"type": "rectangular", "shape": [16, 16], "mesh": mesh}}
    config = parse_config(raw)
    assert config.model.mass == PowerLaw() and config.model.source == RectangularSource((16, 16), 1.0, mesh)
    assert config.to_dict()["lens"]["mass"] == {"type": "power_law"}
    assert config.to_dict()["source"]["mesh"] == mesh
    assert parse_config(config.to_dict()).model == config.model
    assert "lens.mass.slope" in parameter_names(config.model)


def test_a_pipeline_second_stage_takes_an_adaptive_mesh_too():
    raw = {"lens": {"mass": {"type": "power_law"}}, "search": {},
           "stages": [{"name": "source_pix", "source": {"type": "rectangular", "mesh": "bilinear_adapt_density"}}]}
    config = parse_config(raw)
    [stage] = config.stages
    assert stage.model.source == RectangularSource((20, 20), 1.0, "bilinear_adapt_density")
    assert parse_config(config.to_dict()).stages == config.stages


@pytest.mark.parametrize("mesh", ["bilinear_adapt_image", "rtu_adapt_image"])
def test_an_adapt_image_mesh_is_a_later_stages_with_its_weights(mesh):
    raw = {"lens": {"mass": {"type": "power_law"}}, "search": {},
           "stages": [{"name": "source_pix", "source": {"type": "rectangular", "mesh": mesh, "shape": [16, 16],
                                                        "weight_power": 2.0, "weight_floor": 0.05}}]}
    config = parse_config(raw)
    [stage] = config.stages
    assert stage.model.source == RectangularSource((16, 16), 1.0, mesh, 2.0, 0.05)
    assert stage.model.source.adapts_to_image
    assert parse_config(config.to_dict()).stages == config.stages
    plain = {"name": "source_pix", "source": {"type": "rectangular", "mesh": mesh}}
    defaults = parse_config({**raw, "stages": [plain]})
    assert (defaults.stages[0].model.source.weight_power, defaults.stages[0].model.source.weight_floor) == (1.0, 0.0)
    with pytest.raises(ConfigError, match=f"source.mesh: the '{mesh}' mesh follows the adapt image of the stage"):
        parse_config({"source": {"type": "rectangular", "mesh": mesh}})


def test_the_slope_prior_is_pyautolens_default_and_overridable():
    assert default_prior("lens.mass.slope") == UniformPrior(1.5, 3.0)  # autogalaxy/config/priors/mass/total
    config = parse_config({"lens": {"mass": {"type": "power_law"}},
                           "priors": {"lens.mass.slope": {"type": "uniform", "lower": 1.8, "upper": 2.2}}})
    transform = prior_transform(config.model, config.priors)
    assert transform.priors[transform.names.index("lens.mass.slope")] == UniformPrior(1.8, 2.2)
    with pytest.raises(ConfigError, match="lens.mass.slope"):
        parse_config({"priors": {"lens.mass.slope": {"type": "uniform", "lower": 1.8, "upper": 2.2}}})


def test_a_free_regularization_coefficient_is_a_parameter_with_pyautolens_prior():
    config = parse_config({"source": {"type": "rectangular", "regularization": "free"}})
    assert config.model.source.regularization == "free"
    assert parameter_names(config.model)[-1] == "source.regularization.coefficient"
    assert default_prior("source.regularization.coefficient") == LogUniformPrior(1e-6, 1e6)  # reg.Constant's
    assert parse_config(config.to_dict()) == config
    for value, message in [("searched", 'must be a number, "free" or "adapt", got \'searched\''),
                           (0.0, "must be > 0, got 0.0"), (-1.0, "must be > 0, got -1.0")]:
        with pytest.raises(ConfigError, match=f"source.regularization: {message}"):
            parse_config({"source": {"type": "rectangular", "regularization": value}})
    with pytest.raises(ConfigError, match='source.regularization: "adapt" follows the adapt image: it needs an '
                       "\\*_adapt_image mesh, not 'bilinear_adapt_density'"):
        parse_config({"source": {"type": "rectangular", "mesh": "bilinear_adapt_density", "regularization": "adapt"}})
    with pytest.raises(ConfigError, match="log_uniform prior's lower must be > 0"):
        parse_config({"source": {"type": "rectangular", "regularization": "free"}, "priors": {
            "source.regularization.coefficient": {"type": "log_uniform", "lower": 0.0, "upper": 10.0}}})


def test_defaults_are_pyautolens_defaults():
    config = parse_config({})
    assert config.model.source == MGEBasis(gaussians=30, sigma_min=1e-4)
    s = config.model.settings
    assert (s.use_mixed_precision, s.use_positive_only_solver, s.use_border_relocator, s.use_edge_zeroed_pixels) == (
        False, True, False, True)
    assert s.no_regularization_add_to_curvature_diag_value == 1e-3
    assert not config.model.shear and config.model.mass == Isothermal()


@pytest.mark.parametrize(
    "text, message",
    [
        ("[settings]\nuse_mixed_precison = true", "fit.toml: settings.use_mixed_precison: unknown key"),
        ("[dataset]\nmask_radius = -1", "fit.toml: dataset.mask_radius: must be > 0"),
        ("[source]\ntype = \"delaunay\"", "fit.toml: source.type: must be \"mge\" or \"rectangular\""),
        ("[source]\ntype = \"rectangular\"\nshape = [2, 20]", "fit.toml: source.shape: a rectangular mesh needs at least 3×3"),
        ("[lens.mass]\ntype = \"nfw\"", "fit.toml: lens.mass.type: must be one of ['isothermal', 'power_law']"),
        ("[lens.mass]\ntype = \"power_law\"\nslope = 2.0", "fit.toml: lens.mass.slope: unknown key"),
        ("[source]\ntype = \"rectangular\"\nmesh = \"delaunay\"",
         "fit.toml: source.mesh: must be one of uniform, bilinear_adapt_density, rtu_adapt_density, "
         "bilinear_adapt_image, rtu_adapt_image, got 'delaunay'"),
        ("[source]\ntype = \"rectangular\"\nweight_power = 2.0",
         "fit.toml: source.mesh: weight_power and weight_floor belong to the *_adapt_image meshes, not 'uniform'"),
        ("[source]\ntype = \"rectangular\"\nmesh = \"rtu_adapt_density\"\nshape = [20, 24]",
         "fit.toml: source.shape: the rtu_adapt_density mesh is square (ny = nx), got [20, 24]"),
        ("[source]\ntype = \"mge\"\nmesh = \"uniform\"", "fit.toml: source.mesh: unknown key"),
        ("[settings]\nuse_positive_only_solver = 1", "fit.toml: settings.use_positive_only_solver: must be true or false"),
        ("[dataset\n", "fit.toml: not valid TOML"),
        ("[search]\n[[stages]]\nname = \"pix\"\npositions = { factor = -1.0 }",
         "fit.toml: stages[0].positions.factor: must be a number ≥ 0, got -1.0"),
        ("[search]\n[[stages]]\nname = \"pix\"\npositions = { threshold = 0.2 }",
         "fit.toml: stages[0].positions.threshold: unknown key"),
    ],
)
def test_mistakes_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "fit.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert message in str(error.value).replace(str(tmp_path) + "/", "")


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_the_readme_fit_toml_examples_parse_with_the_defaults_they_state(tmp_path):
    import re
    import tomllib
    from pathlib import Path

    from workers.config import FitConfig, SearchOptions

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    basic, search, gradient, pipeline_toml, real = re.findall(r"```toml\n(.*?)```", readme, re.S)
    config = parse_config(tomllib.loads(basic), "README")
    default = FitConfig()
    assert config.dataset == default.dataset and config.model.settings == default.model.settings
    assert config.model.lens_light == config.model.source == default.model.source and config.model.shear
    pipeline = parse_config(tomllib.loads(search), "README")
    assert pipeline.search == SearchOptions()  # the values shown are the defaults
    assert parse_config(tomllib.loads(gradient), "README").search == SearchOptions(type="gradient")
    [stage] = pipeline.stages
    assert stage.model.source == RectangularSource((20, 20), 1.0) and stage.search is None
    slam = parse_config(tomllib.loads(pipeline_toml), "README")  # the recommended survey pipeline
    assert [s.name for s in slam.pipeline] == ["source_lp", "source_pix", "light_lp", "mass_total"]
    assert slam.stages[0].model.source == RectangularSource((20, 20), 1.0, "bilinear_adapt_density")
    assert slam.stages[1].model.source == slam.stages[2].model.source == RectangularSource(
        (20, 20), 1.0, "bilinear_adapt_image")
    assert slam.stages[1].fixed == ("lens.mass", "lens.shear")
    assert slam.stages[2].model.mass.name == "power_law" and slam.stages[2].fixed == ("lens.light",)
    assert slam.stages[0].positions == slam.stages[2].positions == Positions(3.0, 0.2)
    assert pipeline.priors["lens.mass.centre.1"].sigma == 0.05
    recipe = parse_config(tomllib.loads(real), "README")  # the real-data recipe
    assert recipe.model.lens_light == MGEBasis(20, 1e-4, bases=2) and recipe.search == SearchOptions()
    assert "lens.light.ell_comps.3" in parameter_names(recipe.model)
    assert recipe.priors["lens.light.ell_comps.3"].upper == 0.5 and recipe.priors["source.ell_comps.0"].lower == -0.7


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"dataset": {"mask_radius": NAN}}, "dataset.mask_radius: must be a finite number, got nan"),
        ({"dataset": {"mask_radius": INF}}, "dataset.mask_radius: must be a finite number, got inf"),
        ({"dataset": {"max_image_side": 100_000}}, "dataset.max_image_side: must be an integer >= 8 and <= 4096"),
        ({"dataset": {"over_sample_size_lp": 1000}}, "dataset.over_sample_size_lp: must be an integer >= 1 and <= 32"),
        ({"dataset": {"over_sample_size_lp": {"sub_sizes": [8, 4], "radii": [NAN]}}},
         "dataset.over_sample_size_lp.radii: must be a finite number, got nan"),
        ({"dataset": {"over_sample_size_lp": {"sub_sizes": [8, 4, 2], "radii": [0.6, 0.3]}}},
         "dataset.over_sample_size_lp.radii: must increase"),
        ({"source": {"sigma_min": NAN}}, "source.sigma_min: must be a finite number, got nan"),
        ({"source": {"sigma_min": INF}}, "source.sigma_min: must be a finite number, got inf"),
        ({"source": {"gaussians": 1_000_000}}, "source.gaussians: must be an integer >= 1 and <= 500"),
        ({"lens": {"light": {"bases": 0}}}, "lens.light.bases: must be an integer >= 1 and <= 10"),
        ({"lens": {"light": {"sigma_min": -INF}}}, "lens.light.sigma_min: must be a finite number, got -inf"),
        ({"source": {"type": "rectangular", "regularization": NAN}},
         "source.regularization: must be a finite number, got nan"),
        ({"source": {"type": "rectangular", "regularization": INF}},
         "source.regularization: must be a finite number, got inf"),
        ({"source": {"type": "rectangular", "shape": [1000, 1000]}},
         "source.shape: a rectangular mesh has at most 4096 cells"),
        ({"settings": {"no_regularization_add_to_curvature_diag_value": NAN}},
         "settings.no_regularization_add_to_curvature_diag_value: must be a finite number, got nan"),
        ({"search": {"f_live": NAN}}, "search.f_live: must be a finite number, got nan"),
        ({"search": {"f_live": INF}}, "search.f_live: must be a finite number, got inf"),
        ({"search": {"n_live": 1_000_000_000}}, "search.n_live: must be an integer >= 2 and <= 100000"),
        ({"search": {"max_samples": 1_000_000_000}}, "search.max_samples: must be an integer >= 1 and <= 100000"),
        ({"search": {"n_batch": 10**9}}, "search.n_batch: must be an integer >= 1 and <= 10000"),
        ({"search": {"n_eff": INF}}, "search.n_eff: must be a finite number, got inf"),
        ({"search": {"network_layers": [10**9]}}, "search.network_layers: must be a list of positive integers"),
        ({"search": {"n_networks": 10**6}}, "search.n_networks: must be an integer >= 1 and <= 64"),
    ],
)
def test_absurd_values_are_refused_with_the_key_and_the_range(raw, message):
    with pytest.raises(ConfigError) as error:
        parse_config(raw, "fit.toml")
    assert f"fit.toml: {message}" in str(error.value)


def test_the_largest_allowed_values_parse():
    config = parse_config({"dataset": {"max_image_side": 4096, "over_sample_size_lp": 32},
                           "source": {"type": "rectangular", "shape": [64, 64]},
                           "search": {"n_live": 100_000, "max_samples": 100_000}})
    assert config.dataset.max_image_side == 4096 and config.model.source.pixels == 4096
    assert (config.search.n_live, config.search.max_samples) == (100_000, 100_000)
