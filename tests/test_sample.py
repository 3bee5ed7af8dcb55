import numpy as np
import pytest


def test_sample_is_the_quarter_size_motorcycle_with_calibration(motorcycle):
    assert motorcycle.left.shape == (500, 741, 3) and motorcycle.left.dtype == np.uint8
    calibration = motorcycle.calibration
    assert calibration.image_size == (741, 500)
    # Middlebury 2014 calib.txt divided by 4; baseline stays 193.001 mm.
    assert calibration.focal == pytest.approx(3979.911 / 4)
    assert calibration.baseline == pytest.approx(0.193001)
    assert calibration.doffs == pytest.approx(124.343 / 4, abs=1e-4)
    gt = motorcycle.gt_disparity
    assert np.isnan(gt).any() and not np.isinf(gt).any()  # +inf in the file becomes NaN


def test_ground_truth_convention_left_x_matches_right_x_minus_d(motorcycle):
    # Warping the right view by the GT must reproduce the left view far better than no warp.
    grey_left, grey_right = motorcycle.grey()
    gt = motorcycle.gt_disparity
    ys, xs = np.nonzero(np.isfinite(gt))
    xr = np.round(xs - gt[ys, xs]).astype(int)
    inside = xr >= 0
    warped = np.abs(grey_left[ys[inside], xs[inside]] - grey_right[ys[inside], xr[inside]]).mean()
    unwarped = np.abs(grey_left[ys, xs] - grey_right[ys, xs]).mean()
    assert warped < 0.4 * unwarped
