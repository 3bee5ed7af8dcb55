"""The embedded sample: Middlebury 2014 *Motorcycle* at quarter size, from scikit-image.

scikit-image ships the left/right images and the ground truth (500x741). Its calibration is the
2014 ``calib.txt`` divided by 4 (shipped here as ``resources/calib/motorcycle_quarter.txt``).
Invalid ground truth is +inf in scikit-image's file; here it is NaN like every disparity in the API.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from .data import StereoPair
from .errors import InputError

SAMPLE_NAME = "middlebury2014-motorcycle-quarter"


def sample_calibration_path():
    return resources.files("depthapp") / "resources" / "calib" / "motorcycle_quarter.txt"


@lru_cache(maxsize=1)
def _load_arrays():
    try:
        from skimage import data
    except ImportError:
        raise InputError("the embedded sample needs scikit-image (pip install scikit-image)") from None
    left, right, gt = data.stereo_motorcycle()
    gt = np.where(np.isfinite(gt), gt, np.nan).astype(np.float32)
    for array in (left, right, gt):
        array.setflags(write=False)
    return left, right, gt


def load_sample() -> StereoPair:
    """The Motorcycle pair with calibration and ground truth (a fresh copy each call)."""
    from .calibration.middlebury import parse_middlebury_calib

    left, right, gt = _load_arrays()
    path = sample_calibration_path()
    calibration = parse_middlebury_calib(path.read_text(), source=f"sample:{path.name}")
    return StereoPair(left=left.copy(), right=right.copy(), calibration=calibration,
                      name=SAMPLE_NAME, gt_disparity=gt.copy())
