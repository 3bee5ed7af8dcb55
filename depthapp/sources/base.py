"""Stereo sources, one stage of the data flow: source -> pair -> backend -> result -> sinks.


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

Sources that can be indexed (a folder, a video, a dataset: the viewer steps back and forth,
evaluation and training pick samples) are also a :class:`PairSequence`: ``len()``,
``load(index)`` -> :class:`~depthapp.data.StereoPair` (with ground truth and calibration when the
source has them), ``label(index)``, ``close()``.

A *grabber* is any callable returning one frame (an RGB array, or ``(array, timestamp)``) and
raising :class:`EndOfStream` at a clean end or any other exception when the device is lost; a
*grabber factory* opens one. Tests inject a video-file grabber that fails mid-stream.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import numpy as np

from ..calibration.model import StereoCalibration
from ..data import StereoPair
from ..errors import InputError
from .clock import RateMeter

StatusCallback = Callable[[str], None]


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

    def __iter__(self) -> Iterator[StereoPair]:
        return (self.load(index) for index in range(len(self)))

    def frames(self, fps: Optional[float] = None) -> "SequenceSource":
        """These pairs as a lossless :class:`FrameSource` (to feed the camera loop); closing the
        stream closes this sequence."""
        return SequenceSource(lambda: self, self.description, fps=fps)


class SequenceSource(FrameSource):
    """A :class:`PairSequence` read in order as a lossless, consumer-paced :class:`FrameSource`,
    so any indexable source (a folder, a video, a dataset) also streams. Pair ``i`` is taken at
    ``i / fps`` seconds (``fps`` default :data:`DEFAULT_FOLDER_FPS`) unless :meth:`pair_time`
    knows better. ``open_sequence()`` is called by ``open()``, so a missing folder fails there."""

    def __init__(self, open_sequence: Callable[[], PairSequence], description: str,
                 fps: Optional[float] = None, on_status: Optional[StatusCallback] = None):
        super().__init__(description, on_status)
        self._open_sequence = open_sequence
        self._fps = fps
        self.sequence: Optional[PairSequence] = None
        self._next = 0

    @property
    def nominal_fps(self) -> Optional[float]:
        return self._fps

    def __len__(self) -> int:
        return len(self.sequence) if self.sequence is not None else 0

    def pair_time(self, index: int, name: str) -> tuple[float, float]:
        """``(t_left, t_right)`` of pair ``index`` in seconds."""
        seconds = index / (self._fps or DEFAULT_FOLDER_FPS)
        return seconds, seconds

    def _open(self) -> None:
        self.sequence = self._open_sequence()
        self._next = 0

    def _read(self, timeout):
        if self._next >= len(self.sequence):
            return None
        pair = self.sequence.load(self._next)
        t_left, t_right = self.pair_time(self._next, pair.name)
        frame = FramePair(self._next, pair.left, pair.right, t_left, t_right, name=pair.name)
        self._next += 1
        return frame

    def _close(self) -> None:
        if self.sequence is not None:
            self.sequence.close()
