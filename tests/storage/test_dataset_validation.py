"""Every way a dataset can be unusable raises DatasetError, one line naming the dataset id, the file and why."""

import pickle

import numpy as np
import pytest
from astropy.io import fits

from storage.datasets import load_imaging, validate_imaging, write_imaging, write_imaging_mef
from storage.errors import DatasetError

ID = "SLACS-J0912+0029"


def folder(tmp_path, arrays, **changes):
    """A PyAutoLens dataset folder with some arrays replaced; returns its path."""
    values = {**arrays, "pixel_scale": 0.05, **changes}
    write_imaging(str(tmp_path / ID), values["image"], values["noise_map"], values["psf"], values["pixel_scale"])
    return tmp_path / ID


def mef(tmp_path, arrays, **changes):
    values = {**arrays, "pixel_scale": 0.05, **changes}
    file = tmp_path / f"{ID}.fits"
    write_imaging_mef(
        str(file), values["image"], values["noise_map"], values["psf"], values["pixel_scale"], mask=values["mask"]
    )
    return file


def with_pixels(array, value, where=(5, 4)):
    array = array.copy()
    array[where] = value
    return array


def remove(path, name):
    (path / name).unlink()
    return path


def truncate(path, name):
    data = (path / name).read_bytes()
    (path / name).write_bytes(data[: len(data) - 1000])
    return path


def garble(path, name):
    (path / name).write_bytes(b"this is not a FITS file" * 10)
    return path


def drop_extension(file, extension):
    with fits.open(file) as hdul:
        kept = fits.HDUList([h.copy() for h in hdul if h.name != extension])
    kept.writeto(file, overwrite=True)
    return file


