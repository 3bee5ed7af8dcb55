"""The shared single-pair pipeline behind ``depthapp run``, the viewer and the camera loop:

    pair (+ calibration) -> rectify if raw -> backend.compute -> depth and points
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .backends import Backend, get_backend_class
from .calibration.model import StereoCalibration
from .data import DisparityResult, StereoPair
from .errors import CalibrationError
from .geometry import PointCloud, disparity_to_depth, disparity_to_points
from .jobs import CancelToken, ProgressCallback


def choose_max_disp(backend_name: str, requested: Optional[int], weights: Optional[str],
                    calibration: Optional[StereoCalibration]) -> tuple[int, str]:
    """The disparity range to search and where it came from: the user, then the weights
    record, then the calibration's ``ndisp``, then the backend default; rounded up to the
    multiple the backend needs."""
    cls = get_backend_class(backend_name)
    if requested is not None:
        value, origin = requested, "--max-disp"
    elif (from_weights := cls.weights_max_disp(weights)):
        value, origin = from_weights, "weights record"
    elif calibration is not None and calibration.ndisp:
        value, origin = calibration.ndisp, "calibration ndisp"
    else:
        value, origin = cls.default_max_disp, f"{backend_name} default"
    rounded = cls.round_max_disp(value)
    if rounded != value:
        origin += f", {value} rounded up to a multiple of {cls.disparity_multiple}"
    return rounded, origin


def clamp_max_disp(backend: Backend, width: int) -> Optional[str]:
    """Lower a classical backend's range to what ``width``-pixel images can hold, for good;
    the note to show the user, or None when nothing changed."""
    backend.max_disp, note = backend.fit_max_disp(width)
    return note


def fit_calibration(calibration: StereoCalibration, width: int, height: int) -> tuple[StereoCalibration, Optional[str]]:
    """Use ``calibration`` for ``width x height`` images, scaling it when the images are a
    uniformly resized version of the calibrated size; anything else is an error."""
    cal_width, cal_height = calibration.image_size
    if (cal_width, cal_height) == (width, height):
        return calibration, None
    sx, sy = width / cal_width, height / cal_height
    if abs(sx - sy) <= 0.01 * max(sx, sy) and calibration.rectified:
        return calibration.scaled(sx), (f"calibration is for {cal_width}x{cal_height}; "
                                        f"scaled by {sx:.4g} to the {width}x{height} images")
    raise CalibrationError(f"{calibration.source}: calibration is for {cal_width}x{cal_height} "
                           f"images, the pair is {width}x{height}")


def prepare_pair(pair: StereoPair) -> tuple[StereoPair, list[str]]:
    """Rectify a pair whose calibration describes raw cameras; fit the calibration's size."""
    notes: list[str] = []
    calibration = pair.calibration
    if calibration is None:
        return pair, notes
    size_estimated = bool(calibration.extra.get("image_size_estimated"))
    if not calibration.rectified:
        from .calibration.rectify import Rectifier

        # The Rectifier refuses a real size mismatch; a size the file did not record is the pair's.
        pair = Rectifier(calibration, image_size=pair.size).rectify_pair(pair)
        notes.append("rectified the pair with the raw calibration "
                     f"({pair.calibration.summary()})")
        return pair, notes
    if size_estimated:
        import dataclasses

        extra = {k: v for k, v in calibration.extra.items() if k != "image_size_estimated"}
        fitted, note = dataclasses.replace(calibration, image_size=pair.size, extra=extra), None
    else:
        fitted, note = fit_calibration(calibration, pair.width, pair.height)
    if note:
        notes.append(note)
    if fitted is not calibration:
        pair = StereoPair(pair.left, pair.right, fitted, pair.name, pair.gt_disparity)
    return pair, notes


@dataclass
class PipelineOutput:
    pair: StereoPair
    result: DisparityResult
    depth: Optional[np.ndarray] = None
    cloud: Optional[PointCloud] = None
    notes: list[str] = field(default_factory=list)


def run_pipeline(pair: StereoPair, backend: Backend, cancel: Optional[CancelToken] = None,
                 with_points: bool = True, prepared: bool = False,
                 progress: Optional[ProgressCallback] = None) -> PipelineOutput:
    """Rectify if needed, compute disparity, and with a calibration depth (m) and points.

    ``prepared``: the caller already ran :func:`prepare_pair` (to choose the disparity range
    from the fitted calibration), so it is not done twice. ``progress``: the backend's stages
    (see :meth:`~depthapp.backends.Backend.compute`)."""
    pair, notes = (pair, []) if prepared else prepare_pair(pair)
    result = backend.compute(pair, cancel, progress)
    output = PipelineOutput(pair=pair, result=result, notes=notes + list(result.messages))
    if pair.calibration is not None:
        timer = backend.make_timer()
        with timer("depth"):
            output.depth = disparity_to_depth(result.disparity, pair.calibration)
        if with_points:
            with timer("points"):
                output.cloud = disparity_to_points(result.disparity, pair.calibration, pair.left)
        result.timings.update(timer.timings)
    return output
