import numpy as np
import pytest

from depthapp.calibration.model import StereoCalibration
from depthapp.geometry import (depth_to_disparity, disparity_to_depth, disparity_to_points,
                               pixel_to_point)


@pytest.fixture
def calibration():
    # Middlebury 2014 Motorcycle at quarter size: f=994.978, B=0.193001 m, doffs=31.086.
    return StereoCalibration.from_rectified(focal=994.97775, baseline=0.193001, cx_left=311.193,
                                            cx_right=342.27875, cy=254.87675, image_size=(6, 4))


def test_depth_by_hand(calibration):
    disparity = np.full((4, 6), np.nan, np.float32)
    disparity[1, 2] = 50.0
    disparity[0, 0] = -31.08575  # d + doffs = 0: infinitely far, not a depth
    disparity[0, 1] = -40.0      # d + doffs < 0: behind the cameras, not a depth
    depth = disparity_to_depth(disparity, calibration)
    assert depth[1, 2] == pytest.approx(994.97775 * 0.193001 / (50.0 + 31.08575), rel=1e-6)
    assert np.isnan(depth[0, 0]) and np.isnan(depth[0, 1]) and np.isnan(depth[3, 5])
    np.testing.assert_allclose(depth_to_disparity(depth, calibration)[1, 2], 50.0, rtol=1e-5)


def test_doffs_is_not_ignored(calibration):
    # Without doffs (kornia's formula) the Motorcycle depth at d=50 would be 3.84 m, not 2.37 m.
    depth = disparity_to_depth(np.full((4, 6), 50.0, np.float32), calibration)
    assert depth[0, 0] == pytest.approx(2.3690, abs=1e-3)


def test_points_by_hand_with_colours(calibration):
    disparity = np.full((4, 6), np.nan, np.float32)
    disparity[3, 5] = 20.0
    disparity[2, 1] = 10.0
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    cloud = disparity_to_points(disparity, calibration, image)
    assert len(cloud) == 2
    z = 994.97775 * 0.193001 / (20.0 + 31.08575)
    expected = [(5 - 311.193) * z / 994.97775, (3 - 254.87675) * z / 994.97775, z]
    row = int(np.where((cloud.pixels == [5, 3]).all(axis=1))[0][0])
    np.testing.assert_allclose(cloud.points[row], expected, rtol=1e-5)
    np.testing.assert_array_equal(cloud.colors[row], image[3, 5])
    assert pixel_to_point(5, 3, 20.0, calibration) == pytest.approx(tuple(expected), rel=1e-5)
    assert pixel_to_point(5, 3, float("nan"), calibration) is None


def test_max_depth_and_size_check(calibration):
    disparity = np.full((4, 6), 1.0, np.float32)
    assert len(disparity_to_points(disparity, calibration, max_depth=1.0)) == 0
    from depthapp.errors import InputError

    with pytest.raises(InputError, match="6x4"):
        disparity_to_depth(np.ones((5, 5), np.float32), calibration)


def test_motorcycle_ground_truth_depth_is_plausible(motorcycle):
    # The Motorcycle scene spans about 1.9 to 4.5 m in front of the rig.
    depth = disparity_to_depth(motorcycle.gt_disparity, motorcycle.calibration)
    finite = depth[np.isfinite(depth)]
    assert 1.5 < np.percentile(finite, 1) and np.percentile(finite, 99) < 5.5
