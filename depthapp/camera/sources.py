"""Stereo frame sources: two cameras, a side-by-side camera, two video files, an image folder.

Every source is a :class:`FrameSource`: ``open()``, ``read()`` -> :class:`FramePair` or None at
a clean end, ``close()``, a context manager and an iterator, and ``stats()`` (capture FPS,
dropped frames, left/right timestamp skew, reconnects). The camera loop, the CLI and the viewer
cannot tell them apart.

Two timing models:

- **Lossless, consumer-paced** (video files and folders by default): ``read()`` returns the next
  pair in order however slow the consumer is; nothing is dropped. Timestamps are media times in
  seconds (the file's presentation times, or a folder's ``timestamps.csv``).
- **Live** (:class:`LiveSource`: cameras, and files with ``realtime=True``): one capture thread
  per stream keeps the newest few frames; ``read()`` hands out the newest *synchronised* pair
  (each frame matched with the other camera's frame nearest in time), and frames the consumer
  was too slow for are dropped and counted. Timestamps are ``time.monotonic()`` seconds. A
  stream whose grabber fails (camera unplugged) is reopened with exponential backoff; the
  ``on_status`` callback says when it is lost and when it is back.

A *grabber* is any callable returning one frame (an RGB array, or ``(array, timestamp)``) and
raising :class:`EndOfStream` at a clean end or any other exception when the device is lost; a
*grabber factory* opens one. Tests inject a video-file grabber that fails mid-stream.
"""

from __future__ import annotations

import collections
import csv
import math
import os
import stat
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import cv2
import numpy as np

from ..calibration.model import StereoCalibration
from ..data import StereoPair
from ..errors import InputError, UsageError

StatusCallback = Callable[[str], None]
DeviceSpec = Union[int, str]

TIMESTAMPS_FILE = "timestamps.csv"
VIDEO_EXTENSIONS = (".avi", ".mkv", ".mp4", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".nut",
                    ".wmv", ".flv", ".ts", ".mjpg", ".mjpeg", ".h264", ".hevc", ".ogv")
DEFAULT_FOLDER_FPS = 30.0


class EndOfStream(Exception):
    """Raised by a grabber at the clean end of its stream (end of a file)."""


class FrameTimeout(TimeoutError):
    """``read(timeout=...)`` saw no new pair in time (a live source that is waiting for frames)."""


@dataclass
class FramePair:
    """One stereo pair as captured, before rectification.

    Attributes:
        index: the pair's frame number in its source, 0-based (the left frame's capture number
            for live sources; gaps mean dropped frames).
        left, right: ``(H, W, 3)`` RGB uint8.
        t_left, t_right: capture times in seconds (media time for lossless sources,
            ``time.monotonic()`` for live ones).
        name: a label for messages and recordings.
    """

    index: int
    left: np.ndarray
    right: np.ndarray
    t_left: float
    t_right: float
    name: str = ""

    @property
    def skew(self) -> float:
        """``|t_left - t_right|`` in seconds: how far apart in time the two views were taken."""
        return abs(self.t_left - self.t_right)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return int(self.left.shape[1]), int(self.left.shape[0])

    def to_stereo_pair(self, calibration: Optional[StereoCalibration] = None) -> StereoPair:
        return StereoPair(self.left, self.right, calibration=calibration,
                          name=self.name or f"frame {self.index:06d}")


class RateMeter:
    """Events per second over a sliding window of recent events, plus the overall mean."""

    def __init__(self, window: float = 2.0, max_events: int = 240):
        self.window = window
        self._times: collections.deque[float] = collections.deque(maxlen=max_events)
        self.count = 0
        self.first: Optional[float] = None

    def tick(self, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        if self.first is None:
            self.first = now
        self._times.append(now)
        self.count += 1

    def rate(self, now: Optional[float] = None) -> float:
        """Events per second over the last ``window`` seconds (0 before two events)."""
        now = time.monotonic() if now is None else now
        recent = [t for t in self._times if now - t <= self.window]
        if len(recent) < 2:
            # Slower than one event per window: fall back to the last two events.
            recent = list(self._times)[-2:]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])

    def mean_rate(self) -> float:
        """Events per second from the first to the last event."""
        if self.count < 2 or not self._times or self._times[-1] <= (self.first or 0.0):
            return 0.0
        return (self.count - 1) / (self._times[-1] - self.first)


