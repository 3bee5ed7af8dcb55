"""Checks every number a calibration reader returns, before anything downstream sees it.

Each failure is one :class:`CalibrationError` naming the file, the field (as the file names it)
and the value. The bounds are wide enough for any real rig and narrow enough that the
arithmetic after them (depth = f * B / d, rectification maps) cannot overflow.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Optional

import numpy as np

from ..errors import CalibrationError
from ..limits import MAX_DISPARITY_LEVELS

MAX_FOCAL_PX = 1e6
MAX_PIXEL_COORDINATE = 1e6
MIN_BASELINE_M = 1e-5
MAX_BASELINE_M = 1e4
MAX_IMAGE_SIDE = 100_000
MAX_ABS_VALUE = 1e12
MAX_DISTORTION_COEFFICIENTS = 14
MAX_CALIBRATION_BYTES = 1 << 20


def number(source: str, name: str, value: Any, *, positive: bool = False,
           low: Optional[float] = None, high: Optional[float] = None, unit: str = "") -> float:
    """``value`` as a finite float inside the bounds, or a CalibrationError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (Real, np.number)):
        raise CalibrationError(f"{source}: {name} is not a number: {value!r}")
    if isinstance(value, int) and abs(value) > 2 ** 63:
        raise CalibrationError(f"{source}: {name} is out of range: {value}")
    value = float(value)
    if not math.isfinite(value):
        raise CalibrationError(f"{source}: {name} is not finite: {value!r}")
    suffix = f" {unit}" if unit else ""
    if positive and value <= 0:
        raise CalibrationError(f"{source}: {name} must be positive, got {value!r}{suffix}")
    if low is not None and value < low:
        raise CalibrationError(f"{source}: {name} = {value!r}{suffix} is below {low:g}{suffix}")
    if high is not None and value > high:
        raise CalibrationError(f"{source}: {name} = {value!r}{suffix} is above {high:g}{suffix}")
    return value


def integer(source: str, name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]`` (a float must be integral, e.g. KITTI's 1.242e+03)."""
    as_float = number(source, name, value)
    if as_float != round(as_float):
        raise CalibrationError(f"{source}: {name} must be a whole number, got {value!r}")
    result = int(round(as_float))
    if not low <= result <= high:
        raise CalibrationError(f"{source}: {name} = {result} is outside {low}..{high}")
    return result


def image_size(source: str, size: Any, names: tuple[str, str] = ("width", "height")) -> tuple[int, int]:
    try:
        width, height = size
    except (TypeError, ValueError):
        raise CalibrationError(f"{source}: image size must be (width, height), got {size!r}") from None
    return (integer(source, names[0], width, 1, MAX_IMAGE_SIDE),
            integer(source, names[1], height, 1, MAX_IMAGE_SIDE))


def ndisp(source: str, value: Any, name: str = "ndisp") -> Optional[int]:
    """A disparity range from a file; None/absent stays None, anything else must be 1..16384."""
    if value is None:
        return None
    return integer(source, name, value, 1, MAX_DISPARITY_LEVELS)


def finite_matrix(source: str, name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array whose entries are all finite and of sane magnitude."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise CalibrationError(f"{source}: {name} is not a numeric matrix") from None
    bad = ~np.isfinite(array) | (np.abs(np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0))
                                 > MAX_ABS_VALUE)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"[{', '.join(map(str, index))}]" if index else ""
        value = float(array[index] if index else array.item())
        state = "is not finite" if not np.isfinite(value) else f"exceeds {MAX_ABS_VALUE:g}"
        raise CalibrationError(f"{source}: {name}{where} {state}: {value!r}")
    return array


def focal(source: str, name: str, value: Any) -> float:
    return number(source, f"{name} (focal length)", value, positive=True, high=MAX_FOCAL_PX, unit="px")


def baseline(source: str, name: str, value: Any) -> float:
    """A baseline in metres: finite, positive, between 10 micrometres and 10 km."""
    value = number(source, name, value, unit="m")
    if value == 0:
        raise CalibrationError(f"{source}: {name} is zero")
    if value < 0:
        raise CalibrationError(f"{source}: {name} must be positive, got {value!r} m")
    return number(source, name, value, low=MIN_BASELINE_M, high=MAX_BASELINE_M, unit="m")


def camera_matrix(source: str, name: str, matrix: np.ndarray) -> None:
    """Focal lengths positive and bounded, principal point bounded (K or the left 3x3 of P)."""
    focal(source, f"{name}[0,0]", matrix[0, 0])
    focal(source, f"{name}[1,1]", matrix[1, 1])
    for row, axis in ((0, "cx"), (1, "cy")):
        number(source, f"{name}[{row},2] ({axis})", matrix[row, 2], low=-MAX_PIXEL_COORDINATE,
               high=MAX_PIXEL_COORDINATE, unit="px")


def rotation(source: str, name: str, matrix: np.ndarray) -> None:
    """A proper rotation: orthonormal (to 1e-2, as printed files round) with determinant +1."""
    error = float(np.abs(matrix @ matrix.T - np.eye(3)).max())
    if error > 1e-2 or abs(float(np.linalg.det(matrix)) - 1.0) > 1e-2:
        raise CalibrationError(f"{source}: {name} is not a rotation matrix "
                               f"(R R^T differs from I by {error:.3g})")
