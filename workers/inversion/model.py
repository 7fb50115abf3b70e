"""The static description of a lens model: which profiles, which source, which solver settings.

Pure Python (no JAX): the driver and the config file use it too. A compiled likelihood is keyed by a Model
(it is hashable), the shape bucket of the data and the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .settings import Settings


class ParameterError(ValueError):
    """A parameter the model needs is missing or malformed in a params mapping."""


@dataclass(frozen=True)
class MGEBasis:
    """A multi-Gaussian expansion: `gaussians` linear Gaussians sharing one centre and ell_comps, with σ
    log-spaced from `sigma_min` to the mask radius (arcsec)."""

    gaussians: int = 30
    sigma_min: float = 1e-4


@dataclass(frozen=True)
class RectangularSource:
    """A RectangularUniform mesh of shape (ny, nx) with Constant regularization coefficient `regularization`."""

    shape: tuple[int, int] = (20, 20)
    regularization: float = 1.0

    @property
    def pixels(self) -> int:
        return self.shape[0] * self.shape[1]


@dataclass(frozen=True)
class Model:
    """Isothermal mass (+ ExternalShear if `shear`), optional lens-light MGE, and an MGE or pixelized source."""

    source: MGEBasis | RectangularSource
    shear: bool = True
    lens_light: MGEBasis | None = None
    settings: Settings = field(default_factory=Settings)

    @property
    def pixelized(self) -> bool:
        return isinstance(self.source, RectangularSource)

    @property
    def n_linear(self) -> int:
        """Number of linear parameters: lens-light Gaussians, then source Gaussians or mesh cells."""
        light = self.lens_light.gaussians if self.lens_light else 0
        source = self.source.pixels if self.pixelized else self.source.gaussians
        return light + source