@dataclass
class SkewStats:
    """Left/right timestamp skew of the delivered pairs, in seconds."""

    last: float = 0.0
    maximum: float = 0.0
    total: float = 0.0
    count: int = 0

    def add(self, skew: float) -> None:
        self.last = skew
        self.maximum = max(self.maximum, skew)
        self.total += skew
        self.count += 1

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


@dataclass
class SourceStats:
    """A snapshot of a source's counters.

    Attributes:
        delivered: pairs returned by ``read()``.
        captured: frames captured per stream (``(left, right)``, or one entry for a
            side-by-side stream).
        dropped: frames per stream that were never delivered (live sources only).
        capture_fps: recent capture rate per stream (frames/s).
        skew: left/right timestamp skew of the delivered pairs.
        reconnects: how many times a lost stream came back.
        live: whether frames are dropped when the consumer is slow.
        state: "running", "reconnecting", "ended" or "closed".
    """

    delivered: int = 0
    captured: tuple[int, ...] = ()
    dropped: tuple[int, ...] = ()
    capture_fps: tuple[float, ...] = ()
    skew: SkewStats = field(default_factory=SkewStats)
    reconnects: int = 0
    live: bool = False
    state: str = "running"

    @property
    def total_dropped(self) -> int:
        return int(sum(self.dropped))


class FrameSource(ABC):
    """One interface for every stereo source; see the module docstring.

    Use as ``with source: for frame in source: ...`` or ``open()`` / ``read()`` / ``close()``.
    ``read(timeout)`` returns the next :class:`FramePair`, None at the end of the source (or after
    ``close()`` from another thread), and raises :class:`FrameTimeout` when ``timeout`` seconds
    pass without a pair (live sources waiting for a camera).
    """

    #: Whether frames are dropped when the consumer is slow.
    live: bool = False

    def __init__(self, description: str, on_status: Optional[StatusCallback] = None):
        self.description = description
        self.on_status = on_status
        self._skew = SkewStats()
        self._delivered = 0
        self._read_meter = RateMeter()
        self._is_open = False
        self._ended = False

    @property
    def nominal_fps(self) -> Optional[float]:
        """The frame rate the source claims (a file's FPS), or None if unknown."""
        return None

    @property
    def is_open(self) -> bool:
        return self._is_open

    def open(self) -> "FrameSource":
        if not self._is_open:
            self._open()
            self._is_open = True
        return self

    def close(self) -> None:
        if self._is_open:
            self._is_open = False
            self._close()

    def read(self, timeout: Optional[float] = None) -> Optional[FramePair]:
        if not self._is_open:
            self.open()
        if self._ended:
            return None
        frame = self._read(timeout)
        if frame is None:
            self._ended = True
            return None
        self._delivered += 1
        self._skew.add(frame.skew)
        self._read_meter.tick()
        return frame

    def stats(self) -> SourceStats:
        return SourceStats(delivered=self._delivered, captured=(self._delivered,),
                           dropped=(0,), capture_fps=(self._read_meter.rate(),),
                           skew=self._skew_copy(), live=self.live, state=self._state())

    def _skew_copy(self) -> SkewStats:
        return SkewStats(self._skew.last, self._skew.maximum, self._skew.total, self._skew.count)

    def _state(self) -> str:
        if self._ended:
            return "ended"
        return "running" if self._is_open else "closed"

    def _status(self, message: str) -> None:
        if self.on_status is not None:
            self.on_status(message)

    def __enter__(self) -> "FrameSource":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[FramePair]:
        while (frame := self.read()) is not None:
            yield frame

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"

    @abstractmethod
    def _open(self) -> None:
        """Acquire the files or devices; raise InputError naming the source if impossible."""

    @abstractmethod
    def _read(self, timeout: Optional[float]) -> Optional[FramePair]:
        """The next pair, or None at the end."""

    @abstractmethod
    def _close(self) -> None:
        """Release everything; safe to call from another thread while ``read`` waits."""


# Video files ---------------------------------------------------------------------------------

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
    from ..io.images import split_side_by_side

    return split_side_by_side(image, source=source)


# Image folders -------------------------------------------------------------------------------

