"""Stereo calibration from chessboard or ChArUco views (compute only: arrays in, no files).

The procedure, and where it departs from OpenCV's ``samples/cpp/stereo_calib.cpp``:

1. Corners: ``findChessboardCorners`` (then ``findChessboardCornersSB``, then a 2x upscale),
   refined by ``cornerSubPix`` with a window sized to the board's corner spacing in *that* view.
   The sample's fixed 11x11 window reaches neighbouring corners when squares are small and
   costs it a pixel of error on some views. ChArUco boards go through ``cv2.aruco``; only the
   corners seen by both cameras are kept.
2. Each camera is calibrated on its own (``calibrateCamera``, full aspect ratio, tangential
   terms), then ``stereoCalibrate`` refines all parameters jointly from there. The sample starts
   from ``initCameraMatrix2D`` and forces one focal length for both cameras and zero tangential
   distortion, which does not hold for real lenses.
3. Views whose reprojection error stands out (above ``outlier_factor`` x the median and
   ``outlier_floor`` px) are dropped, by name, and the calibration is run again.
4. Rectification (``stereoRectify``, ``alpha``) and a check of it: the corners, rectified, must
   lie on the same rows.

Errors reported, all in pixels:

- ``rms``: stereo reprojection RMS over both cameras (what ``stereoCalibrate`` returns).
- ``epipolar_error``: OpenCV's "average epipolar err": for each corner pair (undistorted),
  distance of each point to the epipolar line of the other, summed over the two images,
  averaged over all corners.
- ``rectified_row_error``: mean ``|y_left - y_right|`` of the corners after rectification.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence, Union

import cv2
import numpy as np

from ..errors import InputError, UsageError
from ..jobs import CancelToken, Job, ProgressCallback
from .model import StereoCalibration
from .readers import normalise_units, unit_factor
from .rectify import stereo_rectify

DISTORTION_MODELS = {
    # k1 k2 p1 p2 (k3 held at 0): the usual choice for ordinary lenses and ~10-30 views.
    "k1k2p": cv2.CALIB_FIX_K3,
    "k1k2k3p": 0,
    "rational": cv2.CALIB_RATIONAL_MODEL,
}


# Patterns -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChessboardPattern:
    """A chessboard with ``columns x rows`` *inner* corners and squares of ``square`` ``units``."""

    columns: int
    rows: int
    square: float
    units: str = "mm"

    def __post_init__(self):
        if self.columns < 2 or self.rows < 2:
            raise UsageError(f"a chessboard needs at least 2x2 inner corners, got {self.columns}x{self.rows}")
        if self.columns == self.rows:
            # A square grid has four indistinguishable orientations; left and right may disagree.
            raise UsageError(f"a {self.columns}x{self.rows} chessboard is ambiguous: use one with "
                             "different numbers of inner corners across and down (e.g. 9x6)")
        if not self.square > 0:
            raise UsageError(f"square size must be positive, got {self.square}")
        object.__setattr__(self, "units", normalise_units(self.units, "units"))

    @property
    def square_metres(self) -> float:
        return self.square * unit_factor(self.units, "units")

    def object_points(self) -> np.ndarray:
        """``(columns * rows, 3)`` float32 corner positions in metres, row by row, z = 0."""
        grid = np.mgrid[0:self.columns, 0:self.rows].T.reshape(-1, 2)
        points = np.zeros((self.columns * self.rows, 3), np.float32)
        points[:, :2] = grid * self.square_metres
        return points

    def describe(self) -> str:
        return f"chessboard {self.columns}x{self.rows} inner corners, {self.square:g} {self.units} squares"


@dataclass(frozen=True)
class CharucoPattern:
    """A ChArUco board: ``columns x rows`` *squares*, ArUco ``dictionary`` (e.g. ``DICT_5X5_100``)."""

    dictionary: str
    columns: int
    rows: int
    square: float
    marker: float
    units: str = "mm"
    legacy: bool = False

    def __post_init__(self):
        name = self.dictionary.upper()
        if not name.startswith("DICT_"):
            name = "DICT_" + name
        if not hasattr(cv2.aruco, name):
            known = sorted(n[5:] for n in dir(cv2.aruco) if n.startswith("DICT_"))
            raise UsageError(f"unknown ArUco dictionary {self.dictionary!r} (known: {', '.join(known)})")
        object.__setattr__(self, "dictionary", name)
        if self.columns < 3 or self.rows < 3:
            raise UsageError(f"a ChArUco board needs at least 3x3 squares, got {self.columns}x{self.rows}")
        if not 0 < self.marker < self.square:
            raise UsageError(f"ChArUco marker size must be positive and smaller than the square "
                             f"({self.marker} vs {self.square})")
        object.__setattr__(self, "units", normalise_units(self.units, "units"))

    @property
    def square_metres(self) -> float:
        return self.square * unit_factor(self.units, "units")

    def board(self):
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        factor = unit_factor(self.units, "units")
        board = cv2.aruco.CharucoBoard((self.columns, self.rows), self.square * factor,
                                       self.marker * factor, dictionary)
        board.setLegacyPattern(self.legacy)
        return board

    def describe(self) -> str:
        return (f"ChArUco {self.dictionary} {self.columns}x{self.rows} squares, "
                f"{self.square:g}/{self.marker:g} {self.units} square/marker")


Pattern = Union[ChessboardPattern, CharucoPattern]


def parse_size(text: str, what: str = "--pattern") -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", text or "")
    if not match:
        raise UsageError(f"{what}: expected COLSxROWS like 9x6, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def parse_charuco(text: str, units: str = "mm") -> CharucoPattern:
    """``DICT:COLSxROWS:SQUARE:MARKER`` (e.g. ``5X5_100:7x5:40:30``) -> :class:`CharucoPattern`."""
    parts = (text or "").split(":")
    if len(parts) != 4:
        raise UsageError(f"--charuco: expected DICT:COLSxROWS:SQUARE:MARKER like "
                         f"DICT_5X5_100:7x5:40:30, got {text!r}")
    columns, rows = parse_size(parts[1], "--charuco")
    try:
        square, marker = float(parts[2]), float(parts[3])
    except ValueError:
        raise UsageError(f"--charuco: square and marker sizes must be numbers, got {parts[2]!r}, {parts[3]!r}") from None
    return CharucoPattern(parts[0], columns, rows, square, marker, units)


# Corner detection -----------------------------------------------------------------------------

def _grey(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3:
        image = cv2.cvtColor(image[:, :, :3], cv2.COLOR_RGB2GRAY)
    if image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return image


def corner_spacing(points: np.ndarray, columns: int, rows: int) -> float:
    """Smallest distance in pixels between neighbouring corners of a detected grid."""
    grid = points.reshape(rows, columns, 2)
    across = np.linalg.norm(np.diff(grid, axis=1), axis=2)
    down = np.linalg.norm(np.diff(grid, axis=0), axis=2)
    return float(min(across.min(), down.min()))


def refine_corners(grey: np.ndarray, points: np.ndarray, spacing: float) -> np.ndarray:
    """``cornerSubPix`` with a half-window of 0.3 x the corner spacing (2..15 px).

    On the opencv-doc set the fit improves as the window grows up to ~0.35 x spacing and breaks
    down from 0.4 (the window starts to take in the neighbouring corners); 0.3 keeps a margin.
    """
    half = int(np.clip(round(spacing * 0.3), 2, 15))
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-3)
    return cv2.cornerSubPix(grey, points.reshape(-1, 1, 2).astype(np.float32), (half, half),
                            (-1, -1), criteria).reshape(-1, 2)


def find_chessboard(grey: np.ndarray, pattern: ChessboardPattern) -> Optional[np.ndarray]:
    """Sub-pixel inner corners ``(N, 2)`` float32 in row order, or None if no full board."""
    size = (pattern.columns, pattern.rows)
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
    found, corners = cv2.findChessboardCorners(grey, size, flags=flags | cv2.CALIB_CB_FAST_CHECK)
    if not found:
        found, corners = cv2.findChessboardCorners(grey, size, flags=flags)
    if not found:
        found, corners = cv2.findChessboardCornersSB(grey, size, flags=cv2.CALIB_CB_NORMALIZE_IMAGE)
    if not found and max(grey.shape) < 1000:
        # Small boards in small images (the stereo_calib sample's second chance).
        big = cv2.resize(grey, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR_EXACT)
        found, corners = cv2.findChessboardCorners(big, size, flags=flags)
        if found:
            corners = corners / 2.0
    if not found:
        return None
    corners = corners.reshape(-1, 2).astype(np.float32)
    return refine_corners(grey, corners, corner_spacing(corners, pattern.columns, pattern.rows))


def find_charuco(grey: np.ndarray, pattern: CharucoPattern, detector=None) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """ChArUco corners ``(N, 2)`` float32 and their ids ``(N,)``, or None under 6 corners."""
    detector = detector or cv2.aruco.CharucoDetector(pattern.board())
    corners, ids, _, _ = detector.detectBoard(grey)
    if corners is None or ids is None or len(ids) < 6:
        return None
    return np.asarray(corners, np.float32).reshape(-1, 2), np.asarray(ids).reshape(-1).astype(np.int32)


@dataclass
class StereoView:
    """Corners of one pattern pose seen by both cameras.

    Attributes:
        object_points: ``(N, 3)`` float32 in metres on the pattern plane.
        left, right: ``(N, 2)`` float32 pixel positions of the same corners.
    """

    name: str
    object_points: np.ndarray
    left: np.ndarray
    right: np.ndarray


@dataclass
class Detections:
    views: list[StereoView]
    image_size: Optional[tuple[int, int]]
    rejected: list[tuple[str, str]] = field(default_factory=list)


def _same_orientation(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The right corners in the left's order: a 180-degree-symmetric board may be found
    starting from opposite ends in the two views."""
    if np.dot(left[-1] - left[0], right[-1] - right[0]) < 0:
        return right[::-1].copy()
    return right


