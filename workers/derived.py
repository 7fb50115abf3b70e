"""Quantities papers and catalogs quote, derived from a lens model's parameters (numpy; PyAutoGalaxy's
convert.py conventions, CONVENTIONS.md):

    lens.mass.axis_ratio      q = (1 − f)/(1 + f),  f = min(√(e0² + e1²), 0.999)
    lens.mass.angle           φ = ½·atan2(e0, e1) in degrees counter-clockwise from +x, in (−45°, 135°]
    lens.mass.einstein_radius_intermediate
                              b = θE·√q·(2/(1 + q))^(1/(γ − 1))  (γ = slope, 2 for the Isothermal: b = θE·2√q/(1 + q)),
                              the intermediate-axis Einstein radius of SLACS (bSIE), lenstronomy and most catalogs:
                              κ = (3 − γ)/2 · (b/√(q x'² + y'²/q))^(γ−1); for the SIE, the radius of the circle
                              with the area of the region inside which the mean convergence is 1
    lens.shear.magnitude      γ = √(γ1² + γ2²)
    lens.shear.angle          ½·atan2(γ2, γ1) in degrees, in [0°, 180°)

On images with north up and east left (+x to the west), a position angle east of north is φ + 90° (mod 180°).
"""

from __future__ import annotations

import numpy as np

MAX_ELLIPTICITY = 0.999


def derived_names(parameter_names: tuple[str, ...]) -> tuple[str, ...]:
    """The derived quantities a model with these parameters has (module docstring), in store order."""
    names = set(parameter_names)
    out = []
    if {"lens.mass.ell_comps.0", "lens.mass.einstein_radius"} <= names:
        out += ["lens.mass.axis_ratio", "lens.mass.angle", "lens.mass.einstein_radius_intermediate"]
    if "lens.shear.gamma_1" in names:
        out += ["lens.shear.magnitude", "lens.shear.angle"]
    return tuple(out)


def derived_values(parameter_names: tuple[str, ...], vectors: np.ndarray) -> np.ndarray:
    """The derived quantities (…, D) of parameter vectors (…, P) laid out as `parameter_names`."""
    vectors = np.asarray(vectors, np.float64)
    column = {name: vectors[..., i] for i, name in enumerate(parameter_names)}
    out = []
    for name in derived_names(parameter_names):
        if name.startswith("lens.mass."):
            e0, e1 = column["lens.mass.ell_comps.0"], column["lens.mass.ell_comps.1"]
            f = np.minimum(np.hypot(e0, e1), MAX_ELLIPTICITY)
            q = (1 - f) / (1 + f)
            if name.endswith("axis_ratio"):
                out.append(q)
            elif name.endswith("angle"):
                angle = 0.5 * np.degrees(np.arctan2(e0, e1))
                out.append(np.where(angle < -45.0, angle + 180.0, angle))
            else:
                slope = column.get("lens.mass.slope", np.full_like(q, 2.0))
                out.append(column["lens.mass.einstein_radius"] * np.sqrt(q) * (2 / (1 + q)) ** (1 / (slope - 1)))
        else:
            g1, g2 = column["lens.shear.gamma_1"], column["lens.shear.gamma_2"]
            out.append(np.hypot(g1, g2) if name.endswith("magnitude")
                       else np.mod(0.5 * np.degrees(np.arctan2(g2, g1)), 180.0))
    return np.stack(out, axis=-1) if out else np.zeros((*vectors.shape[:-1], 0))