def read_timestamps(folder: Union[str, os.PathLike]) -> dict[str, tuple[float, float]]:
    """``{frame name: (t_left, t_right)}`` from a recording's ``timestamps.csv``, or {} if absent."""
    path = Path(folder) / TIMESTAMPS_FILE
    if not path.exists():
        return {}
    times: dict[str, tuple[float, float]] = {}
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"frame", "t_left", "t_right"} - set(reader.fieldnames or ())
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            for line, row in enumerate(reader, start=2):
                try:
                    times[row["frame"]] = (float(row["t_left"]), float(row["t_right"]))
                except (TypeError, ValueError):
                    raise InputError(f"{path}: line {line}: t_left/t_right are not numbers") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from None
    return times


class ImageFolderSource(FrameSource):
    """Every pair of an image folder in name order (the layouts of :func:`depthapp.io.find_pairs`,
    including a recording's ``left/`` + ``right/`` + ``timestamps.csv``). Lossless.

    Timestamps come from ``timestamps.csv`` when the folder has one, else ``index / fps``.
    """

    def __init__(self, folder: Union[str, os.PathLike], fps: Optional[float] = None,
                 on_status: Optional[StatusCallback] = None):
        super().__init__(f"image folder {folder}", on_status)
        self.folder = Path(folder)
        self._fps = fps
        self._pairs: list = []
        self._times: dict[str, tuple[float, float]] = {}
        self._next = 0

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

    def __len__(self) -> int:
        return len(self._pairs)

    def _open(self) -> None:
        from ..io.pairs import find_pairs

        self._pairs = find_pairs(self.folder)
        self._times = read_timestamps(self.folder)
        self._next = 0

    def pair_time(self, index: int, name: str) -> tuple[float, float]:
        if name in self._times:
            return self._times[name]
        seconds = index / (self._fps or DEFAULT_FOLDER_FPS)
        return seconds, seconds

    def _read(self, timeout):
        from ..io.images import read_rgb

        if self._next >= len(self._pairs):
            return None
        files = self._pairs[self._next]
        left, right = read_rgb(files.left), read_rgb(files.right)
        if left.shape != right.shape:
            raise InputError(f"{files.right}: size {right.shape[1]}x{right.shape[0]} differs from "
                             f"{files.left} ({left.shape[1]}x{left.shape[0]})")
        t_left, t_right = self.pair_time(self._next, files.name)
        frame = FramePair(self._next, left, right, t_left, t_right, name=files.name)
        self._next += 1
        return frame

    def _close(self) -> None:
        pass


# Live capture --------------------------------------------------------------------------------

class PacingClock:
    """Replays media times in real time for several grabbers at once (a shared start, so two
    files stay in step); ``stop()`` wakes every sleeper."""

    def __init__(self):
        self._start: Optional[float] = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def due(self, media_time: float) -> float:
        """The ``time.monotonic()`` at which the frame at ``media_time`` is captured."""
        with self._lock:
            if self._start is None:
                self._start = time.monotonic() - media_time
            return self._start + media_time

    def wait(self, media_time: float) -> float:
        """Sleep until the frame at ``media_time`` is due; returns its due time."""
        due = self.due(media_time)
        delay = due - time.monotonic()
        if delay > 0:
            self._stopped.wait(delay)
        return due

    def stop(self) -> None:
        self._stopped.set()


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


def parse_device(spec: DeviceSpec) -> Union[int, str]:
    """A camera index (``0``, ``"1"``) or a device path (``/dev/video2``, ``/dev/v4l/by-id/...``)."""
    if isinstance(spec, int):
        return spec
    text = str(spec).strip()
    if text.isdigit():
        return int(text)
    return text


