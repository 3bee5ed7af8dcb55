"""A ROS bag as a dataset without ground truth (``depthapp predict --dataset bag``) and as the
viewer's sequence of pairs (:class:`BagSequence`).

Opening scans the two image topics once and pairs them by header stamp like
:class:`~depthapp.sources.bag.BagSource`; each sample remembers its two messages' log
times, so a worker (another process, or a Dask node) reads just that pair back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..calibration.model import StereoCalibration
from ..data import StereoPair
from ..errors import InputError
from ..evaluation.datasets import Sample, StereoDataset
from ..sources.base import PairSequence
from . import DEFAULT_SYNC_TOLERANCE
from ..sources.bag import StampMatcher, decode_pair, read_bag_calibration, read_stamped
from .bags import OpenBag, StereoTopics, find_stereo_topics


@dataclass
class BagSample(Sample):
    """One stamp-matched pair of a bag: ``left``/``right`` are the bag, the log times find it."""

    topics: Optional[StereoTopics] = None
    log_times: tuple[int, int] = (0, 0)
    stamps: tuple[int, int] = (0, 0)
    bag_calibration: Optional[StereoCalibration] = None
    shift: Optional[int] = None

    def load_pair(self, bag: Optional[OpenBag] = None) -> StereoPair:
        """The pair (rectified when the topics are raw); ``bag``: an open bag to read from."""
        if bag is None:
            with OpenBag(self.left) as opened:
                return self.load_pair(opened)
        found = {}
        start, stop = min(self.log_times), max(self.log_times) + 1
        for side, frame in read_stamped(bag, self.topics, start, stop):
            wanted = 0 if side == "left" else 1
            if frame.log_time == self.log_times[wanted] and frame.stamp == self.stamps[wanted]:
                found.setdefault(side, frame)
        if len(found) < 2:
            raise InputError(f"{self.left}: pair {self.id} is no longer in the bag")
        left, right, _ = decode_pair(Path(self.left), self.topics, found["left"], found["right"],
                                     self.shift)
        pair = StereoPair(left, right, calibration=self.bag_calibration, name=self.id)
        if pair.calibration is not None and not pair.calibration.rectified:
            from ..pipeline import prepare_pair

            pair, _ = prepare_pair(pair)  # image_raw topics: rectified like any raw calibration
        return pair


class BagDataset(StereoDataset):
    """Every stamp-matched pair of a bag's stereo topics, named by their left stamp (ns)."""

    name = "bag"
    benchmark = "generic"

    def __init__(self, root: os.PathLike | str, ids=None, left_topic: Optional[str] = None,
                 right_topic: Optional[str] = None, tolerance: float = DEFAULT_SYNC_TOLERANCE):
        self._topics_requested = (left_topic, right_topic)
        self._tolerance_ns = int(round(tolerance * 1e9))
        self.topics: Optional[StereoTopics] = None
        super().__init__(root, ids)

    def _check_root(self) -> None:
        # A ROS 1 bag is a file, a ROS 2 bag a folder.
        if not self.root.exists():
            raise InputError(f"{self.root}: no such bag (--root of the bag dataset)")

    def layout_hint(self) -> str:
        return "a ROS 1 .bag, a ROS 2 bag folder, or an .mcap/.db3 file"

    def options(self) -> dict:
        return {"topics": self.topics.describe()} if self.topics else {}

    def _find_samples(self) -> list[Sample]:
        samples: list[Sample] = []
        with OpenBag(self.root) as bag:
            self.topics = find_stereo_topics(self.root, bag.topics(), *self._topics_requested)
            calibration = read_bag_calibration(bag, self.topics)
            matcher = StampMatcher(self._tolerance_ns)
            for side, frame in read_stamped(bag, self.topics):
                matched = matcher.add(side, frame)
                if matched is not None:
                    left, right = matched
                    samples.append(BagSample(
                        id=f"{left.stamp:019d}", left=self.root, right=self.root, topics=self.topics,
                        log_times=(left.log_time, right.log_time), stamps=(left.stamp, right.stamp),
                        bag_calibration=calibration))
            matcher.finish()
        self.dropped = dict(matcher.dropped)
        return samples


class BagSequence(PairSequence):
    """The viewer's view of a bag: its stamp-matched pairs, stepped through like a video."""

    def __init__(self, path: os.PathLike | str, left_topic: Optional[str] = None,
                 right_topic: Optional[str] = None):
        self.dataset = BagDataset(path, left_topic=left_topic, right_topic=right_topic)
        self.description = f"{self.dataset.root} ({self.dataset.topics.describe()})"
        self._bag: Optional[OpenBag] = OpenBag(self.dataset.root)

    def __len__(self) -> int:
        return len(self.dataset)

    def label(self, index: int) -> str:
        stamp = self.dataset[index].stamps[0]
        return f"{stamp // 1_000_000_000}.{stamp % 1_000_000_000:09d} s ({index + 1}/{len(self)})"

    def load(self, index: int) -> StereoPair:
        self._check(index)
        if self._bag is None:
            self._bag = OpenBag(self.dataset.root)
        return self.dataset[index].load_pair(self._bag)

    def close(self) -> None:
        if self._bag is not None:
            self._bag.close()
            self._bag = None
