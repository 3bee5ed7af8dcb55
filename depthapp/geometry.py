"""Disparity to metric depth and coloured 3-D points. Pure numpy; no IO.

Depth follows the rectified pinhole model with separate principal points for the two cameras:
``Z = f * B / (d + doffs)`` with ``doffs = cx_right - cx_left``. Invalid (NaN) and non-positive
``d + doffs`` never become depths or points (kornia's ``depth_from_disparity`` has no ``doffs``
and turns invalid pixels into huge finite depths, which is why this is our own code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .calibration.model import StereoCalibration
from .errors import InputError


def _check_size(disparity: np.ndarray, calibration: StereoCalibration) -> None:
    height, width = disparity.shape
    if calibration.image_size != (width, height):
        raise InputError(
            f"calibration {calibration.source} is for {calibration.image_size[0]}x"
            f"{calibration.image_size[1]} images, disparity is {width}x{height}")


def disparity_to_depth(disparity: np.ndarray, calibration: StereoCalibration,
                       check_size: bool = True) -> np.ndarray:
    """Depth in metres ``(H, W)`` float32 from disparity ``(H, W)`` in pixels; NaN where invalid.

    ``Z = f B / (d + doffs)``; pixels with NaN disparity or ``d + doffs <= 0`` are NaN.
    """
    disparity = np.asarray(disparity, dtype=np.float64)
    if disparity.ndim != 2:
        raise ValueError(f"disparity must be (H, W), got {disparity.shape}")
    if check_size:
        _check_size(disparity, calibration)
    shifted = disparity + calibration.doffs
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = calibration.focal * calibration.baseline / shifted
    depth[~(np.isfinite(shifted) & (shifted > 0))] = np.nan
    return depth.astype(np.float32)


def depth_to_disparity(depth: np.ndarray, calibration: StereoCalibration) -> np.ndarray:
    """Inverse of :func:`disparity_to_depth`: ``d = f B / Z - doffs``; NaN where ``Z`` is not > 0."""
    depth = np.asarray(depth, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        disparity = calibration.focal * calibration.baseline / depth - calibration.doffs
    disparity[~(np.isfinite(depth) & (depth > 0))] = np.nan
    return disparity.astype(np.float32)


def pixel_to_point(x: float, y: float, disparity: float,
                   calibration: StereoCalibration) -> Optional[tuple[float, float, float]]:
    """``(X, Y, Z)`` in metres in the left rectified camera frame for one pixel, or None."""
    shifted = disparity + calibration.doffs
    if not np.isfinite(shifted) or shifted <= 0:
        return None
    z = calibration.focal * calibration.baseline / shifted
    return ((x - calibration.cx_left) * z / calibration.focal,
            (y - calibration.cy) * z / calibration.focal_y, z)


@dataclass
class PointCloud:
    """``points`` ``(N, 3)`` float32 metres (X right, Y down, Z forward, left rectified camera),
    ``colors`` ``(N, 3)`` uint8 RGB or None, ``pixels`` ``(N, 2)`` int (x, y) of each point."""

    points: np.ndarray
    colors: Optional[np.ndarray]
    pixels: np.ndarray

    def __len__(self) -> int:
        return int(self.points.shape[0])


def disparity_to_points(disparity: np.ndarray, calibration: StereoCalibration,
                        image: Optional[np.ndarray] = None, max_depth: Optional[float] = None,
                        stride: int = 1) -> PointCloud:
    """Reproject valid disparities to 3-D points, optionally coloured by ``image`` ``(H, W, 3)``.

    Invalid and non-positive ``d + doffs`` pixels are skipped; ``max_depth`` (metres) drops far
    points; ``stride`` subsamples the grid (previews).
    """
    depth = disparity_to_depth(disparity, calibration)
    height, width = depth.shape
    ys, xs = np.mgrid[0:height:stride, 0:width:stride]
    z = depth[ys, xs]
    keep = np.isfinite(z)
    if max_depth is not None:
        keep &= z <= max_depth
    xs, ys, z = xs[keep], ys[keep], z[keep].astype(np.float64)
    points = np.empty((xs.size, 3), dtype=np.float32)
    points[:, 0] = (xs - calibration.cx_left) * z / calibration.focal
    points[:, 1] = (ys - calibration.cy) * z / calibration.focal_y
    points[:, 2] = z
    colors = None
    if image is not None:
        image = np.asarray(image)
        if image.shape[:2] != (height, width):
            raise InputError(f"colour image is {image.shape[:2]}, disparity {(height, width)}")
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.dtype != np.uint8:
            image = np.clip(image.astype(np.float64) * (255.0 if image.max() <= 1.0 else 1.0),
                            0, 255).astype(np.uint8)
        colors = image[ys, xs, :3]
    return PointCloud(points, colors, np.stack([xs, ys], axis=1))
