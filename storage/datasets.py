"""Imaging datasets: one lens's image, noise map and PSF, as FITS, in the two layouts astronomers use.

Layouts
- a folder (PyAutoLens): `image.fits`, `noise_map.fits`, `psf.fits` and optionally `mask.fits`, each array in the
  first HDU that holds data;
- one multi-extension FITS file: extensions named DATA, NOISE, PSF and optionally MASK.
A mask is nonzero where a pixel is masked (PyAutoLens: True = masked).

Pixel scale (arcsec per pixel), first found wins: the catalog's `pixel_scale` (the `pixel_scale` argument), the
image's header keyword PIXSCALE, the image's WCS (CD or CDELT, in CUNIT, degrees by default). Every source that is
present must agree with the others within 0.1%.

Arrays come back as native-endian float64 (FITS is big-endian; JAX refuses it). Locations may be local paths or
fsspec URLs. Every failure raises `DatasetError` naming the dataset id, the file (`file.fits[EXT]` for an
extension) and the problem.
"""

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales

from storage.errors import DatasetError
from storage.locations import filesystem, join

FOLDER_FILES = {"image": "image.fits", "noise_map": "noise_map.fits", "psf": "psf.fits", "mask": "mask.fits"}
MEF_EXTENSIONS = {"image": "DATA", "noise_map": "NOISE", "psf": "PSF", "mask": "MASK"}
PIXEL_SCALE_TOLERANCE = 1e-3  # relative disagreement allowed between pixel-scale sources
_IMAGE_HDUS = (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)


@dataclass(frozen=True, eq=False)
class ImagingData:
    """One lens's imaging as loaded.

    image, noise_map, psf: 2-D native-endian float64 (image and noise in the image's units, psf unnormalised).
    pixel_scale: arcsec per pixel. mask: bool, True = masked, or None when the files hold no mask.
    path: the dataset's folder or file; files: array name -> the file (or `file[EXT]`) it was read from.
    """

    image: np.ndarray
    noise_map: np.ndarray
    psf: np.ndarray
    pixel_scale: float
    mask: np.ndarray | None
    dataset_id: str
    path: str
    files: Mapping[str, str] = field(default_factory=dict)

    def file_of(self, name: str) -> str:
        """The file that array `name` came from (the dataset path when not known)."""
        return self.files.get(name, self.path)


def load_imaging(
    path: str, dataset_id: str, pixel_scale: float | None = None, storage_options: dict | None = None
) -> ImagingData:
    """Read a dataset folder or multi-extension FITS file; resolve its pixel scale. Does not validate pixels."""
    fs, fs_path = filesystem(path, storage_options)
    if fs.isdir(fs_path):
        arrays, headers, files = _read_folder(fs, fs_path, path, dataset_id)
    elif fs.isfile(fs_path):
        arrays, headers, files = _read_mef(fs, fs_path, path, dataset_id)
    else:
        raise DatasetError(dataset_id, path, "no such file or folder")
    scale = _resolve_pixel_scale(pixel_scale, headers["image"], dataset_id, files["image"])
    mask = arrays.get("mask")
    return ImagingData(
        image=arrays["image"],
        noise_map=arrays["noise_map"],
        psf=arrays["psf"],
        pixel_scale=scale,
        mask=None if mask is None else mask != 0,
        dataset_id=dataset_id,
        path=path,
        files=files,
    )


@dataclass(frozen=True)
class ImagingShapes:
    """A dataset's shapes and pixel scale, read from its FITS headers alone: image (ny, nx), psf (ky, kx),
    pixel scale (arcsec per pixel, resolved as `load_imaging` does)."""

    image_shape: tuple[int, int]
    psf_shape: tuple[int, int]
    pixel_scale: float


def read_shapes(
    path: str, dataset_id: str, pixel_scale: float | None = None, storage_options: dict | None = None
) -> ImagingShapes:
    """The image and PSF shapes and the pixel scale of a dataset, from headers only (no pixel is read).

    For planning a survey: a driver groups datasets by shape without loading them. Raises `DatasetError` like
    `load_imaging` (no such file or folder, file not found, truncated or unreadable FITS file, missing
    extension, no image data, pixel scale problems); shapes are reported as found, not validated (a 3-D image,
    an even or oversized PSF are `validate_imaging`'s to refuse).
    """
    fs, fs_path = filesystem(path, storage_options)
    headers, files = {}, {}
    if fs.isdir(fs_path):
        for name in ("image", "psf"):
            shown = join(path, FOLDER_FILES[name])
            hdus = _read_hdus(fs, join(fs_path, FOLDER_FILES[name]), shown, dataset_id, with_data=False)
            found = [header for _, header, _ in hdus if _naxes(header)]
            if not found:
                raise DatasetError(dataset_id, shown, "FITS file holds no image data")
            headers[name], files[name] = found[0], shown
    elif fs.isfile(fs_path):
        by_name = {ext: header for ext, header, _ in _read_hdus(fs, fs_path, path, dataset_id, with_data=False)}
        for name in ("image", "psf"):
            extension = MEF_EXTENSIONS[name]
            if extension not in by_name:
                raise DatasetError(dataset_id, path, f"missing extension {extension} (found {sorted(by_name)})")
            files[name] = f"{path}[{extension}]"
            if not _naxes(by_name[extension]):
                raise DatasetError(dataset_id, files[name], "extension holds no image data")
            headers[name] = by_name[extension]
    else:
        raise DatasetError(dataset_id, path, "no such file or folder")
    image, psf = _naxes(headers["image"]), _naxes(headers["psf"])
    for name, axes in (("image", image), ("psf", psf)):
        if len(axes) != 2:
            raise DatasetError(dataset_id, files[name], f"{name} is {len(axes)}-D with shape {axes}, expected 2-D")
    scale = _resolve_pixel_scale(pixel_scale, headers["image"], dataset_id, files["image"])
    return ImagingShapes(image_shape=image, psf_shape=psf, pixel_scale=scale)


