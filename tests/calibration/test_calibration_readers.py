"""Calibration readers against hand-written files in the official formats and known values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from depthapp.calibration.readers import detect_format, read_calibration
from depthapp.errors import CalibrationError

# Middlebury 2014 Motorcycle (full resolution), as published in its calib.txt.
MIDDLEBURY_MOTORCYCLE = """cam0=[3979.911 0 1244.772; 0 3979.911 1019.507; 0 0 1]
cam1=[3979.911 0 1369.115; 0 3979.911 1019.507; 0 0 1]
doffs=124.343
baseline=193.001
width=2964
height=2000
ndisp=270
isint=0
vmin=23
vmax=245
dyavg=0
dymax=0
"""

# KITTI raw 2011_09_26 calib_cam_to_cam.txt (rectified part of cameras 0..3).
KITTI_CAM_TO_CAM = """calib_time: 09-Jan-2012 13:57:47
corner_dist: 9.950000e-02
S_00: 1.392000e+03 5.120000e+02
S_rect_00: 1.242000e+03 3.750000e+02
R_rect_00: 9.999239e-01 9.837760e-03 -7.445048e-03 -9.869795e-03 9.999421e-01 -4.278459e-03 7.402527e-03 4.351614e-03 9.999631e-01
P_rect_00: 7.215377e+02 0.000000e+00 6.095593e+02 0.000000e+00 0.000000e+00 7.215377e+02 1.728540e+02 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00
S_rect_01: 1.242000e+03 3.750000e+02
P_rect_01: 7.215377e+02 0.000000e+00 6.095593e+02 -3.875744e+02 0.000000e+00 7.215377e+02 1.728540e+02 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00
S_02: 1.392000e+03 5.120000e+02
K_02: 9.597910e+02 0.000000e+00 6.960217e+02 0.000000e+00 9.569251e+02 2.241806e+02 0.000000e+00 0.000000e+00 1.000000e+00
D_02: -3.691481e-01 1.968681e-01 1.353473e-03 5.677587e-04 -6.770705e-02
S_rect_02: 1.242000e+03 3.750000e+02
P_rect_02: 7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 7.215377e+02 1.728540e+02 2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 2.745884e-03
S_rect_03: 1.242000e+03 3.750000e+02
P_rect_03: 7.215377e+02 0.000000e+00 6.095593e+02 -3.395242e+02 0.000000e+00 7.215377e+02 1.728540e+02 2.199936e+00 0.000000e+00 0.000000e+00 1.000000e+00 2.729905e-03
"""

# KITTI stereo/odometry benchmark calib.txt (odometry sequence 00), with the extra lines the
# object benchmark adds.
KITTI_STEREO = """P0: 7.070912000000e+02 0.000000000000e+00 6.018873000000e+02 0.000000000000e+00 0.000000000000e+00 7.070912000000e+02 1.831104000000e+02 0.000000000000e+00 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 0.000000000000e+00
P1: 7.070912000000e+02 0.000000000000e+00 6.018873000000e+02 -3.798145000000e+02 0.000000000000e+00 7.070912000000e+02 1.831104000000e+02 0.000000000000e+00 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 0.000000000000e+00
P2: 7.070912000000e+02 0.000000000000e+00 6.018873000000e+02 4.688783000000e+01 0.000000000000e+00 7.070912000000e+02 1.831104000000e+02 1.178601000000e-01 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 6.203223000000e-03
P3: 7.070912000000e+02 0.000000000000e+00 6.018873000000e+02 -3.334597000000e+02 0.000000000000e+00 7.070912000000e+02 1.831104000000e+02 1.930130000000e+00 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 3.318498000000e-03
R0_rect: 9.999239000000e-01 9.837760000000e-03 -7.445048000000e-03 -9.869795000000e-03 9.999421000000e-01 -4.278459000000e-03 7.402527000000e-03 4.351614000000e-03 9.999631000000e-01
Tr_velo_to_cam: 7.533745000000e-03 -9.999714000000e-01 -6.166020000000e-04 -4.069766000000e-03 1.480249000000e-02 7.280733000000e-04 -9.998902000000e-01 -7.631618000000e-02 9.998621000000e-01 7.523790000000e-03 1.480755000000e-02 -2.717806000000e-01
"""

# What OpenCV 4's samples/cpp/stereo_calib.cpp writes (square size given in millimetres).
OPENCV_INTRINSICS = """%YAML:1.0
---
M1: !!opencv-matrix
   rows: 3
   cols: 3
   dt: d
   data: [ 5.2409707817286141e+02, 0., 3.4084196767232623e+02, 0.,
       5.1891760467433372e+02, 2.3165958154729560e+02, 0., 0., 1. ]
