"""Frame sources on real video files: counts, losslessness, pacing, skew, reconnects, ends."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from depthapp.sources import (EndOfStream, FrameTimeout, ImageFolderSource, LiveSource, PacingClock,
                              SideBySideVideoSource, VideoFileGrabber, VideoFilesSource, open_source)
from depthapp.errors import InputError, UsageError

from video_fixtures import FakeClock, frame_number, paced_source


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


def test_realtime_paces_by_the_file_fps_and_keeps_every_frame_for_a_fast_consumer(stereo_videos):
    assert open_source(left=str(stereo_videos.left), right=str(stereo_videos.right), realtime=True).live
    fake, fps = FakeClock(), stereo_videos.fps
    count = len(stereo_videos.frames)
    frames, delivered_at = [], []
    with paced_source([stereo_videos.left, stereo_videos.right], fake) as source:
        for k in range(count):
            frames.append(source.read(timeout=10.0))
            delivered_at.append(fake.now())
            if k + 1 < count:  # both cameras wait for their next frame until it is due
                assert fake.wait_for_sleepers(2)
                fake.advance_to((k + 1) / fps)
        assert source.read(timeout=10.0) is None
        stats = source.stats()
    for k, (frame, at) in enumerate(zip(frames, delivered_at)):
        assert frame.t_left == pytest.approx(k / fps) and frame.t_right == pytest.approx(k / fps)
        assert at >= frame.t_left - 1e-9, "frames came faster than the file's frame rate"
    assert stats.captured == (count, count)
    # A consumer that does nothing keeps up.
    assert len(frames) == count
    for k, frame in enumerate(frames):
        assert frame_number(frame.left, stereo_videos.frames, 0) == k
        assert frame_number(frame.right, stereo_videos.frames, 1) == k
        assert frame.index == k


def test_realtime_drops_stale_frames_for_a_slow_consumer_and_lossless_does_not(stereo_videos):
    fake, fps = FakeClock(), stereo_videos.fps
    count = len(stereo_videos.frames)
    frames, newest_due = [], []
    with paced_source([stereo_videos.left, stereo_videos.right], fake) as source:
        while (frame := source.read(timeout=10.0)) is not None:
            frames.append(frame)
            # The consumer works for three frame periods; the cameras run on meanwhile.
            fake.advance_to(fake.now() + 3 / fps)
            due = int(fake.now() * fps + 1e-6)
            if due < count - 1:
                assert fake.wait_for_sleepers(2)
                newest_due.append(due)
            else:  # the files' ends are due: let both streams finish
                guard = time.monotonic() + 10.0  # a hang guard, not a timing assertion
                while source.stats().captured != (count, count) and time.monotonic() < guard:
                    time.sleep(0.01)
        stats = source.stats()
    assert len(frames) < count / 2
    indices = [frame_number(f.left, stereo_videos.frames, 0) for f in frames]
    assert indices == sorted(set(indices))
    # A live source hands out the newest pair, not the next one: each gap is a run of dropped
    # frames (it never waits for the consumer).
    assert newest_due and indices[1:len(newest_due) + 1] == newest_due
    assert indices[-1] == count - 1
    assert [frame_number(f.right, stereo_videos.frames, 1) for f in frames] == indices
    for side in range(2):  # every captured frame was either handed out or counted as dropped
        assert stats.captured[side] == count
        assert stats.dropped[side] + stats.delivered == count


def test_live_pairs_each_frame_with_the_nearest_in_time_and_reports_the_skew(stereo_videos):
    # Two "cameras" at 20 and 30 fps: the nearest frames are at most 1/60 s apart.
    clock = PacingClock()
    source = LiveSource([lambda: VideoFileGrabber(stereo_videos.left, clock),
                         lambda: VideoFileGrabber(stereo_videos.right_30fps, clock)],
                        on_close=clock.stop)
    with source:
        frames = list(source)
        stats = source.stats()
    assert len(frames) >= 6
    skews = [f.skew for f in frames]
    assert max(skews) <= 1 / 60 + 1e-6
    assert max(skews) > 1 / 120, "20 vs 30 fps must produce some 1/60 s skew"
    for frame in frames:
        left_k = frame_number(frame.left, stereo_videos.frames, 0)
        right_k = frame_number(frame.right, stereo_videos.frames, 1)
        assert abs(left_k / 20 - right_k / 30) == pytest.approx(frame.skew, abs=1e-6)
    assert stats.skew.maximum == pytest.approx(max(skews))
    assert stats.skew.mean == pytest.approx(np.mean(skews))
    assert stats.skew.count == len(frames)


class FlakyCamera:
    """A video file that is 'unplugged' after ``fail_at`` frames: the grabber raises, the next
    ``failed_opens`` attempts to reopen fail, then it comes back where it stopped."""

    def __init__(self, path, clock, fail_at: int, failed_opens: int):
        self.path, self.clock = path, clock
        self.fail_at, self.failed_opens = fail_at, failed_opens
        self.position = 0
        self.unplugged = False
        self.opens = 0

    def open(self):
        self.opens += 1
        if self.unplugged and self.failed_opens > 0:
            self.failed_opens -= 1
            raise OSError("no such device")
        grabber = VideoFileGrabber(self.path, self.clock, start_frame=self.position)

        def grab():
            if self.position == self.fail_at and not self.unplugged:
                self.unplugged = True
                raise OSError("camera unplugged")
            frame = grabber()
            self.position += 1
            return frame

        grab.close = grabber.close
        return grab


def test_live_source_survives_a_camera_that_fails_mid_stream_and_comes_back(stereo_videos):
    clock = PacingClock()
    flaky = FlakyCamera(stereo_videos.left, clock, fail_at=4, failed_opens=2)
    messages = []
    source = LiveSource([flaky.open, lambda: VideoFileGrabber(stereo_videos.right, clock)],
                        on_status=messages.append, on_close=clock.stop)
    with source:
        frames = list(source)  # ends cleanly (None) at the end of the files
        stats = source.stats()
    assert stats.reconnects == 1
    assert flaky.opens == 4  # the first open, two failed reopens, the one that worked
    assert any("left: lost (camera unplugged); reconnecting" in m for m in messages), messages
    assert any(m.startswith("left: reconnected after") and "3 attempts" in m for m in messages), messages
    left_numbers = [frame_number(f.left, stereo_videos.frames, 0) for f in frames]
    assert max(left_numbers) == len(stereo_videos.frames) - 1, "frames after the outage arrive"
    assert min(left_numbers) < 4
    for frame, k in zip(frames, left_numbers):  # still synchronised after the reconnect
        assert frame_number(frame.right, stereo_videos.frames, 1) == k
        assert frame.skew == pytest.approx(0.0, abs=1e-9)


def test_a_camera_that_never_comes_back_is_an_error_after_give_up_after(stereo_videos):
    state = {"opened": False}

    def factory():
        if state["opened"]:
            raise OSError("no such device")
        state["opened"] = True

        def grab():
            raise OSError("camera unplugged")
        return grab

    source = LiveSource([factory], backoff=(0.02, 0.05), give_up_after=0.3)
    with source, pytest.raises(InputError, match="camera: lost .*not back after 0.3 s"):
        source.read(timeout=5.0)


def test_read_times_out_and_close_wakes_a_waiting_reader():
    release = threading.Event()

    def factory():
        def grab():  # a camera that delivers nothing
            release.wait(5.0)
            raise EndOfStream()
        return grab

    source = LiveSource([factory], on_close=release.set)
    source.open()
    with pytest.raises(FrameTimeout):
        source.read(timeout=0.1)
    results = []
    reader = threading.Thread(target=lambda: results.append(source.read()))
    reader.start()
    source.close()
    reader.join(5.0)  # a hang guard: close() must wake the reader
    assert not reader.is_alive() and results == [None]


def test_image_folder_source_reads_pairs_and_their_timestamps(tmp_path, stereo_videos):
    from depthapp.io import write_image

    for k, (left, right) in enumerate(stereo_videos.frames[:3]):
        write_image(tmp_path / "left" / f"{k:06d}.png", left)
        write_image(tmp_path / "right" / f"{k:06d}.png", right)
    (tmp_path / "timestamps.csv").write_text(
        "frame,index,t_left,t_right\n000000,0,0.0,0.001\n000001,5,0.1,0.102\n000002,9,0.2,0.2\n")
    with ImageFolderSource(tmp_path) as source:
        frames = list(source)
        assert source.nominal_fps == pytest.approx(10.0)
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.name for f in frames] == ["000000", "000001", "000002"]
    np.testing.assert_allclose([f.skew for f in frames], [0.001, 0.002, 0.0], atol=1e-9)
    np.testing.assert_array_equal(frames[1].left, stereo_videos.frames[1][0])


def test_open_source_names_the_problem():
    with pytest.raises(InputError, match="no-such.avi: no such file or camera"):
        open_source(left="no-such.avi", right="no-such.avi")
    with pytest.raises(UsageError, match="--left and --right go together"):
        open_source(left="0")
    with pytest.raises(UsageError, match="give one source"):
        open_source()


def test_a_missing_camera_is_a_clear_error():
    source = open_source(left="97", right="98")
    with pytest.raises(InputError, match="camera 97: cannot open the camera"):
        source.open()


def test_a_file_that_is_not_a_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.avi"
    bad.write_text("not a video")
    with pytest.raises(InputError, match="notes.avi: not a readable video file"):
        VideoFilesSource(bad, bad).open()


def test_frames_evicted_from_the_buffer_count_as_dropped(stereo_videos):
    # A consumer that reads once, long after the whole file was captured into a 3-frame buffer.
    fake = FakeClock()
    count = len(stereo_videos.frames)
    with paced_source([stereo_videos.sbs], fake, buffer=3) as source:
        assert fake.wait_for_sleepers(1)
        fake.advance_to(count / stereo_videos.fps + 0.3)
        guard = time.monotonic() + 10.0  # a hang guard, not a timing assertion
        while source.stats().captured != (count,) and time.monotonic() < guard:
            time.sleep(0.01)
        frame = source.read()
        assert source.read() is None
        stats = source.stats()
    count = len(stereo_videos.frames)
    assert frame_number(frame.left, stereo_videos.frames, 0) == count - 1  # the newest
    assert stats.captured == (count,) and stats.delivered == 1
    assert stats.dropped == (count - 1,)
