"""A benchmark dataset read as a pair source."""

from __future__ import annotations

import numpy as np

from depthapp.evaluation.datasets import open_dataset
from depthapp.io import write_pfm
from depthapp.sources import DatasetSequence

from video_fixtures import write_pair_folder


def test_a_dataset_is_read_pair_by_pair_with_its_ground_truth(tmp_path, stereo_videos):
    folder = write_pair_folder(tmp_path / "data", stereo_videos.frames[:2])
    truth = np.full(stereo_videos.frames[0][0].shape[:2], 7.5, np.float32)
    write_pfm(folder / "disp" / "000001.pfm", truth)
    pairs = DatasetSequence(open_dataset("folder", str(folder)))
    assert len(pairs) == 2 and pairs.label(1).startswith("000001")
    first, second = list(pairs)
    assert first.gt_disparity is None
    np.testing.assert_array_equal(second.gt_disparity, truth)
    np.testing.assert_array_equal(second.left, stereo_videos.frames[1][0])
    streamed = list(pairs.frames())
    np.testing.assert_array_equal(streamed[1].right, stereo_videos.frames[1][1])