D1: !!opencv-matrix
   rows: 1
   cols: 8
   dt: d
   data: [ -2.1442605652214236e-01, -4.0189711276432094e-01, 0., 0., 0.,
       0., 0., -9.3600338534369940e-01 ]
M2: !!opencv-matrix
   rows: 3
   cols: 3
   dt: d
   data: [ 5.2409707817286141e+02, 0., 3.3547453449417360e+02, 0.,
       5.1891760467433372e+02, 2.4821362612547668e+02, 0., 0., 1. ]
D2: !!opencv-matrix
   rows: 1
   cols: 8
   dt: d
   data: [ -2.5166807256657450e-01, -3.2437702683415690e-02, 0., 0., 0.,
       0., 0., -1.8555045716427285e-01 ]
"""

OPENCV_EXTRINSICS = """%YAML:1.0
---
R: !!opencv-matrix
   rows: 3
   cols: 3
   dt: d
   data: [ 9.9990896706108101e-01, 3.9241014727618220e-03,
       -1.2909648270708788e-02, -4.0561373170548438e-03,
       9.9993957387966237e-01, -1.0217452687651590e-02,
       1.2868773869609374e-02, 1.0268885869006046e-02,
       9.9986446313593036e-01 ]
T: !!opencv-matrix
   rows: 3
   cols: 1
   dt: d
   data: [ -8.3330675999327383e+01, 9.2382531048343963e-01,
       -3.1139472241456660e+00 ]
R1: !!opencv-matrix
   rows: 3
   cols: 3
   dt: d
   data: [ 9.9967569942909762e-01, -6.7726095035504866e-03,
       2.4548477171854575e-02, 6.8981937748084227e-03,
       9.9996353270587124e-01, -5.0346977108226857e-03,
       -2.4513483913753298e-02, 5.2024051078886418e-03,
       9.9968596273404964e-01 ]
R2: !!opencv-matrix
   rows: 3
   cols: 3
   dt: d
   data: [ 9.9924120739941535e-01, -1.1077845074496705e-02,
       3.7340203313105974e-02, 1.0886520359949817e-02,
       9.9992657055357737e-01, 5.3232673626344585e-03,
       -3.7396431773780762e-02, -4.9127232231359792e-03,
       9.9928843285666125e-01 ]
P1: !!opencv-matrix
   rows: 3
   cols: 4
   dt: d
   data: [ 4.3187675684547253e+02, 0., 3.1680014419555664e+02, 0., 0.,
       4.3187675684547253e+02, 2.4029874801635742e+02, 0., 0., 0., 1.,
       0. ]
P2: !!opencv-matrix
   rows: 3
   cols: 4
   dt: d
   data: [ 4.3187675684547253e+02, 0., 3.1680014419555664e+02,
       -3.6015910702875030e+04, 0., 4.3187675684547253e+02,
       2.4029874801635742e+02, 0., 0., 0., 1., 0. ]
Q: !!opencv-matrix
   rows: 4
   cols: 4
   dt: d
   data: [ 1., 0., 0., -3.1680014419555664e+02, 0., 1., 0.,
       -2.4029874801635742e+02, 0., 0., 0., 4.3187675684547253e+02, 0.,
       0., 1.1991276866726494e-02, 0. ]
"""

OPENCV_XML = """<?xml version="1.0"?>
<opencv_storage>
<image_width>640</image_width>
<image_height>480</image_height>
<M1 type_id="opencv-matrix">
  <rows>3</rows>
  <cols>3</cols>
  <dt>d</dt>
  <data>
    524.1 0. 340.8 0. 518.9 231.7 0. 0. 1.</data></M1>
