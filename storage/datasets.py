"""Imaging datasets: one lens's image, noise map and PSF, as FITS, in the layouts astronomers use.

Layouts
- a folder (PyAutoLens): `image.fits`, `noise_map.fits`, `psf.fits` and optionally `mask.fits`, each array in the
  first HDU that holds data;
- one multi-extension FITS file: extensions named DATA, NOISE, PSF and optionally MASK;
- a Euclid MER cutout, as its FITS file or its folder (storage.euclid): one band's `<BAND>_BGSUB`, `<BAND>_RMS`,
  `<BAND>_PSF`, with info.json and mask_extra_galaxies.fits beside it in a folder.
A mask is nonzero where a pixel is masked (PyAutoLens: True = masked). Files may be gzip, bzip2 or xz compressed.
The PSF is normalised to unit sum (PyAutoLens's normalize=True); its sum as stored is kept as `psf_raw_sum`.

Pixel scale (arcsec per pixel), first found wins: the catalog's `pixel_scale` (the `pixel_scale` argument), a
cutout's info.json, the image's header keyword PIXSCALE, the image's WCS (CD or CDELT, in CUNIT, degrees by
default). Every source that is present must agree with the others within 0.1%.

Arrays come back as native-endian float64 (FITS is big-endian; JAX refuses it). Locations may be local paths or
fsspec URLs. Files are fetched whole, then parsed in memory (storage.fits_io): a problem with the content raises
`DatasetError` naming the dataset id, the file (`file.fits[EXT]` for an extension) and the problem; a file that
could not be fetched raises `DatasetUnavailable` (storage.errors.classify: transient, or the machine's).
These readers are safe to call from many threads at once: they touch no process-wide state.
"""

import hashlib
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits

from storage.errors import DatasetError, is_missing
from storage.euclid import EXTRA_MASK_FILE, INFO_FILE, CutoutInfo, band_hdus, cutout_file, is_cutout, parse_info
from storage.fits_io import fetch_bytes, parse_hdus, unavailable
from storage.locations import filesystem, is_url, join
from storage.pixel_scale import resolve_pixel_scale

FOLDER_FILES = {"image": "image.fits", "noise_map": "noise_map.fits", "psf": "psf.fits", "mask": "mask.fits"}
MEF_EXTENSIONS = {"image": "DATA", "noise_map": "NOISE", "psf": "PSF", "mask": "MASK"}
_VERSION_KEYS = ("ETag", "etag", "md5Hash", "generation", "mtime", "LastModified", "updated", "last_modified")


@dataclass(frozen=True, eq=False)
class ImagingData:
    """One lens's imaging as loaded.

    image, noise_map, psf: 2-D native-endian float64 (image and noise in the image's units; psf divided by
    psf_raw_sum, its sum as stored, unless that sum is zero or not finite). pixel_scale: arcsec per pixel.
    mask: bool, True = masked, or None when the files hold no mask. mask_radius, mask_centre: a cutout's
    info.json values (None: not given). path: the dataset's folder or file; files: array name -> the file (or
    `file[EXT]`) it was read from.
    """

    image: np.ndarray
    noise_map: np.ndarray
    psf: np.ndarray
    pixel_scale: float
    mask: np.ndarray | None
    dataset_id: str
    path: str
    files: Mapping[str, str] = field(default_factory=dict)
    psf_raw_sum: float = 1.0
    mask_radius: float | None = None
    mask_centre: tuple[float, float] | None = None

    def file_of(self, name: str) -> str:
        """The file that array `name` came from (the dataset path when not known)."""
        return self.files.get(name, self.path)


def load_imaging(
    path: str, dataset_id: str, pixel_scale: float | None = None, storage_options: dict | None = None,
    band: str | None = None,
) -> ImagingData:
    """Read a dataset (any layout; `band` picks a cutout's band, VIS when None, and is refused for the other
    layouts); resolve its pixel scale; normalise its PSF. Does not validate pixels.

    Raises DatasetError (bad input) or DatasetUnavailable (a file could not be fetched); see storage.fits_io.
    """
    hdus, files, info = _read_dataset(path, dataset_id, storage_options, band, tuple(FOLDER_FILES), True)
    scale = resolve_pixel_scale(pixel_scale, info.pixel_scale, hdus["image"].header, dataset_id, files["image"])
    psf = hdus["psf"].data
    raw_sum = float(psf.sum())
    return ImagingData(
        image=hdus["image"].data,
        noise_map=hdus["noise_map"].data,
        psf=psf / raw_sum if _sums_to_nonzero(psf) else psf,
        pixel_scale=scale,
        mask=hdus["mask"].data != 0 if "mask" in hdus else None,
        dataset_id=dataset_id,
        path=path,
        files=files,
        psf_raw_sum=raw_sum,
        mask_radius=info.mask_radius,
        mask_centre=info.mask_centre,
    )


def _sums_to_nonzero(psf: np.ndarray) -> bool:
    """True when a PSF's sum is finite and not zero to rounding (so it can be normalised)."""
    total = psf.sum()
    return bool(np.isfinite(total) and abs(total) > 1e-12 * np.abs(psf).sum())


