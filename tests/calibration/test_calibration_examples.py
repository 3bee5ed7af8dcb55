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
