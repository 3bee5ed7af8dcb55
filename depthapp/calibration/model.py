"""The stereo calibration model, shared by every reader, writer and the geometry.

Conventions (see ../shared/STYLE.md):
- Lengths are metres (``T``, ``baseline``); pixel quantities are in pixels of the images this
  calibration describes (``image_size``).
- A *raw* calibration describes the physical cameras (``K1 D1 K2 D2 R T``); images taken with it
  must be rectified before matching. A *rectified* calibration describes images that are already
  rectified: ``P1``/``P2`` are their projection matrices and ``R``/``D`` no longer matter.
- ``doffs = cx_right - cx_left`` (Middlebury's name); depth ``Z = f * B / (d + doffs)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import CalibrationError
from . import checks

_SHAPES = {"P1": (3, 4), "P2": (3, 4), "K1": (3, 3), "K2": (3, 3), "R": (3, 3), "R1": (3, 3),
           "R2": (3, 3), "Q": (4, 4), "T": (3,)}


def _as_matrix(value, shape, name, source):
    if value is None:
        return None
    array = checks.finite_matrix(source, name, value)
    if array.size != int(np.prod(shape)):
        raise CalibrationError(f"{source}: {name} has {array.size} values, expected {shape}")
    return array.reshape(shape)


@dataclass
class StereoCalibration:
    """Intrinsics, extrinsics and (optionally) rectification of a stereo rig.

    Attributes:
        image_size: ``(width, height)`` in pixels.
        P1, P2: ``(3, 4)`` rectified projection matrices of the left and right camera. For a
            rectified calibration they are the cameras; for a raw one they are filled by
            :func:`depthapp.calibration.rectify.stereo_rectify`.
        K1, D1, K2, D2: raw intrinsics ``(3, 3)`` and distortion ``(N,)`` (None if unknown).
        R, T: rotation ``(3, 3)`` and translation ``(3,)`` in metres from the left to the right
            camera (OpenCV's convention ``x_right = R x_left + T``).
        R1, R2, Q: rectification rotations and the ``(4, 4)`` reprojection matrix.
        rectified: True when images taken with this calibration are already rectified.
        ndisp: a disparity range hint from the file (Middlebury ``ndisp``), or None.
        source: where the calibration came from (a path or a description), for messages.
        labels: what the file calls each field (``{"P1": "P_rect_02"}``), for messages.
    """

    image_size: tuple[int, int]
    P1: Optional[np.ndarray] = None
    P2: Optional[np.ndarray] = None
    K1: Optional[np.ndarray] = None
    D1: Optional[np.ndarray] = None
    K2: Optional[np.ndarray] = None
    D2: Optional[np.ndarray] = None
    R: Optional[np.ndarray] = None
    T: Optional[np.ndarray] = None
    R1: Optional[np.ndarray] = None
    R2: Optional[np.ndarray] = None
    Q: Optional[np.ndarray] = None
    rectified: bool = True
    ndisp: Optional[int] = None
    source: str = "<memory>"
    extra: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict, repr=False, compare=False)

    def label(self, name: str) -> str:
        return self.labels.get(name, name)

    def __post_init__(self):
        """Every number finite and in range, every matrix of its shape (see :mod:`.checks`)."""
        src = self.source
        self.image_size = checks.image_size(src, self.image_size,
                                            (self.label("width"), self.label("height")))
        self.ndisp = checks.ndisp(src, self.ndisp, self.label("ndisp"))
        for name, shape in _SHAPES.items():
            setattr(self, name, _as_matrix(getattr(self, name), shape, self.label(name), src))
        for name in ("D1", "D2"):
            value = getattr(self, name)
            if value is not None:
                value = checks.finite_matrix(src, self.label(name), value).ravel()
                if value.size > checks.MAX_DISTORTION_COEFFICIENTS:
                    raise CalibrationError(f"{src}: {self.label(name)} has {value.size} distortion "
                                           f"coefficients, at most {checks.MAX_DISTORTION_COEFFICIENTS}")
                setattr(self, name, value)
        if self.rectified and (self.P1 is None or self.P2 is None):
            raise CalibrationError(f"{src}: a rectified calibration needs P1 and P2")
        if not self.rectified and (self.K1 is None or self.K2 is None or self.R is None
                                   or self.T is None):
            raise CalibrationError(f"{src}: a raw calibration needs K1, K2, R and T")
        for name in ("K1", "K2", "P1", "P2"):
            if getattr(self, name) is not None:
                checks.camera_matrix(src, self.label(name), getattr(self, name))
        for name in ("R", "R1", "R2"):
            if getattr(self, name) is not None:
                checks.rotation(src, self.label(name), getattr(self, name))
        if self.P1 is not None and self.P2 is not None:
            checks.baseline(src, f"baseline (from {self.label('P1')}[0,3] and "
                                 f"{self.label('P2')}[0,3])", self.baseline)
        elif self.T is not None:
            checks.baseline(src, f"baseline (length of {self.label('T')})", float(np.linalg.norm(self.T)))

    # Rectified quantities -------------------------------------------------------------------
    def _require_rectified(self):
        if self.P1 is None or self.P2 is None:
            raise CalibrationError(
                f"{self.source}: raw calibration; rectify it first (depthapp.calibration.rectify)")

    @property
    def focal(self) -> float:
        """Rectified horizontal focal length in pixels (``P1[0, 0]``)."""
        self._require_rectified()
        return float(self.P1[0, 0])

    @property
    def focal_y(self) -> float:
        self._require_rectified()
        return float(self.P1[1, 1])

    @property
    def baseline(self) -> float:
        """Distance between the rectified optical centres in metres, positive."""
        self._require_rectified()
        # Works for OpenCV (P1[0,3]=0) and KITTI (both P carry offsets relative to camera 0).
        return float((self.P1[0, 3] - self.P2[0, 3]) / self.P2[0, 0])

    @property
    def cx_left(self) -> float:
        self._require_rectified()
        return float(self.P1[0, 2])

    @property
    def cx_right(self) -> float:
        self._require_rectified()
        return float(self.P2[0, 2])

    @property
    def cy(self) -> float:
        self._require_rectified()
        return float(self.P1[1, 2])

    @property
    def doffs(self) -> float:
        """``cx_right - cx_left``: the disparity of a point at infinity, negated."""
        return self.cx_right - self.cx_left

    def reprojection_matrix(self) -> np.ndarray:
        """The ``(4, 4)`` Q matrix for *positive* disparity (left x - right x).

        ``[X Y Z W]^T = Q [x y d 1]^T``, ``Z/W = f B / (d + doffs)``.
        """
        f, fy, b = self.focal, self.focal_y, self.baseline
        return np.array([
            [1.0, 0.0, 0.0, -self.cx_left],
            [0.0, f / fy, 0.0, -self.cy * f / fy],
            [0.0, 0.0, 0.0, f],
            [0.0, 0.0, 1.0 / b, self.doffs / b],
        ])

    # Transformations ------------------------------------------------------------------------
    def scaled(self, factor: float) -> "StereoCalibration":
        """The calibration of images resized by ``factor`` (pixel quantities scale, metres don't)."""
        def scale_p(p):
            if p is None:
                return None
            p = p.copy()
            p[:2, :] *= factor
            return p

        def scale_k(k):
            if k is None:
                return None
            k = k.copy()
            k[:2, :] *= factor
            return k

        width, height = self.image_size
        return dataclasses.replace(
            self, image_size=(round(width * factor), round(height * factor)),
            P1=scale_p(self.P1), P2=scale_p(self.P2), K1=scale_k(self.K1), K2=scale_k(self.K2),
            Q=None, source=f"{self.source} (scaled x{factor:g})")

    @classmethod
    def from_rectified(cls, focal: float, baseline: float, cx_left: float, cy: float,
                       image_size: tuple[int, int], cx_right: Optional[float] = None,
                       focal_y: Optional[float] = None, source: str = "<memory>",
                       ndisp: Optional[int] = None) -> "StereoCalibration":
        """Build a rectified calibration from the numbers a user usually knows."""
        baseline = checks.baseline(source, "baseline", baseline)
        focal = checks.focal(source, "focal", focal)
        cx_right = cx_left if cx_right is None else cx_right
        fy = focal if focal_y is None else focal_y
        p1 = np.array([[focal, 0, cx_left, 0], [0, fy, cy, 0], [0, 0, 1, 0]], dtype=np.float64)
        p2 = np.array([[focal, 0, cx_right, -focal * baseline], [0, fy, cy, 0], [0, 0, 1, 0]],
                      dtype=np.float64)
        return cls(image_size=image_size, P1=p1, P2=p2, rectified=True, source=source, ndisp=ndisp)

    def summary(self) -> str:
        if self.P1 is None:
            return f"raw calibration {self.image_size[0]}x{self.image_size[1]} from {self.source}"
        return (f"f={self.focal:.2f}px B={self.baseline:.4f}m cx0={self.cx_left:.2f} "
                f"cx1={self.cx_right:.2f} cy={self.cy:.2f} doffs={self.doffs:.2f}")
