"""The fit's mask and shape bucket of real cutouts: the circle (about the lens's mask centre) together with the
files' mask, and the bucket planning predicts from headers and the mask equal to the one the loaded data gets."""

import tomllib

import numpy as np
import pytest

from scheduler.plan import make_plan
from shared_data import EUCLID, REAL, SLACS
from storage.catalog import CatalogEntry, read_catalog, write_catalog
from storage.datasets import load_imaging, read_shapes
from workers.config import parse_config
from workers.datasets import fit_mask, mask_geometry, masked_imaging
from workers.inversion.imaging import prepare_imaging
from workers.model.buckets import bucket_for_shapes, common_bucket
from workers.model.grids import circular_mask, pixel_centres

SLACS_RADIUS = 7.121  # reference.csv's mask_outer_radius: the circle holds the whole 201 x 201 image
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="the real cutouts are not on this machine")

FIT_TOML = """
[dataset]
mask_radius = 3.0
over_sample_size_lp = 1
over_sample_size_pixelization = 1

[lens.mass]
type = "isothermal"

[source]
type = "mge"
gaussians = 10
sigma_min = 0.02
"""


@pytest.fixture(scope="module")
def config():
    return parse_config(tomllib.loads(FIT_TOML), "fit.toml")


def predicted(path: str, dataset_id: str, config, radius: float, centre=(0.0, 0.0), band=None):
    """The exact bucket planning predicts, from headers and the mask file alone."""
    shapes = read_shapes(path, dataset_id, band=band)
    return bucket_for_shapes(shapes.image_shape, shapes.psf_shape, shapes.pixel_scale, radius,
                             config.dataset.over_sample_size_lp, config.dataset.over_sample_size_pixelization,
                             centre, shapes.mask)


@pytest.mark.parametrize("lens, used", [("J0029-0055", 39233), ("J0252+0039", 38156), ("J0737+3216", 38586),
                                        ("J0956+5100", 38017)])
def test_slacs_mask_file_is_part_of_the_fit_mask_and_of_the_predicted_bucket(config, lens, used):
    data = load_imaging(str(SLACS / lens), lens)
    imaging = masked_imaging(data, config.dataset, config.model, mask_radius=SLACS_RADIUS)
    mask = fit_mask(data, SLACS_RADIUS)
    assert mask[data.noise_map == 1e8].all()  # every flagged neighbour pixel is masked
    assert imaging.bucket.pixels == int((~mask).sum()) == used  # reference.csv's used_pixels
    assert imaging.bucket.blurring > 0  # the neighbours' holes are blurring pixels
    assert predicted(str(SLACS / lens), lens, config, SLACS_RADIUS) == imaging.bucket


@pytest.mark.parametrize("band", [None, "NIR_H"])
def test_euclid_circle_from_info_json_and_predicted_bucket(config, band):
    data = load_imaging(str(EUCLID), "q1", band=band)
    assert mask_geometry(data, config.dataset) == (3.5, (0.0, 0.0))  # info.json's, not the config's 3.0
    imaging = masked_imaging(data, config.dataset, config.model)
    np.testing.assert_array_equal(fit_mask(data, 3.5), circular_mask((100, 100), 0.1, 3.5))  # nothing extra masked
    assert imaging.bucket.pixels == int((~circular_mask((100, 100), 0.1, 3.5)).sum())
    assert predicted(str(EUCLID), "q1", config, 3.5, band=band) == imaging.bucket


def test_a_mask_centre_moves_the_circle_and_the_prediction_follows(config):
    data = load_imaging(str(EUCLID), "q1")
    centre = (0.45, -0.8)
    radius, got = mask_geometry(data, config.dataset, mask_radius=1.2, mask_centre=centre)
    assert (radius, got) == (1.2, centre)
    mask = fit_mask(data, radius, centre)
    yx = pixel_centres((100, 100), 0.1)
    r2 = (yx[..., 0] - centre[0]) ** 2 + (yx[..., 1] - centre[1]) ** 2
    np.testing.assert_array_equal(~mask, r2 < 1.2**2)
    imaging = masked_imaging(data, config.dataset, config.model, mask_radius=1.2, mask_centre=centre)
    assert imaging.bucket.pixels == int((r2 < 1.2**2).sum())
    assert predicted(str(EUCLID), "q1", config, 1.2, centre) == imaging.bucket
    assert predicted(str(EUCLID), "q1", config, 1.2) != imaging.bucket  # the centre changes the canvas


def test_the_plan_carries_band_radius_centre_and_mask_to_the_buckets(tmp_path, config):
    entries = [CatalogEntry(id=lens, path=str(SLACS / lens), mask_radius=SLACS_RADIUS)
               for lens in ("J0029-0055", "J0956+5100")]
    entries += [CatalogEntry(id="q1-vis", path=str(EUCLID)),
                CatalogEntry(id="q1-h", path=str(EUCLID), band="NIR_H", mask_centre=(0.2, -0.3))]
    write_catalog(str(tmp_path / "catalog.ecsv"), entries)
    catalog = read_catalog(str(tmp_path / "catalog.ecsv"))
    assert [(e.band, e.mask_centre) for e in catalog.entries][2:] == [(None, None), ("NIR_H", (0.2, -0.3))]
    config = parse_config(tomllib.loads(FIT_TOML.replace("[dataset]", "[search]\n\n[dataset]")), "fit.toml")
    plan = make_plan(catalog, config, block_size=2)
    specs = {d.id: d for d in plan.datasets}
    assert not plan.invalid and all(d.bucket >= 0 for d in plan.datasets)
    assert (specs["q1-vis"].mask_radius, specs["q1-vis"].mask_centre, specs["q1-vis"].band) == (3.5, (0.0, 0.0), None)
    assert (specs["q1-h"].mask_radius, specs["q1-h"].mask_centre, specs["q1-h"].band) == (3.5, (0.2, -0.3), "NIR_H")
    for spec in plan.datasets:
        data = load_imaging(spec.path, spec.id, band=spec.band)
        imaging = masked_imaging(data, config.dataset, config.model, spec.mask_radius, spec.mask_centre)
        bucket = plan.buckets[spec.bucket]
        assert bucket.bucket == common_bucket([imaging.bucket])
    for bucket in plan.buckets:  # the warm-up dataset (workers.block) of the example's fit mask has the planned bucket
        psf = np.zeros(bucket.psf_shape)
        psf[bucket.psf_shape[0] // 2, bucket.psf_shape[1] // 2] = 1.0
        warm = prepare_imaging(np.zeros(bucket.image_shape), np.ones(bucket.image_shape), psf, bucket.pixel_scale,
                               mask_radius=bucket.mask_radius, mask=bucket.mask(), over_sample_size_lp=1,
                               over_sample_size_pixelization=1)
        assert common_bucket([warm.bucket]) == bucket.bucket
        assert type(bucket).from_dict(bucket.to_dict()) == bucket
