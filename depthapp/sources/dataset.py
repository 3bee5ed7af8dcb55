"""A benchmark dataset (KITTI, Scene Flow, Middlebury, a folder with ground truth) as a pair
source. The datasets' official layouts and splits stay in :mod:`depthapp.evaluation.datasets`;
this is how they are iterated: pair by pair, with their ground truth."""

from __future__ import annotations

from typing import Optional, Sequence

from ..data import StereoPair
from ..errors import InputError
from .base import PairSequence


class DatasetSequence(PairSequence):
    """The samples of a :class:`~depthapp.evaluation.datasets.StereoDataset` (or the given subset
    of them), each loaded as a :class:`StereoPair` named by its sample id, with its ground-truth
    disparity when it has one (and ``with_ground_truth``)."""

    def __init__(self, dataset, samples: Optional[Sequence] = None, with_ground_truth: bool = True):
        self.dataset = dataset
        self.with_ground_truth = with_ground_truth
        self.samples = list(dataset.samples if samples is None else samples)
        self.description = dataset.describe()

    def __len__(self) -> int:
        return len(self.samples)

    def label(self, index: int) -> str:
        return f"{self.samples[index].id} ({index + 1}/{len(self)})"

    def load(self, index: int) -> StereoPair:
        self._check(index)
        sample = self.samples[index]
        pair = sample.load_pair()
        if self.with_ground_truth and sample.has_ground_truth:
            disparity = sample.load_ground_truth().disparity
            if disparity.shape != pair.left.shape[:2]:
                raise InputError(f"{sample.files['disp']}: ground truth is {disparity.shape[1]}x"
                                 f"{disparity.shape[0]}, the images {pair.width}x{pair.height}; use the "
                                 f"images at the ground truth's resolution")
            pair.gt_disparity = disparity
        return pair
