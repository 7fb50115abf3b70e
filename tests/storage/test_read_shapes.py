"""read_shapes: a dataset's image and PSF shapes and pixel scale from FITS headers alone, for planning a survey.

It agrees with load_imaging on every readable dataset and fails the way load_imaging does on unreadable ones.
"""

import numpy as np
import pytest
from astropy.io import fits

from storage.datasets import load_imaging, read_shapes, write_imaging, write_imaging_mef
from storage.errors import DatasetError

ID = "J0001+0001"


def test_folder_shapes_and_pixel_scale_match_load_imaging(tmp_path, arrays):
    write_imaging(str(tmp_path / ID), arrays["image"], arrays["noise_map"], arrays["psf"], 0.05)
    shapes = read_shapes(str(tmp_path / ID), ID)
    data = load_imaging(str(tmp_path / ID), ID)
    assert shapes.image_shape == data.image.shape == (12, 10)
    assert shapes.psf_shape == data.psf.shape == (5, 5)
    assert shapes.pixel_scale == data.pixel_scale == 0.05


def test_multi_extension_file(tmp_path, arrays):
    file = tmp_path / f"{ID}.fits"
    write_imaging_mef(str(file), arrays["image"], arrays["noise_map"], np.ones((3, 7)), 0.2, mask=arrays["mask"])
    shapes = read_shapes(str(file), ID)
    assert (shapes.image_shape, shapes.psf_shape, shapes.pixel_scale) == ((12, 10), (3, 7), 0.2)


def test_catalog_pixel_scale_is_checked_against_the_header(tmp_path, arrays):
    write_imaging(str(tmp_path / ID), arrays["image"], arrays["noise_map"], arrays["psf"], 0.05)
    assert read_shapes(str(tmp_path / ID), ID, pixel_scale=0.05).pixel_scale == 0.05
    with pytest.raises(DatasetError, match="pixel scale disagrees"):
        read_shapes(str(tmp_path / ID), ID, pixel_scale=0.1)


def test_a_file_truncated_inside_its_data_is_refused_like_load_imaging_does(tmp_path, arrays):
    write_imaging(str(tmp_path / ID), arrays["image"], arrays["noise_map"], arrays["psf"], 0.05)
    image = tmp_path / ID / "image.fits"
    image.write_bytes(image.read_bytes()[: 2880 + 100])  # the header block survives, the data does not
    for read in (read_shapes, load_imaging):
        with pytest.raises(DatasetError, match="truncated or unreadable FITS file"):
            read(str(tmp_path / ID), ID)


@pytest.mark.parametrize(
    "breakage, where, reason",
    [
        ("missing folder", "", "no such file or folder"),
        ("missing psf.fits", "/psf.fits", "file not found"),
        ("garbage image.fits", "/image.fits", "truncated or unreadable FITS file"),
        ("truncated header", "/image.fits", "truncated or unreadable FITS file"),
        ("empty image HDU", "/image.fits", "FITS file holds no image data"),
        ("3-D psf", "/psf.fits", "psf is 3-D"),
    ],
)
def test_unreadable_datasets_raise_dataset_errors_naming_the_file(tmp_path, arrays, breakage, where, reason):
    folder = tmp_path / ID
    psf = np.ones((2, 3, 3)) if breakage == "3-D psf" else arrays["psf"]
    write_imaging(str(folder), arrays["image"], arrays["noise_map"], psf, 0.05)
    path = folder
    if breakage == "missing folder":
        path = tmp_path / "nowhere"
    elif breakage == "missing psf.fits":
        (folder / "psf.fits").unlink()
    elif breakage == "garbage image.fits":
        (folder / "image.fits").write_bytes(b"not FITS" * 400)
    elif breakage == "truncated header":
        (folder / "image.fits").write_bytes((folder / "image.fits").read_bytes()[:1000])
    elif breakage == "empty image HDU":
        fits.PrimaryHDU().writeto(folder / "image.fits", overwrite=True)
    with pytest.raises(DatasetError) as caught:
        read_shapes(str(path), ID)
    assert caught.value.dataset_id == ID
    assert caught.value.path == f"{path}{where}"
    assert reason in caught.value.reason


def test_missing_psf_extension(tmp_path, arrays):
    file = tmp_path / f"{ID}.fits"
    write_imaging_mef(str(file), arrays["image"], arrays["noise_map"], arrays["psf"], 0.05)
    with fits.open(file) as hdul:
        fits.HDUList([h.copy() for h in hdul if h.name != "PSF"]).writeto(file, overwrite=True)
    with pytest.raises(DatasetError, match="missing extension PSF"):
        read_shapes(str(file), ID)
