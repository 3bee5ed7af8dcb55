"""Write a :class:`StereoCalibration`: depthapp JSON or OpenCV FileStorage (YAML/XML).

The extension picks the format: ``.json`` writes depthapp's own JSON (metres; read back by
:func:`depthapp.calibration.readers.read_calibration`), ``.yaml``/``.yml``/``.xml`` write OpenCV
FileStorage with the names OpenCV's ``stereo_calib`` sample and ``cv2.stereoRectify`` users
expect (``M1 D1 M2 D2 R T E F R1 R2 P1 P2 Q``) plus ``image_width``/``image_height``, ``units``
and ``rectified``. Files are written atomically and never overwrite unless asked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import CalibrationError, UsageError
from ..io.atomic import atomic_path, check_writable, write_bytes_atomic
from .model import StereoCalibration
from .readers import DEPTHAPP_FORMAT, DEPTHAPP_VERSION, normalise_units, unit_factor

JSON_EXTENSIONS = (".json",)
OPENCV_EXTENSIONS = (".yaml", ".yml", ".xml")


def write_calibration(calibration: StereoCalibration, path: str | os.PathLike,
                      overwrite: bool = False, *, units: str = "m") -> Path:
    """Write ``calibration`` to ``path``; the extension picks the format.

    Args:
        units: length unit of ``T`` (and of ``P2[0,3]``, ``Q``, ``E``) in OpenCV files, recorded
            in their ``units`` node: pass the unit of the calibration target to get the numbers
            OpenCV's own tools would print. depthapp JSON is always in metres.
    """
    path = Path(path)
    extension = path.suffix.lower()
    if extension in JSON_EXTENSIONS:
        text = format_depthapp_json(calibration)
        return write_bytes_atomic(path, text.encode("utf-8"), overwrite=overwrite)
    if extension in OPENCV_EXTENSIONS:
        with atomic_path(path, overwrite) as tmp:
            _write_opencv(calibration, tmp, units)
        return path
    raise UsageError(f"{path}: unknown calibration extension {path.suffix!r} "
                     "(use .json for depthapp JSON, .yaml/.yml/.xml for OpenCV)")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def calibration_to_dict(calibration: StereoCalibration) -> dict[str, Any]:
    """depthapp JSON as a dict: every known matrix, metres, plus an informational summary."""
    data: dict[str, Any] = {
        "format": DEPTHAPP_FORMAT,
        "version": DEPTHAPP_VERSION,
        "units": "m",
        "image_size": [int(calibration.image_size[0]), int(calibration.image_size[1])],
        "rectified": bool(calibration.rectified),
    }
    for name in ("P1", "P2", "R1", "R2", "Q", "K1", "D1", "K2", "D2", "R", "T"):
        value = getattr(calibration, name)
        if value is not None:
            data[name] = np.asarray(value, dtype=np.float64).tolist()
    if calibration.ndisp:
        data["ndisp"] = int(calibration.ndisp)
    if calibration.P1 is not None and calibration.P2 is not None:
        # For people reading the file; the reader ignores it.
        data["summary"] = {"focal_px": calibration.focal, "baseline_m": calibration.baseline,
                           "cx_left": calibration.cx_left, "cx_right": calibration.cx_right,
                           "cy": calibration.cy, "doffs": calibration.doffs}
    extra = {k: v for k, v in calibration.extra.items() if k not in ("format",)}
    if extra:
        data["extra"] = _jsonable(extra)
    return data


def _dump(value: Any, indent: int = 0) -> str:
    """JSON with one matrix row per line (``json.dumps(indent=2)`` puts every number on its own)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f'{pad}  {json.dumps(str(k))}: {_dump(v, indent + 2)}' for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and value and all(isinstance(row, list) for row in value):
        rows = [f"{pad}  {json.dumps(row)}" for row in value]
        return "[\n" + ",\n".join(rows) + f"\n{pad}]"
    return json.dumps(value)


def format_depthapp_json(calibration: StereoCalibration) -> str:
    return _dump(calibration_to_dict(calibration)) + "\n"


def _skew(t: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -t[2], t[1]], [t[2], 0.0, -t[0]], [-t[1], t[0], 0.0]])


