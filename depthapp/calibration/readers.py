"""Read any supported stereo calibration file, recognising the format by its content.

Formats (see ``calib/README.md`` for an example of each):

- ``middlebury``: Middlebury 2014/2021 ``calib.txt`` (``cam0=[..]``, ``baseline`` in mm).
- ``kitti-raw``: KITTI raw / 2015 ``calib_cam_to_cam.txt`` (``P_rect_02:`` ..., ``S_rect_02:``).
- ``kitti-stereo``: KITTI stereo/odometry benchmark ``calib.txt`` (``P0:`` .. ``P3:``).
- ``opencv``: OpenCV FileStorage (YAML, XML or JSON) with OpenCV's stereo names
  ``M1 D1 M2 D2 R T`` and optionally ``R1 R2 P1 P2 Q``, also split in two files like the
  ``stereo_calib`` sample writes them (``intrinsics.yml`` + ``extrinsics.yml``).
- ``stereodemo``: stereodemo / OAK-D JSON (``fx fy cx0 cx1 cy baseline_meters width height``).
- ``depthapp``: depthapp's own JSON (``"format": "depthapp-calibration"``).
- ``ros``: ROS camera_info YAML (camera_calibration_parsers, as ``cameracalibrator`` writes
  ``left.yaml`` + ``right.yaml``): two files given as ``left.yaml,right.yaml``, a folder
  holding both, or one file with both cameras (see :mod:`depthapp.calibration.ros`).

Every reader returns a :class:`StereoCalibration` in metres. OpenCV files store ``T`` in the
units of the calibration target (whatever the square size was given in), so they need
``units=`` unless the file records its units itself (depthapp writes a ``units`` node).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import CalibrationError
from ..limits import read_bounded
from . import checks
from .middlebury import looks_like_middlebury, parse_middlebury_calib
from .model import StereoCalibration
from .ros import looks_like_ros_yaml, parse_ros_yaml

UNIT_FACTORS = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}
DEPTHAPP_FORMAT = "depthapp-calibration"
DEPTHAPP_VERSION = 1
FORMATS = ("middlebury", "kitti-raw", "kitti-stereo", "opencv", "stereodemo", "depthapp", "ros")

# Names tried, in order, when read_calibration is given a folder.
_FOLDER_CANDIDATES = ("calibration.json", "calib.json", "stereodemo_calibration.json",
                      "stereo_calibration.json", "calib.txt", "calib_cam_to_cam.txt",
                      "intrinsics.yml", "intrinsics.yaml", "intrinsics.xml",
                      "extrinsics.yml", "extrinsics.yaml", "extrinsics.xml",
                      "stereo.yml", "stereo.yaml", "stereo.xml", "calibration.yml",
                      "calibration.yaml", "calibration.xml", "left.yaml", "left.yml")
_OPENCV_EXTENSIONS = (".yml", ".yaml", ".xml", ".json")


def unit_factor(units: Optional[str], source: str) -> float:
    """Metres per unit for ``units`` in ``mm``, ``cm``, ``m`` (also ``millimeters`` etc.)."""
    aliases = {"millimeter": "mm", "millimeters": "mm", "millimetre": "mm", "millimetres": "mm",
               "centimeter": "cm", "centimeters": "cm", "centimetre": "cm", "centimetres": "cm",
               "meter": "m", "meters": "m", "metre": "m", "metres": "m"}
    key = str(units).strip().lower()
    key = aliases.get(key, key)
    if key not in UNIT_FACTORS:
        raise CalibrationError(f"{source}: unknown length unit {units!r} (use mm, cm or m)")
    return UNIT_FACTORS[key]


def normalise_units(units: str, source: str = "units") -> str:
    factor = unit_factor(units, source)
    return next(name for name, value in UNIT_FACTORS.items() if value == factor)


# Format detection ------------------------------------------------------------------------------

def _key_colon_values(text: str) -> dict[str, str]:
    """``KEY: values`` lines (KITTI); the first colon splits."""
    values = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, _, rest = line.partition(":")
        key = key.strip()
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            values[key] = rest.strip()
    return values


def _looks_like_opencv_json(data: Any) -> bool:
    return isinstance(data, dict) and any(
        isinstance(value, dict) and value.get("type_id") == "opencv-matrix" for value in data.values())


def detect_format(text: str, source: str = "<text>") -> Optional[str]:
    """The format name of calibration ``text`` (one of :data:`FORMATS`), or None."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if looks_like_ros_yaml(stripped):
        return "ros"
    if stripped.startswith("%YAML") or stripped.startswith("<?xml") or "<opencv_storage>" in stripped[:400]:
        return "opencv"
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            return None
        except (RecursionError, ValueError):  # too deep, or an integer beyond the digit limit
            data = _json(stripped, source)
        if isinstance(data, dict) and data.get("format") == DEPTHAPP_FORMAT:
            return "depthapp"
        if isinstance(data, dict) and "fx" in data and "baseline_meters" in data:
            return "stereodemo"
        if _looks_like_opencv_json(data):
            return "opencv"
        return None
    if looks_like_middlebury(stripped):
        return "middlebury"
    keys = _key_colon_values(stripped)
    if any(re.fullmatch(r"P_rect_\d\d", key) for key in keys):
        return "kitti-raw"
    if "P0" in keys and "P1" in keys:
        return "kitti-stereo"
    return None


