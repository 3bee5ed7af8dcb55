"""ROS camera calibration: ``sensor_msgs/CameraInfo`` and its YAML file, to and from the rig.

ROS describes a stereo rig as two ``CameraInfo`` records, one per camera (REP 104): ``K`` and
``D`` are the raw camera, ``R`` rotates it into the common rectified frame and ``P`` projects
that frame into the rectified image; the right camera's ``P[0, 3] = -fx' * B``. The same four
matrices are what ``cameracalibrator`` writes to ``left.yaml`` / ``right.yaml``
(camera_calibration_parsers' YAML). Everything here is pure: no bag, no ROS installation.

- :class:`CameraInfo`: one camera, every number checked (finite, positive where physical,
  shapes, a rotation that is a rotation).
- :func:`stereo_from_camera_infos` / :func:`camera_infos_from_stereo`: the rig and back.
- :func:`parse_ros_yaml` / :func:`format_ros_yaml`: the YAML file and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..errors import CalibrationError
from .model import StereoCalibration

#: OpenCV's pinhole distortion models ROS names; ``D`` goes to OpenCV as it is.
PINHOLE_MODELS = ("plumb_bob", "rational_polynomial", "")
_DISTORTION_LENGTHS = (0, 4, 5, 8, 12, 14)
_MAX_SIDE = 1 << 16
#: Keys whose presence marks camera_calibration_parsers' YAML.
YAML_KEYS = ("camera_matrix", "projection_matrix", "image_width")


@dataclass
class CameraInfo:
    """One camera as ``sensor_msgs/CameraInfo`` holds it.

    Attributes:
        width, height: image size in pixels.
        K: ``(3, 3)`` raw intrinsics. D: distortion (``distortion_model``'s coefficients).
        R: ``(3, 3)`` rectification rotation. P: ``(3, 4)`` rectified projection.
        frame_id, name: the camera's TF frame and ``camera_name`` (informational).
    """

    width: int
    height: int
    K: np.ndarray
    D: np.ndarray
    R: np.ndarray
    P: np.ndarray
    distortion_model: str = "plumb_bob"
    frame_id: str = ""
    name: str = ""

    @classmethod
    def checked(cls, width: Any, height: Any, K: Any, D: Any, R: Any, P: Any,
                distortion_model: str = "plumb_bob", frame_id: str = "", name: str = "",
                source: str = "<camera_info>") -> "CameraInfo":
        """Build and validate one camera; raise :class:`CalibrationError` naming ``source``."""
        def integer(value, label):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) \
                    or not np.isfinite(value) or value != int(value):
                raise CalibrationError(f"{source}: {label} must be a whole number, got {value!r}")
            if not 0 < int(value) <= _MAX_SIDE:
                raise CalibrationError(f"{source}: {label} must be in 1..{_MAX_SIDE}, got {value}")
            return int(value)

        def matrix(value, label, size):
            try:
                array = np.asarray(value, dtype=np.float64).ravel()
            except (TypeError, ValueError):
                raise CalibrationError(f"{source}: {label} is not a list of numbers") from None
            if size is not None and array.size != size:
                raise CalibrationError(f"{source}: {label} has {array.size} values, expected {size}")
            if not np.all(np.isfinite(array)):
                raise CalibrationError(f"{source}: {label} holds non-finite values")
            return array

        width, height = integer(width, "width"), integer(height, "height")
        k = matrix(K, "K (camera_matrix)", 9).reshape(3, 3)
        r = matrix(R, "R (rectification_matrix)", 9).reshape(3, 3)
        p = matrix(P, "P (projection_matrix)", 12).reshape(3, 4)
        d = matrix(D, "D (distortion_coefficients)", None)
        model = str(distortion_model or "").strip()
        if not np.any(k):
            raise CalibrationError(f"{source}: K is all zeros (the camera was never calibrated)")
        if model not in PINHOLE_MODELS:
            raise CalibrationError(f"{source}: distortion model {model!r} is not supported "
                                   f"(supported: plumb_bob, rational_polynomial)")
        if d.size not in _DISTORTION_LENGTHS:
            raise CalibrationError(f"{source}: D has {d.size} coefficients, expected one of "
                                   f"{', '.join(map(str, _DISTORTION_LENGTHS[1:]))}")
        for label, camera in (("K", k), ("P", p)):
            if camera[0, 0] <= 0 or camera[1, 1] <= 0:
                raise CalibrationError(f"{source}: {label} focal lengths must be positive, got "
                                       f"fx={camera[0, 0]:g} fy={camera[1, 1]:g}")
            if not np.allclose(camera[2, :3], (0.0, 0.0, 1.0)):
                raise CalibrationError(f"{source}: {label}'s last row must be [0 0 1 ...], got "
                                       f"{camera[2].tolist()}")
        if not np.allclose(r @ r.T, np.eye(3), atol=1e-3) or np.linalg.det(r) <= 0:
            raise CalibrationError(f"{source}: R is not a rotation matrix")
        return cls(width, height, k, d, r, p, model, str(frame_id or ""), str(name or ""))

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def _check_pair(left: CameraInfo, right: CameraInfo, source: str) -> None:
    if left.size != right.size:
        raise CalibrationError(f"{source}: left camera is {left.width}x{left.height}, right "
                               f"{right.width}x{right.height}")
    horizontal = left.P[0, 3] - right.P[0, 3]
    if abs(right.P[1, 3] - left.P[1, 3]) > abs(horizontal):
        raise CalibrationError(f"{source}: the cameras are stacked vertically; depthapp needs a "
                               "left/right rig")
    if horizontal == 0:
        raise CalibrationError(f"{source}: the right camera's P has no baseline (P[0,3] = 0); "
                               "is it a monocular calibration?")
    if horizontal < 0:
        raise CalibrationError(f"{source}: the right camera is left of the left camera "
                               "(right P[0,3] > 0); swap the left and right cameras")


def stereo_from_camera_infos(left: CameraInfo, right: CameraInfo, *, rectified: bool,
                             source: str) -> StereoCalibration:
    """The rig the two cameras make.

    ``rectified``: the images are already rectified (``image_rect`` topics): ``P`` of each
    camera is its projection and nothing is remapped. Otherwise the images are raw: ``K D``
    are the cameras, ``R = R2^T R1`` and ``T = R2^T t`` (``t`` the right camera's offset in the
    rectified frame) their pose, and ROS's own ``R1 R2 P1 P2`` are kept so rectification uses
    them as they are.
    """
    _check_pair(left, right, source)
    t_rect = np.array([right.P[0, 3] / right.P[0, 0] - left.P[0, 3] / left.P[0, 0],
                       right.P[1, 3] / right.P[1, 1] - left.P[1, 3] / left.P[1, 1], 0.0])
    rotation = right.R.T @ left.R
    translation = right.R.T @ t_rect
    extra = {"format": "ros", "distortion_model": left.distortion_model,
             "frame_ids": [left.frame_id, right.frame_id],
             "camera_names": [left.name, right.name]}
    return StereoCalibration(image_size=left.size, P1=left.P, P2=right.P, K1=left.K, D1=left.D,
                             K2=right.K, D2=right.D, R=rotation, T=translation, R1=left.R,
                             R2=right.R, rectified=rectified, source=source, extra=extra)


def camera_infos_from_stereo(calibration: StereoCalibration,
                             frame_ids: tuple[str, str] = ("", "")) -> tuple[CameraInfo, CameraInfo]:
    """The two ``CameraInfo`` of a calibration (rectified or raw; a raw one without ``P`` is
    rectified first). For a rectified calibration without raw intrinsics ``K = P[:, :3]``,
    ``D = 0`` and ``R = I``: what a driver publishes beside ``image_rect``."""
    if calibration.P1 is None or calibration.P2 is None:
        from .rectify import stereo_rectify

        calibration = stereo_rectify(calibration)
    width, height = calibration.image_size

    def camera(k, d, r, p, frame_id):
        if k is None or r is None:  # a camera of rectified images: P is all there is
            k, d, r = p[:, :3], None, np.eye(3)
        d = np.zeros(5) if d is None else d
        model = "plumb_bob" if d.size <= 5 else "rational_polynomial"
        return CameraInfo.checked(width, height, k, d, r, p, model, frame_id=frame_id,
                                  source=calibration.source)

    return (camera(calibration.K1, calibration.D1, calibration.R1, calibration.P1, frame_ids[0]),
            camera(calibration.K2, calibration.D2, calibration.R2, calibration.P2, frame_ids[1]))


# camera_calibration_parsers YAML ---------------------------------------------------------------

def looks_like_ros_yaml(text: str) -> bool:
    head = text[:20000]
    return all(f"{key}:" in head for key in YAML_KEYS)


def _yaml_documents(text: str, source: str) -> list[Any]:
    import yaml

    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise CalibrationError(f"{source}: invalid YAML{where}") from None
    return documents


def _yaml_number(value: Any, key: str, source: str) -> float:
    """A number; YAML 1.1 reads exponents without a dot (``1e-05``, as yaml-cpp writes them)
    as strings, so those are parsed here."""
    if isinstance(value, bool):
        raise CalibrationError(f"{source}: {key} data must be numbers, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        raise CalibrationError(f"{source}: {key} data must be numbers, got {value!r}") from None


def _yaml_matrix(data: dict, key: str, source: str, rows: Optional[int], cols: Optional[int]):
    node = data.get(key)
    if not isinstance(node, dict) or not isinstance(node.get("data"), list):
        raise CalibrationError(f"{source}: {key} must be a map with rows, cols and data")
    values = [_yaml_number(v, key, source) for v in node["data"]]
    declared = (node.get("rows"), node.get("cols"))
    if all(isinstance(v, int) for v in declared) and declared[0] * declared[1] != len(values):
        raise CalibrationError(f"{source}: {key} says {declared[0]}x{declared[1]} but holds "
                               f"{len(values)} values")
    if rows is not None and len(values) != rows * cols:
        raise CalibrationError(f"{source}: {key} has {len(values)} values, expected {rows}x{cols}")
    return values


def camera_info_from_yaml_dict(data: Any, source: str) -> CameraInfo:
    """One camera from a parsed camera_calibration_parsers YAML document."""
    if not isinstance(data, dict):
        raise CalibrationError(f"{source}: expected a camera calibration map")
    missing = [key for key in ("image_width", "image_height", "camera_matrix",
                               "distortion_coefficients", "rectification_matrix",
                               "projection_matrix") if key not in data]
    if missing:
        raise CalibrationError(f"{source}: missing {', '.join(missing)} (ROS camera_info YAML)")
    return CameraInfo.checked(
        data["image_width"], data["image_height"],
        _yaml_matrix(data, "camera_matrix", source, 3, 3),
        _yaml_matrix(data, "distortion_coefficients", source, None, None),
        _yaml_matrix(data, "rectification_matrix", source, 3, 3),
        _yaml_matrix(data, "projection_matrix", source, 3, 4),
        str(data.get("distortion_model", "plumb_bob")), name=str(data.get("camera_name", "")),
        source=source)


def parse_ros_yaml(texts: list[tuple[str, str]], *, rectified: bool = False) -> StereoCalibration:
    """The rig from camera_calibration_parsers YAML: ``[(text, source), ...]`` holding two
    cameras, left first: two files of one camera each, or one file with both (two YAML
    documents separated by ``---``, or a map with ``left:`` and ``right:``).

    The YAML describes the raw cameras (``image_raw``), so the result is a raw calibration
    (rectified with ROS's own ``R`` and ``P``) unless ``rectified``.
    """
    cameras: list[tuple[Any, str]] = []
    for text, source in texts:
        documents = _yaml_documents(text, source)
        if len(documents) == 1 and isinstance(documents[0], dict) and "left" in documents[0] \
                and "right" in documents[0]:
            documents = [documents[0]["left"], documents[0]["right"]]
        cameras.extend((document, source) for document in documents)
    names = " + ".join(source for _, source in texts)
    if len(cameras) != 2:
        raise CalibrationError(f"{names}: holds {len(cameras)} camera calibration(s); a stereo rig "
                               "needs two (pass left.yaml,right.yaml, or one file with both)")
    left, right = (camera_info_from_yaml_dict(data, source) for data, source in cameras)
    return stereo_from_camera_infos(left, right, rectified=rectified, source=names)


def format_ros_yaml(camera: CameraInfo, name: str) -> str:
    """One camera in camera_calibration_parsers' YAML (what ``cameracalibrator`` writes)."""
    def block(key, array, rows, cols):
        values = ", ".join(repr(float(v)) for v in np.asarray(array, dtype=np.float64).ravel())
        return f"{key}:\n  rows: {rows}\n  cols: {cols}\n  data: [{values}]\n"

    return (f"image_width: {camera.width}\nimage_height: {camera.height}\ncamera_name: {name}\n"
            + block("camera_matrix", camera.K, 3, 3)
            + f"distortion_model: {camera.distortion_model or 'plumb_bob'}\n"
            + block("distortion_coefficients", camera.D, 1, camera.D.size)
            + block("rectification_matrix", camera.R, 3, 3)
            + block("projection_matrix", camera.P, 3, 4))

#: The files cameracalibrator writes for a stereo rig (:func:`depthapp.calibration.writers.write_ros_yaml`).
ROS_YAML_NAMES = ("left.yaml", "right.yaml")


__all__ = ["CameraInfo", "ROS_YAML_NAMES", "camera_info_from_yaml_dict", "camera_infos_from_stereo",
           "format_ros_yaml", "looks_like_ros_yaml", "parse_ros_yaml", "stereo_from_camera_infos"]