class DeviceGrabber:
    """A grabber over a camera through ``cv2.VideoCapture`` (V4L2 on Linux, MSMF/DSHOW on
    Windows, AVFoundation on macOS). ``width``/``height``/``fps`` are requested, and the
    driver's queue is shortened so frames are fresh; timestamps are ``time.monotonic()`` right
    after the grab."""

    def __init__(self, device: DeviceSpec, width: Optional[int] = None, height: Optional[int] = None,
                 fps: Optional[float] = None, fourcc: Optional[str] = None):
        self.device = parse_device(device)
        self.label = f"camera {device}"
        restore = _quiet_opencv()
        try:
            capture = cv2.VideoCapture(self.device)
        finally:
            restore()
        if not capture.isOpened():
            raise InputError(f"{self.label}: cannot open the camera (is it plugged in, and not "
                             "used by another program?)")
        if fourcc:
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc[:4].ljust(4)))
        if width:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            capture.set(cv2.CAP_PROP_FPS, fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.capture = capture
        measured = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(measured) if measured and math.isfinite(measured) and measured > 0 else None

    def __call__(self) -> tuple[np.ndarray, float]:
        if self.capture is None or not self.capture.grab():
            raise OSError(f"{self.label}: no frame (disconnected?)")
        stamp = time.monotonic()
        ok, frame = self.capture.retrieve()
        if not ok or frame is None:
            raise OSError(f"{self.label}: frame could not be decoded")
        return _bgr_to_rgb(frame), stamp

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None


Grabber = Callable[[], Any]
GrabberFactory = Callable[[], Grabber]


@dataclass
class _Captured:
    seq: int
    image: Any
    stamp: Any


class _Stream:
    """One capture thread's state (guarded by the source's condition)."""

    def __init__(self, name: str, factory: GrabberFactory, buffer: int):
        self.name = name
        self.factory = factory
        self.grabber: Optional[Grabber] = None
        self.frames: collections.deque[_Captured] = collections.deque(maxlen=buffer)
        self.seq = 0
        self.last_used = 0
        self.dropped = 0
        self.meter = RateMeter()
        self.ended = False
        self.lost = False
        self.failure: Optional[BaseException] = None
        self.reconnects = 0
        self.thread: Optional[threading.Thread] = None

    def fresh(self) -> list[_Captured]:
        return [f for f in self.frames if f.seq > self.last_used]

    def period(self) -> Optional[float]:
        """Median time between the buffered frames, or None with fewer than two."""
        stamps = [f.stamp for f in self.frames]
        gaps = [b - a for a, b in zip(stamps, stamps[1:]) if b > a]
        if not gaps:
            return None
        gaps.sort()
        return gaps[len(gaps) // 2]


def _close_grabber(grabber) -> None:
    close = getattr(grabber, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # a lost device may fail to release; nothing left to do with it
            pass


class LiveSource(FrameSource):
    """Threaded capture from one or two grabbers, handing out the newest synchronised pair.

    Args:
        streams: one grabber factory per stream: ``[left, right]`` for two cameras, or one for a
            side-by-side camera (its frames are split by ``split``).
        split: turns a single stream's frame into ``(left, right)``; default: split the frame
            down the middle. Ignored with two streams.
        description: for messages ("cameras 0 + 1").
        names: stream names for status messages (default "left"/"right" or "camera").
        on_status: called (from capture threads) with one-line messages: lost, reconnecting,
            back after N s.
        buffer: frames kept per stream for matching (older ones are dropped).
        backoff: ``(first, longest)`` wait in seconds between reconnect attempts (doubling).
        give_up_after: seconds a lost stream may stay lost before ``read()`` raises InputError;
            None waits forever (the user stops with Ctrl-C).
        nominal_fps: the rate the grabbers claim, if known.

    The factories are called once in ``open()``; an error there (no such camera) is raised to
    the caller. After that, a grabber that raises anything but :class:`EndOfStream` counts as a
    lost device: it is closed and its factory is called again, with backoff, until it works.
    """

    live = True

    def __init__(self, streams: Sequence[GrabberFactory], split: Optional[Callable] = None,
                 description: str = "live source", names: Optional[Sequence[str]] = None,
                 on_status: Optional[StatusCallback] = None, buffer: int = 8,
                 backoff: tuple[float, float] = (0.05, 2.0), give_up_after: Optional[float] = None,
                 nominal_fps: Optional[float] = None, on_close: Optional[Callable[[], None]] = None):
        super().__init__(description, on_status)
        if len(streams) not in (1, 2):
            raise ValueError(f"LiveSource takes one or two streams, got {len(streams)}")
        default_names = ("left", "right") if len(streams) == 2 else ("camera",)
        names = list(names or default_names)
        self._streams = [_Stream(name, factory, max(2, buffer)) for name, factory in zip(names, streams)]
        self._split = split
        self._backoff = backoff
        self._give_up_after = give_up_after
        self._nominal_fps = nominal_fps
        self._on_close = on_close
        self._condition = threading.Condition()
        self._stopping = threading.Event()
        self._pairs = 0

    @property
    def nominal_fps(self) -> Optional[float]:
        if self._nominal_fps:
            return self._nominal_fps
        fps = [getattr(s.grabber, "fps", None) for s in self._streams]
        fps = [f for f in fps if f]
        return min(fps) if fps else None

    def _open(self) -> None:
        for stream in self._streams:
            stream.frames.clear()
            stream.ended = stream.lost = False
            stream.failure = None
            stream.last_used = stream.seq
        opened = []
        try:
            for stream in self._streams:
                stream.grabber = stream.factory()
                opened.append(stream)
        except Exception:
            for stream in opened:
                _close_grabber(stream.grabber)
                stream.grabber = None
            raise
        self._stopping.clear()
        for stream in self._streams:
            stream.thread = threading.Thread(target=self._capture, args=(stream,),
                                             name=f"depthapp-capture-{stream.name}", daemon=True)
            stream.thread.start()

    # Capture threads ---------------------------------------------------------------------
    def _capture(self, stream: _Stream) -> None:
        grabber = stream.grabber
        while not self._stopping.is_set():
            try:
                output = grabber()
            except EndOfStream:
                break
            except Exception as error:  # the device is lost: whatever it raised, reopen it
                if self._stopping.is_set():
                    break
                _close_grabber(grabber)
                grabber = self._reconnect(stream, error)
                if grabber is None:
                    break
                continue
            image, stamp = output if isinstance(output, tuple) and len(output) == 2 \
                and not isinstance(output[1], np.ndarray) else (output, None)
            now = time.monotonic()
            with self._condition:
                if len(stream.frames) == stream.frames.maxlen and stream.frames[0].seq > stream.last_used:
                    stream.dropped += 1  # evicted before anyone asked for it
                stream.seq += 1
                stream.frames.append(_Captured(stream.seq, image, now if stamp is None else stamp))
                stream.meter.tick(now)
                self._condition.notify_all()
        _close_grabber(grabber)
        with self._condition:
            stream.grabber = None
            stream.ended = True
            self._condition.notify_all()

    def _reconnect(self, stream: _Stream, error: BaseException):
        lost_at = time.monotonic()
        with self._condition:
            stream.lost = True
            stream.grabber = None
        self._status(f"{stream.name}: lost ({error}); reconnecting")
        delay, longest = self._backoff
        attempts = 0
        last_report = lost_at
        while not self._stopping.is_set():
            if self._give_up_after is not None and time.monotonic() - lost_at > self._give_up_after:
                with self._condition:
                    stream.failure = InputError(
                        f"{stream.name}: lost ({error}) and not back after {self._give_up_after:g} s")
                    self._condition.notify_all()
                return None
            if self._stopping.wait(delay):
                return None
            attempts += 1
            try:
                grabber = stream.factory()
            except Exception as retry_error:
                delay = min(longest, delay * 2)
                if time.monotonic() - last_report >= 5.0:
                    last_report = time.monotonic()
                    self._status(f"{stream.name}: still reconnecting (attempt {attempts}: {retry_error})")
                continue
            if self._stopping.is_set():
                _close_grabber(grabber)
                return None
            with self._condition:
                stream.lost = False
                stream.reconnects += 1
                stream.grabber = grabber
            self._status(f"{stream.name}: reconnected after {time.monotonic() - lost_at:.1f} s "
                         f"({attempts} attempt{'s' if attempts != 1 else ''})")
            return grabber
        return None

    # Pairing ---------------------------------------------------------------------------------
    def _take_pair(self) -> Optional[FramePair]:
        """The newest synchronised pair of fresh frames, or None if one side has none yet."""
        if len(self._streams) == 1:
            stream = self._streams[0]
            fresh = stream.fresh()
            if not fresh:
                return None
            newest = fresh[-1]
            stream.dropped += len(fresh) - 1
            stream.last_used = newest.seq
            split = self._split or (lambda image: split_frame(image, self.description))
            left, right = split(newest.image)
            stamp = newest.stamp
            t_left, t_right = stamp if isinstance(stamp, tuple) else (stamp, stamp)
            return FramePair(newest.seq - 1, np.asarray(left), np.asarray(right), float(t_left),
                             float(t_right), name=f"frame {newest.seq - 1:06d}")
        left_stream, right_stream = self._streams
        fresh_left, fresh_right = left_stream.fresh(), right_stream.fresh()
        if not fresh_left or not fresh_right:
            return None
        # Anchor on the side whose newest frame is older: the other side holds the frame taken
        # nearest to it (a later frame of the anchor side may still be missing its partner).
        if fresh_left[-1].stamp <= fresh_right[-1].stamp:
            anchor_stream, anchor, partners = left_stream, fresh_left[-1], fresh_right
        else:
            anchor_stream, anchor, partners = right_stream, fresh_right[-1], fresh_left
        partner = min(partners, key=lambda f: (abs(f.stamp - anchor.stamp), -f.seq))
        # A partner taken more than half a frame after the anchor is nearer to the anchor
        # camera's next frame, which is due any moment: wait for it rather than pair badly.
        period = anchor_stream.period()
        if period is not None and partner.stamp - anchor.stamp > period / 2:
            if anchor_stream.ended:  # no next frame will come: this one has no partner
                anchor_stream.dropped += len([f for f in anchor_stream.fresh() if f.seq <= anchor.seq])
                anchor_stream.last_used = anchor.seq
            return None
        chosen_left, chosen_right = (anchor, partner) if anchor_stream is left_stream else (partner, anchor)
        for stream, chosen, fresh in ((left_stream, chosen_left, fresh_left),
                                      (right_stream, chosen_right, fresh_right)):
            stream.dropped += sum(1 for f in fresh if f.seq < chosen.seq)
            stream.last_used = chosen.seq
        return FramePair(chosen_left.seq - 1, np.asarray(chosen_left.image),
                         np.asarray(chosen_right.image), float(chosen_left.stamp),
                         float(chosen_right.stamp), name=f"frame {chosen_left.seq - 1:06d}")

    def _read(self, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while True:
                if self._stopping.is_set():
                    return None
                for stream in self._streams:
                    if stream.failure is not None:
                        raise stream.failure
                frame = self._take_pair()
                if frame is not None:
                    if frame.left.shape != frame.right.shape:
                        raise InputError(f"{self.description}: left frames are "
                                         f"{frame.left.shape[1]}x{frame.left.shape[0]}, right "
                                         f"{frame.right.shape[1]}x{frame.right.shape[0]}")
                    return frame
                if any(stream.ended and not stream.fresh() for stream in self._streams):
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise FrameTimeout(f"{self.description}: no new frames for {timeout:g} s")
                self._condition.wait(remaining)

    def _close(self) -> None:
        self._stopping.set()
        if self._on_close is not None:
            self._on_close()
        with self._condition:
            self._condition.notify_all()
        for stream in self._streams:
            if stream.thread is not None:
                # A thread blocked inside a driver read returns on its own; do not hang on it.
                stream.thread.join(timeout=2.0)
                stream.thread = None

    def stats(self) -> SourceStats:
        with self._condition:
            now = time.monotonic()
            if self._stopping.is_set() and not self._is_open:
                state = "closed"
            elif any(s.lost for s in self._streams):
                state = "reconnecting"
            elif self._ended or any(s.ended for s in self._streams):
                state = "ended"
            else:
                state = "running"
            return SourceStats(
                delivered=self._delivered,
                captured=tuple(s.seq for s in self._streams),
                dropped=tuple(s.dropped for s in self._streams),
                capture_fps=tuple(s.meter.rate(now) for s in self._streams),
                skew=self._skew_copy(), reconnects=sum(s.reconnects for s in self._streams),
                live=True, state=state)


# Building sources from user specifications ----------------------------------------------------

def _looks_like_device(text: str) -> bool:
    if text.isdigit() or text.startswith(("/dev/video", "/dev/v4l/")):
        return True
    try:
        return stat.S_ISCHR(os.stat(text).st_mode)
    except OSError:
        return False


def describe_kind(spec: str) -> str:
    """``device``, ``video``, ``folder`` or ``missing`` for a ``--left``/``--right``/``--sbs`` value."""
    text = str(spec).strip()
    if _looks_like_device(text):
        return "device"
    path = Path(text)
    if path.is_dir():
        return "folder"
    if path.exists():
        return "video"
    return "missing"


def open_source(left: Optional[str] = None, right: Optional[str] = None, sbs: Optional[str] = None,
                folder: Optional[str] = None, realtime: bool = False,
                on_status: Optional[StatusCallback] = None, width: Optional[int] = None,
                height: Optional[int] = None, fps: Optional[float] = None,
                fourcc: Optional[str] = None) -> FrameSource:
    """Build the right source from what the user named (not opened yet).

    - ``left`` + ``right``: two cameras (index or ``/dev/videoN``), two video files, or two
      image folders with the same file names.
    - ``sbs``: a side-by-side camera or video file.
    - ``folder``: an image folder (any :func:`depthapp.io.find_pairs` layout, or a recording).

    Cameras are always live. Files and folders are lossless unless ``realtime`` asks them to
    emulate a camera (paced by their FPS, frames dropped when the consumer is slow).
    ``width``/``height``/``fps``/``fourcc`` are requested from cameras.
    """
    given = [name for name, value in (("--left/--right", left or right), ("--sbs", sbs),
                                      ("--folder", folder)) if value]
    if len(given) != 1:
        raise UsageError("give one source: --left SRC --right SRC, --sbs SRC or --folder DIR")
    if (left or right) and not (left and right):
        raise UsageError("--left and --right go together (use --sbs for a side-by-side source)")
    device_options = dict(width=width, height=height, fps=fps, fourcc=fourcc)

    if sbs:
        kind = describe_kind(sbs)
        if kind == "device":
            doubled = dict(device_options, width=width * 2 if width else None)
            return LiveSource([lambda: DeviceGrabber(sbs, **doubled)], description=f"side-by-side camera {sbs}",
                              on_status=on_status, nominal_fps=fps)
        if kind == "missing":
            raise InputError(f"{sbs}: no such file or camera")
        if kind == "folder":
            raise UsageError(f"--sbs {sbs}: is a folder; use --folder for a folder of pairs")
        if realtime:
            clock = PacingClock()
            return LiveSource([lambda: VideoFileGrabber(sbs, clock)], description=f"side-by-side video {sbs}",
                              on_status=on_status, on_close=clock.stop)
        return SideBySideVideoSource(sbs, on_status=on_status)

    if folder:
        if not Path(folder).is_dir():
            raise InputError(f"{folder}: not a folder")
        return _folder_source(folder, realtime, on_status)

    kinds = (describe_kind(left), describe_kind(right))
    for spec, kind in zip((left, right), kinds):
        if kind == "missing":
            raise InputError(f"{spec}: no such file or camera")
    if kinds == ("device", "device"):
        return LiveSource([lambda: DeviceGrabber(left, **device_options),
                           lambda: DeviceGrabber(right, **device_options)],
                          description=f"cameras {left} + {right}", on_status=on_status, nominal_fps=fps)
    if kinds == ("video", "video"):
        if realtime:
            clock = PacingClock()
            return LiveSource([lambda: VideoFileGrabber(left, clock), lambda: VideoFileGrabber(right, clock)],
                              description=f"video files {left} + {right} (realtime)",
                              on_status=on_status, on_close=clock.stop)
        return VideoFilesSource(left, right, on_status=on_status)
    if kinds == ("folder", "folder"):
        return _two_folder_source(left, right, realtime, on_status)
    raise UsageError(f"--left is a {kinds[0]} and --right a {kinds[1]}; give two of the same kind")


def _folder_source(folder, realtime, on_status) -> FrameSource:
    if realtime:
        clock = PacingClock()
        return LiveSource([lambda: FolderPairGrabber(folder, clock)], split=lambda pair: pair,
                          description=f"image folder {folder} (realtime)", on_status=on_status,
                          on_close=clock.stop)
    return ImageFolderSource(folder, on_status=on_status)


def _two_folder_source(left, right, realtime, on_status) -> FrameSource:
    """Two folders of images paired by file name, e.g. ``rec/left`` + ``rec/right``."""
    left_dir, right_dir = Path(left).resolve(), Path(right).resolve()
    if left_dir.parent == right_dir.parent and (left_dir.name, right_dir.name) in _subfolder_pairs():
        return _folder_source(str(left_dir.parent), realtime, on_status)
    raise UsageError(f"--left {left} --right {right}: two folders are read as one recording; "
                     "pass their parent with --folder DIR (left/ + right/ or another layout "
                     "depthapp.io.find_pairs knows)")


def _subfolder_pairs():
    from ..io.pairs import SUBFOLDER_PAIRS

    return SUBFOLDER_PAIRS


__all__ = ["DeviceGrabber", "EndOfStream", "FolderPairGrabber", "FramePair", "FrameSource",
           "FrameTimeout", "ImageFolderSource", "LiveSource", "PacingClock", "RateMeter",
           "SideBySideVideoSource", "SkewStats", "SourceStats", "VideoFileGrabber",
           "VideoFilesSource", "VideoReader", "describe_kind", "open_source", "parse_device",
           "read_timestamps"]
