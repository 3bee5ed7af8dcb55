"""Image folders: every pair of a folder, in name order, lossless or paced like a camera."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

from ..data import StereoPair
from .base import EndOfStream, PairSequence, SequenceSource, StatusCallback
from .clock import PacingClock
from .files import PairFiles, find_pairs, load_pair_files
from .recording import read_timestamps


class ImageFolderSource(SequenceSource):
    """Every pair of an image folder in name order (the layouts of :func:`depthapp.sources.find_pairs`,
    including a recording's ``left/`` + ``right/`` + ``timestamps.csv``). Lossless.

    Timestamps come from ``timestamps.csv`` when the folder has one, else ``index / fps``.
    """

    def __init__(self, folder: Union[str, os.PathLike], fps: Optional[float] = None,
                 on_status: Optional[StatusCallback] = None):
        super().__init__(lambda: FolderSequence(folder), f"image folder {folder}", fps, on_status)
        self.folder = Path(folder)
        self._times: dict[str, tuple[float, float]] = {}

    @property
    def nominal_fps(self) -> Optional[float]:
        if self._fps:
            return self._fps
        if len(self._times) >= 2:
            starts = sorted(min(t) for t in self._times.values())
            span = starts[-1] - starts[0]
            if span > 0:
                return (len(starts) - 1) / span
        return None

    def _open(self) -> None:
        super()._open()
        self._times = read_timestamps(self.folder)

    def pair_time(self, index: int, name: str) -> tuple[float, float]:
        if name in self._times:
            return self._times[name]
        return super().pair_time(index, name)


class FolderPairGrabber:
    """A grabber over an image folder for realtime emulation: returns ``((left, right), t)``
    paced by the folder's timestamps (or ``fps``)."""

    def __init__(self, folder: Union[str, os.PathLike], clock: PacingClock, fps: Optional[float] = None):
        self.source = ImageFolderSource(folder, fps=fps).open()
        self.clock = clock

    def __call__(self):
        frame = self.source.read()
        if frame is None:
            raise EndOfStream(str(self.source.folder))
        due = self.clock.wait(min(frame.t_left, frame.t_right))
        offset = due - min(frame.t_left, frame.t_right)
        return (frame.left, frame.right), (frame.t_left + offset, frame.t_right + offset)

    def close(self) -> None:
        self.source.close()


class FolderSequence(PairSequence):
    """The pairs :func:`depthapp.sources.find_pairs` finds in a folder. Middlebury scene folders also
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
