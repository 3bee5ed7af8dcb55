"""The Qt-free live loop: source -> rectify -> backend -> depth -> callback (-> recorder).

The CLI runs it in the main thread; the viewer's Live mode runs it in a worker thread and
forwards each :class:`LiveFrame` to the GUI thread with a signal::

    loop = CameraLoop(source, backend, calibration, on_frame=emit, on_status=show, recorder=rec)
    worker = threading.Thread(target=loop.run)     # or a QThread whose run() calls loop.run()
    worker.start()
    ...
    loop.stop()                                    # from any thread; run() returns soon after
    worker.join()
    loop.stats().summary()

``run()`` owns the session: it opens the source and the recorder, and closes both when it
returns (end of a file, ``max_frames`` pairs, ``stop()`` or an error, which it re-raises).
Rectification maps are built once (:class:`depthapp.calibration.rectify.Rectifier`) and reused
for every frame. While it runs, ``set_backend()``, ``set_calibration()`` and ``set_recorder()``
(any thread) take effect at the next pair: parameter changes, a new calibration, the record
button. ``depthapp.camera.viewer`` is the viewer's Live panel built on exactly this API.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..backends.base import Backend
from ..calibration.model import StereoCalibration
from ..data import DisparityResult, StereoPair
from ..errors import Cancelled
from ..jobs import CancelToken
from ..sources import FramePair, FrameSource, FrameTimeout, RateMeter, SourceStats, StatusCallback

# Latencies outside this range mean the source's clock is not the loop's (media times).
_PLAUSIBLE_LATENCY = (0.0, 600.0)


@dataclass
class LoopStats:
    """A snapshot of the loop's counters.

    Attributes:
        processed: pairs computed so far.
        elapsed: seconds since ``run()`` started.
        processing_fps: recent rate of finished pairs (frames/s, over the last ~2 s).
        mean_fps: ``processed`` over the time from the first to the last finished pair.
        compute_ms: median backend time of the recent pairs (ms).
        latency_ms: capture-to-result delay of the last pair for live sources (ms), else None.
        source: the source's counters (capture FPS, drops, skew, reconnects).
        end_reason: "" while running, then "end of source", "frame limit" or "stopped".
    """

    processed: int = 0
    elapsed: float = 0.0
    processing_fps: float = 0.0
    mean_fps: float = 0.0
    compute_ms: float = 0.0
    latency_ms: Optional[float] = None
    source: SourceStats = field(default_factory=SourceStats)
    end_reason: str = ""

    def summary(self) -> str:
        """One line: pairs, processing and capture FPS, drops, skew, reconnects, latency."""
        source = self.source
        capture = "/".join(f"{fps:.1f}" for fps in source.capture_fps) or "-"
        parts = [f"{self.processed} pairs in {self.elapsed:.1f} s",
                 f"processing {self.processing_fps:.1f} fps (mean {self.mean_fps:.1f}, "
                 f"compute {self.compute_ms:.0f} ms)",
                 f"capture {capture} fps"]
        if source.live or source.total_dropped:
            parts.append("dropped " + "/".join(str(d) for d in source.dropped))
        skew = source.skew
        parts.append(f"skew {1000 * skew.last:.1f} ms (mean {1000 * skew.mean:.1f}, "
                     f"max {1000 * skew.maximum:.1f})")
        if source.reconnects:
            parts.append(f"reconnects {source.reconnects}")
        if self.latency_ms is not None:
            parts.append(f"latency {self.latency_ms:.0f} ms")
        return " | ".join(parts)


@dataclass
class LiveFrame:
    """One processed pair, as handed to ``on_frame``.

    Attributes:
        number: 1-based count of pairs processed in this run.
        frame: the pair as captured (raw images, timestamps, source frame index).
        pair: what the backend saw: rectified when the calibration is raw, with the calibration
            fitted to the image size (None calibration without ``--calib``).
        result: the backend's :class:`~depthapp.data.DisparityResult` (``(H, W)`` float32 px).
        depth: ``(H, W)`` float32 metres (NaN invalid) with a calibration, else None.
        cloud: coloured points when the loop was asked for them, else None.
        stats: the loop's counters after this pair.
    """

    number: int
    frame: FramePair
    pair: StereoPair
    result: DisparityResult
    depth: Optional[np.ndarray]
    cloud: Optional[object]
    stats: LoopStats

    @property
    def disparity(self) -> np.ndarray:
        return self.result.disparity

    @property
    def skew(self) -> float:
        """Left/right capture time difference of this pair in seconds."""
        return self.frame.skew


class CameraLoop:
    """Runs a :class:`FrameSource` through rectification and a backend until it ends or stops.

    Args:
        source: any :class:`~depthapp.sources.FrameSource` (not necessarily open).
        backend: a created backend (``depthapp.backends.create_backend``).
        calibration: raw calibration (pairs are rectified) or rectified (fitted to the frame
            size, scaled when the frames are a resized version); None computes disparity only.
        on_frame: called in the loop's thread with each :class:`LiveFrame`. Keep it short
            (hand the frame to another thread); the next pair is read after it returns.
        on_status: one-line messages (camera lost/back, waiting for frames, calibration notes).
        recorder: a :class:`~depthapp.camera.recorder.Recorder`; every processed pair is written.
        max_frames: stop after this many processed pairs.
        with_depth: compute metric depth when there is a calibration.
        with_points: also compute the coloured point cloud (slower; the viewer's 3-D view).
        cancel: a :class:`~depthapp.jobs.CancelToken`; ``stop()`` cancels it.
        poll_interval: how often (s) a waiting ``read`` wakes to check for cancellation.
        now: the clock of rates and latency, the one live sources stamp frames with
            (``time.monotonic``; a fake clock in tests).
    """

    def __init__(self, source: FrameSource, backend: Backend,
                 calibration: Optional[StereoCalibration] = None, *,
                 on_frame: Optional[Callable[[LiveFrame], None]] = None,
                 on_status: Optional[StatusCallback] = None, recorder=None,
                 max_frames: Optional[int] = None, with_depth: bool = True,
                 with_points: bool = False, cancel: Optional[CancelToken] = None,
                 poll_interval: float = 0.25, now: Callable[[], float] = time.monotonic):
        self._now = now
        if max_frames is not None and max_frames < 1:
            from ..errors import UsageError

            raise UsageError(f"--frames must be at least 1, got {max_frames}")
        self.source = source
        self.backend = backend
        self.calibration = calibration
        self.on_frame = on_frame
        self.on_status = on_status
        self.recorder = recorder
        self.max_frames = max_frames
        self.with_depth = with_depth
        self.with_points = with_points
        self.cancel = cancel or CancelToken()
        self.poll_interval = poll_interval
        self.rectifier = None
        self._fitted: dict[tuple[int, int], StereoCalibration] = {}
        self._pending_backend: Optional[Backend] = None
        self._pending_recorder: Optional[tuple] = None
        self._pending_calibration: Optional[tuple] = None
        self._lock = threading.Lock()
        self._meter = RateMeter()
        self._compute_times: deque[float] = deque(maxlen=30)
        self._processed = 0
        self._started: Optional[float] = None
        self._latency: Optional[float] = None
        self._end_reason = ""
        self._rectification_checked = False
        self._notes_said: set[str] = set()

    # Control (any thread) ------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask ``run()`` to return after the current pair (safe from any thread)."""
        self.cancel.cancel()

    def set_backend(self, backend: Backend) -> None:
        """Use ``backend`` from the next pair on (safe from any thread)."""
        with self._lock:
            self._pending_backend = backend

    def set_calibration(self, calibration: Optional[StereoCalibration]) -> None:
        """Use ``calibration`` from the next pair on (safe from any thread); a raw one gets
        its rectification maps built once, at that pair."""
        with self._lock:
            self._pending_calibration = (calibration,)

    def set_recorder(self, recorder) -> None:
        """Record from the next pair on into ``recorder``, or stop recording with None (safe
        from any thread; the viewer's record button). Call ``recorder.open()`` first so a
        refused folder is reported in the caller's thread. The loop closes the recorder it
        replaces; ``recorder.close()`` from the caller also waits for its last pairs."""
        with self._lock:
            self._pending_recorder = (recorder,)

    def stats(self) -> LoopStats:
        """The current counters (safe from any thread)."""
        now = self._now()
        with self._lock:
            compute = statistics.median(self._compute_times) if self._compute_times else 0.0
            return LoopStats(
                processed=self._processed,
                elapsed=(now - self._started) if self._started is not None else 0.0,
                processing_fps=self._meter.rate(now), mean_fps=self._meter.mean_rate(),
                compute_ms=1000.0 * compute,
                latency_ms=None if self._latency is None else 1000.0 * self._latency,
                source=self.source.stats(), end_reason=self._end_reason)

    # The loop ------------------------------------------------------------------------------------
    def run(self) -> LoopStats:
        """Process pairs until the source ends, ``max_frames`` is reached or ``stop()``;
        returns the final :class:`LoopStats` (``end_reason`` says which)."""
        self._started = self._now()
        self._end_reason = ""
        waiting_since: Optional[float] = None
        last_wait_note = 0.0
        self.source.open()
        try:
            if self.recorder is not None:
                self.recorder.open()
            while True:
                if self.cancel.cancelled:
                    self._end_reason = "stopped"
                    break
                if self.max_frames is not None and self._processed >= self.max_frames:
                    self._end_reason = "frame limit"
                    break
                try:
                    frame = self.source.read(timeout=self.poll_interval)
                except FrameTimeout:
                    now = self._now()
                    waiting_since = waiting_since or now
                    if now - waiting_since >= 2.0 and now - last_wait_note >= 5.0:
                        last_wait_note = now
                        self._status(f"waiting for frames from {self.source.description} "
                                     f"({now - waiting_since:.0f} s)")
                    continue
                waiting_since = None
                if frame is None:
                    self._end_reason = "end of source"
                    break
                try:
                    live = self.process(frame)
                except Cancelled:
                    self._end_reason = "stopped"
                    break
                self._switch_recorder()
                if self.recorder is not None:
                    self.recorder.write(frame)
                if self.on_frame is not None:
                    self.on_frame(live)
        finally:
            self._finish()
        return self.stats()

    def _switch_recorder(self) -> None:
        with self._lock:
            pending, self._pending_recorder = self._pending_recorder, None
        if pending is None:
            return
        previous, self.recorder = self.recorder, pending[0]
        if previous is not None and previous is not self.recorder:
            previous.close()
        if self.recorder is not None:
            self.recorder.open()

    def _finish(self) -> None:
        with self._lock:
            pending, self._pending_recorder = self._pending_recorder, None
        recorders = [self.recorder] + ([pending[0]] if pending else [])
        errors = []
        for close in [self.source.close] + [r.close for r in recorders if r is not None]:
            try:
                close()
            except BaseException as error:  # close both before reporting either
                errors.append(error)
        if errors:
            raise errors[0]

    def process(self, frame: FramePair) -> LiveFrame:
        """Rectify and compute one pair (the loop's step; also usable on a frozen frame)."""
        with self._lock:
            if self._pending_backend is not None:
                self.backend, self._pending_backend = self._pending_backend, None
            backend = self.backend
            if self._pending_calibration is not None:
                (self.calibration,), self._pending_calibration = self._pending_calibration, None
                self.rectifier = None
                self._fitted.clear()
        pair = self.prepare(frame)
        result = backend.compute(pair, self.cancel)
        for note in result.messages:  # the same note for every frame: said once
            if note not in self._notes_said:
                self._notes_said.add(note)
                self._status(f"note: {note}")
        depth = cloud = None
        if pair.calibration is not None and (self.with_depth or self.with_points):
            from ..geometry import disparity_to_depth, disparity_to_points

            timer = backend.make_timer()
            with timer("depth"):
                depth = disparity_to_depth(result.disparity, pair.calibration)
            if self.with_points:
                with timer("points"):
                    cloud = disparity_to_points(result.disparity, pair.calibration, pair.left)
            result.timings.update(timer.timings)
        now = self._now()
        with self._lock:
            self._processed += 1
            self._meter.tick(now)
            self._compute_times.append(result.total_time)
            if self.source.live:
                latency = now - max(frame.t_left, frame.t_right)
                inside = _PLAUSIBLE_LATENCY[0] <= latency <= _PLAUSIBLE_LATENCY[1]
                self._latency = latency if inside else None
            number = self._processed
        return LiveFrame(number=number, frame=frame, pair=pair, result=result, depth=depth,
                         cloud=cloud, stats=self.stats())

    def prepare(self, frame: FramePair) -> StereoPair:
        """The pair the backend sees: rectified (maps built once) or with the calibration
        fitted to the frame size."""
        calibration = self.calibration
        if calibration is None:
            return self._checked(frame.to_stereo_pair())
        if not calibration.rectified:
            if self.rectifier is None:
                from ..calibration.rectify import Rectifier

                self.rectifier = Rectifier(calibration)
                self._status(f"rectifying with {calibration.source} "
                             f"({self.rectifier.calibration.summary()})")
            return self.rectifier.rectify_pair(frame.to_stereo_pair(calibration))
        fitted = self._fitted.get(frame.size)
        if fitted is None:
            from ..pipeline import fit_calibration

            fitted, note = fit_calibration(calibration, *frame.size)
            self._fitted[frame.size] = fitted
            if note:
                self._status(note)
        return self._checked(frame.to_stereo_pair(fitted))

    def _checked(self, pair: StereoPair) -> StereoPair:
        """Warn once per stream when a pair that claims to be rectified is not (the check
        matches features: ~0.4 s, so it runs on the first pair only)."""
        if not self._rectification_checked:
            self._rectification_checked = True
            from ..calibration.rectify import check_rectified

            warning = check_rectified(pair)
            if warning:
                self._status(f"warning: {warning}")
        return pair

    def _status(self, message: str) -> None:
        if self.on_status is not None:
            self.on_status(message)


__all__ = ["CameraLoop", "LiveFrame", "LoopStats"]
