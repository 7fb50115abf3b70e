"""Real cutouts in the layouts they come in: four SLACS HST lenses (PyAutoLens folders with mask.fits) and a
Euclid Q1 MER cutout (one FITS file with every band, info.json, mask_extra_galaxies.fits); the expected
numbers are read from the files with astropy directly and from the SLACS reference.csv."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from shared_data import EUCLID, REAL, SLACS
from storage.catalog import read_catalog
from storage.datasets import dataset_fingerprint, load_imaging, read_shapes, validate_imaging
from storage.errors import CatalogError, DatasetError

EUCLID_FILE = EUCLID / f"{EUCLID.name}.fits"
EUCLID_BANDS = "DES_G, DES_I, DES_R, DES_Z, NIR_H, NIR_J, NIR_Y, VIS"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="the real cutouts are not on this machine")


def slacs_reference() -> dict[str, dict]:
    with open(SLACS / "reference.csv") as f:
        return {row["name"]: row for row in csv.DictReader(f)}


def shape_of(text: str) -> tuple[int, int]:
    ny, nx = text.split("x")
    return int(ny), int(nx)


@pytest.mark.parametrize("lens", ["J0029-0055", "J0252+0039", "J0737+3216", "J0956+5100"])
def test_slacs_folders_load_with_their_mask_and_a_unit_sum_psf(lens):
    reference = slacs_reference()[lens]
    folder = SLACS / lens
    data = load_imaging(str(folder), lens)
    raw_psf = fits.getdata(folder / "psf.fits").astype(np.float64)
    noise = fits.getdata(folder / "noise_map.fits")

    assert data.image.shape == data.noise_map.shape == shape_of(reference["shape"]) == (201, 201)
    assert data.psf.shape == shape_of(reference["psf"]) == (15, 15)
    assert data.pixel_scale == 0.05
    assert data.psf_raw_sum == raw_psf.sum()
    np.testing.assert_array_equal(data.psf, raw_psf / raw_psf.sum())
    assert abs(data.psf.sum() - 1.0) < 1e-12
    assert data.file_of("mask") == str(folder / "mask.fits")
    # the masked neighbours are exactly the pixels whose noise is 1e8, and the used pixels those reference.csv counts
    np.testing.assert_array_equal(data.mask, noise == 1e8)
    assert int((~data.mask).sum()) == int(reference["used_pixels"])
    validate_imaging(data)

    shapes = read_shapes(str(folder), lens)
    assert (shapes.image_shape, shapes.psf_shape, shapes.pixel_scale) == ((201, 201), (15, 15), 0.05)
    np.testing.assert_array_equal(shapes.mask, data.mask)
    assert shapes.mask_radius is None and shapes.mask_centre is None


@pytest.mark.parametrize("band, psf_shape", [(None, (21, 21)), ("VIS", (21, 21)), ("nir_h", (33, 33)),
                                             ("DES_G", (49, 49))])
def test_euclid_cutout_folder_loads_one_band_with_its_info_and_extra_galaxy_mask(band, psf_shape):
    extension = (band or "VIS").upper()
    data = load_imaging(str(EUCLID), "q1", band=band)
    with fits.open(EUCLID_FILE) as hdul:
        image = hdul[f"{extension}_BGSUB"].data.astype(np.float64)
        rms = hdul[f"{extension}_RMS"].data.astype(np.float64)
        raw_psf = hdul[f"{extension}_PSF"].data.astype(np.float64)
    extra = fits.getdata(EUCLID / "mask_extra_galaxies.fits") != 0

    np.testing.assert_array_equal(data.image, image)
    np.testing.assert_array_equal(data.noise_map, rms)
    assert data.image.shape == (100, 100) and data.psf.shape == psf_shape
    assert data.pixel_scale == 0.1  # info.json, the WCS (CD = 2.78e-5 deg) agreeing
    assert data.psf_raw_sum == raw_psf.sum()
    assert abs(data.psf.sum() - 1.0) < 1e-12
    if extension == "VIS":
        assert abs(data.psf_raw_sum - 0.9555150783595707) < 1e-7  # VIS's stamp is not normalised in the file
    np.testing.assert_array_equal(data.mask, extra)
    assert (data.mask_radius, data.mask_centre) == (3.5, (0.0, 0.0))
    assert data.files == {
        "image": f"{EUCLID_FILE}[{extension}_BGSUB]", "noise_map": f"{EUCLID_FILE}[{extension}_RMS]",
        "psf": f"{EUCLID_FILE}[{extension}_PSF]", "mask": str(EUCLID / "mask_extra_galaxies.fits"),
    }
    validate_imaging(data)

    shapes = read_shapes(str(EUCLID), "q1", band=band)
    assert (shapes.image_shape, shapes.psf_shape, shapes.pixel_scale) == ((100, 100), psf_shape, 0.1)
    assert (shapes.mask_radius, shapes.mask_centre) == (3.5, (0.0, 0.0))
    assert shapes.masked_pixels == tuple(np.flatnonzero(extra))


def test_euclid_cutout_file_alone_has_no_side_files():
    data = load_imaging(str(EUCLID_FILE), "q1", band="NIR_Y")
    assert abs(data.pixel_scale - 0.1) < 1e-12  # from the WCS alone: CD1_1 = 2.777777777778e-05 deg
    assert data.mask is None and data.mask_radius is None and data.mask_centre is None
    assert data.psf.shape == (33, 33)


def test_the_fingerprint_covers_the_cutout_and_its_side_files(tmp_path):
    folder = copy_cutout(tmp_path)
    before = dataset_fingerprint(str(folder), "q1")
    (folder / "info.json").write_text(json.dumps({"pixel_scale": 0.1, "mask_radius": 3.0}))
    after_info = dataset_fingerprint(str(folder), "q1")
    (folder / "mask_extra_galaxies.fits").unlink()
    assert len({before, after_info, dataset_fingerprint(str(folder), "q1")}) == 3


def copy_cutout(tmp_path) -> Path:
    folder = tmp_path / EUCLID.name
    shutil.copytree(EUCLID, folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def rewrite_cutout(folder: Path, change) -> None:
    file = folder / f"{folder.name}.fits"
    with fits.open(file) as hdul:
        hdus = change(fits.HDUList([hdu.copy() for hdu in hdul]))
    hdus.writeto(file, overwrite=True)


def test_a_band_the_file_lacks_names_the_bands_it_has(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_imaging(str(EUCLID), "q1", band="NIR_K")
    assert str(e.value) == (f"dataset q1: {EUCLID_FILE}: band NIR_K: no extension NIR_K_BGSUB; the file has bands "
                            f"{EUCLID_BANDS}")

    folder = copy_cutout(tmp_path)
    rewrite_cutout(folder, lambda hdus: fits.HDUList([h for h in hdus if h.name != "VIS_RMS"]))
    for read in (load_imaging, read_shapes):
        if read is read_shapes:  # planning reads no noise map
            assert read(str(folder), "q1").psf_shape == (21, 21)
            continue
        with pytest.raises(DatasetError, match=r"\.fits: band VIS: no extension VIS_RMS; the file has bands "
                                               + EUCLID_BANDS):
            read(str(folder), "q1")


def test_a_psf_of_another_band_is_refused(tmp_path):
    folder = copy_cutout(tmp_path)

    def swap(hdus):
        des_g = hdus["DES_G_PSF"].copy()
        des_g.name = "VIS_PSF"
        hdus[hdus.index_of("VIS_PSF")] = des_g
        return hdus

    rewrite_cutout(folder, swap)
    for read in (load_imaging, read_shapes):
        with pytest.raises(DatasetError) as e:
            read(str(folder), "q1")
        assert str(e.value) == (f"dataset q1: {folder / folder.name}.fits[VIS_PSF]: VIS_PSF is band DES_G's PSF "
                                "(FILTER = 'DES_G', shape (49, 49)), not band VIS's")


@pytest.mark.parametrize("info, reason", [
    ({"mask_radius": 3.5}, "no pixel_scale (keys are ['mask_radius'])"),
    ({"pixel_scale": -0.1}, "pixel_scale -0.1 must be a finite number > 0 arcsec"),
    ({"pixel_scale": 0.1, "mask_centre": [0.1]}, "mask_centre [0.1] must be [y, x] in arcsec"),
    ([0.1], "expected a JSON object, found list"),
])
def test_a_bad_info_json_is_refused(tmp_path, info, reason):
    folder = copy_cutout(tmp_path)
    (folder / "info.json").write_text(json.dumps(info))
    for read in (load_imaging, read_shapes):
        with pytest.raises(DatasetError) as e:
            read(str(folder), "q1")
        assert str(e.value) == f"dataset q1: {folder / 'info.json'}: {reason}"


def test_an_info_json_pixel_scale_must_agree_with_the_wcs(tmp_path):
    folder = copy_cutout(tmp_path)
    (folder / "info.json").write_text(json.dumps({"pixel_scale": 0.2}))
    with pytest.raises(DatasetError, match=r"VIS_BGSUB\]: pixel scale disagrees: info.json 0.2 arcsec vs WCS 0.1 "):
        load_imaging(str(folder), "q1")


def test_a_mask_that_leaves_nothing_names_the_mask_file(tmp_path):
    folder = copy_cutout(tmp_path)
    extra = folder / "mask_extra_galaxies.fits"
    fits.PrimaryHDU(np.ones((100, 100))).writeto(extra, overwrite=True)
    with pytest.raises(DatasetError) as e:
        validate_imaging(load_imaging(str(folder), "q1"))
    assert str(e.value) == f"dataset q1: {extra}: the mask leaves no pixel unmasked"

    lens = tmp_path / "J0029-0055"
    shutil.copytree(SLACS / lens.name, lens)
    (lens / "mask.fits").chmod(0o644)
    fits.PrimaryHDU(np.ones((201, 201), np.uint8)).writeto(lens / "mask.fits", overwrite=True)
    with pytest.raises(DatasetError) as e:
        validate_imaging(load_imaging(str(lens), lens.name))
    assert str(e.value) == f"dataset J0029-0055: {lens / 'mask.fits'}: the mask leaves no pixel unmasked"


def test_a_band_is_refused_for_a_single_band_layout():
    with pytest.raises(DatasetError) as e:
        load_imaging(str(SLACS / "J0029-0055"), "J0029-0055", band="VIS")
    assert str(e.value) == (f"dataset J0029-0055: {SLACS / 'J0029-0055'}: a band (VIS) is given, but only a "
                            "Euclid cutout has bands")


def test_a_folder_with_neither_layout_says_what_it_looked_for(tmp_path):
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(DatasetError) as e:
        load_imaging(str(empty), "x")
    assert str(e.value) == f"dataset x: {empty / 'image.fits'}: file not found (nor a Euclid cutout nothing.fits)"


def test_catalog_band_and_mask_centre_columns(tmp_path):
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "id,path,band,mask_centre\n"
        f"q1-vis,{EUCLID},,\n"
        f"q1-h,{EUCLID},nir_h,\"0.3, -0.2\"\n"
        f"J0029,{SLACS / 'J0029-0055'},,\"[0.05 , 0.1]\"\n"
    )
    entries = read_catalog(str(catalog)).entries
    assert [(e.band, e.mask_centre) for e in entries] == [(None, None), ("NIR_H", (0.3, -0.2)), (None, (0.05, 0.1))]

    catalog.write_text(f"id,path,mask_centre\nq1,{EUCLID},0.3\n")
    with pytest.raises(CatalogError, match=r"row 1 \(id 'q1'\): mask_centre '0.3' is not 'y, x' in arcsec"):
        read_catalog(str(catalog))
