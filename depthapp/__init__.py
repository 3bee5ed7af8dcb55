"""depthapp: stereo-vision depth estimation as a library, a CLI and a desktop viewer."""

from .calibration.model import StereoCalibration
from .data import DisparityResult, StereoPair
from .errors import (BackendUnavailableError, CalibrationError, DepthAppError, InputError,
                     OutputExistsError, UsageError, WeightsError)

__all__ = ["BackendUnavailableError", "CalibrationError", "DepthAppError", "DisparityResult",
           "InputError", "OutputExistsError", "StereoCalibration", "StereoPair", "UsageError",
           "WeightsError", "__version__"]


def __getattr__(name: str):
    # The version is read from the installed metadata on first use: importlib.metadata takes
    # ~40 ms to import, a sixth of a whole `depthapp run` (issue 18, start-up).
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("depthapp")
        except PackageNotFoundError:  # running from a source tree that is not installed
            value = "0.0.0+source"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