def detect_views(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], pattern: Pattern,
                 total: Optional[int] = None, callback: Optional[ProgressCallback] = None,
                 cancel: Optional[CancelToken] = None) -> Detections:
    """Find the pattern in each ``(name, left, right)`` pair (RGB or grey arrays).

    Pairs where either view misses the pattern, or whose size differs from that of most
    views, are listed in ``rejected`` with the reason.
    """
    job = Job(total, callback, cancel)
    job.cancel.raise_if_cancelled()
    views, rejected = [], []
    sizes: dict[str, tuple[int, int]] = {}
    detector = cv2.aruco.CharucoDetector(pattern.board()) if isinstance(pattern, CharucoPattern) else None
    all_corners = pattern.object_points() if isinstance(pattern, ChessboardPattern) else None
    for name, left, right in pairs:
        grey_left, grey_right = _grey(left), _grey(right)
        size = (grey_left.shape[1], grey_left.shape[0])
        if (grey_right.shape[1], grey_right.shape[0]) != size:
            rejected.append((name, f"left is {size[0]}x{size[1]}, right is "
                                   f"{grey_right.shape[1]}x{grey_right.shape[0]}"))
            job.step(message=name)
            continue
        sizes[name] = size
        if detector is None:
            found_left = find_chessboard(grey_left, pattern)
            found_right = find_chessboard(grey_right, pattern) if found_left is not None else None
            if found_left is None or found_right is None:
                rejected.append((name, f"no {pattern.columns}x{pattern.rows} chessboard in the "
                                       f"{'left' if found_left is None else 'right'} image"))
            else:
                views.append(StereoView(name, all_corners.copy(), found_left,
                                        _same_orientation(found_left, found_right)))
        else:
            found_left = find_charuco(grey_left, pattern, detector)
            found_right = find_charuco(grey_right, pattern, detector) if found_left else None
            if not found_left or not found_right:
                rejected.append((name, f"too few ChArUco corners in the "
                                       f"{'left' if not found_left else 'right'} image"))
            else:
                common, in_left, in_right = np.intersect1d(found_left[1], found_right[1],
                                                           return_indices=True)
                board = pattern.board()
                if len(common) < 8 or board.checkCharucoCornersCollinear(common.reshape(-1, 1)):
                    rejected.append((name, f"only {len(common)} ChArUco corners seen by both cameras"
                                     if len(common) < 8 else "ChArUco corners seen by both cameras are collinear"))
                else:
                    objects = np.asarray(board.getChessboardCorners(), np.float32)[common]
                    views.append(StereoView(name, objects, found_left[0][in_left], found_right[0][in_right]))
        job.step(message=name)
    # Views of another size than most (another camera, a stray file matched by a glob) are
    # set aside rather than failing the whole run.
    counts: dict[tuple[int, int], int] = {}
    for view in views:
        counts[sizes[view.name]] = counts.get(sizes[view.name], 0) + 1
    image_size = max(counts, key=counts.get) if counts else None
    for view in [v for v in views if sizes[v.name] != image_size]:
        width, height = sizes[view.name]
        rejected.append((view.name, f"{width}x{height} images, the others are "
                                    f"{image_size[0]}x{image_size[1]}"))
    views = [v for v in views if sizes[v.name] == image_size]
    return Detections(views, image_size, rejected)


