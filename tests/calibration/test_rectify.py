"""Rectification of a synthetic raw rig, and the "is this pair rectified?" check on real data."""

from __future__ import annotations

import dataclasses
import re

import cv2
import numpy as np
import pytest

from depthapp.calibration.model import StereoCalibration
from depthapp.calibration.rectify import (Rectifier, check_rectified, measure_rectification_error,
                                          stereo_rectify)
from depthapp.data import StereoPair
from depthapp.errors import CalibrationError


def raw_rig(size=(640, 480)) -> StereoCalibration:
    """Different intrinsics, strong barrel distortion, a 2-3 degree rotation, 10 cm baseline."""
    rotation, _ = cv2.Rodrigues(np.array([0.02, -0.035, 0.015]))
    return StereoCalibration(
        image_size=size, rectified=False,
        K1=[[600.0, 0, 330.0], [0, 603.0, 236.0], [0, 0, 1]], D1=[-0.30, 0.11, 0.0008, -0.0006, -0.02],
        K2=[[585.0, 0, 312.0], [0, 589.0, 249.0], [0, 0, 1]], D2=[-0.27, 0.09, -0.0005, 0.0009, -0.01],
        R=rotation, T=[-0.10, 0.003, -0.002], source="synthetic rig")


def test_stereo_rectify_result():
    raw = raw_rig()
    rect = stereo_rectify(raw)
    assert rect.rectified and not raw.rectified
    assert rect.baseline == pytest.approx(np.linalg.norm(raw.T), rel=1e-9)
    assert rect.doffs == pytest.approx(0.0)
    for name in ("K1", "D1", "K2", "D2", "R", "T"):
        np.testing.assert_array_equal(getattr(rect, name), getattr(raw, name))
    for rotation in (rect.R1, rect.R2):
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    x, y, w, h = rect.extra["valid_roi_left"]
    assert w > 500 and h > 350


def test_rectified_points_share_rows_and_give_depth():
    """3-D points seen through both distorted cameras land on the same row after rectifying,
    and their disparity gives back their depth: Z = f B / d."""
    raw = raw_rig()
    rect = stereo_rectify(raw)
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(-1, 1, 300), rng.uniform(-0.7, 0.7, 300), rng.uniform(1.5, 6, 300)])
    left, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), raw.K1, raw.D1)
    right, _ = cv2.projectPoints(points, cv2.Rodrigues(raw.R)[0], raw.T, raw.K2, raw.D2)
    inside = ((left[:, 0, 0] > 20) & (left[:, 0, 0] < 620) & (left[:, 0, 1] > 20) & (left[:, 0, 1] < 460)
              & (right[:, 0, 0] > 20) & (right[:, 0, 0] < 620) & (right[:, 0, 1] > 20) & (right[:, 0, 1] < 460))
    assert inside.sum() > 50
    rect_left = cv2.undistortPoints(left[inside], raw.K1, raw.D1, R=rect.R1, P=rect.P1).reshape(-1, 2)
    rect_right = cv2.undistortPoints(right[inside], raw.K2, raw.D2, R=rect.R2, P=rect.P2).reshape(-1, 2)
    assert np.abs(rect_left[:, 1] - rect_right[:, 1]).max() < 0.01
    disparity = rect_left[:, 0] - rect_right[:, 0]
    depth_rectified_frame = (rect.R1 @ points[inside].T)[2]
    np.testing.assert_allclose(rect.focal * rect.baseline / (disparity + rect.doffs),
                               depth_rectified_frame, rtol=1e-3)


def render_raw_pair(raw: StereoCalibration, rect: StereoCalibration, disparity: float):
    """A textured fronto-parallel plane seen by the raw cameras: rectified views are built
    first (right = left shifted by ``disparity``), then warped into each raw camera."""
    width, height = raw.image_size
    rng = np.random.default_rng(7)
    texture = cv2.resize(rng.integers(0, 256, (height // 4, (width + 64) // 4), dtype=np.uint8),
                         (width + 64, height), interpolation=cv2.INTER_CUBIC)
    texture = cv2.GaussianBlur(texture, (3, 3), 0)
    rect_left = texture[:, :width]
    shift = np.float32([[1, 0, -disparity], [0, 1, 0]])
    rect_right = cv2.warpAffine(texture, shift, (width + 64, height), flags=cv2.INTER_CUBIC)[:, :width]
    grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)), -1)
    raw_views = []
    for image, k, d, r, p in ((rect_left, raw.K1, raw.D1, rect.R1, rect.P1),
                              (rect_right, raw.K2, raw.D2, rect.R2, rect.P2)):
        where = cv2.undistortPoints(grid.reshape(-1, 1, 2), k, d, R=r, P=p).reshape(height, width, 2)
        raw_views.append(cv2.remap(image, where[..., 0], where[..., 1], cv2.INTER_CUBIC))
    return [np.repeat(v[:, :, None], 3, axis=2) for v in raw_views], (rect_left, rect_right)