@dataclass(frozen=True)
class ImagingShapes:
    """What planning needs of a dataset: image (ny, nx) and psf (ky, kx) shapes from the FITS headers, pixel
    scale (arcsec per pixel, resolved as `load_imaging` does), the row-major flat indices of the pixels its
    files mask, and a cutout's info.json mask radius and centre (None: not given)."""

    image_shape: tuple[int, int]
    psf_shape: tuple[int, int]
    pixel_scale: float
    masked_pixels: tuple[int, ...] = ()
    mask_radius: float | None = None
    mask_centre: tuple[float, float] | None = None

    @property
    def mask(self) -> np.ndarray | None:
        """The files' mask over the image (True = masked), None when they mask nothing."""
        if not self.masked_pixels:
            return None
        mask = np.zeros(self.image_shape, bool)
        mask.flat[list(self.masked_pixels)] = True
        return mask


def read_shapes(
    path: str, dataset_id: str, pixel_scale: float | None = None, storage_options: dict | None = None,
    band: str | None = None,
) -> ImagingShapes:
    """The image and PSF shapes, the pixel scale and the mask of a dataset, from headers and the mask only.

    For planning a survey: a driver groups datasets by shape without loading their image pixels (the image and
    PSF files are fetched, as a compressed file's headers need decompressing, and only their headers parsed; the
    mask, which changes the shape bucket, is read whole).
    Raises DatasetError like `load_imaging` (no such file or folder, file not found, truncated or unreadable
    FITS file, missing extension, no image data, pixel scale problems) and DatasetUnavailable; shapes are
    reported as found, not validated (a 3-D image, an even or oversized PSF are `validate_imaging`'s to refuse).
    """
    hdus, files, info = _read_dataset(path, dataset_id, storage_options, band, ("image", "psf", "mask"), False)
    for name in hdus:
        axes = hdus[name].shape
        if len(axes) != 2:
            raise DatasetError(dataset_id, files[name], f"{name} is {len(axes)}-D with shape {axes}, expected 2-D")
    scale = resolve_pixel_scale(pixel_scale, info.pixel_scale, hdus["image"].header, dataset_id, files["image"])
    masked = ()
    if "mask" in hdus:
        mask = hdus["mask"].data
        if mask.shape != hdus["image"].shape:  # validate_imaging's to report when the block loads it
            mask = np.ones(hdus["image"].shape, bool)
        masked = tuple(int(i) for i in np.flatnonzero(mask))
    return ImagingShapes(hdus["image"].shape, hdus["psf"].shape, scale, masked, info.mask_radius, info.mask_centre)


def dataset_fingerprint(path: str, dataset_id: str, storage_options: dict | None = None) -> str:
    """A digest of the name, size and version (ETag, generation or mtime: the first of _VERSION_KEYS that its
    fsspec info holds) of each of a dataset's FITS files, from one listing or stat and no read. It changes when a
    file is replaced, appears or goes (a missing dataset has the digest of no files). Raises DatasetError for a
    location fsspec does not know, DatasetUnavailable when asking failed."""
    try:
        fs, fs_path, info = _locate(path, dataset_id, storage_options)
    except DatasetError as e:
        if e.reason != "no such file or folder":
            raise
        return _fingerprint({})
    if not _is_folder(info, path):
        return _fingerprint({posixpath.basename(fs_path): info})
    try:
        entries = fs.ls(fs_path, detail=True)
    except Exception as e:
        raise unavailable(dataset_id, path, e) from e
    names = {*FOLDER_FILES.values(), posixpath.basename(cutout_file(fs_path)), INFO_FILE, EXTRA_MASK_FILE}
    return _fingerprint({name: e for e in entries if (name := posixpath.basename(e["name"].rstrip("/"))) in names})


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


def _locate(path: str, dataset_id: str, storage_options: dict | None):
    """(filesystem, its path, fsspec info) of a dataset's location; DatasetError when nothing is there or fsspec
    does not know the location, DatasetUnavailable when asking failed."""
    try:
        fs, fs_path = filesystem(path, storage_options)
    except ValueError as e:  # an unknown protocol, a malformed URL
        raise DatasetError(dataset_id, path, f"cannot open this location ({e})") from None
    except Exception as e:  # e.g. the protocol's package (s3fs, gcsfs) is missing on this machine
        raise unavailable(dataset_id, path, e) from e
    try:
        return fs, fs_path, fs.info(fs_path)
    except FileNotFoundError as e:
        if not is_missing(e):
            raise unavailable(dataset_id, path, e.__cause__) from e
        raise DatasetError(dataset_id, path, "no such file or folder") from None
    except Exception as e:
        raise unavailable(dataset_id, path, e) from e


def _is_folder(info: Mapping, path: str) -> bool:
    """A folder layout: a directory, or (an HTTP server reports every URL as a file) a URL ending in "/"."""
    return info.get("type") == "directory" or (is_url(path) and path.endswith("/"))


