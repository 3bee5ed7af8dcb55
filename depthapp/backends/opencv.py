"""OpenCV's block matching and semi-global block matching as baseline backends.

OpenCV returns disparity as int16 fixed point with 4 fractional bits (x16) and marks invalid
pixels with ``(minDisparity - 1) * 16``; both are converted here to float pixels and NaN.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..params import Parameter
from . import register_backend
from .base import Backend

_SGBM_MODES = {"sgbm": cv2.StereoSGBM_MODE_SGBM, "hh": cv2.StereoSGBM_MODE_HH,
               "hh4": cv2.StereoSGBM_MODE_HH4, "3way": cv2.StereoSGBM_MODE_SGBM_3WAY}

_SHARED = (
    Parameter("min_disp", "int", 0, "smallest disparity searched (may be negative)", -256, 256),
    Parameter("uniqueness", "int", 10, "best cost must beat the second by this percentage", 0, 100),
    Parameter("speckle_window", "int", 100, "largest speckle (pixels) removed; 0 disables", 0, 1000),
    Parameter("speckle_range", "int", 2, "max disparity variation within a connected component", 0, 64),
    Parameter("disp12_max_diff", "int", 1, "left-right check tolerance in pixels; -1 disables", -1, 64),
)


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _to_float_disparity(raw: np.ndarray, min_disp: int) -> np.ndarray:
    disparity = raw.astype(np.float32) / 16.0
    disparity[raw < min_disp * 16] = np.nan
    return disparity


class _OpenCVMatcher(Backend):
    """What OpenCV's two matchers share: int16 fixed-point output with 4 fractional bits, a
    disparity count that is a multiple of 16, and a speed for interactive use."""

    disparity_multiple = 16
    disparity_step = 1 / 16
    default_max_disp = 128
    interactive = True


@register_backend
class OpenCVSGBM(_OpenCVMatcher):
    name = "opencv-sgbm"
    description = "OpenCV StereoSGBM (Hirschmueller SGM with BT block cost), CPU"
    parameters = (
        Parameter("block_size", "int", 5, "matching block size (odd)", 1, 11, odd=True),
        Parameter("mode", "choice", "sgbm", "sgbm: 5 paths, hh: 8 paths (full), hh4: 4 paths, "
                  "3way: fastest", choices=tuple(_SGBM_MODES)),
        Parameter("p1", "int", 0, "penalty for a 1 px disparity change; 0 = 8*block_size^2", 0, 10000),
        Parameter("p2", "int", 0, "penalty for larger changes; 0 = 32*block_size^2", 0, 40000),
        Parameter("pre_filter_cap", "int", 63, "clip of the x-derivative prefilter", 1, 63),
        Parameter("colour", "bool", False, "match RGB instead of grey (P1/P2 auto-scale by 3)"),
    ) + _SHARED
    presets = {"fast": {"mode": "3way"}}

    def _margin(self) -> int:
        # StereoSGBM asserts width >= minDisparity + numDisparities + blockSize // 2 + 1.
        return max(0, self.params["min_disp"]) + self.params["block_size"] // 2 + 1

    def min_pair_size(self) -> tuple[int, int]:
        return self.max_disp + self._margin(), 1

    def max_disp_for_width(self, width: int) -> int:
        multiple = self.disparity_multiple
        return max(multiple, (width - self._margin()) // multiple * multiple)

    def estimate_memory(self, height: int, width: int) -> int:
        # Full-image cost and aggregation buffers (int16 each) in the 8-path mode; the other
        # modes keep a few rows of them. Plus the int16 output and the grey/colour copies.
        rows = height if self.params["mode"] == "hh" else 4
        return rows * width * self.max_disp * 2 * 2 + height * width * (2 + 2 * 3 + 4)

    def _matcher(self, channels: int):
        p = self.params
        area = p["block_size"] ** 2 * channels
        p1 = p["p1"] or 8 * area
        p2 = p["p2"] or 32 * area
        if p2 <= p1:
            from ..errors import ParameterError

            raise ParameterError(f"{{}} ({p2}) must be larger than {{}} ({p1})", "p2", "p1")
        return cv2.StereoSGBM_create(
            minDisparity=p["min_disp"], numDisparities=self.max_disp, blockSize=p["block_size"],
            P1=p1, P2=p2, disp12MaxDiff=p["disp12_max_diff"], preFilterCap=p["pre_filter_cap"],
            uniquenessRatio=p["uniqueness"], speckleWindowSize=p["speckle_window"],
            speckleRange=p["speckle_range"], mode=_SGBM_MODES[p["mode"]])

    def _compute(self, pair, timer, cancel):
        with timer("prepare"):
            if self.params["colour"]:
                left = cv2.cvtColor(pair.left, cv2.COLOR_RGB2BGR)
                right = cv2.cvtColor(pair.right, cv2.COLOR_RGB2BGR)
                matcher = self._matcher(3)
            else:
                left, right = _grey(pair.left), _grey(pair.right)
                matcher = self._matcher(1)
        with timer("match"):
            raw = matcher.compute(left, right)
        with timer("convert"):
            return _to_float_disparity(raw, self.params["min_disp"])


@register_backend
class OpenCVBM(_OpenCVMatcher):
    name = "opencv-bm"
    description = "OpenCV StereoBM (SAD block matching), CPU, very fast"
    parameters = (
        Parameter("block_size", "int", 15, "SAD window size (odd)", 5, 255, odd=True),
        Parameter("pre_filter_cap", "int", 31, "clip of the prefilter output", 1, 63),
        Parameter("texture_threshold", "int", 10, "minimum texture for a valid match", 0, 10000),
    ) + _SHARED

    def min_pair_size(self) -> tuple[int, int]:
        # StereoBM needs the image larger than its SAD window in both directions.
        side = self.params["block_size"] + 1
        return side, side

    def estimate_memory(self, height: int, width: int) -> int:
        # Per-row SAD buffers of the disparity range (6 rows' worth measured with 2 threads at
        # 741x500: bench_memory_estimates.py), the int16 output, the float result and the grey copies.
        return width * self.max_disp * 4 * 6 + height * width * (2 + 2 + 4)

    def _compute(self, pair, timer, cancel):
        p = self.params
        with timer("prepare"):
            left, right = _grey(pair.left), _grey(pair.right)
            matcher = cv2.StereoBM_create(numDisparities=self.max_disp, blockSize=p["block_size"])
            matcher.setMinDisparity(p["min_disp"])
            matcher.setPreFilterCap(p["pre_filter_cap"])
            matcher.setTextureThreshold(p["texture_threshold"])
            matcher.setUniquenessRatio(p["uniqueness"])
            matcher.setSpeckleWindowSize(p["speckle_window"])
            matcher.setSpeckleRange(p["speckle_range"])
            matcher.setDisp12MaxDiff(p["disp12_max_diff"])
        with timer("match"):
            raw = matcher.compute(left, right)
        with timer("convert"):
            return _to_float_disparity(raw, p["min_disp"])
