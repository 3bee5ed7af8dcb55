"""ROS camera_info YAML (camera_calibration_parsers / cameracalibrator): detection by content,
one file per camera or both together, and every number checked."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from depthapp.calibration import read_calibration
from depthapp.calibration.readers import detect_format, parse_stereodemo_json
from depthapp.calibration.ros import camera_infos_from_stereo, format_ros_yaml
from depthapp.calibration.writers import write_ros_yaml
from depthapp.errors import CalibrationError, OutputExistsError

# cameracalibrator's layout: multi-line flow sequences, "0." floats, yaml-cpp style exponents.
LEFT = """image_width: 640
image_height: 480
camera_name: narrow_stereo/left
camera_matrix:
  rows: 3
  cols: 3
  data: [ 4.3015433e+02, 0., 3.0667840e+02, 0., 4.3053205e+02,
      2.2722049e+02, 0., 0., 1. ]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [ -3.3758e-01, 1.1161e-01, 1e-05, -3.1e-04, 0. ]
rectification_matrix:
  rows: 3
  cols: 3
  data: [ 0.9999, 0.0107, -0.0058, -0.0107, 0.9999, -0.0036, 0.0058, 0.0036, 1. ]
projection_matrix:
  rows: 3
  cols: 4
  data: [ 4.0152e+02, 0., 3.0919e+02, 0., 0., 4.0152e+02, 2.3416e+02, 0., 0., 0., 1., 0. ]