def _naxes(header: fits.Header) -> tuple[int, ...]:
    """The numpy shape an HDU's header announces; () when it holds no data."""
    naxis = int(header.get("NAXIS", 0))
    shape = tuple(int(header.get(f"NAXIS{i}", 0)) for i in range(naxis, 0, -1))
    return shape if shape and all(shape) else ()


def validate_imaging(data: ImagingData, mask: np.ndarray | None = None) -> None:
    """Raise `DatasetError` if `data` cannot be fitted.

    Used pixels are those masked neither by `data.mask` nor by `mask` (for example the circular mask of the
    fit); all pixels when neither is given.
    """

    def fail(name: str, reason: str):
        raise DatasetError(data.dataset_id, data.file_of(name), reason)

    if not (np.isfinite(data.pixel_scale) and data.pixel_scale > 0):
        fail("image", f"pixel scale {data.pixel_scale} must be > 0")
    named = {"image": data.image, "noise_map": data.noise_map, "psf": data.psf, "mask": data.mask}
    for name, array in named.items():
        if array is not None and array.ndim != 2:
            fail(name, f"{name} is {array.ndim}-D with shape {array.shape}, expected 2-D")
    shape = data.image.shape
    if data.noise_map.shape != shape:
        fail("noise_map", f"noise_map shape {data.noise_map.shape} differs from image shape {shape}")
    if data.mask is not None and data.mask.shape != shape:
        fail("mask", f"mask shape {data.mask.shape} differs from image shape {shape}")
    if mask is not None and np.shape(mask) != shape:
        fail("image", f"fit mask shape {np.shape(mask)} differs from image shape {shape}")

    psf = data.psf
    if psf.shape[0] % 2 == 0 or psf.shape[1] % 2 == 0:
        fail("psf", f"PSF shape {psf.shape} has an even side; a PSF must be odd-sized to have a centre pixel")
    if not np.isfinite(psf).all():
        fail("psf", f"PSF has {np.count_nonzero(~np.isfinite(psf))} NaN/inf pixels")
    if abs(psf.sum()) <= 1e-12 * np.abs(psf).sum():
        fail("psf", "PSF sums to zero")
    if psf.shape[0] > shape[0] or psf.shape[1] > shape[1]:
        fail("psf", f"PSF shape {psf.shape} is larger than the image shape {shape}")

    masked = np.zeros(shape, bool)
    for m in (data.mask, mask):
        if m is not None:
            masked |= np.asarray(m, bool)
    used = ~masked
    if not used.any():
        fail("mask", "the mask leaves no pixel unmasked")
    _check_pixels(fail, "image", ~np.isfinite(data.image) & used, "NaN/inf")
    _check_pixels(fail, "noise_map", ~np.isfinite(data.noise_map) & used, "NaN/inf")
    _check_pixels(fail, "noise_map", (data.noise_map <= 0) & used, "<= 0")


def _check_pixels(fail, name: str, bad: np.ndarray, what: str) -> None:
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        fail(name, f"{name} has {np.count_nonzero(bad)} {what} pixels among the used pixels, first at (y, x) = {first}")


def write_imaging(
    folder: str,
    image: np.ndarray,
    noise_map: np.ndarray,
    psf: np.ndarray,
    pixel_scale: float,
    mask: np.ndarray | None = None,
    storage_options: dict | None = None,
) -> None:
    """Write a dataset folder in PyAutoLens's layout; the pixel scale goes in image.fits's PIXSCALE."""
    fs, fs_folder = filesystem(folder, storage_options)
    fs.makedirs(fs_folder, exist_ok=True)
    arrays = {"image": image, "noise_map": noise_map, "psf": psf, "mask": mask}
    for name, array in arrays.items():
        if array is None:
            continue
        hdu = fits.PrimaryHDU(_fits_array(name, array))
        if name == "image":
            _set_pixscale(hdu.header, pixel_scale)
        with fs.open(join(fs_folder, FOLDER_FILES[name]), "wb") as f:
            fits.HDUList([hdu]).writeto(f)