# Calibration ----------------------------------------------------------------------------------

@dataclass
class ViewReport:
    """Errors of one view in pixels; ``used`` is False for a view dropped as an outlier."""

    name: str
    rms_left: float
    rms_right: float
    epipolar: float
    used: bool = True

    @property
    def rms(self) -> float:
        return float(np.sqrt((self.rms_left ** 2 + self.rms_right ** 2) / 2))


@dataclass
class CalibrationReport:
    """A stereo calibration and how well it fits (all errors in pixels; see the module doc)."""

    calibration: StereoCalibration
    rms: float
    epipolar_error: float
    rectified_row_error: float
    rectified_row_error_max: float
    mono_rms: tuple[float, float]
    views: list[ViewReport]
    dropped: list[str]
    rejected: list[tuple[str, str]]
    pattern: Pattern
    all_views_rms: float = float("nan")
    all_views_epipolar_error: float = float("nan")

    @property
    def baseline(self) -> float:
        return float(np.linalg.norm(self.calibration.T))

    def summary_lines(self) -> list[str]:
        cal = self.calibration
        units = self.pattern.units
        scale = 1.0 / unit_factor(units, "units")
        lines = [f"pattern: {self.pattern.describe()}"]
        for name, reason in self.rejected:
            lines.append(f"skipped {name}: {reason}")
        lines.append(f"{'view':<12} {'RMS left':>9} {'RMS right':>9} {'epipolar':>9}")
        for view in self.views:
            note = "" if view.used else "  dropped (outlier)"
            lines.append(f"{view.name:<12} {view.rms_left:9.3f} {view.rms_right:9.3f} {view.epipolar:9.3f}{note}")
        used = sum(v.used for v in self.views)
        if self.dropped:
            lines.append(f"dropped {len(self.dropped)} outlier view(s): {', '.join(self.dropped)} "
                         f"(with them: RMS {self.all_views_rms:.3f} px, epipolar {self.all_views_epipolar_error:.3f} px)")
        lines.append(f"RMS reprojection error {self.rms:.3f} px, epipolar error {self.epipolar_error:.3f} px "
                     f"({used} views; per camera RMS {self.mono_rms[0]:.3f} / {self.mono_rms[1]:.3f} px)")
        lines.append(f"baseline {self.baseline * scale:.4g} {units} ({self.baseline:.5f} m), "
                     f"T = [{', '.join(f'{v * scale:.4g}' for v in cal.T)}] {units}")
        lines.append(f"left  f = {cal.K1[0, 0]:.2f}, {cal.K1[1, 1]:.2f} px, c = {cal.K1[0, 2]:.2f}, {cal.K1[1, 2]:.2f}")
        lines.append(f"right f = {cal.K2[0, 0]:.2f}, {cal.K2[1, 1]:.2f} px, c = {cal.K2[0, 2]:.2f}, {cal.K2[1, 2]:.2f}")
        lines.append(f"rectified: f = {cal.focal:.2f} px, rows aligned to {self.rectified_row_error:.3f} px "
                     f"mean, {self.rectified_row_error_max:.3f} px max")
        return lines


