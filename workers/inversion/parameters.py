"""The nonlinear parameters of one model evaluation, as PyTrees (units: arcsec for centres and θE; ell_comps,
slope, shear and the regularization coefficient dimensionless), unpacked from the flat vector laid out by
model.parameter_names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp

from workers.model.description import REGULARIZATION_PARAMETERS, Model, parameter_names


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class MassParameters:
    """A mass profile's parameters by the names its description declares (MASS_PROFILES[profile].parameters,
    e.g. centre (2,), ell_comps (2,), einstein_radius (), slope ()), and ExternalShear (γ1, γ2) or None.
    Static: profile, its MASS_PROFILES name (mass.DEFLECTIONS evaluates it)."""

    profile: str = field(metadata={"static": True})
    values: dict[str, jax.Array]
    shear: jax.Array | None


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class BasisParameters:
    """Centre (2,) shared by the Gaussians of an MGE, and ell_comps (bases, 2): one pair per set."""

    centre: jax.Array
    ell_comps: jax.Array


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class LensParameters:
    """All nonlinear parameters of one model evaluation; `regularization`, a mesh's searched regularization
    parameters by name (REGULARIZATION_PARAMETERS), else None."""

    mass: MassParameters
    lens_light: BasisParameters | None
    source: BasisParameters | None
    regularization: dict[str, jax.Array] | None = None


def unpack(model: Model, vector: jax.Array) -> LensParameters:
    """LensParameters from a flat vector laid out as parameter_names(model)."""
    v = {name: vector[i] for i, name in enumerate(parameter_names(model))}

    def entry(path: str, size: int) -> jax.Array:
        """A scalar (size 0) or the stacked components path.0 … path.(size−1)."""
        return jnp.stack([v[f"{path}.{i}"] for i in range(size)]) if size else v[path]

    def pair(path: str) -> jax.Array:
        return entry(path, 2)

    def basis(prefix: str, bases: int) -> BasisParameters:
        return BasisParameters(pair(f"{prefix}.centre"), entry(f"{prefix}.ell_comps", 2 * bases).reshape(bases, 2))

    shear = jnp.stack([v["lens.shear.gamma_1"], v["lens.shear.gamma_2"]]) if model.shear else None
    values = {name: entry(f"lens.mass.{name}", size) for name, size in model.mass.parameters}
    mass = MassParameters(model.mass.name, values, shear)
    light = (
        basis("lens.light", model.lens_light.bases) if model.lens_light is not None
        else None
    )
    source = (
        basis("source", model.source.bases) if not model.pixelized else None
    )
    scheme = model.source.regularization if model.pixelized else None
    regularization = ({name: v[f"source.regularization.{name}"] for name in REGULARIZATION_PARAMETERS[scheme]}
                      if isinstance(scheme, str) else None)
    return LensParameters(mass, light, source, regularization)
