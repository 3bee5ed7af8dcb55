"""Where the viewer's pairs come from: files, folder sequences and video files (Qt-free).

A :class:`PairSequence` is an indexable list of stereo pairs that is loaded lazily, one pair at a
time, so a folder of thousands of pairs or a long video opens instantly. Live cameras are not
sequences; they belong to ``depthapp.camera`` (see :mod:`depthapp.gui.live`).
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..calibration.model import StereoCalibration
from ..data import StereoPair
from ..errors import CalibrationError, InputError
from ..io.images import IMAGE_EXTENSIONS, split_side_by_side
from ..io.pairs import PairFiles, find_pairs, load_pair

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
CALIBRATION_EXTENSIONS = (".txt", ".json", ".yaml", ".yml", ".xml", ".ini", ".conf", ".calib")
DISPARITY_EXTENSIONS = (".pfm", ".npy")
# Middlebury scene folders keep the ground truth and calibration beside im0/im1.
_MIDDLEBURY_GT_NAMES = ("disp0GT.pfm", "disp0.pfm")
_MIDDLEBURY_CALIB = "calib.txt"


def load_calibration_file(path: str | os.PathLike, units: Optional[str] = None,
                          image_size: Optional[tuple[int, int]] = None) -> StereoCalibration:
    """Read a calibration file in any format the CLI reads (detected by content).

    ``units`` is the length unit of an OpenCV file's ``T`` when the file does not record it;
    ``image_size`` (the open pair's) serves files that do not record their size. Falls back to
    the Middlebury ``calib.txt`` reader where the general readers are not installed.
    """
    path = Path(path)
    if not path.exists():
        raise CalibrationError(f"{path}: no such calibration file")
    try:
        from ..calibration import readers  # noqa: F401  (the general, content-detecting readers)
    except ModuleNotFoundError as error:
        if error.name != "depthapp.calibration.readers":
            raise
        from ..calibration.middlebury import looks_like_middlebury, read_middlebury_calib

        text = path.read_text(errors="replace") if path.is_file() else ""
        if looks_like_middlebury(text):
            return read_middlebury_calib(path, image_size=image_size)
        raise CalibrationError(f"{path}: not a Middlebury calib.txt, and the readers for other "
                               "calibration formats are not installed") from None
    from ..calibration import read_calibration

    return read_calibration(path, units=units, image_size=image_size)


def needs_units(error: Exception) -> bool:
    """Whether a calibration error only lacks the unit of T (the GUI then asks for it)."""
    return isinstance(error, CalibrationError) and "calib-units" in str(error)


class PairSequence(ABC):
    """An ordered list of stereo pairs loaded on demand."""

    description = "sequence"

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def load(self, index: int) -> StereoPair:
        """The pair at ``index`` (0-based); InputError when it cannot be read."""

    def label(self, index: int) -> str:
        return f"{index + 1}/{len(self)}"

    def close(self) -> None:
        """Release files or decoders."""

    def _check(self, index: int) -> None:
        if not 0 <= index < len(self):
            raise InputError(f"{self.description}: no pair {index + 1} (it has {len(self)})")


class FolderSequence(PairSequence):
    """The pairs :func:`depthapp.io.find_pairs` finds in a folder. Middlebury scene folders also
    bring their ``calib.txt`` and ground truth (``disp0GT.pfm`` or ``disp0.pfm``)."""

    def __init__(self, folder: str | os.PathLike, pairs: Optional[Sequence[PairFiles]] = None):
        self.folder = Path(folder)
        self.pairs = list(pairs) if pairs is not None else find_pairs(self.folder)
        self.description = str(self.folder)

    def __len__(self) -> int:
        return len(self.pairs)

    def label(self, index: int) -> str:
        return f"{self.pairs[index].name} ({index + 1}/{len(self)})"

    def load(self, index: int) -> StereoPair:
        self._check(index)
        files = self.pairs[index]
        return load_pair_files(files.left, files.right, name=files.name)


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
            from ..io.disparity import read_disparity

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


class VideoSequence(PairSequence):
    """Frames of one side-by-side video (each frame split in two), or of two synchronised
    videos (left, right), decoded with OpenCV."""

    def __init__(self, left: str | os.PathLike, right: Optional[str | os.PathLike] = None):
        import cv2

        self.paths = [Path(left)] + ([Path(right)] if right is not None else [])
        self.description = " + ".join(str(p) for p in self.paths)
        self._captures = []
        counts = []
        for path in self.paths:
            if not path.is_file():
                raise InputError(f"{path}: no such video file")
            capture = cv2.VideoCapture(str(path))
            if not capture.isOpened():
                raise InputError(f"{path}: not a readable video")
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            if count <= 0:
                capture.release()
                raise InputError(f"{path}: the video reports no frames")
            self._captures.append(capture)
            counts.append(count)
        self._count = min(counts)
        self._next = [0] * len(self._captures)  # the frame each decoder would read next

    def __len__(self) -> int:
        return self._count

    def label(self, index: int) -> str:
        return f"frame {index + 1}/{len(self)}"

    def _frame(self, which: int, index: int) -> np.ndarray:
        import cv2

        capture = self._captures[which]
        if self._next[which] != index:  # seeking is slow; sequential stepping reads on
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        if not ok or frame is None:
            self._next[which] = -1
            raise InputError(f"{self.paths[which]}: cannot decode frame {index + 1}")
        self._next[which] = index + 1
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def load(self, index: int) -> StereoPair:
        self._check(index)
        name = f"{self.paths[0].stem}#{index + 1:06d}"
        if len(self._captures) == 1:
            left, right = split_side_by_side(self._frame(0, index), source=str(self.paths[0]))
        else:
            left, right = self._frame(0, index), self._frame(1, index)
        return StereoPair(left, right, name=name)

    def close(self) -> None:
        for capture in self._captures:
            capture.release()
        self._captures = []


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

    kind: str  # "pair", "sbs", "folder", "video", "none"
    images: list[Path] = field(default_factory=list)
    calibration: Optional[Path] = None
    ground_truth: Optional[Path] = None


def plan_open(paths: Sequence[str | os.PathLike]) -> OpenPlan:
    """Sort dropped paths into images / folder / video / calibration / ground truth."""
    paths = [Path(p) for p in paths]
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