# Entry point -----------------------------------------------------------------------------------

def read_calibration(path: str | os.PathLike, *, units: Optional[str] = None,
                     kitti_cameras: Sequence[int] = (2, 3),
                     image_size: Optional[tuple[int, int]] = None) -> StereoCalibration:
    """Read a stereo calibration, detecting its format from the content (not the extension).

    Args:
        path: a calibration file, or a folder holding one (e.g. ``intrinsics.yml`` +
            ``extrinsics.yml``).
        units: the length unit of an OpenCV file's ``T`` (``"mm"``, ``"cm"``, ``"m"``): the
            unit the calibration target's square size was given in. Required for OpenCV files
            that do not record it; ignored by formats with fixed units.
        kitti_cameras: the KITTI camera indices of the left and right view: ``(2, 3)`` for
            the colour cameras (``image_2``/``image_3``), ``(0, 1)`` for the grey ones.
        image_size: ``(width, height)`` for files that do not record it. When neither gives
            one, it is estimated as twice the principal point and
            ``calibration.extra["image_size_estimated"]`` is True.

    Raises:
        CalibrationError: unknown format, missing fields, impossible values (naming the file).
    """
    path = Path(path)
    if not path.exists() and "," in str(path):
        return _read_ros_pair([Path(p.strip()) for p in str(path).split(",")])
    if path.is_dir():
        path = _find_in_folder(path)
    text = read_calibration_text(path)
    source = str(path)
    kind = detect_format(text, source)
    if kind is None:
        raise CalibrationError(
            f"{source}: unknown calibration format (expected Middlebury calib.txt, KITTI "
            "calib_cam_to_cam.txt or calib.txt, OpenCV YAML/XML with M1 D1 M2 D2 R T, "
            "stereodemo/OAK-D JSON, depthapp JSON or ROS camera_info YAML)")
    if image_size is not None:
        image_size = checks.image_size("image_size argument", image_size)
    if kind == "middlebury":
        calibration = parse_middlebury_calib(text, source=source, image_size=image_size)
    elif kind == "kitti-raw":
        calibration = parse_kitti_cam_to_cam(text, source, kitti_cameras, image_size)
    elif kind == "kitti-stereo":
        calibration = parse_kitti_stereo(text, source, kitti_cameras, image_size)
    elif kind == "stereodemo":
        calibration = parse_stereodemo_json(text, source)
    elif kind == "depthapp":
        calibration = parse_depthapp_json(text, source)
    elif kind == "ros":
        calibration = _read_ros(path, text)
    else:
        calibration = read_opencv_calibration(path, units=units, image_size=image_size)
    calibration.extra.setdefault("format", kind)
    return calibration