CASES = {
    "missing dataset": (lambda t, a: t / "nowhere", "", "no such file or folder"),
    "missing psf.fits": (lambda t, a: remove(folder(t, a), "psf.fits"), "/psf.fits", "file not found"),
    "truncated noise_map.fits": (
        lambda t, a: truncate(folder(t, a), "noise_map.fits"),
        "/noise_map.fits",
        "truncated or unreadable FITS file",
    ),
    "garbage image.fits": (
        lambda t, a: garble(folder(t, a), "image.fits"),
        "/image.fits",
        "truncated or unreadable FITS file",
    ),
    "truncated multi-extension file": (
        lambda t, a: truncate(mef(t, a).parent, f"{ID}.fits") / f"{ID}.fits",
        "",
        "truncated or unreadable FITS file",
    ),
    "missing NOISE extension": (
        lambda t, a: drop_extension(mef(t, a), "NOISE"),
        "",
        "missing extension NOISE",
    ),
    "3-D image": (
        lambda t, a: folder(t, a, image=np.stack([a["image"]] * 2)),
        "/image.fits",
        "image is 3-D with shape (2, 12, 10), expected 2-D",
    ),
    "1-D psf": (lambda t, a: folder(t, a, psf=np.ones(5)), "/psf.fits", "psf is 1-D"),
    "noise shape differs": (
        lambda t, a: folder(t, a, noise_map=a["noise_map"][:, :9]),
        "/noise_map.fits",
        "noise_map shape (12, 9) differs from image shape (12, 10)",
    ),
    "mask shape differs": (
        lambda t, a: mef(t, a, mask=a["mask"][:11]),
        "[MASK]",
        "mask shape (11, 10) differs from image shape (12, 10)",
    ),
    "NaN in image": (
        lambda t, a: folder(t, a, image=with_pixels(a["image"], np.nan)),
        "/image.fits",
        "image has 1 NaN/inf pixels among the used pixels, first at (y, x) = (5, 4)",
    ),
    "inf in image (MEF, inside the mask)": (
        lambda t, a: mef(t, a, image=with_pixels(a["image"], np.inf, (3, 3))),
        "[DATA]",
        "image has 1 NaN/inf pixels among the used pixels",
    ),
    "NaN in noise": (
        lambda t, a: folder(t, a, noise_map=with_pixels(a["noise_map"], np.nan)),
        "/noise_map.fits",
        "noise_map has 1 NaN/inf pixels",
    ),
    "zero noise": (
        lambda t, a: folder(t, a, noise_map=with_pixels(a["noise_map"], 0.0)),
        "/noise_map.fits",
        "noise_map has 1 <= 0 pixels among the used pixels, first at (y, x) = (5, 4)",
    ),
    "negative noise": (
        lambda t, a: mef(t, a, noise_map=with_pixels(a["noise_map"], -0.1, (4, 5))),
        "[NOISE]",
        "noise_map has 1 <= 0 pixels among the used pixels, first at (y, x) = (4, 5)",
    ),
    "even-sized psf rows": (
        lambda t, a: folder(t, a, psf=np.ones((4, 5))),
        "/psf.fits",
        "PSF shape (4, 5) has an even side",
    ),
    "even-sized psf columns": (
        lambda t, a: folder(t, a, psf=np.ones((5, 6))),
        "/psf.fits",
        "PSF shape (5, 6) has an even side",
    ),
    "all-zero psf": (lambda t, a: folder(t, a, psf=np.zeros((5, 5))), "/psf.fits", "PSF sums to zero"),
    "psf summing to zero": (
        lambda t, a: folder(t, a, psf=np.outer([1.0, -2.0, 1.0], [1.0, 1.0, 1.0])),
        "/psf.fits",
        "PSF sums to zero",
    ),
    "NaN in psf": (
        lambda t, a: folder(t, a, psf=with_pixels(a["psf"], np.nan, (0, 0))),
        "/psf.fits",
        "PSF has 1 NaN/inf pixels",
    ),
    "psf larger than the image": (
        lambda t, a: folder(t, a, psf=np.ones((13, 5))),
        "/psf.fits",
        "PSF shape (13, 5) is larger than the image shape (12, 10)",
    ),
    "zero pixel scale": (lambda t, a: folder(t, a, pixel_scale=0.0), "/image.fits", "pixel scale 0.0 must be > 0"),
    "negative pixel scale": (
        lambda t, a: folder(t, a, pixel_scale=-0.05),
        "/image.fits",
        "pixel scale -0.05 must be > 0",
    ),
    "mask hides every pixel": (
        lambda t, a: mef(t, a, mask=np.ones((12, 10), bool)),
        "[MASK]",
        "the mask leaves no pixel unmasked",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_problem_is_reported_with_the_dataset_the_file_and_the_reason(tmp_path, arrays, case):
    make, file, reason = CASES[case]  # file: what the message names, after the dataset's path
    path = make(tmp_path, arrays)
    with pytest.raises(DatasetError) as raised:
        validate_imaging(load_imaging(str(path), ID))
    error = raised.value
    assert error.dataset_id == ID
    assert error.path == str(path) + file
    assert reason in error.reason
    assert str(error) == f"dataset {ID}: {error.path}: {error.reason}"
    assert "\n" not in str(error)


def test_the_fit_mask_decides_which_pixels_must_be_good(tmp_path, arrays):
    path = folder(tmp_path, arrays, image=with_pixels(arrays["image"], np.nan, (0, 0)))
    data = load_imaging(str(path), ID)
    validate_imaging(data, mask=arrays["mask"])  # (0, 0) is masked by the fit
    with pytest.raises(DatasetError, match=r"first at \(y, x\) = \(0, 0\)"):
        validate_imaging(data)
    with pytest.raises(DatasetError, match=r"fit mask shape \(3, 3\) differs"):
        validate_imaging(data, mask=np.zeros((3, 3), bool))


def test_dataset_errors_survive_pickling_as_ray_ships_them():
    error = pickle.loads(pickle.dumps(DatasetError(ID, "/data/psf.fits", "PSF sums to zero")))
    assert (error.dataset_id, error.path, error.reason) == (ID, "/data/psf.fits", "PSF sums to zero")