<D1 type_id="opencv-matrix">
  <rows>5</rows>
  <cols>1</cols>
  <dt>d</dt>
  <data>
    -0.25 0.1 0. 0. 0.</data></D1>
<M2 type_id="opencv-matrix">
  <rows>3</rows>
  <cols>3</cols>
  <dt>d</dt>
  <data>
    524.1 0. 335.5 0. 518.9 248.2 0. 0. 1.</data></M2>
<D2 type_id="opencv-matrix">
  <rows>5</rows>
  <cols>1</cols>
  <dt>d</dt>
  <data>
    -0.24 0.09 0. 0. 0.</data></D2>
<R type_id="opencv-matrix">
  <rows>3</rows>
  <cols>3</cols>
  <dt>d</dt>
  <data>
    1. 0. 0. 0. 1. 0. 0. 0. 1.</data></R>
<T type_id="opencv-matrix">
  <rows>3</rows>
  <cols>1</cols>
  <dt>d</dt>
  <data>
    -8.333 0.0924 -0.311</data></T>
</opencv_storage>
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# Middlebury ------------------------------------------------------------------------------------

def test_middlebury_motorcycle_known_values(tmp_path):
    calibration = read_calibration(write(tmp_path, "calib.txt", MIDDLEBURY_MOTORCYCLE))
    assert calibration.rectified
    assert calibration.focal == pytest.approx(3979.911)
    assert calibration.baseline == pytest.approx(0.193001)
    assert calibration.cx_left == pytest.approx(1244.772)
    assert calibration.cx_right == pytest.approx(1369.115)
    assert calibration.doffs == pytest.approx(124.343)
    assert calibration.cy == pytest.approx(1019.507)
    assert calibration.image_size == (2964, 2000)
    assert calibration.ndisp == 270
    assert calibration.extra["format"] == "middlebury"
    # Depth of a point with disparity 100 px, from the published formula Z = f B / (d + doffs).
    assert calibration.focal * calibration.baseline / (100 + calibration.doffs) == pytest.approx(
        3979.911 * 0.193001 / 224.343)


# KITTI -----------------------------------------------------------------------------------------

def test_kitti_cam_to_cam_colour_pair(tmp_path):
    calibration = read_calibration(write(tmp_path, "calib_cam_to_cam.txt", KITTI_CAM_TO_CAM))
    assert calibration.rectified
    assert calibration.focal == pytest.approx(721.5377)
    assert calibration.baseline == pytest.approx((44.85728 + 339.5242) / 721.5377)
    assert calibration.baseline == pytest.approx(0.5327, abs=1e-4)
    assert calibration.cx_left == pytest.approx(609.5593)
    assert calibration.cy == pytest.approx(172.854)
    assert calibration.image_size == (1242, 375)
    assert calibration.extra["raw_image_size"] == [1392, 512]
    np.testing.assert_allclose(calibration.P2[:, 3], [-339.5242, 2.199936, 2.729905e-03])


def test_kitti_cam_to_cam_grey_pair(tmp_path):
    calibration = read_calibration(write(tmp_path, "calib_cam_to_cam.txt", KITTI_CAM_TO_CAM),
                                   kitti_cameras=(0, 1))
    assert calibration.baseline == pytest.approx(387.5744 / 721.5377)
    assert calibration.P1[0, 3] == 0.0


def test_kitti_cam_to_cam_missing_camera_names_field(tmp_path):
    text = "\n".join(line for line in KITTI_CAM_TO_CAM.splitlines() if not line.startswith("P_rect_03"))
    path = write(tmp_path, "calib_cam_to_cam.txt", text)
    with pytest.raises(CalibrationError, match=r"calib_cam_to_cam\.txt: missing field 'P_rect_03'"):
        read_calibration(path)