def _read_ros(path: Path, text: str) -> StereoCalibration:
    """One ROS YAML file: both cameras in it, or ``left.yaml`` with ``right.yaml`` beside it."""
    texts = [(text, str(path))]
    if text.count("camera_matrix:") == 1 and "left" in path.stem.lower():
        right = path.with_name(re.sub("left", "right", path.name, flags=re.I))
        if right.is_file():
            texts.append((read_calibration_text(right), str(right)))
    return parse_ros_yaml(texts)


def _read_ros_pair(paths: list[Path]) -> StereoCalibration:
    """``--calib left.yaml,right.yaml``: one ROS camera_info YAML per camera."""
    if len(paths) != 2:
        raise CalibrationError(f"{','.join(map(str, paths))}: give two files, left,right")
    texts = []
    for path in paths:
        text = read_calibration_text(path)
        if detect_format(text) != "ros":
            raise CalibrationError(f"{path}: not a ROS camera_info YAML (two comma-separated "
                                   "files are read as left.yaml,right.yaml)")
        texts.append((text, str(path)))
    return parse_ros_yaml(texts)


def _find_in_folder(folder: Path) -> Path:
    for name in _FOLDER_CANDIDATES:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise CalibrationError(f"{folder}: folder holds no calibration file (looked for "
                           f"{', '.join(_FOLDER_CANDIDATES[:6])}, intrinsics.yml, ...)")


def read_calibration_text(path: Path) -> str:
    """The file's text, read at most :data:`checks.MAX_CALIBRATION_BYTES` (1 MiB) deep: a
    calibration is a few kilobytes, and ``/dev/zero`` or a video given by mistake must not be
    read to the end."""
    if not path.exists():
        raise CalibrationError(f"{path}: no such calibration file")
    data = read_bounded(path, checks.MAX_CALIBRATION_BYTES, "a calibration file", CalibrationError)
    if not data.strip():
        raise CalibrationError(f"{path}: calibration file is empty")
    if b"\x00" in data[:4096]:
        raise CalibrationError(f"{path}: unknown calibration format (binary file)")
    return data.decode("utf-8", errors="replace")


def _estimated_size(camera: np.ndarray, source: str) -> tuple[int, int]:
    estimate = (round(2 * float(camera[0, 2])), round(2 * float(camera[1, 2])))
    return checks.image_size(source, estimate, ("width (estimated as 2 cx; pass the image size)",
                                                "height (estimated as 2 cy; pass the image size)"))


def _check_orientation(p1: np.ndarray, p2: np.ndarray, source: str) -> None:
    """Refuse rigs depthapp cannot match: vertical stereo, or left and right swapped."""
    horizontal = p1[0, 3] - p2[0, 3]
    vertical = p1[1, 3] - p2[1, 3]
    if abs(vertical) > abs(horizontal):
        raise CalibrationError(f"{source}: the cameras are stacked vertically; depthapp needs a "
                               "left/right rig")
    if horizontal < 0:
        raise CalibrationError(f"{source}: the right camera is left of the left camera "
                               "(negative baseline); swap the left and right images/cameras")


# KITTI -----------------------------------------------------------------------------------------

def _kitti_numbers(values: dict[str, str], key: str, count: int, source: str,
                   hint: str = "") -> np.ndarray:
    if key not in values:
        raise CalibrationError(f"{source}: missing field {key!r}{hint}")
    words = values[key].split()
    if len(words) != count:
        raise CalibrationError(f"{source}: field {key!r} has {len(words)} numbers, expected {count}")
    numbers = []
    for index, word in enumerate(words):
        try:
            numbers.append(float(word))
        except ValueError:
            raise CalibrationError(f"{source}: {key}[{index}] is not a number: {word[:40]!r}") from None
    return checks.finite_matrix(source, key, numbers)


def _cameras(kitti_cameras: Sequence[int], source: str) -> tuple[int, int]:
    try:
        left, right = (int(c) for c in kitti_cameras)
    except (TypeError, ValueError):
        raise CalibrationError(f"{source}: kitti_cameras must be two camera indices, "
                               f"got {kitti_cameras!r}") from None
    return left, right


