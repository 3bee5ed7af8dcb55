"""The guided stereo calibration wizard without Qt (issue 11).

- :mod:`.model`: :class:`CalibrationWizardModel`, the pattern, candidate and captured views,
  coverage, hints and the calibration result;
- :mod:`.files`: calibration image sets on disk (globs and folders, paired by name, shared with
  ``depthapp calibrate``);
- :mod:`.rendering`: the wizard's pictures as RGB arrays (OpenCV drawing).

The Qt wizard and the viewer's Calibration tab are :mod:`depthapp.gui.calibration_wizard`.
"""

from .files import file_pairs, folder_pairs, inspect_files, read_file_pair
from .model import (HOLD_FRAMES, POSE_HINTS, POSE_LABELS, CalibrationOptions, CalibrationWizardModel,
                    Candidate, CapturedView, Coverage, Pose, RectifiedPreview, WizardResult,
                    compute_coverage, edge_width, estimate_pose, mean_displacement)
from .rendering import render_candidate, render_coverage, render_pattern, render_rectified

__all__ = ["CalibrationOptions", "CalibrationWizardModel", "Candidate", "CapturedView",
           "Coverage", "HOLD_FRAMES", "POSE_HINTS", "POSE_LABELS", "Pose", "RectifiedPreview",
           "WizardResult", "compute_coverage", "edge_width", "estimate_pose", "file_pairs",
           "folder_pairs", "inspect_files", "mean_displacement", "read_file_pair",
           "render_candidate", "render_coverage", "render_pattern", "render_rectified"]