def test_kitti_stereo_calib_txt(tmp_path):
    path = write(tmp_path, "000000.txt", KITTI_STEREO)
    colour = read_calibration(path, image_size=(1241, 376))
    assert colour.focal == pytest.approx(707.0912)
    assert colour.baseline == pytest.approx((46.88783 + 333.4597) / 707.0912)
    assert colour.image_size == (1241, 376)
    assert "image_size_estimated" not in colour.extra
    grey = read_calibration(path, kitti_cameras=(0, 1))
    assert grey.baseline == pytest.approx(379.8145 / 707.0912)
    assert grey.extra["image_size_estimated"] is True
    assert grey.extra["format"] == "kitti-stereo"


def test_kitti_bad_numbers(tmp_path):
    text = KITTI_STEREO.replace("P2: 7.070912000000e+02", "P2: seven")
    with pytest.raises(CalibrationError, match=r"P2\[0\] is not a number: 'seven'"):
        read_calibration(write(tmp_path, "calib.txt", text))
    short = KITTI_STEREO.replace(" 6.203223000000e-03", "")
    with pytest.raises(CalibrationError, match="'P2' has 11 numbers, expected 12"):
        read_calibration(write(tmp_path, "calib2.txt", short))


# OpenCV ----------------------------------------------------------------------------------------

@pytest.fixture
def opencv_pair(tmp_path) -> Path:
    folder = tmp_path / "rig"
    folder.mkdir()
    write(folder, "intrinsics.yml", OPENCV_INTRINSICS)
    write(folder, "extrinsics.yml", OPENCV_EXTRINSICS)
    return folder


def test_opencv_refuses_to_guess_units(opencv_pair):
    with pytest.raises(CalibrationError) as error:
        read_calibration(opencv_pair / "extrinsics.yml")
    message = str(error.value)
    assert "extrinsics.yml" in message and "--calib-units" in message


@pytest.mark.parametrize("entry", ["", "intrinsics.yml", "extrinsics.yml"])
def test_opencv_two_file_form(opencv_pair, entry):
    calibration = read_calibration(opencv_pair / entry if entry else opencv_pair, units="mm")
    assert not calibration.rectified  # raw cameras: pairs still need rectifying
    np.testing.assert_allclose(calibration.T, [-0.083330676, 0.00092382531, -0.0031139472])
    assert calibration.K1[0, 0] == pytest.approx(524.09707817)
    assert calibration.K2[0, 2] == pytest.approx(335.47453449)
    assert calibration.D1.shape == (8,) and calibration.D1[7] == pytest.approx(-0.93600338534)
    # The rectified projection from extrinsics.yml: baseline = -P2[0,3] / f, now in metres.
    assert calibration.focal == pytest.approx(431.87675685)
    assert calibration.baseline == pytest.approx(36015.910702875 / 431.87675685 / 1000)
    assert calibration.baseline == pytest.approx(np.linalg.norm(calibration.T), rel=1e-6)
    assert calibration.Q[3, 2] == pytest.approx(1.1991276866726494e-02 * 1000)
    assert calibration.extra["image_size_estimated"] is True
    assert calibration.extra["target_units"] == "mm"


def test_opencv_units_scale(opencv_pair):
    in_cm = read_calibration(opencv_pair, units="cm")
    in_m = read_calibration(opencv_pair, units="m")
    assert in_cm.baseline == pytest.approx(in_m.baseline / 100)
    assert np.linalg.norm(in_m.T) == pytest.approx(83.3939547)


def test_opencv_intrinsics_without_sibling(tmp_path):
    path = write(tmp_path, "intrinsics.yml", OPENCV_INTRINSICS)
    with pytest.raises(CalibrationError, match=r"intrinsics\.yml: missing R, T .*extrinsics\.yml"):
        read_calibration(path, units="mm")


def test_opencv_xml_single_file_with_size(tmp_path):
    calibration = read_calibration(write(tmp_path, "stereo.xml", OPENCV_XML), units="cm")
    assert calibration.image_size == (640, 480)
    assert "image_size_estimated" not in calibration.extra
    np.testing.assert_allclose(calibration.T, [-0.08333, 0.000924, -0.00311])
    assert calibration.P1 is None and not calibration.rectified
    np.testing.assert_allclose(calibration.D2, [-0.24, 0.09, 0, 0, 0])


