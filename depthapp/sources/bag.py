"""A ROS bag as a stereo source: every left/right pair whose header stamps agree, in order.

Registered as the ``bag`` source kind, so ``open_source(folder=...)`` / ``--folder`` and
``--sbs`` take a bag too; ``depthapp camera --bag`` also names its topics and tolerance. Bag
reading and the message conversions live in :mod:`depthapp.robotics` (rosbags, optional).

Lossless and consumer-paced like a video file. Left and right frames are paired by header
stamp within ``tolerance`` seconds; a frame whose partner never comes (a dropped frame in the
recording) is skipped and counted in ``stats().dropped``, and the skew of each delivered pair is
the difference of its two stamps, as for a live camera. The calibration comes from the two
``camera_info`` topics beside the images (``calibration``), unless the caller gives one.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from ..calibration.model import StereoCalibration
from ..calibration.ros import stereo_from_camera_infos
from ..errors import InputError, UsageError
from ..robotics import DEFAULT_SYNC_TOLERANCE
from ..robotics.bags import OpenBag, StereoTopics, find_stereo_topics, looks_like_bag
from ..robotics.messages import (camera_info_from_message, image_to_array, mono16_shift, stamp_ns,
                                 to_rgb8)
from .base import FramePair, FrameSource, SourceStats, StatusCallback
from .opener import SourceKind, register_source_kind



@dataclass
class BagFramePair(FramePair):
    """A pair from a bag: also its exact header stamps (ns) and the cameras' frame ids."""

    stamp_left: int = 0
    stamp_right: int = 0
    frame_ids: tuple[str, str] = ("", "")

    @property
    def skew(self) -> float:
        """Stamp difference from the exact nanosecond stamps (float seconds since 1970 lose
        the microseconds)."""
        return abs(self.stamp_left - self.stamp_right) / 1e9


@dataclass
class Stamped:
    """One image message waiting for its partner."""

    stamp: int
    log_time: int
    frame_id: str
    message: Any
    msgtype: str


class StampMatcher:
    """Pairs left and right frames whose header stamps differ by at most ``tolerance_ns``.

    Frames arrive in log order. When the two oldest waiting frames are too far apart the older
    one can never be paired (the other side only gets later), so it is dropped and counted.
    """

    def __init__(self, tolerance_ns: int, on_drop=None):
        self.tolerance_ns = tolerance_ns
        self.queues = {"left": collections.deque(), "right": collections.deque()}
        self.received = {"left": 0, "right": 0}
        self.dropped = {"left": 0, "right": 0}
        self.on_drop = on_drop

    def add(self, side: str, item: Stamped) -> Optional[tuple[Stamped, Stamped]]:
        """Queue a frame; return the pair it completes, if any."""
        self.received[side] += 1
        self.queues[side].append(item)
        left, right = self.queues["left"], self.queues["right"]
        while left and right:
            if abs(left[0].stamp - right[0].stamp) <= self.tolerance_ns:
                return left.popleft(), right.popleft()
            older = "left" if left[0].stamp < right[0].stamp else "right"
            lonely = self.queues[older].popleft()
            self.dropped[older] += 1
            if self.on_drop is not None:
                self.on_drop(older, lonely)
        return None

    def finish(self) -> None:
        """The stream ended: whatever still waits has no partner."""
        for side, queue in self.queues.items():
            self.dropped[side] += len(queue)
            queue.clear()


def read_stamped(bag: OpenBag, topics: StereoTopics, start: Optional[int] = None,
                 stop: Optional[int] = None) -> Iterator[tuple[str, Stamped]]:
    """``(side, frame)`` for each image message of the two topics, in log order."""
    for topic, msgtype, log_time, message in bag.messages([topics.left, topics.right], start, stop):
        side = "left" if topic == topics.left else "right"
        frame_id = str(getattr(getattr(message, "header", None), "frame_id", ""))
        yield side, Stamped(stamp_ns(message), log_time, frame_id, message, msgtype)


def decode_pair(path: Path, topics: StereoTopics, left: Stamped, right: Stamped,
                shift: Optional[int]) -> tuple[np.ndarray, np.ndarray, int]:
    """Both images as RGB uint8 (16-bit images shifted by ``shift``, chosen from this pair
    when None) and the shift used."""
    left_image = image_to_array(left.message, left.msgtype, f"{path}: {topics.left}")
    right_image = image_to_array(right.message, right.msgtype, f"{path}: {topics.right}")
    if left_image.shape != right_image.shape:
        raise InputError(f"{path}: left images are {left_image.shape[1]}x{left_image.shape[0]}, "
                         f"right {right_image.shape[1]}x{right_image.shape[0]}")
    if left_image.dtype == np.uint16:
        shift = mono16_shift(left_image, right_image) if shift is None else shift
        left_image, right_image = to_rgb8(left_image, shift), to_rgb8(right_image, shift)
    return left_image, right_image, shift or 0


