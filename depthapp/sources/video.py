"""Video files: the one decoder every source and the viewer use, and the video sources."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np

from ..data import StereoPair
from ..errors import InputError
from ..io.images import split_side_by_side
from .base import EndOfStream, FramePair, FrameSource, PairSequence, StatusCallback
from .clock import PacingClock


VIDEO_EXTENSIONS = (".avi", ".mkv", ".mp4", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".nut",
                    ".wmv", ".flv", ".ts", ".mjpg", ".mjpeg", ".h264", ".hevc", ".ogv")


def _quiet_opencv():
    """OpenCV logs a WARN line for every backend it tries on a bad path; our errors say it once."""
    try:
        from cv2.utils import logging as cv_logging

        previous = cv_logging.getLogLevel()
        cv_logging.setLogLevel(cv_logging.LOG_LEVEL_ERROR)
        return lambda: cv_logging.setLogLevel(previous)
    except (ImportError, AttributeError):
        return lambda: None


def _bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


class VideoReader:
    """Decode a video file frame by frame as RGB with its presentation time (seconds)."""

    def __init__(self, path: Union[str, os.PathLike], start_frame: int = 0):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a folder, expected a video file")
        restore = _quiet_opencv()
        try:
            self._capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
            if not self._capture.isOpened():
                self._capture = cv2.VideoCapture(str(self.path))
        finally:
            restore()
        if not self._capture.isOpened():
            raise InputError(f"{self.path}: not a readable video file")
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps: Optional[float] = float(fps) if fps and math.isfinite(fps) and 0 < fps < 1000 else None
        count = self._capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count: Optional[int] = int(count) if count and count > 0 else None
        self.position = 0
        for _ in range(start_frame):
            if self.read() is None:
                break

    def read(self) -> Optional[tuple[np.ndarray, float]]:
        """``(rgb (H, W, 3) uint8, seconds)`` of the next frame, or None at the end."""
        if self._capture is None:
            return None
        ok, frame = self._capture.read()
        if not ok or frame is None:
            return None
        milliseconds = self._capture.get(cv2.CAP_PROP_POS_MSEC)
        if self.fps and not (milliseconds and math.isfinite(milliseconds)) and self.position:
            # Some containers report no presentation times: fall back to the nominal rate.
            seconds = self.position / self.fps
        else:
            seconds = (milliseconds or 0.0) / 1000.0
        self.position += 1
        return _bgr_to_rgb(frame), seconds

    def seek(self, index: int) -> None:
        """Make frame ``index`` (0-based) the next one :meth:`read` returns."""
        self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        self.position = index

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class VideoFilesSource(FrameSource):
    """Two video files, left and right, read in lockstep: frame ``i`` with frame ``i``.

    Lossless and consumer-paced. Ends cleanly when either file ends (a length mismatch is
    reported through ``on_status``). Skew is the difference of the two presentation times.
    """

    def __init__(self, left: Union[str, os.PathLike], right: Union[str, os.PathLike],
                 on_status: Optional[StatusCallback] = None):
        super().__init__(f"video files {left} + {right}", on_status)
        self.left_path, self.right_path = Path(left), Path(right)
        self._readers: list[VideoReader] = []

    @property
    def nominal_fps(self) -> Optional[float]:
        return self._readers[0].fps if self._readers else None

    def _open(self) -> None:
        left = VideoReader(self.left_path)
        try:
            right = VideoReader(self.right_path)
        except Exception:
            left.close()
            raise
        self._readers = [left, right]

    def _read(self, timeout):
        left_reader, right_reader = self._readers
        left, right = left_reader.read(), right_reader.read()
        if left is None or right is None:
            if (left is None) != (right is None):
                shorter = self.left_path if left is None else self.right_path
                self._status(f"{shorter} ended first, after {self._delivered} frames")
            return None
        (left_image, t_left), (right_image, t_right) = left, right
        if left_image.shape != right_image.shape:
            raise InputError(f"{self.right_path}: frames are {right_image.shape[1]}x{right_image.shape[0]}, "
                             f"{self.left_path} {left_image.shape[1]}x{left_image.shape[0]}")
        index = left_reader.position - 1
        return FramePair(index, left_image, right_image, t_left, t_right,
                         name=f"{self.left_path.stem} {index:06d}")

    def _close(self) -> None:
        for reader in self._readers:
            reader.close()


class SideBySideVideoSource(FrameSource):
    """One video file whose frames hold the left view in the left half and the right view in
    the right half (ZED, ELP and most UVC stereo cameras record this way). Lossless."""

    def __init__(self, path: Union[str, os.PathLike], on_status: Optional[StatusCallback] = None):
        super().__init__(f"side-by-side video {path}", on_status)
        self.path = Path(path)
        self._reader: Optional[VideoReader] = None

    @property
    def nominal_fps(self) -> Optional[float]:
        return self._reader.fps if self._reader else None

    def _open(self) -> None:
        self._reader = VideoReader(self.path)

    def _read(self, timeout):
        item = self._reader.read()
        if item is None:
            return None
        image, seconds = item
        left, right = split_frame(image, str(self.path))
        index = self._reader.position - 1
        return FramePair(index, left, right, seconds, seconds, name=f"{self.path.stem} {index:06d}")

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def split_frame(image: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    return split_side_by_side(image, source=source)


class VideoFileGrabber:
    """A grabber over a video file: frames at the file's pace when given a :class:`PacingClock`
    (a file emulating a camera), else as fast as asked. Timestamps are the due times
    (``time.monotonic()``) with a clock, media times without. Raises :class:`EndOfStream` at
    the end of the file.

    ``start_frame`` skips frames, so a test grabber can reopen a file where it failed.
    """

    def __init__(self, path: Union[str, os.PathLike], clock: Optional[PacingClock] = None,
                 start_frame: int = 0):
        self.reader = VideoReader(path, start_frame=start_frame)
        self.clock = clock

    @property
    def fps(self) -> Optional[float]:
        return self.reader.fps

    @property
    def position(self) -> int:
        """Frames of the file consumed so far (the next frame's index)."""
        return self.reader.position

    def __call__(self) -> tuple[np.ndarray, float]:
        item = self.reader.read()
        if item is None:
            raise EndOfStream(str(self.reader.path))
        image, seconds = item
        if self.clock is not None:
            seconds = self.clock.wait(seconds)
        return image, seconds

    def close(self) -> None:
        self.reader.close()


class VideoSequence(PairSequence):
    """Frames of one side-by-side video (each frame split in two), or of two synchronised
    videos (left, right), for stepping back and forth (the viewer)."""

    def __init__(self, left: Union[str, os.PathLike], right: Optional[Union[str, os.PathLike]] = None):
        self.paths = [Path(left)] + ([Path(right)] if right is not None else [])
        self.description = " + ".join(str(p) for p in self.paths)
        self._readers: list[VideoReader] = []
        try:
            for path in self.paths:
                reader = VideoReader(path)
                self._readers.append(reader)
                if not reader.frame_count:
                    raise InputError(f"{path}: the video reports no frames")
        except Exception:
            self.close()
            raise
        self._count = min(reader.frame_count for reader in self._readers)
        self._next = [0] * len(self._readers)  # the frame each decoder would read next

    def __len__(self) -> int:
        return self._count

    def label(self, index: int) -> str:
        return f"frame {index + 1}/{len(self)}"

    def _frame(self, which: int, index: int) -> np.ndarray:
        reader = self._readers[which]
        if self._next[which] != index:  # seeking is slow; sequential stepping reads on
            reader.seek(index)
        item = reader.read()
        if item is None:
            self._next[which] = -1
            raise InputError(f"{self.paths[which]}: cannot decode frame {index + 1}")
        self._next[which] = index + 1
        return item[0]

    def load(self, index: int) -> StereoPair:
        self._check(index)
        name = f"{self.paths[0].stem}#{index + 1:06d}"
        if len(self._readers) == 1:
            left, right = split_frame(self._frame(0, index), str(self.paths[0]))
        else:
            left, right = self._frame(0, index), self._frame(1, index)
        return StereoPair(left, right, name=name)

    def close(self) -> None:
        for reader in self._readers:
            reader.close()
        self._readers = []