def test_opencv_detected_by_content_not_extension(tmp_path):
    text = OPENCV_XML.replace("<image_height>480</image_height>",
                              "<image_height>480</image_height>\n<units>mm</units>")
    calibration = read_calibration(write(tmp_path, "rig.txt", text))
    assert calibration.extra["format"] == "opencv"
    assert np.linalg.norm(calibration.T) == pytest.approx(np.linalg.norm([8.333, 0.0924, 0.311]) / 1000)


def test_opencv_units_node_conflict(tmp_path):
    text = OPENCV_XML.replace("<image_width>", "<units>mm</units>\n<image_width>")
    path = write(tmp_path, "rig.xml", text)
    with pytest.raises(CalibrationError, match="says its lengths are in mm, but units='m'"):
        read_calibration(path, units="m")


def test_opencv_single_camera_file_is_refused(tmp_path):
    text = ("%YAML:1.0\n---\nimage_width: 640\nimage_height: 480\ncamera_matrix: !!opencv-matrix\n"
            "   rows: 3\n   cols: 3\n   dt: d\n   data: [ 535.9, 0., 342.3, 0., 535.9, 235.6, 0., 0., 1. ]\n")
    with pytest.raises(CalibrationError, match="single-camera calibration"):
        read_calibration(write(tmp_path, "left_intrinsics.yml", text), units="mm")


def test_opencv_zero_baseline(tmp_path):
    text = OPENCV_XML.replace("-8.333 0.0924 -0.311", "0 0 0")
    with pytest.raises(CalibrationError, match=r"zero\.xml: baseline \(length of T\) is zero"):
        read_calibration(write(tmp_path, "zero.xml", text), units="mm")


def test_opencv_swapped_cameras(tmp_path):
    text = OPENCV_XML.replace("-8.333 0.0924 -0.311", "8.333 0.0924 -0.311")
    with pytest.raises(CalibrationError, match="swap the left and right"):
        read_calibration(write(tmp_path, "swapped.xml", text), units="mm")


def test_opencv_broken_yaml(tmp_path):
    path = write(tmp_path, "broken.yml", "%YAML:1.0\n---\nM1: !!opencv-matrix\n   rows: [3\n")
    with pytest.raises(CalibrationError, match="broken.yml"):
        read_calibration(path, units="mm")


# stereodemo / OAK-D ----------------------------------------------------------------------------

@pytest.mark.network
def test_stereodemo_real_oakd_json(stereodemo_oakd_json):
    calibration = read_calibration(stereodemo_oakd_json)
    assert calibration.rectified
    assert calibration.image_size == (640, 480)
    assert calibration.focal == pytest.approx(451.0344543457031)
    assert calibration.baseline == pytest.approx(0.075)
    assert calibration.cy == pytest.approx(255.16502380371094)
    assert calibration.doffs == 0.0
    assert calibration.extra["depth_range"] == [1.0, 5.0]


def test_stereodemo_separate_cx_and_missing_fields(tmp_path):
    data = {"width": 640, "height": 400, "baseline_meters": 0.075, "fx": 400.0, "fy": 401.0,
            "cx0": 320.0, "cx1": 326.5, "cy": 200.0}
    calibration = read_calibration(write(tmp_path, "stereodemo_calibration.json", json.dumps(data)))
    assert calibration.doffs == pytest.approx(6.5)
    assert calibration.focal_y == pytest.approx(401.0)
    del data["cy"]
    with pytest.raises(CalibrationError, match=r"b\.json: missing field 'cy'"):
        read_calibration(write(tmp_path, "b.json", json.dumps(data)))
    data.update(cy=200.0, baseline_meters=0.0)
    with pytest.raises(CalibrationError, match=r"c\.json: field 'baseline_meters' is zero"):
        read_calibration(write(tmp_path, "c.json", json.dumps(data)))


# depthapp JSON errors (round trips are in test_calibration_writers.py) --------------------------

