"""Indexable sources (folder, video, dataset) and their streams, and registering a new kind of
source, on the real Motorcycle frames of tests/video_fixtures.py."""

from __future__ import annotations

import numpy as np
import pytest

from depthapp.evaluation.datasets import open_dataset
from depthapp.io import write_image, write_pfm
from depthapp.sources import (DatasetSequence, FolderSequence, ImageFolderSource, SequenceSource,
                              SideBySideVideoSource, SourceKind, VideoSequence, open_source,
                              register_source_kind, source_kinds)
from depthapp.sources import opener


def _write_folder(folder, frames):
    for k, (left, right) in enumerate(frames):
        write_image(folder / "left" / f"{k:06d}.png", left)
        write_image(folder / "right" / f"{k:06d}.png", right)
    return folder


def test_a_folder_streams_the_same_pairs_as_it_indexes(tmp_path, stereo_videos):
    folder = _write_folder(tmp_path / "rec", stereo_videos.frames[:4])
    sequence = FolderSequence(folder)
    with sequence.frames(fps=10.0) as stream, ImageFolderSource(folder) as source:
        streamed, read = list(stream), list(source)
    assert len(streamed) == len(read) == len(sequence) == 4
    for k, (a, b) in enumerate(zip(streamed, read)):
        np.testing.assert_array_equal(a.left, b.left)
        np.testing.assert_array_equal(a.right, sequence.load(k).right)
        assert a.name == b.name == f"{k:06d}" and a.t_left == pytest.approx(k / 10.0)


def test_a_video_sequence_decodes_what_the_video_source_streams(stereo_videos):
    sequence = VideoSequence(stereo_videos.sbs)
    try:
        assert len(sequence) == len(stereo_videos.frames)
        backwards = [sequence.load(k) for k in (5, 2, 3)]  # seeking back and stepping on
    finally:
        sequence.close()
    with SideBySideVideoSource(stereo_videos.sbs) as source:
        frames = list(source)
    for k, pair in zip((5, 2, 3), backwards):
        np.testing.assert_array_equal(pair.left, frames[k].left)
        np.testing.assert_array_equal(pair.right, stereo_videos.frames[k][1])


def test_a_dataset_is_read_pair_by_pair_with_its_ground_truth(tmp_path, stereo_videos):
    folder = _write_folder(tmp_path / "data", stereo_videos.frames[:2])
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


def test_a_new_kind_of_source_is_one_registration(tmp_path, stereo_videos, monkeypatch):
    monkeypatch.setattr(opener, "_KINDS", dict(opener._KINDS))
    folder = _write_folder(tmp_path / "rec", stereo_videos.frames[:3])
    recording = tmp_path / "take.fakebag"
    recording.write_text(str(folder))
    opened = []

    def open_fakebag(path, realtime, on_status, clock):
        opened.append((path, realtime))
        return SequenceSource(lambda: FolderSequence(path.read_text()), f"fake bag {path}")

    kind = register_source_kind(SourceKind("fakebag", lambda path: path.suffix == ".fakebag", open_fakebag))
    assert kind in source_kinds()
    with pytest.raises(ValueError, match="already registered"):
        register_source_kind(kind)
    with open_source(sbs=str(recording)) as source:
        frames = list(source)
    assert opened == [(recording, False)] and len(frames) == 3
    np.testing.assert_array_equal(frames[2].left, stereo_videos.frames[2][0])
