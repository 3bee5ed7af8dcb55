"""Every number a calibration reader returns is checked: each field of each format, given
NaN, infinity, zero, a negative, a huge or tiny value or a word, is refused in one line that
names the file and the field (issue 15). The seeds are the real files in ``calib/``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from depthapp.calibration.readers import read_calibration
from depthapp.calibration.writers import write_calibration
from depthapp.errors import CalibrationError

REPO = Path(__file__).resolve().parents[2]
CALIB = REPO / "calib"
NOT_FINITE = ["nan", "inf", "-inf", "1e999"]
HUGE_TINY = ["1e308", "-1e308", "1e-300"]


def _refused(path: Path, field: str, **options) -> str:
    with pytest.raises(CalibrationError) as error:
        read_calibration(path, **options)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(str(path)), message
    assert field in message, message
    return message


def _replace_line(text: str, key: str, separator: str, value: str) -> str:
    pattern = re.compile(rf"^{re.escape(key)}{re.escape(separator)}.*$", re.M)
    assert pattern.search(text), key
    return pattern.sub(lambda _: f"{key}{separator}{value}", text, count=1)


# Middlebury -------------------------------------------------------------------------------------

MIDDLEBURY = (CALIB / "middlebury2014_motorcycle_calib.txt").read_text()


@pytest.mark.parametrize("key,values", [
    ("baseline", NOT_FINITE + HUGE_TINY + ["0", "-193", "abc"]),
    ("width", NOT_FINITE + ["0", "-5", "1e308", "abc", "12.5"]),
    ("height", NOT_FINITE + ["0", "-5", "1e308", "abc"]),
    ("ndisp", NOT_FINITE + ["0", "-68", "1e308", "99999999999", "abc"]),
    ("doffs", NOT_FINITE + ["abc"]),
])
def test_middlebury_scalar_fields(tmp_path, key, values):
    for value in values:
        path = tmp_path / "calib.txt"
        path.write_text(_replace_line(MIDDLEBURY, key, "=", value))
        message = _refused(path, f"'{key}'")
        assert "baseline is zero" not in message


@pytest.mark.parametrize("camera", ["cam0", "cam1"])
@pytest.mark.parametrize("value", NOT_FINITE + ["1e308", "abc"])
def test_middlebury_matrix_entries(tmp_path, camera, value):
    matrix = f"[{value} 0 1244.772; 0 3979.911 1019.507; 0 0 1]"
    path = tmp_path / "calib.txt"
    path.write_text(_replace_line(MIDDLEBURY, camera, "=", matrix))
    _refused(path, camera)


@pytest.mark.parametrize("value", ["0", "-3979.911"])
def test_middlebury_focal_must_be_positive(tmp_path, value):
    path = tmp_path / "calib.txt"
    path.write_text(_replace_line(MIDDLEBURY, "cam0", "=", f"[{value} 0 1244.772; 0 3979.911 1019.507; 0 0 1]"))
    assert "focal length" in _refused(path, "cam0[0,0]")


def test_inf_nan_and_tiny_baselines_are_not_called_zero(tmp_path):
    for value, words in (("inf", "not finite"), ("nan", "not finite"), ("1e-300", "below")):
        path = tmp_path / "calib.txt"
        path.write_text(_replace_line(MIDDLEBURY, "baseline", "=", value))
        assert words in _refused(path, "'baseline'")


def test_negative_ndisp_names_the_calibration_not_the_flag(tmp_path):
    path = tmp_path / "calib.txt"
    path.write_text(_replace_line(MIDDLEBURY, "ndisp", "=", "-68"))
    message = _refused(path, "'ndisp'")
    assert "--max-disp" not in message and "-68" in message


# KITTI ------------------------------------------------------------------------------------------

KITTI_RAW = (CALIB / "kitti_2011_09_26_calib_cam_to_cam.txt").read_text()
KITTI_STEREO = (CALIB / "kitti_odometry_00_calib.txt").read_text()


def _kitti_replace(text: str, key: str, index: int, value: str) -> str:
    line = re.search(rf"^{key}:(.*)$", text, re.M)
    words = line.group(1).split()
    words[index] = value
    return text.replace(line.group(0), f"{key}: {' '.join(words)}", 1)


@pytest.mark.parametrize("key,index", [("P_rect_02", 0), ("P_rect_02", 5), ("P_rect_02", 2),
                                       ("P_rect_03", 3), ("P_rect_03", 0), ("S_rect_02", 0),
                                       ("S_rect_02", 1)])
@pytest.mark.parametrize("value", NOT_FINITE + ["1e308", "abc"])
def test_kitti_raw_fields(tmp_path, key, index, value):
    path = tmp_path / "calib_cam_to_cam.txt"
    path.write_text(_kitti_replace(KITTI_RAW, key, index, value))
    _refused(path, key)


@pytest.mark.parametrize("key,index,value", [("P_rect_02", 0, "0"), ("P_rect_02", 0, "-721"),
                                             ("S_rect_02", 0, "0"), ("S_rect_02", 1, "-375"),
                                             ("S_rect_02", 0, "1242.5")])
def test_kitti_raw_physical_values(tmp_path, key, index, value):
    path = tmp_path / "calib_cam_to_cam.txt"
    path.write_text(_kitti_replace(KITTI_RAW, key, index, value))
    _refused(path, key)


@pytest.mark.parametrize("key,index", [("P2", 0), ("P2", 3), ("P3", 3), ("P3", 6)])
@pytest.mark.parametrize("value", NOT_FINITE + ["1e308", "abc"])
def test_kitti_stereo_fields(tmp_path, key, index, value):
    path = tmp_path / "calib.txt"
    path.write_text(_kitti_replace(KITTI_STEREO, key, index, value))
    _refused(path, key)


def test_kitti_nan_focal_is_refused_not_turned_into_nan_depth(tmp_path):
    path = tmp_path / "calib_cam_to_cam.txt"
    path.write_text(_kitti_replace(KITTI_RAW, "P_rect_02", 0, "nan"))
    assert "nan" in _refused(path, "P_rect_02")


# JSON formats -----------------------------------------------------------------------------------

STEREODEMO = json.loads((CALIB / "oakd_stereodemo_calibration.json").read_text())
BAD_JSON_VALUES = [float("nan"), float("inf"), -float("inf"), 1e308, 10**30, "abc", [1], True]


@pytest.mark.parametrize("key", ["fx", "fy", "cx0", "cx1", "cy", "baseline_meters", "width", "height"])
def test_stereodemo_fields(tmp_path, key):
    values = BAD_JSON_VALUES + ([0, -1] if key in ("fx", "fy", "baseline_meters", "width", "height") else [])
    for value in values:
        path = tmp_path / "stereodemo_calibration.json"
        path.write_text(json.dumps({**STEREODEMO, key: value}, allow_nan=True))
        _refused(path, key)


def test_json_integers_beyond_int64_and_python_digit_limit(tmp_path):
    path = tmp_path / "c.json"
    text = json.dumps({**STEREODEMO, "width": 1})
    path.write_text(text.replace('"width": 1', '"width": ' + "9" * 30))
    _refused(path, "width")
    path.write_text(text.replace('"width": 1', '"width": ' + "9" * 5000))
    _refused(path, "invalid JSON")


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_json(tmp_path, depth):
    path = tmp_path / "deep.json"
    path.write_text('{"format": "depthapp-calibration", "x": ' + "[" * depth + "]" * depth + "}")
    message = _refused(path, "")
    if depth == 100_000:
        assert "nested too deeply" in message


DEPTHAPP = json.loads((CALIB / "opencv_doc_chessboard.json").read_text())


@pytest.mark.parametrize("key", ["P1", "P2", "R1", "R2", "Q"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e308, "abc"])
def test_depthapp_json_matrix_entries(tmp_path, key, value):
    data = json.loads(json.dumps(DEPTHAPP))
    assert key in data, f"the seed lost {key}: this case would test nothing"
    data[key][0][0] = value
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(data, allow_nan=True))
    _refused(path, key)


@pytest.mark.parametrize("value", [[0, 480], [640, float("nan")], [-640, 480], [1e308, 480], ["a", 480],
                                   [640], 640, [10**30, 480]])
def test_depthapp_json_image_size(tmp_path, value):
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({**DEPTHAPP, "image_size": value}, allow_nan=True))
    _refused(path, "image_size")


@pytest.mark.parametrize("value", [0, -68, 1e308, "abc", 2.5])
def test_depthapp_json_ndisp(tmp_path, value):
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({**DEPTHAPP, "ndisp": value}))
    _refused(path, "ndisp")


# OpenCV FileStorage -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def opencv_seeds(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("opencv")
    raw = read_calibration(CALIB / "opencv_doc_chessboard.json")
    seeds = {}
    for suffix in (".yml", ".xml"):
        write_calibration(raw, folder / f"seed{suffix}", units="mm")
        seeds[suffix] = (folder / f"seed{suffix}").read_text()
    return seeds


def _opencv_replace_first_value(text: str, suffix: str, name: str, value: str) -> str:
    if suffix == ".yml":
        pattern = re.compile(rf"(^{name}: !!opencv-matrix.*?data: \[\s*)([^,\s\]]+)", re.S | re.M)
    else:
        pattern = re.compile(rf"(<{name} type_id=\"opencv-matrix\">.*?<data>\s*)(\S+)", re.S)
    assert pattern.search(text), name
    return pattern.sub(lambda m: m.group(1) + value, text, count=1)


@pytest.mark.parametrize("suffix", [".yml", ".xml"])
@pytest.mark.parametrize("name", ["M1", "D1", "M2", "D2", "R", "T", "P1", "P2"])
@pytest.mark.parametrize("value", [".nan", ".inf", "1e308"])
def test_opencv_matrix_entries(tmp_path, opencv_seeds, suffix, name, value):
    text = opencv_seeds[suffix]
    assert f"{name}:" in text or f"<{name} " in text, f"the seed lost {name}: this case would test nothing"
    if suffix == ".xml" and value.startswith("."):
        value = value[1:]
    path = tmp_path / f"stereo{suffix}"
    path.write_text(_opencv_replace_first_value(text, suffix, name, value))
    _refused(path, name)


def _opencv_declared(text: str, suffix: str, name: str, field: str, value: str) -> str:
    if suffix == ".yml":
        pattern = re.compile(rf"(^{name}: !!opencv-matrix.*?{field}: )(\S+)", re.S | re.M)
    else:
        pattern = re.compile(rf"(<{name} type_id=\"opencv-matrix\">.*?<{field}>)([^<]*)", re.S)
    return pattern.sub(lambda m: m.group(1) + value, text, count=1)


@pytest.mark.parametrize("suffix", [".yml", ".xml"])
@pytest.mark.parametrize("field,value", [("cols", "-3"), ("rows", "-1"), ("cols", "0"), ("rows", "2"),
                                         ("cols", "2147483647"), ("rows", "1e308"), ("dt", "x"),
                                         ("cols", "abc")])
def test_opencv_declared_shape_is_checked_against_the_data(tmp_path, opencv_seeds, suffix, field, value):
    path = tmp_path / f"stereo{suffix}"
    path.write_text(_opencv_declared(opencv_seeds[suffix], suffix, "M1", field, value))
    _refused(path, "M1")


def test_opencv_negative_cols_never_corrupts_memory(tmp_path, opencv_seeds):
    """cols: -3 made FileNode.mat() crash with free(): invalid next size in 3 of 5 runs."""
    path = tmp_path / "stereo.yml"
    path.write_text(_opencv_declared(opencv_seeds[".yml"], ".yml", "M1", "cols", "-3"))
    script = ("import sys\nfrom depthapp.calibration.readers import read_calibration\n"
              "from depthapp.errors import CalibrationError\n"
              "for _ in range(20):\n"
              "    try:\n        read_calibration(sys.argv[1])\n"
              "    except CalibrationError as error:\n        message = str(error)\n"
              "print(message)\n")
    child = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True,
                           timeout=120, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert child.returncode == 0, child.stderr
    assert "M1.cols = -3" in child.stdout


@pytest.mark.parametrize("node,value", [("ndisp", "-68"), ("ndisp", ".nan"), ("rectified", "7"),
                                        ("units", "furlong")])
def test_opencv_scalar_nodes(tmp_path, opencv_seeds, node, value):
    text = opencv_seeds[".yml"]
    text = re.sub(rf"^{node}:.*$", "", text, flags=re.M) + f"{node}: {value}\n"
    path = tmp_path / "stereo.yml"
    path.write_text(text)
    _refused(path, node if node != "units" else "unit")


def test_opencv_rotation_must_be_a_rotation(tmp_path, opencv_seeds):
    path = tmp_path / "stereo.yml"
    path.write_text(_opencv_replace_first_value(opencv_seeds[".yml"], ".yml", "R", "5."))
    assert "rotation" in _refused(path, "R")


# Sizes of the file itself -----------------------------------------------------------------------

def test_dev_zero_is_not_read_without_bound():
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero on this system")
    with pytest.raises(CalibrationError, match="larger than 1 MiB"):
        read_calibration("/dev/zero")


def test_huge_file_is_refused(tmp_path):
    path = tmp_path / "calib.txt"
    path.write_bytes(MIDDLEBURY.encode() + b"#" * (2 << 20))
    _refused(path, "larger than")


def test_real_calibrations_still_read():
    for path in sorted(CALIB.glob("*.txt")) + sorted(CALIB.glob("*.json")):
        calibration = read_calibration(path)
        assert np.isfinite(calibration.P1).all() or calibration.K1 is not None
    read_calibration(CALIB / "opencv_stereo_calib" / "intrinsics.yml", units="mm")
