"""The stereo data model that flows through every surface of depthapp.

    source -> StereoPair (+ StereoCalibration) -> Backend.compute -> DisparityResult -> geometry

Images are RGB ``uint8`` (or float in [0, 1]) arrays of shape ``(H, W, 3)``; OpenCV's BGR stays
inside the IO code. Disparity is positive (left ``x`` matches right ``x - d``), float32, in pixels
of the images the user gave, NaN where invalid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .calibration.model import StereoCalibration
from .errors import InputError


def _as_rgb(image: np.ndarray, name: str, source: str) -> np.ndarray:
    image = np.asarray(image)
    if image.size == 0:
        raise InputError(f"{source}: {name} image is empty")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"{source}: {name} image has shape {image.shape}, expected (H, W, 3)")
    return np.ascontiguousarray(image)


LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # BT.601


def luma(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` RGB -> ``(H, W)`` float32 luma (BT.601: 0.299 R + 0.587 G + 0.114 B)."""
    return image[..., :3].astype(np.float32) @ LUMA_WEIGHTS


@dataclass
class StereoPair:
    """A rectified (or to-be-rectified) stereo pair.

    Attributes:
        left, right: ``(H, W, 3)`` RGB arrays of equal size; grey input is replicated to 3 channels.
        calibration: optional :class:`StereoCalibration` of these images.
        name: where the pair came from (file names, sample name), used in messages and outputs.
        gt_disparity: optional ``(H, W)`` float32 ground truth of the left view, NaN = unknown.
    """

    left: np.ndarray
    right: np.ndarray
    calibration: Optional[StereoCalibration] = None
    name: str = "pair"
    gt_disparity: Optional[np.ndarray] = None

    def __post_init__(self):
        self.left = _as_rgb(self.left, "left", self.name)
        self.right = _as_rgb(self.right, "right", self.name)
        if self.left.shape != self.right.shape:
            raise InputError(
                f"{self.name}: left and right differ in size: "
                f"{self.left.shape[1]}x{self.left.shape[0]} vs {self.right.shape[1]}x{self.right.shape[0]}")
        if self.gt_disparity is not None:
            gt = np.asarray(self.gt_disparity, dtype=np.float32)
            if gt.shape != self.left.shape[:2]:
                raise InputError(f"{self.name}: ground truth is {gt.shape}, images {self.left.shape[:2]}")
            self.gt_disparity = np.where(np.isfinite(gt), gt, np.nan).astype(np.float32)

    @property
    def height(self) -> int:
        return int(self.left.shape[0])

    @property
    def width(self) -> int:
        return int(self.left.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` as OpenCV and calibrations count it."""
        return self.width, self.height

    def grey(self) -> tuple[np.ndarray, np.ndarray]:
        """Luma (BT.601: 0.299 R + 0.587 G + 0.114 B) of both views as float32 ``(H, W)``."""
        return luma(self.left), luma(self.right)


@dataclass
class DisparityResult:
    """What a backend returns for one pair.

    Attributes:
        disparity: ``(H, W)`` float32 disparity of the left view in pixels, NaN where invalid.
        backend: registry name of the backend that produced it.
        parameters: the parameter values used (after defaults and rounding).
        max_disp: the number of disparity levels searched (disparities ``0 .. max_disp - 1``).
        confidence: optional ``(H, W)`` float32 in [0, 1].
        timings: seconds per stage, in the order the stages ran.
        device: where it ran ("cpu", "cuda:0", ...).
    """

    disparity: np.ndarray
    backend: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    max_disp: Optional[int] = None
    confidence: Optional[np.ndarray] = None
    timings: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"
    messages: list[str] = field(default_factory=list)

    def __post_init__(self):
        disparity = np.asarray(self.disparity, dtype=np.float32)
        if disparity.ndim != 2:
            raise ValueError(f"disparity must be (H, W), got {disparity.shape}")
        # Non-finite values of any kind (inf from PFM, NaN) are one thing in the API: invalid.
        self.disparity = np.where(np.isfinite(disparity), disparity, np.float32(np.nan))

    @property
    def valid(self) -> np.ndarray:
        """Boolean ``(H, W)`` mask of pixels with a disparity."""
        return np.isfinite(self.disparity)

    @property
    def density(self) -> float:
        return float(self.valid.mean()) if self.disparity.size else 0.0

    @property
    def total_time(self) -> float:
        return float(sum(self.timings.values()))
