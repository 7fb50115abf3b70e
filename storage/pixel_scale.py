"""A dataset's pixel scale (arcsec per pixel) from its sources: the catalog's column, a cutout's info.json,
the image header's PIXSCALE keyword, the image's WCS (CD or CDELT, in CUNIT, degrees by default)."""

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from storage.errors import DatasetError

PIXEL_SCALE_TOLERANCE = 1e-3  # relative disagreement allowed between pixel-scale sources


def resolve_pixel_scale(catalog: float | None, info: float | None, header: fits.Header, dataset_id: str,
                        file: str) -> float:
    """The pixel scale (arcsec per pixel) from the first of the catalog's, info.json's, the header's PIXSCALE
    and its WCS that is given; DatasetError when none is, or two disagree by more than PIXEL_SCALE_TOLERANCE."""
    sources = {"catalog": catalog, "info.json": info, "PIXSCALE": _header_pixscale(header, dataset_id, file)}
    sources["WCS"] = _wcs_pixel_scale(header, dataset_id, file)
    given = {name: float(value) for name, value in sources.items() if value is not None}
    if not given:
        raise DatasetError(
            dataset_id, file, "no pixel scale: give a pixel_scale catalog column, a PIXSCALE keyword or a WCS"
        )
    (first, scale), *others = given.items()
    for name, value in others:
        if not abs(value - scale) <= PIXEL_SCALE_TOLERANCE * abs(scale):
            raise DatasetError(
                dataset_id,
                file,
                f"pixel scale disagrees: {first} {scale:g} arcsec vs {name} {value:g} arcsec (more than 0.1%)",
            )
    return scale


def _header_pixscale(header: fits.Header, dataset_id: str, file: str) -> float | None:
    if "PIXSCALE" not in header:
        return None
    try:
        return float(header["PIXSCALE"])
    except (TypeError, ValueError):
        raise DatasetError(dataset_id, file, f"PIXSCALE {header['PIXSCALE']!r} is not a number") from None


def _wcs_pixel_scale(header: fits.Header, dataset_id: str, file: str) -> float | None:
    """Arcsec per pixel from CD or CDELT (in CUNIT, degrees when unset), or None without either."""
    if "CD1_1" not in header and "CDELT1" not in header:
        return None
    try:
        wcs = WCS(header, naxis=2, fix=False)  # WCS.fix would warn (process-wide state): run wcslib's fix directly
        wcs.wcs.fix()
        unit = u.Unit(wcs.wcs.cunit[0] or "deg")
        x_scale, y_scale = (np.abs(proj_plane_pixel_scales(wcs)) * unit).to_value(u.arcsec)
    except (ValueError, TypeError, KeyError, u.UnitsError) as e:
        raise DatasetError(dataset_id, file, f"unreadable WCS ({e})") from e
    if not abs(y_scale - x_scale) <= PIXEL_SCALE_TOLERANCE * max(x_scale, y_scale):
        raise DatasetError(dataset_id, file, f"WCS pixels are not square ({x_scale:g} x {y_scale:g} arcsec)")
    return float(x_scale)
