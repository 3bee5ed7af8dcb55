"""Image folders and recordings: pairs in name order, their timestamps, and the folder's stream."""

from __future__ import annotations

import numpy as np
import pytest

from depthapp.sources import FolderSequence, ImageFolderSource

from video_fixtures import write_pair_folder


def test_image_folder_source_reads_pairs_and_their_timestamps(tmp_path, stereo_videos):
    write_pair_folder(tmp_path, stereo_videos.frames[:3])
    (tmp_path / "timestamps.csv").write_text(
        "frame,index,t_left,t_right\n000000,0,0.0,0.001\n000001,5,0.1,0.102\n000002,9,0.2,0.2\n")
    with ImageFolderSource(tmp_path) as source:
        frames = list(source)
        assert source.nominal_fps == pytest.approx(10.0)
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.name for f in frames] == ["000000", "000001", "000002"]
    np.testing.assert_allclose([f.skew for f in frames], [0.001, 0.002, 0.0], atol=1e-9)
    np.testing.assert_array_equal(frames[1].left, stereo_videos.frames[1][0])


def test_a_folder_streams_the_same_pairs_as_it_indexes(tmp_path, stereo_videos):
    folder = write_pair_folder(tmp_path / "rec", stereo_videos.frames[:4])
    sequence = FolderSequence(folder)
    with sequence.frames(fps=10.0) as stream, ImageFolderSource(folder) as source:
        streamed, read = list(stream), list(source)
    assert len(streamed) == len(read) == len(sequence) == 4
    for k, (a, b) in enumerate(zip(streamed, read)):
        np.testing.assert_array_equal(a.left, b.left)
        np.testing.assert_array_equal(a.right, sequence.load(k).right)
        assert a.name == b.name == f"{k:06d}" and a.t_left == pytest.approx(k / 10.0)
