"""Calibration writers: round trips through the readers, OpenCV compatibility, atomic output."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from depthapp.calibration import read_calibration, write_calibration
from depthapp.calibration.model import StereoCalibration
from depthapp.calibration.rectify import stereo_rectify
from depthapp.errors import OutputExistsError, UsageError

FIELDS = ("P1", "P2", "K1", "D1", "K2", "D2", "R", "T", "R1", "R2", "Q")


def raw_rig() -> StereoCalibration:
    """A raw rig: different intrinsics, distortion, a small rotation, 12 cm baseline."""
    rotation, _ = cv2.Rodrigues(np.array([0.01, -0.02, 0.005]))
    return StereoCalibration(
        image_size=(640, 480), rectified=False,
        K1=[[610.0, 0, 318.0], [0, 612.0, 243.0], [0, 0, 1]], D1=[-0.28, 0.09, 0.001, -0.0005, 0.0],
        K2=[[605.0, 0, 325.0], [0, 606.0, 238.0], [0, 0, 1]], D2=[-0.26, 0.08, -0.0007, 0.0004, 0.0],
        R=rotation, T=[-0.12, 0.002, 0.001], source="synthetic rig")


def assert_same(a: StereoCalibration, b: StereoCalibration, names=FIELDS):
    assert a.image_size == b.image_size
    assert a.rectified == b.rectified
    for name in names:
        first, second = getattr(a, name), getattr(b, name)
        assert (first is None) == (second is None), name
        if first is not None:
            np.testing.assert_allclose(first, second, rtol=1e-12, atol=1e-12, err_msg=name)


def test_json_round_trip_raw_and_rectified(tmp_path):
    raw = raw_rig()
    rectified = stereo_rectify(raw)
    for calibration, name in ((raw, "raw.json"), (rectified, "rect.json")):
        path = write_calibration(calibration, tmp_path / name)
        data = json.loads(path.read_text())
        assert data["format"] == "depthapp-calibration" and data["version"] == 1
        assert data["units"] == "m"
        back = read_calibration(path)
        assert_same(calibration, back)
        assert back.extra["format"] == "depthapp"
    assert json.loads((tmp_path / "rect.json").read_text())["summary"]["baseline_m"] == pytest.approx(
        rectified.baseline)


def test_json_round_trip_middlebury(tmp_path):
    calibration = StereoCalibration.from_rectified(3979.911, 0.193001, 1244.772, 1019.507,
                                                   (2964, 2000), cx_right=1369.115, ndisp=270)
    back = read_calibration(write_calibration(calibration, tmp_path / "m.json"))
    assert_same(calibration, back)
    assert back.ndisp == 270 and back.doffs == pytest.approx(124.343)


@pytest.mark.parametrize("extension", [".yaml", ".yml", ".xml"])
@pytest.mark.parametrize("units", ["mm", "m"])
def test_opencv_round_trip(tmp_path, extension, units):
    calibration = stereo_rectify(raw_rig())
    path = write_calibration(calibration, tmp_path / f"stereo{extension}", units=units)
    back = read_calibration(path)  # the file records its units
    assert_same(calibration, back)
    assert back.extra["target_units"] == units


def test_opencv_file_has_opencv_names_and_target_units(tmp_path):
    raw = raw_rig()
    rectified = stereo_rectify(raw)
    path = write_calibration(rectified, tmp_path / "stereo.yml", units="mm")
    storage = cv2.FileStorage(str(path), cv2.FileStorage_READ)
    for name in ("M1", "D1", "M2", "D2", "R", "T", "E", "F", "R1", "R2", "P1", "P2", "Q"):
        assert not storage.getNode(name).empty(), name
    assert storage.getNode("units").string() == "mm"
    assert int(storage.getNode("image_width").real()) == 640
    assert int(storage.getNode("image_height").real()) == 480
    np.testing.assert_allclose(storage.getNode("T").mat().ravel(), raw.T * 1000)
    p2 = storage.getNode("P2").mat()
    assert p2[0, 3] == pytest.approx(rectified.P2[0, 3] * 1000)
    # Exactly what cv2.stereoRectify returns for T in millimetres (what OpenCV users compare).
    r1, r2, p1_cv, p2_cv, q_cv, _, _ = cv2.stereoRectify(
        raw.K1, raw.D1, raw.K2, raw.D2, raw.image_size, raw.R, (raw.T * 1000).reshape(3, 1),
        flags=cv2.CALIB_ZERO_DISPARITY, alpha=0)
    np.testing.assert_allclose(p2, p2_cv, rtol=1e-9)
    np.testing.assert_allclose(storage.getNode("Q").mat(), q_cv, rtol=1e-9, atol=1e-12)
    # E and F satisfy the epipolar constraint for a point seen by both raw cameras.
    essential, fundamental = storage.getNode("E").mat(), storage.getNode("F").mat()
    point = np.array([[0.3, -0.2, 2.5]])
    left, _ = cv2.projectPoints(point, np.zeros(3), np.zeros(3), raw.K1, None)
    right, _ = cv2.projectPoints(point, cv2.Rodrigues(raw.R)[0], raw.T, raw.K2, None)
    x1, x2 = np.append(left.ravel(), 1), np.append(right.ravel(), 1)
    assert abs(x2 @ fundamental @ x1) < 1e-6
    n1, n2 = np.linalg.inv(raw.K1) @ x1, np.linalg.inv(raw.K2) @ x2
    assert abs(n2 @ essential @ n1) < 1e-9 * 1000
    storage.release()


def test_rectified_only_calibration_to_opencv(tmp_path):
    calibration = StereoCalibration.from_rectified(451.03, 0.075, 299.04, 255.17, (640, 480),
                                                   cx_right=301.0)
    path = write_calibration(calibration, tmp_path / "oak.yaml")
    back = read_calibration(path)
    assert back.rectified
    assert back.baseline == pytest.approx(0.075)
    assert back.doffs == pytest.approx(301.0 - 299.04)
    storage = cv2.FileStorage(str(path), cv2.FileStorage_READ)
    np.testing.assert_allclose(storage.getNode("T").mat().ravel(), [-0.075, 0, 0])
    storage.release()


def test_no_overwrite_unless_asked(tmp_path):
    calibration = stereo_rectify(raw_rig())
    for name in ("c.json", "c.yaml"):
        path = write_calibration(calibration, tmp_path / name)
        before = path.read_bytes()
        with pytest.raises(OutputExistsError, match="already exists"):
            write_calibration(raw_rig(), path)
        assert path.read_bytes() == before
        write_calibration(raw_rig(), path, overwrite=True)
        assert not read_calibration(path).rectified
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "c.yaml"]  # no temp files left


def test_unknown_extension(tmp_path):
    with pytest.raises(UsageError, match=r"\.txt"):
        write_calibration(raw_rig(), tmp_path / "c.txt")
    assert not (tmp_path / "c.txt").exists()
