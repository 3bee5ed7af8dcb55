"""The guided stereo calibration wizard's model (issue 11), without Qt.

:class:`CalibrationWizardModel` holds what the wizard's pages show and edit:

- the pattern (:class:`~.stereo_calibrate.ChessboardPattern` or ``CharucoPattern``);
- candidate views (:meth:`~CalibrationWizardModel.inspect`: corners found in each image, edge
  width, board pose, near-duplicates) and the captured ones (:meth:`~CalibrationWizardModel.add`);
- where on each image corners have been seen (:class:`Coverage`) and which board poses are
  still missing, as hints a person can follow ("turn the board so its left edge is farther
  away", "move the board farther away", "no corners yet near the top-left corner of the right
  image");
- the calibration itself, through the same :func:`~.stereo_calibrate.calibrate_stereo` as
  ``depthapp calibrate``, and its result (:class:`WizardResult`: RMS, epipolar error per view
  and overall, dropped views, baseline, a rectified preview pair).

Events are :class:`depthapp.events.Signal` callbacks (a plain list of functions, no Qt):
``pattern_changed(pattern)``, ``views_changed(views)`` and ``calibrated(result)``. They are
emitted in the thread that changes the model; the Qt wizard changes it only on its GUI thread
and runs the slow parts (:meth:`~CalibrationWizardModel.inspect`,
:meth:`~CalibrationWizardModel.compute_calibration`) in workers, which read but never change it.

Reading calibration image sets lives in :mod:`.files`, the wizard's pictures in
:mod:`.rendering`, and the Qt wizard in :mod:`depthapp.gui.calibration_wizard`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from ...errors import InputError
from ...events import Signal
from ...jobs import CancelToken, Job, ProgressCallback
from ..stereo_calibrate import (CalibrationReport, ChessboardPattern,
                               Detections, Pattern, StereoView, ViewReport,
                               _grey, _same_orientation, calibrate_stereo, corner_spacing,
                               find_charuco, find_chessboard, rectified_row_errors,
                               refine_corners)

# Views ----------------------------------------------------------------------------------------

#: A view is "blurred" when its edges are wider than this (pixels; a perfect step is 2).
MAX_EDGE_WIDTH = 5.0
#: Two views are near-duplicates when their corners moved less than this fraction of the
#: image diagonal on average (the closest distinct poses of the opencv-doc set differ by 1.8 %).
DUPLICATE_FRACTION = 0.01
#: Auto-capture takes a view once the board has moved less than this fraction of the image
#: diagonal between ``HOLD_FRAMES`` consecutive frames (a still board, so left and right frames
#: taken a few milliseconds apart agree).
STILL_FRACTION = 0.003
HOLD_FRAMES = 3

# Poses ----------------------------------------------------------------------------------------

#: The focal length assumed for pose hints before any calibration, as a fraction of the image
#: width (a ~60 degree horizontal field of view). The bins below only need rough angles.
FOCAL_GUESS = 0.85
TILT_DEGREES = 15.0
NEAR_SIZE = 0.5   # board spans at least half of the image (square root of its area fraction)
FAR_SIZE = 0.3

#: Pose bins a good calibration set covers, in the order hints are given, with what to do.
POSE_HINTS = {
    "facing": "hold the board facing the camera squarely",
    "left-back": "turn the board so its left edge is farther from the camera (about 30 degrees)",
    "right-back": "turn the board so its right edge is farther from the camera (about 30 degrees)",
    "top-back": "tilt the board so its top edge is farther from the camera (about 30 degrees)",
    "bottom-back": "tilt the board so its bottom edge is farther from the camera (about 30 degrees)",
    "near": "move the board closer, until it spans about half of the image",
    "far": "move the board farther away, until it spans about a quarter of the image",
}
POSE_LABELS = {"facing": "facing the camera", "left-back": "left edge back",
               "right-back": "right edge back", "top-back": "top edge back",
               "bottom-back": "bottom edge back", "near": "near", "far": "far"}

# Coverage ---------------------------------------------------------------------------------------

COVERAGE_GRID = (12, 9)  # columns, rows of the coverage map
REGION_NAMES = (("top-left corner", "top edge", "top-right corner"),
                ("left edge", "centre", "right edge"),
                ("bottom-left corner", "bottom edge", "bottom-right corner"))
CAMERAS = ("left", "right")


@dataclass(frozen=True)
class Pose:
    """The board's pose seen by the left camera, roughly (see :data:`FOCAL_GUESS`).

    Attributes:
        yaw: degrees; positive when the board's right edge is farther from the camera.
        pitch: degrees; positive when its bottom edge is farther.
        size: square root of the fraction of the image the corners' hull covers (0..1).
        centre: mean corner position as a fraction of the image width and height.
    """

    yaw: float
    pitch: float
    size: float
    centre: tuple[float, float]

    @property
    def bins(self) -> frozenset[str]:
        bins = set()
        if self.yaw <= -TILT_DEGREES:
            bins.add("left-back")
        elif self.yaw >= TILT_DEGREES:
            bins.add("right-back")
        if self.pitch <= -TILT_DEGREES:
            bins.add("top-back")
        elif self.pitch >= TILT_DEGREES:
            bins.add("bottom-back")
        if abs(self.yaw) < TILT_DEGREES and abs(self.pitch) < TILT_DEGREES:
            bins.add("facing")
        if self.size >= NEAR_SIZE:
            bins.add("near")
        elif self.size <= FAR_SIZE:
            bins.add("far")
        return frozenset(bins)

    def describe(self) -> str:
        labels = [POSE_LABELS[b] for b in POSE_HINTS if b in self.bins]
        return (f"yaw {self.yaw:+.0f} deg, pitch {self.pitch:+.0f} deg, spans {self.size:.0%}"
                + (f" ({', '.join(labels)})" if labels else ""))


def estimate_pose(object_points: np.ndarray, image_points: np.ndarray,
                  image_size: tuple[int, int]) -> Pose:
    """Board pose from ``(N, 3)`` object points and their ``(N, 2)`` pixels in one image.

    Uses a guessed pinhole camera (:data:`FOCAL_GUESS`, centred principal point, no distortion):
    before calibration there is nothing better, and tilts of 15-45 degrees come out within a
    few degrees of what a calibrated camera gives.
    """
    width, height = image_size
    focal = FOCAL_GUESS * width
    camera = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]])
    objects = np.asarray(object_points, np.float64).reshape(-1, 3)
    pixels = np.asarray(image_points, np.float64).reshape(-1, 2)
    ok, rvec, _ = cv2.solvePnP(objects, pixels, camera, None, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        ok, rvec, _ = cv2.solvePnP(objects, pixels, camera, None)
    normal = cv2.Rodrigues(rvec)[0][:, 2]
    # The board plane is Z = a X + b Y + c in camera coordinates: a > 0 means depth grows to
    # the right. Slopes do not depend on which way the normal points.
    nz = normal[2] if abs(normal[2]) > 1e-9 else 1e-9
    yaw = float(np.degrees(np.arctan(-normal[0] / nz)))
    pitch = float(np.degrees(np.arctan(-normal[1] / nz)))
    hull = cv2.convexHull(pixels.astype(np.float32))
    size = float(np.sqrt(cv2.contourArea(hull) / float(width * height)))
    centre = pixels.mean(axis=0) / np.array([width, height])
    return Pose(yaw, pitch, size, (float(centre[0]), float(centre[1])))


def edge_width(grey: np.ndarray, corners: np.ndarray) -> float:
    """How wide the board's black/white edges are in pixels (2 for a perfect step; larger
    when blurred or out of focus), measured inside the hull of ``corners`` ``(N, 2)``.

    A step of contrast C blurred into a ramp of width w has a peak gradient C / w, so
    w = contrast (5th to 95th percentile of intensity) / peak gradient (99th percentile of
    the Sobel magnitude). On the opencv-doc images it is within 5 % of OpenCV's
    ``estimateChessboardSharpness`` (median; 26 % lower on the most oblique view), sharp or
    blurred, and unlike it works for ChArUco boards too.
    """
    hull = cv2.convexHull(np.asarray(corners, np.float32).reshape(-1, 1, 2)).astype(np.int32)
    mask = np.zeros(grey.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    inside = mask.astype(bool)
    if inside.sum() < 16:
        return float("nan")
    image = grey.astype(np.float32)
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    magnitude = np.hypot(gx, gy)[inside]
    values = image[inside]
    contrast = float(np.percentile(values, 95) - np.percentile(values, 5))
    peak = float(np.percentile(magnitude, 99))
    if peak <= 1e-6 or contrast <= 1e-6:
        return float("inf")
    return contrast / peak


def mean_displacement(a: StereoView, b: StereoView, camera: int = 0) -> Optional[float]:
    """Mean distance in pixels between the corners two views share (matched by their board
    position), in the left (0) or right (1) image; None when they share fewer than half."""
    if a.object_points.shape == b.object_points.shape and np.array_equal(a.object_points, b.object_points):
        first, second = (a.left, b.left) if camera == 0 else (a.right, b.right)
        return float(np.linalg.norm(first - second, axis=1).mean())
    keys_a = {tuple(np.round(p, 6)): i for i, p in enumerate(a.object_points)}
    pairs = [(keys_a[k], j) for j, k in enumerate(map(lambda p: tuple(np.round(p, 6)), b.object_points))
             if k in keys_a]
    if len(pairs) < max(4, min(len(a.object_points), len(b.object_points)) // 2):
        return None
    index_a, index_b = np.array(pairs).T
    first = (a.left if camera == 0 else a.right)[index_a]
    second = (b.left if camera == 0 else b.right)[index_b]
    return float(np.linalg.norm(first - second, axis=1).mean())


@dataclass
class Candidate:
    """One left/right pair looked at for capture.

    Attributes:
        left, right: the images as given (``(H, W)`` grey or ``(H, W, 3)`` RGB).
        corners: detected corners ``(N, 2)`` per camera (None where the board was not found).
        view: the corners both cameras saw, ready for calibration (None unless both found it).
        edge_widths: per camera, pixels (NaN where the board was not found).
        pose: the board's pose in the left image (None unless found there).
        problems: ``(code, message)``: ``size``, ``not-found`` (blocking), ``blurred``,
            ``duplicate`` (a person may add such a view anyway).
        motion: board movement since the previous live frame in pixels (auto-capture).
    """

    name: str
    left: np.ndarray
    right: np.ndarray
    corners: tuple[Optional[np.ndarray], Optional[np.ndarray]]
    view: Optional[StereoView]
    edge_widths: tuple[float, float]
    pose: Optional[Pose]
    problems: list[tuple[str, str]] = field(default_factory=list)
    duplicate_of: Optional[str] = None
    source: str = ""
    motion: Optional[float] = None

    BLOCKING = ("size", "not-found")

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.left.shape[1]), int(self.left.shape[0])

    @property
    def acceptable(self) -> bool:
        return self.view is not None and not self.problems

    @property
    def can_force(self) -> bool:
        """Whether a person may add it despite its problems (blur, near-duplicate)."""
        return self.view is not None and not any(code in self.BLOCKING for code, _ in self.problems)

    def describe(self) -> str:
        """One line for the capture page's status."""
        if self.problems:
            return "; ".join(message for _, message in self.problems)
        widths = "/".join(f"{w:.1f}" for w in self.edge_widths)
        return f"board found in both images; edges {widths} px wide; {self.pose.describe()}"


