"""Stereo calibration on OpenCV's real chessboard pairs (Debian opencv-doc), compared with
OpenCV's own stereo_calib procedure run on the same images; ChArUco on a rendered rig."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from charuco_rendering import render_charuco_rig

from depthapp.calibration.chessboard_data import PATTERN_SIZE, SQUARE_MM, chessboard_pairs
from depthapp.calibration.opencv_reference import stereo_calib_reference
from depthapp.calibration.rectify import Rectifier, measure_rectification_error
from depthapp.calibration.stereo_calibrate import (ChessboardPattern, Detections,
                                                   calibrate_stereo, detect_views, parse_charuco,
                                                   parse_size)
from depthapp.data import StereoPair
from depthapp.errors import Cancelled, InputError, UsageError
from depthapp.io.images import read_image
from depthapp.jobs import CancelToken

PATTERN = ChessboardPattern(*PATTERN_SIZE, SQUARE_MM, "mm")


@pytest.fixture(scope="session")
def chessboard_images(chessboard_dir):
    return [(name, read_image(left, grey=True), read_image(right, grey=True))
            for name, left, right in chessboard_pairs(chessboard_dir)]


@pytest.fixture(scope="session")
def detections(chessboard_images) -> Detections:
    return detect_views(chessboard_images, PATTERN)


@pytest.fixture(scope="session")
def report(detections):
    return calibrate_stereo(detections, PATTERN)


@pytest.fixture(scope="session")
def reference(chessboard_images):
    return stereo_calib_reference(chessboard_images, PATTERN)


def test_all_thirteen_pairs_are_found(detections):
    assert [v.name for v in detections.views] == [f"{n:02d}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14)]
    assert detections.rejected == []
    assert detections.image_size == (640, 480)
    for view in detections.views:
        assert view.left.shape == (54, 2) and view.right.shape == (54, 2)
        # Same physical corner first in both views (the rig is a few degrees from parallel).
        assert np.dot(view.left[-1] - view.left[0], view.right[-1] - view.right[0]) > 0


def test_at_least_as_good_as_opencv_stereo_calib(report, reference):
    """Issue 11's target: RMS and epipolar error at least as good as OpenCV's procedure on the
    same images, the same baseline within 1 %."""
    assert len(reference.views) == 13
    assert report.rms <= reference.rms
    assert report.epipolar_error <= reference.epipolar_error
    # OpenCV 4.x's stereoCalibrate with the sample's flags settles on a poor fit of these views
    # (4.12-4.14: RMS 1.75 px, baseline 100.5 mm); OpenCV 5's reworked calibration converges
    # (5.1: RMS 0.60 px, 83.4 mm). Compare baselines only with a reference that converged.
    if reference.rms < 1.0:
        assert report.baseline == pytest.approx(reference.baseline, rel=0.01)
    assert report.baseline == pytest.approx(0.0832, abs=0.001)  # ~83 mm apart (25 mm squares)
    assert report.rms < 0.3 and report.epipolar_error < 0.3
    assert report.dropped == []  # no view of this set is an outlier with depthapp's corners


def test_report_contents(report):
    calibration = report.calibration
    assert not calibration.rectified  # describes the raw cameras ...
    assert calibration.P1 is not None and calibration.R1 is not None  # ... with their rectification
    assert calibration.image_size == (640, 480)
    assert calibration.T[0] < 0  # right camera to the right (OpenCV's sign)
    assert calibration.baseline == pytest.approx(np.linalg.norm(calibration.T), rel=1e-9)
    assert [v.name for v in report.views][:2] == ["01", "02"]
    assert all(v.used and 0 < v.rms_left < 0.5 and 0 < v.epipolar < 0.5 for v in report.views)
    text = "\n".join(report.summary_lines())
    assert "RMS reprojection error" in text and "epipolar error" in text
    assert "baseline 83." in text and " mm" in text


def test_rectification_aligns_rows(report, chessboard_images, detections):
    # The corners themselves after rectification.
    assert report.rectified_row_error < 0.3
    assert report.rectified_row_error_max < 1.0
    # Real images, rectified, matched independently with SIFT features.
    rectifier = Rectifier(report.calibration)
    name, left, right = chessboard_images[0]
    pair = StereoPair(left, right, calibration=report.calibration, name=name)
    raw_offset, _ = measure_rectification_error(pair.left, pair.right)
    rectified = rectifier.rectify_pair(pair)
    offset, count = measure_rectification_error(rectified.left, rectified.right)
    assert count > 50 and offset < 1.0
    assert offset < raw_offset


def test_outlier_view_is_dropped_by_name(detections):
    """A view whose right corners are off by 3 px vertically (like an unsynchronised pair) is
    found, dropped, named, and the result matches the clean calibration."""
    views = [dataclasses.replace(v) for v in detections.views]
    views[4] = dataclasses.replace(views[4], right=views[4].right + np.float32([0.0, 3.0]))
    corrupted = Detections(views, detections.image_size, [])
    result = calibrate_stereo(corrupted, PATTERN)
    clean = calibrate_stereo(detections, PATTERN)
    assert result.dropped == ["05"]
    assert not next(v for v in result.views if v.name == "05").used
    assert result.all_views_rms > 2 * result.rms
    assert result.rms == pytest.approx(clean.rms, rel=0.1)
    assert result.baseline == pytest.approx(clean.baseline, rel=0.005)
    assert "dropped 1 outlier view(s): 05" in "\n".join(result.summary_lines())
    kept = calibrate_stereo(corrupted, PATTERN, outlier_factor=float("inf"))
    assert kept.dropped == [] and kept.rms > result.rms


def test_units_only_change_how_lengths_are_written(chessboard_images):
    in_metres = ChessboardPattern(9, 6, 0.025, "m")
    np.testing.assert_allclose(in_metres.object_points(), PATTERN.object_points(), rtol=1e-6)
    assert in_metres.object_points()[1, 0] == pytest.approx(0.025)


def test_progress_and_cancel(chessboard_images):
    seen = []
    token = CancelToken()

    def callback(progress):
        seen.append(progress.done)
        if progress.done == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        detect_views(chessboard_images, PATTERN, total=len(chessboard_images), callback=callback,
                     cancel=token)
    assert seen[-1] == 2


def test_too_few_views_and_wrong_pattern(chessboard_images, detections):
    wrong = ChessboardPattern(7, 5, 25.0)
    missed = detect_views(chessboard_images[:1], wrong)
    assert missed.views == [] and missed.rejected == [("01", "no 7x5 chessboard in the left image")]
    with pytest.raises(InputError, match="only 0 usable view"):
        calibrate_stereo(missed, wrong)
    with pytest.raises(InputError, match="only 2 usable view"):
        calibrate_stereo(Detections(detections.views[:2], (640, 480)), PATTERN)


def test_mixed_sizes_keep_the_majority(chessboard_images):
    odd = chessboard_images[0][1][:400, :600]
    detections = detect_views(list(chessboard_images[1:4]) + [("odd", odd, odd.copy())], PATTERN)
    assert [v.name for v in detections.views] == ["02", "03", "04"]
    assert detections.rejected == [("odd", "600x400 images, the others are 640x480")]


def test_pattern_parsing():
    assert parse_size("9x6") == (9, 6) and parse_size("9X6") == (9, 6)
    with pytest.raises(UsageError, match="COLSxROWS"):
        parse_size("9by6")
    with pytest.raises(UsageError, match="ambiguous"):
        ChessboardPattern(7, 7, 25.0)
    charuco = parse_charuco("5X5_100:7x5:40:30")
    assert charuco.dictionary == "DICT_5X5_100" and (charuco.columns, charuco.rows) == (7, 5)
    with pytest.raises(UsageError, match="unknown ArUco dictionary"):
        parse_charuco("DICT_9X9_1:7x5:40:30")
    with pytest.raises(UsageError, match="smaller than the square"):
        parse_charuco("DICT_5X5_100:7x5:40:45")
    with pytest.raises(UsageError, match="DICT:COLSxROWS:SQUARE:MARKER"):
        parse_charuco("DICT_5X5_100:7x5:40")


def test_charuco_rendered_rig_recovers_the_baseline():
    pattern, pairs, truth = render_charuco_rig()
    detections = detect_views(pairs, pattern)
    assert len(detections.views) >= 8, detections.rejected
    report = calibrate_stereo(detections, pattern, model="k1k2p")
    assert report.rms < 0.2
    assert report.baseline == pytest.approx(np.linalg.norm(truth["T"]), rel=0.01)
    assert report.calibration.K1[0, 0] == pytest.approx(truth["K1"][0, 0], rel=0.01)
    assert report.calibration.K2[0, 0] == pytest.approx(truth["K2"][0, 0], rel=0.01)
    assert report.rectified_row_error < 0.2
