"""Rectify raw stereo pairs from image files to image files (``depthapp rectify``'s work).

One pair writes ``OUT/left.png`` and ``OUT/right.png``; a folder of pairs writes
``OUT/left/NAME.png`` and ``OUT/right/NAME.png`` for each. Both write ``OUT/calibration.json``,
the calibration of the rectified images, after the last pair.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from ..io.images import write_image
from ..sources.files import PairFiles, find_pairs, load_pair
from ..jobs import CancelToken, ProgressCallback, track
from .model import StereoCalibration
from .rectify import Rectifier, measure_rectification_error
from .writers import write_calibration

#: Matched features needed before the vertical offset of a single rectified pair is reported.
MIN_MATCHES = 12


@dataclass(frozen=True)
class RectifyJob:
    """One pair to rectify and where its two images go."""

    files: PairFiles
    left_out: Path
    right_out: Path


@dataclass(frozen=True)
class RectifiedFiles:
    """One written pair. ``vertical_offset`` (px, median over ``matches`` features) is measured
    for a single pair only, as a check that the calibration belongs to these cameras."""

    job: RectifyJob
    index: int
    rectifier: Rectifier
    vertical_offset: Optional[float] = None
    matches: int = 0


class RectifyBatch:
    """The pairs of ``left`` + ``right`` image files, or of the folder ``left`` (``right`` None),
    rectified into ``out``."""

    def __init__(self, left: str | os.PathLike, right: Optional[str | os.PathLike], out: str | os.PathLike):
        left, out = Path(left), Path(out)
        if right is None:
            self.jobs = [RectifyJob(p, out / "left" / f"{p.name}.png", out / "right" / f"{p.name}.png")
                         for p in find_pairs(left)]
        else:
            self.jobs = [RectifyJob(PairFiles(left.stem, left, Path(right)), out / "left.png",
                                    out / "right.png")]
        self.calibration_out = out / "calibration.json"

    def outputs(self) -> list[Path]:
        """Every file :meth:`run` writes (to check for existing ones before starting)."""
        return [self.calibration_out] + [path for job in self.jobs for path in (job.left_out, job.right_out)]

    def run(self, calibration: StereoCalibration, alpha: Optional[float] = None, overwrite: bool = False,
            progress: Optional[ProgressCallback] = None,
            cancel: Optional[CancelToken] = None) -> Iterator[RectifiedFiles]:
        """Rectify and write each pair, yielding it once written; the rectified calibration is
        written after the last. ``alpha`` recomputes the rectification with that scaling
        instead of using the file's own."""
        if alpha is not None:
            calibration = dataclasses.replace(calibration, R1=None, R2=None, P1=None, P2=None, Q=None)
        rectifier = None
        for index, job in enumerate(track(self.jobs, callback=progress, cancel=cancel)):
            pair = load_pair(job.files.left, job.files.right, name=job.files.name)
            if rectifier is None:
                rectifier = Rectifier(calibration, alpha=alpha or 0.0, image_size=pair.size)
            rectified = rectifier.rectify_pair(pair)
            write_image(job.left_out, rectified.left, overwrite=overwrite)
            write_image(job.right_out, rectified.right, overwrite=overwrite)
            offset, matches = None, 0
            if len(self.jobs) == 1:
                offset, matches = measure_rectification_error(rectified.left, rectified.right)
                if matches < MIN_MATCHES:
                    offset = None
            yield RectifiedFiles(job, index, rectifier, offset, matches)
        write_calibration(rectifier.calibration, self.calibration_out, overwrite=overwrite)