def _kitti_projections(text: str, source: str, kitti_cameras: Sequence[int], key: str):
    """The ``key:`` lines of a KITTI file and the 3x4 projections of the chosen two cameras
    (``key`` formats a camera number into its line's name)."""
    values = _key_colon_values(text)
    left, right = _cameras(kitti_cameras, source)
    hint = " (choose other cameras with kitti_cameras / --kitti-cameras)"
    p1 = _kitti_numbers(values, key.format(left), 12, source, hint).reshape(3, 4)
    p2 = _kitti_numbers(values, key.format(right), 12, source, hint).reshape(3, 4)
    return values, (left, right), p1, p2


def parse_kitti_cam_to_cam(text: str, source: str = "<text>", kitti_cameras: Sequence[int] = (2, 3),
                           image_size: Optional[tuple[int, int]] = None) -> StereoCalibration:
    """KITTI ``calib_cam_to_cam.txt``: the rectified ``P_rect_xx`` of the chosen cameras.

    ``S_rect_xx`` gives the rectified image size. The projections share camera 0's rectified
    frame, so the baseline is ``(P_left[0,3] - P_right[0,3]) / f`` (0.532 m for the colour pair).
    """
    values, (left, right), p1, p2 = _kitti_projections(text, source, kitti_cameras, "P_rect_{:02d}")
    extra: dict[str, Any] = {"kitti_cameras": [left, right]}
    size_key = f"S_rect_{left:02d}"
    labels = {"P1": f"P_rect_{left:02d}", "P2": f"P_rect_{right:02d}",
              "width": f"{size_key}[0] (width)", "height": f"{size_key}[1] (height)"}
    if size_key in values:
        size = checks.image_size(source, _kitti_numbers(values, size_key, 2, source),
                                 (labels["width"], labels["height"]))
    elif image_size is not None:
        size = image_size
    else:
        size = _estimated_size(p1, source)
        extra["image_size_estimated"] = True
    if f"S_{left:02d}" in values:
        extra["raw_image_size"] = list(checks.image_size(
            source, _kitti_numbers(values, f"S_{left:02d}", 2, source),
            (f"S_{left:02d}[0] (width)", f"S_{left:02d}[1] (height)")))
    if "calib_time" in values:
        extra["calib_time"] = values["calib_time"]
    _check_orientation(p1, p2, source)
    return StereoCalibration(image_size=size, P1=p1, P2=p2, rectified=True, source=source,
                             extra=extra, labels=labels)


def parse_kitti_stereo(text: str, source: str = "<text>", kitti_cameras: Sequence[int] = (2, 3),
                       image_size: Optional[tuple[int, int]] = None) -> StereoCalibration:
    """KITTI stereo / odometry benchmark ``calib.txt`` (``P0:`` .. ``P3:``, 12 numbers each).

    The file records no image size: pass ``image_size`` (KITTI images are about 1242x375) or
    get an estimate flagged in ``extra["image_size_estimated"]``.
    """
    values, (left, right), p1, p2 = _kitti_projections(text, source, kitti_cameras, "P{}")
    extra: dict[str, Any] = {"kitti_cameras": [left, right]}
    if image_size is None:
        image_size = _estimated_size(p1, source)
        extra["image_size_estimated"] = True
    _check_orientation(p1, p2, source)
    return StereoCalibration(image_size=image_size, P1=p1, P2=p2, rectified=True, source=source,
                             extra=extra, labels={"P1": f"P{left}", "P2": f"P{right}"})


# JSON formats ----------------------------------------------------------------------------------