def read_bag_calibration(bag: OpenBag, topics: StereoTopics) -> Optional[StereoCalibration]:
    """The rig from the first message of each ``camera_info`` topic, or None without them."""
    if not (topics.left_info and topics.right_info):
        return None
    found: dict[str, Any] = {}
    for topic, _, _, message in bag.messages([topics.left_info, topics.right_info]):
        found.setdefault(topic, message)
        if len(found) == 2:
            break
    if len(found) < 2:
        return None
    path = bag.path
    left = camera_info_from_message(found[topics.left_info], f"{path}: {topics.left_info}")
    right = camera_info_from_message(found[topics.right_info], f"{path}: {topics.right_info}")
    return stereo_from_camera_infos(left, right, rectified=topics.rectified,
                                    source=f"{path} ({topics.left_info} + {topics.right_info})")


def effective_calibration(given: Optional[StereoCalibration], from_bag: Optional[StereoCalibration],
                          topics: StereoTopics) -> Optional[StereoCalibration]:
    """``--calib`` wins over the bag's camera_info. A ROS YAML (which describes the raw
    cameras) given for ``image_rect`` topics describes their rectified images through P."""
    if given is None:
        return from_bag
    if given.extra.get("format") == "ros" and topics.rectified and not given.rectified:
        return dataclasses.replace(given, rectified=True)
    return given


class BagSource(FrameSource):
    """Stereo pairs from a ROS bag.

    Args:
        path: the bag (ROS 1 file, ROS 2 folder, or an ``.mcap``/``.db3`` file).
        left_topic, right_topic: image topics; detected from the names when omitted
            (:func:`depthapp.robotics.bags.find_stereo_topics`).
        tolerance: the largest left/right stamp difference of one pair, seconds.
    """

    live = False

    def __init__(self, path: str | os.PathLike, left_topic: Optional[str] = None,
                 right_topic: Optional[str] = None, tolerance: float = DEFAULT_SYNC_TOLERANCE,
                 on_status: Optional[StatusCallback] = None):
        super().__init__(f"bag {path}", on_status)
        if not np.isfinite(tolerance) or tolerance < 0:
            raise UsageError(f"--sync-tolerance must be a non-negative number of seconds, got {tolerance}")
        self.path = Path(path)
        self.requested = (left_topic, right_topic)
        self.tolerance_ns = int(round(tolerance * 1e9))
        self.topics: Optional[StereoTopics] = None
        self.calibration: Optional[StereoCalibration] = None
        self.frame_count: int = 0
        self._bag: Optional[OpenBag] = None
        self._iterator: Optional[Iterator] = None
        self._matcher = StampMatcher(self.tolerance_ns, self._on_drop)
        self._shift: Optional[int] = None
        self._duration = 0.0

    @property
    def nominal_fps(self) -> Optional[float]:
        if self.frame_count > 1 and self._duration > 0:
            return (self.frame_count - 1) / self._duration
        return None

    def _open(self) -> None:
        bag = OpenBag(self.path)
        try:
            self.topics = find_stereo_topics(self.path, bag.topics(), *self.requested)
            self.frame_count = min(bag.count(self.topics.left), bag.count(self.topics.right))
            if self.frame_count == 0:
                raise InputError(f"{self.path}: {self.topics.describe()} hold no messages")
            self.calibration = read_bag_calibration(bag, self.topics)
            self._duration = bag.duration
        except BaseException:
            bag.close()
            raise
        self._bag = bag
        self.description = f"bag {self.path} ({self.topics.describe()})"
        self._iterator = read_stamped(bag, self.topics)

    def _on_drop(self, side: str, frame: Stamped) -> None:
        seconds, nanoseconds = divmod(frame.stamp, 1_000_000_000)
        self._status(f"{getattr(self.topics, side)}: frame stamped {seconds}.{nanoseconds:09d} s has "
                     f"no partner within {self.tolerance_ns / 1e6:g} ms; skipped")

    def _read(self, timeout):
        matched = None
        while matched is None:
            item = next(self._iterator, None)
            if item is None:
                self._matcher.finish()
                return None
            matched = self._matcher.add(*item)
        left, right = matched
        left_image, right_image, self._shift = decode_pair(self.path, self.topics, left, right, self._shift)
        index = self._delivered
        return BagFramePair(index, left_image, right_image, left.stamp / 1e9, right.stamp / 1e9,
                            name=f"{self.path.stem} {index:06d}", stamp_left=left.stamp,
                            stamp_right=right.stamp, frame_ids=(left.frame_id, right.frame_id))

    def stats(self) -> SourceStats:
        base = super().stats()
        matcher = self._matcher
        return dataclasses.replace(base, captured=(matcher.received["left"], matcher.received["right"]),
                                   dropped=(matcher.dropped["left"], matcher.dropped["right"]))

    def _close(self) -> None:
        self._iterator = None
        if self._bag is not None:
            self._bag.close()
            self._bag = None


def _open_bag(path, realtime: bool = False, on_status: Optional[StatusCallback] = None, clock=None):
    if realtime:
        raise UsageError(f"{path}: a bag plays every recorded pair; drop --realtime")
    return BagSource(path, on_status=on_status)


BAG_KIND = register_source_kind(SourceKind("bag", looks_like_bag, _open_bag))

__all__ = ["BAG_KIND", "BagFramePair", "BagSource", "StampMatcher"]
