"""Rectification of raw stereo pairs, and a check that "rectified" pairs really are.

- :func:`stereo_rectify`: raw calibration (``K1 D1 K2 D2 R T``) -> calibration of the rectified
  images (``P1 P2 R1 R2 Q``), raw fields kept.
- :class:`Rectifier`: builds the undistort/rectify maps once and remaps pairs.
- :func:`measure_rectification_error` / :func:`check_rectified`: the vertical offset of
  matched features, which is ~0 on a rectified pair (issue 11's warning above a pixel).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import cv2
import numpy as np

from ..data import StereoPair, luma
from ..errors import CalibrationError, InputError
from .model import StereoCalibration


def _require_raw(calibration: StereoCalibration) -> None:
    missing = [name for name in ("K1", "K2", "R", "T") if getattr(calibration, name) is None]
    if missing:
        raise CalibrationError(f"{calibration.source}: cannot rectify without {', '.join(missing)} "
                               "(a calibration of already rectified images needs no rectification)")


def _distortion(values: Optional[np.ndarray]) -> np.ndarray:
    return np.zeros(5) if values is None else np.asarray(values, dtype=np.float64).ravel()


def stereo_rectify(calibration: StereoCalibration, alpha: float = 0.0,
                   image_size: Optional[tuple[int, int]] = None) -> StereoCalibration:
    """Compute the rectification of a raw rig (OpenCV's Bouguet method, ``CALIB_ZERO_DISPARITY``).

    Args:
        calibration: raw calibration with ``K1 D1 K2 D2 R T`` (metres).
        alpha: 0 crops to valid pixels only, 1 keeps every source pixel (black borders).
        image_size: ``(width, height)`` of the images; defaults to ``calibration.image_size``.

    Returns:
        A calibration of the rectified images (``rectified=True``) with ``P1 P2 R1 R2 Q``, the
        raw fields kept, and the valid regions in ``extra["valid_roi_left/right"]`` (x, y, w, h).
    """
    _require_raw(calibration)
    size = tuple(int(v) for v in (image_size or calibration.image_size))
    if not 0.0 <= alpha <= 1.0 and alpha != -1:
        raise CalibrationError(f"alpha must be in [0, 1], got {alpha}")
    r1, r2, p1, p2, q, roi1, roi2 = cv2.stereoRectify(
        calibration.K1, _distortion(calibration.D1), calibration.K2, _distortion(calibration.D2),
        size, calibration.R, calibration.T.reshape(3, 1), flags=cv2.CALIB_ZERO_DISPARITY,
        alpha=alpha, newImageSize=size)
    if abs(p2[1, 3]) > abs(p2[0, 3]):
        raise CalibrationError(f"{calibration.source}: the cameras are stacked vertically; "
                               "depthapp needs a left/right rig")
    extra = dict(calibration.extra)
    extra.pop("image_size_estimated", None)
    extra["valid_roi_left"] = [int(v) for v in roi1]
    extra["valid_roi_right"] = [int(v) for v in roi2]
    extra["rectify_alpha"] = float(alpha)
    return dataclasses.replace(calibration, image_size=size, P1=p1, P2=p2, R1=r1, R2=r2, Q=q,
                               rectified=True, extra=extra)


class Rectifier:
    """Remaps raw pairs into rectified ones; the maps are built once per image size.

    A calibration that already carries ``R1 R2 P1 P2`` (OpenCV's ``extrinsics.yml``, or
    ``depthapp calibrate`` output) is used as it is; otherwise :func:`stereo_rectify` computes
    them with ``alpha``.
    """

    def __init__(self, calibration: StereoCalibration, alpha: float = 0.0,
                 image_size: Optional[tuple[int, int]] = None,
                 interpolation: int = cv2.INTER_LINEAR):
        if calibration.rectified:
            raise CalibrationError(f"{calibration.source}: describes already rectified images; "
                                   "there is nothing to rectify")
        _require_raw(calibration)
        self.raw = calibration
        self.alpha = alpha
        self.interpolation = interpolation
        size = (int(image_size[0]), int(image_size[1])) if image_size else calibration.image_size
        self._check_size(size)
        self._build(size)

    def _check_size(self, size: tuple[int, int]) -> None:
        # Intrinsics hold only for the image size they were calibrated at; an estimated size
        # (a file that records none) is replaced by the real one.
        if size != self.raw.image_size and not self.raw.extra.get("image_size_estimated"):
            raise CalibrationError(
                f"{self.raw.source}: calibration is for {self.raw.image_size[0]}x"
                f"{self.raw.image_size[1]} images, the pair is {size[0]}x{size[1]}")

    def _build(self, size: tuple[int, int]) -> None:
        calibration = self.raw
        have_own = all(getattr(calibration, n) is not None for n in ("R1", "R2", "P1", "P2"))
        if have_own and (size == calibration.image_size or calibration.extra.get("image_size_estimated")):
            extra = {k: v for k, v in calibration.extra.items() if k != "image_size_estimated"}
            rectified = dataclasses.replace(calibration, image_size=size, rectified=True, extra=extra)
        else:
            rectified = stereo_rectify(calibration, self.alpha, size)
        self.image_size = size
        self.calibration = rectified
        self.maps = []
        for k, d, r, p in ((calibration.K1, calibration.D1, rectified.R1, rectified.P1),
                           (calibration.K2, calibration.D2, rectified.R2, rectified.P2)):
            self.maps.append(cv2.initUndistortRectifyMap(k, _distortion(d), r, p, size, cv2.CV_16SC2))

    def rectify_images(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rectify two ``(H, W[, C])`` images of the calibrated size; same dtype and channels out."""
        size = (left.shape[1], left.shape[0])
        if (right.shape[1], right.shape[0]) != size:
            raise InputError(f"left and right differ in size: {size} vs {right.shape[1::-1]}")
        if size != self.image_size:
            self._check_size(size)
            self._build(size)
        out = []
        for image, (map1, map2) in zip((left, right), self.maps):
            out.append(cv2.remap(image, map1, map2, self.interpolation, borderMode=cv2.BORDER_CONSTANT))
        return out[0], out[1]

    def rectify_pair(self, pair: StereoPair) -> StereoPair:
        """The rectified pair (RGB in, RGB out) carrying the rectified calibration.

        Ground truth, if any, is dropped: it belongs to the raw geometry.
        """
        left, right = self.rectify_images(pair.left, pair.right)
        return StereoPair(left, right, calibration=self.calibration, name=pair.name)


# Checking rectification ------------------------------------------------------------------------

def _grey_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3:
        image = luma(image)
    if image.dtype != np.uint8:
        top = 255.0 if image.max(initial=0) > 1.0 else 1.0
        image = np.clip(image.astype(np.float32) * (255.0 / top), 0, 255).round().astype(np.uint8)
    return image


def _detector():
    if hasattr(cv2, "SIFT_create"):
        return cv2.SIFT_create(nfeatures=1500), cv2.NORM_L2
    return cv2.ORB_create(nfeatures=3000), cv2.NORM_HAMMING


def measure_rectification_error(left: np.ndarray, right: np.ndarray, max_side: int = 1280,
                                ratio: float = 0.75) -> tuple[float, int]:
    """Median vertical offset of matched features between two views.

    SIFT (ORB where SIFT is missing) matches, Lowe's ratio test, then a RANSAC fundamental
    matrix keeps geometrically consistent matches so mismatches do not count. On a rectified
    pair the offset is ~0; a pair that is not rectified shows its misalignment.

    Args:
        left, right: ``(H, W)`` or ``(H, W, 3)`` RGB images of the same size.
        max_side: larger images are downscaled to this side for speed (offsets are reported
            in pixels of the input).

    Returns:
        ``(median |dy| in pixels, number of matches used)``; ``(nan, n)`` with fewer than 12.
    """
    grey_left, grey_right = _grey_uint8(left), _grey_uint8(right)
    scale = min(1.0, max_side / max(grey_left.shape[:2]))
    if scale < 1.0:
        grey_left = cv2.resize(grey_left, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        grey_right = cv2.resize(grey_right, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    detector, norm = _detector()
    keys_left, desc_left = detector.detectAndCompute(grey_left, None)
    keys_right, desc_right = detector.detectAndCompute(grey_right, None)
    if desc_left is None or desc_right is None or len(keys_left) < 2 or len(keys_right) < 2:
        return float("nan"), 0
    matches = cv2.BFMatcher(norm).knnMatch(desc_left, desc_right, k=2)
    good = [m[0] for m in matches if len(m) == 2 and m[0].distance < ratio * m[1].distance]
    if len(good) < 12:
        return float("nan"), len(good)
    points_left = np.float32([keys_left[m.queryIdx].pt for m in good])
    points_right = np.float32([keys_right[m.trainIdx].pt for m in good])
    _, inliers = cv2.findFundamentalMat(points_left, points_right, cv2.FM_RANSAC, 1.0, 0.999)
    if inliers is not None and int(inliers.sum()) >= 12:
        keep = inliers.ravel().astype(bool)
        points_left, points_right = points_left[keep], points_right[keep]
    dy = np.abs(points_left[:, 1] - points_right[:, 1]) / scale
    return float(np.median(dy)), int(len(dy))


def check_rectified(pair: StereoPair, threshold: float = 1.0) -> Optional[str]:
    """A warning when a pair that should be rectified shows a vertical offset above ``threshold``.

    Returns None when the pair looks rectified or when too few features match to tell.
    """
    offset, count = measure_rectification_error(pair.left, pair.right)
    if not np.isfinite(offset) or offset <= threshold:
        return None
    return (f"{pair.name}: the pair does not look rectified: matched features are "
            f"{offset:.1f} px apart vertically (median of {count}); give the raw calibration "
            "so depthapp rectifies it, or rectify it first (depthapp rectify)")