def write_imaging_mef(
    file: str,
    image: np.ndarray,
    noise_map: np.ndarray,
    psf: np.ndarray,
    pixel_scale: float,
    mask: np.ndarray | None = None,
    storage_options: dict | None = None,
) -> None:
    """Write one multi-extension FITS file (DATA, NOISE, PSF, optional MASK); PIXSCALE in DATA's header."""
    arrays = {"image": image, "noise_map": noise_map, "psf": psf, "mask": mask}
    hdus = [fits.PrimaryHDU()]
    for name, array in arrays.items():
        if array is not None:
            hdus.append(fits.ImageHDU(_fits_array(name, array), name=MEF_EXTENSIONS[name]))
    _set_pixscale(hdus[1].header, pixel_scale)
    fs, fs_file = filesystem(file, storage_options)
    with fs.open(fs_file, "wb") as f:
        fits.HDUList(hdus).writeto(f)


def _fits_array(name: str, array: np.ndarray) -> np.ndarray:
    return np.asarray(array, np.uint8 if name == "mask" else np.float64)


def _set_pixscale(header: fits.Header, pixel_scale: float) -> None:
    header["PIXSCALE"] = (float(pixel_scale), "arcsec per pixel")


def _read_folder(fs, fs_folder: str, folder: str, dataset_id: str):
    arrays, headers, files = {}, {}, {}
    for name, filename in FOLDER_FILES.items():
        shown = join(folder, filename)
        fs_file = join(fs_folder, filename)
        if name == "mask" and not fs.exists(fs_file):
            continue
        hdus = [hdu for hdu in _read_hdus(fs, fs_file, shown, dataset_id) if hdu[2] is not None]
        if not hdus:
            raise DatasetError(dataset_id, shown, "FITS file holds no image data")
        _, headers[name], arrays[name] = hdus[0]
        files[name] = shown
    return arrays, headers, files


def _read_mef(fs, fs_file: str, file: str, dataset_id: str):
    by_name = {name: (header, data) for name, header, data in _read_hdus(fs, fs_file, file, dataset_id)}
    arrays, headers, files = {}, {}, {}
    for name, extension in MEF_EXTENSIONS.items():
        if extension not in by_name:
            if name == "mask":
                continue
            raise DatasetError(dataset_id, file, f"missing extension {extension} (found {sorted(by_name)})")
        headers[name], arrays[name] = by_name[extension]
        files[name] = f"{file}[{extension}]"
        if arrays[name] is None:
            raise DatasetError(dataset_id, files[name], "extension holds no image data")
    return arrays, headers, files


def _read_hdus(
    fs, fs_file: str, shown: str, dataset_id: str, with_data: bool = True,
) -> list[tuple[str, fits.Header, np.ndarray | None]]:
    """(EXTNAME, header, native float64 data or None) of every image HDU; with_data=False reads the headers alone
    (data None). Any read failure is a DatasetError."""
    try:
        with fs.open(fs_file, "rb") as f, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(f, memmap=False, lazy_load_hdus=not with_data) as hdul:
                hdus = [(hdu.name.upper(), hdu.header.copy(), _float_data(hdu) if with_data else None)
                        for hdu in hdul if isinstance(hdu, _IMAGE_HDUS)]
    except FileNotFoundError:
        raise DatasetError(dataset_id, shown, "file not found") from None
    except (OSError, ValueError, TypeError, EOFError) as e:
        raise DatasetError(dataset_id, shown, f"truncated or unreadable FITS file ({e})") from e
    for w in caught:
        message = str(w.message)
        if "truncated" in message or "Error validating header" in message:
            raise DatasetError(dataset_id, shown, f"truncated or unreadable FITS file ({message})")
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return hdus


def _float_data(hdu) -> np.ndarray | None:
    return None if hdu.data is None else np.array(hdu.data, np.float64)


def _resolve_pixel_scale(catalog: float | None, header: fits.Header, dataset_id: str, file: str) -> float:
    sources = {"catalog": catalog, "PIXSCALE": _header_pixscale(header, dataset_id, file)}
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header, naxis=2)
        unit = u.Unit(wcs.wcs.cunit[0] or "deg")
        x_scale, y_scale = (np.abs(proj_plane_pixel_scales(wcs)) * unit).to_value(u.arcsec)
    except (ValueError, TypeError, KeyError, u.UnitsError) as e:
        raise DatasetError(dataset_id, file, f"unreadable WCS ({e})") from e
    if not abs(y_scale - x_scale) <= PIXEL_SCALE_TOLERANCE * max(x_scale, y_scale):
        raise DatasetError(dataset_id, file, f"WCS pixels are not square ({x_scale:g} x {y_scale:g} arcsec)")
    return float(x_scale)
