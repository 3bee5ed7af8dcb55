"""OpenCV's own stereo calibration procedure (``samples/cpp/stereo_calib.cpp``), step for step.

The reference depthapp's calibration is measured against (tests and
``benchmarks/bench_calibration.py``). It reproduces the sample exactly:

- corners: ``findChessboardCorners(ADAPTIVE_THRESH | NORMALIZE_IMAGE)`` at scale 1, then on a
  2x upscale; ``cornerSubPix`` with an 11x11 window, 30 iterations, eps 0.01; a pair is used
  only when both views are found;
- ``initCameraMatrix2D`` per camera, then one ``stereoCalibrate`` with
  ``FIX_ASPECT_RATIO | ZERO_TANGENT_DIST | USE_INTRINSIC_GUESS | SAME_FOCAL_LENGTH |
  RATIONAL_MODEL | FIX_K3 | FIX_K4 | FIX_K5``, criteria 100 iterations / 1e-5;
- the "average epipolar err" (undistorted points, distances to the epipolar lines of both
  images summed, averaged over points);
- ``stereoRectify(CALIB_ZERO_DISPARITY, alpha=1)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

import cv2
import numpy as np

from .stereo_calibrate import ChessboardPattern, StereoView, _grey, epipolar_errors

STEREO_CALIB_FLAGS = (cv2.CALIB_FIX_ASPECT_RATIO | cv2.CALIB_ZERO_TANGENT_DIST
                      | cv2.CALIB_USE_INTRINSIC_GUESS | cv2.CALIB_SAME_FOCAL_LENGTH
                      | cv2.CALIB_RATIONAL_MODEL | cv2.CALIB_FIX_K3 | cv2.CALIB_FIX_K4
                      | cv2.CALIB_FIX_K5)


def sample_corners(grey: np.ndarray, pattern: ChessboardPattern) -> Optional[np.ndarray]:
    """Corners as stereo_calib.cpp finds them, ``(N, 2)`` float32, or None."""
    size = (pattern.columns, pattern.rows)
    corners = None
    for scale in (1, 2):
        image = grey if scale == 1 else cv2.resize(grey, None, fx=scale, fy=scale,
                                                   interpolation=cv2.INTER_LINEAR_EXACT)
        found, corners = cv2.findChessboardCorners(
            image, size, flags=cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE)
        if found:
            corners = corners / scale
            break
    else:
        return None
    corners = cv2.cornerSubPix(grey, corners.astype(np.float32), (11, 11), (-1, -1),
                               (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 30, 0.01))
    return corners.reshape(-1, 2)


def sample_views(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]],
                 pattern: ChessboardPattern) -> tuple[list[StereoView], tuple[int, int]]:
    views, size = [], None
    for name, left, right in pairs:
        grey_left, grey_right = _grey(left), _grey(right)
        size = size or (grey_left.shape[1], grey_left.shape[0])
        found_left = sample_corners(grey_left, pattern)
        found_right = sample_corners(grey_right, pattern) if found_left is not None else None
        if found_left is not None and found_right is not None:
            views.append(StereoView(name, pattern.object_points(), found_left, found_right))
    return views, size


@dataclass
class ReferenceResult:
    rms: float
    epipolar_error: float
    K1: np.ndarray
    D1: np.ndarray
    K2: np.ndarray
    D2: np.ndarray
    R: np.ndarray
    T: np.ndarray  # metres
    F: np.ndarray
    views: list[StereoView]

    @property
    def baseline(self) -> float:
        return float(np.linalg.norm(self.T))


def stereo_calib_fit(views: list[StereoView], image_size: tuple[int, int]) -> ReferenceResult:
    """The sample's ``initCameraMatrix2D`` + ``stereoCalibrate`` on given corners."""
    objects = [v.object_points.reshape(-1, 1, 3) for v in views]
    lefts = [v.left.reshape(-1, 1, 2).astype(np.float32) for v in views]
    rights = [v.right.reshape(-1, 1, 2).astype(np.float32) for v in views]
    k1 = cv2.initCameraMatrix2D(objects, lefts, image_size, 0)
    k2 = cv2.initCameraMatrix2D(objects, rights, image_size, 0)
    rms, k1, d1, k2, d2, rotation, translation, _, fundamental = cv2.stereoCalibrate(
        objects, lefts, rights, k1, None, k2, None, image_size, flags=STEREO_CALIB_FLAGS,
        criteria=(cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-5))
    d1, d2 = d1.ravel(), d2.ravel()
    epipolar = float(np.concatenate(epipolar_errors(views, k1, d1, k2, d2, fundamental)).mean())
    return ReferenceResult(float(rms), epipolar, k1, d1, k2, d2, rotation, translation.ravel(),
                           fundamental, views)


def stereo_calib_reference(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]],
                           pattern: ChessboardPattern) -> ReferenceResult:
    """Run OpenCV's stereo_calib procedure on ``(name, left, right)`` images."""
    views, size = sample_views(pairs, pattern)
    if len(views) < 2:
        raise ValueError("stereo_calib needs at least 2 pairs with the board found")
    return stereo_calib_fit(views, size)