def _json(text: str, source: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise CalibrationError(f"{source}: invalid JSON ({error.msg} at line {error.lineno})") from None
    except RecursionError:
        raise CalibrationError(f"{source}: invalid JSON (nested too deeply)") from None
    except ValueError as error:  # e.g. an integer literal longer than Python's digit limit
        raise CalibrationError(f"{source}: invalid JSON ({str(error).splitlines()[0][:80]})") from None
    if not isinstance(data, dict):
        raise CalibrationError(f"{source}: expected a JSON object")
    return data


def _json_number(data: dict, key: str, source: str, default: Any = None) -> float:
    if key not in data or data[key] is None:
        if default is not None:
            return default
        raise CalibrationError(f"{source}: missing field {key!r}")
    return checks.number(source, f"field {key!r}", data[key])


def parse_stereodemo_json(text: str, source: str = "<text>") -> StereoCalibration:
    """stereodemo's ``stereodemo_calibration.json`` (OAK-D captures): rectified, metres."""
    data = _json(text, source)
    fx = _json_number(data, "fx", source)
    fy = _json_number(data, "fy", source, default=fx)
    cx0 = _json_number(data, "cx0", source)
    cx1 = _json_number(data, "cx1", source, default=cx0)
    cy = _json_number(data, "cy", source)
    baseline = _json_number(data, "baseline_meters", source)
    size = checks.image_size(source, (data.get("width"), data.get("height")),
                             ("field 'width'", "field 'height'"))
    checks.focal(source, "field 'fx'", fx)
    checks.focal(source, "field 'fy'", fy)
    checks.baseline(source, "field 'baseline_meters'", baseline)
    calibration = StereoCalibration.from_rectified(
        focal=fx, baseline=baseline, cx_left=cx0, cy=cy, image_size=size,
        cx_right=cx1, focal_y=fy, source=source)
    for key in ("depth_range", "left_image_rect_normalized", "comment"):
        if key in data:
            calibration.extra[key] = data[key]
    return calibration


_MATRIX_FIELDS = ("P1", "P2", "K1", "D1", "K2", "D2", "R", "T", "R1", "R2", "Q")


def parse_depthapp_json(text: str, source: str = "<text>") -> StereoCalibration:
    """depthapp's own JSON (written by :func:`depthapp.calibration.writers.write_calibration`)."""
    data = _json(text, source)
    version = data.get("version")
    if version != DEPTHAPP_VERSION:
        raise CalibrationError(f"{source}: depthapp calibration version {version!r} is not "
                               f"supported (this depthapp reads version {DEPTHAPP_VERSION})")
    factor = unit_factor(data.get("units", "m"), source)
    size = data.get("image_size")
    if not isinstance(size, list) or len(size) != 2:
        raise CalibrationError(f"{source}: image_size must be [width, height], got {_short(size)}")
    size = checks.image_size(source, size, ("image_size[0] (width)", "image_size[1] (height)"))
    fields: dict[str, Any] = {}
    for name in _MATRIX_FIELDS:
        value = data.get(name)
        if value is None:
            continue
        if not _numeric_list(value):
            raise CalibrationError(f"{source}: {name} is not a numeric matrix: {_short(value)}")
        fields[name] = checks.finite_matrix(source, name, value)
    fields = _scale_lengths(_shaped(fields, source), factor)
    rectified = data.get("rectified")
    if not isinstance(rectified, bool):
        raise CalibrationError(f"{source}: field 'rectified' must be true or false")
    ndisp = checks.ndisp(source, data.get("ndisp"))
    extra = data.get("extra") or {}
    if not isinstance(extra, dict):
        raise CalibrationError(f"{source}: field 'extra' must be an object")
    if fields.get("P1") is not None and fields.get("P2") is not None:
        _check_orientation(fields["P1"], fields["P2"], source)
    return StereoCalibration(image_size=size, rectified=rectified, ndisp=ndisp, source=source,
                             extra=dict(extra), **fields)


def _numeric_list(value: Any, depth: int = 0) -> bool:
    """A number, or a list (at most 2 deep) of them: what a matrix field may hold in JSON."""
    if isinstance(value, list):
        return depth < 2 and all(_numeric_list(item, depth + 1) for item in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_SHAPES = {"P1": (3, 4), "P2": (3, 4), "K1": (3, 3), "K2": (3, 3), "R": (3, 3), "R1": (3, 3),
           "R2": (3, 3), "Q": (4, 4), "T": (3,), "E": (3, 3), "F": (3, 3)}


def _shaped(fields: dict[str, Any], source: str) -> dict[str, Any]:
    """Check and reshape matrices (distortion stays a flat vector of any length)."""
    out = {}
    for name, value in fields.items():
        array = np.asarray(value, dtype=np.float64)
        if name in _SHAPES:
            shape = _SHAPES[name]
            if array.size != int(np.prod(shape)):
                label = {"K1": "M1", "K2": "M2"}.get(name, name)
                raise CalibrationError(f"{source}: {label} has {array.size} values, expected {shape}")
            array = array.reshape(shape)
        else:
            array = array.ravel()
        out[name] = array
    return out


def _scale_lengths(fields: dict[str, Any], factor: float) -> dict[str, Any]:
    """Convert the length-bearing fields from a unit to metres (``factor`` metres per unit).

    ``T`` and ``E`` scale; ``P``'s fourth column (``f * Tx``) scales; ``Q``'s last row
    (``1/Tx``) divides. ``F`` and everything in pixels do not change.
    """
    if factor == 1.0:
        return fields
    out = dict(fields)
    for name in ("T", "E"):
        if out.get(name) is not None:
            out[name] = np.asarray(out[name], dtype=np.float64) * factor
    for name in ("P1", "P2"):
        if out.get(name) is not None:
            p = np.array(out[name], dtype=np.float64).reshape(3, 4)
            p[:, 3] *= factor
            out[name] = p
    if out.get("Q") is not None:
        q = np.array(out["Q"], dtype=np.float64).reshape(4, 4)
        q[3, :] /= factor
        out["Q"] = q
    return out


# OpenCV FileStorage ----------------------------------------------------------------------------

_MATRIX_DEPTHS = {"u": 1, "c": 1, "w": 2, "s": 2, "i": 4, "f": 4, "d": 8, "h": 2}
_MAX_MATRIX_SIDE = 64


def _open_storage(path: Path):
    """Parse an OpenCV FileStorage file from its bounded text (see :func:`read_calibration_text`), so
    OpenCV never reads the path itself."""
    import cv2

    text = read_calibration_text(path)
    try:
        storage = cv2.FileStorage(text, cv2.FileStorage_READ | cv2.FileStorage_MEMORY)
    except (cv2.error, SystemError) as error:
        # OpenCV's parser reports syntax errors as cv2.error, or as SystemError from the binding.
        cause = error.__cause__ or error
        lines = str(cause).strip().splitlines()
        message = lines[-1] if lines else "parse error"
        raise CalibrationError(f"{path}: not a readable OpenCV FileStorage file ({message[-160:]})") from None
    if not storage.isOpened():
        raise CalibrationError(f"{path}: cannot open as an OpenCV FileStorage file")
    return storage


def _node_int(node, label: str, low: int, high: int, source: str) -> int:
    if not (node.isInt() or node.isReal()):
        raise CalibrationError(f"{source}: {label} is not a number")
    return checks.integer(source, label, node.real(), low, high)


def _storage_matrix(node, name: str, source: str) -> np.ndarray:
    """An ``opencv-matrix`` node read field by field. ``FileNode.mat()`` trusts the declared
    ``rows``/``cols`` and corrupts memory when they disagree with ``data``, so it is never
    called: every declared number is checked against the data first."""
    rows = _node_int(node.getNode("rows"), f"{name}.rows", 1, _MAX_MATRIX_SIDE, source)
    cols = _node_int(node.getNode("cols"), f"{name}.cols", 1, _MAX_MATRIX_SIDE, source)
    dt = node.getNode("dt").string() if node.getNode("dt").isString() else ""
    match = re.fullmatch(r"([1-4]?)([ucwsifdh])", dt.strip())
    if not match:
        raise CalibrationError(f"{source}: {name}.dt is not an OpenCV element type: {dt[:20]!r}")
    channels = int(match.group(1) or 1)
    data = node.getNode("data")
    expected = rows * cols * channels
    if not data.isSeq() or data.size() != expected:
        found = data.size() if data.isSeq() else "no list of"
        raise CalibrationError(f"{source}: {name} declares {rows}x{cols}x{channels} = {expected} "
                               f"values, its data holds {found} values")
    items = [data.at(i) for i in range(expected)]
    for index, item in enumerate(items):
        if not (item.isReal() or item.isInt()):
            raise CalibrationError(f"{source}: {name}.data[{index}] is not a number")
    values = checks.finite_matrix(source, name, [item.real() for item in items])
    return values.reshape((rows, cols) if channels == 1 else (rows, cols, channels))


def _storage_values(path: Path) -> dict[str, Any]:
    """The top-level nodes of an OpenCV file: matrices as arrays, numbers, strings, sequences."""
    import cv2

    storage = _open_storage(path)
    try:
        values: dict[str, Any] = {}
        root = storage.root()
        for name in root.keys():
            node = root.getNode(name)
            if node.isMap() and not node.getNode("data").empty():
                values[name] = _storage_matrix(node, name, str(path))
            elif node.isSeq():
                if node.size() > _MAX_MATRIX_SIDE:
                    continue
                items = [node.at(i) for i in range(node.size())]
                if all(item.isReal() or item.isInt() for item in items):
                    values[name] = [item.real() for item in items]
            elif node.isReal() or node.isInt():
                values[name] = node.real()
            elif node.isString():
                values[name] = node.string()
        return values
    except (cv2.error, SystemError) as error:
        raise CalibrationError(f"{path}: cannot read OpenCV nodes ({str(error).strip()[-160:]})") from None
    finally:
        storage.release()


def _sibling(path: Path, want: str) -> Optional[Path]:
    """``extrinsics.yml`` beside ``intrinsics.yml`` (and the other way round)."""
    other = "extrinsics" if want == "extrinsics" else "intrinsics"
    this = "intrinsics" if want == "extrinsics" else "extrinsics"
    stems = []
    if this in path.stem.lower():
        stems.append(re.sub(this, other, path.stem, flags=re.I))
    stems.append(other)
    for stem in stems:
        for extension in (path.suffix,) + _OPENCV_EXTENSIONS:
            candidate = path.with_name(stem + extension)
            if candidate != path and candidate.is_file():
                return candidate
    return None


def _image_size_from_values(values: dict[str, Any], source: str) -> Optional[tuple[int, int]]:
    for key in ("image_size", "imageSize", "size"):
        value = values.get(key)
        if isinstance(value, (list, np.ndarray)):
            flat = list(np.ravel(value))
            if len(flat) != 2:
                raise CalibrationError(f"{source}: {key} must hold width and height, got {len(flat)} values")
            return checks.image_size(source, flat, (f"{key}[0] (width)", f"{key}[1] (height)"))
    for width_key, height_key in (("image_width", "image_height"), ("width", "height"),
                                  ("imageWidth", "imageHeight")):
        if width_key in values and height_key in values:
            return checks.image_size(source, (values[width_key], values[height_key]),
                                     (width_key, height_key))
    return None


def read_opencv_calibration(path: str | os.PathLike, *, units: Optional[str] = None,
                            image_size: Optional[tuple[int, int]] = None) -> StereoCalibration:
    """OpenCV FileStorage stereo calibration (``stereo_calib`` names), one file or two.

    ``M1 D1 M2 D2`` are the raw intrinsics, ``R T`` the right camera's pose relative to the
    left (``x_right = R x_left + T``), ``R1 R2 P1 P2 Q`` the rectification when present.
    The images such a file describes are raw (they still need rectifying) unless it carries
    a ``rectified: 1`` node, which depthapp writes for calibrations of rectified images.
    """
    path = Path(path)
    source = str(path)
    values = _storage_values(path)
    sources = [path]
    if "M1" not in values and ("R" in values or "P1" in values):
        sibling = _sibling(path, "intrinsics")
        if sibling is not None:
            values = {**_storage_values(sibling), **values}
            sources.append(sibling)
    elif "M1" in values and "R" not in values and "P1" not in values:
        sibling = _sibling(path, "extrinsics")
        if sibling is not None:
            values = {**values, **_storage_values(sibling)}
            sources.append(sibling)
    source = " + ".join(str(p) for p in sources)

    if "camera_matrix" in values and "M1" not in values:
        raise CalibrationError(f"{source}: a single-camera calibration (camera_matrix); a stereo "
                               "calibration needs M1 D1 M2 D2 R T")
    for name in ("M1", "D1", "M2", "D2", "R", "T", "R1", "R2", "P1", "P2", "Q"):
        if name in values and not isinstance(values[name], np.ndarray):
            raise CalibrationError(f"{source}: {name} is not an opencv-matrix node")
    has_raw = all(name in values for name in ("M1", "M2", "R", "T"))
    has_rectified = "P1" in values and "P2" in values
    if not has_raw and not has_rectified:
        missing = [name for name in ("M1", "D1", "M2", "D2", "R", "T") if name not in values]
        hint = ""
        if "M1" in values and "R" not in values:
            hint = " (intrinsics only: put extrinsics.yml beside it)"
        elif "R" in values and "M1" not in values:
            hint = " (extrinsics only: put intrinsics.yml beside it)"
        raise CalibrationError(f"{source}: missing {', '.join(missing)} (OpenCV stereo "
                               f"calibration){hint}")

    file_units = values.get("units")
    if isinstance(file_units, str) and file_units.strip():
        file_unit = normalise_units(file_units, source)
        if units is not None and normalise_units(units, "units") != file_unit:
            raise CalibrationError(f"{source}: the file says its lengths are in {file_unit}, "
                                   f"but units={units!r} was given")
        units = file_unit
    if units is None:
        raise CalibrationError(
            f"{source}: T is in the units of the calibration target and the file does not say "
            "which; pass --calib-units mm|cm|m (the unit the square size was given in)")
    factor = unit_factor(units, source)

    fields: dict[str, Any] = {}
    rename = {"M1": "K1", "M2": "K2"}
    for name in ("M1", "D1", "M2", "D2", "R", "T", "R1", "R2", "P1", "P2", "Q"):
        if name in values and isinstance(values[name], np.ndarray):
            fields[rename.get(name, name)] = values[name]
    fields = _scale_lengths(_shaped(fields, source), factor)
    if "T" in fields:
        checks.baseline(source, "baseline (length of T)", float(np.linalg.norm(fields["T"])))
    if has_rectified:
        _check_orientation(fields["P1"], fields["P2"], source)
    elif "R" in fields and "T" in fields:
        # The right camera's centre in the left camera's frame is -R^T T.
        right_centre = -fields["R"].T @ fields["T"]
        if abs(right_centre[1]) > abs(right_centre[0]):
            raise CalibrationError(f"{source}: the cameras are stacked vertically; depthapp "
                                   "needs a left/right rig")
        if right_centre[0] < 0:
            raise CalibrationError(f"{source}: the right camera is left of the left camera "
                                   "(T[0] > 0); swap the left and right cameras")

    rectified_flag = values.get("rectified")
    if rectified_flag is not None and rectified_flag not in (0, 1, 0.0, 1.0):
        raise CalibrationError(f"{source}: rectified must be 0 or 1, got {_short(rectified_flag)}")
    rectified = bool(rectified_flag) if rectified_flag is not None else not has_raw
    extra: dict[str, Any] = {"target_units": normalise_units(units, source)}
    size = _image_size_from_values(values, source) or image_size
    if size is None:
        size = _estimated_size(fields["K1"] if "K1" in fields else fields["P1"], source)
        extra["image_size_estimated"] = True
    ndisp = checks.ndisp(source, values.get("ndisp"))
    return StereoCalibration(image_size=size, rectified=rectified, source=source, ndisp=ndisp,
                             extra=extra, labels={"K1": "M1", "K2": "M2"}, **fields)