"""
RIGHT = LEFT.replace("narrow_stereo/left", "narrow_stereo/right").replace(
    "3.0919e+02, 0., 0.", "3.0919e+02, -3.5837e+01, 0.")


def test_cameracalibrator_files_make_a_raw_rig(tmp_path):
    (tmp_path / "left.yaml").write_text(LEFT)
    (tmp_path / "right.yaml").write_text(RIGHT)
    assert detect_format(LEFT) == "ros"
    for given in (tmp_path / "left.yaml", tmp_path, f"{tmp_path / 'left.yaml'},{tmp_path / 'right.yaml'}"):
        rig = read_calibration(given)
        assert not rig.rectified and rig.image_size == (640, 480)
        assert rig.baseline == pytest.approx(35.837 / 401.52)  # -P2[0,3] / P2[0,0], metres
        assert rig.D1[2] == 1e-05 and rig.K1[0, 0] == 430.15433
        assert rig.extra["camera_names"] == ["narrow_stereo/left", "narrow_stereo/right"]


@pytest.mark.parametrize("layout", ["documents", "map"])
def test_both_cameras_in_one_file(tmp_path, layout):
    if layout == "documents":
        text = LEFT + "---\n" + RIGHT
    else:
        indent = lambda t: "".join(f"  {line}\n" for line in t.splitlines())  # noqa: E731
        text = "left:\n" + indent(LEFT) + "right:\n" + indent(RIGHT)
    (tmp_path / "stereo.yaml").write_text(text)
    assert read_calibration(tmp_path / "stereo.yaml").baseline == pytest.approx(35.837 / 401.52)


def test_real_oakd_calibration_roundtrips_through_ros_yaml(tmp_path, stereodemo_oakd_json):
    oakd = parse_stereodemo_json(stereodemo_oakd_json.read_text(), "oak-d")
    paths = write_ros_yaml(oakd, tmp_path)
    with pytest.raises(OutputExistsError):
        write_ros_yaml(oakd, tmp_path)
    back = read_calibration(f"{paths[0]},{paths[1]}")
    np.testing.assert_allclose(back.P1, oakd.P1, rtol=1e-15)
    np.testing.assert_allclose(back.P2, oakd.P2, rtol=1e-15)
    assert back.baseline == pytest.approx(0.075)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("image_width: 640", "image_width: .nan"), "width must be a whole number"),
    (lambda t: t.replace("4.3015433e+02", ".nan"), "non-finite"),
    (lambda t: t.replace("4.3015433e+02", "fx"), "camera_matrix data must be numbers"),
    (lambda t: t.replace("  cols: 4\n", "  cols: 3\n"), "projection_matrix says 3x3 but holds 12"),
    (lambda t: t.replace("distortion_model: plumb_bob", "distortion_model: equidistant"), "not supported"),
    (lambda t: t.replace("rectification_matrix:", "rectification:"), "missing rectification_matrix"),
    (lambda t: t.replace("data: [ 0.9999", "data: [ 1.9999"), "R is not a rotation"),
    (lambda t: t + "  - [unbalanced\n", "invalid YAML"),
])
def test_bad_numbers_name_the_file(tmp_path, edit, message):
    (tmp_path / "left.yaml").write_text(edit(LEFT))
    (tmp_path / "right.yaml").write_text(RIGHT)
    with pytest.raises(CalibrationError) as error:
        read_calibration(f"{tmp_path / 'left.yaml'},{tmp_path / 'right.yaml'}")
    assert message in str(error.value) and str(tmp_path / "left.yaml") in str(error.value)


def test_one_camera_or_swapped_cameras_are_refused(tmp_path):
    (tmp_path / "mono.yaml").write_text(LEFT)
    with pytest.raises(CalibrationError, match="holds 1 camera calibration"):
        read_calibration(tmp_path / "mono.yaml")
    (tmp_path / "left.yaml").write_text(LEFT)
    (tmp_path / "right.yaml").write_text(RIGHT)
    with pytest.raises(CalibrationError, match="right camera is left of the left camera"):
        read_calibration(f"{tmp_path / 'right.yaml'},{tmp_path / 'left.yaml'}")
    with pytest.raises(CalibrationError, match="not a ROS camera_info YAML"):
        (tmp_path / "other.txt").write_text("cam0=[1 0 2; 0 1 2; 0 0 1]\n")
        read_calibration(f"{tmp_path / 'left.yaml'},{tmp_path / 'other.txt'}")


def test_format_is_what_cameracalibrator_writes(motorcycle):
    left, _ = camera_infos_from_stereo(motorcycle.calibration)
    text = format_ros_yaml(left, "left")
    assert text.splitlines()[:4] == ["image_width: 741", "image_height: 500", "camera_name: left",
                                     "camera_matrix:"]
    assert "distortion_model: plumb_bob\ndistortion_coefficients:\n  rows: 1\n  cols: 5\n" in text


@st.composite
def raw_rigs(draw):
    """A plausible raw rig: focal 100-3000 px, principal point near the centre, baseline
    2 cm - 1 m, the right camera turned by up to 3 degrees, mild distortion."""
    import cv2

    from depthapp.calibration.model import StereoCalibration

    width, height = draw(st.sampled_from([(640, 480), (1280, 720), (752, 480)]))
    focal = draw(st.floats(100, 3000))
    k = np.array([[focal, 0, width / 2 + draw(st.floats(-20, 20))],
                  [0, focal * draw(st.floats(0.98, 1.02)), height / 2 + draw(st.floats(-20, 20))],
                  [0, 0, 1]])
    # OpenCV's Rodrigues (inside stereoRectify) takes a rotation below 1e-5 rad for none, so a
    # turn that small cannot survive the rectification this round trip goes through.
    turn = st.one_of(st.just(0.0), st.floats(0.001, 3), st.floats(-3, -0.001))
    angles = np.deg2rad([draw(turn) for _ in range(3)])
    distortion = np.array([draw(st.floats(-0.3, 0.3)), draw(st.floats(-0.1, 0.1)), 0.0, 0.0, 0.0])
    # A real lens's radial model keeps growing out to the image corners; a short focal length
    # with strong barrel distortion folds back inside the image (100 px at 640x480 with
    # k1 = -0.28), and rectifying it asks for a 2e8 px focal length, which depthapp refuses.
    corner = np.hypot(width / 2 + 20, height / 2 + 20) / focal
    radii = np.linspace(0.0, corner, 64) ** 2
    assume(np.min(1 + 3 * distortion[0] * radii + 5 * distortion[1] * radii ** 2) > 0.5)
    baseline = draw(st.floats(0.02, 1.0))
    return StereoCalibration(image_size=(width, height), K1=k, D1=distortion, K2=k.copy(),
                             D2=distortion, R=cv2.Rodrigues(angles)[0],
                             T=np.array([-baseline, draw(st.floats(-0.01, 0.01)), 0.0]), rectified=False)


@settings(max_examples=25, deadline=None)
@given(raw_rigs())
def test_any_rig_survives_the_ros_yaml_round_trip(rig):
    from depthapp.calibration.rectify import stereo_rectify
    from depthapp.calibration.ros import parse_ros_yaml

    rectified = stereo_rectify(rig)
    left, right = camera_infos_from_stereo(rectified)
    back = parse_ros_yaml([(format_ros_yaml(left, "left"), "left.yaml"),
                           (format_ros_yaml(right, "right"), "right.yaml")])
    # R and T come back through the rectifying rotations: exact to their float64 precision,
    # a few 1e-9 of the baseline (a drawn T[1] of 6e-8 m came back 1.6e-9 m off, 2 nm)
    np.testing.assert_allclose(back.R, rig.R, atol=1e-9)
    np.testing.assert_allclose(back.T, rig.T, atol=1e-8 * np.linalg.norm(rig.T))
    np.testing.assert_allclose(back.P2, rectified.P2, rtol=1e-12)
    assert back.baseline == pytest.approx(rectified.baseline, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["camera_matrix", "distortion_coefficients", "rectification_matrix",
                        "projection_matrix"]),
       st.integers(0, 11), st.sampled_from([".nan", ".inf", "-.inf", "1e400"]))
def test_a_non_finite_number_anywhere_is_refused(key, position, bad):
    start = LEFT.index("data: [", LEFT.index(f"{key}:")) + len("data: [")
    end = LEFT.index("]", start)
    values = [v.strip() for v in LEFT[start:end].split(",")]
    values[position % len(values)] = bad
    text = LEFT[:start] + ", ".join(values) + LEFT[end:]
    from depthapp.calibration.ros import parse_ros_yaml

    with pytest.raises(CalibrationError, match="left.yaml: .*non-finite"):
        parse_ros_yaml([(text, "left.yaml"), (RIGHT, "right.yaml")])