@dataclass
class CapturedView:
    """A view kept for calibration: its images, corners and quality figures."""

    name: str
    left: np.ndarray
    right: np.ndarray
    view: StereoView
    edge_widths: tuple[float, float]
    pose: Pose
    source: str = ""


@dataclass
class Coverage:
    """Where on each image corners have been seen.

    Attributes:
        counts: ``(2, rows, columns)`` int, corners of the captured views per cell, left then
            right camera (the grid is :data:`COVERAGE_GRID` over the whole image).
    """

    counts: np.ndarray
    image_size: Optional[tuple[int, int]]

    def fraction(self, camera: int) -> float:
        """Fraction of the cells of one camera's image with at least one corner."""
        return float((self.counts[camera] > 0).mean())

    def region_covered(self, camera: int) -> np.ndarray:
        """``(3, 3)`` bool: whether at least half the cells of each third of the image
        (rows top to bottom, columns left to right) hold a corner."""
        rows, columns = self.counts.shape[1:]
        out = np.zeros((3, 3), bool)
        for r in range(3):
            for c in range(3):
                block = self.counts[camera, r * rows // 3:(r + 1) * rows // 3,
                                    c * columns // 3:(c + 1) * columns // 3]
                out[r, c] = (block > 0).mean() >= 0.5
        return out

    def missing_regions(self) -> list[tuple[str, tuple[str, ...]]]:
        """``(region name, cameras missing it)`` for each third of the image some camera lacks."""
        covered = [self.region_covered(0), self.region_covered(1)]
        out = []
        for r in range(3):
            for c in range(3):
                missing = tuple(CAMERAS[k] for k in (0, 1) if not covered[k][r, c])
                if missing:
                    out.append((REGION_NAMES[r][c], missing))
        return out


def compute_coverage(views: Sequence[CapturedView], image_size: Optional[tuple[int, int]],
                     grid: tuple[int, int] = COVERAGE_GRID) -> Coverage:
    columns, rows = grid
    counts = np.zeros((2, rows, columns), np.int64)
    if image_size is None:
        return Coverage(counts, None)
    width, height = image_size
    for captured in views:
        for camera, points in enumerate((captured.view.left, captured.view.right)):
            col = np.clip((points[:, 0] / width * columns).astype(int), 0, columns - 1)
            row = np.clip((points[:, 1] / height * rows).astype(int), 0, rows - 1)
            np.add.at(counts[camera], (row, col), 1)
    return Coverage(counts, image_size)


# Results ----------------------------------------------------------------------------------------

@dataclass
class RectifiedPreview:
    """One captured view after rectification.

    Attributes:
        left, right: rectified images, same size and channels as captured.
        corners: the view's corners after rectification, ``(N, 2)`` per camera.
        row_error: mean ``|y_left - y_right|`` of those corners in pixels (0 when perfect).
        row_error_max: the largest.
    """

    name: str
    left: np.ndarray
    right: np.ndarray
    corners: tuple[np.ndarray, np.ndarray]
    row_error: float
    row_error_max: float


@dataclass
class WizardResult:
    """A finished calibration: the report of :func:`calibrate_stereo` plus rectified previews."""

    report: CalibrationReport
    views: list[CapturedView]
    recommended_views: int = 10
    _previews: dict = field(default_factory=dict, repr=False)
    _rectifier: object = field(default=None, repr=False)

    @property
    def calibration(self):
        return self.report.calibration

    @property
    def pattern(self) -> Pattern:
        return self.report.pattern

    @property
    def rms(self) -> float:
        return self.report.rms

    @property
    def epipolar_error(self) -> float:
        return self.report.epipolar_error

    @property
    def per_view(self) -> list[ViewReport]:
        return self.report.views

    @property
    def dropped(self) -> list[str]:
        return self.report.dropped

    @property
    def baseline(self) -> float:
        """Metres."""
        return self.report.baseline

    @property
    def baseline_in_units(self) -> float:
        """In the pattern's units (mm, cm or m)."""
        return self.baseline / (self.pattern.square_metres / self.pattern.square)

    @property
    def used_views(self) -> list[str]:
        return [v.name for v in self.report.views if v.used]

    @property
    def warnings(self) -> list[str]:
        out = []
        if self.rms > 1.0 or self.epipolar_error > 1.0:
            out.append("errors above 1 px: check the pattern size and square size, blurred or "
                       "partly hidden boards, and that left and right images were taken at the "
                       "same moment")
        if self.dropped:
            out.append(f"dropped {len(self.dropped)} outlier view(s): {', '.join(self.dropped)}")
        used = [v for v in self.views if v.name in set(self.used_views)]
        if len(used) < self.recommended_views:
            out.append(f"only {len(used)} views used: low errors on few views do not show that the "
                       f"calibration holds over the whole image; {self.recommended_views}-20 views "
                       "in varied poses are safer")
        tilts = ("left-back", "right-back", "top-back", "bottom-back")
        missing = [POSE_LABELS[b] for b in tilts if not any(b in v.pose.bins for v in used)]
        if missing:
            out.append(f"no view with the board tilted ({', '.join(missing)}): tilted views are "
                       "what pin down the focal length")
        return out

    def summary_lines(self) -> list[str]:
        return self.report.summary_lines()

    def preview(self, name: Optional[str] = None) -> RectifiedPreview:
        """The rectified pair of captured view ``name`` (default: the first view used)."""
        from ..rectify import Rectifier

        name = name or self.used_views[0]
        if name in self._previews:
            return self._previews[name]
        captured = next((v for v in self.views if v.name == name), None)
        if captured is None:
            raise InputError(f"no captured view named {name!r}")
        if self._rectifier is None:
            self._rectifier = Rectifier(self.calibration)
        left, right = self._rectifier.rectify_images(captured.left, captured.right)
        cal = self.calibration
        corners = (
            cv2.undistortPoints(captured.view.left.reshape(-1, 1, 2), cal.K1, cal.D1, R=cal.R1,
                                P=cal.P1).reshape(-1, 2),
            cv2.undistortPoints(captured.view.right.reshape(-1, 1, 2), cal.K2, cal.D2, R=cal.R2,
                                P=cal.P2).reshape(-1, 2))
        rows = rectified_row_errors([captured.view], cal)
        preview = RectifiedPreview(name, left, right, corners, float(rows.mean()), float(rows.max()))
        self._previews[name] = preview
        return preview

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the calibration; the extension picks the format (.json depthapp, .yaml/.yml/.xml
        OpenCV with ``T`` in the pattern's units). Atomic; never overwrites unless asked."""
        from .. import write_calibration

        return write_calibration(self.calibration, path, overwrite=overwrite, units=self.pattern.units)


# The model --------------------------------------------------------------------------------------

@dataclass
class CalibrationOptions:
    """How :func:`calibrate_stereo` is run (see its arguments)."""

    model: str = "k1k2p"
    alpha: float = 0.0
    keep_outliers: bool = False


class CalibrationWizardModel:
    """State of one guided calibration; see the module docstring.

    Args:
        pattern: the calibration target (can be set later with :meth:`set_pattern`).
        max_edge_width: views whose edges are wider (pixels) are flagged as blurred.
        duplicate_fraction: views closer than this fraction of the image diagonal to a captured
            one are flagged as near-duplicates.
        min_views: views needed before calibrating; recommended_views: views the hints ask for.
    """

    def __init__(self, pattern: Optional[Pattern] = None, *, max_edge_width: float = MAX_EDGE_WIDTH,
                 duplicate_fraction: float = DUPLICATE_FRACTION, min_views: int = 3,
                 recommended_views: int = 10, grid: tuple[int, int] = COVERAGE_GRID,
                 options: Optional[CalibrationOptions] = None):
        self.pattern_changed = Signal("pattern_changed")
        self.views_changed = Signal("views_changed")
        self.calibrated = Signal("calibrated")
        self.max_edge_width = max_edge_width
        self.duplicate_fraction = duplicate_fraction
        self.min_views = min_views
        self.recommended_views = recommended_views
        self.grid = grid
        self.options = options or CalibrationOptions()
        self._pattern: Optional[Pattern] = pattern
        self._views: list[CapturedView] = []
        self.result: Optional[WizardResult] = None
        self._previous: Optional[Candidate] = None
        self._still_frames = 0

    # -------------------------------------------------------------- pattern
    @property
    def pattern(self) -> Optional[Pattern]:
        return self._pattern

    def set_pattern(self, pattern: Pattern) -> None:
        """Use ``pattern`` from now on; captured views (found with another pattern) are dropped."""
        if pattern == self._pattern:
            return
        self._pattern = pattern
        had_views = bool(self._views)
        self._views = []
        self.result = None
        self._reset_tracking()
        self.pattern_changed.emit(pattern)
        if had_views:
            self.views_changed.emit(self.views)

    def _require_pattern(self) -> Pattern:
        if self._pattern is None:
            raise InputError("choose the calibration pattern first")
        return self._pattern

    # -------------------------------------------------------------- views
    @property
    def views(self) -> list[CapturedView]:
        return list(self._views)

    @property
    def view_names(self) -> list[str]:
        return [v.name for v in self._views]

    @property
    def image_size(self) -> Optional[tuple[int, int]]:
        """``(width, height)`` of the captured views (the first one sets it)."""
        views = self._views
        return (int(views[0].left.shape[1]), int(views[0].left.shape[0])) if views else None

    @property
    def ready(self) -> bool:
        """Enough views to calibrate."""
        return len(self._views) >= self.min_views

    def inspect(self, name: str, left: np.ndarray, right: np.ndarray, *, thorough: bool = True,
                source: str = "") -> Candidate:
        """Find the pattern in a left/right pair and check the view's quality.

        Safe to call from a worker thread while the GUI thread reads the model.

        Args:
            thorough: try every detector of :func:`find_chessboard` (files: up to ~1 s on an
                image without a board); False tries only its first, fast pass (live frames:
                ~30 ms; the corners found are the same when it succeeds).
        """
        pattern = self._require_pattern()
        left, right = np.asarray(left), np.asarray(right)
        grey = (_grey(left), _grey(right))
        size = (grey[0].shape[1], grey[0].shape[0])
        problems: list[tuple[str, str]] = []
        if (grey[1].shape[1], grey[1].shape[0]) != size:
            problems.append(("size", f"left is {size[0]}x{size[1]}, right is "
                                     f"{grey[1].shape[1]}x{grey[1].shape[0]}"))
            return Candidate(name, left, right, (None, None), None, (np.nan, np.nan), None,
                             problems, source=source)
        expected = self.image_size
        if expected is not None and size != expected:
            problems.append(("size", f"{size[0]}x{size[1]} images, the captured views are "
                                     f"{expected[0]}x{expected[1]}"))
            return Candidate(name, left, right, (None, None), None, (np.nan, np.nan), None,
                             problems, source=source)

        found = [self._find(g, pattern, thorough) for g in grey]
        corners = tuple(f[0] if f is not None else None for f in found)
        view = None
        missing = [CAMERAS[k] for k in (0, 1) if found[k] is None]
        if missing:
            what = (f"no {pattern.columns}x{pattern.rows} chessboard" if isinstance(pattern, ChessboardPattern)
                    else "too few ChArUco corners")
            problems.append(("not-found", f"{what} in the {' and '.join(missing)} image"
                                          + ("s" if len(missing) == 2 else "")))
        else:
            view, problem = self._stereo_view(name, pattern, found[0], found[1])
            if problem:
                problems.append(("not-found", problem))
        widths = tuple(edge_width(g, c) if c is not None else float("nan")
                       for g, c in zip(grey, corners))
        blurred = [f"{CAMERAS[k]} {widths[k]:.1f} px" for k in (0, 1)
                   if corners[k] is not None and not widths[k] <= self.max_edge_width]
        if blurred:
            problems.append(("blurred", f"blurred: edges {', '.join(blurred)} wide "
                                        f"(at most {self.max_edge_width:g}); hold the board still "
                                        "and check the focus"))
        pose = None
        if view is not None:
            pose = estimate_pose(view.object_points, view.left, size)
        elif corners[0] is not None and isinstance(pattern, ChessboardPattern):
            pose = estimate_pose(pattern.object_points(), corners[0], size)
        duplicate = self._duplicate_of(view, size) if view is not None else None
        if duplicate is not None:
            problems.append(("duplicate", f"nearly the same pose as view {duplicate}: move or "
                                          "tilt the board"))
        return Candidate(name, left, right, corners, view, widths, pose, problems,
                         duplicate_of=duplicate, source=source)

    def _find(self, grey: np.ndarray, pattern: Pattern, thorough: bool):
        """``(corners (N, 2), ids (N,) or None)`` or None."""
        if isinstance(pattern, ChessboardPattern):
            if thorough:
                corners = find_chessboard(grey, pattern)
            else:
                flags = (cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
                         | cv2.CALIB_CB_FAST_CHECK)
                ok, corners = cv2.findChessboardCorners(grey, (pattern.columns, pattern.rows), flags=flags)
                if ok:
                    corners = corners.reshape(-1, 2).astype(np.float32)
                    corners = refine_corners(grey, corners,
                                             corner_spacing(corners, pattern.columns, pattern.rows))
                else:
                    corners = None
            return None if corners is None else (corners, None)
        found = find_charuco(grey, pattern)
        return found

    @staticmethod
    def _stereo_view(name: str, pattern: Pattern, left, right) -> tuple[Optional[StereoView], str]:
        """The corners both cameras saw, as :func:`detect_views` pairs them."""
        if isinstance(pattern, ChessboardPattern):
            return StereoView(name, pattern.object_points(), left[0],
                              _same_orientation(left[0], right[0])), ""
        common, in_left, in_right = np.intersect1d(left[1], right[1], return_indices=True)
        board = pattern.board()
        if len(common) < 8:
            return None, f"only {len(common)} ChArUco corners seen by both cameras"
        if board.checkCharucoCornersCollinear(common.reshape(-1, 1)):
            return None, "ChArUco corners seen by both cameras are collinear"
        objects = np.asarray(board.getChessboardCorners(), np.float32)[common]
        return StereoView(name, objects, left[0][in_left], right[0][in_right]), ""

    def _duplicate_of(self, view: StereoView, size: tuple[int, int]) -> Optional[str]:
        limit = self.duplicate_fraction * float(np.hypot(*size))
        for captured in list(self._views):
            distances = [mean_displacement(captured.view, view, camera) for camera in (0, 1)]
            if all(d is not None for d in distances) and max(distances) < limit:
                return captured.name
        return None

    def add(self, candidate: Candidate, force: bool = False) -> CapturedView:
        """Capture ``candidate``. Its checks are run again against the views captured since it
        was inspected. ``force`` adds a blurred or near-duplicate view anyway.

        Raises:
            InputError: the board was not found in both images, the size differs, or (without
                ``force``) the view is blurred or a near-duplicate.
        """
        problems = [p for p in candidate.problems if p[0] != "duplicate"]
        if candidate.view is not None:
            duplicate = self._duplicate_of(candidate.view, candidate.image_size)
            if duplicate is not None:
                problems.append(("duplicate", f"nearly the same pose as view {duplicate}: move or "
                                              "tilt the board"))
        expected = self.image_size
        if expected is not None and candidate.image_size != expected:
            problems.append(("size", f"{candidate.image_size[0]}x{candidate.image_size[1]} images, "
                                     f"the captured views are {expected[0]}x{expected[1]}"))
        blocking = [m for code, m in problems if code in Candidate.BLOCKING] or (
            ["the board was not found in both images"] if candidate.view is None else [])
        if blocking or (problems and not force):
            reasons = "; ".join(blocking or [m for _, m in problems])
            raise InputError(f"{candidate.name}: not added: {reasons}")
        name = self._unique_name(candidate.name)
        view = dataclasses.replace(candidate.view, name=name)
        captured = CapturedView(name, candidate.left, candidate.right, view,
                                candidate.edge_widths, candidate.pose, candidate.source)
        self._views.append(captured)
        self.result = None
        self.views_changed.emit(self.views)
        return captured

    def _unique_name(self, name: str) -> str:
        taken = set(self.view_names)
        if name not in taken:
            return name
        number = 2
        while f"{name} ({number})" in taken:
            number += 1
        return f"{name} ({number})"

    def remove(self, name: str) -> None:
        before = len(self._views)
        self._views = [v for v in self._views if v.name != name]
        if len(self._views) != before:
            self.result = None
            self.views_changed.emit(self.views)

    def clear(self) -> None:
        if self._views:
            self._views = []
            self.result = None
            self.views_changed.emit(self.views)
        self._reset_tracking()

    # -------------------------------------------------------------- auto-capture
    def _reset_tracking(self) -> None:
        self._previous = None
        self._still_frames = 0

    def auto_capture(self, candidate: Candidate) -> Optional[CapturedView]:
        """Feed live frames in order; captures a view once the board has been still for
        :data:`HOLD_FRAMES` frames and the view passes every check. Sets ``candidate.motion``."""
        previous, self._previous = self._previous, candidate
        if candidate.view is None:
            self._still_frames = 0
            return None
        motion = None
        if previous is not None and previous.view is not None and candidate.image_size == previous.image_size:
            moved = [mean_displacement(previous.view, candidate.view, k) for k in (0, 1)]
            motion = max(moved) if all(m is not None for m in moved) else None
        candidate.motion = motion
        limit = STILL_FRACTION * float(np.hypot(*candidate.image_size))
        self._still_frames = self._still_frames + 1 if motion is not None and motion < limit else 1
        if self._still_frames < HOLD_FRAMES:
            return None
        try:
            return self.add(candidate)
        except InputError:
            return None

    # -------------------------------------------------------------- coverage and hints
    def coverage(self) -> Coverage:
        return compute_coverage(self._views, self.image_size, self.grid)

    def poses_seen(self) -> dict[str, list[str]]:
        """For each pose bin of :data:`POSE_HINTS`, the captured views in it."""
        seen: dict[str, list[str]] = {name: [] for name in POSE_HINTS}
        for captured in self._views:
            for name in captured.pose.bins:
                seen[name].append(captured.name)
        return seen

    def missing_poses(self) -> list[str]:
        return [name for name, views in self.poses_seen().items() if not views]

    def hints(self) -> list[str]:
        """What to do next, most important first (empty once the set looks complete)."""
        hints = []
        count = len(self._views)
        if count < self.recommended_views:
            more = self.recommended_views - count
            need = (f" ({self.min_views - count} more needed before calibrating)"
                    if count < self.min_views else "")
            hints.append(f"Capture {more} more view{'s' if more != 1 else ''}: "
                         f"{self.recommended_views}-20 is a good set{need}")
        if not self._views:
            return hints
        hints.extend(POSE_HINTS[name][0].upper() + POSE_HINTS[name][1:]
                     for name in self.missing_poses())
        # One hint per image (or both), naming every third of it still without corners.
        by_where: dict[str, list[str]] = {}
        for region, cameras in self.coverage().missing_regions():
            where = "both images" if len(cameras) == 2 else f"the {cameras[0]} image"
            by_where.setdefault(where, []).append(region)
        for where, regions in by_where.items():
            listed = regions[0] if len(regions) == 1 else ", ".join(regions[:-1]) + " and " + regions[-1]
            hints.append(f"No corners yet near the {listed} of {where}: hold the board there, "
                         "seen by both cameras")
        return hints

    # -------------------------------------------------------------- calibration
    def compute_calibration(self, progress: Optional[ProgressCallback] = None,
                            cancel: Optional[CancelToken] = None) -> WizardResult:
        """Calibrate from the captured views without changing the model (worker threads).

        Progress goes through ``progress`` (``total`` = the steps of the longest run: the
        fit, each outlier round, rectification and the preview); ``cancel`` stops it between
        steps (raising :class:`~depthapp.errors.Cancelled`).
        """
        pattern = self._require_pattern()
        views = self.views
        if len(views) < self.min_views:
            raise InputError(f"only {len(views)} view(s) captured; calibration needs at least "
                             f"{self.min_views} (better {self.recommended_views}-20)")
        options = self.options
        max_rounds = 3
        job = Job(max_rounds + 3, progress, cancel)
        if progress:
            progress(job.snapshot(f"calibrating {len(views)} views"))
        job.cancel.raise_if_cancelled()

        def forward(step) -> None:
            job.step(message=step.message)

        detections = Detections([v.view for v in views], self.image_size, [])
        report = calibrate_stereo(
            detections, pattern, model=options.model, alpha=options.alpha, max_rounds=max_rounds,
            min_views=max(self.min_views, 6), callback=forward, cancel=job.cancel,
            outlier_factor=float("inf") if options.keep_outliers else 2.0)
        result = WizardResult(report, views, self.recommended_views)
        job.done = job.total - 1
        result.preview()
        job.step(message=f"RMS {report.rms:.3f} px, epipolar error {report.epipolar_error:.3f} px")
        return result

    def set_result(self, result: WizardResult) -> None:
        self.result = result
        self.calibrated.emit(result)

    def calibrate(self, progress: Optional[ProgressCallback] = None,
                  cancel: Optional[CancelToken] = None) -> WizardResult:
        """:meth:`compute_calibration`, then keep the result and emit ``calibrated``."""
        result = self.compute_calibration(progress, cancel)
        self.set_result(result)
        return result