def epipolar_errors(views: Sequence[StereoView], k1, d1, k2, d2, fundamental) -> list[np.ndarray]:
    """Per view, per corner: OpenCV stereo_calib's epipolar error (see the module doc)."""
    out = []
    for view in views:
        points = []
        for image_points, k, d in ((view.left, k1, d1), (view.right, k2, d2)):
            points.append(cv2.undistortPoints(image_points.reshape(-1, 1, 2), k, d, P=k).reshape(-1, 2))
        lines_in_right = cv2.computeCorrespondEpilines(points[0].reshape(-1, 1, 2), 1, fundamental).reshape(-1, 3)
        lines_in_left = cv2.computeCorrespondEpilines(points[1].reshape(-1, 1, 2), 2, fundamental).reshape(-1, 3)
        error = (np.abs(np.sum(points[1] * lines_in_right[:, :2], axis=1) + lines_in_right[:, 2])
                 + np.abs(np.sum(points[0] * lines_in_left[:, :2], axis=1) + lines_in_left[:, 2]))
        out.append(error)
    return out


def rectified_row_errors(views: Sequence[StereoView], calibration: StereoCalibration) -> np.ndarray:
    """``|y_left - y_right|`` of every corner after rectification with ``calibration``."""
    errors = []
    for view in views:
        left = cv2.undistortPoints(view.left.reshape(-1, 1, 2), calibration.K1, calibration.D1,
                                   R=calibration.R1, P=calibration.P1).reshape(-1, 2)
        right = cv2.undistortPoints(view.right.reshape(-1, 1, 2), calibration.K2, calibration.D2,
                                    R=calibration.R2, P=calibration.P2).reshape(-1, 2)
        errors.append(np.abs(left[:, 1] - right[:, 1]))
    return np.concatenate(errors) if errors else np.zeros(0)


