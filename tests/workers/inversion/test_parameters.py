"""The flat parameter layout a search hands the engine, with PyAutoLens's names."""

from __future__ import annotations

import numpy as np
import pytest

from workers.model.description import (
    MGEBasis, Model, ParameterError, PowerLaw, RectangularSource, parameter_names, params_from_vector,
    vector_from_params,
)
from workers.inversion.parameters import unpack

PARAMS = {
    "lens": {
        "mass": {"centre": [0.1, -0.2], "ell_comps": [0.05, 0.1], "einstein_radius": 1.6},
        "shear": {"gamma_1": 0.01, "gamma_2": -0.02},
        "light": {"centre": [0.0, 0.01], "ell_comps": [0.1, 0.2]},
    },
    "source": {"centre": [0.3, 0.4], "ell_comps": [-0.1, 0.05]},
}


def test_names_follow_pyautolens_paths_in_vector_order():
    model = Model(source=MGEBasis(), lens_light=MGEBasis())
    assert parameter_names(model) == (
        "lens.mass.centre.0", "lens.mass.centre.1", "lens.mass.ell_comps.0", "lens.mass.ell_comps.1",
        "lens.mass.einstein_radius", "lens.shear.gamma_1", "lens.shear.gamma_2",
        "lens.light.centre.0", "lens.light.centre.1", "lens.light.ell_comps.0", "lens.light.ell_comps.1",
        "source.centre.0", "source.centre.1", "source.ell_comps.0", "source.ell_comps.1",
    )


def test_a_free_regularization_coefficient_is_the_last_parameter_and_unpacks():
    model = Model(source=RectangularSource(regularization="free"), shear=False)
    assert parameter_names(model)[-1] == "source.regularization.coefficient"
    params = {"lens": {"mass": PARAMS["lens"]["mass"]}, "source": {"regularization": {"coefficient": 2.5}}}
    vector = vector_from_params(model, params)
    assert params_from_vector(model, vector) == params
    assert unpack(model, vector).regularization == {"coefficient": 2.5}
    assert unpack(Model(source=RectangularSource(regularization=2.5), shear=False), vector[:-1]).regularization is None
    adapt = Model(source=RectangularSource(mesh="bilinear_adapt_image", regularization="adapt"), shear=False)
    assert parameter_names(adapt)[-3:] == tuple(f"source.regularization.{name}" for name in (
        "inner_coefficient", "outer_coefficient", "signal_scale"))
    unpacked = unpack(adapt, np.append(vector[:-1], [0.1, 20.0, 0.5])).regularization
    assert {k: float(v) for k, v in unpacked.items()} == {"inner_coefficient": 0.1, "outer_coefficient": 20.0,
                                                          "signal_scale": 0.5}
    with pytest.raises(ValueError, match="adapt regularization follows the adapt image"):
        RectangularSource(mesh="bilinear_adapt_density", regularization="adapt")


def test_pixelized_source_without_shear_has_only_mass_parameters():
    model = Model(source=RectangularSource(), shear=False)
    assert parameter_names(model) == (
        "lens.mass.centre.0", "lens.mass.centre.1", "lens.mass.ell_comps.0", "lens.mass.ell_comps.1",
        "lens.mass.einstein_radius",
    )


def test_dict_vector_round_trip_and_unpack():
    model = Model(source=MGEBasis(), lens_light=MGEBasis())
    vector = vector_from_params(model, PARAMS)
    assert params_from_vector(model, vector) == PARAMS
    unpacked = unpack(model, vector)
    assert unpacked.mass.profile == "isothermal"
    assert set(unpacked.mass.values) == {"centre", "ell_comps", "einstein_radius"}
    assert float(unpacked.mass.values["einstein_radius"]) == 1.6
    np.testing.assert_array_equal(unpacked.mass.shear, [0.01, -0.02])
    np.testing.assert_array_equal(unpacked.source.centre, [0.3, 0.4])
    np.testing.assert_array_equal(unpacked.lens_light.ell_comps, [[0.1, 0.2]])  # (sets, 2): one set


def test_power_law_declares_its_slope_after_the_einstein_radius():
    model = Model(source=RectangularSource(), mass=PowerLaw())
    assert parameter_names(model) == (
        "lens.mass.centre.0", "lens.mass.centre.1", "lens.mass.ell_comps.0", "lens.mass.ell_comps.1",
        "lens.mass.einstein_radius", "lens.mass.slope", "lens.shear.gamma_1", "lens.shear.gamma_2",
    )
    params = {"lens": {"mass": {**PARAMS["lens"]["mass"], "slope": 2.1}, "shear": PARAMS["lens"]["shear"]}}
    vector = vector_from_params(model, params)
    assert params_from_vector(model, vector) == params
    mass = unpack(model, vector).mass
    assert mass.profile == "power_law" and float(mass.values["slope"]) == 2.1
    np.testing.assert_array_equal(mass.values["centre"], [0.1, -0.2])


def test_missing_parameter_is_named():
    model = Model(source=MGEBasis())
    params = {"lens": {"mass": {"centre": [0, 0], "ell_comps": [0, 0]}, "shear": {"gamma_1": 0, "gamma_2": 0}},
              "source": {"centre": [0, 0], "ell_comps": [0, 0]}}
    with pytest.raises(ParameterError, match="missing parameter lens.mass.einstein_radius"):
        vector_from_params(model, params)
    params["lens"]["mass"]["einstein_radius"] = 1.0
    params["source"]["centre"] = [0.0]
    with pytest.raises(ParameterError, match="source.centre: expected 2 values, got 1"):
        vector_from_params(model, params)
