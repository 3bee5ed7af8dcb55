"""Time as a parameter: rates of events and the pacing of recorded media, on an injectable clock."""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Optional


class RateMeter:
    """Events per second over a sliding window of recent events, plus the overall mean."""

    def __init__(self, window: float = 2.0, max_events: int = 240):
        self.window = window
        self._times: collections.deque[float] = collections.deque(maxlen=max_events)
        self.count = 0
        self.first: Optional[float] = None

    def tick(self, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        if self.first is None:
            self.first = now
        self._times.append(now)
        self.count += 1

    def rate(self, now: Optional[float] = None) -> float:
        """Events per second over the last ``window`` seconds (0 before two events)."""
        now = time.monotonic() if now is None else now
        recent = [t for t in self._times if now - t <= self.window]
        if len(recent) < 2:
            # Slower than one event per window: fall back to the last two events.
            recent = list(self._times)[-2:]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])

    def mean_rate(self) -> float:
        """Events per second from the first to the last event."""
        if self.count < 2 or not self._times or self._times[-1] <= (self.first or 0.0):
            return 0.0
        return (self.count - 1) / (self._times[-1] - self.first)


class PacingClock:
    """Replays media times in real time for several grabbers at once (a shared start, so two
    files stay in step); ``stop()`` wakes every sleeper.

    ``now`` (seconds) and ``sleep(seconds)`` are the clock it runs on: ``time.monotonic`` and an
    interruptible wait by default, a fake clock in tests (so no test depends on wall time)."""

    def __init__(self, now: Callable[[], float] = time.monotonic,
                 sleep: Optional[Callable[[float], None]] = None):
        self.now = now
        self._start: Optional[float] = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._sleep = sleep or self._stopped.wait

    def due(self, media_time: float) -> float:
        """The time (on ``now``'s clock) at which the frame at ``media_time`` is captured."""
        with self._lock:
            if self._start is None:
                self._start = self.now() - media_time
            return self._start + media_time

    def wait(self, media_time: float) -> float:
        """Sleep until the frame at ``media_time`` is due; returns its due time."""
        due = self.due(media_time)
        delay = due - self.now()
        if delay > 0 and not self._stopped.is_set():
            self._sleep(delay)
        return due

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def stop(self) -> None:
        self._stopped.set()
