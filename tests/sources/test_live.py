"""Live capture on real video files: pacing on a fake clock, dropping, nearest-in-time pairing,
reconnects, timeouts, buffer eviction."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from depthapp.errors import InputError
from depthapp.sources import (EndOfStream, FrameTimeout, LiveSource, PacingClock, VideoFileGrabber,
                              open_source)

from video_fixtures import FakeClock, frame_number, paced_source


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
    assert stats.capture_fps == pytest.approx((fps, fps)), "captured at the file's frame rate"
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
    fake = FakeClock()
    count = len(stereo_videos.frames)
    due = ([k / 20 for k in range(count)], [k / 30 for k in range(count)])
    frames = []
    with paced_source([stereo_videos.left, stereo_videos.right_30fps], fake) as source:
        reader = threading.Thread(target=lambda: frames.extend(source))
        reader.start()
        for t in sorted(set(due[0] + due[1]))[1:]:
            # Time moves on once both cameras hold every frame due so far.
            captured = tuple(sum(d <= fake.now() for d in side) for side in due)
            guard = time.monotonic() + 10.0  # a hang guard, not a timing assertion
            while source.stats().captured != captured and time.monotonic() < guard:
                time.sleep(0.002)
            fake.advance_to(t + 1e-6)
        reader.join(10.0)
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
