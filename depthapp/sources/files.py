"""Stereo pairs from image files: two files, a side-by-side image, or a folder of pairs.

Folder layouts recognised (first match wins):
- ``left/`` + ``right/`` with the same file names (also ``image_2``/``image_3`` of KITTI 2015 and
  ``colored_0``/``colored_1`` of KITTI 2012, ``cam0``/``cam1``);
- Middlebury scene folders holding ``im0.png`` + ``im1.png`` (the folder itself or its children);
- files named ``*_left.*`` / ``*_right.*`` (also ``*_L``/``*_R``, ``left_*``/``right_*``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..calibration.model import StereoCalibration
from ..data import StereoPair
from ..errors import InputError
from ..io.disparity import read_disparity
from ..io.images import IMAGE_EXTENSIONS, read_rgb, split_side_by_side

# Middlebury scene folders keep the ground truth and calibration beside im0/im1.
_MIDDLEBURY_GT_NAMES = ("disp0GT.pfm", "disp0.pfm")
_MIDDLEBURY_CALIB = "calib.txt"
SUBFOLDER_PAIRS = (("left", "right"), ("image_2", "image_3"), ("colored_0", "colored_1"),
                   ("cam0", "cam1"), ("image_02", "image_03"), ("L", "R"))
_SUFFIX_PATTERNS = (
    (re.compile(r"^(?P<stem>.*?)[_\-. ]?left$", re.I), re.compile(r"^(?P<stem>.*?)[_\-. ]?right$", re.I)),
    (re.compile(r"^(?P<stem>.*?)[_\-]L$"), re.compile(r"^(?P<stem>.*?)[_\-]R$")),
    (re.compile(r"^left[_\-]?(?P<stem>.*)$", re.I), re.compile(r"^right[_\-]?(?P<stem>.*)$", re.I)),
)


@dataclass(frozen=True)
class PairFiles:
    """Paths of one pair found on disk; ``name`` identifies it within its folder."""

    name: str
    left: Path
    right: Path


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))


def find_pairs(folder: str | os.PathLike) -> list[PairFiles]:
    """All stereo pairs in ``folder`` (see the module docstring for the layouts), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    for left_name, right_name in SUBFOLDER_PAIRS:
        left_dir, right_dir = folder / left_name, folder / right_name
        if left_dir.is_dir() and right_dir.is_dir():
            rights = {p.name: p for p in _images(right_dir)}
            pairs = [PairFiles(p.stem, p, rights[p.name]) for p in _images(left_dir) if p.name in rights]
            if not pairs:
                raise InputError(f"{folder}: {left_name}/ and {right_name}/ share no file names")
            return pairs
    scenes = [folder] + sorted(p for p in folder.iterdir() if p.is_dir())
    middlebury = []
    for scene in scenes:
        left = next((scene / f"im0{ext}" for ext in IMAGE_EXTENSIONS if (scene / f"im0{ext}").exists()), None)
        right = next((scene / f"im1{ext}" for ext in IMAGE_EXTENSIONS if (scene / f"im1{ext}").exists()), None)
        if left and right:
            middlebury.append(PairFiles(scene.name, left, right))
    if middlebury:
        return middlebury
    files = _images(folder)
    for left_pattern, right_pattern in _SUFFIX_PATTERNS:
        lefts, rights = {}, {}
        for path in files:
            if (match := left_pattern.match(path.stem)):
                lefts[(match.group("stem"), path.suffix.lower())] = path
            elif (match := right_pattern.match(path.stem)):
                rights[(match.group("stem"), path.suffix.lower())] = path
        pairs = [PairFiles(key[0] or lefts[key].stem, lefts[key], rights[key])
                 for key in sorted(lefts) if key in rights]
        if pairs:
            return pairs
    raise InputError(f"{folder}: no stereo pairs found (expected left/ + right/, im0/im1, "
                     "image_2/image_3, colored_0/colored_1 or *_left/*_right files)")


def load_pair(left: str | os.PathLike, right: Optional[str | os.PathLike] = None,
              calibration: Optional[StereoCalibration] = None, name: Optional[str] = None,
              gt_disparity: Optional[np.ndarray] = None) -> StereoPair:
    """Load a pair from two image files, or split one side-by-side file when ``right`` is None."""
    left = Path(left)
    left_image = read_rgb(left)
    if right is None:
        left_image, right_image = split_side_by_side(left_image, source=str(left))
        label = name or left.stem
    else:
        right = Path(right)
        right_image = read_rgb(right)
        if left_image.shape != right_image.shape:
            raise InputError(
                f"{right}: size {right_image.shape[1]}x{right_image.shape[0]} differs from "
                f"{left} ({left_image.shape[1]}x{left_image.shape[0]})")
        label = name or left.stem
    return StereoPair(left_image, right_image, calibration=calibration, name=label,
                      gt_disparity=gt_disparity)


def _middlebury_extras(left: Path) -> tuple[Optional[StereoCalibration], Optional[np.ndarray]]:
    if left.stem != "im0":
        return None, None
    calibration = gt = None
    calib_path = left.parent / _MIDDLEBURY_CALIB
    if calib_path.is_file():
        from ..calibration.middlebury import read_middlebury_calib

        calibration = read_middlebury_calib(calib_path)
    for name in _MIDDLEBURY_GT_NAMES:
        if (left.parent / name).is_file():
            gt = read_disparity(left.parent / name)
            break
    return calibration, gt


def load_pair_files(left: str | os.PathLike, right: Optional[str | os.PathLike] = None,
                    name: Optional[str] = None) -> StereoPair:
    """Two image files (or one side-by-side image), with a Middlebury scene's calibration and
    ground truth when they lie beside ``im0``."""
    left = Path(left)
    calibration, gt = _middlebury_extras(left) if right is not None else (None, None)
    pair = load_pair(left, right, name=name or (left.parent.name if left.stem == "im0" else None))
    if gt is not None and gt.shape == pair.left.shape[:2]:
        pair.gt_disparity = gt
    if calibration is not None:
        pair.calibration = calibration
    return pair
