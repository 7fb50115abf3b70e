"""The static description of a lens model (profiles, source, solver settings) and its parameter layout.

The flat layout a search hands the engine uses PyAutoLens's model paths with an index suffix for vectors:
`lens.mass.centre.0` (y), `lens.mass.centre.1` (x), `lens.mass.ell_comps.0`, `lens.mass.einstein_radius`,
`lens.shear.gamma_1`, `lens.light.centre.0`, `source.ell_comps.1`. A mass profile declares its own parameters
(`parameters`: (name, size) with size 0 for a scalar) and is found by its fit.toml name in MASS_PROFILES, so a
new profile is one class and one registry entry here (and its deflections in the engine's mass registry).

Pure Python (no JAX): the driver and the config file use it too. A compiled likelihood is keyed by a Model
(it is hashable), the shape bucket of the data and the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .settings import Settings


class ParameterError(ValueError):
    """A parameter the model needs is missing or malformed in a params mapping."""


@dataclass(frozen=True)
class Isothermal:
    """PyAutoLens's Isothermal (SIE): centre (y, x) and einstein_radius θE in arcsec, ell_comps."""

    name: ClassVar[str] = "isothermal"
    parameters: ClassVar[tuple[tuple[str, int], ...]] = (("centre", 2), ("ell_comps", 2), ("einstein_radius", 0))


@dataclass(frozen=True)
class PowerLaw:
    """PyAutoLens's PowerLaw (elliptical power law, EPL): centre (y, x) and einstein_radius θE in arcsec,
    ell_comps, and the logarithmic density slope γ (2 is isothermal)."""

    name: ClassVar[str] = "power_law"
    parameters: ClassVar[tuple[tuple[str, int], ...]] = (
        ("centre", 2), ("ell_comps", 2), ("einstein_radius", 0), ("slope", 0),
    )


MASS_PROFILES: dict[str, type] = {profile.name: profile for profile in (Isothermal, PowerLaw)}
MassProfile = Isothermal | PowerLaw

# PyAutoArray's rectangular meshes by their fit.toml names: RectangularUniform, RectangularBilinearAdaptDensity
# (rank-CDF adaptive) and RectangularRTUAdaptDensity (kernel-CDF adaptive). The adaptive ones are square.
MESHES = ("uniform", "bilinear_adapt_density", "rtu_adapt_density", "bilinear_adapt_image", "rtu_adapt_image")

# The searched regularization schemes (RectangularSource.regularization) and their parameters, each named
# source.regularization.NAME: PyAutoArray's reg.Constant and reg.Adapt.
REGULARIZATION_PARAMETERS = {
    "free": ("coefficient",),
    "adapt": ("inner_coefficient", "outer_coefficient", "signal_scale"),
}

# The most multiple images a dataset's positions likelihood holds (a quad): the engine's padding of them and the
# store's `image` axis of a stage's `positions`.
MAX_IMAGES = 4


@dataclass(frozen=True)
class MGEBasis:
    """A multi-Gaussian expansion: `bases` sets of `gaussians` linear Gaussians, σ log-spaced from `sigma_min` to
    the mask radius (arcsec) in each, all sharing one centre and each set its own ell_comps (PyAutoLens's
    `mge_model_from(total_gaussians=gaussians, gaussian_per_basis=bases)`; ell_comps components 2k, 2k+1 are set
    k's)."""

    gaussians: int = 30
    sigma_min: float = 1e-4
    bases: int = 1

    @property
    def components(self) -> int:
        """Linear Gaussians in all: gaussians × bases."""
        return self.gaussians * self.bases


