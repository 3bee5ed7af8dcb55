"""The job runner shared by every long task: progress with ETA, cancellation, timings.

Compute code reports progress through a callback and polls a :class:`CancelToken`; surfaces
decide how to show it (a terminal bar here, Qt signals in the GUI).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping, Optional, TextIO, TypeVar

from .errors import Cancelled

T = TypeVar("T")


class CancelToken:
    """A thread-safe flag polled by long work; ``raise_if_cancelled`` ends it cleanly.

    ``flag`` is the same state as one byte (1 once cancelled), for compiled code that polls it
    without the interpreter (the sgm aggregation checks it every image row).
    """

    def __init__(self):
        self._event = threading.Event()
        self.flag = bytearray(1)

    def cancel(self) -> None:
        self.flag[0] = 1
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")


@dataclass
class Progress:
    """A snapshot of a job's progress.

    ``stage`` names the part of the job now running (a backend's "aggregation", adapt's
    "training"); displays show every change of stage. ``counted`` is False when ``done`` and
    ``total`` are expected shares of the time (stages of one computation) rather than items,
    so a display shows the percentage only.
    """

    done: float
    total: Optional[float]
    elapsed: float
    message: str = ""
    stage: str = ""
    counted: bool = True

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
    """A one-line progress bar with ETA on a terminal (stderr), throttled; plain lines otherwise.

    On a terminal the line is rewritten in place and ends when the job (or a stage with its own
    count) finishes; between reports it ticks every ``tick`` seconds (elapsed up, ETA down), so
    a long stage does not look frozen. In a log, a line is written per stage and per 10 % so
    output stays readable. ``clock`` is the time source (tests pass their own).
    """

    def __init__(self, description: str, stream: Optional[TextIO] = None, width: int = 28,
                 min_interval: float = 0.2, tick: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.description = description
        # Looked up per instance, so a redirected sys.stderr (tests, GUI logs) is honoured.
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.min_interval = min_interval
        self.tick_interval = tick
        self.clock = clock
        self._last = 0.0
        self._interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_percent = -10
        self._stage: Optional[str] = None
        self._open_width = 0  # length of the unfinished line on a terminal
        self._shown: Optional[tuple[Progress, float]] = None  # the open line's report and when
        self._lock = threading.Lock()
        self._ticker: Optional[threading.Thread] = None

    def format(self, progress: Progress, eta: Optional[float] = None) -> str:
        head = self.description + (f": {progress.stage}" if progress.stage else "")
        fraction = progress.fraction
        if fraction is None:
            done = f"{progress.done:g} done, " if progress.counted and progress.done else ""
            line = f"{head}: {done}elapsed {format_seconds(progress.elapsed)}"
        else:
            filled = int(round(fraction * self.width))
            bar = "#" * filled + "-" * (self.width - filled)
            counts = f"{progress.done:g}/{progress.total:g} " if progress.counted else ""
            line = (f"{head} [{bar}] {counts}{fraction * 100:3.0f}% elapsed "
                    f"{format_seconds(progress.elapsed)} ETA {format_seconds(eta if eta is not None else progress.eta)}")
        if progress.message:
            line += f" {progress.message}"
        return line

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            now = self.clock()
            finished = progress.total is not None and progress.done >= progress.total
            new_stage = progress.stage != self._stage
            if not finished and not new_stage and now - self._last < self.min_interval:
                return
            percent = int((progress.fraction or 0) * 100)
            if not self._interactive and not (finished or new_stage or percent >= self._last_percent + 10):
                return
            self._last = now
            self._stage = progress.stage
            self._last_percent = percent
            line = self.format(progress)
            if self._interactive:
                self._draw(line, finished)
                self._shown = None if finished else (progress, now)
                if not finished:
                    self._start_ticker()
            else:
                self.stream.write(line + "\n")
                self.stream.flush()

    def _draw(self, line: str, finished: bool = False) -> None:
        line = line[:200]
        # Spaces cover the rest of a longer line written before.
        self.stream.write("\r" + line.ljust(self._open_width) + ("\n" if finished else ""))
        self.stream.flush()
        self._open_width = 0 if finished else len(line)

    def tick(self) -> None:
        """Redraw the open line with the time since its report: elapsed up, the ETA down."""
        with self._lock:
            if self._shown is None or not self._open_width:
                return
            progress, shown_at = self._shown
            late = max(0.0, self.clock() - shown_at)
            eta = progress.eta
            moved = Progress(progress.done, progress.total, progress.elapsed + late, progress.message,
                             progress.stage, progress.counted)
            self._draw(self.format(moved, None if eta is None else max(0.0, eta - late)))

    def _start_ticker(self) -> None:
        if self.tick_interval <= 0 or (self._ticker is not None and self._ticker.is_alive()):
            return

        def run() -> None:
            while True:
                time.sleep(self.tick_interval)
                if self._shown is None:  # finished or cleared: the next open line starts another
                    return
                self.tick()

        self._ticker = threading.Thread(target=run, name=f"progress {self.description}", daemon=True)
        self._ticker.start()

    def clear(self) -> None:
        """Erase an unfinished line on a terminal, so other output starts at the left margin;
        the next report draws the bar again."""
        with self._lock:
            if self._open_width:
                self.stream.write("\r" + " " * self._open_width + "\r")
                self.stream.flush()
                self._open_width = 0
                self._stage = None
            self._shown = None


class Job:
    """Tracks one long task: call :meth:`step` per finished item; it reports and checks cancel."""

    def __init__(self, total: Optional[int], callback: Optional[ProgressCallback] = None,
                 cancel: Optional[CancelToken] = None, stage: str = ""):
        self.total = total
        self.callback = callback
        self.cancel = cancel or CancelToken()
        self.stage = stage
        self.done = 0
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def snapshot(self, message: str = "") -> Progress:
        return Progress(self.done, self.total, self.elapsed, message, self.stage)

    def start(self) -> "Job":
        """Report the job before its first item (a display shows it at once) and check cancel."""
        if self.callback:
            self.callback(self.snapshot())
        self.cancel.raise_if_cancelled()
        return self

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
    job.start()
    for item in items:
        yield item
        job.step()


class StageProgress:
    """Progress of one computation made of named stages, from their expected shares of the time.

    ``shares`` (``{"features": 22, "aggregation": 67, ...}``, any scale) say how the time
    usually divides; a backend declares them once. :meth:`start` (given to a
    :class:`~depthapp.timing.StageTimer` as ``on_stage``) reports each stage as it begins, with
    the shares of the stages before it as done, so the ETA follows; :meth:`complete` reports the
    end. A stage missing from ``shares`` is shown by name and counts for nothing; with no shares
    the total is unknown and only the elapsed time is shown.
    """

    def __init__(self, callback: ProgressCallback, shares: Optional[Mapping[str, float]] = None):
        self.callback = callback
        self.shares = dict(shares or {})
        self.total = float(sum(self.shares.values())) or None
        self.done = 0.0
        self.current: Optional[str] = None
        self._counted: set[str] = set()
        self.started = time.perf_counter()

    def _finish_current(self) -> None:
        if self.current is not None and self.current not in self._counted:
            self._counted.add(self.current)
            self.done += self.shares.get(self.current, 0.0)

    def _report(self, stage: str) -> None:
        done = min(self.done, self.total) if self.total else self.done
        self.callback(Progress(done, self.total, time.perf_counter() - self.started, "",
                               stage, counted=False))

    def start(self, stage: str) -> None:
        self._finish_current()
        self.current = stage
        self._report(stage)

    def complete(self) -> None:
        self._finish_current()
        self.current = None
        self.done = self.total or self.done
        self._report("done")
