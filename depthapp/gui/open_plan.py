"""What the paths a user drops on the viewer (or names on its command line) mean: images, a
folder, a video, a calibration, a ground truth (Qt-free). The pairs themselves come from
:mod:`depthapp.sources`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from ..calibration import read_calibration
from ..calibration.model import StereoCalibration
from ..errors import CalibrationError, InputError
from ..io.images import IMAGE_EXTENSIONS
from ..robotics.bags import looks_like_bag
from ..sources.video import VIDEO_EXTENSIONS


CALIBRATION_EXTENSIONS = (".txt", ".json", ".yaml", ".yml", ".xml", ".ini", ".conf", ".calib")
DISPARITY_EXTENSIONS = (".pfm", ".npy")


def load_calibration_file(path: str | os.PathLike, units: Optional[str] = None,
                          image_size: Optional[tuple[int, int]] = None) -> StereoCalibration:
    """Read a calibration file in any format the CLI reads (detected by content).

    ``units`` is the length unit of an OpenCV file's ``T`` when the file does not record it;
    ``image_size`` (the open pair's) serves files that do not record their size.
    """
    path = Path(path)
    if not path.exists():
        raise CalibrationError(f"{path}: no such calibration file")
    return read_calibration(path, units=units, image_size=image_size)


def needs_units(error: Exception) -> bool:
    """Whether a calibration error only lacks the unit of T (the GUI then asks for it)."""
    return isinstance(error, CalibrationError) and "calib-units" in str(error)


def _order_pair(paths: list[Path]) -> list[Path]:
    """Put the left view first when the names say which is which (left/right, im0/im1, L/R)."""
    def side(path: Path) -> Optional[int]:
        stem = path.stem.lower()
        if re.search(r"(^|[_\-. ])(left|l)($|[_\-. ])|left|^im0$|cam0|image_2", stem):
            return 0
        if re.search(r"(^|[_\-. ])(right|r)($|[_\-. ])|right|^im1$|cam1|image_3", stem):
            return 1
        return None

    sides = [side(p) for p in paths]
    if sides == [1, 0]:
        return paths[::-1]
    return paths


@dataclass
class OpenPlan:
    """What a set of dropped (or command-line) paths means."""

    kind: str  # "pair", "sbs", "folder", "video", "bag", "none"
    images: list[Path] = field(default_factory=list)
    calibration: Optional[Path] = None
    ground_truth: Optional[Path] = None


def plan_open(paths: Sequence[str | os.PathLike]) -> OpenPlan:
    """Sort dropped paths into images / folder / video / calibration / ground truth."""
    paths = [Path(p) for p in paths]
    bags = [p for p in paths if looks_like_bag(p)]
    if bags:
        if len(bags) > 1 or len(paths) > 1 + sum(p.suffix.lower() in CALIBRATION_EXTENSIONS for p in paths):
            raise InputError("drop one ROS bag at a time (optionally with a calibration file)")
        calibrations = [p for p in paths if p not in bags]
        return OpenPlan("bag", images=bags, calibration=calibrations[0] if calibrations else None)
    folders = [p for p in paths if p.is_dir()]
    videos = [p for p in paths if p.suffix.lower() in VIDEO_EXTENSIONS]
    images = [p for p in paths if p.suffix.lower() in IMAGE_EXTENSIONS and not p.is_dir()]
    truths = [p for p in paths if p.suffix.lower() in DISPARITY_EXTENSIONS]
    calibrations = [p for p in paths if p.suffix.lower() in CALIBRATION_EXTENSIONS]
    unknown = [p for p in paths if p not in folders + videos + images + truths + calibrations]
    if unknown:
        raise InputError(f"{unknown[0]}: not an image, video, folder, calibration or disparity file")
    if len(truths) > 1 or len(calibrations) > 1:
        raise InputError("drop at most one calibration file and one ground-truth file")
    plan = OpenPlan("none", calibration=calibrations[0] if calibrations else None,
                    ground_truth=truths[0] if truths else None)
    sources = sum(bool(group) for group in (folders, videos, images))
    if sources > 1:
        raise InputError("drop images, a folder or a video, not a mix of them")
    if folders:
        if len(folders) > 1:
            raise InputError("drop one folder at a time")
        plan.kind, plan.images = "folder", folders
    elif videos:
        if len(videos) > 2:
            raise InputError("drop one side-by-side video or two videos (left and right)")
        plan.kind, plan.images = "video", _order_pair(videos)
    elif images:
        if len(images) > 2:
            raise InputError(f"drop two images (left and right) or one side-by-side image, "
                             f"not {len(images)}")
        plan.kind = "pair" if len(images) == 2 else "sbs"
        plan.images = _order_pair(images)
    return plan