@dataclass(frozen=True)
class RectangularSource:
    """A rectangular mesh of shape (ny, nx), one of MESHES (`mesh`), and its regularization: a number, the
    Constant coefficient; "free", Constant with its coefficient a nonlinear parameter; "adapt", PyAutoArray's
    `reg.Adapt` (adaptive brightness, *_adapt_image meshes only) with inner_coefficient, outer_coefficient and
    signal_scale nonlinear parameters (REGULARIZATION_PARAMETERS: their names). PyAutoArray indexes its adaptive
    meshes by ny alone, so those must be square. The *_adapt_image meshes (PyAutoArray's
    RectangularBilinearAdaptImage / RectangularRTUAdaptImage) weight each traced pixel by
    max(adapt^weight_power, weight_floor), the adapt image from the stage before (adapt.py)."""

    shape: tuple[int, int] = (20, 20)
    regularization: float | str = 1.0
    mesh: str = "uniform"
    weight_power: float = 1.0
    weight_floor: float = 0.0

    @property
    def adapts_to_image(self) -> bool:
        """Whether the mesh follows an adapt image (and so needs a stage before it)."""
        return self.mesh.endswith("_adapt_image")

    def __post_init__(self):
        if isinstance(self.regularization, str):
            if self.regularization not in REGULARIZATION_PARAMETERS:
                raise ValueError(f"regularization is a coefficient, \"free\" or \"adapt\", got {self.regularization!r}")
            if self.regularization == "adapt" and not self.adapts_to_image:
                raise ValueError(f"adapt regularization follows the adapt image: it needs an *_adapt_image mesh, "
                                 f"not {self.mesh!r}")
        elif not self.regularization > 0:
            raise ValueError(f"a regularization coefficient is > 0, got {self.regularization!r}")
        if min(self.shape) < 3:
            raise ValueError(f"a rectangular mesh needs at least 3×3 cells, got {self.shape[0]}×{self.shape[1]}")
        if self.mesh not in MESHES:
            raise ValueError(f"a rectangular mesh is one of {', '.join(MESHES)}, got {self.mesh!r}")
        if self.mesh != "uniform" and self.shape[0] != self.shape[1]:
            raise ValueError(f"the {self.mesh} mesh is square (ny = nx), got {self.shape[0]}×{self.shape[1]}")

    @property
    def pixels(self) -> int:
        return self.shape[0] * self.shape[1]


@dataclass(frozen=True)
class Model:
    """A mass profile (+ ExternalShear if `shear`), optional lens-light MGE, and an MGE or pixelized source."""

    source: MGEBasis | RectangularSource
    shear: bool = True
    lens_light: MGEBasis | None = None
    settings: Settings = field(default_factory=Settings)
    mass: MassProfile = field(default_factory=Isothermal)

    @property
    def pixelized(self) -> bool:
        return isinstance(self.source, RectangularSource)

    def pixel_shortfall(self, used_pixels: int) -> str:
        """Why a mask with `used_pixels` cannot be fitted with this model ("" if it can): a mesh needs at
        least as many used pixels as it has cells."""
        if not self.pixelized or used_pixels >= self.source.pixels:
            return ""
        return f"the mask leaves {used_pixels} used pixels, fewer than the {self.source.pixels} source pixels"

    @property
    def n_linear(self) -> int:
        """Number of linear parameters: lens-light Gaussians, then source Gaussians or mesh cells."""
        light = self.lens_light.components if self.lens_light else 0
        source = self.source.pixels if self.pixelized else self.source.components
        return light + source


def _entries(model: Model) -> list[tuple[str, int]]:
    """(nested path, size) of every parameter in vector order; size 0 marks a scalar."""
    entries = [(f"lens.mass.{name}", size) for name, size in model.mass.parameters]
    if model.shear:
        entries += [("lens.shear.gamma_1", 0), ("lens.shear.gamma_2", 0)]
    if model.lens_light is not None:
        entries += [("lens.light.centre", 2), ("lens.light.ell_comps", 2 * model.lens_light.bases)]
    if not model.pixelized:
        entries += [("source.centre", 2), ("source.ell_comps", 2 * model.source.bases)]
    elif isinstance(model.source.regularization, str):
        names = REGULARIZATION_PARAMETERS[model.source.regularization]
        entries += [(f"source.regularization.{name}", 0) for name in names]
    return entries


def parameter_names(model: Model) -> tuple[str, ...]:
    """Flattened parameter names in vector order."""
    names: list[str] = []
    for path, size in _entries(model):
        names += [f"{path}.{i}" for i in range(size)] if size else [path]
    return tuple(names)


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
