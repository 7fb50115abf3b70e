"""The nonlinear parameters of a lens model, as a PyTree, and the flat-vector layout a search uses.

Flattened names follow PyAutoLens's model paths with an index suffix for vectors, e.g.
`lens.mass.centre.0` (y), `lens.mass.centre.1` (x), `lens.mass.ell_comps.0`, `lens.mass.einstein_radius`,
`lens.shear.gamma_1`, `lens.light.centre.0`, `source.ell_comps.1`. Units: arcsec for centres and θE;
ell_comps and shear are dimensionless.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp
import numpy as np

from .model import MGEBasis, Model, ParameterError


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class MassParameters:
    """Isothermal centre (2,), ell_comps (2,), einstein_radius (); shear (γ1, γ2) or None."""

    centre: jax.Array
    ell_comps: jax.Array
    einstein_radius: jax.Array
    shear: jax.Array | None


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class BasisParameters:
    """Centre (2,) and ell_comps (2,) shared by the Gaussians of an MGE basis."""

    centre: jax.Array
    ell_comps: jax.Array


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class LensParameters:
    """All nonlinear parameters of one model evaluation."""

    mass: MassParameters
    lens_light: BasisParameters | None
    source: BasisParameters | None


def _entries(model: Model) -> list[tuple[str, int]]:
    """(nested path, size) of every parameter in vector order; size 0 marks a scalar."""
    entries = [("lens.mass.centre", 2), ("lens.mass.ell_comps", 2), ("lens.mass.einstein_radius", 0)]
    if model.shear:
        entries += [("lens.shear.gamma_1", 0), ("lens.shear.gamma_2", 0)]
    if model.lens_light is not None:
        entries += [("lens.light.centre", 2), ("lens.light.ell_comps", 2)]
    if isinstance(model.source, MGEBasis):
        entries += [("source.centre", 2), ("source.ell_comps", 2)]
    return entries


def parameter_names(model: Model) -> tuple[str, ...]:
    """Flattened parameter names in vector order."""
    names: list[str] = []
    for path, size in _entries(model):
        names += [f"{path}.{i}" for i in range(size)] if size else [path]
    return tuple(names)


def unpack(model: Model, vector: jax.Array) -> LensParameters:
    """LensParameters from a flat vector laid out as parameter_names(model)."""
    v = {name: vector[i] for i, name in enumerate(parameter_names(model))}

    def pair(path: str) -> jax.Array:
        return jnp.stack([v[f"{path}.0"], v[f"{path}.1"]])

    shear = jnp.stack([v["lens.shear.gamma_1"], v["lens.shear.gamma_2"]]) if model.shear else None
    mass = MassParameters(pair("lens.mass.centre"), pair("lens.mass.ell_comps"), v["lens.mass.einstein_radius"], shear)
    light = (
        BasisParameters(pair("lens.light.centre"), pair("lens.light.ell_comps"))
        if model.lens_light is not None
        else None
    )
    source = (
        BasisParameters(pair("source.centre"), pair("source.ell_comps")) if not model.pixelized else None
    )
    return LensParameters(mass, light, source)


def vector_from_params(model: Model, params: dict) -> np.ndarray:
    """Flat vector from a nested params.json-style dict; raises ParameterError naming the path."""
    out = []
    for path, size in _entries(model):
        node = params
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node:
                raise ParameterError(f"missing parameter {path}")
            node = node[key]
        values = np.atleast_1d(np.asarray(node, dtype=float))
        if values.size != max(size, 1):
            raise ParameterError(f"parameter {path}: expected {max(size, 1)} values, got {values.size}")
        out.extend(values.tolist())
    return np.asarray(out, dtype=np.float64)


def params_from_vector(model: Model, vector: np.ndarray) -> dict:
    """Nested params.json-style dict from a flat vector."""
    nested: dict = {}
    i = 0
    for path, size in _entries(model):
        *parents, leaf = path.split(".")
        node = nested
        for key in parents:
            node = node.setdefault(key, {})
        if size:
            node[leaf] = [float(x) for x in vector[i : i + size]]
            i += size
        else:
            node[leaf] = float(vector[i])
            i += 1
    return nested