def essential_fundamental(calibration: StereoCalibration) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """``E = [T]x R`` (metres) and ``F = K2^-T E K1^-1`` scaled to ``F[2,2] = 1``, for a raw rig."""
    if calibration.R is None or calibration.T is None:
        return None, None
    essential = _skew(calibration.T) @ calibration.R
    if calibration.K1 is None or calibration.K2 is None:
        return essential, None
    fundamental = np.linalg.inv(calibration.K2).T @ essential @ np.linalg.inv(calibration.K1)
    if abs(fundamental[2, 2]) > 1e-12:
        fundamental = fundamental / fundamental[2, 2]
    return essential, fundamental


def _opencv_fields(calibration: StereoCalibration, units: str) -> dict[str, np.ndarray]:
    """OpenCV's names and values in ``units``; a calibration of rectified images gets
    identity rotations and zero distortion so OpenCV tools can use it too."""
    scale = 1.0 / unit_factor(units, "units")
    fields: dict[str, np.ndarray] = {}
    if calibration.K1 is not None and calibration.R is not None:
        fields["M1"] = calibration.K1
        fields["D1"] = calibration.D1 if calibration.D1 is not None else np.zeros(5)
        fields["M2"] = calibration.K2
        fields["D2"] = calibration.D2 if calibration.D2 is not None else np.zeros(5)
        fields["R"] = calibration.R
        fields["T"] = calibration.T * scale
        essential, fundamental = essential_fundamental(calibration)
        fields["E"] = essential * scale
        if fundamental is not None:
            fields["F"] = fundamental
    elif calibration.P1 is not None:
        fields["M1"] = calibration.P1[:, :3]
        fields["D1"] = np.zeros(5)
        fields["M2"] = calibration.P2[:, :3]
        fields["D2"] = np.zeros(5)
        fields["R"] = np.eye(3)
        fields["T"] = np.array([-calibration.baseline * scale, 0.0, 0.0])
    if calibration.P1 is not None and calibration.P2 is not None:
        fields["R1"] = calibration.R1 if calibration.R1 is not None else np.eye(3)
        fields["R2"] = calibration.R2 if calibration.R2 is not None else np.eye(3)
        p1, p2 = calibration.P1.copy(), calibration.P2.copy()
        p1[:, 3] *= scale
        p2[:, 3] *= scale
        fields["P1"], fields["P2"] = p1, p2
        q = calibration.Q if calibration.Q is not None else calibration.reprojection_matrix()
        q = np.array(q, dtype=np.float64)
        q[3, :] /= scale
        fields["Q"] = q
    return fields


def _write_opencv(calibration: StereoCalibration, path: Path, units: str) -> None:
    import cv2

    units = normalise_units(units, "units")
    fields = _opencv_fields(calibration, units)
    if "M1" not in fields:
        raise CalibrationError(f"{calibration.source}: nothing to write (no intrinsics and no P1/P2)")
    storage = cv2.FileStorage(str(path), cv2.FileStorage_WRITE)
    if not storage.isOpened():
        raise CalibrationError(f"{path}: cannot open for writing")
    try:
        width, height = calibration.image_size
        storage.write("image_width", int(width))
        storage.write("image_height", int(height))
        storage.write("units", units)
        storage.write("rectified", int(bool(calibration.rectified)))
        for name in ("M1", "D1", "M2", "D2", "R", "T", "E", "F", "R1", "R2", "P1", "P2", "Q"):
            if name in fields:
                value = np.asarray(fields[name], dtype=np.float64)
                if name in ("D1", "D2", "T"):
                    value = value.reshape(-1, 1)
                storage.write(name, value)
        if calibration.ndisp:
            storage.write("ndisp", int(calibration.ndisp))
    finally:
        storage.release()


def write_ros_yaml(calibration: StereoCalibration, folder: str | os.PathLike,
                   overwrite: bool = False) -> list[Path]:
    """Write ``folder/left.yaml`` and ``folder/right.yaml`` in ROS camera_info YAML, as
    ``cameracalibrator`` does (both or neither: existing files are refused before anything is
    written)."""
    from .ros import ROS_YAML_NAMES, camera_infos_from_stereo, format_ros_yaml

    folder = Path(folder)
    paths = [check_writable(folder / name, overwrite) for name in ROS_YAML_NAMES]
    cameras = camera_infos_from_stereo(calibration)
    for path, camera, side in zip(paths, cameras, ("left", "right")):
        write_bytes_atomic(path, format_ros_yaml(camera, side).encode("utf-8"), overwrite=overwrite)
    return paths
