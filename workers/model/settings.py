"""Inversion settings, with the meaning and defaults of PyAutoLens's `Settings`."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Settings:
    """How the linear inversion is solved.

    use_mixed_precision: single precision where precision.py allows it.
    use_positive_only_solver: solve with s >= 0 (jaxnnls on the Jacobi-scaled system) instead of Cholesky.
    use_border_relocator: move traced points outside the mask border's ellipse onto it (pixelizations).
    use_edge_zeroed_pixels: fix the outer ring of a rectangular mesh at 0 in the positive-only solve.
    no_regularization_add_to_curvature_diag_value: added to F's diagonal for linear objects without
        regularization (MGE amplitudes).
    """

    use_mixed_precision: bool = False
    use_positive_only_solver: bool = True
    use_border_relocator: bool = False
    use_edge_zeroed_pixels: bool = True
    no_regularization_add_to_curvature_diag_value: float = 1e-3

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The setting names, as written in fit.toml's [settings]."""
        return tuple(f.name for f in fields(cls))
