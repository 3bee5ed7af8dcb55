"""Stereo calibration: the model, file readers/writers and rectification."""

from .model import StereoCalibration

__all__ = ["StereoCalibration", "read_calibration", "write_calibration"]


def read_calibration(path, **options):
    """Read any supported calibration file, detecting the format by content."""
    from .readers import read_calibration as _read

    return _read(path, **options)


def write_calibration(calibration, path, **options):
    """Write a calibration; the extension picks the format (.json depthapp, .yaml/.yml/.xml OpenCV)."""
    from .writers import write_calibration as _write

    return _write(calibration, path, **options)
