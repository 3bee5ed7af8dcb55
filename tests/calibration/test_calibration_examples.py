"""Every example in calib/ reads with the values its README promises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from depthapp.calibration import read_calibration
from depthapp.errors import CalibrationError

CALIB = Path(__file__).resolve().parents[2] / "calib"


@pytest.mark.parametrize("name, fmt, focal, baseline, size", [
    ("middlebury2014_motorcycle_calib.txt", "middlebury", 3979.911, 0.193001, (2964, 2000)),
    ("kitti_2011_09_26_calib_cam_to_cam.txt", "kitti-raw", 721.5377, 0.53272, (1242, 375)),
    ("kitti_odometry_00_calib.txt", "kitti-stereo", 707.0912, 0.53790, None),
    ("oakd_stereodemo_calibration.json", "stereodemo", 797.6, 0.075, (1280, 800)),
])
def test_rectified_examples(name, fmt, focal, baseline, size):
    calibration = read_calibration(CALIB / name)
    assert calibration.extra["format"] == fmt
    assert calibration.rectified
    assert calibration.focal == pytest.approx(focal)
    assert calibration.baseline == pytest.approx(baseline, rel=1e-4)
    if size:
        assert calibration.image_size == size


def test_opencv_stereo_calib_example_needs_units():
    with pytest.raises(CalibrationError, match="--calib-units"):
        read_calibration(CALIB / "opencv_stereo_calib")
    calibration = read_calibration(CALIB / "opencv_stereo_calib", units="mm", image_size=(640, 480))
    assert not calibration.rectified
    assert calibration.baseline == pytest.approx(np.linalg.norm(calibration.T))
    assert 0.080 < calibration.baseline < 0.087  # the opencv-doc rig, ~83 mm


def test_depthapp_example_matches_the_opencv_one():
    own = read_calibration(CALIB / "opencv_doc_chessboard.json")
    assert own.extra["format"] == "depthapp" and not own.rectified
    assert own.image_size == (640, 480)
    for name in ("K1", "D1", "K2", "D2", "R", "T", "P1", "P2"):
        assert getattr(own, name) is not None, name
    assert 0.080 < own.baseline < 0.087


def test_ros_camera_info_example_is_the_opencv_doc_rig():
    """calib/ros_opencv_doc/{left,right}.yaml: the depthapp JSON example written by
    ``write_ros_yaml``; read back (folder, left.yaml alone, or the comma pair) it is the same rig."""
    reference = read_calibration(CALIB / "opencv_doc_chessboard.json")
    folder = CALIB / "ros_opencv_doc"
    for given in (folder, folder / "left.yaml", f"{folder / 'left.yaml'},{folder / 'right.yaml'}"):
        calibration = read_calibration(given)
        assert calibration.extra["format"] == "ros" and not calibration.rectified
        assert calibration.image_size == (640, 480)
        np.testing.assert_allclose(calibration.R, reference.R, atol=1e-12)
        np.testing.assert_allclose(calibration.T, reference.T, atol=1e-12)
        assert calibration.baseline == pytest.approx(0.0832, abs=1e-4)
