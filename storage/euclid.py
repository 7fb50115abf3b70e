"""The Euclid MER cutout layout: one multi-extension FITS file with every band, and its optional side files.

The file has an empty primary HDU and, per band B (VIS, DES_G, DES_R, DES_I, DES_Z, NIR_Y, NIR_J, NIR_H),
extensions `B_BGSUB` (background-subtracted image), `B_RMS` (noise map) and `B_PSF`. One band is fitted: the
catalog's `band` column, VIS by default. The bands share one pixel grid (the MER mosaic's).

A cutout is given as the FITS file itself, or as a folder `<name>/` holding `<name>.fits` and optionally
- `info.json`: {"pixel_scale": arcsec (required), "mask_radius": arcsec, "mask_centre": [y, x] arcsec};
- `mask_extra_galaxies.fits`: nonzero on the pixels of other galaxies, which are masked (True = masked).
A FILTER keyword in a `B_PSF` header, when present, must name band B (an image's FILTER is not checked: MER
propagates the survey's own name, e.g. DECAM_g, beside DES_G).
"""

import json
import math
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from storage.errors import DatasetError
from storage.fits_io import FitsHdu

DEFAULT_BAND = "VIS"
SUFFIXES = {"image": "BGSUB", "noise_map": "RMS", "psf": "PSF"}
INFO_FILE = "info.json"
EXTRA_MASK_FILE = "mask_extra_galaxies.fits"


@dataclass(frozen=True)
class CutoutInfo:
    """A cutout's info.json: pixel scale, mask radius (arcsec) and mask centre (y, x arcsec); None = not given."""

    pixel_scale: float | None = None
    mask_radius: float | None = None
    mask_centre: tuple[float, float] | None = None


def cutout_file(folder: str) -> str:
    """The cutout FITS file a cutout folder holds: `<folder>/<folder's name>.fits`."""
    name = posixpath.basename(folder.rstrip("/"))
    return posixpath.join(folder.rstrip("/"), f"{name}.fits")


def is_cutout(hdus: list[FitsHdu]) -> bool:
    """True for a file in this layout: some extension is named `<BAND>_BGSUB`."""
    return any(hdu.name.endswith("_BGSUB") for hdu in hdus)


def band_hdus(
    hdus: list[FitsHdu], file: str, dataset_id: str, band: str | None, names: tuple[str, ...]
) -> tuple[dict[str, FitsHdu], dict[str, str]]:
    """{array name: FitsHdu}, {array name: `file[EXT]`} of band `band` (DEFAULT_BAND when None) for `names`
    (of SUFFIXES); DatasetError naming the bands the file has when one is missing, or the band its FILTER says
    when the PSF is another band's."""
    band = (band or DEFAULT_BAND).upper()
    by_name = {hdu.name: hdu for hdu in hdus}
    found, files = {}, {}
    for name in names:
        extension = f"{band}_{SUFFIXES[name]}"
        if extension not in by_name:
            bands = sorted(n.removesuffix("_BGSUB") for n in by_name if n.endswith("_BGSUB"))
            raise DatasetError(dataset_id, file, f"band {band}: no extension {extension}; the file has bands "
                                                 f"{', '.join(bands)}")
        hdu, shown = by_name[extension], f"{file}[{extension}]"
        if not hdu.shape:
            raise DatasetError(dataset_id, shown, "extension holds no image data")
        label = str(hdu.header.get("FILTER", band)).strip().upper() if name == "psf" else band
        if label != band:
            raise DatasetError(dataset_id, shown, f"{extension} is band {label}'s PSF (FILTER = {label!r}, shape "
                                                  f"{hdu.shape}), not band {band}'s")
        found[name], files[name] = hdu, shown
    return found, files


def parse_info(raw: bytes, shown: str, dataset_id: str) -> CutoutInfo:
    """A cutout's info.json; DatasetError when it is not a JSON object, lacks pixel_scale or holds a value
    that is not a finite number (> 0 for pixel_scale and mask_radius; [y, x] for mask_centre)."""
    try:
        info = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(dataset_id, shown, f"not valid JSON ({e})") from None
    if not isinstance(info, Mapping):
        raise DatasetError(dataset_id, shown, f"expected a JSON object, found {type(info).__name__}")
    if "pixel_scale" not in info:
        raise DatasetError(dataset_id, shown, f"no pixel_scale (keys are {sorted(info)})")

    def positive(key: str) -> float | None:
        value = info.get(key)
        if value is None:
            return None
        if not _finite(value) or value <= 0:
            raise DatasetError(dataset_id, shown, f"{key} {value!r} must be a finite number > 0 arcsec")
        return float(value)

    centre = info.get("mask_centre")
    if centre is not None:
        if not (isinstance(centre, list) and len(centre) == 2 and all(_finite(c) for c in centre)):
            raise DatasetError(dataset_id, shown, f"mask_centre {centre!r} must be [y, x] in arcsec")
        centre = (float(centre[0]), float(centre[1]))
    return CutoutInfo(positive("pixel_scale"), positive("mask_radius"), centre)


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
