"""Pixel scale: the catalog's value, else PIXSCALE, else the WCS (degrees -> arcsec); all present must agree."""

import numpy as np
import pytest
from astropy.io import fits

from storage.datasets import load_imaging
from storage.errors import DatasetError


def dataset(tmp_path, arrays, **header):
    """A dataset folder whose image.fits carries exactly `header` (no PIXSCALE unless given)."""
    folder = tmp_path / "lens"
    folder.mkdir()
    fits.PrimaryHDU(arrays["image"], header=fits.Header(header)).writeto(folder / "image.fits")
    fits.PrimaryHDU(arrays["noise_map"]).writeto(folder / "noise_map.fits")
    fits.PrimaryHDU(arrays["psf"]).writeto(folder / "psf.fits")
    return str(folder)


def celestial(cdelt_deg: float, **extra) -> dict:
    return {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CDELT1": -cdelt_deg, "CDELT2": cdelt_deg, **extra}


def rotated_cd(scale_deg: float, angle_deg: float) -> dict:
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    return {
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
        **{"CD1_1": -scale_deg * c, "CD1_2": scale_deg * s, "CD2_1": scale_deg * s, "CD2_2": scale_deg * c},
    }


@pytest.mark.parametrize(
    "header, catalog, expected",
    [
        ({}, 0.05, 0.05),
        ({"PIXSCALE": 0.1}, None, 0.1),
        (celestial(0.05 / 3600), None, 0.05),
        (rotated_cd(0.03 / 3600, 37.0), None, 0.03),
        (
            {
                "CTYPE1": "RA---TAN",
                "CTYPE2": "DEC--TAN",
                "CDELT1": -0.2,
                "CDELT2": 0.2,
                "CUNIT1": "arcsec",
                "CUNIT2": "arcsec",
            },
            None,
            0.2,
        ),
        ({"PIXSCALE": 0.1, **celestial(0.10004 / 3600)}, None, 0.1),  # 0.04% apart: PIXSCALE wins
        ({"PIXSCALE": 0.1}, 0.10008, 0.10008),  # the catalog wins
    ],
    ids=["catalog", "PIXSCALE", "WCS CDELT", "WCS rotated CD", "WCS in arcsec", "PIXSCALE over WCS", "catalog first"],
)
def test_pixel_scale_sources_in_order(tmp_path, arrays, header, catalog, expected):
    data = load_imaging(dataset(tmp_path, arrays, **header), "lens", pixel_scale=catalog)
    assert data.pixel_scale == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "header, catalog, reason",
    [
        ({"PIXSCALE": 0.1}, 0.05, "pixel scale disagrees: catalog 0.05 arcsec vs PIXSCALE 0.1 arcsec (more than 0.1%)"),
        ({"PIXSCALE": 0.1, **celestial(0.1012 / 3600)}, None, "PIXSCALE 0.1 arcsec vs WCS 0.1012 arcsec"),
        (celestial(0.0502 / 3600), 0.05, "catalog 0.05 arcsec vs WCS 0.0502 arcsec"),
        ({}, None, "no pixel scale: give a pixel_scale catalog column, a PIXSCALE keyword or a WCS"),
        ({"PIXSCALE": "small"}, None, "PIXSCALE 'small' is not a number"),
        ({**celestial(0.05 / 3600), "CDELT2": 0.06 / 3600}, None, "WCS pixels are not square"),
    ],
    ids=["catalog vs PIXSCALE", "PIXSCALE vs WCS", "catalog vs WCS", "none", "not a number", "not square"],
)
def test_missing_or_disagreeing_pixel_scales_are_errors(tmp_path, arrays, header, catalog, reason):
    folder = dataset(tmp_path, arrays, **header)
    with pytest.raises(DatasetError) as raised:
        load_imaging(folder, "lens-9", pixel_scale=catalog)
    assert str(raised.value) == f"dataset lens-9: {folder}/image.fits: {raised.value.reason}"
    assert reason in raised.value.reason
