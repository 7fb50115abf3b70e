"""Grid, mask, over-sampling and blurring-region conventions (CONVENTIONS.md, Grids and masks)."""

from __future__ import annotations

import numpy as np

from workers.model.grids import (
    blurring_mask, circular_mask, pixel_centres, radial_bin_sub_sizes, sub_grid, sub_pixel_offsets,
)
from workers.inversion.imaging import prepare_imaging
from workers.model.grids import RadialOverSampling


def test_pixel_centres_are_y_up_about_the_image_centre():
    c = pixel_centres((4, 3), 0.5)
    np.testing.assert_allclose(c[0, 0], [0.75, -0.5])
    np.testing.assert_allclose(c[3, 2], [-0.75, 0.5])


def test_circular_mask_is_strict_and_true_means_masked():
    mask = circular_mask((5, 5), 1.0, radius=1.0)
    # the 4 neighbours of the centre lie exactly at r = 1.0: masked (strict <)
    assert mask.sum() == 24 and not mask[2, 2]


def test_sub_pixels_run_down_in_y_then_across_in_x():
    off = sub_pixel_offsets(2, 1.0)
    np.testing.assert_allclose(off, [[0.25, -0.25], [0.25, 0.25], [-0.25, -0.25], [-0.25, 0.25]])


def test_radial_bins_pick_the_first_radius_reached():
    centres = np.array([[0.0, 0.1], [0.0, 0.5], [0.0, 2.0]])
    np.testing.assert_array_equal(radial_bin_sub_sizes(centres, [8, 4, 2], [0.3, 1.0]), [8, 4, 2])


def test_adaptive_sub_grid_means_each_pixel_over_its_own_sub_pixels():
    centres = np.array([[0.0, 0.0], [0.0, 1.0]])
    grid = sub_grid(centres, np.array([3, 1]), 1.0)
    assert len(grid.points) == 10
    np.testing.assert_array_equal(grid.pixel, [0] * 9 + [1])
    np.testing.assert_allclose(np.bincount(grid.pixel, grid.weight), [1.0, 1.0])
    np.testing.assert_allclose(np.bincount(grid.pixel, grid.weight * grid.points[:, 1]), [0.0, 1.0], atol=1e-15)


def test_blurring_pixels_are_masked_pixels_within_the_psf_box_of_a_used_pixel():
    mask = np.ones((7, 7), bool)
    mask[3, 3] = False
    blur = blurring_mask(mask, (3, 3))  # on the frame grown by one pixel each side: pixel (3, 3) is at (4, 4)
    assert blur.shape == (9, 9) and blur.sum() == 8 and blur[3:6, 3:6].sum() == 8 and not blur[4, 4]


def test_blurring_pixels_reach_past_the_image_edge():
    # A used pixel in the corner of a 6x6 image: with a 5x3 PSF its blurring box reaches 2 rows and 1 column past
    # the image; those pixels count (PyAutoArray's allow_padding), at centres continuing the image's grid.
    mask = np.ones((6, 6), bool)
    mask[0, 0] = False
    blur = blurring_mask(mask, (5, 3))
    assert blur.shape == (10, 8) and blur.sum() == 14 and blur[0:5, 0:3].sum() == 14
    centres = pixel_centres(blur.shape, 0.5)
    np.testing.assert_allclose(centres[2, 1], pixel_centres((6, 6), 0.5)[0, 0])
    np.testing.assert_allclose(centres[blur].max(0), [2.25, -0.75])
    imaging = prepare_imaging(np.ones((6, 6)), np.ones((6, 6)), np.ones((5, 3)), 0.5, mask=mask)
    assert imaging.bucket.blurring == 14 and imaging.bucket.canvas == (5, 3)
    np.testing.assert_allclose(np.asarray(imaging.blurring_points).max(0), [2.25, -0.75])


def test_prepared_imaging_counts_match_the_mask_and_over_sampling():
    image = np.ones((20, 20))
    psf = np.ones((3, 3))
    imaging = prepare_imaging(image, image, psf, 0.1, mask_radius=0.6,
                              over_sample_size_lp=RadialOverSampling((4, 2), (0.3,)), over_sample_size_pixelization=3)
    used = (~circular_mask((20, 20), 0.1, 0.6)).sum()
    assert imaging.bucket.pixels == used
    assert imaging.bucket.pix_sub == 9 * used
    np.testing.assert_allclose(np.bincount(imaging.lp_pixel, imaging.lp_weight), np.ones(used))


def test_bucket_predicted_from_shapes_equals_the_prepared_datasets():
    from workers.model.buckets import bucket_for_shapes

    image = np.ones((40, 36))
    psf = np.ones((5, 7))
    over_lp = RadialOverSampling((4, 2), (0.5,))
    imaging = prepare_imaging(image, image, psf, 0.1, mask_radius=1.4, over_sample_size_lp=over_lp,
                              over_sample_size_pixelization=3)
    assert bucket_for_shapes((40, 36), (5, 7), 0.1, 1.4, over_lp, 3) == imaging.bucket
