"""Video files through the one decoder: two files in lockstep, side-by-side, seeking, pixel formats."""

from __future__ import annotations

import time

import numpy as np
import pytest

from depthapp.errors import InputError
from depthapp.sources import SideBySideVideoSource, VideoFilesSource, VideoSequence
from depthapp.sources.video import _bgr_to_rgb


def test_video_files_are_read_losslessly_in_order_and_end_cleanly(stereo_videos):
    with VideoFilesSource(stereo_videos.left, stereo_videos.right) as source:
        frames = list(source)
        assert source.read() is None  # the end stays the end
        stats = source.stats()
    assert len(frames) == len(stereo_videos.frames)
    for k, (frame, (left, right)) in enumerate(zip(frames, stereo_videos.frames)):
        assert frame.index == k
        np.testing.assert_array_equal(frame.left, left)
        np.testing.assert_array_equal(frame.right, right)
        assert frame.t_left == pytest.approx(k / stereo_videos.fps, abs=1e-6)
        assert frame.skew == pytest.approx(0.0, abs=1e-9)
    assert stats.delivered == len(frames) and stats.dropped == (0,) and not stats.live


def test_lossless_source_waits_for_a_slow_consumer(stereo_videos):
    with VideoFilesSource(stereo_videos.left, stereo_videos.right) as source:
        indices = []
        for frame in source:
            indices.append(frame.index)
            time.sleep(0.06)  # slower than the file's 20 fps
    assert indices == list(range(len(stereo_videos.frames)))


def test_side_by_side_video_is_split_into_the_two_views(stereo_videos):
    with SideBySideVideoSource(stereo_videos.sbs) as source:
        frames = list(source)
    assert len(frames) == len(stereo_videos.frames)
    for frame, (left, right) in zip(frames, stereo_videos.frames):
        np.testing.assert_array_equal(frame.left, left)
        np.testing.assert_array_equal(frame.right, right)


def test_lossless_skew_is_the_difference_of_the_presentation_times(stereo_videos):
    # Right file at 30 fps, left at 20 fps: frame k is taken k/20 and k/30 s in.
    with VideoFilesSource(stereo_videos.left, stereo_videos.right_30fps) as source:
        frames = list(source)
        stats = source.stats()
    expected = [k * (1 / 20 - 1 / 30) for k in range(len(frames))]
    np.testing.assert_allclose([f.skew for f in frames], expected, atol=1e-6)
    assert stats.skew.maximum == pytest.approx(max(expected), abs=1e-6)
    assert stats.skew.mean == pytest.approx(np.mean(expected), abs=1e-6)


def test_a_file_that_is_not_a_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.avi"
    bad.write_text("not a video")
    with pytest.raises(InputError, match="notes.avi: not a readable video file"):
        VideoFilesSource(bad, bad).open()


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


def test_the_decoder_turns_grey_and_bgra_frames_into_rgb():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(_bgr_to_rgb(grey), np.repeat(grey[:, :, None], 3, axis=2))
    bgra = np.zeros((3, 4, 4), np.uint8)
    bgra[..., 0], bgra[..., 2], bgra[..., 3] = 10, 200, 255  # blue 10, red 200, opaque
    rgb = _bgr_to_rgb(bgra)
    assert rgb.shape == (3, 4, 3) and (rgb[..., 0] == 200).all() and (rgb[..., 2] == 10).all()