def _fingerprint(entries: Mapping[str, Mapping]) -> str:
    """See `dataset_fingerprint`."""
    digest = hashlib.blake2b(digest_size=12)
    for name in sorted(entries):
        info = entries[name]
        version = next((info[k] for k in _VERSION_KEYS if info.get(k) not in (None, "")), "")
        digest.update(f"{name}\0{info.get('size')}\0{version}\0".encode())
    return digest.hexdigest()


def _read_dataset(path: str, dataset_id: str, storage_options: dict | None, band: str | None,
                  names: tuple[str, ...], with_data: bool) -> tuple[dict, dict, CutoutInfo]:
    """{array name: FitsHdu}, {array name: file or `file[EXT]`} and the cutout info of a dataset in any layout,
    for the arrays `names` (of FOLDER_FILES; the mask optional and always read with its data)."""
    fs, fs_path, info = _locate(path, dataset_id, storage_options)
    if not _is_folder(info, path):
        raw = fetch_bytes(fs, fs_path, path, dataset_id)
        hdus = parse_hdus(raw, path, dataset_id, with_data or frozenset({MEF_EXTENSIONS["mask"]}))
        if is_cutout(hdus):
            found, files = band_hdus(hdus, path, dataset_id, band, tuple(n for n in names if n != "mask"))
            return found, files, CutoutInfo()
        _refuse_band(band, dataset_id, path)
        return (*_mef_hdus(hdus, path, dataset_id, names), CutoutInfo())
    image = fetch_bytes(fs, join(fs_path, FOLDER_FILES["image"]), join(path, FOLDER_FILES["image"]), dataset_id,
                        optional=True)
    if image is not None:
        _refuse_band(band, dataset_id, path)
        return (*_read_folder(fs, fs_path, path, dataset_id, names, with_data, image), CutoutInfo())
    cutout = fetch_bytes(fs, cutout_file(fs_path), cutout_file(path), dataset_id, optional=True)
    if cutout is None:
        raise DatasetError(dataset_id, join(path, FOLDER_FILES["image"]), "file not found (nor a Euclid cutout "
                                                                         f"{posixpath.basename(cutout_file(path))})")
    hdus = parse_hdus(cutout, cutout_file(path), dataset_id, with_data)
    found, files = band_hdus(hdus, cutout_file(path), dataset_id, band, tuple(n for n in names if n != "mask"))
    raw = fetch_bytes(fs, join(fs_path, INFO_FILE), join(path, INFO_FILE), dataset_id, optional=True)
    info = CutoutInfo() if raw is None else parse_info(raw, join(path, INFO_FILE), dataset_id)
    if "mask" in names:
        mask = _first_image(fs, fs_path, path, EXTRA_MASK_FILE, dataset_id, True, optional=True)
        if mask is not None:
            found["mask"], files["mask"] = mask, join(path, EXTRA_MASK_FILE)
    return found, files, info


def _refuse_band(band: str | None, dataset_id: str, path: str) -> None:
    if band is not None:
        raise DatasetError(dataset_id, path, f"a band ({band}) is given, but only a Euclid cutout has bands")


def _first_image(fs, fs_folder: str, folder: str, filename: str, dataset_id: str, with_data: bool,
                 raw: bytes | None = None, optional: bool = False):
    """The first HDU with data of a folder's file `filename` (None when `optional` and missing)."""
    shown = join(folder, filename)
    if raw is None:
        raw = fetch_bytes(fs, join(fs_folder, filename), shown, dataset_id, optional=optional)
        if raw is None:
            return None
    found = [hdu for hdu in parse_hdus(raw, shown, dataset_id, with_data) if hdu.shape]
    if not found:
        raise DatasetError(dataset_id, shown, "FITS file holds no image data")
    return found[0]


def _read_folder(fs, fs_folder: str, folder: str, dataset_id: str, names: tuple[str, ...], with_data: bool,
                 image: bytes):
    """{array name: FitsHdu}, {array name: file} of a PyAutoLens folder's files for `names` (mask optional, read
    with its data); `image` is image.fits's bytes, already fetched."""
    hdus, files = {}, {}
    for name in names:
        hdu = _first_image(fs, fs_folder, folder, FOLDER_FILES[name], dataset_id, with_data or name == "mask",
                           image if name == "image" else None, optional=name == "mask")
        if hdu is not None:
            hdus[name], files[name] = hdu, join(folder, FOLDER_FILES[name])
    return hdus, files


def _mef_hdus(hdus: list, file: str, dataset_id: str, names: tuple[str, ...]):
    """{array name: FitsHdu}, {array name: `file[EXT]`} of a multi-extension file's extensions for `names`
    (MASK optional)."""
    by_name = {hdu.name: hdu for hdu in hdus}
    found, files = {}, {}
    for name in names:
        extension = MEF_EXTENSIONS[name]
        if extension not in by_name:
            if name == "mask":
                continue
            raise DatasetError(dataset_id, file, f"missing extension {extension} (found {sorted(by_name)})")
        found[name], files[name] = by_name[extension], f"{file}[{extension}]"
        if not found[name].shape:
            raise DatasetError(dataset_id, files[name], "extension holds no image data")
    return found, files
