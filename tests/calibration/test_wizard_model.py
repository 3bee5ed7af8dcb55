"""The calibration wizard's Qt-free model on OpenCV's real stereo chessboard pairs (Debian
opencv-doc): detection, quality checks, pose bins, coverage, hints, calibration, results."""

from __future__ import annotations


import cv2
import numpy as np
import pytest

from charuco_rendering import render_charuco_rig

from depthapp.calibration import read_calibration
from depthapp.calibration.chessboard_data import PATTERN_SIZE, SQUARE_MM, chessboard_pairs
from depthapp.calibration.stereo_calibrate import ChessboardPattern, calibrate_stereo, detect_views
from depthapp.calibration.wizard import (HOLD_FRAMES, CalibrationWizardModel, edge_width, estimate_pose,
                                         file_pairs, folder_pairs, inspect_files,
                                         render_candidate, render_coverage, render_rectified)
from depthapp.errors import Cancelled, InputError, OutputExistsError
from depthapp.io.images import read_image
from depthapp.jobs import CancelToken

PATTERN = ChessboardPattern(*PATTERN_SIZE, SQUARE_MM, "mm")
NAMES = [f"{n:02d}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14)]


@pytest.fixture(scope="module")
def images(chessboard_dir):
    """``{name: (left, right)}`` grey arrays of the 13 pairs."""
    return {name: (read_image(left, grey=True), read_image(right, grey=True))
            for name, left, right in chessboard_pairs(chessboard_dir)}


@pytest.fixture(scope="module")
def candidates(images):
    model = CalibrationWizardModel(PATTERN)
    return {name: model.inspect(name, *pair) for name, pair in images.items()}


@pytest.fixture(scope="module")
def full_model(candidates):
    model = CalibrationWizardModel(PATTERN)
    for name in NAMES:
        model.add(candidates[name])
    return model


@pytest.fixture(scope="module")
def result(full_model):
    return full_model.calibrate()


def test_files_pair_by_name(chessboard_dir):
    pairs, notes = file_pairs([str(chessboard_dir / "left??.jpg")], [str(chessboard_dir / "right??.jpg")])
    assert [p[0] for p in pairs] == [f"left{n}.jpg" for n in NAMES] and notes == []
    assert all(p[2].name == p[1].name.replace("left", "right") for p in pairs)
    # A folder: the left*/right* calibration set (opencv-doc's installed folder also holds an
    # unrelated left.jpg/right.jpg pair, which pairs up too and is later found to hold no board).
    in_folder, _ = folder_pairs(chessboard_dir)
    assert {f"left{n}.jpg" for n in NAMES} <= {p[0] for p in in_folder}
    with pytest.raises(InputError, match="left images .*nothing-here\\*.png: no files match"):
        file_pairs([str(chessboard_dir / "nothing-here*.png")], [str(chessboard_dir / "right??.jpg")])
    with pytest.raises(InputError, match="is a folder"):
        file_pairs([str(chessboard_dir)], [str(chessboard_dir / "right??.jpg")])


def test_inspection_finds_the_corners_the_cli_finds(images, candidates):
    """Same corners as ``depthapp calibrate`` (detect_views), also from the fast live pass."""
    detections = detect_views([(name, *pair) for name, pair in images.items()], PATTERN)
    model = CalibrationWizardModel(PATTERN)
    for view in detections.views:
        candidate = candidates[view.name]
        assert candidate.acceptable, candidate.describe()
        np.testing.assert_array_equal(candidate.view.left, view.left)
        np.testing.assert_array_equal(candidate.view.right, view.right)
        fast = model.inspect(view.name, *images[view.name], thorough=False)
        np.testing.assert_array_equal(fast.view.left, view.left)


def test_edge_width_agrees_with_opencv_and_flags_blur(images, candidates):
    """Edge widths follow OpenCV's estimateChessboardSharpness (sharp and blurred)."""
    for sigma in (0.0, 2.0):
        ratios = []
        for name in NAMES:
            left, corners = images[name][0], candidates[name].corners[0]
            if sigma:
                left = cv2.GaussianBlur(left, (0, 0), sigma)
            opencv = cv2.estimateChessboardSharpness(left, PATTERN_SIZE, corners.reshape(-1, 1, 2))[0][0]
            ratios.append(edge_width(left, corners) / opencv)
        assert 0.9 < np.median(ratios) < 1.05 and 0.7 < min(ratios) and max(ratios) < 1.05
    assert all(2.0 <= candidates[name].edge_widths[0] < 3.5 for name in NAMES)
    model = CalibrationWizardModel(PATTERN)
    blurred = cv2.GaussianBlur(images["01"][0], (0, 0), 2.5)
    candidate = model.inspect("blurred", blurred, images["01"][1])
    assert [code for code, _ in candidate.problems] == ["blurred"]
    assert "blurred: edges left" in candidate.describe() and candidate.can_force
    with pytest.raises(InputError, match="blurred: not added: blurred"):
        model.add(candidate)
    assert model.add(candidate, force=True).name == "blurred"


def test_near_duplicates_are_caught_even_when_inspected_before_the_original_was_added(images):
    model = CalibrationWizardModel(PATTERN)
    first = model.inspect("a", *images["03"])
    again = model.inspect("b", *images["03"])  # inspected before "a" was added
    model.add(first)
    with pytest.raises(InputError, match="nearly the same pose as view a"):
        model.add(again)
    shifted = model.inspect("c", *(np.roll(image, 3, axis=1) for image in images["03"]))
    assert shifted.duplicate_of == "a" and not shifted.acceptable
    # The two closest distinct poses of the set (11 and 14, 15 px apart) are not duplicates.
    model.add(model.inspect("11", *images["11"]))
    assert model.inspect("14", *images["14"]).acceptable


def test_missing_board_and_size_mismatch(images, motorcycle_session):
    model = CalibrationWizardModel(PATTERN)
    scene = motorcycle_session
    candidate = model.inspect("motorcycle", scene.left, scene.right, thorough=False)
    assert candidate.view is None and not candidate.can_force
    assert candidate.describe() == "no 9x6 chessboard in the left and right images"
    with pytest.raises(InputError, match="not added: no 9x6 chessboard"):
        model.add(candidate, force=True)
    model.add(model.inspect("01", *images["01"]))
    small = model.inspect("small", images["02"][0][:400, :600], images["02"][1][:400, :600])
    assert small.problems == [("size", "600x400 images, the captured views are 640x480")]
    odd = model.inspect("odd", images["02"][0], images["02"][1][:400])
    assert odd.problems[0][0] == "size" and "right is 640x400" in odd.problems[0][1]


def test_pose_estimates_agree_with_the_calibrated_camera(full_model, result):
    """Poses from the guessed camera are within 12 degrees of those from the calibrated one."""
    cal = result.calibration
    for view in full_model.views:
        _, rvec, _ = cv2.solvePnP(view.view.object_points, view.view.left, cal.K1, cal.D1)
        normal = cv2.Rodrigues(rvec)[0][:, 2]
        yaw = np.degrees(np.arctan(-normal[0] / normal[2]))
        pitch = np.degrees(np.arctan(-normal[1] / normal[2]))
        guessed = estimate_pose(view.view.object_points, view.view.left, (640, 480))
        assert guessed.yaw == pytest.approx(yaw, abs=12) and guessed.pitch == pytest.approx(pitch, abs=12)


def test_pose_bins_coverage_and_hints(full_model):
    seen = full_model.poses_seen()
    # Board turned right edge away (11), tilted bottom edge away (13) and top edge away (05).
    assert "11" in seen["right-back"] and "13" in seen["bottom-back"] and "05" in seen["top-back"]
    assert seen["left-back"] and seen["facing"] and seen["near"]
    assert full_model.missing_poses() == ["far"]  # every view spans 35-52 % of the image
    coverage = full_model.coverage()
    assert coverage.counts.shape == (2, 9, 12)
    assert coverage.counts[0].sum() == coverage.counts[1].sum() == 13 * 54
    # The right camera sees the board farther left: the left image's left edge and the right
    # image's right edge never get corners in this set.
    missing = dict(coverage.missing_regions())
    assert missing["left edge"] == ("left",) and missing["right edge"] == ("right",)
    assert "centre" not in missing
    assert 0.4 < coverage.fraction(0) < 0.8
    hints = full_model.hints()
    assert hints[0].startswith("Move the board farther away")
    assert any(h.startswith("No corners yet near the top-left corner, left edge and bottom-left "
                            "corner of the left image") for h in hints)
    assert not any(h.startswith("Capture") for h in hints)  # 13 views: enough


def test_few_views_hint_and_refusal(images):
    model = CalibrationWizardModel(PATTERN)
    assert model.hints() == ["Capture 10 more views: 10-20 is a good set (3 more needed before calibrating)"]
    model.add(model.inspect("01", *images["01"]))
    assert not model.ready and model.hints()[0].startswith("Capture 9 more views")
    with pytest.raises(InputError, match="only 1 view"):
        model.calibrate()


def test_calibration_is_the_clis(full_model, result, images):
    reference = calibrate_stereo(detect_views([(n, *images[n]) for n in NAMES], PATTERN), PATTERN)
    assert result.rms == pytest.approx(reference.rms, rel=1e-9)
    assert result.epipolar_error == pytest.approx(reference.epipolar_error, rel=1e-9)
    assert result.baseline == pytest.approx(reference.baseline, rel=1e-9)
    assert result.baseline_in_units == pytest.approx(83.2, abs=0.5)  # mm, like the CLI prints
    assert [v.name for v in result.per_view] == NAMES and result.dropped == []
    assert all(0 < v.epipolar < 0.5 for v in result.per_view)
    assert result.warnings == [] and full_model.result is result


def test_rectified_preview_aligns_rows(result, images):
    preview = result.preview("01")
    assert preview.left.shape == images["01"][0].shape
    assert preview.row_error < 0.3 and preview.row_error_max < 1.0
    np.testing.assert_allclose(preview.corners[0][:, 1], preview.corners[1][:, 1], atol=1.0)
    # The raw pair is ~5 px off vertically: rectification is what aligns it.
    raw = images["01"]
    corners = result.views[0].view
    assert np.abs(corners.left[:, 1] - corners.right[:, 1]).mean() > 3
    picture = render_rectified(preview, max_width=1000, lines=10)
    assert picture.shape[1] <= 1000 and picture.shape[0] == round(raw[0].shape[0] * (498 / 640))
    with pytest.raises(InputError, match="no captured view named 'nope'"):
        result.preview("nope")


def test_progress_signal_save_and_read_back(candidates, tmp_path):
    model = CalibrationWizardModel(PATTERN)
    for name in NAMES[:8]:
        model.add(candidates[name])
    emitted, seen = [], []
    model.calibrated.connect(emitted.append)
    result = model.calibrate(progress=lambda p: seen.append((p.done, p.total, p.message)))
    assert emitted == [result]
    # Views 01-08: none with the right edge turned away.
    assert result.warnings == [
        "only 8 views used: low errors on few views do not show that the calibration holds over "
        "the whole image; 10-20 views in varied poses are safer",
        "no view with the board tilted (right edge back): tilted views are what pin down the "
        "focal length"]
    assert seen[0][:2] == (0, 6) and seen[-1][0] == seen[-1][1] == 6
    assert [done for done, _, _ in seen] == sorted(done for done, _, _ in seen)
    assert "epipolar error" in seen[-1][2]
    yaml = result.save(tmp_path / "rig.yaml")
    json = result.save(tmp_path / "rig.json")
    for path in (yaml, json):
        back = read_calibration(path)
        np.testing.assert_allclose(back.K1, result.calibration.K1, rtol=1e-6)
        assert back.baseline == pytest.approx(result.baseline, rel=1e-6)
    with pytest.raises(OutputExistsError):
        result.save(yaml)


def test_cancel_keeps_the_model_unchanged(full_model):
    token = CancelToken()
    before = full_model.result

    def progress(p):
        if p.done >= 1:
            token.cancel()

    with pytest.raises(Cancelled):
        full_model.calibrate(progress=progress, cancel=token)
    assert full_model.result is before


def test_outlier_view_is_dropped_and_named(candidates):
    model = CalibrationWizardModel(PATTERN)
    for name in NAMES:
        candidate = candidates[name]
        if name == "05":  # right corners 3 px low, like an unsynchronised pair
            view = candidate.view
            candidate = type(candidate)(**{**candidate.__dict__, "view": type(view)(
                view.name, view.object_points, view.left, view.right + np.float32([0, 3]))})
        model.add(candidate)
    result = model.calibrate()
    assert result.dropped == ["05"] and "05" not in result.used_views
    assert result.warnings == ["dropped 1 outlier view(s): 05"]
    assert result.rms < 0.3


def test_auto_capture_waits_for_a_still_board(images):
    model = CalibrationWizardModel(PATTERN)
    left, right = images["04"]
    moving = [np.roll(image, 12, axis=1) for image in (left, right)]
    frames = [(left, right), moving, (left, right)] + [(left, right)] * HOLD_FRAMES
    captured = []
    for index, (l_img, r_img) in enumerate(frames):
        candidate = model.inspect(f"frame {index}", l_img, r_img, thorough=False)
        if model.auto_capture(candidate) is not None:
            captured.append(index)
    # Still from frame 2 on: captured at the third still frame, never again (a duplicate).
    assert captured == [2 + HOLD_FRAMES - 1]
    assert model.view_names == [f"frame {2 + HOLD_FRAMES - 1}"]


def test_charuco_rendered_rig():
    pattern, pairs, truth = render_charuco_rig()
    model = CalibrationWizardModel(pattern)
    for name, left, right in pairs:
        candidate = model.inspect(name, left, right)
        if candidate.acceptable:
            model.add(candidate)
    assert len(model.views) >= 8
    result = model.calibrate()
    assert result.baseline == pytest.approx(np.linalg.norm(truth["T"]), rel=0.01)
    assert result.baseline_in_units == pytest.approx(90.0, rel=0.01)  # mm
    assert result.preview().row_error < 0.2


def test_inspect_files_reports_unreadable_files(chessboard_dir, tmp_path):
    broken = tmp_path / "left99.jpg"
    broken.write_bytes(b"not a jpeg")
    model = CalibrationWizardModel(PATTERN)
    pairs = [("01", chessboard_dir / "left01.jpg", chessboard_dir / "right01.jpg"),
             ("99", broken, chessboard_dir / "right02.jpg")]
    seen = []
    out = inspect_files(model, pairs, on_candidate=lambda i, c: seen.append(i))
    assert seen == [0, 1] and out[0].acceptable
    assert out[1].problems == [("not-found", f"{broken}: not a readable image (unknown format; use "
                                             "PNG, JPEG, PPM/PGM, BMP, TIFF or WebP)")]


def test_pictures(candidates, full_model, motorcycle_session):
    good = render_candidate(candidates["01"], PATTERN, max_width=800)
    assert good.shape[1] <= 800 and good.dtype == np.uint8
    assert tuple(good[0, 0]) == (40, 200, 80)  # green frame: a good view
    model = CalibrationWizardModel(PATTERN)
    scene = motorcycle_session
    missing = render_candidate(model.inspect("m", scene.left, scene.right, thorough=False), PATTERN)
    assert tuple(missing[0, 0]) == (230, 50, 50)  # red frame: no board
    coverage = render_coverage(full_model, 0, width=360)
    assert coverage.shape == (270, 360, 3)
    # Red where the left image has no corners (its left edge), green where it has many.
    edge, centre = coverage[135, 5].astype(int), coverage[135, 180].astype(int)
    assert edge[0] > edge[1] and centre[1] > centre[0]
