"""The job runner shared by every long task: progress with ETA, cancellation, timings.

Compute code reports progress through a callback and polls a :class:`CancelToken`; surfaces
decide how to show it (a terminal bar here, Qt signals in the GUI).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, TextIO, TypeVar

from .errors import Cancelled

T = TypeVar("T")


class CancelToken:
    """A thread-safe flag polled by long work; ``raise_if_cancelled`` ends it cleanly."""

    def __init__(self):
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")


@dataclass
class Progress:
    """A snapshot of a job's progress."""

    done: int
    total: Optional[int]
    elapsed: float
    message: str = ""

    @property
    def fraction(self) -> Optional[float]:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)

    @property
    def eta(self) -> Optional[float]:
        """Seconds left, from the mean time per finished item; None before the first."""
        if not self.total or self.done <= 0:
            return None
        return self.elapsed / self.done * max(0, self.total - self.done)

    @property
    def rate(self) -> Optional[float]:
        return self.done / self.elapsed if self.elapsed > 0 else None


ProgressCallback = Callable[[Progress], None]


def format_seconds(seconds: Optional[float]) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class TerminalProgress:
    """A one-line progress bar with ETA on a terminal (stderr), throttled; plain lines otherwise."""

    def __init__(self, description: str, stream: Optional[TextIO] = None, width: int = 28,
                 min_interval: float = 0.2):
        self.description = description
        # sys.stderr when called, not when this module was imported (tests swap it)
        self.stream = stream or sys.stderr
        self.width = width
        self.min_interval = min_interval
        self._last = 0.0
        self._interactive = hasattr(stream, "isatty") and stream.isatty()
        self._last_percent = -10

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        finished = progress.total is not None and progress.done >= progress.total
        if not finished and now - self._last < self.min_interval:
            return
        self._last = now
        fraction = progress.fraction
        if fraction is None:
            line = f"{self.description}: {progress.done} done, {format_seconds(progress.elapsed)}"
        else:
            filled = int(round(fraction * self.width))
            bar = "#" * filled + "-" * (self.width - filled)
            line = (f"{self.description} [{bar}] {progress.done}/{progress.total} "
                    f"{fraction * 100:3.0f}% elapsed {format_seconds(progress.elapsed)} "
                    f"ETA {format_seconds(progress.eta)}")
        if progress.message:
            line += f" {progress.message}"
        if self._interactive:
            self.stream.write("\r" + line[:200] + ("\n" if finished else ""))
        else:
            # Logs get a line per 10 % so CI output stays readable.
            percent = int((fraction or 0) * 100)
            if not finished and percent < self._last_percent + 10:
                return
            self._last_percent = percent
            self.stream.write(line + "\n")
        self.stream.flush()


class Job:
    """Tracks one long task: call :meth:`step` per finished item; it reports and checks cancel."""

    def __init__(self, total: Optional[int], callback: Optional[ProgressCallback] = None,
                 cancel: Optional[CancelToken] = None):
        self.total = total
        self.callback = callback
        self.cancel = cancel or CancelToken()
        self.done = 0
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def snapshot(self, message: str = "") -> Progress:
        return Progress(self.done, self.total, self.elapsed, message)

    def step(self, count: int = 1, message: str = "") -> None:
        self.done += count
        if self.callback:
            self.callback(self.snapshot(message))
        self.cancel.raise_if_cancelled()


def track(items: Iterable[T], total: Optional[int] = None,
          callback: Optional[ProgressCallback] = None,
          cancel: Optional[CancelToken] = None) -> Iterator[T]:
    """Iterate ``items``, reporting progress after each and stopping cleanly on cancel."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    job = Job(total, callback, cancel)
    job.cancel.raise_if_cancelled()
    if callback:
        callback(job.snapshot())
    for item in items:
        yield item
        job.step()