@dataclass
class _Fit:
    rms: float
    k1: np.ndarray
    d1: np.ndarray
    k2: np.ndarray
    d2: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    fundamental: np.ndarray
    per_view: np.ndarray  # (N, 2) RMS per view and camera
    mono_rms: tuple[float, float]


def _fit(views: Sequence[StereoView], image_size: tuple[int, int], model_flags: int) -> _Fit:
    objects = [v.object_points.reshape(-1, 1, 3) for v in views]
    lefts = [v.left.reshape(-1, 1, 2) for v in views]
    rights = [v.right.reshape(-1, 1, 2) for v in views]
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-7)
    mono = []
    for points in (lefts, rights):
        rms, k, d, _, _ = cv2.calibrateCamera(objects, points, image_size, None, None,
                                              flags=model_flags, criteria=criteria)
        mono.append((rms, k, d))
    (rms_l, k1, d1), (rms_r, k2, d2) = mono
    result = cv2.stereoCalibrateExtended(
        objects, lefts, rights, k1, d1, k2, d2, image_size, None, None,
        flags=cv2.CALIB_USE_INTRINSIC_GUESS | model_flags, criteria=criteria)
    rms, k1, d1, k2, d2, rotation, translation, _, fundamental, _, _, per_view = result
    return _Fit(float(rms), k1, d1.ravel(), k2, d2.ravel(), rotation, translation.ravel(), fundamental,
                np.asarray(per_view).reshape(-1, 2), (float(rms_l), float(rms_r)))


