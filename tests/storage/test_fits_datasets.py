"""Datasets round-trip through both layouts (PyAutoLens folder, multi-extension FITS) as native float64."""

import numpy as np
import pytest
from astropy.io import fits

from storage.datasets import load_imaging, validate_imaging, write_imaging, write_imaging_mef


def assert_native_float64_equal(loaded: np.ndarray, expected: np.ndarray) -> None:
    assert loaded.dtype == np.float64 and loaded.dtype.byteorder in "=|"
    np.testing.assert_array_equal(loaded, expected)


@pytest.mark.parametrize("with_mask", [False, True])
def test_folder_layout_round_trip(tmp_path, arrays, with_mask):
    folder = tmp_path / "lens-1"
    mask = arrays["mask"] if with_mask else None
    write_imaging(str(folder), arrays["image"], arrays["noise_map"], arrays["psf"], 0.05, mask=mask)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["image.fits", "noise_map.fits", "psf.fits"] + (["mask.fits"] if with_mask else [])
    )
    assert fits.getheader(folder / "image.fits")["PIXSCALE"] == 0.05
    assert fits.getdata(folder / "image.fits").dtype.byteorder == ">"  # FITS is big-endian on disk

    data = load_imaging(str(folder), "lens-1")
    for name in ("image", "noise_map", "psf"):
        assert_native_float64_equal(getattr(data, name), arrays[name])
    assert data.pixel_scale == 0.05 and data.dataset_id == "lens-1" and data.path == str(folder)
    assert data.file_of("psf") == str(folder / "psf.fits")
    if with_mask:
        assert data.mask.dtype == bool
        np.testing.assert_array_equal(data.mask, arrays["mask"])
    else:
        assert data.mask is None
    validate_imaging(data)


@pytest.mark.parametrize("with_mask", [False, True])
def test_multi_extension_round_trip(tmp_path, arrays, with_mask):
    file = tmp_path / "lens-2.fits"
    mask = arrays["mask"] if with_mask else None
    write_imaging_mef(str(file), arrays["image"], arrays["noise_map"], arrays["psf"], 0.1, mask=mask)
    with fits.open(file) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "DATA", "NOISE", "PSF"] + (["MASK"] if with_mask else [])

    data = load_imaging(str(file), "lens-2")
    for name in ("image", "noise_map", "psf"):
        assert_native_float64_equal(getattr(data, name), arrays[name])
    assert data.pixel_scale == 0.1
    assert data.file_of("noise_map") == f"{file}[NOISE]"
    if with_mask:
        np.testing.assert_array_equal(data.mask, arrays["mask"])
    else:
        assert data.mask is None
    validate_imaging(data)


def test_foreign_files_big_endian_float32_and_any_nonzero_mask_value(tmp_path, arrays):
    """Files written by other tools: float32 big-endian data, extensions in any order, mask values 0/255."""
    file = tmp_path / "survey_cutout.fits"
    mask = np.where(arrays["mask"], 255, 0).astype(np.int16)
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(arrays["psf"].astype(">f4"), name="PSF"),
            fits.ImageHDU(mask, name="MASK"),
            fits.ImageHDU(arrays["noise_map"].astype(">f4"), name="NOISE"),
            fits.ImageHDU(arrays["image"].astype(">f4"), name="DATA", header=fits.Header({"PIXSCALE": 0.2})),
        ]
    ).writeto(file)
    data = load_imaging(str(file), "cutout")
    assert_native_float64_equal(data.image, arrays["image"].astype(np.float32).astype(np.float64))
    stored_psf = arrays["psf"].astype(np.float32).astype(np.float64)  # sums to 1 only to float32 precision
    assert data.psf_raw_sum == stored_psf.sum() != 1.0
    assert_native_float64_equal(data.psf, stored_psf / stored_psf.sum())  # normalised as PyAutoLens does
    np.testing.assert_array_equal(data.mask, arrays["mask"])


def test_a_dataset_can_be_read_from_a_url(tmp_path, arrays):
    file = tmp_path / "lens-3.fits"
    write_imaging_mef(f"file://{file}", arrays["image"], arrays["noise_map"], arrays["psf"], 0.1)
    data = load_imaging(f"file://{file}", "lens-3")
    assert data.path == f"file://{file}"
    assert_native_float64_equal(data.image, arrays["image"])


def test_nan_and_bad_noise_outside_the_used_pixels_are_fine(tmp_path, arrays):
    image, noise = arrays["image"].copy(), arrays["noise_map"].copy()
    image[0, 0], noise[0, 1], noise[11, 9] = np.nan, 0.0, -1.0  # all in the masked outer ring
    write_imaging(str(tmp_path / "lens"), image, noise, arrays["psf"], 0.05, mask=arrays["mask"])
    validate_imaging(load_imaging(str(tmp_path / "lens"), "lens"))

    write_imaging(str(tmp_path / "unmasked"), image, noise, arrays["psf"], 0.05)
    validate_imaging(load_imaging(str(tmp_path / "unmasked"), "lens"), mask=arrays["mask"])  # the fit's mask