def test_rectifier_aligns_rows_of_a_raw_pair():
    raw = raw_rig()
    rect = stereo_rectify(raw)
    (raw_left, raw_right), (rect_left, rect_right) = render_raw_pair(raw, rect, disparity=24.0)
    pair = StereoPair(raw_left, raw_right, calibration=raw, name="synthetic")

    warning = check_rectified(pair)
    assert "does not look rectified" in warning
    assert float(re.search(r"([0-9.]+) px apart vertically", warning).group(1)) > 2.0

    rectified = Rectifier(raw).rectify_pair(pair)
    assert rectified.calibration.rectified
    assert rectified.left.shape == pair.left.shape and rectified.left.dtype == np.uint8
    offset, count = measure_rectification_error(rectified.left, rectified.right)
    assert count > 100 and offset < 0.5
    # The output matches the rectified views the scene was built from (away from the border).
    inner = (slice(40, -40), slice(60, -60))
    error = np.abs(rectified.left[..., 0].astype(float) - rect_left.astype(float))[inner]
    assert np.median(error) < 3.0
    # Matched features are `disparity` apart horizontally.
    sift = cv2.SIFT_create(nfeatures=1000)
    kl, dl = sift.detectAndCompute(rectified.left[..., 0], None)
    kr, dr = sift.detectAndCompute(rectified.right[..., 0], None)
    matches = [m for m, n in cv2.BFMatcher().knnMatch(dl, dr, k=2) if m.distance < 0.7 * n.distance]
    dx = np.array([kl[m.queryIdx].pt[0] - kr[m.trainIdx].pt[0] for m in matches])
    assert np.median(dx) == pytest.approx(24.0, abs=0.3)


def test_rectifier_uses_the_files_own_rectification():
    raw = raw_rig()
    own = stereo_rectify(raw, alpha=1.0)
    with_file_rectification = dataclasses.replace(own, rectified=False)
    rectifier = Rectifier(with_file_rectification, alpha=0.0)
    np.testing.assert_array_equal(rectifier.calibration.P1, own.P1)


def test_rectifier_refusals():
    raw = raw_rig()
    with pytest.raises(CalibrationError, match="already rectified"):
        Rectifier(stereo_rectify(raw))
    rectifier = Rectifier(raw)
    small = np.zeros((240, 320, 3), np.uint8)
    with pytest.raises(CalibrationError, match="calibration is for 640x480 images, the pair is 320x240"):
        rectifier.rectify_images(small, small)
    no_pose = StereoCalibration.from_rectified(500, 0.1, 320, 240, (640, 480))
    with pytest.raises(CalibrationError, match="cannot rectify without K1, K2, R, T"):
        stereo_rectify(no_pose)


def test_estimated_size_is_replaced_by_the_pair_size():
    raw = raw_rig()
    guessed = dataclasses.replace(raw, image_size=(660, 472), extra={"image_size_estimated": True})
    rectifier = Rectifier(guessed)
    image = np.zeros((480, 640, 3), np.uint8)
    left, _ = rectifier.rectify_images(image, image)
    assert left.shape == (480, 640, 3)
    assert rectifier.calibration.image_size == (640, 480)


def test_check_rectified_on_real_middlebury(motorcycle):
    offset, count = measure_rectification_error(motorcycle.left, motorcycle.right)
    assert count > 200 and offset < 0.5
    assert check_rectified(motorcycle) is None
    # The same pair with the right view 3 px lower is flagged with its offset.
    shifted = np.roll(motorcycle.right, 3, axis=0)
    bad = StereoPair(motorcycle.left, shifted, motorcycle.calibration, name="shifted")
    warning = check_rectified(bad)
    assert warning is not None and warning.startswith("shifted: ")
    reported = float(re.search(r"([0-9.]+) px apart vertically", warning).group(1))
    assert reported == pytest.approx(3.0, abs=0.3)