def calibrate_stereo(detections: Detections, pattern: Pattern, *, model: str = "k1k2p",
                     outlier_factor: float = 2.0, outlier_floor: float = 0.5, min_views: int = 6,
                     max_rounds: int = 3, alpha: float = 0.0,
                     callback: Optional[ProgressCallback] = None,
                     cancel: Optional[CancelToken] = None) -> CalibrationReport:
    """Calibrate a stereo rig from detected views (see the module doc for the procedure).

    Args:
        model: distortion model, one of :data:`DISTORTION_MODELS`.
        outlier_factor, outlier_floor: a view is dropped when its RMS exceeds both
            ``outlier_factor`` x the median view RMS and ``outlier_floor`` pixels.
        min_views: never drop below this many views; fewer detected views is an error.
        alpha: rectification scaling (0 valid pixels only, 1 all pixels).

    Returns:
        A :class:`CalibrationReport` whose calibration describes the raw cameras
        (``rectified=False``) and carries the rectification (``P1 P2 R1 R2 Q``); lengths in metres.
    """
    if model not in DISTORTION_MODELS:
        raise UsageError(f"unknown distortion model {model!r} (choose {', '.join(DISTORTION_MODELS)})")
    views = list(detections.views)
    if len(views) < 3:
        found = ", ".join(f"{n} ({r})" for n, r in detections.rejected[:5])
        raise InputError(f"only {len(views)} usable view(s); stereo calibration needs at least 3 "
                         f"(better 10-20){': ' + found if found else ''}")
    image_size = detections.image_size
    flags = DISTORTION_MODELS[model]
    job = Job(None, callback, cancel)
    job.cancel.raise_if_cancelled()

    fit = _fit(views, image_size, flags)
    epipolar = epipolar_errors(views, fit.k1, fit.d1, fit.k2, fit.d2, fit.fundamental)
    first_rms, first_epipolar = fit.rms, float(np.concatenate(epipolar).mean())
    job.step(message=f"RMS {fit.rms:.3f} px")
    reports = {v.name: ViewReport(v.name, float(e[0]), float(e[1]), float(ep.mean()))
               for v, e, ep in zip(views, fit.per_view, epipolar)}
    dropped: list[str] = []
    for _ in range(max_rounds):
        view_rms = np.sqrt((fit.per_view ** 2).mean(axis=1))
        limit = max(outlier_factor * float(np.median(view_rms)), outlier_floor)
        order = np.argsort(-view_rms)
        room = len(views) - max(min_views, 3)
        # Drop the worst views first, and only as many as min_views allows.
        outliers = [int(i) for i in order if view_rms[i] > limit][:max(0, room)]
        if not outliers:
            break
        for index in outliers:
            reports[views[index].name].used = False
            dropped.append(views[index].name)
        views = [v for i, v in enumerate(views) if i not in outliers]
        fit = _fit(views, image_size, flags)
        job.step(message=f"dropped {len(outliers)} view(s), RMS {fit.rms:.3f} px")
    epipolar = epipolar_errors(views, fit.k1, fit.d1, fit.k2, fit.d2, fit.fundamental)
    for view, errors, epi in zip(views, fit.per_view, epipolar):
        report = reports[view.name]
        report.rms_left, report.rms_right, report.epipolar = float(errors[0]), float(errors[1]), float(epi.mean())

    raw = StereoCalibration(image_size=image_size, rectified=False, K1=fit.k1, D1=fit.d1,
                            K2=fit.k2, D2=fit.d2, R=fit.rotation, T=fit.translation,
                            source=f"depthapp calibrate ({pattern.describe()})")
    rectified = stereo_rectify(raw, alpha=alpha)
    calibration = dataclasses.replace(rectified, rectified=False)
    rows = rectified_row_errors(views, calibration)
    job.step(message="rectified")
    return CalibrationReport(
        calibration=calibration, rms=fit.rms,
        epipolar_error=float(np.concatenate(epipolar).mean()),
        rectified_row_error=float(rows.mean()), rectified_row_error_max=float(rows.max()),
        mono_rms=fit.mono_rms, views=[reports[v.name] for v in detections.views], dropped=dropped,
        rejected=list(detections.rejected), pattern=pattern,
        all_views_rms=first_rms, all_views_epipolar_error=first_epipolar)
