"""Stereo video files written from the real Middlebury Motorcycle pair (helpers and fixture).

Frame ``k`` is a 320x240 window of both views moved ``STEP`` pixels right and 1 down per
frame (a camera panning across the scene), so every frame differs and its content tells which
frame it is. Videos use FFV1 in AVI, lossless in opencv-python-headless (checked below).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

WIDTH, HEIGHT = 320, 240
STEP = 6
FRAMES = 12
FPS = 20.0


def crop_frames(left: np.ndarray, right: np.ndarray, count: int, width: int = WIDTH,
                height: int = HEIGHT, step: int = STEP, x0: int = 150, y0: int = 120):
    """``count`` panned ``(left, right)`` windows of a rectified pair."""
    frames = []
    for k in range(count):
        x, y = x0 + step * k, y0 + k
        frames.append((np.ascontiguousarray(left[y:y + height, x:x + width]),
                       np.ascontiguousarray(right[y:y + height, x:x + width])))
    return frames


def write_video(path: Path, images, fps: float) -> Path:
    height, width = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height))
    assert writer.isOpened(), "this OpenCV build cannot write FFV1"
    for image in images:
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def frame_number(image: np.ndarray, frames, side: int) -> int:
    """Which frame of ``frames`` (side 0 = left, 1 = right) ``image`` is, exactly."""
    matches = [k for k, pair in enumerate(frames) if np.array_equal(pair[side], image)]
    assert len(matches) == 1, f"image matches frames {matches}"
    return matches[0]


@dataclass
class StereoVideos:
    folder: Path
    left: Path
    right: Path
    sbs: Path
    right_30fps: Path
    frames: list
    fps: float


@pytest.fixture(scope="session")
def stereo_videos(tmp_path_factory, motorcycle_session) -> StereoVideos:
    folder = tmp_path_factory.mktemp("videos")
    pair = motorcycle_session
    frames = crop_frames(pair.left, pair.right, FRAMES)
    left = write_video(folder / "left.avi", [f[0] for f in frames], FPS)
    right = write_video(folder / "right.avi", [f[1] for f in frames], FPS)
    sbs = write_video(folder / "sbs.avi", [np.hstack(f) for f in frames], FPS)
    right_30 = write_video(folder / "right_30fps.avi", [f[1] for f in frames], 30.0)
    return StereoVideos(folder, left, right, sbs, right_30, frames, FPS)


class FakeClock:
    """A clock the test moves: ``sleep`` blocks until the test ``advance``s past its end (or
    ``release`` is called), so pacing is checked against media times, never against wall time.
    Once every capture thread waits for a time still to come, every frame due so far has been
    captured."""

    def __init__(self):
        self.time = 0.0
        self.slept: list[float] = []
        self._ends: list[float] = []
        self._released = False
        self._condition = threading.Condition()
        self._seen = threading.local()

    def now(self) -> float:
        with self._condition:
            self._seen.time = self.time
            return self.time

    def sleep(self, delay: float) -> None:
        with self._condition:
            # From the time this thread last read, as a real sleep after time.monotonic() would:
            # the test may have moved the clock in between.
            end = getattr(self._seen, "time", self.time) + delay
            self.slept.append(delay)
            self._ends.append(end)
            self._condition.notify_all()
            while self.time < end and not self._released:
                self._condition.wait(1.0)
            self._ends.remove(end)

    def advance_to(self, time: float) -> None:
        """Move to ``time`` (a hair past it, so a sleep ending there is over despite rounding)."""
        with self._condition:
            self.time = max(self.time, time + 1e-9)
            self._condition.notify_all()

    def wait_for_sleepers(self, count: int, timeout: float = 10.0) -> bool:
        """Whether ``count`` threads wait in ``sleep`` for a time still to come (False after
        ``timeout`` real seconds: a hang guard, not a timing assertion)."""
        with self._condition:
            return self._condition.wait_for(
                lambda: sum(end > self.time for end in self._ends) >= count or self._released, timeout)

    def release(self) -> None:
        with self._condition:
            self._released = True
            self._condition.notify_all()


def paced_source(paths, fake: FakeClock, **options):
    """A live source over video files paced by ``fake`` (what ``open_source(realtime=True)``
    builds, on a fake clock)."""
    from depthapp.sources import LiveSource, PacingClock, VideoFileGrabber

    clock = PacingClock(now=fake.now, sleep=fake.sleep)

    def stop():
        clock.stop()
        fake.release()

    return LiveSource([lambda path=path: VideoFileGrabber(path, clock) for path in paths],
                      on_close=stop, now=fake.now, **options)


def write_pair_folder(folder: Path, frames) -> Path:
    """``left/NNNNNN.png`` + ``right/NNNNNN.png`` for each ``(left, right)`` frame (a recording
    without timestamps)."""
    from depthapp.io import write_image

    for k, (left, right) in enumerate(frames):
        write_image(folder / "left" / f"{k:06d}.png", left)
        write_image(folder / "right" / f"{k:06d}.png", right)
    return folder