def test_depthapp_json_errors(tmp_path):
    good = {"format": "depthapp-calibration", "version": 1, "units": "m", "image_size": [640, 480],
            "rectified": True, "P1": [[500, 0, 320, 0], [0, 500, 240, 0], [0, 0, 1, 0]],
            "P2": [[500, 0, 320, -50], [0, 500, 240, 0], [0, 0, 1, 0]]}
    assert read_calibration(write(tmp_path, "ok.json", json.dumps(good))).baseline == pytest.approx(0.1)
    for change, pattern in (({"version": 7}, "version 7 is not supported"),
                            ({"image_size": [640]}, "image_size must be"),
                            ({"P2": [[500, 0, 320, 0], [0, 500, 240, 0], [0, 0, 1, 0]]}, r"baseline \(from P1\[0,3\] and P2\[0,3\]\) is zero"),
                            ({"P1": [[500, 0, 320], [0, 500, 240]]}, "P1 has 6 values"),
                            ({"rectified": "yes"}, "'rectified' must be true or false"),
                            ({"units": "furlong"}, "unknown length unit")):
        path = write(tmp_path, "bad.json", json.dumps({**good, **change}))
        with pytest.raises(CalibrationError, match=pattern) as error:
            read_calibration(path)
        assert str(path) in str(error.value)


# Detection and generic errors ------------------------------------------------------------------

def test_detect_format_by_content():
    assert detect_format(MIDDLEBURY_MOTORCYCLE) == "middlebury"
    assert detect_format(KITTI_CAM_TO_CAM) == "kitti-raw"
    assert detect_format(KITTI_STEREO) == "kitti-stereo"
    assert detect_format(OPENCV_EXTRINSICS) == "opencv"
    assert detect_format(OPENCV_XML) == "opencv"
    assert detect_format('{"fx": 1, "baseline_meters": 0.1}') == "stereodemo"
    assert detect_format('{"format": "depthapp-calibration"}') == "depthapp"
    assert detect_format('{"M1": {"type_id": "opencv-matrix"}}') == "opencv"
    assert detect_format("hello: world\n") is None
    assert detect_format('{"a": 1}') is None


def test_middlebury_content_in_a_yaml_named_file(tmp_path):
    calibration = read_calibration(write(tmp_path, "calib.yaml", MIDDLEBURY_MOTORCYCLE))
    assert calibration.focal == pytest.approx(3979.911)


@pytest.mark.parametrize("content, pattern", [
    ("just some text\nwith lines\n", "unknown calibration format"),
    ("", "calibration file is empty"),
    ("{not json", "unknown calibration format"),
    (MIDDLEBURY_MOTORCYCLE.replace("baseline=193.001", "baseline=0"), "field 'baseline' must be positive"),
    (MIDDLEBURY_MOTORCYCLE.replace("cam1=[3979.911 0 1369.115; 0 3979.911 1019.507; 0 0 1]\n", ""),
     "unknown calibration format"),
])
def test_bad_files_name_the_file(tmp_path, content, pattern):
    path = write(tmp_path, "calib.txt", content)
    with pytest.raises(CalibrationError, match=pattern) as error:
        read_calibration(path)
    assert str(path) in str(error.value)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(CalibrationError, match="no such calibration file"):
        read_calibration(tmp_path / "nope.txt")
    binary = tmp_path / "calib.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    with pytest.raises(CalibrationError, match="binary file"):
        read_calibration(binary)
    with pytest.raises(CalibrationError, match="folder holds no calibration file"):
        read_calibration(tmp_path)


def test_vertical_rig_is_refused(tmp_path):
    text = KITTI_STEREO.replace("P1: 7.070912000000e+02 0.000000000000e+00 6.018873000000e+02 -3.798145000000e+02 0.000000000000e+00 7.070912000000e+02 1.831104000000e+02 0.000000000000e+00",
                                "P1: 7.070912000000e+02 0.000000000000e+00 6.018873000000e+02 0.000000000000e+00 0.000000000000e+00 7.070912000000e+02 1.831104000000e+02 -3.798145000000e+02")
    with pytest.raises(CalibrationError, match="stacked vertically"):
        read_calibration(write(tmp_path, "calib.txt", text), kitti_cameras=(0, 1))
