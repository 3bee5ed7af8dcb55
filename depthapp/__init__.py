"""depthapp: stereo-vision depth estimation as a library, a CLI and a desktop viewer."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("depthapp")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

from .calibration.model import StereoCalibration
from .data import DisparityResult, StereoPair
from .errors import (BackendUnavailableError, CalibrationError, DepthAppError, InputError,
                     OutputExistsError, UsageError, WeightsError)

__all__ = ["BackendUnavailableError", "CalibrationError", "DepthAppError", "DisparityResult",
           "InputError", "OutputExistsError", "StereoCalibration", "StereoPair", "UsageError",
           "WeightsError", "__version__"]
