"""Threaded capture: the newest synchronised pair of one or two grabbers (cameras, or files
emulating cameras), with dropped-frame counts and reconnects."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..errors import InputError
from .base import EndOfStream, FramePair, FrameSource, FrameTimeout, SourceStats, StatusCallback
from .clock import RateMeter
from .video import split_frame


Grabber = Callable[[], Any]
GrabberFactory = Callable[[], Grabber]


@dataclass
class _Captured:
    seq: int
    image: Any
    stamp: Any


class _Stream:
    """One capture thread's state (guarded by the source's condition)."""

    def __init__(self, name: str, factory: GrabberFactory, buffer: int):
        self.name = name
        self.factory = factory
        self.grabber: Optional[Grabber] = None
        self.frames: collections.deque[_Captured] = collections.deque(maxlen=buffer)
        self.seq = 0
        self.last_used = 0
        self.dropped = 0
        self.meter = RateMeter()
        self.ended = False
        self.lost = False
        self.failure: Optional[BaseException] = None
        self.reconnects = 0
        self.thread: Optional[threading.Thread] = None

    def fresh(self) -> list[_Captured]:
        return [f for f in self.frames if f.seq > self.last_used]

    def period(self) -> Optional[float]:
        """Median time between the buffered frames, or None with fewer than two."""
        stamps = [f.stamp for f in self.frames]
        gaps = [b - a for a, b in zip(stamps, stamps[1:]) if b > a]
        if not gaps:
            return None
        gaps.sort()
        return gaps[len(gaps) // 2]


def _close_grabber(grabber) -> None:
    close = getattr(grabber, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # a lost device may fail to release; nothing left to do with it
            pass


class LiveSource(FrameSource):
    """Threaded capture from one or two grabbers, handing out the newest synchronised pair.

    Args:
        streams: one grabber factory per stream: ``[left, right]`` for two cameras, or one for a
            side-by-side camera (its frames are split by ``split``).
        split: turns a single stream's frame into ``(left, right)``; default: split the frame
            down the middle. Ignored with two streams.
        description: for messages ("cameras 0 + 1").
        names: stream names for status messages (default "left"/"right" or "camera").
        on_status: called (from capture threads) with one-line messages: lost, reconnecting,
            back after N s.
        buffer: frames kept per stream for matching (older ones are dropped).
        backoff: ``(first, longest)`` wait in seconds between reconnect attempts (doubling).
        give_up_after: seconds a lost stream may stay lost before ``read()`` raises InputError;
            None waits forever (the user stops with Ctrl-C).
        nominal_fps: the rate the grabbers claim, if known.
        on_close: called by ``close()`` before the capture threads are joined (to wake a
            grabber that sleeps, e.g. :meth:`PacingClock.stop`).
        now: the clock of capture times and rates: ``time.monotonic``, or the
            :class:`~depthapp.sources.clock.PacingClock`'s in tests. Reconnect backoff and read
            timeouts are real time.

    The factories are called once in ``open()``; an error there (no such camera) is raised to
    the caller. After that, a grabber that raises anything but :class:`EndOfStream` counts as a
    lost device: it is closed and its factory is called again, with backoff, until it works.
    """

    live = True

    def __init__(self, streams: Sequence[GrabberFactory], split: Optional[Callable] = None,
                 description: str = "live source", names: Optional[Sequence[str]] = None,
                 on_status: Optional[StatusCallback] = None, buffer: int = 8,
                 backoff: tuple[float, float] = (0.05, 2.0), give_up_after: Optional[float] = None,
                 nominal_fps: Optional[float] = None, on_close: Optional[Callable[[], None]] = None,
                 now: Callable[[], float] = time.monotonic):
        super().__init__(description, on_status)
        if len(streams) not in (1, 2):
            raise ValueError(f"LiveSource takes one or two streams, got {len(streams)}")
        default_names = ("left", "right") if len(streams) == 2 else ("camera",)
        names = list(names or default_names)
        self._streams = [_Stream(name, factory, max(2, buffer)) for name, factory in zip(names, streams)]
        self._split = split
        self._backoff = backoff
        self._give_up_after = give_up_after
        self._nominal_fps = nominal_fps
        self._on_close = on_close
        self._now = now
        self._condition = threading.Condition()
        self._stopping = threading.Event()
        self._pairs = 0

    @property
    def nominal_fps(self) -> Optional[float]:
        if self._nominal_fps:
            return self._nominal_fps
        fps = [getattr(s.grabber, "fps", None) for s in self._streams]
        fps = [f for f in fps if f]
        return min(fps) if fps else None

    def _open(self) -> None:
        for stream in self._streams:
            stream.frames.clear()
            stream.ended = stream.lost = False
            stream.failure = None
            stream.last_used = stream.seq
        opened = []
        try:
            for stream in self._streams:
                stream.grabber = stream.factory()
                opened.append(stream)
        except Exception:
            for stream in opened:
                _close_grabber(stream.grabber)
                stream.grabber = None
            raise
        self._stopping.clear()
        for stream in self._streams:
            stream.thread = threading.Thread(target=self._capture, args=(stream,),
                                             name=f"depthapp-capture-{stream.name}", daemon=True)
            stream.thread.start()

    # Capture threads ---------------------------------------------------------------------
    def _capture(self, stream: _Stream) -> None:
        grabber = stream.grabber
        while not self._stopping.is_set():
            try:
                output = grabber()
            except EndOfStream:
                break
            except Exception as error:  # the device is lost: whatever it raised, reopen it
                if self._stopping.is_set():
                    break
                _close_grabber(grabber)
                grabber = self._reconnect(stream, error)
                if grabber is None:
                    break
                continue
            image, stamp = output if isinstance(output, tuple) and len(output) == 2 \
                and not isinstance(output[1], np.ndarray) else (output, None)
            now = self._now()
            with self._condition:
                if len(stream.frames) == stream.frames.maxlen and stream.frames[0].seq > stream.last_used:
                    stream.dropped += 1  # evicted before anyone asked for it
                stream.seq += 1
                stream.frames.append(_Captured(stream.seq, image, now if stamp is None else stamp))
                stream.meter.tick(now)
                self._condition.notify_all()
        _close_grabber(grabber)
        with self._condition:
            stream.grabber = None
            stream.ended = True
            self._condition.notify_all()

    def _reconnect(self, stream: _Stream, error: BaseException):
        lost_at = time.monotonic()
        with self._condition:
            stream.lost = True
            stream.grabber = None
        self._status(f"{stream.name}: lost ({error}); reconnecting")
        delay, longest = self._backoff
        attempts = 0
        last_report = lost_at
        while not self._stopping.is_set():
            if self._give_up_after is not None and time.monotonic() - lost_at > self._give_up_after:
                with self._condition:
                    stream.failure = InputError(
                        f"{stream.name}: lost ({error}) and not back after {self._give_up_after:g} s")
                    self._condition.notify_all()
                return None
            if self._stopping.wait(delay):
                return None
            attempts += 1
            try:
                grabber = stream.factory()
            except Exception as retry_error:
                delay = min(longest, delay * 2)
                if time.monotonic() - last_report >= 5.0:
                    last_report = time.monotonic()
                    self._status(f"{stream.name}: still reconnecting (attempt {attempts}: {retry_error})")
                continue
            if self._stopping.is_set():
                _close_grabber(grabber)
                return None
            with self._condition:
                stream.lost = False
                stream.reconnects += 1
                stream.grabber = grabber
            self._status(f"{stream.name}: reconnected after {time.monotonic() - lost_at:.1f} s "
                         f"({attempts} attempt{'s' if attempts != 1 else ''})")
            return grabber
        return None

    # Pairing ---------------------------------------------------------------------------------
    def _take_pair(self) -> Optional[FramePair]:
        """The newest synchronised pair of fresh frames, or None if one side has none yet."""
        if len(self._streams) == 1:
            stream = self._streams[0]
            fresh = stream.fresh()
            if not fresh:
                return None
            newest = fresh[-1]
            stream.dropped += len(fresh) - 1
            stream.last_used = newest.seq
            split = self._split or (lambda image: split_frame(image, self.description))
            left, right = split(newest.image)
            stamp = newest.stamp
            t_left, t_right = stamp if isinstance(stamp, tuple) else (stamp, stamp)
            return FramePair(newest.seq - 1, np.asarray(left), np.asarray(right), float(t_left),
                             float(t_right), name=f"frame {newest.seq - 1:06d}")
        left_stream, right_stream = self._streams
        fresh_left, fresh_right = left_stream.fresh(), right_stream.fresh()
        if not fresh_left or not fresh_right:
            return None
        # Anchor on the side whose newest frame is older: the other side holds the frame taken
        # nearest to it (a later frame of the anchor side may still be missing its partner).
        if fresh_left[-1].stamp <= fresh_right[-1].stamp:
            anchor_stream, anchor, partners = left_stream, fresh_left[-1], fresh_right
        else:
            anchor_stream, anchor, partners = right_stream, fresh_right[-1], fresh_left
        partner = min(partners, key=lambda f: (abs(f.stamp - anchor.stamp), -f.seq))
        # A partner taken more than half a frame after the anchor is nearer to the anchor
        # camera's next frame, which is due any moment: wait for it rather than pair badly.
        period = anchor_stream.period()
        if period is not None and partner.stamp - anchor.stamp > period / 2:
            if anchor_stream.ended:  # no next frame will come: this one has no partner
                anchor_stream.dropped += len([f for f in anchor_stream.fresh() if f.seq <= anchor.seq])
                anchor_stream.last_used = anchor.seq
            return None
        chosen_left, chosen_right = (anchor, partner) if anchor_stream is left_stream else (partner, anchor)
        for stream, chosen, fresh in ((left_stream, chosen_left, fresh_left),
                                      (right_stream, chosen_right, fresh_right)):
            stream.dropped += sum(1 for f in fresh if f.seq < chosen.seq)
            stream.last_used = chosen.seq
        return FramePair(chosen_left.seq - 1, np.asarray(chosen_left.image),
                         np.asarray(chosen_right.image), float(chosen_left.stamp),
                         float(chosen_right.stamp), name=f"frame {chosen_left.seq - 1:06d}")

    def _read(self, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while True:
                if self._stopping.is_set():
                    return None
                for stream in self._streams:
                    if stream.failure is not None:
                        raise stream.failure
                frame = self._take_pair()
                if frame is not None:
                    if frame.left.shape != frame.right.shape:
                        raise InputError(f"{self.description}: left frames are "
                                         f"{frame.left.shape[1]}x{frame.left.shape[0]}, right "
                                         f"{frame.right.shape[1]}x{frame.right.shape[0]}")
                    return frame
                if any(stream.ended and not stream.fresh() for stream in self._streams):
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise FrameTimeout(f"{self.description}: no new frames for {timeout:g} s")
                self._condition.wait(remaining)

    def _close(self) -> None:
        self._stopping.set()
        if self._on_close is not None:
            self._on_close()
        with self._condition:
            self._condition.notify_all()
        for stream in self._streams:
            if stream.thread is not None:
                # A thread blocked inside a driver read returns on its own; do not hang on it.
                stream.thread.join(timeout=2.0)
                stream.thread = None

    def stats(self) -> SourceStats:
        with self._condition:
            now = self._now()
            if self._stopping.is_set() and not self._is_open:
                state = "closed"
            elif any(s.lost for s in self._streams):
                state = "reconnecting"
            elif self._ended or any(s.ended for s in self._streams):
                state = "ended"
            else:
                state = "running"
            return SourceStats(
                delivered=self._delivered,
                captured=tuple(s.seq for s in self._streams),
                dropped=tuple(s.dropped for s in self._streams),
                capture_fps=tuple(s.meter.rate(now) for s in self._streams),
                skew=self._skew_copy(), reconnects=sum(s.reconnects for s in self._streams),
                live=True, state=state)
