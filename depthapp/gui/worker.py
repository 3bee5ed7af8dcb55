"""Runs compute requests in ``QThread`` workers and delivers their outcome on the GUI thread."""

from __future__ import annotations

from typing import Callable, Optional

from PyQt6.QtCore import QCoreApplication, QDeadlineTimer, QObject, Qt, QThread, pyqtSignal, pyqtSlot

from .state import ComputeOutcome, ComputeRequest


class _Job(QThread):
    """One request in its own thread. Signals are emitted from the worker thread."""

    staged = pyqtSignal(str)
    done = pyqtSignal(object, object)

    def __init__(self, request: ComputeRequest, parent: QObject):
        super().__init__(parent)
        self.request = request

    def run(self) -> None:
        try:
            outcome = self.request.run(self.staged.emit)
        except BaseException as error:  # handed to the model on the GUI thread, never lost
            self.done.emit(None, error)
            return
        self.done.emit(outcome, None)


class _Relay(QObject):
    """Lives on the GUI thread; queued connections land here, then call the model."""

    def __init__(self, request: ComputeRequest, on_stage, on_done, parent: QObject):
        super().__init__(parent)
        self.request, self.on_stage, self.on_done = request, on_stage, on_done

    @pyqtSlot(str)
    def stage(self, name: str) -> None:
        self.on_stage(self.request, name)

    @pyqtSlot(object, object)
    def done(self, outcome: Optional[ComputeOutcome], error: Optional[BaseException]) -> None:
        self.on_done(self.request, outcome, error)


class ThreadExecutor(QObject):
    """The viewer's executor: each request runs in a worker thread; the GUI never blocks.

    A cancelled request's thread runs on until the backend next polls its CancelToken (or
    finishes); the model discards what it delivers. :meth:`shutdown` waits for stragglers so
    no thread outlives the window.
    """

    def __init__(self, parent: Optional[QObject] = None):
        super().__init__(parent)
        self._jobs: dict[_Job, _Relay] = {}

    def submit(self, request: ComputeRequest,
               on_stage: Callable[[ComputeRequest, str], None],
               on_done: Callable[[ComputeRequest, Optional[ComputeOutcome], Optional[BaseException]], None]) -> None:
        job = _Job(request, self)
        relay = _Relay(request, on_stage, on_done, self)
        queued = Qt.ConnectionType.QueuedConnection
        job.staged.connect(relay.stage, queued)
        job.done.connect(relay.done, queued)
        job.finished.connect(lambda job=job: self._forget(job))
        self._jobs[job] = relay
        job.start()

    def _forget(self, job: _Job) -> None:
        relay = self._jobs.pop(job, None)
        job.deleteLater()
        if relay is not None:
            relay.deleteLater()

    @property
    def active(self) -> int:
        return sum(1 for job in self._jobs if job.isRunning())

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel every job and wait for the threads; True if all ended in time."""
        for job in list(self._jobs):
            job.request.cancel.cancel()
        ok = True
        for job in list(self._jobs):
            ok &= job.wait(QDeadlineTimer(timeout_ms))
        QCoreApplication.processEvents()
        return ok
